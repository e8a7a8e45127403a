//! `compute-guarded-updates`: in a kernel loop, `if (c >= 32 && c <= 126) { printable += 1 }`
//! becomes `printable += truth * 1`, the truth of the guard computed without a branch.
//!
//! Branched, each round of such a loop forks into two paths that differ only in a local the loop
//! carries, a number the verifier knows exactly on each. Inside a loop the verifier keeps few
//! states to prune against (one per 20 jumps or 100 instructions while a state of the same loop
//! is still being explored), so it follows nearly every combination of the forks: a 32-byte
//! scan counting its printable bytes went past the 1M-instruction limit on Linux 6.1 and 6.18
//! alike, at -O0 and at -O2 (where LLVM turns an else-if chain of counts into a `switch`). As
//! arithmetic, a round is one path, the count a range.
//!
//! An `if` (no results) in a loop is computed when each arm only computes pure values, reads
//! locals and stores each local at most once: `x = x op s` (`op` one of `+ - | ^`) becomes
//! `x = x op s * g`, any other `x = v` becomes `x = x + (v - x) * g`, `g` the arm's truth
//! (1 or 0). The guard's truth is computed from a comparison of two integers of at most 32
//! bits — `(b - a) >> 63` on their 64-bit widenings is `a > b`, `((a ^ b) - 1) >> 63` is
//! `a == b` — from a `bool` read from memory, or from `&&`/`||` of such whose right operand
//! only computes. Inner `if`s go first, so an else-if chain of counts is computed whole.
//! Runs on structured kernel functions, before the loops are unrolled, bounded or outlined.

use super::lower_loops::{constant_trips, enclosing_loop};
use super::unroll_loops::ALWAYS_UNROLL;
use super::PassResult;
use crate::ir::{views, Builder, Module, OpId, Opcode, Traits, Type, Value};
use crate::vocab::CmpPred;

pub fn run(m: &mut Module) -> PassResult {
    for f in super::kernel_funcs(m) {
        // Innermost first: an arm whose own guarded updates were computed can be computed too.
        let mut ifs = m.collect_nested(f, |d| d.opcode == Opcode::KsIf);
        ifs.reverse();
        for op in ifs {
            if m.position(op).is_some() && in_long_loop(m, op) {
                if let Some(plan) = plan(m, op) {
                    compute(m, op, plan);
                }
            }
        }
    }
    Ok(())
}

/// Whether `op` runs in a loop that may go round more often than `unroll-loops` always unrolls
/// (unrolled, the verifier prunes each copy's forks against the others', and LLVM's `select`s
/// are the shorter code).
fn in_long_loop(m: &Module, op: OpId) -> bool {
    enclosing_loop(m, op).is_some_and(|lp| {
        m.op(lp).opcode != Opcode::KsFor
            || constant_trips(m, lp).is_none_or(|trips| trips > ALWAYS_UNROLL)
    })
}

/// How a store in an arm changes its local.
#[derive(Clone, Copy)]
enum Change {
    /// `x = x op s`: by `s`, `op` one of add, sub, or, xor (0 changes nothing).
    Step(Opcode, Value),
    /// `x = v`.
    Assign(Value),
}

struct Update {
    slot: Value,
    ty: Type,
    change: Change,
    /// The arm that makes it: 0 when the guard holds.
    arm: usize,
}

struct Plan {
    /// The arms' pure ops, which run before the updates whichever arm is taken.
    hoisted: Vec<OpId>,
    updates: Vec<Update>,
}

/// The updates of `op`'s arms, when `op` can be computed (see the module comment).
fn plan(m: &Module, op: OpId) -> Option<Plan> {
    let d = m.op(op);
    if !d.results.is_empty() || d.regions.len() != 2 || !computable(m, d.operands[0], MAX_DEPTH) {
        return None;
    }
    let mut plan = Plan {
        hoisted: Vec::new(),
        updates: Vec::new(),
    };
    for (arm, &r) in d.regions.iter().enumerate() {
        let block = m.sole_block(r)?;
        let mut stored: Vec<Value> = Vec::new();
        for &o in &m.block(block).ops {
            let od = m.op(o);
            match od.opcode {
                Opcode::CoreStore => {
                    let (value, slot) = (od.operands[0], od.operands[1]);
                    let ty = m.value_type(value).clone();
                    if !m.is_local(slot) || !ty.is_int() || stored.contains(&slot) {
                        return None;
                    }
                    stored.push(slot);
                    plan.updates.push(Update {
                        slot,
                        ty,
                        change: change(m, value, slot),
                        arm,
                    });
                }
                // (A read after the arm's own store would see the value before it, hoisted.)
                Opcode::CoreLoad if m.is_local(od.operands[0]) => {
                    if stored.contains(&od.operands[0]) {
                        return None;
                    }
                    plan.hoisted.push(o);
                }
                Opcode::KsYield if od.operands.is_empty() => {}
                _ if computes(m, o) => plan.hoisted.push(o),
                _ => return None,
            }
        }
    }
    (!plan.updates.is_empty()).then_some(plan)
}

/// How storing `value` changes local `slot`.
fn change(m: &Module, value: Value, slot: Value) -> Change {
    let reads_slot = |v: Value| {
        m.defining_op(v)
            .is_some_and(|l| m.op(l).opcode == Opcode::CoreLoad && m.op(l).operands[0] == slot)
    };
    if let Some(o) = m.defining_op(value) {
        let d = m.op(o);
        let commutes = matches!(d.opcode, Opcode::CoreAdd | Opcode::CoreOr | Opcode::CoreXor);
        if commutes || d.opcode == Opcode::CoreSub {
            let (a, b) = (d.operands[0], d.operands[1]);
            if reads_slot(a) {
                return Change::Step(d.opcode, b);
            }
            if commutes && reads_slot(b) {
                return Change::Step(d.opcode, a);
            }
        }
    }
    Change::Assign(value)
}

/// Whether `op` only computes a value: run before its arm is decided, it changes nothing and
/// cannot fault.
fn computes(m: &Module, op: OpId) -> bool {
    let d = m.op(op);
    d.regions.is_empty() && d.opcode.has(Traits::PURE) && !m.is_terminator(op)
}

/// How deep `&&` and `||` are followed.
const MAX_DEPTH: u32 = 4;

/// Integers compared as 64-bit differences are at most this wide.
const MAX_COMPARED_BITS: u32 = 32;

/// Whether the truth of `cond` can be computed without a branch (see the module comment).
fn computable(m: &Module, cond: Value, depth: u32) -> bool {
    let Some(op) = m.defining_op(cond) else {
        return false;
    };
    let d = m.op(op);
    match d.opcode {
        Opcode::CoreConst => true,
        Opcode::CoreCmp => d.operands.iter().all(|&v| {
            m.value_type(v)
                .int()
                .is_some_and(|t| t.bits() <= MAX_COMPARED_BITS)
        }),
        // A bool in memory is 0 or 1 already.
        Opcode::CoreLoad => true,
        // (Used once: its arms' ops move out of it, so nothing else may read it.)
        Opcode::KsIf => {
            depth > 0
                && d.results.len() == 1
                && m.use_count(cond) == 1
                && d.regions.iter().all(|&r| {
                    m.sole_block(r).is_some_and(|b| {
                        m.block(b).ops.iter().all(|&o| {
                            let od = m.op(o);
                            match od.opcode {
                                Opcode::KsYield => {
                                    od.operands.len() == 1
                                        && computable(m, od.operands[0], depth - 1)
                                }
                                Opcode::CoreLoad => m.is_local(od.operands[0]),
                                Opcode::KsIf => od
                                    .results
                                    .first()
                                    .is_some_and(|&r| computable(m, r, depth - 1)),
                                _ => computes(m, o),
                            }
                        })
                    })
                })
                && computable(m, d.operands[0], depth - 1)
        }
        _ => false,
    }
}

/// Replaces `op` by its updates, computed from its guard's truth.
fn compute(m: &mut Module, op: OpId, plan: Plan) {
    let cond = m.op(op).operands[0];
    for &o in &plan.hoisted {
        move_before(m, o, op);
    }
    hoist_condition_arms(m, cond);
    let loc = m.op(op).loc;
    let mut b = m.builder_before(op);
    b.loc = loc;
    let holds = truth(&mut b, cond);
    let one = b.core_const(1, Type::u64());
    let fails = b.core_xor(holds, one);
    for u in &plan.updates {
        let guard = b.cast_to(if u.arm == 0 { holds } else { fails }, u.ty.clone());
        let current = b.core_load(u.slot, u.ty.clone());
        let updated = match u.change {
            Change::Step(opcode, step) => {
                let step = b.core_mul(step, guard);
                match opcode {
                    Opcode::CoreAdd => b.core_add(current, step),
                    Opcode::CoreSub => b.core_sub(current, step),
                    Opcode::CoreOr => b.core_or(current, step),
                    _ => b.core_xor(current, step),
                }
            }
            Change::Assign(value) => {
                let difference = b.core_sub(value, current);
                let step = b.core_mul(difference, guard);
                b.core_add(current, step)
            }
        };
        b.core_store(updated, u.slot);
    }
    m.detach_op(op);
    for &o in plan.hoisted.iter().rev() {
        for r in m.op(o).results.clone() {
            m.erase_if_unused(r);
        }
    }
    drop_condition(m, cond);
}

/// Moves the ops of each `&&`/`||` arm in `cond` out, before its `if`, where they run whichever
/// way the `if` goes (they only compute). The arms keep their yields.
fn hoist_condition_arms(m: &mut Module, cond: Value) {
    let Some(op) = m
        .defining_op(cond)
        .filter(|&o| m.op(o).opcode == Opcode::KsIf)
    else {
        return;
    };
    hoist_condition_arms(m, m.op(op).operands[0]);
    for r in m.op(op).regions.clone() {
        let block = m.sole_block(r).expect("computable");
        for o in m.block(block).ops.clone() {
            if m.op(o).opcode == Opcode::KsYield {
                hoist_condition_arms(m, m.op(o).operands[0]);
            } else {
                move_before(m, o, op);
            }
        }
    }
}

/// Removes what computed `cond` when nothing reads it any more: the `if`s of `&&`/`||`, whose
/// arms now only yield, with the rest.
fn drop_condition(m: &mut Module, cond: Value) {
    let Some(op) = m.defining_op(cond) else {
        return;
    };
    if m.op(op).opcode != Opcode::KsIf {
        m.erase_if_unused(cond);
        return;
    }
    if m.use_count(cond) > 0 {
        return;
    }
    let mut read = vec![m.op(op).operands[0]];
    read.extend(yields(m, op));
    m.detach_op(op);
    for v in read {
        drop_condition(m, v);
    }
}

/// The values the arms of `&&`/`||` `if` `op` yield, in arm order.
fn yields(m: &Module, op: OpId) -> Vec<Value> {
    m.op(op)
        .regions
        .iter()
        .filter_map(|&r| {
            let block = m.sole_block(r)?;
            let last = *m.block(block).ops.last()?;
            m.op(last).operands.first().copied()
        })
        .collect()
}

/// Moves `o` to just before `anchor`.
fn move_before(m: &mut Module, o: OpId, anchor: OpId) {
    m.detach_op(o);
    let (block, at) = m.position(anchor).expect("the anchor is placed");
    m.place_op(o, block, Some(at));
}

/// The truth of `cond` as a `u64` 0 or 1, computed where `b` inserts (see [`computable`]).
fn truth(b: &mut Builder<'_>, cond: Value) -> Value {
    let op = b.module.defining_op(cond).expect("computable");
    let d = b.module.op(op).clone();
    match d.opcode {
        Opcode::CoreCmp => {
            let pred = views::CoreCmp(op).pred(b.module);
            let wide = |b: &mut Builder<'_>, v: Value| {
                let signed = b.module.value_type(v).int().is_some_and(|t| t.signed());
                let v = if signed {
                    b.core_cast(v, Type::i64())
                } else {
                    v
                };
                b.cast_to(v, Type::u64())
            };
            let (x, y) = (wide(b, d.operands[0]), wide(b, d.operands[1]));
            let one = b.core_const(1, Type::u64());
            // `a < b` is the sign of `a - b`; `a == b` that of `(a ^ b) - 1`, `a != b` of
            // `-(a ^ b)`; `>=`, `>` and `<=` swap or negate those.
            let (minuend, subtrahend, negated) = match pred {
                CmpPred::Lt => (x, y, false),
                CmpPred::Ge => (x, y, true),
                CmpPred::Gt => (y, x, false),
                CmpPred::Le => (y, x, true),
                CmpPred::Eq => (b.core_xor(x, y), one, false),
                CmpPred::Ne => {
                    let zero = b.core_const(0, Type::u64());
                    (zero, b.core_xor(x, y), false)
                }
            };
            let difference = b.core_sub(minuend, subtrahend);
            let shift = b.core_const(63, Type::u64());
            let sign = b.core_shr(difference, shift);
            if negated {
                b.core_xor(sign, one)
            } else {
                sign
            }
        }
        Opcode::KsIf => {
            let yielded = yields(b.module, op);
            let holds = truth(b, d.operands[0]);
            let (then, otherwise) = (truth(b, yielded[0]), truth(b, yielded[1]));
            let one = b.core_const(1, Type::u64());
            let fails = b.core_xor(holds, one);
            let taken = b.core_and(holds, then);
            let other = b.core_and(fails, otherwise);
            b.core_or(taken, other)
        }
        // A constant or a bool read from memory: already 0 or 1.
        _ => b.cast_to(cond, Type::u64()),
    }
}
