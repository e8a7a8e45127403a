//! Variable packet indexes as the pass compares them: which spellings are one index (`i * 2` in
//! `p[i * 2]` and in `p[i * 2 + 1]`), the constant an index adds on top of another (the `+ 1`),
//! and how aligned an index is.

use super::{def_op, BoundsCheck, Key, Root};
use crate::ir::{Module, Opcode, Value};
use crate::passes::value_bounds::{int_max, is_unsigned};

/// An index expression up to the values it reads: two expressions of one shape over the same
/// reads are the same number (the indexes the pass keys are bounded, so none wraps).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum IndexShape {
    Const(i128),
    /// A load of a field of a struct local that is only read ([`BoundsCheck::frozen_fields`]),
    /// by the field's first address.
    FieldRead(Value),
    /// An arithmetic op over canonical operands (commutative ones in a fixed order).
    Arith(Opcode, Value, Value),
}

impl BoundsCheck {
    /// What identifies an index across ops: the once-written local it is loaded from, the first
    /// load reading the same store of another local, the first expression of the same shape over
    /// those (through unsigned widenings), or the value itself.
    pub(super) fn index_id(&self, m: &Module, v: Value) -> Value {
        let Some(op) = def_op(m, v) else { return v };
        let d = m.op(op);
        let shape = match d.opcode {
            Opcode::CoreCast if keeps_small_values(m, d.operands[0], v) => {
                return self.index_id(m, d.operands[0])
            }
            // The same bits: an opaque copy, a change of signedness only.
            Opcode::BpfOpaque => return self.index_id(m, d.operands[0]),
            Opcode::CoreCast if same_width(m, d.operands[0], v) => {
                return self.index_id(m, d.operands[0])
            }

            Opcode::CoreLoad if self.written_once.contains_key(&d.operands[0]) => {
                return d.operands[0]
            }
            Opcode::CoreLoad if self.frozen_fields.contains_key(&d.operands[0]) => {
                IndexShape::FieldRead(self.frozen_fields[&d.operands[0]])
            }
            Opcode::CoreLoad => return self.locals.same_read(v).unwrap_or(v),
            Opcode::CoreConst => IndexShape::Const(m.const_int(v).unwrap_or_default()),
            Opcode::CoreAdd | Opcode::CoreMul | Opcode::CoreAnd | Opcode::CoreOr => {
                let (a, b) = (
                    self.index_id(m, d.operands[0]),
                    self.index_id(m, d.operands[1]),
                );
                IndexShape::Arith(d.opcode, a.min(b), a.max(b))
            }
            Opcode::CoreSub | Opcode::CoreShl | Opcode::CoreShr => IndexShape::Arith(
                d.opcode,
                self.index_id(m, d.operands[0]),
                self.index_id(m, d.operands[1]),
            ),
            _ => return v,
        };
        *self.shapes.borrow_mut().entry(shape).or_insert(v)
    }

    /// `B + (x + c)` seen as the address `c` bytes past `B + x` (`p[i * 2 + 1]`, one byte past
    /// `p[i * 2]`), for a constant `c > 0` and a bounded `x` that cannot wrap: the key an access
    /// there has when a check of `B + x` covers it. It has no formation of `B + x` of its own
    /// (`formed_at` is `None`), so it can share a check but not be checked alone.
    pub(super) fn split_key(&self, m: &Module, addr: Value) -> Option<Key> {
        let (above, step, offset_above) = self.variable_step(m, addr)?;
        let d = m.op(step);
        if super::byte_stride(m, step) != 1 || offset_above < 0 {
            return None;
        }
        let mut index = d.operands[1];
        while let Some(c) = def_op(m, index).filter(|&o| {
            m.op(o).opcode == Opcode::CoreCast
                && keeps_small_values(m, m.op(o).operands[0], m.op(o).results[0])
        }) {
            index = m.op(c).operands[0];
        }
        let sum = m.op(def_op(m, index)?);
        if sum.opcode != Opcode::CoreAdd {
            return None;
        }
        let (x, c) = match (m.const_int(sum.operands[1]), m.const_int(sum.operands[0])) {
            (Some(c), _) => (sum.operands[0], c),
            (None, Some(c)) => (sum.operands[1], c),
            _ => return None,
        };
        let max = self.max_of(m, x, 4)?;
        let fits = int_max(m.value_type(index)).is_some_and(|top| max + c as u128 <= top);
        if c <= 0 || !fits || !is_unsigned(m.value_type(x)) {
            return None;
        }
        let base = self.key(m, d.operands[0])?;
        let (root, slot) = match base.root {
            Root::Value(b) => (b, false),
            Root::Slot(b) => (b, true),
            Root::Indexed { .. } => (base.formed_at?, false),
            Root::Clamped { .. } => return None,
        };
        let reach = base.offset + max as i128 + c + offset_above;
        (base.offset >= 0 && reach <= 0xffff && above.len() < 64).then(|| Key {
            root: Root::Indexed {
                base: root,
                slot,
                offset: base.offset,
                index: self.index_id(m, x),
                stride: 1,
                max: max as i128,
            },
            offset: c + offset_above,
            formed_at: None,
        })
    }

    /// What every value of index `v` is congruent to, modulo a power of two up to 8, as the
    /// verifier's tracking of known bits shows it: `i * 2`, `i << 2`, `x & ~3`, and a local
    /// every store of which agrees (`l3 = 14` or `l3 = 18`: 2 modulo 4).
    pub(super) fn index_residue(&self, m: &Module, v: Value, depth: u32) -> Residue {
        let Some(op) = def_op(m, v).filter(|_| depth > 0) else {
            return Residue::UNKNOWN;
        };
        let d = m.op(op);
        let of = |x: Value| self.index_residue(m, x, depth - 1);
        let constant = |x: Value| m.const_int(x);
        match d.opcode {
            Opcode::CoreConst => m.const_int(v).map_or(Residue::UNKNOWN, Residue::of),
            Opcode::CoreCast => of(d.operands[0]),
            // (A few stores: each is followed to the same depth.) A local is itself the index
            // of a key when it is written once ([`Self::index_id`]).
            Opcode::CoreLoad | Opcode::CoreLocal => {
                let slot = if d.opcode == Opcode::CoreLoad {
                    d.operands[0]
                } else {
                    v
                };
                match self.stores.get(&slot) {
                    Some(stored) if stored.len() <= 4 => stored
                        .iter()
                        .map(|&x| of(x))
                        .reduce(Residue::join)
                        .unwrap_or(Residue::UNKNOWN),
                    _ => Residue::UNKNOWN,
                }
            }
            Opcode::CoreAdd => of(d.operands[0]).add(of(d.operands[1])),
            Opcode::CoreOr => of(d.operands[0]).or(of(d.operands[1])),
            Opcode::CoreMul => match (constant(d.operands[0]), constant(d.operands[1])) {
                (_, Some(k)) => of(d.operands[0]).times(k),
                (Some(k), _) => of(d.operands[1]).times(k),
                _ => of(d.operands[0]).times_unknown(of(d.operands[1])),
            },
            Opcode::CoreShl => match m.const_int(d.operands[1]) {
                Some(k @ 0..=3) => of(d.operands[0]).times(1 << k),
                Some(k) if k > 3 => Residue::of(0),
                _ => Residue::UNKNOWN,
            },
            Opcode::CoreAnd => match (constant(d.operands[0]), constant(d.operands[1])) {
                (_, Some(c)) => of(d.operands[0]).and(c),
                (Some(c), _) => of(d.operands[1]).and(c),
                _ => Residue::UNKNOWN,
            },
            _ => Residue::UNKNOWN,
        }
    }
}

/// `value` modulo `modulus`, a power of two from 1 (nothing known) to 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Residue {
    pub modulus: i128,
    pub value: i128,
}

impl Residue {
    const UNKNOWN: Residue = Residue {
        modulus: 1,
        value: 0,
    };

    /// A constant's low three bits.
    pub fn of(c: i128) -> Residue {
        Residue {
            modulus: 8,
            value: c.rem_euclid(8),
        }
    }

    fn new(modulus: i128, value: i128) -> Residue {
        let modulus = modulus.clamp(1, 8);
        Residue {
            modulus,
            value: value.rem_euclid(modulus),
        }
    }

    /// The residue both of two possible values have: modulo the largest power of two on which
    /// they agree.
    fn join(self, other: Residue) -> Residue {
        let mut modulus = self.modulus.min(other.modulus);
        while modulus > 1 && (self.value - other.value).rem_euclid(modulus) != 0 {
            modulus /= 2;
        }
        Residue::new(modulus, self.value)
    }

    fn add(self, other: Residue) -> Residue {
        Residue::new(self.modulus.min(other.modulus), self.value + other.value)
    }

    /// Or-ing known low bits gives known low bits.
    fn or(self, other: Residue) -> Residue {
        Residue::new(self.modulus.min(other.modulus), self.value | other.value)
    }

    /// `(q·m + r)·k = q·m·k + r·k`.
    pub(super) fn times(self, k: i128) -> Residue {
        Residue::new(self.modulus * alignment_of(k), self.value * k)
    }

    /// A product of two unknowns is a multiple of what both are multiples of.
    fn times_unknown(self, other: Residue) -> Residue {
        let multiple = |r: Residue| if r.value == 0 { r.modulus } else { 1 };
        Residue::new(multiple(self) * multiple(other), 0)
    }

    /// `x & c`: bits `c` clears are zero, bits of `x` that are known stay known.
    fn and(self, c: i128) -> Residue {
        let cleared = alignment_of(c);
        if cleared >= self.modulus {
            Residue::new(cleared, 0)
        } else {
            Residue::new(self.modulus, self.value & c)
        }
    }
}

/// The largest power of two up to 8 that divides `c` (8 for 0).
fn alignment_of(c: i128) -> i128 {
    [8, 4, 2].into_iter().find(|&a| c % a == 0).unwrap_or(1)
}

/// `to` is `from` cast without a change of value for the indexes this pass keys, which are
/// bounded well below any sign bit: an unsigned integer into one at least as wide (`off as i64`,
/// the lowering's pointer offset, included).
fn keeps_small_values(m: &Module, from: Value, to: Value) -> bool {
    let (a, b) = (m.value_type(from), m.value_type(to));
    is_unsigned(a)
        && a.int()
            .zip(b.int())
            .is_some_and(|(x, y)| x.bits() <= y.bits())
}

/// Integer types of one width (`i64` → `u64`).
fn same_width(m: &Module, from: Value, to: Value) -> bool {
    let (a, b) = (m.value_type(from), m.value_type(to));
    a.int()
        .zip(b.int())
        .is_some_and(|(x, y)| x.bits() == y.bits())
}
