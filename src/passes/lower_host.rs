//! `lower-host`: rewrites the whole-language `ks` ops of userspace functions into the `host`
//! dialect (calls into the runtime's C ABI for maps, ring buffers, program lifecycle and test
//! runs; libc for process services). Runs on structured IR, before `flatten`.
//!
//! The ABI is `runtime/ABI.md`. Kernel objects are named by C strings (`host.map_ref`,
//! `host.prog_ref`, `host.cstr`); keys, values and strings are passed by pointer to stack slots
//! placed at the top of the function's entry block, so they dominate every use. A map lookup
//! yields the address of a *copy* of the entry, so every write through that address is followed
//! by a write-back of the copy (§11.2 "read-modify-write", §11.3 entry bindings).

use super::manager::Analyses;
use super::provenance::Provenance;
use super::{PassErrors, PassResult};
use crate::ir::views::*;
use crate::ir::*;
use crate::vocab::{CmpPred, Storage, Target};
use std::collections::HashMap;

const BPF_EXIST: i128 = 2;

pub fn run(m: &mut Module, analyses: &mut Analyses) -> PassResult {
    let process_unit = !has_kernel_side(m);
    if process_unit {
        configs_to_process_globals(m);
    }
    let funcs: Vec<OpId> = m
        .funcs()
        .filter(|&f| KsFunc(f).target(m) == Target::Host)
        .collect();
    let mut errors: PassErrors = Vec::new();
    for func in funcs {
        // Every op, collected before rewriting: `Lower::op` picks the ones to rewrite.
        let ops = m.collect_nested(func, |_| true);
        let writes = entry_writes(m, &ops, analyses.provenance(m, func));
        let mut lw = Lower {
            m: &mut *m,
            func,
            process_unit,
            loc: Loc::default(),
        };
        for op in ops {
            if let Err(msg) = lw.op(op, writes.get(&op).map_or(&[], Vec::as_slice)) {
                errors.push(super::PassError::internal(Some(op), msg));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

// ---- the unit ---------------------------------------------------------------------------------

/// Whether the host links a BPF object: the unit has a kernel function or struct_ops impl, a map,
/// a global stored in the object, or userspace names a program (`load`, `test`, `register`).
/// Otherwise globals and configs are ordinary process memory (§12.1, §12.3).
pub fn has_kernel_side(m: &Module) -> bool {
    let decl = m.top_ops().iter().any(|&o| match m.op(o).opcode {
        Opcode::KsFunc => KsFunc(o).target(m) == Target::Bpf,
        Opcode::KsMap | Opcode::KsImpl => true,
        Opcode::KsGlobal => KsGlobal(o).storage(m) != Storage::Process,
        _ => false,
    });
    decl || m.funcs().any(|f| {
        !m.collect_nested(f, |d| {
            matches!(
                d.opcode,
                Opcode::KsLoadProg | Opcode::KsTestRun | Opcode::KsRegister
            )
        })
        .is_empty()
    })
}

/// Without a BPF object, a config block is a process global of its struct type: `ks.config @c`
/// becomes `ks.global @c : !c_config` initialised with the defaults (fields in order), and the
/// `ks.config_addr` ops become `ks.global_addr` (see `Lower::config_addr`).
fn configs_to_process_globals(m: &mut Module) {
    let configs: Vec<OpId> = m
        .top_ops()
        .iter()
        .copied()
        .filter(|&o| m.op(o).opcode == Opcode::KsConfig)
        .collect();
    for c in configs {
        let name = KsConfig(c).name(m).to_string();
        let defaults = KsConfig(c).defaults(m).to_vec();
        let is_zero = |a: &Attr| {
            matches!(a, Attr::Int(0) | Attr::Bool(false))
                || matches!(a, Attr::Str(s) if s.is_empty())
        };
        let init = (!defaults.iter().all(is_zero)).then_some(Attr::List(defaults));
        let mut b = m.builder_before(c);
        b.ks_global(
            &name,
            Type::Struct(format!("{name}_config").into()),
            Storage::Process,
            init,
        );
        m.detach_op(c);
    }
}

// ---- map entry write-back ---------------------------------------------------------------------

/// A write through a map entry's address, which must be followed by a write-back of the copy.
#[derive(Clone, Copy)]
struct EntryWrite {
    op: OpId,
    /// The address written may instead be in another entry a binding was bound to, or in the
    /// copy an absent entry's binding became (§11.3, `v = m[k2]`, `v = V {…}`): write back only
    /// when it is in this entry's copy.
    maybe_elsewhere: bool,
}

/// The address an entry write writes to.
fn written_address(m: &Module, write: OpId) -> Value {
    let d = m.op(write);
    match d.opcode {
        Opcode::CoreCopy => d.operands[0],
        _ => d.operands[1],
    }
}

/// For each `ks.map_lookup` among a function's `ops`: the stores and copies that write through the entry's
/// address, directly or through a pointer formed from it alone (field, element, offset, cast,
/// a local holding only such pointers: an entry binding `var v = m[k]`), or from it and other
/// entries or stack copies a binding may hold instead.
fn entry_writes(
    m: &Module,
    ops: &[OpId],
    provenance: &Provenance,
) -> HashMap<OpId, Vec<EntryWrite>> {
    let mut out = HashMap::new();
    let is_local_or_entry = |v: Value| {
        matches!(m.value(v).def, ValueDef::Result(op, _)
            if matches!(m.op(op).opcode, Opcode::CoreLocal | Opcode::KsMapLookup))
    };
    for &lookup in ops
        .iter()
        .filter(|&&o| m.op(o).opcode == Opcode::KsMapLookup)
    {
        let entry = m.op(lookup).results[0];
        let writes = ops
            .iter()
            .filter_map(|&o| {
                if !matches!(m.op(o).opcode, Opcode::CoreStore | Opcode::CoreCopy) {
                    return None;
                }
                let target = written_address(m, o);
                if provenance.only_from(target, entry) {
                    return Some(EntryWrite {
                        op: o,
                        maybe_elsewhere: false,
                    });
                }
                let mixed = provenance.roots(target).all(is_local_or_entry)
                    && provenance.roots(target).any(|r| r == entry);
                mixed.then_some(EntryWrite {
                    op: o,
                    maybe_elsewhere: true,
                })
            })
            .collect();
        out.insert(lookup, writes);
    }
    out
}

// ---- types --------------------------------------------------------------------------------------

/// C strings (`const char *`), the handles of the ABI.
fn cstr_ty() -> Type {
    Type::ptr(Type::u8())
}

fn struct_fields<'m>(m: &'m Module, name: &str) -> &'m [(String, Type)] {
    m.lookup_symbol(name)
        .and_then(|d| KsStruct::of(m, d))
        .map_or(&[], |s| s.fields(m))
}

/// Byte size of an IR type; 0 for types without storage.
fn size_of(m: &Module, t: &Type) -> u64 {
    crate::ir::layout::size_of(m, t).unwrap_or(0)
}

/// Whether two values of `t` are equal exactly when their bytes are: no padding, no strings
/// (whose bytes after the NUL do not count).
fn bytewise(m: &Module, t: &Type) -> bool {
    match t {
        Type::Str(_) => false,
        Type::Array(e, _) => bytewise(m, e),
        Type::Struct(s) => {
            let fields = struct_fields(m, s);
            fields.iter().all(|(_, f)| bytewise(m, f))
                && fields.iter().map(|(_, f)| size_of(m, f)).sum::<u64>() == size_of(m, t)
        }
        _ => true,
    }
}

fn sym_attr(m: &Module, op: OpId, name: &str) -> Result<String, String> {
    match m.attr(op, name) {
        Some(Attr::Sym(s)) => Ok(s.clone()),
        _ => Err(format!(
            "`{}` has no symbol `{name}`",
            m.op(op).opcode.name()
        )),
    }
}

// ---- the rewriting ------------------------------------------------------------------------------

/// An insertion point: before an op (at its location) or at the end of a block.
#[derive(Clone, Copy)]
enum At {
    Before(OpId),
    End(BlockId, Loc),
}

struct Lower<'m> {
    m: &'m mut Module,
    func: OpId,
    process_unit: bool,
    /// The location of the op being lowered (given to the slots it needs).
    loc: Loc,
}

impl Lower<'_> {
    fn op(&mut self, op: OpId, entry_writes: &[EntryWrite]) -> Result<(), String> {
        use Opcode::*;
        self.loc = self.m.op(op).loc;
        match self.m.op(op).opcode {
            KsMapLookup => self.map_lookup(op, entry_writes),
            KsMapUpdate | KsMapDelete | KsMapAdd | KsMapPush | KsMapPop | KsMapContains => {
                self.map_op(op)
            }
            KsMapForeach => self.map_foreach(op),
            KsRbOnEvent | KsRbPoll | KsDispatch => self.ring_buffer(op),
            KsLoadProg | KsAttach | KsAttachPerf | KsDetach | KsPerfRead | KsRegister
            | KsDaemon | KsSleep | KsExec => self.lifecycle(op),
            KsPyCall => self.python_call(op),
            KsTestRun => self.test_run(op),
            KsTestLen => self.replace_by_rt(op, "ksrt_test_len", &[]),
            KsAssert => self.assert(op),
            KsPrint => self.print(op),
            KsConfigAddr => self.config_addr(op),
            KsGlobalAddr => self.global_addr(op),
            KsIndexAddr => self.index_addr(op),
            KsNonnull => self.nonnull(op),
            KsNew | KsDelete => self.memory(op),
            KsStrEq | KsStrConcat | KsStrConvert => self.string(op),
            KsAggEq => self.agg_eq(op),
            _ => Ok(()),
        }
    }

    // ---- building blocks ----

    fn loc_of(&self, at: At) -> Loc {
        match at {
            At::Before(op) => self.m.op(op).loc,
            At::End(_, loc) => loc,
        }
    }

    fn b(&mut self, at: At) -> Builder<'_> {
        match at {
            At::Before(op) => self.m.builder_before(op),
            At::End(block, loc) => {
                let mut b = Builder::new(self.m, block);
                b.loc = loc;
                b
            }
        }
    }

    /// A new stack slot at the top of the entry block, after the slots already there.
    fn slot(&mut self, ty: Type) -> Value {
        let entry = self.m.func_entry(self.func);
        let at = self
            .m
            .block(entry)
            .ops
            .iter()
            .take_while(|&&o| self.m.op(o).opcode == Opcode::CoreLocal)
            .count();
        let mut b = Builder {
            module: &mut *self.m,
            block: entry,
            at: Some(at),
            loc: self.loc,
        };
        b.core_local(ty.clone(), None, None, None, Type::ptr(ty))
    }

    /// Stores `value` into a new slot at `at`; yields the slot's address.
    fn spill(&mut self, at: At, value: Value) -> Value {
        let slot = self.slot(self.m.value_type(value).clone());
        self.b(at).core_store(value, slot);
        slot
    }

    /// A pointer to `value`: the value itself when it is one, else a spilled copy.
    fn by_pointer(&mut self, at: At, value: Value) -> Value {
        if self.m.value_type(value).is_ptr() {
            value
        } else {
            self.spill(at, value)
        }
    }

    fn konst(&mut self, at: At, value: i128, ty: Type) -> Value {
        self.b(at).core_const(value, ty)
    }

    fn cstr(&mut self, at: At, s: &[u8]) -> Value {
        self.b(at).host_cstr(s.to_vec(), cstr_ty())
    }

    fn map_ref(&mut self, at: At, map: &str) -> Value {
        self.b(at).host_map_ref(map, cstr_ty())
    }

    /// Converts an integer or bool to `ty` (no op when it already has that type).
    fn convert(&mut self, at: At, v: Value, ty: Type) -> Value {
        if *self.m.value_type(v) == ty {
            v
        } else {
            self.b(at).core_cast(v, ty)
        }
    }

    fn rt(&mut self, at: At, callee: &str, args: &[Value], ret: Option<Type>) -> Option<Value> {
        let mut b = self.b(at);
        let call = b.host_rt_call(args, callee, ret.as_slice());
        b.module.op(call).results.first().copied()
    }

    fn libc(&mut self, at: At, callee: &str, args: &[Value], ret: Option<Type>) -> Option<Value> {
        let mut b = self.b(at);
        let call = b.host_libc_call(args, callee, ret.as_slice());
        b.module.op(call).results.first().copied()
    }

    /// Replaces `op` by a runtime call with `args` returning the op's result type (if any).
    fn replace_by_rt(&mut self, op: OpId, callee: &str, args: &[Value]) -> Result<(), String> {
        let ret = self
            .m
            .op(op)
            .results
            .first()
            .map(|&r| self.m.value_type(r).clone());
        let r = self.rt(At::Before(op), callee, args, ret);
        self.m.replace_op(op, r.as_slice());
        Ok(())
    }

    /// `ks.if cond { then(..) } {}` at `at`.
    fn guard(&mut self, at: At, cond: Value, then: impl FnOnce(&mut Self, At)) {
        let loc = self.loc_of(at);
        let op = self.b(at).ks_if(cond, None, &[]);
        let block = self.m.region(self.m.op(op).regions[0]).blocks[0];
        then(self, At::End(block, loc));
    }

    /// The source location of `op` as (file name, line, column) constants.
    fn location(&mut self, at: At, op: OpId) -> [Value; 3] {
        let loc = self.m.op(op).loc;
        let file = self
            .m
            .files
            .get(loc.file as usize)
            .cloned()
            .unwrap_or_else(|| "<unknown>".into());
        [
            self.cstr(at, file.as_bytes()),
            self.konst(at, loc.line as i128, Type::u32()),
            self.konst(at, loc.col as i128, Type::u32()),
        ]
    }

    // ---- maps (§11.2, §11.4) ----

    /// `m[k]`: the entry is copied into a slot; the result is the slot's address, or null when
    /// absent. Each write through it is followed by `update(k, copy, BPF_EXIST)`.
    fn map_lookup(&mut self, op: OpId, writes: &[EntryWrite]) -> Result<(), String> {
        let at = At::Before(op);
        let map = sym_attr(self.m, op, "map")?;
        let entry_ty = self.m.value_type(self.m.op(op).results[0]).clone();
        let value_ty = entry_ty
            .pointee()
            .cloned()
            .ok_or("map_lookup must yield a pointer")?;
        let key = self.spill(at, self.m.op(op).operands[0]);
        let value = self.slot(value_ty);
        let name = self.map_ref(at, &map);
        let found = self
            .rt(at, "ksrt_map_lookup", &[name, key, value], Some(Type::Bool))
            .unwrap();
        let null = self.konst(at, 0, entry_ty);
        let entry = self.b(at).core_select(found, value, null);
        self.m.replace_op(op, &[entry]);
        for &w in writes {
            self.write_back(w, &map, key, value);
        }
        Ok(())
    }

    /// Inserts `ksrt_map_update(map, key, value, BPF_EXIST)` right after the write `w` (when
    /// it may write elsewhere, only if it wrote into `value`, the entry's copy).
    fn write_back(&mut self, w: EntryWrite, map: &str, key: Value, value: Value) {
        let (block, index) = self.m.position(w.op).expect("the write is in a block");
        let at = match self.m.block(block).ops.get(index + 1) {
            Some(&next) => At::Before(next),
            None => At::End(block, self.m.op(w.op).loc),
        };
        if !w.maybe_elsewhere {
            return self.update_entry(at, w.op, map, key, value);
        }
        let target = written_address(self.m, w.op);
        let entry_ty = self
            .m
            .value_type(value)
            .pointee()
            .cloned()
            .unwrap_or(Type::u8());
        let size = size_of(self.m, &entry_ty);
        let bytes = Type::ptr(Type::u8());
        let mut b = self.b(at);
        let start = b.core_cast(value, bytes.clone());
        let written = b.core_cast(target, bytes);
        let length = b.core_const(i128::from(size), Type::i64());
        let end = b.core_ptr_add(start, length);
        let from_start = b.core_cmp(written, start, CmpPred::Ge);
        let before_end = b.core_cmp(written, end, CmpPred::Lt);
        let inside = b.core_and(from_start, before_end);
        self.guard(at, inside, |lw, at| {
            lw.update_entry(at, w.op, map, key, value)
        });
    }

    fn update_entry(&mut self, at: At, w: OpId, map: &str, key: Value, value: Value) {
        let name = self.map_ref(at, map);
        let flags = self.konst(at, BPF_EXIST, Type::u64());
        let status = self
            .rt(
                at,
                "ksrt_map_update",
                &[name, key, value, flags],
                Some(Type::i64()),
            )
            .expect("ksrt_map_update yields a status");
        self.check_write(at, w, map, status);
    }

    /// A failed userspace map write is a runtime error at `op`'s line (§11.4), never a lost value.
    fn check_write(&mut self, at: At, op: OpId, map: &str, status: Value) {
        let name = self.map_ref(at, map);
        let [file, line, col] = self.location(at, op);
        self.rt(
            at,
            "ksrt_map_write_check",
            &[status, name, file, line, col],
            None,
        );
    }

    /// update, delete, add, push, pop/peek, contains: one runtime call on slots.
    fn map_op(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        let map = sym_attr(self.m, op, "map")?;
        let operands = self.m.op(op).operands.clone();
        let opcode = self.m.op(op).opcode;
        let name = self.map_ref(at, &map);
        match opcode {
            Opcode::KsMapUpdate => {
                let (key, value) = (self.spill(at, operands[0]), self.spill(at, operands[1]));
                let flags = self.konst(at, KsMapUpdate(op).flags(self.m), Type::u64());
                let status = self.rt(
                    at,
                    "ksrt_map_update",
                    &[name, key, value, flags],
                    Some(Type::i64()),
                );
                let status = status.ok_or("ksrt_map_update yields a status")?;
                self.check_write(at, op, &map, status);
                self.m.replace_op(op, &[status]);
                Ok(())
            }
            Opcode::KsMapDelete => {
                let key = self.spill(at, operands[0]);
                self.replace_by_rt(op, "ksrt_map_delete", &[name, key])
            }
            Opcode::KsMapAdd => {
                let key = self.spill(at, operands[0]);
                let delta = self.convert(at, operands[1], Type::u64());
                let status = self
                    .rt(at, "ksrt_map_add", &[name, key, delta], Some(Type::i64()))
                    .ok_or("ksrt_map_add yields a status")?;
                self.check_write(at, op, &map, status);
                self.m.replace_op(op, &[]);
                Ok(())
            }
            Opcode::KsMapPush | Opcode::KsMapContains => {
                let value = self.spill(at, operands[0]);
                let callee = if opcode == Opcode::KsMapPush {
                    "ksrt_map_push"
                } else {
                    "ksrt_map_contains"
                };
                self.replace_by_rt(op, callee, &[name, value])
            }
            Opcode::KsMapPop => {
                let value_ty = self.m.value_type(self.m.op(op).results[0]).clone();
                let slot = self.slot(value_ty.clone());
                let peek = self.konst(at, KsMapPop(op).peek(self.m) as i128, Type::Bool);
                let present = self
                    .rt(at, "ksrt_map_pop", &[name, slot, peek], Some(Type::Bool))
                    .unwrap();
                let value = self.b(at).core_load(slot, value_ty);
                self.m.replace_op(op, &[value, present]);
                Ok(())
            }
            _ => unreachable!("not a map operation"),
        }
    }

    /// `for (k, v in m) body` (§11.8) becomes
    ///
    /// ```text
    /// more = next_key(m, null, cur)
    /// while (more) { found = lookup(m, cur, val); k = *cur; more = next_key(m, cur, cur)
    ///                if (!found) continue; v = *val; body }
    /// ```
    ///
    /// The next key is fetched before the body runs, so the body may delete the current entry
    /// and `continue` needs no extra step.
    fn map_foreach(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        let loc = self.m.op(op).loc;
        let map = sym_attr(self.m, op, "map")?;
        let decl = self
            .m
            .lookup_symbol(&map)
            .and_then(|d| KsMap::of(self.m, d))
            .ok_or_else(|| format!("@{map} is not a map"))?;
        let key_ty = decl
            .key(self.m)
            .cloned()
            .ok_or_else(|| format!("@{map} has no keys to iterate"))?;
        let value_ty = decl.value(self.m).clone();
        let old_body = self.m.region(self.m.op(op).regions[0]).blocks[0];
        let (cur, val, more) = (
            self.slot(key_ty.clone()),
            self.slot(value_ty.clone()),
            self.slot(Type::Bool),
        );

        let name = self.map_ref(at, &map);
        let null = self.konst(at, 0, Type::ptr(key_ty.clone()));
        let first = self
            .rt(
                at,
                "ksrt_map_next_key",
                &[name, null, cur],
                Some(Type::Bool),
            )
            .unwrap();
        self.b(at).core_store(first, more);
        let w = self.b(at).ks_while();
        let [cond, body] = [0, 1].map(|i| self.m.region(self.m.op(w).regions[i]).blocks[0]);

        let at_cond = At::End(cond, loc);
        let again = self.b(at_cond).core_load(more, Type::Bool);
        self.b(at_cond).ks_yield(&[again]);

        let at_body = At::End(body, loc);
        let name = self.map_ref(at_body, &map);
        let found = self
            .rt(
                at_body,
                "ksrt_map_lookup",
                &[name, cur, val],
                Some(Type::Bool),
            )
            .unwrap();
        let key = self.b(at_body).core_load(cur, key_ty);
        let next = self
            .rt(
                at_body,
                "ksrt_map_next_key",
                &[name, cur, cur],
                Some(Type::Bool),
            )
            .unwrap();
        self.b(at_body).core_store(next, more);
        let vanished = self.b(at_body).core_not(found);
        self.guard(at_body, vanished, |lw, at| {
            lw.b(at).ks_continue();
        });
        let value = self.b(at_body).core_load(val, value_ty);

        // The old body follows, with its block arguments (key, value) replaced by the copies.
        let moved = self.m.block(old_body).ops.clone();
        self.m.detach_ops(&moved);
        for o in moved {
            self.m.place_op(o, body, None);
        }
        let top = self.func;
        for (arg, new) in self
            .m
            .block(old_body)
            .args
            .clone()
            .into_iter()
            .zip([key, value])
        {
            self.m.replace_uses_in(top, arg, new);
        }
        self.m.replace_op(op, &[]);
        Ok(())
    }

    // ---- ring buffers (§11.5) ----

    fn ring_buffer(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        match self.m.op(op).opcode {
            Opcode::KsRbOnEvent => {
                let (map, handler) = (
                    sym_attr(self.m, op, "map")?,
                    sym_attr(self.m, op, "handler")?,
                );
                let fn_ty = self
                    .m
                    .lookup_symbol(&handler)
                    .and_then(|f| KsFunc::of(self.m, f))
                    .map(|f| f.ty(self.m).clone())
                    .ok_or_else(|| format!("handler @{handler} is not a function"))?;
                let name = self.map_ref(at, &map);
                let h = self.b(at).core_func_addr(&handler, fn_ty);
                self.replace_by_rt(op, "ksrt_rb_on_event", &[name, h])
            }
            Opcode::KsRbPoll => {
                let map = sym_attr(self.m, op, "map")?;
                let name = self.map_ref(at, &map);
                let timeout = self.convert(at, self.m.op(op).operands[0], Type::u32());
                self.replace_by_rt(op, "ksrt_rb_poll", &[name, timeout])
            }
            _ => {
                // dispatch(rb, ...): the names in an array.
                let Some(Attr::List(maps)) = self.m.attr(op, "maps").cloned() else {
                    return Err("dispatch needs a list of maps".into());
                };
                let array = self.slot(Type::Array(cstr_ty().into(), maps.len() as u32));
                for (i, map) in maps.iter().enumerate() {
                    let Attr::Sym(map) = map else {
                        return Err("dispatch takes maps".into());
                    };
                    let name = self.map_ref(at, map);
                    let index = self.konst(at, i as i128, Type::u32());
                    let elem = self
                        .b(at)
                        .core_elem_addr(array, index, Type::ptr(cstr_ty()));
                    self.b(at).core_store(name, elem);
                }
                let n = self.konst(at, maps.len() as i128, Type::u32());
                self.replace_by_rt(op, "ksrt_dispatch", &[array, n])
            }
        }
    }

    // ---- programs and the lifecycle (§15.3, §16.1) ----

    fn lifecycle(&mut self, op: OpId) -> Result<(), String> {
        use Opcode::*;
        let at = At::Before(op);
        let operands = self.m.op(op).operands.clone();
        match self.m.op(op).opcode {
            KsLoadProg => {
                let prog = sym_attr(self.m, op, "prog")?;
                let name = self.b(at).host_prog_ref(&prog, cstr_ty());
                self.replace_by_rt(op, "ksrt_prog_load", &[name])
            }
            KsAttach => {
                let target = self.by_pointer(at, operands[1]);
                let flags = self.convert(at, operands[2], Type::u32());
                self.replace_by_rt(op, "ksrt_prog_attach", &[operands[0], target, flags])
            }
            KsAttachPerf => {
                let flags = self.convert(at, operands[2], Type::u32());
                self.replace_by_rt(op, "ksrt_perf_attach", &[operands[0], operands[1], flags])
            }
            KsDetach => match self.m.value_type(operands[0]) {
                Type::ProgHandle => self.replace_by_rt(op, "ksrt_prog_detach", &operands),
                Type::PerfHandle => self.replace_by_rt(op, "ksrt_perf_detach", &operands),
                t => Err(format!("cannot detach a {t}")),
            },
            KsPerfRead => self.replace_by_rt(op, "ksrt_perf_read", &operands),
            KsRegister => {
                let imp = sym_attr(self.m, op, "impl")?;
                let name = self.cstr(at, imp.as_bytes());
                self.replace_by_rt(op, "ksrt_register", &[name])
            }
            KsDaemon => self.replace_by_rt(op, "ksrt_daemon", &[]),
            KsSleep => {
                let ms = self.convert(at, operands[0], Type::u32());
                self.replace_by_rt(op, "ksrt_sleep_ms", &[ms])
            }
            KsExec => {
                let script = self.by_pointer(at, operands[0]);
                let source = crate::ir::views::KsExec(op)
                    .module(self.m)
                    .map(<[u8]>::to_vec);
                let source = source
                    .unwrap_or_else(|| crate::codegen::python::module_source(self.m).into_bytes());
                let module = self.cstr(at, &source);
                self.replace_by_rt(op, "ksrt_exec", &[script, module])
            }
            _ => unreachable!("not a lifecycle builtin"),
        }
    }

    // ---- Python (§15.8) ----

    /// `ks.py_call` becomes `ksrt_py_call(file, line, col, module, path, source, func, sig,
    /// pointers…)`, which yields the status (0 or a throw's code).
    fn python_call(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        let c = crate::ir::views::KsPyCall(op);
        let strings: Vec<Vec<u8>> = [
            c.module(self.m),
            c.path(self.m),
            c.source(self.m),
            c.func(self.m),
            c.sig(self.m),
        ]
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
        let mut args = self.location(at, op).to_vec();
        for s in &strings {
            let v = self.cstr(at, s);
            args.push(v);
        }
        args.extend(self.m.op(op).operands.clone());
        self.replace_by_rt(op, "ksrt_py_call", &args)
    }

    // ---- test mode (§17) ----

    /// `test(prog, input [, len])`: the length is the given one (checked against the input's
    /// size), the content length of a string, or the whole input.
    fn test_run(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        let t = KsTestRun(op);
        let (data, len) = (t.data(self.m), t.len(self.m).first().copied());
        let (capacity, copy_back, string) =
            (t.capacity(self.m), t.copy_back(self.m), t.string(self.m));
        let prog = sym_attr(self.m, op, "prog")?;
        let len = match len {
            Some(len) => {
                let wide = self.convert(at, len, Type::u64());
                let cap = self.konst(at, capacity, Type::u64());
                let too_long = self.b(at).core_cmp(wide, cap, CmpPred::Gt);
                self.guard(at, too_long, |lw, at| {
                    lw.b(at).host_runtime_error(format!(
                        "test(): the length exceeds the input's {capacity} bytes"
                    ));
                });
                self.convert(at, len, Type::u32())
            }
            None if string => {
                let cap = self.konst(at, capacity, Type::u64());
                let n = self
                    .libc(at, "strnlen", &[data, cap], Some(Type::u64()))
                    .unwrap();
                self.convert(at, n, Type::u32())
            }
            None => self.konst(at, capacity, Type::u32()),
        };
        let copy = self.konst(at, if copy_back { capacity } else { 0 }, Type::u32());
        let name = self.b(at).host_prog_ref(&prog, cstr_ty());
        self.replace_by_rt(op, "ksrt_test_run", &[name, data, len, copy])
    }

    /// `assert(cond [, msg])`: `if (!cond) ksrt_assert_fail(file, line, col, msg)`.
    fn assert(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        let message = KsAssert(op).message(self.m).map(<[u8]>::to_vec);
        let cond = self.m.op(op).operands[0];
        let failed = self.b(at).core_not(cond);
        self.guard(at, failed, |lw, at| {
            let [file, line, col] = lw.location(at, op);
            let message = match &message {
                Some(s) => lw.cstr(at, s),
                None => lw.konst(at, 0, cstr_ty()),
            };
            lw.rt(at, "ksrt_assert_fail", &[file, line, col, message], None);
        });
        self.m.replace_op(op, &[]);
        Ok(())
    }

    // ---- print (§15.5) ----

    /// `print(fmt, args...)` becomes `ksrt_print(cfmt, cargs...)` where `cfmt` is a C format whose
    /// conversions match the passed arguments exactly: the width comes from each argument's type
    /// (8-32-bit integers extended to 32 bits, 64-bit ones with `ll`), strings go by pointer with a precision
    /// bounded by their capacity, mismatched conversions use the argument's natural one, and
    /// conversions without an argument (or with an aggregate one) print nothing.
    fn print(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        let format = KsPrint(op).format(self.m).to_vec();
        let mut args = self.m.op(op).operands.clone().into_iter();
        let (mut text, mut pass) = (Vec::new(), Vec::new());
        let mut i = 0;
        while i < format.len() {
            let c = format[i];
            i += 1;
            if c != b'%' {
                text.push(c);
                continue;
            }
            // Flags, width and precision are kept; length modifiers are ignored (§15.5).
            let start = i;
            while i < format.len() && matches!(format[i], b'l' | b'h' | b'0'..=b'9' | b'-' | b'.') {
                i += 1;
            }
            let spec: Vec<u8> = format[start..i]
                .iter()
                .copied()
                .filter(|c| !matches!(c, b'l' | b'h'))
                .collect();
            match format.get(i) {
                None | Some(b'%') => {
                    text.extend_from_slice(b"%%");
                    i += 1;
                }
                Some(&conv) => {
                    i += 1;
                    if let Some(arg) = args.next() {
                        if let Some((conversion, value)) = self.print_arg(at, conv, &spec, arg) {
                            text.extend(conversion);
                            pass.push(value);
                        }
                    }
                }
            }
        }
        let format = self.cstr(at, &text);
        pass.insert(0, format);
        self.replace_by_rt(op, "ksrt_print", &pass)
    }

    /// One conversion: its C text and the value to pass, or None when it prints nothing.
    fn print_arg(&mut self, at: At, conv: u8, spec: &[u8], arg: Value) -> Option<(Vec<u8>, Value)> {
        let ty = self.m.value_type(arg).clone();
        let width: Vec<u8> = spec.iter().copied().take_while(|&c| c != b'.').collect();
        let precision: Option<u64> = spec.iter().position(|&c| c == b'.').map(|p| {
            std::str::from_utf8(&spec[p + 1..])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        });
        let text = |rest: &[u8]| [b"%".as_slice(), rest].concat();
        match &ty {
            Type::Int(_) | Type::Bool => {
                let it = ty.int().unwrap_or(IntTy::U8);
                let conv = match conv {
                    b'd' | b'i' | b'u' | b'x' | b'X' | b'c' => conv,
                    _ if it.signed() => b'd',
                    _ => b'u',
                };
                if conv == b'c' {
                    let v = self.convert(at, arg, Type::i32());
                    return Some((text(&[&width[..], b"c"].concat()), v));
                }
                // Extended by its own type to 32 or 64 bits (as C promotes), read with the
                // conversion's signedness: `%d` of a u8 200 prints 200, `%x` of an i8 -1 ffffffff.
                let signed = matches!(conv, b'd' | b'i');
                let wide = it.bits() > 32;
                let v = self.convert(
                    at,
                    arg,
                    Type::Int(IntTy::of(if wide { 64 } else { 32 }, signed)),
                );
                let length: &[u8] = if wide { b"ll" } else { b"" };
                Some((text(&[spec, length, &[conv]].concat()), v))
            }
            Type::Str(_) | Type::Array(..) => {
                let size = size_of(self.m, &ty);
                let p = self.spill(at, arg);
                let precision = precision.map_or(size, |p| p.min(size));
                Some((
                    text(&[&width[..], format!(".{precision}s").as_bytes()].concat()),
                    p,
                ))
            }
            Type::Ptr(_) | Type::Func(_) | Type::ProgHandle | Type::PerfHandle => {
                Some((text(&[&width[..], b"p"].concat()), arg))
            }
            Type::Struct(_) | Type::Void => None,
        }
    }

    // ---- globals and configs (§12) ----

    fn config_addr(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        let config = sym_attr(self.m, op, "config")?;
        if self.process_unit {
            // The config became a process global of the same name (`configs_to_process_globals`).
            let ty = self.m.value_type(self.m.op(op).results[0]).clone();
            let addr = self.b(at).ks_global_addr(&config, ty);
            self.m.replace_op(op, &[addr]);
            return Ok(());
        }
        let name = self.cstr(at, config.as_bytes());
        self.replace_by_rt(op, "ksrt_config_addr", &[name])
    }

    /// Shared and pinned globals live in the BPF object's mmapped maps; process globals are
    /// plain memory and stay.
    fn global_addr(&mut self, op: OpId) -> Result<(), String> {
        let global = sym_attr(self.m, op, "global")?;
        let decl = self
            .m
            .lookup_symbol(&global)
            .and_then(|g| KsGlobal::of(self.m, g))
            .ok_or_else(|| format!("@{global} is not a global"))?;
        match decl.storage(self.m) {
            Storage::Process => Ok(()),
            Storage::Shared | Storage::Pinned => {
                let name = self.cstr(At::Before(op), global.as_bytes());
                self.replace_by_rt(op, "ksrt_global_addr", &[name])
            }
            Storage::Local => Err(format!("userspace cannot use the local global @{global}")),
        }
    }

    // ---- checked indexing (§6.5, §6.6, §13.4) ----

    fn index_addr(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        let (base, index) = (self.m.op(op).operands[0], self.m.op(op).operands[1]);
        let addr_ty = self.m.value_type(self.m.op(op).results[0]).clone();
        let (bound, what) = match self.m.value_type(base).pointee() {
            Some(Type::Array(_, n)) => (*n, format!("an array of {n} elements")),
            Some(Type::Str(n)) => (*n, format!("a str({n})")),
            _ => return Err("index_addr needs an array or string base".into()),
        };
        // Unsigned comparison: a negative index is huge once converted.
        let wide = self.convert(at, index, Type::u64());
        let n = self.konst(at, bound as i128, Type::u64());
        let out_of_range = self.b(at).core_cmp(wide, n, CmpPred::Ge);
        self.guard(at, out_of_range, |lw, at| {
            lw.b(at)
                .host_runtime_error(format!("index out of range for {what}"));
        });
        let addr = self.b(at).core_elem_addr(base, index, addr_ty);
        self.m.replace_op(op, &[addr]);
        Ok(())
    }

    /// A dereference of a pointer that may be null (§6.8) aborts when it is.
    fn nonnull(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        let p = self.m.op(op).operands[0];
        let null = self.konst(at, 0, self.m.value_type(p).clone());
        let is_null = self.b(at).core_cmp(p, null, CmpPred::Eq);
        self.guard(at, is_null, |lw, at| {
            lw.b(at)
                .host_runtime_error("null pointer dereference".to_string());
        });
        self.m.replace_op(op, &[p]);
        Ok(())
    }

    // ---- objects (§13.6) ----

    fn memory(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        if self.m.op(op).opcode == Opcode::KsDelete {
            // free(NULL) is a no-op, as `delete null` must be.
            self.libc(at, "free", &[self.m.op(op).operands[0]], None);
            self.m.replace_op(op, &[]);
            return Ok(());
        }
        let size = size_of(self.m, KsNew(op).ty(self.m));
        let addr_ty = self.m.value_type(self.m.op(op).results[0]).clone();
        let (one, size) = (
            self.konst(at, 1, Type::u64()),
            self.konst(at, size as i128, Type::u64()),
        );
        let p = self
            .libc(at, "calloc", &[one, size], Some(addr_ty))
            .unwrap();
        self.m.replace_op(op, &[p]);
        Ok(())
    }

    // ---- strings and aggregates (§6.5, §6.7) ----

    /// String operations work on stack copies: `ksrt_str_eq/concat/copy(ptr, capacity, ...)`.
    fn string(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        let operands = self.m.op(op).operands.clone();
        let mut args = Vec::new();
        for v in operands {
            let size = size_of(self.m, self.m.value_type(v));
            args.push(self.spill(at, v));
            args.push(self.konst(at, size as i128, Type::u32()));
        }
        if self.m.op(op).opcode == Opcode::KsStrEq {
            return self.replace_by_rt(op, "ksrt_str_eq", &args);
        }
        let result_ty = self.m.value_type(self.m.op(op).results[0]).clone();
        let size = size_of(self.m, &result_ty);
        let dst = self.slot(result_ty.clone());
        let dst_size = self.konst(at, size as i128, Type::u32());
        let callee = if self.m.op(op).opcode == Opcode::KsStrConcat {
            "ksrt_str_concat"
        } else {
            "ksrt_str_copy"
        };
        self.rt(at, callee, &[&[dst, dst_size][..], &args].concat(), None);
        let result = self.b(at).core_load(dst, result_ty);
        self.m.replace_op(op, &[result]);
        Ok(())
    }

    fn agg_eq(&mut self, op: OpId) -> Result<(), String> {
        let at = At::Before(op);
        let (l, r) = (self.m.op(op).operands[0], self.m.op(op).operands[1]);
        let ty = self.m.value_type(l).clone();
        let (a, b) = (self.spill(at, l), self.spill(at, r));
        let eq = self.equal(at, a, b, &ty);
        self.m.replace_op(op, &[eq]);
        Ok(())
    }

    /// Whether the values of type `ty` at `a` and `b` are equal: structs field by field (so
    /// padding is ignored), strings by content, padding-free arrays with memcmp, other arrays
    /// element by element.
    fn equal(&mut self, at: At, a: Value, b: Value, ty: &Type) -> Value {
        match ty {
            Type::Str(n) => {
                let n = self.konst(at, *n as i128, Type::u32());
                self.rt(at, "ksrt_str_eq", &[a, n, b, n], Some(Type::Bool))
                    .unwrap()
            }
            Type::Struct(s) => {
                let mut all: Option<Value> = None;
                for (field, field_ty) in struct_fields(self.m, s).to_vec() {
                    let fa = self.b(at).core_field_addr(
                        a,
                        field.as_bytes().to_vec(),
                        Type::ptr(field_ty.clone()),
                    );
                    let fb = self.b(at).core_field_addr(
                        b,
                        field.as_bytes().to_vec(),
                        Type::ptr(field_ty.clone()),
                    );
                    let eq = self.equal(at, fa, fb, &field_ty);
                    all = Some(match all {
                        None => eq,
                        Some(acc) => self.b(at).core_and(acc, eq),
                    });
                }
                all.unwrap_or_else(|| self.konst(at, 1, Type::Bool))
            }
            Type::Array(elem, _) if bytewise(self.m, elem) => {
                let size = self.konst(at, size_of(self.m, ty) as i128, Type::u64());
                let diff = self
                    .libc(at, "memcmp", &[a, b, size], Some(Type::i32()))
                    .unwrap();
                let zero = self.konst(at, 0, Type::i32());
                self.b(at).core_cmp(diff, zero, CmpPred::Eq)
            }
            Type::Array(elem, n) => {
                let all = self.slot(Type::Bool);
                let yes = self.konst(at, 1, Type::Bool);
                self.b(at).core_store(yes, all);
                let (lo, hi) = (
                    self.konst(at, 0, Type::u32()),
                    self.konst(at, *n as i128, Type::u32()),
                );
                let loc = self.loc_of(at);
                let for_op = self.b(at).ks_for(lo, hi, None, None, None);
                let body = self.m.region(self.m.op(for_op).regions[0]).blocks[0];
                let i = self.m.add_block_arg(body, Type::u32());
                let inner = At::End(body, loc);
                let ea = self
                    .b(inner)
                    .core_elem_addr(a, i, Type::ptr((**elem).clone()));
                let eb = self
                    .b(inner)
                    .core_elem_addr(b, i, Type::ptr((**elem).clone()));
                let eq = self.equal(inner, ea, eb, elem);
                let acc = self.b(inner).core_load(all, Type::Bool);
                let acc = self.b(inner).core_and(acc, eq);
                self.b(inner).core_store(acc, all);
                self.b(at).core_load(all, Type::Bool)
            }
            _ => {
                let (x, y) = (
                    self.b(at).core_load(a, ty.clone()),
                    self.b(at).core_load(b, ty.clone()),
                );
                self.b(at).core_cmp(x, y, CmpPred::Eq)
            }
        }
    }
}
