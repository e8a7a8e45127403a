//! Names: variables, constants, functions, enumerators.

use super::*;

impl<'a> Checker<'a, '_> {
    /// The type of a name and, for constants, its value. `as_callee`: the name is being called
    /// (functions are not function values then).
    pub(in crate::sema) fn ident_expr(
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
    pub(in crate::sema::expr) fn builtin_constant(
        &mut self,
        name: &str,
        span: Span,
    ) -> (Ty, Option<ConstValue>) {
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
}
