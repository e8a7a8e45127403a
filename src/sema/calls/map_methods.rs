//! Map methods (§11.2).

use super::*;

impl<'a> Checker<'a, '_> {
    pub(in crate::sema::calls) fn map_method(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        mi: usize,
        method: &Ident,
        args: &[Expr],
    ) -> Ty {
        let m = self.maps[mi].clone();
        let kernel = cx.is_kernel();
        let user = cx.target() == Target::Host;
        let wrong = |me: &mut Self, why: &str| {
            me.error(
                Code::E0610,
                method.span,
                format!("`{}.{}`: {why}", m.name, method.name),
            );
        };
        use MapKind::*;
        let ret = match (m.kind, method.name.as_str()) {
            (Ringbuf, "reserve") if kernel => {
                self.arity(e, args, 0, 0);
                Ty::ptr(m.value.clone())
            }
            (Ringbuf, "submit" | "discard") if kernel => {
                if self.arity(e, args, 1, 1) {
                    let t = self.expr(cx, &args[0], None);
                    self.coerce(&args[0], &t, &Ty::ptr(m.value.clone()), Code::E0309);
                    self.release_record(cx, &args[0], mi);
                }
                I32
            }
            (Ringbuf, "output") if kernel => {
                self.check_args(cx, e, std::slice::from_ref(&m.value), args);
                I32
            }
            (PerfEventArray, "output") if kernel => {
                if self.arity(e, args, 2, 2) {
                    self.expr(cx, &args[0], None);
                    let t = self.expr(cx, &args[1], Some(&m.value));
                    self.coerce(&args[1], &t, &m.value, Code::E0309);
                }
                I32
            }
            (Ringbuf | PerfEventArray, "on_event") if user => {
                if self.arity(e, args, 1, 1) {
                    let want = Ty::Fn(std::rc::Rc::new(FnSig {
                        params: vec![Ty::ptr(m.value.clone())],
                        ret: I32,
                    }));
                    let (t, _) = match &args[0].kind {
                        ExprKind::Ident(n) => self.ident_expr(cx, n, args[0].span, true),
                        _ => (self.expr(cx, &args[0], None), None),
                    };
                    self.coerce(&args[0], &t, &want, Code::E0309);
                }
                I32
            }
            (Ringbuf | PerfEventArray, "poll") if user => {
                self.check_args(cx, e, &[U32], args);
                I32
            }
            (Queue | Stack | BloomFilter, "push") => {
                self.check_args(cx, e, std::slice::from_ref(&m.value), args);
                I32
            }
            (Queue | Stack, "pop" | "peek") => {
                self.arity(e, args, 0, 0);
                m.value.clone()
            }
            (BloomFilter, "contains") => {
                self.check_args(cx, e, std::slice::from_ref(&m.value), args);
                Ty::Bool
            }
            (Devmap | Cpumap | Xskmap, "redirect") => {
                if !matches!(
                    cx.kind,
                    FnKind::Program {
                        kind: ProgKind::Xdp,
                        ..
                    }
                ) {
                    wrong(self, "`redirect` is available in XDP programs only");
                }
                self.check_args(cx, e, &[U32, U64], args);
                match self.enum_by_name.get("xdp_action") {
                    Some(id) => Ty::Enum(*id),
                    None => U32,
                }
            }
            (_, "reserve" | "submit" | "discard" | "output") if !kernel => {
                wrong(self, "this method is available in kernel code only");
                self.check_args_untyped(cx, args);
                Ty::Error
            }
            (_, "on_event" | "poll") if !user => {
                wrong(self, "this method is available in userspace only");
                self.check_args_untyped(cx, args);
                Ty::Error
            }
            _ => {
                wrong(
                    self,
                    &format!("no such method for a {:?} map", m.kind).to_lowercase(),
                );
                self.check_args_untyped(cx, args);
                Ty::Error
            }
        };
        if cx.target() == Target::Kmod {
            self.error(Code::E0501, method.span, "module code cannot use maps");
        }
        ret
    }
}
