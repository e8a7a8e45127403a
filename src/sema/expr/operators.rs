//! Unary and binary operators and their operand types.

use super::*;

impl<'a> Checker<'a, '_> {
    pub(in crate::sema::expr) fn unary(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        op: UnOp,
        inner: &Expr,
    ) -> Ty {
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

    /// [ext] A `char` constant beside an integer operand is the integer literal of its byte
    /// (§6.3): `p[i] == ' '` on a `*u8`, `c - '0'`, as C reads them.
    fn char_constant_as_int(&self, t: &Ty, constant: &Option<ConstValue>, other: &Ty) -> Ty {
        match (t, constant) {
            (Ty::Char, Some(ConstValue::Char(_))) if self.int_like(other).is_some() => {
                Ty::Int(IntTy::U32)
            }
            _ => t.clone(),
        }
    }

    pub(in crate::sema) fn int_like(&self, t: &Ty) -> Option<IntTy> {
        match t {
            Ty::Int(i) => Some(*i),
            Ty::Enum(id) => Some(self.enums[id.0 as usize].repr),
            _ => None,
        }
    }

    /// Whether an expression denotes storage (§8.2).
    pub(in crate::sema) fn is_lvalue(&self, cx: &FnCtx, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Ident(n) => {
                cx.lookup(n).is_some() || matches!(self.symbols.get(n), Some(Symbol::Global(_)))
            }
            ExprKind::Index(..) | ExprKind::Field(..) | ExprKind::Arrow(..) => true,
            ExprKind::Unary(UnOp::Deref, _) => true,
            _ => false,
        }
    }

    pub(in crate::sema::expr) fn binary(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        op: BinOp,
        l: &Expr,
        r: &Expr,
    ) -> Ty {
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
        // `p != null && p->f`: the right operand runs only where the left one decided.
        let decided = match op {
            BinOp::And => self.cond_facts(cx, l).when_true,
            BinOp::Or => self.cond_facts(cx, l).when_false,
            _ => Vec::new(),
        };
        let saved = self.apply_facts(cx, &decided);
        let rt = self.expr(cx, r, None);
        self.restore_facts(cx, saved);
        if lt.is_error() || rt.is_error() {
            return if op.is_comparison() || matches!(op, BinOp::And | BinOp::Or) {
                Ty::Bool
            } else {
                Ty::Error
            };
        }
        let (lc, rc) = (self.const_of(l).cloned(), self.const_of(r).cloned());
        let (lt, rt) = (
            self.char_constant_as_int(&lt, &lc, &rt),
            self.char_constant_as_int(&rt, &rc, &lt),
        );
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
                if self.unify(&lt, &rt).is_none() && !both_pointers(&lt, &rt) {
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
                let comparable = self.unify(&lt, &rt).is_some() || both_pointers(&lt, &rt);
                if !ordered(&lt) || !ordered(&rt) || !comparable {
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
    pub(in crate::sema::expr) fn arith(&mut self, e: &Expr, op: BinOp, lt: &Ty, rt: &Ty) -> Ty {
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
    pub(in crate::sema) fn unify(&self, a: &Ty, b: &Ty) -> Option<Ty> {
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
    pub(in crate::sema) fn coerce(&mut self, e: &Expr, from: &Ty, to: &Ty, code: Code) -> bool {
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
                && (crate::sema::verdict::VERDICT_ENUMS.contains(&fname)
                    || crate::sema::verdict::VERDICT_ENUMS.contains(&tname))
            {
                self.error(
                    code,
                    e.span,
                    format!(
                        "expected `{tname}`, found `{fname}`: {} is not {}",
                        crate::sema::verdict::enum_kind(fname),
                        crate::sema::verdict::enum_kind(tname)
                    ),
                );
                return false;
            }
        }
        if let Some(v) = self.const_of(e).cloned() {
            // (A `char` constant converts to an integer target as its byte's literal does.)
            let from_int = self.int_like(from).is_some() || matches!(v, ConstValue::Char(_));
            if let (Some(x), true) = (v.as_int(), self.int_like(to).is_some() && from_int) {
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
                let room = t.bits() - u32::from(t.signed());
                if t.bits() < f.bits() && self.value_bits(e).is_none_or(|b| b > room) {
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
        let message = format!("expected `{}`, found `{}`", self.show(to), self.show(from));
        match (from, to) {
            // `char` is integer-compatible in casts only (§6.1); C's `{0}` habit lands here.
            (Ty::Int(_), Ty::Char) => self.error_with_note(
                code,
                e.span,
                message,
                "a `char` takes a character literal (`'a'`, `'\\0'`) or a cast (`x as char`)"
                    .to_string(),
            ),
            _ => self.error(code, e.span, message),
        }
        false
    }

    /// How many low bits can hold the value of integer expression `e`, when it is never negative:
    /// what its unsigned operands, masks, shifts and constants allow (`hi | 0xb8` and `b & 0x0f`
    /// with `hi: u16`, `b: u8` need 16 and 4), so that a conversion the value always fits is no
    /// narrowing worth a warning (W0005), as a range-aware C compiler judges `-Wconversion`.
    fn value_bits(&self, e: &Expr) -> Option<u32> {
        if let Some(x) = self.const_of(e).and_then(ConstValue::as_int) {
            return (x >= 0).then(|| 128 - x.leading_zeros());
        }
        let unsigned = match self.expr_types.get(e.id.0 as usize) {
            Some(Ty::Int(t)) if !t.signed() => Some(t.bits()),
            _ => None,
        };
        let shift = |k: &Expr| self.const_of(k).and_then(ConstValue::as_int);
        let bits = match &e.kind {
            ExprKind::Binary(op, a, b) => {
                let (x, y) = (self.value_bits(a), self.value_bits(b));
                match op {
                    BinOp::BitAnd => match (x, y) {
                        (Some(x), Some(y)) => Some(x.min(y)),
                        (x, y) => x.or(y),
                    },
                    BinOp::BitOr | BinOp::BitXor => Some(x?.max(y?)),
                    BinOp::Shr => match shift(b) {
                        Some(k) if (0..128).contains(&k) => Some(x?.saturating_sub(k as u32)),
                        _ => x,
                    },
                    BinOp::Shl => match shift(b) {
                        Some(k) if (0..128).contains(&k) => Some(x? + k as u32),
                        _ => None,
                    },
                    BinOp::Add => Some(x?.max(y?) + 1),
                    BinOp::Mul => Some(x? + y?),
                    BinOp::Div => x,
                    BinOp::Rem => Some(x?.min(y?)),
                    _ => None,
                }
            }
            // (A signed result keeps the value only when it fits below the sign bit.)
            ExprKind::Cast(inner, _) => match self.expr_types.get(e.id.0 as usize) {
                Some(Ty::Int(t)) if t.signed() => self.value_bits(inner).filter(|&b| b < t.bits()),
                _ => self.value_bits(inner),
            },
            _ => None,
        };
        // (Never more than the expression's own unsigned type holds: the arithmetic wraps there.)
        match (bits, unsigned) {
            (Some(b), Some(u)) => Some(b.min(u)),
            (b, u) => b.or(u),
        }
    }

    /// E0310 for a folded constant that must fit a type.
    pub(in crate::sema) fn check_const_fits(&mut self, v: &ConstValue, ty: &Ty, span: Span) {
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

    pub(in crate::sema::expr) fn cast(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        inner: &Expr,
        te: &TypeExpr,
    ) -> Ty {
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
}

/// Pointers compare as addresses whatever they point to (§6.8): `udp + 8 > data_end` tests a
/// `*udphdr` against the packet's `*u8` end.
fn both_pointers(l: &Ty, r: &Ty) -> bool {
    matches!((l, r), (Ty::Ptr(_), Ty::Ptr(_)))
}
