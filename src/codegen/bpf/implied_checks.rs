//! A packet test that an earlier test of the same pointer implies is decided.
//!
//! `if (data + 34 > data_end) { return }` and then a loop over the header's words: each read in
//! the loop has a variable offset, so `bounds-check` checks it (the verifier forgets a packet
//! pointer's range once a variable is added to it). LLVM then unrolls the loop, and each check
//! becomes `data + c > data_end` with a constant `c` the first test already covers. C's clang
//! folds such tests with ConstraintElimination, which reasons about `inbounds` GEPs only; ksc's
//! packet GEPs are not `inbounds` (a pointer past the frame's end is ordinary in packet code and
//! must not be poison), so each check stayed, a compare and a branch, and the reads it guarded
//! were kept in order behind it.
//!
//! After LLVM's pipeline, in a program where nothing moves the packet, a test of `P + k` against
//! the packet's end is decided where a test of `P + K` (the same pointer `P` formed from
//! `ctx->data`, `K >= k`) has already shown `P + K <= data_end`: on every path through the edge
//! that test left by, which must be its target's only way in. The verifier knows the same: the
//! first test gave `P`'s register a range of `K` bytes, which covers the reads the second one
//! guarded, as long as the range is one it records (at most 0xffff bytes). `P` is the one SSA
//! value, so one register: a new read of `ctx->data` would start with no range at all, and
//! `packet_fields` (run first) has already made dominated reads one.
//!
//! The `select`s, `or`s and `and`s the decided tests feed are folded here; a conditional branch
//! left on a constant becomes a jump in CodeGenPrepare, which deletes the blocks no longer
//! reached.

use super::llvm_ir::{
    bool_constant, byte_gep, constant_base, erase_all_dead, erase_dead, instructions,
    pointer_operand, predecessors, replace_all_uses, upper_bound, Dominators,
};
use super::packet_fields::programs_keeping_packet;
use inkwell::basic_block::BasicBlock;
use inkwell::module::Module;
use inkwell::values::{
    AsValueRef, BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue, IntValue,
    PointerValue,
};
use inkwell::IntPredicate;
use std::collections::HashMap;

/// The verifier records a packet range only up to this many bytes (MAX_PACKET_OFF).
const MAX_PACKET_RANGE: i64 = 0xffff;

pub fn fold_implied_checks(module: &Module) {
    for f in programs_keeping_packet(module) {
        fold_in(f);
    }
}

/// `base + bytes > end` (or its negation, where `outside_when_true` is false) for a packet
/// pointer `base` formed from `ctx->data`.
#[derive(Clone, Copy)]
struct PacketTest<'ctx> {
    base: PointerValue<'ctx>,
    end: PointerValue<'ctx>,
    bytes: i64,
    outside_when_true: bool,
}

/// `base + bytes <= end` holds in every block `from` dominates.
struct Proven<'ctx> {
    from: BasicBlock<'ctx>,
    base: PointerValue<'ctx>,
    end: PointerValue<'ctx>,
    bytes: i64,
}

fn fold_in(f: FunctionValue<'_>) {
    drop_covered_halves(f);
    let Some(dominators) = Dominators::of(f) else {
        return;
    };
    let proven = proven_on_edges(f);
    if proven.is_empty() {
        return;
    }
    let mut decided = Vec::new();
    for &b in dominators.blocks() {
        for i in instructions(b) {
            let Some(t) = packet_test(i) else {
                continue;
            };
            let covering = proven.iter().find(|p| {
                same_address(p.base, t.base, &dominators)
                    && p.end == t.end
                    && t.bytes <= p.bytes
                    && dominators.common(&[p.from, b]) == Some(p.from)
            });
            if let Some(p) = covering {
                decided.push((i, !t.outside_when_true, t.base, p.base));
            }
        }
    }
    if decided.is_empty() {
        return;
    }
    let bool_type = f.get_type().get_context().bool_type();
    // The reads a test guarded go through the pointer whose register holds the range: first,
    // while every re-formed pointer is still there (deciding a test erases what only it used).
    // (A chain of such pointers ends at the first, which is kept.)
    let formed_before: HashMap<_, _> = decided
        .iter()
        .filter(|&&(_, _, tested, proven)| tested != proven)
        .map(|&(_, _, tested, proven)| (tested, proven))
        .collect();
    for (&again, &earlier) in &formed_before {
        let mut first = earlier;
        while let Some(&p) = formed_before.get(&first) {
            first = p;
        }
        if let Some(i) = again.as_instruction() {
            replace_all_uses(i, first);
        }
    }
    for again in formed_before.keys().filter_map(|p| p.as_instruction()) {
        again.erase_from_basic_block();
    }
    let mut tests = Vec::new();
    for (test, value, _, _) in decided {
        replace_all_uses(test, bool_type.const_int(u64::from(value), false));
        tests.push(test);
    }
    erase_all_dead(&tests);
    fold_constant_logic(f);
}

/// What the conditional branches prove on the edges they leave by, where the edge's target has
/// no other way in.
fn proven_on_edges(f: FunctionValue<'_>) -> Vec<Proven<'_>> {
    let preds = predecessors(f);
    let mut proven = Vec::new();
    for b in f.get_basic_blocks() {
        let Some(br) = b.get_terminator() else {
            continue;
        };
        if br.get_opcode() != InstructionOpcode::Br || br.get_num_operands() != 3 {
            continue;
        }
        let Some(BasicValueEnum::IntValue(cond)) = br.get_operand(0).and_then(|o| o.value()) else {
            continue;
        };
        // (A conditional `br`'s operands are the condition, then the false and true targets.)
        let (Some(on_false), Some(on_true)) = (
            br.get_operand(1).and_then(|o| o.block()),
            br.get_operand(2).and_then(|o| o.block()),
        ) else {
            continue;
        };
        if on_false == on_true {
            continue;
        }
        for (target, outcome) in [(on_true, true), (on_false, false)] {
            if preds.get(&target).map_or(0, Vec::len) != 1 {
                continue;
            }
            let mut tests = Vec::new();
            tests_implied(cond, outcome, &mut tests);
            for t in tests {
                // Inside when the test's outcome says it is not outside.
                if t.outside_when_true != outcome && t.bytes <= MAX_PACKET_RANGE {
                    proven.push(Proven {
                        from: target,
                        base: t.base,
                        end: t.end,
                        bytes: t.bytes,
                    });
                }
            }
        }
    }
    proven
}

/// `P + 20 > end || P + 10 > end` is `P + 20 > end` (and `P + 20 <= end && P + 10 <= end` is
/// `P + 20 <= end`): LLVM joins a helper's test of bytes its caller's test covers with that
/// test when both end in one block, where no edge proves either before the other.
fn drop_covered_halves(f: FunctionValue<'_>) {
    for b in f.get_basic_blocks() {
        for i in instructions(b).collect::<Vec<_>>() {
            let operand = |k: u32| match i.get_operand(k).and_then(|o| o.value()) {
                Some(BasicValueEnum::IntValue(v)) => v.as_instruction(),
                _ => None,
            };
            // (Which outcome of the tests the instruction joins: `or`s join the outside ones.)
            let (a, b, outside) = match i.get_opcode() {
                InstructionOpcode::Or => (operand(0), operand(1), true),
                InstructionOpcode::And => (operand(0), operand(1), false),
                _ => continue,
            };
            let (Some(a), Some(b)) = (a, b) else {
                continue;
            };
            let (Some(x), Some(y)) = (packet_test(a), packet_test(b)) else {
                continue;
            };
            if x.base != y.base
                || x.end != y.end
                || x.outside_when_true != outside
                || y.outside_when_true != outside
            {
                continue;
            }
            let wider = if x.bytes >= y.bytes { a } else { b };
            replace_all_uses(i, wider);
            erase_dead(i);
        }
    }
}

/// The packet tests that have the outcome `outcome` wherever `cond` has it: `cond` itself, and
/// both sides of an `a || b` that is false or of an `a && b` that is true.
fn tests_implied<'ctx>(cond: IntValue<'ctx>, outcome: bool, out: &mut Vec<PacketTest<'ctx>>) {
    let Some(i) = cond.as_instruction() else {
        return;
    };
    if let Some(t) = packet_test(i) {
        out.push(t);
        return;
    }
    let operands = |k: u32| match i.get_operand(k).and_then(|o| o.value()) {
        Some(BasicValueEnum::IntValue(v)) => Some(v),
        _ => None,
    };
    let both = match (i.get_opcode(), outcome) {
        (InstructionOpcode::Or, false) | (InstructionOpcode::And, true) => {
            operands(0).zip(operands(1))
        }
        // `select a, true, b` is `a || b`, false when both are; `select a, b, false` is
        // `a && b`, true when both are.
        (InstructionOpcode::Select, false) if constant(operands(1)) == Some(true) => {
            operands(0).zip(operands(2))
        }
        (InstructionOpcode::Select, true) if constant(operands(2)) == Some(false) => {
            operands(0).zip(operands(1))
        }
        _ => None,
    };
    if let Some((a, b)) = both {
        tests_implied(a, outcome, out);
        tests_implied(b, outcome, out);
    }
}

/// `i` as a comparison of a packet pointer `ctx->data + k` with the packet's end.
fn packet_test(i: InstructionValue<'_>) -> Option<PacketTest<'_>> {
    if i.get_opcode() != InstructionOpcode::ICmp {
        return None;
    }
    let (l, r) = (pointer_operand(i, 0)?, pointer_operand(i, 1)?);
    let predicate = i.get_icmp_predicate()?;
    // The pointer is the side formed by adding bytes to a pointer made from an integer; the end
    // is such a pointer itself.
    let (pointer, end, predicate) = match (packet_offset(l), packet_offset(r)) {
        (Some((base, k)), None) if is_packet_start(r) => ((base, k), r, predicate),
        (None, Some((base, k))) if is_packet_start(l) => ((base, k), l, swapped(predicate)),
        _ => return None,
    };
    let (base, k) = pointer;
    let (bytes, outside_when_true) = match predicate {
        IntPredicate::UGT => (k, true),
        IntPredicate::UGE => (k + 1, true),
        IntPredicate::ULE => (k, false),
        IntPredicate::ULT => (k + 1, false),
        _ => return None,
    };
    Some(PacketTest {
        base,
        end,
        bytes,
        outside_when_true,
    })
}

/// Whether `a` and `b` are one address to the verifier once `b` is made `a`: the one SSA value,
/// or `b` the same variable step from the same pointer as `a`, which is formed before it (a
/// re-formed `data + off`, which to the verifier is a new pointer with no range of its own).
fn same_address<'ctx>(
    a: PointerValue<'ctx>,
    b: PointerValue<'ctx>,
    dominators: &Dominators<'ctx>,
) -> bool {
    if a == b {
        return true;
    }
    let (Some(x), Some(y)) = (a.as_instruction(), b.as_instruction()) else {
        return false;
    };
    let step = |i| byte_gep(i).map(|(p, o)| (p, o.as_value_ref()));
    step(x).is_some_and(|s| Some(s) == step(y)) && dominators.dominates_instruction(x, y)
}

/// `p` as a positive number of bytes past a packet pointer (see [`packet_pointer`]).
fn packet_offset(p: PointerValue<'_>) -> Option<(PointerValue<'_>, i64)> {
    let (base, k) = constant_base(p);
    let reach = packet_pointer(base)?;
    (k > 0
        && reach
            .checked_add(k.unsigned_abs())
            .is_some_and(|r| r <= MAX_PACKET_RANGE as u64))
    .then_some((base, k))
}

/// How far past `ctx->data` the packet pointer `p` may lie, where it is `ctx->data` itself (0)
/// or formed from it by steps whose bounds the definitions show. The verifier gives a tested
/// pointer a range only when its variable part and offset stay within 0xffff bytes.
fn packet_pointer(p: PointerValue<'_>) -> Option<u64> {
    if is_packet_start(p) {
        return Some(0);
    }
    let (from, step) = byte_gep(p.as_instruction()?)?;
    let (base, k) = constant_base(from);
    let k = u64::try_from(k).ok()?;
    packet_pointer(base)?
        .checked_add(k)?
        .checked_add(upper_bound(step)?)
}

/// A pointer made from an integer the program read: `ctx->data` or `ctx->data_end`.
fn is_packet_start(p: PointerValue<'_>) -> bool {
    p.as_instruction()
        .is_some_and(|i| i.get_opcode() == InstructionOpcode::IntToPtr)
}

/// The predicate with its operands swapped (`a < b` is `b > a`).
fn swapped(p: IntPredicate) -> IntPredicate {
    match p {
        IntPredicate::UGT => IntPredicate::ULT,
        IntPredicate::ULT => IntPredicate::UGT,
        IntPredicate::UGE => IntPredicate::ULE,
        IntPredicate::ULE => IntPredicate::UGE,
        other => other,
    }
}

/// A boolean constant's value.
fn constant(v: Option<IntValue<'_>>) -> Option<bool> {
    bool_constant(v?)
}

/// Folds the `select`s on a constant condition and the `or`s and `and`s of a constant boolean
/// that the decided tests leave, until none is left.
fn fold_constant_logic(f: FunctionValue<'_>) {
    loop {
        let mut changed = false;
        for b in f.get_basic_blocks() {
            for i in instructions(b).collect::<Vec<_>>() {
                if let Some(value) = folded(i) {
                    replace_all_uses(i, value);
                    erase_dead(i);
                    changed = true;
                }
            }
        }
        if !changed {
            return;
        }
    }
}

/// What `i` is, when it is a `select` on a constant or a boolean `or`/`and` with a constant.
fn folded(i: InstructionValue<'_>) -> Option<BasicValueEnum<'_>> {
    let operand = |k: u32| i.get_operand(k).and_then(|o| o.value());
    let int = |k: u32| match operand(k) {
        Some(BasicValueEnum::IntValue(v)) => Some(v),
        _ => None,
    };
    match i.get_opcode() {
        InstructionOpcode::Select => operand(if constant(int(0))? { 1 } else { 2 }),
        op @ (InstructionOpcode::Or | InstructionOpcode::And) => {
            let (which, c) = [(0, 1), (1, 0)]
                .into_iter()
                .find_map(|(k, other)| Some((other, constant(int(k))?)))?;
            // `x || true` and `x && false` are the constant; `x || false`, `x && true` are x.
            let absorbs = (op == InstructionOpcode::Or) == c;
            if absorbs {
                operand(1 - which)
            } else {
                operand(which)
            }
        }
        _ => None,
    }
}
