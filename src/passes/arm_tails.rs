//! `sink-arm-tails`: when every arm of an `if` or `switch` ends in the same operation but for
//! some integer operands — `if (op == 1 || op == 2) { arp_ops[op] += 1 } else { arp_ops[0] += 1 }`
//! — that operation runs once after the branch, its differing operands chosen by the arms, as C
//! writes it (`if (…) key = op; else key = 0; counters[key] += 1`): one map lookup instead of one
//! per arm. Repeats while the arms keep ending alike.
//! Only operations without results or regions move, past nothing but the end of their arm (an arm
//! that defers runs the defer at that end, so such branches stay); pointers never become
//! branch-chosen, so packet and map-value provenance stay plain for `bounds-check`.
//! Runs on structured kernel functions before `bounds-check`.

use super::PassResult;
use crate::ir::{Attr, Builder, Module, OpId, Opcode, Type, Value, ValueDef};

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
    let Some(tails) = arm_tails(m, branch) else {
        return false;
    };
    let Some(operands) = operands(m, branch, &tails) else {
        return false;
    };
    let first = tails[0];
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
    for (arm, &tail) in tails.iter().enumerate() {
        let (block, _) = m.position(tail).expect("placed");
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
        .flat_map(|&t| m.op(t).operands.clone())
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

/// The last op of every arm, when each arm has one, none defers, and the ops are alike: same
/// opcode, attributes and operand count, no results, no regions, no terminator.
fn arm_tails(m: &Module, branch: OpId) -> Option<Vec<OpId>> {
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
            _ => &ops[..],
        };
        tails.push(*body.last()?);
    }
    let first = m.op(tails[0]);
    let alike = tails.iter().all(|&t| {
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

/// The operands of the sunk op, when each position is shared, one constant, or integers.
fn operands(m: &Module, branch: OpId, tails: &[OpId]) -> Option<Vec<Operand>> {
    let count = m.op(tails[0]).operands.len();
    let mut out = Vec::new();
    for i in 0..count {
        let values: Vec<Value> = tails.iter().map(|&t| m.op(t).operands[i]).collect();
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
