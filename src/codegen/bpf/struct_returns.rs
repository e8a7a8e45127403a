//! A function returning a struct from several places returns it through one phi per field.
//!
//! A helper that returns a struct (`return info` on success, `return Ipv4Info {..}` zeroed on
//! each early exit) has a `ret` of an aggregate per exit; when it is inlined, LLVM joins them
//! into one phi of the whole struct and reads the fields back with `extractvalue`. LLVM's
//! scalar passes see through neither: a test of a field (`ip.proto == 0`) is not threaded to
//! the exits that return 0, and each field lives in a register as wide as its type, masked
//! again where it is used (`l4_off & 0xffff`). With one phi per field at a single return, the
//! inlined struct is a chain of `insertvalue`s over scalar phis, which InstCombine reads
//! through, so C's shape (fields as scalars, early exits jumping straight to their use) results.
//! Runs before LLVM's pipeline, on functions that return a struct from more than one place.

use inkwell::module::Module;
use inkwell::types::BasicTypeEnum;
use inkwell::values::{AggregateValueEnum, BasicValue, BasicValueEnum, InstructionOpcode};

pub fn return_fields(module: &Module) {
    let ctx = module.get_context();
    let builder = ctx.create_builder();
    for f in module.get_functions() {
        let Some(BasicTypeEnum::StructType(ty)) = f.get_type().get_return_type() else {
            continue;
        };
        let rets: Vec<_> = f
            .get_basic_blocks()
            .into_iter()
            .filter_map(|b| b.get_terminator())
            .filter(|t| t.get_opcode() == InstructionOpcode::Return)
            .collect();
        if rets.len() < 2 || ty.count_fields() == 0 {
            continue;
        }
        let join = ctx.append_basic_block(f, "ret.fields");
        builder.position_at_end(join);
        let Ok(phis) = ty
            .get_field_types()
            .into_iter()
            .map(|t| builder.build_phi(t, ""))
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        for ret in rets {
            let (Some(from), Some(BasicValueEnum::StructValue(value))) =
                (ret.get_parent(), ret.get_operand(0).and_then(|o| o.value()))
            else {
                continue;
            };
            builder.position_before(&ret);
            for (i, phi) in phis.iter().enumerate() {
                if let Ok(field) = builder.build_extract_value(value, i as u32, "") {
                    phi.add_incoming(&[(&field as &dyn BasicValue, from)]);
                }
            }
            let _ = builder.build_unconditional_branch(join);
            ret.erase_from_basic_block();
        }
        builder.position_at_end(join);
        let mut whole = AggregateValueEnum::StructValue(ty.get_poison());
        for (i, phi) in phis.iter().enumerate() {
            if let Ok(next) = builder.build_insert_value(whole, phi.as_basic_value(), i as u32, "")
            {
                whole = next;
            }
        }
        let _ = builder.build_return(Some(&whole.into_struct_value()));
    }
}
