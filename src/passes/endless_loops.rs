//! Endless kernel loops: a `while` whose condition, and every test that could take it out, read
//! only values the loop never changes — locals it does not write (or writes only with such
//! values), packet bytes it cannot write, constants — decides the same way in every iteration:
//! once it goes round it goes round forever (`while (data + off + 2 <= data_end) { … }` with
//! the step `off = off + len` deleted). The kernel refuses such a program (its verifier follows
//! the loop until it gives up), so `bound-loops` reports it as E0402 at the loop, as `while (true)`
//! without an exit is.
//! So is a loop that could end only when a counter wraps: its condition compares the counter
//! with a bound the loop does not change, and the loop steps it away from that bound (E0409).

use super::lower_loops::enclosing_loop;
use super::packet_walk::rooted;
use super::provenance::Provenance;
use super::run_time_counts;
use super::value_bounds::{
    chain_terms, counter_step, int_max, loaded_local, max_of, net_step, start_before, sum_terms,
    widened_from, CounterStep, Facts,
};
use crate::ir::{views, BlockId, Module, OpId, Opcode, RegionId, Traits, Value, ValueDef};
use crate::vocab::CmpPred;
use std::collections::HashSet;

/// How a loop whose end nothing it changes decides ends, if it does.
pub(super) enum Unending {
    /// Never: its condition and every test that leaves it read only values it never writes (or
    /// steps by constants that cancel out each round)
    /// (see the module comment).
    Never,
    /// Only when this counter (a local) wraps past its type's end, if then: besides such values,
    /// the condition, or a test on the way out, compares it with a bound the loop does not
    /// change, and the loop steps it away from that bound (`while (b >= n) { b = b + 1 }`,
    /// `if (b < 6) { break }` as `b` grows). Not when it wraps within the rounds
    /// the verifier follows to where the condition fails whatever the bound.
    ByWrapping(Value),
    /// Once this counter reaches this value, which it may start at or step to: the loop's
    /// steps of it (`i = (i - 3) * 2`, an affine map) leave it there, and the condition holds
    /// there (`while (i > 0)`; 2·6 − 6 is 6).
    AtFixedPoint(Value, u128),
}

/// Whether loop `l` of `f` is [`Unending`], and how (`bounds`: what bounds the function's values).
pub(super) fn unending(m: &Module, f: OpId, l: OpId, bounds: &dyn Facts) -> Option<Unending> {
    let inside: HashSet<OpId> = m.collect_nested(l, |_| true).into_iter().collect();
    let (cond, body) = (m.op(l).regions[0], m.op(l).regions[1]);
    let facts = Invariance {
        m,
        l,
        body,
        params: m.block(m.func_entry(f)).args.clone(),
        inside: &inside,
        may_write_packet: inside.iter().any(|&o| may_write_packet(m, o)),
        provenance: Provenance::of_function(m, f),
        writes: run_time_counts::written_objects(m, l),
    };
    let test = m.yielded_value(cond)?;
    // Every way out: the condition, and each branch that holds one in the body. A call may
    // throw, and a `try` may catch what is thrown: not followed.
    let mut gates = Vec::new();
    for &o in &inside {
        let d = m.op(o);
        let leaves = match d.opcode {
            Opcode::KsReturn | Opcode::KsThrow | Opcode::KsTailCall => true,
            Opcode::KsBreak => enclosing_loop(m, o) == Some(l),
            Opcode::CoreCall | Opcode::CoreCallIndirect | Opcode::KsTry => return None,
            _ => false,
        };
        if !leaves {
            continue;
        }
        let (mut inner, mut at) = (o, m.parent_op(o));
        while let Some(p) = at.filter(|&p| p != l) {
            let test = m.op(p).operands[0];
            match m.op(p).opcode {
                Opcode::KsIf => gates.push(Gate {
                    test,
                    in_then: arm_of(m, p, inner) == Some(0),
                    of_switch: false,
                }),
                Opcode::KsSwitch => gates.push(Gate {
                    test,
                    in_then: false,
                    of_switch: true,
                }),
                // Reached or not as a nested loop goes: not followed.
                _ => return None,
            }
            (inner, at) = (p, m.parent_op(p));
        }
        // An exit directly in the body leaves in the first iteration that reaches it.
        if m.parent_op(o) == Some(l) {
            return None;
        }
    }
    // An exit is taken in a later round only if each test on its way opens then. One that reads
    // only what the loop does not change opens as it did in the first round; one that compares
    // a counter the loop steps away from the side that opens it (`if (i < 6) { break }` as `i`
    // grows) stays shut once shut, until the counter wraps.
    let mut wrapping = None;
    for gate in &gates {
        if facts.invariant(gate.test, 8) {
            continue;
        }
        if gate.of_switch {
            return None;
        }
        // The `then` arm opens when any term of an `||` holds (shut: each fails), the other when
        // any of an `&&` fails (shut: each holds).
        let mut terms = Vec::new();
        chain_terms(m, gate.test, gate.in_then, &mut terms);
        for t in terms {
            if !facts.invariant(t, 8) {
                wrapping = Some(runs_away(m, l, body, t, gate.in_then, bounds)?);
            }
        }
    }
    if facts.invariant(test, 8) {
        return Some(wrapping.map_or(Unending::Never, Unending::ByWrapping));
    }
    if gates.is_empty() {
        if let Some((slot, at)) = fixed_point(m, l, body, test, bounds) {
            return Some(Unending::AtFixedPoint(slot, at));
        }
    }
    let mut terms = Vec::new();
    chain_terms(m, test, false, &mut terms);
    for t in terms {
        // (`b <= 0xffffffff` on a `u32` holds whatever `b` is.)
        if facts.invariant(t, 8) || always_true(m, t) {
            continue;
        }
        wrapping = Some(runs_away(m, l, body, t, false, bounds)?);
    }
    Some(wrapping.map_or(Unending::Never, Unending::ByWrapping))
}

/// The counter of `while` loop `l` (condition `test`, a comparison of it with a constant; no other
/// way out) and a value it may reach that its steps keep it at, where the condition holds. The
/// steps, all at the body's own level and nowhere else, compose to `x ↦ a·x + b` modulo its type's
/// size (adds, subtractions and multiplications by constants); its start is a constant whose
/// orbit reaches the value, or one `bounds` does not keep below it.
fn fixed_point(
    m: &Module,
    l: OpId,
    body: RegionId,
    test: Value,
    bounds: &dyn Facts,
) -> Option<(Value, u128)> {
    let cmp = views::CoreCmp::of(m, m.defining_op(test)?)?;
    let (lhs, rhs) = (cmp.lhs(m), cmp.rhs(m));
    let constant = |v: Value| m.const_int(v).and_then(|k| u128::try_from(k).ok());
    let (counter, pred, k) = match (constant(lhs), constant(rhs)) {
        (None, Some(k)) => (lhs, cmp.pred(m), k),
        (Some(k), None) => (rhs, cmp.pred(m).swapped(), k),
        _ => return None,
    };
    let slot = loaded_local(m, widened_from(m, counter))?;
    let ty = m.value_type(slot).pointee()?;
    let top = int_max(ty).filter(|_| super::value_bounds::is_unsigned(ty))?;
    let block = m.sole_block(body)?;
    let stores = m.collect_nested(l, |o| {
        o.opcode == Opcode::CoreStore && o.operands[1] == slot
    });
    let ops = &m.block(block).ops;
    let escapes = (m.collect_nested(m.top_level_of(l), |_| true).into_iter())
        .any(|o| super::value_bounds::escaping_operands(m, o).any(|v| v == slot));
    let continues = !m
        .collect_nested(l, |o| o.opcode == Opcode::KsContinue)
        .is_empty();
    if stores.is_empty() || escapes || continues || !stores.iter().all(|s| ops.contains(s)) {
        return None;
    }
    // x ↦ a·x + b, composed store by store in the order they run.
    let modulus = top.checked_add(1);
    let wrap = |x: u128| modulus.map_or(x, |n| x % n);
    let (mut a, mut b) = (1u128, 0u128);
    let mut after = 0;
    for &store in ops.iter().filter(|o| stores.contains(o)) {
        let (by_a, by_b, read_at) = affine_step(m, store, slot, top)?;
        if read_at < after {
            return None;
        }
        after = ops.iter().position(|&o| o == store)?;
        a = wrap(a.wrapping_mul(by_a));
        b = wrap(b.wrapping_mul(by_a).wrapping_add(by_b));
    }
    if a == 1 {
        return None;
    }
    let step = |x: u128| wrap(a.wrapping_mul(x).wrapping_add(b));
    let holds = |x: u128| match pred {
        CmpPred::Lt => x < k,
        CmpPred::Le => x <= k,
        CmpPred::Gt => x > k,
        CmpPred::Ge => x >= k,
        CmpPred::Eq => x == k,
        CmpPred::Ne => x != k,
    };
    let fixed: Vec<u128> = fixed_points(a, b, top)
        .into_iter()
        .filter(|&x| step(x) == x && holds(x))
        .collect();
    let at = *fixed.first()?;
    match start_before(m, l, slot) {
        Some(start) => {
            let mut x = start;
            for _ in 0..=FOLLOWED_ROUNDS {
                if !holds(x) {
                    return None;
                }
                if fixed.contains(&x) {
                    return Some((slot, x));
                }
                x = step(x);
            }
            None
        }
        None => {
            let first = m.op(stores[0]).operands[0];
            let most = max_of(m, counter, bounds, 0).or(max_of(m, first, bounds, 0));
            most.is_none_or(|most| most >= at).then_some((slot, at))
        }
    }
}

/// Some of the `x` with `a·x + b ≡ x` modulo `top + 1` (a power of two, at most 2^64): those of
/// `(a − 1)·x ≡ −b`, `x₀ + k·n/d` for `d` the power of two dividing `a − 1` (the first 1,024).
fn fixed_points(a: u128, b: u128, top: u128) -> Vec<u128> {
    let n = top + 1;
    let c = (a + n - 1) % n;
    let r = (n - b % n) % n;
    if c == 0 {
        return Vec::new();
    }
    let d = 1u128 << c.trailing_zeros();
    if !r.is_multiple_of(d) {
        return Vec::new();
    }
    let (odd, rest, span) = (c / d, r / d, n / d);
    let inverse = super::value_bounds::odd_inverse(odd);
    let x0 = (rest % span).wrapping_mul(inverse % span) % span;
    (0..d.min(1024)).map(|k| x0 + k * span).collect()
}

/// `store` writes `slot = slot · c` or `slot ± c` (maybe computed wider and narrowed back), `c`
/// a constant: `(a, b)` of `x ↦ a·x + b` modulo the type's size (`top + 1`), and where in its
/// block the load of `slot` it reads stands.
fn affine_step(m: &Module, store: OpId, slot: Value, top: u128) -> Option<(u128, u128, usize)> {
    let mut v = m.op(store).operands[0];
    if let Some(cast) = m
        .defining_op(v)
        .filter(|&o| m.op(o).opcode == Opcode::CoreCast)
    {
        v = m.op(cast).operands[0];
    }
    let d = m.op(m.defining_op(v)?);
    let (x, c) = match (m.const_int(d.operands.first().copied()?), d.operands.get(1)) {
        (None, Some(&c)) => (d.operands[0], c),
        _ => return None,
    };
    let c = u128::try_from(m.const_int(c)?).ok()?;
    let load = m.defining_op(widened_from(m, x))?;
    if loaded_local(m, widened_from(m, x)) != Some(slot) {
        return None;
    }
    let n = top + 1;
    let (a, b) = match d.opcode {
        Opcode::CoreAdd => (1, c % n),
        Opcode::CoreSub => (1, (n - c % n) % n),
        Opcode::CoreMul => (c % n, 0),
        _ => return None,
    };
    let (block, _) = m.position(store)?;
    let read_at = m
        .block(block)
        .ops
        .iter()
        .position(|&o| o == load)
        .unwrap_or(0);
    Some((a, b, read_at))
}

/// A test on the way to an exit of a loop: the condition of an `if` (the exit in its `then` arm
/// or the other) or the value a `switch` matches.
struct Gate {
    test: Value,
    in_then: bool,
    of_switch: bool,
}

/// The index of the region of `op` that holds `inner`, one of its direct children.
fn arm_of(m: &Module, op: OpId, inner: OpId) -> Option<usize> {
    let region = m.block(m.op(inner).parent?).parent?;
    m.op(op).regions.iter().position(|&r| r == region)
}

/// Whether comparison `t` holds for every value of its unsigned operands' type: `x <= MAX`,
/// `x >= 0`, either way round.
fn always_true(m: &Module, t: Value) -> bool {
    let Some(c) = m.defining_op(t).and_then(|op| views::CoreCmp::of(m, op)) else {
        return false;
    };
    let (lhs, rhs) = (c.lhs(m), c.rhs(m));
    let ty = m.value_type(lhs);
    let Some(top) = int_max(ty).filter(|_| super::value_bounds::is_unsigned(ty)) else {
        return false;
    };
    let constant = |v: Value| m.const_int(v).and_then(|k| u128::try_from(k).ok());
    let (pred, k) = match (constant(lhs), constant(rhs)) {
        (None, Some(k)) => (c.pred(m), k),
        (Some(k), None) => (c.pred(m).swapped(), k),
        _ => return false,
    };
    matches!((pred, k), (CmpPred::Le, k) if k >= top) || matches!((pred, k), (CmpPred::Ge, 0))
}

/// The most iterations of a loop the verifier follows as written: it gives up after 8192 jumps
/// ("the sequence of 8193 jumps is too complex").
pub(super) const FOLLOWED_ROUNDS: u128 = 8192;

/// The value counter `c` of loop `l` wraps to, when that comes within the rounds the verifier
/// follows from a constant start: from 20, a `u64` stepped down by 2 wraps to 2^64 − 2 in its
/// 11th round.
fn wraps_soon(m: &Module, l: OpId, c: &CounterStep) -> Option<u128> {
    let top = m.value_type(c.slot).pointee().and_then(int_max)?;
    let start = start_before(m, l, c.slot)?;
    let room = if c.down {
        start
    } else {
        top.checked_sub(start)?
    };
    let rounds = room / c.step + 1;
    if rounds > FOLLOWED_ROUNDS {
        return None;
    }
    let moved = rounds * c.step;
    Some(if c.down {
        top - (moved - start - 1)
    } else {
        start + moved - (top + 1)
    })
}

/// The counter that comparison `term` of loop `l` (its condition's, or a test on the way out,
/// `negated` when it is the test's failing that keeps the loop going) compares with a bound the
/// loop does not change, when the loop steps it only away from that bound: the term stays true
/// until the counter wraps.
fn runs_away(
    m: &Module,
    l: OpId,
    body: RegionId,
    term: Value,
    negated: bool,
    bounds: &dyn Facts,
) -> Option<Value> {
    let test = views::CoreCmp::of(m, m.defining_op(term)?)?;
    let (lhs, rhs) = (test.lhs(m), test.rhs(m));
    let pred = if negated {
        test.pred(m).negated()
    } else {
        test.pred(m)
    };
    let strict = matches!(pred, CmpPred::Gt | CmpPred::Lt);
    // (counter, bound, whether the term holds while the counter grows)
    let readings = match pred {
        CmpPred::Gt | CmpPred::Ge => [(lhs, rhs, true), (rhs, lhs, false)],
        CmpPred::Lt | CmpPred::Le => [(lhs, rhs, false), (rhs, lhs, true)],
        CmpPred::Eq | CmpPred::Ne => return None,
    };
    // A packet pointer formed by taking a counter away, its other terms fixed (`data - off + 3
    // <= stop`), moves against the counter and never wraps for the verifier.
    let against = readings
        .iter()
        .find_map(|&(pointer, bound, holds_growing)| {
            let counter = subtracted_counter(m, l, pointer)?;
            let c = counter_step(m, l, body, counter)?;
            (c.down == holds_growing && run_time_counts::invariant(m, l, bound)).then_some(c.slot)
        });
    if against.is_some() {
        return against;
    }
    readings
        .into_iter()
        .find_map(|(counter, bound, holds_growing)| {
            let c = counter_step(m, l, body, counter)?;
            // (A bound the loop does not change, read where the condition reads it: a global
            // another CPU may write is read anew each round, as the verifier sees it.)
            if c.down == holds_growing || !run_time_counts::invariant(m, l, bound) {
                return None;
            }
            // Wrapped soon to where the term fails whatever the bound: the verifier follows it.
            let ends_soon = wraps_soon(m, l, &c).is_some_and(|wrapped| {
                if holds_growing {
                    strict && wrapped == 0
                } else {
                    max_of(m, bound, bounds, 0)
                        .is_some_and(|most| wrapped > most || (strict && wrapped == most))
                }
            });
            (!ends_soon).then_some(c.slot)
        })
}

/// The counter pointer `v` takes away (`data - off + 3`: `off`), its other terms the same in
/// every round of loop `l`.
fn subtracted_counter(m: &Module, l: OpId, v: Value) -> Option<Value> {
    if !m.value_type(v).is_ptr() {
        return None;
    }
    let mut terms = Vec::new();
    sum_terms(m, v, &mut terms);
    let mut counter = None;
    for t in terms {
        let negated = m
            .defining_op(t)
            .filter(|&o| m.op(o).opcode == Opcode::CoreNeg)
            .map(|o| m.op(o).operands[0]);
        match negated {
            Some(x) if counter.is_none() => counter = Some(widened_from(m, x)),
            _ if run_time_counts::invariant(m, l, t) => {}
            _ => return None,
        }
    }
    counter
}

struct Invariance<'a> {
    m: &'a Module,
    /// The loop, and its body.
    l: OpId,
    body: RegionId,
    /// The function's parameters.
    params: Vec<Value>,
    inside: &'a HashSet<OpId>,
    may_write_packet: bool,
    provenance: Provenance,
    /// The globals and configs the loop may write.
    writes: run_time_counts::Writes,
}

impl Invariance<'_> {
    /// `v` is the same in every iteration of the loop.
    fn invariant(&self, v: Value, depth: u32) -> bool {
        let m = self.m;
        let op = match m.value(v).def {
            ValueDef::Result(op, _) => op,
            ValueDef::Arg(block, _) => {
                return m
                    .block(block)
                    .parent
                    .and_then(|r| m.region(r).parent)
                    .is_none_or(|o| !self.inside.contains(&o))
            }
        };
        if !self.inside.contains(&op) {
            return true;
        }
        if depth == 0 {
            return false;
        }
        let d = m.op(op);
        match d.opcode {
            Opcode::CoreConst | Opcode::KsGlobalAddr | Opcode::KsConfigAddr => true,
            Opcode::CoreLoad if m.is_local(d.operands[0]) => {
                self.local_invariant(d.operands[0], depth - 1)
            }
            // Packet bytes, memory the function's parameters point at (a tracepoint's record, a
            // traced function's arguments), or a global or config: the loop writes none of it,
            // and reads the same bytes each round (the verifier, a value it knows nothing of each
            // time, whatever another CPU may store meanwhile).
            Opcode::CoreLoad => {
                let addr = d.operands[0];
                let from_params = || {
                    let mut roots = self.provenance.roots(addr).peekable();
                    roots.peek().is_some() && roots.all(|r| self.params.contains(&r))
                };
                let unwritten = (!self.may_write_packet
                    && (rooted(m, &self.provenance, addr, b"data") || from_params()))
                    || self.writes.leaves_global(m, addr);
                unwritten && self.invariant(addr, depth - 1)
            }
            // (An index's range check, an exit, decides as its operands do.)
            _ if (d.opcode.has(Traits::PURE) || d.opcode == Opcode::KsIndexAddr)
                && d.regions.is_empty() =>
            {
                d.operands.iter().all(|&o| self.invariant(o, depth - 1))
            }
            _ => false,
        }
    }

    /// The loop's every store into local `slot` computes, from the constant it holds when the
    /// loop starts, that constant again (`n * 2` from 0, `n >> 1` from 0, `n | 1` from 1): no
    /// round moves it.
    fn stays_at_start(&self, slot: Value) -> bool {
        let m = self.m;
        let Some(start) = start_before(m, self.l, slot) else {
            return false;
        };
        let Some(ty) = m.value_type(slot).pointee() else {
            return false;
        };
        let stores: Vec<OpId> = (self.inside.iter().copied())
            .filter(|&o| m.op(o).opcode == Opcode::CoreStore && m.op(o).operands[1] == slot)
            .collect();
        let only_stored = self.inside.iter().all(|&o| {
            let d = m.op(o);
            matches!(d.opcode, Opcode::CoreStore | Opcode::CoreLoad) || !d.operands.contains(&slot)
        });
        only_stored
            && !stores.is_empty()
            && stores.iter().all(|&s| {
                let stored = m.op(s).operands[0];
                folded_at(m, stored, slot, start, 4).and_then(|v| wrapped(v, ty)) == Some(start)
            })
    }

    /// Local `slot` holds the same value in every iteration: the loop writes it, if at all,
    /// only with values that are, and nothing takes its address; or every round that goes round
    /// steps it by constants that cancel (`i + 65533` then `i - 65533` on a `u16`).
    fn local_invariant(&self, slot: Value, depth: u32) -> bool {
        let m = self.m;
        if net_step(m, self.l, self.body, slot) == Some(0) || self.stays_at_start(slot) {
            return true;
        }
        self.inside.iter().all(|&o| {
            let d = m.op(o);
            match d.opcode {
                Opcode::CoreStore if d.operands[1] == slot => {
                    self.invariant(d.operands[0], depth) || keeps_value(m, d.operands[0], slot)
                }
                Opcode::CoreLoad => true,
                _ => !d.operands.contains(&slot),
            }
        })
    }
}

/// A `continue` of `while` loop `l` that goes round having changed nothing that decides where a
/// round goes: on the way to it from the top of the body there are only computations, reads,
/// stores into locals no decision reads (a tally only counted, `odd = odd + 1`), of what a local
/// holds already (`off = off * 1`), or into a local the round writes before it reads it (`var kind
/// = opts[off]` at the top of the body), and `if`s and `switch`es whose arms that go on to it do the
/// same; the condition does nothing else. The decisions are the condition, the tests on the way
/// to any exit from the loop and those on the way to this `continue`, with the locals stored into
/// what they read. Whatever led there leads there again, so once it is taken the loop never ends,
/// and the verifier, following it round after round, refuses the program ("infinite loop
/// detected", or its instruction limit). A test of a constant on the way (`if (false)`), which
/// neither LLVM nor the verifier follows, keeps the `continue` from counting.
pub(super) fn idle_continue(m: &Module, l: OpId) -> Option<IdleWayRound> {
    let (cond, body) = (m.op(l).regions[0], m.op(l).regions[1]);
    let body = m.sole_block(body)?;
    let cond_ops = || {
        m.region(cond)
            .blocks
            .iter()
            .flat_map(|&b| m.block(b).ops.iter().copied())
    };
    let nothing = HashSet::new();
    if !cond_ops().all(|o| inert(m, o, &nothing)) {
        return None;
    }
    let cond_reads: HashSet<Value> = cond_ops()
        .flat_map(|o| m.collect_nested(o, |_| true).into_iter().chain([o]))
        .filter_map(|o| loaded_slot(m, o))
        .collect();
    // What decides whether a round leaves: the condition and the tests on the way to each exit.
    let inside: Vec<OpId> = m.collect_nested(l, |_| true);
    let exits = inside.iter().filter(|&&o| leaves(m, o, l));
    let mut exit_tests: Vec<Value> = m.yielded_value(cond).into_iter().collect();
    for &exit in exits {
        exit_tests.extend(tests_on_the_way(m, exit, l));
    }
    let idle = m
        .collect_nested(l, |d| d.opcode == Opcode::KsContinue)
        .into_iter()
        .filter(|&c| enclosing_loop(m, c) == Some(l))
        .find(|&c| {
            let mut tests = exit_tests.clone();
            tests.extend(tests_on_the_way(m, c, l));
            let deciding = deciding_locals(m, &inside, tests);
            idle_way(m, c, body, &cond_reads, &deciding)
        });
    // The body's end goes round as a `continue` there would (`n = n * 1` last).
    let end = *m.block(body).ops.last()?;
    idle.map(IdleWayRound::Continue).or_else(|| {
        // (Reached: every op at the body's level goes on, an `if` by one arm at least.)
        let goes_on = |o: OpId| {
            let d = m.op(o);
            match d.opcode {
                Opcode::KsIf | Opcode::KsSwitch => d.regions.iter().any(|&r| {
                    let last = m
                        .region(r)
                        .blocks
                        .last()
                        .and_then(|&b| m.block(b).ops.last());
                    last.is_none_or(|&x| !m.is_terminator(x) || m.op(x).opcode == Opcode::KsYield)
                }),
                _ => !m.is_terminator(o) || d.opcode == Opcode::KsYield,
            }
        };
        let open = m.block(body).ops.iter().all(|&o| goes_on(o)) && goes_on(end);
        // (Every read of the condition decides, the right of a `&&` too.)
        let mut tests = exit_tests;
        tests.extend(
            cond_ops()
                .flat_map(|o| m.collect_nested(o, |_| true).into_iter().chain([o]))
                .filter(|&o| loaded_slot(m, o).is_some())
                .map(|o| m.op(o).results[0]),
        );
        let deciding = deciding_locals(m, &inside, tests);
        let all = m.block(body).ops.len();
        (open && idle_ops(m, body, all, body, &cond_reads, &deciding))
            .then_some(IdleWayRound::End(l))
    })
}

/// A way round that changes nothing deciding (see [`idle_continue`]).
pub(super) enum IdleWayRound {
    /// At this `continue`.
    Continue(OpId),
    /// At the end of this loop's body.
    End(OpId),
}

/// Whether `o` takes control out of loop `l`: a return, throw, abort or tail call, or a `break`
/// or `continue` of this loop or an outer one.
fn leaves(m: &Module, o: OpId, l: OpId) -> bool {
    match m.op(o).opcode {
        Opcode::KsReturn | Opcode::KsThrow | Opcode::KsAbort | Opcode::KsTailCall => true,
        Opcode::KsBreak => true,
        Opcode::KsContinue => enclosing_loop(m, o) != Some(l),
        _ => false,
    }
}

/// The conditions (and `switch` scrutinees) of the branches that enclose `o` within loop `l`.
fn tests_on_the_way(m: &Module, o: OpId, l: OpId) -> Vec<Value> {
    let mut tests = Vec::new();
    let mut at = o;
    while let Some(p) = m.parent_op(at).filter(|&p| p != l) {
        if matches!(m.op(p).opcode, Opcode::KsIf | Opcode::KsSwitch) {
            tests.extend(m.op(p).operands.iter().copied());
        }
        at = p;
    }
    tests
}

/// The locals `tests` read, and those the ops of the loop (`inside`) store what such a local
/// holds from, and so on.
fn deciding_locals(m: &Module, inside: &[OpId], tests: Vec<Value>) -> HashSet<Value> {
    let stores: Vec<(Value, Value)> = (inside.iter())
        .filter(|&&o| m.op(o).opcode == Opcode::CoreStore && m.is_local(m.op(o).operands[1]))
        .map(|&o| (m.op(o).operands[1], m.op(o).operands[0]))
        .collect();
    let mut locals = HashSet::new();
    let mut seen = HashSet::new();
    let mut work = tests;
    while let Some(v) = work.pop() {
        if !seen.insert(v) {
            continue;
        }
        let Some(op) = m.defining_op(v) else {
            continue;
        };
        match loaded_slot(m, op) {
            Some(slot) if locals.insert(slot) => {
                work.extend(stores.iter().filter(|s| s.0 == slot).map(|s| s.1));
            }
            Some(_) => {}
            None => work.extend(m.op(op).operands.iter().copied()),
        }
    }
    locals
}

/// Whether everything on the way from the top of loop body `body` to `continue` `c` is [`inert`]
/// (the ops before it in its block, and before each enclosing `if` or `switch` in theirs), or, at
/// the body's top level, a store into a local that neither the condition (`cond_reads`) nor the
/// body before it reads.
/// Whether the first `upto` ops of `block` change nothing deciding: each inert, or (in the body's
/// own block) a store into a local the condition does not read, before any op reads it.
fn idle_ops(
    m: &Module,
    block: BlockId,
    upto: usize,
    body: BlockId,
    cond_reads: &HashSet<Value>,
    deciding: &HashSet<Value>,
) -> bool {
    let before = &m.block(block).ops[..upto];
    let fresh = |i: usize| {
        let d = m.op(before[i]);
        let slot = d.operands.get(1).copied();
        block == body
            && d.opcode == Opcode::CoreStore
            && slot.is_some_and(|slot| {
                m.is_local(slot)
                    && !cond_reads.contains(&slot)
                    && !before[..i].iter().any(|&o| reads_slot(m, o, slot))
            })
    };
    (0..before.len()).all(|i| inert(m, before[i], deciding) || fresh(i))
}

fn idle_way(
    m: &Module,
    c: OpId,
    body: BlockId,
    cond_reads: &HashSet<Value>,
    deciding: &HashSet<Value>,
) -> bool {
    let mut at = c;
    loop {
        let Some(block) = m.op(at).parent else {
            return false;
        };
        let ops = &m.block(block).ops;
        let Some(upto) = ops.iter().position(|&o| o == at) else {
            return false;
        };
        if !idle_ops(m, block, upto, body, cond_reads, deciding) {
            return false;
        }
        if block == body {
            return true;
        }
        match m.block_owner(block) {
            Some(owner) if branches_on_values(m, owner) => at = owner,
            _ => return false,
        }
    }
}

/// The local `o` loads, if it is a load of one.
fn loaded_slot(m: &Module, o: OpId) -> Option<Value> {
    let d = m.op(o);
    (d.opcode == Opcode::CoreLoad && m.is_local(d.operands[0])).then(|| d.operands[0])
}

/// Whether `o`, or an op inside it, loads local `slot`.
fn reads_slot(m: &Module, o: OpId, slot: Value) -> bool {
    loaded_slot(m, o) == Some(slot)
        || !m
            .collect_nested(o, |d| d.opcode == Opcode::CoreLoad && d.operands[0] == slot)
            .is_empty()
}

/// An `if` or `switch` that tests no constant.
fn branches_on_values(m: &Module, op: OpId) -> bool {
    let d = m.op(op);
    matches!(d.opcode, Opcode::KsIf | Opcode::KsSwitch)
        && d.operands.iter().all(|&x| m.const_int(x).is_none())
}

/// Whether op `o` changes nothing that decides where a round goes: it computes or reads, stores
/// into a local what the local holds already or into one outside `deciding`, or branches only to
/// arms that do likewise or go no further (they end in a `return`, `break`, `continue`, throw or
/// abort).
fn inert(m: &Module, o: OpId, deciding: &HashSet<Value>) -> bool {
    let d = m.op(o);
    match d.opcode {
        Opcode::CoreStore => {
            let slot = d.operands[1];
            m.is_local(slot) && (!deciding.contains(&slot) || keeps_value(m, d.operands[0], slot))
        }
        Opcode::KsIf | Opcode::KsSwitch => {
            branches_on_values(m, o)
                && d.regions.iter().all(|&r| {
                    m.region(r).blocks.iter().all(|&b| {
                        let ops = &m.block(b).ops;
                        let goes_elsewhere = ops.last().is_some_and(|&t| {
                            m.is_terminator(t) && m.op(t).opcode != Opcode::KsYield
                        });
                        goes_elsewhere || ops.iter().all(|&x| inert(m, x, deciding))
                    })
                })
        }
        Opcode::KsYield => true,
        // (A checked index either aborts, which leaves the loop, or only computes an address.)
        Opcode::KsIndexAddr => true,
        _ => m.is_effect_free(o),
    }
}

/// Whether `v` is what local `slot` holds already: a load of it, or that through arithmetic that
/// changes nothing (`i * 1`, `i + 0`, `i | 0`, `i << 0`; a step an operator mutation turned into
/// none).
fn keeps_value(m: &Module, v: Value, slot: Value) -> bool {
    let Some(op) = m.defining_op(v) else {
        return false;
    };
    let d = m.op(op);
    let identity = match d.opcode {
        Opcode::CoreLoad => return d.operands[0] == slot,
        Opcode::CoreMul | Opcode::CoreDiv => 1,
        Opcode::CoreAdd
        | Opcode::CoreSub
        | Opcode::CoreOr
        | Opcode::CoreXor
        | Opcode::CoreShl
        | Opcode::CoreShr => 0,
        _ => return false,
    };
    let commutes = matches!(
        d.opcode,
        Opcode::CoreMul | Opcode::CoreAdd | Opcode::CoreOr | Opcode::CoreXor
    );
    let (a, b) = (d.operands[0], d.operands[1]);
    (m.const_int(b) == Some(identity) && keeps_value(m, a, slot))
        || (commutes && m.const_int(a) == Some(identity) && keeps_value(m, b, slot))
}

/// Whether op `o` may write packet bytes: any write but a store, atomic add or copy to a local, a
/// global or a map entry, the map and ring-buffer operations, and a store to a context field.
fn may_write_packet(m: &Module, o: OpId) -> bool {
    let d = m.op(o);
    if !d.opcode.has(Traits::WRITES) {
        return false;
    }
    match d.opcode {
        Opcode::CoreStore => !stays_off_packet(m, d.operands[1]),
        // (The address, or the destination, comes first.)
        Opcode::CoreAtomicAdd | Opcode::CoreAtomicFetchAdd | Opcode::CoreCopy => {
            !stays_off_packet(m, d.operands[0])
        }
        Opcode::KsMapUpdate
        | Opcode::KsMapDelete
        | Opcode::KsMapAdd
        | Opcode::KsMapPush
        | Opcode::KsMapPop
        | Opcode::KsRbReserve
        | Opcode::KsRbSubmit
        | Opcode::KsRbDiscard
        | Opcode::KsRbOutput
        | Opcode::KsCtxStore => false,
        _ => true,
    }
}

/// `address` is a local's, a global's, a config's or a map entry's (fields and elements included).
fn stays_off_packet(m: &Module, address: Value) -> bool {
    if m.is_local(address) {
        return true;
    }
    let Some(op) = m.defining_op(address) else {
        return false;
    };
    let d = m.op(op);
    match d.opcode {
        Opcode::KsGlobalAddr | Opcode::KsConfigAddr | Opcode::KsMapLookup => true,
        Opcode::CoreFieldAddr | Opcode::CoreElemAddr | Opcode::CoreCast => {
            stays_off_packet(m, d.operands[0])
        }
        _ => false,
    }
}

/// The value of `v`, computed from constants and loads of `slot` by `+ - * << >> & | ^` and
/// widenings, when `slot` holds `x`; `None` when it reads anything else.
fn folded_at(m: &Module, v: Value, slot: Value, x: u128, depth: u32) -> Option<u128> {
    if let Some(k) = m.const_int(v) {
        return u128::try_from(k).ok();
    }
    let d = m.op(m.defining_op(v).filter(|_| depth > 0)?);
    let operand = |i: usize| folded_at(m, d.operands[i], slot, x, depth - 1);
    let r = match d.opcode {
        Opcode::CoreLoad if d.operands[0] == slot => x,
        Opcode::CoreCast if super::value_bounds::is_unsigned(m.value_type(d.operands[0])) => {
            wrapped(operand(0)?, m.value_type(v))?
        }
        Opcode::CoreAdd => operand(0)?.wrapping_add(operand(1)?),
        Opcode::CoreSub => operand(0)?.wrapping_sub(operand(1)?),
        Opcode::CoreMul => operand(0)?.wrapping_mul(operand(1)?),
        Opcode::CoreShl => operand(0)?.checked_shl(u32::try_from(operand(1)?).ok()?)?,
        Opcode::CoreShr => operand(0)?.checked_shr(u32::try_from(operand(1)?).ok()?)?,
        Opcode::CoreAnd => operand(0)? & operand(1)?,
        Opcode::CoreOr => operand(0)? | operand(1)?,
        Opcode::CoreXor => operand(0)? ^ operand(1)?,
        _ => return None,
    };
    wrapped(r, m.value_type(v))
}

/// `v` modulo the size of unsigned integer type `ty`.
fn wrapped(v: u128, ty: &crate::ir::Type) -> Option<u128> {
    let top = int_max(ty).filter(|_| super::value_bounds::is_unsigned(ty))?;
    Some(v & top)
}
