//! Two adjacent packet bytes read as one 16-bit load, the way C reads `eth->h_proto`:
//!
//! - `(p[k] as u16) << 8 | p[k + 1]` becomes `bswap(*(u16 *)(p + k))`;
//! - `p[k] != a || p[k + 1] != b` becomes `*(u16 *)(p + k) != (a | b << 8)`, and
//!   `p[k] == a && p[k + 1] == b` the `==` of the same, when both bytes are already proven in
//!   bounds before the test: the short circuit may skip the second read, so reading it anyway is
//!   only sound when it cannot fail.
//!
//! Only for even `k` from a constant-offset root, so the 16-bit access is as aligned as C's
//! header fields (strict-alignment kernels check packet accesses against `NET_IP_ALIGN`).
//! The BPF target is little-endian: the byte at `p + k` is the low half of the load.

use super::{const_int, def_op, BoundsCheck, Fact, Key, Root};
use crate::ir::{views, Module, OpId, Opcode, Type, Value};
use crate::vocab::CmpPred;

/// A byte read from the packet: the load, its address and its key.
struct ByteRead {
    load: OpId,
    addr: Value,
    key: Key,
}

/// `p[k] <pred> c` with an `eq`/`ne` predicate and a constant that fits a byte.
struct ByteTest {
    read: ByteRead,
    pred: CmpPred,
    constant: u8,
}

impl BoundsCheck {
    /// Rewrites `op` (a `core.or` or a value-yielding `ks.if`) into one 16-bit packet load when it
    /// combines two adjacent bytes as described above; true when it did.
    pub(super) fn fuse_byte_pair(&self, m: &mut Module, op: OpId, facts: &[Fact]) -> bool {
        match m.op(op).opcode {
            Opcode::CoreOr => self.fuse_shifted_pair(m, op, facts),
            Opcode::KsIf => self.fuse_short_circuit_pair(m, op, facts),
            _ => false,
        }
    }

    /// `(hi as T) << 8 | lo as T` with `lo` the byte after `hi`.
    fn fuse_shifted_pair(&self, m: &mut Module, op: OpId, facts: &[Fact]) -> bool {
        let d = m.op(op);
        let (ty, operands) = (
            m.value_type(d.results[0]).clone(),
            [d.operands[0], d.operands[1]],
        );
        if !matches!(&ty, Type::Int(i) if !i.signed() && i.bits() >= 16) {
            return false;
        }
        let found = [(operands[0], operands[1]), (operands[1], operands[0])]
            .into_iter()
            .find_map(|(shifted, low)| {
                let hi = self.shifted_by_8(m, shifted)?;
                let lo = self.byte_read(m, low)?;
                (lo.key.root == hi.key.root && lo.key.offset == hi.key.offset + 1).then_some(hi)
            });
        // The word is read where the `or` is: nothing may write memory since the bytes were read.
        let Some(hi) = found
            .filter(|hi| self.pair_is_readable(hi.key, facts) && unchanged_since(m, hi.load, op))
        else {
            return false;
        };
        let mut b = m.builder_before(op);
        let word = load_u16(&mut b, hi.addr);
        let swapped = b.core_bswap(word);
        let value = b.cast_to(swapped, ty);
        replace(m, op, value);
        true
    }

    /// `%r = ks.if (p[k] != a) { yield true } else { yield p[k'] != b }` with `{k, k'} = {k, k + 1}`,
    /// or the `&&` form with `==` tests and `false`.
    fn fuse_short_circuit_pair(&self, m: &mut Module, op: OpId, facts: &[Fact]) -> bool {
        let d = m.op(op).clone();
        if d.results.len() != 1 || *m.value_type(d.results[0]) != Type::Bool {
            return false;
        }
        let Some(first) = self.byte_test(m, d.operands[0]) else {
            return false;
        };
        // `||` computes the second test when the first is false, `&&` when it is true.
        let (pred, short, tested) = match first.pred {
            CmpPred::Ne => (CmpPred::Ne, d.regions[0], d.regions[1]),
            CmpPred::Eq => (CmpPred::Eq, d.regions[1], d.regions[0]),
            _ => return false,
        };
        let short_value = if pred == CmpPred::Ne { 1 } else { 0 };
        if yielded(m, short).and_then(|v| const_int(m, v)) != Some(short_value)
            || !is_pure(m, tested)
        {
            return false;
        }
        let Some(second) = yielded(m, tested).and_then(|v| self.byte_test(m, v)) else {
            return false;
        };
        if second.pred != pred
            || second.read.key.root != first.read.key.root
            || (second.read.key.offset - first.read.key.offset).abs() != 1
        {
            return false;
        }
        let (low, high) = if first.read.key.offset < second.read.key.offset {
            (&first, &second)
        } else {
            (&second, &first)
        };
        if !self.pair_is_readable(low.read.key, facts) || !unchanged_since(m, first.read.load, op) {
            return false;
        }
        // The second read's address is defined inside the region: address the pair from the first.
        let mut b = m.builder_before(op);
        let from_first = low.read.key.offset - first.read.key.offset;
        let bytes = b.cast_to(first.read.addr, Type::ptr(Type::u8()));
        let addr = if from_first == 0 {
            bytes
        } else {
            let delta = b.core_const(from_first, Type::i64());
            b.core_ptr_add(bytes, delta)
        };
        let word = load_u16(&mut b, addr);
        let expected = b.core_const(
            i128::from(low.constant) | i128::from(high.constant) << 8,
            Type::u16(),
        );
        let test = b.core_cmp(word, expected, pred);
        replace(m, op, test);
        true
    }

    /// Both bytes from `key` are proven in bounds and the pair is 2-aligned like a C header field.
    fn pair_is_readable(&self, key: Key, facts: &[Fact]) -> bool {
        !matches!(key.root, Root::Indexed { .. })
            && key.offset % 2 == 0
            && Self::covering(facts, key, 2).is_some()
    }

    /// `v` is a packet byte, loaded and zero-extended (or not).
    fn byte_read(&self, m: &Module, v: Value) -> Option<ByteRead> {
        let d = m.op(def_op(m, v)?);
        match d.opcode {
            Opcode::CoreCast
                if *m.value_type(d.operands[0]) == Type::u8()
                    && matches!(m.value_type(v), Type::Int(i) if !i.signed()) =>
            {
                self.byte_read(m, d.operands[0])
            }
            Opcode::CoreLoad
                if *m.value_type(v) == Type::u8() && self.packet.contains(&d.operands[0]) =>
            {
                let addr = d.operands[0];
                Some(ByteRead {
                    load: def_op(m, v)?,
                    addr,
                    key: self.key(m, addr)?,
                })
            }
            _ => None,
        }
    }

    /// `v` is `byte << 8`, computed in a type wide enough to keep the byte.
    fn shifted_by_8(&self, m: &Module, v: Value) -> Option<ByteRead> {
        let d = m.op(def_op(m, v)?);
        (d.opcode == Opcode::CoreShl && const_int(m, d.operands[1]) == Some(8)).then_some(())?;
        self.byte_read(m, d.operands[0])
            .filter(|_| *m.value_type(d.operands[0]) != Type::u8())
    }

    /// `v` is `byte == c` or `byte != c` (either side constant) with `c` a byte value.
    fn byte_test(&self, m: &Module, v: Value) -> Option<ByteTest> {
        let op = def_op(m, v)?;
        let d = m.op(op);
        let pred = views::CoreCmp::of(m, op)?.pred(m);
        if !matches!(pred, CmpPred::Eq | CmpPred::Ne) {
            return None;
        }
        let (l, r) = (d.operands[0], d.operands[1]);
        let (read, c) = match (self.byte_read(m, l), const_int(m, r)) {
            (Some(read), Some(c)) => (read, c),
            _ => (self.byte_read(m, r)?, const_int(m, l)?),
        };
        Some(ByteTest {
            read,
            pred,
            constant: u8::try_from(c).ok()?,
        })
    }
}

/// `from` and `to` are in one block and nothing between them writes memory (or might).
fn unchanged_since(m: &Module, from: OpId, to: OpId) -> bool {
    match (m.position(from), m.position(to)) {
        (Some((b, i)), Some((c, j))) if b == c && i < j => m.block(b).ops[i + 1..j]
            .iter()
            .all(|&o| m.is_effect_free(o)),
        _ => false,
    }
}

/// The value a single-block region yields.
fn yielded(m: &Module, r: crate::ir::RegionId) -> Option<Value> {
    let [b] = m.region(r).blocks[..] else {
        return None;
    };
    let last = *m.block(b).ops.last()?;
    (m.op(last).opcode == Opcode::KsYield).then(|| m.op(last).operands.first().copied())?
}

/// The region only computes a value: dropping it loses no effect.
fn is_pure(m: &Module, r: crate::ir::RegionId) -> bool {
    let [b] = m.region(r).blocks[..] else {
        return false;
    };
    m.block(b)
        .ops
        .iter()
        .all(|&o| m.is_effect_free(o) || m.op(o).opcode == Opcode::KsYield)
}

/// Replaces `op` by `value` and drops the reads and computations only it used.
fn replace(m: &mut Module, op: OpId, value: Value) {
    let operands = m.op(op).operands.clone();
    m.replace_op(op, &[value]);
    for v in operands {
        m.erase_if_unused(v);
    }
}

/// The 16-bit word at `addr` (a packet address).
fn load_u16(b: &mut crate::ir::Builder, addr: Value) -> Value {
    let word_ptr = b.core_cast(addr, Type::ptr(Type::u16()));
    b.core_load(word_ptr, Type::u16())
}
