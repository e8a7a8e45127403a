//! Escapes: records (E0608), kernel objects (E0612) and packet pointers (E0611) leaving their scope.

use super::*;

impl<'a> Checker<'a, '_> {
    pub(in crate::sema) fn release_record(&mut self, cx: &mut FnCtx, arg: &Expr, mi: usize) {
        let ExprKind::Ident(n) = &arg.kind else {
            return;
        };
        let Some(l) = cx.lookup_mut(n) else { return };
        match l.record_of {
            Some(m) if m != mi => {
                self.error(
                    Code::E0608,
                    arg.span,
                    format!("`{n}` was reserved from a different ring buffer"),
                );
            }
            Some(_) => l.released = true,
            None => {}
        }
    }

    pub(in crate::sema) fn check_escape_into_call(&mut self, cx: &FnCtx, arg: &Expr) {
        if !cx.is_kernel() {
            return;
        }
        if let ExprKind::Ident(n) = &arg.kind {
            if let Some(l) = cx.lookup(n) {
                if l.record_of.is_some() {
                    self.error(
                        Code::E0608,
                        arg.span,
                        format!(
                            "the ring-buffer record `{n}` cannot be passed to another function"
                        ),
                    );
                } else if l.owned_object {
                    self.error(
                        Code::E0612,
                        arg.span,
                        format!("the object `{n}` from `new` cannot be passed to another function"),
                    );
                }
            }
        }
    }

    /// Stores into maps, globals and records must not take records, kernel objects or packet pointers.
    pub(in crate::sema::stmt) fn check_store_escape(
        &mut self,
        cx: &FnCtx,
        target: &Expr,
        value: &Expr,
    ) {
        if !cx.is_kernel() {
            return;
        }
        let into_shared = match &target.kind {
            ExprKind::Index(base, _) | ExprKind::Field(base, _) => {
                self.map_entry_of(cx, target).is_some() || self.is_shared_root(cx, base)
            }
            ExprKind::Ident(n) => cx.lookup(n).is_none(),
            ExprKind::Arrow(base, _) => {
                matches!(&base.kind, ExprKind::Ident(n) if cx.lookup(n).is_some_and(|l| l.record_of.is_some() || l.entry_of.is_some()))
            }
            _ => false,
        };
        let local_target = matches!(&target.kind, ExprKind::Ident(n) if cx.lookup(n).is_some());
        if self.is_packet(cx, value) && into_shared {
            self.error(
                Code::E0611,
                target.span,
                "packet pointers cannot be stored in maps, globals or records",
            );
        }
        if let ExprKind::Ident(n) = &value.kind {
            if let Some(l) = cx.lookup(n) {
                if l.owned_object && (into_shared || !local_target) {
                    self.error(Code::E0612, target.span, format!("the object `{n}` from `new` cannot be stored away (kptr ownership transfer is not supported)"));
                }
                if l.record_of.is_some() && !local_target {
                    self.error(
                        Code::E0608,
                        target.span,
                        format!("the ring-buffer record `{n}` cannot be stored away"),
                    );
                }
            }
        }
    }

    pub(in crate::sema::stmt) fn is_shared_root(&self, cx: &FnCtx, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Ident(n) => cx.lookup(n).is_none_or(|l| l.entry_of.is_some()),
            ExprKind::Index(b, _) | ExprKind::Field(b, _) => {
                self.map_entry_of(cx, e).is_some() || self.is_shared_root(cx, b)
            }
            _ => false,
        }
    }
}
