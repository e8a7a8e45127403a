//! Adjacent packet bytes read as one load, the way C reads `eth->h_proto` or `ip->saddr`:
//!
//! - a big-endian number of two, four or eight bytes — `(p[k] as u16) << 8 | p[k + 1]`,
//!   `p[k] * 16777216 + p[k + 1] * 65536 + p[k + 2] * 256 + p[k + 3]` — becomes
//!   `bswap(*(uN *)(p + k))`, and-ed with the bytes' masks when some are masked
//!   (`(p[14] & 0x0F) * 256 + p[15]`, a VLAN id, is `bswap(*(u16 *)(p + 14)) & 0x0FFF`);
//!   a number of three, five, six or seven bytes is read in the smallest such word around it
//!   whose bytes are all proven in bounds (a VNI, `p[46] << 16 | p[47] << 8 | p[48]`, is
//!   `bswap(*(u32 *)(p + 46)) >> 8`); a number missing its lowest bytes (`p[16] << 24 |
//!   p[17] << 16 | p[18] << 8`, a /24 prefix) is read with them and masked, when they are in
//!   bounds;
//! - `p[k] != a || p[k + 1] != b` becomes `*(u16 *)(p + k) != (a | b << 8)`, and
//!   `p[k] == a && p[k + 1] == b` the `==` of the same, when both bytes are already proven in
//!   bounds before the test: the short circuit may skip the second read, so reading it anyway is
//!   only sound when it cannot fail.
//!
//! Only for `k` from a constant-offset root at which the access is as aligned as C's header
//! fields (strict-alignment kernels check packet accesses against `NET_IP_ALIGN`).
//! The BPF target is little-endian: the byte at `p + k` is the low half of the load.

use super::indexes::Residue;
use super::{def_op, is_local, BoundsCheck, Fact, Key, Root};
use crate::ir::{views, Module, OpId, Opcode, Type, Value};
use crate::passes::value_bounds::{is_unsigned, widens_unsigned};
use crate::vocab::CmpPred;

/// A byte read from the packet: the load, its address and its key.
struct ByteRead {
    load: OpId,
    addr: Value,
    key: Key,
}

/// A number `fuse_big_endian` reads as one word.
struct BigEndian {
    /// The byte weighing most.
    first: ByteRead,
    /// Its bytes, the zero-weighted ones after it included.
    n: usize,
    /// The word read: where it starts and its bytes.
    start: i128,
    width: i128,
    /// The bits of the number the bytes keep.
    mask: i128,
    /// The tree's leaves that are not its bytes.
    others: Vec<Value>,
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
            Opcode::CoreOr | Opcode::CoreAdd => self.fuse_big_endian(m, op, facts),
            Opcode::KsIf => self.fuse_short_circuit_pair(m, op, facts),
            _ => false,
        }
    }

    /// A big-endian number built from adjacent packet bytes: `or`s or `+`s of `byte << 8j` or
    /// `byte * 256^j` (the last byte alone), the byte at the lowest address weighing most —
    /// `*(p + 12) * 256 + *(p + 13)`, `p[26] << 24 | p[27] << 16 | p[28] << 8 | p[29]`.
    /// Two, four or eight bytes become one load and a byte swap.
    fn fuse_big_endian(&self, m: &mut Module, op: OpId, facts: &[Fact]) -> bool {
        // A subtree (`p[12] * 16777216 + p[13] * 65536` inside a whole address) is left to the
        // tree it is part of, when that tree is a number.
        // (A number has at most 12 leaves: a tree more levels up is none.)
        let mut root = op;
        for _ in 0..12 {
            match same_kind_parent(m, root) {
                Some(parent) => root = parent,
                None => break,
            }
        }
        if root != op && self.big_endian_number(m, root, facts).is_some() {
            return false;
        }
        let Some(number) = self.big_endian_number(m, op, facts) else {
            return false;
        };
        let BigEndian {
            first,
            n,
            start,
            width,
            mask,
            others,
        } = number;
        let ty = m.value_type(m.op(op).results[0]).clone();
        let kind = m.op(op).opcode;
        let bits = ty.int().map_or(0, |i| i.bits() as usize);
        let all_ones = (1i128 << (8 * n)) - 1;
        let bytes_before = start < first.key.offset && 8 * n < bits;
        let word_ty = Type::Int(crate::sema::types::IntTy::of(8 * width as u32, false));
        let mut b = m.builder_before(op);
        let word_addr = if start == first.key.offset {
            first.addr
        } else {
            let back = b.core_const(start - first.key.offset, Type::i64());
            b.core_ptr_add(first.addr, back)
        };
        let word_ptr = b.core_cast(word_addr, Type::ptr(word_ty.clone()));
        let word = b.core_load(word_ptr, word_ty.clone());
        let mut swapped = b.core_bswap(word);
        // The number's last byte is the word's `start + width - end`-th from its end.
        let spare_after = start + width - (first.key.offset + n as i128);
        if spare_after > 0 {
            let bits = b.core_const(8 * spare_after, word_ty);
            swapped = b.core_shr(swapped, bits);
        }
        let mut value = b.cast_to(swapped, ty.clone());
        if mask != all_ones || bytes_before {
            let k = b.core_const(mask, ty);
            value = b.core_and(value, k);
        }
        // The tree's other terms (`sum + p[i] * 256 + p[i + 1]`) are added (or or-ed) back.
        for other in others {
            value = match kind {
                Opcode::CoreAdd => b.core_add(value, other),
                _ => b.core_or(value, other),
            };
        }
        replace(m, op, value);
        true
    }

    /// The big-endian number the tree at `op` builds, when it builds one that one word can read.
    fn big_endian_number(&self, m: &Module, op: OpId, facts: &[Fact]) -> Option<BigEndian> {
        let Type::Int(int) = m.value_type(m.op(op).results[0]) else {
            return None;
        };
        if int.signed() {
            return None;
        }
        let (mut terms, mut others) = (Vec::new(), Vec::new());
        let kind = m.op(op).opcode;
        if !self.weighted_bytes(m, m.op(op).results[0], kind, &mut terms, &mut others) {
            return None;
        }
        terms.sort_by_key(|(_, weight, _)| std::cmp::Reverse(*weight));
        // A number whose lowest bytes weigh zero (`p[16] << 24 | p[17] << 16 | p[18] << 8`, a
        // /24 prefix) is read with the bytes after it, masked out.
        let zero_bytes = terms.last().map_or(0, |(_, weight, _)| *weight as usize);
        let n = terms.len() + zero_bytes;
        if !(2..=8).contains(&terms.len()) || n > 8 || 8 * n > int.bits() as usize {
            return None;
        }
        let first = &terms[0].0;
        let in_order = terms.iter().enumerate().all(|(i, (read, weight, _))| {
            *weight == (n - 1 - i) as u32
                && read.key.root == first.key.root
                && read.key.offset == first.key.offset + i as i128
        });
        // The bytes are read where the combination is: nothing may write memory in between.
        if !in_order
            || !terms
                .iter()
                .all(|(read, _, _)| unchanged_since(m, read.load, op))
        {
            return None;
        }
        let (start, width) = self.word_around(m, first.key, n as i128, facts)?;
        // (A word at a variable index is read only where the number starts: its alignment
        // is the index's.)
        if matches!(first.key.root, Root::Indexed { .. }) && start != first.key.offset {
            return None;
        }
        // Bytes masked before weighing (`(p[14] & 0x0F) * 256 + p[15]`) mask the number, and so
        // do the word's bytes before the number's (they weigh more after the swap) and the
        // zero-weighted bytes after it.
        let mask = terms.iter().fold(0i128, |acc, (_, weight, mask)| {
            acc | i128::from(*mask) << (8 * weight)
        });
        let first = terms.swap_remove(0).0;
        Some(BigEndian {
            first,
            n,
            start,
            width,
            mask,
            others,
        })
    }

    /// The terms of the `kind` (`or` or `add`) tree `v`: each a packet byte, its weight in
    /// bytes and the mask it was and-ed with (0xFF for none); the leaves that are not such
    /// bytes go to `others`. False when the tree is too large to be worth a look.
    fn weighted_bytes(
        &self,
        m: &Module,
        v: Value,
        kind: Opcode,
        terms: &mut Vec<(ByteRead, u32, u8)>,
        others: &mut Vec<Value>,
    ) -> bool {
        if terms.len() + others.len() > 12 {
            return false;
        }
        let d = def_op(m, v).map(|op| m.op(op));
        if let Some(d) = d.filter(|d| d.opcode == kind) {
            let (l, r) = (d.operands[0], d.operands[1]);
            return self.weighted_bytes(m, l, kind, terms, others)
                && self.weighted_bytes(m, r, kind, terms, others);
        }
        match self.weighted_byte(m, v) {
            Some(term) => terms.push(term),
            None => others.push(v),
        }
        true
    }

    /// `v` is a packet byte, maybe masked, times `256^j` (shifted by `8j`, multiplied, or alone),
    /// in a type wide enough to keep it.
    fn weighted_byte(&self, m: &Module, v: Value) -> Option<(ByteRead, u32, u8)> {
        if let Some((read, mask)) = self.masked_byte(m, v) {
            return Some((read, 0, mask));
        }
        let d = m.op(def_op(m, v)?);
        if !matches!(d.opcode, Opcode::CoreShl | Opcode::CoreMul) {
            return None;
        }
        let (x, k) = match (
            d.opcode,
            m.const_int(d.operands[1]),
            m.const_int(d.operands[0]),
        ) {
            (Opcode::CoreShl, Some(bits), _) if bits > 0 && bits % 8 == 0 => {
                (d.operands[0], bits / 8)
            }
            (Opcode::CoreMul, Some(c), _) => (d.operands[0], power_of_256(c)?),
            (Opcode::CoreMul, None, Some(c)) => (d.operands[1], power_of_256(c)?),
            _ => return None,
        };
        let wide = matches!(m.value_type(x), Type::Int(i) if i.bits() as i128 >= 8 * (k + 1));
        let (read, mask) = self.masked_byte(m, x).filter(|_| wide)?;
        Some((read, u32::try_from(k).ok()?, mask))
    }

    /// `v` is a packet byte, or one and-ed with a constant (zero-extended before or after): the
    /// byte and the bits kept.
    fn masked_byte(&self, m: &Module, v: Value) -> Option<(ByteRead, u8)> {
        if let Some(read) = self.byte_read(m, v) {
            return Some((read, 0xFF));
        }
        let d = m.op(def_op(m, v)?);
        match d.opcode {
            Opcode::CoreCast
                if is_unsigned(m.value_type(v)) && widens_unsigned(m, d.operands[0], v) =>
            {
                self.masked_byte(m, d.operands[0])
            }
            Opcode::CoreAnd => {
                let (x, c) = match (m.const_int(d.operands[1]), m.const_int(d.operands[0])) {
                    (Some(c), _) => (d.operands[0], c),
                    (None, Some(c)) => (d.operands[1], c),
                    _ => return None,
                };
                let (read, mask) = self.masked_byte(m, x)?;
                Some((read, mask & u8::try_from(c & 0xFF).ok()?))
            }
            _ => None,
        }
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
        if m.yielded_value(short).and_then(|v| m.const_int(v)) != Some(short_value)
            || !is_pure(m, tested)
        {
            return false;
        }
        let Some(second) = m.yielded_value(tested).and_then(|v| self.byte_test(m, v)) else {
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
        if !self.pair_is_readable(m, low.read.key, facts)
            || !unchanged_since(m, first.read.load, op)
        {
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

    /// The smallest word (two, four or eight bytes) that holds the `n` bytes from `key` and is
    /// readable as a header field of its size (see `word_is_readable`): its start and size.
    /// Three bytes (a VXLAN VNI) are read as the four from `key` or from the byte before.
    fn word_around(&self, m: &Module, key: Key, n: i128, facts: &[Fact]) -> Option<(i128, i128)> {
        [2, 4, 8].into_iter().filter(|&w| w >= n).find_map(|width| {
            let lowest = key.offset + n - width;
            (lowest..=key.offset).rev().find_map(|start| {
                let word = Key {
                    offset: start,
                    ..key
                };
                self.word_is_readable(m, word, width, facts)
                    .then_some((start, width))
            })
        })
    }

    /// Both bytes from `key` are proven in bounds and the pair is 2-aligned like a C header field.
    fn pair_is_readable(&self, m: &Module, key: Key, facts: &[Fact]) -> bool {
        self.word_is_readable(m, key, 2, facts)
    }

    /// The `n` bytes from `key` are proven in bounds and aligned as a C header field of `n` bytes
    /// is: kernels that check packet alignment count the `NET_IP_ALIGN` (2) bytes before the
    /// frame, which align the IP header, so `ip->saddr` at offset 26 is a 4-aligned access.
    /// At a variable index the index must be as aligned (`p[i * 2]` for a 2-byte word, `p[l3 +
    /// 16]` for a 4-byte one when `l3` is 14 or 18).
    fn word_is_readable(&self, m: &Module, key: Key, n: i128, facts: &[Fact]) -> bool {
        let index = match key.root {
            Root::Indexed { index, stride, .. } => self.index_residue(m, index, 6).times(stride),
            _ => Residue::of(0),
        };
        index.modulus % n == 0
            && (index.value + key.constant_offset() + NET_IP_ALIGN) % n == 0
            && Self::covering(facts, key, n).is_some()
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
            // A local written once in this block before the read (`var hi = p[12]`).
            Opcode::CoreLoad if is_local(m, d.operands[0]) => {
                let slot = d.operands[0];
                let stored = *self.written_once.get(&slot)?;
                let (block, at) = m.position(def_op(m, v)?)?;
                let stored_before = m.block(block).ops[..at].iter().any(|&o| {
                    m.op(o).opcode == Opcode::CoreStore && m.op(o).operands[..] == [stored, slot]
                });
                stored_before.then(|| self.byte_read(m, stored))?
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

    /// `v` is `byte == c` or `byte != c` (either side constant) with `c` a byte value.
    fn byte_test(&self, m: &Module, v: Value) -> Option<ByteTest> {
        let op = def_op(m, v)?;
        let d = m.op(op);
        let pred = views::CoreCmp::of(m, op)?.pred(m);
        if !matches!(pred, CmpPred::Eq | CmpPred::Ne) {
            return None;
        }
        let (l, r) = (d.operands[0], d.operands[1]);
        let (read, c) = match (self.byte_read(m, l), m.const_int(r)) {
            (Some(read), Some(c)) => (read, c),
            _ => (self.byte_read(m, r)?, m.const_int(l)?),
        };
        Some(ByteTest {
            read,
            pred,
            constant: u8::try_from(c).ok()?,
        })
    }
}

/// The bytes kernels that check packet alignment assume before the frame.
const NET_IP_ALIGN: i128 = 2;

/// `c` is `256^j` for some `j` ≥ 1: that `j`.
fn power_of_256(c: i128) -> Option<i128> {
    (1..8).find(|&j| c == 1i128 << (8 * j))
}

/// `from` and `to` are in one block and nothing between them writes memory (or might) but
/// locals.
fn unchanged_since(m: &Module, from: OpId, to: OpId) -> bool {
    let harmless = |o: OpId| {
        let d = m.op(o);
        m.is_effect_free(o) || d.opcode == Opcode::CoreStore && is_local(m, d.operands[1])
    };
    match (m.position(from), m.position(to)) {
        (Some((b, i)), Some((c, j))) if b == c && i < j => {
            m.block(b).ops[i + 1..j].iter().all(|&o| harmless(o))
        }
        _ => false,
    }
}

/// The op of the same kind soon after `op` in its block that uses its result: `op` is then an
/// inner node of an expression tree (the lowering emits each node just before its parent).
fn same_kind_parent(m: &Module, op: OpId) -> Option<OpId> {
    let (b, i) = m.position(op)?;
    let result = *m.op(op).results.first()?;
    let kind = m.op(op).opcode;
    let &user =
        (m.block(b).ops[i + 1..].iter().take(32)).find(|&&o| m.op(o).operands.contains(&result))?;
    (m.op(user).opcode == kind).then_some(user)
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
