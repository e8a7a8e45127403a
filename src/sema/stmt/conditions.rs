//! Conditions and the facts a branch learns from them.

use super::*;

impl<'a> Checker<'a, '_> {
    pub(in crate::sema) fn check_condition(&mut self, cond: &Expr, t: &Ty) {
        let ok = matches!(
            t,
            Ty::Bool
                | Ty::Int(_)
                | Ty::Char
                | Ty::Enum(_)
                | Ty::Ptr(_)
                | Ty::Str(_)
                | Ty::Error
                | Ty::Null
        );
        if !ok {
            self.error(
                Code::E0316,
                cond.span,
                format!(
                    "a condition must be bool, an integer, a pointer or a string, found `{}`",
                    self.show(t)
                ),
            );
        }
    }

    pub(in crate::sema) fn cond_facts(&self, cx: &FnCtx, cond: &Expr) -> CondFacts {
        let mut f = CondFacts::default();
        let name_of = |e: &Expr| match &e.kind {
            ExprKind::Ident(n) if cx.lookup(n).is_some() => Some(n.clone()),
            _ => None,
        };
        match &cond.kind {
            ExprKind::Ident(n) if cx.lookup(n).is_some() => f.when_true.push(n.clone()),
            ExprKind::Binary(op @ (BinOp::Ne | BinOp::Eq), l, r)
                if matches!(l.kind, ExprKind::Null) || matches!(r.kind, ExprKind::Null) =>
            {
                let n = if matches!(r.kind, ExprKind::Null) {
                    name_of(l)
                } else if matches!(l.kind, ExprKind::Null) {
                    name_of(r)
                } else {
                    None
                };
                if let Some(n) = n {
                    if *op == BinOp::Ne {
                        f.when_true.push(n);
                    } else {
                        f.when_false.push(n);
                    }
                }
            }
            // A field of an absent entry reads zero (§11.3): a test zero fails proves presence.
            ExprKind::Binary(
                op @ (BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge),
                l,
                r,
            ) => {
                let read_and_constant = match (entry_field_root(cx, l), entry_field_root(cx, r)) {
                    (Some(n), None) => self.int_const(r).map(|k| (n, 0, k)),
                    (None, Some(n)) => self.int_const(l).map(|k| (n, k, 0)),
                    _ => None,
                };
                if let Some((n, lhs, rhs)) = read_and_constant {
                    let zero_passes = match op {
                        BinOp::Eq => lhs == rhs,
                        BinOp::Ne => lhs != rhs,
                        BinOp::Lt => lhs < rhs,
                        BinOp::Le => lhs <= rhs,
                        BinOp::Gt => lhs > rhs,
                        _ => lhs >= rhs,
                    };
                    if zero_passes {
                        f.when_false.push(n);
                    } else {
                        f.when_true.push(n);
                    }
                }
            }
            ExprKind::Field(..) => f.when_true.extend(entry_field_root(cx, cond)),
            ExprKind::Binary(BinOp::And, l, r) => {
                let (a, b) = (self.cond_facts(cx, l), self.cond_facts(cx, r));
                f.when_true.extend(a.when_true);
                f.when_true.extend(b.when_true);
            }
            ExprKind::Binary(BinOp::Or, l, r) => {
                let (a, b) = (self.cond_facts(cx, l), self.cond_facts(cx, r));
                f.when_false.extend(a.when_false);
                f.when_false.extend(b.when_false);
            }
            ExprKind::Unary(UnOp::Not, inner) => {
                let i = self.cond_facts(cx, inner);
                f.when_true = i.when_false;
                f.when_false = i.when_true;
            }
            _ => {}
        }
        f
    }

    fn int_const(&self, e: &Expr) -> Option<i128> {
        self.const_of(e).and_then(|c| c.as_int())
    }

    /// Marks locals non-null; returns what to restore.
    pub(in crate::sema) fn apply_facts(
        &mut self,
        cx: &mut FnCtx,
        names: &[String],
    ) -> Vec<(String, bool)> {
        let mut saved = Vec::new();
        for n in names {
            if let Some(l) = cx.lookup_mut(n) {
                saved.push((n.clone(), l.non_null));
                l.non_null = true;
            }
        }
        saved
    }

    pub(in crate::sema) fn restore_facts(&mut self, cx: &mut FnCtx, saved: Vec<(String, bool)>) {
        for (n, v) in saved.into_iter().rev() {
            if let Some(l) = cx.lookup_mut(&n) {
                l.non_null = v;
            }
        }
    }

    /// Release state of every local in scope, so a branch that exits can be undone (§11.5).
    pub(in crate::sema::stmt) fn released_snapshot(cx: &FnCtx) -> Vec<bool> {
        cx.scopes
            .iter()
            .flatten()
            .map(|(_, l)| l.released)
            .collect()
    }

    pub(in crate::sema::stmt) fn restore_released(cx: &mut FnCtx, snap: &[bool]) {
        for ((_, l), r) in cx.scopes.iter_mut().flatten().zip(snap) {
            l.released = *r;
        }
    }

    pub(in crate::sema::stmt) fn if_stmt(
        &mut self,
        cx: &mut FnCtx,
        cond: &IfCond,
        then: &Block,
        els: Option<&ElseBranch>,
    ) -> bool {
        let (then_reach, else_reach) = self.if_branches(cx, cond, then, els);
        then_reach || else_reach
    }

    /// Checks both branches; returns whether the end of each is reachable.
    pub(in crate::sema::stmt) fn if_branches(
        &mut self,
        cx: &mut FnCtx,
        cond: &IfCond,
        then: &Block,
        els: Option<&ElseBranch>,
    ) -> (bool, bool) {
        let facts;
        let then_reach;
        let before = Self::released_snapshot(cx);
        let mut join = InvalidationJoin::new(cx);
        match cond {
            IfCond::Expr(c) => {
                let t = self.expr(cx, c, None);
                if !self.is_presence_operand(cx, c) {
                    self.check_condition(c, &t);
                }
                facts = self.cond_facts(cx, c);
                let saved = self.apply_facts(cx, &facts.when_true);
                then_reach = self.scoped_block(cx, then);
                self.restore_facts(cx, saved);
            }
            IfCond::Let { name, init } => {
                cx.binding_name = Some(name.name.clone());
                let t = self.expr(cx, init, None);
                cx.binding_name = None;
                let presence = self.is_presence_operand(cx, init);
                if !presence && !matches!(t, Ty::Ptr(_) | Ty::Error) {
                    self.error(
                        Code::E0403,
                        init.span,
                        format!(
                            "`if (var {} = …)` needs a map access, a pointer or a pop, found `{}`",
                            name.name,
                            self.show(&t)
                        ),
                    );
                }
                cx.push_scope();
                let mut l = Local::new(t);
                self.init_flags(cx, &mut l, init);
                l.non_null = true;
                self.declare_local(cx, name, l);
                then_reach = self.scoped_block(cx, then);
                cx.pop_scope();
                facts = CondFacts::default();
            }
        }
        join.end(cx, then_reach);
        join.begin(cx);
        // The else branch starts from what held before the if; after it, a record or object is
        // released when a branch that reaches the end released it.
        let after_then = Self::released_snapshot(cx);
        Self::restore_released(cx, &before);
        let else_reach = match els {
            None => true,
            Some(ElseBranch::Block(b)) => {
                let saved = self.apply_facts(cx, &facts.when_false);
                let r = self.scoped_block(cx, b);
                self.restore_facts(cx, saved);
                r
            }
            Some(ElseBranch::If(s)) => {
                let saved = self.apply_facts(cx, &facts.when_false);
                let r = self.stmt(cx, s);
                self.restore_facts(cx, saved);
                r
            }
        };
        join.end(cx, else_reach);
        join.finish(cx);
        // An early exit on one branch proves the other branch's facts for what follows.
        if !then_reach {
            self.apply_facts(cx, &facts.when_false);
        }
        if !else_reach && els.is_some() {
            self.apply_facts(cx, &facts.when_true);
        }
        let after_else = Self::released_snapshot(cx);
        let merged: Vec<bool> = after_then
            .iter()
            .zip(&after_else)
            .map(|(&t, &e)| {
                (then_reach && t) || (else_reach && e) || (!then_reach && !else_reach && (t || e))
            })
            .collect();
        Self::restore_released(cx, &merged);
        (then_reach, else_reach)
    }
}

/// The entry binding (`var v = m[k]`) a field read `v.f`, `v.f.g` … reads from.
fn entry_field_root(cx: &FnCtx, e: &Expr) -> Option<String> {
    if !matches!(e.kind, ExprKind::Field(..)) {
        return None;
    }
    match &field_path_root(e).kind {
        ExprKind::Ident(n) if cx.lookup(n).is_some_and(|l| l.entry_of.is_some()) => Some(n.clone()),
        _ => None,
    }
}
