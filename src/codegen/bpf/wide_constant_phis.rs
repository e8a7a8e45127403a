//! A phi of small integer constants is chosen in a whole register.
//!
//! Every throw site of a merged `catch` sets the code it throws (`w5 = 3; if … goto handler`),
//! and runs of sites throw the same code. LLVM's late clean-up drops an immediate load that a
//! register already holds, but not a 32-bit one: `w5 = 3` also defines the upper half of `r5`
//! (an implicit definition the clean-up does not reason about), so each site keeps its copy. A
//! phi of `i8`/`i16`/`i32` constants is made an `i64` phi of the same constants, narrowed where
//! it is used (which costs nothing: the narrow value is the register's lower half), and its
//! copies become `r5 = 3`, which the clean-up removes where the register already holds it.
//! Not a phi that becomes the function's result: that is set in `w0` where it is decided, and
//! widened it is chosen in another register held across the function and copied at the exit.

use super::llvm_ir::{instructions, phis_of, successors, users};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{BasicValueEnum, InstructionOpcode, PhiValue};

pub fn widen_constant_phis(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            for phi in phis_of(block) {
                widen(&builder, phi);
            }
        }
    }
}

/// The blocks that branch to `block`.
fn predecessors_of(block: BasicBlock<'_>) -> Vec<BasicBlock<'_>> {
    let Some(f) = block.get_parent() else {
        return Vec::new();
    };
    f.get_basic_blocks()
        .into_iter()
        .filter(|&b| successors(b).contains(&block))
        .collect()
}

/// Whether `phi` is the function's result, directly or through further phis: the result is set
/// in `w0`, where a narrow constant costs no copy, while a wide one is chosen in another register
/// and copied into `r0` at the shared return.
fn is_returned(phi: PhiValue<'_>, depth: u32) -> bool {
    users(phi.as_basic_value())
        .into_iter()
        .any(|u| match u.get_opcode() {
            InstructionOpcode::Return => true,
            InstructionOpcode::Phi if depth > 0 => {
                PhiValue::try_from(u).is_ok_and(|p| is_returned(p, depth - 1))
            }
            _ => false,
        })
}

fn widen<'ctx>(builder: &Builder<'ctx>, phi: PhiValue<'ctx>) -> Option<()> {
    let BasicValueEnum::IntValue(value) = phi.as_basic_value() else {
        return None;
    };
    let width = value.get_type().get_bit_width();
    if !(8..=32).contains(&width) {
        return None;
    }
    let incoming: Vec<_> = (0..phi.count_incoming())
        .map(|k| phi.get_incoming(k))
        .collect::<Option<_>>()?;
    let constants: Vec<u64> = incoming
        .iter()
        .map(|(v, _)| match v {
            BasicValueEnum::IntValue(c) => c.get_zero_extended_constant(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    // Only where one site's copy would find the register already set by the site before it
    // (the one predecessor of its block passes the same constant): elsewhere the register
    // width is a coin toss for the allocator and the tail duplicator.
    let block = phi.as_instruction().get_parent()?;
    let repeats = incoming.iter().zip(&constants).any(|((_, from), c)| {
        let preds = predecessors_of(*from);
        matches!(preds.as_slice(), [above] if incoming
            .iter()
            .zip(&constants)
            .any(|((_, b), d)| b == above && d == c))
    });
    if !repeats || is_returned(phi, 4) {
        return None;
    }
    let i64_type = value.get_type().get_context().i64_type();
    builder.position_before(&block.get_first_instruction()?);
    let wide = builder.build_phi(i64_type, "wide").ok()?;
    for ((_, from), c) in incoming.iter().zip(&constants) {
        wide.add_incoming(&[(&i64_type.const_int(*c, false), *from)]);
    }
    // The narrow value, after the block's phis.
    let first_other = instructions(block).find(|i| i.get_opcode() != InstructionOpcode::Phi)?;
    builder.position_before(&first_other);
    let narrow = builder
        .build_int_truncate(
            wide.as_basic_value().into_int_value(),
            value.get_type(),
            "narrow",
        )
        .ok()?;
    value.replace_all_uses_with(narrow);
    phi.as_instruction().erase_from_basic_block();
    Some(())
}
