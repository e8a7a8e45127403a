//! `fold-presence-delete`: `if (m[k] != null) { delete m[k]; … }` on a hash map is one
//! `bpf_map_delete_elem` whose result says whether the entry was there, as C writes it
//! (`if (!bpf_map_delete_elem(&m, &k)) { … }`), instead of a lookup and then a delete.
//! It applies when the looked-up entry is used by nothing but the test, the delete of the same
//! key is the first thing the then-branch does, only arithmetic and reads of local variables run
//! between the lookup and the delete, and the branch has no else. Hash kinds only: an LPM trie
//! looks up by longest prefix but deletes by exact key, and arrays never delete.
//! Runs on structured kernel functions before `lower-bpf`.

use super::PassResult;
use crate::ir::views::KsMap;
use crate::ir::{Attr, Module, OpId, Opcode, Traits, Type, Value, ValueDef};
use crate::vocab::{CmpPred, MapKind};
use std::collections::HashMap;

pub fn run(m: &mut Module) -> PassResult {
    let funcs = super::kernel_funcs(m);
    for f in funcs {
        // Who uses each value, once per function: a fold changes only its own lookup's uses.
        let users: Users = m.users_within(f);
        for lookup in m.collect_nested(f, |d| d.opcode == Opcode::KsMapLookup) {
            if let Some((test, delete)) = presence_then_delete(m, &users, lookup) {
                fold(m, lookup, test, delete);
            }
        }
    }
    Ok(())
}

type Users = HashMap<Value, Vec<OpId>>;

/// The one op using `v`, using it once.
fn single_use(users: &Users, v: Value) -> Option<OpId> {
    match users.get(&v).map(Vec::as_slice) {
        Some(&[u]) => Some(u),
        _ => None,
    }
}

/// The `entry != null` test and the delete it guards, when the shape holds.
fn presence_then_delete(m: &Module, users: &Users, lookup: OpId) -> Option<(OpId, OpId)> {
    let map = match m.attr(lookup, "map") {
        Some(Attr::Sym(s)) => s.clone(),
        _ => return None,
    };
    let decl = m.lookup_symbol(&map)?;
    if m.op(decl).opcode != Opcode::KsMap
        || !matches!(
            KsMap(decl).kind(m),
            MapKind::Hash | MapKind::LruHash | MapKind::PercpuHash
        )
    {
        return None;
    }
    let entry = m.op(lookup).results[0];
    let test = single_use(users, entry)?;
    let t = m.op(test);
    let null_other = t.operands.iter().any(|&o| o != entry && is_null(m, o));
    if t.opcode != Opcode::CoreCmp
        || crate::ir::views::CoreCmp(test).pred(m) != CmpPred::Ne
        || !null_other
    {
        return None;
    }
    let branch = single_use(users, t.results[0])?;
    let b = m.op(branch);
    if b.opcode != Opcode::KsIf || b.operands[0] != t.results[0] || !b.results.is_empty() {
        return None;
    }
    // Lookup, test and branch in one block, only reads between them.
    let (block, at) = m.position(lookup)?;
    let (branch_block, branch_at) = m.position(branch)?;
    if branch_block != block
        || m.block(block).ops[at + 1..branch_at]
            .iter()
            .any(|&o| o != test && !unaffected(m, o))
    {
        return None;
    }
    let else_block = m.sole_block(b.regions[1])?;
    if m.block(else_block)
        .ops
        .iter()
        .any(|&o| m.op(o).opcode != Opcode::KsYield)
    {
        return None;
    }
    let then_block = m.sole_block(b.regions[0])?;
    let ops = &m.block(then_block).ops;
    let first_effect = ops.iter().copied().find(|&o| !unaffected(m, o))?;
    let d = m.op(first_effect);
    let same_map = matches!(m.attr(first_effect, "map"), Some(Attr::Sym(s)) if *s == map);
    let result_unused = d.results.first().is_some_and(|&r| m.use_count(r) == 0);
    let same_key = same_key(m, m.op(lookup).operands[0], d.operands.first().copied()?);
    (d.opcode == Opcode::KsMapDelete && same_map && result_unused && same_key)
        .then_some((test, first_effect))
}

/// An op that neither changes anything nor reads what the delete changes: pure arithmetic and
/// reads of local variables, which may run after the delete instead of before.
fn unaffected(m: &Module, o: OpId) -> bool {
    let d = m.op(o);
    d.regions.is_empty()
        && (d.opcode.has(Traits::PURE)
            || d.opcode == Opcode::CoreLoad
                && matches!(m.value(d.operands[0]).def,
                    ValueDef::Result(l, _) if m.op(l).opcode == Opcode::CoreLocal))
}

fn is_null(m: &Module, v: Value) -> bool {
    matches!(m.value(v).def, ValueDef::Result(o, _)
        if m.op(o).opcode == Opcode::CoreConst && m.attr(o, "value") == Some(&Attr::Int(0)))
}

/// The same key: one value, or loads of one variable (nothing but reads ran in between).
fn same_key(m: &Module, a: Value, b: Value) -> bool {
    let load_of = |v: Value| match m.value(v).def {
        ValueDef::Result(o, _) if m.op(o).opcode == Opcode::CoreLoad => {
            let slot = m.op(o).operands[0];
            matches!(m.value(slot).def, ValueDef::Result(l, _) if m.op(l).opcode == Opcode::CoreLocal)
                .then_some(slot)
        }
        _ => None,
    };
    a == b || load_of(a).is_some_and(|s| load_of(b) == Some(s))
}

/// The delete moves to the lookup's place and the test asks whether it found the entry.
fn fold(m: &mut Module, lookup: OpId, test: OpId, delete: OpId) {
    let key = m.op(lookup).operands[0];
    let old_key = m.op(delete).operands[0];
    m.detach_op(delete);
    m.op_mut(delete).operands[0] = key;
    let (block, at) = m.position(lookup).expect("placed");
    m.place_op(delete, block, Some(at));
    let status = m.op(delete).results[0];
    let mut b = m.builder_before(test);
    let zero = b.core_const(0, Type::i64());
    let found = b.core_cmp(status, zero, CmpPred::Eq);
    let tested = m.op(test).operands.clone();
    m.replace_op(test, &[found]);
    m.detach_op(lookup);
    for v in tested.into_iter().chain([old_key]) {
        m.erase_if_unused(v);
    }
}
