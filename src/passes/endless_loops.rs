//! Endless kernel loops: a `while` whose condition, and every test that could take it out, read
//! only values the loop never changes — locals it does not write (or writes only with such
//! values), packet bytes it cannot write, constants — decides the same way in every iteration:
//! once it goes round it goes round forever (`while (data + off + 2 <= data_end) { … }` with
//! the step `off = off + len` deleted). The kernel refuses such a program (its verifier follows
//! the loop until it gives up), so `bound-loops` reports it as E0402 at the loop, as `while (true)`
//! without an exit is.

use super::lower_loops::enclosing_loop;
use super::packet_walk::rooted;
use super::provenance::Provenance;
use crate::ir::{Module, OpId, Opcode, Traits, Value, ValueDef};
use std::collections::HashSet;

/// Whether nothing loop `l` of `f` changes can end it: see the module comment.
pub(super) fn never_ends(m: &Module, f: OpId, l: OpId) -> bool {
    let inside: HashSet<OpId> = m.collect_nested(l, |_| true).into_iter().collect();
    let facts = Invariance {
        m,
        inside: &inside,
        may_write_packet: inside.iter().any(|&o| may_write_packet(m, o)),
        provenance: Provenance::of_function(m, f),
    };
    let cond = m.op(l).regions[0];
    let Some(test) = m.yielded_value(cond) else {
        return false;
    };
    // Every way out: the condition, and each branch that holds one in the body. A call may
    // throw, and a `try` may catch what is thrown: not followed.
    let mut deciding = vec![test];
    for &o in &inside {
        let d = m.op(o);
        let leaves = match d.opcode {
            Opcode::KsReturn | Opcode::KsThrow | Opcode::KsTailCall => true,
            Opcode::KsBreak => enclosing_loop(m, o) == Some(l),
            Opcode::CoreCall | Opcode::CoreCallIndirect | Opcode::KsTry => return false,
            _ => false,
        };
        if !leaves {
            continue;
        }
        let mut at = m.parent_op(o);
        while let Some(p) = at.filter(|&p| p != l) {
            match m.op(p).opcode {
                Opcode::KsIf | Opcode::KsSwitch => deciding.push(m.op(p).operands[0]),
                // Reached or not as a nested loop goes: not followed.
                _ => return false,
            }
            at = m.parent_op(p);
        }
        // An exit directly in the body leaves in the first iteration that reaches it.
        if m.parent_op(o) == Some(l) {
            return false;
        }
    }
    deciding.iter().all(|&v| facts.invariant(v, 8))
}

struct Invariance<'a> {
    m: &'a Module,
    inside: &'a HashSet<OpId>,
    may_write_packet: bool,
    provenance: Provenance,
}

impl Invariance<'_> {
    /// `v` is the same in every iteration of the loop.
    fn invariant(&self, v: Value, depth: u32) -> bool {
        let m = self.m;
        let op = match m.value(v).def {
            ValueDef::Result(op, _) => op,
            ValueDef::Arg(block, _) => {
                return m
                    .block(block)
                    .parent
                    .and_then(|r| m.region(r).parent)
                    .is_none_or(|o| !self.inside.contains(&o))
            }
        };
        if !self.inside.contains(&op) {
            return true;
        }
        if depth == 0 {
            return false;
        }
        let d = m.op(op);
        match d.opcode {
            Opcode::CoreConst => true,
            Opcode::CoreLoad if m.is_local(d.operands[0]) => {
                self.local_invariant(d.operands[0], depth - 1)
            }
            Opcode::CoreLoad => {
                !self.may_write_packet
                    && rooted(m, &self.provenance, d.operands[0], b"data")
                    && self.invariant(d.operands[0], depth - 1)
            }
            _ if d.opcode.has(Traits::PURE) && d.regions.is_empty() => {
                d.operands.iter().all(|&o| self.invariant(o, depth - 1))
            }
            _ => false,
        }
    }

    /// Local `slot` holds the same value in every iteration: the loop writes it, if at all,
    /// only with values that are, and nothing takes its address.
    fn local_invariant(&self, slot: Value, depth: u32) -> bool {
        let m = self.m;
        self.inside.iter().all(|&o| {
            let d = m.op(o);
            match d.opcode {
                Opcode::CoreStore if d.operands[1] == slot => self.invariant(d.operands[0], depth),
                Opcode::CoreLoad => true,
                _ => !d.operands.contains(&slot),
            }
        })
    }
}

/// Whether op `o` may write packet bytes: any write but a store to a local, a global or a map
/// entry, and the map and ring-buffer operations.
fn may_write_packet(m: &Module, o: OpId) -> bool {
    let d = m.op(o);
    if !d.opcode.has(Traits::WRITES) {
        return false;
    }
    match d.opcode {
        Opcode::CoreStore => !stays_off_packet(m, d.operands[1]),
        Opcode::KsMapUpdate
        | Opcode::KsMapDelete
        | Opcode::KsMapAdd
        | Opcode::KsMapPush
        | Opcode::KsMapPop
        | Opcode::KsRbSubmit
        | Opcode::KsRbDiscard
        | Opcode::KsRbOutput => false,
        _ => true,
    }
}

/// `address` is a local's, a global's, a config's or a map entry's (fields and elements included).
fn stays_off_packet(m: &Module, address: Value) -> bool {
    if m.is_local(address) {
        return true;
    }
    let Some(op) = m.defining_op(address) else {
        return false;
    };
    let d = m.op(op);
    match d.opcode {
        Opcode::KsGlobalAddr | Opcode::KsConfigAddr | Opcode::KsMapLookup => true,
        Opcode::CoreFieldAddr | Opcode::CoreElemAddr | Opcode::CoreCast => {
            stays_off_packet(m, d.operands[0])
        }
        _ => false,
    }
}
