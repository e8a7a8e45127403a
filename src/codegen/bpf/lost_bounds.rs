//! Numbers keep the bounds older verifiers drop, where an address or a call needs them.
//!
//! Linux 6.1 and 6.12 (Debian's kernels) know nothing of a register after a byte swap (`be16`),
//! nor after an `or`, `xor`, multiplication or shift whose other operand is not a constant
//! (their ALU tracking gives up on all but add, sub and and). So `(p[4] << 8) | p[5]`, which
//! LLVM writes with `or` however the source spelled it (`* 256 +`), and the `be16` that reads
//! such a pair as one word are at most 0xffff to ksc and to the kernel of this machine, but
//! unbounded to those: added to a packet pointer, or passed as a helper's size, the value is
//! refused ("math between pkt pointer and register with unbounded min value"). Such a number
//! that reaches an address or a call is masked to the bits it can have (`& 0xffff`) right after
//! it is made, in an inline asm the back end cannot see is redundant; compares of it then bound
//! the masked register. Numbers only compared, or stored to the packet or a map, keep no mask.

use super::llvm_ir::{
    calls_intrinsic, erase_all_dead, instructions, int_operand, is_alloca, is_bpf_call,
    pointer_operand, pure_asm, redirect_uses, replace_all_uses, users, users_of_result,
};
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{AnyValue, BasicValue, InstructionOpcode, InstructionValue, IntValue};
use std::collections::HashSet;

pub(super) fn keep_lost_bounds(m: &Module<'_>) {
    let builder = m.get_context().create_builder();
    for f in m.get_functions() {
        for b in f.get_basic_blocks() {
            let made: Vec<(InstructionValue, u32)> = instructions(b)
                .filter_map(|i| Some((i, bounds_lost(i)?)))
                .collect();
            for (i, bits) in made {
                if i.get_opcode() == InstructionOpcode::Call {
                    mask_swap(&builder, i, bits);
                } else if reaches_range_use(i) {
                    mask(&builder, i, bits);
                }
            }
        }
    }
}

/// A 16-bit swap is a register only once zero-extended: when one of its extensions reaches a
/// range use, the swap is extended and masked once, right after it, and its extensions and
/// unsigned tests all take the masked register, so that a test (`if n < 300`, a table's
/// bound) bounds the register the address is formed from.
fn mask_swap<'ctx>(builder: &Builder<'ctx>, swap: InstructionValue<'ctx>, bits: u32) {
    use InstructionOpcode::{ICmp, ZExt};
    let users = users_of_result(swap);
    if !users
        .iter()
        .any(|&u| u.get_opcode() == ZExt && reaches_range_use(u))
    {
        return;
    }
    let (Ok(value), Some(next)) = (
        IntValue::try_from(swap.as_any_value_enum()),
        swap.get_next_instruction(),
    ) else {
        return;
    };
    let i64_ty = value.get_type().get_context().i64_type();
    builder.position_before(&next);
    let Some(wide) = builder
        .build_int_z_extend(value, i64_ty, "")
        .ok()
        .and_then(|w| w.as_instruction())
    else {
        return;
    };
    let Some(bounded) = mask(builder, wide, bits) else {
        return;
    };
    let mut replaced = Vec::new();
    for user in users {
        let replacement = match user.get_opcode() {
            ZExt => {
                let Ok(ext) = IntValue::try_from(user.as_any_value_enum()) else {
                    continue;
                };
                builder.position_before(&user);
                match ext.get_type().get_bit_width() {
                    64 => Some(bounded),
                    _ => builder.build_int_truncate(bounded, ext.get_type(), "").ok(),
                }
            }
            ICmp => unsigned_test_of(builder, user, value, bounded),
            _ => None,
        };
        if let Some(r) = replacement {
            replace_all_uses(user, r);
            replaced.push(user);
        }
    }
    erase_all_dead(&replaced);
}

/// `user`, an unsigned or equality test of `narrow` against a constant, made on `wide` (its
/// zero extension) instead.
fn unsigned_test_of<'ctx>(
    builder: &Builder<'ctx>,
    user: InstructionValue<'ctx>,
    narrow: IntValue<'ctx>,
    wide: IntValue<'ctx>,
) -> Option<IntValue<'ctx>> {
    use inkwell::IntPredicate::*;
    let pred = user.get_icmp_predicate()?;
    if !matches!(pred, EQ | NE | ULT | ULE | UGT | UGE) {
        return None;
    }
    let (l, r) = (int_operand(user, 0)?, int_operand(user, 1)?);
    let widen = |v: IntValue<'ctx>| match v == narrow {
        true => Some(wide),
        false => Some(
            wide.get_type()
                .const_int(v.get_zero_extended_constant()?, false),
        ),
    };
    builder.position_before(&user);
    builder
        .build_int_compare(pred, widen(l)?, widen(r)?, "")
        .ok()
}

/// The bits the result of `i` can have, when it is an operation whose bounds older verifiers
/// drop and it has fewer bits than its register.
fn bounds_lost(i: InstructionValue<'_>) -> Option<u32> {
    use InstructionOpcode::*;
    if calls_intrinsic(i, "llvm.bswap.i16") {
        return Some(16);
    }
    let unknown_operand = |k| int_operand(i, k).is_some_and(|v| !v.is_const());
    let lost = match i.get_opcode() {
        Or | Xor | Mul | Shl | LShr | AShr => unknown_operand(0) && unknown_operand(1),
        // An add of bits that cannot overlap (`b0 * 65536 + b1 * 256 + b2` unoptimised) the
        // back end selects as an `or`.
        Add => unknown_operand(0) && unknown_operand(1) && adds_disjoint_bits(i),
        _ => false,
    };
    if !lost {
        return None;
    }
    let v = IntValue::try_from(i.as_any_value_enum()).ok()?;
    let bits = value_bits(v, 8);
    (bits < v.get_type().get_bit_width()).then_some(bits)
}

/// Whether the two operands of add `i` have no bit both may set: one's low zero bits cover every
/// bit the other may have.
fn adds_disjoint_bits(i: InstructionValue<'_>) -> bool {
    let (Some(a), Some(b)) = (int_operand(i, 0), int_operand(i, 1)) else {
        return false;
    };
    value_bits(b, 8) <= low_zero_bits(a, 8) || value_bits(a, 8) <= low_zero_bits(b, 8)
}

/// How many low bits of `v` are known zero, as far as its definition shows.
fn low_zero_bits(v: IntValue<'_>, depth: u32) -> u32 {
    use InstructionOpcode::*;
    if let Some(c) = v.get_zero_extended_constant() {
        return c.trailing_zeros();
    }
    let Some(i) = v.as_instruction().filter(|_| depth > 0) else {
        return 0;
    };
    let operand = |k| int_operand(i, k).map_or(0, |x| low_zero_bits(x, depth - 1));
    let constant = |k| int_operand(i, k).and_then(|x| x.get_zero_extended_constant());
    let zeros = match i.get_opcode() {
        ZExt => operand(0),
        And => operand(0).max(operand(1)),
        Or | Xor | Add => operand(0).min(operand(1)),
        Mul => operand(0) + operand(1),
        Shl => constant(1).map_or(0, |c| operand(0) + c as u32),
        _ => 0,
    };
    zeros.min(v.get_type().get_bit_width())
}

/// How many low bits `v` can have set, as far as its definition shows (`depth` levels deep).
pub(super) fn value_bits(v: IntValue<'_>, depth: u32) -> u32 {
    use InstructionOpcode::*;
    let width = v.get_type().get_bit_width();
    if let Some(c) = v.get_zero_extended_constant() {
        return 64 - c.leading_zeros();
    }
    let Some(i) = v.as_instruction().filter(|_| depth > 0) else {
        return width;
    };
    let operand = |k| int_operand(i, k).map_or(width, |x| value_bits(x, depth - 1));
    let constant = |k| int_operand(i, k).and_then(|x| x.get_zero_extended_constant());
    let bits = match i.get_opcode() {
        Load => width,
        ZExt | Trunc => operand(0),
        And => operand(0).min(operand(1)),
        Or | Xor => operand(0).max(operand(1)),
        Add => operand(0).max(operand(1)) + 1,
        Shl => match constant(1) {
            Some(c) => operand(0) + c as u32,
            None => width,
        },
        Mul => operand(0) + operand(1),
        LShr => match constant(1) {
            Some(c) => operand(0).saturating_sub(c as u32),
            None => operand(0),
        },
        Call if calls_intrinsic(i, "llvm.bswap.i16") => 16,
        _ => width,
    };
    bits.min(width)
}

/// Whether `v`'s value flows, through arithmetic and stack slots, into something the verifier
/// needs bounded: an address, or a call's argument or result.
fn reaches_range_use(v: InstructionValue<'_>) -> bool {
    use InstructionOpcode::*;
    let mut seen = HashSet::new();
    let mut work = vec![v];
    while let Some(at) = work.pop() {
        if !seen.insert(at) {
            continue;
        }
        for user in users_of_result(at) {
            match user.get_opcode() {
                // A mask or a clamp to a constant bounds the value for the verifier too.
                And if has_constant_operand(user) => {}
                ZExt | SExt | Trunc | Add | Sub | Mul | Shl | LShr | AShr | And | Or | Xor
                | Select | Phi | Freeze => work.push(user),
                GetElementPtr | IntToPtr | Return => return true,
                // Through a stack slot (at -O0 every local is one): on with what reads it back.
                // (Helpers that take the slot, as a map key, need no bounds.)
                Store => {
                    let stored = user.get_operand(0).and_then(|o| o.value());
                    let stores_value = stored.and_then(|v| v.as_instruction_value()) == Some(at);
                    match pointer_operand(user, 1).filter(|&p| is_alloca(p)) {
                        Some(slot) if stores_value => work.extend(
                            users(slot)
                                .into_iter()
                                .filter(|u| u.get_opcode() == InstructionOpcode::Load),
                        ),
                        _ => {}
                    }
                }
                Call if calls_intrinsic(user, "llvm.umin") && has_constant_operand(user) => {}
                // Other intrinsics and empty asm pass the value on; BPF calls use it.
                Call if !is_bpf_call(user) => work.push(user),
                Call => return true,
                _ => {}
            }
        }
    }
    false
}

fn has_constant_operand(i: InstructionValue<'_>) -> bool {
    (0..i.get_num_operands()).any(|k| {
        i.get_operand(k)
            .and_then(|o| o.value())
            .is_some_and(|v| v.is_int_value() && v.into_int_value().is_const())
    })
}

/// Replaces the uses of `widened` by `widened & (2^bits - 1)`, computed by inline asm right
/// after it.
fn mask<'ctx>(
    builder: &Builder<'ctx>,
    widened: InstructionValue<'ctx>,
    bits: u32,
) -> Option<IntValue<'ctx>> {
    let value = IntValue::try_from(widened.as_any_value_enum()).ok()?;
    let next = widened.get_next_instruction()?;
    let ty = value.get_type();
    // (A mask past 31 bits is no immediate; such numbers are left as they are.)
    let constraint = match ty.get_bit_width() {
        64 if bits < 32 => "=r,0",
        32 if bits < 32 => "=w,0",
        _ => return None,
    };
    let text = format!("$0 &= {}", (1u64 << bits) - 1);
    let uses: Vec<InstructionValue> = users_of_result(widened);
    builder.position_before(&next);
    let bounded = pure_asm(builder, ty, text, constraint, &[value], "bounded")?;
    redirect_uses(
        &uses,
        value.as_basic_value_enum(),
        bounded.as_basic_value_enum(),
    );
    Some(bounded)
}
