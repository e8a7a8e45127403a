//! struct_ops `impl` blocks (§16.1).

use super::*;

impl<'a> Checker<'a, '_> {
    pub(in crate::sema::decls) fn check_impl(&mut self, item: &'a Item, imp: &'a ImplDecl) {
        let mut seen = false;
        let mut target: Option<(String, Span)> = None;
        for a in &item.attrs {
            if a.name.name != "struct_ops" {
                self.error(
                    Code::E0201,
                    a.span,
                    format!(
                        "an impl block takes `@struct_ops(\"kernel_struct\")`, not `@{}`",
                        a.name.name
                    ),
                );
                continue;
            }
            if seen {
                self.error(Code::E0201, a.span, "an impl block takes one `@struct_ops`");
                continue;
            }
            seen = true;
            match single_str_arg(a) {
                Some(k) if !k.is_empty() => target = Some((k, a.span)),
                _ => self.error(Code::E0202, a.span, "`@struct_ops` needs the kernel struct's name, e.g. @struct_ops(\"tcp_congestion_ops\")"),
            }
        }
        if !seen && item.attrs.is_empty() {
            self.error(
                Code::E0201,
                imp.name.span,
                "an impl block needs `@struct_ops(\"kernel_struct\")`",
            );
        }
        // Methods and static fields share the impl's namespace.
        let mut names: Vec<&str> = Vec::new();
        let members = imp
            .methods
            .iter()
            .filter_map(|m| m.kind.declared_name())
            .chain(imp.fields.iter().map(|f| &f.name));
        for n in members {
            if names.contains(&n.name.as_str()) {
                self.error(
                    Code::E0110,
                    n.span,
                    format!("`{}` is defined twice in impl `{}`", n.name, imp.name.name),
                );
            }
            names.push(&n.name);
        }
        let Some((k, attr_span)) = target else { return };
        let Some(btf) = self.btf.get() else {
            self.warning(
                Code::W0007,
                attr_span,
                format!("struct_ops type `{k}` cannot be checked"),
            );
            return;
        };
        if !btf.is_struct_ops_type(&k) {
            let why = if btf.has_struct(&k) {
                "is not a registrable struct_ops type"
            } else {
                "is not in kernel BTF"
            };
            self.error(Code::E0701, attr_span, format!("`{k}` {why}"));
            return;
        }
        let kmembers = btf.struct_ops_members(&k).unwrap_or_default();
        for m in &imp.methods {
            let ItemKind::Func(f) = &m.kind else { continue };
            let Some(fid) = self.funcs.iter().position(|x| std::ptr::eq(x.decl, f)) else {
                continue;
            };
            let res = match kmembers
                .iter()
                .find(|x| x.name == f.name.name)
                .map(|x| &x.kind)
            {
                None => Err(format!("`{k}` has no member `{}`", f.name.name)),
                Some(KOpsKind::Data(t)) => Err(format!(
                    "`{k}.{}` is data (`{t}`), not a function",
                    f.name.name
                )),
                Some(KOpsKind::Func(sig)) => self.ops_method_matches(fid, &k, sig),
            };
            if let Err(msg) = res {
                self.error(Code::E0702, f.name.span, msg);
            }
        }
        let implemented: Vec<&str> = imp
            .methods
            .iter()
            .filter_map(|m| m.kind.declared_name())
            .map(|n| n.name.as_str())
            .collect();
        for group in required_methods(&k) {
            if !group.iter().any(|m| implemented.contains(m)) {
                let what = group
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(" or ");
                self.error(Code::E0702, imp.name.span, format!("impl `{}` must implement {what}: the kernel refuses to register a `{k}` without it", imp.name.name));
            }
        }
        for fld in &imp.fields {
            match kmembers
                .iter()
                .find(|x| x.name == fld.name.name)
                .map(|x| &x.kind)
            {
                None => self.error(
                    Code::E0702,
                    fld.name.span,
                    format!("`{k}` has no member `{}`", fld.name.name),
                ),
                Some(KOpsKind::Func(_)) => self.error(
                    Code::E0703,
                    fld.name.span,
                    format!(
                        "`{k}.{}` is a function member; implement it as a method",
                        fld.name.name
                    ),
                ),
                Some(KOpsKind::Data(t)) => self.check_ops_field(&k, fld, t),
            }
        }
    }

    /// Same parameter count, parameters and result matching per §16.1.
    pub(in crate::sema::decls) fn ops_method_matches(
        &self,
        fid: usize,
        k: &str,
        sig: &KFuncSig,
    ) -> Result<(), String> {
        let f = &self.funcs[fid];
        let what = format!("{k}.{}", f.name);
        if f.params.len() != sig.params.len() {
            return Err(format!(
                "`{what}` takes {} parameter(s), {} declared",
                sig.params.len(),
                f.params.len()
            ));
        }
        self.kernel_prefix(&what, &f.params, &sig.params)?;
        let ok = match (&sig.ret, &f.ret) {
            (_, Ty::Error) => true,
            (KType::Void, r) => *r == Ty::Void,
            (_, Ty::Void) => false,
            (kr, r) => self.matches_ktype(r, kr, true),
        };
        if !ok {
            let want = if sig.ret == KType::Void {
                "void".to_string()
            } else {
                sig.ret.to_string()
            };
            return Err(format!(
                "`{what}` returns `{want}` in the kernel, not `{}`",
                self.show(&f.ret)
            ));
        }
        Ok(())
    }

    /// Static fields are literals (E0703) of a kind the member can hold (E0301).
    pub(in crate::sema::decls) fn check_ops_field(&mut self, k: &str, fld: &ImplField, t: &KType) {
        let v = &fld.value;
        let fits = match &v.kind {
            ExprKind::Str(s) => match t {
                KType::Array { elem, len } if matches!(**elem, KType::Int { size: 1, .. }) => {
                    if s.len() >= *len as usize {
                        self.error(
                            Code::E0301,
                            v.span,
                            format!(
                                "`{k}.{}` holds at most {} bytes",
                                fld.name.name,
                                len.saturating_sub(1)
                            ),
                        );
                        return;
                    }
                    true
                }
                _ => false,
            },
            ExprKind::Int(_) | ExprKind::Char(_) => {
                matches!(t, KType::Int { .. } | KType::Enum { .. })
            }
            ExprKind::Unary(UnOp::Neg, inner) if matches!(inner.kind, ExprKind::Int(_)) => {
                matches!(t, KType::Int { .. } | KType::Enum { .. })
            }
            ExprKind::Bool(_) => matches!(t, KType::Int { .. }),
            ExprKind::Null => matches!(t, KType::Ptr(_) | KType::FuncPtr),
            _ => {
                self.error(
                    Code::E0703,
                    fld.name.span,
                    format!("the value of `{}` must be a literal", fld.name.name),
                );
                return;
            }
        };
        if !fits && *t != KType::Unknown {
            self.error(
                Code::E0301,
                v.span,
                format!(
                    "`{k}.{}` is `{t}`; this literal does not fit it",
                    fld.name.name
                ),
            );
        }
    }

    /// `@struct_ops("k") struct k { … }` views: field names must exist in BTF (E0702).
    pub(in crate::sema::decls) fn check_struct_ops_struct(&mut self, item: &Item, s: &StructDecl) {
        let mut target: Option<(String, Span)> = None;
        for a in &item.attrs {
            if a.name.name != "struct_ops" {
                self.error(
                    Code::E0201,
                    a.span,
                    format!("a struct takes only `@struct_ops`, not `@{}`", a.name.name),
                );
            } else if target.is_some() {
                self.error(Code::E0201, a.span, "a struct takes one `@struct_ops`");
            } else {
                match single_str_arg(a) {
                    Some(k) if !k.is_empty() => target = Some((k, a.span)),
                    _ => {
                        self.error(
                            Code::E0202,
                            a.span,
                            "`@struct_ops` needs the kernel struct's name",
                        );
                        return;
                    }
                }
            }
        }
        let Some((k, attr_span)) = target else { return };
        let Some(btf) = self.btf.get() else {
            self.warning(
                Code::W0007,
                attr_span,
                format!("struct_ops type `{k}` cannot be checked"),
            );
            return;
        };
        let Some(members) = btf
            .struct_ops_members(&k)
            .filter(|_| btf.is_struct_ops_type(&k))
        else {
            self.error(
                Code::E0701,
                attr_span,
                format!("`{k}` is not a struct_ops type in kernel BTF"),
            );
            return;
        };
        for f in &s.fields {
            if !members.iter().any(|m| m.name == f.name.name) {
                self.error(
                    Code::E0702,
                    f.name.span,
                    format!("`{k}` has no member `{}`", f.name.name),
                );
            }
        }
    }
}
