//! Ring-buffer records through dynptrs (§11.5). A reservation becomes
//! `bpf_ringbuf_reserve_dynptr` into a stack dynptr plus a "live" flag; right after it a
//! `ks.defer` discards the record if the flag is still set, so `flatten` releases it on every exit
//! of the enclosing region (fall-through, return, break, continue, throw, abort, tail call). The
//! verifier demands that release even when the reservation failed. `submit` / `discard` release
//! it explicitly and clear the flag.
//!
//! The common shapes `var r = rb.reserve(); if (r != null) { …; rb.submit(r) } [else { … }]` and
//! `var r = rb.reserve(); if (r == null) { return … } …; rb.submit(r)`, where nothing between
//! reservation and release can leave early and nothing uses `r` afterwards, release every
//! reservation by themselves: they take the plain `bpf_ringbuf_reserve`/`submit` pair, as
//! hand-written C does, and the verifier checks the release.
//!
//! `rb.submit(e)` names the record by value, so the analysis here maps every value and variable
//! slot a record flows into back to its reservation. Sema only lets a record live in local
//! variables of the reserving function (E0608); reservations that can reach the same variable
//! share one dynptr and flag.

use super::{Emit, Lowered, RINGBUF_DISCARD, RINGBUF_RESERVE, RINGBUF_SUBMIT};
use crate::ir::views::KsRbReserve;
use crate::ir::{Module, OpId, Opcode, Type, Value};
use crate::vocab::CmpPred;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// The record groups of one function.
pub struct Records {
    /// Union-find parents over the function's reservations (index = reservation number).
    parent: Vec<usize>,
    /// The reservation a reserve, submit or discard op belongs to (before union).
    member: HashMap<OpId, usize>,
    /// Where a reservation's release defer goes: after the reservation itself, or after the
    /// `ks.if` / `ks.switch` its record is yielded out of (a defer inside that region would run
    /// as soon as the record leaves it).
    anchor: HashMap<OpId, OpId>,
    /// The dynptr and live-flag slots of each group root, made on first use.
    slots: HashMap<usize, (Value, Value)>,
    /// The hoisted release defers emitted so far, by group root and anchor: reservations of one
    /// group yielded out of the same op need only one.
    hoisted: HashSet<(usize, OpId)>,
    /// Group roots released on every path by the shape itself (plain reserve and submit).
    plain: HashSet<usize>,
}

impl Records {
    fn find(&self, mut i: usize) -> usize {
        while self.parent[i] != i {
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) -> bool {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent[b] = a;
        }
        a != b
    }

    /// Follows records through the function: into variable slots (`core.store`), out of them
    /// (`core.load`), through casts and out of `ks.if` / `ks.switch` by `ks.yield`.
    pub fn analyse(m: &Module, func: OpId) -> Records {
        let reserves = m.collect_nested(func, |o| o.opcode == Opcode::KsRbReserve);
        let flow = m.collect_nested(func, |o| {
            matches!(
                o.opcode,
                Opcode::CoreStore | Opcode::CoreLoad | Opcode::CoreCast | Opcode::KsYield
            )
        });
        let mut r = Records {
            parent: (0..reserves.len()).collect(),
            member: HashMap::new(),
            anchor: HashMap::new(),
            slots: HashMap::new(),
            hoisted: HashSet::new(),
            plain: HashSet::new(),
        };
        // Values that are record pointers, and slots that hold them, by reservation.
        let mut records: HashMap<Value, usize> = reserves
            .iter()
            .enumerate()
            .map(|(i, &op)| (m.op(op).results[0], i))
            .collect();
        let mut holders: HashMap<Value, usize> = HashMap::new();
        let mut changed = true;
        while changed {
            changed = false;
            for &op in &flow {
                let o = m.op(op);
                // Edges from a record (or, for a load, from a slot holding one) to what it reaches.
                let edges: Vec<(Value, Value)> = match o.opcode {
                    Opcode::CoreStore => vec![(o.operands[0], o.operands[1])],
                    Opcode::KsYield => yield_targets(m, op)
                        .map(|outs| o.operands.iter().copied().zip(outs).collect())
                        .unwrap_or_default(),
                    _ => vec![(o.operands[0], o.results[0])],
                };
                let (from_slot, to_slot) =
                    (o.opcode == Opcode::CoreLoad, o.opcode == Opcode::CoreStore);
                let src = if from_slot { &holders } else { &records };
                let reached: Vec<(Value, usize)> = edges
                    .into_iter()
                    .filter_map(|(from, to)| src.get(&from).map(|&g| (to, g)))
                    .collect();
                for (to, g) in reached {
                    changed |= r.mark(if to_slot { &mut holders } else { &mut records }, to, g);
                }
            }
        }
        for (i, &op) in reserves.iter().enumerate() {
            r.member.insert(op, i);
        }
        for op in m.collect_nested(func, |o| {
            matches!(o.opcode, Opcode::KsRbSubmit | Opcode::KsRbDiscard)
        }) {
            // Submit and discard both take the record as their only operand.
            if let Some(&g) = records.get(&m.op(op).operands[0]) {
                r.member.insert(op, g);
            }
        }
        for (i, &op) in reserves.iter().enumerate() {
            let anchor = r.anchor_of(m, op, i, &records);
            r.anchor.insert(op, anchor);
        }
        for (i, &op) in reserves.iter().enumerate() {
            let alone = (0..reserves.len()).all(|j| j == i || r.find(j) != r.find(i));
            if alone && releases_itself(m, func, op, &r) {
                r.plain.insert(r.find(i));
            }
        }
        r
    }

    /// Records that `v` carries reservation `g`, merging groups when it already carried another.
    fn mark(&mut self, map: &mut HashMap<Value, usize>, v: Value, g: usize) -> bool {
        match map.get(&v) {
            None => {
                map.insert(v, g);
                true
            }
            Some(&h) => self.union(g, h),
        }
    }

    fn anchor_of(
        &self,
        m: &Module,
        reserve: OpId,
        i: usize,
        records: &HashMap<Value, usize>,
    ) -> OpId {
        let group = self.find(i);
        let mut anchor = reserve;
        loop {
            let Some(block) = m.op(anchor).parent else {
                return anchor;
            };
            let Some(&last) = m.block(block).ops.last() else {
                return anchor;
            };
            let yields_record = m.op(last).opcode == Opcode::KsYield
                && m.op(last)
                    .operands
                    .iter()
                    .any(|v| records.get(v).is_some_and(|&g| self.find(g) == group));
            match m.block_owner(block) {
                Some(owner)
                    if yields_record
                        && matches!(m.op(owner).opcode, Opcode::KsIf | Opcode::KsSwitch) =>
                {
                    anchor = owner
                }
                _ => return anchor,
            }
        }
    }

    /// The group root of a reserve, submit or discard op.
    fn group(&self, op: OpId) -> Option<usize> {
        self.member.get(&op).map(|&i| self.find(i))
    }
}

/// `%rec = ks.rb_reserve; core.store %rec, %r; …loads and tests…;` then either
/// `ks.if (load %r != null) { …; release } else { … }` (or the same with the test reversed), or
/// the guard `ks.if (load %r == null) { …; leave }` followed in the same block by `…; release`: the one
/// release of the record is a top-level op of what runs while it is live, nothing there can leave
/// early (no return, throw, abort, call of a function that might, checked index; a kernel helper
/// such as `bpf_ktime_get_ns` returns), and `%r` is not used after it.
fn releases_itself(m: &Module, func: OpId, reserve: OpId, r: &Records) -> bool {
    let Some((block, at)) = m.position(reserve) else {
        return false;
    };
    let ops = &m.block(block).ops;
    let record = m.op(reserve).results[0];
    let Some(&store) = ops.get(at + 1) else {
        return false;
    };
    let st = m.op(store);
    if st.opcode != Opcode::CoreStore || st.operands[0] != record {
        return false;
    }
    let slot = st.operands[1];
    let all = m.collect_nested(func, |_| true);
    let uses = |v: Value| all.iter().filter(move |&&o| m.op(o).operands.contains(&v));
    if uses(record).count() != 1
        || !matches!(m.value(slot).def, crate::ir::ValueDef::Result(l, _) if m.op(l).opcode == Opcode::CoreLocal)
    {
        return false;
    }
    // Between the store and the `if`: only the loads and the test of the record.
    let Some(offset) = ops[at + 2..].iter().position(|&o| {
        !matches!(
            m.op(o).opcode,
            Opcode::CoreLoad | Opcode::CoreConst | Opcode::CoreCmp | Opcode::CoreCast
        )
    }) else {
        return false;
    };
    let branch = ops[at + 2 + offset];
    let b = m.op(branch);
    if b.opcode != Opcode::KsIf || b.regions.len() != 2 {
        return false;
    }
    let group = r.member.get(&reserve).map(|&i| r.find(i));
    let releases_of = |o: OpId| {
        m.collect_nested(o, |d| {
            matches!(d.opcode, Opcode::KsRbSubmit | Opcode::KsRbDiscard)
        })
        .into_iter()
        .chain(std::iter::once(o))
        .filter(|&x| r.group(x) == group)
        .count()
    };
    let (then_block, else_block) = (
        m.region(b.regions[0]).blocks[0],
        m.region(b.regions[1]).blocks[0],
    );
    let else_is_empty = m
        .block(else_block)
        .ops
        .iter()
        .all(|&o| m.op(o).opcode == Opcode::KsYield);
    // The ops that run with the record live, up to its one release. The branch taken on null
    // holds no record and may do anything that does not name it (the slot-use check below).
    let live: Vec<OpId> = if is_null_test(m, b.operands[0], slot, CmpPred::Ne) {
        // `if (r != null) { …; submit(r) } [else { … }]`.
        m.block(then_block).ops.clone()
    } else if is_null_test(m, b.operands[0], slot, CmpPred::Eq) && !else_is_empty {
        // `if (r == null) { … } else { …; submit(r) }`.
        m.block(else_block).ops.clone()
    } else if is_null_test(m, b.operands[0], slot, CmpPred::Eq)
        && region_leaves(m, b.regions[0])
        && releases_of(branch) == 0
    {
        // `if (r == null) { …; return }` then `…; submit(r)` in the same block.
        let Some(release) = ops[at + 3 + offset..]
            .iter()
            .position(|&o| releases_of(o) > 0)
            .map(|i| at + 3 + offset + i)
        else {
            return false;
        };
        ops[at + 3 + offset..=release].to_vec()
    } else {
        return false;
    };
    let releases: usize = live.iter().map(|&o| releases_of(o)).sum();
    let exits = live.iter().any(|&o| {
        m.collect_nested(o, |_| true)
            .into_iter()
            .chain(std::iter::once(o))
            .any(|x| {
                matches!(
                    m.op(x).opcode,
                    Opcode::KsReturn
                        | Opcode::KsThrow
                        | Opcode::KsBreak
                        | Opcode::KsContinue
                        | Opcode::KsAbort
                        | Opcode::KsTailCall
                        | Opcode::CoreCall
                        | Opcode::KsIndexAddr
                )
            })
    });
    // The release is a top-level op of the live ops (runs whenever they do).
    let release_on_top = live.iter().any(|&o| {
        matches!(m.op(o).opcode, Opcode::KsRbSubmit | Opcode::KsRbDiscard) && r.group(o) == group
    });
    if releases != 1 || exits || !release_on_top {
        return false;
    }
    // Every use of the slot is the store, the test or the live ops.
    let window: HashSet<OpId> = ops[at + 1..=at + 2 + offset]
        .iter()
        .chain(&live)
        .flat_map(|&o| {
            m.collect_nested(o, |_| true)
                .into_iter()
                .chain(std::iter::once(o))
        })
        .collect();
    uses(slot).all(|o| window.contains(o))
}

/// Whether a region always ends by leaving the function or loop.
fn region_leaves(m: &Module, r: crate::ir::RegionId) -> bool {
    m.region_ends_in(r, |o| {
        matches!(
            o,
            Opcode::KsReturn | Opcode::KsThrow | Opcode::KsAbort | Opcode::KsTailCall
        )
    })
}

/// `cond` is `load(slot) != null` (`pred` Ne; also the load made a bool) or `load(slot) == null`
/// (`pred` Eq).
fn is_null_test(m: &Module, cond: Value, slot: Value, pred: CmpPred) -> bool {
    let def = |v: Value| match m.value(v).def {
        crate::ir::ValueDef::Result(o, _) => Some(o),
        _ => None,
    };
    let loads_slot = |v: Value| {
        def(v).is_some_and(|o| m.op(o).opcode == Opcode::CoreLoad && m.op(o).operands[0] == slot)
    };
    let is_null = |v: Value| {
        def(v).is_some_and(|o| {
            m.op(o).opcode == Opcode::CoreConst
                && matches!(m.attr(o, "value"), Some(crate::ir::Attr::Int(0)))
        })
    };
    let Some(test) = def(cond) else { return false };
    let t = m.op(test);
    match t.opcode {
        Opcode::CoreCmp => {
            crate::ir::views::CoreCmp(test).pred(m) == pred
                && ((loads_slot(t.operands[0]) && is_null(t.operands[1]))
                    || (loads_slot(t.operands[1]) && is_null(t.operands[0])))
        }
        Opcode::CoreCast => pred == CmpPred::Ne && loads_slot(t.operands[0]),
        _ => false,
    }
}

/// The results a `ks.yield` feeds: those of its `ks.if` / `ks.switch`.
fn yield_targets(m: &Module, y: OpId) -> Option<Vec<Value>> {
    let owner = m.block_owner(m.op(y).parent?)?;
    matches!(m.op(owner).opcode, Opcode::KsIf | Opcode::KsSwitch)
        .then(|| m.op(owner).results.clone())
}

impl Emit<'_> {
    /// The dynptr (`[2 x u64]`, 16 bytes) and live-flag (u64, volatile) slots of the record group of `op`.
    fn record_slots(&mut self, op: OpId) -> Result<(Value, Value), String> {
        let g = self
            .cx
            .records
            .group(op)
            .ok_or("cannot tell which reservation this ring-buffer record comes from")?;
        if let Some(&s) = self.cx.records.slots.get(&g) {
            return Ok(s);
        }
        let dynptr = self.slot(Type::Array(Rc::new(Type::u64()), 2));
        // A full 8-byte slot: the verifier tracks constants spilled to the stack only at that size.
        let live = self.volatile_slot(Type::u64());
        self.cx.records.slots.insert(g, (dynptr, live));
        Ok((dynptr, live))
    }

    /// `defer { if (live) { discard; live = 0 } }`: clearing the flag keeps a second defer of a
    /// shared group from releasing the dynptr twice.
    fn release_defer(&mut self, dynptr: Value, live: Value) {
        let d = self.b.ks_defer();
        let body = self.b.entry(d, 0);
        self.nested(body, |e| {
            let flag = e.load(live);
            let zero = e.b.core_const(0, Type::u64());
            let is_live = e.b.core_cmp(flag, zero, CmpPred::Ne);
            e.if_then(is_live, |e| {
                e.b.bpf_dynptr_discard(dynptr);
                e.store_const(0, live);
            });
        });
    }
}

/// `rb.reserve()`: reserve into the dynptr, mark it live, schedule its release, and take the
/// record's address (null when the reservation failed).
pub fn reserve(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsRbReserve(op);
    let (map, rec_ty) = (v.map(e.m()).to_string(), e.ty(v.record_value(e.m())));
    let size = e.size(rec_ty.pointee().unwrap_or(&Type::Void))? as i128;
    if e.cx
        .records
        .group(op)
        .is_some_and(|g| e.cx.records.plain.contains(&g))
    {
        let mp = e.map_addr(&map);
        let (n, flags) = (e.u64(size), e.u64(0));
        return Ok(vec![e.helper(RINGBUF_RESERVE, &[mp, n, flags], rec_ty)]);
    }
    let (dynptr, live) = e.record_slots(op)?;
    e.b.bpf_dynptr_reserve(dynptr, &map, size);
    e.store_const(1, live);
    let anchor = e.cx.records.anchor[&op];
    if anchor == op {
        e.release_defer(dynptr, live);
    }
    let record = e.b.bpf_dynptr_data(dynptr, size, rec_ty);
    let group =
        e.cx.records
            .group(op)
            .expect("record_slots found the group");
    if anchor != op && e.cx.records.hoisted.insert((group, anchor)) {
        let (block, at) = e.m().position(anchor).expect("the anchor is in a block");
        e.emit_at(block, Some(at + 1), |e| e.release_defer(dynptr, live));
    }
    Ok(vec![record])
}

/// `rb.submit(e)` / `rb.discard(e)`: release the record's dynptr and clear its live flag.
pub fn release(e: &mut Emit, op: OpId) -> Lowered {
    let submit = e.m().op(op).opcode == Opcode::KsRbSubmit;
    if e.cx
        .records
        .group(op)
        .is_some_and(|g| e.cx.records.plain.contains(&g))
    {
        let (record, flags) = (e.m().op(op).operands[0], e.u64(0));
        e.helper(
            if submit {
                RINGBUF_SUBMIT
            } else {
                RINGBUF_DISCARD
            },
            &[record, flags],
            Type::i64(),
        );
        return Ok(vec![e.b.core_const(0, Type::i32())]);
    }
    let (dynptr, live) = e.record_slots(op)?;
    if e.m().op(op).opcode == Opcode::KsRbSubmit {
        e.b.bpf_dynptr_submit(dynptr);
    } else {
        e.b.bpf_dynptr_discard(dynptr);
    }
    e.store_const(0, live);
    Ok(vec![e.b.core_const(0, Type::i32())])
}
