//! A truth value made from a narrow number is computed, not branched on.
//!
//! BPF has no instruction that sets a register from a comparison, so LLVM materialises `x != 0`
//! (a `bool` field read from a map value, then kept in a local) with a branch: `w2 = 1; if w1 !=
//! 0 goto +1; w2 = 0`. The verifier then follows two paths that differ only in that register, a
//! known 0 or 1, and the rest of the program twice (an RA guard's `log_only` from its port
//! entry doubled every path after it). Where such a comparison of a number of at most 16 bits
//! read from memory meets another value at a join (`var log_only = false; if (var p = ports[k])
//! { log_only = p.log_only }`), it is computed instead: `(x + 2^b − 1) >> b` is 1 exactly when
//! `x`'s `b` low bits are not all zero, one register the verifier knows as 0 or 1 on a single
//! path, as a C `bool` read from memory is. (Not every kept comparison: one computed and
//! tested where it is made costs LLVM's jump threading its branch, and more instructions.)

use super::lost_bounds::value_bits;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{BasicValue, InstructionOpcode, InstructionValue, IntValue};
use inkwell::IntPredicate;

use super::llvm_ir::{instructions, int_operand, users_of_result};

/// Numbers this wide or narrower are computed into a truth value; wider ones keep the branch
/// (the sum must not carry out of a 32-bit register).
const MAX_BITS: u32 = 16;

pub(super) fn compute_truth_values(m: &Module<'_>) {
    let builder = m.get_context().create_builder();
    for f in m.get_functions() {
        for b in f.get_basic_blocks() {
            let tests: Vec<_> = instructions(b).filter(|&i| is_kept_zero_test(i)).collect();
            for test in tests {
                compute(&builder, test);
            }
        }
    }
}

/// `x != 0` or `x == 0` of a narrow number, used as a value somewhere.
fn is_kept_zero_test(i: InstructionValue<'_>) -> bool {
    if i.get_opcode() != InstructionOpcode::ICmp
        || !matches!(
            i.get_icmp_predicate(),
            Some(IntPredicate::NE | IntPredicate::EQ)
        )
    {
        return false;
    }
    let (Some(x), Some(zero)) = (int_operand(i, 0), int_operand(i, 1)) else {
        return false;
    };
    if x.is_const() || zero.get_zero_extended_constant() != Some(0) {
        return false;
    }
    let loaded = x
        .as_instruction()
        .is_some_and(|l| l.get_opcode() == InstructionOpcode::Load);
    loaded
        && value_bits(x, 8) <= MAX_BITS
        && users_of_result(i)
            .iter()
            .any(|&u| u.get_opcode() == InstructionOpcode::Phi)
}

/// Whether `user` keeps `test`'s result as a value rather than only branching on it.
fn keeps_value(user: InstructionValue<'_>, test: InstructionValue<'_>) -> bool {
    match user.get_opcode() {
        InstructionOpcode::Br => false,
        // As the condition of a select the test decides; as one of its values it is kept.
        InstructionOpcode::Select => {
            let condition = user
                .get_operand(0)
                .and_then(|o| o.value())
                .and_then(|v| v.as_instruction_value());
            condition != Some(test)
        }
        _ => true,
    }
}

fn compute<'ctx>(builder: &Builder<'ctx>, test: InstructionValue<'ctx>) {
    let (Some(x), Some(next)) = (int_operand(test, 0), test.get_next_instruction()) else {
        return;
    };
    let bits = value_bits(x, 8);
    let ctx = x.get_type().get_context();
    let i32_ty = ctx.i32_type();
    builder.position_before(&next);
    let computed = (|| -> Option<IntValue<'ctx>> {
        let wide = match x.get_type().get_bit_width() {
            32 => x,
            w if w < 32 => builder.build_int_z_extend(x, i32_ty, "").ok()?,
            _ => builder.build_int_truncate(x, i32_ty, "").ok()?,
        };
        let all_low = i32_ty.const_int((1u64 << bits) - 1, false);
        let sum = builder.build_int_add(wide, all_low, "").ok()?;
        let mut set = builder
            .build_right_shift(sum, i32_ty.const_int(u64::from(bits), false), false, "")
            .ok()?;
        if test.get_icmp_predicate() == Some(IntPredicate::EQ) {
            set = builder
                .build_xor(set, i32_ty.const_int(1, false), "")
                .ok()?;
        }
        builder
            .build_int_truncate(set, ctx.bool_type(), "truth")
            .ok()
    })();
    let Some(computed) = computed else {
        return;
    };
    for user in users_of_result(test) {
        if !keeps_value(user, test) {
            continue;
        }
        for k in 0..user.get_num_operands() {
            let is_test = user
                .get_operand(k)
                .and_then(|o| o.value())
                .and_then(|v| v.as_instruction_value())
                == Some(test);
            // (A select's condition stays the test: there it decides.)
            if is_test && !(user.get_opcode() == InstructionOpcode::Select && k == 0) {
                user.set_operand(k, computed);
            }
        }
    }
}
