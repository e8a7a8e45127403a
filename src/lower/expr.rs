//! Expressions (§7): values, places (lvalues), implicit conversions, calls and builtins, match.

use super::body::{FnLower, Slot};
use crate::diagnostics::Span;
use crate::ir::{Attr, FnType, Type, Value};
use crate::sema::consteval::ConstValue;
use crate::sema::env::{Foreign, ProgKind, StructOrigin, Symbol, Target};
use crate::sema::types::{unify_ints, IntTy, Ty};
use crate::syntax::ast::*;
use crate::vocab::CmpPred;
use std::rc::Rc;

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
    /// A CO-RE relocated field of a kernel struct.
    KField(String, Type),
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
            Some(Slot::Entry { addr }) => {
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
        let op = self.b().ks_for(lo, hi);
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
        matches!(&e.kind, ExprKind::Index(base, _) if self.map_of(base).is_some())
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
                Some(Slot::Entry { addr }) => {
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

    fn place(&mut self, e: &Expr) -> Place {
        let it = self.ir(&self.ty(e));
        match &e.kind {
            ExprKind::Ident(n) => match self.lookup(n).cloned() {
                Some(Slot::Var { addr }) => Place {
                    base: Base::Addr(addr),
                    path: vec![],
                    ty: it,
                    untrusted: None,
                },
                Some(Slot::Entry { addr }) => {
                    let pt = self.lw.m.value_type(addr).pointee().unwrap().clone();
                    let p = self.b().core_load(addr, pt.clone());
                    Place {
                        base: Base::Maybe(p),
                        path: vec![],
                        ty: pt.pointee().unwrap().clone(),
                        untrusted: None,
                    }
                }
                None => {
                    let a = self.b().ks_global_addr(n, Type::ptr(it.clone()));
                    Place {
                        base: Base::Addr(a),
                        path: vec![],
                        ty: it,
                        untrusted: None,
                    }
                }
            },
            ExprKind::Field(base, f) => {
                if let ExprKind::Ident(n) = &base.kind {
                    if self.lookup(n).is_none() {
                        if let Some(Symbol::Config(ci)) = self.lw.ck.symbols.get(n) {
                            let cname = self.lw.ck.configs[*ci].name.clone();
                            let st = Type::Struct(Rc::from(format!("{cname}_config").as_str()));
                            let a = self.b().ks_config_addr(&cname, Type::ptr(st));
                            return Place {
                                base: Base::Addr(a),
                                path: vec![Step::Field(f.name.clone(), it.clone())],
                                ty: it,
                                untrusted: None,
                            };
                        }
                    }
                }
                let mut p = self.place(base);
                let kernel = matches!(self.ty(base), Ty::Struct(id) if self.lw.ck.structs[id.0 as usize].origin == StructOrigin::Kernel);
                p.path.push(if kernel {
                    Step::KField(f.name.clone(), it.clone())
                } else {
                    Step::Field(f.name.clone(), it.clone())
                });
                p.ty = it;
                p
            }
            ExprKind::Arrow(base, f) => {
                let bt = self.ty(base);
                let origin = match bt.pointee() {
                    Some(Ty::Struct(id)) => self.lw.ck.structs[id.0 as usize].origin,
                    _ => StructOrigin::File,
                };
                let pv = self.rvalue(base);
                let pv = if origin == StructOrigin::Context {
                    pv
                } else {
                    self.deref(pv, e.span)
                };
                match origin {
                    StructOrigin::Context => Place {
                        base: Base::Ctx {
                            ctx: pv,
                            field: f.name.clone(),
                            index: None,
                        },
                        path: vec![],
                        ty: it,
                        untrusted: None,
                    },
                    StructOrigin::Kernel => Place {
                        base: Base::Addr(pv),
                        path: vec![Step::KField(f.name.clone(), it.clone())],
                        ty: it,
                        untrusted: self.foreign(base).or_else(|| {
                            (!self.trusted_kernel_pointers()).then_some(Foreign::Kernel)
                        }),
                    },
                    _ => Place {
                        base: Base::Addr(pv),
                        path: vec![Step::Field(f.name.clone(), it.clone())],
                        ty: it,
                        untrusted: self.foreign(base),
                    },
                }
            }
            ExprKind::Index(base, idx) => {
                if let Some(mi) = self.map_of(base) {
                    let info = self.lw.ck.maps[mi].clone();
                    let k = self.coerced(idx, &info.key);
                    return Place {
                        base: Base::MapElem { map: mi, key: k },
                        path: vec![],
                        ty: it,
                        untrusted: None,
                    };
                }
                // Left to right (§7.7): the indexed value, then the index.
                if self.ty(base).is_ptr() {
                    let pv = self.rvalue(base);
                    let i = self.rvalue(idx);
                    let pv = self.deref(pv, e.span);
                    return Place {
                        base: Base::Addr(pv),
                        path: vec![Step::PtrIndex(i)],
                        ty: it,
                        untrusted: self.foreign(base),
                    };
                }
                let checked = self.const_of(idx).is_none();
                let mut p = self.place(base);
                let i = self.rvalue(idx);
                if let Base::Ctx { index, .. } = &mut p.base {
                    *index = Some(i);
                } else {
                    p.path.push(Step::Index(i, it.clone(), checked));
                }
                p.ty = it;
                p
            }
            ExprKind::Unary(UnOp::Deref, x) => {
                let pv = self.rvalue(x);
                let pv = self.deref(pv, e.span);
                Place {
                    base: Base::Addr(pv),
                    path: vec![],
                    ty: it,
                    untrusted: self.foreign(x),
                }
            }
            _ => {
                // A value without an address (a call result, a literal): spill it.
                let v = self.rvalue(e);
                let a = self.slot(it.clone(), "");
                self.b().core_store(v, a);
                Place {
                    base: Base::Addr(a),
                    path: vec![],
                    ty: it,
                    untrusted: None,
                }
            }
        }
    }

    /// A pointer about to be dereferenced (`*p`, `p->f`, `p[i]`). Userspace checks it for null at
    /// run time and aborts (§6.8, §13.4); kernel code needs no check (E0609 and the verifier).
    fn deref(&mut self, p: Value, span: Span) -> Value {
        if self.kind.target() != Target::Host {
            return p;
        }
        let prev = self.loc;
        self.at(span);
        let ty = self.lw.m.value_type(p).clone();
        let checked = self.b().ks_nonnull(p, ty);
        self.loc = prev;
        checked
    }

    /// Kernel struct pointers are BTF-trusted (direct loads) in trampoline-based programs (§10.4).
    fn trusted_kernel_pointers(&self) -> bool {
        matches!(
            self.kind.program_kind(),
            Some(
                ProgKind::Probe
                    | ProgKind::Fexit
                    | ProgKind::TpBtf
                    | ProgKind::Lsm
                    | ProgKind::StructOps
                    | ProgKind::Tracepoint
            )
        )
    }

    fn apply_path(&mut self, mut addr: Value, path: &[Step]) -> Value {
        for s in path {
            addr = match s {
                Step::Field(f, t) => {
                    self.b()
                        .core_field_addr(addr, f.as_bytes().to_vec(), Type::ptr(t.clone()))
                }
                Step::KField(f, t) => {
                    self.b()
                        .ks_kfield_addr(addr, f.as_bytes().to_vec(), Type::ptr(t.clone()))
                }
                Step::Index(i, t, true) => self.b().ks_index_addr(addr, *i, Type::ptr(t.clone())),
                Step::Index(i, t, false) => {
                    let at = Type::ptr(t.clone());
                    self.b().core_elem_addr(addr, *i, at)
                }
                Step::PtrIndex(i) => {
                    let at = self.lw.m.value_type(addr).clone();
                    self.b().core_elem_addr(addr, *i, at)
                }
            };
        }
        addr
    }

    /// The address of a place (for `&e`, and for in-memory reads and writes).
    fn place_address(&mut self, p: &Place) -> Value {
        match &p.base {
            Base::Addr(a) | Base::Maybe(a) => self.apply_path(*a, &p.path),
            Base::MapElem { .. } => {
                let e = self.entry_of_base(&p.base);
                self.apply_path(e, &p.path)
            }
            Base::Ctx { .. } => {
                let v = self.load_place(p);
                let a = self.slot(p.ty.clone(), "");
                self.b().core_store(v, a);
                a
            }
        }
    }

    /// The entry address (null when absent) a map element or entry binding denotes.
    fn entry_of_base(&mut self, base: &Base) -> Value {
        match base {
            Base::MapElem { map, key } => {
                let info = self.lw.ck.maps[*map].clone();
                let vt = self.ir(&info.value);
                self.b().ks_map_lookup(*key, &info.name, Type::ptr(vt))
            }
            Base::Maybe(e) | Base::Addr(e) => *e,
            Base::Ctx { ctx, .. } => *ctx,
        }
    }

    fn read(&mut self, addr: Value, ty: &Type, untrusted: Option<Foreign>) -> Value {
        match untrusted {
            Some(memory) => {
                let user = (memory == Foreign::User).then_some(true);
                self.b().ks_probe_read(addr, user, ty.clone())
            }
            None => self.b().core_load(addr, ty.clone()),
        }
    }

    /// Where sema found that the pointer `e` must be read through a helper (§9.2).
    fn foreign(&self, e: &Expr) -> Option<Foreign> {
        self.lw.ck.foreign_reads.get(&e.id).copied()
    }

    fn load_place(&mut self, p: &Place) -> Value {
        match &p.base {
            Base::Addr(a) => {
                let addr = self.apply_path(*a, &p.path);
                self.read(addr, &p.ty, p.untrusted)
            }
            Base::Ctx { ctx, field, index } => {
                let idx: Vec<Value> = index.iter().copied().collect();
                self.b()
                    .ks_ctx_load(*ctx, &idx, field.as_bytes().to_vec(), p.ty.clone())
            }
            Base::MapElem { .. } | Base::Maybe(_) => {
                let entry = self.entry_of_base(&p.base);
                if p.path.is_empty() {
                    return self.b().ks_load_or_zero(entry, p.ty.clone());
                }
                // Reading a part of an entry: zero when the entry is absent.
                let present = self.non_null(entry);
                let op = self.b().ks_if(present, None, std::slice::from_ref(&p.ty));
                let (tb, eb) = (self.entry_of(op, 0), self.entry_of(op, 1));
                let path = p.path.clone();
                let ty = p.ty.clone();
                self.in_block(tb, |fl| {
                    let a = fl.apply_path(entry, &path);
                    let v = fl.b().core_load(a, ty.clone());
                    fl.b().ks_yield(&[v]);
                });
                self.in_block(eb, |fl| {
                    let z = fl.b().core_zero(ty.clone());
                    fl.b().ks_yield(&[z]);
                });
                self.lw.m.op(op).results[0]
            }
        }
    }

    fn store_place(&mut self, p: &Place, v: Value) {
        match &p.base {
            Base::Addr(a) => {
                let addr = self.apply_path(*a, &p.path);
                self.b().core_store(v, addr);
            }
            Base::Ctx { ctx, field, index } => {
                let idx: Vec<Value> = index.iter().copied().collect();
                self.b()
                    .ks_ctx_store(v, *ctx, &idx, field.as_bytes().to_vec());
            }
            Base::MapElem { map, key } if p.path.is_empty() => {
                let name = self.lw.ck.maps[*map].name.clone();
                self.b().ks_map_update(*key, v, &name, 0);
            }
            Base::MapElem { .. } | Base::Maybe(_) => {
                // Writing a part of an entry changes it in place, and nothing when it is absent.
                let entry = self.entry_of_base(&p.base);
                let present = self.non_null(entry);
                let op = self.b().ks_if(present, None, &[]);
                let tb = self.entry_of(op, 0);
                let path = p.path.clone();
                self.in_block(tb, |fl| {
                    let a = fl.apply_path(entry, &path);
                    fl.b().core_store(v, a);
                });
            }
        }
    }

    pub fn assign(&mut self, target: &Expr, op: AssignOp, value: &Expr) {
        let tt = self.ty(target);
        let tit = self.ir(&tt);
        // The right-hand side is evaluated before the target's keys and indices (§7.7).
        let v = match op.binop() {
            Some(b) if matches!(b, BinOp::Shl | BinOp::Shr) || tt.is_ptr() => self.rvalue(value),
            _ => self.coerced(value, &tt),
        };
        self.at(target.span);
        let place = self.place(target);
        let Some(bop) = op.binop() else {
            self.store_place(&place, v);
            return;
        };
        // `m[k] += n` on an integer value: one atomic read-modify-write (§11.2).
        if let (Base::MapElem { map, key }, true, BinOp::Add) =
            (&place.base, place.path.is_empty(), bop)
        {
            let name = self.lw.ck.maps[*map].name.clone();
            self.b().ks_map_add(*key, v, &name);
            return;
        }
        // `g += n` on an integer global in kernel code is one atomic add (§12.1).
        if let (Base::Addr(a), BinOp::Add, true) = (
            &place.base,
            bop,
            self.kind.target() == crate::sema::env::Target::Bpf && tit.is_int(),
        ) {
            if self.is_global_address(*a) {
                let addr = self.apply_path(*a, &place.path);
                let delta = self.convert(v, &tit);
                self.b().core_atomic_add(addr, delta);
                return;
            }
        }
        let old = self.load_place(&place);
        let new = self.arith(bop, old, v, &tit);
        self.store_place(&place, new);
    }

    /// True for the address of a global variable's storage (`ks.global_addr`).
    fn is_global_address(&self, v: Value) -> bool {
        matches!(self.lw.m.value(v).def, crate::ir::ValueDef::Result(op, _) if self.lw.m.op(op).opcode == crate::ir::Opcode::KsGlobalAddr)
    }

    // ---- operators ------------------------------------------------------------------------

    fn arith(&mut self, op: BinOp, l: Value, r: Value, t: &Type) -> Value {
        if t.is_ptr() {
            let off = self.convert(r, &Type::i64());
            let off = if op == BinOp::Sub {
                self.b().core_neg(off)
            } else {
                off
            };
            return self.b().core_ptr_add(l, off);
        }
        let l = self.convert(l, t);
        let r = self.convert(r, t);
        match op {
            BinOp::Add => self.b().core_add(l, r),
            BinOp::Sub => self.b().core_sub(l, r),
            BinOp::Mul => self.b().core_mul(l, r),
            BinOp::Div => self.b().core_div(l, r),
            BinOp::Rem => self.b().core_rem(l, r),
            BinOp::BitAnd | BinOp::And => self.b().core_and(l, r),
            BinOp::BitOr | BinOp::Or => self.b().core_or(l, r),
            BinOp::BitXor => self.b().core_xor(l, r),
            BinOp::Shl => self.b().core_shl(l, r),
            BinOp::Shr => self.b().core_shr(l, r),
            _ => l,
        }
    }

    /// The type both operands of a comparison are converted to (§6.3).
    fn comparison_type(&mut self, l: &Ty, r: &Ty) -> Type {
        let il = self.int_like(l);
        let ir_ = self.int_like(r);
        if let (Some(a), Some(b)) = (il, ir_) {
            return Type::Int(unify_ints(a, b).unwrap_or(if a.bits() >= b.bits() { a } else { b }));
        }
        match (l, r) {
            (Ty::Null, t) | (t, Ty::Null) => self.ir(t),
            (Ty::Str(a), Ty::Str(b)) => Type::Str(*a.max(b)),
            _ => self.ir(l),
        }
    }

    fn int_like(&self, t: &Ty) -> Option<IntTy> {
        match t {
            Ty::Int(i) => Some(*i),
            Ty::Char => Some(IntTy::U8),
            Ty::Enum(id) => Some(self.lw.ck.enums[id.0 as usize].repr),
            _ => None,
        }
    }

    fn binary(&mut self, e: &Expr, op: BinOp, l: &Expr, r: &Expr, it: &Type) -> Value {
        match op {
            BinOp::And | BinOp::Or => {
                // Short-circuit: the right operand runs only when it decides the result.
                let lv = self.rvalue(l);
                let res = self.b().ks_if(lv, None, &[Type::Bool]);
                let (tb, eb) = (self.entry_of(res, 0), self.entry_of(res, 1));
                let (eval_in, const_in, c) = if op == BinOp::And {
                    (tb, eb, 0)
                } else {
                    (eb, tb, 1)
                };
                self.in_block(eval_in, |fl| {
                    let rv = fl.rvalue(r);
                    fl.b().ks_yield(&[rv]);
                });
                self.in_block(const_in, |fl| {
                    let k = fl.b().core_const(c, Type::Bool);
                    fl.b().ks_yield(&[k]);
                });
                self.at(e.span);
                self.lw.m.op(res).results[0]
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let pred = match op {
                    BinOp::Eq => CmpPred::Eq,
                    BinOp::Ne => CmpPred::Ne,
                    BinOp::Lt => CmpPred::Lt,
                    BinOp::Le => CmpPred::Le,
                    BinOp::Gt => CmpPred::Gt,
                    _ => CmpPred::Ge,
                };
                // `m[k] == null`: a presence test (§11.3).
                for (a, b) in [(l, r), (r, l)] {
                    if matches!(b.kind, ExprKind::Null) && (self.is_presence(a) || self.pop_like(a))
                    {
                        let p = if self.pop_like(a) {
                            self.pop_call(a).unwrap().1
                        } else {
                            let p = self.entry_address(a);
                            self.non_null(p)
                        };
                        self.at(e.span);
                        return if op == BinOp::Eq {
                            self.b().core_not(p)
                        } else {
                            p
                        };
                    }
                }
                let (lt, rt) = (self.ty(l), self.ty(r));
                let ct = self.comparison_type(&lt, &rt);
                let lv = self.coerced_ir(l, &ct);
                let rv = self.coerced_ir(r, &ct);
                self.at(e.span);
                let eq = match ct {
                    Type::Str(_) => Some(self.b().ks_str_eq(lv, rv)),
                    Type::Struct(_) | Type::Array(..) => Some(self.b().ks_agg_eq(lv, rv)),
                    _ => None,
                };
                match eq {
                    Some(eq) if op == BinOp::Ne => self.b().core_not(eq),
                    Some(eq) => eq,
                    None => self.b().core_cmp(lv, rv, pred),
                }
            }
            _ => {
                let (lt, rt) = (self.ty(l), self.ty(r));
                if let Type::Str(_) = it {
                    let lv = self.rvalue(l);
                    let rv = self.rvalue(r);
                    self.at(e.span);
                    return self.b().ks_str_concat(lv, rv, it.clone());
                }
                if lt.is_ptr() && rt.is_ptr() {
                    let lv = self.rvalue(l);
                    let rv = self.rvalue(r);
                    self.at(e.span);
                    return self.b().core_ptr_diff(lv, rv);
                }
                let lv = if lt.is_ptr() {
                    self.rvalue(l)
                } else {
                    self.coerced_ir(l, it)
                };
                let rv = if lt.is_ptr() || matches!(op, BinOp::Shl | BinOp::Shr) {
                    self.rvalue(r)
                } else {
                    self.coerced_ir(r, it)
                };
                self.at(e.span);
                self.arith(op, lv, rv, it)
            }
        }
    }

    fn pop_like(&self, e: &Expr) -> bool {
        matches!(&e.kind, ExprKind::Call { callee, args } if args.is_empty() && matches!(&callee.kind, ExprKind::Field(recv, m) if matches!(m.name.as_str(), "pop" | "peek") && self.map_of(recv).is_some()))
    }

    /// Like `coerced`, to an IR type (comparison operands).
    fn coerced_ir(&mut self, e: &Expr, t: &Type) -> Value {
        if let (Some(c), true) = (self.const_of(e), t.is_int() || *t == Type::Bool) {
            self.at(e.span);
            return self.materialize(&c, t);
        }
        if matches!(e.kind, ExprKind::Null) {
            return self.b().core_const(0, t.clone());
        }
        let v = self.rvalue(e);
        self.convert(v, t)
    }

    // ---- aggregates -----------------------------------------------------------------------

    fn array_literal(&mut self, items: &[Expr], it: &Type) -> Value {
        let Type::Array(elem, n) = it.clone() else {
            return self.b().core_zero(it.clone());
        };
        let temp = self.slot(it.clone(), "");
        let z = self.b().core_zero(it.clone());
        self.b().core_store(z, temp);
        let elem = (*elem).clone();
        let ety = self.elem_sema_ty(items);
        if items.len() == 1 {
            // `[v]`: every element is v.
            let v = match &ety {
                Some(t) => {
                    let v = self.coerced(&items[0], t);
                    self.convert(v, &elem)
                }
                None => self.coerced_ir(&items[0], &elem),
            };
            self.for_each_index(n, |fl, i| {
                let a = fl.b().core_elem_addr(temp, i, Type::ptr(elem.clone()));
                fl.b().core_store(v, a);
            });
        } else {
            for (k, item) in items.iter().enumerate().take(n as usize) {
                let v = self.coerced_ir(item, &elem);
                let i = self.b().core_const(k as i128, Type::u32());
                let a = self.b().core_elem_addr(temp, i, Type::ptr(elem.clone()));
                self.b().core_store(v, a);
            }
        }
        self.b().core_load(temp, it.clone())
    }

    fn elem_sema_ty(&self, items: &[Expr]) -> Option<Ty> {
        items.first().map(|i| self.ty(i)).filter(|t| !t.is_error())
    }

    fn struct_literal(&mut self, fields: &[(Ident, Expr)], t: &Ty, it: &Type) -> Value {
        let Ty::Struct(id) = t else {
            return self.b().core_zero(it.clone());
        };
        let info = self.lw.ck.structs[id.0 as usize].clone();
        let temp = self.slot(it.clone(), "");
        let z = self.b().core_zero(it.clone());
        self.b().core_store(z, temp);
        // perf_options fields left out take their documented defaults (§15.4).
        if info.origin == StructOrigin::Builtin {
            for (name, v) in [("pid", -1i128), ("period", 1_000_000), ("wakeup", 1)] {
                if !fields.iter().any(|(f, _)| f.name == name) {
                    if let Some(fi) = info.field(name) {
                        let ft = self.ir(&fi.ty.clone());
                        let c = self.b().core_const(v, ft.clone());
                        let a =
                            self.b()
                                .core_field_addr(temp, name.as_bytes().to_vec(), Type::ptr(ft));
                        self.b().core_store(c, a);
                    }
                }
            }
        }
        for (name, value) in fields {
            let Some(fi) = info.field(&name.name) else {
                continue;
            };
            let fty = fi.ty.clone();
            let v = self.coerced(value, &fty);
            let ft = self.ir(&fty);
            self.at(name.span);
            let a = self
                .b()
                .core_field_addr(temp, name.name.as_bytes().to_vec(), Type::ptr(ft));
            self.b().core_store(v, a);
        }
        self.b().core_load(temp, it.clone())
    }

    // ---- calls ----------------------------------------------------------------------------

    pub fn void_expr(&mut self, e: &Expr) {
        self.at(e.span);
        match &e.kind {
            ExprKind::Call { callee, args } if self.python_callee(callee).is_some() => {
                // A Python function called for its effect: its result is ignored (§15.8).
                let (module, func) = self.python_callee(callee).unwrap();
                self.python_call(e, &module, &func, args, &[]);
            }
            ExprKind::Call { callee, args } => {
                self.call(e, callee, args);
            }
            ExprKind::Match { .. } => {
                self.match_expr(e, Some(&Ty::Void), false);
            }
            _ => {
                self.rvalue(e);
            }
        }
    }

    fn args_for(&mut self, args: &[Expr], params: &[Ty]) -> Vec<Value> {
        args.iter()
            .zip(params)
            .map(|(a, p)| self.coerced(a, p))
            .collect()
    }

    fn result_types(&mut self, e: &Expr) -> Vec<Type> {
        let t = self.ty(e);
        if t == Ty::Void || t.is_error() {
            vec![]
        } else {
            vec![self.ir(&t)]
        }
    }

    /// Lowers a call; `None` for calls without a value.
    fn call(&mut self, e: &Expr, callee: &Expr, args: &[Expr]) -> Option<Value> {
        let results = self.result_types(e);
        match &callee.kind {
            ExprKind::Ident(n) if self.lookup(n).is_none() => {
                if let Some(&id) = self.lw.ck.sibling_calls.get(&e.id) {
                    // A sibling struct_ops method: its subprogram twin (§16.1).
                    let params = self.lw.ck.funcs[id.0 as usize].params.clone();
                    let vals = self.args_for(args, &params);
                    let name = self.lw.method_subprogram_name(id);
                    self.at(e.span);
                    let op = self.b().core_call(&vals, &name, &results);
                    return self.lw.m.op(op).results.first().copied();
                }
                if let Some(sym) = self.lw.ck.symbols.get(n).cloned() {
                    match sym {
                        Symbol::Func(id) => {
                            let f = &self.lw.ck.funcs[id.0 as usize];
                            let params = f.params.clone();
                            let vals = self.args_for(args, &params);
                            let name = self.lw.func_name(id);
                            self.at(e.span);
                            let op = self.b().core_call(&vals, &name, &results);
                            return self.lw.m.op(op).results.first().copied();
                        }
                        Symbol::Extern(i) => {
                            let params = self.lw.ck.externs[i].params.clone();
                            let vals = self.args_for(args, &params);
                            self.at(e.span);
                            let op = self.b().ks_call_extern(&vals, n, &results);
                            return self.lw.m.op(op).results.first().copied();
                        }
                        _ => {}
                    }
                }
                self.builtin(e, n, args, &results)
            }
            ExprKind::Field(recv, m) => {
                if let Some(mi) = self.map_of(recv) {
                    return self.map_method(e, mi, &m.name, args, &results);
                }
                if let Some((module, func)) = self.python_callee(callee) {
                    return self.python_call(e, &module, &func, args, &results);
                }
                if let ExprKind::Ident(modname) = &recv.kind {
                    if let Some((_, funcs)) =
                        self.lw.ck.modules.iter().find(|(mn, _)| mn == modname)
                    {
                        if let Some(&id) = funcs.get(&m.name) {
                            let params = self.lw.ck.funcs[id.0 as usize].params.clone();
                            let vals = self.args_for(args, &params);
                            let name = self.lw.func_name(id);
                            self.at(e.span);
                            let op = self.b().core_call(&vals, &name, &results);
                            return self.lw.m.op(op).results.first().copied();
                        }
                    }
                }
                self.indirect_call(e, callee, args, &results)
            }
            _ => self.indirect_call(e, callee, args, &results),
        }
    }

    /// `(m, f)` when `callee` is `m.f` with `m` a module imported from a `.py` file.
    pub fn python_callee(&self, callee: &Expr) -> Option<(String, String)> {
        let ExprKind::Field(recv, f) = &callee.kind else {
            return None;
        };
        match &recv.kind {
            ExprKind::Ident(m) if self.lookup(m).is_none() && self.lw.python.contains_key(m) => {
                Some((m.clone(), f.name.clone()))
            }
            _ => None,
        }
    }

    /// `m.f(args)` on a Python module (§15.8): each argument is stored in a slot, `ks.py_call`
    /// converts them and the result by `sig`, and a non-zero status is rethrown as a throw.
    fn python_call(
        &mut self,
        e: &Expr,
        module: &str,
        func: &str,
        args: &[Expr],
        results: &[Type],
    ) -> Option<Value> {
        let src = self.lw.python[module].clone();
        let mut ptrs = Vec::new();
        let mut sig = Vec::new();
        for a in args {
            let t = self.ty(a);
            let it = self.ir(&t);
            let v = self.coerced(a, &t);
            let slot = self.slot(it, "");
            self.b().core_store(v, slot);
            ptrs.push(slot);
            sig.push(self.python_sig(&t));
        }
        let mut sig = sig.join(" ");
        sig.push('>');
        let result = results.first().map(|rt| {
            let t = self.ty(e);
            sig.push_str(&self.python_sig(&t));
            let slot = self.slot(rt.clone(), "");
            ptrs.push(slot);
            (slot, rt.clone())
        });
        if result.is_none() {
            sig.push('v');
        }
        self.at(e.span);
        let status = self.b().ks_py_call(
            &ptrs,
            module.as_bytes().to_vec(),
            src.path.into_bytes(),
            src.source.into_bytes(),
            func.as_bytes().to_vec(),
            sig.into_bytes(),
        );
        let zero = self.b().core_const(0, Type::i64());
        let raised = self.b().core_cmp(status, zero, CmpPred::Ne);
        let op = self.b().ks_if(raised, None, &[]);
        let tb = self.entry_of(op, 0);
        self.in_block(tb, |fl| {
            fl.b().ks_throw(status);
        });
        result.map(|(slot, rt)| self.b().core_load(slot, rt))
    }

    /// The type descriptor of `t` in a `ks.py_call` signature: `iN`/`uN` (N bytes), `b`, `c`,
    /// `sN` (a `str(N)`), `aN` (a `char[N]`), `{SIZE,FIELD@OFFSET:TYPE,…}`.
    fn python_sig(&self, t: &Ty) -> String {
        let layout = crate::sema::layout::Layout {
            structs: &self.lw.ck.structs,
            enums: &self.lw.ck.enums,
        };
        match t {
            Ty::Int(i) => format!("{}{}", if i.signed() { 'i' } else { 'u' }, i.bits() / 8),
            Ty::Enum(id) => {
                let r = self.lw.ck.enums[id.0 as usize].repr;
                format!("{}{}", if r.signed() { 'i' } else { 'u' }, r.bits() / 8)
            }
            Ty::Bool => "b".into(),
            Ty::Char => "c".into(),
            Ty::Str(n) => format!("s{n}"),
            Ty::Array(e, n) if matches!(**e, Ty::Char) => format!("a{n}"),
            Ty::Struct(id) => {
                let s = &self.lw.ck.structs[id.0 as usize];
                let (offsets, size, _) = layout.c_layout(s);
                let mut out = format!("{{{size}");
                for (f, off) in s.fields.iter().zip(offsets) {
                    out.push_str(&format!(",{}@{off}:{}", f.name, self.python_sig(&f.ty)));
                }
                out.push('}');
                out
            }
            // Sema allows nothing else (E0309).
            _ => "v".into(),
        }
    }

    fn indirect_call(
        &mut self,
        e: &Expr,
        callee: &Expr,
        args: &[Expr],
        results: &[Type],
    ) -> Option<Value> {
        let f = self.rvalue(callee);
        let params = match self.ty(callee) {
            Ty::Fn(sig) => sig.params.clone(),
            _ => args.iter().map(|a| self.ty(a)).collect(),
        };
        let vals = self.args_for(args, &params);
        self.at(e.span);
        let op = self.b().core_call_indirect(f, &vals, results);
        self.lw.m.op(op).results.first().copied()
    }

    fn builtin(&mut self, e: &Expr, name: &str, args: &[Expr], results: &[Type]) -> Option<Value> {
        let rt = results.first().cloned().unwrap_or(Type::Void);
        let v = match name {
            "print" => {
                let fmt = args
                    .first()
                    .and_then(|a| self.const_of(a))
                    .and_then(|c| match c {
                        ConstValue::Str(s) => Some(s),
                        _ => None,
                    });
                let vals: Vec<Value> = args.iter().skip(1).map(|a| self.rvalue(a)).collect();
                self.at(e.span);
                self.b().ks_print(&vals, fmt.unwrap_or_default())
            }
            "ntohs" | "htons" | "ntohl" | "htonl" | "ntohll" | "htonll" => {
                let v = self.coerced_ir(&args[0], &rt);
                self.at(e.span);
                self.b().core_bswap(v)
            }
            "load" => {
                let prog = self.callee_name(&args[0]);
                self.b().ks_load_prog(&prog, rt)
            }
            "attach" => {
                let h = self.rvalue(&args[0]);
                let flags = self.coerced_ir(&args[2], &Type::u32());
                if matches!(self.ty(&args[1]), Ty::Struct(_)) {
                    let o = self.place(&args[1]);
                    let opts = self.place_address(&o);
                    self.at(e.span);
                    self.b().ks_attach_perf(h, opts, flags, rt)
                } else {
                    let t = self.rvalue(&args[1]);
                    self.at(e.span);
                    self.b().ks_attach(h, t, flags)
                }
            }
            "detach" => {
                let h = self.rvalue(&args[0]);
                self.b().ks_detach(h);
                return None;
            }
            "read" => {
                let h = self.rvalue(&args[0]);
                self.b().ks_perf_read(h)
            }
            "register" => {
                let i = self.callee_name(&args[0]);
                self.b().ks_register(&i)
            }
            "dispatch" => {
                let maps = args
                    .iter()
                    .map(|a| Attr::Sym(self.callee_name(a)))
                    .collect();
                self.b().ks_dispatch(maps)
            }
            "daemon" => {
                self.b().ks_daemon();
                return None;
            }
            "exec" => {
                let script = self.rvalue(&args[0]);
                self.at(e.span);
                self.b().ks_exec(script, None::<Vec<u8>>);
                // `ksrt_exec` never returns; the abort ends the block (sema made the call diverge).
                self.b().ks_abort(b"exec() returned".to_vec());
                return None;
            }
            "test" => return Some(self.test_call(e, args)),
            "test_len" => self.b().ks_test_len(),
            "assert" => {
                let c = self.rvalue(&args[0]);
                let msg = args
                    .get(1)
                    .and_then(|a| self.const_of(a))
                    .and_then(|c| match c {
                        ConstValue::Str(s) => Some(s),
                        _ => None,
                    });
                self.at(e.span);
                self.b().ks_assert(c, msg);
                return None;
            }
            _ => return self.helper_call(e, name, args, results),
        };
        Some(v).filter(|_| !results.is_empty() || name == "print" || name == "test_len")
    }

    /// A BPF helper called by its standard name: declared as an extern on first use.
    fn helper_call(
        &mut self,
        e: &Expr,
        name: &str,
        args: &[Expr],
        results: &[Type],
    ) -> Option<Value> {
        let h = crate::sema::builtins::helper(name)?;
        let params: Vec<Ty> = h.params.iter().map(|p| p.ty()).collect();
        // A variadic helper's missing slots are filled in by `lower_bpf` (they pass 0).
        let vals = self.args_for(args, &params);
        self.declare_extern(name, &params, results, Some(h.id));
        self.at(e.span);
        let op = self.b().ks_call_extern(&vals, name, results);
        self.lw.m.op(op).results.first().copied()
    }

    /// Declares `name` as a `ks.extern` on first use (helpers called by name, kfuncs of the unit).
    fn declare_extern(
        &mut self,
        name: &str,
        params: &[Ty],
        results: &[Type],
        helper_id: Option<u32>,
    ) {
        if self.lw.externs.contains_key(name) {
            return;
        }
        self.lw.externs.insert(name.to_string(), ());
        let ptys: Vec<Type> = params.iter().map(|p| self.ir(p)).collect();
        let ret = results.first().cloned().unwrap_or(Type::Void);
        let body = self.lw.m.body;
        let mut b = crate::ir::Builder::new(&mut self.lw.m, body);
        b.ks_extern(
            name,
            Type::Func(Rc::new(FnType { params: ptys, ret })),
            helper_id.map(|i| i as i128),
        );
    }

    /// The symbol a builtin's name argument denotes (a program, map or impl).
    fn callee_name(&self, a: &Expr) -> String {
        match &a.kind {
            ExprKind::Ident(n) => match self.lw.ck.symbols.get(n) {
                Some(Symbol::Func(id)) => self.lw.func_name(*id),
                _ => n.clone(),
            },
            _ => String::new(),
        }
    }

    fn test_call(&mut self, e: &Expr, args: &[Expr]) -> Value {
        let prog = self.callee_name(&args[0]);
        let it = self.ty(&args[1]);
        if let Ty::Struct(id) = &it {
            if self.lw.ck.structs[id.0 as usize].is_test_context() {
                return self.test_context_call(e, &prog, args);
            }
        }
        let ity = self.ir(&it);
        let capacity = crate::sema::layout::Layout {
            structs: &self.lw.ck.structs,
            enums: &self.lw.ck.enums,
        }
        .size_of(&it)
        .unwrap_or(0);
        let assignable = matches!(&args[1].kind, ExprKind::Ident(n) if matches!(self.lookup(n), Some(Slot::Var { .. })) || matches!(self.lw.ck.symbols.get(n), Some(Symbol::Global(_))));
        let p = self.place(&args[1]);
        let data = self.place_address(&p);
        let data = self.convert(data, &Type::ptr(Type::u8()));
        let len: Vec<Value> = args
            .get(2)
            .map(|l| self.coerced_ir(l, &Type::u32()))
            .into_iter()
            .collect();
        self.at(e.span);
        self.b().ks_test_run(
            data,
            &len,
            &prog,
            capacity as i128,
            assignable && matches!(ity, Type::Array(..) | Type::Str(_)),
            matches!(ity, Type::Str(_)),
        )
    }

    /// `test(prog, ctx)` with a test context: a zero-filled packet of `ctx.packet_size` bytes
    /// (a length past the largest test packet fails the test at run time, as any too-long `len`).
    fn test_context_call(&mut self, e: &Expr, prog: &str, args: &[Expr]) -> Value {
        let max = crate::sema::env::MAX_TEST_PACKET;
        let buffer_ty = Type::Array(Rc::new(Type::u8()), max as u32);
        let buffer = self.slot(buffer_ty.clone(), "");
        let zero = self.b().core_zero(buffer_ty);
        self.b().core_store(zero, buffer);
        let context = self.place(&args[1]);
        let context = self.place_address(&context);
        let field = &self.lw.ck.structs[match self.ty(&args[1]) {
            Ty::Struct(id) => id.0 as usize,
            _ => unreachable!("a test context is a struct"),
        }]
        .field("packet_size")
        .expect("a test context has packet_size")
        .ty
        .clone();
        let field_ty = self.ir(field);
        let size_addr = self.b().core_field_addr(
            context,
            b"packet_size".to_vec(),
            Type::ptr(field_ty.clone()),
        );
        let size = self.b().core_load(size_addr, field_ty);
        let len = self.convert(size, &Type::u32());
        let data = self.convert(buffer, &Type::ptr(Type::u8()));
        self.at(e.span);
        self.b()
            .ks_test_run(data, &[len], prog, max as i128, false, false)
    }

    fn map_method(
        &mut self,
        e: &Expr,
        mi: usize,
        method: &str,
        args: &[Expr],
        results: &[Type],
    ) -> Option<Value> {
        let info = self.lw.ck.maps[mi].clone();
        let rt = results.first().cloned().unwrap_or(Type::Void);
        let v = match method {
            "reserve" => {
                self.at(e.span);
                self.b().ks_rb_reserve(&info.name, rt)
            }
            "submit" | "discard" => {
                let p = self.rvalue(&args[0]);
                self.at(e.span);
                if method == "submit" {
                    self.b().ks_rb_submit(p, &info.name)
                } else {
                    self.b().ks_rb_discard(p, &info.name)
                }
            }
            "output" if args.len() == 2 => {
                let c = self.rvalue(&args[0]);
                let v = self.coerced(&args[1], &info.value);
                self.at(e.span);
                self.b().ks_perf_output(c, v, &info.name)
            }
            "output" => {
                let v = self.coerced(&args[0], &info.value);
                self.at(e.span);
                self.b().ks_rb_output(v, &info.name)
            }
            "push" => {
                let v = self.coerced(&args[0], &info.value);
                self.at(e.span);
                self.b().ks_map_push(v, &info.name)
            }
            "pop" | "peek" => return self.pop_call(e).map(|(v, _)| v),
            "contains" => {
                let v = self.coerced(&args[0], &info.value);
                self.at(e.span);
                self.b().ks_map_contains(v, &info.name)
            }
            "redirect" => {
                let k = self.coerced_ir(&args[0], &Type::u32());
                let f = self.coerced_ir(&args[1], &Type::u64());
                self.at(e.span);
                self.b().ks_redirect_map(k, f, &info.name, rt)
            }
            "on_event" => {
                let h = self.callee_name(&args[0]);
                self.b().ks_rb_on_event(&info.name, &h)
            }
            "poll" => {
                let t = self.coerced_ir(&args[0], &Type::u32());
                self.b().ks_rb_poll(t, &info.name)
            }
            _ => return None,
        };
        Some(v)
    }

    // ---- match ----------------------------------------------------------------------------

    /// Lowers a match (§7.6). In tail position, arms that call programs become tail calls.
    pub fn match_expr(&mut self, e: &Expr, expected: Option<&Ty>, tail: bool) -> Option<Value> {
        let ExprKind::Match { scrutinee, arms } = &e.kind else {
            return None;
        };
        let rty = expected.cloned().unwrap_or_else(|| self.ty(e));
        let results: Vec<Type> = if rty == Ty::Void || rty.is_error() {
            vec![]
        } else {
            vec![self.ir(&rty)]
        };
        let st = self.ty(scrutinee);
        let s = self.rvalue(scrutinee);
        let default = arms
            .iter()
            .position(|a| matches!(a.pattern, Pattern::Default(_)));
        let int_scrutinee = self.int_like(&st).is_some();
        let values: Vec<Option<ConstValue>> = arms
            .iter()
            .map(|a| self.pattern_value(&a.pattern))
            .collect();
        self.at(e.span);
        if int_scrutinee
            && values.iter().zip(arms).all(|(v, a)| {
                v.as_ref().and_then(|c| c.as_int()).is_some()
                    || matches!(a.pattern, Pattern::Default(_))
            })
        {
            let mut cases = Vec::new();
            let mut arm_of_case = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (i, v) in values.iter().enumerate() {
                if let Some(n) = v.as_ref().and_then(|c| c.as_int()) {
                    // The first arm of a value wins (a set: matches may have many thousand arms).
                    if default.is_none_or(|d| i < d) && seen.insert(n) {
                        cases.push(Attr::Int(n));
                        arm_of_case.push(i);
                    }
                }
            }
            let ncases = cases.len();
            let op = self.b().ks_switch(s, cases, &results, ncases + 1);
            for (k, &arm) in arm_of_case.iter().enumerate() {
                let bb = self.entry_of(op, k);
                self.in_block(bb, |fl| fl.arm(&arms[arm].body, &rty, tail));
            }
            let bb = self.entry_of(op, ncases);
            self.in_block(bb, |fl| match default {
                Some(d) => fl.arm(&arms[d].body, &rty, tail),
                None => fl.zero_yield(&rty),
            });
            return self.lw.m.op(op).results.first().copied();
        }
        // Strings and bools: a chain of comparisons, first match wins.
        self.match_chain(s, &st, arms, &values, 0, &rty, tail, &results)
    }

    #[allow(clippy::too_many_arguments)]
    fn match_chain(
        &mut self,
        s: Value,
        st: &Ty,
        arms: &[MatchArm],
        values: &[Option<ConstValue>],
        i: usize,
        rty: &Ty,
        tail: bool,
        results: &[Type],
    ) -> Option<Value> {
        let arm = arms.get(i)?;
        if matches!(arm.pattern, Pattern::Default(_)) {
            // Only reached at the top when the default is first; later defaults end the chain below.
            let t = self.true_value();
            let op = self.b().ks_if(t, None, results);
            let (tb, eb) = (self.entry_of(op, 0), self.entry_of(op, 1));
            self.in_block(tb, |fl| fl.arm(&arm.body, rty, tail));
            self.in_block(eb, |fl| fl.zero_yield(rty));
            return self.lw.m.op(op).results.first().copied();
        }
        let sit = self.lw.m.value_type(s).clone();
        let pv = values[i].clone().unwrap_or(ConstValue::Int(0));
        let pv = self.materialize(&pv, &sit);
        let c = match sit {
            Type::Str(_) => {
                let pv2 = self.convert(pv, &sit);
                self.b().ks_str_eq(s, pv2)
            }
            _ => self.b().core_cmp(s, pv, CmpPred::Eq),
        };
        let _ = st;
        let op = self.b().ks_if(c, None, results);
        let (tb, eb) = (self.entry_of(op, 0), self.entry_of(op, 1));
        self.in_block(tb, |fl| fl.arm(&arm.body, rty, tail));
        let next = arms.get(i + 1);
        self.in_block(eb, |fl| match next {
            None => fl.zero_yield(rty),
            Some(a) if matches!(a.pattern, Pattern::Default(_)) => fl.arm(&a.body, rty, tail),
            Some(_) => {
                let v = fl.match_chain(s, st, arms, values, i + 1, rty, tail, results);
                fl.b().ks_yield(&v.into_iter().collect::<Vec<_>>());
            }
        });
        self.lw.m.op(op).results.first().copied()
    }

    fn true_value(&mut self) -> Value {
        self.b().core_const(1, Type::Bool)
    }

    fn zero_yield(&mut self, rty: &Ty) {
        if *rty == Ty::Void || rty.is_error() {
            self.b().ks_yield(&[]);
        } else {
            let t = self.ir(rty);
            let z = self.b().core_zero(t);
            self.b().ks_yield(&[z]);
        }
    }

    fn pattern_value(&self, p: &Pattern) -> Option<ConstValue> {
        Some(match p {
            Pattern::Int(n, _) => ConstValue::Int(*n),
            Pattern::Str(s, _) => ConstValue::Str(s.clone()),
            Pattern::Char(c, _) => ConstValue::Char(*c),
            Pattern::Bool(b, _) => ConstValue::Bool(*b),
            Pattern::Name(id) => match self.lw.ck.symbols.get(&id.name) {
                Some(Symbol::EnumConst(_, v)) => ConstValue::Int(*v),
                Some(Symbol::Const(i)) => self.lw.ck.const_items[*i].value.clone(),
                _ => {
                    let (_, v) = self.lw.ck.btf.get()?.enumerator(&id.name)?;
                    ConstValue::Int(v as i128)
                }
            },
            Pattern::Default(_) => return None,
        })
    }

    /// One match arm's region: its value yielded, or a tail call / return / throw that leaves.
    fn arm(&mut self, body: &ArmBody, rty: &Ty, tail: bool) {
        match body {
            ArmBody::Expr(x) => self.arm_value(x, rty, tail),
            ArmBody::Block(b) => self.arm_block(&b.stmts, rty, tail),
        }
    }

    fn arm_value(&mut self, x: &Expr, rty: &Ty, tail: bool) {
        if tail {
            if let ExprKind::Call { callee, .. } = &x.kind {
                if let Some(target) = self.program_callee(callee) {
                    let Some(Slot::Var { addr }) = self.lookup(&self.params[0].clone()).cloned()
                    else {
                        return;
                    };
                    let pt = self.lw.m.value_type(addr).pointee().unwrap().clone();
                    self.at(x.span);
                    let c = self.b().core_load(addr, pt);
                    self.b().ks_tail_call(c, &target);
                    return;
                }
            }
        }
        if *rty == Ty::Void || rty.is_error() {
            self.expr_stmt(x);
            if !self.terminated() {
                self.b().ks_yield(&[]);
            }
        } else {
            let v = self.coerced(x, rty);
            self.b().ks_yield(&[v]);
        }
    }

    fn arm_block(&mut self, stmts: &[Stmt], rty: &Ty, tail: bool) {
        let Some((last, init)) = stmts.split_last() else {
            self.zero_yield(rty);
            return;
        };
        self.stmts(init);
        if self.terminated() {
            return;
        }
        match &last.kind {
            StmtKind::Expr(x) => self.arm_value(x, rty, tail),
            StmtKind::If {
                cond: IfCond::Expr(c),
                then,
                els: Some(els),
            } if *rty != Ty::Void => {
                let cv = self.condition(c);
                let t = self.ir(rty);
                let op = self.b().ks_if(cv, None, &[t]);
                let (tb, eb) = (self.entry_of(op, 0), self.entry_of(op, 1));
                self.in_block(tb, |fl| fl.arm_block(&then.stmts, rty, tail));
                self.in_block(eb, |fl| match &**els {
                    ElseBranch::Block(b) => fl.arm_block(&b.stmts, rty, tail),
                    ElseBranch::If(s) => fl.arm_block(std::slice::from_ref(&**s), rty, tail),
                });
                let r = self.lw.m.op(op).results[0];
                self.b().ks_yield(&[r]);
            }
            _ => {
                self.stmts(std::slice::from_ref(last));
                if !self.terminated() {
                    self.zero_yield(rty);
                }
            }
        }
    }
}
