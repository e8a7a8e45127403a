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
//!
//! In a loop, a comparison against a constant used only as a number — `zext`ed, or choosing
//! between constants or between `a` and `a + K` (`printable += c >= 32 && c <= 126`, LLVM's
//! `zext (icmp ult (c - 32), 95)`; `select t, a + 3, a`) — is computed too: for `x` and `C`
//! below 2³¹, `x < C` is the sign of `x − C`, `(x − C) >> 31`. Branched, a loop that counts so
//! forks at every round, and the verifier, which keeps few states inside a loop, follows the
//! forks' every combination (a 32-byte scan went past the 1M-instruction limit); computed, each
//! round is one path whose count the verifier knows as a range. `compute-guarded-updates` makes
//! the source's guarded updates arithmetic in KS-IR; this catches the `select`s LLVM's
//! InstCombine makes of them again, and its own.

use super::lost_bounds::value_bits;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{BasicValue, InstructionOpcode, InstructionValue, IntValue};
use inkwell::IntPredicate;

use super::llvm_ir::{
    erase_dead, in_cycle, instructions, int_operand, replace_all_uses, users_of_result,
};

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
            // In a loop: there the forks multiply. Elsewhere a branch costs the verifier one
            // path more, often none after LLVM threads it into the next test. (The cycle test
            // walks the function: only for a block that has such a value.)
            let counted: Vec<_> = instructions(b).filter(|&i| counted_truth(i)).collect();
            if counted.is_empty() || !in_cycle(b) {
                continue;
            }
            for t in counted {
                compute_counted(&builder, t);
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
        let wide = resize(builder, x, i32_ty)?;
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

/// Comparisons computed as a sign are of numbers that fit in 31 bits: the difference of two such
/// values is negative exactly when the first is the lesser, and its sign is bit 31.
const MAX_SIGNED_BITS: u32 = 31;

/// How deep a combination of comparisons (`&&`, `||`) is followed.
const MAX_DEPTH: u32 = 4;

/// A truth value used only as a number: by `zext`s, and by `select`s that choose between two
/// integer constants or between `y` and `y op K` (`a = a + 3` in one arm, LLVM's
/// `select t, a + 3, a`).
fn counted_truth(i: InstructionValue<'_>) -> bool {
    let numbers = users_of_result(i);
    !numbers.is_empty() && numbers.iter().all(|&u| numeric_use(u, i)) && computable(i, MAX_DEPTH)
}

/// Whether `user` reads truth value `t` only as a number.
fn numeric_use(user: InstructionValue<'_>, t: InstructionValue<'_>) -> bool {
    match user.get_opcode() {
        InstructionOpcode::ZExt => true,
        InstructionOpcode::Select => {
            int_operand(user, 0).and_then(|c| c.as_instruction()) == Some(t)
                && selected_step(user).is_some()
        }
        _ => false,
    }
}

/// What a numeric `select t, a, b` chooses between, as `(base, op, K, when)`: the result is
/// `base op K` when `t` is `when` and `base` otherwise (two constants: the smaller plus the
/// difference). `K`
/// is a constant, or a value of at most [`MAX_STEP_BITS`] bits (`pos + 1 + (b & 1)`).
fn selected_step<'ctx>(
    select: InstructionValue<'ctx>,
) -> Option<(IntValue<'ctx>, InstructionOpcode, Step<'ctx>, bool)> {
    let (a, b) = (int_operand(select, 1)?, int_operand(select, 2)?);
    let width = a.get_type().get_bit_width();
    // `b + t·(a − b)`, or `a + ¬t·(b − a)`: the smaller constant plus a non-negative multiple of
    // the truth, a range the verifier can add to a pointer. (`b ^ t·(a ^ b)` with `a` negative
    // scales by a negative number, which leaves the verifier no bound: a walk back by `p - 3`
    // on some rounds was refused.)
    if let (Some(x), Some(y)) = (
        a.get_sign_extended_constant(),
        b.get_sign_extended_constant(),
    ) {
        let apart = |hi: i64, lo: i64| (i128::from(hi) - i128::from(lo)) as u64;
        return Some(if x >= y {
            (b, InstructionOpcode::Add, Step::Constant(apart(x, y)), true)
        } else {
            (
                a,
                InstructionOpcode::Add,
                Step::Constant(apart(y, x)),
                false,
            )
        });
    }
    let stepped = |v: IntValue<'ctx>, base: IntValue<'ctx>| {
        let i = v.as_instruction()?;
        let op = i.get_opcode();
        let from_base = int_operand(i, 0) == Some(base);
        let k = int_operand(i, 1)?;
        let (op, k) = match k.get_zero_extended_constant() {
            // (`base + −3` is `base − 3`: scaled by a negative number the step has no bound.)
            Some(c) => match op {
                InstructionOpcode::Add | InstructionOpcode::Sub if negative(c, width) => {
                    let flipped = match op {
                        InstructionOpcode::Add => InstructionOpcode::Sub,
                        _ => InstructionOpcode::Add,
                    };
                    (flipped, Step::Constant(c.wrapping_neg() & mask(width)))
                }
                _ => (op, Step::Constant(c)),
            },
            // (Added or taken away only: scaled by 0 or 1, a small value stays small.)
            None if matches!(op, InstructionOpcode::Add | InstructionOpcode::Sub)
                && value_bits(k, 8) <= MAX_STEP_BITS =>
            {
                (op, Step::Value(k, 0))
            }
            None => return None,
        };
        // `(base + c) + k`, as LLVM reassociates `base + c + k`: the step is `c + k`.
        if op == InstructionOpcode::Add && !from_base {
            let inner = int_operand(i, 0)?.as_instruction()?;
            let c = int_operand(inner, 1)?.get_zero_extended_constant()?;
            let ok = inner.get_opcode() == InstructionOpcode::Add
                && int_operand(inner, 0) == Some(base)
                && matches!(k, Step::Value(..));
            return match k {
                Step::Value(k, 0) if ok => Some((op, Step::Value(k, c))),
                _ => None,
            };
        }
        (from_base
            && matches!(
                op,
                InstructionOpcode::Add
                    | InstructionOpcode::Sub
                    | InstructionOpcode::Or
                    | InstructionOpcode::Xor
            ))
        .then_some((op, k))
    };
    if let Some((op, k)) = stepped(a, b) {
        return Some((b, op, k, true));
    }
    let (op, k) = stepped(b, a)?;
    Some((a, op, k, false))
}

/// Whether constant `c` of a `width`-bit type is negative as a signed number.
fn negative(c: u64, width: u32) -> bool {
    width > 0 && width <= 64 && (c >> (width - 1)) & 1 == 1
}

/// The low `width` bits set.
fn mask(width: u32) -> u64 {
    u64::MAX >> (64 - width.clamp(1, 64))
}

/// A variable step this narrow is scaled by a truth value with a multiply.
const MAX_STEP_BITS: u32 = 16;

/// What a numeric `select` adds to its base when it takes the step.
#[derive(Clone, Copy)]
enum Step<'ctx> {
    Constant(u64),
    /// A value plus a constant.
    Value(IntValue<'ctx>, u64),
}

/// Whether `v`, a truth value, is a comparison of a number with a constant both below 2³¹ (or
/// an and, or, xor of such).
fn computable(i: InstructionValue<'_>, depth: u32) -> bool {
    use IntPredicate::*;
    match i.get_opcode() {
        InstructionOpcode::ICmp => {
            let (Some(x), Some(c)) = (int_operand(i, 0), int_operand(i, 1)) else {
                return false;
            };
            // (An equality is computed on 64 bits when the number may use all 32.)
            let equality = matches!(i.get_icmp_predicate(), Some(EQ | NE));
            let max_bits = if equality { 32 } else { MAX_SIGNED_BITS };
            matches!(
                i.get_icmp_predicate(),
                Some(ULT | ULE | UGT | UGE | EQ | NE)
            ) && x.get_zero_extended_constant().is_none()
                && value_bits(x, 8) <= max_bits
                && c.get_zero_extended_constant().is_some_and(|c| {
                    c < 1 << MAX_SIGNED_BITS && (c > 0 || i.get_icmp_predicate() != Some(UGE))
                })
        }
        InstructionOpcode::And | InstructionOpcode::Or | InstructionOpcode::Xor => {
            depth > 0
                && (0..2).all(|k| {
                    int_operand(i, k)
                        .and_then(|v| v.as_instruction())
                        .is_some_and(|o| computable(o, depth - 1))
                })
        }
        _ => false,
    }
}

/// The truth value `i` (see [`computable`]) as a 32-bit 0 or 1: `x < C` is the sign of `x − C`,
/// `x > C` of `C − x`, `x == C` of `(x ^ C) − 1` and `x != C` of `−(x ^ C)`, each `>> 31`.
fn truth<'ctx>(builder: &Builder<'ctx>, i: InstructionValue<'ctx>) -> Option<IntValue<'ctx>> {
    let i32_ty = int_operand(i, 0)?.get_type().get_context().i32_type();
    let constant = |v: u64| i32_ty.const_int(v, false);
    if i.get_opcode() != InstructionOpcode::ICmp {
        let (a, b) = (
            int_operand(i, 0)?.as_instruction()?,
            int_operand(i, 1)?.as_instruction()?,
        );
        let (a, b) = (truth(builder, a)?, truth(builder, b)?);
        return match i.get_opcode() {
            InstructionOpcode::And => builder.build_and(a, b, "").ok(),
            InstructionOpcode::Or => builder.build_or(a, b, "").ok(),
            _ => builder.build_xor(a, b, "").ok(),
        };
    }
    let c = int_operand(i, 1)?.get_zero_extended_constant()?;
    let wide = value_bits(int_operand(i, 0)?, 8) > MAX_SIGNED_BITS;
    if wide {
        // `x == C` as the sign of `(x ^ C) − 1` on 64 bits, `x != C` of `−(x ^ C)`.
        let i64_ty = i32_ty.get_context().i64_type();
        let x = resize(builder, int_operand(i, 0)?, i64_ty)?;
        let xor = builder.build_xor(x, i64_ty.const_int(c, false), "").ok()?;
        let (minuend, subtrahend) = match i.get_icmp_predicate()? {
            IntPredicate::EQ => (xor, i64_ty.const_int(1, false)),
            IntPredicate::NE => (i64_ty.const_zero(), xor),
            _ => return None,
        };
        let difference = builder.build_int_sub(minuend, subtrahend, "").ok()?;
        let sign = builder
            .build_right_shift(difference, i64_ty.const_int(63, false), false, "")
            .ok()?;
        return resize(builder, sign, i32_ty);
    }
    let x = resize(builder, int_operand(i, 0)?, i32_ty)?;
    let (minuend, subtrahend) = match i.get_icmp_predicate()? {
        IntPredicate::ULT => (x, constant(c)),
        IntPredicate::ULE => (x, constant(c + 1)),
        IntPredicate::UGT => (constant(c), x),
        IntPredicate::UGE => (constant(c.checked_sub(1)?), x),
        IntPredicate::EQ => (builder.build_xor(x, constant(c), "").ok()?, constant(1)),
        IntPredicate::NE => (constant(0), builder.build_xor(x, constant(c), "").ok()?),
        _ => return None,
    };
    let difference = builder.build_int_sub(minuend, subtrahend, "").ok()?;
    builder
        .build_right_shift(difference, constant(31), false, "truth")
        .ok()
}

/// Replaces each numeric use of truth value `t` with arithmetic on it: a `zext` by the 0 or 1
/// itself, a `select` of `base` or `base op K` by `base op (taken * K)`, `taken` 1 exactly when
/// the select would pick the step.
fn compute_counted<'ctx>(builder: &Builder<'ctx>, t: InstructionValue<'ctx>) {
    let Some(next) = t.get_next_instruction() else {
        return;
    };
    builder.position_before(&next);
    let Some(truth) = truth(builder, t) else {
        return;
    };
    for number in users_of_result(t) {
        builder.position_before(&number);
        let ty = number.get_type().into_int_type();
        let computed = (|| -> Option<IntValue<'ctx>> {
            let truth = resize(builder, truth, ty)?;
            if number.get_opcode() == InstructionOpcode::ZExt {
                return Some(truth);
            }
            let (base, op, k, when) = selected_step(number)?;
            // 1 when the step is taken: the truth, or its negation when taken on false.
            let taken = if when {
                truth
            } else {
                builder.build_xor(truth, ty.const_int(1, false), "").ok()?
            };
            // Scaled, not masked: `−taken & K` would become `(x s>> 31) & K`, a register the
            // verifier knows as -1 or 0 and then forks on.
            let step = match k {
                Step::Constant(k) if k.is_power_of_two() => {
                    let shift = ty.const_int(u64::from(k.trailing_zeros()), false);
                    builder.build_left_shift(taken, shift, "").ok()?
                }
                Step::Constant(k) => builder
                    .build_int_mul(taken, ty.const_int(k, false), "")
                    .ok()?,
                Step::Value(k, 0) => builder.build_int_mul(taken, k, "").ok()?,
                Step::Value(k, c) => {
                    let k = builder
                        .build_int_add(k, k.get_type().const_int(c, false), "")
                        .ok()?;
                    builder.build_int_mul(taken, k, "").ok()?
                }
            };
            let adds = matches!(op, InstructionOpcode::Add | InstructionOpcode::Xor);
            if base.get_zero_extended_constant() == Some(0) && adds {
                return Some(step);
            }
            match op {
                InstructionOpcode::Add => builder.build_int_add(base, step, ""),
                InstructionOpcode::Sub => builder.build_int_sub(base, step, ""),
                InstructionOpcode::Or => builder.build_or(base, step, ""),
                _ => builder.build_xor(base, step, ""),
            }
            .ok()
        })();
        if let Some(computed) = computed {
            replace_all_uses(number, computed);
            // (the truth value's comparisons go with the last of them)
            erase_dead(number);
        }
    }
}

/// `v` zero-extended or truncated to `ty`.
fn resize<'ctx>(
    builder: &Builder<'ctx>,
    v: IntValue<'ctx>,
    ty: inkwell::types::IntType<'ctx>,
) -> Option<IntValue<'ctx>> {
    let (from, to) = (v.get_type().get_bit_width(), ty.get_bit_width());
    match from.cmp(&to) {
        std::cmp::Ordering::Equal => Some(v),
        std::cmp::Ordering::Less => builder.build_int_z_extend(v, ty, "").ok(),
        std::cmp::Ordering::Greater => builder.build_int_truncate(v, ty, "").ok(),
    }
}
