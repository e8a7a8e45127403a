//! `check-rcu-sections`: `bpf_rcu_read_lock()` / `bpf_rcu_read_unlock()` pair up on every path,
//! as the kernel requires at load (§16): no lock inside a locked section ("nested rcu read
//! lock"), no unlock outside one ("unmatched rcu read unlock"), and no return, throw or abort
//! from a program while one is open ("BPF_EXIT instruction … inside bpf_rcu_read_lock-ed
//! region"). Refused here at the call or exit's line rather than by the verifier.
//!
//! Each kernel function is walked over its structured regions with the set of section depths a
//! path may reach each point with; a branch's arms start from the same set and join as the union
//! of those that fall through, a loop's body is walked until its set stops growing. An unlock a
//! `defer` schedules counts at every exit the defer runs on (`bpf_rcu_read_lock(); defer
//! bpf_rcu_read_unlock()`), and more such unlocks than open sections are refused; a throw a
//! `try` around it catches (by its constant code, or a `catch _`) is no exit.
//!
//! The kernel carries the section across BPF-to-BPF calls, and so does this walk: a static
//! function starts at the depths of its call sites, and a call leaves its caller at the depths
//! the callee returns with. A helper may so close its caller's section or open one its caller
//! closes; a program calling a helper that leaves one open must close it before it exits.

use super::{PassError, PassResult};
use crate::diagnostics::Code;
use crate::ir::views::KsFunc;
use crate::ir::{Attr, Module, OpId, Opcode, RegionId};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};

const LOCK: &str = "bpf_rcu_read_lock";
const UNLOCK: &str = "bpf_rcu_read_unlock";

/// The section depths a path may be at.
type Depths = BTreeSet<u32>;

pub fn run(m: &Module) -> PassResult {
    let funcs = Functions::new(m);
    let entries = funcs.entry_depths();
    let mut errors = Vec::new();
    for &f in &funcs.kernel {
        let at = entries
            .get(&f)
            .cloned()
            .unwrap_or_else(|| Depths::from([0]));
        let mut walk = Walk::new(&funcs, f);
        walk.function(f, at);
        errors.extend(walk.errors);
    }
    // A loop's body is walked more than once: one error per op.
    let mut seen = HashSet::new();
    errors.retain(|e| seen.insert(e.op));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The module's kernel functions and what a call of each does to its caller's depth.
struct Functions<'m> {
    m: &'m Module,
    kernel: Vec<OpId>,
    by_name: HashMap<&'m str, OpId>,
    /// Depths a function returns with, per depth it is entered at.
    exits: RefCell<HashMap<(OpId, u32), Depths>>,
    /// Functions whose exits are being computed: a (refused elsewhere) recursive call is neutral.
    computing: RefCell<HashSet<OpId>>,
}

impl<'m> Functions<'m> {
    fn new(m: &'m Module) -> Self {
        let kernel = super::kernel_funcs(m);
        let by_name = (kernel.iter())
            .filter_map(|&f| Some((m.symbol(f)?, f)))
            .collect();
        Functions {
            m,
            kernel,
            by_name,
            exits: RefCell::default(),
            computing: RefCell::default(),
        }
    }

    /// The kernel function a call op calls, if it calls one.
    fn callee(&self, op: OpId) -> Option<OpId> {
        match self.m.attr(op, "callee") {
            Some(Attr::Sym(s)) if self.m.op(op).opcode == Opcode::CoreCall => {
                self.by_name.get(s.as_str()).copied()
            }
            _ => None,
        }
    }

    /// The depths a call of `f` entered at `depth` returns with (errors are reported by `f`'s
    /// own walk, from the depths of its call sites).
    fn exits(&self, f: OpId, depth: u32) -> Depths {
        if let Some(d) = self.exits.borrow().get(&(f, depth)) {
            return d.clone();
        }
        if !self.computing.borrow_mut().insert(f) {
            return Depths::from([depth]);
        }
        let mut walk = Walk::new(self, f);
        walk.function(f, Depths::from([depth]));
        self.computing.borrow_mut().remove(&f);
        self.exits
            .borrow_mut()
            .insert((f, depth), walk.returns.clone());
        walk.returns
    }

    /// The depths each function is entered at: a program at 0, a static function at the union of
    /// its call sites' depths, grown until nothing changes.
    fn entry_depths(&self) -> HashMap<OpId, Depths> {
        let mut entries: HashMap<OpId, Depths> = (self.kernel.iter())
            .filter(|&&f| KsFunc(f).kind(self.m).is_some())
            .map(|&f| (f, Depths::from([0])))
            .collect();
        // Each round settles at least one more level of the (acyclic) call graph.
        for _ in 0..=self.kernel.len() {
            let mut grown = false;
            for &f in &self.kernel {
                let Some(at) = entries.get(&f).cloned() else {
                    continue;
                };
                let mut walk = Walk::new(self, f);
                walk.function(f, at);
                for (callee, depths) in walk.call_sites {
                    let entry = entries.entry(callee).or_default();
                    let before = entry.len();
                    entry.extend(depths);
                    grown |= entry.len() != before;
                }
            }
            if !grown {
                break;
            }
        }
        entries
    }
}

struct Walk<'f, 'm> {
    m: &'m Module,
    funcs: &'f Functions<'m>,
    errors: Vec<PassError>,
    /// The depths the function returns with.
    returns: Depths,
    /// The depths each static function is called at.
    call_sites: Vec<(OpId, Depths)>,
    /// For each region being walked, the sections its defers close when it exits.
    deferred: Vec<u32>,
    /// The codes each enclosing `try` body's handlers catch (`None`: any code).
    catching: Vec<Vec<Option<i128>>>,
    /// The function is a program: leaving it ends the section's only chance to close.
    program: bool,
}

impl<'f, 'm> Walk<'f, 'm> {
    fn new(funcs: &'f Functions<'m>, f: OpId) -> Self {
        let m = funcs.m;
        Walk {
            m,
            funcs,
            errors: Vec::new(),
            returns: Depths::new(),
            call_sites: Vec::new(),
            deferred: Vec::new(),
            catching: Vec::new(),
            // A static function may return inside a section its caller closes; only a program's
            // exit is the kernel's BPF_EXIT of the main program.
            program: KsFunc(f).kind(m).is_some(),
        }
    }

    /// Walks function `f` entered at `at`; a body that falls off its end returns.
    fn function(&mut self, f: OpId, at: Depths) {
        for &r in &self.m.op(f).regions {
            if let Some(end) = self.region(r, at.clone()) {
                self.returns.extend(end);
            }
        }
    }

    /// The depths at the region's end, when a path falls through it.
    fn region(&mut self, r: RegionId, at: Depths) -> Option<Depths> {
        self.deferred.push(0);
        let end = self.ops_of(r, at);
        let closed = self.deferred.pop().unwrap_or(0);
        let end = end?;
        if let Some(&last) =
            (self.m.region(r).blocks.last()).and_then(|&b| self.m.block(b).ops.last())
        {
            self.check_deferred(last, &end, closed);
        }
        Some(end.iter().map(|n| n.saturating_sub(closed)).collect())
    }

    fn ops_of(&mut self, r: RegionId, mut at: Depths) -> Option<Depths> {
        for &b in &self.m.region(r).blocks {
            for &op in &self.m.block(b).ops {
                at = self.op(op, at)?;
            }
        }
        Some(at)
    }

    /// Whether a path at `at` leaving the function now still holds a section once the defers
    /// of every enclosing region ran.
    fn open_at_exit(&self, at: &Depths) -> bool {
        let closed: u32 = self.deferred.iter().sum();
        at.iter().any(|&n| n > closed)
    }

    /// Whether a throw of `code` (a constant, or not) is caught inside the function.
    fn caught(&self, code: Option<i128>) -> bool {
        let code = code.map(|c| c as i64 as i128);
        (self.catching.iter().flatten()).any(|&c| c.is_none() || (code.is_some() && c == code))
    }

    /// Refuses deferred unlocks that close more sections than a path at `at` has open.
    fn check_deferred(&mut self, op: OpId, at: &Depths, closed: u32) {
        if at.iter().any(|&n| closed > n) {
            self.refuse(op, "the deferred `bpf_rcu_read_unlock()` calls here close more sections than are open (on some path)");
        }
    }

    fn op(&mut self, op: OpId, at: Depths) -> Option<Depths> {
        let m = self.m;
        let d = m.op(op);
        match d.opcode {
            Opcode::KsCallExtern => match m.attr(op, "callee") {
                Some(Attr::Sym(s)) if &**s == LOCK => {
                    if at.iter().any(|&n| n > 0) {
                        self.refuse(op, "`bpf_rcu_read_lock()` inside a section already locked: the kernel refuses nested RCU read sections");
                    }
                    Some(at.iter().map(|n| n + 1).collect())
                }
                Some(Attr::Sym(s)) if &**s == UNLOCK => {
                    if at.contains(&0) {
                        self.refuse(op, "`bpf_rcu_read_unlock()` where no `bpf_rcu_read_lock()` section is open (on some path)");
                    }
                    Some(at.iter().map(|n| n.saturating_sub(1)).collect())
                }
                _ => Some(at),
            },
            Opcode::KsThrow if self.caught(m.const_int(d.operands[0])) => None,
            Opcode::KsReturn | Opcode::KsThrow | Opcode::KsAbort | Opcode::KsTailCall => {
                if self.program && self.open_at_exit(&at) {
                    self.refuse(op, "this leaves the function inside a `bpf_rcu_read_lock()` section: call `bpf_rcu_read_unlock()` first");
                }
                let closed: u32 = self.deferred.iter().sum();
                self.check_deferred(op, &at, closed);
                if d.opcode == Opcode::KsReturn {
                    (self.returns).extend(at.iter().map(|n| n.saturating_sub(closed)));
                }
                None
            }
            Opcode::CoreCall => match self.funcs.callee(op) {
                Some(callee) => {
                    self.call_sites.push((callee, at.clone()));
                    Some(
                        at.iter()
                            .flat_map(|&n| self.funcs.exits(callee, n))
                            .collect(),
                    )
                }
                None => Some(at),
            },
            Opcode::KsDefer => {
                let unlocks = self.calls_in(d.regions[0], UNLOCK);
                let locks = self.calls_in(d.regions[0], LOCK);
                if let Some(closed) = self.deferred.last_mut() {
                    *closed += unlocks.saturating_sub(locks);
                }
                Some(at)
            }
            Opcode::KsTry => {
                let (body, handlers) = d.regions.split_first().expect("a try has a body");
                let codes = match m.attr(op, "catches") {
                    Some(Attr::List(catches)) => (catches.iter())
                        .map(|c| match c {
                            Attr::Int(n) => Some(*n as i64 as i128),
                            _ => None,
                        })
                        .collect(),
                    _ => vec![None],
                };
                self.catching.push(codes);
                let after_body = self.region(*body, at.clone());
                self.catching.pop();
                let mut joined = after_body;
                for &h in handlers {
                    if let Some(end) = self.region(h, at.clone()) {
                        joined.get_or_insert_with(Depths::new).extend(end);
                    }
                }
                joined
            }
            Opcode::KsBreak | Opcode::KsContinue => None,
            Opcode::KsFor | Opcode::KsWhile => {
                // The body runs any number of times; whatever it leaves open reaches the next
                // iteration and the code after the loop.
                let mut seen = at.clone();
                for _ in 0..4 {
                    let mut next = seen.clone();
                    for &r in &d.regions {
                        if let Some(end) = self.region(r, seen.clone()) {
                            next.extend(end);
                        }
                    }
                    if next == seen {
                        break;
                    }
                    seen = next;
                }
                Some(seen)
            }
            _ if d.regions.is_empty() => Some(at),
            // Branches (if, switch, try and its handlers, …): each region from the same depths.
            _ => {
                let mut joined: Option<Depths> = None;
                for &r in &d.regions {
                    if let Some(end) = self.region(r, at.clone()) {
                        joined.get_or_insert_with(Depths::new).extend(end);
                    }
                }
                // An op whose regions all leave (or that has none that fall through) ends here.
                joined.or_else(|| (!leaves_always(d.opcode)).then_some(at))
            }
        }
    }

    /// How many calls of `callee` region `r` makes (at any depth).
    fn calls_in(&self, r: RegionId, callee: &str) -> u32 {
        let m = self.m;
        let calls = |o: OpId| {
            m.op(o).opcode == Opcode::KsCallExtern
                && matches!(m.attr(o, "callee"), Some(Attr::Sym(s)) if &**s == callee)
        };
        let mut n = 0;
        for &b in &m.region(r).blocks {
            for &op in &m.block(b).ops {
                n += u32::from(calls(op));
                m.walk_nested(op, &mut |o| n += u32::from(calls(o)));
            }
        }
        n
    }

    fn refuse(&mut self, op: OpId, why: &str) {
        self.errors.push(PassError::user(op, Code::E0615, why));
    }
}

/// Ops whose regions are alternatives: when none falls through, neither does the op.
fn leaves_always(opcode: Opcode) -> bool {
    matches!(opcode, Opcode::KsIf | Opcode::KsSwitch)
}
