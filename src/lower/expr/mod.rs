//! Expressions (§7): values, places (lvalues), implicit conversions, calls and builtins, match.

use super::body::{FnLower, Slot};
use crate::btf::{BitField, KMember};
use crate::diagnostics::Span;
use crate::ir::{Attr, FnType, Type, Value};
use crate::sema::consteval::ConstValue;
use crate::sema::env::{Foreign, ProgKind, StructOrigin, Symbol, Target};
use crate::sema::types::{unify_ints, IntTy, StructId, Ty};
use crate::syntax::ast::*;
use crate::vocab::CmpPred;
use std::rc::Rc;

mod aggregates;
mod calls;
mod matching;
mod operators;
mod places;

/// Where an lvalue lives.
#[derive(Clone, Debug)]
enum Base {
    Addr(Value),
    /// A pointer that may be null: reads yield zero and writes do nothing when it is (§11.3).
    Maybe(Value),
    /// `m[k]` itself.
    MapElem {
        map: usize,
        key: Value,
    },
    /// A field of a program context (`ctx->data`, `ctx->cb[i]`).
    Ctx {
        ctx: Value,
        field: String,
        index: Option<Value>,
    },
}

#[derive(Clone, Debug)]
enum Step {
    Field(String, Type),
    /// A CO-RE relocated field of a kernel struct; for a bit-field, its storage unit, whose
    /// bits the read extracts (kernel fields are read-only, E0311).
    KField(String, Type, Option<BitField>),
    /// A field of a kernel header struct in packet memory (`ip->ttl` on an `*iphdr` cast from
    /// `ctx->data`): at its byte offset, unrelocated, as wire formats do not move between
    /// kernels; a bit-field's storage unit, as for `KField`.
    Wire(u32, Type, Option<BitField>),
    /// Array or string element, range-checked at run time unless the index is constant.
    Index(Value, Type, bool),
    /// Pointer indexing (`p[i]`): no range.
    PtrIndex(Value),
}

#[derive(Clone, Debug)]
struct Place {
    base: Base,
    path: Vec<Step>,
    /// IR type of the place's value.
    ty: Type,
    /// Read through a helper: the pointer is not one the verifier lets the program load from.
    untrusted: Option<Foreign>,
}

impl FnLower<'_, '_, '_> {
    pub fn ty(&self, e: &Expr) -> Ty {
        self.lw
            .ck
            .expr_types
            .get(e.id.0 as usize)
            .cloned()
            .unwrap_or(Ty::Error)
    }

    fn const_of(&self, e: &Expr) -> Option<ConstValue> {
        self.lw.ck.consts.get(&e.id).cloned()
    }

    fn ir(&mut self, t: &Ty) -> Type {
        self.lw.ir_type(t)
    }

    fn materialize(&mut self, v: &ConstValue, ty: &Type) -> Value {
        match (v, ty) {
            (ConstValue::Str(s), Type::Str(n)) => {
                // Assignment to a smaller capacity truncates (§6.5).
                let keep = s.len().min(*n as usize - 1);
                self.b().core_string(s[..keep].to_vec(), ty.clone())
            }
            (ConstValue::Str(s), _) => self
                .b()
                .core_string(s.clone(), Type::Str(s.len() as u32 + 1)),
            (ConstValue::Bool(b), _) => self.b().core_const(*b as i128, Type::Bool),
            (ConstValue::Int(_) | ConstValue::Char(_), Type::Int(i)) => {
                let n = i.wrap(v.as_int().unwrap_or(0));
                self.b().core_const(n, ty.clone())
            }
            (ConstValue::Int(_) | ConstValue::Char(_), _) => {
                let n = IntTy::I64.wrap(v.as_int().unwrap_or(0));
                let c = self.b().core_const(n, Type::i64());
                self.convert(c, ty)
            }
        }
    }

    /// The value of `e`, in the IR form of its checked type.
    pub fn rvalue(&mut self, e: &Expr) -> Value {
        let prev = self.loc;
        self.at(e.span);
        let v = self.rvalue_inner(e);
        self.loc = prev;
        v
    }

    fn rvalue_inner(&mut self, e: &Expr) -> Value {
        let t = self.ty(e);
        let it = self.ir(&t);
        if let Some(c) = self.const_of(e) {
            return self.materialize(&c, &it);
        }
        match &e.kind {
            ExprKind::Int(n) => self.materialize(&ConstValue::Int(*n as i128), &it),
            ExprKind::Bool(b) => self.b().core_const(*b as i128, Type::Bool),
            ExprKind::Char(c) => self.b().core_const(*c as i128, Type::u8()),
            ExprKind::Str(s) => {
                let st = if matches!(it, Type::Str(_)) {
                    it
                } else {
                    Type::Str(s.len() as u32 + 1)
                };
                self.b().core_string(s.clone(), st)
            }
            ExprKind::Null => {
                let pt = if it.is_ptr() {
                    it
                } else {
                    Type::ptr(Type::Void)
                };
                self.b().core_const(0, pt)
            }
            ExprKind::Ident(n) => self.ident_value(n, &it),
            ExprKind::ArrayLit(items) => self.array_literal(items, &it),
            ExprKind::Unary(op, x) => match op {
                UnOp::Not | UnOp::BitNot => {
                    let v = self.rvalue(x);
                    let v = self.convert(v, &it);
                    self.b().core_not(v)
                }
                UnOp::Neg => {
                    let v = self.rvalue(x);
                    let v = self.convert(v, &it);
                    self.b().core_neg(v)
                }
                UnOp::Deref => {
                    let p = self.place(e);
                    self.load_place(&p)
                }
                UnOp::AddrOf => {
                    let p = self.place(x);
                    let a = self.place_address(&p);
                    self.convert(a, &it)
                }
            },
            ExprKind::Binary(op, l, r) => self.binary(e, *op, l, r, &it),
            ExprKind::Cast(x, _) => {
                let v = self.rvalue(x);
                self.convert(v, &it)
            }
            ExprKind::Call { callee, args } => match self.call(e, callee, args) {
                Some(v) => v,
                None => self.b().core_zero(it),
            },
            ExprKind::Index(..) | ExprKind::Field(..) | ExprKind::Arrow(..) => {
                let p = self.place(e);
                self.load_place(&p)
            }
            ExprKind::StructLit { fields, .. } => self.struct_literal(fields, &t, &it),
            ExprKind::Match { .. } => match self.match_expr(e, None, false) {
                Some(v) => v,
                None => self.b().core_zero(it),
            },
            ExprKind::New { arg, .. } => {
                let pointee = it.pointee().cloned().unwrap_or(Type::Void);
                let gfp = arg
                    .as_ref()
                    .and_then(|a| self.const_of(a))
                    .and_then(|c| c.as_int());
                self.b().ks_new(pointee, gfp, it)
            }
            ExprKind::SizeofType(_) | ExprKind::SizeofExpr(_) => self.b().core_const(0, it),
        }
    }

    fn ident_value(&mut self, n: &str, it: &Type) -> Value {
        match self.lookup(n).cloned() {
            Some(Slot::Var { addr }) => {
                let t = self.lw.m.value_type(addr).pointee().unwrap().clone();
                self.b().core_load(addr, t)
            }
            Some(Slot::Entry { addr, .. }) => {
                let pt = self.lw.m.value_type(addr).pointee().unwrap().clone();
                let p = self.b().core_load(addr, pt.clone());
                let vt = pt.pointee().unwrap().clone();
                self.b().ks_load_or_zero(p, vt)
            }
            None => match self.lw.ck.symbols.get(n) {
                Some(Symbol::Global(_)) => {
                    let a = self.b().ks_global_addr(n, Type::ptr(it.clone()));
                    self.b().core_load(a, it.clone())
                }
                Some(Symbol::Func(id)) => {
                    let name = self.lw.func_name(*id);
                    self.b().core_func_addr(&name, it.clone())
                }
                _ => self.b().core_zero(it.clone()),
            },
        }
    }

    /// `e` converted to the checked type `to` (the implicit conversions of §6.3).
    pub fn coerced(&mut self, e: &Expr, to: &Ty) -> Value {
        let it = self.ir(to);
        match &e.kind {
            ExprKind::ArrayLit(items) if matches!(it, Type::Array(..)) => {
                self.at(e.span);
                return self.array_literal(items, &it);
            }
            ExprKind::Null => {
                self.at(e.span);
                return self.b().core_const(0, it);
            }
            _ => {}
        }
        if let Some(c) = self.const_of(e) {
            if it.is_int() || it == Type::Bool || matches!(it, Type::Str(_)) {
                self.at(e.span);
                return self.materialize(&c, &it);
            }
        }
        let v = self.rvalue(e);
        self.convert(v, &it)
    }

    /// Converts a value to another IR type (truncation, extension, pointer and string conversions).
    pub fn convert(&mut self, v: Value, to: &Type) -> Value {
        let from = self.lw.m.value_type(v).clone();
        if from == *to {
            return v;
        }
        match (&from, to) {
            (Type::Str(_) | Type::Array(..), Type::Str(_)) | (Type::Str(_), Type::Array(..)) => {
                self.b().ks_str_convert(v, to.clone())
            }
            (a, b) if a.is_scalar() && b.is_scalar() => self.b().core_cast(v, to.clone()),
            (Type::Array(from_elem, n), Type::Array(to_elem, m)) if n == m => {
                let (from_elem, to_elem, n) = ((**from_elem).clone(), (**to_elem).clone(), *n);
                self.convert_elements(v, &from_elem, &to_elem, n, to)
            }
            _ => v,
        }
    }

    /// `T[N]` to `U[N]` (§6.3 rule 6): each element converted, in a loop over the elements.
    fn convert_elements(
        &mut self,
        v: Value,
        from_elem: &Type,
        to_elem: &Type,
        n: u32,
        to: &Type,
    ) -> Value {
        let from = self.lw.m.value_type(v).clone();
        let source = self.slot(from, "");
        self.b().core_store(v, source);
        let dest = self.slot(to.clone(), "");
        self.for_each_index(n, |fl, i| {
            let a = fl
                .b()
                .core_elem_addr(source, i, Type::ptr(from_elem.clone()));
            let x = fl.b().core_load(a, from_elem.clone());
            let y = fl.convert(x, to_elem);
            let d = fl.b().core_elem_addr(dest, i, Type::ptr(to_elem.clone()));
            fl.b().core_store(y, d);
        });
        self.b().core_load(dest, to.clone())
    }

    /// A `ks.for` over `0..n` whose body `body` emits, given the u32 index.
    fn for_each_index(&mut self, n: u32, body: impl FnOnce(&mut Self, Value)) {
        let lo = self.b().core_const(0, Type::u32());
        let hi = self.b().core_const(n as i128, Type::u32());
        let op = self.b().ks_for(lo, hi, None, None, None);
        let bb = self.entry_of(op, 0);
        let i = self.lw.m.add_block_arg(bb, Type::u32());
        self.in_block(bb, |fl| body(fl, i));
    }

    /// A bool for an `if`/`while` condition (§7.2: integers, pointers and strings are truthy).
    pub fn condition(&mut self, e: &Expr) -> Value {
        self.at(e.span);
        if self.is_presence(e) {
            let p = self.entry_address(e);
            return self.non_null(p);
        }
        let v = self.rvalue(e);
        self.truthy(v)
    }

    fn truthy(&mut self, v: Value) -> Value {
        match self.lw.m.value_type(v).clone() {
            Type::Bool => v,
            Type::Str(n) => {
                let empty = self.b().core_string(Vec::new(), Type::Str(n));
                let eq = self.b().ks_str_eq(v, empty);
                self.b().core_not(eq)
            }
            t => {
                let z = self.b().core_const(0, t);
                self.b().core_cmp(v, z, CmpPred::Ne)
            }
        }
    }

    pub fn non_null(&mut self, p: Value) -> Value {
        let t = self.lw.m.value_type(p).clone();
        let z = self.b().core_const(0, t);
        self.b().core_cmp(p, z, CmpPred::Ne)
    }

    /// `m[k]` or an entry binding: whose truthiness and `== null` test presence (§11.3).
    fn is_presence(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Ident(n) => matches!(self.lookup(n), Some(Slot::Entry { .. })),
            _ => self.is_map_access(e),
        }
    }

    pub fn is_map_access(&self, e: &Expr) -> bool {
        self.accessed_map(e).is_some()
    }

    /// For `m[k]`, the map `m`.
    pub fn accessed_map(&self, e: &Expr) -> Option<usize> {
        match &e.kind {
            ExprKind::Index(base, _) => self.map_of(base),
            _ => None,
        }
    }

    /// The map an expression names (a bare map name not shadowed by a local).
    pub fn map_of(&self, e: &Expr) -> Option<usize> {
        let ExprKind::Ident(n) = &e.kind else {
            return None;
        };
        if self.lookup(n).is_some() {
            return None;
        }
        match self.lw.ck.symbols.get(n) {
            Some(Symbol::Map(i)) => Some(*i),
            _ => None,
        }
    }

    /// The address of a map entry (null when absent) for `m[k]` or an entry binding.
    pub fn entry_address(&mut self, e: &Expr) -> Value {
        match &e.kind {
            ExprKind::Index(base, key) => {
                let mi = self.map_of(base).expect("a map access");
                let info = self.lw.ck.maps[mi].clone();
                let k = self.coerced(key, &info.key);
                let vt = self.ir(&info.value);
                self.at(e.span);
                self.b().ks_map_lookup(k, &info.name, Type::ptr(vt))
            }
            ExprKind::Ident(n) => match self.lookup(n).cloned() {
                Some(Slot::Entry { addr, .. }) => {
                    let pt = self.lw.m.value_type(addr).pointee().unwrap().clone();
                    self.b().core_load(addr, pt)
                }
                _ => self.rvalue(e),
            },
            _ => self.rvalue(e),
        }
    }

    /// `q.pop()` / `q.peek()`: the value and whether there was one.
    pub fn pop_call(&mut self, e: &Expr) -> Option<(Value, Value)> {
        let ExprKind::Call { callee, args } = &e.kind else {
            return None;
        };
        let ExprKind::Field(recv, m) = &callee.kind else {
            return None;
        };
        if !args.is_empty() || !matches!(m.name.as_str(), "pop" | "peek") {
            return None;
        }
        let mi = self.map_of(recv)?;
        let info = self.lw.ck.maps[mi].clone();
        let vt = self.ir(&info.value);
        self.at(e.span);
        let op = self.b().ks_map_pop(&info.name, m.name == "peek", vt);
        let r = &self.lw.m.op(op).results;
        Some((r[0], r[1]))
    }

    // ---- places ---------------------------------------------------------------------------
}
