//! `refresh-round-bounds`: a loop compares its moving values with a copy of a fixed bound made
//! afresh each round.
//!
//! `for (i in 0..40) { if (off >= opt_len) { break } … if (off + len > opt_len) { … } }`: every
//! test of `off` against `opt_len` also narrows `opt_len` in the verifier's eyes (the register,
//! and the stack slot it was spilled from, are one value to it), so each round carries `opt_len`
//! with a least value the path through the rounds before it left: a NOP round leaves it at
//! least 1, an option round at least `2 + len`. Loop states that differ only there are not
//! pruned, and a TCP options walk went through its 40 rounds once per such history (16,696
//! instructions processed; its C twin, 5,248). Each round now reads the bound once, into an
//! opaque copy masked to the bits the bound can have (ksc's own bound of it, so the copy is the
//! same value): an `&` makes a value of its own, which the tests narrow for that round only,
//! while the bound itself stays as it was before the loop (6,716).
//!
//! The bound is a local the loop never writes (an integer that only loads and stores reach),
//! compared with an order (`<`, `<=`, `>`, `>=`) against anything but a constant, in the loop's
//! own rounds (a nested loop refreshes its own). It is refreshed only where ksc bounds it below
//! its type's top: a mask of all ones would be no mask.
//! Runs on structured kernel functions after `lower-loops` (a `bpf_loop` callback's rounds start
//! from fresh registers anyway) and before `flatten`.

use super::lower_loops::enclosing_loop;
use super::value_bounds::{int_max, is_unsigned, reads_local, CallBounds, LocalBounds};
use super::PassResult;
use crate::ir::{Builder, Module, OpId, Opcode, RegionId, Value};
use crate::vocab::CmpPred;
use std::collections::HashMap;

pub fn run(m: &mut Module) -> PassResult {
    let mut calls: Option<CallBounds> = None;
    for f in super::kernel_funcs(m) {
        let loops: Vec<(OpId, Vec<Value>)> = m
            .collect_nested(f, |d| matches!(d.opcode, Opcode::KsFor | Opcode::KsWhile))
            .into_iter()
            .map(|lp| (lp, forked_walks(m, lp)))
            .filter(|(_, forked)| !forked.is_empty())
            .collect();
        if loops.is_empty() {
            continue;
        }
        let calls = calls.get_or_insert_with(|| CallBounds::of_module(m));
        let bounds = LocalBounds::relational_of_function(m, f, calls);
        let refreshes: Vec<Refresh> = loops
            .iter()
            .flat_map(|(lp, forked)| refreshes_of(m, &bounds, *lp, forked))
            .collect();
        for r in refreshes {
            refresh(m, r);
        }
    }
    Ok(())
}

/// One fixed bound that a round's tests read: the local, the region of the loop whose every
/// round runs it (a `for`'s body, a `while`'s condition or body), the bits the bound can have,
/// and the ops that read it, each with the load of it they read.
struct Refresh {
    slot: Value,
    region: RegionId,
    mask: u128,
    reads: Vec<(OpId, Value)>,
}

fn refreshes_of(m: &Module, bounds: &LocalBounds, lp: OpId, forked: &[Value]) -> Vec<Refresh> {
    let mut by_bound: HashMap<(RegionId, Value), Refresh> = HashMap::new();
    let mut unbounded: Vec<(RegionId, Value)> = Vec::new();
    for &region in &m.op(lp).regions {
        let tests = collect_in_region(m, region, |d| d.opcode == Opcode::CoreCmp);
        for cmp in tests {
            if enclosing_loop(m, cmp) != Some(lp) || !ordered(m, cmp) {
                continue;
            }
            let operands = m.op(cmp).operands.clone();
            for (i, &x) in operands.iter().enumerate() {
                let other = operands[1 - i];
                let walked = |&w: &Value| reads_local(m, other, w, WALK_READ_DEPTH);
                if !forked.iter().any(walked) {
                    continue;
                }
                let Some((reader, load, slot)) = fixed_read(m, cmp, x, lp) else {
                    continue;
                };
                let key = (region, slot);
                if unbounded.contains(&key) {
                    continue;
                }
                let top = int_max(m.value_type(load));
                let Some(max) = bounds
                    .max_of(m, load)
                    .filter(|&b| top.is_some_and(|t| b < t))
                else {
                    by_bound.remove(&key);
                    unbounded.push(key);
                    continue;
                };
                let r = by_bound.entry(key).or_insert_with(|| Refresh {
                    slot,
                    region,
                    mask: 0,
                    reads: Vec::new(),
                });
                r.mask = r.mask.max(all_ones_over(max));
                r.reads.push((reader, load));
            }
        }
    }
    by_bound
        .into_values()
        .filter(|r| int_max(m.value_type(r.reads[0].1)).is_some_and(|t| r.mask < t))
        .collect()
}

/// How deep in a test's operand a read of a walked local is looked for (`off + len + 2`).
const WALK_READ_DEPTH: u32 = 4;

/// The integer locals loop `lp` steps from their own value in more than one place (`off + 1`
/// over a NOP, `off + len` over an option): each way round narrows a bound they are tested
/// against differently. (Stepped one way, every path narrows it alike, and a fresh copy only
/// costs.)
fn forked_walks(m: &Module, lp: OpId) -> Vec<Value> {
    let mut steps: HashMap<Value, usize> = HashMap::new();
    for st in m.collect_nested(lp, |d| d.opcode == Opcode::CoreStore) {
        let (value, slot) = (m.op(st).operands[0], m.op(st).operands[1]);
        if m.is_local(slot)
            && is_unsigned(m.value_type(value))
            && reads_local(m, value, slot, WALK_READ_DEPTH)
        {
            *steps.entry(slot).or_default() += 1;
        }
    }
    steps
        .into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(slot, _)| slot)
        .collect()
}

/// The ops of region `r` and of the ops inside them that satisfy `pred`.
fn collect_in_region(
    m: &Module,
    r: RegionId,
    pred: impl Fn(&crate::ir::OpData) -> bool,
) -> Vec<OpId> {
    let mut out = Vec::new();
    for &b in &m.region(r).blocks {
        for &op in &m.block(b).ops {
            if pred(m.op(op)) {
                out.push(op);
            }
            out.extend(m.collect_nested(op, &pred));
        }
    }
    out
}

fn ordered(m: &Module, cmp: OpId) -> bool {
    crate::ir::views::CoreCmp::of(m, cmp).is_some_and(|c| {
        matches!(
            c.pred(m),
            CmpPred::Lt | CmpPred::Le | CmpPred::Gt | CmpPred::Ge
        )
    })
}

/// For operand `x` of test `cmp`: a load of an unsigned local that loop `lp` never writes,
/// maybe widened by a cast, as (the op reading the load, the load, the local).
fn fixed_read(m: &Module, cmp: OpId, x: Value, lp: OpId) -> Option<(OpId, Value, Value)> {
    let (reader, load) = match m.defining_op(x).map(|d| m.op(d)) {
        Some(d) if d.opcode == Opcode::CoreCast => (m.defining_op(x)?, d.operands[0]),
        _ => (cmp, x),
    };
    let d = m.op(m.defining_op(load)?);
    if d.opcode != Opcode::CoreLoad || !is_unsigned(m.value_type(load)) {
        return None;
    }
    let slot = d.operands[0];
    (m.is_local(slot) && fixed_in(m, slot, lp)).then_some((reader, load, slot))
}

/// Whether local `slot` is only loaded and stored (its address goes nowhere a call could
/// write through) and loop `lp` stores nothing into it.
fn fixed_in(m: &Module, slot: Value, lp: OpId) -> bool {
    let f = m.top_level_of(lp);
    let users = m.collect_nested(f, |d| d.operands.contains(&slot));
    users.iter().all(|&u| {
        let d = m.op(u);
        match d.opcode {
            Opcode::CoreLoad => d.operands[0] == slot,
            Opcode::CoreStore => {
                d.operands[1] == slot && d.operands[0] != slot && !m.is_nested_in(u, lp)
            }
            _ => false,
        }
    })
}

/// The all-ones value over `max`: masking with it keeps every value up to `max`.
fn all_ones_over(max: u128) -> u128 {
    match max {
        0 => 0,
        _ => u128::MAX >> max.leading_zeros(),
    }
}

/// Reads the bound at the start of its region into a masked opaque copy, which the tests then
/// read in place of their loads.
fn refresh(m: &mut Module, r: Refresh) {
    let ty = m.value_type(r.reads[0].1).clone();
    let entry = m.region(r.region).blocks[0];
    let loc = m.op(r.reads[0].0).loc;
    let mut b = Builder::new(m, entry);
    b.at = Some(0);
    b.loc = loc;
    let read = b.core_load(r.slot, ty.clone());
    let hidden = b.bpf_opaque(read);
    let mask = b.core_const(r.mask as i128, ty);
    let copy = b.core_and(hidden, mask);
    for (reader, load) in r.reads {
        for operand in m.op_mut(reader).operands.iter_mut() {
            if *operand == load {
                *operand = copy;
            }
        }
    }
}
