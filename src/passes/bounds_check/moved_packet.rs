//! Packet pointers a call made stale (§10.1): after a helper that may move or resize the packet
//! (`bpf_skb_store_bytes`, `bpf_xdp_adjust_head`, … — `Helper::moves_packet`), or a function
//! that calls one, the kernel forgets every packet pointer the program holds, and an access
//! through one is refused at load. So such an access is an error here, at its line.
//!
//! A walk in program order over the structured body: each pointer carries the `ctx->data`,
//! `ctx->data_meta` and `ctx->data_end` loads it was formed from (pointer provenance), locals
//! carry what was last stored into them (a local assigned `ctx->data` again holds a fresh
//! pointer), branches merge, loop bodies are walked twice so a call late in the body reaches an
//! access early in the next iteration. A `return` (or tail call) ends its path: a call in
//! `if (…) { bpf_skb_store_bytes(…); return TC_ACT_OK }` reaches nothing after the `if`.

use super::{ctx_field, PassError, PassErrors};
use crate::diagnostics::Code;
use crate::ir::views::{KsCallExtern, KsExtern};
use crate::ir::{Attr, Module, OpId, Opcode, RegionId, Value};
use crate::passes::provenance::derivation;
use crate::vocab::helpers;
use std::collections::{BTreeSet, HashMap, HashSet};

/// The functions that may move the packet: they call a helper that does, directly or through
/// the functions they call.
pub(super) fn moving_functions(m: &Module) -> HashSet<String> {
    let funcs: Vec<OpId> = m.funcs().collect();
    let mut moving = HashSet::new();
    loop {
        let before = moving.len();
        for &f in &funcs {
            let name = crate::ir::views::KsFunc(f).name(m).to_string();
            if !moving.contains(&name)
                && !m
                    .collect_nested(f, |_| true)
                    .into_iter()
                    .all(|op| !moves_packet(m, op, &moving))
            {
                moving.insert(name);
            }
        }
        if moving.len() == before {
            return moving;
        }
    }
}

/// Whether call `op` may move the packet.
fn moves_packet(m: &Module, op: OpId, moving: &HashSet<String>) -> bool {
    match m.op(op).opcode {
        Opcode::KsCallExtern => m
            .lookup_symbol(KsCallExtern(op).callee(m))
            .filter(|&d| m.op(d).opcode == Opcode::KsExtern)
            .and_then(|d| KsExtern(d).helper_id(m))
            .and_then(helpers::by_id)
            .is_some_and(|h| h.moves_packet),
        Opcode::CoreCall => {
            matches!(m.attr(op, "callee"), Some(Attr::Sym(f)) if moving.contains(f.as_str()))
        }
        _ => false,
    }
}

/// The operands `op` reads or writes memory through, or hands to a function.
fn accessed(m: &Module, op: OpId) -> &[Value] {
    let d = m.op(op);
    match d.opcode {
        Opcode::CoreLoad
        | Opcode::KsLoadOrZero
        | Opcode::CoreAtomicAdd
        | Opcode::CoreAtomicFetchAdd => &d.operands[..1],
        Opcode::CoreStore => &d.operands[1..2],
        Opcode::CoreCopy | Opcode::KsCallExtern | Opcode::CoreCall => &d.operands,
        _ => &[],
    }
}

type Roots = BTreeSet<Value>;

#[derive(Clone, Default)]
struct State {
    /// Packet roots a call may have made stale, with the call.
    stale: HashMap<Value, OpId>,
    /// The roots of what each local last held.
    locals: HashMap<Value, Roots>,
    /// No path reaches here: every one left the function before.
    ended: bool,
}

impl State {
    fn merge(&mut self, other: State) {
        if other.ended {
            return;
        }
        if self.ended {
            *self = other;
            return;
        }
        for (root, call) in other.stale {
            self.stale.entry(root).or_insert(call);
        }
        for (local, roots) in other.locals {
            self.locals.entry(local).or_default().extend(roots);
        }
    }
}

pub(super) struct MovedPacket<'m> {
    m: &'m Module,
    moving: &'m HashSet<String>,
    /// The packet roots of each pointer value, as of its definition.
    roots: HashMap<Value, Roots>,
    /// Every packet root seen so far: what a moving call makes stale.
    packet_roots: Roots,
    /// Accesses already reported.
    reported: HashSet<OpId>,
    deferred: Vec<RegionId>,
    /// What the paths that left the function held (deferred regions run after each).
    exits: State,
    /// Inside a `try` body, whose paths may also go on to a handler: none ends.
    in_try: u32,
    pub errors: PassErrors,
}

impl<'m> MovedPacket<'m> {
    /// Checks function `f`.
    pub fn check(m: &'m Module, f: OpId, moving: &'m HashSet<String>) -> PassErrors {
        let mut walk = MovedPacket {
            m,
            moving,
            roots: HashMap::new(),
            packet_roots: Roots::new(),
            reported: HashSet::new(),
            deferred: Vec::new(),
            exits: State {
                ended: true,
                ..State::default()
            },
            in_try: 0,
            errors: PassErrors::new(),
        };
        let mut state = State::default();
        walk.region(m.op(f).regions[0], &mut state);
        // Deferred regions run at the exits: after anything the body did (the merged state).
        state.merge(std::mem::take(&mut walk.exits));
        for r in std::mem::take(&mut walk.deferred) {
            walk.region(r, &mut state.clone());
        }
        walk.errors
    }

    fn region(&mut self, r: RegionId, st: &mut State) {
        for b in self.m.region(r).blocks.clone() {
            for op in self.m.block(b).ops.clone() {
                self.op(op, st);
            }
        }
    }

    fn op(&mut self, op: OpId, st: &mut State) {
        let m = self.m;
        let d = m.op(op);
        for &v in accessed(m, op).iter().filter(|_| !st.ended) {
            let stale = self
                .roots
                .get(&v)
                .and_then(|rs| rs.iter().find_map(|r| st.stale.get(r)));
            if let Some(&call) = stale {
                if self.reported.insert(op) {
                    self.errors
                        .push(PassError::user(op, Code::E0611, self.message(call)));
                }
            }
        }
        if let Some((base, _)) = derivation(m, op) {
            let roots = self.roots.get(&base).cloned().unwrap_or_default();
            self.roots.insert(d.results[0], roots);
        }
        match d.opcode {
            Opcode::KsCtxLoad
                if matches!(ctx_field(m, op), Some(b"data" | b"data_meta" | b"data_end")) =>
            {
                let v = d.results[0];
                self.roots.insert(v, Roots::from([v]));
                self.packet_roots.insert(v);
            }
            Opcode::CoreLoad if d.operands.first().is_some_and(|a| m.is_local(*a)) => {
                if let Some(roots) = st.locals.get(&d.operands[0]) {
                    self.roots.insert(d.results[0], roots.clone());
                }
            }
            Opcode::CoreStore if m.is_local(d.operands[1]) => {
                let roots = self.roots.get(&d.operands[0]).cloned().unwrap_or_default();
                st.locals.insert(d.operands[1], roots);
            }
            _ => {}
        }
        if moves_packet(m, op, self.moving) {
            for &r in &self.packet_roots {
                st.stale.entry(r).or_insert(op);
            }
        }
        match d.opcode {
            Opcode::KsDefer => self.deferred.extend(d.regions.iter().copied()),
            Opcode::KsReturn | Opcode::KsTailCall if self.in_try == 0 => {
                self.exits.merge(st.clone());
                st.ended = true;
            }
            Opcode::KsWhile | Opcode::KsFor => {
                // Twice: what the body's end does reaches the next iteration's start.
                for _ in 0..2 {
                    let mut inner = st.clone();
                    for &r in &d.regions {
                        self.region(r, &mut inner);
                    }
                    st.merge(inner);
                }
            }
            Opcode::KsTry => {
                // Handlers run after any part of the body.
                let mut body = st.clone();
                self.in_try += 1;
                self.region(d.regions[0], &mut body);
                self.in_try -= 1;
                let mut after = st.clone();
                after.merge(body.clone());
                let mut out = body;
                for &r in &d.regions[1..] {
                    let mut handler = after.clone();
                    self.region(r, &mut handler);
                    out.merge(handler);
                }
                *st = out;
            }
            _ if !d.regions.is_empty() => {
                // Alternatives (if, switch, …): each from the same state, then merged.
                let mut out: Option<State> = None;
                for &r in &d.regions {
                    let mut arm = st.clone();
                    self.region(r, &mut arm);
                    match &mut out {
                        Some(o) => o.merge(arm),
                        None => out = Some(arm),
                    }
                }
                match out {
                    // An `if`'s two arms are all the ways on: where both end, so does this path.
                    Some(o) if d.opcode == Opcode::KsIf => *st = o,
                    Some(o) => st.merge(o),
                    None => {}
                }
            }
            _ => {}
        }
    }

    fn message(&self, call: OpId) -> String {
        let m = self.m;
        let (what, why) = match m.op(call).opcode {
            Opcode::KsCallExtern => (KsCallExtern(call).callee(m), "which may move the packet"),
            _ => match m.attr(call, "callee") {
                Some(Attr::Sym(f)) => (f.as_str(), "which calls a helper that may move the packet"),
                _ => ("a function", "which may move the packet"),
            },
        };
        format!(
            "this packet pointer was formed before the call to `{what}` at line {}, {why}; the kernel forgets every packet pointer at such a call, so read `ctx->data` (and `ctx->data_end`) again after it",
            m.op(call).loc.line
        )
    }
}
