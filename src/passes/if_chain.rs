//! `if-chains-to-switch`: a long chain `if (x == 1) {…} else if (x == 2) {…} … else {…}` that
//! tests one integer against constants becomes one `ks.switch`, which `switch-to-table` may then
//! turn into tables.
//!
//! LLVM folds such chains into a switch as well, but by work quadratic in the links (a
//! 20k-link chain took 13 s); chains shorter than [`MIN_CASES`] are left to it.

use super::switch_table::MIN_CASES;
use super::PassResult;
use crate::ir::{views, Attr, BlockId, Module, OpId, Opcode, Type, Value, ValueDef};
use crate::vocab::CmpPred;
use std::collections::HashSet;

pub fn run(m: &mut Module) -> PassResult {
    let funcs: Vec<OpId> = m.funcs().collect();
    for f in funcs {
        let mut seen = HashSet::new();
        for head in m.collect_nested(f, |d| d.opcode == Opcode::KsIf) {
            if seen.contains(&head) {
                continue;
            }
            let Some(chain) = chain_from(m, head) else {
                continue;
            };
            seen.extend(chain.links.iter().map(|l| l.branch));
            if chain.links.len() >= MIN_CASES && self_contained(m, &chain) {
                rewrite(m, head, chain);
            }
        }
    }
    Ok(())
}

/// What a chain link tests: one SSA value, or the contents of one stack slot (reloaded by each
/// link; nothing but the tests runs between the loads, so they all read the same value).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Subject {
    Value(Value),
    Slot(Value),
}

struct Link {
    branch: OpId,
    /// `None` when the constant lies outside the subject's type: the test is never true.
    case: Option<i128>,
    then: BlockId,
}

struct Chain {
    /// The value the head compares: the switch's operand.
    scrutinee: Value,
    links: Vec<Link>,
    default: BlockId,
    /// Values the dropped tests define (loads, constants, compares, inner links' results).
    dropped: HashSet<Value>,
}

/// The longest chain starting at `head`.
fn chain_from(m: &Module, head: OpId) -> Option<Chain> {
    let (subject, scrutinee, case) = test_of(m, m.op(head).operands[0])?;
    if !m.value_type(scrutinee).is_int() || !reads_unchanged(m, scrutinee, head) {
        return None;
    }
    let mut links = vec![Link {
        branch: head,
        case,
        then: m.sole_block(m.op(head).regions[0])?,
    }];
    let mut dropped = HashSet::new();
    let mut current = head;
    loop {
        let otherwise = m.sole_block(m.op(current).regions[1])?;
        let Some((next, case)) = next_link(m, current, otherwise, subject) else {
            return Some(Chain {
                scrutinee,
                links,
                default: otherwise,
                dropped,
            });
        };
        let Some(then) = m.sole_block(m.op(next).regions[0]) else {
            return Some(Chain {
                scrutinee,
                links,
                default: otherwise,
                dropped,
            });
        };
        for &op in &m.block(otherwise).ops {
            dropped.extend(m.op(op).results.iter().copied());
        }
        links.push(Link {
            branch: next,
            case,
            then,
        });
        current = next;
    }
}

/// When the else block of `current` holds nothing but the next link — its test's pure ops, the
/// `ks.if`, and the yield of that `ks.if`'s results — that link and its case.
fn next_link(
    m: &Module,
    current: OpId,
    otherwise: BlockId,
    subject: Subject,
) -> Option<(OpId, Option<i128>)> {
    let ops = &m.block(otherwise).ops;
    let results = &m.op(current).results;
    let (&last, rest) = ops.split_last()?;
    let (next, prefix) = if m.op(last).opcode == Opcode::KsYield {
        let (&next, prefix) = rest.split_last()?;
        (m.op(last).operands == m.op(next).results).then_some((next, prefix))?
    } else {
        (results.is_empty()).then_some((last, rest))?
    };
    let n = m.op(next);
    if n.opcode != Opcode::KsIf || n.results.len() != results.len() {
        return None;
    }
    let pure_test = prefix.iter().all(|&op| {
        matches!(
            m.op(op).opcode,
            Opcode::CoreLoad | Opcode::CoreCast | Opcode::CoreConst | Opcode::CoreCmp
        ) && m.is_effect_free(op)
    });
    let (s, _, case) = test_of(m, n.operands[0])?;
    (pure_test && s == subject).then_some((next, case))
}

/// `subject == constant` (either way round), perhaps with the subject widened to the constant's
/// type first (`x == 5` with `x: i16` compares `i32(x)`): the subject, its value in its own
/// type, and the constant when that type can hold it.
fn test_of(m: &Module, cond: Value) -> Option<(Subject, Value, Option<i128>)> {
    let cmp = defining(m, cond, Opcode::CoreCmp)?;
    let d = m.op(cmp);
    if views::CoreCmp(cmp).pred(m) != CmpPred::Eq {
        return None;
    }
    let constant = |v: Value| match m.op(defining(m, v, Opcode::CoreConst)?).attrs[0] {
        Some(Attr::Int(k)) if m.value_type(v).is_int() => Some(k),
        _ => None,
    };
    let (compared, k) = match (constant(d.operands[0]), constant(d.operands[1])) {
        (None, Some(k)) => (d.operands[0], k),
        (Some(k), None) => (d.operands[1], k),
        _ => return None,
    };
    let x = unwidened(m, compared);
    let Type::Int(ty) = m.value_type(x) else {
        return None;
    };
    let case = (ty.min()..=ty.max()).contains(&k).then_some(k);
    let subject = match defining(m, x, Opcode::CoreLoad) {
        Some(load) => Subject::Slot(m.op(load).operands[0]),
        None => Subject::Value(x),
    };
    Some((subject, x, case))
}

/// The value a cast that keeps every value (to a wider signed type, or a wider unsigned one
/// from unsigned) widened; `v` itself otherwise.
fn unwidened(m: &Module, v: Value) -> Value {
    let Some(cast) = defining(m, v, Opcode::CoreCast) else {
        return v;
    };
    let inner = m.op(cast).operands[0];
    match (m.value_type(inner), m.value_type(v)) {
        (Type::Int(from), Type::Int(to))
            if to.bits() > from.bits() && (to.signed() || !from.signed()) =>
        {
            inner
        }
        _ => v,
    }
}

/// The op defining `v` when it has opcode `opcode`.
fn defining(m: &Module, v: Value, opcode: Opcode) -> Option<OpId> {
    match m.value(v).def {
        ValueDef::Result(op, _) if m.op(op).opcode == opcode => Some(op),
        _ => None,
    }
}

/// For a loaded scrutinee: nothing between the load and the head may write (the later links
/// reload the slot and must see the same value).
fn reads_unchanged(m: &Module, scrutinee: Value, head: OpId) -> bool {
    let Some(load) = defining(m, scrutinee, Opcode::CoreLoad) else {
        return true;
    };
    let (Some((block, from)), Some((head_block, to))) = (m.position(load), m.position(head)) else {
        return false;
    };
    block == head_block
        && m.block(block).ops[from + 1..to]
            .iter()
            .all(|&op| m.is_effect_free(op))
}

/// True when no arm uses a value of the tests being dropped.
fn self_contained(m: &Module, chain: &Chain) -> bool {
    let mut ok = true;
    let blocks = chain.links.iter().map(|l| l.then).chain([chain.default]);
    for b in blocks {
        for &op in &m.block(b).ops {
            let mut check = |o: OpId| {
                ok &= !m.op(o).operands.iter().any(|v| chain.dropped.contains(v));
            };
            check(op);
            m.walk_nested(op, &mut check);
        }
    }
    ok
}

/// The chain becomes `switch scrutinee {cases} (then blocks…, default)`; a link whose test can
/// never be true there (its case repeated from earlier, or outside the scrutinee's type) is
/// dropped.
fn rewrite(m: &mut Module, head: OpId, chain: Chain) {
    let mut taken = HashSet::new();
    let arms: Vec<(&Link, i128)> = chain
        .links
        .iter()
        .filter_map(|l| l.case.filter(|&k| taken.insert(k)).map(|k| (l, k)))
        .collect();
    let cases = arms.iter().map(|&(_, k)| Attr::Int(k)).collect();
    let head_results = m.op(head).results.clone();
    let result_types: Vec<Type> = head_results
        .iter()
        .map(|&r| m.value_type(r).clone())
        .collect();
    let mut b = m.builder_before(head);
    let switch = b.ks_switch(chain.scrutinee, cases, &result_types, arms.len() + 1);
    let entries: Vec<BlockId> = (0..=arms.len()).map(|i| b.entry(switch, i)).collect();
    for ((link, _), &entry) in arms.iter().zip(&entries) {
        m.move_ops(link.then, entry);
    }
    m.move_ops(chain.default, entries[arms.len()]);
    let top = m.top_level_of(head);
    let results = m.op(switch).results.clone();
    for (&from, to) in head_results.iter().zip(results) {
        m.replace_uses_in(top, from, to);
    }
    m.detach_op(head);
}
