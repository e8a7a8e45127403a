//! Strings and aggregates in kernel code (§6.5): comparison, concatenation and conversion become
//! loops with constant bounds over bytes in stack slots (never `bpf_strncmp` on stack memory), and
//! struct and array equality compares field by field and element by element.

use super::{Emit, Lowered, Role};
use crate::ir::layout::struct_decl;
use crate::ir::views::*;
use crate::ir::{Module, OpId, Opcode, Type, Value, ValueDef};
use crate::vocab::CmpPred;

// Strings are read where they live and written where they go: a string loaded from a variable
// right before the operation is read through the variable's address, and a result stored
// straight into a variable is built in it. Copies of 64- or 128-byte strings through scratch
// slots would otherwise exhaust the 512-byte stack where hand-written C fits.

/// The address `v` was loaded from, when nothing between that load and `at` may write memory
/// (so the bytes there are still `v`).
fn loaded_from(m: &Module, v: Value, at: OpId) -> Option<Value> {
    let ValueDef::Result(load, 0) = m.value(v).def else {
        return None;
    };
    if m.op(load).opcode != Opcode::CoreLoad {
        return None;
    }
    let (lb, li) = m.position(load)?;
    let (ab, ai) = m.position(at)?;
    if lb != ab || li > ai {
        return None;
    }
    let untouched = m.block(lb).ops[li + 1..ai]
        .iter()
        .all(|&o| m.is_effect_free(o));
    untouched.then(|| m.op(load).operands[0])
}

/// The string `v` in memory: where it was loaded from, else spilled to the role's scratch slot.
fn in_memory(e: &mut Emit, role: Role, v: Value) -> Value {
    let at = e.cx.current.expect("an op is being lowered");
    match loaded_from(e.m(), v, at) {
        Some(addr) => addr,
        None => e.spill(role, v),
    }
}

/// The variable the result of `op` is stored into by the op right after it, if it has the
/// result's type, is not one of the `sources` being read, and the result has no other use.
fn stored_into(m: &Module, op: OpId, sources: &[Value]) -> Option<Value> {
    let result = m.op(op).results[0];
    let (b, i) = m.position(op)?;
    let &next = m.block(b).ops.get(i + 1)?;
    let d = m.op(next);
    if d.opcode != Opcode::CoreStore || d.operands[0] != result {
        return None;
    }
    let slot = d.operands[1];
    let local =
        matches!(m.value(slot).def, ValueDef::Result(l, 0) if m.op(l).opcode == Opcode::CoreLocal);
    if !local
        || m.value_type(slot).pointee() != Some(m.value_type(result))
        || sources.contains(&slot)
    {
        return None;
    }
    (m.use_count(result) == 1).then_some(slot)
}

/// Where to build a string result of type `ty`: the variable it is stored into, else a scratch
/// slot; zeroed, with a zero write position, for `append`.
fn destination(e: &mut Emit, ty: Type, sources: &[Value]) -> (Value, Value) {
    let at = e.cx.current.expect("an op is being lowered");
    let dst = stored_into(e.m(), at, sources).unwrap_or_else(|| e.scratch(Role::Dst, ty));
    e.store_zero(dst);
    let len = e.scratch(Role::Len, Type::u32());
    e.store_const(0, len);
    (dst, len)
}

/// Before lowering: conversions that only move a string between capacities are dropped where the
/// consumer does not need them, so no intermediate string is built.
pub fn simplify(m: &mut Module, func: OpId) {
    fold_converted_concats(m, func);
    compare_unwidened(m, func);
}

/// `s == "lit"` converts the literal to the capacity of `s`; widening keeps the content, and
/// content is what equality compares, so the comparison reads the original.
fn compare_unwidened(m: &mut Module, func: OpId) {
    for eq in m.collect_nested(func, |o| o.opcode == Opcode::KsStrEq) {
        for i in 0..2 {
            let v = m.op(eq).operands[i];
            let source = unwidened(m, v);
            if source != v {
                m.op_mut(eq).operands[i] = source;
                m.erase_if_unused(v);
            }
        }
    }
}

/// `str_convert(str_concat(a, b))`, the concatenation's only use, as one concatenation into the
/// converted capacity: both truncate at the final capacity, and no intermediate string is built.
fn fold_converted_concats(m: &mut Module, func: OpId) {
    for convert in m.collect_nested(func, |o| o.opcode == Opcode::KsStrConvert) {
        let source = m.op(convert).operands[0];
        let to = m.value_type(m.op(convert).results[0]).clone();
        let ValueDef::Result(concat, 0) = m.value(source).def else {
            continue;
        };
        if m.op(concat).opcode != Opcode::KsStrConcat || !matches!(to, Type::Str(_)) {
            continue;
        }
        if m.use_count(source) != 1 {
            continue;
        }
        let (l, r) = (m.op(concat).operands[0], m.op(concat).operands[1]);
        let folded = m.builder_before(convert).ks_str_concat(l, r, to);
        m.replace_op(convert, &[folded]);
        m.detach_op(concat);
    }
}

/// The capacity of a string or byte array.
fn capacity(t: &Type) -> Result<u32, String> {
    match t {
        Type::Str(n) => Ok(*n),
        Type::Array(elem, n) if **elem == Type::u8() => Ok(*n),
        t => Err(format!("{t} is not a string or byte array")),
    }
}

fn byte_at(e: &mut Emit, s: Value, i: Value) -> Value {
    let p = e.b.core_elem_addr(s, i, Type::ptr(Type::u8()));
    e.b.core_load(p, Type::u8())
}

fn is_nul(e: &mut Emit, c: Value) -> Value {
    let z = e.b.core_const(0, Type::u8());
    e.b.core_cmp(c, z, CmpPred::Eq)
}

/// The unconverted string when `v` only widens one.
fn unwidened(m: &Module, v: Value) -> Value {
    let ValueDef::Result(op, 0) = m.value(v).def else {
        return v;
    };
    if m.op(op).opcode != Opcode::KsStrConvert {
        return v;
    }
    let source = m.op(op).operands[0];
    match (m.value_type(source), m.value_type(v)) {
        (Type::Str(from), Type::Str(to)) if from <= to => source,
        _ => v,
    }
}

pub fn str_eq(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsStrEq(op);
    let (l, r) = (v.lhs(e.m()), v.rhs(e.m()));
    let (lc, rc) = (capacity(&e.ty(l))?, capacity(&e.ty(r))?);
    let a = in_memory(e, Role::Lhs, l);
    let b = in_memory(e, Role::Rhs, r);
    Ok(vec![content_eq(e, a, lc, b, rc)])
}

/// Whether two strings in memory have the same content: bytes up to the first NUL, which each
/// string has within its capacity, so the shorter capacity bounds the loop.
fn content_eq(e: &mut Emit, a: Value, a_cap: u32, b: Value, b_cap: u32) -> Value {
    let eq = e.scratch(Role::Flag, Type::Bool);
    e.store_const(1, eq);
    e.for_range(a_cap.min(b_cap) as u64, |e, i| {
        let (ca, cb) = (byte_at(e, a, i), byte_at(e, b, i));
        let differ = e.b.core_cmp(ca, cb, CmpPred::Ne);
        e.if_then(differ, |e| {
            e.store_const(0, eq);
            e.b.ks_break();
        });
        let end = is_nul(e, ca);
        e.break_if(end);
    });
    e.load(eq)
}

/// Appends the content of `src` (up to its NUL, at most `src_cap` bytes) to `dst` at the u32
/// position held in `len`, stopping before position `limit`. `dst` starts zeroed, so the result
/// stays NUL-terminated.
fn append(e: &mut Emit, dst: Value, limit: u32, len: Value, src: Value, src_cap: u32) {
    e.for_range(src_cap as u64, |e, i| {
        let c = byte_at(e, src, i);
        let end = is_nul(e, c);
        e.break_if(end);
        let pos = e.load(len);
        let lim = e.b.core_const(limit as i128, Type::u32());
        let full = e.b.core_cmp(pos, lim, CmpPred::Ge);
        e.break_if(full);
        let at = e.b.core_elem_addr(dst, pos, Type::ptr(Type::u8()));
        e.b.core_store(c, at);
        let one = e.b.core_const(1, Type::u32());
        let next = e.b.core_add(pos, one);
        e.b.core_store(next, len);
    });
}

/// `a + b` into the result's capacity, truncated (§6.5).
pub fn str_concat(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsStrConcat(op);
    let (l, r, ty) = (v.lhs(e.m()), v.rhs(e.m()), e.ty(v.result_value(e.m())));
    let (lc, rc, n) = (capacity(&e.ty(l))?, capacity(&e.ty(r))?, capacity(&ty)?);
    let a = in_memory(e, Role::Lhs, l);
    let b = in_memory(e, Role::Rhs, r);
    let (dst, len) = destination(e, ty, &[a, b]);
    append(e, dst, n.saturating_sub(1), len, a, lc);
    // Where `b` starts is a value LLVM knows to be below `lc`. Below the 8 bytes every stack
    // slot is aligned to (a `str(8)` on the left), instruction selection turns slot + start into
    // slot | start, which the verifier refuses on a pointer; opaque, it stays an addition.
    if lc <= 8 {
        let start = e.load(len);
        let start = e.b.bpf_opaque(start);
        e.b.core_store(start, len);
    }
    append(e, dst, n.saturating_sub(1), len, b, rc);
    Ok(vec![e.load(dst)])
}

/// A string or byte array into another capacity: a string keeps room for its NUL, a byte array
/// takes every byte (§6.10).
pub fn str_convert(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsStrConvert(op);
    let (value, ty) = (v.value(e.m()), e.ty(v.result_value(e.m())));
    let cap = capacity(&e.ty(value))?;
    let limit = match ty {
        Type::Str(n) => n.saturating_sub(1),
        _ => capacity(&ty)?,
    };
    let src = in_memory(e, Role::Lhs, value);
    let (dst, len) = destination(e, ty, &[src]);
    append(e, dst, limit, len, src, cap);
    Ok(vec![e.load(dst)])
}

pub fn agg_eq(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsAggEq(op);
    let (l, r) = (v.lhs(e.m()), v.rhs(e.m()));
    let ty = e.ty(l);
    let a = in_memory(e, Role::Lhs, l);
    let b = in_memory(e, Role::Rhs, r);
    Ok(vec![equal_at(e, a, b, &ty)?])
}

/// Equality of two values of type `ty` in memory: structs field by field (padding ignored),
/// arrays element by element, strings by content, scalars by value.
fn equal_at(e: &mut Emit, a: Value, b: Value, ty: &Type) -> Result<Value, String> {
    match ty {
        Type::Struct(name) => {
            let decl =
                struct_decl(e.m(), name).ok_or_else(|| format!("no ks.struct declares !{name}"))?;
            let fields = KsStruct(decl).fields(e.m()).to_vec();
            let mut all = e.b.core_const(1, Type::Bool);
            for (f, t) in fields {
                let fa = e.b.core_field_addr(a, f.as_bytes(), Type::ptr(t.clone()));
                let fb = e.b.core_field_addr(b, f.as_bytes(), Type::ptr(t.clone()));
                let same = equal_at(e, fa, fb, &t)?;
                all = e.b.core_and(all, same);
            }
            Ok(all)
        }
        Type::Str(n) => Ok(content_eq(e, a, *n, b, *n)),
        Type::Array(elem, n) => {
            // A slot of its own: the flags of nested arrays are live at the same time.
            let eq = e.slot(Type::Bool);
            e.store_const(1, eq);
            let mut result = Ok(());
            e.for_range(*n as u64, |e, i| {
                let at = Type::ptr((**elem).clone());
                let ea = e.b.core_elem_addr(a, i, at.clone());
                let eb = e.b.core_elem_addr(b, i, at);
                match equal_at(e, ea, eb, elem) {
                    Ok(same) => {
                        let differ = e.b.core_not(same);
                        e.if_then(differ, |e| {
                            e.store_const(0, eq);
                            e.b.ks_break();
                        });
                    }
                    Err(msg) => result = Err(msg),
                }
            });
            result.map(|()| e.load(eq))
        }
        t if t.is_scalar() => {
            let (x, y) = (e.load(a), e.load(b));
            Ok(e.b.core_cmp(x, y, CmpPred::Eq))
        }
        t => Err(format!("cannot compare values of type {t}")),
    }
}
