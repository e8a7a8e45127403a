//! Upper bounds of non-negative integers in structured functions.
//!
//! [`max_of`] bounds a value from its expression: constants, masks, unsigned widenings, sums,
//! scalings, shifts and saturations (`x > K ? K : x`). Every rule is one the verifier's own range
//! tracking also follows, so a bound found here is one the kernel sees.
//! What the expression cannot show — the value of a local at a load — comes from a [`Facts`]
//! oracle: `bounds-check` knows locals written once; [`LocalBounds`] follows every store to a
//! local through the function, with the comparisons that guard branches (`if (n > 64) { n = 64 }`
//! leaves `n ≤ 64`; so does `if (n > 64) { return }`).

mod fields;

use crate::ir::{
    views, views::KsFunc, Attr, BlockId, Module, OpId, Opcode, RegionId, Type, Value, ValueDef,
};
use crate::vocab::CmpPred;
use std::collections::{HashMap, HashSet};

/// Bounds of values [`max_of`] cannot see through.
pub trait Facts {
    /// An upper bound of `v` (a load, or the result of an op with regions), `depth` levels of
    /// locals deep.
    fn opaque_max(&self, m: &Module, v: Value, depth: u32) -> Option<u128>;

    /// A lower bound of `v` (a load, or the result of an op with regions), where these facts
    /// follow the tests before it; none (0) by default.
    fn opaque_min(&self, _: &Module, _: Value, _: u32) -> Option<u128> {
        None
    }

    /// Whether a difference is bounded by its operands' bounds: for what ksc enforces itself.
    /// The verifier may not know it: LLVM forms `data + (512 - x)` as `(data + 512) - x`, a
    /// negative variable offset the kernel refuses.
    fn bounds_differences(&self) -> bool {
        false
    }
}

/// No facts: only what expressions show.
impl Facts for () {
    fn opaque_max(&self, _: &Module, _: Value, _: u32) -> Option<u128> {
        None
    }
}

/// The largest value of an integer type.
pub fn int_max(t: &Type) -> Option<u128> {
    let Type::Int(i) = t else { return None };
    Some((1u128 << (i.bits() - i.signed() as u32)) - 1)
}

pub fn is_unsigned(t: &Type) -> bool {
    matches!(t, Type::Int(i) if !i.signed())
}

/// A cast from `from` to `to` keeps the value: an unsigned integer into one at least as wide
/// and unsigned, or strictly wider.
pub fn widens_unsigned(m: &Module, from: Value, to: Value) -> bool {
    let (a, b) = (m.value_type(from), m.value_type(to));
    let bits = |t: &Type| t.int().map(|i| i.bits());
    match (bits(a), bits(b)) {
        (Some(x), Some(y)) => is_unsigned(a) && (y > x || y == x && is_unsigned(b)),
        _ => false,
    }
}

fn width(t: &Type) -> u32 {
    t.int().map_or(0, |i| i.bits())
}

/// An upper bound of `v` when `v` cannot be negative (`None`: unknown, or possibly negative).
/// Facts are asked about loads, block arguments and results of ops with regions.
pub fn max_of(m: &Module, v: Value, facts: &dyn Facts, depth: u32) -> Option<u128> {
    let ty = m.value_type(v);
    if ty.is_ptr() {
        return packet_offset_max(m, v, facts, depth);
    }
    let ValueDef::Result(op, _) = m.value(v).def else {
        // Parameters, and counters the kernel may hand over unbounded (`bpf_loop`).
        return facts.opaque_max(m, v, depth);
    };
    let d = m.op(op);
    let operand = |i: usize| max_of(m, d.operands[i], facts, depth);
    let r = match d.opcode {
        Opcode::CoreConst => u128::try_from(m.const_int(v)?).ok()?,
        Opcode::CoreCast => {
            let from = m.value_type(d.operands[0]);
            if !is_unsigned(from) {
                return None;
            }
            // A narrowing keeps a value that fits the narrower type as it is.
            match operand(0) {
                Some(b) if width(from) <= width(ty) || Some(b) <= int_max(ty) => b,
                None if width(from) <= width(ty) => int_max(from)?,
                _ => return None,
            }
        }
        Opcode::CoreAnd => match (operand(0), operand(1)) {
            (Some(a), Some(b)) => a.min(b),
            // `x & mask` never exceeds the mask, whatever x is.
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return None,
        },
        // Either way no bit above both operands' highest (the verifier's bit tracking sees it too:
        // `(hi << 8) | lo` of two bytes is at most 0xffff).
        Opcode::CoreOr | Opcode::CoreXor if is_unsigned(ty) => {
            let high = operand(0)?.max(operand(1)?);
            high.checked_add(1)?.checked_next_power_of_two()? - 1
        }
        Opcode::CoreAdd => operand(0)?.checked_add(operand(1)?)?,
        // `a - b` that cannot wrap, `a` being at least what `b` can be (`hlen - 20` after
        // `if (hlen < 20) { return }`, where the facts follow that test).
        Opcode::CoreSub if is_unsigned(ty) && facts.bounds_differences() => {
            let (a, b) = (d.operands[0], d.operands[1]);
            match max_of(m, b, facts, depth) {
                Some(most) if min_of(m, a, facts, depth) >= most => {
                    operand(0)? - min_of(m, b, facts, depth)
                }
                _ => int_max(ty)?,
            }
        }
        Opcode::CoreMul => operand(0)?.checked_mul(operand(1)?)?,
        Opcode::CoreShl => {
            operand(0)?.checked_shl(u32::try_from(m.const_int(d.operands[1])?).ok()?)?
        }
        Opcode::CoreShr if is_unsigned(ty) => {
            operand(0)? >> u32::try_from(m.const_int(d.operands[1])?).ok()?.min(127)
        }
        // `x > K ? K : x`: a saturation.
        Opcode::CoreSelect => {
            let (cond, high, x) = (d.operands[0], d.operands[1], d.operands[2]);
            let saturates = views::CoreCmp::of(m, def_op(m, cond)?)
                .is_some_and(|c| c.pred(m) == CmpPred::Gt && [c.lhs(m), c.rhs(m)] == [x, high]);
            if saturates {
                let k = u128::try_from(m.const_int(high)?).ok()?;
                max_of(m, x, facts, depth).map_or(k, |x| x.min(k))
            } else {
                operand(1)?.max(operand(2)?)
            }
        }
        _ => match facts.opaque_max(m, v, depth) {
            Some(r) => r,
            None if is_unsigned(ty) => int_max(ty)?,
            None => return None,
        },
    };
    // Wrapping arithmetic: a bound past the type's range bounds nothing.
    (r <= int_max(ty)?).then_some(r)
}

/// A lower bound of unsigned `v` (0 when none is known): from its constants, widenings, sums,
/// scalings and differences that cannot wrap, and from what `facts` know of the loads among them.
/// (Differences count only where [`Facts::bounds_differences`].)
pub fn min_of(m: &Module, v: Value, facts: &dyn Facts, depth: u32) -> u128 {
    let ty = m.value_type(v);
    if !is_unsigned(ty) {
        return 0;
    }
    let ValueDef::Result(op, _) = m.value(v).def else {
        return facts.opaque_min(m, v, depth).unwrap_or(0);
    };
    let d = m.op(op);
    let operand = |i: usize| min_of(m, d.operands[i], facts, depth);
    let shift = || u32::try_from(m.const_int(d.operands[1])?).ok();
    let least = match d.opcode {
        Opcode::CoreConst => m.const_int(v).and_then(|k| u128::try_from(k).ok()),
        Opcode::CoreCast if width(m.value_type(d.operands[0])) <= width(ty) => Some(operand(0)),
        Opcode::CoreAdd => operand(0).checked_add(operand(1)),
        Opcode::CoreMul => operand(0).checked_mul(operand(1)),
        Opcode::CoreShl => shift().and_then(|k| operand(0).checked_shl(k)),
        Opcode::CoreShr => shift().map(|k| operand(0) >> k.min(127)),
        Opcode::CoreOr => Some(operand(0).max(operand(1))),
        Opcode::CoreSub if facts.bounds_differences() => {
            max_of(m, d.operands[1], facts, depth).and_then(|most| operand(0).checked_sub(most))
        }
        Opcode::CoreCast => None,
        _ => facts.opaque_min(m, v, depth),
    };
    // (Arithmetic that may wrap past the type's top may end anywhere, 0 included.)
    match least {
        Some(least) if max_of(m, v, facts, depth).is_some() => least,
        _ => 0,
    }
}

/// For a pointer formed from `ctx->data` by adding unsigned offsets (also through pointer
/// locals), an upper bound of its distance from `ctx->data`: what the verifier must know to learn
/// a packet range from a test of it.
fn packet_offset_max(m: &Module, v: Value, facts: &dyn Facts, depth: u32) -> Option<u128> {
    let ValueDef::Result(op, _) = m.value(v).def else {
        return None;
    };
    let d = m.op(op);
    match d.opcode {
        Opcode::KsCtxLoad => {
            matches!(m.attr(op, "field"), Some(Attr::Str(f)) if f == b"data").then_some(0)
        }
        Opcode::CoreCast if m.value_type(d.operands[0]).is_ptr() => {
            packet_offset_max(m, d.operands[0], facts, depth)
        }
        Opcode::CorePtrAdd => packet_offset_max(m, d.operands[0], facts, depth)?
            .checked_add(max_of(m, d.operands[1], facts, depth)?),
        Opcode::CoreLoad => facts.opaque_max(m, v, depth),
        _ => None,
    }
}

fn def_op(m: &Module, v: Value) -> Option<OpId> {
    m.defining_op(v)
}

/// Bounds of every load of an unsigned local and every result of an `if` or `switch` in one
/// function, from the stores and branch conditions that reach them.
#[derive(Default)]
pub struct LocalBounds {
    at: HashMap<Value, u128>,
    /// Bounds that follow the tests between two values, and the least values tests leave
    /// ([`LocalBounds::relational_of_function`]).
    relational: bool,
    /// The function's parameters that every call bounds ([`CallBounds`]).
    params: HashMap<Value, u128>,
    /// The results of the functions it may call, by symbol ([`CallBounds`]).
    results: HashMap<String, u128>,
    /// Each load of a tracked local, with the first load that reads the same store of it: no
    /// store to the local can run between the two.
    first_read: HashMap<Value, Value>,
    /// The first load of each (local, stores walked so far).
    reads: HashMap<(Value, u32), Value>,
    /// The value each load of a tracked local reads, where one store reaches it.
    reaching: HashMap<Value, Value>,
    /// The writes into struct locals, for bounds of their fields.
    structs: fields::StructLocals,
    /// The fields of the structs the functions it may call return, by symbol and field.
    field_results: HashMap<(String, Vec<u8>), u128>,
    /// The fields of its struct parameters that every call bounds, by parameter and field.
    field_params: HashMap<(Value, Vec<u8>), u128>,
    /// Struct copies being followed (a field stored from a load of a field).
    following: std::cell::Cell<u32>,
}

impl Facts for LocalBounds {
    fn opaque_max(&self, m: &Module, v: Value, depth: u32) -> Option<u128> {
        if let Some(&b) = self.params.get(&v) {
            return Some(b);
        }
        match m.value(v).def {
            ValueDef::Arg(block, 0) => counter_max(m, block, self, depth),
            ValueDef::Result(op, 0) if m.op(op).opcode == Opcode::CoreCall => {
                match m.attr(op, "callee") {
                    Some(crate::ir::Attr::Sym(callee)) => self.results.get(&**callee).copied(),
                    _ => None,
                }
            }
            _ => self
                .at
                .get(&v)
                .copied()
                .or_else(|| self.loaded_field_max(m, v)),
        }
    }

    fn bounds_differences(&self) -> bool {
        self.relational
    }

    /// A load's least value: what the tests before it leave (`doff ≥ 5` after
    /// `if (doff < 5) { return }`), or the least of the one value stored that it reads.
    fn opaque_min(&self, m: &Module, v: Value, depth: u32) -> Option<u128> {
        let load = m
            .defining_op(v)
            .filter(|&op| m.op(op).opcode == Opcode::CoreLoad)?;
        if !self.relational {
            return None;
        }
        let tested = self.tested_min(m, load, v).unwrap_or(0);
        let stored = match self.stored_read(v) {
            Some(s) if depth < STORED_MIN_DEPTH => min_of(m, s, self, depth + 1),
            _ => 0,
        };
        Some(tested.max(stored))
    }
}

/// How many stored values deep [`LocalBounds`] follows a load for its least value.
const STORED_MIN_DEPTH: u32 = 4;

impl LocalBounds {
    /// The bound of a load of an integer field of a struct local, from every write into it.
    fn loaded_field_max(&self, m: &Module, v: Value) -> Option<u128> {
        let (local, field) = self.structs.loaded_field(m, v)?;
        self.struct_field_max(m, |s, q| s.local_field_max(q, local, &field))
    }

    /// The bound of field `field` of struct value `v` (a function's result).
    fn value_field_max(&self, m: &Module, v: Value, field: &[u8]) -> Option<u128> {
        self.struct_field_max(m, |s, q| s.value_field_max(q, v, field))
    }

    /// Runs `query` on the struct locals, unless struct copies are already being followed that
    /// deep (a field stored from a load of a field reaches here again through `max_of`).
    fn struct_field_max(
        &self,
        m: &Module,
        query: impl FnOnce(&fields::StructLocals, fields::FieldQuery) -> Option<u128>,
    ) -> Option<u128> {
        let depth = self.following.get();
        if depth >= fields::COPY_DEPTH {
            return None;
        }
        self.following.set(depth + 1);
        let results = |callee: &str, field: &[u8]| {
            self.field_results
                .get(&(callee.to_string(), field.to_vec()))
                .copied()
        };
        let params = |p: Value, field: &[u8]| self.field_params.get(&(p, field.to_vec())).copied();
        let q = fields::FieldQuery {
            m,
            facts: self,
            results: &results,
            params: &params,
            depth: fields::COPY_DEPTH - depth - 1,
        };
        let r = query(&self.structs, q);
        self.following.set(depth);
        r
    }
}

/// The direct calls of each kernel function, and the functions named otherwise (a callback's
/// address taken): the verifier checks a function at each call with its caller's registers, so
/// what every call passes holds inside a function only it calls that way.
pub struct CallSites {
    /// By callee symbol: each call's function and op.
    calls: HashMap<String, Vec<(OpId, OpId)>>,
    referenced: HashSet<String>,
}

impl CallSites {
    pub fn of(m: &Module, funcs: &[OpId]) -> CallSites {
        let mut sites = CallSites {
            calls: HashMap::new(),
            referenced: HashSet::new(),
        };
        for &f in funcs {
            m.walk_nested(f, &mut |o| {
                let Some(Attr::Sym(callee)) = m.attr(o, "callee") else {
                    return;
                };
                match m.op(o).opcode {
                    Opcode::CoreCall => sites.calls.entry(callee.clone()).or_default().push((f, o)),
                    _ => {
                        sites.referenced.insert(callee.clone());
                    }
                }
            });
        }
        sites
    }

    /// The calls of `f` when they are all there is: it is no program, is called, and is never
    /// named but in a call.
    pub fn fixed(&self, m: &Module, f: OpId) -> Option<&[(OpId, OpId)]> {
        let name = m.symbol(f)?;
        if KsFunc(f).kind(m).is_some() || self.referenced.contains(name) {
            return None;
        }
        self.calls.get(name).map(Vec::as_slice)
    }
}

/// Bounds that cross calls: of kernel functions' parameters, from every call of them, and of
/// their results, from every `return`. The verifier checks a static BPF function at each call
/// with the caller's registers and hands its `r0` back with the bounds it tracked, so a bound
/// every caller's argument keeps, or every return keeps, is one it knows; functions whose address
/// is taken (callbacks) or that no one calls (programs) have no parameter bounds.
#[derive(Default)]
pub struct CallBounds {
    params: HashMap<Value, u128>,
    /// By function symbol.
    results: HashMap<String, u128>,
    /// The integer fields of struct results, by function symbol and field.
    field_results: HashMap<(String, Vec<u8>), u128>,
    /// The integer fields of struct parameters, by parameter and field.
    field_params: HashMap<(Value, Vec<u8>), u128>,
}

impl CallBounds {
    pub fn of_module(m: &Module) -> CallBounds {
        let funcs = super::kernel_funcs(m);
        let call_sites = CallSites::of(m, &funcs);
        let mut returns: HashMap<OpId, Vec<Value>> = HashMap::new();
        for &f in &funcs {
            m.walk_nested(f, &mut |o| {
                if m.op(o).opcode == Opcode::KsReturn {
                    if let Some(&v) = m.op(o).operands.first() {
                        returns.entry(f).or_default().push(v);
                    }
                }
            });
        }
        let mut bounds = CallBounds::default();
        // Callers' parameters bound their arguments and callees' results bound their callers'
        // locals: repeat while bounds are found (a call chain's depth, recursion being refused).
        for _ in 0..8 {
            let mut found = CallBounds::default();
            let locals: HashMap<OpId, LocalBounds> = funcs
                .iter()
                .map(|&f| (f, LocalBounds::of_function(m, f, &bounds)))
                .collect();
            for &f in &funcs {
                let name = m.symbol(f).unwrap_or_default();
                if KsFunc(f).kind(m).is_some() {
                    continue;
                }
                let most = |values: &[(OpId, Value)]| {
                    values.iter().try_fold(0u128, |acc, &(owner, v)| {
                        Some(acc.max(locals[&owner].max_of(m, v)?))
                    })
                };
                if let Some(values) = returns.get(&f) {
                    let pairs: Vec<(OpId, Value)> = values.iter().map(|&v| (f, v)).collect();
                    if let Some(b) = most(&pairs) {
                        found.results.insert(name.to_string(), b);
                    }
                    for field in integer_fields(m, m.value_type(values[0])) {
                        let b = values.iter().try_fold(0u128, |acc, &v| {
                            Some(acc.max(locals[&f].value_field_max(m, v, &field)?))
                        });
                        if let Some(b) = b {
                            found.field_results.insert((name.to_string(), field), b);
                        }
                    }
                }
                let Some(sites) = call_sites.fixed(m, f) else {
                    continue;
                };
                let params = m.block(m.func_entry(f)).args.clone();
                for (i, p) in params.into_iter().enumerate() {
                    // A call that will run in a callback passes values the verifier reads from
                    // the callback's context, unbounded: only a constant bounds its parameter.
                    let args: Option<Vec<(OpId, Value)>> = sites
                        .iter()
                        .map(|&(caller, call)| {
                            let arg = *m.op(call).operands.get(i)?;
                            let known = m.const_int(arg).is_some()
                                || !super::lower_loops::runs_in_callback(m, call);
                            known.then_some((caller, arg))
                        })
                        .collect();
                    let Some(args) = args else { continue };
                    if let Some(b) = most(&args) {
                        found.params.insert(p, b);
                    }
                    // A struct passed whole: each integer field every call bounds.
                    for field in integer_fields(m, m.value_type(p)) {
                        let b = args.iter().try_fold(0u128, |acc, &(caller, arg)| {
                            Some(acc.max(locals[&caller].value_field_max(m, arg, &field)?))
                        });
                        if let Some(b) = b {
                            found.field_params.insert((p, field), b);
                        }
                    }
                }
            }
            let done = found.params.len() == bounds.params.len()
                && found.results.len() == bounds.results.len()
                && found.field_results.len() == bounds.field_results.len()
                && found.field_params.len() == bounds.field_params.len();
            bounds = found;
            if done {
                break;
            }
        }
        bounds
    }
}

/// What callees' returns bound, and nothing else: the bounds a value has by how it is computed.
impl Facts for CallBounds {
    fn opaque_max(&self, m: &Module, v: Value, _: u32) -> Option<u128> {
        let ValueDef::Result(op, 0) = m.value(v).def else {
            return None;
        };
        match (m.op(op).opcode, m.attr(op, "callee")) {
            (Opcode::CoreCall, Some(Attr::Sym(callee))) => self.results.get(&**callee).copied(),
            _ => None,
        }
    }
}

/// The names of the integer fields of struct type `t` (none for other types).
fn integer_fields(m: &Module, t: &Type) -> Vec<Vec<u8>> {
    let Type::Struct(name) = t else {
        return Vec::new();
    };
    m.lookup_symbol(name)
        .and_then(|d| crate::ir::views::KsStruct::of(m, d))
        .map_or(Vec::new(), |s| {
            s.fields(m)
                .iter()
                .filter(|(_, ty)| ty.int().is_some())
                .map(|(n, _)| n.as_bytes().to_vec())
                .collect()
        })
}

/// The counter of a `ks.for` stays below the loop's upper bound. (A fact the verifier sees only
/// in loops that stay inline: a `bpf_loop` callback gets its counter from the kernel unbounded.)
pub fn counter_max(m: &Module, block: BlockId, facts: &dyn Facts, depth: u32) -> Option<u128> {
    let owner = m.block_owner(block)?;
    if m.op(owner).opcode != Opcode::KsFor {
        return None;
    }
    max_of(m, m.op(owner).operands[1], facts, depth)?.checked_sub(1)
}

impl LocalBounds {
    /// The bounds the verifier learns as well: from constants, and from tests against constants.
    pub fn of_function(m: &Module, f: OpId, calls: &CallBounds) -> LocalBounds {
        Self::walk(m, f, calls, false)
    }

    /// Bounds that also follow a store of a lesser value (`if (n > len) { n = len }` keeps what
    /// bounded `n` before): they hold, but the verifier, which learns nothing from comparing two
    /// ranges, does not know them. For what ksc enforces itself, as a loop's constant cap.
    pub fn relational_of_function(m: &Module, f: OpId, calls: &CallBounds) -> LocalBounds {
        Self::walk(m, f, calls, true)
    }

    fn walk(m: &Module, f: OpId, calls: &CallBounds, relational: bool) -> LocalBounds {
        let entry = m.block(m.func_entry(f)).args.clone();
        let mut w = Walk {
            m,
            relational,
            tracked: tracked_locals(m, f),
            bounds: LocalBounds {
                params: entry
                    .iter()
                    .filter_map(|p| calls.params.get(p).map(|&b| (*p, b)))
                    .collect(),
                results: calls.results.clone(),
                relational,
                structs: fields::StructLocals::of_function(m, f),
                field_results: calls.field_results.clone(),
                field_params: entry
                    .iter()
                    .flat_map(|&p| {
                        integer_fields(m, m.value_type(p))
                            .into_iter()
                            .map(move |f| (p, f))
                    })
                    .filter_map(|key| calls.field_params.get(&key).map(|&b| (key, b)))
                    .collect(),
                ..LocalBounds::default()
            },
            stores: HashMap::new(),
            loaded: HashMap::new(),
            stored: HashMap::new(),
        };
        let mut state = State::new();
        for &r in &m.op(f).regions {
            w.region(r, &mut state);
        }
        w.bounds
    }

    pub fn max_of(&self, m: &Module, v: Value) -> Option<u128> {
        max_of(m, v, self, 0)
    }

    /// The bound every call puts on parameter `p`, if any.
    pub fn param(&self, p: Value) -> Option<u128> {
        self.params.get(&p).copied()
    }

    /// The bound found for `v` (a load of a local or the result of a branch), if any.
    pub fn at(&self, v: Value) -> Option<u128> {
        self.at.get(&v).copied()
    }

    /// For a load of a tracked local, the first load reading the same value (maybe itself): a
    /// check made on one holds for the other where it dominates.
    pub fn same_read(&self, load: Value) -> Option<Value> {
        self.first_read.get(&load).copied()
    }

    /// For a load of a tracked local, the value stored that it reads, where only one store
    /// reaches it (one written in a loop or in both arms of an `if` has none).
    pub fn stored_read(&self, load: Value) -> Option<Value> {
        self.reaching.get(&load).copied()
    }

    /// Whether `lesser` ≤ `greater` (loads of tracked locals, unsigned) when `at` runs: a test
    /// before it leaves unless they are (`if (len > n) { return }`, also as a term of an `||`
    /// chain), or `at` runs in the arm of an `if` taken only when they are, and that test read
    /// the same stores of both locals. A bound of the verifier's it is not: it relates two
    /// registers, which the verifier does not.
    pub fn ordered_at(&self, m: &Module, at: OpId, lesser: Value, greater: Value) -> bool {
        let read = |v: Value| self.same_read(widened_from(m, v));
        let (Some(lesser), Some(greater)) = (read(lesser), read(greater)) else {
            return false;
        };
        tested_terms(m, at).any(|(t, outcome)| self.orders(m, t, outcome, lesser, greater))
    }

    /// The bound the tests before `at` put on `v`, a read of a tracked local plus a constant:
    /// `if (x + c > y) { break }` leaves `x ≤ max(y) − c` after it, where `x + c` cannot wrap.
    /// As [`Self::ordered_at`], a bound of the verifier's it is not: it relates two registers.
    pub fn tested_max(&self, m: &Module, at: OpId, v: Value) -> Option<u128> {
        let v = widened_from(m, v);
        let Some((x, plus)) = constant_addend(m, v) else {
            return self.tested_read_max(m, at, v);
        };
        // (The sum must not wrap, or a small value would stand for a large one.)
        let sum = self.tested_read_max(m, at, x)?.checked_add(plus)?;
        (sum <= int_max(m.value_type(v))?).then_some(sum)
    }

    /// [`Self::tested_max`] of a read of a tracked local.
    fn tested_read_max(&self, m: &Module, at: OpId, x: Value) -> Option<u128> {
        let x = self.same_read(widened_from(m, x))?;
        tested_terms(m, at)
            .filter_map(|(t, outcome)| self.term_bound(m, t, outcome, x))
            .min()
    }

    /// The least value the tests before `at` leave the read `v` of a tracked local with:
    /// `if (ihl < 5) { return }` leaves `ihl ≥ 5` (also as a term of an `||` chain, or in the arm
    /// of an `if` taken only then), where the test read the same store.
    pub fn tested_min(&self, m: &Module, at: OpId, v: Value) -> Option<u128> {
        let x = self.same_read(widened_from(m, v))?;
        tested_terms(m, at)
            .filter_map(|(t, outcome)| self.term_least(m, t, outcome, x))
            .max()
    }

    /// The least value `term`, a comparison with a constant that is `outcome`, leaves the local
    /// `x` reads: `x + c ≥ y` (or `>`, `==`, `!= 0`, either way round) leaves at least `y − c`.
    fn term_least(&self, m: &Module, term: Value, outcome: bool, x: Value) -> Option<u128> {
        let (plus, pred, other) = self.compared_read(m, term, outcome, x)?;
        let y = u128::try_from(m.const_int(other)?).ok()?;
        let least = match pred {
            CmpPred::Ge | CmpPred::Eq => y,
            CmpPred::Gt => y.checked_add(1)?,
            CmpPred::Ne if y == 0 => 1,
            _ => return None,
        };
        least.checked_sub(plus)
    }

    /// The bound `term`, a comparison that is `outcome`, puts on the local `x` reads: `x + c ≤ y`
    /// (or `<`, `==`, either way round) bounds it by `y`'s bound less `c`.
    fn term_bound(&self, m: &Module, term: Value, outcome: bool, x: Value) -> Option<u128> {
        let (plus, pred, other) = self.compared_read(m, term, outcome, x)?;
        let y = self.max_of(m, other)?;
        let y = match pred {
            CmpPred::Le | CmpPred::Eq => y,
            CmpPred::Lt => y.checked_sub(1)?,
            _ => return None,
        };
        y.checked_sub(plus)
    }

    /// `term`, an unsigned comparison that is `outcome`, as `x + plus <pred> other`, `x` what a
    /// tracked local's read holds.
    fn compared_read(
        &self,
        m: &Module,
        term: Value,
        outcome: bool,
        x: Value,
    ) -> Option<(u128, CmpPred, Value)> {
        let c = def_op(m, term).and_then(|op| views::CoreCmp::of(m, op))?;
        let (lhs, rhs) = (c.lhs(m), c.rhs(m));
        if !is_unsigned(m.value_type(lhs)) {
            return None;
        }
        let pred = if outcome {
            c.pred(m)
        } else {
            c.pred(m).negated()
        };
        match (self.plus_constant(m, lhs, x), self.plus_constant(m, rhs, x)) {
            (Some(plus), _) => Some((plus, pred, rhs)),
            (None, Some(plus)) => Some((plus, pred.swapped(), lhs)),
            _ => None,
        }
    }

    /// `v` as what `x` reads plus a constant (through widenings and `+ c` that cannot wrap).
    fn plus_constant(&self, m: &Module, v: Value, x: Value) -> Option<u128> {
        let v = widened_from(m, v);
        if self.same_read(v) == Some(x) {
            return Some(0);
        }
        let (term, c) = constant_addend(m, v)?;
        // (Wrapped, `x + c ≤ y` would say nothing of x.)
        if self.max_of(m, term)?.checked_add(c)? > int_max(m.value_type(v))? {
            return None;
        }
        self.plus_constant(m, term, x)?.checked_add(c)
    }

    /// `term`, a comparison that is `outcome`, says the value `lesser` reads is at most the one
    /// `greater` reads.
    fn orders(
        &self,
        m: &Module,
        term: Value,
        outcome: bool,
        lesser: Value,
        greater: Value,
    ) -> bool {
        let Some(c) = def_op(m, term).and_then(|op| views::CoreCmp::of(m, op)) else {
            return false;
        };
        let read = |v: Value| self.same_read(widened_from(m, v));
        let (lhs, rhs) = (c.lhs(m), c.rhs(m));
        if !is_unsigned(m.value_type(lhs)) {
            return false;
        }
        let pred = match (read(lhs), read(rhs)) {
            (Some(l), Some(r)) if (l, r) == (lesser, greater) => c.pred(m),
            (Some(l), Some(r)) if (l, r) == (greater, lesser) => c.pred(m).swapped(),
            _ => return false,
        };
        let pred = if outcome { pred } else { pred.negated() };
        matches!(pred, CmpPred::Le | CmpPred::Lt | CmpPred::Eq)
    }
}

/// `v` as `x + c` for a non-negative constant `c` (on either side of the `+`).
fn constant_addend(m: &Module, v: Value) -> Option<(Value, u128)> {
    let d = m.op(def_op(m, v)?);
    if d.opcode != Opcode::CoreAdd {
        return None;
    }
    let (a, b) = (d.operands[0], d.operands[1]);
    let (x, c) = match (m.const_int(b), m.const_int(a)) {
        (Some(c), _) => (a, c),
        (None, Some(c)) => (b, c),
        _ => return None,
    };
    Some((x, u128::try_from(c).ok()?))
}

/// The branch conditions whose outcome is known where `at` runs, each with that outcome: of a
/// test before it whose arm leaves (`if (len > n) { return }` is false after it), and of each
/// `if` whose arm `at` runs in.
/// The comparisons the tests before `at` decide, each with the outcome it has at `at`: the
/// [`conditions_at`], split into the terms of their `&&`/`||` chains that are known there.
fn tested_terms(m: &Module, at: OpId) -> impl Iterator<Item = (Value, bool)> + '_ {
    conditions_at(m, at)
        .into_iter()
        .flat_map(move |(cond, outcome)| {
            let mut terms = Vec::new();
            chain_terms(m, cond, !outcome, &mut terms);
            terms.into_iter().map(move |t| (t, outcome))
        })
}

pub(super) fn conditions_at(m: &Module, at: OpId) -> Vec<(Value, bool)> {
    let mut out = Vec::new();
    let mut op = at;
    while let Some((block, index)) = m.position(op) {
        for &before in m.block(block).ops[..index].iter().rev() {
            let d = m.op(before);
            if d.opcode != Opcode::KsIf {
                continue;
            }
            if super::region_leaves(m, d.regions[0]) {
                out.push((d.operands[0], false));
            }
            if super::region_leaves(m, d.regions[1]) {
                out.push((d.operands[0], true));
            }
        }
        let Some(parent) = m.parent_op(op) else {
            break;
        };
        let d = m.op(parent);
        if d.opcode == Opcode::KsIf {
            let arm = m.block(block).parent;
            if arm == Some(d.regions[0]) {
                out.push((d.operands[0], true));
            } else if arm == Some(d.regions[1]) {
                out.push((d.operands[0], false));
            }
        }
        op = parent;
    }
    out
}

/// The most iterations of a loop the verifier follows iteration by iteration: a `for` that stays
/// inline with constant bounds, or a counted `while`.
pub(super) fn trip_count(m: &Module, l: OpId) -> Option<u128> {
    match m.op(l).opcode {
        Opcode::KsFor if !super::lower_loops::is_long(m, l) => {
            let o = &m.op(l).operands;
            let (lo, hi) = (m.const_int(o[0])?, m.const_int(o[1])?);
            u128::try_from(hi - lo).ok()
        }
        Opcode::KsWhile => while_trip_count(m, l),
        _ => None,
    }
}

/// At most how many iterations a counted `while` runs ([`counted_while`]).
fn while_trip_count(m: &Module, l: OpId) -> Option<u128> {
    counted_while(m, l).map(|c| c.trips)
}

/// A `while` that counts a local up to a constant.
pub(super) struct CountedWhile {
    /// The counter's local.
    pub slot: Value,
    /// What each iteration adds to it.
    pub step: i128,
    /// The most iterations.
    pub trips: u128,
}

/// `while (i < K)` (or `<=`, also as one term of `&&`: `while (off < len && i < K)`) over an
/// unsigned local `i` that the body advances by a constant step of at least 1 in its own block,
/// before any `continue` (so every iteration that goes round again advances it), and stores
/// nowhere else: at most `K` iterations (`K + 1`). Also `while (i != K)` with an odd step up or
/// down, wrapping at the type's top: it meets `K` within as many iterations as `i`'s type has
/// values, exactly `(K − s) / step` of them (modulo that count) from a known start `s`.
pub(super) fn counted_while(m: &Module, l: OpId) -> Option<CountedWhile> {
    let (cond, body) = (m.op(l).regions[0], m.op(l).regions[1]);
    let mut tests = Vec::new();
    chain_terms(m, m.yielded_value(cond)?, false, &mut tests);
    tests.into_iter().find_map(|t| counted_by(m, l, body, t))
}

/// The terms of the `&&` chain `v` (`or`: of the `||` chain): `a && b` is `if (a) { b } else {
/// false }` and `a || b` is `if (a) { true } else { b }`, or the bitwise op on booleans.
pub(super) fn chain_terms(m: &Module, v: Value, or: bool, out: &mut Vec<Value>) {
    let Some(op) = def_op(m, v) else {
        out.push(v);
        return;
    };
    let d = m.op(op);
    // The arm that short-circuits yields the chain's own answer: false for `&&`, true for `||`.
    let short = usize::from(!or);
    let decides = |r| m.yielded_value(r).and_then(|x| m.const_int(x)) == Some(i128::from(or));
    let bitwise = if or { Opcode::CoreOr } else { Opcode::CoreAnd };
    if d.opcode == Opcode::KsIf && d.results.len() == 1 && decides(d.regions[short]) {
        chain_terms(m, d.operands[0], or, out);
        if let Some(rest) = m.yielded_value(d.regions[1 - short]) {
            chain_terms(m, rest, or, out);
        }
    } else if d.opcode == bitwise && *m.value_type(v) == Type::Bool {
        chain_terms(m, d.operands[0], or, out);
        chain_terms(m, d.operands[1], or, out);
    } else {
        out.push(v);
    }
}

/// [`counted_while`] for the loop's condition `term`.
fn counted_by(m: &Module, l: OpId, body: RegionId, term: Value) -> Option<CountedWhile> {
    let test = views::CoreCmp::of(m, def_op(m, term)?)?;
    let (counter, limit, inclusive) = match test.pred(m) {
        CmpPred::Lt => (test.lhs(m), test.rhs(m), false),
        CmpPred::Le => (test.lhs(m), test.rhs(m), true),
        CmpPred::Gt => (test.rhs(m), test.lhs(m), false),
        CmpPred::Ge => (test.rhs(m), test.lhs(m), true),
        CmpPred::Ne if m.const_int(test.rhs(m)).is_some() => (test.lhs(m), test.rhs(m), false),
        CmpPred::Ne => (test.rhs(m), test.lhs(m), false),
        _ => return None,
    };
    let until_equal = test.pred(m) == CmpPred::Ne;
    let limit = u128::try_from(m.const_int(limit)?).ok()?;
    let CounterStep { slot, step, down } = counter_step(m, l, body, counter)?;
    let step = i128::try_from(step).ok()?;
    if until_equal {
        // `while (i != K)`: an odd step, wrapping at the local's top, meets every value of its
        // type before it repeats one, `K` among them when the local can hold it (compared
        // widened, as unsigned, it is still `K` only there).
        let ty = m.value_type(slot).pointee()?;
        let values = i128::try_from(int_max(ty)?).ok()?.checked_add(1)?;
        let same_width = is_unsigned(ty)
            && int_max(m.value_type(counter)) >= int_max(ty)
            && i128::try_from(limit).is_ok_and(|k| k < values);
        // A step down by `c` is a step up by `2^bits − c`.
        let up = match down {
            false => step,
            true if step < values => values - step,
            true => return None,
        };
        let values = values as u128;
        return (same_width && up % 2 == 1).then(|| CountedWhile {
            slot,
            step: up,
            trips: start_before(m, l, slot).map_or(values, |s| {
                steps_to_meet(s % values, limit, up as u128 % values, values)
            }),
        });
    }
    // A step past the local's top wraps it below the limit again: `while (b <= 255)` never ends.
    let room = m.value_type(slot).pointee().and_then(int_max);
    let last = (limit + u128::from(inclusive)).saturating_sub(1);
    let fits = room.is_some_and(|top| last.saturating_add(step as u128) <= top);
    (!down && fits).then_some(CountedWhile {
        slot,
        step,
        trips: limit + u128::from(inclusive),
    })
}

/// A counter of a loop: a local every iteration that goes round moves by one constant amount.
pub(super) struct CounterStep {
    /// The counter's local.
    pub slot: Value,
    /// How much one iteration moves it, `down` or up (the sum of its steps).
    pub step: u128,
    pub down: bool,
}

/// The counter `counter` (a load of an unsigned local, maybe widened) reads in loop `l` (body
/// `body`), when the loop moves it only by constant steps (`i = i + 2`, `b = b - 1`, also twice,
/// even both ways, by their sum, which must not be 0; also computed wider and narrowed back as
/// `i = i + 1` on a `u8` is), each at the
/// body's own level before any `continue` of `l` (so every iteration that goes round again
/// makes all of them), with nothing writing the local behind a pointer.
pub(super) fn counter_step(
    m: &Module,
    l: OpId,
    body: RegionId,
    counter: Value,
) -> Option<CounterStep> {
    let slot = loaded_local(m, counter)?;
    let net = net_step(m, l, body, slot)?;
    (is_unsigned(m.value_type(counter)) && net != 0).then_some(CounterStep {
        slot,
        step: net.unsigned_abs(),
        down: net < 0,
    })
}

/// How far the stores of loop `l` move local `slot` each round that goes round, as
/// [`counter_step`] asks of them (constant steps at the body's own level, before any
/// `continue`, nothing writing it behind a pointer), counted modulo its type's size the
/// shorter way round: `i + 65533` then `i - 65533` on a `u16` move it by 0.
pub(super) fn net_step(m: &Module, l: OpId, body: RegionId, slot: Value) -> Option<i128> {
    let stores = m.collect_nested(l, |o| {
        o.opcode == Opcode::CoreStore && o.operands[1] == slot
    });
    let top_level = |s: OpId| m.op(s).parent.and_then(|b| m.block(b).parent) == Some(body);
    let continues = m
        .collect_nested(l, |o| o.opcode == Opcode::KsContinue)
        .into_iter()
        .filter(|&c| !in_nested_loop(m, c, l))
        .any(|c| stores.iter().any(|&s| !m.precedes_structurally(s, c)));
    let escapes = m
        .collect_nested(m.top_level_of(l), |_| true)
        .into_iter()
        .any(|o| escaping_operands(m, o).any(|v| v == slot));
    if stores.is_empty() || !stores.iter().all(|&s| top_level(s)) || continues || escapes {
        return None;
    }
    // (Steps both ways, `i + 64` then `i - 3`, move it by their sum each round.)
    let mut net: i128 = 0;
    for s in stores {
        let (by, down) = constant_step(m, s, slot)?;
        let by = i128::try_from(by).ok()?;
        net = net.checked_add(if down { -by } else { by })?;
    }
    // Counted modulo the type's size, the shorter way round, as each step is.
    let values = m
        .value_type(slot)
        .pointee()
        .and_then(int_max)
        .and_then(|x| i128::try_from(x).ok()?.checked_add(1));
    if let Some(values) = values {
        net = net.rem_euclid(values);
        if net > values / 2 {
            net -= values;
        }
    }
    Some(net)
}

/// `slot = slot + c` or `slot = slot - c`, `c` a constant of at least 1: `(c, down)`; also
/// computed wider and narrowed back to the counter's type (`i = i + 1` on a `u8`).
fn constant_step(m: &Module, store: OpId, slot: Value) -> Option<(u128, bool)> {
    let mut stepped = m.op(store).operands[0];
    let narrowing = |o: OpId| {
        let d = m.op(o);
        let (from, to) = (m.value_type(d.operands[0]), m.value_type(d.results[0]));
        d.opcode == Opcode::CoreCast && from.is_int() && int_max(from) >= int_max(to)
    };
    if let Some(cast) = def_op(m, stepped).filter(|&o| narrowing(o)) {
        stepped = m.op(cast).operands[0];
    }
    let d = m.op(def_op(m, stepped)?);
    let down = match d.opcode {
        Opcode::CoreAdd => false,
        Opcode::CoreSub => true,
        _ => return None,
    };
    if loaded_local(m, d.operands[0]) != Some(slot) {
        return None;
    }
    let c = u128::try_from(m.const_int(d.operands[1])?).ok()?;
    // Stored back into the counter's type, the step counts modulo its size: on a `u8`,
    // `i + 65535` is `i - 1`. Taken the shorter way round.
    let ty = m.value_type(slot).pointee()?;
    let values = int_max(ty)
        .filter(|_| is_unsigned(ty))
        .and_then(|x| x.checked_add(1));
    let (c, down) = match values.map(|v| (v, c % v)) {
        Some((v, c)) if c > v / 2 => (v - c, !down),
        Some((_, c)) => (c, down),
        None => (c, down),
    };
    (c >= 1).then_some((c, down))
}

/// How many odd `step`s take `start` to `target`, counting modulo `values` (a power of two):
/// `(target − start) × step⁻¹`.
fn steps_to_meet(start: u128, target: u128, step: u128, values: u128) -> u128 {
    let distance = target.wrapping_sub(start) & (values - 1);
    distance.wrapping_mul(odd_inverse(step)) & (values - 1)
}

/// The inverse of an odd number modulo 2^128 (so modulo every smaller power of two), by Newton's
/// iteration: each round doubles the bits it is right in, from 3.
pub(super) fn odd_inverse(odd: u128) -> u128 {
    let mut inverse = odd;
    for _ in 0..6 {
        inverse = inverse.wrapping_mul(2u128.wrapping_sub(odd.wrapping_mul(inverse)));
    }
    inverse
}

/// The constant the block holding loop `l` stores into `slot` last before it, if nothing between
/// them can write the slot (only plain ops, no calls or nested regions).
pub(super) fn start_before(m: &Module, l: OpId, slot: Value) -> Option<u128> {
    let (block, at) = m.position(l)?;
    for &o in m.block(block).ops[..at].iter().rev() {
        let d = m.op(o);
        if d.opcode == Opcode::CoreStore && d.operands[1] == slot {
            return u128::try_from(m.const_int(d.operands[0])?).ok();
        }
        if !d.regions.is_empty() || d.opcode == Opcode::CoreCall || d.operands.contains(&slot) {
            return None;
        }
    }
    None
}

/// `v` is computed from a load of `local` (within `depth` pure ops).
pub(super) fn reads_local(m: &Module, v: Value, local: Value, depth: u32) -> bool {
    let Some(op) = m.defining_op(v).filter(|_| depth > 0) else {
        return false;
    };
    let d = m.op(op);
    match d.opcode {
        Opcode::CoreLoad => d.operands[0] == local,
        _ if d.opcode.has(crate::ir::Traits::PURE) => {
            (d.operands.iter()).any(|&x| reads_local(m, x, local, depth - 1))
        }
        _ => false,
    }
}

/// Whether the verifier holds `v` as one exact number on each path it follows: a constant, or
/// the counter of an inline `for` from a constant start, plus constants (through widenings and
/// locals only such values are stored into). A bound of such a value from a test against
/// another range holds for every verifier; for other values only verifiers that compare two
/// ranges (Linux 6.8 on) learn it.
pub fn exact_in_verifier(m: &Module, v: Value, depth: u32) -> bool {
    let v = widened_from(m, v);
    if m.const_int(v).is_some() {
        return true;
    }
    if let Some((term, _)) = constant_addend(m, v) {
        return exact_in_verifier(m, term, depth);
    }
    if let Some(slot) = loaded_local(m, v) {
        return depth > 0
            && stored_values(m, slot)
                .is_some_and(|stored| stored.iter().all(|&s| exact_in_verifier(m, s, depth - 1)));
    }
    let ValueDef::Arg(block, 0) = m.value(v).def else {
        return false;
    };
    m.block_owner(block).is_some_and(|owner| {
        m.op(owner).opcode == Opcode::KsFor && m.const_int(m.op(owner).operands[0]).is_some()
    })
}

/// Every value stored into local `slot` in its function, unless its address escapes.
pub(super) fn stored_values(m: &Module, slot: Value) -> Option<Vec<Value>> {
    let f = m.top_level_of(def_op(m, slot)?);
    let mut stored = Vec::new();
    for op in m.collect_nested(f, |_| true) {
        let d = m.op(op);
        if d.opcode == Opcode::CoreStore && d.operands[1] == slot {
            stored.push(d.operands[0]);
        } else if escaping_operands(m, op).any(|e| e == slot) {
            return None;
        }
    }
    Some(stored)
}

/// The unsigned value `v` widens (`v` itself when it is no widening).
pub(super) fn widened_from(m: &Module, v: Value) -> Value {
    match def_op(m, v).map(|o| m.op(o)) {
        Some(d)
            if d.opcode == Opcode::CoreCast
                && is_unsigned(m.value_type(d.operands[0]))
                && width(m.value_type(d.operands[0])) <= width(m.value_type(v)) =>
        {
            widened_from(m, d.operands[0])
        }
        _ => v,
    }
}

/// The local `v` is a load of, through widenings.
pub(super) fn loaded_local(m: &Module, v: Value) -> Option<Value> {
    let d = m.op(def_op(m, v)?);
    match d.opcode {
        Opcode::CoreLoad if m.is_local(d.operands[0]) => Some(d.operands[0]),
        Opcode::CoreCast => loaded_local(m, d.operands[0]),
        _ => None,
    }
}

/// The terms of the sum `v` (through nested adds; `v` itself when it is no add).
pub(super) fn sum_terms(m: &Module, v: Value, terms: &mut Vec<Value>) {
    match def_op(m, v).map(|o| m.op(o)) {
        // (A pointer moved by offsets is its origin plus them.)
        Some(d) if matches!(d.opcode, Opcode::CoreAdd | Opcode::CorePtrAdd) && terms.len() < 16 => {
            sum_terms(m, d.operands[0], terms);
            sum_terms(m, d.operands[1], terms);
        }
        Some(d) if d.opcode == Opcode::CoreCast && m.value_type(d.operands[0]).is_ptr() => {
            sum_terms(m, d.operands[0], terms)
        }
        _ => terms.push(v),
    }
}

/// `op` sits in a loop nested inside loop `outer`.
pub(super) fn in_nested_loop(m: &Module, op: OpId, outer: OpId) -> bool {
    let mut at = m.parent_op(op);
    while let Some(p) = at {
        if p == outer {
            return false;
        }
        if matches!(
            m.op(p).opcode,
            Opcode::KsFor | Opcode::KsWhile | Opcode::KsMapForeach
        ) {
            return true;
        }
        at = m.parent_op(p);
    }
    false
}

/// Unsigned and pointer locals only ever loaded and stored by address (nothing writes them behind
/// a pointer); a pointer local's bound is its distance from `ctx->data` ([`packet_offset_max`]).
pub(super) fn tracked_locals(m: &Module, f: OpId) -> HashSet<Value> {
    let ops = m.collect_nested(f, |_| true);
    let mut tracked: HashSet<Value> = ops
        .iter()
        .filter(|&&o| m.op(o).opcode == Opcode::CoreLocal)
        .map(|&o| m.op(o).results[0])
        .filter(|&v| {
            m.value_type(v)
                .pointee()
                .is_some_and(|t| is_unsigned(t) || t.is_ptr())
        })
        .collect();
    for &op in &ops {
        for v in escaping_operands(m, op) {
            tracked.remove(&v);
        }
    }
    tracked
}

/// The operands of `op` other than the address a load reads or a store writes: a local named
/// there has its address taken, and may be read or written behind a pointer.
pub fn escaping_operands(m: &Module, op: OpId) -> impl Iterator<Item = Value> + '_ {
    let d = m.op(op);
    d.operands
        .iter()
        .enumerate()
        .filter(move |&(i, _)| {
            !matches!(
                (d.opcode, i),
                (Opcode::CoreLoad, 0) | (Opcode::CoreStore, 1)
            )
        })
        .map(|(_, &v)| v)
}

/// Known bounds of tracked locals at a program point (a local absent is unbounded).
type State = HashMap<Value, u128>;

/// How a region ends: falling through with the values it yields, or leaving (return, break…).
enum Exit {
    Yields(Vec<Value>),
    Leaves,
}

struct Walk<'m> {
    m: &'m Module,
    /// Whether a store of a value the local was tested greater than keeps its bound
    /// ([`LocalBounds::relational_of_function`]).
    relational: bool,
    tracked: HashSet<Value>,
    bounds: LocalBounds,
    /// Stores made so far to each local: a load still holds the local's value while unchanged.
    stores: HashMap<Value, u32>,
    /// Each load of a tracked local, with the local's store count when it was made.
    loaded: HashMap<Value, (Value, u32)>,
    /// The value each store stored, by (local, the store count it set).
    stored: HashMap<(Value, u32), Value>,
}

impl Walk<'_> {
    fn region(&mut self, r: RegionId, state: &mut State) -> Exit {
        let m = self.m;
        let mut exit = Exit::Yields(vec![]);
        for &b in &m.region(r).blocks {
            for &op in &m.block(b).ops {
                exit = self.op(op, state);
            }
        }
        exit
    }

    fn op(&mut self, op: OpId, state: &mut State) -> Exit {
        let m = self.m;
        let d = m.op(op);
        match d.opcode {
            Opcode::CoreStore if self.tracked.contains(&d.operands[1]) => {
                let slot = d.operands[1];
                let mut bound = max_of(m, d.operands[0], &self.bounds, 0);
                if let Some(&before) = state.get(&slot) {
                    if self.relational && self.stores_lesser(op, slot, d.operands[0]) {
                        bound = Some(bound.map_or(before, |b| b.min(before)));
                    }
                }
                let count = self.stores.entry(slot).or_default();
                *count += 1;
                self.stored.insert((slot, *count), d.operands[0]);
                match bound {
                    Some(b) => state.insert(slot, b),
                    None => state.remove(&slot),
                };
            }
            Opcode::CoreLoad if self.tracked.contains(&d.operands[0]) => {
                let slot = d.operands[0];
                let stores = self.stores.get(&slot).copied().unwrap_or(0);
                self.loaded.insert(d.results[0], (slot, stores));
                let first = *self
                    .bounds
                    .reads
                    .entry((slot, stores))
                    .or_insert(d.results[0]);
                self.bounds.first_read.insert(d.results[0], first);
                if let Some(&v) = self.stored.get(&(slot, stores)) {
                    self.bounds.reaching.insert(d.results[0], v);
                }
                if let Some(&b) = state.get(&slot) {
                    self.bounds.at.insert(d.results[0], b);
                }
            }
            Opcode::KsIf => {
                let refine = [
                    self.refinements(d.operands[0], true),
                    self.refinements(d.operands[0], false),
                ];
                let arms = d.regions.iter().zip(refine).map(|(&r, facts)| {
                    let mut s = state.clone();
                    for (slot, b) in facts {
                        let now = s.get(&slot).map_or(b, |&old| old.min(b));
                        s.insert(slot, now);
                    }
                    (r, s)
                });
                self.join_arms(op, arms.collect(), state);
            }
            Opcode::KsSwitch => {
                let arms = d.regions.iter().map(|&r| (r, state.clone())).collect();
                self.join_arms(op, arms, state);
            }
            Opcode::KsTry => {
                // The body runs from here; a handler may start after any store of the body.
                let mut thrown = state.clone();
                for slot in self.stored_in(op) {
                    thrown.remove(&slot);
                }
                let (body, handlers) = d.regions.split_first().expect("a try has a body");
                let mut arms = vec![(*body, state.clone())];
                arms.extend(handlers.iter().map(|&h| (h, thrown.clone())));
                self.join_arms(op, arms, state);
            }
            Opcode::KsYield => return Exit::Yields(d.operands.clone()),
            _ if m.is_terminator(op) => return Exit::Leaves,
            Opcode::KsFor | Opcode::KsWhile if trip_count(m, op).is_some() => {
                // A loop the verifier follows iteration by iteration: a local only ever advanced
                // by a bounded step (`off = off + len`) stays below its entry bound plus the
                // steps of every iteration, inside the loop and after it.
                // First with what the loop stores unknown, which bounds the steps
                // (`off = off + len + 1` after `if (len > 63) { break }`); again with the
                // advanced locals bounded, when some are.
                let trips = trip_count(m, op).unwrap_or(0);
                let stored = self.stored_in(op);
                let mut inside = state.clone();
                for slot in &stored {
                    inside.remove(slot);
                }
                self.walk_loop(op, &inside);
                let mut advanced = false;
                for &slot in &stored {
                    let bound = state
                        .get(&slot)
                        .zip(self.step(op, slot))
                        .and_then(|(&init, step)| init.checked_add(step.checked_mul(trips)?));
                    if let Some(b) = bound {
                        inside.insert(slot, b);
                        advanced = true;
                    }
                }
                if advanced {
                    self.walk_loop(op, &inside);
                }
                for slot in self.stored_in(op) {
                    match inside.get(&slot) {
                        Some(&b) => state.insert(slot, b),
                        None => state.remove(&slot),
                    };
                }
            }
            _ if !d.regions.is_empty() => {
                // Loops, defer: what any region stores is unknown throughout.
                for slot in self.stored_in(op) {
                    state.remove(&slot);
                }
                // Each region (a try's handlers, a loop's test and body) may start after
                // stores of another.
                for &r in &d.regions {
                    self.fresh_reads(op);
                    self.region(r, &mut state.clone());
                }
                self.fresh_reads(op);
            }
            _ => {}
        }
        Exit::Yields(vec![])
    }

    /// Walks each region of loop `op` from `entry`, its reads fresh, then leaves the reads after
    /// it fresh too.
    fn walk_loop(&mut self, op: OpId, entry: &State) {
        for &r in &self.m.op(op).regions {
            self.fresh_reads(op);
            self.region(r, &mut entry.clone());
        }
        self.fresh_reads(op);
    }

    /// The tracked locals stored anywhere inside `op`.
    fn stored_in(&self, op: OpId) -> Vec<Value> {
        let m = self.m;
        let mut slots: Vec<Value> = m
            .collect_nested(op, |x| x.opcode == Opcode::CoreStore)
            .into_iter()
            .map(|s| m.op(s).operands[1])
            .filter(|slot| self.tracked.contains(slot))
            .collect();
        slots.sort_unstable_by_key(|v| v.index());
        slots.dedup();
        slots
    }

    /// Loads of what `op` stores, walked from here on, read values no earlier load read: a
    /// store in one arm or iteration may or may not have run.
    fn fresh_reads(&mut self, op: OpId) {
        for slot in self.stored_in(op) {
            *self.stores.entry(slot).or_default() += 1;
        }
    }

    /// The most one iteration of loop `l` adds to `slot`: every store to it inside the loop is
    /// `slot = slot + step` (one load of the slot, a bounded step), none in a nested loop.
    fn step(&self, l: OpId, slot: Value) -> Option<u128> {
        let m = self.m;
        let mut total: u128 = 0;
        for s in m.collect_nested(l, |x| x.opcode == Opcode::CoreStore) {
            let d = m.op(s);
            if d.operands[1] != slot {
                continue;
            }
            if in_nested_loop(m, s, l) {
                return None;
            }
            // `slot + a + b…` in any grouping: one term reads the slot, the others are the step.
            let mut terms = Vec::new();
            sum_terms(m, d.operands[0], &mut terms);
            let reads_slot = |v: Value| {
                def_op(m, v).is_some_and(|o| {
                    m.op(o).opcode == Opcode::CoreLoad && m.op(o).operands[0] == slot
                })
            };
            if terms.iter().filter(|&&t| reads_slot(t)).count() != 1 {
                return None;
            }
            for t in terms.into_iter().filter(|&t| !reads_slot(t)) {
                total = total.checked_add(max_of(m, t, &self.bounds, 0)?)?;
            }
        }
        Some(total)
    }

    /// Walks each arm from its own state; after the op, a local's bound is the loosest of the
    /// arms that fall through, and each result's the loosest of what they yield.
    fn join_arms(&mut self, op: OpId, arms: Vec<(RegionId, State)>, state: &mut State) {
        let mut joined: Option<State> = None;
        let results = &self.m.op(op).results;
        let mut yielded: Vec<Option<u128>> = vec![Some(0); results.len()];
        for (r, mut s) in arms {
            self.fresh_reads(op);
            let Exit::Yields(values) = self.region(r, &mut s) else {
                continue;
            };
            for (y, &v) in yielded.iter_mut().zip(&values) {
                *y = y
                    .zip(max_of(self.m, v, &self.bounds, 0))
                    .map(|(a, b)| a.max(b));
            }
            joined = Some(match joined {
                None => s,
                Some(j) => j
                    .into_iter()
                    .filter_map(|(k, a)| s.get(&k).map(|&b| (k, a.max(b))))
                    .collect(),
            });
        }
        for (&v, y) in results.iter().zip(yielded) {
            if let Some(y) = y {
                self.bounds.at.insert(v, y);
            }
        }
        self.fresh_reads(op);
        // When no arm falls through, nothing after the op runs.
        *state = joined.unwrap_or_default();
    }

    /// The bounds a branch condition puts on locals in the arm taken when it is `outcome`: each
    /// term's of an `&&` chain that holds, and of an `||` chain that fails
    /// (`if (n == 0 || n > 8 || n > len) { return }` leaves `n ≤ 8` after it).
    fn refinements(&self, cond: Value, outcome: bool) -> Vec<(Value, u128)> {
        let mut terms = Vec::new();
        chain_terms(self.m, cond, !outcome, &mut terms);
        terms
            .into_iter()
            .filter_map(|t| self.refinement(t, outcome))
            .collect()
    }

    /// The bound a branch condition puts on a local in the arm taken when it is `outcome`:
    /// `n <= K`, `n < K`, `n == K` and the negations of `n > K`, `n >= K`, `n != K`, either way
    /// round, unsigned, on a load that still holds the local (or its widening).
    fn refinement(&self, cond: Value, outcome: bool) -> Option<(Value, u128)> {
        let m = self.m;
        let c = views::CoreCmp::of(m, def_op(m, cond)?)?;
        let (lhs, rhs) = (c.lhs(m), c.rhs(m));
        if !is_unsigned(m.value_type(lhs)) {
            return None;
        }
        // (`len > 63` on a byte compares its widening.)
        let current = |v: Value| self.current(widened_from(m, v));
        let (pred, local, other) = match (current(lhs), current(rhs)) {
            (Some(slot), _) => (c.pred(m), slot, rhs),
            (None, Some(slot)) => (c.pred(m).swapped(), slot, lhs),
            (None, None) => return None,
        };
        let pred = if outcome { pred } else { pred.negated() };
        // Only a constant: Linux 6.1's verifier learns nothing from comparing two registers that
        // both hold ranges (`i < n`), so a bound from one would hold for ksc only — enough for
        // the relational bounds (`if (n > limit) { n = limit }` leaves `n` at most `limit`'s).
        let k = match m.const_int(other) {
            Some(k) => u128::try_from(k).ok()?,
            None if self.relational => max_of(m, other, &self.bounds, 0)?,
            None => return None,
        };
        let bound = match pred {
            CmpPred::Le | CmpPred::Eq => k,
            CmpPred::Lt => k.checked_sub(1)?,
            _ => return None,
        };
        Some((local, bound))
    }

    /// Whether `store` puts into `slot` a value a test on the way showed to be at most the
    /// slot's: `if (n > len) { n = len }`, `if (len < n) { n = len }`, with no other store to
    /// the slot between the test's read and this one.
    fn stores_lesser(&self, store: OpId, slot: Value, value: Value) -> bool {
        let m = self.m;
        let same = |a: Value, b: Value| {
            let first = |v| self.bounds.first_read.get(&v).copied();
            a == b || first(a).is_some() && first(a) == first(b)
        };
        // A load of the slot that no store to it follows before `store`.
        let reads_slot = |v: Value| {
            let Some(load) = def_op(m, v) else {
                return false;
            };
            let d = m.op(load);
            d.opcode == Opcode::CoreLoad
                && d.operands[0] == slot
                && super::ops_between(m, load, store).is_some_and(|between| {
                    between.iter().all(|&o| {
                        let d = m.op(o);
                        !(d.opcode == Opcode::CoreStore && d.operands[1] == slot)
                    })
                })
        };
        conditions_at(m, store).into_iter().any(|(cond, outcome)| {
            let mut terms = Vec::new();
            chain_terms(m, cond, !outcome, &mut terms);
            terms.into_iter().any(|t| {
                let Some(c) = def_op(m, t).and_then(|o| views::CoreCmp::of(m, o)) else {
                    return false;
                };
                let (lhs, rhs) = (c.lhs(m), c.rhs(m));
                let pred = if outcome {
                    c.pred(m)
                } else {
                    c.pred(m).negated()
                };
                // (The stored value first: `reads_slot` walks the code between.)
                let pred = if same(rhs, value) && reads_slot(lhs) {
                    pred
                } else if same(lhs, value) && reads_slot(rhs) {
                    pred.swapped()
                } else {
                    return false;
                };
                is_unsigned(m.value_type(lhs)) && matches!(pred, CmpPred::Gt | CmpPred::Ge)
            })
        })
    }

    /// The local a load reads, when no store has changed it since.
    fn current(&self, v: Value) -> Option<Value> {
        let &(slot, stores) = self.loaded.get(&v)?;
        (self.stores.get(&slot).copied().unwrap_or(0) == stores).then_some(slot)
    }
}

#[cfg(test)]
mod until_equal_tests {
    use super::steps_to_meet;

    #[test]
    fn steps_to_meet_counts_wrapping_odd_steps() {
        assert_eq!(steps_to_meet(0, 10, 1, 1 << 32), 10);
        assert_eq!(steps_to_meet(2, 203, 3, 256), 67);
        // Down by one from 0 to 10: all the way round.
        assert_eq!(steps_to_meet(0, 10, (1 << 32) - 1, 1 << 32), (1 << 32) - 10);
        // Down by 3 from 5 to 250 in a byte.
        assert_eq!(steps_to_meet(5, 250, 256 - 3, 256), 89);
        assert_eq!(steps_to_meet(7, 7, 5, 1 << 64), 0);
    }
}
