//! Calls of the builtins (§10).

use super::*;

impl<'a> Checker<'a, '_> {
    pub(in crate::sema::calls) fn require_world(
        &mut self,
        cx: &FnCtx,
        span: Span,
        name: &str,
        user_only: bool,
    ) {
        if user_only && cx.target() != Target::Host {
            self.error(
                Code::E0501,
                span,
                format!(
                    "`{name}` is a userspace builtin and cannot be used in kernel or module code"
                ),
            );
        }
    }

    pub(in crate::sema::calls) fn arity(
        &mut self,
        e: &Expr,
        args: &[Expr],
        min: usize,
        max: usize,
    ) -> bool {
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            self.error(
                Code::E0308,
                e.span,
                format!(
                    "expected {want} argument{}, found {}",
                    if max == 1 { "" } else { "s" },
                    args.len()
                ),
            );
            return false;
        }
        true
    }

    /// Returns `None` when `name` is not a builtin.
    pub(in crate::sema::calls) fn call_builtin(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        name: &str,
        span: Span,
        args: &[Expr],
    ) -> Option<Ty> {
        let user_only = builtins::USERSPACE_BUILTINS.contains(&name);
        if !user_only && !builtins::UNIVERSAL_BUILTINS.contains(&name) {
            return None;
        }
        self.require_world(cx, span, name, user_only);
        Some(match name {
            "print" => self.print_call(cx, e, args),
            "ntohs" | "htons" => self.byte_order(cx, e, args, Ty::Int(IntTy::U16)),
            "ntohl" | "htonl" => self.byte_order(cx, e, args, U32),
            "ntohll" | "htonll" => self.byte_order(cx, e, args, U64),
            "assert" => {
                if self.arity(e, args, 1, 2) {
                    let t = self.expr(cx, &args[0], None);
                    if !matches!(t, Ty::Bool | Ty::Error) {
                        self.error(
                            Code::E0303,
                            args[0].span,
                            format!("`assert` needs a bool condition, found `{}`", self.show(&t)),
                        );
                    }
                    if let Some(m) = args.get(1) {
                        let mt = self.expr(cx, m, None);
                        if !matches!(mt, Ty::Str(_) | Ty::Error) {
                            self.error(
                                Code::E0309,
                                m.span,
                                "the assertion message must be a string",
                            );
                        }
                    }
                } else {
                    self.check_args_untyped(cx, args);
                }
                Ty::Void
            }
            "load" => {
                if self.arity(e, args, 1, 1)
                    && self.program_arg(&args[0]).is_none()
                    && !self.names_unknown_kind(&args[0])
                {
                    self.error(
                        Code::E0309,
                        args[0].span,
                        "`load` takes a program function (a function with a program attribute)",
                    );
                }
                Ty::ProgramHandle
            }
            "attach" => {
                if self.arity(e, args, 3, 3) {
                    let h = self.expr(cx, &args[0], None);
                    if !matches!(h, Ty::ProgramHandle | Ty::Error) {
                        self.error(
                            Code::E0309,
                            args[0].span,
                            format!(
                                "`attach` needs the handle returned by `load`, found `{}`",
                                self.show(&h)
                            ),
                        );
                    }
                    let target = self.expr(cx, &args[1], None);
                    let flags = self.expr(cx, &args[2], Some(&U32));
                    self.coerce(&args[2], &flags, &U32, Code::E0309);
                    let perf = matches!(&target, Ty::Struct(s) if self.structs[s.0 as usize].name == "perf_options");
                    if perf {
                        return Some(Ty::PerfAttachment);
                    }
                    if !matches!(target, Ty::Str(_) | Ty::Error) {
                        self.error(
                            Code::E0309,
                            args[1].span,
                            format!(
                                "the attach target is a string or `perf_options`, found `{}`",
                                self.show(&target)
                            ),
                        );
                    }
                } else {
                    self.check_args_untyped(cx, args);
                }
                I32
            }
            "detach" => {
                if self.arity(e, args, 1, 1) {
                    let h = self.expr(cx, &args[0], None);
                    if !matches!(h, Ty::ProgramHandle | Ty::PerfAttachment | Ty::Error) {
                        self.error(
                            Code::E0309,
                            args[0].span,
                            "`detach` takes a program handle or a perf attachment",
                        );
                    }
                }
                Ty::Void
            }
            "read" => {
                if self.arity(e, args, 1, 1) {
                    let h = self.expr(cx, &args[0], None);
                    if !matches!(h, Ty::PerfAttachment | Ty::Error) {
                        self.error(
                            Code::E0309,
                            args[0].span,
                            "`read` takes the attachment returned by a perf-event `attach`",
                        );
                    }
                }
                I64
            }
            "register" => {
                if self.arity(e, args, 1, 1) {
                    let is_impl = matches!(&args[0].kind, ExprKind::Ident(n) if matches!(self.symbols.get(n), Some(Symbol::Impl(_))));
                    if !is_impl {
                        self.error(
                            Code::E0704,
                            args[0].span,
                            "`register` takes a @struct_ops impl",
                        );
                    }
                }
                I32
            }
            "dispatch" => {
                if args.is_empty() {
                    self.error(
                        Code::E0308,
                        e.span,
                        "`dispatch` takes at least one ring buffer",
                    );
                }
                for a in args {
                    let ok = matches!(&a.kind, ExprKind::Ident(n) if matches!(self.symbols.get(n), Some(Symbol::Map(m)) if matches!(self.maps[*m].kind, MapKind::Ringbuf | MapKind::PerfEventArray)));
                    if !ok {
                        self.error(
                            Code::E0309,
                            a.span,
                            "`dispatch` takes ring buffers (or perf event arrays)",
                        );
                    }
                }
                I32
            }
            "daemon" => {
                self.arity(e, args, 0, 0);
                Ty::Void
            }
            "sleep" => {
                self.check_args(cx, e, &[U32], args);
                Ty::Void
            }
            "exec" => {
                // `exec(script)` replaces the process with the Python script (§15.7): it never
                // returns, like a `return`.
                if self.arity(e, args, 1, 1) {
                    let t = self.expr(cx, &args[0], None);
                    if !matches!(t, Ty::Str(_) | Ty::Error) {
                        self.error(
                            Code::E0309,
                            args[0].span,
                            format!(
                                "`exec` takes the path of a Python script (a string), found `{}`",
                                self.show(&t)
                            ),
                        );
                    }
                } else {
                    self.check_args_untyped(cx, args);
                }
                if cx.target() == Target::Host {
                    self.diverging.insert(e.id);
                }
                Ty::Void
            }
            "test_len" => {
                self.arity(e, args, 0, 0);
                U32
            }
            "test" => self.test_call(cx, e, span, args),
            _ => return None,
        })
    }

    /// The program function named by an argument, if it names one.
    /// Whether `a` names a function whose attribute is unknown: its kind is reported there.
    fn names_unknown_kind(&self, a: &Expr) -> bool {
        match &a.kind {
            ExprKind::Ident(n) => match self.symbols.get(n) {
                Some(Symbol::Func(id)) => self.has_unknown_attribute(*id),
                _ => false,
            },
            _ => false,
        }
    }

    pub(in crate::sema::calls) fn program_arg(&self, a: &Expr) -> Option<FuncId> {
        match &a.kind {
            ExprKind::Ident(n) => match self.symbols.get(n) {
                Some(Symbol::Func(id))
                    if matches!(self.funcs[id.0 as usize].kind, FnKind::Program { .. }) =>
                {
                    Some(*id)
                }
                _ => None,
            },
            _ => None,
        }
    }

    pub(in crate::sema::calls) fn byte_order(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        args: &[Expr],
        t: Ty,
    ) -> Ty {
        self.check_args(cx, e, std::slice::from_ref(&t), args);
        t
    }

    pub(in crate::sema::calls) fn test_call(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        span: Span,
        args: &[Expr],
    ) -> Ty {
        if !matches!(cx.kind, FnKind::Test | FnKind::User) {
            self.error(
                Code::E0506,
                span,
                "`test()` runs programs from @test functions (and helpers only they call)",
            );
        }
        if !self.arity(e, args, 2, 3) {
            self.check_args_untyped(cx, args);
            return U32;
        }
        match self.program_arg(&args[0]) {
            Some(id) => {
                let k = self.funcs[id.0 as usize].kind.program_kind();
                if !k.is_some_and(|k| k.test_runnable()) {
                    self.error(
                        Code::E0507,
                        args[0].span,
                        "only @xdp, @tc and @cgroup_skb programs can be run by `test()`",
                    );
                }
            }
            None => self.error(
                Code::E0507,
                args[0].span,
                "`test()` takes a program function",
            ),
        }
        let it = self.expr(cx, &args[1], None);
        if let Ty::Struct(id) = &it {
            if self.structs[id.0 as usize].is_test_context() {
                // A zero-filled packet of `packet_size` bytes, checked when the test runs.
                if args.len() == 3 {
                    self.error(
                        Code::E0507,
                        args[2].span,
                        "a test context gives the packet's length in `packet_size`; `test()` takes no length with it",
                    );
                }
                return U32;
            }
        }
        let size = match &it {
            Ty::Array(el, n) if matches!(**el, Ty::Int(IntTy::U8)) => Some(*n as u64),
            Ty::Str(n) => {
                // A string literal's content is its bytes without the NUL.
                Some(*n as u64 - 1)
            }
            Ty::Struct(_) => self.size_of(&it),
            Ty::Error => None,
            _ => {
                self.error(
                    Code::E0507,
                    args[1].span,
                    format!(
                        "a test packet is a `u8[N]`, a string or a struct, found `{}`",
                        self.show(&it)
                    ),
                );
                None
            }
        };
        let mut len = size;
        if let Some(l) = args.get(2) {
            let lt = self.expr(cx, l, Some(&U32));
            self.coerce(l, &lt, &U32, Code::E0309);
            if let Some(v) = self.const_of(l).and_then(ConstValue::as_int) {
                len = Some(v.max(0) as u64);
            } else {
                len = None;
            }
        }
        if let Some(n) = len {
            if !(14..=3500).contains(&n) {
                let at = args.get(2).unwrap_or(&args[1]).span;
                self.error(
                    Code::E0507,
                    at,
                    format!("a test packet must be 14 to 3500 bytes, this one is {n}"),
                );
            }
        }
        U32
    }

    /// `print` (§15.5): W0001 when conversions and arguments disagree.
    pub(in crate::sema::calls) fn print_call(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        args: &[Expr],
    ) -> Ty {
        let Some(fmt) = args.first() else {
            self.error(Code::E0308, e.span, "`print` needs a format string");
            return I32;
        };
        let ExprKind::Str(bytes) = &fmt.kind else {
            self.expr(cx, fmt, None);
            self.error(
                Code::E0309,
                fmt.span,
                "the format of `print` must be a string literal",
            );
            self.check_args_untyped(cx, &args[1..]);
            return I32;
        };
        self.expr(cx, fmt, None);
        if cx.is_kernel() && args.len() - 1 > 12 {
            self.error(
                Code::E0308,
                e.span,
                "kernel `print` takes at most 12 arguments",
            );
        }
        let convs = format_conversions(bytes);
        let mut mismatch = convs.len() != args.len() - 1;
        for (i, a) in args[1..].iter().enumerate() {
            let t = self.expr(cx, a, None);
            if let Some(c) = convs.get(i) {
                let fits = match c {
                    b'd' | b'i' | b'u' | b'x' | b'X' => {
                        self.int_like(&t).is_some() || matches!(t, Ty::Bool | Ty::Char)
                    }
                    b'c' => matches!(t, Ty::Char | Ty::Int(_)),
                    b's' => matches!(t, Ty::Str(_) | Ty::Array(..)),
                    b'p' => matches!(t, Ty::Ptr(_) | Ty::Null),
                    _ => true,
                };
                mismatch |= !fits && !t.is_error();
            }
        }
        if mismatch {
            self.warning(
                Code::W0001,
                e.span,
                format!(
                    "the format has {} conversion{} for {} argument{}",
                    convs.len(),
                    if convs.len() == 1 { "" } else { "s" },
                    args.len() - 1,
                    if args.len() == 2 { "" } else { "s" }
                ),
            );
        }
        I32
    }
}
