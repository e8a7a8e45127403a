//! `widen-loop-steps`: an offset a walked loop advances by a run-time step keeps the step's upper
//! bound for the verifier but not its lower one. `mask-loop-offsets`: one that the loop also
//! compares with a value it does not know, or a packet pointer the loop steps in several ways,
//! starts every iteration masked (see [`mask_heads`]).
//!
//! `off = off + len + 1` after `if (len > 63) { break }` tells the verifier that each iteration
//! moves `off` by 2 to 64. It follows a counted loop iteration by iteration, so the states that
//! leave the loop after one, two, … iterations carry lower bounds 2, 4, … on `off`; a state is
//! pruned only when an explored one covers its range, and the one explored first (after the most
//! iterations) has the highest lower bound, so the code after the loop is verified once per
//! iteration count. C programs rarely pay this: their `__u8` step is masked (`& 0xff`) on the way,
//! which keeps its upper bound and loses the lower one. ksc does that on purpose: the step becomes
//! `opaque(step) & M`, `M` the smallest all-ones mask that holds the step's largest value, so the
//! value is unchanged and the verifier sees it from 0 to the same maximum (one `&=` per iteration).
//!
//! Only where it pays and nothing can need the lower bound: the code after the loop addresses
//! memory with the local; the loop has a constant trip count of its own (a loop the offset alone
//! bounds could look endless); the local is an unsigned offset or a packet pointer that nothing
//! writes behind a pointer; and no use of it subtracts from it, adds a negative constant, passes
//! it to a call or copies it to other stack memory. A `return` of it is followed into every
//! caller (a helper that returns the offset past a name), which must use the result the same way,
//! and an argument into the kernel function it is passed to (a helper reading the header there),
//! whose parameter must be used so too; a field of a header at the offset is an address past it.
//! Runs on structured kernel functions after `bounds-check` (whose bounds see the steps as
//! written) and before `lower-loops`; `unroll-loops` widens the loops it unrolls that return
//! early, whose copies' exits meet in the callers as a loop's do after it.

use super::packet_walk::{
    unknown_distance, walked_packet_locals, within_packet, MAX_PACKET_OFFSET,
};
use super::provenance::Provenance;
use super::value_bounds::{
    in_nested_loop, int_max, loaded_local, sum_terms, tracked_locals, trip_count, CallBounds,
    CallSites, LocalBounds,
};
use super::PassResult;
use crate::ir::{views, Builder, Module, OpId, Opcode, Traits, Type, Value, ValueDef};
use crate::vocab::CmpPred;
use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};

pub fn run(m: &mut Module) -> PassResult {
    let calls = CallBounds::of_module(m);
    let sites = CallSites::of(m, &super::kernel_funcs(m));
    for f in super::kernel_funcs(m) {
        let Some(facts) = LoopFacts::of(m, f, &calls) else {
            continue;
        };
        let mut widened = Vec::new();
        for &l in &facts.loops {
            steps_to_widen(m, &facts, &sites, l, &mut widened);
        }
        let pointer_steps = pointer_steps(m, &facts, &widened);
        for (store, step) in widened {
            widen(m, store, step);
        }
        for store in pointer_steps {
            step_before_narrowing(m, store);
        }
    }
    Ok(())
}

/// The stores of loops of `f` (not in a nested loop) that step a packet pointer from its own
/// value (`p = p + 1 + len`), other than the `widened` ones.
fn pointer_steps(m: &Module, facts: &LoopFacts, widened: &[(OpId, Step)]) -> Vec<OpId> {
    let mut steps = Vec::new();
    for &l in &facts.loops {
        pointer_steps_of(m, facts, l, widened, &mut steps);
    }
    steps
}

/// [`pointer_steps`] of loop `l`, added to `steps`.
fn pointer_steps_of(
    m: &Module,
    facts: &LoopFacts,
    l: OpId,
    widened: &[(OpId, Step)],
    steps: &mut Vec<OpId>,
) {
    for store in m.collect_nested(l, |d| d.opcode == Opcode::CoreStore) {
        let local = m.op(store).operands[1];
        let stored = m.op(store).operands[0];
        let mut terms = Vec::new();
        sum_terms(m, stored, &mut terms);
        let steps_itself = terms
            .iter()
            .filter(|&&t| loaded_local(m, t) == Some(local))
            .count()
            == 1;
        if facts.tracked.contains(&local)
            && m.value_type(stored).is_ptr()
            && steps_itself
            && !in_nested_loop(m, store, l)
            && widened.iter().all(|(s, _)| *s != store)
            && !steps.contains(&store)
        {
            steps.push(store);
        }
    }
}

/// Computes the pointer `store` writes before the ops whose tests narrow what it reads (see
/// [`narrowing_before`]), kept there by an opaque copy: a pointer formed while `len` is still a
/// range is one state whatever count the loop between leaves at (C code does the same, forming
/// `next = p + len` before walking the label's bytes).
fn step_before_narrowing(m: &mut Module, store: OpId) {
    let stored = m.op(store).operands[0];
    let Some(at) = narrowing_before(m, store, &[stored]) else {
        return;
    };
    let Some(early) = computed_before(m, at, stored, &mut HashMap::new()) else {
        return;
    };
    let pinned = m.builder_before(at).bpf_opaque(early);
    m.op_mut(store).operands[0] = pinned;
}

/// For `unroll-loops`: the steps of loop `l` of `f`, about to be unrolled, widened as
/// `widen-loop-steps` widens a loop's. The copies leave early through `return`s, so the states
/// of every iteration count meet where the function's result is used, as after a loop.
pub fn widen_before_unrolling(m: &mut Module, f: OpId, l: OpId, calls: &CallBounds) {
    let Some(facts) = LoopFacts::of(m, f, calls) else {
        return;
    };
    if !facts.loops.contains(&l) {
        return;
    }
    let sites = CallSites::of(m, &super::kernel_funcs(m));
    let mut widened = Vec::new();
    steps_to_widen(m, &facts, &sites, l, &mut widened);
    let mut pointer_steps = Vec::new();
    pointer_steps_of(m, &facts, l, &widened, &mut pointer_steps);
    for (store, step) in widened {
        widen(m, store, step);
    }
    for store in pointer_steps {
        step_before_narrowing(m, store);
    }
}

/// What both passes read of one kernel function with loops the verifier follows.
struct LoopFacts<'m> {
    /// Its loops with a trip count of their own.
    loops: Vec<OpId>,
    bounds: LocalBounds,
    tracked: HashSet<Value>,
    uses: Uses<'m>,
}

impl<'m> LoopFacts<'m> {
    /// `None` when `f` has no such loop.
    fn of(m: &'m Module, f: OpId, calls: &CallBounds) -> Option<Self> {
        let loops: Vec<OpId> = m
            .collect_nested(f, |d| matches!(d.opcode, Opcode::KsFor | Opcode::KsWhile))
            .into_iter()
            .filter(|&l| trip_count(m, l).is_some())
            .collect();
        (!loops.is_empty()).then(|| LoopFacts {
            loops,
            bounds: LocalBounds::of_function(m, f, calls),
            tracked: tracked_locals(m, f),
            uses: Uses::of_function(m, f),
        })
    }
}

/// The stores of `widen-loop-steps` in loop `l`, added to `widened`: run-time steps of offsets
/// addressing memory after the loop.
fn steps_to_widen(
    m: &Module,
    facts: &LoopFacts,
    sites: &CallSites,
    l: OpId,
    widened: &mut Vec<(OpId, Step)>,
) {
    let LoopFacts {
        bounds, tracked, ..
    } = facts;
    let inside: HashSet<OpId> = m.collect_nested(l, |_| true).into_iter().collect();
    for store in m.collect_nested(l, |d| d.opcode == Opcode::CoreStore) {
        let local = m.op(store).operands[1];
        if !tracked.contains(&local)
            || in_nested_loop(m, store, l)
            || widened.iter().any(|(s, _)| *s == store)
        {
            continue;
        }
        if let Some(step) = step_of(m, bounds, store, local) {
            if worth_losing_lower_bound(m, facts, sites, local, store, &inside) {
                widened.push((store, step));
            }
        }
    }
}

/// `local = local + step`, as stored: the load of `local` and the other terms of the sum.
struct Step {
    base: Value,
    terms: Vec<Value>,
    mask: i128,
}

/// The step `store` advances `local` by, when it is a sum of the local, at least one run-time
/// term and any constants, all of one integer type, with a known largest value.
fn step_of(m: &Module, bounds: &LocalBounds, store: OpId, local: Value) -> Option<Step> {
    let stored = m.op(store).operands[0];
    let mut terms = Vec::new();
    sum_terms(m, stored, &mut terms);
    let at = terms
        .iter()
        .position(|&t| loaded_local(m, t) == Some(local))?;
    let base = terms.remove(at);
    if terms.iter().any(|&t| loaded_local(m, t) == Some(local))
        || terms.iter().all(|&t| m.const_int(t).is_some())
    {
        return None;
    }
    let ty = m.value_type(terms[0]).clone();
    if !ty.is_int() || terms.iter().any(|&t| *m.value_type(t) != ty) {
        return None;
    }
    let mut max: u128 = 0;
    for &t in &terms {
        let t_max = match m.const_int(t) {
            Some(c) => u128::try_from(c).ok()?,
            None => bounds.max_of(m, t)?,
        };
        max = max.checked_add(t_max)?;
    }
    // The smallest all-ones mask holding `max`, within the type (the sum does not wrap).
    let mask = max.checked_add(1)?.checked_next_power_of_two()? - 1;
    if max == 0 || mask > int_max(&ty)? {
        return None;
    }
    Some(Step {
        base,
        terms,
        mask: i128::try_from(mask).ok()?,
    })
}

/// Whether `local`, which `store` steps in a loop (the ops `inside`), addresses memory after the
/// loop and nothing needs its lower bound: where losing it costs nothing and lets the verifier
/// prune.
fn worth_losing_lower_bound(
    m: &Module,
    facts: &LoopFacts,
    sites: &CallSites,
    local: Value,
    store: OpId,
    inside: &HashSet<OpId>,
) -> bool {
    let after: Vec<(Value, bool)> = facts
        .uses
        .loads_of(local)
        .map(|o| (m.op(o).results[0], !inside.contains(&o)))
        .collect();
    addresses_memory(m, sites, &facts.uses, &facts.tracked, after, 0)
        && lower_bound_unused(m, facts, sites, local, store)
}

/// Whether nothing needs the lower bound of `local`, which `store` steps (see
/// [`lower_bound_unneeded`]).
fn lower_bound_unused(
    m: &Module,
    facts: &LoopFacts,
    sites: &CallSites,
    local: Value,
    store: OpId,
) -> bool {
    let values: Vec<Value> = facts
        .uses
        .loads_of(local)
        .map(|o| m.op(o).results[0])
        .collect();
    lower_bound_unneeded(
        m,
        sites,
        &facts.uses,
        &facts.tracked,
        values,
        Some((local, store)),
        0,
    )
}

/// Whether the code after loop `l` addresses memory with the values of `work` marked as read
/// after it (a packet offset or pointer read again after the loop), directly or, through a
/// `return`, in the callers: where the states that left the loop meet and then diverge, verifying
/// each access once per iteration count. Values read in the loop count where they are returned.
/// (A counter only compared after the loop costs little, and losing its lower bound can cost the
/// loop's own pruning more.)
fn addresses_memory(
    m: &Module,
    sites: &CallSites,
    uses: &Uses,
    tracked: &HashSet<Value>,
    mut work: Vec<(Value, bool)>,
    depth: u32,
) -> bool {
    let mut seen: HashSet<Value> = work.iter().map(|&(v, _)| v).collect();
    while let Some((v, after)) = work.pop() {
        for &o in uses.of(v) {
            let d = m.op(o);
            match d.opcode {
                Opcode::CorePtrAdd | Opcode::CoreElemAddr | Opcode::CoreFieldAddr if after => {
                    return true
                }
                // (A select of it: the saturation bounds-check puts on an index it could not
                // bound, `opaque(off) > 0xffff ? 0xffff : opaque(off)`.)
                Opcode::CoreCast | Opcode::CoreAdd | Opcode::BpfOpaque | Opcode::CoreSelect
                    if d.opcode != Opcode::CoreSelect || d.operands[0] != v =>
                {
                    work.extend(
                        d.results
                            .iter()
                            .filter(|&&r| seen.insert(r))
                            .map(|&r| (r, after)),
                    )
                }
                Opcode::CoreLoad if after && m.value_type(v).is_ptr() => return true,
                // Into a local only ever read (`var q = name_end(…)`): its reads.
                Opcode::CoreStore if d.operands[0] == v && tracked.contains(&d.operands[1]) => work
                    .extend(
                        uses.loads_of(d.operands[1])
                            .map(|load| m.op(load).results[0])
                            .filter(|&r| seen.insert(r))
                            .map(|r| (r, after)),
                    ),
                Opcode::KsReturn => {
                    let callers = call_results(m, sites, o, depth);
                    if callers.into_iter().flatten().any(|(caller, r)| {
                        let (uses, tracked) =
                            (Uses::of_function(m, caller), tracked_locals(m, caller));
                        addresses_memory(m, sites, &uses, &tracked, vec![(r, true)], depth + 1)
                    }) {
                        return true;
                    }
                }
                // Handed to a kernel function: what it does with the parameter.
                Opcode::CoreCall if after => {
                    if let Some((callee, param)) = parameter_of(m, sites, o, v, depth) {
                        let (uses, tracked) =
                            (Uses::of_function(m, callee), tracked_locals(m, callee));
                        if addresses_memory(
                            m,
                            sites,
                            &uses,
                            &tracked,
                            vec![(param, true)],
                            depth + 1,
                        ) {
                            return true;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    false
}

/// The function call `call` calls and its parameter that `arg` is passed as, when every call of
/// that function is known (so its parameter's bounds come from its calls alone) and the calls
/// nest no deeper than [`MAX_CALL_DEPTH`].
fn parameter_of(
    m: &Module,
    sites: &CallSites,
    call: OpId,
    arg: Value,
    depth: u32,
) -> Option<(OpId, Value)> {
    if depth >= MAX_CALL_DEPTH {
        return None;
    }
    let Some(crate::ir::Attr::Sym(name)) = m.attr(call, "callee") else {
        return None;
    };
    let callee = m.lookup_symbol(name)?;
    sites.fixed(m, callee)?;
    let at = m.op(call).operands.iter().position(|&x| x == arg)?;
    let param = *m.block(m.func_entry(callee)).args.get(at)?;
    Some((callee, param))
}

/// The results of every call of the function that returns at `ret`, with the calling function:
/// `None` when they are not all known (a program, a callback) or the calls nest too deep.
fn call_results(
    m: &Module,
    sites: &CallSites,
    ret: OpId,
    depth: u32,
) -> Option<Vec<(OpId, Value)>> {
    if depth >= MAX_CALL_DEPTH {
        return None;
    }
    let calls = sites.fixed(m, m.top_level_of(ret))?;
    Some(
        calls
            .iter()
            .filter_map(|&(caller, call)| Some((caller, *m.op(call).results.first()?)))
            .collect(),
    )
}

/// How many calls deep a returned offset is followed (BPF allows eight frames).
const MAX_CALL_DEPTH: u32 = 4;

/// Whether every use of the values of `work` only adds non-negative amounts to them, compares
/// them (or what is subtracted from them), addresses memory with them, stores them back into the stepped local (`stepped`: the
/// local and its step) or returns them to callers that do the same: nothing that the verifier
/// could need their lower bound for (a call, a result or a copy elsewhere might).
fn lower_bound_unneeded(
    m: &Module,
    sites: &CallSites,
    uses: &Uses,
    tracked: &HashSet<Value>,
    mut work: Vec<Value>,
    stepped: Option<(Value, OpId)>,
    depth: u32,
) -> bool {
    let mut seen: HashSet<Value> = work.iter().copied().collect();
    // Values that may lie below the offset (`off - 2`): only compared, they need no bound.
    let mut below: HashSet<Value> = HashSet::new();
    let negative = |v: Value| match m.const_int(v) {
        Some(c) => c < 0,
        None => is_signed(m.value_type(v)) && !is_cast_of_unsigned(m, v),
    };
    while let Some(v) = work.pop() {
        for &o in uses.of(v) {
            let d = m.op(o);
            let Some(at) = d.operands.iter().position(|&x| x == v) else {
                continue;
            };
            let used = d.results.iter().any(|&r| !uses.of(r).is_empty());
            if below.contains(&v) {
                let other_not_negative = || {
                    d.operands
                        .get(1 - at.min(1))
                        .and_then(|&x| m.const_int(x))
                        .is_some_and(|c| c >= 0)
                };
                match d.opcode {
                    Opcode::CoreCmp => continue,
                    Opcode::CoreCast | Opcode::BpfOpaque => {}
                    Opcode::CoreAdd if other_not_negative() => {}
                    _ if !used => continue,
                    _ => return false,
                }
                for &r in &d.results {
                    if seen.insert(r) {
                        below.insert(r);
                        work.push(r);
                    }
                }
                continue;
            }
            let follow = match d.opcode {
                // A field of a header at the pointer: a constant offset past it.
                Opcode::CoreCast | Opcode::BpfOpaque | Opcode::CoreFieldAddr => true,
                // Saturated at a constant (bounds-check's `min(off, 0xffff)` of an index it
                // could not bound): no lower than the value or the constant.
                Opcode::CoreSelect
                    if at > 0
                        && d.operands[1..]
                            .iter()
                            .all(|&x| x == v || m.const_int(x).is_some_and(|c| c >= 0)) =>
                {
                    true
                }
                Opcode::CoreAdd | Opcode::CorePtrAdd | Opcode::CoreElemAddr => {
                    // (An address bounds-check formed again elsewhere, `ip + off - 1`, stays
                    // behind unused: nothing reads what it would need.)
                    let other = d.operands[1 - at.min(1)];
                    if negative(other) {
                        below.extend(d.results.iter().copied());
                    }
                    true
                }
                // Scaled by a constant (the stride of an index bounds-check formed).
                Opcode::CoreMul => {
                    let other = d.operands[1 - at.min(1)];
                    if m.const_int(other).is_none_or(|k| k < 0) {
                        return false;
                    }
                    true
                }
                Opcode::CoreSub if at == 0 => {
                    below.extend(d.results.iter().copied());
                    true
                }
                // Back into the local, or into another local only ever read (`var ext = data +
                // off`): that local's reads are followed too. Other stack memory keeps what the
                // verifier knows of a value; map values and globals do not.
                Opcode::CoreStore if at == 0 => {
                    let into = d.operands[1];
                    let own = stepped.is_some_and(|(local, step)| o == step || into == local);
                    if !own {
                        if !tracked.contains(&into) {
                            if on_stack(m, into) {
                                return false;
                            }
                            continue;
                        }
                        for load in uses.loads_of(into) {
                            let r = m.op(load).results[0];
                            if seen.insert(r) {
                                work.push(r);
                            }
                        }
                    }
                    false
                }
                // Tests and accesses need its largest value at most; map keys and values are
                // data to the verifier.
                Opcode::CoreCmp
                | Opcode::CoreLoad
                | Opcode::CoreStore
                | Opcode::KsMapLookup
                | Opcode::KsMapUpdate
                | Opcode::KsMapDelete
                | Opcode::KsMapAdd
                | Opcode::KsMapContains => false,
                // Returned: what every caller does with the result.
                Opcode::KsReturn => {
                    let Some(callers) = call_results(m, sites, o, depth) else {
                        return false;
                    };
                    for (caller, r) in callers {
                        let (uses, tracked) =
                            (Uses::of_function(m, caller), tracked_locals(m, caller));
                        let work = vec![r];
                        if !lower_bound_unneeded(m, sites, &uses, &tracked, work, None, depth + 1) {
                            return false;
                        }
                    }
                    false
                }
                // Handed to a kernel function whose parameter is used the same way.
                Opcode::CoreCall => {
                    let Some((callee, param)) = parameter_of(m, sites, o, v, depth) else {
                        return false;
                    };
                    let (uses, tracked) = (Uses::of_function(m, callee), tracked_locals(m, callee));
                    let work = vec![param];
                    if !lower_bound_unneeded(m, sites, &uses, &tracked, work, None, depth + 1) {
                        return false;
                    }
                    false
                }
                // A result or anything else: its lower bound may matter there.
                _ => return false,
            };
            if follow {
                for &r in &d.results {
                    if seen.insert(r) {
                        work.push(r);
                    }
                }
            }
        }
    }
    true
}

/// The ops of one function that use each value, built once for all its candidate steps.
struct Uses<'m> {
    m: &'m Module,
    users: HashMap<Value, Vec<OpId>>,
}

impl<'m> Uses<'m> {
    fn of_function(m: &'m Module, f: OpId) -> Self {
        let mut users: HashMap<Value, Vec<OpId>> = HashMap::new();
        for o in m.collect_nested(f, |_| true) {
            for &v in &m.op(o).operands {
                let at = users.entry(v).or_default();
                if at.last() != Some(&o) {
                    at.push(o);
                }
            }
        }
        Uses { m, users }
    }

    fn of(&self, v: Value) -> &[OpId] {
        self.users.get(&v).map_or(&[], Vec::as_slice)
    }

    /// The loads of local `slot`.
    fn loads_of(&self, slot: Value) -> impl Iterator<Item = OpId> + '_ {
        self.of(slot).iter().copied().filter(move |&o| {
            let d = self.m.op(o);
            d.opcode == Opcode::CoreLoad && d.operands[0] == slot
        })
    }
}

/// Whether `addr` points into the stack: a local, or a field or element of one.
fn on_stack(m: &Module, addr: Value) -> bool {
    match m.value(addr).def {
        ValueDef::Result(op, _) => {
            let d = m.op(op);
            match d.opcode {
                Opcode::CoreLocal => true,
                Opcode::CoreFieldAddr
                | Opcode::CoreElemAddr
                | Opcode::CorePtrAdd
                | Opcode::CoreCast => on_stack(m, d.operands[0]),
                // A pointer read from somewhere: where it points is not known here.
                _ => !matches!(
                    d.opcode,
                    Opcode::KsMapLookup | Opcode::KsGlobalAddr | Opcode::KsCtxLoad
                ),
            }
        }
        _ => true,
    }
}

fn is_signed(t: &Type) -> bool {
    t.is_int() && !super::value_bounds::is_unsigned(t)
}

/// `core.cast` of an unsigned value (`len as i64` to move a pointer): never negative.
fn is_cast_of_unsigned(m: &Module, v: Value) -> bool {
    match m.value(v).def {
        ValueDef::Result(op, _) => {
            let d = m.op(op);
            d.opcode == Opcode::CoreCast
                && (super::value_bounds::is_unsigned(m.value_type(d.operands[0]))
                    || is_cast_of_unsigned(m, d.operands[0]))
        }
        _ => false,
    }
}

/// Rewrites `store` to `local = base + (opaque(step) & mask)`.
///
/// The masked step is computed before the ops between the step's inputs and the store whose
/// tests may narrow an input to one value per path that goes on to the store (a loop that
/// leaves when `j >= len`): computed after them, each such value makes a step of its own, and
/// the verifier follows the walk once per value (`p = p + 1 + len` after a label's bytes went
/// past its 1M-instruction limit). A second opaque copy keeps LLVM from moving the mask after
/// them again.
fn widen(m: &mut Module, store: OpId, step: Step) {
    let stored_ty = m.value_type(m.op(store).operands[0]).clone();
    let ty = m.value_type(step.terms[0]).clone();
    let (constants, run_time): (Vec<Value>, Vec<Value>) =
        step.terms.iter().partition(|&&t| m.const_int(t).is_some());
    let early = narrowing_before(m, store, &run_time).and_then(|at| {
        let mut copies = HashMap::new();
        let mut before = |terms: &[Value]| {
            (terms.iter())
                .map(|&t| computed_before(m, at, t, &mut copies))
                .collect::<Option<Vec<Value>>>()
        };
        Some((at, before(&run_time)?, before(&constants)?))
    });
    let (at, run_time, constants) = early.unwrap_or((store, run_time, constants));
    let mut b = m.builder_before(at);
    // The opaque copy goes on the run-time terms before the constants are added: on their sum,
    // LLVM would narrow `len + 1` to a byte and mask it before the copy.
    let mut sum = run_time[0];
    for &t in &run_time[1..] {
        sum = b.core_add(sum, t);
    }
    sum = b.bpf_opaque(sum);
    for &c in &constants {
        sum = b.core_add(sum, c);
    }
    let mask = b.core_const(step.mask, ty);
    let mut masked = b.core_and(sum, mask);
    if at != store {
        masked = b.bpf_opaque(masked);
        b = m.builder_before(store);
    }
    let advanced = if stored_ty.is_ptr() {
        let offset = b.cast_to(masked, Type::i64());
        b.core_ptr_add(step.base, offset)
    } else {
        let base = b.cast_to(step.base, stored_ty.clone());
        let masked = b.cast_to(masked, stored_ty);
        b.core_add(base, masked)
    };
    m.op_mut(store).operands[0] = advanced;
}

/// The earliest loop before `store` in its block that reads a local the step `terms` read, with
/// no op from there on writing such a local (`None` when there is none). A test leaving such a
/// loop (`if (j >= len) { break }`) narrows the local to one value per round it leaves at.
/// (An `if` between narrows it to a value or two per arm, which costs less than computing the
/// step early: the TCP options walk went from 3,433 to 24,759 processed instructions.)
fn narrowing_before(m: &Module, store: OpId, terms: &[Value]) -> Option<OpId> {
    let mut inputs = HashSet::new();
    for &t in terms {
        loaded_locals(m, t, &mut inputs)?;
    }
    // (`op` itself, or an op nested in it.)
    let touches = |op: OpId, opcode: Opcode| {
        let slot_at = usize::from(opcode == Opcode::CoreStore);
        let hit =
            |d: &crate::ir::OpData| d.opcode == opcode && inputs.contains(&d.operands[slot_at]);
        hit(m.op(op)) || !m.collect_nested(op, hit).is_empty()
    };
    let (block, index) = m.position(store)?;
    let mut earliest = None;
    for &op in m.block(block).ops[..index].iter().rev() {
        if touches(op, Opcode::CoreStore) {
            break;
        }
        let is_loop = matches!(m.op(op).opcode, Opcode::KsFor | Opcode::KsWhile);
        if is_loop && touches(op, Opcode::CoreLoad) {
            earliest = Some(op);
        }
    }
    earliest
}

/// Adds to `out` the locals `v` loads, when it is computed from constants, loads of locals and
/// pure ops only (`None` otherwise).
fn loaded_locals(m: &Module, v: Value, out: &mut HashSet<Value>) -> Option<()> {
    let ValueDef::Result(op, _) = m.value(v).def else {
        return Some(());
    };
    let d = m.op(op);
    match d.opcode {
        Opcode::CoreLoad if m.is_local(d.operands[0]) => {
            out.insert(d.operands[0]);
            Some(())
        }
        _ if d.opcode.has(Traits::PURE) => {
            for &o in &d.operands {
                loaded_locals(m, o, out)?;
            }
            Some(())
        }
        _ => None,
    }
}

/// `v` as computed before `at`: itself where defined before it (or outside its block), else a
/// copy of its computation placed there.
fn computed_before(
    m: &mut Module,
    at: OpId,
    v: Value,
    copies: &mut HashMap<Value, Value>,
) -> Option<Value> {
    let ValueDef::Result(op, _) = m.value(v).def else {
        return Some(v);
    };
    let (block, index) = m.position(at)?;
    match m.position(op) {
        Some((b, i)) if b == block && i > index => {}
        _ => return Some(v),
    }
    if let Some(&copy) = copies.get(&v) {
        return Some(copy);
    }
    for o in m.op(op).operands.clone() {
        computed_before(m, at, o, copies)?;
    }
    let copy = m.clone_op(op, copies);
    let (block, index) = m.position(at)?;
    m.place_op(copy, block, Some(index));
    copies.get(&v).copied()
}

/// `mask-loop-offsets`: an unsigned offset that a counted loop advances by a run-time step, that
/// addresses memory, and that the test deciding whether the loop goes on compares with a value
/// the verifier does not know (`while (off < hlen && steps < 40)`, `if (off >= hlen) { break }`
/// among the leaving tests that open a `for` body) starts each iteration as `opaque(off) & M`,
/// `M` the smallest all-ones mask over its largest value (in packet programs, then as the
/// distance from `ctx->data` to `ctx->data + off`, masked again): the same value, which the
/// verifier sees from 0 to `M` until the test narrows it. Followed exactly, the offset's lower bound rises with every step and narrows the
/// other value by it too, so no iteration's state covers another's (an IPv4 options walk: 158,288
/// processed instructions, or the 1M limit as a `for`); C code loses the offset's bounds by
/// accident (a 32-bit spill the map key overwrites). A packet pointer stepped in several ways
/// ([`offset_varies_by_path`]), by run-time steps or constants only, starts each iteration as
/// `data + (distance & M)` alike, compared or not, read after the loop or not. An offset is not
/// masked where its lower bound may matter (see `lower_bound_unneeded`).
pub fn mask_heads(m: &mut Module) -> PassResult {
    let calls = CallBounds::of_module(m);
    let sites = CallSites::of(m, &super::kernel_funcs(m));
    for f in super::kernel_funcs(m) {
        let Some(facts) = LoopFacts::of(m, f, &calls) else {
            continue;
        };
        let masks = offsets_to_mask(m, f, &facts, &sites);
        for (l, local, bound) in masks {
            match bound.after {
                Some(past) => mask_past_test(m, f, local, past, bound.mask),
                None => mask_at_head(m, f, l, local, bound),
            }
        }
    }
    Ok(())
}

/// For `bound-loops`: whether `mask-loop-offsets` will start each round of loop `l` of `f` with
/// every one of `locals` masked (at the head or past the deciding test), which keeps their range
/// the same from round to round for the verifier.
pub fn masks_every_round(m: &Module, f: OpId, l: OpId, locals: &[Value]) -> bool {
    let calls = CallBounds::of_module(m);
    let Some(facts) = LoopFacts::of(m, f, &calls) else {
        return false;
    };
    let sites = CallSites::of(m, &super::kernel_funcs(m));
    let masks = offsets_to_mask(m, f, &facts, &sites);
    locals
        .iter()
        .all(|&x| masks.iter().any(|&(ml, mx, _)| (ml, mx) == (l, x)))
}

/// The loops, offsets and masks of `mask-loop-offsets`.
fn offsets_to_mask(
    m: &Module,
    f: OpId,
    facts: &LoopFacts,
    sites: &CallSites,
) -> Vec<(OpId, Value, HeadBound)> {
    let LoopFacts {
        bounds,
        tracked,
        uses,
        ..
    } = facts;
    let mut masks: Vec<(OpId, Value, HeadBound)> = Vec::new();
    let provenance = OnceCell::new();
    for &l in &facts.loops {
        let deciding = deciding_tests(m, l);
        let mut seen = HashSet::new();
        let walked = walked_packet_locals(m, f, l);
        // A packet pointer or offset walked forward in several ways, one of them by a constant:
        // its exact position takes a value per mix of paths (`opt + 1` over a NOP beside
        // `opt + len`, or `p + 1` beside `p + 2`), whether a test compares it or not.
        let walked_by_paths = |local: Value, pointer: bool| {
            walked
                .iter()
                .any(|w| w.slot == local && w.pointer == pointer && w.forward)
                && offset_varies_by_path(m, l, local)
        };
        for store in m.collect_nested(l, |d| d.opcode == Opcode::CoreStore) {
            let local = m.op(store).operands[1];
            let Some(ty) = m.value_type(local).pointee().cloned() else {
                continue;
            };
            if !tracked.contains(&local) || in_nested_loop(m, store, l) {
                continue;
            }
            let offset = super::value_bounds::is_unsigned(&ty);
            let run_time_step = offset && step_of(m, bounds, store, local).is_some();
            // (An offset with a run-time step is masked only as such, else it is stepped by
            // constants only, and counted exactly unless walked by paths.)
            // (An offset also stepped at run time is masked by paths only where no deciding test
            // compares it and a constant step goes round: `off + 1; continue` over a PAD, not
            // `off + 1; break` past a name's last byte.)
            let by_paths = if ty.is_ptr() {
                walked_by_paths(local, true)
            } else {
                offset
                    && walked_by_paths(local, false)
                    && (!stepped_at_run_time(m, bounds, l, local)
                        || (compared_in(m, uses, &deciding, local, ComparedWith::RunTimeValue)
                            .is_none()
                            && constant_step_goes_round(m, l, local)))
            };
            if !(by_paths || run_time_step) || !seen.insert(local) {
                continue;
            }
            // Masked where each round reads it first; and the states multiply within the loop
            // whether the code after it addresses memory with it or not. An offset stepped at
            // run time is masked where the test deciding whether the loop goes on compares it.
            // (One only compared with a constant — `bounds-check`'s guard `off > 0xffff - 8` of
            // a test `data + off + 8 > data_end` it could not bound — is masked past that test
            // only.)
            let mut guarded_only = false;
            let (head, worth) = if by_paths {
                (
                    first_read(m, l, local),
                    lower_bound_unused(m, facts, sites, local, store),
                )
            } else {
                let compared = compared_in(m, uses, &deciding, local, ComparedWith::RunTimeValue)
                    .or_else(|| {
                        guarded_only = true;
                        compared_in(m, uses, &deciding, local, ComparedWith::Constant)
                    });
                (
                    compared,
                    worth_losing_lower_bound(m, facts, sites, local, store, &HashSet::new()),
                )
            };
            let Some(head) = head.filter(|_| worth) else {
                continue;
            };
            // Past the deciding test where the head's value has no bound of its own, or one
            // beyond any packet offset that the test narrows: masked wider than a packet, the
            // offset's accesses fork the verifier's states on their saturation (the CoAP
            // options walk: 98,973 processed at the head, 13,127 past the test).
            let head_max = bounds.max_of(m, m.op(head).results[0]);
            let past = if !by_paths && head_max.is_none_or(|h| h > MAX_PACKET_OFFSET as u128) {
                let provenance = provenance.get_or_init(|| Provenance::of_function(m, f));
                bounded_past_test(m, bounds, uses, provenance, l, head)
                    .filter(|past| head_max.is_none_or(|h| past.max < h))
            } else {
                None
            };
            let (after, max) = match (past, head_max) {
                (Some(past), _) => (Some(past), past.max),
                (None, Some(max)) if !guarded_only => (None, max),
                _ => continue,
            };
            let Some(mask) = max.checked_add(1).and_then(u128::checked_next_power_of_two) else {
                continue;
            };
            let largest = if ty.is_ptr() {
                MAX_PACKET_OFFSET as u128
            } else {
                int_max(&ty).unwrap_or(0)
            };
            if mask - 1 <= largest {
                let bound = HeadBound {
                    mask: (mask - 1) as i128,
                    max: max as i128,
                    after,
                };
                masks.push((l, local, bound));
            }
        }
    }
    masks
}

/// Whether some store in loop `l` steps `local` by a run-time amount ([`step_of`]).
fn stepped_at_run_time(m: &Module, bounds: &LocalBounds, l: OpId, local: Value) -> bool {
    stores_of(m, l, local)
        .into_iter()
        .any(|store| step_of(m, bounds, store, local).is_some())
}

/// What a deciding test compares a local's value with (see [`compared_in`]).
#[derive(Clone, Copy, PartialEq)]
enum ComparedWith {
    /// A value that is not constant (`off >= hlen`), the value widened or not.
    RunTimeValue,
    /// A constant: `bounds-check`'s guard of a packet test it could not bound, on the value
    /// widened and hidden from LLVM.
    Constant,
}

/// A load of `local` among the `deciding` ops whose value is compared there with what `with`
/// says.
fn compared_in(
    m: &Module,
    uses: &Uses,
    deciding: &HashSet<OpId>,
    local: Value,
    with: ComparedWith,
) -> Option<OpId> {
    uses.loads_of(local)
        .filter(|o| deciding.contains(o))
        .find(|&load| {
            let mut work = vec![m.op(load).results[0]];
            while let Some(v) = work.pop() {
                for &o in uses.of(v) {
                    let d = m.op(o);
                    match d.opcode {
                        Opcode::CoreCmp if deciding.contains(&o) => {
                            let other = d.operands[usize::from(d.operands[0] == v)];
                            let constant = m.const_int(other).is_some();
                            if constant == (with == ComparedWith::Constant) {
                                return true;
                            }
                        }
                        Opcode::CoreCast => work.extend(d.results.iter().copied()),
                        Opcode::BpfOpaque if with == ComparedWith::Constant => {
                            work.extend(d.results.iter().copied())
                        }
                        _ => {}
                    }
                }
            }
            false
        })
}

/// Whether loop `l` moves pointer `local` in more than one way, one of them by a constant: the
/// verifier keeps a packet pointer's constant offset apart from its bounds and prunes a state
/// only against one of the same offset, so every mix of the paths makes states of its own (a
/// NOP option's `opt + 1` beside `opt + len`). A run-time step alone changes bounds, which
/// `widen-loop-steps` keeps from rising.
pub(super) fn offset_varies_by_path(m: &Module, l: OpId, local: Value) -> bool {
    let stores = stores_of(m, l, local);
    stores.len() > 1 && stores.iter().any(|&s| steps_by_constant(m, s, local))
}

/// Whether some store in loop `l` steps `local` by a constant and its round then goes on to the
/// next (its block does not end by leaving the loop).
fn constant_step_goes_round(m: &Module, l: OpId, local: Value) -> bool {
    stores_of(m, l, local).into_iter().any(|s| {
        let leaves = m
            .op(s)
            .parent
            .and_then(|b| m.block(b).ops.last().copied())
            .is_some_and(|t| {
                matches!(
                    m.op(t).opcode,
                    Opcode::KsBreak | Opcode::KsReturn | Opcode::KsThrow | Opcode::KsAbort
                )
            });
        steps_by_constant(m, s, local) && !leaves
    })
}

/// The stores into `local` anywhere in loop `l`.
pub(super) fn stores_of(m: &Module, l: OpId, local: Value) -> Vec<OpId> {
    m.collect_nested(l, |d| {
        d.opcode == Opcode::CoreStore && d.operands[1] == local
    })
}

/// Store `store` writes `local` plus constants.
pub(super) fn steps_by_constant(m: &Module, store: OpId, local: Value) -> bool {
    let mut terms = Vec::new();
    sum_terms(m, m.op(store).operands[0], &mut terms);
    terms.iter().any(|&t| loaded_local(m, t) == Some(local))
        && terms
            .iter()
            .all(|&t| loaded_local(m, t) == Some(local) || m.const_int(t).is_some())
}

/// The load of `local` that each iteration of loop `l` makes before it writes it, if one comes
/// first.
pub(super) fn first_read(m: &Module, l: OpId, local: Value) -> Option<OpId> {
    let touches = |o: OpId| {
        let d = m.op(o);
        match d.opcode {
            Opcode::CoreLoad => d.operands[0] == local,
            Opcode::CoreStore => d.operands[1] == local,
            _ => false,
        }
    };
    let first = *m
        .collect_nested(l, |_| true)
        .iter()
        .find(|&&o| touches(o))?;
    (m.op(first).opcode == Opcode::CoreLoad).then_some(first)
}

/// The ops of loop `l` that decide whether it goes on: a `while`'s condition, and the ops before
/// and including each `if` that leaves the loop on one side at the top of the body (the counter
/// test `bound-loops` puts first, then the user's own `if (off >= hlen) { break }`).
fn deciding_tests(m: &Module, l: OpId) -> HashSet<OpId> {
    let d = m.op(l);
    let mut ops = HashSet::new();
    if d.opcode == Opcode::KsWhile {
        m.walk_region(d.regions[0], &mut |o| {
            ops.insert(o);
        });
    }
    let body = *d.regions.last().expect("a loop has a body");
    let Some(&block) = m.region(body).blocks.first() else {
        return ops;
    };
    let leaves = |r| {
        m.region_ends_in(r, |o| {
            matches!(o, Opcode::KsBreak | Opcode::KsReturn | Opcode::KsThrow)
        })
    };
    let mut before = Vec::new();
    for &o in &m.block(block).ops {
        let op = m.op(o);
        // A condition's `&&` / `||` chain (an `if` yielding its answer): part of the test after.
        if op.opcode == Opcode::KsIf && op.results.len() == 1 {
            before.push(o);
            m.walk_nested(o, &mut |x| before.push(x));
            continue;
        }
        if op.opcode == Opcode::KsIf {
            if !op.regions.iter().any(|&r| leaves(r)) {
                break;
            }
            ops.extend(before.drain(..));
            ops.insert(o);
            m.walk_nested(o, &mut |x| {
                ops.insert(x);
            });
            continue;
        }
        if !op.regions.is_empty() {
            break;
        }
        before.push(o);
    }
    ops
}

/// The most a masked local holds at the head of a loop, and the smallest all-ones mask over it;
/// or, with `after`, past that test atop the body.
#[derive(Clone, Copy)]
struct HeadBound {
    mask: i128,
    max: i128,
    after: Option<PastTest>,
}

/// A test atop a loop's body past which a local is bounded (see [`bounded_past_test`]).
#[derive(Clone, Copy)]
struct PastTest {
    test: OpId,
    /// The local's value the test compares (widened, or hidden from LLVM).
    compared: Value,
    /// The most the local holds past the test.
    max: u128,
    /// The bound is the packet's length, which the verifier does not know (else the test
    /// showed it the bound).
    from_packet: bool,
}

/// For an offset read at `head` with no bound of its own, compared there with `end` by the test
/// that opens the body of `l` and leaves unless it is below `end` (`if (off >= end) { break }`),
/// or at most: that test and the most the offset holds past it, from the most `end` holds, or,
/// when a test before the loop kept `ctx->data + end` within the packet, from the packet's
/// largest offset. (C writes the mask there by hand: `pos &= 0x3fff` after `if (pos >=
/// msg_end)`.)
fn bounded_past_test(
    m: &Module,
    bounds: &LocalBounds,
    uses: &Uses,
    provenance: &Provenance,
    l: OpId,
    head: OpId,
) -> Option<PastTest> {
    let body = *m.op(l).regions.last()?;
    let block = *m.region(body).blocks.first()?;
    let mut read = vec![m.op(head).results[0]];
    while let Some(v) = read.pop() {
        for &o in uses.of(v) {
            let d = m.op(o);
            match d.opcode {
                Opcode::CoreCast | Opcode::BpfOpaque => read.extend(d.results.iter().copied()),
                Opcode::CoreCmp => {
                    let test = m.block(block).ops.iter().copied().find(|&i| {
                        let d = m.op(i);
                        d.opcode == Opcode::KsIf
                            && d.results.is_empty()
                            && d.operands[0] == m.op(o).results[0]
                    })?;
                    let (arms, leaves) = (&m.op(test).regions, |r| super::region_leaves(m, r));
                    let goes_on_when = match (leaves(arms[0]), leaves(arms[1])) {
                        (true, false) => false,
                        (false, true) => true,
                        _ => return None,
                    };
                    let cmp = views::CoreCmp::of(m, o)?;
                    let (pred, end) = if cmp.lhs(m) == v {
                        (cmp.pred(m), cmp.rhs(m))
                    } else {
                        (cmp.pred(m).swapped(), cmp.lhs(m))
                    };
                    let pred = if goes_on_when { pred } else { pred.negated() };
                    if !super::value_bounds::is_unsigned(m.value_type(v)) {
                        return None;
                    }
                    let packet = within_packet(m, provenance, bounds, l, end)
                        .then_some(MAX_PACKET_OFFSET as u128);
                    let (end_max, from_packet) = match (bounds.max_of(m, end), packet) {
                        (Some(a), Some(b)) if b < a => (b, true),
                        (Some(a), _) => (a, false),
                        (None, b) => (b?, true),
                    };
                    let max = match pred {
                        CmpPred::Lt => end_max.checked_sub(1)?,
                        CmpPred::Le => end_max,
                        _ => return None,
                    };
                    return Some(PastTest {
                        test,
                        compared: v,
                        max,
                        from_packet,
                    });
                }
                _ => {}
            }
        }
    }
    None
}

/// The largest mask a packet distance takes: with a larger one the verifier would see a packet
/// pointer that may lie 0xffff bytes in, and learn nothing from a test `p + k > data_end` (it wants
/// the largest offset plus `k` within 0xffff), which `bounds-check` took for proof from the
/// local's bound.
const LARGEST_PACKET_MASK: i128 = 0x7fff;

impl HeadBound {
    /// Packet distance `v` kept within the bound for the verifier: masked (one `&`), or, where
    /// the mask would exceed [`LARGEST_PACKET_MASK`], tested against the bound with an abort
    /// above it. The bound holds, so the abort never runs; a clamp instead would give the
    /// verifier a path with the bound as a constant offset, a state of its own every round.
    fn keep(self, b: &mut Builder, v: Value) -> Value {
        if self.mask <= LARGEST_PACKET_MASK {
            let all_ones = b.core_const(self.mask, Type::u64());
            return b.core_and(v, all_ones);
        }
        let max = b.core_const(self.max, Type::u64());
        let over = b.core_cmp(v, max, CmpPred::Gt);
        let test = b.ks_if(over, None, &[]);
        let (block, at) = (b.block, b.at);
        b.set_block(b.entry(test, 0));
        b.ks_abort(b"walked packet offset past its bound".to_vec());
        (b.block, b.at) = (block, at);
        v
    }
}

/// Starts each iteration of `l` (its condition, or its body after the counter's store) with
/// `local = opaque(local) & mask` (see [`HeadBound`]).
fn mask_at_head(m: &mut Module, f: OpId, l: OpId, local: Value, bound: HeadBound) {
    let mask = bound.mask;
    let d = m.op(l);
    let region = if d.opcode == Opcode::KsWhile {
        d.regions[0]
    } else {
        *d.regions.last().expect("a loop has a body")
    };
    let block = m.region(region).blocks[0];
    let ops = &m.block(block).ops;
    let args = &m.block(block).args;
    // (A `for` body begins by storing its counter into the loop variable; keep that first.)
    let at = match ops.first() {
        Some(&o) if m.op(o).opcode == Opcode::CoreStore && args.contains(&m.op(o).operands[0]) => 1,
        _ => 0,
    };
    let Some(&before) = ops.get(at) else {
        return;
    };
    let ty = m.value_type(local).pointee().cloned().expect("a local");
    let context = super::bounds_check::context_param(m, f);
    let mut b = m.builder_before(before);
    let now = b.core_load(local, ty.clone());
    if ty.is_ptr() {
        // A walked packet pointer: `data + (distance & mask)`, the distance unknown to both
        // LLVM and the verifier (the difference of two packet pointers).
        let Some(ctx) = context else {
            return;
        };
        let data = b.ks_ctx_load(ctx, &[], b"data".to_vec(), Type::ptr(Type::u8()));
        let hidden = b.bpf_opaque(now);
        let hidden = b.cast_to(hidden, Type::ptr(Type::u8()));
        let distance = b.core_ptr_diff(hidden, data);
        let distance = bound.keep(&mut b, distance);
        let rebased = b.core_ptr_add(data, distance);
        let rebased = b.cast_to(rebased, ty);
        b.core_store(rebased, local);
        return;
    }
    let hidden = b.bpf_opaque(now);
    let all_ones = b.core_const(mask, ty.clone());
    let masked = b.core_and(hidden, all_ones);
    let masked = match context {
        Some(ctx) if mask <= MAX_PACKET_OFFSET => {
            // An exact value stays exact under a mask: as a distance between two packet
            // pointers the verifier knows nothing of it but the mask, so an offset walked by
            // constant steps too (`pos + 1` over NOP options) prunes against the others.
            let data = b.ks_ctx_load(ctx, &[], b"data".to_vec(), Type::ptr(Type::u8()));
            let distance = unknown_distance(&mut b, data, masked);
            let distance = bound.keep(&mut b, distance);
            b.cast_to(distance, ty)
        }
        _ => masked,
    };
    b.core_store(masked, local);
}

/// Goes on past the test, which let the round go on only where the local is at most the bound,
/// with `local = opaque(compared) & mask`; what follows the test reads the masked value where it
/// read `compared` (`bounds-check` forms the pointer the user's packet test checks from it). A
/// bound the test showed the verifier it keeps under the mask, which drops the lower bound. The
/// packet's, which it does not know, leaves every access saturated (§10.2); there the value is
/// also taken as a distance from `ctx->data`, so that an exact one does not stay exact (the CoAP
/// walk: 104,467 processed without, 11,555 with).
fn mask_past_test(m: &mut Module, f: OpId, local: Value, past: PastTest, mask: i128) {
    let Some((block, index)) = m.position(past.test) else {
        return;
    };
    let later: Vec<OpId> = m.block(block).ops[index + 1..].to_vec();
    let Some(&before) = later.first() else {
        return;
    };
    let local_ty = m.value_type(local).pointee().cloned().expect("a local");
    let ty = m.value_type(past.compared).clone();
    let context = super::bounds_check::context_param(m, f).filter(|_| past.from_packet);
    let mut b = m.builder_before(before);
    let hidden = b.bpf_opaque(past.compared);
    let all_ones = b.core_const(mask, ty.clone());
    let mut masked = b.core_and(hidden, all_ones);
    if let Some(ctx) = context {
        let data = b.ks_ctx_load(ctx, &[], b"data".to_vec(), Type::ptr(Type::u8()));
        let distance = unknown_distance(&mut b, data, masked);
        let all_ones = b.core_const(mask, Type::u64());
        let distance = b.core_and(distance, all_ones);
        masked = b.cast_to(distance, ty);
    }
    let stored = b.cast_to(masked, local_ty);
    b.core_store(stored, local);
    for o in later {
        m.replace_uses_in(o, past.compared, masked);
    }
}
