//! Packet tests inside `&&` and `||`: `if (ihl < 20 || data + 14 + ihl + 20 > data_end) { return }`
//! proves the bytes after the branch just as the test alone would, since the branch is left
//! unless the second test ran and failed. A short-circuit condition is a `ks.if` yielding a bool;
//! the arm that can give the outcome says which tests ran, and with which outcome.
//!
//! The verifier proves a range on the very register it tested when the offset is variable, and
//! the later accesses go through that address (`access_through`). An address formed inside the
//! arm is not visible after it, so its formation — address arithmetic, context fields and locals,
//! nothing that can fault or depends on the first test — is hoisted before the branch first.

use super::{def_op, BoundsCheck, Fact};
use crate::ir::{Module, OpId, Opcode, Value, ValueDef};

/// Before the walk: hoists, out of the arms of each short-circuit condition, the formation of
/// the pointers its comparisons test.
pub(super) fn hoist_tested_addresses(m: &mut Module, f: OpId) {
    let conditions = m.collect_nested(f, |d| {
        d.opcode == Opcode::KsIf && d.results.len() == 1 && d.regions.len() == 2
    });
    for cond in conditions {
        for r in m.op(cond).regions.clone() {
            let Some(block) = m.sole_block(r) else {
                continue;
            };
            let ops = m.block(block).ops.clone();
            let tested: Vec<Value> = ops
                .iter()
                .filter(|&&o| m.op(o).opcode == Opcode::CoreCmp)
                .flat_map(|&o| m.op(o).operands.clone())
                .filter(|&v| m.value_type(v).is_ptr())
                .collect();
            let mut hoist = Vec::new();
            if tested.iter().all(|&v| formation(m, &ops, v, &mut hoist)) {
                hoist.sort_by_key(|o| ops.iter().position(|x| x == o));
                hoist.dedup();
                let (outer, at) = m.position(cond).expect("placed");
                for (i, &o) in hoist.iter().enumerate() {
                    m.detach_op(o);
                    m.place_op(o, outer, Some(at + i));
                }
            }
        }
    }
}

/// Collects into `hoist` the ops of `block` that form `v`, when all of them may run before the
/// branch: address arithmetic, constants, context fields, loads of locals nothing in the block
/// stores to.
fn formation(m: &Module, ops: &[OpId], v: Value, hoist: &mut Vec<OpId>) -> bool {
    let ValueDef::Result(op, _) = m.value(v).def else {
        return true;
    };
    if !ops.contains(&op) {
        // Defined before the branch: already visible there.
        return true;
    }
    let d = m.op(op);
    let movable = match d.opcode {
        Opcode::CoreConst
        | Opcode::CoreCast
        | Opcode::CorePtrAdd
        | Opcode::CoreFieldAddr
        | Opcode::CoreElemAddr
        | Opcode::CoreAdd
        | Opcode::CoreMul
        | Opcode::CoreShl
        | Opcode::CoreAnd
        | Opcode::KsCtxLoad => true,
        Opcode::CoreLoad => {
            let slot = d.operands[0];
            let local = matches!(m.value(slot).def,
                ValueDef::Result(l, _) if m.op(l).opcode == Opcode::CoreLocal);
            local
                && !ops
                    .iter()
                    .any(|&o| m.op(o).opcode == Opcode::CoreStore && m.op(o).operands[1] == slot)
        }
        _ => false,
    };
    if !movable {
        return false;
    }
    hoist.push(op);
    d.operands.iter().all(|&x| formation(m, ops, x, hoist))
}

impl BoundsCheck {
    /// The facts a branch condition proves when it has `outcome`: its own packet test, or the
    /// tests of a short-circuit condition that must have run with a known outcome.
    pub(super) fn facts(&self, m: &Module, cond: Value, outcome: bool) -> Vec<Fact> {
        self.facts_by(m, cond, outcome, Self::fact)
    }

    /// [`Self::facts`] with `base` telling what one comparison proves.
    pub(super) fn facts_by(
        &self,
        m: &Module,
        cond: Value,
        outcome: bool,
        base: fn(&Self, &Module, Value, bool) -> Option<Fact>,
    ) -> Vec<Fact> {
        if let Some(f) = base(self, m, cond, outcome) {
            return vec![f];
        }
        let Some(op) = def_op(m, cond) else {
            return vec![];
        };
        let d = m.op(op);
        if d.opcode != Opcode::KsIf || d.results.len() != 1 || d.regions.len() != 2 {
            return vec![];
        }
        // The arms whose yielded value can be `outcome` (a constant of the other value cannot).
        let mut possible = Vec::new();
        for (arm, &r) in d.regions.iter().enumerate() {
            let Some(block) = m.sole_block(r) else {
                return vec![];
            };
            let Some(&last) = m.block(block).ops.last() else {
                return vec![];
            };
            let Some(&y) = m.op(last).operands.first() else {
                return vec![];
            };
            if m.const_int(y).is_none_or(|c| (c != 0) == outcome) {
                possible.push((arm, y));
            }
        }
        let [(arm, yielded)] = possible[..] else {
            return vec![];
        };
        let mut out = self.facts_by(m, d.operands[0], arm == 0, base);
        out.extend(self.facts_by(m, yielded, outcome, base));
        // A fact on an address formed inside the condition (not hoisted) is not usable after it.
        out.retain(|f| f.tested.is_none_or(|t| !m.defined_within(t, op)));
        out
    }
}
