//! A user's test of a pointer at an offset the verifier cannot bound enough, as C writes it.
//!
//! `if (data + off + 8 > data_end) { return … }` with `off` a `u32` the program read (a map
//! value, a field of per-CPU scratch state) proves nothing to the verifier: it learns a packet
//! range only while the pointer's largest offset plus the 8 stays within 0xffff. An experienced C
//! programmer writes `if (off > MAX_OFF) return …` first. ksc does the same: before the
//! pointer is formed, an offset so large that the tested bytes would end past 0xffff takes the
//! test's own way out (a copy of its leaving branch), since no packet is that long and the test
//! would fail anyway; the pointer is then formed from the offset bounded by that comparison.
//! Later pointers formed from the same offset, where the test passed, use the bounded copy too,
//! so the test proves their bytes and no check of this pass is needed (docs/language.md §10.2).
//! A test that is one side of an `||` (`off >= end || data + off + 1 > data_end`, as throwing
//! reader helpers write it) is guarded the same way: the branch is left whenever it is true.

use super::{byte_stride, def_op, never_negative, BoundsCheck, Key, Root, MAX_PACKET_BYTES};
use crate::ir::{Module, OpId, Opcode, RegionId, Type, Value, ValueDef};
use crate::vocab::CmpPred;
use std::collections::HashMap;

/// Tests that reach further ahead of their pointer than this are left alone: the guard's limit
/// would take too much of the 0xffff bytes from the offsets it lets through.
const MAX_TESTED_AHEAD: i128 = 4096;

/// A test to guard: `ks.if (F + ahead > end) { leaves }` with `F = base + index`.
struct Tested {
    test: OpId,
    formation: OpId,
    /// The largest index the test can prove a range with.
    limit: i128,
    /// Where `base` is itself formed with an unbounded offset: the guard bounds the sum of both.
    outer: Option<Outer>,
}

/// `formed = base + offset`, a pointer `bytes` before the base of a tested formation.
struct Outer {
    base: Value,
    offset: Value,
    bytes: i128,
    formed: Value,
    /// How far `base` lies from the packet's start at most.
    from_origin: i128,
}

impl BoundsCheck {
    pub(super) fn guard_tested_offsets(&mut self, m: &mut Module, f: OpId) {
        for test in m.collect_nested(f, |o| o.opcode == Opcode::KsIf) {
            let Some(t) = self.tested(m, test) else {
                continue;
            };
            let index = m.op(t.formation).operands[1];
            let id = self.index_id(m, index);
            let base = m.op(t.formation).operands[0];
            let root = self.key(m, base).map(|k| k.root);
            let outer = t.outer.as_ref().map(|o| (o.formed, o.bytes));
            let same_base = |s: &Self, b: Value| match outer {
                Some(_) => s.unbounded_formation(m, b, 4) == outer,
                None => s.key(m, b).map(|k| k.root) == root,
            };
            // Pointers formed from the same offset on the way the test passes.
            let later: Vec<OpId> = dominated_by_pass(m, test)
                .into_iter()
                .filter(|&o| {
                    let d = m.op(o);
                    d.opcode == Opcode::CorePtrAdd
                        && same_base(self, d.operands[0])
                        && self.index_id(m, d.operands[1]) == id
                })
                .collect();
            // (Only where the bytes the test proves are read: through the pointer tested or
            // one formed again.)
            if later.is_empty() && only_tested(m, m.op(t.formation).results[0]) {
                continue;
            }
            let bounded = self.insert_guard(m, &t);
            for o in later {
                if let Some(outer) = &t.outer {
                    m.op_mut(o).operands[0] = outer.base;
                }
                m.op_mut(o).operands[1] = bounded;
            }
        }
    }

    /// `test` as a test to guard, when its leaving branch can run where the pointer is formed
    /// instead: nothing between the two can be observed or changes what that branch reads.
    fn tested(&self, m: &Module, test: OpId) -> Option<Tested> {
        let d = m.op(test);
        let ptr = sufficient_cmps(m, d.operands[0])
            .into_iter()
            .find_map(|cmp| {
                let cmp = crate::ir::views::CoreCmp::of(m, cmp)?;
                match cmp.pred(m) {
                    CmpPred::Gt if self.data_end.contains(&cmp.rhs(m)) => Some(cmp.lhs(m)),
                    CmpPred::Lt if self.data_end.contains(&cmp.lhs(m)) => Some(cmp.rhs(m)),
                    _ => None,
                }
            })?;
        let leaving = d.regions[0];
        if !self.packet.contains(&ptr) || !super::super::region_leaves(m, leaving) {
            return None;
        }
        // (A leaving branch that reads the packet is not copied: this pass would not see the
        // copy's accesses.)
        let reads_packet = ops_in(m, leaving).into_iter().any(|o| {
            let d = m.op(o);
            d.opcode == Opcode::KsCtxLoad
                || (d.operands.iter()).any(|v| self.packet.contains(v) || self.data_end.contains(v))
        });
        if reads_packet {
            return None;
        }
        let (formed, ahead) = self.unbounded_formation(m, ptr, 4)?;
        let formation = def_op(m, formed)?;
        let f = m.op(formation);
        if f.opcode != Opcode::CorePtrAdd
            || byte_stride(m, formation) != 1
            || !(0..=MAX_TESTED_AHEAD).contains(&ahead)
            || !never_negative(m, f.operands[1])
        {
            return None;
        }
        let (base, outer) = match self.key(m, f.operands[0]) {
            Some(key) => (self.base_offset(m, key)?, None),
            // (The base adds an offset of its own that nothing bounds.)
            None => {
                let outer = self.outer_formation(m, f.operands[0], formation)?;
                (outer.from_origin, Some(outer))
            }
        };
        let limit = MAX_PACKET_BYTES - base - ahead;
        let bounded = outer.is_none()
            && self
                .max_of(m, f.operands[1], 4)
                .is_some_and(|max| max as i128 <= limit);
        let movable = self.leaving_branch_movable(m, formation, test);
        (limit > 0 && !bounded && movable).then_some(Tested {
            test,
            formation,
            limit,
            outer,
        })
    }

    /// How far from the packet's start a root the guard can form pointers from lies at most.
    fn base_offset(&self, m: &Module, key: Key) -> Option<i128> {
        match key {
            Key {
                root: Root::Value(origin),
                offset,
                ..
            } if offset >= 0 && !self.is_moving(m, origin) => {
                Some(offset + self.param_offsets.get(&origin).map_or(0, |p| p.farthest))
            }
            _ => None,
        }
    }

    /// Pointer `ptr` as `B + off + bytes` with `off` an offset nothing bounds (`payload =
    /// data + st.payload_off`, tested later as `payload + i + 4 > data_end`), when `B` and
    /// `off` are there to be read where `at` forms its pointer.
    fn outer_formation(&self, m: &Module, ptr: Value, at: OpId) -> Option<Outer> {
        let (formed, bytes) = self.unbounded_formation(m, ptr, 4)?;
        let d = m.op(def_op(m, formed)?);
        let (base, offset) = (d.operands[0], d.operands[1]);
        if d.opcode != Opcode::CorePtrAdd
            || bytes < 0
            || !never_negative(m, offset)
            || !available_at(m, base, at)
            || !available_at(m, offset, at)
        {
            return None;
        }
        Some(Outer {
            base,
            offset,
            bytes,
            formed,
            from_origin: self.base_offset(m, self.key(m, base)?)?,
        })
    }

    /// The formation comes before the test in its block with only pure operations and stores
    /// into locals between (`var ext = data + off`), and the test's leaving branch reads nothing
    /// they define or store.
    fn leaving_branch_movable(&self, m: &Module, formation: OpId, test: OpId) -> bool {
        let (Some((block, from)), Some((tb, to))) = (m.position(formation), m.position(test))
        else {
            return false;
        };
        if block != tb || from >= to {
            return false;
        }
        let between: Vec<OpId> = m.block(block).ops[from..to].to_vec();
        let pure = between.iter().all(|&o| {
            quiet_condition(m, o)
                || matches!(
                    m.op(o).opcode,
                    Opcode::CoreConst
                        | Opcode::CoreCast
                        | Opcode::CorePtrAdd
                        | Opcode::CoreFieldAddr
                        | Opcode::CoreCmp
                        | Opcode::KsCtxLoad
                )
                || matches!(m.op(o).opcode, Opcode::CoreLoad | Opcode::CoreStore)
                    && is_local(m, m.op(o).operands[m.op(o).operands.len() - 1])
        });
        // (A local stored there is read through its address, the `core.local` itself.)
        let stored = between
            .iter()
            .filter(|&&o| m.op(o).opcode == Opcode::CoreStore)
            .map(|&o| m.op(o).operands[1]);
        let defined: Vec<Value> = between
            .iter()
            .flat_map(|&o| m.op(o).results.clone())
            .chain(stored)
            .collect();
        let leaving = m.op(test).regions[0];
        pure && !reads_any(m, leaving, &defined)
    }

    /// `if (index > limit) { <the test's leaving branch> }` before the formation, which then
    /// adds the index as compared there; returns that bounded index.
    fn insert_guard(&mut self, m: &mut Module, t: &Tested) -> Value {
        let index = m.op(t.formation).operands[1];
        let loc = m.op(t.test).loc;
        let mut b = m.builder_before(t.formation);
        b.loc = loc;
        let mut wide = b.cast_to(index, Type::u64());
        if let Some(outer) = &t.outer {
            // (The same address, wrapping or not: both sums are taken modulo 2^64.)
            let offset = b.cast_to(outer.offset, Type::u64());
            wide = b.core_add(offset, wide);
            if outer.bytes != 0 {
                let bytes = b.core_const(outer.bytes, Type::u64());
                wide = b.core_add(wide, bytes);
            }
        }
        // Opaque, so the formation adds the very register the guard bounded.
        let bounded = b.bpf_opaque(wide);
        let limit = b.core_const(t.limit, Type::u64());
        let over = b.core_cmp(bounded, limit, CmpPred::Gt);
        let guard = b.ks_if(over, None, &[]);
        let leave = b.entry(guard, 0);
        let leaving = m.op(t.test).regions[0];
        let mut renamed = HashMap::new();
        for &block in &m.region(leaving).blocks.clone() {
            for o in m.block(block).ops.clone() {
                let copy = m.clone_op(o, &mut renamed);
                m.place_op(copy, leave, None);
            }
        }
        if let Some(outer) = &t.outer {
            m.op_mut(t.formation).operands[0] = outer.base;
        }
        m.op_mut(t.formation).operands[1] = bounded;
        self.packet.insert(m.op(t.formation).results[0]);
        self.guarded.insert(bounded, t.limit as u128);
        bounded
    }
}

/// The comparisons whose truth alone makes the branch condition `cond` true: `cond` itself, or
/// a disjunct of a short-circuit `||` (a `ks.if` whose taken arm yields `true`), at any depth.
/// `if (off >= end || data + off + 1 > data_end) { throw … }` leaves whenever its packet test
/// would be true, whatever the other test gives.
fn sufficient_cmps(m: &Module, cond: Value) -> Vec<OpId> {
    let Some(op) = def_op(m, cond) else {
        return Vec::new();
    };
    let d = m.op(op);
    match d.opcode {
        Opcode::CoreCmp => vec![op],
        Opcode::KsIf if d.results.len() == 1 && d.regions.len() == 2 => {
            let (Some(taken), Some(other)) =
                (m.yielded_value(d.regions[0]), m.yielded_value(d.regions[1]))
            else {
                return Vec::new();
            };
            if m.const_int(taken).is_none_or(|c| c == 0) {
                return Vec::new();
            }
            let mut cmps = sufficient_cmps(m, d.operands[0]);
            cmps.extend(sufficient_cmps(m, other));
            cmps
        }
        _ => Vec::new(),
    }
}

/// A short-circuit condition (a `ks.if` yielding a value) that computes nothing but its value,
/// so a branch that leaves may run before it instead.
fn quiet_condition(m: &Module, op: OpId) -> bool {
    let d = m.op(op);
    d.opcode == Opcode::KsIf
        && d.results.len() == 1
        && m.collect_nested(op, |_| true).into_iter().all(|o| {
            o == op
                || m.is_effect_free(o)
                || m.op(o).opcode == Opcode::KsYield
                || (m.op(o).opcode == Opcode::KsIf && m.op(o).results.len() == 1)
        })
}

/// The ops that run only where `test` (whose then-branch leaves) failed: its else-branch and
/// the rest of its block, nested ops included.
fn dominated_by_pass(m: &Module, test: OpId) -> Vec<OpId> {
    let Some((block, at)) = m.position(test) else {
        return Vec::new();
    };
    let mut ops = ops_in(m, m.op(test).regions[1]);
    for &o in &m.block(block).ops[at + 1..] {
        ops.push(o);
        ops.extend(m.collect_nested(o, |_| true));
    }
    ops
}

/// Whether pointer `v` serves only the comparison it leads to (`data + off + 8 > data_end`,
/// with no read of those bytes after it).
fn only_tested(m: &Module, v: Value) -> bool {
    let users = m.users_within(m.top_level_of(def_op(m, v).expect("formed by an op")));
    let mut v = v;
    loop {
        let [user] = users.get(&v).map_or(&[][..], Vec::as_slice) else {
            return false;
        };
        match m.op(*user).opcode {
            Opcode::CoreCmp => return true,
            Opcode::CorePtrAdd | Opcode::CoreCast => v = m.op(*user).results[0],
            _ => return false,
        }
    }
}

/// Whether `v` can be read where `op` runs: a function's parameter, or the result of an op that
/// runs before it on every path.
fn available_at(m: &Module, v: Value, op: OpId) -> bool {
    match m.value(v).def {
        ValueDef::Result(def, _) => m.precedes_structurally(def, op),
        ValueDef::Arg(block, _) => m.block_owner(block) == Some(m.top_level_of(op)),
    }
}

fn is_local(m: &Module, v: Value) -> bool {
    def_op(m, v).is_some_and(|o| m.op(o).opcode == Opcode::CoreLocal)
}

/// The ops of region `r`, nested ones included.
fn ops_in(m: &Module, r: RegionId) -> Vec<OpId> {
    let mut ops = Vec::new();
    for &b in &m.region(r).blocks {
        for &o in &m.block(b).ops {
            ops.push(o);
            ops.extend(m.collect_nested(o, |_| true));
        }
    }
    ops
}

/// Whether an op in region `r` uses one of `values`.
fn reads_any(m: &Module, r: RegionId, values: &[Value]) -> bool {
    ops_in(m, r)
        .into_iter()
        .any(|o| m.op(o).operands.iter().any(|v| values.contains(v)))
}
