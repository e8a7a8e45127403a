//! Map keys compared across ops (§11.2): which earlier lookup or key spill a later map op may
//! reuse. A key is identified by the expression that computes it, so `m[ip->saddr]` twice, or a
//! struct variable read twice, is one key; it still holds at a later op while nothing in between
//! writes what the expression reads (the variable, packet or map memory).

use super::*;
use crate::ir::Traits;
use crate::passes::provenance::derivation;

/// A key's expression: effect-free ops (arithmetic, addresses, memory reads) over other values.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) enum KeyId {
    Op(Opcode, Vec<Option<Attr>>, Vec<KeyId>),
    /// Any other value (a stack slot's address, a parameter, a call's result): itself.
    Value(Value),
}

/// How deep a key's expression is followed; deeper parts are compared by value.
const DEPTH: u32 = 12;

pub(super) fn key_id(m: &Module, key: Value) -> KeyId {
    expression(m, key, DEPTH)
}

fn expression(m: &Module, v: Value, depth: u32) -> KeyId {
    let ValueDef::Result(op, _) = m.value(v).def else {
        return KeyId::Value(v);
    };
    let d = m.op(op);
    // A stack slot is itself: two `core.local`s with equal attributes are different variables.
    let structural = depth > 0
        && d.results.len() == 1
        && d.opcode != Opcode::CoreLocal
        && (m.is_effect_free(op) || d.opcode.has(Traits::PURE));
    if !structural {
        return KeyId::Value(v);
    }
    let operands = d
        .operands
        .iter()
        .map(|&o| expression(m, o, depth - 1))
        .collect();
    KeyId::Op(d.opcode, d.attrs.clone(), operands)
}

/// Where an address points, as far as writes through it are concerned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A stack variable (the `core.local`).
    Stack(Value),
    /// Memory that is no stack variable: packet, context, a map value, a global.
    Elsewhere,
    /// Anything, a stack variable whose address escaped included.
    Unknown,
}

fn target(m: &Module, mut addr: Value) -> Target {
    loop {
        let ValueDef::Result(op, _) = m.value(addr).def else {
            return Target::Unknown;
        };
        if let Some((base, _)) = derivation(m, op) {
            addr = base;
            continue;
        }
        return match m.op(op).opcode {
            Opcode::CoreLocal => Target::Stack(addr),
            Opcode::BpfHelperCall
            | Opcode::KsMapLookup
            | Opcode::KsCtxLoad
            | Opcode::BpfCtxLoad
            | Opcode::KsGlobalAddr
            | Opcode::KsConfigAddr
            | Opcode::BpfMapAddr => Target::Elsewhere,
            _ => Target::Unknown,
        };
    }
}

/// What a key's expression reads from memory.
#[derive(Default)]
pub(super) struct Reads {
    stack: Vec<Value>,
    elsewhere: bool,
}

impl KeyId {
    pub(super) fn reads(&self, m: &Module) -> Reads {
        let mut r = Reads::default();
        self.collect_reads(m, &mut r);
        r
    }

    fn collect_reads(&self, m: &Module, r: &mut Reads) {
        let KeyId::Op(opcode, _, operands) = self else {
            return;
        };
        if *opcode == Opcode::CoreLoad {
            match operands[0].target(m) {
                Target::Stack(s) => r.stack.push(s),
                _ => r.elsewhere = true,
            }
        } else if opcode.has(Traits::READS) {
            r.elsewhere = true;
        }
        for o in operands {
            o.collect_reads(m, r);
        }
    }

    /// The target of an address expression.
    fn target(&self, m: &Module) -> Target {
        match self {
            KeyId::Value(v) => target(m, *v),
            KeyId::Op(opcode, _, operands) => match (opcode, operands.first()) {
                (
                    Opcode::CoreFieldAddr
                    | Opcode::CoreElemAddr
                    | Opcode::KsIndexAddr
                    | Opcode::CorePtrAdd
                    | Opcode::CoreCast,
                    Some(base),
                ) => base.target(m),
                (Opcode::KsCtxLoad | Opcode::BpfCtxLoad, _) => Target::Elsewhere,
                _ => Target::Unknown,
            },
        }
    }
}

impl Reads {
    /// Whether `op` may change what the key reads.
    pub(super) fn clobbered_by(&self, m: &Module, op: OpId) -> bool {
        let d = m.op(op);
        // Structured ops count through the ops inside them.
        if !d.regions.is_empty() || m.is_effect_free(op) {
            return false;
        }
        let hits = |t: Target| match t {
            Target::Stack(s) => self.stack.contains(&s),
            Target::Elsewhere => self.elsewhere,
            Target::Unknown => self.elsewhere || !self.stack.is_empty(),
        };
        match d.opcode {
            Opcode::CoreStore => hits(target(m, d.operands[1])),
            Opcode::CoreAtomicAdd | Opcode::CoreAtomicFetchAdd | Opcode::CoreCopy => {
                hits(target(m, d.operands[0]))
            }
            // Map entries and ring-buffer records are no stack variable.
            Opcode::KsMapUpdate
            | Opcode::KsMapDelete
            | Opcode::KsMapAdd
            | Opcode::KsMapPush
            | Opcode::KsMapPop
            | Opcode::KsCtxStore
            | Opcode::BpfCtxStore => self.elsewhere,
            Opcode::BpfHelperCall => {
                let id = helper_id(m, op);
                let read_only = crate::vocab::helpers::by_id(id).map_or(&[][..], |h| h.reads_only);
                let writes_argument = d.operands.iter().enumerate().any(|(i, &a)| {
                    m.value_type(a).is_ptr() && !read_only.contains(&i) && hits(target(m, a))
                });
                // A lookup changes no memory; other helpers may write packet or map memory.
                let lookup = id == i128::from(MAP_LOOKUP_ELEM.id);
                writes_argument || (!lookup && self.elsewhere)
            }
            // Calls may write anything they can reach; other ops only what their traits say.
            Opcode::CoreCall
            | Opcode::CoreCallIndirect
            | Opcode::KsCallExtern
            | Opcode::BpfKfuncCall
            | Opcode::BpfLoop => self.elsewhere || !self.stack.is_empty(),
            _ if d.opcode.has(Traits::WRITES) => self.elsewhere || !self.stack.is_empty(),
            _ => false,
        }
    }
}

/// A struct or array key read whole from a stack variable that nothing writes between that read
/// and the map operation `op`: the variable's own address, as C passes `&key`, instead of a copy
/// in a key slot. (Variables are zeroed where declared, so every byte the helper hashes, padding
/// included, is defined.)
pub(super) fn key_in_place(m: &Module, key: Value, op: OpId) -> Option<Value> {
    let ValueDef::Result(load, _) = m.value(key).def else {
        return None;
    };
    let variable = *m.op(load).operands.first()?;
    let ValueDef::Result(local, _) = m.value(variable).def else {
        return None;
    };
    let aggregate = matches!(m.value_type(key), Type::Struct(_) | Type::Array(..));
    if m.op(load).opcode != Opcode::CoreLoad
        || m.op(local).opcode != Opcode::CoreLocal
        || !aggregate
    {
        return None;
    }
    let reads = key_id(m, key).reads(m);
    let between = ops_between(m, load, op)?;
    (!between.iter().any(|&o| reads.clobbered_by(m, o))).then_some(variable)
}
