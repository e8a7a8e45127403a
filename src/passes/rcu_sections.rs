//! `check-rcu-sections`: `bpf_rcu_read_lock()` / `bpf_rcu_read_unlock()` pair up on every path,
//! as the kernel requires at load (§16): no lock inside a locked section ("nested rcu read
//! lock"), no unlock outside one ("unmatched rcu read unlock"), and no return, throw or abort
//! from a program (not a static function, which its caller may close for) while one is open ("BPF_EXIT instruction … inside bpf_rcu_read_lock-ed
//! region"). Refused here at the call or exit's line rather than by the verifier.
//!
//! Each kernel function is walked over its structured regions with the set of section depths a
//! path may reach each point with; a branch's arms start from the same set and join as the union
//! of those that fall through, a loop's body is walked until its set stops growing. An unlock a
//! `defer` schedules counts at every exit the defer runs on (`bpf_rcu_read_lock(); defer
//! bpf_rcu_read_unlock()`), and more such unlocks than open sections are refused; a throw a
//! `try` around it catches (by its constant code, or a `catch _`) is no exit.

use super::{PassError, PassResult};
use crate::diagnostics::Code;
use crate::ir::views::KsFunc;
use crate::ir::{Attr, Module, OpId, Opcode, RegionId};
use std::collections::BTreeSet;

const LOCK: &str = "bpf_rcu_read_lock";
const UNLOCK: &str = "bpf_rcu_read_unlock";

/// The section depths a path may be at.
type Depths = BTreeSet<u32>;

pub fn run(m: &Module) -> PassResult {
    let mut errors = Vec::new();
    for f in super::kernel_funcs(m) {
        let mut walk = Walk {
            m,
            errors: Vec::new(),
            deferred: Vec::new(),
            catching: Vec::new(),
            // A static function may return inside a section its caller closes; only a program's
            // exit is the kernel's BPF_EXIT of the main program.
            program: KsFunc(f).kind(m).is_some(),
        };
        for &r in &m.op(f).regions {
            walk.region(r, Depths::from([0]));
        }
        errors.extend(walk.errors);
    }
    // A loop's body is walked more than once: one error per op.
    errors.dedup_by_key(|e| e.op);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

struct Walk<'m> {
    m: &'m Module,
    errors: Vec<PassError>,
    /// For each region being walked, the sections its defers close when it exits.
    deferred: Vec<u32>,
    /// The codes each enclosing `try` body's handlers catch (`None`: any code).
    catching: Vec<Vec<Option<i128>>>,
    /// The function is a program: leaving it ends the section's only chance to close.
    program: bool,
}

impl Walk<'_> {
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
                None
            }
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
