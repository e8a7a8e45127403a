//! `sink-arm-tails`: when every arm of an `if` or `switch` that reaches its end ends in the same
//! operation but for some integer operands — `if (op == 1 || op == 2) { arp_ops[op] += 1 } else
//! { arp_ops[0] += 1 }` — that operation runs once after the branch, its differing operands
//! chosen by the arms, as C writes it (`if (…) key = op; else key = 0; counters[key] += 1`): one
//! map lookup instead of one per arm. Repeats while the arms keep ending alike, so an `else if`
//! chain whose every link counts (`anomalies[A_NULL] += 1; kind = A_NULL`) and whose last arm
//! returns becomes one update with the key chosen along the chain.
//! Arms that leave (return, throw, break) never reach the operation after the branch and need
//! none. Only operations without results or regions move, past nothing but the end of their arm
//! and the stores to locals and computations after them there (an arm that defers runs the defer
//! at that end, so such branches stay); pointers never become branch-chosen, so packet and
//! map-value provenance stay plain for `bounds-check`.
//! Runs on structured kernel functions before `bounds-check`.

use super::value_bounds::reads_local;
use super::PassResult;
use crate::ir::{Attr, BlockId, Builder, Module, OpId, Opcode, Traits, Type, Value, ValueDef};

pub fn run(m: &mut Module) -> PassResult {
    let funcs = super::kernel_funcs(m);
    for f in funcs {
        // Innermost first, so a tail sunk out of an inner branch can sink again.
        let branches = m.collect_nested(f, |d| matches!(d.opcode, Opcode::KsIf | Opcode::KsSwitch));
        for branch in branches.into_iter().rev() {
            while sink_tail(m, branch) {}
        }
    }
    Ok(())
}

/// How one operand of the sunk operation is found after the branch.
enum Operand {
    /// The same value in every arm, defined before the branch.
    Shared(Value),
    /// The same integer constant in every arm.
    Constant(i128, Type),
    /// Different integers: each arm yields its own.
    Chosen(Vec<Value>),
}

/// The last op of each arm when all of them end in one alike; moves it after the branch.
fn sink_tail(m: &mut Module, branch: OpId) -> bool {
    // The arms' last ops first (a store to one local in every arm sinks as itself).
    let Some(tails) = arm_tails(m, branch, false).or_else(|| arm_tails(m, branch, true)) else {
        return false;
    };
    let Some(operands) = operands(m, branch, &tails) else {
        return false;
    };
    let first = tails[0].1;
    // The arms yield the chosen operands as new results of the branch.
    let mut chosen = Vec::new();
    for operand in &operands {
        if let Operand::Chosen(values) = operand {
            let ty = m.value_type(values[0]).clone();
            let index = m.op(branch).results.len() as u32;
            let result = m.new_value(ty, ValueDef::Result(branch, index));
            m.op_mut(branch).results.push(result);
            chosen.push((values.clone(), result));
        }
    }
    for (arm, &(block, tail)) in tails.iter().enumerate() {
        let yielded: Vec<Value> = chosen.iter().map(|(values, _)| values[arm]).collect();
        m.detach_op(tail);
        match m.block(block).ops.last().copied() {
            Some(y) if m.op(y).opcode == Opcode::KsYield => {
                m.op_mut(y).operands.extend(yielded);
            }
            _ => {
                let loc = m.op(tail).loc;
                let mut b = Builder::new(m, block);
                b.loc = loc;
                b.ks_yield(&yielded);
            }
        }
    }
    // One copy after the branch, reading the shared values, constants and branch results.
    let (block, at) = m.position(branch).expect("placed");
    let mut b = Builder::new(m, block);
    b.at = Some(at + 1);
    b.loc = b.module.op(first).loc;
    let mut results = chosen.iter().map(|&(_, r)| r);
    let new_operands: Vec<Value> = operands
        .iter()
        .map(|o| match o {
            Operand::Shared(v) => *v,
            Operand::Constant(c, ty) => b.core_const(*c, ty.clone()),
            Operand::Chosen(_) => results.next().expect("one result per chosen operand"),
        })
        .collect();
    let (block, at) = (b.block, b.at);
    let mut replaced: Vec<Value> = tails[1..]
        .iter()
        .flat_map(|&(_, t)| m.op(t).operands.clone())
        .collect();
    replaced.extend(std::mem::replace(
        &mut m.op_mut(first).operands,
        new_operands,
    ));
    m.place_op(first, block, at);
    for v in replaced {
        m.erase_if_unused(v);
    }
    true
}

/// The block and last op of every arm that reaches the branch's end, when there is at least
/// one, none defers, and the ops are alike: same opcode, attributes and operand count, no
/// results, no regions, no terminator. With `past_locals`, the last op but for the stores to
/// locals and the computations after it, which it then moves past.
fn arm_tails(m: &Module, branch: OpId, past_locals: bool) -> Option<Vec<(BlockId, OpId)>> {
    let d = m.op(branch);
    if d.regions.len() < 2 {
        return None;
    }
    let mut tails = Vec::new();
    for &r in &d.regions {
        let block = m.sole_block(r)?;
        let ops = &m.block(block).ops;
        if ops.iter().any(|&o| m.op(o).opcode == Opcode::KsDefer) {
            return None;
        }
        let body = match ops.last() {
            Some(&y) if m.op(y).opcode == Opcode::KsYield => &ops[..ops.len() - 1],
            // An arm that leaves never reaches the sunk op.
            Some(&t) if m.is_terminator(t) => continue,
            _ => &ops[..],
        };
        let trailing = match past_locals {
            true => body.iter().rev().take_while(|&&o| is_trailer(m, o)).count(),
            false => 0,
        };
        let tail = *body[..body.len() - trailing].last()?;
        if trailing > 0 && !passes_local_stores(m, tail) {
            return None;
        }
        tails.push((block, tail));
    }
    let first = m.op(tails.first()?.1);
    // A local's recurrence (`off = off + 1` in one arm, `off = off + len` in the other) stays in
    // the arms, where the loop passes read each step (`mask-loop-offsets`).
    // (Other arms may end in other ops, with no operands: those are not alike anyway.)
    if first.opcode == Opcode::CoreStore
        && m.is_local(first.operands[1])
        && (tails.iter()).any(|&(_, t)| {
            (m.op(t).operands.first()).is_some_and(|&v| reads_local(m, v, first.operands[1], 4))
        })
    {
        return None;
    }
    let alike = tails.iter().all(|&(_, t)| {
        let o = m.op(t);
        o.opcode == first.opcode
            && o.attrs == first.attrs
            && o.operands.len() == first.operands.len()
            && o.results.is_empty()
            && o.regions.is_empty()
            && o.successors.is_empty()
            && !m.is_terminator(t)
    });
    alike.then_some(tails)
}

/// An op a tail may move past: a computation (reading no memory the tail could write), or a
/// load or store of a local.
fn is_trailer(m: &Module, op: OpId) -> bool {
    let d = m.op(op);
    d.regions.is_empty() && d.opcode.has(Traits::PURE)
        || d.opcode == Opcode::CoreLoad && m.is_local(d.operands[0])
        || d.opcode == Opcode::CoreStore && m.is_local(d.operands[1])
}

/// `op` neither touches locals nor takes a pointer it could reach one through (`&key` passed to
/// a helper), so stores into locals commute with it.
fn passes_local_stores(m: &Module, op: OpId) -> bool {
    let d = m.op(op);
    d.opcode != Opcode::CoreStore
        && d.opcode != Opcode::CoreLoad
        && d.operands
            .iter()
            .all(|&v| !matches!(m.value_type(v), Type::Ptr(_)) || is_global_address(m, v))
}

/// `v` is a global's address (`ks.global_addr`), which no local aliases.
fn is_global_address(m: &Module, v: Value) -> bool {
    m.defining_op(v)
        .is_some_and(|o| m.op(o).opcode == Opcode::KsGlobalAddr)
}

/// The operands of the sunk op, when each position is shared, one constant, or integers.
fn operands(m: &Module, branch: OpId, tails: &[(BlockId, OpId)]) -> Option<Vec<Operand>> {
    let count = m.op(tails[0].1).operands.len();
    let mut out = Vec::new();
    for i in 0..count {
        let values: Vec<Value> = tails.iter().map(|&(_, t)| m.op(t).operands[i]).collect();
        let v0 = values[0];
        if values.iter().all(|&v| v == v0) && !m.defined_within(v0, branch) {
            out.push(Operand::Shared(v0));
            continue;
        }
        let ty = m.value_type(v0).clone();
        if values.iter().any(|&v| *m.value_type(v) != ty) {
            return None;
        }
        let constants: Option<Vec<i128>> = values.iter().map(|&v| constant(m, v)).collect();
        match constants {
            Some(c) if c.iter().all(|&x| x == c[0]) => out.push(Operand::Constant(c[0], ty)),
            _ if matches!(ty, Type::Int(_) | Type::Bool) => out.push(Operand::Chosen(values)),
            _ => return None,
        }
    }
    Some(out)
}

fn constant(m: &Module, v: Value) -> Option<i128> {
    let ValueDef::Result(op, _) = m.value(v).def else {
        return None;
    };
    match (m.op(op).opcode, m.attr(op, "value")) {
        (Opcode::CoreConst, Some(Attr::Int(i))) => Some(*i),
        _ => None,
    }
}
