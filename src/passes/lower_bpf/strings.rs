//! Strings and aggregates in kernel code (§6.5): comparison, concatenation and conversion become
//! loops with constant bounds over bytes in stack slots (never `bpf_strncmp` on stack memory), and
//! struct and array equality compares field by field and element by element.

use super::{Emit, Lowered, Role};
use crate::ir::layout::struct_decl;
use crate::ir::views::*;
use crate::ir::{OpId, Type, Value};

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
    e.b.core_cmp(c, z, "eq")
}

pub fn str_eq(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsStrEq(op);
    let (l, r) = (v.lhs(e.m()), v.rhs(e.m()));
    let (lc, rc) = (capacity(&e.ty(l))?, capacity(&e.ty(r))?);
    let a = e.spill(Role::Lhs, l);
    let b = e.spill(Role::Rhs, r);
    Ok(vec![content_eq(e, a, lc, b, rc)])
}

/// Whether two strings in memory have the same content: bytes up to the first NUL, which each
/// string has within its capacity, so the shorter capacity bounds the loop.
fn content_eq(e: &mut Emit, a: Value, a_cap: u32, b: Value, b_cap: u32) -> Value {
    let eq = e.scratch(Role::Flag, Type::Bool);
    e.store_const(1, eq);
    e.for_range(a_cap.min(b_cap) as u64, |e, i| {
        let (ca, cb) = (byte_at(e, a, i), byte_at(e, b, i));
        let differ = e.b.core_cmp(ca, cb, "ne");
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
        let full = e.b.core_cmp(pos, lim, "ge");
        e.break_if(full);
        let at = e.b.core_elem_addr(dst, pos, Type::ptr(Type::u8()));
        e.b.core_store(c, at);
        let one = e.b.core_const(1, Type::u32());
        let next = e.b.core_add(pos, one);
        e.b.core_store(next, len);
    });
}

/// A zeroed destination of type `ty` and a zero position, for `append`.
fn fresh_dst(e: &mut Emit, ty: Type) -> (Value, Value) {
    let dst = e.scratch(Role::Dst, ty);
    e.store_zero(dst);
    let len = e.scratch(Role::Len, Type::u32());
    e.store_const(0, len);
    (dst, len)
}

/// `a + b` into the result's capacity, truncated (§6.5).
pub fn str_concat(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsStrConcat(op);
    let (l, r, ty) = (v.lhs(e.m()), v.rhs(e.m()), e.ty(v.result_value(e.m())));
    let (lc, rc, n) = (capacity(&e.ty(l))?, capacity(&e.ty(r))?, capacity(&ty)?);
    let a = e.spill(Role::Lhs, l);
    let b = e.spill(Role::Rhs, r);
    let (dst, len) = fresh_dst(e, ty);
    append(e, dst, n.saturating_sub(1), len, a, lc);
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
    let src = e.spill(Role::Lhs, value);
    let (dst, len) = fresh_dst(e, ty);
    append(e, dst, limit, len, src, cap);
    Ok(vec![e.load(dst)])
}

pub fn agg_eq(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsAggEq(op);
    let (l, r) = (v.lhs(e.m()), v.rhs(e.m()));
    let ty = e.ty(l);
    let a = e.spill(Role::Lhs, l);
    let b = e.spill(Role::Rhs, r);
    Ok(vec![equal_at(e, a, b, &ty)?])
}

/// Equality of two values of type `ty` in memory: structs field by field (padding ignored),
/// arrays element by element, strings by content, scalars by value.
fn equal_at(e: &mut Emit, a: Value, b: Value, ty: &Type) -> Result<Value, String> {
    match ty {
        Type::Struct(name) => {
            let decl = struct_decl(e.m(), name).ok_or_else(|| format!("no ks.struct declares !{name}"))?;
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
            Ok(e.b.core_cmp(x, y, "eq"))
        }
        t => Err(format!("cannot compare values of type {t}")),
    }
}
