//! Assignment, return and delete.

use super::*;

impl<'a> Checker<'a, '_> {
    pub(in crate::sema::stmt) fn assign(
        &mut self,
        cx: &mut FnCtx,
        target: &Expr,
        op: AssignOp,
        value: &Expr,
    ) {
        let tt = self.assign_target(cx, target);
        let vt = self.expr(cx, value, Some(&tt));
        self.check_void_value(value, &vt);
        if let Some(bop) = op.binop() {
            if matches!(bop, BinOp::Div | BinOp::Rem)
                && self.const_of(value).and_then(ConstValue::as_int) == Some(0)
            {
                self.error(Code::E0319, value.span, "the divisor is the constant 0");
            }
            let ptr_arith =
                tt.is_ptr() && matches!(bop, BinOp::Add | BinOp::Sub) && vt.is_integral();
            if !ptr_arith && !tt.is_error() && !vt.is_error() {
                let both_int = tt.is_integral() && vt.is_integral();
                if !both_int {
                    self.error(
                        Code::E0302,
                        target.span.to(value.span),
                        format!(
                            "`{}=` needs integer operands, found `{}` and `{}`",
                            bop.symbol(),
                            self.show(&tt),
                            self.show(&vt)
                        ),
                    );
                } else if matches!(bop, BinOp::Shl | BinOp::Shr) {
                    if let (Some(v), Ty::Int(i)) =
                        (self.const_of(value).and_then(ConstValue::as_int), &tt)
                    {
                        if v < 0 || v >= i.bits() as i128 {
                            self.error(
                                Code::E0320,
                                value.span,
                                format!("shift by {v} is outside 0..{}", i.bits()),
                            );
                        }
                    }
                } else if self.const_of(value).is_none() && self.unify(&tt, &vt).is_none() {
                    self.error(
                        Code::E0302,
                        target.span.to(value.span),
                        format!(
                            "`{}=` cannot combine `{}` and `{}`",
                            bop.symbol(),
                            self.show(&tt),
                            self.show(&vt)
                        ),
                    );
                }
            }
        } else {
            self.coerce(value, &vt, &tt, Code::E0301);
            // A variable assigned anew holds a new record or object, not the released one.
            let foreign = self.foreign_of(cx, value);
            if let ExprKind::Ident(n) = &target.kind {
                if let Some(l) = cx.lookup_mut(n) {
                    l.released = false;
                    l.foreign = foreign;
                }
            }
        }
        self.check_foreign_write(target);
        self.check_store_escape(cx, target, value);
    }

    /// E0311 for a store through a pointer the program may only read through a helper.
    pub(in crate::sema::stmt) fn check_foreign_write(&mut self, target: &Expr) {
        let base = match &target.kind {
            ExprKind::Arrow(base, _)
            | ExprKind::Index(base, _)
            | ExprKind::Unary(UnOp::Deref, base) => base,
            _ => return,
        };
        if let Some(memory) = self.foreign_reads.get(&base.id) {
            self.error(
                Code::E0311,
                target.span,
                format!(
                    "this pointer points into {}; a program cannot write there",
                    memory.describe()
                ),
            );
        }
    }

    /// Types an assignment target and checks that it is assignable (E0311, E0509, E0508).
    pub(in crate::sema::stmt) fn assign_target(&mut self, cx: &mut FnCtx, target: &Expr) -> Ty {
        match &target.kind {
            ExprKind::Ident(n) => {
                if let Some(l) = cx.lookup(n) {
                    if !l.mutable {
                        let what = if l.value.is_some() {
                            "a constant"
                        } else {
                            "a loop variable"
                        };
                        self.error(
                            Code::E0311,
                            target.span,
                            format!("`{n}` is {what} and cannot be assigned"),
                        );
                    }
                    let t = l.ty.clone();
                    self.expr_types[target.id.0 as usize] = t.clone();
                    // Assigning to an entry binding writes into the entry (§11.3).
                    self.check_binding_valid(cx, n, target.span);
                    return t;
                }
                match self.symbols.get(n).cloned() {
                    Some(Symbol::Global(_)) => self.expr(cx, target, None),
                    Some(_) => {
                        self.error(
                            Code::E0311,
                            target.span,
                            format!("`{n}` cannot be assigned"),
                        );
                        Ty::Error
                    }
                    None => self.expr(cx, target, None),
                }
            }
            ExprKind::Field(base, _) => {
                if let ExprKind::Ident(n) = &base.kind {
                    if cx.lookup(n).is_none()
                        && matches!(self.symbols.get(n), Some(Symbol::Config(_)))
                        && cx.is_kernel()
                    {
                        self.error(
                            Code::E0509,
                            target.span,
                            format!("config `{n}` is read-only in kernel code"),
                        );
                    }
                }
                self.expr(cx, target, None)
            }
            ExprKind::Arrow(base, f) => {
                let t = self.expr(cx, target, None);
                if let Ty::Ptr(inner) = self.expr_types[base.id.0 as usize].clone() {
                    if let Ty::Struct(s) = &*inner {
                        let info = &self.structs[s.0 as usize];
                        let writable = match info.origin {
                            StructOrigin::Context => {
                                matches!(f.name.as_str(), "mark" | "cb" | "priority")
                            }
                            // A header laid over packet bytes is packet memory (§10.4); through
                            // a helper's parameter, its callers decide.
                            StructOrigin::Kernel => {
                                info.span.is_some() || self.is_packet(cx, base) || {
                                    let param = self.helper_param(cx, base);
                                    if let Some((helper, i)) = param {
                                        let field = format!("{}.{}", info.name, f.name);
                                        self.helper_param_writes.push((
                                            helper,
                                            i,
                                            target.span,
                                            field,
                                        ));
                                    }
                                    param.is_some()
                                }
                            }
                            _ => true,
                        };
                        if !writable {
                            self.error(
                                Code::E0311,
                                target.span,
                                format!(
                                    "`{}.{}` is a kernel field and cannot be written",
                                    info.name.clone(),
                                    f.name
                                ),
                            );
                        }
                    }
                }
                t
            }
            ExprKind::Index(..) | ExprKind::Unary(UnOp::Deref, _) => self.expr(cx, target, None),
            _ => {
                self.expr(cx, target, None);
                self.error(
                    Code::E0311,
                    target.span,
                    "this expression cannot be assigned",
                );
                Ty::Error
            }
        }
    }

    pub(in crate::sema::stmt) fn return_stmt(
        &mut self,
        cx: &mut FnCtx,
        v: Option<&Expr>,
        span: Span,
    ) {
        let ret = cx.ret.clone();
        match v {
            None => {
                let named = cx.func.is_some_and(|f| {
                    matches!(self.funcs[f.0 as usize].decl.ret, RetSpec::Named(..))
                });
                if !matches!(ret, Ty::Void | Ty::Error) && !named {
                    self.error(
                        Code::E0314,
                        span,
                        format!(
                            "this function returns `{}`; `return` needs a value",
                            self.show(&ret)
                        ),
                    );
                }
            }
            Some(e) => {
                self.return_value(cx, e, span, false);
            }
        }
    }

    /// `return e`, or (`implicit`) a trailing expression statement `e` taken as the function's
    /// value. Returns false when an implicit `e` has no value (void): it stays a statement.
    pub(in crate::sema::stmt) fn return_value(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        span: Span,
        implicit: bool,
    ) -> bool {
        let ret = cx.ret.clone();
        if matches!(ret, Ty::Void) {
            self.expr(cx, e, None);
            self.error(Code::E0315, span, "this function returns nothing (void)");
            return true;
        }
        let t = match &e.kind {
            ExprKind::Call { callee, args } => {
                self.call_expected = Some(ret.clone());
                let t = self.call(cx, e, callee, args, true);
                self.call_expected = None;
                self.expr_types[e.id.0 as usize] = t.clone();
                t
            }
            ExprKind::Match { .. } => {
                cx.tail_match = true;
                self.expr(cx, e, None)
            }
            _ => self.expr(cx, e, Some(&ret)),
        };
        if implicit && (matches!(t, Ty::Void) || self.diverging.contains(&e.id)) {
            return false;
        }
        self.check_void_value(e, &t);
        let leaves = verdict_leaves(e);
        let mut ok = true;
        for x in &leaves {
            ok &= self.check_verdict_type(cx, x);
        }
        if ok && self.coerce(e, &t, &ret, Code::E0301) {
            for x in &leaves {
                self.check_verdict_range(cx, x, "this program returns");
            }
        }
        if let Some((local, at)) = local_address(cx, e) {
            let details = format!("this returns the address of `{local}`, a local of this function, which no longer exists once it returns");
            let fix = "return the value itself, or keep it in a map or global";
            if at == e.span {
                self.error_with_note(Code::E0607, e.span, details, fix);
            } else {
                self.error_because(
                    Code::E0607,
                    e.span,
                    details,
                    at,
                    format!("the address is taken here; {fix}"),
                );
            }
        }
        if let ExprKind::Ident(n) = &e.kind {
            if cx.lookup(n).is_some_and(|l| l.record_of.is_some()) && cx.is_kernel() {
                self.error(
                    Code::E0608,
                    e.span,
                    "a ring-buffer record cannot leave the function that reserved it",
                );
            }
        }
        true
    }

    /// §9.2: a value a program returns must be of its kind's verdict type (an XDP constant is not
    /// a tc verdict). Returns false after reporting E0301 with the equivalent constant.
    pub(in crate::sema::stmt) fn check_verdict_type(&mut self, cx: &FnCtx, e: &Expr) -> bool {
        let FnKind::Program { kind, .. } = &cx.kind else {
            return true;
        };
        let kind = *kind;
        let own = verdict::verdicts(kind, None).enum_name;
        if let Ty::Enum(id) = &self.expr_types[e.id.0 as usize] {
            let en = self.enums[id.0 as usize].name.clone();
            if verdict::VERDICT_ENUMS.contains(&en.as_str()) && own != Some(en.as_str()) {
                let what = match &e.kind {
                    ExprKind::Ident(n) => format!("`{n}`"),
                    _ => "this value".to_string(),
                };
                let own_ty = match own {
                    Some("xdp_action") => "an `xdp_action`",
                    Some(_) => "a `tc_action` (or an `i32`)",
                    None => "an `i32`",
                };
                let details = format!(
                    "{what} is {} (`{en}`); a `@{}` program returns {own_ty}",
                    verdict::enum_kind(&en),
                    attr_name(kind)
                );
                let hint = match &e.kind {
                    ExprKind::Ident(n) => verdict::equivalent(n, kind)
                        .map(|eq| format!("in {} program use `{eq}`", kind_article(kind))),
                    _ => None,
                };
                match hint {
                    Some(h) => self.error_with_note(Code::E0301, e.span, details, h),
                    None => self.error(Code::E0301, e.span, details),
                }
                return false;
            }
        }
        true
    }

    /// E0310 for a constant verdict outside the range the kernel accepts from this program kind.
    pub(in crate::sema::stmt) fn check_verdict_range(&mut self, cx: &FnCtx, e: &Expr, what: &str) {
        let FnKind::Program { kind, arg } = &cx.kind else {
            return;
        };
        let v = verdict::verdicts(*kind, arg.as_deref());
        let (Some((lo, hi)), Some(x)) = (v.range, self.const_of(e).and_then(ConstValue::as_int))
        else {
            return;
        };
        if (lo..=hi).contains(&x) {
            return;
        }
        let prog = match arg {
            Some(a) if *kind != ProgKind::Xdp => format!("`@{}(\"{a}\")`", attr_name(*kind)),
            _ => format!("`@{}`", attr_name(*kind)),
        };
        self.error(
            Code::E0310,
            e.span,
            format!(
                "{what} {x}, outside [{lo}, {hi}]: a {prog} program returns {}",
                v.meaning
            ),
        );
    }

    pub(in crate::sema::stmt) fn delete_stmt(&mut self, cx: &mut FnCtx, e: &Expr, span: Span) {
        if let Some(mi) = self.map_entry_of(cx, e) {
            self.expr(cx, e, None);
            Self::invalidate_bindings(cx, mi, span);
            return;
        }
        let t = self.expr(cx, e, None);
        if !matches!(t, Ty::Ptr(_) | Ty::Error | Ty::Null) {
            self.error(
                Code::E0302,
                e.span,
                format!(
                    "`delete` takes a map entry `m[k]` or a pointer from `new`, found `{}`",
                    self.show(&t)
                ),
            );
        }
        // A kernel object is released once: any later use (a second delete included) is E0612.
        if let ExprKind::Ident(n) = &e.kind {
            if let Some(l) = cx.lookup_mut(n).filter(|l| l.owned_object) {
                l.released = true;
            }
        }
    }

    /// A block used as a match arm: its value is its last expression statement (§7.6), and
    /// whether its end is reachable (false when every path returns, throws, breaks or continues).
    /// A block arm of a match (`tail`: of a `return match`, whose arms' trailing program calls
    /// are tail calls, §9.5): its type and whether its end is reached.
    pub(in crate::sema) fn arm_block(
        &mut self,
        cx: &mut FnCtx,
        b: &Block,
        tail: bool,
    ) -> (Ty, bool) {
        cx.push_scope();
        let n = b.stmts.len();
        let mut ty = Ty::Void;
        let mut reachable = true;
        for (i, s) in b.stmts.iter().enumerate() {
            if i + 1 == n {
                ty = match &s.kind {
                    StmtKind::Expr(
                        e @ Expr {
                            kind: ExprKind::Call { callee, args },
                            ..
                        },
                    ) if tail => {
                        let t = self.call(cx, e, callee, args, true);
                        self.expr_types[e.id.0 as usize] = t.clone();
                        t
                    }
                    StmtKind::Expr(e) => {
                        let t = self.expr(cx, e, None);
                        reachable &= !self.diverging.contains(&e.id);
                        t
                    }
                    StmtKind::Return(_) | StmtKind::Throw(_) | StmtKind::If { .. } => {
                        reachable &= self.stmt(cx, s);
                        Ty::Void
                    }
                    _ => {
                        reachable &= self.stmt(cx, s);
                        self.error(
                            Code::E0404,
                            s.span,
                            "a block arm must end with an expression, `return` or `throw`",
                        );
                        Ty::Error
                    }
                };
            } else {
                reachable &= self.stmt(cx, s);
            }
        }
        if n == 0 {
            self.error(Code::E0404, b.span, "an empty block arm has no value");
            ty = Ty::Error;
        }
        cx.pop_scope();
        (ty, reachable)
    }
}
