//! Counted `while`s to a bound known only at run time: `while (i < n)` (`<=`, `n > i`) over an
//! unsigned counter the body steps up by a constant, or `while (i > n)` (`>=`) over one it steps
//! down, `n` a value the loop does not change (a local it never writes, a context field, a
//! global, a parameter, arithmetic on those). The loop runs exactly `⌈(n − i₀) / step⌉` times
//! (up; `i₀ − n` down; one more for `<=`/`>=`), which `bound-loops` computes before it, so that
//! it can count it as it counts a constant one. As written the verifier would follow such a loop
//! iteration by iteration and give up (the 1M-instruction limit, or "the sequence of 8193 jumps
//! is too complex") unless it could bound `n` itself.
//! Where the last round's step would wrap the counter past its type's end, the loop as written
//! goes round forever or more than `bpf_loop`'s limit: it aborts (§13.4) before it starts, as on
//! a count above that limit (see [`RunTimeCount::settle_wrapping`]).

use super::lower_loops::{MAX_LOOP_TRIPS, TOO_MANY_TRIPS};
use super::provenance::object_base;
use super::value_bounds::{chain_terms, counter_step, escaping_operands, CounterStep};
use crate::ir::{views, Builder, Module, OpId, Opcode, RegionId, Traits, Type, Value, ValueDef};
use crate::vocab::CmpPred;
use std::collections::HashMap;

/// A `while` counted to a run-time bound (see the module comment).
pub(super) struct RunTimeCount {
    /// The counter's local.
    pub slot: Value,
    /// How much each iteration moves it, up or `down`.
    pub step: u128,
    pub down: bool,
    /// The bound, as the condition computes it.
    limit: Value,
    /// `<=` / `>=`: the loop also runs with the counter at the bound.
    inclusive: bool,
    /// Where some bound lets the counter wrap past its type's end, the largest value it has (set
    /// by [`RunTimeCount::settle_wrapping`]): the loop then aborts before it starts on a bound at
    /// which the last round's step would wrap it.
    wraps_past: Option<u128>,
}

impl RunTimeCount {
    /// The bound, as the condition computes it.
    pub fn limit(&self) -> Value {
        self.limit
    }

    /// Whether the loop also runs with the counter at the bound (`<=`, `>=`).
    pub fn inclusive(&self) -> bool {
        self.inclusive
    }

    /// Whether some bound makes the loop wrap its counter (it aborts on such a bound).
    pub fn may_wrap(&self) -> bool {
        self.wraps_past.is_some()
    }

    /// Whether the count holds for every bound from `least` to `most` of a counter whose type's
    /// largest value is `top`. Up by `c`, the last value that goes round is below `n` (`<=`: at
    /// most `n`), and the counter wraps after it only when `n > top + 1 − c − inclusive`; down,
    /// only when `n < c − 1 + inclusive`. Where a bound allows it, the loop as written goes round
    /// either forever (a step of 1: `i <= n` at the type's top, `i >= n` at 0) or, after wrapping,
    /// as many times again as it takes the counter to come back to `n` — more than `bpf_loop`'s
    /// limit when the type holds that many steps: both abort before the loop, as a count above
    /// the limit does. A wrapping step of any other size has no such count (a `u8` stepped by 3
    /// meets its bound some rounds after wrapping): not counted.
    pub fn settle_wrapping(&mut self, top: u128, least: u128, most: u128) -> bool {
        let inclusive = u128::from(self.inclusive);
        let may_wrap = if self.down {
            least < self.step - 1 + inclusive
        } else {
            match (top + 1).checked_sub(self.step + inclusive) {
                Some(safe_to) => most > safe_to,
                None => true,
            }
        };
        let steps_held = (top + 1).saturating_sub(2 * self.step) / self.step;
        if may_wrap && self.step != 1 && steps_held <= MAX_LOOP_TRIPS as u128 {
            return false;
        }
        self.wraps_past = may_wrap.then_some(top);
        true
    }
}

impl RunTimeCount {
    /// Whether the verifier, following as written loop `l` that this count could not settle (a
    /// step that may wrap the counter past its type's end, whose largest value is `top`), may
    /// have to go round more than `followed` times: after wrapping, it goes round as many
    /// times as the type holds steps before it meets the bound again, if it ever does. Not so
    /// when a constant start and bound show the loop ends sooner, as the verifier sees.
    pub fn outlasts_verifier(&self, m: &Module, l: OpId, top: u128, followed: u128) -> bool {
        if (top + 1) / self.step <= followed {
            return false;
        }
        let start = super::value_bounds::start_before(m, l, self.slot);
        let bound = m.const_int(self.limit).and_then(|k| u128::try_from(k).ok());
        let (Some(mut at), Some(bound)) = (start, bound) else {
            return true;
        };
        let goes_round = |at: u128| match (self.down, self.inclusive) {
            (true, false) => at > bound,
            (true, true) => at >= bound,
            (false, false) => at < bound,
            (false, true) => at <= bound,
        };
        let values = top + 1;
        for _ in 0..=followed {
            if !goes_round(at) {
                return false;
            }
            at = if self.down {
                (at + values - self.step % values) % values
            } else {
                (at + self.step) % values
            };
        }
        true
    }
}

/// The run-time count of `while` loop `l`, when one term of its `&&` condition compares a
/// counter with a bound the loop does not change.
pub(super) fn run_time_count(m: &Module, l: OpId) -> Option<RunTimeCount> {
    let (cond, body) = (m.op(l).regions[0], m.op(l).regions[1]);
    let mut tests = Vec::new();
    chain_terms(m, m.yielded_value(cond)?, false, &mut tests);
    tests.into_iter().find_map(|t| counted_by(m, l, body, t))
}

fn counted_by(m: &Module, l: OpId, body: RegionId, term: Value) -> Option<RunTimeCount> {
    let test = views::CoreCmp::of(m, m.defining_op(term)?)?;
    let (lhs, rhs) = (test.lhs(m), test.rhs(m));
    // (counter, bound, inclusive, down) for each reading of the comparison.
    let readings = match test.pred(m) {
        CmpPred::Lt => [(lhs, rhs, false, false), (rhs, lhs, false, true)],
        CmpPred::Le => [(lhs, rhs, true, false), (rhs, lhs, true, true)],
        CmpPred::Gt => [(lhs, rhs, false, true), (rhs, lhs, false, false)],
        CmpPred::Ge => [(lhs, rhs, true, true), (rhs, lhs, true, false)],
        CmpPred::Eq | CmpPred::Ne => return None,
    };
    readings
        .into_iter()
        .find_map(|(counter, limit, inclusive, down)| {
            let CounterStep {
                slot,
                step,
                down: stepped_down,
            } = counter_step(m, l, body, counter)?;
            // (A constant bound up is `counted_while`'s, which can tell a wrapping step at once.)
            let same_type = m.value_type(counter) == m.value_type(limit);
            let theirs = !down && m.const_int(limit).is_some();
            (stepped_down == down && same_type && !theirs && invariant(m, l, limit)).then_some(
                RunTimeCount {
                    slot,
                    step,
                    down,
                    limit,
                    inclusive,
                    wraps_past: None,
                },
            )
        })
}

/// Whether `v` has one value through every iteration of loop `l`: defined before it, or computed
/// in it from constants, locals the loop never writes (nor anything behind a pointer), context
/// fields (when the loop calls nothing and writes no field) and globals and config fields that
/// nothing in it may write (no call, no store into the same global). Another CPU may write a
/// global meanwhile; the count is then the one the value had before the loop, as C's compiler
/// reads it once too.
pub(super) fn invariant(m: &Module, l: OpId, v: Value) -> bool {
    Invariance {
        m,
        l,
        writes: written_objects(m, l),
    }
    .holds(v, 8)
}

/// What a loop may write outside its locals.
pub(super) enum Writes {
    /// Nothing.
    Nothing,
    /// Only these globals, configs, packets and map values (their base addresses).
    Objects(Vec<Value>),
    /// Anything: it calls out or writes through a pointer of unknown origin.
    Anything,
}

struct Invariance<'m> {
    m: &'m Module,
    l: OpId,
    writes: Writes,
}

impl Invariance<'_> {
    fn holds(&self, v: Value, depth: u32) -> bool {
        let (m, l) = (self.m, self.l);
        let ValueDef::Result(op, _) = m.value(v).def else {
            return !m.defined_within(v, l);
        };
        if !m.defined_within(v, l) {
            return true;
        }
        let d = m.op(op);
        let operands = || depth > 0 && d.operands.iter().all(|&o| self.holds(o, depth - 1));
        match d.opcode {
            Opcode::CoreConst | Opcode::KsGlobalAddr | Opcode::KsConfigAddr => true,
            Opcode::CoreCast
            | Opcode::CoreAdd
            | Opcode::CoreSub
            | Opcode::CoreMul
            | Opcode::CoreAnd
            | Opcode::CoreOr
            | Opcode::CoreShl
            | Opcode::CoreShr
            | Opcode::CoreFieldAddr => operands(),
            Opcode::CoreLoad if m.is_local(d.operands[0]) => {
                let slot = d.operands[0];
                m.collect_nested(l, |o| {
                    o.opcode == Opcode::CoreStore && o.operands[1] == slot
                })
                .is_empty()
                    && !m
                        .collect_nested(m.top_level_of(l), |_| true)
                        .into_iter()
                        .any(|o| escaping_operands(m, o).any(|x| x == slot))
            }
            Opcode::CoreLoad => self.writes.leaves_global(m, d.operands[0]) && operands(),
            Opcode::KsCtxLoad => {
                !matches!(self.writes, Writes::Anything)
                    && m.collect_nested(l, |o| o.opcode == Opcode::KsCtxStore)
                        .is_empty()
                    && operands()
            }
            _ => false,
        }
    }
}

impl Writes {
    /// Whether `addr` points into a global or config these writes leave alone.
    pub fn leaves_global(&self, m: &Module, addr: Value) -> bool {
        let base = object_base(m, addr);
        let global = m
            .defining_op(base)
            .is_some_and(|b| matches!(m.op(b).opcode, Opcode::KsGlobalAddr | Opcode::KsConfigAddr));
        global
            && match self {
                Writes::Nothing => true,
                Writes::Objects(bases) => !bases.iter().any(|&w| same_object(m, w, base)),
                Writes::Anything => false,
            }
    }
}

/// What loop `l` writes besides its function's locals.
pub(super) fn written_objects(m: &Module, l: OpId) -> Writes {
    let mut bases = Vec::new();
    for o in m.collect_nested(l, |d| {
        d.opcode.has(Traits::WRITES)
            || matches!(
                d.opcode,
                Opcode::CoreCall | Opcode::CoreCallIndirect | Opcode::KsCallExtern
            )
    }) {
        let d = m.op(o);
        if d.opcode != Opcode::CoreStore {
            // (A map update writes its map, never a global's memory.)
            if matches!(
                d.opcode,
                Opcode::KsMapUpdate | Opcode::KsMapDelete | Opcode::KsMapAdd
            ) {
                continue;
            }
            return Writes::Anything;
        }
        let base = object_base(m, d.operands[1]);
        let Some(def) = m.defining_op(base) else {
            return Writes::Anything;
        };
        match m.op(def).opcode {
            Opcode::CoreLocal => {}
            Opcode::KsGlobalAddr
            | Opcode::KsConfigAddr
            | Opcode::KsMapLookup
            | Opcode::KsCtxLoad => bases.push(base),
            _ => return Writes::Anything,
        }
    }
    if bases.is_empty() {
        Writes::Nothing
    } else {
        Writes::Objects(bases)
    }
}

/// Whether two base addresses may be one object: the same global or config, or not told apart.
fn same_object(m: &Module, a: Value, b: Value) -> bool {
    let symbol = |v: Value| {
        let op = m.defining_op(v)?;
        matches!(m.op(op).opcode, Opcode::KsGlobalAddr | Opcode::KsConfigAddr)
            .then(|| m.op(op).attrs.first().cloned().flatten())
            .flatten()
    };
    match (symbol(a), symbol(b)) {
        (Some(x), Some(y)) => x == y,
        // A map value or a packet is no global's memory.
        (None, Some(_)) | (Some(_), None) => false,
        (None, None) => true,
    }
}

/// Before loop `l`: the bound's value, its computation copied out of the condition.
pub(super) fn hoisted(
    m: &mut Module,
    l: OpId,
    v: Value,
    vmap: &mut HashMap<Value, Value>,
) -> Value {
    let ValueDef::Result(op, _) = m.value(v).def else {
        return v;
    };
    if !m.defined_within(v, l) {
        return v;
    }
    if let Some(&copy) = vmap.get(&v) {
        return copy;
    }
    for o in m.op(op).operands.clone() {
        hoisted(m, l, o, vmap);
    }
    let copy = m.clone_op(op, vmap);
    let (block, at) = m.position(l).expect("placed");
    m.place_op(copy, block, Some(at));
    vmap[&v]
}

/// Emits before loop `l` the loop's trip count as a `u64`, after an abort where the last round's
/// step would wrap the counter (see [`RunTimeCount::settle_wrapping`]). `start` is the counter's
/// value before the loop.
pub(super) fn emit_trips(m: &mut Module, l: OpId, count: &RunTimeCount, start: Value) -> Value {
    let limit = hoisted(m, l, count.limit, &mut HashMap::new());
    let loc = m.op(l).loc;
    let (block, at) = m.position(l).expect("placed");
    let ty = m.value_type(limit).clone();
    let mut b = Builder::new(m, block);
    b.at = Some(at);
    b.loc = loc;
    let start = b.cast_to(start, ty.clone());
    // Runs while `from` is past `to` (or at it, inclusive): `(from − to − 1) / step + 1` times
    // (`(from − to) / step + 1`), none when it is not.
    let (from, to) = if count.down {
        (start, limit)
    } else {
        (limit, start)
    };
    let past = if count.inclusive {
        CmpPred::Ge
    } else {
        CmpPred::Gt
    };
    let runs = b.core_cmp(from, to, past);
    let distance = b.core_sub(from, to);
    let distance = b.cast_to(distance, Type::u64());
    let one = b.core_const(1, Type::u64());
    let distance = if count.inclusive {
        distance
    } else {
        b.core_sub(distance, one)
    };
    let step = b.core_const(count.step as i128, Type::u64());
    let steps = b.core_div(distance, step);
    if let Some(top) = count.wraps_past {
        // The last value that goes round, `start ± steps × step`, and whether its step wraps.
        let start = b.cast_to(start, Type::u64());
        let moved = b.core_mul(steps, step);
        let wraps = if count.down {
            let last = b.core_sub(start, moved);
            b.core_cmp(last, step, CmpPred::Lt)
        } else {
            let last = b.core_add(start, moved);
            let safe = b.core_const((top - count.step) as i128, Type::u64());
            b.core_cmp(last, safe, CmpPred::Gt)
        };
        let wraps = b.core_and(runs, wraps);
        b.abort_if(wraps, TOO_MANY_TRIPS);
    }
    let trips = b.core_add(steps, one);
    let none = b.core_const(0, Type::u64());
    b.core_select(runs, trips, none)
}
