//! Function bodies: scopes of stack slots and the statements of §8, as structured `ks` ops.

use super::scopes::Scopes;
use super::Lowerer;
use crate::diagnostics::Span;
use crate::ir::{views::KsFunc, Attr, BlockId, Builder, Loc, OpId, Type, Value};
use crate::sema::env::{FnKind, FuncId};
use crate::sema::types::Ty;
use crate::syntax::ast::*;

/// How a name in a function scope is stored.
#[derive(Clone, Debug)]
pub(super) enum Slot {
    /// A stack slot holding the variable's value.
    Var { addr: Value },
    /// `var v = m[k]`: a slot holding the address of an entry of map `map` (null when absent),
    /// §11.3.
    Entry { addr: Value, map: usize },
}

pub(super) struct FnLower<'l, 'c, 'a> {
    pub lw: &'l mut Lowerer<'c, 'a>,
    pub kind: FnKind,
    pub ret: Ty,
    pub block: BlockId,
    pub loc: Loc,
    entry: BlockId,
    slots_at: usize,
    scopes: Scopes<Slot>,
    named_ret: Option<(Value, Ty)>,
    /// Parameter names, in order (tail calls pass them through).
    pub params: Vec<String>,
    /// The slots of [`Self::constant_string`], by content and capacity.
    constant_strings: std::collections::HashMap<(Vec<u8>, u32), Value>,
}

pub(super) fn lower_body(lw: &mut Lowerer, id: FuncId, op: OpId) {
    let f = &lw.ck.funcs[id.0 as usize];
    let decl = f.decl;
    let region = KsFunc(op).body_region(&lw.m);
    let entry = lw.m.region(region).blocks[0];
    let params: Vec<Type> = f.params.iter().map(|p| lw.ir_type(p)).collect();
    let mut fl = FnLower {
        kind: f.kind.clone(),
        ret: f.ret.clone(),
        block: entry,
        loc: Loc::default(),
        entry,
        slots_at: 0,
        scopes: Scopes::new(),
        named_ret: None,
        params: decl.params.iter().map(|p| p.name.name.clone()).collect(),
        constant_strings: std::collections::HashMap::new(),
        lw,
    };
    fl.loc = fl.lw.loc(decl.name.span);
    // Parameters arrive as entry-block arguments and are copied into slots so they are assignable.
    for (p, ty) in decl.params.iter().zip(params) {
        let arg = fl.lw.m.add_block_arg(entry, ty.clone());
        fl.lw
            .m
            .set_value_name(arg, Some(std::rc::Rc::from(p.name.name.as_str())));
        let addr = fl.slot(ty, &p.name.name);
        fl.b().core_store(arg, addr);
        fl.declare(&p.name.name, Slot::Var { addr });
    }
    if let RetSpec::Named(n, _) = &decl.ret {
        let ty = fl.lw.ir_type(&fl.ret.clone());
        let addr = fl.slot(ty, &n.name);
        fl.named_ret = Some((addr, fl.ret.clone()));
        fl.declare(&n.name, Slot::Var { addr });
    }
    fl.stmts(&decl.body.stmts);
    if !fl.terminated() {
        fl.loc = fl.lw.loc(decl.body.close_span());
        fl.fall_off_end();
    }
}

impl<'l, 'c, 'a> FnLower<'l, 'c, 'a> {
    pub fn b(&mut self) -> Builder<'_> {
        let mut b = Builder::new(&mut self.lw.m, self.block);
        b.loc = self.loc;
        b
    }

    pub fn at(&mut self, span: Span) {
        self.loc = self.lw.loc(span);
    }

    pub fn terminated(&self) -> bool {
        self.lw
            .m
            .block(self.block)
            .ops
            .last()
            .is_some_and(|&o| self.lw.m.is_terminator(o))
    }

    /// A function-lifetime stack slot, placed with the others at the top of the entry block.
    pub fn slot(&mut self, ty: Type, name: &str) -> Value {
        let mut b = Builder::new(&mut self.lw.m, self.entry);
        b.at = Some(self.slots_at);
        b.loc = self.loc;
        self.slots_at += 1;
        b.core_local(
            ty.clone(),
            (!name.is_empty()).then(|| name.as_bytes().to_vec()),
            None,
            None,
            Type::ptr(ty),
        )
    }

    /// A slot holding the constant string `bytes` as a value of `ty` (`str(N)`, truncated to its
    /// capacity as assignment does, §6.5), stored at the function's entry and never written
    /// again; one per string and type.
    pub fn constant_string(&mut self, bytes: &[u8], ty: &Type) -> Value {
        let Type::Str(capacity) = *ty else {
            panic!("a constant string slot holds a string")
        };
        let keep = bytes[..bytes.len().min(capacity as usize - 1)].to_vec();
        if let Some(&slot) = self.constant_strings.get(&(keep.clone(), capacity)) {
            return slot;
        }
        let slot = self.slot(ty.clone(), "");
        let mut b = Builder::new(&mut self.lw.m, self.entry);
        b.at = Some(self.slots_at);
        b.loc = self.loc;
        let value = b.core_string(keep.clone(), ty.clone());
        b.core_store(value, slot);
        self.slots_at += 2;
        self.constant_strings.insert((keep, capacity), slot);
        slot
    }

    pub fn declare(&mut self, name: &str, s: Slot) {
        self.scopes.declare(name, s);
    }

    pub fn lookup(&self, name: &str) -> Option<&Slot> {
        self.scopes.lookup(name)
    }

    fn fall_off_end(&mut self) {
        if let Some((addr, _)) = self.named_ret {
            let t = self.lw.m.value_type(addr).pointee().unwrap().clone();
            let v = self.b().core_load(addr, t);
            self.b().ks_return(&[v]);
        } else if self.ret == Ty::Void {
            self.b().ks_return(&[]);
        } else {
            // E0405 guarantees this point is unreachable.
            self.b().core_unreachable();
        }
    }

    /// Runs `f` with the insertion point at the end of `block`, then restores it.
    pub fn in_block<R>(&mut self, block: BlockId, f: impl FnOnce(&mut Self) -> R) -> R {
        let saved = self.block;
        self.block = block;
        self.scopes.open();
        let r = f(self);
        self.scopes.close();
        self.block = saved;
        r
    }

    pub fn entry_of(&self, op: OpId, region: usize) -> BlockId {
        let r = self.lw.m.op(op).regions[region];
        self.lw.m.region(r).blocks[0]
    }

    pub fn stmts(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            if self.terminated() {
                break; // unreachable code (W0004)
            }
            self.stmt(s);
        }
    }

    fn scoped(&mut self, block: BlockId, b: &Block) {
        self.in_block(block, |fl| fl.stmts(&b.stmts));
    }

    fn local_ty(&self, name: &Ident) -> Option<(Ty, Option<usize>)> {
        self.lw
            .ck
            .local_decls
            .get(&name.span)
            .map(|d| (d.ty.clone(), d.entry_of))
    }

    fn stmt(&mut self, s: &Stmt) {
        self.at(s.span);
        match &s.kind {
            StmtKind::Var { name, init, .. } => self.var_decl(name, init.as_ref()),
            StmtKind::Const { name, init, .. } => self.var_decl(name, Some(init)),
            StmtKind::Assign { target, op, value } => self.assign(target, *op, value),
            StmtKind::Expr(e) if self.lw.ck.implicit_returns.contains(&e.id) => {
                self.return_stmt(Some(e))
            }
            StmtKind::Expr(e) => {
                self.expr_stmt(e);
            }
            StmtKind::Return(v) => self.return_stmt(v.as_ref()),
            StmtKind::If { cond, then, els } => self.if_stmt(cond, then, els.as_deref()),
            StmtKind::While { cond, body } => {
                let op = self.b().ks_while();
                let (cb, bb) = (self.entry_of(op, 0), self.entry_of(op, 1));
                self.in_block(cb, |fl| {
                    let c = fl.condition(cond);
                    fl.b().ks_yield(&[c]);
                });
                self.scoped(bb, body);
            }
            StmtKind::ForRange { var, lo, hi, body } => {
                let ty = self
                    .local_ty(var)
                    .map(|t| t.0)
                    .unwrap_or(Ty::Int(crate::sema::types::IntTy::U32));
                let lo_v = self.coerced(lo, &ty);
                let hi_v = self.coerced(hi, &ty);
                let op = self.b().ks_for(lo_v, hi_v, None, None, None);
                let bb = self.entry_of(op, 0);
                let ity = self.lw.ir_type(&ty);
                let i = self.lw.m.add_block_arg(bb, ity.clone());
                let addr = self.slot(ity, &var.name);
                self.in_block(bb, |fl| {
                    fl.b().core_store(i, addr);
                    fl.declare(&var.name, Slot::Var { addr });
                    fl.stmts(&body.stmts);
                });
            }
            StmtKind::ForEach {
                key,
                value,
                map,
                body,
            } => {
                let mi = self
                    .lw
                    .ck
                    .maps
                    .iter()
                    .position(|m| m.name == map.name)
                    .unwrap_or(0);
                let info = self.lw.ck.maps[mi].clone();
                let op = self.b().ks_map_foreach(&info.name);
                let bb = self.entry_of(op, 0);
                let kt = self.lw.ir_type(&info.key);
                let vt = self.lw.ir_type(&info.value);
                let k = self.lw.m.add_block_arg(bb, kt.clone());
                let v = self.lw.m.add_block_arg(bb, vt.clone());
                let ka = self.slot(kt, &key.name);
                let va = self.slot(vt, &value.name);
                self.in_block(bb, |fl| {
                    fl.b().core_store(k, ka);
                    fl.b().core_store(v, va);
                    if key.name != "_" {
                        fl.declare(&key.name, Slot::Var { addr: ka });
                    }
                    if value.name != "_" {
                        fl.declare(&value.name, Slot::Var { addr: va });
                    }
                    fl.stmts(&body.stmts);
                });
            }
            StmtKind::Delete(e) => self.delete(e),
            StmtKind::Break => {
                self.b().ks_break();
            }
            StmtKind::Continue => {
                self.b().ks_continue();
            }
            StmtKind::Try { body, catches } => {
                let pats = catches
                    .iter()
                    .map(|c| match &c.pattern {
                        CatchPattern::Code(n, _) => Attr::Int(*n as i64 as i128),
                        // (Sema checked the name is a non-negative integer constant.)
                        CatchPattern::Named(id) => {
                            match self.pattern_value(&Pattern::Name(id.clone())) {
                                Some(crate::sema::consteval::ConstValue::Int(n)) => Attr::Int(n),
                                _ => Attr::Str(b"_".to_vec()),
                            }
                        }
                        CatchPattern::Wildcard(_) => Attr::Str(b"_".to_vec()),
                    })
                    .collect();
                let op = self.b().ks_try(pats, catches.len());
                let bb = self.entry_of(op, 0);
                self.scoped(bb, body);
                for (i, c) in catches.iter().enumerate() {
                    let hb = self.entry_of(op, i + 1);
                    self.scoped(hb, &c.body);
                }
            }
            StmtKind::Throw(e) => {
                let v = self.rvalue(e);
                let code = self.convert(v, &Type::i64());
                self.b().ks_throw(code);
            }
            StmtKind::Defer(deferred) => {
                let op = self.b().ks_defer();
                let bb = self.entry_of(op, 0);
                self.in_block(bb, |fl| fl.stmt(deferred));
            }
        }
    }

    fn var_decl(&mut self, name: &Ident, init: Option<&Expr>) {
        let (ty, entry) = self.local_ty(name).unwrap_or((Ty::Error, None));
        if let Some(map) = entry {
            // `var v = m[k]`: keep the entry's address (§11.3).
            let init = init.expect("entry bindings have an initialiser");
            let p = self.entry_address(init);
            let pt = self.lw.m.value_type(p).clone();
            let addr = self.slot(pt, &name.name);
            self.b().core_store(p, addr);
            self.declare(&name.name, Slot::Entry { addr, map });
            return;
        }
        let ity = self.lw.ir_type(&ty);
        let v = match init {
            Some(e) => self.coerced(e, &ty),
            None => self.b().core_zero(ity.clone()),
        };
        let addr = self.slot(ity, &name.name);
        self.b().core_store(v, addr);
        self.declare(&name.name, Slot::Var { addr });
    }

    fn return_stmt(&mut self, v: Option<&Expr>) {
        match v {
            None => self.fall_off_end(),
            Some(e) => {
                if self.tail_position(e) {
                    return;
                }
                let ret = self.ret.clone();
                let v = self.coerced(e, &ret);
                self.b().ks_return(&[v]);
            }
        }
    }

    /// Lowers `return e` where `e` is a program call (a tail call) or a match with such arms (§9.5).
    /// Returns true when it emitted the whole statement.
    fn tail_position(&mut self, e: &Expr) -> bool {
        if self.kind.program_kind().is_none() {
            return false;
        }
        match &e.kind {
            ExprKind::Call { callee, .. } => {
                if let Some(target) = self.program_callee(callee) {
                    let ctx = self.lookup(&self.params[0]).cloned();
                    let Some(Slot::Var { addr }) = ctx else {
                        return false;
                    };
                    let pt = self.lw.m.value_type(addr).pointee().unwrap().clone();
                    let c = self.b().core_load(addr, pt);
                    self.b().ks_tail_call(c, &target);
                    return true;
                }
                false
            }
            ExprKind::Match { arms, .. } if arms.iter().any(|a| self.arm_tail_calls(&a.body)) => {
                let ret = self.ret.clone();
                if let Some(v) = self.match_expr(e, Some(&ret), true) {
                    self.b().ks_return(&[v]);
                }
                true
            }
            _ => false,
        }
    }

    /// The IR name of the program a call expression names, if it names one.
    /// Whether a match arm's value is a program call (`ipv4(ctx)`, or a block arm ending in one):
    /// under `return match` a tail call.
    fn arm_tail_calls(&self, body: &ArmBody) -> bool {
        let last = match body {
            ArmBody::Expr(x) => x,
            ArmBody::Block(b) => match b.stmts.last().map(|s| &s.kind) {
                Some(StmtKind::Expr(x)) => x,
                _ => return false,
            },
        };
        matches!(&last.kind, ExprKind::Call { callee, .. } if self.program_callee(callee).is_some())
    }

    pub fn program_callee(&self, callee: &Expr) -> Option<String> {
        let ExprKind::Ident(n) = &callee.kind else {
            return None;
        };
        if self.lookup(n).is_some() {
            return None;
        }
        match self.lw.ck.symbols.get(n) {
            Some(crate::sema::env::Symbol::Func(id))
                if matches!(self.lw.ck.funcs[id.0 as usize].kind, FnKind::Program { .. }) =>
            {
                Some(self.lw.func_name(*id))
            }
            _ => None,
        }
    }

    fn if_stmt(&mut self, cond: &IfCond, then: &Block, els: Option<&ElseBranch>) {
        let mut bind: Option<(String, Slot, Value, Type)> = None;
        let c = match cond {
            IfCond::Expr(e) => self.condition(e),
            IfCond::Let { name, init } => {
                let (c, slot) = self.if_let(name, init);
                bind = Some((name.name.clone(), slot.0, slot.1, slot.2));
                c
            }
        };
        let op = self.b().ks_if(c, None, &[]);
        let (tb, eb) = (self.entry_of(op, 0), self.entry_of(op, 1));
        self.in_block(tb, |fl| {
            if let Some((n, s, v, _)) = bind {
                let addr = match &s {
                    Slot::Var { addr } | Slot::Entry { addr, .. } => *addr,
                };
                fl.b().core_store(v, addr);
                fl.declare(&n, s);
            }
            fl.stmts(&then.stmts);
        });
        match els {
            None => {}
            Some(ElseBranch::Block(b)) => self.scoped(eb, b),
            Some(ElseBranch::If(s)) => self.in_block(eb, |fl| fl.stmt(s)),
        }
    }

    /// `if (var v = init)`: the condition and the binding (slot, value to store, its type).
    fn if_let(&mut self, name: &Ident, init: &Expr) -> (Value, (Slot, Value, Type)) {
        if let Some(map) = self.accessed_map(init) {
            let p = self.entry_address(init);
            let c = self.non_null(p);
            let pt = self.lw.m.value_type(p).clone();
            let addr = self.slot(pt.clone(), &name.name);
            return (c, (Slot::Entry { addr, map }, p, pt));
        }
        if let Some((v, present)) = self.pop_call(init) {
            let vt = self.lw.m.value_type(v).clone();
            let addr = self.slot(vt.clone(), &name.name);
            return (present, (Slot::Var { addr }, v, vt));
        }
        let p = self.rvalue(init);
        let c = self.non_null(p);
        let pt = self.lw.m.value_type(p).clone();
        let addr = self.slot(pt.clone(), &name.name);
        (c, (Slot::Var { addr }, p, pt))
    }

    fn delete(&mut self, e: &Expr) {
        if let ExprKind::Index(base, key) = &e.kind {
            if let Some(mi) = self.map_of(base) {
                let info = self.lw.ck.maps[mi].clone();
                let k = self.coerced(key, &info.key);
                self.b().ks_map_delete(k, &info.name);
                return;
            }
        }
        let p = self.rvalue(e);
        self.b().ks_delete(p);
    }

    pub fn expr_stmt(&mut self, e: &Expr) {
        let t = self.ty(e);
        let python = matches!(&e.kind, ExprKind::Call { callee, .. } if self.python_callee(callee).is_some());
        if t == Ty::Void || python {
            self.void_expr(e);
        } else {
            self.rvalue(e);
        }
    }
}
