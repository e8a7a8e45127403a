//! `flatten`: structured `ks` control flow → a CFG of blocks, with the language's exit semantics.
//!
//! Every region becomes blocks; `ks.yield` becomes a branch with block arguments. Each exit —
//! fall-through, `break`, `continue`, `return`, throw, abort, tail call — first runs the cleanups
//! (`ks.defer` regions) registered on the way out, innermost scope first and LIFO within a scope
//! (docs/language.md §13.2, §13.3). A defer region is emitted afresh at every exit that passes it.
//!
//! Throws and aborts cross function boundaries through a hidden status (§13.1, §13.4): a function
//! that may throw or abort and is not an entry point takes a trailing `ptr<[2 x i64]>` parameter
//! (`[0]` = 0 none, 1 thrown, 2 aborted; `[1]` = the code); its callers test it after the call and
//! continue the throw or abort from the call site. At an entry point an uncaught throw becomes the
//! program's return value (kernel, module) or the runtime's uncaught-throw report (userspace); an
//! abort returns the program's pass verdict.

mod catches;

use super::lower_loops;
use super::throw_codes::{self, Codes};
use super::{PassErrors, PassResult};
use crate::ir::cfg;
use crate::ir::OpData;
use crate::ir::{
    views::KsFunc, Attr, BlockId, Builder, FnType, Module, OpId, Opcode, RegionId, Type, Value,
};
use crate::vocab::{CmpPred, ProgKind, Target};
use catches::Clause;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// The hidden status parameter's type.
fn status_type() -> Type {
    Type::ptr(Type::Array(Rc::new(Type::i64()), 2))
}

const STATUS_THROWN: i128 = 1;
const STATUS_ABORTED: i128 = 2;

pub fn run(m: &mut Module) -> PassResult {
    let funcs: Vec<OpId> = m.funcs().collect();
    let aborting = aborting_functions(m);
    let callbacks = loop_callbacks(m);
    // Decide the signatures first so every call site sees its callee's final type.
    let mut with_status = HashSet::new();
    for &f in &funcs {
        let name = m.symbol(f).unwrap_or_default().to_string();
        let throws = KsFunc(f).may_throw(m) == Some(true);
        if (throws || aborting.contains(&name)) && !is_entry(m, f) && !callbacks.contains(&name) {
            with_status.insert(name);
            if let Some(Attr::Type(Type::Func(ft))) = m.attr(f, "ty").cloned() {
                let mut params = ft.params.clone();
                params.push(status_type());
                m.set_attr(
                    f,
                    "ty",
                    Some(Attr::Type(Type::Func(Rc::new(FnType {
                        params,
                        ret: ft.ret.clone(),
                    })))),
                );
            }
        }
    }
    let thrown = throw_codes::by_function(m, &with_status);
    for &f in &funcs {
        catches::copy_return_tails_into_handlers(m, f);
    }
    let mut errors = PassErrors::new();
    for f in funcs {
        let name = m.symbol(f).unwrap_or_default().to_string();
        let mut fl = Flattener::new(
            m,
            f,
            with_status.contains(&name),
            (&with_status, &thrown),
            &aborting,
        );
        if callbacks.contains(&name) {
            fl.loop_ctx =
                fl.m.block(fl.m.region(fl.region).blocks[0])
                    .args
                    .get(1)
                    .copied();
        }
        fl.run();
        errors.extend(fl.errors);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Programs, kfuncs, `main` and tests are called by the kernel or the runtime, which know nothing
/// of the hidden status. (`@private` module functions are not: their throws and aborts reach the
/// calling kfunc, §13.1, §13.4.)
fn is_entry(m: &Module, f: OpId) -> bool {
    let v = KsFunc(f);
    v.kind(m).is_some()
        || v.kfunc(m) == Some(true)
        || v.test(m) == Some(true)
        || m.symbol(f) == Some("main")
}

/// The `bpf_loop` callbacks `lower-loops` outlined: the kernel calls them with (index, context)
/// only, so a throw or abort reaching their top is recorded in the context struct instead.
fn loop_callbacks(m: &Module) -> HashSet<String> {
    let mut names = HashSet::new();
    for f in m.funcs() {
        m.walk_nested(f, &mut |o| {
            if m.op(o).opcode == Opcode::BpfLoop {
                if let Some(Attr::Sym(cb)) = m.attr(o, "callback") {
                    names.insert(cb.clone());
                }
            }
        });
    }
    names
}

/// Kernel and module functions that may abort: they contain `ks.abort` or call one that may
/// (fixpoint).
fn aborting_functions(m: &Module) -> HashSet<String> {
    let mut set: HashSet<String> = HashSet::new();
    let funcs: Vec<OpId> = m
        .funcs()
        .filter(|&f| KsFunc(f).target(m) != Target::Host)
        .collect();
    let mut calls: HashMap<String, Vec<String>> = HashMap::new();
    for &f in &funcs {
        let name = m.symbol(f).unwrap_or_default().to_string();
        let mut callees = Vec::new();
        let mut aborts = false;
        m.walk_nested(f, &mut |o| match m.op(o).opcode {
            Opcode::KsAbort => aborts = true,
            Opcode::CoreCall => {
                if let Some(Attr::Sym(s)) = m.attr(o, "callee") {
                    callees.push(s.clone());
                }
            }
            _ => {}
        });
        if aborts {
            set.insert(name.clone());
        }
        calls.insert(name, callees);
    }
    loop {
        let before = set.len();
        for (f, cs) in &calls {
            if cs.iter().any(|c| set.contains(c)) {
                set.insert(f.clone());
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

#[derive(Clone, Copy)]
enum ScopeKind {
    Block,
    /// `continue` branches to `cont`, passing the counter of a counted loop.
    Loop {
        brk: BlockId,
        cont: BlockId,
        cont_arg: Option<Value>,
    },
    /// A try body: throws go to `dispatch(code)`.
    Try {
        dispatch: BlockId,
    },
}

struct Scope {
    kind: ScopeKind,
    /// Registered `ks.defer` regions, in registration order.
    cleanups: Vec<RegionId>,
}

struct Flattener<'m> {
    m: &'m mut Module,
    func: OpId,
    region: RegionId,
    cur: BlockId,
    /// The current block ended in a terminator: following ops are unreachable.
    dead: bool,
    vmap: HashMap<Value, Value>,
    scopes: Vec<Scope>,
    ret: Type,
    /// This function's status parameter.
    status: Option<Value>,
    /// A status slot for calls this function makes to functions with a status parameter.
    call_status: Option<Value>,
    with_status: &'m HashSet<String>,
    aborting: &'m HashSet<String>,
    /// Shared return paths: for the cleanups a `return` runs (innermost first), the block that
    /// takes the returned values and runs them. Every return with the same cleanups branches
    /// there, so a deferred action is emitted once per set of defers, not once per return.
    return_exits: HashMap<Vec<RegionId>, BlockId>,
    /// While a merged handler is emitted, its constants that stand for values chosen by the
    /// caught code: the code, and each code's value.
    substitutes: HashMap<Value, (Value, Vec<(i128, i128)>)>,
    /// The codes each function with a status parameter may throw.
    thrown: &'m HashMap<String, Codes>,
    /// In a `bpf_loop` callback, its context struct: where a raise reaching the top is recorded.
    loop_ctx: Option<Value>,
    errors: PassErrors,
}

impl<'m> Flattener<'m> {
    fn new(
        m: &'m mut Module,
        func: OpId,
        has_status: bool,
        (with_status, thrown): (&'m HashSet<String>, &'m HashMap<String, Codes>),
        aborting: &'m HashSet<String>,
    ) -> Self {
        let ret = match m.attr(func, "ty") {
            Some(Attr::Type(Type::Func(ft))) => ft.ret.clone(),
            _ => Type::Void,
        };
        let region = m.new_region(Some(func));
        let entry = m.new_block(Some(region));
        let old_entry = m.func_entry(func);
        let mut vmap = HashMap::new();
        for a in m.block(old_entry).args.clone() {
            let t = m.value_type(a).clone();
            let n = m.add_block_arg(entry, t);
            m.set_value_name(n, m.value(a).name.clone());
            vmap.insert(a, n);
        }
        let status = has_status.then(|| {
            let s = m.add_block_arg(entry, status_type());
            m.set_value_name(s, Some(Rc::from("__status")));
            s
        });
        Flattener {
            m,
            func,
            region,
            cur: entry,
            dead: false,
            vmap,
            scopes: Vec::new(),
            ret,
            status,
            call_status: None,
            with_status,
            aborting,
            return_exits: HashMap::new(),
            substitutes: HashMap::new(),
            thrown,
            loop_ctx: None,
            errors: Vec::new(),
        }
    }

    fn run(&mut self) {
        let old = self.m.op(self.func).regions[0];
        let old_entry = self.m.region(old).blocks[0];
        self.scopes.push(Scope {
            kind: ScopeKind::Block,
            cleanups: Vec::new(),
        });
        self.emit_block_ops(old_entry);
        if !self.dead {
            // The lowering ends every function body with a terminator; keep the CFG well formed anyway.
            self.b().core_unreachable();
        }
        self.scopes.pop();
        self.m.op_mut(self.func).regions[0] = self.region;
        self.lay_out_in_source_order();
    }

    /// Blocks are created before the blocks nested in them, so a join would precede its arms'
    /// inner blocks; codegen keeps the order. The verifier walks a branch's fall-through first
    /// and checkpoints a join only if the path reaching it first has run enough since its last
    /// checkpoint, so the layout decides which paths prune: lay out like C, in source order.
    fn lay_out_in_source_order(&mut self) {
        let mut order = cfg::reverse_postorder(self.m, self.region);
        let reachable: HashSet<BlockId> = order.iter().copied().collect();
        let blocks = &mut self.m.region_mut(self.region).blocks;
        order.extend(blocks.iter().filter(|b| !reachable.contains(b)));
        *blocks = order;
    }

    fn b(&mut self) -> Builder<'_> {
        Builder::new(self.m, self.cur)
    }

    fn new_block(&mut self) -> BlockId {
        self.m.new_block(Some(self.region))
    }

    fn start(&mut self, b: BlockId) {
        self.cur = b;
        self.dead = false;
    }

    fn map(&self, v: Value) -> Value {
        self.vmap.get(&v).copied().unwrap_or(v)
    }

    fn terminate(&mut self) {
        self.dead = true;
    }

    /// Emits the ops of an old block into the CFG.
    fn emit_block_ops(&mut self, old: BlockId) {
        let ops = self.m.block(old).ops.clone();
        for op in ops {
            if self.dead {
                return;
            }
            self.emit_op(op);
        }
    }

    /// Emits a region in its own scope; returns the values it yields if control falls out of it.
    fn emit_region(&mut self, r: RegionId, kind: ScopeKind) -> Option<Vec<Value>> {
        self.emit_region_from(r, kind, 0)
    }

    /// [`Self::emit_region`] but for its first `done` ops, which ran already.
    fn emit_region_from(
        &mut self,
        r: RegionId,
        kind: ScopeKind,
        done: usize,
    ) -> Option<Vec<Value>> {
        let block = self.m.region(r).blocks[0];
        self.scopes.push(Scope {
            kind,
            cleanups: Vec::new(),
        });
        let mut yielded = None;
        let ops = self.m.block(block).ops[done..].to_vec();
        for op in ops {
            if self.dead {
                break;
            }
            if self.m.op(op).opcode == Opcode::KsYield {
                yielded = Some(
                    self.m
                        .op(op)
                        .operands
                        .iter()
                        .map(|&v| self.map(v))
                        .collect(),
                );
                break;
            }
            self.emit_op(op);
        }
        let scope = self.scopes.pop().expect("scope");
        if self.dead {
            return None;
        }
        // Falling out of the region runs its own cleanups.
        for &c in scope.cleanups.iter().rev() {
            self.emit_cleanup(c);
        }
        Some(yielded.unwrap_or_default())
    }

    /// A cleanup runs with the scopes that enclosed its `ks.defer`.
    fn emit_cleanup(&mut self, r: RegionId) {
        let saved = std::mem::take(&mut self.scopes);
        self.scopes.push(Scope {
            kind: ScopeKind::Block,
            cleanups: Vec::new(),
        });
        let block = self.m.region(r).blocks[0];
        for op in self.m.block(block).ops.clone() {
            if self.dead || self.m.op(op).opcode == Opcode::KsYield {
                break;
            }
            if matches!(
                self.m.op(op).opcode,
                Opcode::KsReturn
                    | Opcode::KsBreak
                    | Opcode::KsContinue
                    | Opcode::KsThrow
                    | Opcode::KsTailCall
            ) {
                self.errors.push(super::PassError::internal(
                    Some(op),
                    "a deferred expression cannot leave its scope",
                ));
                break;
            }
            self.emit_op(op);
        }
        self.scopes = saved;
    }

    /// The cleanups of every scope above `depth`, innermost first.
    fn cleanups_to(&self, depth: usize) -> Vec<RegionId> {
        self.scopes[depth..]
            .iter()
            .rev()
            .flat_map(|s| s.cleanups.iter().rev().copied())
            .collect()
    }

    /// The block a `return` of `vals` with `pending` cleanups branches to: it runs the innermost
    /// cleanup, then continues to the exit of the rest, the last one returning.
    fn return_exit(
        &mut self,
        pending: &[RegionId],
        vals: &[Value],
        loc: crate::ir::Loc,
    ) -> BlockId {
        if let Some(&b) = self.return_exits.get(pending) {
            return b;
        }
        let block = self.new_block();
        let args: Vec<Value> = vals
            .iter()
            .map(|&v| {
                let t = self.m.value_type(v).clone();
                self.m.add_block_arg(block, t)
            })
            .collect();
        self.return_exits.insert(pending.to_vec(), block);
        let (cur, dead) = (self.cur, self.dead);
        self.start(block);
        self.emit_cleanup(pending[0]);
        if !self.dead {
            if pending.len() == 1 {
                self.b_at(loc).core_ret(&args);
            } else {
                let next = self.return_exit(&pending[1..], &args, loc);
                self.b_at(loc).core_br(&args, vec![next]);
            }
            self.terminate();
        }
        (self.cur, self.dead) = (cur, dead);
        block
    }

    /// Runs the cleanups of every scope above `depth` (innermost first).
    fn unwind_to(&mut self, depth: usize) {
        for r in self.cleanups_to(depth) {
            if self.dead {
                return;
            }
            self.emit_cleanup(r);
        }
    }

    fn emit_op(&mut self, op: OpId) {
        let data = self.m.op(op).clone();
        let prev_loc = data.loc;
        if let Some((code, by_code)) = data.results.first().and_then(|r| self.substitutes.get(r)) {
            let (code, by_code) = (*code, by_code.clone());
            let ty = self.m.value_type(data.results[0]).clone();
            let v = self.chosen_by_code(code, &by_code, ty, prev_loc);
            self.vmap.insert(data.results[0], v);
            return;
        }
        match data.opcode {
            Opcode::KsIf => self.flatten_if(op, data),
            Opcode::KsSwitch => self.flatten_switch(data),
            Opcode::KsWhile => self.flatten_while(data),
            Opcode::KsFor => self.flatten_for(data),
            Opcode::KsTry => self.flatten_try(data),
            Opcode::KsLoadOrZero => self.flatten_load_or_zero(data),
            Opcode::KsDefer => {
                self.scopes
                    .last_mut()
                    .expect("scope")
                    .cleanups
                    .push(data.regions[0]);
            }
            Opcode::KsBreak | Opcode::KsContinue => self.flatten_jump_out(op, data),
            Opcode::KsReturn => {
                let vals: Vec<Value> = data.operands.iter().map(|&v| self.map(v)).collect();
                let pending = self.cleanups_to(0);
                if pending.is_empty() {
                    self.b_at(prev_loc).core_ret(&vals);
                } else {
                    let exit = self.return_exit(&pending, &vals, prev_loc);
                    self.b_at(prev_loc).core_br(&vals, vec![exit]);
                }
                self.terminate();
            }
            Opcode::KsTailCall => {
                // Cleanups run before the tail call (§9.5); the tail-call pass lowers the call itself.
                let ctx = self.map(data.operands[0]);
                self.unwind_to(0);
                if !self.dead {
                    let Some(Attr::Sym(callee)) = data.attrs[0].clone() else {
                        return;
                    };
                    self.b_at(prev_loc).ks_tail_call(ctx, &callee);
                    self.terminate();
                }
            }
            Opcode::KsThrow => {
                let code = self.map(data.operands[0]);
                self.throw_code(code, prev_loc);
            }
            Opcode::KsAbort => self.abort(prev_loc, data.attrs[0].clone()),
            Opcode::CoreCall if self.callee_has_status(&data) => {
                self.call_with_status(&data, prev_loc)
            }
            _ if data.regions.is_empty() => {
                let operands = data.operands.iter().map(|&v| self.map(v)).collect();
                let tys = data
                    .results
                    .iter()
                    .map(|&r| self.m.value_type(r).clone())
                    .collect();
                let mut b = self.b_at(prev_loc);
                let new = b.insert(
                    data.opcode,
                    operands,
                    tys,
                    data.attrs.clone(),
                    0,
                    Vec::new(),
                );
                let results = self.m.op(new).results.clone();
                for (o, n) in data.results.iter().zip(results) {
                    self.vmap.insert(*o, n);
                }
                if self.m.is_terminator(new) {
                    self.terminate();
                }
            }
            _ => {
                self.errors.push(super::PassError::internal(
                    Some(op),
                    format!("`{}` cannot be flattened", data.opcode.name()),
                ));
                self.terminate();
            }
        }
    }

    /// `ks.if`: a conditional branch to the two regions' blocks, which join with the yielded values as block arguments.
    fn flatten_if(&mut self, op: OpId, data: OpData) {
        let prev_loc = data.loc;
        let c = self.map(data.operands[0]);
        let (tb, eb, join) = (self.new_block(), self.new_block(), self.new_block());
        // A branch that only throws or aborts is the exceptional one.
        let expect = match (
            self.m.attr(op, "expect"),
            raises(self.m, data.regions[0]),
            raises(self.m, data.regions[1]),
        ) {
            (Some(&Attr::Bool(b)), _, _) => Some(b),
            (_, true, false) => Some(false),
            (_, false, true) => Some(true),
            _ => None,
        };
        self.b_at(prev_loc)
            .core_cond_br(c, &[], 0, expect, vec![tb, eb]);
        let results = self.join_args(join, &data.results);
        for (i, b) in [tb, eb].into_iter().enumerate() {
            self.start(b);
            if let Some(vals) = self.emit_region(data.regions[i], ScopeKind::Block) {
                self.b_at(prev_loc)
                    .core_br(&vals[..results.min(vals.len())], vec![join]);
            }
        }
        self.start(join);
    }

    /// `ks.switch`: a `core.switch` to the arms' blocks, which join with the yielded values.
    fn flatten_switch(&mut self, data: OpData) {
        let prev_loc = data.loc;
        let v = self.map(data.operands[0]);
        let Some(Attr::List(cases)) = data.attrs[0].clone() else {
            return;
        };
        let join = self.new_block();
        let results = self.join_args(join, &data.results);
        // An arm alike to an earlier one (the default last) branches to its block: `case 0:
        // case 8: info` as C writes it. Fewer destinations let LLVM test a bit of a mask for the
        // cases instead of comparing each, which also leaves the verifier one state, not one
        // per case constant, after the dispatch.
        let same_as: Vec<Option<usize>> = (0..data.regions.len())
            .map(|i| (0..i).find(|&j| identical_regions(self.m, data.regions[j], data.regions[i])))
            .collect();
        let blocks: Vec<Option<BlockId>> = same_as
            .iter()
            .map(|same| same.is_none().then(|| self.new_block()))
            .collect();
        let arms: Vec<BlockId> = (0..data.regions.len())
            .map(|i| blocks[same_as[i].unwrap_or(i)].expect("an arm of its own"))
            .collect();
        // core.switch: default first, then one successor per case.
        let mut succ = vec![*arms.last().unwrap()];
        succ.extend(&arms[..arms.len() - 1]);
        self.b_at(prev_loc).core_switch(v, cases, succ);
        for (i, &b) in arms.iter().enumerate() {
            if same_as[i].is_some() {
                continue;
            }
            self.start(b);
            if let Some(vals) = self.emit_region(data.regions[i], ScopeKind::Block) {
                self.b_at(prev_loc)
                    .core_br(&vals[..results.min(vals.len())], vec![join]);
            }
        }
        self.start(join);
    }

    /// `ks.while`: a header block running the condition, the body looping back to it through
    /// one latch block, where `continue` goes too. (With a back edge per `continue`, LLVM's
    /// LoopSimplify splits the loop into nested ones wherever a value is left unchanged on some
    /// edges, and LSR then rebases each counter per inner loop: a sum of two registers whose
    /// bound the verifier cannot follow.)
    fn flatten_while(&mut self, data: OpData) {
        let prev_loc = data.loc;
        let (header, body, latch, exit) = (
            self.new_block(),
            self.new_block(),
            self.new_block(),
            self.new_block(),
        );
        self.b_at(prev_loc).core_br(&[], vec![header]);
        self.start(header);
        if let Some(c) = self.emit_region(data.regions[0], ScopeKind::Block) {
            let c = c
                .first()
                .copied()
                .unwrap_or_else(|| self.b().core_const(1, Type::Bool));
            self.b_at(prev_loc)
                .core_cond_br(c, &[], 0, None, vec![body, exit]);
        }
        self.start(body);
        if self
            .emit_region(
                data.regions[1],
                ScopeKind::Loop {
                    brk: exit,
                    cont: latch,
                    cont_arg: None,
                },
            )
            .is_some()
        {
            self.b_at(prev_loc).core_br(&[], vec![latch]);
        }
        self.start(latch);
        self.b_at(prev_loc).core_br(&[], vec![header]);
        self.start(exit);
    }

    /// `ks.for`: a counted loop, the counter a block argument of the header. Counting down
    /// (`down`), the header holds the counter plus one, from `hi` while above `lo`.
    fn flatten_for(&mut self, data: OpData) {
        let prev_loc = data.loc;
        let (lo, hi) = (self.map(data.operands[0]), self.map(data.operands[1]));
        let ty = self.m.value_type(lo).clone();
        let down = data.attrs.get(1) == Some(&Some(Attr::Bool(true)));
        let (header, body, latch, exit) = (
            self.new_block(),
            self.new_block(),
            self.new_block(),
            self.new_block(),
        );
        let hi_i = self.m.add_block_arg(header, ty.clone());
        let bi = self.m.add_block_arg(body, ty.clone());
        let li = self.m.add_block_arg(latch, ty.clone());
        let (start, end, pred) = if down {
            (hi, lo, CmpPred::Gt)
        } else {
            (lo, hi, CmpPred::Lt)
        };
        self.b_at(prev_loc).core_br(&[start], vec![header]);
        self.start(header);
        let more = self.b_at(prev_loc).core_cmp(hi_i, end, pred);
        self.b_at(prev_loc)
            .core_cond_br(more, &[hi_i], 1, None, vec![body, exit]);
        self.start(latch);
        let one = self.b_at(prev_loc).core_const(1, ty.clone());
        let next = if down {
            self.b_at(prev_loc).core_sub(li, one)
        } else {
            self.b_at(prev_loc).core_add(li, one)
        };
        self.b_at(prev_loc).core_br(&[next], vec![header]);
        self.start(body);
        let old_body = self.m.region(data.regions[0]).blocks[0];
        if let Some(&oi) = self.m.block(old_body).args.first() {
            let counter = if down {
                let one = self.b_at(prev_loc).core_const(1, ty.clone());
                self.b_at(prev_loc).core_sub(bi, one)
            } else {
                bi
            };
            self.vmap.insert(oi, counter);
        }
        if self
            .emit_region(
                data.regions[0],
                ScopeKind::Loop {
                    brk: exit,
                    cont: latch,
                    cont_arg: Some(bi),
                },
            )
            .is_some()
        {
            self.b_at(prev_loc).core_br(&[bi], vec![latch]);
        }
        self.start(exit);
    }

    /// `ks.try`: the body with throws branching to the handlers.
    fn flatten_try(&mut self, data: OpData) {
        let loc = data.loc;
        let after = self.new_block();
        let dispatch = self.new_block();
        let code = self.m.add_block_arg(dispatch, Type::i64());
        if self
            .emit_region(data.regions[0], ScopeKind::Try { dispatch })
            .is_some()
        {
            self.b_at(loc).core_br(&[], vec![after]);
        }
        let Some(Attr::List(catches)) = data.attrs[0].clone() else {
            return;
        };
        self.start(dispatch);
        // The codes that can reach the dispatch; clauses for no such code are left out.
        let possible =
            throw_codes::of_region(self.m, data.regions[0], self.thrown, self.with_status);
        let clauses: Vec<Clause> = catches
            .iter()
            .zip(&data.regions[1..])
            .map(|(c, &handler)| Clause {
                code: match c {
                    Attr::Int(n) => Some(*n as i64 as i128),
                    _ => None,
                },
                handler,
            })
            .filter(|c| match (c.code, &possible) {
                (Some(n), Some(p)) => p.contains(&n),
                _ => true,
            })
            .collect();
        let possible = self.dispatch(code, &clauses, 0, possible, after, loc);
        if !self.dead {
            if possible.is_some_and(|p| p.is_empty()) {
                // Every code the body can throw was caught.
                self.b_at(loc).core_unreachable();
            } else {
                // No clause matched: the throw continues outward.
                self.throw_code(code, loc);
            }
        }
        self.start(after);
    }

    /// Branches from the current block on `code` to the first of `clauses` it matches, each
    /// handler's first `done` ops having run already; `possible` are the codes that can arrive.
    /// Ends dead when a clause takes every code left; returns the codes no clause took.
    fn dispatch(
        &mut self,
        code: Value,
        clauses: &[Clause],
        done: usize,
        mut possible: Codes,
        after: BlockId,
        loc: crate::ir::Loc,
    ) -> Codes {
        let mut i = 0;
        while i < clauses.len() {
            let handler = self.new_block();
            let Some(_) = clauses[i].code else {
                // `catch _` takes every code.
                self.b_at(loc).core_br(&[], vec![handler]);
                self.emit_handler(handler, clauses[i].handler, after, loc, done);
                self.dead = true;
                return possible;
            };
            let (group_end, varying) = catches::group(self.m, clauses, i);
            let head = catches::head(self.m, clauses, i, done).filter(|h| h.end > group_end);
            let end = head.as_ref().map_or(group_end, |h| h.end);
            let codes: Vec<i128> = clauses[i..end].iter().filter_map(|c| c.code).collect();
            let takes_the_rest = possible
                .as_ref()
                .is_some_and(|p| p.iter().all(|c| codes.contains(c)));
            let next = (!takes_the_rest).then(|| self.new_block());
            if let Some(next) = next {
                let hit = self.code_is_one_of(code, &codes, loc);
                self.b_at(loc)
                    .core_cond_br(hit, &[], 0, None, vec![handler, next]);
            } else {
                self.b_at(loc).core_br(&[], vec![handler]);
            }
            match head {
                Some(head) => {
                    // The shared ops once, then the dispatch among the clauses that share them.
                    self.start(handler);
                    let first = self.m.region(clauses[i].handler).blocks[0];
                    let ops = self.m.block(first).ops[done..head.len].to_vec();
                    self.with_code_substitutes(code, head.varying, |fl| {
                        for op in ops {
                            fl.emit_op(op);
                        }
                    });
                    for (theirs, ours) in head.aliases {
                        let v = self.map(ours);
                        self.vmap.insert(theirs, v);
                    }
                    let here: Codes = Some(codes.iter().copied().collect());
                    self.dispatch(code, &clauses[i..end], head.len, here, after, loc);
                }
                None => {
                    self.with_code_substitutes(code, varying, |fl| {
                        fl.emit_handler(handler, clauses[i].handler, after, loc, done)
                    });
                }
            }
            if let Some(p) = &mut possible {
                p.retain(|c| !codes.contains(c));
            }
            let Some(next) = next else {
                self.dead = true;
                return possible;
            };
            self.start(next);
            i = end;
        }
        possible
    }

    /// Runs `emit` with the constants of `varying` standing for values chosen by `code`.
    fn with_code_substitutes(
        &mut self,
        code: Value,
        varying: Vec<catches::Varying>,
        emit: impl FnOnce(&mut Self),
    ) {
        for v in varying {
            self.substitutes.insert(v.constant, (code, v.by_code));
        }
        emit(self);
        self.substitutes.clear();
    }

    /// `ks.load_or_zero`: a load where the address is not null, else zero.
    fn flatten_load_or_zero(&mut self, data: OpData) {
        let prev_loc = data.loc;
        // A map value read: the entry when present, else the zero value (§11.2).
        let p = self.map(data.operands[0]);
        let t = self.m.value_type(data.results[0]).clone();
        let pt = self.m.value_type(p).clone();
        let (load, zero, join) = (self.new_block(), self.new_block(), self.new_block());
        let null = self.b_at(prev_loc).core_const(0, pt);
        let present = self.b_at(prev_loc).core_cmp(p, null, CmpPred::Ne);
        self.b_at(prev_loc)
            .core_cond_br(present, &[], 0, None, vec![load, zero]);
        self.join_args(join, &data.results);
        self.start(load);
        let v = self.b_at(prev_loc).core_load(p, t.clone());
        self.b_at(prev_loc).core_br(&[v], vec![join]);
        self.start(zero);
        let z = self.b_at(prev_loc).core_zero(t);
        self.b_at(prev_loc).core_br(&[z], vec![join]);
        self.start(join);
    }

    /// `break` / `continue`: the deferred actions of the scopes left, then a branch to the loop's exit or header.
    fn flatten_jump_out(&mut self, op: OpId, data: OpData) {
        let prev_loc = data.loc;
        let Some(depth) = self
            .scopes
            .iter()
            .rposition(|s| matches!(s.kind, ScopeKind::Loop { .. }))
        else {
            self.errors.push(super::PassError::internal(
                Some(op),
                "break or continue outside a loop",
            ));
            self.terminate();
            return;
        };
        let ScopeKind::Loop {
            brk,
            cont,
            cont_arg,
        } = self.scopes[depth].kind
        else {
            unreachable!()
        };
        self.unwind_to(depth);
        if !self.dead {
            let (dest, args) = if data.opcode == Opcode::KsBreak {
                (brk, vec![])
            } else {
                (cont, cont_arg.into_iter().collect())
            };
            self.b_at(prev_loc).core_br(&args, vec![dest]);
            self.terminate();
        }
    }

    fn b_at(&mut self, loc: crate::ir::Loc) -> Builder<'_> {
        let mut b = Builder::new(self.m, self.cur);
        b.loc = loc;
        b
    }

    /// Gives `join` one argument per result of a structured op and maps the results to them.
    fn join_args(&mut self, join: BlockId, results: &[Value]) -> usize {
        for &r in results {
            let t = self.m.value_type(r).clone();
            let a = self.m.add_block_arg(join, t);
            self.vmap.insert(r, a);
        }
        results.len()
    }

    /// `code` equals one of `codes`: a range test when they are consecutive.
    fn code_is_one_of(&mut self, code: Value, codes: &[i128], loc: crate::ir::Loc) -> Value {
        let (lo, hi) = (codes[0], codes[codes.len() - 1]);
        let mut b = self.b_at(loc);
        if codes.len() == 1 {
            let k = b.core_const(lo as i64 as i128, Type::i64());
            return b.core_cmp(code, k, CmpPred::Eq);
        }
        if codes.windows(2).all(|w| w[1] == w[0] + 1) {
            // `code - lo <= hi - lo` as unsigned: one test for the range.
            let low = b.core_const(lo as i64 as i128, Type::i64());
            let offset = b.core_sub(code, low);
            let offset = b.cast_to(offset, Type::u64());
            let span = b.core_const(hi - lo, Type::u64());
            return b.core_cmp(offset, span, CmpPred::Le);
        }
        let mut any: Option<Value> = None;
        for &c in codes {
            let k = b.core_const(c as i64 as i128, Type::i64());
            let eq = b.core_cmp(code, k, CmpPred::Eq);
            any = Some(match any {
                Some(a) => b.core_or(a, eq),
                None => eq,
            });
        }
        any.expect("a code")
    }

    /// A value chosen by the caught code: the code itself when each code maps to itself, else the
    /// most frequent value, replaced by each other value where the code is one of its codes.
    fn chosen_by_code(
        &mut self,
        code: Value,
        by_code: &[(i128, i128)],
        ty: Type,
        loc: crate::ir::Loc,
    ) -> Value {
        if by_code.iter().all(|&(c, v)| c == v) {
            return self.b_at(loc).cast_to(code, ty);
        }
        let mut values: Vec<i128> = by_code.iter().map(|&(_, v)| v).collect();
        values.dedup();
        values.sort_unstable();
        values.dedup();
        let count = |v: i128| by_code.iter().filter(|&&(_, w)| w == v).count();
        let default = *values
            .iter()
            .max_by_key(|&&v| (count(v), std::cmp::Reverse(v)))
            .expect("a value");
        let mut chosen = self.b_at(loc).core_const(default, ty.clone());
        for v in values.into_iter().filter(|&v| v != default) {
            let mut codes: Vec<i128> = by_code
                .iter()
                .filter(|&&(_, w)| w == v)
                .map(|&(c, _)| c)
                .collect();
            codes.sort_unstable();
            let hit = self.code_is_one_of(code, &codes, loc);
            let k = self.b_at(loc).core_const(v, ty.clone());
            chosen = self.b_at(loc).core_select(hit, k, chosen);
        }
        chosen
    }

    fn emit_handler(
        &mut self,
        handler: BlockId,
        region: RegionId,
        after: BlockId,
        loc: crate::ir::Loc,
        done: usize,
    ) {
        let saved = (self.cur, self.dead);
        self.start(handler);
        if self
            .emit_region_from(region, ScopeKind::Block, done)
            .is_some()
        {
            self.b_at(loc).core_br(&[], vec![after]);
        }
        (self.cur, self.dead) = saved;
    }

    /// Throws `code` (an i64) from the current point: to the innermost try, else out of the function.
    fn throw_code(&mut self, code: Value, loc: crate::ir::Loc) {
        if let Some(depth) = self
            .scopes
            .iter()
            .rposition(|s| matches!(s.kind, ScopeKind::Try { .. }))
        {
            let ScopeKind::Try { dispatch } = self.scopes[depth].kind else {
                unreachable!()
            };
            self.unwind_to(depth);
            if !self.dead {
                self.b_at(loc).core_br(&[code], vec![dispatch]);
                self.terminate();
            }
            return;
        }
        self.unwind_to(0);
        if self.dead {
            return;
        }
        if let Some(st) = self.status {
            self.set_status(st, STATUS_THROWN, Some(code), loc);
            self.return_zero(loc);
        } else if let Some(ctx) = self.loop_ctx {
            self.leave_loop(ctx, lower_loops::RAISED_THROW_EXIT, Some(code), loc);
        } else if self.target() == Target::Host {
            self.b_at(loc)
                .host_rt_call(&[code], b"ksrt_uncaught_throw".as_slice(), &[]);
            self.b_at(loc).core_unreachable();
        } else {
            // Programs and module functions return the code converted to their return type (§13.1).
            let v = self.convert_code(code, loc);
            self.b_at(loc).core_ret(&v);
        }
        self.terminate();
    }

    /// A failed safety check: cleanups, then the pass verdict (programs) or the status (helpers).
    fn abort(&mut self, loc: crate::ir::Loc, message: Option<Attr>) {
        self.unwind_to(0);
        if self.dead {
            return;
        }
        if let Some(st) = self.status {
            self.set_status(st, STATUS_ABORTED, None, loc);
            self.return_zero(loc);
        } else if let Some(ctx) = self.loop_ctx {
            self.leave_loop(ctx, lower_loops::RAISED_ABORT_EXIT, None, loc);
        } else if self.target() == Target::Host {
            let msg = match message {
                Some(Attr::Str(s)) => s,
                _ => b"aborted".to_vec(),
            };
            self.b_at(loc).host_runtime_error(msg);
        } else {
            let verdict = KsFunc(self.func)
                .kind(self.m)
                .map_or(0, ProgKind::pass_verdict);
            let ret = self.ret.clone();
            let v = if ret == Type::Void {
                vec![]
            } else {
                vec![self.b_at(loc).core_const(verdict, ret)]
            };
            self.b_at(loc).core_ret(&v);
        }
        self.terminate();
    }

    /// In a loop callback: records `exit` (and the thrown `code`) in the context struct and
    /// returns 1, which stops `bpf_loop`; the caller carries the raise on (`lower-loops`).
    fn leave_loop(&mut self, ctx: Value, exit: i128, code: Option<Value>, loc: crate::ir::Loc) {
        let mut b = self.b_at(loc);
        let e = b.core_const(exit, Type::u32());
        let at = b.core_field_addr(ctx, b"exit".to_vec(), Type::ptr(Type::u32()));
        b.core_store(e, at);
        if let Some(code) = code {
            let at = b.core_field_addr(ctx, b"code".to_vec(), Type::ptr(Type::i64()));
            b.core_store(code, at);
        }
        let stop = b.core_const(1, Type::i64());
        b.core_ret(&[stop]);
    }

    fn target(&self) -> Target {
        KsFunc(self.func).target(self.m)
    }

    fn convert_code(&mut self, code: Value, loc: crate::ir::Loc) -> Vec<Value> {
        match self.ret.clone() {
            Type::Void => vec![],
            t if t.is_int() => vec![self.b_at(loc).core_cast(code, t)],
            t => vec![self.b_at(loc).core_zero(t)],
        }
    }

    fn return_zero(&mut self, loc: crate::ir::Loc) {
        let ret = self.ret.clone();
        let v = if ret == Type::Void {
            vec![]
        } else {
            vec![self.b_at(loc).core_zero(ret)]
        };
        self.b_at(loc).core_ret(&v);
    }

    fn set_status(&mut self, st: Value, state: i128, code: Option<Value>, loc: crate::ir::Loc) {
        let i64t = Type::i64();
        let s = self.b_at(loc).core_const(state, i64t.clone());
        let zero = self.b_at(loc).core_const(0, Type::u32());
        let a0 = self
            .b_at(loc)
            .core_elem_addr(st, zero, Type::ptr(i64t.clone()));
        self.b_at(loc).core_store(s, a0);
        let c = code.unwrap_or_else(|| self.b_at(loc).core_const(0, i64t.clone()));
        let one = self.b_at(loc).core_const(1, Type::u32());
        let a1 = self.b_at(loc).core_elem_addr(st, one, Type::ptr(i64t));
        self.b_at(loc).core_store(c, a1);
    }

    fn callee_has_status(&self, data: &crate::ir::OpData) -> bool {
        matches!(&data.attrs[0], Some(Attr::Sym(s)) if self.with_status.contains(s))
    }

    /// A call to a function with a status parameter, then the check that continues its throw or abort.
    fn call_with_status(&mut self, data: &crate::ir::OpData, loc: crate::ir::Loc) {
        let Some(Attr::Sym(callee)) = data.attrs[0].clone() else {
            return;
        };
        let slot = match self.call_status {
            Some(s) => s,
            None => {
                let entry = self.m.region(self.region).blocks[0];
                let t = Type::Array(Rc::new(Type::i64()), 2);
                let mut b = Builder::new(self.m, entry);
                b.at = Some(0);
                b.loc = loc;
                let s = b.core_local(
                    t,
                    Some(b"__call_status".to_vec()),
                    None,
                    None,
                    status_type(),
                );
                self.call_status = Some(s);
                s
            }
        };
        let z = self
            .b_at(loc)
            .core_zero(Type::Array(Rc::new(Type::i64()), 2));
        self.b_at(loc).core_store(z, slot);
        let mut args: Vec<Value> = data.operands.iter().map(|&v| self.map(v)).collect();
        args.push(slot);
        let tys: Vec<Type> = data
            .results
            .iter()
            .map(|&r| self.m.value_type(r).clone())
            .collect();
        let call = self.b_at(loc).core_call(&args, &callee, &tys);
        let results = self.m.op(call).results.clone();
        for (o, n) in data.results.iter().zip(results) {
            self.vmap.insert(*o, n);
        }
        let i64t = Type::i64();
        let zero = self.b_at(loc).core_const(0, Type::u32());
        let a0 = self
            .b_at(loc)
            .core_elem_addr(slot, zero, Type::ptr(i64t.clone()));
        let state = self.b_at(loc).core_load(a0, i64t.clone());
        let none = self.b_at(loc).core_const(0, i64t.clone());
        let raised = self.b_at(loc).core_cmp(state, none, CmpPred::Ne);
        let (raise, cont) = (self.new_block(), self.new_block());
        self.b_at(loc)
            .core_cond_br(raised, &[], 0, Some(false), vec![raise, cont]);
        self.start(raise);
        // A callee that throws no code only aborts: a raised status is its abort. (A test of
        // the status would leave a path for codes that never come, which ends in nothing
        // unoptimised: "last insn is not an exit or jmp".)
        let throws_nothing = self
            .thrown
            .get(callee.as_str())
            .is_some_and(|codes| codes.as_ref().is_some_and(|c| c.is_empty()));
        if self.aborting.contains(&callee) && throws_nothing {
            self.abort(loc, None);
            self.start(cont);
            return;
        }
        if self.aborting.contains(&callee) {
            let ab = self.b_at(loc).core_const(STATUS_ABORTED, i64t.clone());
            let is_abort = self.b_at(loc).core_cmp(state, ab, CmpPred::Eq);
            let (abort_bb, throw_bb) = (self.new_block(), self.new_block());
            self.b_at(loc)
                .core_cond_br(is_abort, &[], 0, None, vec![abort_bb, throw_bb]);
            self.start(abort_bb);
            self.abort(loc, None);
            self.start(throw_bb);
        }
        let one = self.b_at(loc).core_const(1, Type::u32());
        let a1 = self
            .b_at(loc)
            .core_elem_addr(slot, one, Type::ptr(i64t.clone()));
        let code = self.b_at(loc).core_load(a1, i64t);
        self.throw_code(code, loc);
        self.start(cont);
    }
}

/// True when every block of a region ends in a throw or an abort.
fn raises(m: &Module, r: RegionId) -> bool {
    !m.region(r).blocks.is_empty()
        && m.region_ends_in(r, |o| matches!(o, Opcode::KsThrow | Opcode::KsAbort))
}

/// Whether regions `a` and `b` do exactly the same (alike, their constants equal).
fn identical_regions(m: &Module, a: RegionId, b: RegionId) -> bool {
    super::region_match::same_but_constants(m, a, b)
        .is_some_and(|pairs| pairs.iter().all(|(&c, &v)| m.const_int(c) == Some(v)))
}
