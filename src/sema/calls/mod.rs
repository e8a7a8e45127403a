//! Call expressions: user functions, imported modules, externs and BPF helpers, builtins
//! (Appendix A) and map methods (§11.2), with the cross-target call rules of §9.4.

use super::body::FnCtx;
use super::builtins::{self, HelperTy};
use super::consteval::ConstValue;
use super::env::*;
use super::types::*;
use super::{Checker, Local};
use crate::diagnostics::{Code, Span};
use crate::syntax::ast::*;
use std::collections::HashMap;

mod builtin_calls;
mod map_methods;

impl<'a> Checker<'a, '_> {
    /// `tail`: the call is the value of a `return` in a program (a tail-call candidate, §9.5).
    pub(super) fn call(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        callee: &Expr,
        args: &[Expr],
        tail: bool,
    ) -> Ty {
        match &callee.kind {
            ExprKind::Ident(name) if cx.lookup(name).is_none() => {
                self.call_named(cx, e, name, callee.span, args, tail)
            }
            ExprKind::Field(recv, method) => {
                if let ExprKind::Ident(rname) = &recv.kind {
                    if cx.lookup(rname).is_none() {
                        match self.symbols.get(rname).cloned() {
                            Some(Symbol::Map(mi)) => {
                                return self.map_method(cx, e, mi, method, args)
                            }
                            Some(Symbol::Module(_)) => {
                                return self.module_call(cx, e, rname, method, args)
                            }
                            _ => {}
                        }
                    }
                }
                self.call_value(cx, e, callee, args)
            }
            _ => self.call_value(cx, e, callee, args),
        }
    }

    /// The C habit `bpf_map_lookup_elem(&m, &k)` (or `_update_elem`, `_delete_elem`) on a
    /// KernelScript map: one E0604 that shows the KernelScript form (§11.2), and the result typed
    /// as the helper's (a lookup yields `*V`), so the code after it does not cascade into more errors.
    fn map_helper_habit(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        name: &str,
        args: &[Expr],
    ) -> Option<Ty> {
        let (map, mi) = self.habit_map(cx, name, args)?;
        for a in &args[1..] {
            self.expr(cx, a, None);
        }
        let key = args
            .get(1)
            .and_then(name_in_arg)
            .unwrap_or_else(|| "key".to_string());
        let (form, meaning, ty) = match name {
            "bpf_map_lookup_elem" => {
                let v = cx.binding_name.clone().unwrap_or_else(|| "v".to_string());
                (
                    format!("if (var {v} = {map}[{key}]) {{ … }}"),
                    format!("the block runs only when the entry exists, with `{v}` bound to it (§11.3); `{map}[{key}]` alone reads the value (zero when absent)"),
                    Ty::ptr(self.maps[mi].value.clone()),
                )
            }
            "bpf_map_update_elem" => {
                let val = args
                    .get(2)
                    .and_then(name_in_arg)
                    .unwrap_or_else(|| "value".to_string());
                (
                    format!("{map}[{key}] = {val}"),
                    "an assignment to `m[k]` inserts or replaces the entry (§11.2)".to_string(),
                    I64,
                )
            }
            _ => (
                format!("delete {map}[{key}]"),
                "`delete m[k]` removes the entry (§11.2)".to_string(),
                I64,
            ),
        };
        self.error_with_note(
            Code::E0604,
            e.span,
            format!("KernelScript maps are not passed to `{name}`; write `{form}`"),
            meaning,
        );
        Some(ty)
    }

    /// The map named by the first argument of a `bpf_map_*_elem` call (`&m` or `m`), when the
    /// call is the C habit `map_helper_habit` reports.
    pub(super) fn habit_map(
        &self,
        cx: &FnCtx,
        name: &str,
        args: &[Expr],
    ) -> Option<(String, usize)> {
        if !matches!(
            name,
            "bpf_map_lookup_elem" | "bpf_map_update_elem" | "bpf_map_delete_elem"
        ) || cx.lookup(name).is_some()
        {
            return None;
        }
        let map = name_in_arg(args.first()?)?;
        if cx.lookup(&map).is_some() {
            return None;
        }
        match self.symbols.get(&map) {
            Some(Symbol::Map(mi)) => Some((map, *mi)),
            _ => None,
        }
    }

    /// Calling a function value (userspace and module code only, §6.9).
    fn call_value(&mut self, cx: &mut FnCtx, e: &Expr, callee: &Expr, args: &[Expr]) -> Ty {
        let t = self.expr(cx, callee, None);
        match t {
            Ty::Fn(sig) => {
                if cx.is_kernel() {
                    self.error(
                        Code::E0501,
                        callee.span,
                        "calls through function values do not exist in kernel code",
                    );
                }
                self.check_args(cx, e, &sig.params, args);
                sig.ret.clone()
            }
            Ty::Error => {
                self.check_args_untyped(cx, args);
                Ty::Error
            }
            other => {
                let details = format!("`{}` is not callable", self.show(&other));
                match self.shadowing_local(cx, callee) {
                    Some((name, at)) => self.error_because(
                        Code::E0302,
                        callee.span,
                        details,
                        at,
                        format!("`{name}` is this local, which shadows the builtin `{name}()` in its scope (§2.3); rename the local to call the builtin"),
                    ),
                    None => self.error(Code::E0302, callee.span, details),
                }
                self.check_args_untyped(cx, args);
                Ty::Error
            }
        }
    }

    /// The local a called name denotes when that name is also a builtin's: the call meant the
    /// builtin, most likely.
    fn shadowing_local(&self, cx: &FnCtx, callee: &Expr) -> Option<(String, Span)> {
        let ExprKind::Ident(name) = &callee.kind else {
            return None;
        };
        if !super::builtins::is_builtin(name) {
            return None;
        }
        Some((name.clone(), cx.lookup(name)?.declared_at?))
    }

    /// A call of a top-level item by name (`name` is in the file scope).
    fn call_symbol(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        name: &str,
        span: Span,
        args: &[Expr],
        tail: bool,
    ) -> Ty {
        match self.symbols.get(name).cloned() {
            Some(Symbol::Func(id)) => self.call_function(cx, e, id, span, args, tail),
            Some(Symbol::Extern(i)) => {
                let x = self.externs[i].clone();
                if !cx.is_kernel() {
                    self.error(
                        Code::E0501,
                        span,
                        format!("`{name}` is a kernel function; only kernel code can call it"),
                    );
                }
                self.check_args(cx, e, &x.params, args);
                if let Some(h) = builtins::helper(name) {
                    self.check_null_helper_args(h, args);
                }
                x.ret
            }
            _ => self.call_value(
                cx,
                e,
                &Expr {
                    kind: ExprKind::Ident(name.to_string()),
                    span,
                    id: ExprId(u32::MAX),
                },
                args,
            ),
        }
    }

    /// A call of a builtin's name that a top-level declaration shadows (§2.3) resolves to that
    /// declaration. When the call does not fit it (the author meant the builtin, e.g.
    /// `test(prog, pkt)` in a unit whose XDP program is named `test`), its first error points at
    /// the shadowing declaration and the errors that follow from the mix-up (arity, argument
    /// types, within the call since diagnostic `before`) are dropped.
    fn note_shadowed_builtin(&mut self, name: &str, call: Span, before: usize) {
        let Some(&decl) = self.symbol_spans.get(name) else {
            return;
        };
        let in_call = move |d: &crate::diagnostics::Diagnostic| {
            d.severity == crate::diagnostics::Severity::Error
                && d.span.file == call.file
                && d.span.lo >= call.lo
                && d.span.hi <= call.hi
        };
        let Some(first) = self.diags.since_mut(before).position(|d| in_call(d)) else {
            return;
        };
        let first = before + first;
        if let Some(d) = self.diags.since_mut(first).next() {
            d.related.push((
                decl,
                format!(
                    "`{name}` is declared here, which shadows the builtin `{name}()` in the whole unit (§2.3), so the call names this declaration; rename the declaration to call the builtin"
                ),
            ));
        }
        self.diags.drop_since(first + 1, in_call);
    }

    /// The method `name` of the impl the function being checked belongs to, if any.
    fn sibling_method(&self, cx: &FnCtx, name: &str) -> Option<FuncId> {
        let FnKind::StructOpsMethod { impl_name } = &cx.kind else {
            return None;
        };
        self.funcs
            .iter()
            .position(|f| {
                f.name == name
                    && matches!(&f.kind, FnKind::StructOpsMethod { impl_name: i } if i == impl_name)
            })
            .map(|i| FuncId(i as u32))
    }

    fn check_args_untyped(&mut self, cx: &mut FnCtx, args: &[Expr]) {
        for a in args {
            self.expr(cx, a, None);
        }
    }

    /// Arity (E0308) and argument conversion (E0309).
    pub(super) fn check_args(&mut self, cx: &mut FnCtx, call: &Expr, params: &[Ty], args: &[Expr]) {
        if params.len() != args.len() {
            self.error(
                Code::E0308,
                call.span,
                format!(
                    "expected {} argument{}, found {}",
                    params.len(),
                    if params.len() == 1 { "" } else { "s" },
                    args.len()
                ),
            );
        }
        for (i, a) in args.iter().enumerate() {
            let p = params.get(i);
            let t = self.expr(cx, a, p);
            if let Some(p) = p {
                self.coerce(a, &t, p, Code::E0309);
            }
            self.check_escape_into_call(cx, a);
        }
    }

    fn call_named(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        name: &str,
        span: Span,
        args: &[Expr],
        tail: bool,
    ) -> Ty {
        if let Some(t) = self.map_helper_habit(cx, e, name, args) {
            return t;
        }
        // Inside an impl, a sibling method's bare name calls it (§16.1): the impl's methods are
        // the innermost scope above the method's locals.
        if let Some(id) = self.sibling_method(cx, name) {
            self.sibling_calls.insert(e.id, id);
            return self.call_function(cx, e, id, span, args, tail);
        }
        if self.symbols.contains_key(name) {
            let before = self.diags.len();
            let t = self.call_symbol(cx, e, name, span, args, tail);
            if builtins::is_builtin(name) {
                self.note_shadowed_builtin(name, e.span, before);
            }
            return t;
        }
        if let Some(t) = self.call_builtin(cx, e, name, span, args) {
            return t;
        }
        if let Some(h) = builtins::helper(name) {
            if !cx.is_kernel() {
                self.error(
                    Code::E0501,
                    span,
                    format!("`{name}` is a BPF helper; only kernel code can call it"),
                );
            }
            let params: Vec<Ty> = h.params_for(args.len()).iter().map(|p| p.ty()).collect();
            self.check_args(cx, e, &params, args);
            self.check_null_helper_args(h, args);
            if h.ret == HelperTy::TaskBtf {
                return self
                    .kernel_type("task_struct")
                    .map(Ty::ptr)
                    .unwrap_or(Ty::ptr(Ty::Void));
            }
            return h.ret.ty();
        }
        self.error(Code::E0111, span, format!("no function named `{name}`"));
        self.check_args_untyped(cx, args);
        Ty::Error
    }

    /// E0609 for a `null` literal where the helper needs memory: the verifier refuses the call
    /// (`R1 type=scalar expected=fp, …`).
    fn check_null_helper_args(&mut self, h: &builtins::Helper, args: &[Expr]) {
        for (i, a) in args.iter().enumerate() {
            let pointer = matches!(h.params.get(i), Some(HelperTy::Ptr));
            if pointer && matches!(a.kind, ExprKind::Null) && !h.accepts_null(i) {
                self.error(
                    Code::E0609,
                    a.span,
                    format!(
                        "`{}` needs a pointer to memory as argument {}; the kernel refuses null there",
                        h.name,
                        i + 1
                    ),
                );
            }
        }
    }

    fn call_function(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        id: FuncId,
        span: Span,
        args: &[Expr],
        tail: bool,
    ) -> Ty {
        let (kind, params, ret, name) = {
            let f = &self.funcs[id.0 as usize];
            (
                f.kind.clone(),
                f.params.clone(),
                f.ret.clone(),
                f.name.clone(),
            )
        };
        let caller = cx.target();
        let allowed = match (&kind, caller) {
            (FnKind::Program { .. }, _) => {
                if !(tail && matches!(cx.kind, FnKind::Program { .. })) {
                    self.error(Code::E0503, span, format!("`{name}` is an eBPF program; it can only be tail-called as `return {name}(ctx)` from another program"));
                }
                true
            }
            (FnKind::Test, _) => false,
            (FnKind::Main, _) => false,
            (FnKind::User, Target::Host)
            | (FnKind::Helper, Target::Bpf)
            | (FnKind::Kfunc, Target::Bpf | Target::Kmod)
            | (FnKind::Private, Target::Kmod) => true,
            (FnKind::StructOpsMethod { .. }, Target::Bpf) => true,
            _ => false,
        };
        if !allowed {
            let what = match kind {
                FnKind::Helper => "an @helper function (kernel code only)",
                FnKind::Kfunc => "a @kfunc (kernel and module code only)",
                FnKind::Private => "a @private module function (module code only)",
                FnKind::Test => "a @test function (run by the test runner only)",
                FnKind::Main => "`main`",
                _ => "a userspace function",
            };
            let from = match caller {
                Target::Bpf => "kernel code",
                Target::Host => "userspace code",
                Target::Kmod => "module code",
            };
            self.error(
                Code::E0501,
                span,
                format!("`{name}` is {what} and cannot be called from {from}"),
            );
        }
        if let Some(caller_id) = cx.func {
            if tail
                && matches!(kind, FnKind::Program { .. })
                && matches!(cx.kind, FnKind::Program { .. })
            {
                self.tail_calls.push((caller_id, id, span));
                if !self.check_tail_call(cx, id, span, args) {
                    // One mistake, one diagnostic: the arguments follow from the failed rule.
                    self.check_args_untyped(cx, args);
                    return ret;
                }
            } else {
                self.call_edges.push((caller_id, id, span));
            }
        }
        if cx.in_defer && self.may_throw.contains(&id) {
            self.error(
                Code::E0407,
                span,
                format!("`{name}` may throw, and a deferred expression must not"),
            );
        }
        self.check_args(cx, e, &params, args);
        if kind == FnKind::Helper && cx.is_kernel() {
            self.record_helper_null_args(cx, id, &params, args);
            self.record_helper_foreign_args(cx, id, &params, args);
            self.check_foreign_args(cx, &params, args);
        }
        ret
    }

    /// E0614 for a pointer the caller may only read through `bpf_probe_read_*` passed to a
    /// `@helper`, whose body loads through its pointer parameters directly (§9.2).
    fn check_foreign_args(&mut self, cx: &FnCtx, params: &[Ty], args: &[Expr]) {
        for (a, p) in args.iter().zip(params) {
            if !p.is_ptr() {
                continue;
            }
            if let Some(memory) = self.foreign_of(cx, a) {
                self.error_with_note(
                    Code::E0614,
                    a.span,
                    format!("this pointer points into {}, and a `@helper` loads through its pointer parameters directly", memory.describe()),
                    "copy what the helper needs into a local first and pass that local's address",
                );
            }
        }
    }

    /// Notes which pointer arguments of a `@helper` call may be null: directly (a maybe-null
    /// local, `null`, a helper's or extern's pointer result, …) or as a pointer parameter of the
    /// calling helper passed on untested, whose nullness follows its own callers (§6.8).
    fn record_helper_null_args(&mut self, cx: &FnCtx, id: FuncId, params: &[Ty], args: &[Expr]) {
        for (i, (a, p)) in args.iter().zip(params).enumerate() {
            if !p.is_ptr() || self.is_context_type(p) {
                continue;
            }
            let via = match &a.kind {
                ExprKind::Null => Some(None),
                ExprKind::Ident(n) => match cx.lookup(n) {
                    Some(l) if l.non_null => None,
                    Some(l) if l.nullable => Some(None),
                    Some(l) => l.param_of.map(Some),
                    None => None,
                },
                _ => {
                    let mut l = Local::new(p.clone());
                    self.init_flags(cx, &mut l, a);
                    l.nullable.then_some(None)
                }
            };
            if let Some(via) = via {
                self.helper_null_args.push((id, i, a.span, via));
            }
        }
    }

    /// After every body: a `@helper` pointer parameter may be null when some call site may pass
    /// null, directly or through a caller's own parameter (a fixed point over the call graph); a
    /// dereference of such a parameter without a test is E0609, pointing at that call site.
    /// Notes which pointer arguments of a `@helper` call may point elsewhere than into the
    /// packet: all but packet pointers, and a pointer parameter of the calling helper passed on,
    /// whose target follows its own callers.
    fn record_helper_foreign_args(&mut self, cx: &FnCtx, id: FuncId, params: &[Ty], args: &[Expr]) {
        for (i, (a, p)) in args.iter().zip(params).enumerate() {
            if !p.is_ptr() || self.is_context_type(p) || self.is_packet(cx, a) {
                continue;
            }
            let via = match &a.kind {
                ExprKind::Ident(n) => cx.lookup(n).and_then(|l| l.param_of),
                _ => None,
            };
            self.helper_foreign_args.push((id, i, a.span, via));
        }
    }

    /// The `@helper` parameters some call may pass an argument of the kind `args` records
    /// (directly, or as a parameter of its own that such a call reaches), each with that call.
    fn reached_params(args: &[crate::sema::HelperNullArg]) -> HashMap<(FuncId, usize), Span> {
        let mut reached = HashMap::new();
        for &(f, i, span, via) in args {
            if via.is_none() {
                reached.entry((f, i)).or_insert(span);
            }
        }
        loop {
            let mut changed = false;
            for &(f, i, span, via) in args {
                if let Some(src) = via {
                    if reached.contains_key(&src) && !reached.contains_key(&(f, i)) {
                        reached.insert((f, i), span);
                        changed = true;
                    }
                }
            }
            if !changed {
                return reached;
            }
        }
    }

    /// E0311 for a kernel field written through a `@helper` parameter some call passes a
    /// pointer that may not be into the packet (§10.4).
    pub(super) fn helper_param_writes(&mut self) {
        let foreign = Self::reached_params(&self.helper_foreign_args);
        for (f, i, at, field) in std::mem::take(&mut self.helper_param_writes) {
            if let Some(&call) = foreign.get(&(f, i)) {
                let helper = self.funcs[f.0 as usize].name.clone();
                self.error_because(
                    Code::E0311,
                    at,
                    format!("`{field}` is a kernel field and cannot be written"),
                    call,
                    format!("`{helper}` is called here with a pointer that may not point into the packet, the only kernel struct memory a program writes"),
                );
            }
        }
    }

    pub(super) fn helper_param_nullness(&mut self) {
        let maybe = Self::reached_params(&self.helper_null_args);
        for (f, i, at, n) in std::mem::take(&mut self.helper_param_derefs) {
            if let Some(&call) = maybe.get(&(f, i)) {
                let helper = self.funcs[f.0 as usize].name.clone();
                self.error_because(
                    Code::E0609,
                    at,
                    format!("`{n}` may be null here; test it first (`if ({n} != null)`)"),
                    call,
                    format!("`{helper}` is called here with a pointer that may be null"),
                );
            }
        }
    }

    /// §9.5 requirements (E0504): same kind family, same signature, the caller's own parameters.
    fn check_tail_call(&mut self, cx: &FnCtx, callee: FuncId, span: Span, args: &[Expr]) -> bool {
        let Some(caller) = cx.func else { return true };
        let (ck, cp, cr) = {
            let f = &self.funcs[caller.0 as usize];
            (f.kind.program_kind(), f.params.clone(), f.ret.clone())
        };
        let (tk, tp, tr, tname) = {
            let f = &self.funcs[callee.0 as usize];
            (
                f.kind.program_kind(),
                f.params.clone(),
                f.ret.clone(),
                f.name.clone(),
            )
        };
        let family_ok = match (
            ck.and_then(|k| k.tail_call_family()),
            tk.and_then(|k| k.tail_call_family()),
        ) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        if !family_ok {
            self.error(
                Code::E0504,
                span,
                format!(
                    "`{tname}` is a different program kind (or a kind that cannot be tail-called)"
                ),
            );
            return false;
        }
        if cp != tp || cr != tr {
            self.error(
                Code::E0504,
                span,
                format!("`{tname}` has a different signature; a tail call passes only the context"),
            );
            return false;
        }
        let passes_own_params = args.len() == cx.param_names.len()
            && args
                .iter()
                .zip(&cx.param_names)
                .all(|(a, p)| matches!(&a.kind, ExprKind::Ident(n) if n == p));
        if !passes_own_params {
            self.error(
                Code::E0504,
                span,
                format!(
                    "a tail call must pass exactly the caller's parameters (`{}({})`)",
                    tname,
                    cx.param_names.join(", ")
                ),
            );
            return false;
        }
        true
    }

    fn module_call(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        module: &str,
        f: &Ident,
        args: &[Expr],
    ) -> Ty {
        if self.is_python_module(module) {
            return self.python_call(cx, e, module, f, args);
        }
        let found = self
            .modules
            .iter()
            .find(|(m, _)| m == module)
            .and_then(|(_, fns)| fns.get(&f.name).copied());
        let Some(id) = found else {
            self.error(
                Code::E0111,
                f.span,
                format!("module `{module}` has no function `{}`", f.name),
            );
            self.check_args_untyped(cx, args);
            return Ty::Error;
        };
        if cx.target() != Target::Host {
            self.error(
                Code::E0501,
                f.span,
                format!("`{module}.{}` is a userspace function", f.name),
            );
        }
        let (params, ret) = {
            let info = &self.funcs[id.0 as usize];
            (info.params.clone(), info.ret.clone())
        };
        self.check_args(cx, e, &params, args);
        ret
    }

    /// Whether `name` is a module imported from a `.py` file.
    pub(super) fn is_python_module(&self, name: &str) -> bool {
        self.unit
            .imports
            .iter()
            .any(|m| m.name.name == name && m.python.is_some())
    }

    /// `m.f(args)` on a Python module (§5.2, §15.8): the function is looked up at run time, so
    /// only the values can be checked here. Its result takes the type the call's context
    /// expects (a declared variable, a parameter, an assignment target, a return), else `i64`.
    fn python_call(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        module: &str,
        f: &Ident,
        args: &[Expr],
    ) -> Ty {
        let expected = self.call_expected.take();
        if cx.target() != Target::Host {
            self.error(
                Code::E0501,
                f.span,
                format!(
                    "`{module}.{}` is a Python function: only userspace code can call it",
                    f.name
                ),
            );
        }
        for a in args {
            let t = self.expr(cx, a, None);
            if let Some(bad) = self.python_unsupported(&t) {
                self.error(
                    Code::E0309,
                    a.span,
                    format!("cannot pass {bad} to Python (integers, bool, char, strings, char arrays and structs of those convert, §15.8)"),
                );
            }
        }
        match expected {
            Some(t) if !matches!(t, Ty::Void | Ty::Error) => {
                if let Some(bad) = self.python_unsupported(&t) {
                    self.error(
                        Code::E0309,
                        e.span,
                        format!("a Python result cannot become {bad} (integers, bool, char, strings, char arrays and structs of those convert, §15.8)"),
                    );
                    return Ty::Error;
                }
                t
            }
            _ => Ty::Int(IntTy::I64),
        }
    }

    /// What in `t` has no Python conversion, described, or None when all of it has one.
    pub(super) fn python_unsupported(&self, t: &Ty) -> Option<String> {
        match t {
            Ty::Int(_) | Ty::Bool | Ty::Char | Ty::Enum(_) | Ty::Str(_) | Ty::Error => None,
            // A char array is text too (at most N bytes, no NUL needed).
            Ty::Array(e, _) if matches!(**e, Ty::Char) => None,
            Ty::Struct(id) => {
                let s = &self.structs[id.0 as usize];
                if s.origin != crate::sema::env::StructOrigin::File {
                    return Some(format!("the kernel struct `{}`", s.name));
                }
                s.fields.iter().find_map(|f| {
                    self.python_unsupported(&f.ty)
                        .map(|why| format!("{why} (field `{}` of `{}`)", f.name, s.name))
                })
            }
            t => Some(format!("a value of type `{}`", self.show(t))),
        }
    }
}

/// The conversion letters of a print format (`%%` excluded, length modifiers skipped).
pub fn format_conversions(fmt: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < fmt.len() {
        if fmt[i] == b'%' {
            i += 1;
            while i < fmt.len() && matches!(fmt[i], b'l' | b'h' | b'0'..=b'9' | b'-' | b'.') {
                i += 1;
            }
            if i < fmt.len() && fmt[i] != b'%' {
                out.push(fmt[i]);
            }
        }
        i += 1;
    }
    out
}

/// The name in a helper argument written `&name` or `name`.
fn name_in_arg(a: &Expr) -> Option<String> {
    match &a.kind {
        ExprKind::Unary(UnOp::AddrOf, inner) => match &inner.kind {
            ExprKind::Ident(n) => Some(n.clone()),
            _ => None,
        },
        ExprKind::Ident(n) => Some(n.clone()),
        _ => None,
    }
}
