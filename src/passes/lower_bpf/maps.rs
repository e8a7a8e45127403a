//! Maps (§11.2): lookups, updates, deletes, atomic adds, queues and redirects.

use super::*;

pub(super) fn map_lookup(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsMapLookup(op);
    let (map, key, ty) = (
        v.map(e.m()).to_string(),
        v.key(e.m()),
        e.ty(v.entry_value(e.m())),
    );
    // `if (m[k] != null) { m[k].a += 1; m[k].b += n }`: every access finds the entry the test
    // found (nothing in between inserts, deletes or calls), as C keeps one pointer.
    if let Some(entry) = earlier_lookup(e, &map, key, op).filter(|&p| e.ty(p) == ty) {
        return Ok(vec![entry]);
    }
    let k = e.spill_key(key);
    let entry = e.lookup(&map, k, ty);
    e.remember_lookup(map, key, entry);
    Ok(vec![entry])
}

/// The entry pointer of an earlier lookup of `map[key]` that still holds at `op`: the lookup runs
/// first on every path to `op`, and nothing that may run in between stores to the key's variable,
/// writes or deletes entries of `map`, or calls a function.
pub(super) fn earlier_lookup(e: &Emit, map: &str, key: Value, op: OpId) -> Option<Value> {
    let m = e.m();
    let key = key_id(m, key);
    let reads = key.reads(m);
    let found =
        e.cx.lookups
            .iter()
            .rev()
            .find(|l| l.map == map && l.key == key && m.precedes_structurally(l.call, op))?;
    for o in ops_between(m, found.call, op)? {
        let d = m.op(o);
        let names_map = |a: Option<&Attr>| matches!(a, Some(Attr::Sym(s)) if s == map);
        let clobbers = match d.opcode {
            Opcode::CoreCall
            | Opcode::CoreCallIndirect
            | Opcode::KsCallExtern
            | Opcode::KsTailCall
            | Opcode::BpfTailCall
            | Opcode::BpfKfuncCall => true,
            Opcode::KsMapUpdate
            | Opcode::KsMapDelete
            | Opcode::KsMapAdd
            | Opcode::KsMapPush
            | Opcode::KsMapPop => names_map(m.attr(o, "map")),
            Opcode::BpfHelperCall => {
                let id = helper_id(m, o);
                let target = d.operands.first().and_then(|&mp| match m.value(mp).def {
                    ValueDef::Result(a, _) => Some(a),
                    _ => None,
                });
                [
                    MAP_UPDATE_ELEM,
                    MAP_DELETE_ELEM,
                    MAP_PUSH_ELEM,
                    MAP_POP_ELEM,
                ]
                .iter()
                .any(|h| i128::from(h.id) == id)
                    && target.is_none_or(|a| {
                        m.op(a).opcode != Opcode::BpfMapAddr || names_map(m.attr(a, "map"))
                    })
            }
            _ => reads.clobbered_by(m, o),
        };
        if clobbers {
            return None;
        }
    }
    Some(found.entry)
}

/// The helper number a `bpf.helper_call` calls.
pub(super) fn helper_id(m: &Module, call: OpId) -> i128 {
    match m.attr(call, "id") {
        Some(Attr::Int(i)) => *i,
        _ => 0,
    }
}

/// Whether the key slot `slot` still holds `key` at `op`: the last store to it that runs first
/// on every path to `op` stored `key`, and nothing in between writes the slot or the key's variable.
pub(super) fn key_still_in(e: &Emit, slot: Value, key: &KeyId, op: OpId) -> bool {
    let m = e.m();
    let Some(last) =
        e.cx.key_spills
            .iter()
            .rev()
            .find(|s| s.slot == slot && m.precedes_structurally(s.store, op))
    else {
        return false;
    };
    if last.key != *key {
        return false;
    }
    let reads = key.reads(m);
    let Some(between) = ops_between(m, last.store, op) else {
        return false;
    };
    between.iter().all(|&o| {
        let d = m.op(o);
        let reads_only = |v: Value| match d.opcode {
            Opcode::CoreLoad => true,
            Opcode::BpfHelperCall => {
                let read_only =
                    crate::vocab::helpers::by_id(helper_id(m, o)).map_or(&[][..], |h| h.reads_only);
                d.operands
                    .iter()
                    .enumerate()
                    .all(|(i, &a)| a != v || read_only.contains(&i))
            }
            _ => false,
        };
        let untouched = |v: Value| !d.operands.contains(&v) || reads_only(v);
        untouched(slot) && !reads.clobbered_by(m, o)
    })
}

pub(super) fn map_update(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsMapUpdate(op);
    let (map, key, value, flags) = (
        v.map(e.m()).to_string(),
        v.key(e.m()),
        v.value(e.m()),
        v.flags(e.m()),
    );
    let decl =
        declaration(e.m(), Opcode::KsMap, &map).ok_or_else(|| format!("@{map} is not a map"))?;
    let kind = KsMap(decl).kind(e.m());
    let k = e.spill_key(key);
    // Arrays hold every key in range: an update that may overwrite (BPF_ANY, BPF_EXIST) is a
    // store through the entry, as C writes through bpf_map_lookup_elem's pointer, which the
    // kernel inlines for arrays (a per-CPU entry is the running CPU's, as the helper's is). A key
    // out of range finds no entry and yields the helper's -E2BIG.
    if kind.always_present() && matches!(flags, BPF_ANY | BPF_EXIST) {
        let entry_ty = Type::ptr(e.ty(value));
        let p = e.lookup(&map, k, entry_ty);
        let found = e.non_null(p);
        e.if_then(found, |e| {
            e.b.core_store(value, p);
        });
        e.remember_lookup(map, key, p);
        let ok = e.b.core_const(0, Type::i64());
        let too_big = e.b.core_const(-E2BIG, Type::i64());
        return Ok(vec![e.b.core_select(found, ok, too_big)]);
    }
    let val = e.spill(Role::Value, value);
    Ok(vec![e.update(&map, k, val, flags)])
}

pub(super) fn map_delete(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsMapDelete(op);
    let (map, key) = (v.map(e.m()).to_string(), v.key(e.m()));
    let k = e.spill_key(key);
    let mp = e.map_addr(&map);
    Ok(vec![e.helper(MAP_DELETE_ELEM, &[mp, k], Type::i64())])
}

/// `m[k] += n` (§11.2): an atomic add to the entry, or an insert of `n` when absent (with a
/// second lookup when another CPU inserted first). Arrays always hold their keys, so they have no
/// insert path; per-CPU slots belong to the running CPU, so they take a plain add, as
/// hand-written C does.
pub(super) fn map_add(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsMapAdd(op);
    let (map, key, delta) = (v.map(e.m()).to_string(), v.key(e.m()), v.delta(e.m()));
    let decl =
        declaration(e.m(), Opcode::KsMap, &map).ok_or_else(|| format!("@{map} is not a map"))?;
    let (value_ty, kind) = (KsMap(decl).value(e.m()).clone(), KsMap(decl).kind(e.m()));
    if !value_ty.is_int() {
        return Err(format!(
            "`+=` on an entry of @{map} needs integer values, not {value_ty}"
        ));
    }
    let per_cpu = kind.is_percpu();
    let always_present = kind.always_present();
    let delta = e.cast(delta, &value_ty);
    let entry_ty = Type::ptr(value_ty);
    // `if (m[k] != null) { m[k] += 1 }`: the entry found by the test is the one to add to, and
    // the key is stored again only for the insert (a store right before the atomic add would
    // make it wait for the store buffer).
    let (p, spilled) = match earlier_lookup(e, &map, key, op) {
        Some(p) if e.ty(p) == entry_ty => (p, None),
        _ => {
            let k = e.spill_key(key);
            (e.lookup(&map, k, entry_ty.clone()), Some(k))
        }
    };
    let present = e.non_null(p);
    if always_present {
        e.if_then(present, |e| add_in_place(e, p, delta, per_cpu));
        if spilled.is_some() {
            e.remember_lookup(map, key, p);
        }
        return Ok(vec![]);
    }
    if read_later(e, &map, key, op) {
        // `m[k] += 1; if (m[k] > limit)`: the add ends with the entry in hand on every path (a
        // lookup after an insert, which is rare), and the read takes it, as C keeps the pointer.
        let choice =
            e.b.ks_if(present, Some(true), std::slice::from_ref(&entry_ty));
        let (hit, miss) = (e.b.entry(choice, 0), e.b.entry(choice, 1));
        e.nested(hit, |e| {
            add_in_place(e, p, delta, per_cpu);
            e.b.ks_yield(&[p]);
        });
        e.nested(miss, |e| {
            let k = spilled.unwrap_or_else(|| e.spill_key(key));
            let val = e.spill(Role::Value, delta);
            let ret = e.update(&map, k, val, BPF_NOEXIST);
            let raced = e.succeeded(ret);
            let raced = e.b.core_not(raced);
            let q = e.lookup(&map, k, entry_ty.clone());
            let present = e.non_null(q);
            let add = e.b.core_and(raced, present);
            e.if_then(add, |e| add_in_place(e, q, delta, per_cpu));
            e.b.ks_yield(&[q]);
        });
        let entry = e.b.module.op(choice).results[0];
        e.remember_lookup(map, key, entry);
        return Ok(vec![]);
    }
    e.if_else(
        present,
        |e| add_in_place(e, p, delta, per_cpu),
        |e| {
            let k = spilled.unwrap_or_else(|| e.spill_key(key));
            let val = e.spill(Role::Value, delta);
            let ret = e.update(&map, k, val, BPF_NOEXIST);
            let inserted = e.succeeded(ret);
            let raced = e.b.core_not(inserted);
            e.if_then(raced, |e| {
                let p = e.lookup(&map, k, entry_ty);
                let present = e.non_null(p);
                e.if_then(present, |e| add_in_place(e, p, delta, per_cpu));
            });
        },
    );
    Ok(vec![])
}

impl Emit<'_> {
    /// Records the entry of `map[key]` found by the op defining `entry` (a lookup, or a branch
    /// yielding the entry on every path), for later accesses of the same key to reuse.
    fn remember_lookup(&mut self, map: String, key: Value, entry: Value) {
        if let ValueDef::Result(call, _) = self.m().value(entry).def {
            let key = key_id(self.m(), key);
            self.cx.lookups.push(Lookup {
                map,
                key,
                call,
                entry,
            });
        }
    }
}

/// Whether a lookup of `map[key]` (the same key expression) comes after `op` in its function.
fn read_later(e: &Emit, map: &str, key: Value, op: OpId) -> bool {
    let m = e.m();
    let id = key_id(m, key);
    e.cx.map_reads.iter().any(|&l| {
        m.op(l).parent.is_some()
            && matches!(m.attr(l, "map"), Some(Attr::Sym(s)) if s == map)
            && m.precedes_structurally(op, l)
            && key_id(m, m.op(l).operands[0]) == id
    })
}

/// BPF atomics exist for 32- and 64-bit words only; narrower values, and per-CPU slots, get a
/// plain read-modify-write.
pub(super) fn add_in_place(e: &mut Emit, p: Value, delta: Value, per_cpu: bool) {
    if !per_cpu && matches!(e.size(&e.ty(delta)), Ok(4 | 8)) {
        e.b.core_atomic_add(p, delta);
    } else {
        let old = e.load(p);
        let new = e.b.core_add(old, delta);
        e.b.core_store(new, p);
    }
}

pub(super) fn map_push(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsMapPush(op);
    let (map, value, rt) = (
        v.map(e.m()).to_string(),
        v.value(e.m()),
        e.ty(v.result_value(e.m())),
    );
    let val = e.spill(Role::Value, value);
    let mp = e.map_addr(&map);
    let flags = e.u64(0);
    let ret = e.helper(MAP_PUSH_ELEM, &[mp, val, flags], Type::i64());
    Ok(vec![e.cast(ret, &rt)])
}

/// `q.pop()` / `q.peek()`: the value lands in a zeroed buffer, so an empty queue reads 0.
pub(super) fn map_pop(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsMapPop(op);
    let (map, peek, vt) = (
        v.map(e.m()).to_string(),
        v.peek(e.m()),
        e.ty(v.value_value(e.m())),
    );
    let out = e.scratch(Role::Out, vt);
    e.store_zero(out);
    let mp = e.map_addr(&map);
    let ret = e.helper(
        if peek { MAP_PEEK_ELEM } else { MAP_POP_ELEM },
        &[mp, out],
        Type::i64(),
    );
    let present = e.succeeded(ret);
    Ok(vec![e.load(out), present])
}

/// Bloom filters answer membership through peek.
pub(super) fn map_contains(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsMapContains(op);
    let (map, value) = (v.map(e.m()).to_string(), v.value(e.m()));
    let val = e.spill(Role::Value, value);
    let mp = e.map_addr(&map);
    let ret = e.helper(MAP_PEEK_ELEM, &[mp, val], Type::i64());
    Ok(vec![e.succeeded(ret)])
}

pub(super) fn redirect_map(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsRedirectMap(op);
    let (map, key, flags, rt) = (
        v.map(e.m()).to_string(),
        v.key(e.m()),
        v.flags(e.m()),
        e.ty(v.result_value(e.m())),
    );
    let mp = e.map_addr(&map);
    let key = e.cast(key, &Type::u64());
    let flags = e.cast(flags, &Type::u64());
    let ret = e.helper(REDIRECT_MAP, &[mp, key, flags], Type::i64());
    Ok(vec![e.cast(ret, &rt)])
}

pub(super) fn perf_output(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsPerfOutput(op);
    let (map, ctx, value, rt) = (
        v.map(e.m()).to_string(),
        v.ctx(e.m()),
        v.value(e.m()),
        e.ty(v.result_value(e.m())),
    );
    let size = e.size(&e.ty(value))?;
    let data = e.spill(Role::Value, value);
    let mp = e.map_addr(&map);
    let cpu = e.u64(BPF_F_CURRENT_CPU);
    let size = e.u64(size as i128);
    let ret = e.helper(PERF_EVENT_OUTPUT, &[ctx, mp, cpu, data, size], Type::i64());
    Ok(vec![e.cast(ret, &rt)])
}

pub(super) fn rb_output(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsRbOutput(op);
    let (map, value, rt) = (
        v.map(e.m()).to_string(),
        v.value(e.m()),
        e.ty(v.result_value(e.m())),
    );
    let size = e.size(&e.ty(value))?;
    let data = e.spill(Role::Value, value);
    let mp = e.map_addr(&map);
    let size = e.u64(size as i128);
    let flags = e.u64(0);
    let ret = e.helper(RINGBUF_OUTPUT, &[mp, data, size, flags], Type::i64());
    Ok(vec![e.cast(ret, &rt)])
}
