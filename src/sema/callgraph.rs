//! Whole-program rules over calls between functions: which functions may throw (for E0407 and
//! W0003), and recursion among kernel-side functions (E0502, eBPF forbids it).

use super::env::*;
use super::Checker;
use crate::diagnostics::{Code, Span};
use crate::syntax::ast::*;
use std::collections::{HashMap, HashSet};

impl Checker<'_, '_> {
    /// Functions from which a throw can escape: a `throw` or a call of such a function outside
    /// every `try … catch _`. Computed before bodies are checked, from the syntax alone.
    pub(super) fn compute_may_throw(&mut self) {
        let names: HashMap<String, FuncId> = self
            .symbols
            .iter()
            .filter_map(|(n, s)| {
                if let Symbol::Func(id) = s {
                    Some((n.clone(), *id))
                } else {
                    None
                }
            })
            .collect();
        // A Python function may raise: its exceptions are throws (§15.8).
        let python: HashSet<&str> = self
            .unit
            .imports
            .iter()
            .filter(|m| m.python.is_some())
            .map(|m| m.name.name.as_str())
            .collect();
        let mut direct: HashSet<FuncId> = HashSet::new();
        let mut calls: Vec<(FuncId, FuncId)> = Vec::new();
        for (i, f) in self.funcs.iter().enumerate() {
            let id = FuncId(i as u32);
            let mut scan = ThrowScan {
                throws: false,
                callees: Vec::new(),
                python: &python,
            };
            scan.block(&f.decl.body, 0);
            if scan.throws {
                direct.insert(id);
            }
            calls.extend(
                scan.callees
                    .iter()
                    .filter_map(|n| names.get(n))
                    .map(|c| (id, *c)),
            );
        }
        let mut changed = true;
        while changed {
            changed = false;
            for (caller, callee) in &calls {
                if direct.contains(callee) && direct.insert(*caller) {
                    changed = true;
                }
            }
        }
        self.may_throw = direct;
    }

    pub(super) fn check_call_graph(&mut self) {
        // E0502: a cycle among kernel-side functions, reported at the call that closes it.
        let kernel = |c: &Self, f: FuncId| c.funcs[f.0 as usize].kind.target() == Target::Bpf;
        let mut adj: HashMap<FuncId, Vec<(FuncId, Span)>> = HashMap::new();
        for (a, b, s) in &self.call_edges {
            if kernel(self, *a) && kernel(self, *b) {
                adj.entry(*a).or_default().push((*b, *s));
            }
        }
        let mut state: HashMap<FuncId, u8> = HashMap::new(); // 1 = on stack, 2 = done
        let mut reported: HashSet<Span> = HashSet::new();
        let mut roots: Vec<FuncId> = adj.keys().copied().collect();
        roots.sort();
        for root in roots {
            if state.contains_key(&root) {
                continue;
            }
            // Iterative DFS: recursion depth must not depend on the input program.
            let mut stack: Vec<(FuncId, usize)> = vec![(root, 0)];
            state.insert(root, 1);
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let edges = adj.get(&node).cloned().unwrap_or_default();
                if *next < edges.len() {
                    let (to, span) = edges[*next];
                    *next += 1;
                    match state.get(&to) {
                        Some(1) => {
                            if reported.insert(span) {
                                let from = &self.funcs[node.0 as usize].name;
                                let target = &self.funcs[to.0 as usize].name;
                                let msg = format!("`{from}` calls `{target}`, which is already on the call chain; eBPF does not allow recursion");
                                self.error(Code::E0502, span, msg);
                            }
                        }
                        Some(_) => {}
                        None => {
                            state.insert(to, 1);
                            stack.push((to, 0));
                        }
                    }
                } else {
                    state.insert(node, 2);
                    stack.pop();
                }
            }
        }
    }
}

struct ThrowScan<'p> {
    throws: bool,
    callees: Vec<String>,
    /// The names of the modules imported from `.py` files.
    python: &'p HashSet<&'p str>,
}

impl ThrowScan<'_> {
    fn block(&mut self, b: &Block, catch_all: u32) {
        for s in &b.stmts {
            self.stmt(s, catch_all);
        }
    }

    fn stmt(&mut self, s: &Stmt, catch_all: u32) {
        match &s.kind {
            StmtKind::Throw(e) => {
                self.expr(e, catch_all);
                if catch_all == 0 {
                    self.throws = true;
                }
            }
            StmtKind::Try { body, catches } => {
                let all = catches
                    .iter()
                    .any(|c| matches!(c.pattern, CatchPattern::Wildcard(_)));
                self.block(body, catch_all + all as u32);
                for c in catches {
                    self.block(&c.body, catch_all);
                }
            }
            StmtKind::Var { init: Some(e), .. }
            | StmtKind::Const { init: e, .. }
            | StmtKind::Expr(e)
            | StmtKind::Return(Some(e))
            | StmtKind::Delete(e) => self.expr(e, catch_all),
            StmtKind::Defer(deferred) => self.stmt(deferred, catch_all),
            StmtKind::Assign { target, value, .. } => {
                self.expr(target, catch_all);
                self.expr(value, catch_all);
            }
            StmtKind::If { cond, then, els } => {
                match cond {
                    IfCond::Expr(e) | IfCond::Let { init: e, .. } => self.expr(e, catch_all),
                }
                self.block(then, catch_all);
                match els.as_deref() {
                    Some(ElseBranch::Block(b)) => self.block(b, catch_all),
                    Some(ElseBranch::If(s)) => self.stmt(s, catch_all),
                    None => {}
                }
            }
            StmtKind::While { cond, body } => {
                self.expr(cond, catch_all);
                self.block(body, catch_all);
            }
            StmtKind::ForRange { lo, hi, body, .. } => {
                self.expr(lo, catch_all);
                self.expr(hi, catch_all);
                self.block(body, catch_all);
            }
            StmtKind::ForEach { body, .. } => self.block(body, catch_all),
            _ => {}
        }
    }

    /// Collects called names; nesting is bounded by the lexer's bracket limit.
    fn expr(&mut self, e: &Expr, catch_all: u32) {
        match &e.kind {
            ExprKind::Call { callee, args } => {
                if let ExprKind::Ident(n) = &callee.kind {
                    if catch_all == 0 {
                        self.callees.push(n.clone());
                    }
                } else if let ExprKind::Field(m, _) = &callee.kind {
                    if matches!(&m.kind, ExprKind::Ident(m) if self.python.contains(m.as_str())) {
                        self.throws |= catch_all == 0;
                    }
                    self.expr(callee, catch_all);
                } else {
                    self.expr(callee, catch_all);
                }
                for a in args {
                    self.expr(a, catch_all);
                }
            }
            ExprKind::Unary(_, x)
            | ExprKind::Cast(x, _)
            | ExprKind::Field(x, _)
            | ExprKind::Arrow(x, _)
            | ExprKind::SizeofExpr(x) => self.expr(x, catch_all),
            ExprKind::Binary(_, a, b) | ExprKind::Index(a, b) => {
                self.expr(a, catch_all);
                self.expr(b, catch_all);
            }
            ExprKind::ArrayLit(xs) => xs.iter().for_each(|x| self.expr(x, catch_all)),
            ExprKind::StructLit { fields, .. } => {
                fields.iter().for_each(|(_, x)| self.expr(x, catch_all))
            }
            ExprKind::Match { scrutinee, arms } => {
                self.expr(scrutinee, catch_all);
                for a in arms {
                    match &a.body {
                        ArmBody::Expr(x) => self.expr(x, catch_all),
                        ArmBody::Block(b) => self.block(b, catch_all),
                    }
                }
            }
            _ => {}
        }
    }
}
