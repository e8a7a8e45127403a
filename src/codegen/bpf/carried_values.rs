//! Values a loop carries for later, and no check needs, go round through memory the verifier
//! does not track.
//!
//! A TCP options walk records what it saw: `seen |= SEEN_MSS`, `mss = …`, `wscale = …`, each on
//! some paths of the body, read after the loop by tests (`if ((seen & SEEN_MSS) != 0)`) and
//! stores. The verifier knows such a register exactly on every path, and the tests after the
//! loop make it precise, so no state at the loop's head with one set of options seen prunes one
//! with another: it follows every (round, offset, options seen) combination, past its
//! 1M-instruction limit (C written the same way fails alike). Nothing needs those values' bounds —
//! no pointer, index, size, return value or branch inside the loop reads them — so at the head
//! they are written 4 bytes into an 8-byte stack word and read back: the verifier keeps no value
//! of a store there, the register starts every round unknown, and states differing only in it
//! prune. The tests after the loop then follow both ways once, as they do for any packet value.
//!
//! Only a value of at most 32 bits that gathers what the rounds saw — the body steps it from
//! itself on some paths (`seen | SEEN_MSS`, `count + 1`) and not on others — is carried this
//! way: a value only set (`mss = …`) has two states at most, and hidden, the tests after the
//! loop would follow both ways even where it was never set. Runs after the pipeline.

use super::llvm_ir::{in_cycle, instructions, loop_of, phis_of, redirect_uses, users_of_result};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    BasicValue, BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue, IntValue,
    PhiValue, PointerValue,
};
use std::collections::HashSet;

pub(super) fn forget_carried_values(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        let mut word = None;
        for header in f.get_basic_blocks() {
            let carried: Vec<PhiValue> = phis_of(header)
                .into_iter()
                .filter(|&phi| is_carried(header, phi))
                .collect();
            if carried.is_empty() {
                continue;
            }
            if word.is_none() {
                word = scratch_word(&builder, f);
            }
            let Some(word) = word else {
                return;
            };
            let Some(at) = instructions(header).find(|i| i.get_opcode() != InstructionOpcode::Phi)
            else {
                continue;
            };
            for phi in carried {
                builder.position_before(&at);
                forget(&builder, word, phi);
            }
        }
    }
}

/// Whether `phi`, at loop header `header`, is a value the loop carries that nothing needs the
/// verifier to bound, and that rounds leave different on different paths.
fn is_carried(header: BasicBlock<'_>, phi: PhiValue<'_>) -> bool {
    let BasicValueEnum::IntValue(value) = phi.as_basic_value() else {
        return false;
    };
    if value.get_type().get_bit_width() > 32 {
        return false;
    }
    let body = loop_of(header);
    if body.is_empty() {
        return false;
    }
    let round_trip = (0..phi.count_incoming())
        .filter_map(|k| phi.get_incoming(k))
        .filter(|(_, from)| body.contains(from))
        .map(|(v, _)| v)
        .collect::<Vec<_>>();
    let varies = round_trip.iter().any(|v| accumulates(*v, phi));
    varies && tested_later(phi.as_instruction(), &body) == Some(true)
}

/// Whether `v` merges (through phis and selects) different values of which one at least is
/// computed from `phi` itself (`seen | SEEN_MSS` on one path, `seen` on another): a value that
/// gathers what the rounds saw, which multiplies the states a loop head holds with every round.
/// (A value only set, `mss = …`, has two states at most.)
fn accumulates(v: BasicValueEnum<'_>, phi: PhiValue<'_>) -> bool {
    let mut leaves = Vec::new();
    merged_values(v, phi, MERGE_DEPTH, &mut leaves);
    let from_phi = |o: &BasicValueEnum| {
        o.as_instruction_value().is_some_and(|d| {
            matches!(
                d.get_opcode(),
                InstructionOpcode::Or | InstructionOpcode::Add | InstructionOpcode::Xor
            ) && (0..2)
                .any(|k| d.get_operand(k).and_then(|x| x.value()) == Some(phi.as_basic_value()))
        })
    };
    leaves.windows(2).any(|w| w[0] != w[1]) && leaves.iter().any(from_phi)
}

/// How many merges deep [`merged_values`] looks.
const MERGE_DEPTH: u32 = 4;

/// The values the merges (phis, selects) that make `v` choose between, other than `phi`'s own
/// header value, which they pass on unchanged.
fn merged_values<'ctx>(
    v: BasicValueEnum<'ctx>,
    phi: PhiValue<'ctx>,
    depth: u32,
    out: &mut Vec<BasicValueEnum<'ctx>>,
) {
    let merge = v.as_instruction_value().filter(|i| {
        depth > 0
            && matches!(
                i.get_opcode(),
                InstructionOpcode::Phi | InstructionOpcode::Select
            )
    });
    let Some(i) = merge.filter(|&i| i != phi.as_instruction()) else {
        if !out.contains(&v) {
            out.push(v);
        }
        return;
    };
    let first = usize::from(i.get_opcode() == InstructionOpcode::Select) as u32;
    for k in first..i.get_num_operands() {
        if let Some(o) = i.get_operand(k).and_then(|o| o.value()) {
            merged_values(o, phi, depth - 1, out);
        }
    }
}

/// `None` unless every use of `value`, and of whatever is computed from it, only stores it or
/// tests it after the loop `body`: no address, index, call argument, return value, or test inside
/// a loop (one there may be what ends it). Then whether a test after the loop reads it: one
/// the verifier decides from a known value makes that value precise, and states at the loop's
/// head that differ in it no longer prune; a value only stored never is, and needs no hiding.
fn tested_later(value: InstructionValue<'_>, body: &HashSet<BasicBlock<'_>>) -> Option<bool> {
    use InstructionOpcode::*;
    let mut seen = HashSet::from([value]);
    let mut work = vec![value];
    let mut tested = false;
    while let Some(v) = work.pop() {
        for user in users_of_result(v) {
            // (In this loop, or any other: a later loop's test of it may be what ends that.)
            let inside = user
                .get_parent()
                .is_some_and(|b| body.contains(&b) || in_cycle(b));
            let test = match user.get_opcode() {
                Select => first_operand_is(user, v),
                ICmp | Switch => true,
                _ => false,
            };
            if test && inside {
                return None;
            }
            tested |= test;
            let onward = match user.get_opcode() {
                Phi | ZExt | SExt | Trunc | And | Or | Xor | Add | Sub | Mul | Shl | LShr
                | AShr | Freeze | Select => true,
                ICmp | Switch => false,
                Store if !second_operand_is(user, v) => false,
                _ => return None,
            };
            if onward && seen.insert(user) {
                work.push(user);
            }
        }
    }
    Some(tested)
}

fn first_operand_is(i: InstructionValue<'_>, v: InstructionValue<'_>) -> bool {
    i.get_operand(0)
        .and_then(|o| o.value())
        .and_then(|o| o.as_instruction_value())
        == Some(v)
}

fn second_operand_is(i: InstructionValue<'_>, v: InstructionValue<'_>) -> bool {
    i.get_operand(1)
        .and_then(|o| o.value())
        .and_then(|o| o.as_instruction_value())
        == Some(v)
}

/// Byte 4 of an 8-byte stack word of `f`, allocated at its entry.
fn scratch_word<'ctx>(
    builder: &Builder<'ctx>,
    f: FunctionValue<'ctx>,
) -> Option<PointerValue<'ctx>> {
    let entry = f.get_first_basic_block()?;
    match entry.get_first_instruction() {
        Some(first) => builder.position_before(&first),
        None => builder.position_at_end(entry),
    }
    let ctx = f.get_type().get_context();
    let whole = builder.build_alloca(ctx.i64_type(), "carried").ok()?;
    whole.as_instruction()?.set_alignment(8).ok()?;
    // SAFETY: byte 4 of an 8-byte slot.
    unsafe {
        builder.build_gep(
            ctx.i8_type(),
            whole,
            &[ctx.i64_type().const_int(4, false)],
            "carried.upper",
        )
    }
    .ok()
}

/// Writes `phi` to `word` and reads it back for every use.
fn forget<'ctx>(builder: &Builder<'ctx>, word: PointerValue<'ctx>, phi: PhiValue<'ctx>) {
    let value: IntValue = phi.as_basic_value().into_int_value();
    let users = users_of_result(phi.as_instruction());
    let i32_ty = value.get_type().get_context().i32_type();
    let narrow = value.get_type().get_bit_width() < 32;
    let built = (|| {
        let wide = match narrow {
            true => builder.build_int_z_extend(value, i32_ty, "").ok()?,
            false => value,
        };
        let store = builder.build_store(word, wide).ok()?;
        store.set_volatile(true).ok()?;
        store.set_alignment(4).ok()?;
        let back = builder.build_load(i32_ty, word, "carried").ok()?;
        let load = back.as_instruction_value()?;
        load.set_volatile(true).ok()?;
        load.set_alignment(4).ok()?;
        match narrow {
            true => builder
                .build_int_truncate(back.into_int_value(), value.get_type(), "")
                .ok(),
            false => Some(back.into_int_value()),
        }
    })();
    if let Some(hidden) = built {
        redirect_uses(&users, value.into(), hidden.into());
    }
}
