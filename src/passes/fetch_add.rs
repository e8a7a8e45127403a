//! `fuse-fetch-add`: an atomic add followed by reads of the word it updated becomes one
//! fetch-add, and the reads become `old + delta`.
//!
//! `g += 1; if (g < n)` on a global lowers to an atomic add and a reload. The reload costs a
//! memory access after a locked instruction, where C's `__sync_add_and_fetch` uses the value
//! the add fetched. Forwarding is sound under concurrency too: it yields what the reload would
//! have read had it run right after the add, one of the executions the program already allows.
//! BPF_FETCH needs BPF cpu v3 or later, so the BPF pipeline runs this pass only for those.

use super::provenance::object_base;
use super::PassResult;
use crate::ir::{Attr, BlockId, Module, OpData, OpId, Opcode, Traits, Value, ValueDef};
use std::collections::HashMap;

pub fn run(m: &mut Module) -> PassResult {
    let funcs: Vec<OpId> = m.funcs().collect();
    for f in funcs {
        let entries = entry_counts(m, f);
        for add in m.collect_nested(f, |d| d.opcode == Opcode::CoreAtomicAdd) {
            fuse(m, add, &entries);
        }
    }
    Ok(())
}

fn fuse(m: &mut Module, add: OpId, entries: &HashMap<BlockId, usize>) {
    let reloads = reloads_after(m, add, entries);
    if reloads.is_empty() {
        return;
    }
    let (addr, delta) = (m.op(add).operands[0], m.op(add).operands[1]);
    let mut b = m.builder_before(add);
    let old = b.core_atomic_fetch_add(addr, delta);
    let new = b.core_add(old, delta);
    m.detach_op(add);
    for load in reloads {
        m.replace_op(load, &[new]);
    }
}

/// The loads of the word `add` updated with nothing that may write that word between it and
/// them: later in its block, and on in the blocks only that block leads to (which it dominates).
fn reloads_after(m: &Module, add: OpId, entries: &HashMap<BlockId, usize>) -> Vec<OpId> {
    let Some((block, at)) = m.position(add) else {
        return Vec::new();
    };
    let (addr, delta) = (m.op(add).operands[0], m.op(add).operands[1]);
    let word = m.value_type(delta);
    let mut reloads = Vec::new();
    let mut work = vec![(block, at + 1)];
    while let Some((b, from)) = work.pop() {
        for &op in &m.block(b).ops[from..] {
            let d = m.op(op);
            if d.opcode == Opcode::CoreLoad
                && same_address(m, d.operands[0], addr)
                && m.value_type(d.results[0]) == word
            {
                reloads.push(op);
            } else if d.opcode.has(Traits::TERMINATOR) {
                work.extend(
                    d.successors
                        .iter()
                        .filter(|&&s| s != block && entries.get(&s) == Some(&1))
                        .map(|&s| (s, 0)),
                );
            } else if !m.is_effect_free(op)
                && !written_address(d).is_some_and(|w| other_globals(m, w, addr))
            {
                break;
            }
        }
    }
    reloads
}

/// How many branch edges enter each block of a function.
fn entry_counts(m: &Module, func: OpId) -> HashMap<BlockId, usize> {
    let mut counts = HashMap::new();
    m.walk_nested(func, &mut |op| {
        for &s in &m.op(op).successors {
            *counts.entry(s).or_default() += 1;
        }
    });
    counts
}

/// Whether two address values certainly name the same memory: the same value, the same global,
/// or the same field of the same address.
fn same_address(m: &Module, a: Value, b: Value) -> bool {
    if a == b {
        return true;
    }
    let (ValueDef::Result(x, _), ValueDef::Result(y, _)) = (m.value(a).def, m.value(b).def) else {
        return false;
    };
    let (x, y) = (m.op(x), m.op(y));
    match (x.opcode, y.opcode) {
        (Opcode::KsGlobalAddr, Opcode::KsGlobalAddr) => x.attrs == y.attrs,
        (Opcode::CoreFieldAddr, Opcode::CoreFieldAddr) => {
            matches!((&x.attrs[0], &y.attrs[0]), (Some(Attr::Str(f)), Some(Attr::Str(g))) if f == g)
                && same_address(m, x.operands[0], y.operands[0])
        }
        _ => false,
    }
}

/// The one address a store or an atomic add writes.
fn written_address(d: &OpData) -> Option<Value> {
    match d.opcode {
        Opcode::CoreStore => Some(d.operands[1]),
        Opcode::CoreAtomicAdd | Opcode::CoreAtomicFetchAdd => Some(d.operands[0]),
        _ => None,
    }
}

/// Whether two addresses lie in two different globals, which never overlap.
fn other_globals(m: &Module, a: Value, b: Value) -> bool {
    matches!((global_of(m, a), global_of(m, b)), (Some(x), Some(y)) if x != y)
}

/// The global an address lies in, if it is a global's address or a field or array element of one.
fn global_of(m: &Module, v: Value) -> Option<&Attr> {
    let ValueDef::Result(op, _) = m.value(object_base(m, v)).def else {
        return None;
    };
    let d = m.op(op);
    (d.opcode == Opcode::KsGlobalAddr)
        .then(|| d.attrs[0].as_ref())
        .flatten()
}
