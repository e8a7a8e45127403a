//! One check for the accesses just ahead: `p[12] * 256 + p[13]` is checked as the two bytes
//! from `p + 12`, as C checks a header before reading its fields.
//!
//! Widening a check is invisible to the program while nothing observable happens between it
//! and the accesses it covers: every failing bounds check aborts alike (§13.4), so failing at
//! the first of them instead of a later one only skips work whose results are discarded.

use super::{is_local, size_of, BoundsCheck, Key};
use crate::ir::{Module, OpId, Opcode};

impl BoundsCheck {
    /// The bytes from `key` (the address of access `op`, `width` bytes wide) that the accesses
    /// after `op` in its block read on the same root, up to the first op that writes memory
    /// other than a local, calls or branches: at least `width`.
    pub(super) fn reach_ahead(&self, m: &Module, op: OpId, key: Key, width: i128) -> i128 {
        let Some((block, at)) = m.position(op) else {
            return width;
        };
        let mut end = key.offset + width;
        for &next in &m.block(block).ops[at + 1..] {
            let d = m.op(next);
            let (addr, ty) = match d.opcode {
                Opcode::CoreLoad => (d.operands[0], m.value_type(d.results[0])),
                Opcode::CoreStore if is_local(m, d.operands[1]) => continue,
                _ if m.is_effect_free(next) => continue,
                _ => break,
            };
            if !self.packet.contains(&addr) {
                continue;
            }
            let same_root = |k: &Key| k.root == key.root && k.offset >= 0;
            let at = (self.key(m, addr).filter(same_root))
                .or_else(|| self.split_key(m, addr).filter(same_root));
            if let Some(k) = at {
                end = end.max(k.offset + size_of(m, ty));
            }
        }
        end - key.offset
    }
}
