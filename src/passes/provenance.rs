//! Pointer provenance: where each address in a function comes from. It is the one definition of
//! which ops form a pointer from another (fields, elements, checked indexing, byte offsets,
//! pointer casts), asked by every pass that follows addresses to their origin: map-entry
//! write-back (lower-host), packet bounds checks (bounds-check) and disjoint globals
//! (fuse-fetch-add). A new pointer-forming op is taught here, once.
//!
//! Forward, [`Provenance`] gives each pointer value its roots: the pointers it was formed from
//! that were not themselves formed from another (a map lookup's entry, `ctx->data`, a global's
//! address, an argument), seen through locals that only ever hold pointers. Backward,
//! [`object_base`] follows the steps that stay inside one object.

use crate::ir::{Module, OpId, Opcode, Type, Value, ValueDef};
use std::collections::{BTreeSet, HashMap};

/// The context field `op` loads (`ctx->data` is the root of packet pointers), if it is a
/// `ks.ctx_load`.
pub fn ctx_field(m: &Module, op: OpId) -> Option<&[u8]> {
    match (m.op(op).opcode, m.attr(op, "field")) {
        (Opcode::KsCtxLoad, Some(crate::ir::Attr::Str(f))) => Some(f),
        _ => None,
    }
}

/// How an op forms its pointer result from its base pointer (operand 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A field of the struct the base points to (`core.field_addr`, kernel struct fields).
    Field,
    /// An element with no run-time check: inside the object when the base points to an array
    /// type (its indexing was checked before), otherwise anywhere in the pointee sequence.
    Element { within_array: bool },
    /// An element after a run-time range check (`ks.index_addr`).
    CheckedIndex,
    /// A byte offset (`p + n`).
    Offset,
    /// The same address as another pointer type.
    Cast,
}

impl Step {
    /// The result addresses part of the object the base addresses.
    pub fn stays_inside(self) -> bool {
        match self {
            Step::Field | Step::CheckedIndex => true,
            Step::Element { within_array } => within_array,
            Step::Offset | Step::Cast => false,
        }
    }
}

/// The base pointer `op` forms its pointer result from, and how; `None` when `op` forms no
/// pointer from another.
pub fn derivation(m: &Module, op: OpId) -> Option<(Value, Step)> {
    let d = m.op(op);
    let (&[result], Some(&base)) = (&d.results[..], d.operands.first()) else {
        return None;
    };
    if !m.value_type(result).is_ptr() {
        return None;
    }
    let step = match d.opcode {
        Opcode::CoreFieldAddr | Opcode::KsKfieldAddr | Opcode::BpfCoreFieldAddr => Step::Field,
        Opcode::CoreElemAddr | Opcode::BpfCoreElemAddr => Step::Element {
            within_array: matches!(m.value_type(base).pointee(), Some(Type::Array(..))),
        },
        Opcode::KsIndexAddr => Step::CheckedIndex,
        Opcode::CorePtrAdd => Step::Offset,
        Opcode::CoreCast if m.value_type(base).is_ptr() => Step::Cast,
        Opcode::BpfOpaque => Step::Cast,
        _ => return None,
    };
    Some((base, step))
}

/// The pointer `v` was formed from by steps that stay inside one object (itself if none).
pub fn object_base(m: &Module, mut v: Value) -> Value {
    while let ValueDef::Result(op, _) = m.value(v).def {
        match derivation(m, op) {
            Some((base, step)) if step.stays_inside() => v = base,
            _ => break,
        }
    }
    v
}

/// The roots of every pointer value of a function.
#[derive(Debug, Default)]
pub struct Provenance {
    /// The roots of each pointer formed from another or loaded from a pointer slot; any other
    /// value is its own root.
    roots: HashMap<Value, BTreeSet<Value>>,
    /// For each load from a pointer slot, the values stored into the slot.
    loaded: HashMap<Value, Vec<Value>>,
}

impl Provenance {
    /// The analysis of `f`'s body.
    pub fn of_function(m: &Module, f: OpId) -> Provenance {
        Self::of_ops(m, &m.collect_nested(f, |_| true))
    }

    /// The analysis over `ops` (a function's ops, nested ones included).
    fn of_ops(m: &Module, ops: &[OpId]) -> Provenance {
        let slots = pointer_slots(m, ops);
        let mut p = Provenance::default();
        // Sets only grow, from empty, so this ends; loops need more than one round.
        loop {
            let mut changed = false;
            for &op in ops {
                let d = m.op(op);
                let (result, from): (Value, Vec<Value>) = if let Some((base, _)) = derivation(m, op)
                {
                    (d.results[0], vec![base])
                } else if d.opcode == Opcode::CoreLoad && m.value_type(d.results[0]).is_ptr() {
                    match slots.get(&d.operands[0]) {
                        Some(stored) => {
                            p.loaded.insert(d.results[0], stored.clone());
                            (d.results[0], stored.clone())
                        }
                        None => continue,
                    }
                } else {
                    continue;
                };
                let mut roots = p.roots.remove(&result).unwrap_or_default();
                let before = roots.len();
                for v in from {
                    match p.roots.get(&v) {
                        Some(r) => roots.extend(r.iter().copied()),
                        None if p.is_formed(m, v, &slots) => {}
                        None => {
                            roots.insert(v);
                        }
                    }
                }
                changed |= roots.len() != before;
                p.roots.insert(result, roots);
            }
            if !changed {
                return p;
            }
        }
    }

    /// Whether `v` gets its roots from others (so, before the fixpoint reaches it, it has none
    /// yet rather than being its own).
    fn is_formed(&self, m: &Module, v: Value, slots: &HashMap<Value, Vec<Value>>) -> bool {
        match m.value(v).def {
            ValueDef::Result(op, _) => {
                derivation(m, op).is_some()
                    || (m.op(op).opcode == Opcode::CoreLoad
                        && slots.contains_key(&m.op(op).operands[0]))
            }
            _ => false,
        }
    }

    /// The roots `v` may have been formed from.
    pub fn roots(&self, v: Value) -> impl Iterator<Item = Value> + '_ {
        let own = (!self.roots.contains_key(&v)).then_some(v);
        self.roots.get(&v).into_iter().flatten().copied().chain(own)
    }

    /// `v` was formed from `root` and from nothing else.
    pub fn only_from(&self, v: Value, root: Value) -> bool {
        match self.roots.get(&v) {
            Some(r) => r.len() == 1 && r.contains(&root),
            None => v == root,
        }
    }

    /// When `v` is loaded from a local that only holds pointers: the values stored into it.
    pub fn stored_before(&self, v: Value) -> Option<&[Value]> {
        self.loaded.get(&v).map(Vec::as_slice)
    }
}

/// Locals whose address is only loaded from and stored to (never escapes), with the values
/// stored; only those with at least one store.
fn pointer_slots(m: &Module, ops: &[OpId]) -> HashMap<Value, Vec<Value>> {
    let mut slots: HashMap<Value, Vec<Value>> = ops
        .iter()
        .filter(|&&o| m.op(o).opcode == Opcode::CoreLocal)
        .map(|&o| (m.op(o).results[0], Vec::new()))
        .collect();
    let mut escaped = Vec::new();
    for &o in ops {
        let d = m.op(o);
        for (i, v) in d.operands.iter().enumerate() {
            let plain_use = match d.opcode {
                Opcode::CoreLoad => true,
                Opcode::CoreStore => i == 1,
                _ => false,
            };
            if !plain_use {
                escaped.push(*v);
            }
        }
        if d.opcode == Opcode::CoreStore {
            if let Some(stored) = slots.get_mut(&d.operands[1]) {
                stored.push(d.operands[0]);
            }
        }
    }
    for v in escaped {
        slots.remove(&v);
    }
    slots.retain(|_, stored| !stored.is_empty());
    slots
}
