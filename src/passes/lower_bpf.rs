//! `lower-bpf` (and `lower-kmod`, which applies its checked-indexing rule to module functions):
//! rewrites the whole-language `ks` ops of kernel functions into the `bpf` dialect
//! (helper calls by id, map objects, context loads by offset, CO-RE field addresses, dynptr-based
//! ring-buffer records and `new` objects released on every path). Runs on structured IR, before `flatten`: the
//! expansions may use `ks.if`, `ks.for`, `ks.switch`, `ks.defer` and `ks.abort`, whose exit
//! semantics `flatten` implements.
//!
//! Helpers take pointers, so values passed by value are first stored in stack slots. New slots are
//! gathered at the top of the function's entry block (they dominate every use and are allocated
//! once, not per loop iteration). Slots whose content only lives until the helper call that reads
//! it are shared per function, role and type to keep within the 512-byte BPF stack.

mod context;
mod index_checks;
mod kernel_structs;
mod keys;
mod maps;
mod objects;
mod pinned_globals;
mod ringbuf;
mod strings;

use super::value_bounds::CallBounds;
use super::{ops_between, PassErrors, PassResult};
use crate::ir::layout::{self, size_of, struct_decl};
use crate::ir::symbols::{PINNED_GLOBALS_MAP, PINNED_GLOBALS_STRUCT};
use crate::ir::views::*;
use crate::ir::{Attr, BlockId, Builder, Module, OpId, Opcode, Type, Value, ValueDef};
use crate::vocab::{CmpPred, MapKind, ProgKind, Storage, StructOrigin, Target};
use context::*;
use index_checks::*;
use kernel_structs::*;
use keys::*;
use maps::*;
use pinned_globals::*;
use std::collections::{HashMap, HashSet};

use crate::vocab::helpers::{
    Helper, MAP_DELETE_ELEM, MAP_LOOKUP_ELEM, MAP_PEEK_ELEM, MAP_POP_ELEM, MAP_PUSH_ELEM,
    MAP_UPDATE_ELEM, PERF_EVENT_OUTPUT, PROBE_READ_KERNEL, PROBE_READ_USER, REDIRECT_MAP,
    RINGBUF_DISCARD, RINGBUF_OUTPUT, RINGBUF_RESERVE, RINGBUF_SUBMIT,
};

const BPF_NOEXIST: i128 = 1;
const BPF_ANY: i128 = 0;
const BPF_EXIST: i128 = 2;
/// What `bpf_map_update_elem` returns for a key past an array's end (negated).
const E2BIG: i128 = 7;
const BPF_F_CURRENT_CPU: i128 = 0xffff_ffff;

const OUT_OF_BOUNDS: &str = "index out of bounds";

pub fn run(m: &mut Module) -> PassResult {
    let funcs = crate::passes::kernel_funcs(m);
    let pinned = declare_pinned_globals(m)?;
    let calls = CallBounds::of_module(m);
    let mut errors = PassErrors::new();
    for f in funcs {
        let known = index_checks::known_indexes(m, f, &calls);
        lower_function(m, f, &pinned, known, &mut errors);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn lower_function(
    m: &mut Module,
    func: OpId,
    pinned: &HashSet<String>,
    known_indexes: HashMap<OpId, KnownIndex>,
    errors: &mut PassErrors,
) {
    strings::simplify(m, func);
    let ops = m.collect_nested(func, |o| match o.opcode {
        Opcode::KsGlobalAddr => matches!(&o.attrs[0], Some(Attr::Sym(g)) if pinned.contains(g)),
        op => rule(op).is_some(),
    });
    lower_ops(m, func, ops, known_indexes, errors);
    fold_core_elements(m, func);
    hide_pointer_differences(m, func);
}

/// `data_end - data` is a number to the program but the difference of two packet pointers to
/// LLVM, which loads them as integers: counted twice, `len + len` became `(data_end << 1) -
/// (data << 1)`, which the verifier refuses ("pointer arithmetic with <<= operator prohibited").
/// Each difference goes through `bpf.opaque`, so arithmetic on it stays arithmetic on a scalar.
fn hide_pointer_differences(m: &mut Module, func: OpId) {
    let diffs = m.collect_nested(func, |o| o.opcode == Opcode::CorePtrDiff);
    if diffs.is_empty() {
        return;
    }
    for diff in diffs {
        let result = m.op(diff).results[0];
        let users = m.collect_nested(func, |o| o.operands.contains(&result));
        let hidden = m.builder_after(diff).bpf_opaque(result);
        for user in users {
            m.replace_uses_in(user, result, hidden);
        }
    }
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

/// `lower-kmod`: what module functions need before `flatten`. Module code indexes arrays with
/// the same checks as kernel code, by the same rule (their aborts return 0 from the kfunc,
/// §13.4); everything else of module code (`print`, `new`/`delete`, plain `core` ops) maps one
/// to one onto C and is left to the module back end.
pub fn run_kmod(m: &mut Module) -> PassResult {
    let funcs: Vec<OpId> = m
        .funcs()
        .filter(|&f| KsFunc(f).target(m) == Target::Kmod)
        .collect();
    let mut errors = PassErrors::new();
    for f in funcs {
        let ops = m.collect_nested(f, |o| o.opcode == Opcode::KsIndexAddr);
        lower_ops(m, f, ops, HashMap::new(), &mut errors);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn lower_ops(
    m: &mut Module,
    func: OpId,
    ops: Vec<OpId>,
    known_indexes: HashMap<OpId, KnownIndex>,
    errors: &mut PassErrors,
) {
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
        map_reads: m.collect_nested(func, |d| d.opcode == Opcode::KsMapLookup),
        key_spills: Vec::new(),
        tracepoint_contexts: tracepoint_contexts(m),
        bpf: KsFunc(func).target(m) == Target::Bpf,
        known_indexes,
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
    /// The entry pointer of each one-entry array map (pinned globals) looked up so far:
    /// reused wherever that lookup runs first, since the entry never moves.
    entries: HashMap<String, Value>,
    /// The op being lowered.
    current: Option<OpId>,
    /// Index ops whose run-time index is known to stay below the array's length: they need no
    /// range test.
    known_indexes: HashMap<OpId, KnownIndex>,
    /// Map lookups lowered so far, which a later `m[k] += n` of the same entry may reuse.
    lookups: Vec<Lookup>,
    /// The function's `m[k]` reads in program order (those lowered already are detached).
    map_reads: Vec<OpId>,
    /// Key stores so far, which a later helper call with the same key may rely on.
    key_spills: Vec<KeySpill>,
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

    /// Stores a map key in the key slot of its type, unless the slot already holds it there; a
    /// struct or array read whole from a variable is passed in place (see [`key_in_place`]).
    fn spill_key(&mut self, key: Value) -> Value {
        if let Some(variable) = self
            .cx
            .current
            .and_then(|op| key_in_place(self.m(), key, op))
        {
            return variable;
        }
        let slot = self.scratch(Role::Key, self.ty(key));
        let id = key_id(self.m(), key);
        if self
            .cx
            .current
            .is_some_and(|op| key_still_in(self, slot, &id, op))
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
        let op = self
            .b
            .bpf_helper_call(args, h.id.into(), h.name.as_bytes(), &[ret]);
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
        self.helper(MAP_LOOKUP_ELEM, &[mp, key_slot], entry_ty)
    }

    fn update(&mut self, map: &str, key_slot: Value, value_slot: Value, flags: i128) -> Value {
        let mp = self.map_addr(map);
        let f = self.u64(flags);
        self.helper(MAP_UPDATE_ELEM, &[mp, key_slot, value_slot, f], Type::i64())
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
        let op = self.b.ks_for(lo, hi, None, None, None);
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
