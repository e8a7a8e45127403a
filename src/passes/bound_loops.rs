//! `bound-loops`: counted loops to a run-time bound stay inline when the bound is small
//! (docs/language.md §14.4).
//!
//! A loop from a constant to a run-time bound that is at most `INLINE_TRIP_COUNT` further — as
//! after `if (n > 64) { n = 64 }` — counts to that constant instead and leaves when the counter
//! reaches the run-time bound: the loop an expert writes for the verifier. It then stays inline
//! (one verifier-bounded iteration per step, its counter a bound `bounds-check` can use) instead
//! of becoming a `bpf_loop` callback called once per iteration. The bound comes from
//! [`LocalBounds`]: stores to locals and the comparisons that guard them.
//!
//! It also marks the loops that walk memory (`walks` on `ks.for`, see [`walks_memory`]), which
//! `lower-loops` keeps counted for longer; the mark is made here, on the loops as written, so
//! every later pass asks the same question of the same answer.
//! Runs on structured kernel functions before `bounds-check` and `lower-loops`.

use super::lower_loops::INLINE_TRIP_COUNT;
use super::value_bounds::loaded_local;
use super::value_bounds::LocalBounds;
use super::PassResult;
use crate::ir::{Attr, Builder, Module, OpId, Opcode, Value};
use crate::vocab::CmpPred;

pub fn run(m: &mut Module) -> PassResult {
    let funcs = super::kernel_funcs(m);
    let params = super::value_bounds::CallBounds::of_module(m);
    for f in funcs {
        bound_run_time_trips(m, f, &params);
        for lp in m.collect_nested(f, |d| d.opcode == Opcode::KsFor) {
            if stays_counted(m, f, lp) {
                m.set_attr(lp, "walks", Some(Attr::Bool(true)));
            }
        }
    }
    Ok(())
}

fn bound_run_time_trips(m: &mut Module, f: OpId, params: &super::value_bounds::CallBounds) {
    let bounds = LocalBounds::of_function(m, f, params);
    for lp in m.collect_nested(f, |d| d.opcode == Opcode::KsFor) {
        let (lo, hi) = (m.op(lp).operands[0], m.op(lp).operands[1]);
        let Some(lo_value) = m.const_int(lo) else {
            continue;
        };
        let Some(max) = bounds.max_of(m, hi).and_then(|x| i128::try_from(x).ok()) else {
            continue;
        };
        let body = m.region(m.op(lp).regions[0]).blocks[0];
        let counter = m.block(body).args.first().copied();
        let ty = m.value_type(hi).clone();
        let same_type = counter.is_some_and(|c| *m.value_type(c) == ty);
        if m.const_int(hi).is_some() || max - lo_value > INLINE_TRIP_COUNT || !same_type {
            continue;
        }
        let mut b = m.builder_before(lp);
        let limit = b.core_const(max.max(lo_value), ty);
        m.op_mut(lp).operands[1] = limit;
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

/// Counted loops that walk memory stay inline up to this many iterations...
const WALK_TRIP_COUNT: i128 = 1024;
/// ...when the iterations' IR operations together are at most this many.
const WALK_BUDGET: i128 = 64 * 1024;

/// A constant-bounded loop of at most [`WALK_TRIP_COUNT`] iterations and [`WALK_BUDGET`]
/// operations over all of them that walks memory.
fn stays_counted(m: &Module, f: OpId, lp: OpId) -> bool {
    let o = &m.op(lp).operands;
    let Some(trips) = m
        .const_int(o[1])
        .zip(m.const_int(o[0]))
        .map(|(hi, lo)| hi - lo)
    else {
        return false;
    };
    let ops = m.collect_nested(lp, |_| true).len() as i128;
    trips <= WALK_TRIP_COUNT && trips.saturating_mul(ops) <= WALK_BUDGET && walks_memory(m, f, lp)
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
fn advances(m: &Module, value: Value, local: Value, depth: u32) -> bool {
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
