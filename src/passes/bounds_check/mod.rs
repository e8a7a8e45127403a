//! `bounds-check`: compiler-inserted packet bounds checks (docs/language.md §10.2).
//!
//! Every load or store through a packet pointer (one derived from `ctx->data` / `ctx->data_meta`
//! by pointer arithmetic, casts, field and element addresses, or through a local holding one)
//! gets `if (addr + width > data_end) abort` in front of it — unless a dominating comparison
//! already proves the bytes in bounds: an earlier check of this pass in the same or an enclosing
//! block, or a user test of the form `if (P + K > data_end) { <leaves> }` (also `>=`,
//! `data_end < P + K`), after which `[P, P + K)` is known good; the negated tests prove it
//! inside their then-branch. Only tests the verifier learns a packet range from count:
//! `P + K == data_end` and `data_end - P < K` prove the bytes too, but not to the kernel, so
//! accesses after them are checked — on an opaque copy of the pointer, or LLVM would fold the
//! check away on account of the user's test.
//! Addresses are compared as a root (the packet pointer's origin) plus a constant byte offset;
//! a root may be a bounded variable index from a base ([`indexes`] says which spellings are one
//! index). Other variable offsets are always checked, after a bound on the index (an index no
//! packet can reach aborts) so that the verifier sees a bounded offset on the pointer it checks;
//! later accesses of bytes that check proved, at the same formation, go through that pointer.
//! A check covers the accesses just ahead of it on the same root ([`ahead`]).
//! Adjacent packet bytes combined or tested together are read as one load ([`pairs`]), where
//! this pass knows all are in bounds.
//! Runs on structured kernel functions, before `lower-bpf`.

mod ahead;
mod guarded_offsets;
mod implied;
mod indexes;
mod moved_packet;
mod pairs;
mod params;
mod short_circuit;

use super::lower_loops;
use super::manager::Analyses;
use super::provenance::{ctx_field, Provenance};
use super::region_leaves;
use super::value_bounds::{self, int_max, is_unsigned, Facts};
use super::{PassError, PassErrors, PassResult};
use crate::diagnostics::Code;
use crate::ir::{
    views, views::KsFunc, Attr, Module, OpData, OpId, Opcode, RegionId, Type, Value, ValueDef,
};
use crate::vocab::CmpPred;
use params::ParamRoles;

/// The message of every abort this pass adds (§13.4).
const OUT_OF_BOUNDS: &[u8] = b"packet access out of bounds";

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

/// The verifier's bounds: a packet pointer's constant offset stays within ±2^29 (BPF_MAX_VAR_OFF),
/// and packet ranges are proven only up to 0xffff bytes (MAX_PACKET_OFF).
const MAX_POINTER_OFFSET: i128 = 1 << 29;
const MAX_PACKET_BYTES: i128 = 0xffff;

/// The field addresses of the struct locals among `written_once` (before their escapes are
/// counted) whose fields are only loaded, each with the first address of its field.
fn frozen_fields(
    m: &Module,
    ops: &[OpId],
    written_once: &HashMap<Value, Value>,
) -> HashMap<Value, Value> {
    let is_struct = |v: &Value| matches!(m.value_type(*v).pointee(), Some(Type::Struct(_)));
    let mut frozen: HashSet<Value> = written_once.keys().copied().filter(is_struct).collect();
    let mut first: HashMap<(Value, Vec<u8>), Value> = HashMap::new();
    let mut fields: HashMap<Value, Value> = HashMap::new();
    for &op in ops {
        let d = m.op(op);
        if d.opcode != Opcode::CoreFieldAddr || !frozen.contains(&d.operands[0]) {
            continue;
        }
        if let Some(Attr::Str(name)) = m.attr(op, "field") {
            let canonical = *first
                .entry((d.operands[0], name.clone()))
                .or_insert(d.results[0]);
            fields.insert(d.results[0], canonical);
        }
    }
    let local_of = |addr: Value| def_op(m, addr).map(|o| m.op(o).operands[0]);
    for &op in ops {
        let d = m.op(op);
        for (i, &v) in d.operands.iter().enumerate() {
            let allowed = match (d.opcode, i) {
                (Opcode::CoreLoad, 0) => true,
                (Opcode::CoreStore, 1) | (Opcode::CoreFieldAddr, 0) => !fields.contains_key(&v),
                _ => false,
            };
            if allowed {
                continue;
            }
            match fields.contains_key(&v) {
                true => {
                    if let Some(local) = local_of(v) {
                        frozen.remove(&local);
                    }
                }
                false => {
                    frozen.remove(&v);
                }
            }
        }
    }
    fields.retain(|addr, _| local_of(*addr).is_some_and(|l| frozen.contains(&l)));
    fields
}

/// The packet pointers of each kernel function, counting parameters that hold one at every call.
pub(super) fn packet_pointers(
    m: &Module,
    analyses: &mut Analyses,
) -> HashMap<OpId, HashSet<Value>> {
    let roles = ParamRoles::of_module(m, analyses);
    crate::passes::kernel_funcs(m)
        .into_iter()
        .map(|f| {
            let classes = params::Classes::of(m, f, analyses.provenance(m, f), &roles);
            (f, classes.packet)
        })
        .collect()
}

pub fn run(m: &mut Module, analyses: &mut Analyses) -> PassResult {
    let funcs = callees_first(m, analyses);
    let mut errors = PassErrors::new();
    let moving = moved_packet::moving_functions(m);
    let params = value_bounds::CallBounds::of_module(m);
    // For each function taking the context, the packet bytes from `ctx->data` every normal return
    // has proven in bounds.
    let mut proven_on_return: HashMap<String, i128> = HashMap::new();
    let roles = ParamRoles::of_module(m, analyses);
    // The packet bytes every call so far proves at each packet parameter (by function, index).
    let mut at_calls = ProvenArgs::default();
    let mut unchecked = Vec::new();
    let passed_at = PassedOffsets::of_module(m, &funcs, analyses, &roles, &params);
    for &f in &funcs {
        errors.append(&mut moved_packet::MovedPacket::check(m, f, &moving));
        let end = match (context_param(m, f), roles.end_param(m, f)) {
            (Some(ctx), _) => PacketEnd::Context(ctx),
            (None, Some(end)) => PacketEnd::Param(end),
            (None, None) => {
                if roles.has_packet_param(m, f) {
                    unchecked.push(f);
                }
                continue;
            }
        };
        short_circuit::hoist_tested_addresses(m, f);
        let callees_prove = proven_on_return
            .iter()
            .filter(|(name, _)| !moving.contains(*name))
            .map(|(name, &k)| (name.clone(), k))
            .collect();
        let mut pass = BoundsCheck::new(m, f, Some(end), &params, callees_prove);
        pass.classify(m, f, analyses.provenance(m, f), &roles);
        pass.hide_pointer_equalities(m, f);
        pass.param_offsets = passed_at.of_function(m, f);
        pass.guard_tested_offsets(m, f);
        pass.check_pointer_offsets(m, f);
        pass.bound_formations(m, f);
        pass.twinned = pass.twinned_formations(m, f);
        let body = m.op(f).regions[0];
        pass.region(m, body, &mut Vec::new());
        errors.append(&mut pass.errors);
        at_calls.merge(pass.args_proven);
        if let (Some(name), Some(k)) = (m.symbol(f), pass.returns_prove) {
            proven_on_return.insert(name.to_string(), k);
        }
    }
    // Functions with packet parameters but no data_end cannot check; callers first, so what a
    // caller's call proves reaches the functions it calls.
    for &f in unchecked.iter().rev() {
        let mut pass = BoundsCheck::new(m, f, None, &params, HashMap::new());
        pass.classify(m, f, analyses.provenance(m, f), &roles);
        pass.hide_pointer_equalities(m, f);
        pass.param_offsets = passed_at.of_function(m, f);
        pass.check_pointer_offsets(m, f);
        pass.accesses_within_callers_proof(m, f, &at_calls);
        errors.append(&mut pass.errors);
        at_calls.merge(pass.args_proven);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The kernel functions, each after the functions it calls (kernel code has no recursion).
fn callees_first(m: &Module, analyses: &mut Analyses) -> Vec<OpId> {
    let kernel: HashSet<OpId> = crate::passes::kernel_funcs(m).into_iter().collect();
    let cg = analyses.call_graph(m);
    match petgraph::algo::toposort(&cg.graph, None) {
        Ok(order) => order
            .into_iter()
            .rev()
            .map(|n| cg.graph[n])
            .filter(|f| kernel.contains(f))
            .collect(),
        Err(_) => crate::passes::kernel_funcs(m),
    }
}

/// The function's parameter that points to a packet context (`xdp_md`, `__sk_buff`).
pub(super) fn context_param(m: &Module, f: OpId) -> Option<Value> {
    let entry = m.func_entry(f);
    m.block(entry).args.iter().copied().find(|&a| matches!(m.value_type(a).pointee(), Some(Type::Struct(s)) if matches!(&**s, "xdp_md" | "__sk_buff")))
}

/// Where a pointer the pass follows points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// Into the packet (`ctx->data`, `ctx->data_meta`, a packet parameter).
    Data,
    /// At its end (`ctx->data_end`, a data_end parameter).
    End,
}

/// Where a function's checks read data_end from.
#[derive(Clone, Copy)]
enum PacketEnd {
    Context(Value),
    Param(Value),
}

/// Where a packet address comes from: a canonical root plus a constant byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Root {
    Value(Value),
    /// A local written once with a packet pointer: every load of it yields the same address.
    Slot(Value),
    /// `B + offset + index * stride` for a base root `B` (`Value` or `Slot`, `slot` telling
    /// which) and a variable index with a known bound, identified by the value or the
    /// once-written local it comes from: `data + off + 8 > data_end` then proves the header at
    /// `data + off`; `words[i]` of a `*u16` steps by 2. `max` bounds the index's bytes
    /// (`index * stride`; the verifier's bound too).
    Indexed {
        base: Value,
        slot: bool,
        offset: i128,
        index: Value,
        stride: i128,
        max: i128,
    },
    /// `F + start`, where `F` adds an index ksc cannot bound (`data + off`, `off` moved on by a
    /// loop by lengths read from the packet): no test of the user's proves a range there, but a
    /// check this pass made after clamping the index does, on the pointer it checked.
    Clamped {
        formed: Value,
        start: i128,
        /// The first byte of the formation the checked pointer reaches back to: its start when
        /// that pointer is the formation's own base plus the bounded index (`ch->type` after a
        /// check made for `ch->length`), else `start`.
        low: i128,
    },
}

struct BoundsCheck {
    packet: HashSet<Value>,
    data_end: HashSet<Value>,
    /// Locals that hold packet pointers, with the number of stores into them.
    slots: HashMap<Value, usize>,
    /// The value stored into each local written exactly once.
    slot_value: HashMap<Value, Value>,
    /// The function relates packet pointers and data_end in ways the verifier learns no range
    /// from (`==`, `!=`, `data_end - P`): LLVM may use them to fold an inserted check, so each
    /// check tests an opaque copy of the pointer.
    blind_tests: bool,
    /// Locals written once and otherwise only loaded, with the value written.
    written_once: HashMap<Value, Value>,
    /// The field addresses of struct locals written once, whole, and otherwise only read
    /// (`var up = walk(ctx)`, a struct parameter), each with the first address of the same
    /// field: every load of a field there reads one value.
    frozen_fields: HashMap<Value, Value>,
    /// Every value stored into each local whose address is used only to load and store.
    stores: HashMap<Value, Vec<Value>>,
    /// The values stored into each local or into its fields and elements, address taken or not.
    aggregate_stores: HashMap<Value, Vec<Value>>,
    /// Bounds of every local at its loads, and which loads read the same store.
    locals: value_bounds::LocalBounds,
    /// Where checks read data_end from (`None`: the function has none and is not walked).
    end: Option<PacketEnd>,
    inserted: usize,
    /// Packet offsets no packet can reach (user errors: the kernel would refuse the program).
    errors: PassErrors,
    /// Functions whose every normal return has proven this many bytes from `ctx->data` in bounds
    /// (none moves the packet).
    callees_prove: HashMap<String, i128>,
    /// The function's body, whose end may be a return.
    body: RegionId,
    /// The bytes from `ctx->data` proven at every return seen so far.
    returns_prove: Option<i128>,
    /// Tested variable-offset addresses with a twin in another arm, and the opaque copies that
    /// stand for those accessed so far.
    twinned: HashSet<Value>,
    pins: HashMap<Value, Value>,
    /// The packet bytes this function's calls prove at their callees' packet parameters.
    args_proven: ProvenArgs,
    /// The constant offsets from `ctx->data` calls pass at each packet parameter.
    param_offsets: HashMap<Value, Passed>,
    /// Packet pointers formed from `ctx->data` alone (not `data_meta`, nor a parameter).
    from_data: HashSet<Value>,
    /// The integer parameters of a function that is called (not a program).
    called_params: HashSet<Value>,
    /// Bytes the user's tests imply in bounds, which the verifier does not see ([`implied`]).
    implied: Vec<implied::Implied>,
    /// The first index expression of each shape ([`indexes::IndexShape`]).
    shapes: RefCell<HashMap<indexes::IndexShape, Value>>,
    /// Offsets a guard bounds before they are added to a packet pointer, with their bound
    /// ([`guarded_offsets`]).
    guarded: HashMap<Value, u128>,
}

/// The packet bytes proven at a function's packet parameter (by function symbol and parameter
/// index) by every call seen.
#[derive(Default)]
struct ProvenArgs(HashMap<(String, usize), i128>);

impl ProvenArgs {
    fn note(&mut self, callee: &str, index: usize, bytes: i128) {
        let e = self.0.entry((callee.to_string(), index)).or_insert(bytes);
        *e = (*e).min(bytes);
    }

    fn merge(&mut self, other: ProvenArgs) {
        for ((callee, index), bytes) in other.0 {
            self.note(&callee, index, bytes);
        }
    }

    fn get(&self, callee: &str, index: usize) -> i128 {
        self.0
            .get(&(callee.to_string(), index))
            .copied()
            .unwrap_or(0)
    }
}

/// The smallest and largest constant offsets from `ctx->data` that calls pass at a function's
/// packet parameter (by function symbol and parameter index), where every call's is known: the
/// verifier checks the function with each caller's pointer, so its constant accesses must fit the
/// packet from the nearest and the farthest.
#[derive(Default)]
struct PassedOffsets(HashMap<(String, usize), Option<Passed>>);

/// A packet argument a variable step forms (see `BoundsCheck::reform_outlying_args`).
struct Outlying {
    /// How far past its origin it may lie, where ksc bounds it within 0xffff.
    reach: Option<i128>,
    /// It is formed again from its origin and bounded before the call.
    reformed: bool,
}

/// The constant offsets from `ctx->data` calls pass at a parameter.
#[derive(Clone, Copy)]
struct Passed {
    nearest: i128,
    farthest: i128,
}

impl PassedOffsets {
    /// Callers before callees, so an offset passed on through a parameter is known.
    fn of_module(
        m: &Module,
        callees_first: &[OpId],
        analyses: &mut Analyses,
        roles: &ParamRoles,
        params: &value_bounds::CallBounds,
    ) -> PassedOffsets {
        let mut passed = PassedOffsets::default();
        for &f in callees_first.iter().rev() {
            let mut pass = BoundsCheck::new(m, f, None, params, HashMap::new());
            pass.classify(m, f, analyses.provenance(m, f), roles);
            pass.param_offsets = passed.of_function(m, f);
            for call in m.collect_nested(f, |o| o.opcode == Opcode::CoreCall) {
                let Some(Attr::Sym(callee)) = m.attr(call, "callee") else {
                    continue;
                };
                for (i, &arg) in m.op(call).operands.iter().enumerate() {
                    if pass.packet.contains(&arg) {
                        // (One formed again before the call lies from its origin to where it
                        // is bounded: where ksc knows it lies at most, else the longest packet.)
                        let reformed = || {
                            let o = pass.outlying(m, arg).filter(|o| o.reformed)?;
                            Some(Passed {
                                nearest: 0,
                                farthest: o.reach.unwrap_or(MAX_PACKET_BYTES - 1),
                            })
                        };
                        let offset = pass
                            .key(m, arg)
                            .and_then(|k| pass.data_offset(m, k))
                            .or_else(reformed);
                        let e = passed.0.entry((callee.to_string(), i)).or_insert(offset);
                        *e = e.zip(offset).map(|(a, b)| Passed {
                            nearest: a.nearest.min(b.nearest),
                            farthest: a.farthest.max(b.farthest),
                        });
                    }
                }
            }
        }
        passed
    }

    /// The offsets known for function `f`'s parameters, by parameter value.
    fn of_function(&self, m: &Module, f: OpId) -> HashMap<Value, Passed> {
        let name = m.symbol(f).unwrap_or_default();
        let params = &m.block(m.func_entry(f)).args;
        params
            .iter()
            .enumerate()
            .filter_map(|(i, &p)| Some((p, (*self.0.get(&(name.to_string(), i))?)?)))
            .collect()
    }
}

/// A packet address as a root plus a constant byte offset. For an `Indexed` root, `formed_at`
/// is the address `B + index` where this address's chain formed it.
#[derive(Clone, Copy, Debug)]
struct Key {
    root: Root,
    offset: i128,
    formed_at: Option<Value>,
}

/// Where a checked address whose index absorbed its base's offset is formed from.
enum Start {
    At(Value),
    /// `ctx->data`, the index having absorbed the distance of pointer `moved` from it.
    DataAndDistance {
        ctx: Value,
        moved: Value,
    },
}

/// A packet address's base formed by variable steps from `from`: `from + bytes + Σ index × stride`.
struct BaseSteps {
    from: Value,
    bytes: i128,
    indexes: Vec<(Value, i128)>,
}

/// The address `clamp_index` checks in place of an access's own, and how many bytes before the
/// access that checked pointer reaches.
/// A moved pointer formed again from `ctx->data` ([`BoundsCheck::rebase_moved`]): the pointer
/// itself and the access's address, a constant past it.
struct Rebased {
    root: Value,
    address: Value,
}

struct ClampedAddress {
    address: Value,
    reach_back: i128,
}

impl ClampedAddress {
    fn at(address: Value) -> Self {
        ClampedAddress {
            address,
            reach_back: 0,
        }
    }
}

/// `[root, root + end)` is known in bounds. For an `Indexed` root, `tested` is the address
/// `B + index` the proof was made on: the kernel tracks packet ranges per pointer, so an access
/// covered by the fact must be made through that same address.
#[derive(Clone, Copy, Debug)]
struct Fact {
    root: Root,
    end: i128,
    tested: Option<Value>,
}

impl Key {
    fn at(root: Root, offset: i128) -> Key {
        Key {
            root,
            offset,
            formed_at: None,
        }
    }

    /// The constant bytes of the address, also those before a variable index.
    fn constant_offset(self) -> i128 {
        match self.root {
            Root::Indexed { offset, .. } => offset + self.offset,
            _ => self.offset,
        }
    }

    fn plus(self, bytes: i128) -> Key {
        Key {
            offset: self.offset + bytes,
            ..self
        }
    }

    /// The fact that `width` bytes from this address are in bounds.
    fn proves(self, width: i128) -> Fact {
        Fact {
            root: self.root,
            end: self.offset + width,
            tested: self.formed_at,
        }
    }
}

/// `addr` is a local of the function (its stores are lost when the program aborts, and they
/// write no packet memory).
fn is_local(m: &Module, addr: Value) -> bool {
    def_op(m, addr).is_some_and(|op| m.op(op).opcode == Opcode::CoreLocal)
}

fn def_op(m: &Module, v: Value) -> Option<OpId> {
    m.defining_op(v)
}

/// Size in bytes of an IR type (0 for types without storage).
fn size_of(m: &Module, t: &Type) -> i128 {
    crate::ir::layout::size_of(m, t).unwrap_or(0) as i128
}

fn field_offset(m: &Module, base_ty: &Type, field: &[u8]) -> Option<i128> {
    crate::ir::layout::field_offset(m, base_ty, field).map(i128::from)
}

/// Locals written once are as bounded as the value written, others by the stores and branch
/// tests that reach the load ([`value_bounds::LocalBounds`]); the counter of a loop that stays
/// inline, by the loop's bound (the verifier follows such a loop iteration by iteration).
impl Facts for BoundsCheck {
    fn opaque_max(&self, m: &Module, v: Value, depth: u32) -> Option<u128> {
        if let Some(&bound) = self.guarded.get(&v) {
            return Some(bound);
        }
        if let ValueDef::Arg(block, i) = m.value(v).def {
            let owner = m.block_owner(block)?;
            if m.op(owner).opcode == Opcode::KsFunc {
                return self.locals.param(v);
            }
            let inline = m.op(owner).opcode == Opcode::KsFor && !lower_loops::is_long(m, owner);
            return if inline && i == 0 {
                value_bounds::counter_max(m, block, self, depth)
            } else {
                None
            };
        }
        let d = m.op(def_op(m, v)?);
        if d.opcode != Opcode::CoreLoad || depth == 0 {
            // Also a call's result, bounded by the callee's returns.
            return self.locals.opaque_max(m, v, depth);
        }
        let Some(&written) = self.written_once.get(&d.operands[0]) else {
            // (A field of a struct local: as bounded as every write into it, which a loop run
            // as a bpf_loop callback reads from its caller's stack, unbounded.)
            return match in_long_loop(m, def_op(m, v)?) {
                true => self.locals.at(v),
                false => self.locals.opaque_max(m, v, depth),
            };
        };
        // A local written once is as bounded as its value, and as the tests that guard the load
        // (`var l3 = state.l3_off` then `if (l3 > 22) { return }`): the tighter of the two. Not
        // in a loop that becomes a bpf_loop callback, whose counter the kernel hands over
        // unbounded whatever the loop's own bound.
        let written = value_bounds::max_of(m, written, self, depth - 1);
        let op = def_op(m, v)?;
        let guarded = (!in_long_loop(m, op)).then(|| self.locals.at(v)).flatten();
        match (written, guarded) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl BoundsCheck {
    fn new(
        m: &Module,
        f: OpId,
        end: Option<PacketEnd>,
        params: &value_bounds::CallBounds,
        callees_prove: HashMap<String, i128>,
    ) -> BoundsCheck {
        BoundsCheck {
            packet: HashSet::new(),
            data_end: HashSet::new(),
            slots: HashMap::new(),
            slot_value: HashMap::new(),
            blind_tests: false,
            written_once: HashMap::new(),
            frozen_fields: HashMap::new(),
            stores: HashMap::new(),
            aggregate_stores: HashMap::new(),
            locals: value_bounds::LocalBounds::of_function(m, f, params),
            end,
            inserted: 0,
            errors: Vec::new(),
            callees_prove,
            body: m.op(f).regions[0],
            returns_prove: None,
            twinned: HashSet::new(),
            pins: HashMap::new(),
            args_proven: ProvenArgs::default(),
            param_offsets: HashMap::new(),
            from_data: HashSet::new(),
            called_params: match KsFunc(f).kind(m) {
                Some(_) => HashSet::new(),
                None => (m.block(m.func_entry(f)).args.iter().copied())
                    .filter(|&a| {
                        let ty = m.value_type(a);
                        ty.is_int() || matches!(ty, Type::Struct(_) | Type::Array(..))
                    })
                    .collect(),
            },
            shapes: RefCell::new(HashMap::new()),
            guarded: HashMap::new(),
            implied: Vec::new(),
        }
    }

    /// Finds data_end values and packet pointers ([`params::Classes`]) and the locals holding them.
    fn classify(&mut self, m: &Module, f: OpId, provenance: &Provenance, roles: &ParamRoles) {
        let ops = m.collect_nested(f, |_| true);
        let classes = params::Classes::of(m, f, provenance, roles);
        self.packet = classes.packet;
        self.data_end = classes.end;
        self.from_data = self
            .packet
            .iter()
            .copied()
            .filter(|&v| {
                provenance
                    .roots(v)
                    .all(|r| matches!(def_op(m, r), Some(op) if ctx_field(m, op) == Some(b"data")))
            })
            .collect();
        for &op in &ops {
            let d = m.op(op);
            if d.opcode == Opcode::CoreStore
                && (self.packet.contains(&d.operands[0]) || self.data_end.contains(&d.operands[0]))
            {
                self.slots.entry(d.operands[1]).or_insert(0);
            }
        }
        let mut stores: HashMap<Value, Vec<Value>> = HashMap::new();
        for &op in &ops {
            if m.op(op).opcode == Opcode::CoreStore {
                let (v, slot) = (m.op(op).operands[0], m.op(op).operands[1]);
                stores.entry(slot).or_default().push(v);
                if let Some(local) = aggregate_root(m, slot) {
                    self.aggregate_stores.entry(local).or_default().push(v);
                }
                if let Some(n) = self.slots.get_mut(&slot) {
                    *n += 1;
                    self.slot_value.insert(slot, v);
                }
            }
        }
        for (slot, vals) in &stores {
            if let [v] = vals[..] {
                self.written_once.insert(*slot, v);
            }
        }
        self.frozen_fields = frozen_fields(m, &ops, &self.written_once);
        self.stores = stores;
        self.blind_tests = ops.iter().any(|&op| self.is_blind_test(m, op));
        // A local whose address is used otherwise may be written through it.
        for &op in &ops {
            for v in value_bounds::escaping_operands(m, op) {
                self.written_once.remove(&v);
                self.stores.remove(&v);
            }
        }
    }

    /// Packet pointers formed at a constant offset the verifier refuses to add (±2^29).
    fn check_pointer_offsets(&mut self, m: &Module, f: OpId) {
        for op in m.collect_nested(f, |o| {
            matches!(
                o.opcode,
                Opcode::CorePtrAdd
                    | Opcode::CoreElemAddr
                    | Opcode::CoreFieldAddr
                    | Opcode::KsKfieldAddr
            )
        }) {
            let v = m.op(op).results[0];
            if !self.packet.contains(&v) {
                continue;
            }
            // LLVM folds the constants on either side of a variable index into one, which the
            // verifier refuses as it would the constant alone.
            // (Also past variable indexes ksc cannot bound: `data + off + 0xffffffff`.)
            let constant = |v: Value| {
                self.key(m, v)
                    .map(Key::constant_offset)
                    .unwrap_or_else(|| self.constant_part(m, v, 64))
            };
            let out_of_range = |c: i128| c <= -MAX_POINTER_OFFSET || c >= MAX_POINTER_OFFSET;
            // Reported where the chain first leaves the range, not again at each field after.
            if out_of_range(constant(m.op(op).operands[0])) {
                continue;
            }
            let c = constant(v);
            if out_of_range(c) {
                self.errors.push(PassError::user(op, Code::E0611, format!("a packet pointer {c} bytes from its origin; the kernel allows packet offsets within ±{MAX_POINTER_OFFSET} and packets of at most {MAX_PACKET_BYTES} bytes")));
            }
        }
    }

    /// The constant bytes packet address `v` is formed with, variable indexes left out, down to
    /// its root (through locals written once), `depth` steps deep.
    fn constant_part(&self, m: &Module, v: Value, depth: u32) -> i128 {
        let Some(d) = def_op(m, v).filter(|_| depth > 0).map(|op| m.op(op)) else {
            return 0;
        };
        let below = |base: Value| self.constant_part(m, base, depth - 1);
        match d.opcode {
            Opcode::CorePtrAdd => m.const_int(d.operands[1]).unwrap_or(0) + below(d.operands[0]),
            Opcode::CoreFieldAddr | Opcode::KsKfieldAddr => {
                let field = match &d.attrs[0] {
                    Some(Attr::Str(f)) => field_offset(m, m.value_type(d.operands[0]), f),
                    _ => None,
                };
                field.unwrap_or(0) + below(d.operands[0])
            }
            Opcode::CoreCast => below(d.operands[0]),
            Opcode::CoreLoad => match self.held(m, v) {
                Some(stored) => below(stored),
                None => 0,
            },
            _ => 0,
        }
    }

    /// Packet pointers moved by a variable the verifier cannot bound within ±2^29 (an unknown
    /// `u64`, any signed integer, a sum starting at 2^32) are refused where they are formed, even
    /// if only compared with data_end. So such an offset saturates first, at ±0xffff bytes: no
    /// packet reaches that far, so every test and access on the pointer decides as it would
    /// (docs/language.md §10.2).
    fn bound_formations(&mut self, m: &mut Module, f: OpId) {
        let formations = m.collect_nested(f, |o| {
            matches!(o.opcode, Opcode::CorePtrAdd | Opcode::CoreElemAddr)
        });
        for op in formations {
            let d = m.op(op).clone();
            let (base, index) = (d.operands[0], d.operands[1]);
            if !self.packet.contains(&base)
                || m.const_int(index).is_some()
                || self.guarded.contains_key(&index)
                || self.formation_safe(m, index)
            {
                continue;
            }
            let stride = byte_stride(m, op);
            let reach = MAX_PACKET_BYTES / stride;
            let signed = !never_negative(m, index);
            let mut b = m.builder_before(op);
            let wide_ty = if signed { Type::i64() } else { Type::u64() };
            // Widened into an opaque copy, so LLVM cannot saturate the narrow value and widen
            // after (on cpu v4 a sign extension the verifier keeps no bounds through).
            let widened = b.cast_to(index, wide_ty.clone());
            let wide = b.bpf_opaque(widened);
            let high = b.core_const(reach, wide_ty.clone());
            let over = b.core_cmp(wide, high, CmpPred::Gt);
            let mut bounded = b.core_select(over, high, wide);
            if signed {
                let low = b.core_const(-reach, wide_ty);
                let under = b.core_cmp(bounded, low, CmpPred::Lt);
                bounded = b.core_select(under, low, bounded);
            } else {
                // The saturated value is a sentinel no packet reaches, not an offset the accesses
                // must prove in range: opaque to the bound analysis, as the signed pair is.
                bounded = b.bpf_opaque(bounded);
            }
            m.op_mut(op).operands[1] = bounded;
        }
    }

    /// The variable-offset packet addresses tests compare with data_end in different arms of an
    /// `if` or `match`. The kernel learns a packet range for one pointer (its id), and an address
    /// LLVM forms again is a new pointer with no range: two arms that test `data + off` with
    /// different lengths and then read it alike are merged by LLVM into one tail that reads
    /// through one arm's tested pointer first and a fresh `data + off` after. Accesses through
    /// such an address go through an opaque copy of it ([`Self::pin`]), which LLVM can reuse but
    /// not rebuild. (Not every tested address: the copy keeps LLVM from folding the formation's
    /// constant into the accesses, and from sharing it with formations checked on their own.)
    fn twinned_formations(&self, m: &Module, f: OpId) -> HashSet<Value> {
        let mut tested: Vec<(Value, OpId)> = Vec::new();
        for test in m.collect_nested(f, |o| o.opcode == Opcode::CoreCmp) {
            let (l, r) = (m.op(test).operands[0], m.op(test).operands[1]);
            let ptr = match (self.data_end.contains(&l), self.data_end.contains(&r)) {
                (false, true) => l,
                (true, false) => r,
                _ => continue,
            };
            if !self.packet.contains(&ptr) {
                continue;
            }
            let formed = self.key(m, ptr).and_then(|k| k.formed_at);
            if let Some((v, op)) = formed.and_then(|v| Some((v, def_op(m, v)?))) {
                tested.push((v, op));
            }
        }
        tested
            .iter()
            .filter(|&&(_, a)| tested.iter().any(|&(_, b)| m.in_exclusive_arms(a, b)))
            .map(|&(v, _)| v)
            .collect()
    }

    /// The opaque copy of tested address `formed` that replaces it from its formation on (made
    /// at the first access through it).
    fn pin(&mut self, m: &mut Module, formed: Value) -> Value {
        if let Some(&copy) = self.pins.get(&formed) {
            return copy;
        }
        let formation = def_op(m, formed).expect("a twinned address is formed by an op");
        let copy = m.builder_after(formation).bpf_opaque(formed);
        let f = m.top_level_of(formation);
        m.replace_uses_in(f, formed, copy);
        let copy_op = def_op(m, copy).expect("the copy was just built");
        m.op_mut(copy_op).operands[0] = formed;
        self.packet.insert(copy);
        for held in self
            .slot_value
            .values_mut()
            .chain(self.written_once.values_mut())
        {
            if *held == formed {
                *held = copy;
            }
        }
        self.pins.insert(formed, copy);
        copy
    }

    /// The verifier accepts `packet + index` when it knows the index's smallest value is within
    /// ±2^29 — on the path it follows, where the index may be exact (a loop's second iteration
    /// after `off = off + len + 0xffffffff`): an unsigned index whose every value is below 2^29,
    /// or one at most 32 bits wide (zero-extended) whose bound ksc only knows from its type (the
    /// verifier then knows no larger smallest value either) and whose smallest value is below
    /// 2^29.
    fn formation_safe(&self, m: &Module, index: Value) -> bool {
        let Some(index) = unsigned_source(m, index) else {
            return false;
        };
        let ty = m.value_type(index);
        let limit = MAX_POINTER_OFFSET as u128;
        let max = self.max_of(m, index, 4);
        let opaque_narrow = size_of(m, ty) <= 4
            && max.is_none_or(|max| Some(max) >= int_max(ty))
            && !self.may_be_known_huge(m, index, 4);
        let low = self.min_of(m, index, 4).is_some_and(|min| min < limit);
        low && (opaque_narrow || max.is_some_and(|max| max < limit))
    }

    /// `v` may be huge where the verifier knows it exactly (through widenings and the values
    /// stored into locals): a huge constant, a function's result, a subtraction that may go below 0, a constant added, multiplied or shifted in that
    /// may carry it past its type's top, high bits a constant or a complement sets (`14 - ihl`,
    /// `(b & 15) * 0xffffffff`, which LLVM makes a negation, `~(b & 15)`, `x ^ 0xfffffff0`).
    fn may_be_known_huge(&self, m: &Module, v: Value, depth: u32) -> bool {
        // The verifier follows a static function with each caller's registers, so it knows a
        // parameter as exactly as the caller knows the argument (`byte_at(p, end, n - 300)`).
        if self.called_params.contains(&v) {
            return true;
        }
        let Some(d) = def_op(m, v).map(|op| m.op(op)) else {
            return false;
        };
        // An operand the verifier may know as huge keeps the result huge through arithmetic
        // (`i * 1`, `i + 1` of such a parameter).
        let arithmetic = matches!(
            d.opcode,
            Opcode::CoreAdd
                | Opcode::CoreSub
                | Opcode::CoreMul
                | Opcode::CoreShl
                | Opcode::CoreOr
                | Opcode::CoreXor
        );
        if arithmetic
            && d.operands
                .iter()
                .any(|&o| m.const_int(o).is_none() && self.may_be_known_huge(m, o, depth))
        {
            return true;
        }
        let top = int_max(m.value_type(v));
        // `x op c` (either order) past the type's top, for a bounded `x`.
        let with_constant = |combine: fn(u128, u128) -> Option<u128>| {
            let (a, b) = (d.operands[0], d.operands[1]);
            let (x, c) = match (m.const_int(a), m.const_int(b)) {
                (None, Some(c)) => (a, c),
                (Some(c), None) => (b, c),
                _ => return false,
            };
            let reached = u128::try_from(c)
                .ok()
                .zip(self.max_of(m, x, depth))
                .and_then(|(c, max)| combine(max, c));
            // (An operand the verifier knows nothing of wraps into nothing it knows either.)
            match (self.max_of(m, x, depth), reached, top) {
                (None, ..) => false,
                (Some(_), Some(r), Some(top)) => r > top,
                _ => true,
            }
        };
        match d.opcode {
            // A huge constant stored into a local the index reads (`var l3: u32 = 0xffffffff`,
            // then `l3 = 18` on one path only): exact on the path that stored it.
            Opcode::CoreConst => m
                .const_int(v)
                .is_some_and(|c| !(0..MAX_POINTER_OFFSET).contains(&c)),
            Opcode::CoreCast => self.may_be_known_huge(m, d.operands[0], depth),
            // The verifier follows a static function with the caller's registers and hands back
            // the result it tracked, exact where the callee's is (`return ihl * 0xffffffff`);
            // one bounded below 2^29 is safe anyway (`formation_safe`).
            Opcode::CoreCall => true,
            Opcode::CoreLoad if depth > 0 && self.stores.contains_key(&d.operands[0]) => self
                .stores[&d.operands[0]]
                .iter()
                .any(|&stored| self.may_be_known_huge(m, stored, depth - 1)),
            // A field of a local aggregate (`info.l4_off` of a struct parameter or of a
            // function's result): huge when a whole value stored into it may be, or a value
            // stored into any of its fields.
            Opcode::CoreLoad if depth > 0 => {
                let Some(local) = aggregate_root(m, d.operands[0]) else {
                    return false;
                };
                self.aggregate_stores.get(&local).is_some_and(|stored| {
                    stored
                        .iter()
                        .any(|&v| self.may_be_known_huge(m, v, depth - 1))
                })
            }
            Opcode::CoreSub => {
                let low = self.min_of(m, d.operands[0], depth).unwrap_or(0);
                self.max_of(m, d.operands[1], depth)
                    .is_none_or(|high| high > low)
            }
            Opcode::CoreAdd => with_constant(u128::checked_add),
            Opcode::CoreMul => with_constant(u128::checked_mul),
            // High bits a constant sets, or a complement of a bounded value sets: the verifier
            // knows them, and so a smallest value past 2^29.
            Opcode::CoreOr | Opcode::CoreXor => d.operands.iter().any(|&o| {
                m.const_int(o)
                    .is_some_and(|c| !(0..MAX_POINTER_OFFSET).contains(&c))
            }),
            Opcode::CoreNot => {
                m.value_type(v).is_int()
                    && self
                        .max_of(m, d.operands[0], depth)
                        .zip(top)
                        .is_some_and(|(max, top)| max < top)
            }
            Opcode::CoreShl => {
                m.const_int(d.operands[1]).is_some()
                    && with_constant(|max, c| max.checked_shl(u32::try_from(c).ok()?))
            }
            _ => false,
        }
    }

    /// A lower bound of an unsigned integer, from its constants, masks, widenings, scalings and
    /// sums, `depth` levels of once-written locals deep (the counterpart of [`Self::max_of`]).
    fn min_of(&self, m: &Module, v: Value, depth: u32) -> Option<u128> {
        self.min_with(m, v, depth, false)
    }

    /// [`Self::min_of`], raised by the tests before each load of a local where `tested`
    /// (`ihl ≥ 5` after `if (ihl < 5) { return }`): a bound ksc knows, the verifier maybe not.
    fn min_with(&self, m: &Module, v: Value, depth: u32, tested: bool) -> Option<u128> {
        let Some(op) = def_op(m, v) else {
            return Some(0);
        };
        let d = m.op(op);
        match d.opcode {
            Opcode::CoreConst => u128::try_from(m.const_int(v)?).ok(),
            Opcode::CoreCast if is_unsigned(m.value_type(d.operands[0])) => {
                let from = m.value_type(d.operands[0]);
                if size_of(m, from) > size_of(m, m.value_type(v)) {
                    // A truncation keeps no lower bound.
                    Some(0)
                } else {
                    self.min_with(m, d.operands[0], depth, tested)
                }
            }
            Opcode::CoreAdd => self
                .min_with(m, d.operands[0], depth, tested)?
                .checked_add(self.min_with(m, d.operands[1], depth, tested)?),
            Opcode::CoreMul => self
                .min_with(m, d.operands[0], depth, tested)?
                .checked_mul(self.min_with(m, d.operands[1], depth, tested)?),
            Opcode::CoreShl => self
                .min_with(m, d.operands[0], depth, tested)?
                .checked_shl(u32::try_from(m.const_int(d.operands[1])?).ok()?),
            // What was stored, or what the tests before the load leave, whichever is more.
            Opcode::CoreLoad => {
                let stored = match self.written_once.get(&d.operands[0]) {
                    Some(&s) if depth > 0 => self.min_with(m, s, depth - 1, tested)?,
                    _ => 0,
                };
                let tested = tested.then(|| self.locals.tested_min(m, op, v)).flatten();
                Some(stored.max(tested.unwrap_or(0)))
            }
            _ => Some(0),
        }
        // Arithmetic that may wrap (no upper bound within the type) may end anywhere, 0 included.
        .map(|min| {
            if self.max_of(m, v, depth).is_some() {
                min
            } else {
                0
            }
        })
    }

    /// The constant offset the verifier sees, from the nearest call's pointer, on an address
    /// formed by a variable index from a packet parameter.
    fn indexed_param_fixed_offset(&self, k: Key) -> Option<i128> {
        let Root::Indexed {
            base,
            slot: false,
            offset,
            ..
        } = k.root
        else {
            return None;
        };
        Some(self.param_offsets.get(&base)?.nearest + offset + k.offset)
    }

    /// E0611 for access `op` at a variable offset from a pointer `-fixed` bytes before the packet.
    fn refuse_variable_behind(&mut self, op: OpId, fixed: i128) {
        self.errors.push(PassError::user(op, Code::E0611, format!("from where a call places the packet parameter, this access is a variable offset from a pointer {} bytes before the start of the packet, which the kernel refuses", -fixed)));
    }

    /// The constant offsets from `ctx->data` address `k` may have, where known.
    fn data_offset(&self, m: &Module, k: Key) -> Option<Passed> {
        let root = match k.root {
            Root::Value(root) => root,
            // `B + offset + index`: as near as `B + offset`, as far as the index's bound takes it.
            Root::Indexed {
                base,
                slot: false,
                offset,
                max,
                ..
            } => {
                let from = self.data_offset(m, Key::at(Root::Value(base), offset + k.offset))?;
                return Some(Passed {
                    nearest: from.nearest,
                    farthest: from.farthest + max,
                });
            }
            _ => return None,
        };
        // An address formed with a bounded index (a later index's base).
        if let Some(formed) = self
            .key(m, root)
            .filter(|f| matches!(f.root, Root::Indexed { .. }) && f.formed_at == Some(root))
        {
            return self.data_offset(m, formed.plus(k.offset));
        }
        if let Some(&p) = self.param_offsets.get(&root) {
            return Some(Passed {
                nearest: p.nearest + k.offset,
                farthest: p.farthest + k.offset,
            });
        }
        let origin = def_op(m, root)?;
        (ctx_field(m, origin) == Some(b"data")).then_some(Passed {
            nearest: k.offset,
            farthest: k.offset,
        })
    }

    /// An access at a constant packet offset that no packet can hold: before the packet's start,
    /// or past the longest packet whose bytes the verifier can prove.
    fn unreachable_access(
        &mut self,
        m: &Module,
        op: OpId,
        addr: Value,
        key: Option<Key>,
        width: i128,
    ) -> bool {
        if let Some(fixed) = key.and_then(|k| self.indexed_param_fixed_offset(k)) {
            if fixed < 0 {
                self.refuse_variable_behind(op, fixed);
                return true;
            }
        }
        let constant = key.filter(|k| !matches!(k.root, Root::Indexed { .. }));
        let Some(k) = constant else {
            // `data + off + K` with an unsigned `off`: at least `K` bytes in.
            let Some(first) = self.lowest_data_offset(m, addr, 4) else {
                return false;
            };
            // Before the packet's start at its smallest index, with no index the clamp could
            // take the negative part into (an array field of a header cast from `data - 54`):
            // the verifier refuses a negative constant offset next to a variable one.
            if first < 0 && first > -MAX_POINTER_OFFSET && self.variable_step(m, addr).is_none() {
                self.errors.push(PassError::user(op, Code::E0611, format!("this access reads from {} bytes before the start of the packet where its index is smallest, and the kernel refuses a packet address with a negative constant offset whatever the index", -first)));
                return true;
            }
            if first + width <= MAX_PACKET_BYTES || first >= MAX_POINTER_OFFSET {
                return false;
            }
            self.errors.push(PassError::user(op, Code::E0611, format!("this access reads bytes from {first} on of the packet, but no packet the kernel can check is longer than {MAX_PACKET_BYTES} bytes")));
            return true;
        };
        // Through a parameter, from where the nearest and the farthest call place it.
        let passed = match k.root {
            Root::Value(p) => self.param_offsets.get(&p).copied(),
            _ => None,
        };
        let (nearest, farthest) = passed.map_or((k.offset, k.offset), |p| {
            (p.nearest + k.offset, p.farthest + k.offset)
        });
        let through = |placed: i128| match passed {
            Some(_) => format!(" (through a parameter a call places {placed} bytes in)"),
            None => String::new(),
        };
        let why = if nearest < 0 {
            format!(
                "this access reads {} byte{} before the start of the packet{}",
                -nearest,
                if nearest == -1 { "" } else { "s" },
                through(nearest - k.offset)
            )
        } else if farthest + width > MAX_PACKET_BYTES {
            format!("this access reads bytes {}..{} of the packet{}, but no packet the kernel can check is longer than {MAX_PACKET_BYTES} bytes", farthest, farthest + width, through(farthest - k.offset))
        } else {
            return false;
        };
        if k.offset > -MAX_POINTER_OFFSET && k.offset < MAX_POINTER_OFFSET {
            self.errors.push(PassError::user(op, Code::E0611, why));
        }
        true
    }

    /// The smallest offset from `ctx->data` that `addr` can have: constant offsets plus unsigned
    /// variable ones (at least their smallest value), down to this function's `ctx->data` or a
    /// packet parameter (from where its farthest call places it: that call's check fails).
    fn lowest_data_offset(&self, m: &Module, addr: Value, depth: u32) -> Option<i128> {
        if Self::is_data(m, addr) {
            return Some(0);
        }
        if let Some(passed) = self.param_offsets.get(&addr) {
            return Some(passed.farthest);
        }
        let d = m.op(def_op(m, addr)?);
        let base = |extra: i128| Some(self.lowest_data_offset(m, d.operands[0], depth)? + extra);
        match d.opcode {
            Opcode::CoreCast => base(0),
            Opcode::CorePtrAdd => match m.const_int(d.operands[1]) {
                Some(c) => base(c),
                None => {
                    let index = unsigned_source(m, d.operands[1])?;
                    base(i128::try_from(self.min_of(m, index, depth)?).ok()?)
                }
            },
            Opcode::CoreFieldAddr | Opcode::KsKfieldAddr => {
                let Some(Attr::Str(f)) = m.attr(def_op(m, addr)?, "field") else {
                    return None;
                };
                base(field_offset(m, m.value_type(d.operands[0]), f)?)
            }
            Opcode::CoreElemAddr | Opcode::KsIndexAddr => {
                let elem = m.value_type(addr).pointee()?.clone();
                let index = match m.const_int(d.operands[1]) {
                    Some(c) => c,
                    None => {
                        let index = unsigned_source(m, d.operands[1])?;
                        i128::try_from(self.min_of(m, index, depth)?).ok()?
                    }
                };
                base(index * size_of(m, &elem))
            }
            Opcode::CoreLoad if depth > 0 => {
                self.lowest_data_offset(m, self.held(m, addr)?, depth - 1)
            }
            _ => None,
        }
    }

    /// The address load `v` reads from a local: the one stored, where the local is written once,
    /// or where only one of its stores reaches the load.
    fn held(&self, m: &Module, v: Value) -> Option<Value> {
        let d = m.op(def_op(m, v)?);
        if d.opcode != Opcode::CoreLoad {
            return None;
        }
        let slot = d.operands[0];
        match self.slots.get(&slot) {
            Some(1) => self.slot_value.get(&slot).copied(),
            _ => (self.locals.stored_read(v)).filter(|stored| self.packet.contains(stored)),
        }
    }

    /// The canonical root and constant offset of a packet address, when the offset is constant
    /// or a bounded variable index.
    fn key(&self, m: &Module, v: Value) -> Option<Key> {
        let Some(op) = def_op(m, v) else {
            return Some(Key::at(Root::Value(v), 0));
        };
        let d = m.op(op);
        match d.opcode {
            // A local written once holds one address: see through it to what was stored.
            Opcode::CoreLoad if self.slots.get(&d.operands[0]) == Some(&1) => {
                match self.slot_value.get(&d.operands[0]) {
                    Some(&stored) => self.key(m, stored),
                    None => Some(Key::at(Root::Slot(d.operands[0]), 0)),
                }
            }
            // A local written more than once: a load that one store reaches holds the address
            // stored (`fh = (data + off) as *frag_hdr` in each round of an unrolled walk); and
            // every load reading the same store is one address (LLVM keeps it in one register),
            // so a test of one proves the bytes of the others.
            Opcode::CoreLoad => match self.held(m, v) {
                Some(stored) => self.key(m, stored),
                None => Some(Key::at(
                    Root::Value(self.locals.same_read(v).unwrap_or(v)),
                    0,
                )),
            },
            Opcode::CoreCast => self.key(m, d.operands[0]),
            // An opaque copy of a pointer is the same address; a copy of a variable-offset
            // formation stands for it (the tested register accesses must go through).
            Opcode::BpfOpaque if m.value_type(v).is_ptr() => {
                let k = self.key(m, d.operands[0])?;
                Some(match k.formed_at {
                    Some(f) if f == d.operands[0] => Key {
                        formed_at: Some(v),
                        ..k
                    },
                    _ => k,
                })
            }
            Opcode::CorePtrAdd => {
                let base = self.key(m, d.operands[0])?;
                match m.const_int(d.operands[1]) {
                    Some(c) => Some(base.plus(c)),
                    None => self.indexed_key(m, base, d.operands[1], 1, v),
                }
            }
            Opcode::CoreElemAddr | Opcode::KsIndexAddr => {
                let base = self.key(m, d.operands[0])?;
                let elem = m.value_type(d.results[0]).pointee()?.clone();
                let size = size_of(m, &elem);
                match m.const_int(d.operands[1]) {
                    Some(i) => Some(base.plus(i * size)),
                    None => self.indexed_key(m, base, d.operands[1], size, v),
                }
            }
            // A kernel header struct's field through a packet pointer (`ip->ttl` on an `*iphdr`).
            Opcode::CoreFieldAddr | Opcode::KsKfieldAddr => {
                let base = self.key(m, d.operands[0])?;
                let Some(Attr::Str(f)) = m.attr(op, "field") else {
                    return None;
                };
                Some(base.plus(field_offset(m, m.value_type(d.operands[0]), f)?))
            }
            _ => Some(Key::at(Root::Value(v), 0)),
        }
    }

    /// An address as `(F, k)`: `k` constant bytes past `F`, a pointer add of an index, through
    /// casts, fields, constant steps and locals written once (`depth` of them deep).
    fn unbounded_formation(&self, m: &Module, v: Value, depth: u32) -> Option<(Value, i128)> {
        let op = def_op(m, v)?;
        let d = m.op(op);
        match d.opcode {
            Opcode::CoreLoad if depth > 0 => {
                self.unbounded_formation(m, self.held(m, v)?, depth - 1)
            }
            Opcode::CoreCast => self.unbounded_formation(m, d.operands[0], depth),
            Opcode::CorePtrAdd => match m.const_int(d.operands[1]) {
                Some(c) => {
                    let (formed, at) = self.unbounded_formation(m, d.operands[0], depth)?;
                    Some((formed, at + c))
                }
                None => Some((v, 0)),
            },
            Opcode::CoreFieldAddr | Opcode::KsKfieldAddr => {
                let Some(Attr::Str(f)) = m.attr(op, "field") else {
                    return None;
                };
                let bytes = field_offset(m, m.value_type(d.operands[0]), f)?;
                let (formed, at) = self.unbounded_formation(m, d.operands[0], depth)?;
                Some((formed, at + bytes))
            }
            _ => None,
        }
    }

    /// The key of `formed = base + index * stride` for a variable `index` the verifier can bound
    /// too (it proves packet ranges only while the offset stays within 0xffff); unbounded ones
    /// stay unproven and get checked (`clamp_index`).
    fn indexed_key(
        &self,
        m: &Module,
        base: Key,
        index: Value,
        stride: i128,
        formed: Value,
    ) -> Option<Key> {
        let (root, slot) = match (base.root, base.formed_at) {
            (Root::Value(b), _) => (b, false),
            (Root::Slot(b), _) => (b, true),
            // A second bounded index (`data + off + i`, `off` a bounded parameter): the
            // address the first one formed is the base, as it is to the verifier, which
            // reaches as far as that index does (`root_reach`).
            (Root::Indexed { .. }, Some(formed)) => (formed, false),
            (Root::Indexed { .. }, None) | (Root::Clamped { .. }, _) => return None,
        };
        let max = (self.max_of(m, index, 4)? as i128).checked_mul(stride)?;
        let offset = base.offset;
        (stride >= 1 && offset >= 0 && offset + max <= 0xffff).then(|| Key {
            root: Root::Indexed {
                base: root,
                slot,
                offset,
                index: self.index_id(m, index),
                stride,
                max,
            },
            offset: 0,
            formed_at: Some(formed),
        })
    }

    /// An upper bound of an integer that cannot be negative, `depth` levels of once-written
    /// locals deep.
    fn max_of(&self, m: &Module, v: Value, depth: u32) -> Option<u128> {
        value_bounds::max_of(m, v, self, depth)
    }

    /// The fact that proves `width` bytes at `key` in bounds.
    fn covering(facts: &[Fact], key: Key, width: i128) -> Option<Fact> {
        if key.offset < 0 {
            return None;
        }
        facts
            .iter()
            .rev()
            .find(|f| f.root == key.root && key.offset + width <= f.end)
            .copied()
    }

    /// The fact a packet comparison proves on one of its outcomes: when false for
    /// `P + K > end`, `P + K >= end`, `end < P + K`; when true for `P + K <= end`,
    /// `end >= P + K`.
    fn fact(&self, m: &Module, cond: Value, outcome: bool) -> Option<Fact> {
        let ptr = self.tested_pointer(m, cond, outcome)?;
        self.provable(m, self.key(m, ptr)?.proves(0))
    }

    /// The packet pointer comparison `cond` shows to be at most `data_end` when it has `outcome`.
    fn tested_pointer(&self, m: &Module, cond: Value, outcome: bool) -> Option<Value> {
        let cmp = views::CoreCmp::of(m, def_op(m, cond)?)?;
        let (l, r) = (cmp.lhs(m), cmp.rhs(m));
        // `ptr_first`: the packet pointer is the left operand for this predicate and outcome.
        let ptr_first = match (cmp.pred(m), outcome) {
            (CmpPred::Gt | CmpPred::Ge, false) | (CmpPred::Le | CmpPred::Lt, true) => true,
            (CmpPred::Lt | CmpPred::Le, false) | (CmpPred::Ge | CmpPred::Gt, true) => false,
            _ => return None,
        };
        let (ptr, end) = if ptr_first { (l, r) } else { (r, l) };
        (self.data_end.contains(&end) && self.packet.contains(&ptr)).then_some(ptr)
    }

    /// A fact the verifier learns too: it records a packet range only while the pointer's
    /// largest offset stays within 0xffff; a test further out proves nothing to it.
    fn provable(&self, m: &Module, f: Fact) -> Option<Fact> {
        let reach = f.end + self.root_reach(m, f.root)?;
        (reach <= MAX_PACKET_BYTES).then_some(f)
    }

    /// How far past the packet pointer it starts from a root may lie (`None`: unbounded).
    /// A pointer local moved more than once (`opt = opt + len` in a loop) lies as far as its
    /// stores can take it from `ctx->data`; a packet parameter as far as its farthest call
    /// places it.
    fn root_reach(&self, m: &Module, root: Root) -> Option<i128> {
        match root {
            Root::Value(v) if self.is_moving(m, v) => self.locals.at(v).map(|b| b as i128),
            Root::Value(v) => match self.key(m, v) {
                // An address formed with a bounded index reaches as far as the index does.
                Some(
                    k @ Key {
                        root: inner @ Root::Indexed { .. },
                        ..
                    },
                ) if k.formed_at == Some(v) => Some(self.root_reach(m, inner)? + k.offset),
                _ => Some(self.param_offsets.get(&v).map_or(0, |p| p.farthest)),
            },
            Root::Slot(_) => Some(0),
            // (Only this pass's own checks prove bytes there.)
            Root::Clamped { .. } => None,
            Root::Indexed {
                base,
                slot,
                offset,
                max,
                ..
            } => {
                let base = if slot {
                    Root::Slot(base)
                } else {
                    Root::Value(base)
                };
                Some(self.root_reach(m, base)? + offset + max)
            }
        }
    }

    /// `v` is a load of a packet pointer local written more than once.
    fn is_moving(&self, m: &Module, v: Value) -> bool {
        def_op(m, v).is_some_and(|op| {
            m.op(op).opcode == Opcode::CoreLoad
                && self
                    .slots
                    .get(&m.op(op).operands[0])
                    .is_some_and(|&n| n > 1)
        })
    }

    /// A relation between packet pointers and data_end that the verifier learns nothing from, or
    /// that LLVM can merge with an inserted check into one it learns nothing from: `==` / `!=`
    /// between them, their difference (`data_end - P`, compared as an integer), and `P < end`
    /// (`end > P`) — where it fails, LLVM knows `P >= end`, and a check `P > end` leaving the
    /// same way folds with it into `P != end` — and likewise `P >= end` (`end <= P`) where it
    /// holds (an access there, in bounds only when `P == end`, was read unchecked).
    /// `P == end`, `P != Q` between packet pointers: the verifier learns no range from them, but
    /// LLVM learns an equality it uses elsewhere — in this function, or in one it is inlined
    /// into — writing `P` for `end` in a later `p + 4 > end`, a test between two packet pointers
    /// that proves nothing to the kernel. The operands are compared as opaque copies, of which
    /// LLVM knows nothing.
    fn hide_pointer_equalities(&mut self, m: &mut Module, f: OpId) {
        for op in m.collect_nested(f, |d| d.opcode == Opcode::CoreCmp) {
            let equality = matches!(views::CoreCmp(op).pred(m), CmpPred::Eq | CmpPred::Ne);
            if !equality || !self.is_blind_test(m, op) {
                continue;
            }
            for i in 0..2 {
                let v = m.op(op).operands[i];
                let hidden = m.builder_before(op).bpf_opaque(v);
                m.op_mut(op).operands[i] = hidden;
            }
        }
    }

    fn is_blind_test(&self, m: &Module, op: OpId) -> bool {
        let d = m.op(op);
        let pointer = |v: Value| self.packet.contains(&v) || self.data_end.contains(&v);
        match d.opcode {
            // (A length only counted or stored, `bytes += data_end - data`, tests nothing.)
            Opcode::CorePtrDiff => {
                d.operands.iter().any(|&v| self.data_end.contains(&v)) && decides(m, d.results[0])
            }
            Opcode::CoreCmp => {
                let (l, r) = (d.operands[0], d.operands[1]);
                match views::CoreCmp(op).pred(m) {
                    CmpPred::Eq | CmpPred::Ne => pointer(l) && pointer(r),
                    CmpPred::Lt | CmpPred::Ge => {
                        self.packet.contains(&l) && self.data_end.contains(&r)
                            || self.beyond_reach(m, op)
                    }
                    CmpPred::Gt | CmpPred::Le => {
                        self.data_end.contains(&l) && self.packet.contains(&r)
                            || self.beyond_reach(m, op)
                    }
                }
            }
            _ => false,
        }
    }

    /// Whether comparison `op` tests a packet pointer a constant further out than the verifier
    /// proves ranges (`data + 65536 > data_end`): it teaches the verifier nothing, but LLVM learns
    /// from it that nearer bytes are in the packet and would drop ksc's checks of them.
    fn beyond_reach(&self, m: &Module, op: OpId) -> bool {
        let Some(&cond) = m.op(op).results.first() else {
            return false;
        };
        [false, true].into_iter().any(|outcome| {
            let key = self
                .tested_pointer(m, cond, outcome)
                .and_then(|ptr| self.key(m, ptr));
            key.is_some_and(|k| k.proves(0).end > MAX_PACKET_BYTES)
        })
    }

    fn region(&mut self, m: &mut Module, r: RegionId, facts: &mut Vec<Fact>) {
        let depth = facts.len();
        self.region_keeping_facts(m, r, facts);
        facts.truncate(depth);
    }

    /// Walks region `r`, leaving in `facts` those that hold at its end.
    fn region_keeping_facts(&mut self, m: &mut Module, r: RegionId, facts: &mut Vec<Fact>) {
        for b in m.region(r).blocks.clone() {
            for op in m.block(b).ops.clone() {
                self.op(m, op, facts);
            }
        }
        // A body that ends without a return returns there.
        if r == self.body && !m.region_ends_in(r, |o| o.has(crate::ir::Traits::TERMINATOR)) {
            self.note_return(m, facts);
        }
    }

    /// Records what a return with `facts` proves about the bytes from `ctx->data`.
    fn note_return(&mut self, m: &Module, facts: &[Fact]) {
        let proven = facts
            .iter()
            .filter(|f| matches!(f.root, Root::Value(r) if Self::is_data(m, r)))
            .map(|f| f.end)
            .max()
            .unwrap_or(0);
        self.returns_prove = Some(self.returns_prove.map_or(proven, |k| k.min(proven)));
    }

    /// `v` is this function's `ctx->data`: a packet pointer the verifier tracks with id 0, so a
    /// range proven on any such pointer holds for every one it holds (in every frame).
    fn is_data(m: &Module, v: Value) -> bool {
        matches!(def_op(m, v), Some(op) if ctx_field(m, op) == Some(b"data"))
    }

    /// After a call that returns normally only with `K` bytes from `ctx->data` proven, they are
    /// proven for this function's `ctx->data` pointers formed before the call: the verifier marks
    /// the range on every packet pointer of the same id in every frame (no check is needed).
    fn callee_facts(&self, m: &Module, call: OpId, facts: &mut Vec<Fact>) {
        let Some(Attr::Sym(callee)) = m.attr(call, "callee") else {
            return;
        };
        let Some(&k) = self.callees_prove.get(&**callee) else {
            return;
        };
        if k <= 0 {
            return;
        }
        for &p in &self.packet {
            let before = def_op(m, p).is_some_and(|d| m.precedes_structurally(d, call));
            if before && Self::is_data(m, p) {
                facts.push(Fact {
                    root: Root::Value(p),
                    end: k,
                    tested: None,
                });
            }
        }
    }

    fn op(&mut self, m: &mut Module, op: OpId, facts: &mut Vec<Fact>) {
        let d = m.op(op).clone();
        match d.opcode {
            Opcode::CoreLoad | Opcode::CoreStore | Opcode::KsLoadOrZero => {
                let (addr, ty) = if d.opcode == Opcode::CoreStore {
                    (d.operands[1], m.value_type(d.operands[0]).clone())
                } else {
                    (d.operands[0], m.value_type(d.results[0]).clone())
                };
                if !self.packet.contains(&addr) {
                    return;
                }
                let width = size_of(m, &ty);
                let key = self.key(m, addr);
                if self.unreachable_access(m, op, addr, key, width) {
                    return;
                }
                // (An address a constant past a bounded index, `p[i * 2 + 1]`, is covered by a
                // check of the index's own address too.)
                let covered = key
                    .and_then(|k| Some((Self::covering(facts, k, width)?, k)))
                    .or_else(|| {
                        let k = self.split_key(m, addr)?;
                        Some((Self::covering(facts, k, width)?, k))
                    });
                // An address with an index ksc cannot bound: covered by a check already made
                // at the same formation (`ch->type` after `ch->length`, across calls between).
                let formation = key
                    .is_none()
                    .then(|| self.unbounded_formation(m, addr, 4))
                    .flatten();
                if let Some((fact, start, at)) = formation.and_then(|(formed, at)| {
                    facts.iter().rev().find_map(|f| match f.root {
                        Root::Clamped {
                            formed: g,
                            start,
                            low,
                        } if g == formed && at >= low && at + width <= f.end => {
                            Some((*f, start, at))
                        }
                        _ => None,
                    })
                }) {
                    if let Some(tested) = fact.tested {
                        self.access_through(m, op, addr, tested, at - start);
                        return;
                    }
                }
                if let Some((fact, k)) = covered {
                    if let Some(tested) = fact.tested {
                        let tested = match self.twinned.contains(&tested) {
                            true => self.pin(m, tested),
                            false => tested,
                        };
                        // (The address may have been formed from the one just pinned.)
                        let addr = m.op(op).operands[usize::from(d.opcode == Opcode::CoreStore)];
                        let formed_at = self.key(m, addr).map_or(k.formed_at, |k| k.formed_at);
                        if formed_at != Some(tested) {
                            self.access_through(m, op, addr, tested, k.offset);
                        }
                    }
                    return;
                }
                // Bytes a test before implies: checked once, right after that test.
                if let Some(fact) = key.and_then(|k| self.check_implied(m, op, k, width)) {
                    facts.push(fact);
                    return;
                }
                // A variable index is bounded first, so the pointer that is checked is the one
                // that is dereferenced (the verifier proves ranges per pointer).
                // So is one that steps back after its index (`ext + len - 1`): the verifier
                // refuses a negative constant offset from a variable one.
                // And so is one whose index may reach so far that the access would end past
                // 0xffff (a `u16` offset): a check of that pointer teaches the verifier nothing.
                let steps_back =
                    key.is_some_and(|k| matches!(k.root, Root::Indexed { .. }) && k.offset < 0);
                // The check covers the accesses just ahead too ([`ahead`]).
                let wide = key
                    .filter(|_| !steps_back)
                    .map(|k| (k, self.reach_ahead(m, op, k, width)))
                    .and_then(|(k, w)| self.provable(m, k.proves(w)).map(|f| (f, w)));
                let (proven, width) = match wide {
                    Some((fact, w)) => (Some(fact), w),
                    None => (key.and_then(|k| self.provable(m, k.proves(width))), width),
                };
                // A pointer moved further than ksc can bound (`p = p + 2` in a loop): formed
                // again from `ctx->data`, checked for the accesses just ahead too, and those
                // go through the pointer checked (`p[0] << 8 | p[1]` is one check, as in C).
                if let Some(k) = key.filter(|k| proven.is_none() && !steps_back && k.offset >= 0) {
                    let reach = self.reach_ahead(m, op, k, width);
                    if let Some(rebased) = self.rebase_moved(m, op, addr, reach) {
                        self.insert_check(m, op, rebased.address, reach, true);
                        facts.push(Fact {
                            root: k.root,
                            end: k.offset + reach,
                            tested: Some(rebased.root),
                        });
                        return;
                    }
                }
                let (checked, reach_back) = if proven.is_none() || steps_back {
                    let clamped = self.clamp_index(m, op, addr, width);
                    (clamped.address, clamped.reach_back)
                } else {
                    (addr, 0)
                };
                // A clamped address is `data + opaque(index)`: where two arms check such
                // addresses and read alike, LLVM would sink the reads into one tail that forms
                // `data + phi(indexes)` again, a pointer the verifier knows no range of. The read
                // goes through an opaque copy of the checked address, which LLVM cannot rebuild.
                let hide = self.blind_tests || checked != addr;
                self.insert_check(m, op, checked, width, hide);
                facts.extend(proven);
                // The pointer now checked proves these bytes to later accesses of the formation.
                if let (Some((formed, at)), true) = (formation, checked != addr) {
                    let tested = m.op(op).operands[usize::from(d.opcode == Opcode::CoreStore)];
                    facts.push(Fact {
                        root: Root::Clamped {
                            formed,
                            start: at,
                            // (Only where the checked pointer is the formation itself.)
                            low: if reach_back == at { 0 } else { at },
                        },
                        end: at + width,
                        tested: Some(tested),
                    });
                }
            }
            Opcode::KsReturn => self.note_return(m, facts),
            // What the body proves holds after the try when every handler leaves.
            Opcode::KsTry => {
                let (body, handlers) = d.regions.split_first().expect("a try has a body");
                let mut at_end = facts.clone();
                self.region_keeping_facts(m, *body, &mut at_end);
                for &h in handlers {
                    self.region(m, h, &mut facts.clone());
                }
                // (Not a fact whose tested address is formed inside: it is out of scope after.)
                if handlers.iter().all(|&h| region_leaves(m, h)) {
                    let known = facts.len();
                    facts.extend(
                        at_end
                            .into_iter()
                            .skip(known)
                            .filter(|f| f.tested.is_none_or(|t| !m.defined_within(t, op))),
                    );
                }
            }
            Opcode::CoreCall => {
                self.reform_outlying_args(m, op);
                self.pass_tested_args(m, op, facts);
                self.callee_facts(m, op, facts);
                // (An address formed apart from a tested one is a pointer the kernel knows no
                // range of: only the tested formation itself carries one into the callee. Every
                // `ctx->data` is one pointer to it.)
                let data_root = |r: Root| matches!(r, Root::Value(v) if Self::is_data(m, v));
                // (A pointer before the proven bytes' start, `data - 14`, has none proven: its
                // first bytes lie before the packet.)
                self.note_packet_args(m, op, |key| {
                    facts
                        .iter()
                        .filter(|f| {
                            (f.root == key.root || data_root(f.root) && data_root(key.root))
                                && f.tested == key.formed_at
                                && key.offset >= 0
                        })
                        .map(|f| f.end - key.offset)
                        .max()
                        .unwrap_or(0)
                });
            }
            Opcode::KsIf | Opcode::CoreOr | Opcode::CoreAdd
                if self.fuse_byte_pair(m, op, facts) => {}
            Opcode::KsIf => {
                let cond = d.operands[0];
                let when_true = self.facts(m, cond, true);
                let when_false = self.facts(m, cond, false);
                let mut then_facts = facts.clone();
                then_facts.extend(when_true.iter().copied());
                self.region(m, d.regions[0], &mut then_facts);
                let mut else_facts = facts.clone();
                else_facts.extend(when_false.iter().copied());
                self.region(m, d.regions[1], &mut else_facts);
                // `if (P + K > end) { return }`: the rest of the block runs only when the test failed.
                if region_leaves(m, d.regions[0]) {
                    facts.extend(when_false);
                    self.note_implied(m, op, cond, false);
                }
                if region_leaves(m, d.regions[1]) {
                    facts.extend(when_true);
                    self.note_implied(m, op, cond, true);
                }
            }
            _ => {
                for r in d.regions {
                    let mut inner = facts.clone();
                    self.region(m, r, &mut inner);
                }
            }
        }
    }

    /// A variable index into packet memory (§10.2 rule 4) must have a bound the verifier knows
    /// before it is added to a packet pointer: the verifier proves packet ranges only while
    /// `umax(index) + width <= 0xffff`. So an index above `0xffff - width` aborts (no packet is that
    /// long), which bounds it; the address is then formed from the bounded index (an opaque copy,
    /// so LLVM cannot reuse an address formed before the bound, e.g. by the user's own test) and
    /// checked. This is the intent of the specified `i & 0xffff`, which alone leaves
    /// `umax + width` too large.
    fn clamp_index(
        &mut self,
        m: &mut Module,
        access: OpId,
        addr: Value,
        width: i128,
    ) -> ClampedAddress {
        let Some((above, step, offset_above)) = self.variable_step(m, addr) else {
            let address = self
                .rebase_moved(m, access, addr, width)
                .map_or(addr, |r| r.address);
            return ClampedAddress::at(address);
        };
        let d = m.op(step).clone();
        let (base, index) = (d.operands[0], d.operands[1]);
        let stride = byte_stride(m, step);
        // A base moved by indexes ksc cannot bound (`ext = data + off` in a loop, then
        // `ext + len - 1`): the verifier may know the base's offset exactly (65534 on a first
        // iteration) or as a range below 0, and proves no range for a variable index on top of
        // it. So the base's steps join the index: the address is formed from where they start,
        // by one checked sum.
        let moved = self.base_steps(m, base);
        let base_root = moved.as_ref().map_or(base, |s| s.from);
        // A base before the packet's origin (`data - 14 + i`): the verifier refuses a negative
        // constant part however large the index, so the index absorbs it and the address is
        // formed from the origin (an index that ends before the origin aborts, like any access
        // outside the packet). So does a base ahead of it moved back by a signed index
        // (`tcp - doff`): only the sum of the two is a distance from the origin. A moved base's constant part is absorbed too, and so is the
        // distance from `ctx->data` of a pointer local moved more than once (whose offset ksc
        // does not know, and the verifier may know exactly).
        let absorbed = match self.key(m, base_root) {
            Some(Key {
                root: Root::Value(origin),
                offset,
                ..
            }) => match self.end {
                Some(PacketEnd::Context(ctx))
                    if self.is_moving(m, origin) && self.from_data.contains(&origin) =>
                {
                    Some((Start::DataAndDistance { ctx, moved: origin }, offset))
                }
                _ if offset < 0 || moved.is_some() || !never_negative(m, index) => {
                    Some((Start::At(origin), offset))
                }
                _ => None,
            },
            _ => None,
        };
        // So does a constant part after the index that steps back (`ext + len - 1`): the
        // verifier refuses a negative constant offset from a variable one as well.
        let back = offset_above.min(0);
        let moved_bytes = moved.as_ref().map_or(0, |s| s.bytes);
        let absorbs = absorbed.is_some();
        let (start, shift) = match absorbed {
            Some((start, offset)) => (Some(start), offset + moved_bytes + back),
            None if back < 0 || moved.is_some() => (Some(Start::At(base_root)), moved_bytes + back),
            None => (None, 0),
        };
        // A packet parameter that a call places before the packet's start, with no constant on
        // top that brings the address back in: the verifier refuses a negative constant offset
        // next to a variable one, and here is no `ctx->data` to form the address from.
        if let Some(Key {
            root: Root::Value(param),
            offset,
            ..
        }) = self.key(m, base_root)
        {
            if let Some(nearest) = self.param_offsets.get(&param).map(|p| p.nearest) {
                let kept = if start.is_some() { 0 } else { offset };
                let fixed = nearest + kept + if back < 0 { 0 } else { offset_above };
                if fixed < 0 {
                    self.refuse_variable_behind(access, fixed);
                    return ClampedAddress::at(addr);
                }
            }
        }
        // The verifier proves a range only while the base's constant part, the index and the
        // access together stay within 0xffff bytes of the origin.
        // (A parameter's offset counts from where the farthest call places it.)
        let passed = |root: Value| self.param_offsets.get(&root).map_or(0, |p| p.farthest);
        let below = match self.key(m, base_root) {
            _ if absorbs => 0,
            Some(Key {
                root:
                    Root::Indexed {
                        base,
                        slot,
                        offset,
                        max,
                        ..
                    },
                offset: k,
                ..
            }) => offset + max + k + if slot { 0 } else { passed(base) },
            Some(Key {
                root: Root::Value(root),
                offset,
                ..
            }) => offset + passed(root),
            Some(k) => k.offset,
            None => 0,
        }
        .max(0);
        let room = 0xffff - width.clamp(1, 0xffff) - offset_above.max(0) - below;
        if room < 0 {
            // Not even index 0 is provable: the address it forms is already past the longest
            // packet the verifier checks (`data + off + k + 1`, a call passing off = 65534).
            let first = below + offset_above.max(0);
            self.errors.push(PassError::user(access, Code::E0611, format!("this access reads bytes from {first} on of the packet where its base lies farthest, but no packet the kernel can check is longer than {MAX_PACKET_BYTES} bytes")));
            return ClampedAddress::at(addr);
        }
        let loc = m.op(access).loc;
        let mut b = m.builder_before(access);
        let rt = b.module.value_type(d.results[0]).clone();
        // Compared and used as one 64-bit value: a narrower index is widened in its own
        // register (on cpu v1 by shifts), and a bound learnt on another copy would not carry.
        // Opaque before the test, so LLVM cannot test another value instead (`x & 15 != 0`
        // for `14 + (x & 15) * 65534 > limit`) and leave the added register unbounded.
        let (wide_index, limit, origin) = match start {
            Some(start) => {
                let (origin, distance) = match start {
                    Start::At(origin) => (origin, None),
                    Start::DataAndDistance { ctx, moved } => {
                        let byte_ptr = Type::ptr(Type::u8());
                        let data = b.ks_ctx_load(ctx, &[], b"data".to_vec(), byte_ptr.clone());
                        let from = b.cast_to(moved, byte_ptr);
                        // Opaque: LLVM would fold `- data - 1` into `~data`, an operation
                        // the verifier refuses on a pointer.
                        let distance = b.core_ptr_diff(from, data);
                        (data, Some(b.bpf_opaque(distance)))
                    }
                };
                let mut bytes = b.core_const(shift, Type::i64());
                let steps = moved.iter().flat_map(|s| s.indexes.iter().copied());
                let distance = distance.map(|d| (d, 1));
                for (index, stride) in steps.chain([(index, stride)]).chain(distance) {
                    let index = b.cast_to(index, Type::i64());
                    let size = b.core_const(stride, Type::i64());
                    let scaled = b.core_mul(index, size);
                    bytes = b.core_add(scaled, bytes);
                }
                (b.cast_to(bytes, Type::u64()), room, Some(origin))
            }
            None => (b.cast_to(index, Type::u64()), room / stride, None),
        };
        let bounded = b.bpf_opaque(wide_index);
        let limit = b.core_const(limit, Type::u64());
        let wide = b.core_cmp(bounded, limit, CmpPred::Gt);
        let check = b.ks_if(wide, None, &[]);
        let fail = b.entry(check, 0);
        // (Formed as the base plus the bounded index, with nothing absorbed into the index, the
        // checked pointer reaches every byte of the formation from its start.)
        let from_base = origin.is_none() && back == 0 && offset_above >= 0;
        let mut new = match origin {
            Some(origin) => {
                let bytes = b.cast_to(origin, Type::ptr(Type::u8()));
                let moved = b.core_ptr_add(bytes, bounded);
                b.cast_to(moved, rt)
            }
            None if d.opcode == Opcode::CoreElemAddr => b.core_elem_addr(base, bounded, rt),
            None => b.core_ptr_add(base, bounded),
        };
        // The casts, fields and constant offsets on top, formed again from the bounded address;
        // when the index took them in, only the access's type.
        if back < 0 {
            let ty = b.module.value_type(addr).clone();
            new = b.cast_to(new, ty);
            self.packet.insert(new);
        }
        for &op in above.iter().rev().filter(|_| back == 0) {
            let o = b.module.op(op).clone();
            let ty = b.module.value_type(o.results[0]).clone();
            new = match o.opcode {
                Opcode::CoreCast => b.core_cast(new, ty),
                Opcode::CoreFieldAddr => match &o.attrs[0] {
                    Some(Attr::Str(f)) => b.core_field_addr(new, f.clone(), ty),
                    _ => return ClampedAddress::at(addr),
                },
                Opcode::KsKfieldAddr => match &o.attrs[0] {
                    Some(Attr::Str(f)) => b.ks_kfield_addr(new, f.clone(), ty),
                    _ => return ClampedAddress::at(addr),
                },
                Opcode::CoreElemAddr => b.core_elem_addr(new, o.operands[1], ty),
                _ => b.core_ptr_add(new, o.operands[1]),
            };
            self.packet.insert(new);
        }
        let mut fb = crate::ir::Builder::new(m, fail);
        fb.loc = loc;
        fb.ks_abort(OUT_OF_BOUNDS.to_vec());
        Self::set_address(m, access, addr, new);
        self.packet.insert(new);
        ClampedAddress {
            address: new,
            reach_back: if from_base { offset_above } else { 0 },
        }
    }

    /// A packet pointer a call passes at a variable offset that may put part of it before the
    /// packet's start — moved back by a signed index (`tcp - doff`), or ahead from a base behind
    /// the start (`data - 14 + ihl`), or stepping back after the index — or 0xffff bytes or more
    /// past it is formed again as a distance from its origin, as an access through it would be:
    /// the verifier refuses every access through a pointer whose variable part may be negative
    /// or whose constant part is, and learns nothing from a test of one that may lie that far;
    /// the callee's own test against data_end does not change that. A distance before the
    /// origin or past any packet aborts.
    fn reform_outlying_args(&mut self, m: &mut Module, call: OpId) {
        let args: Vec<Value> = (m.op(call).operands.iter())
            .filter(|a| self.packet.contains(a))
            .copied()
            .collect();
        for arg in args {
            let Some(outlying) = self.outlying(m, arg).filter(|o| o.reformed) else {
                continue;
            };
            // Bounded to where ksc knows it lies at most, so the verifier knows that too, and
            // the callee's tests prove what ksc takes them to (`PassedOffsets`); else to the
            // longest packet.
            let width = outlying.reach.map_or(1, |r| MAX_PACKET_BYTES - r);
            self.clamp_index(m, call, arg, width);
        }
    }

    /// What [`Self::reform_outlying_args`] makes of packet argument `arg`, when a variable step
    /// forms it.
    fn outlying(&self, m: &Module, arg: Value) -> Option<Outlying> {
        let (_, step, offset_above) = self.variable_step(m, arg)?;
        let (base, index) = (m.op(step).operands[0], m.op(step).operands[1]);
        let base_root = self.base_steps(m, base).map_or(base, |s| s.from);
        let base_key = self.key(m, base_root);
        let base_behind = base_key.is_some_and(|k| k.offset < 0);
        // Or one that may lie so far on that the callee's test of it teaches the verifier
        // nothing (the verifier learns a range only within 0xffff bytes of the start).
        let passed = |root: Value| self.param_offsets.get(&root).map_or(0, |p| p.farthest);
        let base_reach = base_key.map(|k| match k.root {
            Root::Indexed { offset, max, .. } => offset + max + k.offset,
            Root::Value(root) => passed(root) + k.offset,
            _ => k.offset,
        });
        // (A negated unsigned index, `tcp - doff`, moves the address back: at most 0 ahead.)
        let negated = def_op(m, index)
            .filter(|&o| m.op(o).opcode == Opcode::CoreNeg)
            .map(|o| m.op(o).operands[0]);
        let index_reach = match negated {
            Some(moved_back) => self
                .max_of(m, moved_back, 4)
                .filter(|&x| x <= i64::MAX as u128)
                .map(|_| 0),
            None => self
                .max_of(m, index, 4)
                .and_then(|x| i128::try_from(x).ok())
                .map(|x| x.saturating_mul(byte_stride(m, step))),
        };
        let reach = base_reach
            .zip(index_reach)
            .map(|(b, i)| b + i + offset_above.max(0));
        let too_far = reach.is_some_and(|r| r >= MAX_PACKET_BYTES);
        Some(Outlying {
            reach: reach.filter(|&r| r >= 0 && !too_far),
            reformed: offset_above < 0 || base_behind || too_far || !never_negative(m, index),
        })
    }

    /// The variable steps that moved `base` (outermost first), when ksc knows no bound of its
    /// offset but does know where the steps start.
    fn base_steps(&self, m: &Module, base: Value) -> Option<BaseSteps> {
        let mut steps = BaseSteps {
            from: base,
            bytes: 0,
            indexes: Vec::new(),
        };
        while self.key(m, steps.from).is_none() {
            let (_, step, bytes) = self.variable_step(m, steps.from)?;
            let d = m.op(step);
            steps.indexes.push((d.operands[1], byte_stride(m, step)));
            steps.bytes += bytes;
            steps.from = d.operands[0];
        }
        (!steps.indexes.is_empty()).then_some(steps)
    }

    /// The pointer add or element address with a variable index that `addr` is formed from,
    /// the casts, fields and constant offsets applied on top of it (innermost last) and the
    /// bytes they add; through locals written once.
    fn variable_step(&self, m: &Module, addr: Value) -> Option<(Vec<OpId>, OpId, i128)> {
        let (mut above, mut offset, mut v) = (Vec::new(), 0, addr);
        for _ in 0..64 {
            let op = def_op(m, v)?;
            let d = m.op(op);
            match d.opcode {
                Opcode::CorePtrAdd | Opcode::CoreElemAddr
                    if m.const_int(d.operands[1]).is_none() =>
                {
                    return Some((above, op, offset))
                }
                Opcode::CorePtrAdd => offset += m.const_int(d.operands[1])?,
                Opcode::CoreElemAddr => {
                    offset += m.const_int(d.operands[1])?
                        * size_of(m, m.value_type(d.results[0]).pointee()?)
                }
                Opcode::CoreFieldAddr | Opcode::KsKfieldAddr => {
                    let Some(Attr::Str(f)) = &d.attrs[0] else {
                        return None;
                    };
                    offset += field_offset(m, m.value_type(d.operands[0]), f)?;
                }
                Opcode::CoreCast => {}
                Opcode::CoreLoad => {
                    v = self.held(m, v)?;
                    continue;
                }
                _ => return None,
            }
            above.push(op);
            v = d.operands[0];
        }
        None
    }

    /// Forms access `access` at `addr` — a constant offset from a pointer local moved further
    /// than ksc can bound (`opt = opt + len + 65534`) — from `ctx->data` again, by the pointer's
    /// distance from it, saturated: the verifier learns no range from a test or check of a
    /// pointer whose offset may pass 0xffff. A distance past any packet (or before its start)
    /// aborts, as the access would.
    fn rebase_moved(
        &mut self,
        m: &mut Module,
        access: OpId,
        addr: Value,
        width: i128,
    ) -> Option<Rebased> {
        let Some(PacketEnd::Context(ctx)) = self.end else {
            return None;
        };
        let key = self.key(m, addr)?;
        let Root::Value(moved) = key.root else {
            return None;
        };
        if !self.is_moving(m, moved) || key.offset < 0 || !self.from_data.contains(&moved) {
            return None;
        }
        let byte_ptr = Type::ptr(Type::u8());
        let mut b = m.builder_before(access);
        let data = b.ks_ctx_load(ctx, &[], b"data".to_vec(), byte_ptr.clone());
        let from = b.cast_to(moved, byte_ptr.clone());
        let distance = b.core_ptr_diff(from, data);
        let bounded = b.bpf_opaque(distance);
        let room = (MAX_PACKET_BYTES - width.clamp(1, MAX_PACKET_BYTES) - key.offset).max(0);
        let limit = b.core_const(room, Type::u64());
        let far = b.core_cmp(bounded, limit, CmpPred::Gt);
        b.abort_if(far, OUT_OF_BOUNDS);
        let ty = b.module.value_type(addr).clone();
        let again = b.core_ptr_add(data, bounded);
        if let Some(slot) = self.reloaded_slot(b.module, moved, access) {
            let slot_ty = b.module.value_type(slot).pointee().cloned();
            if let Some(slot_ty) = slot_ty {
                let same = b.cast_to(again, slot_ty);
                b.core_store(same, slot);
                self.packet.insert(same);
            }
        }
        let offset = b.core_const(key.offset, Type::i64());
        let at = b.core_ptr_add(again, offset);
        let typed = b.cast_to(at, ty);
        for v in [data, from, again, at, typed] {
            self.packet.insert(v);
        }
        Self::set_address(m, access, addr, typed);
        Some(Rebased {
            root: again,
            address: typed,
        })
    }

    /// The local a loop walks that `moved` was loaded from, when it still holds that value at
    /// `access` (same block, no store to it or call between): [`Self::rebase_moved`] stores the
    /// rebased pointer back into it. The same address, but the next round steps it from
    /// `data` plus a bounded distance, not from an exact offset. A walk stepped back by
    /// constants (`p - 1` or `p - 2` by the byte read) otherwise gives every mix of steps an
    /// offset of its own, states the verifier cannot prune (1M instructions at 40 rounds).
    /// Inline loops only: a callback rebases what it walks at each round's start already.
    fn reloaded_slot(&self, m: &Module, moved: Value, access: OpId) -> Option<Value> {
        let load = def_op(m, moved)?;
        let slot = m.op(load).operands[0];
        let block = m.op(load).parent?;
        let walked = self.slots.get(&slot).is_some_and(|&n| n > 1)
            && self.stores.contains_key(&slot)
            && lower_loops::enclosing_loop(m, access).is_some()
            && !lower_loops::runs_in_callback(m, access);
        if !walked || m.op(access).parent != Some(block) {
            return None;
        }
        let ops = &m.block(block).ops;
        let from = ops.iter().position(|&o| o == load)?;
        let to = ops.iter().position(|&o| o == access)?;
        // Its address escapes nowhere (`stores` keeps only such locals), so only an op that
        // names it and does not just load it may change it.
        let may_write = |d: &OpData| d.opcode != Opcode::CoreLoad && d.operands.contains(&slot);
        let leaves_alone =
            |op: OpId| !may_write(m.op(op)) && m.collect_nested(op, may_write).is_empty();
        (from < to && ops[from + 1..to].iter().all(|&o| leaves_alone(o))).then_some(slot)
    }

    /// Makes access `op` (at `addr`) go through the tested address `tested` plus `offset`: the
    /// same address, but the one whose range the kernel learnt from the test (`tested` dominates
    /// `op`, as the test proving the access does).
    fn access_through(
        &mut self,
        m: &mut Module,
        op: OpId,
        addr: Value,
        tested: Value,
        offset: i128,
    ) {
        let ty = m.value_type(addr).clone();
        let mut b = m.builder_before(op);
        let bytes = b.core_const(offset, Type::i64());
        let moved = b.core_ptr_add(tested, bytes);
        let typed = b.cast_to(moved, ty);
        Self::set_address(m, op, addr, typed);
        self.packet.insert(typed);
    }

    /// Makes load or store `op` access `addr` instead of `old`; call `op` pass it instead.
    fn set_address(m: &mut Module, op: OpId, old: Value, addr: Value) {
        let d = m.op_mut(op);
        match d.opcode {
            Opcode::CoreStore => d.operands[1] = addr,
            Opcode::CoreCall => {
                for o in d.operands.iter_mut().filter(|o| **o == old) {
                    *o = addr;
                }
            }
            _ => d.operands[0] = addr,
        }
    }

    /// Passes each packet argument at a bounded variable index that a test proved bytes of
    /// (`data + off` after `if (data + off + 8 > data_end)`, each `data + off` formed apart) as
    /// the tested address plus its offset: only that pointer carries the range the kernel
    /// learnt into the callee, as for an access.
    fn pass_tested_args(&mut self, m: &mut Module, call: OpId, facts: &[Fact]) {
        let args: Vec<Value> = (m.op(call).operands.iter())
            .filter(|a| self.packet.contains(a))
            .copied()
            .collect();
        for arg in args {
            let Some(key) = self.key(m, arg) else {
                continue;
            };
            let Some(tested) = Self::covering(facts, key, 1).and_then(|f| f.tested) else {
                continue;
            };
            if key.formed_at != Some(tested) {
                let tested = match self.twinned.contains(&tested) {
                    true => self.pin(m, tested),
                    false => tested,
                };
                self.access_through(m, call, arg, tested, key.offset);
            }
        }
    }

    /// Records the packet bytes call `call` proves at its callee's packet parameters, by the
    /// bytes `proven` says are proven from each argument's address.
    fn note_packet_args(&mut self, m: &Module, call: OpId, proven: impl Fn(Key) -> i128) {
        let Some(Attr::Sym(callee)) = m.attr(call, "callee") else {
            return;
        };
        for (i, &arg) in m.op(call).operands.iter().enumerate() {
            if self.packet.contains(&arg) {
                let bytes = self.key(m, arg).map_or(0, &proven);
                self.args_proven.note(callee, i, bytes.max(0));
            }
        }
    }

    /// In a function with packet parameters and no data_end (nor context) to check them against,
    /// every packet access must lie within what each call proved of its parameter (the verifier
    /// checks the function with its callers' registers, whose ranges it knows): one beyond is
    /// E0611, since no check can be made here.
    fn accesses_within_callers_proof(&mut self, m: &Module, f: OpId, at_calls: &ProvenArgs) {
        let name = m.symbol(f).unwrap_or_default().to_string();
        let params = m.block(m.func_entry(f)).args.clone();
        let proven_at = |root: Root| match root {
            Root::Value(p) => params
                .iter()
                .position(|&q| q == p)
                .map_or(0, |i| at_calls.get(&name, i)),
            _ => 0,
        };
        for op in m.collect_nested(f, |_| true) {
            let d = m.op(op);
            let (addr, width) = match d.opcode {
                Opcode::CoreLoad | Opcode::KsLoadOrZero => {
                    (d.operands[0], size_of(m, m.value_type(d.results[0])))
                }
                Opcode::CoreStore => (d.operands[1], size_of(m, m.value_type(d.operands[0]))),
                Opcode::CoreCall => {
                    self.note_packet_args(m, op, |k| proven_at(k.root) - k.offset);
                    continue;
                }
                _ => continue,
            };
            if !self.packet.contains(&addr) {
                continue;
            }
            let key = self.key(m, addr);
            let proven = key.map_or(0, |k| proven_at(k.root));
            if key.is_some_and(|k| k.offset >= 0 && k.offset + width <= proven) {
                continue;
            }
            let reach = match key {
                Some(k) if matches!(k.root, Root::Value(_)) => {
                    format!(
                        "bytes {}..{} of a packet pointer parameter",
                        k.offset,
                        k.offset + width
                    )
                }
                _ => "a packet pointer parameter at a variable offset".to_string(),
            };
            let why = format!("this access reads {reach}, but not every call proves them in bounds ({proven} bytes) and this function has no data_end to check against; pass `ctx` or `data_end` too");
            self.errors.push(PassError::user(op, Code::E0611, why));
        }
    }

    /// `if (addr + width > data_end) abort` before `op`; when `hide`, on an opaque copy of
    /// `addr` that `op` then goes through.
    fn insert_check(&mut self, m: &mut Module, op: OpId, addr: Value, width: i128, hide: bool) {
        let addr = if hide {
            let hidden = m.builder_before(op).bpf_opaque(addr);
            Self::set_address(m, op, addr, hidden);
            self.packet.insert(hidden);
            hidden
        } else {
            addr
        };
        let mut b = m.builder_before(op);
        let end = match self.end.expect("only functions with data_end are walked") {
            PacketEnd::Context(ctx) => {
                b.ks_ctx_load(ctx, &[], b"data_end".to_vec(), Type::ptr(Type::u8()))
            }
            PacketEnd::Param(end) => b.cast_to(end, Type::ptr(Type::u8())),
        };
        // After `if (P == end)` LLVM may write `P` for `end` (GVN's equalities), leaving a check
        // between two packet pointers that proves nothing to the verifier: an opaque copy of
        // `end` is a value LLVM knows nothing of.
        let end = match self.blind_tests {
            true => b.bpf_opaque(end),
            false => end,
        };
        let byte_ptr = Type::ptr(Type::u8());
        let bytes = b.cast_to(addr, byte_ptr);
        let w = b.core_const(width, Type::i64());
        let last = b.core_ptr_add(bytes, w);
        let out = b.core_cmp(last, end, CmpPred::Gt);
        b.abort_if(out, OUT_OF_BOUNDS);
        self.data_end.insert(end);
        self.inserted += 1;
    }
}

/// Whether `v`, or a value computed from it (through pure ops and the locals it is stored
/// into), is compared, switched on or chosen by, or handed to a function or a caller (where
/// it may be, once inlined): what LLVM could learn a packet fact from.
fn decides(m: &Module, v: Value) -> bool {
    let func = m.top_level_of(def_op(m, v).expect("a result"));
    let all = m.collect_nested(func, |_| true);
    let mut derived = vec![v];
    let mut seen: HashSet<Value> = HashSet::from([v]);
    while let Some(x) = derived.pop() {
        for &o in &all {
            let d = m.op(o);
            if !d.operands.contains(&x) {
                continue;
            }
            let next: Vec<Value> = match d.opcode {
                Opcode::CoreCmp
                | Opcode::KsSwitch
                | Opcode::KsIf
                | Opcode::CoreSelect
                | Opcode::CoreCall
                | Opcode::KsReturn => return true,
                Opcode::CoreStore if d.operands[0] == x && m.is_local(d.operands[1]) => {
                    let slot = d.operands[1];
                    all.iter()
                        .filter(|&&l| {
                            m.op(l).opcode == Opcode::CoreLoad && m.op(l).operands[0] == slot
                        })
                        .map(|&l| m.op(l).results[0])
                        .collect()
                }
                _ if d.opcode.has(crate::ir::Traits::PURE) => d.results.clone(),
                _ => Vec::new(),
            };
            derived.extend(next.into_iter().filter(|r| seen.insert(*r)));
        }
    }
    false
}

/// The bytes one step of a variable-index pointer op moves: the element size of an element
/// address, 1 for a pointer add.
fn byte_stride(m: &Module, op: OpId) -> i128 {
    match m.op(op).opcode {
        Opcode::CoreElemAddr => m
            .value_type(m.op(op).results[0])
            .pointee()
            .map_or(1, |t| size_of(m, t))
            .max(1),
        _ => 1,
    }
}

/// The unsigned value `v` is, through the signed view the lowering gives a pointer offset
/// (`off as i64`) and other widenings.
fn unsigned_source(m: &Module, v: Value) -> Option<Value> {
    let mut v = v;
    while let Some(d) = def_op(m, v).map(|op| m.op(op)) {
        let from = d.operands.first().map(|&o| m.value_type(o));
        match from {
            Some(from)
                if d.opcode == Opcode::CoreCast
                    && is_unsigned(from)
                    && size_of(m, from) <= size_of(m, m.value_type(v)) =>
            {
                v = d.operands[0]
            }
            _ => break,
        }
    }
    is_unsigned(m.value_type(v)).then_some(v)
}

/// Whether `op` runs in a loop that `lower-loops` makes a `bpf_loop` callback.
fn in_long_loop(m: &Module, op: OpId) -> bool {
    let mut at = m.parent_op(op);
    while let Some(p) = at {
        if m.op(p).opcode == Opcode::KsFor && lower_loops::is_long(m, p) {
            return true;
        }
        at = m.parent_op(p);
    }
    false
}

/// Whether `v` is never negative: of an unsigned type, or a narrower unsigned value widened
/// (`data + off` with `off: u32` adds `off` as an `i64`), which needs no lower saturation.
fn never_negative(m: &Module, v: Value) -> bool {
    let bits = |t: &Type| t.int().map_or(0, |i| i.bits());
    let ty = m.value_type(v);
    if is_unsigned(ty) {
        return true;
    }
    match m.value(v).def {
        ValueDef::Result(op, _) if m.op(op).opcode == Opcode::CoreCast => {
            let from = m.value_type(m.op(op).operands[0]);
            is_unsigned(from) && bits(from) < bits(ty)
        }
        _ => false,
    }
}

/// The local a field or element address is taken within (`&info.l4_off` → `info`), or the
/// local itself.
fn aggregate_root(m: &Module, addr: Value) -> Option<Value> {
    let mut addr = addr;
    loop {
        if m.is_local(addr) {
            return Some(addr);
        }
        let d = m.op(def_op(m, addr)?);
        match d.opcode {
            Opcode::CoreFieldAddr | Opcode::CoreElemAddr => addr = d.operands[0],
            _ => return None,
        }
    }
}
