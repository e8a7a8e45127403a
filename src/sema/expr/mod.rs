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

mod access;
mod aggregates;
mod names;
mod operators;

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
}
