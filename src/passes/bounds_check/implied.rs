//! Bytes a test of a variable-offset pointer implies at its root:
//! `if (data + igmp + 8 > data_end) { return }` with `igmp ≥ 34` (after `if (ihl < 5)`) leaves
//! `[data, data + 42)` in the packet. The verifier, which relates no two registers, learns a range
//! for `data + igmp` only, so a later `*(data + 34)` (an IP option) needs a check of its own.
//!
//! That check cannot fail, so it may stand anywhere the test's outcome holds: it is made once,
//! right after the test, for all the implied bytes. Every path from there then carries one range
//! for the root, where checks at the accesses would leave paths that read more bytes with a wider
//! range than the others, and the verifier could not prune where they join (a loop head).

use super::{def_op, unsigned_source, BoundsCheck, Fact, Key, Root, MAX_POINTER_OFFSET};
use crate::ir::{Module, OpId, Opcode, Value};

/// A fact the test ending at `after` implies, and whether it has been checked there.
#[derive(Clone, Copy)]
pub(super) struct Implied {
    after: OpId,
    fact: Fact,
    checked: bool,
}

impl BoundsCheck {
    /// Records what the `if` `test` implies where its condition `cond` had `outcome`.
    pub(super) fn note_implied(&mut self, m: &Module, test: OpId, cond: Value, outcome: bool) {
        for fact in self.facts_by(m, cond, outcome, Self::implied_fact) {
            self.implied.push(Implied {
                after: test,
                fact,
                checked: false,
            });
        }
    }

    /// The bytes from the root of the pointer a comparison tests that it implies in bounds, where
    /// a variable index lies between the two (else the comparison's own fact says as much).
    fn implied_fact(&self, m: &Module, cond: Value, outcome: bool) -> Option<Fact> {
        let ptr = self.tested_pointer(m, cond, outcome)?;
        let least = self.least_key(m, ptr, 4)?;
        let Root::Value(root) = least.root else {
            return None;
        };
        if self.key(m, ptr).is_some_and(|k| k.root == least.root) || least.offset <= 0 {
            return None;
        }
        // (A root before `ctx->data`, from `data_meta`, may have bytes outside the packet.)
        if self.lowest_data_offset(m, root, 4)? < 0 {
            return None;
        }
        self.provable(m, least.proves(0))
    }

    /// `v` as a plain root plus the least offset it may have past it: constant offsets, unsigned
    /// variable indexes at their least (`data + igmp + 8` is at least `data + 42`).
    fn least_key(&self, m: &Module, v: Value, depth: u32) -> Option<Key> {
        if let Some(op) = def_op(m, v) {
            let d = m.op(op);
            match d.opcode {
                Opcode::CoreCast => return self.least_key(m, d.operands[0], depth),
                Opcode::CorePtrAdd => {
                    let base = self.least_key(m, d.operands[0], depth)?;
                    if let Some(c) = m.const_int(d.operands[1]) {
                        return Some(base.plus(c));
                    }
                    let index = unsigned_source(m, d.operands[1])?;
                    // (An index that may be huge could wrap the address below its root.)
                    let max = self.max_of(m, index, depth)?;
                    if max > MAX_POINTER_OFFSET as u128 {
                        return None;
                    }
                    let least = i128::try_from(self.min_with(m, index, depth, true)?).ok()?;
                    return Some(base.plus(least));
                }
                Opcode::CoreLoad if depth > 0 && self.slots.get(&d.operands[0]) == Some(&1) => {
                    if let Some(&stored) = self.slot_value.get(&d.operands[0]) {
                        return self.least_key(m, stored, depth - 1);
                    }
                }
                _ => {}
            }
        }
        self.key(m, v)
            .filter(|k| matches!(k.root, Root::Value(_)) && k.formed_at.is_none())
    }

    /// The fact a test before `access` implies of `width` bytes at `k`, checked right after that
    /// test the first time an access needs it.
    pub(super) fn check_implied(
        &mut self,
        m: &mut Module,
        access: OpId,
        k: Key,
        width: i128,
    ) -> Option<Fact> {
        if k.offset < 0 {
            return None;
        }
        let i = self.implied.iter().position(|i| {
            i.fact.root == k.root
                && k.offset + width <= i.fact.end
                && m.precedes_structurally(i.after, access)
        })?;
        let Implied {
            after,
            fact,
            checked,
        } = self.implied[i];
        if !checked {
            let Root::Value(root) = fact.root else {
                return None;
            };
            // (The root must be at hand after the test: not formed inside its condition.)
            if def_op(m, root).is_some_and(|d| !m.precedes_structurally(d, after)) {
                return None;
            }
            let (block, at) = m.position(after)?;
            let next = *m.block(block).ops.get(at + 1)?;
            // An opaque copy: LLVM might otherwise fold the check, which the user's test and the
            // index's bounds decide, and the verifier would not see the range.
            let hidden = m.builder_before(next).bpf_opaque(root);
            self.packet.insert(hidden);
            self.insert_check(m, next, hidden, fact.end, false);
            self.implied[i].checked = true;
        }
        Some(fact)
    }
}
