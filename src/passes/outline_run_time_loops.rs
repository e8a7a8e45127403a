//! `outline-run-time-loops` (unoptimised builds only): a kernel `for` to a bound known only at
//! run time, nested in a loop of a constant count, becomes a `bpf_loop` callback when the nest
//! may go round more than [`NEST_ROUNDS`] times however small `bound-loops` could show the bound
//! to be (docs/language.md §14.4).
//!
//! Inline, the verifier follows such a loop once per count it can leave at, and the rounds of
//! the loop around it once per such exit unless their states prune against each other: the DNS
//! name filter's walk of 8 labels, each a loop to its length of up to 63, loaded at -O2 and, with
//! one more statement in the label loop, went past the 1M-instruction limit at -O0, where LLVM
//! keeps every value in a stack slot of its own and the states rarely meet. A callback's body is
//! verified once for every count (3,573 instructions). Unoptimised code is for debugging: it
//! trades the inline loop's speed for loading. A smaller nest stays inline: the payload matcher's
//! signature loop of up to 8 in a scan of up to 32 positions went past the limit as a callback.
//! Runs before `bound-loops`, which counts only the loops this pass leaves.

use super::lower_loops::{constant_trips, enclosing_loop};
use super::value_bounds::{CallBounds, LocalBounds};
use super::PassResult;
use crate::ir::{Attr, Module, Opcode};

/// The most rounds of a nest (the outer loop's count times the inner loop's largest bound) that
/// stays inline at -O0.
const NEST_ROUNDS: u128 = 256;

pub fn run(m: &mut Module) -> PassResult {
    let params = CallBounds::of_module(m);
    for f in super::kernel_funcs(m) {
        let bounds = LocalBounds::relational_of_function(m, f, &params);
        for lp in m.collect_nested(f, |d| d.opcode == Opcode::KsFor) {
            let hi = m.op(lp).operands[1];
            let outer = enclosing_loop(m, lp).filter(|&o| m.op(o).opcode == Opcode::KsFor);
            let Some(rounds) = outer.and_then(|o| constant_trips(m, o)) else {
                continue;
            };
            let Some(inner) = bounds.max_of(m, hi).filter(|_| m.const_int(hi).is_none()) else {
                continue;
            };
            if u128::try_from(rounds).is_ok_and(|r| r.saturating_mul(inner) > NEST_ROUNDS) {
                m.set_attr(lp, "outline", Some(Attr::Bool(true)));
            }
        }
    }
    Ok(())
}
