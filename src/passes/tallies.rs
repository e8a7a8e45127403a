//! Locals a loop tallies: what the rounds saw, gathered into one value (`seen = seen | bit`,
//! `number = number + delta`) that nothing needs the verifier to bound.
//!
//! Kept where the verifier tracks it, such a value is exact (or a range that grows) in every round
//! on every path, and once tested it is precise: no round starts in a state an earlier one covers.
//! `lower-loops` stores a tally 4 bytes into its word of a callback's context struct, where the
//! verifier keeps no value; `bound-loops` makes a loop that walks the packet a callback when it
//! tests a tally stepped by what it read (docs/language.md §14.4).

use super::loop_steps::{steps_by_constant, stores_of};
use super::value_bounds::{is_unsigned, loaded_local};
use crate::ir::{Module, OpId, Opcode, Value};
use std::collections::HashSet;

/// How loop `lp` uses a local it tallies.
pub(super) struct Tally {
    /// Some round steps it by a run-time amount (`number + delta`), not only by constants.
    pub by_run_time_amounts: bool,
    /// The loop compares it (`if (number == URI_PATH)`).
    pub tested: bool,
}

/// Local `local` as a tally of loop `lp`: an unsigned integer the loop writes only by stepping it
/// from itself (an add, or, or xor with it) and reads only to compare it, to store it outside the
/// function's locals, or to step it.
pub(super) fn tally(m: &Module, lp: OpId, local: Value) -> Option<Tally> {
    let stores = stores_of(m, lp, local);
    let unsigned = m.value_type(local).pointee().is_some_and(is_unsigned);
    let from_itself = |s: OpId| {
        let stepped = m.defining_op(m.op(s).operands[0]).map(|o| m.op(o));
        stepped.is_some_and(|d| {
            matches!(d.opcode, Opcode::CoreAdd | Opcode::CoreOr | Opcode::CoreXor)
                && d.operands
                    .iter()
                    .any(|&o| loaded_local(m, o) == Some(local))
        })
    };
    if !unsigned || stores.is_empty() || !stores.iter().all(|&s| from_itself(s)) {
        return None;
    }
    let users = m.users_within(lp);
    let mut work: Vec<Value> = m
        .collect_nested(lp, |d| {
            d.opcode == Opcode::CoreLoad && d.operands[0] == local
        })
        .into_iter()
        .flat_map(|l| m.op(l).results.clone())
        .collect();
    let mut seen: HashSet<Value> = work.iter().copied().collect();
    let mut tested = false;
    while let Some(v) = work.pop() {
        for &u in users.get(&v).into_iter().flatten() {
            let d = m.op(u);
            match d.opcode {
                Opcode::CoreCmp => tested = true,
                Opcode::CoreStore
                    if d.operands[0] == v
                        && (d.operands[1] == local || !m.is_local(d.operands[1])) => {}
                Opcode::CoreAdd
                | Opcode::CoreSub
                | Opcode::CoreOr
                | Opcode::CoreAnd
                | Opcode::CoreXor
                | Opcode::CoreCast => {
                    work.extend(d.results.iter().copied().filter(|&r| seen.insert(r)));
                }
                _ => return None,
            }
        }
    }
    Some(Tally {
        by_run_time_amounts: !stores.iter().all(|&s| steps_by_constant(m, s, local)),
        tested,
    })
}
