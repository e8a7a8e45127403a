//! How the clauses of a `try` share work (§13.1, "Cost of a catch"). Consecutive `catch N`
//! clauses whose handlers differ only in constants run as one handler; clauses whose handlers
//! merely begin alike (`catch 1 { errors[1] += 1 } catch 2 { errors[2] += 1; if (…) { … } }`)
//! run that beginning once, before the dispatch among them. Either way a constant that differs
//! between the handlers is chosen by the caught code, as C writes `errors[reason] += 1`.

use super::super::region_match::{self, ConstantPairs};
use crate::ir::{Attr, Module, OpId, Opcode, RegionId, Value, ValueDef};
use std::collections::{HashMap, HashSet};

/// A catch clause a throw from the body can reach: its code (`None` for `_`) and its handler.
#[derive(Clone, Copy)]
pub(super) struct Clause {
    pub code: Option<i128>,
    pub handler: RegionId,
}

/// A constant of the first handler of a merged group that differs between its handlers: its
/// value in the handler of each caught code.
pub(super) struct Varying {
    pub constant: Value,
    pub by_code: Vec<(i128, i128)>,
}

/// The handlers from `first` on that can run as one: consecutive `catch N` clauses whose regions
/// are the first's but for constants (`catch 1 { rejected[1] += 1; return XDP_DROP }`, `catch 6 {
/// rejected[6] += 1; return XDP_PASS }`). A constant equal to its clause's code everywhere is the
/// code; any other costs a select per value past the first, and a handler joins only while the
/// selects are fewer than the handlers merged. The end of the group, and the constants that vary.
pub(super) fn group(m: &Module, clauses: &[Clause], first: usize) -> (usize, Vec<Varying>) {
    let Some(lead) = clauses[first].code else {
        return (first + 1, Vec::new());
    };
    let mut members: Vec<(i128, ConstantPairs)> = Vec::new();
    let mut varying = Vec::new();
    for clause in &clauses[first + 1..] {
        let Some(own) = clause.code else { break };
        let Some(pairs) =
            region_match::same_but_constants(m, clauses[first].handler, clause.handler)
        else {
            break;
        };
        members.push((own, pairs));
        let candidate = varying_constants(m, lead, &members);
        if selects(&candidate) > members.len() {
            members.pop();
            break;
        }
        varying = candidate;
    }
    (first + 1 + members.len(), varying)
}

/// Clauses from `first` on whose handlers begin with the same ops but for constants, past the
/// `done` ops already run for them.
pub(super) struct Head {
    /// The end of the clauses that share it.
    pub end: usize,
    /// The first handler's ops that make it, up to `len`.
    pub len: usize,
    /// Its constants chosen by the caught code.
    pub varying: Vec<Varying>,
    /// The values the other handlers' heads define, each with the first handler's counterpart:
    /// their own ops never run.
    pub aliases: Vec<(Value, Value)>,
}

/// The longest run of clauses from `first` whose handlers share a head longer than `done` that
/// does more than name constants, under the same select budget as [`group`]. An op that ends
/// the handler's block or registers a defer cannot be in a head: it runs before the handler's own
/// scope opens.
pub(super) fn head(m: &Module, clauses: &[Clause], first: usize, done: usize) -> Option<Head> {
    let lead = clauses[first].code?;
    let lead_handler = clauses[first].handler;
    let lead_ops = &m.block(*m.region(lead_handler).blocks.first()?).ops;
    let eligible = |op: OpId| !m.is_terminator(op) && m.op(op).opcode != Opcode::KsDefer;
    let mut shared: Vec<(i128, region_match::SharedHead)> = Vec::new();
    let mut best: Option<Head> = None;
    let mut len = usize::MAX;
    for clause in &clauses[first + 1..] {
        let Some(own) = clause.code else { break };
        let h = region_match::shared_head(m, lead_handler, clause.handler, eligible);
        let mut l = len.min(h.len);
        while l > done && m.op(lead_ops[l - 1]).opcode == Opcode::CoreConst {
            l -= 1;
        }
        if l <= done {
            break;
        }
        shared.push((own, h));
        let defined: HashSet<Value> = lead_ops[done..l]
            .iter()
            .flat_map(|&op| m.op(op).results.iter().copied())
            .collect();
        let members: Vec<(i128, ConstantPairs)> = shared
            .iter()
            .map(|(own, h)| {
                let pairs = h.constants.iter().filter(|(c, _)| defined.contains(c));
                (*own, pairs.map(|(&c, &v)| (c, v)).collect())
            })
            .collect();
        let varying = varying_constants(m, lead, &members);
        if selects(&varying) > members.len() {
            break;
        }
        len = l;
        let aliases = shared
            .iter()
            .flat_map(|(_, h)| h.values.iter())
            .filter(|(a, _)| defined.contains(a))
            .map(|(&a, &b)| (b, a))
            .collect();
        best = Some(Head {
            end: first + 1 + shared.len(),
            len,
            varying,
            aliases,
        });
    }
    best
}

/// The selects choosing the varying constants cost: one per value past the first, for each
/// constant that is not the code itself.
fn selects(varying: &[Varying]) -> usize {
    varying
        .iter()
        .filter(|v| v.by_code.iter().any(|&(c, k)| c != k))
        .map(|v| {
            let mut values: Vec<i128> = v.by_code.iter().map(|&(_, k)| k).collect();
            values.sort_unstable();
            values.dedup();
            values.len() - 1
        })
        .sum()
}

/// The constants of the group's first handler whose values differ between its handlers.
fn varying_constants(m: &Module, lead: i128, members: &[(i128, ConstantPairs)]) -> Vec<Varying> {
    let value = |c: Value| match m.value(c).def {
        ValueDef::Result(op, _) => match m.attr(op, "value") {
            Some(Attr::Int(n)) => *n,
            _ => 0,
        },
        _ => 0,
    };
    let Some((_, pairs)) = members.first() else {
        return Vec::new();
    };
    let mut constants: Vec<Value> = pairs.keys().copied().collect();
    constants.sort_unstable_by_key(|c| c.index());
    constants
        .into_iter()
        .filter_map(|c| {
            let mut by_code = vec![(lead, value(c))];
            by_code.extend(members.iter().map(|(own, theirs)| (*own, theirs[&c])));
            by_code
                .iter()
                .any(|&(_, k)| k != by_code[0].1)
                .then_some(Varying {
                    constant: c,
                    by_code,
                })
        })
        .collect()
}

/// `try { … } catch 1 { count(1) } catch 6 { count(6); return PASS } return DROP`: a handler that
/// falls through to a `return` of constants gets its own copy of that return, so handlers that
/// differ only in the verdict they return can still merge ([`group`]). Only constants and the
/// return are copied: the path's work and its cleanups are the same either way.
pub(super) fn copy_return_tails_into_handlers(m: &mut Module, func: OpId) {
    let tries = m.collect_nested(func, |d| d.opcode == Opcode::KsTry);
    for t in tries {
        let Some((block, at)) = m.position(t) else {
            continue;
        };
        let tail = m.block(block).ops[at + 1..].to_vec();
        let Some((&ret, consts)) = tail.split_last() else {
            continue;
        };
        let returns_constants = m.op(ret).opcode == Opcode::KsReturn
            && consts.iter().all(|&c| m.op(c).opcode == Opcode::CoreConst)
            && m.op(ret)
                .operands
                .iter()
                .all(|v| consts.iter().any(|&c| m.op(c).results.first() == Some(v)));
        if !returns_constants {
            continue;
        }
        for &handler in &m.op(t).regions.clone()[1..] {
            let Some(hb) = m.sole_block(handler) else {
                continue;
            };
            let ops = &m.block(hb).ops;
            let at = match ops.last() {
                None => ops.len(),
                Some(&last) if m.op(last).opcode == Opcode::KsYield => ops.len() - 1,
                Some(&last) if m.is_terminator(last) => continue,
                Some(_) => ops.len(),
            };
            let mut vmap = HashMap::new();
            for (k, &op) in tail.iter().enumerate() {
                let copy = m.clone_op(op, &mut vmap);
                m.place_op(copy, hb, Some(at + k));
            }
        }
    }
}
