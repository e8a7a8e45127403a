//! Indexing and field access.

use super::*;

impl<'a> Checker<'a, '_> {
    pub(in crate::sema::expr) fn index(
        &mut self,
        cx: &mut FnCtx,
        base: &Expr,
        idx: &Expr,
        span: Span,
    ) -> Ty {
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

    pub(in crate::sema::expr) fn map_index(
        &mut self,
        cx: &mut FnCtx,
        mi: usize,
        idx: &Expr,
        _span: Span,
    ) -> Ty {
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

    pub(in crate::sema::expr) fn field(&mut self, cx: &mut FnCtx, base: &Expr, f: &Ident) -> Ty {
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
                Some(t) => self.representable_field(*sid, f, t),
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

    /// A kernel member whose BTF type has no KernelScript form (a flexible array member) is
    /// reported where it is used, so no error type reaches the IR silently.
    pub(in crate::sema::expr) fn representable_field(
        &mut self,
        sid: StructId,
        f: &Ident,
        t: Ty,
    ) -> Ty {
        let unrepresentable = match &t {
            Ty::Error => true,
            Ty::Ptr(inner) | Ty::Array(inner, _) => inner.is_error(),
            _ => false,
        };
        if unrepresentable {
            let name = self.structs[sid.0 as usize].name.clone();
            self.error(
                Code::E0306,
                f.span,
                format!(
                    "kernel field `{name}.{}` has a type KernelScript cannot represent (a flexible array member or an unknown BTF kind)",
                    f.name
                ),
            );
        }
        t
    }

    pub(in crate::sema::expr) fn arrow(&mut self, cx: &mut FnCtx, base: &Expr, f: &Ident) -> Ty {
        let bt = self.expr(cx, base, None);
        match &bt {
            Ty::Ptr(inner) => match &**inner {
                Ty::Struct(sid) => {
                    self.check_deref(cx, base, base.span);
                    match self.struct_field(*sid, &f.name) {
                        Some(t) => self.representable_field(*sid, f, t),
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
