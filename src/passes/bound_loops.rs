//! `bound-loops`: counted loops to a run-time bound stay inline when the bound is small
//! (docs/language.md §14.4).
//!
//! A loop from a constant, or from an unsigned run-time start (`for (j in start..n)`, at least
//! 0), to a run-time bound that is at most `INLINE_TRIP_COUNT` further — as after
//! `if (n > 64) { n = 64 }` — counts to that constant instead and leaves when the counter
//! reaches the run-time bound: the loop an expert writes for the verifier. It then stays inline
//! (one verifier-bounded iteration per step, its counter a bound `bounds-check` can use) instead
//! of becoming a `bpf_loop` callback called once per iteration. The bound comes from
//! [`LocalBounds`]: stores to locals and the comparisons that guard them. Such a loop whose
//! counter is only read as a distance from the bound (`buf[n - 1 - k]`) counts down instead
//! ([`reverse_walks`]).
//!
//! A counted `while` (`while (i < K)`, see [`while_trip_count`]) longer than that becomes
//! `for (_ in 0..K) { if (!cond) { break } body }`, so `lower-loops` makes it a `bpf_loop` as it
//! does a long `for`: as written the verifier would follow it iteration by iteration, and gives
//! up after 8192 jumps ("the sequence of 8193 jumps is too complex") or 1M instructions.
//!
//! It also marks the loops that walk memory (`walks` on `ks.for`, see [`walks_memory`]), which
//! `lower-loops` keeps counted for longer; the mark is made here, on the loops as written, so
//! every later pass asks the same question of the same answer.
//! Runs on structured kernel functions before `bounds-check` and `lower-loops`.

use super::endless_loops::{idle_continue, unending, IdleWayRound, Unending, FOLLOWED_ROUNDS};
use super::index_caps;
use super::loop_steps::{first_read, offset_varies_by_path};
use super::lower_loops::{constant_trips, INLINE_TRIP_COUNT, MAX_LOOP_TRIPS, TOO_MANY_TRIPS};
use super::packet_walk::{
    packet_walk_trips, walk_may_stall, walk_reads_on_the_way, walk_without_stop,
    walked_packet_locals, walks_both_ways, walks_pointer_back, MAX_PACKET_OFFSET,
};
use super::reverse_walks;
use super::run_time_counts::{self, run_time_count, RunTimeCount};
use super::tallies;
use super::value_bounds::{
    chain_terms, counted_while, in_nested_loop, int_max, is_unsigned, loaded_local, max_of,
    start_before, stored_values, sum_terms, widened_from, CallBounds, CountedWhile, Facts,
    LocalBounds,
};
use super::{PassError, PassResult};
use crate::diagnostics::Code;
use crate::ir::{views, Attr, Builder, Module, OpId, Opcode, Type, Value};
use crate::vocab::CmpPred;
use std::collections::HashSet;

pub fn run(m: &mut Module) -> PassResult {
    let funcs = super::kernel_funcs(m);
    let params = super::value_bounds::CallBounds::of_module(m);
    let mut errors = Vec::new();
    for f in funcs {
        count_long_whiles(m, f, &params, &mut errors);
        outline_two_way_walks(m, f);
        keep_constant_caps(m, f, &params);
        bound_run_time_trips(m, f, &params);
        for lp in m.collect_nested(f, |d| d.opcode == Opcode::KsFor) {
            if stays_counted(m, f, lp) {
                m.set_attr(lp, "walks", Some(Attr::Bool(true)));
            }
        }
        unmark_far_walks(m, f, &params);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A loop that moves a packet offset or pointer forward on some paths and back on others
/// (`pos + len` past an option, `pos - 1` over a NOP) is not one the verifier can follow inline:
/// every round's exact position on every path is a state of its own, and a 40-round options loop
/// went past the 1M-instruction limit. As a `bpf_loop` callback each round starts from a rebased
/// position the verifier checks once.
///
/// So is a walk that tests a tally it steps by what it read (`number = number + delta`, then
/// `if (number == URI_PATH)`, over CoAP options): inline, the tally's range after each round
/// depends on which paths the rounds took, and tested, it is precise, so the verifier pruned
/// none of those states (a 16-round walk went past 1M instructions); a callback's rounds start
/// with it hidden (`tallies`) and the walked offset rebased.
fn outline_two_way_walks(m: &mut Module, f: OpId) {
    for lp in m.collect_nested(f, |d| d.opcode == Opcode::KsFor) {
        let walked = walked_packet_locals(m, f, lp);
        let tests_tally = || {
            let written: HashSet<Value> = m
                .collect_nested(lp, |d| d.opcode == Opcode::CoreStore)
                .into_iter()
                .map(|s| m.op(s).operands[1])
                .filter(|&slot| m.is_local(slot) && walked.iter().all(|w| w.slot != slot))
                .collect();
            written.into_iter().any(|slot| {
                tallies::tally(m, lp, slot).is_some_and(|t| t.by_run_time_amounts && t.tested)
            })
        };
        // (Unless every walked offset starts each round masked, which the tally's range then
        // follows: inline, the verifier prunes those rounds too.)
        let masked = || {
            let locals: Vec<Value> = walked.iter().map(|w| w.slot).collect();
            super::loop_steps::masks_every_round(m, f, lp, &locals)
        };
        if walked.iter().any(|w| w.defeats_pruning(m, lp))
            || !walked.is_empty() && tests_tally() && !masked()
        {
            m.set_attr(lp, "outline", Some(Attr::Bool(true)));
        }
    }
}

/// A counted loop's test of its counter against a run-time value (`if (j >= len) { break }` in
/// `for (j in 0..63)`) compares a copy of the value made before the loop, opaque and masked with
/// the all-ones value over its bound there (the same number). LLVM, knowing from a test before
/// the loop that `len` is at most 63, drops the loop's own cap as implied; the verifier, whose
/// register of `len` that test may not have narrowed (LLVM widens a byte once per use), then
/// followed the loop as far as `len`'s type allows: 255 rounds a label, and a walk of 8 labels
/// went past its 1M-instruction limit. Masked, the register compared holds the bound itself. A
/// copy also keeps the tests that leave the loop from narrowing `len` to one value per round.
fn keep_constant_caps(m: &mut Module, f: OpId, params: &CallBounds) {
    let bounds = LocalBounds::of_function(m, f, params);
    for lp in m.collect_nested(f, |d| d.opcode == Opcode::KsFor) {
        let Some(cap) = m
            .const_int(m.op(lp).operands[1])
            .and_then(|c| u128::try_from(c).ok())
        else {
            continue;
        };
        if constant_trips(m, lp).is_none() {
            continue;
        }
        let body = m.region(m.op(lp).regions[0]).blocks[0];
        let Some(&counter) = m.block(body).args.first() else {
            continue;
        };
        let slot = super::unroll_loops::counter_local(m, lp, counter);
        let reads_counter = |v: Value| {
            let v = widened_from(m, v);
            v == counter || slot.is_some() && loaded_local(m, v) == slot
        };
        let mut tests = Vec::new();
        for cmp in m.collect_nested(lp, |d| d.opcode == Opcode::CoreCmp) {
            let [a, b] = m.op(cmp).operands[..] else {
                continue;
            };
            let other = match (reads_counter(a), reads_counter(b)) {
                (true, false) => 1,
                (false, true) => 0,
                _ => continue,
            };
            let bound = m.op(cmp).operands[other];
            // (Only where the test before makes the cap look implied: above it, LLVM keeps it.)
            let tested = bounds
                .tested_max(m, lp, bound)
                .filter(|&max| max <= cap && int_max(m.value_type(bound)).is_some_and(|t| max < t));
            if let Some(max) = tested.filter(|_| {
                m.const_int(bound).is_none()
                    && !in_nested_loop(m, cmp, lp)
                    && loop_invariant(m, lp, bound)
            }) {
                tests.push((cmp, other, max));
            }
        }
        let mut copies = std::collections::HashMap::new();
        for (cmp, other, max) in tests {
            let bound = m.op(cmp).operands[other];
            let ty = m.value_type(bound).clone();
            let early = run_time_counts::hoisted(m, lp, bound, &mut copies);
            let mut b = m.builder_before(lp);
            let hidden = b.bpf_opaque(early);
            let all_ones = (max + 1).next_power_of_two() - 1;
            let mask = b.core_const(all_ones as i128, ty);
            let masked = b.core_and(hidden, mask);
            m.op_mut(cmp).operands[other] = masked;
        }
    }
}

/// Whether `v` has one value throughout loop `lp`: defined before it, or computed inside by pure
/// ops from such values and from locals `lp` never writes.
fn loop_invariant(m: &Module, lp: OpId, v: Value) -> bool {
    if !m.defined_within(v, lp) {
        return true;
    }
    let Some(op) = m.defining_op(v) else {
        return false;
    };
    let d = m.op(op);
    match d.opcode {
        Opcode::CoreLoad if m.is_local(d.operands[0]) => {
            let slot = d.operands[0];
            m.collect_nested(lp, |x| {
                x.opcode == Opcode::CoreStore && x.operands[1] == slot
            })
            .is_empty()
                && super::value_bounds::tracked_locals(m, m.top_level_of(lp)).contains(&slot)
        }
        _ if d.opcode.has(crate::ir::Traits::PURE) && d.regions.is_empty() => {
            d.operands.iter().all(|&o| loop_invariant(m, lp, o))
        }
        _ => false,
    }
}

fn bound_run_time_trips(m: &mut Module, f: OpId, params: &super::value_bounds::CallBounds) {
    // The cap is ksc's to enforce (the verifier bounds the counter by the constant it counts
    // to), so bounds the verifier would not learn serve as well.
    let bounds = LocalBounds::relational_of_function(m, f, params);
    for lp in m.collect_nested(f, |d| d.opcode == Opcode::KsFor) {
        let (lo, hi) = (m.op(lp).operands[0], m.op(lp).operands[1]);
        // An unsigned run-time start is at least 0: the loop runs at most as often as from 0.
        let run_time_start = m.const_int(lo).is_none();
        let lo_value = match m.const_int(lo) {
            Some(lo) => lo,
            None if is_unsigned(m.value_type(lo)) => 0,
            None => continue,
        };
        let near = |max: u128| i128::try_from(max).is_ok_and(|x| x - lo_value <= INLINE_TRIP_COUNT);
        // (An unsigned difference's own bound is its type's top; its terms' may be less.)
        let bound = match bounds.max_of(m, hi) {
            Some(max) if near(max) => Some(RunTimeBound {
                max,
                wraps_past: None,
            }),
            _ => difference_max(m, &bounds, lp, hi),
        };
        // Failing those, an index check of the counter may end every run before the bound.
        let by_index = match &bound {
            Some(b) if near(b.max) => None,
            _ => index_caps::last_round(m, lp),
        };
        let (max, wraps_past) = match (by_index, bound) {
            (Some(last), _) => (last + 1, None),
            (None, Some(RunTimeBound { max, wraps_past })) => match i128::try_from(max) {
                Ok(max) => (max, wraps_past),
                Err(_) => continue,
            },
            (None, None) => continue,
        };
        // A difference that may wrap counts inline only if every wrapped value is one the
        // `bpf_loop` lowering would abort on (more than its limit), so both behave alike.
        let aborts_when_wrapped = |least: u128| {
            i128::try_from(least).is_ok_and(|least| least - lo_value > MAX_LOOP_TRIPS)
        };
        // (From a run-time start, `bpf_loop` runs `hi - lo` times, which need not be too many
        // when `hi` wrapped: the two would differ.)
        if wraps_past.is_some_and(|least| run_time_start || !aborts_when_wrapped(least)) {
            continue;
        }
        let body = m.region(m.op(lp).regions[0]).blocks[0];
        let counter = m.block(body).args.first().copied();
        let ty = m.value_type(hi).clone();
        let same_type = counter.is_some_and(|c| *m.value_type(c) == ty);
        if m.const_int(hi).is_some() || max - lo_value > INLINE_TRIP_COUNT || !same_type {
            continue;
        }
        if m.attr(lp, "outline") == Some(&Attr::Bool(true)) {
            continue;
        }
        // (Past the last round a check ends, the run-time bound may be anything.)
        if wraps_past.is_none() && by_index.is_none() && reverse_walks::count_down(m, f, lp, max) {
            continue;
        }
        let mut b = m.builder_before(lp);
        let limit = b.core_const(max.max(lo_value), ty.clone());
        if wraps_past.is_some() {
            let wrapped = b.core_cmp(hi, limit, CmpPred::Gt);
            let check = b.ks_if(wrapped, None, &[]);
            b.set_block(b.entry(check, 0));
            b.ks_abort(TOO_MANY_TRIPS.to_vec());
        }
        m.op_mut(lp).operands[1] = limit;
        let hi = match by_index.is_none() && bounded_only_by_tests(m, params, hi, max) {
            true => saturate_opaquely(m, lp, hi, max, ty),
            false => hi,
        };
        let loc = m.op(lp).loc;
        let mut b = Builder::new(m, body);
        b.at = Some(0);
        b.loc = loc;
        let reached = b.core_cmp(counter.expect("checked"), hi, CmpPred::Ge);
        let guard = b.ks_if(reached, None, &[]);
        let then = b.entry(guard, 0);
        b.set_block(then);
        b.ks_break();
    }
}

/// Whether the run-time bound `hi` is at most `max` only by the tests that guard the loop (a
/// value written once, `var n = read(…)`, then `if (n > 20) { throw … }`): its own expression,
/// or the returns of the function computing it, allow more.
fn bounded_only_by_tests(m: &Module, calls: &CallBounds, hi: Value, max: i128) -> bool {
    let own = |v: Value| {
        let facts = ExpressionBounds { calls };
        super::value_bounds::max_of(m, v, &facts, EXPRESSION_DEPTH)
    };
    let exceeds = |v: Value| own(v).is_none_or(|b| i128::try_from(b).map_or(true, |b| b > max));
    match loaded_local(m, hi).and_then(|slot| super::value_bounds::stored_values(m, slot)) {
        Some(stored) => matches!(stored[..], [v] if exceeds(v)),
        None => exceeds(hi),
    }
}

/// How many locals deep [`ExpressionBounds`] follows a value's stores.
const EXPRESSION_DEPTH: u32 = 4;

/// The bound of a value's own expression, through the locals it reads (every value stored into
/// each: `var ihl = b & 0x0f` then `var words = ihl * 2`), but not through the tests that guard
/// them.
struct ExpressionBounds<'a> {
    calls: &'a CallBounds,
}

impl Facts for ExpressionBounds<'_> {
    fn opaque_max(&self, m: &Module, v: Value, depth: u32) -> Option<u128> {
        match loaded_local(m, v).filter(|_| depth > 0) {
            Some(slot) => stored_values(m, slot)?
                .into_iter()
                .try_fold(0, |max, s| Some(max.max(max_of(m, s, self, depth - 1)?))),
            None => self.calls.opaque_max(m, v, depth),
        }
    }
}

/// The counter of loop `lp` leaves at `hi` saturated at `max`, a value it already is at most,
/// computed on an opaque copy before the loop. LLVM, knowing the bound from the tests ksc took
/// it from, would drop both the saturation and the loop's constant cap, and a verifier that
/// lost the bound — Linux 6.1 does when the value is spilled before the test that narrows it —
/// would follow the loop as far as the value's type allows ("the sequence of 8193 jumps is too
/// complex"). A saturated value keeps its bound wherever it is spilled.
/// It is masked first (with the all-ones value over `max`, which keeps it): a copy the verifier
/// ties to `hi` (a register move) would carry the exit test's narrowing back to `hi`, and the
/// code after the loop would see the bound exactly at the count the loop left at — one state per
/// count (`p = p + 1 + len` after a label's bytes: an outer walk of 8 labels of up to 63 bytes went
/// past the verifier's 1M-instruction limit). An `&` makes a value of its own.
fn saturate_opaquely(m: &mut Module, lp: OpId, hi: Value, max: i128, ty: Type) -> Value {
    let mut b = m.builder_before(lp);
    let hidden = b.bpf_opaque(hi);
    let all_ones = (1i128 << (128 - max.leading_zeros())) - 1;
    let mask = b.core_const(all_ones, ty.clone());
    let own = b.core_and(hidden, mask);
    let cap = b.core_const(max, ty);
    let over = b.core_cmp(own, cap, CmpPred::Gt);
    b.core_select(over, cap, own)
}

/// Counted loops that walk memory stay inline up to this many iterations...
const WALK_TRIP_COUNT: i128 = 1024;
/// ...when the iterations' IR operations together are at most this many.
const WALK_BUDGET: i128 = 64 * 1024;

/// A constant-bounded loop of at most [`WALK_TRIP_COUNT`] iterations and [`WALK_BUDGET`]
/// operations over all of them that walks memory.
/// The largest value of a loop's run-time bound that does not wrap.
struct RunTimeBound {
    max: u128,
    /// Set when the bound is a difference that may wrap below zero: every wrapped value is at
    /// least this, and the loop aborts on a bound above `max` before it starts.
    wraps_past: Option<u128>,
}

/// A bound of `hi = a - b + c…` (unsigned): at most `a`'s bound plus the other terms'. Where a
/// test before loop `lp` makes sure `b ≤ a` (`if (len > n) { return }`) the difference does
/// not wrap; where none does (`hlen - 20`, `hlen` proven at least 20 by a test of another
/// value), a wrapped sum is at least the type's size less every such `b`'s bound. The loop's
/// count needs it as a value, not as a bound the verifier tracks: it counts to the constant
/// and leaves at `hi`.
fn difference_max(m: &Module, bounds: &LocalBounds, lp: OpId, hi: Value) -> Option<RunTimeBound> {
    let sum = widened_from(m, hi);
    let mut terms = Vec::new();
    sum_terms(m, sum, &mut terms);
    let mut total: u128 = 0;
    let mut differences = 0;
    let mut unordered: Option<u128> = None;
    for t in terms {
        let d = m.op(m.defining_op(t)?);
        let bound = if d.opcode == Opcode::CoreSub && is_unsigned(m.value_type(t)) {
            let (a, b) = (d.operands[0], d.operands[1]);
            differences += 1;
            if !bounds.ordered_at(m, lp, b, a) {
                let subtracted = unordered.unwrap_or(0).checked_add(bounds.max_of(m, b)?)?;
                unordered = Some(subtracted);
            }
            // (Not below zero: that is the wrapping the test or the abort rules out.)
            let least = m.const_int(b).and_then(|c| u128::try_from(c).ok());
            bounds.max_of(m, a)?.saturating_sub(least.unwrap_or(0))
        } else {
            bounds.max_of(m, t)?
        };
        total = total.checked_add(bound)?;
    }
    // (Only the sum's own type bounds it from wrapping.)
    let top = int_max(m.value_type(sum))?;
    let wraps_past = match unordered {
        Some(subtracted) if is_unsigned(m.value_type(sum)) => {
            Some((top + 1).checked_sub(subtracted)?)
        }
        Some(_) => return None,
        None => None,
    };
    (differences > 0 && total <= top).then_some(RunTimeBound {
        max: total,
        wraps_past,
    })
}

fn stays_counted(m: &Module, f: OpId, lp: OpId) -> bool {
    constant_trips(m, lp).is_some_and(|trips| walks_within_budget(m, f, lp, trips))
}

fn walks_within_budget(m: &Module, f: OpId, lp: OpId, trips: i128) -> bool {
    let ops = m.collect_nested(lp, |_| true).len() as i128;
    trips <= WALK_TRIP_COUNT && trips.saturating_mul(ops) <= WALK_BUDGET && walks_memory(m, f, lp)
}

/// Unmarks the walking loops of `f` (longer than [`INLINE_TRIP_COUNT`]) in which a packet pointer
/// stepped in several ways may reach past the verifier's largest packet offset. Followed round by
/// round, every mix of its constant steps is a state of its own unless `mask-loop-offsets` rebases
/// it at the head with a mask over its reach, which it cannot past 0xffff; as a `bpf_loop`
/// callback each round starts rebased (`lower-loops`).
fn unmark_far_walks(m: &mut Module, f: OpId, params: &super::value_bounds::CallBounds) {
    let walking = |m: &Module, l: OpId| m.attr(l, "walks") == Some(&Attr::Bool(true));
    let loops = m.collect_nested(f, |d| d.opcode == Opcode::KsFor);
    if !loops.iter().any(|&l| walking(m, l)) {
        return;
    }
    let bounds = LocalBounds::of_function(m, f, params);
    for lp in loops {
        if !walking(m, lp) || constant_trips(m, lp).is_none_or(|t| t <= INLINE_TRIP_COUNT) {
            continue;
        }
        let far = walked_packet_locals(m, f, lp).into_iter().any(|w| {
            let head = (w.pointer && offset_varies_by_path(m, lp, w.slot))
                .then(|| first_read(m, lp, w.slot))
                .flatten();
            head.is_some_and(|load| {
                let reach = bounds.max_of(m, m.op(load).results[0]);
                reach.is_none_or(|r| r > MAX_PACKET_OFFSET as u128)
            })
        });
        if far {
            m.set_attr(lp, "walks", None);
        }
    }
}

/// How many times a `while` runs.
enum Count {
    /// At most this many times.
    Most(u128),
    /// As many times as a value computed before it says.
    RunTime(RunTimeCount),
}

/// Rewrites each counted `while` of `f` that runs more than [`INLINE_TRIP_COUNT`] times (and does
/// not walk memory within the budget a counted loop keeps), or a number of times known only at
/// run time, as a `for` over its trip count that leaves when the condition fails. Each iteration
/// first sets the counter from the `for`'s index (`i = i0 + index * step`, the value the body's
/// own steps give it): as a `bpf_loop` callback the verifier then sees a counter it does not
/// know, whose states repeat, not one it knows exactly and follows through every iteration.
fn count_long_whiles(
    m: &mut Module,
    f: OpId,
    params: &super::value_bounds::CallBounds,
    errors: &mut Vec<PassError>,
) {
    let mut bounds: Option<LocalBounds> = None;
    for lp in m.collect_nested(f, |d| d.opcode == Opcode::KsWhile) {
        match idle_continue(m, lp) {
            Some(IdleWayRound::Continue(idle)) => {
                errors.push(PassError::user(idle, Code::E0402, "this `continue` goes round again having changed nothing: whatever led here leads here again, so once taken the loop never ends (step what the loop tests before it)"));
                continue;
            }
            // (A loop no round of which changes anything is refused as such below.)
            Some(IdleWayRound::End(l))
                if !matches!(
                    unending(
                        m,
                        f,
                        l,
                        bounds.get_or_insert_with(|| LocalBounds::of_function(m, f, params))
                    ),
                    Some(Unending::Never)
                ) =>
            {
                errors.push(PassError::user(l, Code::E0402, "a round that reaches the end of this loop's body goes round again having changed nothing: whatever led there leads there again, so once it does the loop never ends (step what the loop tests on that way)"));
                continue;
            }
            _ => {}
        }
        let counted = counted_while(m, lp);
        let Some(count) = count_of(m, f, lp, counted.as_ref(), &mut bounds, params, errors) else {
            continue;
        };
        if let Count::Most(trips) = count {
            let Ok(trips) = i128::try_from(trips) else {
                continue;
            };
            // (A longer packet walk has no counter to bound it as written, nor has a short one
            // that reads nothing on the way: only a read's check stops it past the packet, as
            // the verifier sees it. One that walks both ways, or stands still on some rounds,
            // becomes a counted `for` however short, for `outline_two_way_walks`.)
            let short = trips <= INLINE_TRIP_COUNT;
            let followed = short
                && (counted.is_some() || {
                    let bounds =
                        bounds.get_or_insert_with(|| LocalBounds::of_function(m, f, params));
                    walk_reads_on_the_way(m, f, lp, bounds)
                });
            let bounded = followed || (counted.is_some() && walks_within_budget(m, f, lp, trips));
            let two_way = walked_packet_locals(m, f, lp)
                .iter()
                .any(|w| w.defeats_pruning(m, lp));
            if bounded && !two_way {
                continue;
            }
        }
        let (cond, body) = (m.op(lp).regions[0], m.op(lp).regions[1]);
        let (Some(cond_block), Some(body_block)) = (m.sole_block(cond), m.sole_block(body)) else {
            continue;
        };
        let Some(test) = m.yielded_value(cond) else {
            continue;
        };
        let yielded = *m
            .block(cond_block)
            .ops
            .last()
            .expect("a yield ends the condition");
        let counter_ty = match count {
            Count::Most(trips) if trips <= u128::from(u32::MAX) => Type::u32(),
            _ => Type::u64(),
        };
        // The counter: its local, its step (`down` or up) and its type.
        let counter = match &count {
            Count::Most(_) => match &counted {
                Some(c) => match m.value_type(c.slot).pointee() {
                    Some(ty) => Some((c.slot, c.step, false, ty.clone())),
                    None => continue,
                },
                None => None,
            },
            Count::RunTime(c) => {
                let ty = m.value_type(c.slot).pointee().cloned().expect("a local");
                Some((c.slot, c.step as i128, c.down, ty))
            }
        };
        let mut b = m.builder_before(lp);
        let start = counter
            .as_ref()
            .map(|(slot, _, _, ty)| b.core_load(*slot, ty.clone()));
        let lo = b.core_const(0, counter_ty.clone());
        let hi = match &count {
            Count::Most(trips) => b.core_const(*trips as i128, counter_ty.clone()),
            Count::RunTime(c) => run_time_counts::emit_trips(m, lp, c, start.expect("a counter")),
        };
        let mut b = m.builder_before(lp);
        let for_op = b.ks_for(lo, hi, None, None, None);
        let top = b.entry(for_op, 0);
        let index = m.add_block_arg(top, counter_ty);
        let loc = m.op(lp).loc;
        let mut b = Builder::new(m, top);
        b.loc = loc;
        if let (Some((slot, step, down, ty)), Some(start)) = (counter, start) {
            let index = b.cast_to(index, ty.clone());
            let step = b.core_const(step, ty);
            let moved = b.core_mul(index, step);
            let now = if down {
                b.core_sub(start, moved)
            } else {
                b.core_add(start, moved)
            };
            b.core_store(now, slot);
        }
        m.detach_op(yielded);
        m.move_ops(cond_block, top);
        let mut b = Builder::new(m, top);
        b.loc = loc;
        let holds = b.ks_if(test, None, &[]);
        let fails = b.entry(holds, 1);
        b.set_block(fails);
        b.ks_break();
        m.move_ops(body_block, top);
        m.detach_op(lp);
    }
}

/// How many times `while` loop `lp` of `f` runs (`counted`: its [`counted_while`]), when ksc can
/// tell; `None` when it cannot, reporting into `errors` a loop that never ends or that neither
/// ksc nor the verifier can bound. `bounds`: the function's, made when first needed.
fn count_of(
    m: &Module,
    f: OpId,
    lp: OpId,
    counted: Option<&CountedWhile>,
    bounds: &mut Option<LocalBounds>,
    params: &super::value_bounds::CallBounds,
    errors: &mut Vec<PassError>,
) -> Option<Count> {
    if let Some(c) = counted {
        return Some(Count::Most(c.trips));
    }
    let bounds = bounds.get_or_insert_with(|| LocalBounds::of_function(m, f, params));
    if let Some(trips) = packet_walk_trips(m, f, lp, bounds) {
        return Some(Count::Most(trips));
    }
    let refusal = match unending(m, f, lp, bounds) {
        Some(Unending::Never) => Some(PassError::user(lp, Code::E0402, "nothing this loop changes can end it: its condition and every test that leaves it read only values that are the same every round (it never writes them, or its steps of them cancel out or keep where they start)")),
        Some(Unending::ByWrapping(counter)) => {
            let name = local_name(m, counter);
            Some(PassError::user(lp, Code::E0409, format!("this loop steps `{name}` away from the bounds its condition and the tests that leave it compare it with, and nothing else it changes can end it: it could stop only by wrapping `{name}` past its type's end, if then, and not within the rounds the verifier follows: step it toward the bound")))
        }
        Some(Unending::AtFixedPoint(counter, at)) => {
            let name = local_name(m, counter);
            Some(PassError::user(lp, Code::E0402, format!("this loop's steps of `{name}` leave it at {at} once it gets there, and its condition holds at {at}: from there it never ends (and `{name}` may start there or step there)")))
        }
        None => unbounded_walk(m, f, lp, bounds),
    };
    if let Some(refusal) = refusal {
        errors.push(refusal);
        return None;
    }
    let Some(mut c) = run_time_count(m, lp) else {
        errors.extend(uncounted_walk(m, f, lp, bounds));
        return None;
    };
    match settle(m, bounds, &mut c) {
        Some(true) => {}
        // (A count that may wrap is none: the rounds the verifier follows are all there is.)
        Some(false) => {
            let refusal =
                uncounted_walk(m, f, lp, bounds).or_else(|| wraps_unfollowed(m, bounds, lp, &c));
            errors.extend(refusal);
            return None;
        }
        None => {
            errors.extend(uncounted_walk(m, f, lp, bounds));
            return None;
        }
    }
    if followed_as_written(m, bounds, lp, &c) {
        return None;
    }
    Some(Count::RunTime(c))
}

/// The refusal of `while` loop `lp` of `f`, left without a count, when it walks the packet in a
/// way the verifier, which follows every round's exact position on every path, cannot bound:
/// forward on some paths and back on others (it may go round forever over the same bytes), or
/// forward with nothing that bounds how far.
fn uncounted_walk(m: &Module, f: OpId, lp: OpId, bounds: &LocalBounds) -> Option<PassError> {
    if let Some(local) = walks_both_ways(m, f, lp) {
        let name = local_name(m, local);
        return Some(PassError::user(lp, Code::E0409, format!("this loop moves `{name}` forward through the packet on some paths and back on others, and no count bounds its rounds: it may go round forever over the same bytes, so neither ksc nor the verifier can bound it: count it (`while (… && i < N)`)")));
    }
    let name = local_name(m, walk_without_stop(m, f, lp, bounds)?);
    Some(PassError::user(lp, Code::E0409, format!("this loop walks `{name}` forward through the packet, and nothing that ends it bounds how far (no test of it against `ctx->data_end`, or against a stop ksc can bound, and no read through it), nor does a count: neither ksc nor the verifier can bound its rounds: test `{name}` against `ctx->data_end`, bound how far its stop lies (`len & 0xffff`), or count the loop (`while (… && i < N)`)")))
}

/// The refusal of `while` loop `lp` of `f`, which ksc could not count, when it walks the packet in
/// a way the verifier cannot bound either.
fn unbounded_walk(m: &Module, f: OpId, lp: OpId, bounds: &LocalBounds) -> Option<PassError> {
    if walks_pointer_back(m, f, lp) {
        return Some(PassError::user(lp, Code::E0409, "this loop moves a packet pointer back with no count the verifier can follow: count it (`while (… && i < N)`), or walk an offset (`off = off - len`, reading `data + off`)"));
    }
    if walk_may_stall(m, f, lp, bounds) {
        return Some(PassError::user(lp, Code::E0409, "this loop walks the packet by a step not shown to be at least one byte (a step of 0 goes round forever on the same bytes), so neither ksc nor the verifier can bound it: leave the loop before the step on a length that would not move it (`if (len == 0) { break }`), or count it (`while (… && i < N)`)"));
    }
    if let Some(local) = scaled_at_run_time(m, lp) {
        let name = local_name(m, local);
        return Some(PassError::user(lp, Code::E0409, format!("this loop multiplies `{name}`, which its condition tests, by a run-time value (`{name} * len`): a factor of 1, or of 0 with a constant added, leaves it where it was, and the loop goes round forever, so neither ksc nor the verifier can bound it: step it by adding (`{name} = {name} + len`), or count it (`while (… && i < N)`)")));
    }
    None
}

/// A local that `while` loop `lp`'s condition reads and its body sets from its own value
/// multiplied by a value not constant (`off = off * len + 1`): nothing shows such a step moves
/// it. (A constant factor of 2 or more does, for the unsigned offsets walks use.)
fn scaled_at_run_time(m: &Module, lp: OpId) -> Option<Value> {
    let cond = m.op(lp).regions[0];
    let mut tested: Vec<Value> = Vec::new();
    m.walk_region(cond, &mut |o| {
        let d = m.op(o);
        if d.opcode == Opcode::CoreLoad && m.is_local(d.operands[0]) {
            tested.push(d.operands[0]);
        }
    });
    m.collect_nested(lp, |d| d.opcode == Opcode::CoreStore)
        .into_iter()
        .map(|store| (m.op(store).operands[0], m.op(store).operands[1]))
        .find(|&(value, local)| tested.contains(&local) && scales(m, value, local, 8))
        .map(|(_, local)| local)
}

/// `value` is, through sums and casts, `local`'s own value times something not a constant.
fn scales(m: &Module, value: Value, local: Value, depth: u32) -> bool {
    let Some(d) = m.defining_op(value).map(|op| m.op(op)) else {
        return false;
    };
    depth > 0
        && match d.opcode {
            Opcode::CoreMul => {
                let by_itself = |k: usize| advances(m, d.operands[k], local, depth - 1);
                let varying = |k: usize| m.const_int(d.operands[k]).is_none();
                (by_itself(0) && varying(1)) || (by_itself(1) && varying(0))
            }
            Opcode::CoreAdd | Opcode::CoreSub | Opcode::CoreCast => {
                (d.operands.iter()).any(|&o| scales(m, o, local, depth - 1))
            }
            _ => false,
        }
}

/// Settles where the counter of `c` could wrap, from what is known of its bound: false when a
/// wrapping step leaves it without a count; `None` when neither the counter's type nor the
/// bound shows how far they go.
fn settle(m: &Module, bounds: &LocalBounds, c: &mut RunTimeCount) -> Option<bool> {
    let limit = c.limit();
    let top = m.value_type(c.slot).pointee().and_then(int_max)?;
    let constant = m.const_int(limit).and_then(|k| u128::try_from(k).ok());
    let least = constant.unwrap_or(0);
    let most = constant
        .or_else(|| bounds.max_of(m, limit))
        .or_else(|| int_max(m.value_type(limit)))?;
    Some(c.settle_wrapping(top, least, most))
}

/// The refusal of `while` loop `lp`, whose count `c` [`settle`] found may wrap its counter with
/// no count ksc can compute, when the verifier, which then follows it as written, may have to
/// go round more times than it follows.
fn wraps_unfollowed(
    m: &Module,
    bounds: &LocalBounds,
    lp: OpId,
    c: &RunTimeCount,
) -> Option<PassError> {
    let top = m.value_type(c.slot).pointee().and_then(int_max)?;
    // (A test that leaves on the counter, `if (i < 6) { break }`, may keep it from wrapping.)
    if leaves_before_wrapping(m, lp, c, top) {
        return None;
    }
    let name = local_name(m, c.slot);
    // `i <= n` holds of every counter when `n` is the type's top, `i >= n` when it is 0: with
    // such a bound the loop never ends, whatever its step.
    if c.inclusive() && m.const_int(c.limit()).is_none() {
        let (extreme, reaches) = if c.down {
            (0, true)
        } else {
            let most = bounds
                .max_of(m, c.limit())
                .or_else(|| int_max(m.value_type(c.limit())));
            (top, most.is_some_and(|most| most >= top))
        };
        if reaches {
            let test = if c.down { ">=" } else { "<=" };
            return Some(PassError::user(lp, Code::E0409, format!("this loop steps `{name}` by {step} while `{name} {test}` a bound that may be {extreme}, which every value of `{name}` meets: then it never ends, and ksc cannot count it (the step may wrap `{name}`): leave the loop before a step would wrap, or count it (`while (… && k < N)`)", step = c.step)));
        }
    }
    if !c.outlasts_verifier(m, lp, top, FOLLOWED_ROUNDS) {
        return None;
    }
    let (way, past) = if c.down {
        ("down", "below 0 to its type's top")
    } else {
        ("up", "past its type's top to 0")
    };
    let rounds = (top + 1) / c.step;
    Some(PassError::user(lp, Code::E0409, format!("this loop steps `{name}` {way} by {step}, which may carry it past the values its bound leaves and wrap it {past}; then it goes round up to {rounds} more times before it meets the bound, if it ever does, more than the verifier follows ({FOLLOWED_ROUNDS}), and ksc cannot count it: leave the loop before a step would wrap (`if ({name} < {step}) {{ break }}` going down), or count it (`while (… && k < N)`)", step = c.step)))
}

/// Whether a test in the body of `while` loop `lp`, ahead of every step of the counter of `c`,
/// leaves it for each value a step would wrap: going down by `s`, `if (i < K) { break }` with
/// `K ≥ s` (`i <= K`, `K ≥ s − 1`), or its negation leaving from the other arm; going up, `i > K`
/// with `K < top + 1 − s`. A test of other values (`if (i == 6) { break }`) lets the counter wrap.
fn leaves_before_wrapping(m: &Module, lp: OpId, c: &RunTimeCount, top: u128) -> bool {
    let Some(body) = m.sole_block(m.op(lp).regions[1]) else {
        return false;
    };
    let ops = &m.block(body).ops;
    let steps = |o: OpId| {
        let stores = m.collect_nested(o, |d| d.opcode == Opcode::CoreStore);
        std::iter::once(o)
            .chain(stores)
            .any(|st| m.op(st).opcode == Opcode::CoreStore && m.op(st).operands[1] == c.slot)
    };
    let first_step = ops.iter().position(|&o| steps(o)).unwrap_or(ops.len());
    let leaves_past = |pred: CmpPred, k: u128| {
        if c.down {
            match pred {
                CmpPred::Lt => k >= c.step,
                CmpPred::Le => k + 1 >= c.step,
                _ => false,
            }
        } else {
            let wraps_from = top + 1 - c.step;
            match pred {
                CmpPred::Gt => k < wraps_from,
                CmpPred::Ge => k <= wraps_from,
                _ => false,
            }
        }
    };
    ops[..first_step].iter().any(|&o| {
        let d = m.op(o);
        if d.opcode != Opcode::KsIf {
            return false;
        }
        d.regions.iter().enumerate().any(|(arm, &r)| {
            let leaves = m
                .sole_block(r)
                .and_then(|b| m.block(b).ops.last().copied())
                .is_some_and(|e| {
                    matches!(
                        m.op(e).opcode,
                        Opcode::KsBreak | Opcode::KsReturn | Opcode::KsThrow
                    )
                });
            // The `then` arm leaves when any term of an `||` holds, the other when any of an
            // `&&` fails.
            let taken = arm == 0;
            let mut terms = Vec::new();
            chain_terms(m, d.operands[0], taken, &mut terms);
            leaves
                && terms.into_iter().any(|t| {
                    let Some(cmp) = m.defining_op(t).and_then(|o| views::CoreCmp::of(m, o)) else {
                        return false;
                    };
                    let (lhs, rhs) = (cmp.lhs(m), cmp.rhs(m));
                    let counter = |v: Value| loaded_local(m, widened_from(m, v)) == Some(c.slot);
                    let constant = |v: Value| m.const_int(v).and_then(|k| u128::try_from(k).ok());
                    let (pred, k) = match (constant(lhs), constant(rhs)) {
                        (None, Some(k)) if counter(lhs) => (cmp.pred(m), k),
                        (Some(k), None) if counter(rhs) => (cmp.pred(m).swapped(), k),
                        _ => return false,
                    };
                    leaves_past(if taken { pred } else { pred.negated() }, k)
                })
        })
    })
}

/// Whether the verifier can follow the run-time counted loop `lp` as written: its bound (up) or
/// its counter's start (down) is at most [`INLINE_TRIP_COUNT`], which bounds its iterations, and
/// no bound makes it endless.
fn followed_as_written(m: &Module, bounds: &LocalBounds, lp: OpId, c: &RunTimeCount) -> bool {
    if c.may_wrap() {
        return false;
    }
    let most = if c.down {
        start_before(m, lp, c.slot)
    } else {
        bounds.max_of(m, c.limit())
    };
    most.is_some_and(|most| most < INLINE_TRIP_COUNT as u128)
}

/// Whether the loop carries an address or offset from one iteration to the next: a local the
/// body advances from its own value (`off = off + len + 1`, `p = p + len`) that some access
/// addresses memory with. The verifier sees such a value grow with every iteration, so a
/// `bpf_loop` callback, which the verifier checks until its states repeat, never converges (the
/// kernel gives up at 1M instructions); as a counted loop it is followed once per iteration, as a
/// C loop is.
fn walks_memory(m: &Module, f: OpId, l: OpId) -> bool {
    let addresses: Vec<Value> = m
        .collect_nested(f, |d| d.opcode == Opcode::CorePtrAdd)
        .into_iter()
        .flat_map(|o| m.op(o).operands.clone())
        .filter_map(|v| loaded_local(m, v))
        .collect();
    m.collect_nested(l, |d| d.opcode == Opcode::CoreStore)
        .into_iter()
        .any(|store| {
            let (value, local) = (m.op(store).operands[0], m.op(store).operands[1]);
            m.is_local(local) && addresses.contains(&local) && advances(m, value, local, 8)
        })
}

/// `value` is `local`'s value moved by sums and differences (`off + len - 1`, `p + len`).
pub(super) fn advances(m: &Module, value: Value, local: Value, depth: u32) -> bool {
    if loaded_local(m, value) == Some(local) {
        return true;
    }
    let Some(d) = m.defining_op(value).map(|op| m.op(op)) else {
        return false;
    };
    depth > 0
        && match d.opcode {
            Opcode::CoreAdd | Opcode::CorePtrAdd => {
                (d.operands.iter()).any(|&o| advances(m, o, local, depth - 1))
            }
            Opcode::CoreSub | Opcode::CoreCast => advances(m, d.operands[0], local, depth - 1),
            _ => false,
        }
}

/// The name `local` was declared with.
fn local_name(m: &Module, local: Value) -> String {
    let name = m.defining_op(local).and_then(|o| match m.attr(o, "name") {
        Some(Attr::Str(s)) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    });
    name.unwrap_or_else(|| "the counter".to_string())
}
