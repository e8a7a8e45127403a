//! Unsigned division and remainder by a divisor that may be zero, as the BPF instruction itself.
//!
//! KernelScript's rule for a zero divisor (x / 0 is 0, x % 0 is x, §6.4) is the eBPF ISA's own.
//! LLVM IR leaves division by zero undefined, so the shared layer divides by a safe divisor and
//! picks the defined result: `select(d == 0, 0, a / umax(d, 1))`. Where optimisation proves the
//! divisor non-zero (a preceding `if (d == 0) { return }`), that folds to LLVM's plain division,
//! which LLVM can still reason about (`a / d > 0` is `a >= d`). Where it cannot, the guard costs
//! six instructions and two branches, and the verifier walks both sides of each when the divisor
//! is unknown: a rate meter's `elapsed / tick` doubled the states of its refill. C's `a / b` is
//! one instruction, which already behaves as KernelScript says.
//!
//! So, after optimisation, each guarded division still there becomes that instruction, an inline
//! asm: the select and the division it picks from are exactly `a / d` with the ISA's rule. Any
//! other use of the guarded division, or a shape optimisation changed, is left as it is.

use super::llvm_ir::{
    calls_intrinsic, erase_all_dead, instructions, int_operand, pure_asm, replace_all_uses,
    users_of_result,
};
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{InstructionOpcode, InstructionValue, IntValue};
use inkwell::IntPredicate;

/// Rewrites every guarded unsigned division and remainder of `module` (see the module comment).
/// `alu32`: the CPU has 32-bit ALU instructions (v3 and up).
pub fn divide_in_instructions(module: &Module, alu32: bool) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            let divisions: Vec<_> = instructions(block)
                .filter(|i| {
                    matches!(
                        i.get_opcode(),
                        InstructionOpcode::UDiv | InstructionOpcode::URem
                    )
                })
                .collect();
            for division in divisions {
                rewrite(&builder, division, alu32);
            }
        }
    }
}

/// Replaces the selects that guard `division` by the instruction, then drops what is left unused.
fn rewrite(builder: &Builder<'_>, division: InstructionValue<'_>, alu32: bool) {
    let remainder = division.get_opcode() == InstructionOpcode::URem;
    let (Some(a), Some(safe)) = (int_operand(division, 0), int_operand(division, 1)) else {
        return;
    };
    let Some(d) = guarded_divisor(safe) else {
        return;
    };
    let guards: Vec<_> = users_of_result(division)
        .into_iter()
        .filter(|&s| picks_defined_result(s, division, a, d, remainder))
        .collect();
    if guards.is_empty() {
        return;
    }
    builder.position_before(&division);
    let Ok(isa) = build(builder, remainder, a, d, alu32) else {
        return;
    };
    // (Erasing the guards erases the division, and what only it used, too.)
    for &select in &guards {
        replace_all_uses(select, isa);
    }
    erase_all_dead(&guards);
}

/// `d` when `safe` is `umax(d, 1)` or `select(d == 0, 1, d)`: `d` with 0 replaced by 1.
fn guarded_divisor(safe: IntValue<'_>) -> Option<IntValue<'_>> {
    let i = safe.as_instruction()?;
    let is_one = |v: Option<IntValue>| v.and_then(|v| v.get_zero_extended_constant()) == Some(1);
    if calls_intrinsic(i, "llvm.umax") {
        let (x, y) = (int_operand(i, 0), int_operand(i, 1));
        return if is_one(y) {
            x
        } else if is_one(x) {
            y
        } else {
            None
        };
    }
    let (tested, on_zero, d) = zero_select(i)?;
    (is_one(Some(on_zero)) && zero_together(tested, d)).then_some(d)
}

/// Whether `x` is zero exactly when `y` is: the same value, or one is the other byte-swapped or
/// zero-extended (LLVM tests a big-endian field for zero before its swap).
fn zero_together<'ctx>(x: IntValue<'ctx>, y: IntValue<'ctx>) -> bool {
    let unwrapped = |v: IntValue<'ctx>| {
        let i = v.as_instruction()?;
        let keeps_zeroness =
            i.get_opcode() == InstructionOpcode::ZExt || calls_intrinsic(i, "llvm.bswap");
        keeps_zeroness.then(|| int_operand(i, 0)).flatten()
    };
    let origin = |mut v: IntValue<'ctx>| {
        while let Some(inner) = unwrapped(v) {
            v = inner;
        }
        v
    };
    origin(x) == origin(y)
}

/// Whether `select` is `select(d == 0, R, division)`, with R the ISA's result for a zero
/// divisor: 0 for a quotient, the dividend `a` for a remainder.
fn picks_defined_result<'ctx>(
    select: InstructionValue<'ctx>,
    division: InstructionValue<'ctx>,
    a: IntValue<'ctx>,
    d: IntValue<'ctx>,
    remainder: bool,
) -> bool {
    let Some((tested, on_zero, otherwise)) = zero_select(select) else {
        return false;
    };
    let defined = if remainder {
        on_zero == a
    } else {
        on_zero.get_zero_extended_constant() == Some(0)
    };
    zero_together(tested, d) && defined && otherwise.as_instruction() == Some(division)
}

/// `(x, on_zero, otherwise)` when `i` is `select(x == 0, on_zero, otherwise)` (or the same with
/// `x != 0` and the arms swapped).
fn zero_select(i: InstructionValue<'_>) -> Option<(IntValue<'_>, IntValue<'_>, IntValue<'_>)> {
    if i.get_opcode() != InstructionOpcode::Select {
        return None;
    }
    let test = int_operand(i, 0)?.as_instruction()?;
    if test.get_opcode() != InstructionOpcode::ICmp {
        return None;
    }
    let (x, zero) = (int_operand(test, 0)?, int_operand(test, 1)?);
    if zero.get_zero_extended_constant() != Some(0) {
        return None;
    }
    let (t, f) = (int_operand(i, 1)?, int_operand(i, 2)?);
    match test.get_icmp_predicate()? {
        IntPredicate::EQ => Some((x, t, f)),
        IntPredicate::NE => Some((x, f, t)),
        _ => None,
    }
}

/// `a / d` (`a % d`) as one BPF instruction. Operands narrower than a register are zero-extended
/// to 32 bits with alu32, else to 64, and the result truncated back.
fn build<'ctx>(
    builder: &Builder<'ctx>,
    remainder: bool,
    a: IntValue<'ctx>,
    d: IntValue<'ctx>,
    alu32: bool,
) -> Result<IntValue<'ctx>, String> {
    let e = |x: inkwell::builder::BuilderError| x.to_string();
    let ty = a.get_type();
    let ctx = ty.get_context();
    let bits = ty.get_bit_width();
    let (wide, constraint) = if bits <= 32 && alu32 {
        (ctx.i32_type(), "=w,0,w")
    } else {
        (ctx.i64_type(), "=r,0,r")
    };
    let extend = |v: IntValue<'ctx>| {
        if bits == wide.get_bit_width() {
            Ok(v)
        } else {
            builder.build_int_z_extend(v, wide, "").map_err(e)
        }
    };
    let (a, d) = (extend(a)?, extend(d)?);
    let text = if remainder { "$0 %= $2" } else { "$0 /= $2" };
    let q = pure_asm(builder, wide, text.into(), constraint, &[a, d], "")
        .ok_or("division asm without a result")?;
    if bits == wide.get_bit_width() {
        Ok(q)
    } else {
        builder.build_int_truncate(q, ty, "").map_err(e)
    }
}
