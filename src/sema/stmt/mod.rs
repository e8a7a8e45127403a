//! Statements (§8, §13, §14): scopes, assignments, control flow and reachability, and the
//! flow-sensitive facts kernel code needs — which pointers are known non-null (§6.8), which
//! ring-buffer records were released (§11.5) — plus the escape rules for records, kernel objects
//! and packet pointers (E0608, E0612, E0611).

use super::body::FnCtx;
use super::consteval::ConstValue;
use super::env::*;
use super::types::*;
use super::verdict;
use super::{Checker, Local};
use crate::diagnostics::{Code, Span};
use crate::syntax::ast::*;

mod assignment;
mod bindings;
mod conditions;
mod escapes;

/// Facts a condition establishes: locals known non-null when it is true / when it is false.
#[derive(Default)]
pub(in crate::sema) struct CondFacts {
    pub(in crate::sema) when_true: Vec<String>,
    pub(in crate::sema) when_false: Vec<String>,
}

/// Joins the binding-invalidation state (§11.3) over alternative paths (if/else branches, catch
/// clauses, match arms): each path starts from the state before the alternatives, and after them
/// a binding is invalid when it is invalid at the end of any path that completes.
pub(super) struct InvalidationJoin {
    start: Vec<Option<Span>>,
    joined: Option<Vec<Option<Span>>>,
}

impl InvalidationJoin {
    pub fn new(cx: &FnCtx) -> Self {
        InvalidationJoin {
            start: cx
                .scopes
                .iter()
                .flatten()
                .map(|(_, l)| l.invalidated_by)
                .collect(),
            joined: None,
        }
    }

    /// Resets the state for the next path.
    pub fn begin(&self, cx: &mut FnCtx) {
        for ((_, l), s) in cx.scopes.iter_mut().flatten().zip(&self.start) {
            l.invalidated_by = *s;
        }
    }

    /// Records the end of a path that completes (`reachable`).
    pub fn end(&mut self, cx: &FnCtx, reachable: bool) {
        if !reachable {
            return;
        }
        let now: Vec<Option<Span>> = cx
            .scopes
            .iter()
            .flatten()
            .map(|(_, l)| l.invalidated_by)
            .collect();
        self.joined = Some(match self.joined.take() {
            None => now,
            Some(j) => j.into_iter().zip(now).map(|(a, b)| a.or(b)).collect(),
        });
    }

    /// Sets the joined state (the start state when no path completes).
    pub fn finish(self, cx: &mut FnCtx) {
        let state = self.joined.unwrap_or(self.start);
        for ((_, l), s) in cx.scopes.iter_mut().flatten().zip(state) {
            l.invalidated_by = s;
        }
    }
}

impl<'a> Checker<'a, '_> {
    /// Checks the statements of a block in the current scope; returns whether its end is reachable.
    pub(super) fn block_stmts(&mut self, cx: &mut FnCtx, b: &Block) -> bool {
        let mut reachable = true;
        let mut warned = false;
        for (i, s) in b.stmts.iter().enumerate() {
            if !reachable && !warned {
                self.warning(Code::W0004, s.span, "this statement can never run");
                warned = true;
            }
            if let Some(prev) = i.checked_sub(1).map(|p| &b.stmts[p]) {
                if self.check_array_length_split(cx, prev, s) {
                    continue;
                }
            }
            let cont = self.stmt(cx, s);
            reachable &= cont;
        }
        reachable
    }

    /// `var a: u8[N]` with a non-literal N parses (§3 rule 4) as `var a: u8` followed by the
    /// array literal `[N]`, silently declaring a scalar. Array lengths are integer literals
    /// (§12.2): report the declaration, naming the length's value when it is a constant.
    /// Returns true when `next` is such a bracket (it is then not checked as a statement).
    fn check_array_length_split(&mut self, cx: &mut FnCtx, decl: &Stmt, next: &Stmt) -> bool {
        let StmtKind::Var {
            name,
            ty: Some(ty),
            init: None,
        } = &decl.kind
        else {
            return false;
        };
        let StmtKind::Expr(Expr {
            kind: ExprKind::ArrayLit(items),
            span,
            ..
        }) = &next.kind
        else {
            return false;
        };
        if span.lo != ty.span.hi
            || items.len() != 1
            || !matches!(ty.kind, TypeExprKind::Prim(_) | TypeExprKind::Named(_))
        {
            return false;
        }
        let len = &items[0];
        self.expr(cx, len, None);
        let value = self.const_of(len).and_then(ConstValue::as_int);
        let hint = match value {
            Some(n) => format!("write `[{n}]`"),
            None => "write the length as an integer literal".to_string(),
        };
        // Check what follows with the array type that was meant, so uses do not cascade.
        let elem = cx.lookup(&name.name).map(|l| l.ty.clone());
        if let (Some(n @ 1..=0x10_0000), Some(elem)) = (value, elem) {
            if let Some(l) = cx.lookup_mut(&name.name) {
                l.ty = Ty::array(elem, n as u32);
            }
        }
        self.error(
            Code::E0602,
            ty.span.to(*span),
            format!("an array length must be an integer literal (§12.2); {hint}"),
        );
        true
    }

    /// A nested block with its own scope.
    fn scoped_block(&mut self, cx: &mut FnCtx, b: &Block) -> bool {
        cx.push_scope();
        let r = self.block_stmts(cx, b);
        cx.pop_scope();
        r
    }

    fn declare_local(&mut self, cx: &mut FnCtx, name: &Ident, mut local: Local) {
        local.declared_at = Some(name.span);
        let scope = cx.scopes.last_mut().expect("a scope");
        if scope.iter().any(|(n, _)| n == &name.name) {
            self.error(
                Code::E0110,
                name.span,
                format!("`{}` is already declared in this block", name.name),
            );
            return;
        }
        self.local_decls.insert(
            name.span,
            super::LocalDecl {
                ty: local.ty.clone(),
                entry_of: local.entry_of,
            },
        );
        scope.push((name.name.clone(), local));
    }

    /// Returns whether execution can continue after the statement.
    fn stmt(&mut self, cx: &mut FnCtx, s: &Stmt) -> bool {
        match &s.kind {
            StmtKind::Var { name, ty, init } => {
                self.var_decl(cx, name, ty.as_ref(), init.as_ref(), s.span);
                true
            }
            StmtKind::Const { name, ty, init } => {
                let declared = ty.as_ref().map(|t| self.resolve_type(t));
                let t = self.expr(cx, init, declared.as_ref());
                let value = self.const_of(init).cloned();
                if value.is_none() {
                    self.error(
                        Code::E0312,
                        init.span,
                        format!("the value of `{}` must be a constant expression", name.name),
                    );
                }
                let ty = match declared {
                    Some(d) => {
                        self.coerce(init, &t, &d, Code::E0301);
                        d
                    }
                    None => t,
                };
                let mut l = Local::new(ty);
                l.mutable = false;
                l.value = value;
                self.declare_local(cx, name, l);
                true
            }
            StmtKind::Assign { target, op, value } => {
                self.assign(cx, target, *op, value);
                true
            }
            StmtKind::Expr(e) if cx.trailing.contains(&e.id) => {
                // A trailing expression is the function's value (§5.3 [fix]); one without a
                // value (a void call) leaves the end reachable, so E0405 reports it.
                if self.return_value(cx, e, s.span, true) {
                    self.implicit_returns.insert(e.id);
                    false
                } else {
                    !self.diverging.contains(&e.id)
                }
            }
            StmtKind::Expr(e) => {
                self.expr(cx, e, None);
                !self.diverging.contains(&e.id)
            }
            StmtKind::Return(v) => {
                self.return_stmt(cx, v.as_ref(), s.span);
                false
            }
            StmtKind::If { cond, then, els } => self.if_stmt(cx, cond, then, els.as_deref()),
            StmtKind::While { cond, body } => {
                let t = self.expr(cx, cond, None);
                self.check_condition(cond, &t);
                self.invalidate_for_loop(cx, body);
                cx.loop_depth += 1;
                let facts = self.cond_facts(cx, cond);
                let saved = self.apply_facts(cx, &facts.when_true);
                self.scoped_block(cx, body);
                self.restore_facts(cx, saved);
                cx.loop_depth -= 1;
                let infinite = matches!(cond.kind, ExprKind::Bool(true));
                // (In userspace a loop that waits — `sleep(1000)` between reports — runs until a
                // signal ends the program, which detaches what it attached.)
                let runs_until_signalled = !cx.is_kernel() && block_waits(body);
                if infinite && !block_can_exit_loop(body) && !runs_until_signalled {
                    self.error(
                        Code::E0402,
                        s.span,
                        "`while (true)` has no reachable `break`, `return` or `throw`",
                    );
                }
                !infinite || block_has_break(body)
            }
            StmtKind::ForRange { var, lo, hi, body } => {
                let lt = self.expr(cx, lo, None);
                let ht = self.expr(cx, hi, None);
                let it = match self.unify(&lt, &ht) {
                    Some(t) if t.is_integral() => t,
                    _ => {
                        if !lt.is_error() && !ht.is_error() {
                            self.error(Code::E0302, lo.span.to(hi.span), format!("range bounds must be integers of compatible types, found `{}` and `{}`", self.show(&lt), self.show(&ht)));
                        }
                        Ty::Error
                    }
                };
                self.invalidate_for_loop(cx, body);
                cx.push_scope();
                let mut l = Local::new(it);
                l.mutable = false;
                self.declare_local(cx, var, l);
                cx.loop_depth += 1;
                self.scoped_block(cx, body);
                cx.loop_depth -= 1;
                cx.pop_scope();
                true
            }
            StmtKind::ForEach {
                key,
                value,
                map,
                body,
            } => {
                let m = match self.symbols.get(&map.name).cloned() {
                    Some(Symbol::Map(mi)) => Some(self.maps[mi].clone()),
                    _ => None,
                };
                if cx.target() != Target::Host {
                    self.error(
                        Code::E0501,
                        s.span,
                        "map iteration is available in userspace only",
                    );
                }
                let (kt, vt) = match &m {
                    Some(m) if m.kind.indexable() => (m.key.clone(), m.value.clone()),
                    Some(m) => {
                        self.error(
                            Code::E0610,
                            map.span,
                            format!("`{}` cannot be iterated", m.name),
                        );
                        (Ty::Error, Ty::Error)
                    }
                    None => {
                        self.error(
                            Code::E0111,
                            map.span,
                            format!("`{}` is not a map", map.name),
                        );
                        (Ty::Error, Ty::Error)
                    }
                };
                self.invalidate_for_loop(cx, body);
                cx.push_scope();
                if key.name != "_" {
                    self.declare_local(cx, key, Local::new(kt));
                }
                if value.name != "_" {
                    self.declare_local(cx, value, Local::new(vt));
                }
                cx.loop_depth += 1;
                self.scoped_block(cx, body);
                cx.loop_depth -= 1;
                cx.pop_scope();
                true
            }
            StmtKind::Delete(e) => {
                self.delete_stmt(cx, e, s.span);
                true
            }
            StmtKind::Break | StmtKind::Continue => {
                if cx.loop_depth == 0 {
                    let what = if matches!(s.kind, StmtKind::Break) {
                        "break"
                    } else {
                        "continue"
                    };
                    self.error(Code::E0401, s.span, format!("`{what}` outside a loop"));
                }
                false
            }
            StmtKind::Try { body, catches } => {
                let mut seen: Vec<Option<u64>> = Vec::new();
                for c in catches {
                    let key = self.catch_code(&c.pattern);
                    if let (CatchPattern::Named(id), None) = (&c.pattern, key) {
                        self.error(Code::E0014, id.span, format!("`{}` is not a `const` or an enumerator with a non-negative integer value: a catch pattern is such a name, a non-negative integer literal or `_`", id.name));
                        continue;
                    }
                    if seen.contains(&key) {
                        self.error(
                            Code::E0404,
                            c.pattern.span(),
                            "this catch pattern is already handled by an earlier clause",
                        );
                    }
                    seen.push(key);
                }
                let catch_all = seen.contains(&None);
                if catch_all {
                    cx.catch_all_depth += 1;
                }
                let outer_codes = cx.caught_codes.len();
                cx.caught_codes.extend(seen.iter().flatten());
                let mut reach = self.scoped_block(cx, body);
                cx.caught_codes.truncate(outer_codes);
                if catch_all {
                    cx.catch_all_depth -= 1;
                }
                // The end is reachable when the body or a catch body completes; a code no clause
                // catches leaves the statement outward, like a throw.
                // A catch clause may start after any part of the body ran: from the body's end state.
                let mut join = InvalidationJoin::new(cx);
                join.end(cx, reach);
                for c in catches {
                    join.begin(cx);
                    let r = self.scoped_block(cx, &c.body);
                    join.end(cx, r);
                    reach |= r;
                }
                join.finish(cx);
                reach
            }
            StmtKind::Throw(e) => {
                let t = self.expr(cx, e, None);
                if !t.is_integral() {
                    self.error(
                        Code::E0406,
                        e.span,
                        format!(
                            "`throw` needs an integer or enum code, found `{}`",
                            self.show(&t)
                        ),
                    );
                }
                if cx.in_defer {
                    self.error(Code::E0407, s.span, "a deferred expression cannot throw");
                }
                // A constant code that an enclosing `catch CODE` names cannot leave either.
                let caught = self
                    .const_of(e)
                    .and_then(|v| v.as_int())
                    .is_some_and(|c| u64::try_from(c).is_ok_and(|c| cx.caught_codes.contains(&c)));
                if matches!(cx.kind, FnKind::Program { .. }) && cx.catch_all_depth == 0 && !caught {
                    self.warning(Code::W0003, s.span, "this throw can leave the program; its code becomes the program's return value");
                    // The escaping code is returned: it must be a verdict the kernel accepts.
                    self.check_verdict_range(
                        cx,
                        e,
                        "uncaught, this throw makes the program return",
                    );
                }
                false
            }
            StmtKind::Defer(deferred) => {
                let was = cx.in_defer;
                cx.in_defer = true;
                self.stmt(cx, deferred);
                cx.in_defer = was;
                true
            }
        }
    }

    fn var_decl(
        &mut self,
        cx: &mut FnCtx,
        name: &Ident,
        ty: Option<&TypeExpr>,
        init: Option<&Expr>,
        span: Span,
    ) {
        let declared = ty.map(|t| self.resolve_type(t));
        if let Some(Ty::Void) = declared {
            self.error(Code::E0301, span, "a variable cannot have type void");
        }
        let mut local = match (declared, init) {
            (None, None) => {
                self.error(
                    Code::E0317,
                    span,
                    format!("`var {}` needs a type or an initial value", name.name),
                );
                Local::new(Ty::Error)
            }
            (Some(d), None) => Local::new(d),
            (Some(d), Some(e)) => {
                let t = self.expr(cx, e, Some(&d));
                self.check_void_value(e, &t);
                self.coerce(e, &t, &d, Code::E0301);
                let mut l = Local::new(d);
                self.init_flags(cx, &mut l, e);
                l.entry_of = None; // an annotated binding is a plain copy (§11.3)
                l
            }
            (None, Some(e)) => {
                cx.binding_name = Some(name.name.clone());
                let t = self.expr(cx, e, None);
                cx.binding_name = None;
                self.check_void_value(e, &t);
                let t = match t {
                    Ty::Null => Ty::ptr(U8),
                    Ty::FillArray(el) => Ty::Array(el, 1),
                    other => other,
                };
                let mut l = Local::new(t);
                self.init_flags(cx, &mut l, e);
                l
            }
        };
        local.mutable = true;
        if cx.is_kernel() && matches!(local.ty, Ty::Array(..) | Ty::Struct(_) | Ty::Str(_)) {
            let bytes = self.size_of(&local.ty).unwrap_or(0);
            cx.stack_bytes += bytes.div_ceil(8) * 8;
            if cx.largest_local.as_ref().is_none_or(|(_, _, b)| bytes > *b) {
                cx.largest_local = Some((name.span, name.name.clone(), bytes));
            }
        }
        self.declare_local(cx, name, local);
    }

    /// E0318: a void call used as a value.
    fn check_void_value(&mut self, e: &Expr, t: &Ty) {
        if matches!(t, Ty::Void) {
            self.error(Code::E0318, e.span, "this call returns no value");
        }
    }

    /// Flow facts a local inherits from its initialiser.
    pub(super) fn init_flags(&mut self, cx: &FnCtx, l: &mut Local, e: &Expr) {
        l.entry_of = self.map_entry_of(cx, e);
        l.address_of_local = local_address(cx, e);
        l.packet = self.is_packet(cx, e);
        l.foreign = self.foreign_of(cx, e);
        match &e.kind {
            ExprKind::Call { callee, args } => {
                if let ExprKind::Field(recv, m) = &callee.kind {
                    if let ExprKind::Ident(rn) = &recv.kind {
                        if let Some(Symbol::Map(mi)) = self.symbols.get(rn) {
                            if m.name == "reserve" {
                                l.record_of = Some(*mi);
                                l.nullable = true;
                            }
                        }
                    }
                }
                if let ExprKind::Ident(f) = &callee.kind {
                    // A reported `bpf_map_lookup_elem(&m, …)` habit: one error, not a null check too.
                    let trusted =
                        f == "bpf_get_current_task_btf" || self.habit_map(cx, f, args).is_some();
                    let ext = matches!(self.symbols.get(f), Some(Symbol::Extern(_)))
                        || super::builtins::helper(f).is_some();
                    l.nullable = ext && !trusted && l.ty.is_ptr();
                }
            }
            ExprKind::New { .. } => {
                l.nullable = cx.is_kernel();
                l.owned_object = cx.is_kernel();
            }
            ExprKind::Index(..) if l.ty.is_ptr() && l.entry_of.is_some() => l.nullable = true,
            // The address of an entry binding is the entry's, null when it is absent.
            ExprKind::Unary(UnOp::AddrOf, inner) => {
                if let ExprKind::Ident(n) = &field_path_root(inner).kind {
                    if let Some(o) = cx.lookup(n).filter(|o| o.entry_of.is_some()) {
                        l.nullable = !o.non_null;
                        l.address_of_local = None;
                    }
                }
            }
            ExprKind::Ident(other) => {
                if let Some(o) = cx.lookup(other) {
                    l.nullable = o.nullable && !o.non_null;
                    l.param_of = if o.non_null { None } else { o.param_of };
                    l.non_null = o.non_null;
                    l.packet |= o.packet;
                }
            }
            _ => {}
        }
        if !cx.is_kernel() {
            l.nullable = false;
            l.param_of = None;
        }
    }

    /// The map whose entry `e` denotes (`m[k]`), for presence bindings.
    fn map_entry_of(&self, cx: &FnCtx, e: &Expr) -> Option<usize> {
        if let ExprKind::Index(base, _) = &e.kind {
            if let ExprKind::Ident(n) = &base.kind {
                if cx.lookup(n).is_none() {
                    if let Some(Symbol::Map(mi)) = self.symbols.get(n) {
                        return Some(*mi);
                    }
                }
            }
        }
        None
    }

    /// Operands whose `== null` tests presence (§11.3, §11.2 pop/peek).
    pub(super) fn is_presence_operand(&self, cx: &FnCtx, e: &Expr) -> bool {
        if self.map_entry_of(cx, e).is_some() {
            return true;
        }
        match &e.kind {
            ExprKind::Ident(n) => cx.lookup(n).is_some_and(|l| l.entry_of.is_some()),
            ExprKind::Call { callee, .. } => {
                matches!(&callee.kind, ExprKind::Field(_, m) if m.name == "pop" || m.name == "peek")
            }
            _ => false,
        }
    }

    /// The pointer parameter of the `@helper` function being checked that `e` names.
    pub(super) fn helper_param(&self, cx: &FnCtx, e: &Expr) -> Option<(FuncId, usize)> {
        match &e.kind {
            ExprKind::Ident(n) => cx.lookup(n).and_then(|l| l.param_of),
            _ => None,
        }
    }

    /// Packet pointers (§10.1): `ctx->data`, `ctx->data_meta`, and anything derived from them.
    pub(super) fn is_packet(&self, cx: &FnCtx, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Arrow(base, f) => {
                matches!(&base.kind, ExprKind::Ident(n) if Some(n) == cx.ctx_param.as_ref())
                    && matches!(f.name.as_str(), "data" | "data_meta" | "data_end")
            }
            ExprKind::Ident(n) => cx.lookup(n).is_some_and(|l| l.packet),
            ExprKind::Binary(BinOp::Add | BinOp::Sub, l, r) => {
                self.is_packet(cx, l) ^ self.is_packet(cx, r)
            }
            ExprKind::Cast(inner, _) => self.is_packet(cx, inner),
            _ => false,
        }
    }

    /// The memory a pointer expression points into when the program may only read it through a
    /// helper: a kprobe's or syscall's pointer argument, a copy of one, an offset from one, or a
    /// pointer field read through one.
    pub(super) fn foreign_of(&self, cx: &FnCtx, e: &Expr) -> Option<Foreign> {
        match &e.kind {
            ExprKind::Ident(n) => cx.lookup(n).and_then(|l| l.foreign),
            ExprKind::Binary(BinOp::Add | BinOp::Sub, l, r) => {
                self.foreign_of(cx, l).or_else(|| self.foreign_of(cx, r))
            }
            ExprKind::Cast(inner, _) => self.foreign_of(cx, inner),
            ExprKind::Arrow(base, _)
            | ExprKind::Index(base, _)
            | ExprKind::Unary(UnOp::Deref, base)
                if self.expr_types[e.id.0 as usize].is_ptr() =>
            {
                self.foreign_of(cx, base)
            }
            _ => None,
        }
    }

    /// E0609 for dereferencing a maybe-null pointer in kernel code.
    pub(super) fn check_deref(&mut self, cx: &FnCtx, ptr: &Expr, at: Span) {
        if !cx.is_kernel() {
            return;
        }
        if let Some(memory) = self.foreign_of(cx, ptr) {
            self.foreign_reads.insert(ptr.id, memory);
        }
        if self.is_packet(cx, ptr) {
            self.packet_reads.insert(ptr.id);
        }
        if let ExprKind::Ident(n) = &ptr.kind {
            if let Some(l) = cx.lookup(n) {
                if l.nullable && !l.non_null {
                    self.error(
                        Code::E0609,
                        at,
                        format!("`{n}` may be null here; test it first (`if ({n} != null)`)"),
                    );
                } else if let (Some((f, i)), false) = (l.param_of, l.non_null) {
                    self.helper_param_derefs.push((f, i, at, n.clone()));
                }
                if l.packet && cx.ctx_param.is_none() {
                    self.error(Code::E0611, at, format!("`{n}` is a packet pointer, but this function has no context to bound it; pass `ctx`"));
                }
            }
        }
    }
}

/// The values a returned expression can produce: the arm values of a `match` (recursively), else
/// the expression itself. Arms that end in `return`/`throw` are checked where those are.
fn verdict_leaves(e: &Expr) -> Vec<&Expr> {
    let ExprKind::Match { arms, .. } = &e.kind else {
        return vec![e];
    };
    let mut out = Vec::new();
    for arm in arms {
        let value = match &arm.body {
            ArmBody::Expr(x) => Some(x),
            ArmBody::Block(b) => match b.stmts.last().map(|s| &s.kind) {
                Some(StmtKind::Expr(x)) => Some(x),
                _ => None,
            },
        };
        out.extend(value.map(verdict_leaves).unwrap_or_default());
    }
    out
}

/// The attribute that declares a program kind, for messages.
fn attr_name(kind: ProgKind) -> &'static str {
    match kind {
        ProgKind::Kprobe => "probe",
        k => k.name(),
    }
}

/// "an XDP" / "a tc" …, for suggestions.
fn kind_article(kind: ProgKind) -> &'static str {
    match kind {
        ProgKind::Xdp => "an XDP",
        ProgKind::Tc => "a tc",
        ProgKind::CgroupSkb => "a cgroup_skb",
        _ => "this",
    }
}

/// Whether a `while (true)` body can leave the loop (§14.2): a `break` of this loop, or any
/// `return` or `throw`.
fn block_can_exit_loop(b: &Block) -> bool {
    b.stmts.iter().any(|s| stmt_exits(s, true))
}

/// Whether some statement of `b` (at any depth) may wait or leave the program: it calls `sleep`,
/// `dispatch`, `daemon` or `exec`, or a function of the program (which may do so); `print`
/// and the other builtins return at once.
fn block_waits(b: &Block) -> bool {
    b.stmts.iter().any(stmt_waits)
}

fn stmt_waits(s: &Stmt) -> bool {
    match &s.kind {
        StmtKind::Var { init, .. } => init.as_ref().is_some_and(expr_waits),
        StmtKind::Const { init, .. } => expr_waits(init),
        StmtKind::Assign { target, value, .. } => expr_waits(target) || expr_waits(value),
        StmtKind::Expr(e)
        | StmtKind::Return(Some(e))
        | StmtKind::Delete(e)
        | StmtKind::Throw(e) => expr_waits(e),
        StmtKind::Defer(deferred) => stmt_waits(deferred),
        StmtKind::If { cond, then, els } => {
            let cond = match cond {
                IfCond::Expr(e) | IfCond::Let { init: e, .. } => e,
            };
            expr_waits(cond)
                || block_waits(then)
                || els.as_deref().is_some_and(|e| match e {
                    ElseBranch::Block(b) => block_waits(b),
                    ElseBranch::If(s) => stmt_waits(s),
                })
        }
        StmtKind::While { cond, body } => expr_waits(cond) || block_waits(body),
        StmtKind::ForRange { lo, hi, body, .. } => {
            expr_waits(lo) || expr_waits(hi) || block_waits(body)
        }
        StmtKind::ForEach { body, .. } => block_waits(body),
        StmtKind::Try { body, catches } => {
            block_waits(body) || catches.iter().any(|c| block_waits(&c.body))
        }
        _ => false,
    }
}

fn expr_waits(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Call { callee, args } => {
            let waits = match &callee.kind {
                ExprKind::Ident(name) => {
                    !crate::sema::builtins::is_builtin(name)
                        || matches!(name.as_str(), "sleep" | "dispatch" | "daemon" | "exec")
                }
                _ => true,
            };
            waits || args.iter().any(expr_waits)
        }
        ExprKind::Unary(_, x)
        | ExprKind::Cast(x, _)
        | ExprKind::Field(x, _)
        | ExprKind::Arrow(x, _)
        | ExprKind::SizeofExpr(x) => expr_waits(x),
        ExprKind::Binary(_, a, b) | ExprKind::Index(a, b) => expr_waits(a) || expr_waits(b),
        ExprKind::ArrayLit(xs) => xs.iter().any(expr_waits),
        ExprKind::StructLit { fields, .. } => fields.iter().any(|(_, x)| expr_waits(x)),
        ExprKind::Match { scrutinee, .. } => expr_waits(scrutinee),
        ExprKind::New { arg, .. } => arg.as_deref().is_some_and(expr_waits),
        _ => false,
    }
}

fn block_has_break(b: &Block) -> bool {
    b.stmts.iter().any(|s| stmt_exits(s, false))
}

/// `any_exit`: count return/throw too; breaks inside nested loops belong to those loops.
fn stmt_exits(s: &Stmt, any_exit: bool) -> bool {
    let in_block = |b: &Block| b.stmts.iter().any(|s| stmt_exits(s, any_exit));
    match &s.kind {
        StmtKind::Break => true,
        StmtKind::Return(_) | StmtKind::Throw(_) => any_exit,
        StmtKind::If { then, els, .. } => {
            in_block(then)
                || els.as_deref().is_some_and(|e| match e {
                    ElseBranch::Block(b) => in_block(b),
                    ElseBranch::If(s) => stmt_exits(s, any_exit),
                })
        }
        StmtKind::Try { body, catches } => {
            in_block(body) || catches.iter().any(|c| in_block(&c.body))
        }
        StmtKind::While { body, .. }
        | StmtKind::ForRange { body, .. }
        | StmtKind::ForEach { body, .. } => any_exit && body.stmts.iter().any(stmt_returns),
        StmtKind::Expr(e) => match_arm_blocks(e).any(in_block),
        _ => false,
    }
}

fn stmt_returns(s: &Stmt) -> bool {
    match &s.kind {
        StmtKind::Return(_) | StmtKind::Throw(_) => true,
        StmtKind::If { then, els, .. } => {
            then.stmts.iter().any(stmt_returns)
                || els.as_deref().is_some_and(|e| match e {
                    ElseBranch::Block(b) => b.stmts.iter().any(stmt_returns),
                    ElseBranch::If(s) => stmt_returns(s),
                })
        }
        StmtKind::While { body, .. }
        | StmtKind::ForRange { body, .. }
        | StmtKind::ForEach { body, .. } => body.stmts.iter().any(stmt_returns),
        StmtKind::Try { body, catches } => {
            body.stmts.iter().any(stmt_returns)
                || catches
                    .iter()
                    .any(|c| c.body.stmts.iter().any(stmt_returns))
        }
        StmtKind::Expr(e) => match_arm_blocks(e).any(|b| b.stmts.iter().any(stmt_returns)),
        _ => false,
    }
}

/// The block arms of a `match` used as a statement (where a `break`, `return` or `throw` may hide).
fn match_arm_blocks(e: &Expr) -> impl Iterator<Item = &Block> {
    let arms: &[MatchArm] = match &e.kind {
        ExprKind::Match { arms, .. } => arms,
        _ => &[],
    };
    arms.iter().filter_map(|a| match &a.body {
        ArmBody::Block(b) => Some(b),
        ArmBody::Expr(_) => None,
    })
}

/// The local (and the `&` that took it) whose address `e` is: `&x`, `&x.f`, `&x[i]` (through
/// casts) for a local `x` that is not itself a pointer, or a local holding such an address.
/// `v` of `v.f.g`: the expression a chain of field accesses starts from (`e` itself if none).
pub(super) fn field_path_root(mut e: &Expr) -> &Expr {
    while let ExprKind::Field(base, _) = &e.kind {
        e = base;
    }
    e
}

fn local_address(cx: &FnCtx, e: &Expr) -> Option<(String, Span)> {
    match &e.kind {
        ExprKind::Unary(UnOp::AddrOf, inner) => {
            let mut root = &**inner;
            while let ExprKind::Field(base, _) | ExprKind::Index(base, _) = &root.kind {
                root = base;
            }
            let ExprKind::Ident(n) = &root.kind else {
                return None;
            };
            let local = cx.lookup(n)?;
            (!matches!(local.ty, Ty::Ptr(_))).then(|| (n.clone(), e.span))
        }
        ExprKind::Cast(x, _) => local_address(cx, x),
        ExprKind::Ident(n) => cx.lookup(n)?.address_of_local.clone(),
        _ => None,
    }
}
