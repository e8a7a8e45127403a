//! Expression typing (§6–§7): every expression gets a type in `expr_types`, constant expressions
//! get their folded value in `const_values`, and conversions to a target type go through `coerce`
//! (unification plus the E0310 range check for constants).

use super::body::FnCtx;
use super::consteval::{fold_binary, ConstValue, FoldError};
use super::env::*;
use super::types::*;
use super::Checker;
use crate::diagnostics::{Code, Span};
use crate::syntax::ast::*;
use std::rc::Rc;

impl<'a> Checker<'a, '_> {
    /// Types `e`; `expected` is the context type where one exists (array literals, `null`).
    pub(super) fn expr(&mut self, cx: &mut FnCtx, e: &Expr, expected: Option<&Ty>) -> Ty {
        let t = self.expr_inner(cx, e, expected);
        if let Some(slot) = self.expr_types.get_mut(e.id.0 as usize) {
            *slot = t.clone();
        }
        t
    }

    fn set_const(&mut self, e: &Expr, v: ConstValue) {
        self.const_values.insert(e.id, v);
    }

    pub(super) fn const_of(&self, e: &Expr) -> Option<&ConstValue> {
        self.const_values.get(&e.id)
    }

    fn expr_inner(&mut self, cx: &mut FnCtx, e: &Expr, expected: Option<&Ty>) -> Ty {
        match &e.kind {
            ExprKind::Int(n) => {
                self.set_const(e, ConstValue::Int(*n as i128));
                if *n <= u32::MAX as u64 {
                    U32
                } else {
                    U64
                }
            }
            ExprKind::Bool(b) => {
                self.set_const(e, ConstValue::Bool(*b));
                Ty::Bool
            }
            ExprKind::Char(c) => {
                self.set_const(e, ConstValue::Char(*c));
                Ty::Char
            }
            ExprKind::Str(s) => {
                self.set_const(e, ConstValue::Str(s.clone()));
                Ty::Str(s.len() as u32 + 1)
            }
            ExprKind::Null => Ty::Null,
            ExprKind::Ident(name) => {
                let (t, v) = self.ident_expr(cx, name, e.span, false);
                if let Some(v) = v {
                    self.set_const(e, v);
                }
                t
            }
            ExprKind::ArrayLit(items) => self.array_literal(cx, items, e.span, expected),
            ExprKind::Unary(op, inner) => self.unary(cx, e, *op, inner),
            ExprKind::Binary(op, l, r) => self.binary(cx, e, *op, l, r),
            ExprKind::Cast(inner, te) => self.cast(cx, e, inner, te),
            ExprKind::Call { callee, args } => {
                self.call_expected = expected.cloned();
                let t = self.call(cx, e, callee, args, false);
                self.call_expected = None;
                t
            }
            ExprKind::Index(base, idx) => self.index(cx, base, idx, e.span),
            ExprKind::Field(base, f) => self.field(cx, base, f),
            ExprKind::Arrow(base, f) => self.arrow(cx, base, f),
            ExprKind::StructLit { name, fields } => self.struct_literal(cx, name, fields, e.span),
            ExprKind::Match { scrutinee, arms } => self.match_expr(cx, e, scrutinee, arms),
            ExprKind::New { ty, arg } => {
                let t = self.resolve_type(ty);
                if cx.is_kernel() {
                    self.kernel_allocations.push(e.span);
                }
                if let Some(a) = arg {
                    let at = self.expr(cx, a, None);
                    if cx.target() != Target::Kmod {
                        self.error(
                            Code::E0705,
                            a.span,
                            "an allocation flag is allowed only in @kfunc and @private functions",
                        );
                    } else if !self.is_gfp_flag(&at) {
                        self.error(
                            Code::E0706,
                            a.span,
                            format!(
                                "expected a `gfp_flag` (GFP_KERNEL or GFP_ATOMIC), found `{}`",
                                self.show(&at)
                            ),
                        );
                    }
                }
                if cx.is_kernel() && !matches!(t, Ty::Struct(_) | Ty::Error) {
                    self.error(
                        Code::E0302,
                        ty.span,
                        "kernel `new` allocates file-level structs only",
                    );
                }
                Ty::ptr(t)
            }
            ExprKind::SizeofType(te) => {
                // `sizeof(x)` parses as a type first; a variable of that name wins.
                if let TypeExprKind::Named(n) = &te.kind {
                    if cx.lookup(&n.name).is_some()
                        || matches!(
                            self.symbols.get(&n.name),
                            Some(Symbol::Global(_)) | Some(Symbol::Const(_))
                        )
                    {
                        let (t, _) = self.ident_expr(cx, &n.name, n.span, false);
                        return self.sizeof_result(e, &t, te.span);
                    }
                }
                let t = self.resolve_type(te);
                self.sizeof_result(e, &t, te.span)
            }
            ExprKind::SizeofExpr(inner) => {
                let t = self.expr(cx, inner, None);
                self.sizeof_result(e, &t, inner.span)
            }
        }
    }

    fn is_gfp_flag(&self, t: &Ty) -> bool {
        matches!(t, Ty::Enum(id) if self.enums[id.0 as usize].name == "gfp_flag") || t.is_error()
    }

    fn sizeof_result(&mut self, e: &Expr, t: &Ty, span: Span) -> Ty {
        match self.size_of(t) {
            Some(n) if !t.is_error() => self.set_const(e, ConstValue::Int(n as i128)),
            _ if t.is_error() => {}
            _ => self.error(
                Code::E0313,
                span,
                format!("`sizeof` of `{}` has no size", self.show(t)),
            ),
        }
        U64
    }

    // ------------------------------------------------------------------------------------------
    // Names

    /// The type of a name and, for constants, its value. `as_callee`: the name is being called
    /// (functions are not function values then).
    pub(super) fn ident_expr(
        &mut self,
        cx: &mut FnCtx,
        name: &str,
        span: Span,
        as_callee: bool,
    ) -> (Ty, Option<ConstValue>) {
        if let Some(l) = cx.lookup(name) {
            if l.released && cx.is_kernel() {
                if l.owned_object {
                    self.error(Code::E0612, span, format!("`{name}` was already deleted"));
                } else {
                    self.error(
                        Code::E0608,
                        span,
                        format!("`{name}` was already submitted or discarded"),
                    );
                }
            }
            let found = (l.ty.clone(), l.value.clone());
            self.check_binding_valid(cx, name, span);
            return found;
        }
        let mut value = None;
        let t = match self.symbols.get(name).cloned() {
            Some(Symbol::Global(i)) => {
                let g = &self.globals[i];
                if g.local && cx.target() == Target::Host {
                    self.error(
                        Code::E0508,
                        span,
                        format!("`{name}` is a `local var`, visible to kernel code only"),
                    );
                }
                if cx.target() == Target::Kmod {
                    self.error(
                        Code::E0501,
                        span,
                        format!("module code cannot use the global `{name}`"),
                    );
                }
                self.globals[i].ty.clone()
            }
            Some(Symbol::Const(_)) => match self.top_level_const(name) {
                Some((t, v)) => {
                    value = Some(v);
                    t
                }
                None => Ty::Error,
            },
            Some(Symbol::EnumConst(id, v)) => {
                value = Some(ConstValue::Int(v));
                Ty::Enum(id)
            }
            Some(Symbol::Map(_)) => {
                self.error(
                    Code::E0604,
                    span,
                    format!("the map `{name}` cannot be used as a value"),
                );
                Ty::Error
            }
            Some(Symbol::Func(id)) => {
                let f = &self.funcs[id.0 as usize];
                let sig = Ty::Fn(Rc::new(FnSig {
                    params: f.params.clone(),
                    ret: f.ret.clone(),
                }));
                if !as_callee && cx.is_kernel() {
                    self.error(
                        Code::E0501,
                        span,
                        "function values do not exist in kernel code (eBPF has no indirect calls)",
                    );
                }
                sig
            }
            Some(Symbol::Extern(i)) => {
                let x = &self.externs[i];
                Ty::Fn(Rc::new(FnSig {
                    params: x.params.clone(),
                    ret: x.ret.clone(),
                }))
            }
            Some(Symbol::Config(_)) | Some(Symbol::Impl(_)) | Some(Symbol::Module(_)) => {
                self.error(Code::E0302, span, format!("`{name}` is not a value"));
                Ty::Error
            }
            Some(Symbol::Struct(_)) | Some(Symbol::Enum(_)) | Some(Symbol::Alias(_)) => {
                self.error(
                    Code::E0111,
                    span,
                    format!("`{name}` is a type, not a value"),
                );
                Ty::Error
            }
            None => return self.builtin_constant(name, span),
        };
        (t, value)
    }

    /// Prelude and kernel enumerators (`XDP_PASS`, `TC_ACT_OK`, …).
    fn builtin_constant(&mut self, name: &str, span: Span) -> (Ty, Option<ConstValue>) {
        let found = self.enums.iter().enumerate().find_map(|(i, en)| {
            en.variants
                .iter()
                .find(|v| v.0 == name)
                .map(|v| (EnumId(i as u32), v.1))
        });
        if let Some((id, v)) = found {
            return (Ty::Enum(id), Some(ConstValue::Int(v)));
        }
        if let Some((ename, v)) = self.btf.get().and_then(|b| b.enumerator(name)) {
            let value = Some(ConstValue::Int(v as i128));
            if !ename.is_empty() {
                if let Some(t) = self.kernel_type(&ename) {
                    return (t, value);
                }
            }
            return (I64, value);
        }
        self.error(Code::E0111, span, format!("`{name}` is not declared"));
        (Ty::Error, None)
    }

    // ------------------------------------------------------------------------------------------
    // Operators

    fn unary(&mut self, cx: &mut FnCtx, e: &Expr, op: UnOp, inner: &Expr) -> Ty {
        let t = self.expr(cx, inner, None);
        let cv = self.const_of(inner).cloned();
        match op {
            UnOp::Not => {
                if !matches!(t, Ty::Bool | Ty::Error) {
                    self.error(
                        Code::E0303,
                        inner.span,
                        format!("`!` needs a bool, found `{}`", self.show(&t)),
                    );
                    return Ty::Error;
                }
                if let Some(ConstValue::Bool(b)) = cv {
                    self.set_const(e, ConstValue::Bool(!b));
                }
                Ty::Bool
            }
            UnOp::Neg => {
                let it = match &t {
                    Ty::Int(i) => *i,
                    Ty::Enum(id) => self.enums[id.0 as usize].repr,
                    Ty::Error => return Ty::Error,
                    _ => {
                        self.error(
                            Code::E0302,
                            e.span,
                            format!("unary `-` needs an integer, found `{}`", self.show(&t)),
                        );
                        return Ty::Error;
                    }
                };
                let rt = match it {
                    IntTy::U8 => IntTy::I16,
                    IntTy::U16 => IntTy::I32,
                    IntTy::U32 | IntTy::U64 => IntTy::I64,
                    s => s,
                };
                if let Some(v) = cv.and_then(|v| v.as_int()) {
                    self.set_const(e, ConstValue::Int(rt.wrap(-v)));
                }
                Ty::Int(rt)
            }
            UnOp::BitNot => {
                let Some(it) = self.int_like(&t) else {
                    if !t.is_error() {
                        self.error(
                            Code::E0302,
                            e.span,
                            format!("`~` needs an integer, found `{}`", self.show(&t)),
                        );
                    }
                    return Ty::Error;
                };
                if let Some(v) = cv.and_then(|v| v.as_int()) {
                    self.set_const(e, ConstValue::Int(it.wrap(!v)));
                }
                Ty::Int(it)
            }
            UnOp::Deref => match &t {
                Ty::Ptr(p) => {
                    self.check_deref(cx, inner, e.span);
                    if matches!(**p, Ty::Void) {
                        self.error(Code::E0304, e.span, "cannot dereference a `*void`");
                        return Ty::Error;
                    }
                    (**p).clone()
                }
                Ty::Error => Ty::Error,
                _ => {
                    self.error(
                        Code::E0304,
                        e.span,
                        format!("cannot dereference `{}`", self.show(&t)),
                    );
                    Ty::Error
                }
            },
            UnOp::AddrOf => {
                // The operand's own error was reported (e.g. a map used as a value).
                if t.is_error() {
                    return Ty::Error;
                }
                if !self.is_lvalue(cx, inner) {
                    self.error(
                        Code::E0311,
                        inner.span,
                        "`&` needs a variable, field or element",
                    );
                    return Ty::Error;
                }
                Ty::ptr(t)
            }
        }
    }

    pub(super) fn int_like(&self, t: &Ty) -> Option<IntTy> {
        match t {
            Ty::Int(i) => Some(*i),
            Ty::Enum(id) => Some(self.enums[id.0 as usize].repr),
            _ => None,
        }
    }

    /// Whether an expression denotes storage (§8.2).
    pub(super) fn is_lvalue(&self, cx: &FnCtx, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Ident(n) => {
                cx.lookup(n).is_some() || matches!(self.symbols.get(n), Some(Symbol::Global(_)))
            }
            ExprKind::Index(..) | ExprKind::Field(..) | ExprKind::Arrow(..) => true,
            ExprKind::Unary(UnOp::Deref, _) => true,
            _ => false,
        }
    }

    fn binary(&mut self, cx: &mut FnCtx, e: &Expr, op: BinOp, l: &Expr, r: &Expr) -> Ty {
        // Presence tests on map entries (§11.3): `m[k] == null`.
        if matches!(op, BinOp::Eq | BinOp::Ne)
            && (matches!(r.kind, ExprKind::Null) || matches!(l.kind, ExprKind::Null))
        {
            let other = if matches!(r.kind, ExprKind::Null) {
                l
            } else {
                r
            };
            let t = self.expr(cx, other, None);
            self.expr(cx, if std::ptr::eq(other, l) { r } else { l }, None);
            if self.is_presence_operand(cx, other)
                || matches!(t, Ty::Ptr(_) | Ty::Fn(_) | Ty::Null | Ty::Error)
            {
                return Ty::Bool;
            }
            if t == Ty::ProgramHandle {
                // The reference's programs test `load`'s result for null (§15.3 [fix]).
                self.warning(
                    Code::W0009,
                    e.span,
                    format!("this is always {}: a `ProgramHandle` is never null (every program is loaded before `main` runs, and a failed load stops the executable with the kernel's reason)", op == BinOp::Ne),
                );
                self.set_const(e, ConstValue::Bool(op == BinOp::Ne));
                return Ty::Bool;
            }
            self.error(
                Code::E0302,
                e.span,
                format!(
                    "`{}` compares `{}` with null; only pointers and map entries can be null",
                    op.symbol(),
                    self.show(&t)
                ),
            );
            return Ty::Bool;
        }
        let lt = self.expr(cx, l, None);
        let rt = self.expr(cx, r, None);
        if lt.is_error() || rt.is_error() {
            return if op.is_comparison() || matches!(op, BinOp::And | BinOp::Or) {
                Ty::Bool
            } else {
                Ty::Error
            };
        }
        let (lc, rc) = (self.const_of(l).cloned(), self.const_of(r).cloned());
        let result = match op {
            BinOp::And | BinOp::Or => {
                for (t, x) in [(&lt, l), (&rt, r)] {
                    if !matches!(t, Ty::Bool) {
                        self.error(
                            Code::E0303,
                            x.span,
                            format!(
                                "`{}` needs bool operands, found `{}`",
                                op.symbol(),
                                self.show(t)
                            ),
                        );
                    }
                }
                Ty::Bool
            }
            BinOp::Add | BinOp::Sub => match (&lt, &rt) {
                (Ty::Ptr(_), t) if self.int_like(t).is_some() => lt.clone(),
                (t, Ty::Ptr(_)) if op == BinOp::Add && self.int_like(t).is_some() => rt.clone(),
                (Ty::Ptr(_), Ty::Ptr(_)) if op == BinOp::Sub => U64,
                (Ty::Str(a), Ty::Str(b)) if op == BinOp::Add => Ty::Str(a + b - 1),
                _ => self.arith(e, op, &lt, &rt),
            },
            BinOp::Mul | BinOp::Div | BinOp::Rem => {
                if matches!(op, BinOp::Div | BinOp::Rem)
                    && rc.as_ref().and_then(|v| v.as_int()) == Some(0)
                {
                    self.error(Code::E0319, r.span, "the divisor is the constant 0");
                }
                self.arith(e, op, &lt, &rt)
            }
            BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor => {
                if matches!((&lt, &rt), (Ty::Bool, Ty::Bool)) {
                    Ty::Bool
                } else {
                    self.arith(e, op, &lt, &rt)
                }
            }
            BinOp::Shl | BinOp::Shr => {
                let (Some(li), Some(_)) = (self.int_like(&lt), self.int_like(&rt)) else {
                    self.error(
                        Code::E0302,
                        e.span,
                        format!(
                            "`{}` needs integers, found `{}` and `{}`",
                            op.symbol(),
                            self.show(&lt),
                            self.show(&rt)
                        ),
                    );
                    return Ty::Error;
                };
                if let Some(v) = rc.as_ref().and_then(|v| v.as_int()) {
                    if v < 0 || v >= li.bits() as i128 {
                        self.error(
                            Code::E0320,
                            r.span,
                            format!(
                                "shift by {v} is outside 0..{} for `{}`",
                                li.bits(),
                                li.name()
                            ),
                        );
                        return Ty::Int(li);
                    }
                }
                Ty::Int(li)
            }
            BinOp::Eq | BinOp::Ne => {
                if self.unify(&lt, &rt).is_none() {
                    self.error(
                        Code::E0302,
                        e.span,
                        format!(
                            "cannot compare `{}` with `{}`",
                            self.show(&lt),
                            self.show(&rt)
                        ),
                    );
                }
                Ty::Bool
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let ordered =
                    |t: &Ty| matches!(t, Ty::Int(_) | Ty::Enum(_) | Ty::Char | Ty::Ptr(_));
                if !ordered(&lt) || !ordered(&rt) || self.unify(&lt, &rt).is_none() {
                    self.error(
                        Code::E0302,
                        e.span,
                        format!(
                            "`{}` cannot order `{}` and `{}`",
                            op.symbol(),
                            self.show(&lt),
                            self.show(&rt)
                        ),
                    );
                }
                Ty::Bool
            }
        };
        if let (Some(a), Some(b)) = (lc, rc) {
            let operand_ty = if op.is_comparison() {
                self.unify(&lt, &rt).unwrap_or(I64)
            } else {
                result.clone()
            };
            match fold_binary(op, &a, &b, &operand_ty) {
                Ok(Some(v)) => self.set_const(e, v),
                Ok(None) => {}
                Err(FoldError::DivByZero) | Err(FoldError::ShiftRange) => {}
            }
        }
        result
    }

    /// Integer arithmetic in the unified type (§6.3, §6.4).
    fn arith(&mut self, e: &Expr, op: BinOp, lt: &Ty, rt: &Ty) -> Ty {
        let (Some(a), Some(b)) = (self.int_like(lt), self.int_like(rt)) else {
            self.error(
                Code::E0302,
                e.span,
                format!(
                    "`{}` cannot combine `{}` and `{}`",
                    op.symbol(),
                    self.show(lt),
                    self.show(rt)
                ),
            );
            return Ty::Error;
        };
        match unify_ints(a, b) {
            Some(t) => Ty::Int(t),
            None => {
                self.error(Code::E0302, e.span, format!("`{}` cannot combine `{}` and `{}` (mixed signedness; cast one side with `as`)", op.symbol(), a.name(), b.name()));
                Ty::Error
            }
        }
    }

    /// §6.3 unification; `None` when the types are incompatible.
    pub(super) fn unify(&self, a: &Ty, b: &Ty) -> Option<Ty> {
        if a == b {
            return Some(a.clone());
        }
        Some(match (a, b) {
            (Ty::Error, t) | (t, Ty::Error) => t.clone(),
            (Ty::Int(x), Ty::Int(y)) => Ty::Int(unify_ints(*x, *y)?),
            (Ty::Enum(_), Ty::Int(i)) | (Ty::Int(i), Ty::Enum(_)) => Ty::Int(*i),
            (Ty::Enum(x), Ty::Enum(y)) => Ty::Int(unify_ints(
                self.enums[x.0 as usize].repr,
                self.enums[y.0 as usize].repr,
            )?),
            (Ty::Str(x), Ty::Str(y)) => Ty::Str(*x.max(y)),
            (Ty::Str(n), Ty::Array(e, m)) | (Ty::Array(e, m), Ty::Str(n))
                if matches!(**e, Ty::Int(IntTy::U8)) && n <= m =>
            {
                Ty::Array(e.clone(), *m)
            }
            (Ty::Array(x, n), Ty::Array(y, m)) if n == m => {
                Ty::Array(Rc::new(self.unify(x, y)?), *n)
            }
            (Ty::FillArray(x), Ty::Array(y, n)) | (Ty::Array(y, n), Ty::FillArray(x)) => {
                Ty::Array(Rc::new(self.unify(x, y)?), *n)
            }
            (Ty::Ptr(x), Ty::Ptr(y)) => {
                if matches!(**x, Ty::Void) {
                    b.clone()
                } else if matches!(**y, Ty::Void) {
                    a.clone()
                } else {
                    Ty::Ptr(Rc::new(self.unify(x, y)?))
                }
            }
            (Ty::Null, t @ (Ty::Ptr(_) | Ty::Fn(_))) | (t @ (Ty::Ptr(_) | Ty::Fn(_)), Ty::Null) => {
                t.clone()
            }
            (Ty::Fn(x), Ty::Fn(y)) => {
                if x.params.len() != y.params.len() {
                    return None;
                }
                for (p, q) in x.params.iter().zip(&y.params) {
                    self.unify(p, q)?;
                }
                self.unify(&x.ret, &y.ret)?;
                a.clone()
            }
            _ => return None,
        })
    }

    /// Converts `e` (of type `from`) to the target type `to` (§6.2, §6.3): constants are only
    /// range-checked, everything else must unify. `code` is E0301 or E0309 depending on the site.
    pub(super) fn coerce(&mut self, e: &Expr, from: &Ty, to: &Ty, code: Code) -> bool {
        if from.is_error() || to.is_error() {
            return true;
        }
        // The verdict enums are distinct types (§9.2): an XDP verdict is not a TC verdict.
        if let (Ty::Enum(f), Ty::Enum(t)) = (from, to) {
            let (fname, tname) = (
                self.enums[f.0 as usize].name.as_str(),
                self.enums[t.0 as usize].name.as_str(),
            );
            if f != t
                && (super::verdict::VERDICT_ENUMS.contains(&fname)
                    || super::verdict::VERDICT_ENUMS.contains(&tname))
            {
                self.error(
                    code,
                    e.span,
                    format!(
                        "expected `{tname}`, found `{fname}`: {} is not {}",
                        super::verdict::enum_kind(fname),
                        super::verdict::enum_kind(tname)
                    ),
                );
                return false;
            }
        }
        if let Some(v) = self.const_of(e).cloned() {
            if let (Some(x), true) = (
                v.as_int(),
                self.int_like(to).is_some() && self.int_like(from).is_some(),
            ) {
                let target = self.int_like(to).unwrap_or(IntTy::I64);
                if x < target.min() || x > target.max() {
                    let signed = [IntTy::I8, IntTy::I16, IntTy::I32, IntTy::I64];
                    let unsigned = [IntTy::U8, IntTy::U16, IntTy::U32, IntTy::U64];
                    // Same signedness first; a negative value needs a signed type.
                    let candidates: Vec<IntTy> = match (x < 0, target.signed()) {
                        (true, _) => signed.to_vec(),
                        (false, true) => signed.into_iter().chain(unsigned).collect(),
                        (false, false) => unsigned.to_vec(),
                    };
                    let wider = candidates
                        .into_iter()
                        .find(|t| (t.min()..=t.max()).contains(&x));
                    let fix = match wider {
                        Some(t) => format!(
                            "use a value in range, or a wider type such as `{}`",
                            t.name()
                        ),
                        None => "no integer type holds it: use a value in range".to_string(),
                    };
                    self.error_with_note(
                        Code::E0310,
                        e.span,
                        format!(
                            "{x} does not fit in `{}` ({}..={})",
                            self.show(to),
                            target.min(),
                            target.max()
                        ),
                        fix,
                    );
                    return false;
                }
                return true;
            }
        }
        if matches!(to, Ty::Void) && matches!(from, Ty::Void) {
            return true;
        }
        if self.unify(from, to).is_some() {
            if let (Ty::Int(f), Ty::Int(t)) = (from, to) {
                if t.bits() < f.bits() {
                    self.warning(
                        Code::W0005,
                        e.span,
                        format!(
                            "`{}` value truncated to `{}`; write `as {}` to make it explicit",
                            f.name(),
                            t.name(),
                            t.name()
                        ),
                    );
                }
            }
            return true;
        }
        self.error(
            code,
            e.span,
            format!("expected `{}`, found `{}`", self.show(to), self.show(from)),
        );
        false
    }

    /// E0310 for a folded constant that must fit a type.
    pub(super) fn check_const_fits(&mut self, v: &ConstValue, ty: &Ty, span: Span) {
        if let (Some(x), Some(t)) = (v.as_int(), self.int_like(ty)) {
            if x < t.min() || x > t.max() {
                self.error(
                    Code::E0310,
                    span,
                    format!("{x} does not fit in `{}`", self.show(ty)),
                );
            }
        }
    }

    fn cast(&mut self, cx: &mut FnCtx, e: &Expr, inner: &Expr, te: &TypeExpr) -> Ty {
        let from = self.expr(cx, inner, None);
        let to = self.resolve_type(te);
        if from.is_error() || to.is_error() {
            return to;
        }
        let int_like = |t: &Ty| matches!(t, Ty::Int(_) | Ty::Enum(_) | Ty::Char);
        let ok = match (&from, &to) {
            (f, t) if int_like(f) && int_like(t) => true,
            (Ty::Bool, t) if int_like(t) => true,
            (_, Ty::Bool) => false,
            (Ty::Ptr(_) | Ty::Null, Ty::Ptr(_)) => true,
            (Ty::Ptr(_), Ty::Int(IntTy::U64)) => true,
            (Ty::Int(IntTy::U64), Ty::Ptr(_)) | (Ty::Int(_), Ty::Ptr(_)) => {
                if cx.is_kernel() {
                    self.error(Code::E0313, e.span, "integer-to-pointer casts are not allowed in kernel code (the verifier rejects forged pointers)");
                    return to;
                }
                matches!(from, Ty::Int(IntTy::U64))
            }
            (Ty::Str(_), Ty::Array(el, _)) | (Ty::Array(el, _), Ty::Str(_)) => {
                matches!(**el, Ty::Int(IntTy::U8))
            }
            (a, b) => a == b,
        };
        if !ok {
            self.error(
                Code::E0313,
                e.span,
                format!("cannot cast `{}` to `{}`", self.show(&from), self.show(&to)),
            );
            return to;
        }
        if let (Some(v), Some(t)) = (
            self.const_of(inner).and_then(|v| v.as_int()),
            self.int_like(&to),
        ) {
            self.set_const(e, ConstValue::Int(t.wrap(v)));
        } else if let (Some(ConstValue::Bool(b)), Some(_)) =
            (self.const_of(inner).cloned(), self.int_like(&to))
        {
            self.set_const(e, ConstValue::Int(b as i128));
        }
        to
    }

    // ------------------------------------------------------------------------------------------
    // Aggregates

    fn array_literal(
        &mut self,
        cx: &mut FnCtx,
        items: &[Expr],
        span: Span,
        expected: Option<&Ty>,
    ) -> Ty {
        let (elem, len) = match expected {
            Some(Ty::Array(el, n)) => ((**el).clone(), Some(*n)),
            _ => (Ty::Error, None),
        };
        let mut elem_ty = elem.clone();
        for it in items {
            let t = self.expr(cx, it, if elem.is_error() { None } else { Some(&elem) });
            if !matches!(
                it.kind,
                ExprKind::Int(_)
                    | ExprKind::Bool(_)
                    | ExprKind::Char(_)
                    | ExprKind::Str(_)
                    | ExprKind::Null
            ) && self.const_of(it).is_none()
            {
                self.error(
                    Code::E0312,
                    it.span,
                    "array literal elements must be literals",
                );
            }
            if !elem.is_error() {
                self.coerce(it, &t, &elem, Code::E0301);
            } else if elem_ty.is_error() {
                elem_ty = t;
            }
        }
        if let Some(n) = len {
            if items.len() as u64 > n as u64 {
                self.error(
                    Code::E0301,
                    span,
                    format!("{} elements do not fit in an array of {n}", items.len()),
                );
            }
        }
        if elem_ty.is_error() {
            elem_ty = U32;
        }
        match (len, items.len()) {
            (Some(n), _) => Ty::array(elem_ty, n),
            (None, 0 | 1) => Ty::FillArray(Rc::new(elem_ty)),
            (None, k) => Ty::array(elem_ty, k as u32),
        }
    }

    fn struct_literal(
        &mut self,
        cx: &mut FnCtx,
        name: &Ident,
        fields: &[(Ident, Expr)],
        span: Span,
    ) -> Ty {
        let sid = match self.symbols.get(&name.name) {
            Some(Symbol::Struct(s)) => Some(*s),
            Some(Symbol::Alias(Ty::Struct(s))) => Some(*s),
            _ => self.struct_by_name.get(&name.name).copied().or_else(|| {
                match self.kernel_type(&name.name) {
                    Some(Ty::Struct(s)) => Some(s),
                    _ => None,
                }
            }),
        };
        let Some(sid) = sid else {
            self.error(
                Code::E0112,
                name.span,
                format!("`{}` is not a struct", name.name),
            );
            for (_, v) in fields {
                self.expr(cx, v, None);
            }
            return Ty::Error;
        };
        let mut seen: Vec<&str> = Vec::new();
        for (f, v) in fields {
            if seen.contains(&f.name.as_str()) {
                self.error(
                    Code::E0307,
                    f.span,
                    format!("field `{}` is initialised twice", f.name),
                );
                continue;
            }
            seen.push(&f.name);
            match self.struct_field(sid, &f.name) {
                Some(ft) => {
                    let t = self.expr(cx, v, Some(&ft));
                    self.coerce(v, &t, &ft, Code::E0301);
                }
                None => {
                    self.error(
                        Code::E0307,
                        f.span,
                        format!("`{}` has no field `{}`", name.name, f.name),
                    );
                    self.expr(cx, v, None);
                }
            }
        }
        let info = &self.structs[sid.0 as usize];
        let optional: &[&str] = if info.name == "perf_options" {
            &[
                "pid",
                "cpu",
                "period",
                "wakeup",
                "inherit",
                "exclude_kernel",
                "exclude_user",
            ]
        } else {
            &[]
        };
        if info.origin != StructOrigin::Kernel {
            let missing: Vec<String> = info
                .fields
                .iter()
                .filter(|f| {
                    !seen.contains(&f.name.as_str()) && !optional.contains(&f.name.as_str())
                })
                .map(|f| f.name.clone())
                .collect();
            if !missing.is_empty() {
                self.error(
                    Code::E0307,
                    span,
                    format!(
                        "missing field{} {}",
                        if missing.len() > 1 { "s" } else { "" },
                        missing
                            .iter()
                            .map(|m| format!("`{m}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        Ty::Struct(sid)
    }

    fn match_expr(&mut self, cx: &mut FnCtx, e: &Expr, scrutinee: &Expr, arms: &[MatchArm]) -> Ty {
        let tail = std::mem::take(&mut cx.tail_match);
        let st = self.expr(cx, scrutinee, None);
        if arms.is_empty() {
            self.error(Code::E0404, e.span, "a match needs at least one arm");
            return Ty::Error;
        }
        let mut result: Option<Ty> = None;
        let mut has_default = false;
        let mut covered: Vec<i128> = Vec::new();
        let mut all_arms_diverge = true;
        let mut join = super::stmt::InvalidationJoin::new(cx);
        for arm in arms {
            join.begin(cx);
            self.check_pattern(&arm.pattern, &st, &mut covered);
            if matches!(arm.pattern, Pattern::Default(_)) {
                has_default = true;
            }
            let (t, span) = match &arm.body {
                ArmBody::Expr(
                    x @ Expr {
                        kind: ExprKind::Call { callee, args },
                        ..
                    },
                ) if tail => {
                    self.call_expected = result.clone();
                    let t = self.call(cx, x, callee, args, true);
                    self.call_expected = None;
                    self.expr_types[x.id.0 as usize] = t.clone();
                    (t, x.span)
                }
                ArmBody::Expr(x) => {
                    let t = self.expr(cx, x, result.as_ref());
                    let reach = !self.diverging.contains(&x.id);
                    all_arms_diverge &= !reach;
                    join.end(cx, reach);
                    (t, x.span)
                }
                ArmBody::Block(b) => {
                    let (t, reach) = self.arm_block(cx, b);
                    all_arms_diverge &= !reach;
                    join.end(cx, reach);
                    (t, b.span)
                }
            };
            if matches!(t, Ty::Void) && matches!(arm.body, ArmBody::Block(_)) {
                continue; // an arm that ends in return/throw has no value
            }
            result = match result {
                None => Some(t),
                Some(r) => match self.unify(&r, &t) {
                    Some(u) => Some(u),
                    None => {
                        self.error(
                            Code::E0404,
                            span,
                            format!(
                                "this arm is `{}` but earlier arms are `{}`",
                                self.show(&t),
                                self.show(&r)
                            ),
                        );
                        Some(r)
                    }
                },
            };
        }
        let exhaustive = has_default
            || match &st {
                Ty::Enum(id) => self.enums[id.0 as usize]
                    .variants
                    .iter()
                    .all(|v| covered.contains(&v.1)),
                Ty::Bool => covered.contains(&0) && covered.contains(&1),
                _ => false,
            };
        if !exhaustive {
            self.warning(
                Code::W0002,
                e.span,
                "no arm matches some values and there is no `default`; they yield the zero value",
            );
            // Values no arm names pass through the match unchanged.
            join.begin(cx);
            join.end(cx, true);
        }
        join.finish(cx);
        // Every value reaches an arm and no arm completes: nothing after the match runs.
        if exhaustive && all_arms_diverge {
            self.diverging.insert(e.id);
        }
        result.unwrap_or(Ty::Void)
    }

    fn check_pattern(&mut self, p: &Pattern, st: &Ty, covered: &mut Vec<i128>) {
        let bad = |me: &mut Self, span: Span, what: String| me.error(Code::E0404, span, what);
        match p {
            Pattern::Default(_) => {}
            Pattern::Int(v, span) => {
                if self.int_like(st).is_none() && !st.is_error() && !matches!(st, Ty::Char) {
                    bad(
                        self,
                        *span,
                        format!("an integer pattern cannot match `{}`", self.show(st)),
                    );
                } else if let Some(t) = self.int_like(st) {
                    if *v < t.min() || *v > t.max() {
                        self.error(
                            Code::E0310,
                            *span,
                            format!("{v} does not fit in `{}`", self.show(st)),
                        );
                    }
                }
                covered.push(*v);
            }
            Pattern::Str(_, span) => {
                if !matches!(st, Ty::Str(_) | Ty::Error) {
                    bad(
                        self,
                        *span,
                        format!("a string pattern cannot match `{}`", self.show(st)),
                    );
                }
            }
            Pattern::Char(c, span) => {
                if !matches!(st, Ty::Char | Ty::Error) && self.int_like(st).is_none() {
                    bad(
                        self,
                        *span,
                        format!("a character pattern cannot match `{}`", self.show(st)),
                    );
                }
                covered.push(*c as i128);
            }
            Pattern::Bool(b, span) => {
                if !matches!(st, Ty::Bool | Ty::Error) {
                    bad(
                        self,
                        *span,
                        format!("a bool pattern cannot match `{}`", self.show(st)),
                    );
                }
                covered.push(*b as i128);
            }
            Pattern::Name(n) => match self.symbols.get(&n.name).cloned() {
                Some(Symbol::EnumConst(_, v)) => covered.push(v),
                Some(Symbol::Const(_)) => {
                    if let Some((_, ConstValue::Int(v))) = self.top_level_const(&n.name) {
                        covered.push(v);
                    }
                }
                _ => {
                    let builtin = self
                        .enums
                        .iter()
                        .find_map(|en| en.variants.iter().find(|v| v.0 == n.name).map(|v| v.1));
                    match builtin {
                        Some(v) => covered.push(v),
                        None => bad(self, n.span, format!("`{}` is not an enum constant or a `const`; match patterns compare, they do not bind", n.name)),
                    }
                }
            },
        }
    }

    // ------------------------------------------------------------------------------------------
    // Indexing and fields

    fn index(&mut self, cx: &mut FnCtx, base: &Expr, idx: &Expr, span: Span) -> Ty {
        if let ExprKind::Ident(name) = &base.kind {
            if cx.lookup(name).is_none() {
                if let Some(Symbol::Map(mi)) = self.symbols.get(name).cloned() {
                    return self.map_index(cx, mi, idx, span);
                }
            }
        }
        let bt = self.expr(cx, base, None);
        let it = self.expr(cx, idx, None);
        if self.int_like(&it).is_none() && !it.is_error() {
            self.error(
                Code::E0305,
                idx.span,
                format!("an index must be an integer, found `{}`", self.show(&it)),
            );
        }
        let cidx = self.const_of(idx).and_then(|v| v.as_int());
        match &bt {
            Ty::Array(el, n) => {
                if let Some(i) = cidx {
                    if i < 0 || i >= *n as i128 {
                        self.error(
                            Code::E0603,
                            idx.span,
                            format!("index {i} is out of bounds for an array of {n}"),
                        );
                    }
                }
                (**el).clone()
            }
            Ty::Str(n) => {
                if let Some(i) = cidx {
                    if i < 0 || i >= *n as i128 {
                        self.error(
                            Code::E0603,
                            idx.span,
                            format!("index {i} is out of bounds for `str({n})`"),
                        );
                    }
                }
                Ty::Char
            }
            Ty::Ptr(p) => {
                self.check_deref(cx, base, span);
                (**p).clone()
            }
            Ty::Error => Ty::Error,
            _ => {
                self.error(
                    Code::E0305,
                    base.span,
                    format!("`{}` cannot be indexed", self.show(&bt)),
                );
                Ty::Error
            }
        }
    }

    fn map_index(&mut self, cx: &mut FnCtx, mi: usize, idx: &Expr, _span: Span) -> Ty {
        let m = self.maps[mi].clone();
        if !m.kind.indexable() {
            self.error(
                Code::E0610,
                idx.span,
                format!("`{}` cannot be indexed; use its methods", m.name),
            );
            self.expr(cx, idx, None);
            return Ty::Error;
        }
        let kt = self.expr(cx, idx, Some(&m.key));
        self.coerce(idx, &kt, &m.key, Code::E0301);
        if cx.target() == Target::Kmod {
            self.error(Code::E0501, idx.span, "module code cannot access maps");
        }
        m.value
    }

    fn field(&mut self, cx: &mut FnCtx, base: &Expr, f: &Ident) -> Ty {
        if let ExprKind::Ident(name) = &base.kind {
            if cx.lookup(name).is_none() {
                if let Some(Symbol::Config(ci)) = self.symbols.get(name).cloned() {
                    if cx.target() == Target::Kmod {
                        self.error(Code::E0501, base.span, "module code cannot read configs");
                    }
                    return match self.configs[ci].fields.iter().find(|x| x.name == f.name) {
                        Some(x) => x.ty.clone(),
                        None => {
                            self.error(
                                Code::E0306,
                                f.span,
                                format!("config `{name}` has no field `{}`", f.name),
                            );
                            Ty::Error
                        }
                    };
                }
            }
        }
        let bt = self.expr(cx, base, None);
        match &bt {
            Ty::Struct(sid) => match self.struct_field(*sid, &f.name) {
                Some(t) => t,
                None => {
                    self.error(
                        Code::E0306,
                        f.span,
                        format!("`{}` has no field `{}`", self.show(&bt), f.name),
                    );
                    Ty::Error
                }
            },
            Ty::Ptr(_) => {
                self.error(
                    Code::E0304,
                    base.span,
                    format!("`.{}` on a pointer; use `->{}`", f.name, f.name),
                );
                Ty::Error
            }
            Ty::Error => Ty::Error,
            _ => {
                self.error(
                    Code::E0306,
                    f.span,
                    format!("`{}` has no fields", self.show(&bt)),
                );
                Ty::Error
            }
        }
    }

    fn arrow(&mut self, cx: &mut FnCtx, base: &Expr, f: &Ident) -> Ty {
        let bt = self.expr(cx, base, None);
        match &bt {
            Ty::Ptr(inner) => match &**inner {
                Ty::Struct(sid) => {
                    self.check_deref(cx, base, base.span);
                    match self.struct_field(*sid, &f.name) {
                        Some(t) => t,
                        None => {
                            let info = &self.structs[sid.0 as usize];
                            let why = if info.origin == StructOrigin::Context {
                                " (context fields are limited to the documented set, §9.3)"
                            } else {
                                ""
                            };
                            self.error(
                                Code::E0306,
                                f.span,
                                format!("`{}` has no field `{}`{why}", info.name.clone(), f.name),
                            );
                            Ty::Error
                        }
                    }
                }
                Ty::Error => Ty::Error,
                other => {
                    let shown = self.show(other);
                    self.error(
                        Code::E0304,
                        base.span,
                        format!("`->` needs a pointer to a struct, found `*{shown}`"),
                    );
                    Ty::Error
                }
            },
            Ty::Error => Ty::Error,
            _ => {
                self.error(
                    Code::E0304,
                    base.span,
                    format!("`->` needs a pointer, found `{}`", self.show(&bt)),
                );
                Ty::Error
            }
        }
    }
}
