//! Function bodies: the per-function context (world, scopes, loop and try nesting) and the
//! driver that checks every function, global initialiser, const and config default.

use super::consteval::ConstValue;
use super::env::*;
use super::types::*;
use super::{Checker, Local};
use crate::diagnostics::{Code, Span};
use crate::syntax::ast::*;

/// Per-function checking state.
pub(crate) struct FnCtx {
    pub func: Option<FuncId>,
    pub kind: FnKind,
    pub ret: Ty,
    /// Innermost scope last (§5.1: block scoped locals).
    pub scopes: Vec<Vec<(String, Local)>>,
    pub loop_depth: u32,
    /// Inside a `defer` expression (E0407).
    pub in_defer: bool,
    /// Name of the context parameter of a program (packet pointers, tail calls).
    pub ctx_param: Option<String>,
    /// Parameter names in order (tail calls must pass exactly these, §9.5).
    pub param_names: Vec<String>,
    /// Nesting of `try` blocks that catch every code (`catch _`).
    pub catch_all_depth: u32,
    /// The codes caught by name (`catch 1`) around the statement being checked.
    pub caught_codes: Vec<u64>,
    /// Set while the arms of a `return match` are checked: their calls are tail calls (§9.5).
    pub tail_match: bool,
    /// Stack bytes of aggregate locals, counted as they are declared (§19, E0601).
    pub stack_bytes: u64,
    /// The largest aggregate local (its name's span, name, bytes): what E0601 suggests moving.
    pub largest_local: Option<(Span, String, u64)>,
    /// The local whose initialiser is being checked (`var NAME = …`), for suggestions.
    pub binding_name: Option<String>,
    /// Expression statements in tail position of a function returning a value: each is checked
    /// as `return e` (§5.3 [fix]: a trailing expression is the function's value).
    pub trailing: std::collections::HashSet<ExprId>,
}

impl FnCtx {
    pub fn new(kind: FnKind, ret: Ty) -> Self {
        FnCtx {
            func: None,
            kind,
            ret,
            scopes: vec![Vec::new()],
            loop_depth: 0,
            in_defer: false,
            ctx_param: None,
            param_names: Vec::new(),
            catch_all_depth: 0,
            caught_codes: Vec::new(),
            tail_match: false,
            stack_bytes: 0,
            largest_local: None,
            binding_name: None,
            trailing: Default::default(),
        }
    }

    pub fn target(&self) -> Target {
        self.kind.target()
    }

    pub fn is_kernel(&self) -> bool {
        self.target() == Target::Bpf
    }

    pub fn lookup(&self, name: &str) -> Option<&Local> {
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.iter().rev().find(|(n, _)| n == name).map(|(_, l)| l))
    }

    pub fn lookup_mut(&mut self, name: &str) -> Option<&mut Local> {
        self.scopes
            .iter_mut()
            .rev()
            .find_map(|s| s.iter_mut().rev().find(|(n, _)| n == name).map(|(_, l)| l))
    }

    pub fn push_scope(&mut self) {
        self.scopes.push(Vec::new());
    }

    pub fn pop_scope(&mut self) {
        self.scopes.pop();
    }
}

impl<'a> Checker<'a, '_> {
    pub(super) fn check_bodies(&mut self) {
        self.compute_may_throw();
        let unit = self.unit;
        for item in &unit.items {
            match &item.kind {
                ItemKind::Global(g) => self.check_global_init(g),
                ItemKind::Const(k) => {
                    self.top_level_const(&k.name.name);
                }
                ItemKind::Config(cfg) => self.check_config_defaults(cfg),
                _ => {}
            }
        }
        for i in 0..self.funcs.len() {
            // A function whose attribute is unknown (E0201) has no target yet: its body would
            // only add errors of the wrong side (helpers "only kernel code can call").
            if !self.has_unknown_attribute(FuncId(i as u32)) {
                self.check_function(FuncId(i as u32));
            }
        }
        self.helper_param_nullness();
        self.helper_param_writes();
        for item in &unit.items {
            if let ItemKind::Impl(imp) = &item.kind {
                for f in &imp.fields {
                    let mut cx = FnCtx::new(FnKind::User, Ty::Void);
                    self.expr(&mut cx, &f.value, None);
                }
            }
        }
    }

    /// Folds a top-level const on first use (order-independent, cycles are E0312).
    pub(super) fn top_level_const(&mut self, name: &str) -> Option<(Ty, ConstValue)> {
        let idx = self.consts.iter().position(|c| c.name == name)?;
        if let Some(done) = self.const_done.get(&idx) {
            return done.clone();
        }
        let decl = self.unit.items.iter().find_map(|i| match &i.kind {
            ItemKind::Const(k) if k.name.name == name => Some(k),
            _ => None,
        })?;
        self.const_done.insert(idx, None);
        let declared = self.consts[idx].ty.clone();
        let mut cx = FnCtx::new(FnKind::User, Ty::Void);
        let expected = if declared.is_error() {
            None
        } else {
            Some(declared.clone())
        };
        let t = self.expr(&mut cx, &decl.init, expected.as_ref());
        let result = match self.const_values.get(&decl.init.id).cloned() {
            Some(v) => {
                let ty = if declared.is_error() { t } else { declared };
                self.check_const_fits(&v, &ty, decl.init.span);
                Some((ty, v))
            }
            None => {
                self.error(
                    Code::E0312,
                    decl.init.span,
                    format!("the value of `{name}` must be a constant expression"),
                );
                None
            }
        };
        if let Some((ty, v)) = &result {
            self.consts[idx].ty = ty.clone();
            self.consts[idx].value = v.clone();
        }
        self.const_done.insert(idx, result.clone());
        result
    }

    fn check_global_init(&mut self, g: &GlobalDecl) {
        let Some(idx) = self
            .globals
            .iter()
            .position(|x| x.name == g.name.name && x.span == g.name.span)
        else {
            return;
        };
        let Some(init) = &g.init else { return };
        let declared = self.globals[idx].ty.clone();
        let mut cx = FnCtx::new(FnKind::User, Ty::Void);
        let expected = if g.ty.is_some() {
            Some(declared.clone())
        } else {
            None
        };
        let t = self.expr(&mut cx, init, expected.as_ref());
        if !self.is_constant_initialiser(init) {
            self.error(
                Code::E0312,
                init.span,
                format!(
                    "the initial value of global `{}` must be a constant expression",
                    g.name.name
                ),
            );
            return;
        }
        if g.ty.is_some() {
            self.coerce(init, &t, &declared, Code::E0301);
        } else {
            let inferred = match t {
                Ty::Null => Ty::ptr(U8),
                Ty::FillArray(e) => Ty::Array(e, 1),
                other => other,
            };
            self.globals[idx].ty = inferred;
        }
    }

    /// Constant initialisers (§12.1): folded scalars, string literals and array literals.
    fn is_constant_initialiser(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Str(_) | ExprKind::Null | ExprKind::Bool(_) | ExprKind::Char(_) => true,
            ExprKind::ArrayLit(items) => items.iter().all(|i| self.is_constant_initialiser(i)),
            ExprKind::Cast(inner, _) => self.is_constant_initialiser(inner),
            _ => self.const_values.contains_key(&e.id),
        }
    }

    fn check_config_defaults(&mut self, cfg: &ConfigDecl) {
        for f in &cfg.fields {
            let Some(d) = &f.default else { continue };
            let ty = self.resolve_type(&f.ty);
            let mut cx = FnCtx::new(FnKind::User, Ty::Void);
            let t = self.expr(&mut cx, d, Some(&ty));
            if !self.is_constant_initialiser(d) {
                self.error(
                    Code::E0312,
                    d.span,
                    format!(
                        "the default of `{}.{}` must be a literal",
                        cfg.name.name, f.name.name
                    ),
                );
                continue;
            }
            self.coerce(d, &t, &ty, Code::E0301);
        }
    }

    /// Whether a function carries an attribute no function may (E0201 at the attribute).
    pub(super) fn has_unknown_attribute(&self, id: FuncId) -> bool {
        let f = &self.funcs[id.0 as usize];
        f.module.is_none()
            && f.item
                .attrs
                .iter()
                .any(|a| !super::decls::FN_ATTRS.contains(&a.name.name.as_str()))
    }

    fn check_function(&mut self, id: FuncId) {
        let info = &self.funcs[id.0 as usize];
        let decl = info.decl;
        let mut cx = FnCtx::new(info.kind.clone(), info.ret.clone());
        cx.func = Some(id);
        let params = info.params.clone();
        let is_program = matches!(info.kind, FnKind::Program { .. });
        let is_helper = info.kind == FnKind::Helper;
        // Pointer arguments read from saved registers are plain numbers to the verifier (§9.2).
        let registers_point_to = if self.syscall_probes.contains(&id) {
            Some(Foreign::User)
        } else if info.kind.program_kind() == Some(ProgKind::Kprobe) {
            Some(Foreign::Kernel)
        } else {
            None
        };
        for (idx, (p, ty)) in decl.params.iter().zip(params).enumerate() {
            if cx.scopes[0].iter().any(|(n, _)| n == &p.name.name) {
                self.error(
                    Code::E0110,
                    p.name.span,
                    format!("parameter `{}` is declared twice", p.name.name),
                );
            }
            let mut l = Local::new(ty.clone());
            // Context parameters are never null; other helper pointer parameters are null when a
            // call site may pass null (§6.8), decided by `helper_param_nullness`.
            if is_helper && ty.is_ptr() && !self.is_context_type(&ty) {
                l.param_of = Some((id, idx));
            }
            if ty.is_ptr() {
                l.foreign = registers_point_to;
            }
            l.declared_at = Some(p.name.span);
            cx.scopes[0].push((p.name.name.clone(), l));
            cx.param_names.push(p.name.name.clone());
        }
        if is_program || is_helper {
            let params = &self.funcs[id.0 as usize].params;
            cx.ctx_param = decl
                .params
                .iter()
                .zip(params)
                .find(|(_, t)| self.is_context_type(t))
                .map(|(p, _)| p.name.name.clone());
        }
        if let RetSpec::Named(n, _) = &decl.ret {
            cx.scopes[0].push((n.name.clone(), Local::new(cx.ret.clone())));
        }
        if !matches!(cx.ret, Ty::Void | Ty::Error) && !matches!(decl.ret, RetSpec::Named(..)) {
            trailing_exprs(&decl.body, &mut cx.trailing);
        }
        cx.push_scope();
        let falls_through = self.block_stmts(&mut cx, &decl.body);
        cx.pop_scope();
        let named = matches!(decl.ret, RetSpec::Named(..));
        if falls_through && !matches!(cx.ret, Ty::Void | Ty::Error) && !named {
            self.error(
                Code::E0405,
                decl.body.close_span(),
                format!(
                    "`{}` must return a `{}` on every path",
                    decl.name.name,
                    self.show(&cx.ret)
                ),
            );
        }
        if cx.is_kernel() && cx.stack_bytes > 512 {
            let details = format!(
                "this function needs {} bytes of stack; eBPF allows 512",
                cx.stack_bytes
            );
            match cx.largest_local.take() {
                Some((span, name, bytes)) => self.error_because(
                    Code::E0601,
                    decl.name.span,
                    details,
                    span,
                    format!("`{name}` takes {bytes} bytes: make it smaller, or keep it in a map value (a `percpu_array` of one entry is the usual scratch space, §11)"),
                ),
                None => self.error(Code::E0601, decl.name.span, details),
            }
        }
    }

    pub(super) fn is_context_type(&self, t: &Ty) -> bool {
        match t {
            Ty::Ptr(inner) => match &**inner {
                Ty::Struct(s) => {
                    let info = &self.structs[s.0 as usize];
                    info.origin == StructOrigin::Context
                        || info.name == "bpf_perf_event_data"
                        || info.name.starts_with("trace_event_raw_")
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// The expression statements whose value is the value of `b` when `b` ends a function: its
/// last statement when that is an expression statement, or, for a final `if` with an `else`,
/// those of each branch (§5.3 [fix]).
fn trailing_exprs(b: &Block, out: &mut std::collections::HashSet<ExprId>) {
    if let Some(s) = b.stmts.last() {
        trailing_stmt(s, out);
    }
}

fn trailing_stmt(s: &Stmt, out: &mut std::collections::HashSet<ExprId>) {
    match &s.kind {
        // `print`'s result is a status, not a value: a function ending in a print forgot its
        // return (E0405) rather than returning what printf returned.
        StmtKind::Expr(e) if !is_print_call(e) => {
            out.insert(e.id);
        }
        StmtKind::If {
            then,
            els: Some(els),
            ..
        } => {
            trailing_exprs(then, out);
            match &**els {
                ElseBranch::Block(b) => trailing_exprs(b, out),
                ElseBranch::If(s) => trailing_stmt(s, out),
            }
        }
        // `try { …; v } catch N { …; w }` ending a function: each block's value is returned.
        StmtKind::Try { body, catches } => {
            trailing_exprs(body, out);
            for c in catches {
                trailing_exprs(&c.body, out);
            }
        }
        _ => {}
    }
}

fn is_print_call(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Call { callee, .. } if matches!(&callee.kind, ExprKind::Ident(n) if n == "print"))
}
