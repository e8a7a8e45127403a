//! `unroll-loops`: short counted loops in kernel functions are unrolled, as clang does for C.
//!
//! A `for` over constant bounds whose copies stay small — at most [`ALWAYS_UNROLL`] iterations,
//! or at most [`MAX_TRIP_COUNT`] when the copies together hold at most [`MAX_UNROLLED_OPS`] ops —
//! becomes one copy of its body per iteration, the counter a constant in each. Before
//! `bounds-check`, so that a packet access at `p + 8 + i` in the loop is an access at a constant
//! offset the user's `p + 40 > data_end` already proves (the verifier follows the loop with the
//! counter a constant too, but LLVM may turn the counter into a pointer it cannot bound), and the
//! verifier walks straight-line code instead of the loop's control.
//! A body that `continue`s or defers at its top level (each copy would have to run the defer at
//! its own end) stays a loop; so does one that `break`s, unless its copies together stay within
//! [`MAX_UNROLLED_OPS`] and carry no state from one iteration to the next: those copies go in one
//! iteration the breaks leave; one that first leaves at a count known only at run time
//! (`if (i >= n) { break }`) stays a loop, as clang keeps it. One that returns or throws early
//! stays a loop if its iterations go on by more than one path, writing state the next reads (a
//! header walk over several kinds of header); else it has its offsets' steps widened first
//! (`widen-loop-steps`), and its returning arms marked cold.

use super::lower_loops::enclosing_loop;
use super::value_bounds::CallBounds;
use super::{loop_steps, PassResult};
use crate::ir::{views, Attr, Module, OpId, Opcode, Value};
use crate::vocab::CmpPred;
use std::collections::HashMap;

/// Loops with at most this many iterations are unrolled whatever their size.
pub(super) const ALWAYS_UNROLL: i128 = 8;

/// Loops with more iterations than this stay loops.
const MAX_TRIP_COUNT: i128 = 32;

/// The most ops all copies of a longer loop's body may hold together.
const MAX_UNROLLED_OPS: i128 = 256;

pub fn run(m: &mut Module) -> PassResult {
    let mut calls = None;
    for f in super::kernel_funcs(m) {
        // Innermost first: an inner loop unrolled makes its outer one's body larger.
        let mut loops = m.collect_nested(f, |d| d.opcode == Opcode::KsFor);
        loops.reverse();
        for l in loops {
            unroll(m, f, l, &mut calls);
        }
    }
    Ok(())
}

/// Fully unrolls `lp` of `f` when its bounds are constants, its copies stay small and its body
/// allows. `calls` is computed for the first loop that returns early.
fn unroll(m: &mut Module, f: OpId, lp: OpId, calls: &mut Option<CallBounds>) {
    let o = m.op(lp).operands.clone();
    let (Some(lo), Some(hi)) = (m.const_int(o[0]), m.const_int(o[1])) else {
        return;
    };
    let trips = (hi - lo).max(0);
    let body_ops = ops_per_copy(m, lp);
    let small =
        trips <= ALWAYS_UNROLL || (trips <= MAX_TRIP_COUNT && trips * body_ops <= MAX_UNROLLED_OPS);
    if !small || m.op(lp).parent.is_none() {
        return;
    }
    let body = m.region(m.op(lp).regions[0]).blocks[0];
    let leaves_early = |opcode: Opcode| {
        m.collect_nested(lp, |d| d.opcode == opcode)
            .into_iter()
            .any(|x| enclosing_loop(m, x) == Some(lp))
    };
    let (breaks, continues) = (
        leaves_early(Opcode::KsBreak),
        leaves_early(Opcode::KsContinue),
    );
    let defers_or_leaves = m
        .block(body)
        .ops
        .iter()
        .any(|&x| m.op(x).opcode == Opcode::KsDefer || m.is_terminator(x));
    // (Copies that a break may leave unrun are unrolled only while they stay small together:
    // a header walk's copies would each hold a whole parser.)
    let small_together = trips * body_ops <= MAX_UNROLLED_OPS;
    // (A walk that returns or throws from its rounds and whose rounds go on by more than one
    // path, each carrying state of its own — a header of one kind or another — stays a loop
    // too: unrolled, the verifier follows every combination of paths through the copies (an
    // IPv6 extension-header walk of six rounds: 26k instructions unrolled, 5k as a loop); at a
    // loop's head it prunes the paths one round's state covers.)
    let returns = !m
        .collect_nested(lp, |d| {
            matches!(d.opcode, Opcode::KsReturn | Opcode::KsThrow)
        })
        .is_empty();
    if continues
        || defers_or_leaves
        || breaks && (!small_together || carries_state(m, lp) || counted_at_run_time(m, lp))
        || returns && forks_state(m, lp)
    {
        return;
    }
    if !m
        .collect_nested(lp, |d| d.opcode == Opcode::KsReturn)
        .is_empty()
    {
        let calls = calls.get_or_insert_with(|| CallBounds::of_module(m));
        loop_steps::widen_before_unrolling(m, f, lp, calls);
        mark_returns_cold(m, lp);
    }
    let ty = m.value_type(o[0]).clone();
    let arg = m.block(body).args.first().copied();
    let counter = arg.and_then(|a| counter_local(m, lp, a));
    let original = m.block(body).ops.clone();
    for i in lo..hi.max(lo) {
        let mut b = m.builder_before(lp);
        let k = b.core_const(i, ty.clone());
        let mut vmap: HashMap<Value, Value> = arg.map(|a| (a, k)).into_iter().collect();
        let mut copy = Vec::new();
        for &op in &original {
            let c = m.clone_op(op, &mut vmap);
            // A loop left by `break` keeps one iteration holding every copy, which the
            // breaks leave (as C's unrolled copies jump past the rest).
            match breaks {
                true => m.place_op(c, body, None),
                false => {
                    let (block, at) = m.position(lp).expect("placed");
                    m.place_op(c, block, Some(at));
                }
            }
            copy.push(c);
        }
        // The loop variable's reads in this copy are the copy's constant.
        if let Some(slot) = counter {
            for c in copy {
                let mut loads = m.collect_nested(c, |d| reads(d, slot));
                if reads(m.op(c), slot) {
                    loads.push(c);
                }
                for r in loads {
                    m.replace_op(r, &[k]);
                }
            }
        }
    }
    if !breaks {
        m.detach_op(lp);
        return;
    }
    for op in original {
        m.detach_op(op);
    }
    let mut b = m.builder_before(lp);
    let once = b.core_const(lo + 1, ty);
    m.op_mut(lp).operands[1] = once;
}

/// All copies but one go on past an early `return`, as LLVM assumes of a loop's exits: the arm
/// that returns is the cold one. Laid out after the straight path through the copies, as clang
/// lays out an unrolled C loop, it costs no taken jump per copy, and the verifier walks the copies
/// first and meets the exits last, when the state at their join covers theirs.
fn mark_returns_cold(m: &mut Module, lp: OpId) {
    let ifs = m.collect_nested(lp, |d| d.opcode == Opcode::KsIf);
    for i in ifs {
        if m.attr(i, "expect").is_some() {
            continue;
        }
        let arms = m.op(i).regions.clone();
        let returns = |r| m.region_ends_in(r, |o| o == Opcode::KsReturn);
        let likely = match (returns(arms[0]), returns(arms[1])) {
            (true, false) => false,
            (false, true) => true,
            _ => continue,
        };
        m.set_attr(i, "expect", Some(Attr::Bool(likely)));
    }
}

/// Whether an iteration of `lp` reads a local that an earlier one wrote (`off += 4`, a header
/// walk's state), besides the loop variable. Such a loop left by `break` stays a loop: its
/// copies would each carry the state on (C keeps a loop there too); a search whose iterations
/// stand alone (`if (types[i] == t)`) is unrolled.
fn carries_state(m: &Module, lp: OpId) -> bool {
    !carried_locals(m, lp).is_empty()
}

/// Whether a branch in `lp` (outside inner loops) goes on to the next iteration from both arms,
/// writing a carried local in one: the walk forks at each iteration, as a header walk does at
/// each kind of header.
fn forks_state(m: &Module, lp: OpId) -> bool {
    let carried = carried_locals(m, lp);
    let goes_on = |r| !m.region_ends_in(r, is_exit);
    m.collect_nested(lp, |d| d.opcode == Opcode::KsIf)
        .into_iter()
        .filter(|&i| enclosing_loop(m, i) == Some(lp))
        .any(|i| {
            let arms = &m.op(i).regions;
            arms.iter().all(|&r| goes_on(r))
                && m.collect_nested(i, |d| d.opcode == Opcode::CoreStore)
                    .into_iter()
                    .any(|st| carried.contains(&m.op(st).operands[1]))
        })
}

/// An op that leaves the rest of its region unrun.
fn is_exit(o: Opcode) -> bool {
    matches!(
        o,
        Opcode::KsReturn | Opcode::KsThrow | Opcode::KsBreak | Opcode::KsContinue
    )
}

/// The locals (besides the loop variable) an iteration of `lp` reads before writing them: what
/// an earlier iteration left there.
fn carried_locals(m: &Module, lp: OpId) -> std::collections::HashSet<Value> {
    let body = m.op(lp).regions[0];
    let arg = m.block(m.region(body).blocks[0]).args.first().copied();
    let counter = arg.and_then(|a| counter_local(m, lp, a));
    let ops = m.collect_nested(lp, |_| true);
    let stored: std::collections::HashSet<Value> = (ops.iter())
        .filter(|&&o| m.op(o).opcode == Opcode::CoreStore)
        .map(|&o| m.op(o).operands[1])
        .filter(|&slot| m.is_local(slot) && Some(slot) != counter)
        .collect();
    let mut written = std::collections::HashSet::new();
    let mut carried = std::collections::HashSet::new();
    for &o in &ops {
        let d = m.op(o);
        match d.opcode {
            Opcode::CoreStore => {
                written.insert(d.operands[1]);
            }
            Opcode::CoreLoad
                if stored.contains(&d.operands[0]) && !written.contains(&d.operands[0]) =>
            {
                carried.insert(d.operands[0]);
            }
            _ => {}
        }
    }
    carried
}

/// Whether `lp` opens with `if (i >= n) { break }`, `n` not a constant: a loop to a count known
/// at run time, capped by its constant bounds. Unrolled, each copy would pay that test as well as
/// its work, and most copies would go unrun; clang keeps such a loop a loop too.
fn counted_at_run_time(m: &Module, lp: OpId) -> bool {
    let body = m.region(m.op(lp).regions[0]).blocks[0];
    let Some(arg) = m.block(body).args.first().copied() else {
        return false;
    };
    let Some(&test) = (m.block(body).ops.iter()).find(|&&o| m.op(o).opcode == Opcode::KsIf) else {
        return false;
    };
    let d = m.op(test);
    let only_breaks = m
        .region(d.regions[0])
        .blocks
        .iter()
        .all(|&b| matches!(&m.block(b).ops[..], [x] if m.op(*x).opcode == Opcode::KsBreak));
    let Some(cmp) = m
        .defining_op(d.operands[0])
        .and_then(|o| views::CoreCmp::of(m, o))
    else {
        return false;
    };
    let (counter, limit) = match cmp.pred(m) {
        CmpPred::Ge | CmpPred::Gt => (cmp.lhs(m), cmp.rhs(m)),
        CmpPred::Le | CmpPred::Lt => (cmp.rhs(m), cmp.lhs(m)),
        CmpPred::Eq | CmpPred::Ne => return false,
    };
    let slot = counter_local(m, lp, arg);
    let is_counter = counter == arg
        || m.defining_op(counter)
            .is_some_and(|o| slot.is_some_and(|s| reads(m.op(o), s)));
    only_breaks && is_counter && m.const_int(limit).is_none()
}

/// The ops one copy of `lp`'s body keeps once its counter is a constant: not those that then
/// compute a constant, which LLVM folds — constants, the counter's reads, arithmetic and casts
/// of those, and reads of a constant string at such an index (`PATTERN[i]`, stored once at the
/// function's entry). A 24-round compare with a constant string keeps 8 of its 13 ops a round.
fn ops_per_copy(m: &Module, lp: OpId) -> i128 {
    let body = m.region(m.op(lp).regions[0]).blocks[0];
    let arg = m.block(body).args.first().copied();
    let counter = arg.and_then(|a| counter_local(m, lp, a));
    // Values the counter makes constant in each copy.
    let mut constant: std::collections::HashSet<Value> = arg.into_iter().collect();
    let mut folded = 0;
    for op in m.collect_nested(lp, |_| true) {
        let d = m.op(op);
        let of_constants = || d.operands.iter().all(|o| constant.contains(o));
        let folds = match d.opcode {
            Opcode::CoreConst => true,
            Opcode::CoreLoad => Some(d.operands[0]) == counter || constant.contains(&d.operands[0]),
            Opcode::CoreCast
            | Opcode::CoreAdd
            | Opcode::CoreSub
            | Opcode::CoreMul
            | Opcode::CoreAnd
            | Opcode::CoreOr
            | Opcode::CoreShl
            | Opcode::CoreShr => of_constants(),
            // (The address of a byte of a constant string: its read folds.)
            Opcode::KsIndexAddr | Opcode::CoreElemAddr => {
                constant_string(m, lp, d.operands[0]) && constant.contains(&d.operands[1])
            }
            _ => false,
        };
        if folds {
            folded += 1;
            constant.extend(d.results.iter().copied());
        }
    }
    m.collect_nested(lp, |_| true).len() as i128 - folded
}

/// `slot` is a local that only ever holds one constant string: its one store writes a
/// `core.string` and every other use reads it.
fn constant_string(m: &Module, lp: OpId, slot: Value) -> bool {
    let Some(local) = m.defining_op(slot) else {
        return false;
    };
    if m.op(local).opcode != Opcode::CoreLocal {
        return false;
    }
    let mut stores = 0;
    let mut only_strings = true;
    m.walk_nested(m.top_level_of(lp), &mut |user| {
        let d = m.op(user);
        if !d.operands.contains(&slot) {
            return;
        }
        match d.opcode {
            Opcode::CoreStore if d.operands[1] == slot => {
                stores += 1;
                only_strings &= m
                    .defining_op(d.operands[0])
                    .is_some_and(|v| m.op(v).opcode == Opcode::CoreString);
            }
            Opcode::CoreLoad | Opcode::KsIndexAddr | Opcode::CoreElemAddr
                if d.operands[0] == slot => {}
            _ => only_strings = false,
        }
    });
    stores == 1 && only_strings
}

fn reads(d: &crate::ir::OpData, slot: Value) -> bool {
    d.opcode == Opcode::CoreLoad && d.operands.first() == Some(&slot)
}

/// The local holding the loop variable: the body's first op stores the counter `arg` into it, and
/// nothing else in the function writes it or takes its address (only loads in the loop read it).
pub(super) fn counter_local(m: &Module, lp: OpId, arg: Value) -> Option<Value> {
    let body = m.region(m.op(lp).regions[0]).blocks[0];
    let first = *m.block(body).ops.first()?;
    let d = m.op(first);
    if d.opcode != Opcode::CoreStore || d.operands[0] != arg || !m.is_local(d.operands[1]) {
        return None;
    }
    let slot = d.operands[1];
    let mut only_reads = true;
    m.walk_nested(m.top_level_of(lp), &mut |o| {
        if o != first && m.op(o).operands.contains(&slot) {
            only_reads &= reads(m.op(o), slot) && m.is_nested_in(o, lp);
        }
    });
    only_reads.then_some(slot)
}
