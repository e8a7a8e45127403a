//! `lower-bpf`: rewrites the whole-language `ks` ops of kernel functions into the `bpf` dialect
//! (helper calls by id, map objects, context loads by offset, CO-RE field addresses, dynptr-based
//! ring-buffer records and `new` objects released on every path). Runs on structured IR, before `flatten`: the
//! expansions may use `ks.if`, `ks.for`, `ks.switch`, `ks.defer` and `ks.abort`, whose exit
//! semantics `flatten` implements.
//!
//! Helpers take pointers, so values passed by value are first stored in stack slots. New slots are
//! gathered at the top of the function's entry block (they dominate every use and are allocated
//! once, not per loop iteration). Slots whose content only lives until the helper call that reads
//! it are shared per function, role and type to keep within the 512-byte BPF stack.

mod objects;
mod ringbuf;
mod strings;

use super::{PassErrors, PassResult};
use crate::ir::layout::{self, size_of, struct_decl};
use crate::ir::views::*;
use crate::ir::{Attr, BlockId, Builder, Module, OpId, Opcode, Type, Value, ValueDef};
use crate::vocab::{CmpPred, MapKind, ProgKind, Storage, StructOrigin, Target};
use std::collections::{HashMap, HashSet};

/// A BPF helper: its number in uapi/linux/bpf.h and its name.
#[derive(Clone, Copy)]
struct Helper(i128, &'static str);

const MAP_LOOKUP: Helper = Helper(1, "bpf_map_lookup_elem");
const MAP_UPDATE: Helper = Helper(2, "bpf_map_update_elem");
const MAP_DELETE: Helper = Helper(3, "bpf_map_delete_elem");
const PERF_EVENT_OUTPUT: Helper = Helper(25, "bpf_perf_event_output");
const REDIRECT_MAP: Helper = Helper(51, "bpf_redirect_map");
const MAP_PUSH: Helper = Helper(87, "bpf_map_push_elem");
const MAP_POP: Helper = Helper(88, "bpf_map_pop_elem");
const MAP_PEEK: Helper = Helper(89, "bpf_map_peek_elem");
const PROBE_READ_KERNEL: Helper = Helper(113, "bpf_probe_read_kernel");
const PROBE_READ_USER: Helper = Helper(112, "bpf_probe_read_user");
const RINGBUF_OUTPUT: Helper = Helper(130, "bpf_ringbuf_output");
const RINGBUF_RESERVE: Helper = Helper(131, "bpf_ringbuf_reserve");
const RINGBUF_SUBMIT: Helper = Helper(132, "bpf_ringbuf_submit");
const RINGBUF_DISCARD: Helper = Helper(133, "bpf_ringbuf_discard");

const BPF_NOEXIST: i128 = 1;
const BPF_F_CURRENT_CPU: i128 = 0xffff_ffff;

/// The one-entry array map holding every pinned global (§12.1), and its value struct (a struct
/// cannot share the map's symbol).
pub const PINNED_MAP: &str = "__pinned_globals";
pub const PINNED_STRUCT: &str = "__pinned_globals_t";

const OUT_OF_BOUNDS: &str = "index out of bounds";

pub fn run(m: &mut Module) -> PassResult {
    let funcs: Vec<OpId> = m
        .funcs()
        .filter(|&f| KsFunc(f).target(m) == Target::Bpf)
        .collect();
    let pinned = declare_pinned_globals(m)?;
    declare_config_maps(m);
    let mut errors = PassErrors::new();
    for f in funcs {
        lower_function(m, f, &pinned, &mut errors);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn lower_function(m: &mut Module, func: OpId, pinned: &HashSet<String>, errors: &mut PassErrors) {
    strings::simplify(m, func);
    let ops = m.collect_nested(func, |o| match o.opcode {
        Opcode::KsGlobalAddr => matches!(&o.attrs[0], Some(Attr::Sym(g)) if pinned.contains(g)),
        op => rule(op).is_some(),
    });
    lower_ops(m, func, ops, errors);
    fold_core_elements(m, func);
}

/// Kernel arrays reached through CO-RE are read at constant offsets only. The verifier accepts a
/// context access only at a constant offset from the unmodified context register, and a BTF
/// pointer only at a constant offset too: `ctx->args[2]` becomes one relocation of element 2
/// (not a field relocation plus a pointer add), and a read at a run-time index switches over the
/// elements, each arm reading one at its constant offset (the index was checked before).
fn fold_core_elements(m: &mut Module, func: OpId) {
    /// The element address a read goes through, when it indexes a CO-RE array of `n` elements.
    fn core_element(m: &Module, addr: Value) -> Option<(OpId, Value, Value, u32)> {
        let ValueDef::Result(op, 0) = m.value(addr).def else {
            return None;
        };
        let d = m.op(op);
        if d.opcode != Opcode::CoreElemAddr {
            return None;
        }
        let (base, index) = (d.operands[0], d.operands[1]);
        let ValueDef::Result(def, 0) = m.value(base).def else {
            return None;
        };
        let Some(&Type::Array(_, n)) = m.value_type(base).pointee() else {
            return None;
        };
        matches!(
            m.op(def).opcode,
            Opcode::BpfCoreFieldAddr | Opcode::BpfCoreElemAddr
        )
        .then_some((op, base, index, n))
    }
    for load in m.collect_nested(func, |o| o.opcode == Opcode::CoreLoad) {
        let Some((elem, base, index, n)) = core_element(m, m.op(load).operands[0]) else {
            continue;
        };
        if const_value(m, index).is_some() {
            continue;
        }
        let ty = m.value_type(m.op(load).results[0]).clone();
        let addr_ty = m.value_type(m.op(elem).results[0]).clone();
        let sw = m.builder_before(load).ks_switch(
            index,
            (0..n as i128).map(Attr::Int).collect(),
            std::slice::from_ref(&ty),
            n as usize + 1,
        );
        for k in 0..n as usize {
            let arm = m.builder_before(load).entry(sw, k);
            let mut b = Builder::new(m, arm);
            let addr = b.bpf_core_elem_addr(base, k as i128, addr_ty.clone());
            let v = b.core_load(addr, ty.clone());
            b.bpf_barrier();
            b.ks_yield(&[v]);
        }
        let default = m.builder_before(load).entry(sw, n as usize);
        Builder::new(m, default).ks_abort(OUT_OF_BOUNDS);
        let result = m.op(sw).results[0];
        m.replace_op(load, &[result]);
        let unused = m.op(elem).results[0];
        m.erase_if_unused(unused);
    }
    for op in m.collect_nested(func, |o| o.opcode == Opcode::CoreElemAddr) {
        let Some((_, base, index, _)) = core_element(m, m.op(op).results[0]) else {
            continue;
        };
        let Some(k) = const_value(m, index) else {
            continue;
        };
        let ty = m.value_type(m.op(op).results[0]).clone();
        let addr = m.builder_before(op).bpf_core_elem_addr(base, k, ty);
        m.replace_op(op, &[addr]);
    }
}

/// Module code indexes arrays with the same checks as kernel code; their aborts return 0 from
/// the kfunc (§13.4).
pub fn lower_index_checks(m: &mut Module, func: OpId, errors: &mut PassErrors) {
    let ops = m.collect_nested(func, |o| o.opcode == Opcode::KsIndexAddr);
    lower_ops(m, func, ops, errors);
}

fn lower_ops(m: &mut Module, func: OpId, ops: Vec<OpId>, errors: &mut PassErrors) {
    let records = ringbuf::Records::analyse(m, func);
    let mut cx = FnCx {
        entry: m.func_entry(func),
        locals: m.new_block(None),
        scratch: HashMap::new(),
        fallbacks: HashMap::new(),
        zero_key: None,
        records,
        owned_by_var: HashMap::new(),
        entries: HashMap::new(),
        current: None,
        lookups: Vec::new(),
        key_spills: Vec::new(),
        plain_slots: plain_slots(m, func),
        tracepoint_contexts: tracepoint_contexts(m),
        bpf: KsFunc(func).target(m) == Target::Bpf,
    };
    for op in ops {
        cx.current = Some(op);
        let lower = rule(m.op(op).opcode).expect("collected ops have a rule");
        match lower(
            &mut Emit {
                b: m.builder_before(op),
                cx: &mut cx,
            },
            op,
        ) {
            Ok(values) => m.replace_op(op, &values),
            Err(msg) => errors.push(super::PassError::internal(Some(op), msg)),
        }
    }
    cx.place_locals(m);
}

/// Emits the replacement of an op before it and returns the values that stand for its results.
type Rule = fn(&mut Emit, OpId) -> Lowered;
type Lowered = Result<Vec<Value>, String>;

const RULES: &[(Opcode, Rule)] = &[
    (Opcode::KsMapLookup, map_lookup),
    (Opcode::KsMapUpdate, map_update),
    (Opcode::KsMapDelete, map_delete),
    (Opcode::KsMapAdd, map_add),
    (Opcode::KsMapPush, map_push),
    (Opcode::KsMapPop, map_pop),
    (Opcode::KsMapContains, map_contains),
    (Opcode::KsRedirectMap, redirect_map),
    (Opcode::KsPerfOutput, perf_output),
    (Opcode::KsRbReserve, ringbuf::reserve),
    (Opcode::KsRbSubmit, ringbuf::release),
    (Opcode::KsRbDiscard, ringbuf::release),
    (Opcode::KsRbOutput, rb_output),
    (Opcode::KsCtxLoad, ctx_load),
    (Opcode::KsCtxStore, ctx_store),
    (Opcode::KsKfieldAddr, kfield_addr),
    (Opcode::KsProbeRead, probe_read),
    (Opcode::KsCallExtern, call_extern),
    (Opcode::KsPrint, print),
    (Opcode::KsConfigAddr, config_addr),
    // Only for pinned globals (the others stay real globals).
    (Opcode::KsGlobalAddr, pinned_global_addr),
    (Opcode::KsIndexAddr, index_addr),
    (Opcode::KsNew, objects::new),
    (Opcode::KsDelete, objects::delete),
    (Opcode::KsStrEq, strings::str_eq),
    (Opcode::KsStrConcat, strings::str_concat),
    (Opcode::KsStrConvert, strings::str_convert),
    (Opcode::KsAggEq, strings::agg_eq),
];

fn rule(op: Opcode) -> Option<Rule> {
    RULES.iter().find(|(o, _)| *o == op).map(|&(_, r)| r)
}

// ---- per-function state and emission helpers --------------------------------------------------

/// What a shared scratch slot holds; slots of different roles may be live at the same time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Key,
    Value,
    /// A helper's output buffer.
    Out,
    /// A string argument of `print`, by position.
    Arg(usize),
    Lhs,
    Rhs,
    Dst,
    Len,
    Flag,
}

struct FnCx {
    entry: BlockId,
    /// A detached block collecting the new stack slots; they move to the top of `entry` at the end
    /// (inserting them directly would shift the insertion points of builders in the entry block).
    locals: BlockId,
    scratch: HashMap<(Role, Type), Value>,
    /// Zeroed structs standing in for a failed array-map lookup, by type.
    fallbacks: HashMap<Type, Value>,
    /// The key of one-entry array lookups: a slot zeroed at function entry and never written.
    /// (Storing the key just before the lookup costs ~4 ns on x86 when an atomic add follows: the
    /// locked instruction waits for the store to leave the store buffer.)
    zero_key: Option<Value>,
    records: ringbuf::Records,
    /// The owned slot of the allocation stored in each variable slot.
    owned_by_var: HashMap<Value, Value>,
    /// The entry pointer of each one-entry array map (configs, pinned globals) looked up so far:
    /// reused wherever that lookup runs first, since the entry never moves.
    entries: HashMap<String, Value>,
    /// The op being lowered.
    current: Option<OpId>,
    /// Map lookups lowered so far, which a later `m[k] += n` of the same entry may reuse.
    lookups: Vec<Lookup>,
    /// Key stores so far, which a later helper call with the same key may rely on.
    key_spills: Vec<KeySpill>,
    /// Local variable slots used only by plain loads and stores (so a key loaded from one is
    /// the same key until the next store to it).
    plain_slots: HashSet<Value>,
    /// The kernel structs that tracepoint programs take as their context (read with CO-RE, but
    /// only ever at a constant offset from the context register).
    tracepoint_contexts: HashSet<String>,
    /// A kernel function (not module code, which shares the index checks).
    bpf: bool,
}

fn tracepoint_contexts(m: &Module) -> HashSet<String> {
    let programs = m
        .funcs()
        .filter(|&f| KsFunc(f).kind(m) == Some(ProgKind::Tracepoint));
    let context = |f: OpId| match KsFunc(f).ty(m) {
        Type::Func(ft) => ft.params.first().and_then(|p| p.pointee()).cloned(),
        _ => None,
    };
    programs
        .filter_map(context)
        .filter_map(|t| {
            if let Type::Struct(s) = t {
                Some(s.to_string())
            } else {
                None
            }
        })
        .collect()
}

/// A lowered `m[k]` lookup: the map, the key's identity, the helper call and the entry pointer.
struct Lookup {
    map: String,
    key: KeyId,
    call: OpId,
    entry: Value,
}

/// A store of a key into a key slot.
struct KeySpill {
    slot: Value,
    key: KeyId,
    store: OpId,
}

/// What identifies a key across ops: the variable slot it was loaded from, or the value itself.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyId {
    Slot(Value),
    Value(Value),
}

impl FnCx {
    /// Moves the new slots after the function's own slots at the top of the entry block.
    fn place_locals(&self, m: &mut Module) {
        let at = m
            .block(self.entry)
            .ops
            .iter()
            .take_while(|&&o| m.op(o).opcode == Opcode::CoreLocal)
            .count();
        let new = m.block(self.locals).ops.clone();
        m.detach_ops(&new);
        for (i, op) in new.into_iter().enumerate() {
            m.place_op(op, self.entry, Some(at + i));
        }
    }
}

/// A builder at the replaced op plus the function's state.
struct Emit<'a> {
    b: Builder<'a>,
    cx: &'a mut FnCx,
}

impl Emit<'_> {
    fn m(&self) -> &Module {
        self.b.module
    }

    fn ty(&self, v: Value) -> Type {
        self.m().value_type(v).clone()
    }

    fn pointee(&self, v: Value) -> Type {
        self.m()
            .value_type(v)
            .pointee()
            .cloned()
            .unwrap_or(Type::Void)
    }

    fn size(&self, t: &Type) -> Result<u64, String> {
        size_of(self.m(), t).ok_or_else(|| format!("the size of {t} is unknown"))
    }

    /// Runs `f` with the insertion point at index `at` of `block` (None: its end).
    fn emit_at<R>(
        &mut self,
        block: BlockId,
        at: Option<usize>,
        f: impl FnOnce(&mut Emit<'_>) -> R,
    ) -> R {
        let loc = self.b.loc;
        let mut inner = Emit {
            b: Builder {
                module: &mut *self.b.module,
                block,
                at,
                loc,
            },
            cx: &mut *self.cx,
        };
        f(&mut inner)
    }

    /// Runs `f` with the insertion point at the end of `block`.
    fn nested<R>(&mut self, block: BlockId, f: impl FnOnce(&mut Emit<'_>) -> R) -> R {
        self.emit_at(block, None, f)
    }

    /// A fresh zero-initialised stack slot.
    fn slot(&mut self, ty: Type) -> Value {
        self.new_slot(ty, None, None)
    }

    /// A slot whose loads and stores stay exactly as written: release flags and owned pointers,
    /// which the verifier must follow path by path (an optimiser would fold them into tests of
    /// pointers the verifier has already invalidated).
    fn volatile_slot(&mut self, ty: Type) -> Value {
        self.new_slot(ty, Some(true), None)
    }

    fn new_slot(&mut self, ty: Type, volatile: Option<bool>, uninit: Option<bool>) -> Value {
        let mut b = Builder::new(&mut *self.b.module, self.cx.locals);
        b.loc = self.b.loc;
        b.core_local(ty.clone(), None, volatile, uninit, Type::ptr(ty))
    }

    /// The function's shared slot for `role` and `ty`.
    fn scratch(&mut self, role: Role, ty: Type) -> Value {
        if let Some(&s) = self.cx.scratch.get(&(role, ty.clone())) {
            return s;
        }
        // Keys and values are stored right before the helper call that reads them: zeroing
        // them at function entry would be a dead store LLVM cannot remove (the slot escapes).
        let uninit = matches!(role, Role::Key | Role::Value).then_some(true);
        let s = self.new_slot(ty.clone(), None, uninit);
        self.cx.scratch.insert((role, ty), s);
        s
    }

    /// Stores `v` in the scratch slot of its role and returns the slot's address.
    fn spill(&mut self, role: Role, v: Value) -> Value {
        let s = self.scratch(role, self.ty(v));
        self.b.core_store(v, s);
        s
    }

    /// Stores a map key in the key slot of its type, unless the slot already holds it there.
    fn spill_key(&mut self, key: Value) -> Value {
        let slot = self.scratch(Role::Key, self.ty(key));
        let id = key_id(self.m(), &self.cx.plain_slots, key);
        if self
            .cx
            .current
            .is_some_and(|op| key_still_in(self, slot, id, op))
        {
            return slot;
        }
        let store = self.b.core_store(key, slot);
        self.cx.key_spills.push(KeySpill {
            slot,
            key: id,
            store,
        });
        slot
    }

    fn store_zero(&mut self, slot: Value) {
        let z = self.b.core_zero(self.pointee(slot));
        self.b.core_store(z, slot);
    }

    fn store_const(&mut self, value: i128, slot: Value) {
        let c = self.b.core_const(value, self.pointee(slot));
        self.b.core_store(c, slot);
    }

    fn load(&mut self, addr: Value) -> Value {
        let t = self.pointee(addr);
        self.b.core_load(addr, t)
    }

    fn u64(&mut self, v: i128) -> Value {
        self.b.core_const(v, Type::u64())
    }

    fn cast(&mut self, v: Value, to: &Type) -> Value {
        self.b.cast_to(v, to.clone())
    }

    fn helper(&mut self, h: Helper, args: &[Value], ret: Type) -> Value {
        let op = self.b.bpf_helper_call(args, h.0, h.1, &[ret]);
        self.m().op(op).results[0]
    }

    /// `ret == 0` for a helper's `long` result.
    fn succeeded(&mut self, ret: Value) -> Value {
        let z = self.b.core_const(0, self.ty(ret));
        self.b.core_cmp(ret, z, CmpPred::Eq)
    }

    fn non_null(&mut self, p: Value) -> Value {
        let null = self.b.core_const(0, self.ty(p));
        self.b.core_cmp(p, null, CmpPred::Ne)
    }

    fn map_addr(&mut self, map: &str) -> Value {
        self.b.bpf_map_addr(map, Type::ptr(Type::Void))
    }

    fn lookup(&mut self, map: &str, key_slot: Value, entry_ty: Type) -> Value {
        let mp = self.map_addr(map);
        self.helper(MAP_LOOKUP, &[mp, key_slot], entry_ty)
    }

    fn update(&mut self, map: &str, key_slot: Value, value_slot: Value, flags: i128) -> Value {
        let mp = self.map_addr(map);
        let f = self.u64(flags);
        self.helper(MAP_UPDATE, &[mp, key_slot, value_slot, f], Type::i64())
    }

    /// The entry of a one-entry array map (key 0); a failed lookup yields a zeroed stand-in, so
    /// reads give 0 (§12.1, §12.3). Key 0 of a one-entry array always exists: the stand-in only
    /// gives the verifier a non-null pointer, and one per type is shared by the whole function.
    /// It is zeroed on the failure path, not at function entry, where every run would pay for it.
    fn array_entry(&mut self, map: &str, entry_ty: Type) -> Value {
        if let (Some(&known), Some(op)) = (self.cx.entries.get(map), self.cx.current) {
            let def = match self.b.module.value(known).def {
                crate::ir::ValueDef::Result(o, _) => Some(o),
                _ => None,
            };
            if *self.b.module.value_type(known) == entry_ty
                && def.is_some_and(|d| self.b.module.precedes_structurally(d, op))
            {
                return known;
            }
        }
        let key = match self.cx.zero_key {
            Some(k) => k,
            None => {
                let k = self.slot(Type::u32());
                *self.cx.zero_key.insert(k)
            }
        };
        let p = self.lookup(map, key, entry_ty.clone());
        let fallback = match self.cx.fallbacks.get(&entry_ty) {
            Some(&f) => f,
            None => {
                let f = self.new_slot(
                    entry_ty.pointee().cloned().unwrap_or(Type::Void),
                    None,
                    Some(true),
                );
                self.cx.fallbacks.insert(entry_ty.clone(), f);
                f
            }
        };
        let found = self.non_null(p);
        // The entry of a one-entry array map is always there: the miss path is cold.
        let choice = self.b.ks_if(found, Some(true), &[entry_ty]);
        let (hit, miss) = (self.b.entry(choice, 0), self.b.entry(choice, 1));
        self.nested(hit, |e| e.b.ks_yield(&[p]));
        self.nested(miss, |e| {
            e.store_zero(fallback);
            e.b.ks_yield(&[fallback]);
        });
        let entry = self.b.module.op(choice).results[0];
        self.cx.entries.insert(map.to_string(), entry);
        entry
    }

    fn if_else(
        &mut self,
        cond: Value,
        then: impl FnOnce(&mut Emit<'_>),
        els: impl FnOnce(&mut Emit<'_>),
    ) {
        let op = self.b.ks_if(cond, None, &[]);
        let (t, e) = (self.b.entry(op, 0), self.b.entry(op, 1));
        self.nested(t, then);
        self.nested(e, els);
    }

    fn if_then(&mut self, cond: Value, then: impl FnOnce(&mut Emit<'_>)) {
        self.if_else(cond, then, |_| {});
    }

    /// Aborts the program (§13.4) when `cond` holds.
    fn abort_if(&mut self, cond: Value, message: &str) {
        self.if_then(cond, |e| {
            e.b.ks_abort(message);
        });
    }

    fn break_if(&mut self, cond: Value) {
        self.if_then(cond, |e| {
            e.b.ks_break();
        });
    }

    /// A loop with constant bounds `0..n` (the verifier accepts bounded loops); `body` gets the
    /// u32 counter.
    fn for_range(&mut self, n: u64, body: impl FnOnce(&mut Emit<'_>, Value)) {
        let lo = self.b.core_const(0, Type::u32());
        let hi = self.b.core_const(n as i128, Type::u32());
        let op = self.b.ks_for(lo, hi);
        let block = self.b.entry(op, 0);
        let i = self.b.module.add_block_arg(block, Type::u32());
        self.nested(block, |e| body(e, i));
    }
}

/// The module-level `opcode` op declaring `name` (a struct may share its name with a map or a
/// global, so the opcode matters).
fn declaration(m: &Module, opcode: Opcode, name: &str) -> Option<OpId> {
    m.top_ops()
        .iter()
        .copied()
        .find(|&o| m.op(o).opcode == opcode && m.symbol(o) == Some(name))
}

/// The value of a `core.const`, if `v` is one.
fn const_value(m: &Module, v: Value) -> Option<i128> {
    match m.value(v).def {
        ValueDef::Result(op, 0) => CoreConst::of(m, op).map(|c| c.value(m)),
        _ => None,
    }
}

// ---- maps (§11.2) ------------------------------------------------------------------------------

fn map_lookup(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsMapLookup(op);
    let (map, key, ty) = (
        v.map(e.m()).to_string(),
        v.key(e.m()),
        e.ty(v.entry_value(e.m())),
    );
    let k = e.spill_key(key);
    let entry = e.lookup(&map, k, ty);
    if let ValueDef::Result(call, _) = e.m().value(entry).def {
        let key = key_id(e.m(), &e.cx.plain_slots, key);
        e.cx.lookups.push(Lookup {
            map,
            key,
            call,
            entry,
        });
    }
    Ok(vec![entry])
}

/// A variable slot whose address is only loaded from and stored to.
fn plain_slots(m: &Module, func: OpId) -> HashSet<Value> {
    let ops = m.collect_nested(func, |_| true);
    let mut slots: HashSet<Value> = ops
        .iter()
        .filter(|&&o| m.op(o).opcode == Opcode::CoreLocal)
        .map(|&o| m.op(o).results[0])
        .collect();
    for &o in &ops {
        let d = m.op(o);
        for (i, v) in d.operands.iter().enumerate() {
            let plain = (d.opcode == Opcode::CoreLoad && i == 0)
                || (d.opcode == Opcode::CoreStore && i == 1);
            if !plain {
                slots.remove(v);
            }
        }
    }
    slots
}

fn key_id(m: &Module, plain: &HashSet<Value>, key: Value) -> KeyId {
    if let ValueDef::Result(load, _) = m.value(key).def {
        let d = m.op(load);
        if d.opcode == Opcode::CoreLoad && plain.contains(&d.operands[0]) {
            return KeyId::Slot(d.operands[0]);
        }
    }
    KeyId::Value(key)
}

/// The entry pointer of an earlier lookup of `map[key]` that still holds at `op`: the lookup runs
/// first on every path to `op`, and nothing that may run in between stores to the key's variable,
/// writes or deletes entries of `map`, or calls a function.
fn earlier_lookup(e: &Emit, map: &str, key: Value, op: OpId) -> Option<Value> {
    let m = e.m();
    let key = key_id(m, &e.cx.plain_slots, key);
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
                [MAP_UPDATE.0, MAP_DELETE.0, MAP_PUSH.0, MAP_POP.0].contains(&id)
                    && target.is_none_or(|a| {
                        m.op(a).opcode != Opcode::BpfMapAddr || names_map(m.attr(a, "map"))
                    })
            }
            _ => {
                matches!(key, KeyId::Slot(s) if d.operands.contains(&s) && d.opcode != Opcode::CoreLoad)
            }
        };
        if clobbers {
            return None;
        }
    }
    Some(found.entry)
}

/// The helper number a `bpf.helper_call` calls.
fn helper_id(m: &Module, call: OpId) -> i128 {
    match m.attr(call, "id") {
        Some(Attr::Int(i)) => *i,
        _ => 0,
    }
}

/// The ops that may run after `from` and before `op` (which `from` structurally precedes), nested
/// ones included: those after `from` in its block up to the one containing `op` (a superset, which
/// only makes answers built on it more conservative).
fn ops_between(m: &Module, from: OpId, op: OpId) -> Option<Vec<OpId>> {
    let (block, from) = m.position(from)?;
    let mut until = op;
    while m.position(until).map(|(b, _)| b) != Some(block) {
        until = m.parent_op(until)?;
    }
    let (_, to) = m.position(until)?;
    let ops = &m.block(block).ops[from + 1..=to];
    Some(
        ops.iter()
            .flat_map(|&o| {
                m.collect_nested(o, |_| true)
                    .into_iter()
                    .chain(std::iter::once(o))
            })
            .filter(|&o| o != op)
            .collect(),
    )
}

/// Whether the key slot `slot` still holds `key` at `op`: the last store to it that runs first
/// on every path to `op` stored `key`, and nothing in between writes the slot or the key's variable.
fn key_still_in(e: &Emit, slot: Value, key: KeyId, op: OpId) -> bool {
    let m = e.m();
    let Some(last) =
        e.cx.key_spills
            .iter()
            .rev()
            .find(|s| s.slot == slot && m.precedes_structurally(s.store, op))
    else {
        return false;
    };
    if last.key != key {
        return false;
    }
    let Some(between) = ops_between(m, last.store, op) else {
        return false;
    };
    between.iter().all(|&o| {
        let d = m.op(o);
        let reads_only = |v: Value| match d.opcode {
            Opcode::CoreLoad => true,
            Opcode::BpfHelperCall => {
                let read_only = crate::ir::helpers::read_only_arguments(helper_id(m, o));
                d.operands
                    .iter()
                    .enumerate()
                    .all(|(i, &a)| a != v || read_only.contains(&i))
            }
            _ => false,
        };
        let untouched = |v: Value| !d.operands.contains(&v) || reads_only(v);
        untouched(slot) && !matches!(key, KeyId::Slot(var) if !untouched(var))
    })
}

fn map_update(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsMapUpdate(op);
    let (map, key, value, flags) = (
        v.map(e.m()).to_string(),
        v.key(e.m()),
        v.value(e.m()),
        v.flags(e.m()),
    );
    let k = e.spill_key(key);
    let val = e.spill(Role::Value, value);
    Ok(vec![e.update(&map, k, val, flags)])
}

fn map_delete(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsMapDelete(op);
    let (map, key) = (v.map(e.m()).to_string(), v.key(e.m()));
    let k = e.spill_key(key);
    let mp = e.map_addr(&map);
    Ok(vec![e.helper(MAP_DELETE, &[mp, k], Type::i64())])
}

/// `m[k] += n` (§11.2): an atomic add to the entry, or an insert of `n` when absent (with a
/// second lookup when another CPU inserted first). Arrays always hold their keys, so they have no
/// insert path; per-CPU slots belong to the running CPU, so they take a plain add, as
/// hand-written C does.
fn map_add(e: &mut Emit, op: OpId) -> Lowered {
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

/// BPF atomics exist for 32- and 64-bit words only; narrower values, and per-CPU slots, get a
/// plain read-modify-write.
fn add_in_place(e: &mut Emit, p: Value, delta: Value, per_cpu: bool) {
    if !per_cpu && matches!(e.size(&e.ty(delta)), Ok(4 | 8)) {
        e.b.core_atomic_add(p, delta);
    } else {
        let old = e.load(p);
        let new = e.b.core_add(old, delta);
        e.b.core_store(new, p);
    }
}

fn map_push(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsMapPush(op);
    let (map, value, rt) = (
        v.map(e.m()).to_string(),
        v.value(e.m()),
        e.ty(v.result_value(e.m())),
    );
    let val = e.spill(Role::Value, value);
    let mp = e.map_addr(&map);
    let flags = e.u64(0);
    let ret = e.helper(MAP_PUSH, &[mp, val, flags], Type::i64());
    Ok(vec![e.cast(ret, &rt)])
}

/// `q.pop()` / `q.peek()`: the value lands in a zeroed buffer, so an empty queue reads 0.
fn map_pop(e: &mut Emit, op: OpId) -> Lowered {
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
        if peek { MAP_PEEK } else { MAP_POP },
        &[mp, out],
        Type::i64(),
    );
    let present = e.succeeded(ret);
    Ok(vec![e.load(out), present])
}

/// Bloom filters answer membership through peek.
fn map_contains(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsMapContains(op);
    let (map, value) = (v.map(e.m()).to_string(), v.value(e.m()));
    let val = e.spill(Role::Value, value);
    let mp = e.map_addr(&map);
    let ret = e.helper(MAP_PEEK, &[mp, val], Type::i64());
    Ok(vec![e.succeeded(ret)])
}

fn redirect_map(e: &mut Emit, op: OpId) -> Lowered {
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

fn perf_output(e: &mut Emit, op: OpId) -> Lowered {
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

fn rb_output(e: &mut Emit, op: OpId) -> Lowered {
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

// ---- program context (§9.3) --------------------------------------------------------------------

/// Where a context field lives: its UAPI offset, the access width, and the element count of an
/// array field (`cb`).
struct CtxField {
    offset: i128,
    width: i128,
    count: Option<u32>,
}

fn ctx_field(m: &Module, ctx: Value, field: &[u8]) -> Result<CtxField, String> {
    let field = String::from_utf8_lossy(field);
    let Some(Type::Struct(name)) = m.value_type(ctx).pointee() else {
        return Err(format!(
            "the context operand is not a struct pointer: {}",
            m.value_type(ctx)
        ));
    };
    let decl = struct_decl(m, name)
        .map(KsStruct)
        .ok_or_else(|| format!("no ks.struct declares the context !{name}"))?;
    let i = decl
        .fields(m)
        .iter()
        .position(|(n, _)| *n == field)
        .ok_or_else(|| format!("!{name} has no field `{field}`"))?;
    let Some(&Attr::Int(offset)) = decl.offsets(m).get(i) else {
        return Err(format!("!{name} has no offset for `{field}`"));
    };
    let (width, count) = match &decl.fields(m)[i].1 {
        Type::Array(elem, n) => (size_of(m, elem), Some(*n)),
        // Packet pointers are __u32 fields in the UAPI struct; the kernel rewrites the load.
        Type::Ptr(_) => (Some(4), None),
        t => (size_of(m, t), None),
    };
    let width = width.ok_or_else(|| format!("the size of !{name}.{field} is unknown"))? as i128;
    Ok(CtxField {
        offset,
        width,
        count,
    })
}

/// Emits `access` at the offset of the addressed context field. An array element needs a constant
/// offset: a run-time index selects among the in-range elements with a switch and aborts when out
/// of range.
fn ctx_access(
    e: &mut Emit,
    ctx: Value,
    field: &[u8],
    index: Option<Value>,
    result: Option<Type>,
    access: &dyn Fn(&mut Emit, CtxField) -> Option<Value>,
) -> Lowered {
    let f = ctx_field(e.m(), ctx, field)?;
    let (index, count) = match (index, f.count) {
        (None, None) => return Ok(access(e, f).into_iter().collect()),
        (Some(i), Some(n)) => (i, n),
        (None, Some(_)) => {
            return Err(format!(
                "the context array `{}` must be accessed element by element",
                String::from_utf8_lossy(field)
            ))
        }
        (Some(_), None) => {
            return Err(format!(
                "the context field `{}` is not an array",
                String::from_utf8_lossy(field)
            ))
        }
    };
    let element = |k: i128| CtxField {
        offset: f.offset + k * f.width,
        width: f.width,
        count: None,
    };
    if let Some(k) = const_value(e.m(), index) {
        if !(0..count as i128).contains(&k) {
            return Err(format!("context index {k} is out of range 0..{count}"));
        }
        return Ok(access(e, element(k)).into_iter().collect());
    }
    let results: Vec<Type> = result.into_iter().collect();
    let sw = e.b.ks_switch(
        index,
        (0..count as i128).map(Attr::Int).collect(),
        &results,
        count as usize + 1,
    );
    for k in 0..count as usize {
        let arm = e.b.entry(sw, k);
        e.nested(arm, |e| {
            let v: Vec<Value> = access(e, element(k as i128)).into_iter().collect();
            e.b.bpf_barrier();
            e.b.ks_yield(&v);
        });
    }
    let default = e.b.entry(sw, count as usize);
    e.nested(default, |e| {
        e.b.ks_abort(OUT_OF_BOUNDS);
    });
    Ok(e.m().op(sw).results.clone())
}

fn ctx_load(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsCtxLoad(op);
    let (ctx, field, index, ty) = (
        v.ctx(e.m()),
        v.field(e.m()).to_vec(),
        v.index(e.m()).first().copied(),
        e.ty(v.value_value(e.m())),
    );
    ctx_access(e, ctx, &field, index, Some(ty.clone()), &|e, f| {
        Some(e.b.bpf_ctx_load(ctx, f.offset, f.width, ty.clone()))
    })
}

fn ctx_store(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsCtxStore(op);
    let (value, ctx, field, index) = (
        v.value(e.m()),
        v.ctx(e.m()),
        v.field(e.m()).to_vec(),
        v.index(e.m()).first().copied(),
    );
    ctx_access(e, ctx, &field, index, None, &|e, f| {
        e.b.bpf_ctx_store(value, ctx, f.offset, f.width);
        None
    })
}

// ---- kernel structs and calls (§10.4, §9.6) ------------------------------------------------------

fn kfield_addr(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsKfieldAddr(op);
    let (base, field, ty) = (
        v.base(e.m()),
        v.field(e.m()).to_vec(),
        e.ty(v.addr_value(e.m())),
    );
    let Type::Struct(name) = e.pointee(base) else {
        return Err(format!("the base is not a struct pointer: {}", e.ty(base)));
    };
    let kernel = struct_decl(e.m(), &name)
        .is_some_and(|s| KsStruct(s).origin(e.m()) == StructOrigin::Kernel);
    if !kernel {
        return Err(format!(
            "!{name} is not a kernel struct (CO-RE needs its BTF)"
        ));
    }
    // A relocated offset is a load of LLVM's relocation global, which GVN and LICM treat as any
    // load: reused from another block or hoisted out of a loop, it no longer folds into the
    // access, and a context pointer plus a register is refused. The barrier keeps the offset next
    // to its access (pointers of other kinds take a constant register offset).
    let chained = matches!(e.m().value(base).def, ValueDef::Result(d, 0) if matches!(e.m().op(d).opcode, Opcode::BpfCoreFieldAddr | Opcode::BpfCoreElemAddr));
    if !chained && e.cx.tracepoint_contexts.contains(name.as_ref() as &str) {
        e.b.bpf_barrier();
    }
    Ok(vec![e.b.bpf_core_field_addr(base, &name, field, ty)])
}

/// Reads through an untrusted kernel or user pointer into a zeroed buffer, so a fault reads 0.
fn probe_read(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsProbeRead(op);
    let (addr, ty) = (v.addr(e.m()), e.ty(v.value_value(e.m())));
    let size = e.size(&ty)?;
    let out = e.scratch(Role::Out, ty);
    e.store_zero(out);
    let size = e.b.core_const(size as i128, Type::u32());
    let helper = if v.user(e.m()) == Some(true) {
        PROBE_READ_USER
    } else {
        PROBE_READ_KERNEL
    };
    e.helper(helper, &[out, size, addr], Type::i64());
    Ok(vec![e.load(out)])
}

fn call_extern(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsCallExtern(op);
    let m = e.m();
    let callee = v.callee(m).to_string();
    let args = v.args(m).to_vec();
    let results: Vec<Type> = v
        .results_value(m)
        .iter()
        .map(|&r| m.value_type(r).clone())
        .collect();
    let decl = declaration(m, Opcode::KsExtern, &callee)
        .ok_or_else(|| format!("@{callee} is not a declared extern"))?;
    let call = match KsExtern(decl).helper_id(m) {
        Some(id) => {
            // A variadic helper called with a prefix of its parameters (§5.4): the remaining
            // slots pass 0, so the helper never reads an unset register.
            let mut args = args;
            let slots = u32::try_from(id)
                .ok()
                .and_then(crate::sema::builtins::helper_by_id)
                .map_or(0, |h| h.params.len());
            while args.len() < slots {
                args.push(e.b.core_const(0, Type::u64()));
            }
            e.b.bpf_helper_call(&args, id, callee.as_bytes(), &results)
        }
        None => e.b.bpf_kfunc_call(&args, &callee, &results),
    };
    Ok(e.m().op(call).results.clone())
}

/// `print` in kernel code: the trace pipe. `%s` arguments are passed as pointers to stack copies.
fn print(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsPrint(op);
    let (format, args) = (v.format(e.m()).to_vec(), v.args(e.m()).to_vec());
    let args: Vec<Value> = args
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            if matches!(e.ty(a), Type::Str(_)) {
                e.spill(Role::Arg(i), a)
            } else {
                a
            }
        })
        .collect();
    e.b.bpf_printk(&args, format);
    Ok(vec![e.b.core_const(0, Type::i32())])
}

// ---- configs and pinned globals (§12.1, §12.3) ---------------------------------------------------

/// The map holding config `c`: `c_config_map`, one entry of struct `c_config`.
fn config_map(config: &str) -> String {
    format!("{config}_config_map")
}

fn config_addr(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsConfigAddr(op);
    let (config, ty) = (v.config(e.m()).to_string(), e.ty(v.addr_value(e.m())));
    Ok(vec![e.array_entry(&config_map(&config), ty)])
}

fn pinned_global_addr(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsGlobalAddr(op);
    let (global, ty) = (v.global(e.m()).to_string(), e.ty(v.addr_value(e.m())));
    let entry = e.array_entry(PINNED_MAP, Type::ptr(Type::Struct(PINNED_STRUCT.into())));
    Ok(vec![e.b.core_field_addr(entry, global.into_bytes(), ty)])
}

/// Inserts module-level declarations right after `after` (with its location), or else before the
/// first function.
fn declare(m: &mut Module, after: Option<OpId>, build: impl FnOnce(&mut Builder)) {
    let at = match after.and_then(|o| m.position(o)) {
        Some((_, i)) => Some(i + 1),
        None => m
            .top_ops()
            .iter()
            .position(|&o| m.op(o).opcode == Opcode::KsFunc),
    };
    let body = m.body;
    let loc = after.map(|o| m.op(o).loc).unwrap_or_default();
    let mut b = Builder::new(m, body);
    b.at = at;
    b.loc = loc;
    build(&mut b);
}

/// `BPF_F_MMAPABLE`: the runtime maps config and pinned-global values into the host process, so
/// userspace reads and writes them in place (runtime/ABI.md §5).
const MMAPABLE: i128 = 0x400;

/// Declares the map of every config, after the config: kernel code reads it and userspace code
/// reaches it through the runtime, whichever side uses it.
fn declare_config_maps(m: &mut Module) {
    let configs: Vec<OpId> = m
        .top_ops()
        .iter()
        .copied()
        .filter(|&o| m.op(o).opcode == Opcode::KsConfig)
        .collect();
    for decl in configs {
        let c = KsConfig(decl).name(m).to_string();
        let name = config_map(&c);
        if m.lookup_symbol(&name).is_none() {
            let value = Type::Struct(format!("{c}_config").as_str().into());
            declare(m, Some(decl), |b| {
                b.ks_map(
                    &name,
                    MapKind::Array,
                    Some(Type::u32()),
                    value,
                    1,
                    MMAPABLE,
                    false,
                    None,
                );
            });
        }
    }
}

/// Gathers the pinned globals, in declaration order, into one struct in a pinned one-entry array
/// map. Returns their names.
fn declare_pinned_globals(m: &mut Module) -> Result<HashSet<String>, PassErrors> {
    let fields: Vec<(String, Type)> = m
        .top_ops()
        .iter()
        .filter_map(|&o| KsGlobal::of(m, o))
        .filter(|g| g.storage(m) == Storage::Pinned)
        .map(|g| (g.name(m).to_string(), g.ty(m).clone()))
        .collect();
    let names: HashSet<String> = fields.iter().map(|(n, _)| n.clone()).collect();
    if fields.is_empty() || m.lookup_symbol(PINNED_MAP).is_some() {
        return Ok(names);
    }
    let Some((offsets, size, align)) = layout::c_layout(m, &fields) else {
        return Err(vec![super::PassError::internal(
            None,
            "a pinned global has a type without a known size",
        )]);
    };
    declare(m, None, |b| {
        b.ks_struct(
            PINNED_STRUCT,
            fields,
            offsets,
            size as i128,
            align as i128,
            StructOrigin::File,
            None,
        );
        b.ks_map(
            PINNED_MAP,
            MapKind::Array,
            Some(Type::u32()),
            Type::Struct(PINNED_STRUCT.into()),
            1,
            MMAPABLE,
            true,
            None,
        );
    });
    Ok(names)
}

// ---- checked indexing (§6.5, §6.6, §13.4) ------------------------------------------------------

/// `a[i]` with a run-time index: aborts unless `i < N`. The index is widened to u64 first, so a
/// negative signed index is a huge unsigned one and fails the same test.
fn index_addr(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsIndexAddr(op);
    let (base, index, ty) = (v.base(e.m()), v.index(e.m()), e.ty(v.addr_value(e.m())));
    let n = match e.pointee(base) {
        Type::Array(_, n) | Type::Str(n) => n,
        t => return Err(format!("cannot index {t}")),
    };
    let i = e.cast(index, &Type::u64());
    let limit = e.u64(n as i128);
    let out = e.b.core_cmp(i, limit, CmpPred::Ge);
    e.abort_if(out, OUT_OF_BOUNDS);
    // LLVM turns `base + i * size` into `base | i * size` when the base's alignment leaves the
    // low bits free (stack and global arrays indexed by a 0/1 value), and the verifier refuses
    // bitwise operations on pointers. An opaque copy of the tested index hides its bits.
    let i = if e.cx.bpf && const_value(e.m(), index).is_none() {
        e.b.bpf_opaque(i)
    } else {
        i
    };
    Ok(vec![e.b.core_elem_addr(base, i, ty)])
}
