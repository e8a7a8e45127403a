//! Ring-buffer records through dynptrs (§11.5). A reservation becomes
//! `bpf_ringbuf_reserve_dynptr` into a stack dynptr plus a "live" flag; right after it a
//! `ks.defer` discards the record if the flag is still set, so `flatten` releases it on every exit
//! of the enclosing region (fall-through, return, break, continue, throw, abort, tail call). The
//! verifier demands that release even when the reservation failed. `submit` / `discard` release
//! it explicitly and clear the flag.
//!
//! `rb.submit(e)` names the record by value, so the analysis here maps every value and variable
//! slot a record flows into back to its reservation. Sema only lets a record live in local
//! variables of the reserving function (E0608); reservations that can reach the same variable
//! share one dynptr and flag.

use super::{Emit, Lowered};
use crate::ir::views::KsRbReserve;
use crate::ir::{Module, OpId, Opcode, Type, Value};
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
        let flow = m.collect_nested(func, |o| matches!(o.opcode, Opcode::CoreStore | Opcode::CoreLoad | Opcode::CoreCast | Opcode::KsYield));
        let mut r = Records { parent: (0..reserves.len()).collect(), member: HashMap::new(), anchor: HashMap::new(), slots: HashMap::new(), hoisted: HashSet::new() };
        // Values that are record pointers, and slots that hold them, by reservation.
        let mut records: HashMap<Value, usize> = reserves.iter().enumerate().map(|(i, &op)| (m.op(op).results[0], i)).collect();
        let mut holders: HashMap<Value, usize> = HashMap::new();
        let mut changed = true;
        while changed {
            changed = false;
            for &op in &flow {
                let o = m.op(op);
                // Edges from a record (or, for a load, from a slot holding one) to what it reaches.
                let edges: Vec<(Value, Value)> = match o.opcode {
                    Opcode::CoreStore => vec![(o.operands[0], o.operands[1])],
                    Opcode::KsYield => yield_targets(m, op).map(|outs| o.operands.iter().copied().zip(outs).collect()).unwrap_or_default(),
                    _ => vec![(o.operands[0], o.results[0])],
                };
                let (from_slot, to_slot) = (o.opcode == Opcode::CoreLoad, o.opcode == Opcode::CoreStore);
                let src = if from_slot { &holders } else { &records };
                let reached: Vec<(Value, usize)> = edges.into_iter().filter_map(|(from, to)| src.get(&from).map(|&g| (to, g))).collect();
                for (to, g) in reached {
                    changed |= r.mark(if to_slot { &mut holders } else { &mut records }, to, g);
                }
            }
        }
        for (i, &op) in reserves.iter().enumerate() {
            r.member.insert(op, i);
        }
        for op in m.collect_nested(func, |o| matches!(o.opcode, Opcode::KsRbSubmit | Opcode::KsRbDiscard)) {
            // Submit and discard both take the record as their only operand.
            if let Some(&g) = records.get(&m.op(op).operands[0]) {
                r.member.insert(op, g);
            }
        }
        for (i, &op) in reserves.iter().enumerate() {
            let anchor = r.anchor_of(m, op, i, &records);
            r.anchor.insert(op, anchor);
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

    fn anchor_of(&self, m: &Module, reserve: OpId, i: usize, records: &HashMap<Value, usize>) -> OpId {
        let group = self.find(i);
        let mut anchor = reserve;
        loop {
            let Some(block) = m.op(anchor).parent else { return anchor };
            let Some(&last) = m.block(block).ops.last() else { return anchor };
            let yields_record = m.op(last).opcode == Opcode::KsYield && m.op(last).operands.iter().any(|v| records.get(v).is_some_and(|&g| self.find(g) == group));
            match m.block_owner(block) {
                Some(owner) if yields_record && matches!(m.op(owner).opcode, Opcode::KsIf | Opcode::KsSwitch) => anchor = owner,
                _ => return anchor,
            }
        }
    }

    /// The group root of a reserve, submit or discard op.
    fn group(&self, op: OpId) -> Option<usize> {
        self.member.get(&op).map(|&i| self.find(i))
    }
}

/// The results a `ks.yield` feeds: those of its `ks.if` / `ks.switch`.
fn yield_targets(m: &Module, y: OpId) -> Option<Vec<Value>> {
    let owner = m.block_owner(m.op(y).parent?)?;
    matches!(m.op(owner).opcode, Opcode::KsIf | Opcode::KsSwitch).then(|| m.op(owner).results.clone())
}

impl Emit<'_> {
    /// The dynptr (`[2 x u64]`, 16 bytes) and live-flag (u64, volatile) slots of the record group of `op`.
    fn record_slots(&mut self, op: OpId) -> Result<(Value, Value), String> {
        let g = self.cx.records.group(op).ok_or("cannot tell which reservation this ring-buffer record comes from")?;
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
            let is_live = e.b.core_cmp(flag, zero, "ne");
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
    let (dynptr, live) = e.record_slots(op)?;
    e.b.bpf_dynptr_reserve(dynptr, &map, size);
    e.store_const(1, live);
    let anchor = e.cx.records.anchor[&op];
    if anchor == op {
        e.release_defer(dynptr, live);
    }
    let record = e.b.bpf_dynptr_data(dynptr, size, rec_ty);
    let group = e.cx.records.group(op).expect("record_slots found the group");
    if anchor != op && e.cx.records.hoisted.insert((group, anchor)) {
        let (block, at) = e.m().position(anchor).expect("the anchor is in a block");
        e.emit_at(block, Some(at + 1), |e| e.release_defer(dynptr, live));
    }
    Ok(vec![record])
}

/// `rb.submit(e)` / `rb.discard(e)`: release the record's dynptr and clear its live flag.
pub fn release(e: &mut Emit, op: OpId) -> Lowered {
    let (dynptr, live) = e.record_slots(op)?;
    if e.m().op(op).opcode == Opcode::KsRbSubmit {
        e.b.bpf_dynptr_submit(dynptr);
    } else {
        e.b.bpf_dynptr_discard(dynptr);
    }
    e.store_const(0, live);
    Ok(vec![e.b.core_const(0, Type::i32())])
}
