//! `hoist-counter-defers`: a `defer` that only bumps counters — atomic adds to globals and
//! `m[k] += n`, directly or through calls, with constant arguments — runs where it is declared
//! when nothing after it in its scope reads those counters. A defer runs on every exit of its
//! scope, so the counts are the same; what changes is that the increment sits on one path instead
//! of in the epilogue of every exit, which the verifier walks once per exit path (C counts once,
//! before branching).
//! Runs on structured kernel functions before `flatten`.

use super::PassResult;
use crate::ir::{Attr, Module, OpId, Opcode, RegionId, Value, ValueDef};
use std::collections::HashSet;

pub fn run(m: &mut Module) -> PassResult {
    let funcs = super::kernel_funcs(m);
    for f in funcs {
        for defer in m.collect_nested(f, |d| d.opcode == Opcode::KsDefer) {
            if let Some(counters) = counters_only(m, defer) {
                if !read_later(m, defer, &counters) {
                    hoist(m, defer);
                }
            }
        }
    }
    Ok(())
}

/// The globals and maps a counter bump names.
#[derive(Default)]
struct Counters {
    globals: HashSet<String>,
    maps: HashSet<String>,
    /// Functions already looked into.
    seen: HashSet<String>,
}

fn sym(m: &Module, op: OpId, attr: &str) -> Option<String> {
    match m.attr(op, attr) {
        Some(Attr::Sym(s)) => Some(s.clone()),
        _ => None,
    }
}

/// What the deferred region bumps, when bumping counters is all it does.
fn counters_only(m: &Module, defer: OpId) -> Option<Counters> {
    let mut c = Counters::default();
    let region = m.op(defer).regions[0];
    let constant_args = m
        .collect_nested(defer, |d| d.opcode == Opcode::CoreCall)
        .iter()
        .all(|&call| {
            m.op(call).operands.iter().all(|&a| {
            matches!(m.value(a).def, ValueDef::Result(o, _) if m.op(o).opcode == Opcode::CoreConst)
        })
        });
    (constant_args && bumps_only(m, region, &mut c)).then_some(c)
}

/// Whether a region (and every function it calls) only bumps counters, collecting them.
fn bumps_only(m: &Module, region: RegionId, c: &mut Counters) -> bool {
    let mut ops = Vec::new();
    m.walk_region(region, &mut |o| ops.push(o));
    // Only the region's own locals (a callee's parameters and locals): a deferred
    // `verdicts[verdict] += 1` reads the function's `verdict` as it is at the exit.
    let own: HashSet<Value> = (ops.iter())
        .filter(|&&o| m.op(o).opcode == Opcode::CoreLocal)
        .map(|&o| m.op(o).results[0])
        .collect();
    ops.into_iter().all(|o| {
        let d = m.op(o);
        let local = |v: Value| own.contains(&v);
        match d.opcode {
            Opcode::CoreConst | Opcode::CoreCast | Opcode::CoreLocal => true,
            // A callee's parameters and locals live in its own stack slots.
            Opcode::CoreStore => local(d.operands[1]),
            Opcode::CoreLoad => local(d.operands[0]),
            // A void return or the end of the deferred region.
            Opcode::KsYield | Opcode::KsReturn => d.operands.is_empty(),
            // A global's address, used by atomic adds only.
            Opcode::KsGlobalAddr => {
                let Some(g) = sym(m, o, "global") else {
                    return false;
                };
                c.globals.insert(g);
                uses_of(m, region, d.results[0]).iter().all(|&u| {
                    m.op(u).opcode == Opcode::CoreAtomicAdd && m.op(u).operands[0] == d.results[0]
                })
            }
            Opcode::CoreAtomicAdd => true,
            Opcode::KsMapAdd => match sym(m, o, "map") {
                Some(map) => {
                    c.maps.insert(map);
                    true
                }
                None => false,
            },
            Opcode::CoreCall if d.results.is_empty() => {
                let Some(callee) = sym(m, o, "callee") else {
                    return false;
                };
                if !c.seen.insert(callee.clone()) {
                    return true;
                }
                let Some(f) = m.lookup_symbol(&callee) else {
                    return false;
                };
                m.op(f).opcode == Opcode::KsFunc && bumps_only(m, m.op(f).regions[0], c)
            }
            _ => false,
        }
    })
}

fn uses_of(m: &Module, region: RegionId, v: Value) -> Vec<OpId> {
    let mut out = Vec::new();
    m.walk_region(region, &mut |o| {
        if m.op(o).operands.contains(&v) {
            out.push(o);
        }
    });
    out
}

/// Whether anything that may run after the defer and before its scope ends reads one of the
/// counters, or anything else could observe them (calls into code that names them).
fn read_later(m: &Module, defer: OpId, c: &Counters) -> bool {
    let Some((block, at)) = m.position(defer) else {
        return true;
    };
    let mut seen = HashSet::new();
    m.block(block).ops[at + 1..]
        .iter()
        .any(|&o| names_counters(m, o, c, &mut seen))
}

/// Whether `op` (nested ops and called functions included) names one of the counters other
/// than to bump it.
fn names_counters(m: &Module, op: OpId, c: &Counters, seen: &mut HashSet<String>) -> bool {
    let mut ops = m.collect_nested(op, |_| true);
    ops.push(op);
    ops.into_iter().any(|o| {
        let d = m.op(o);
        match d.opcode {
            Opcode::KsGlobalAddr => sym(m, o, "global").is_some_and(|g| {
                c.globals.contains(&g)
                    && uses_in_function(m, o, d.results[0])
                        .iter()
                        .any(|&u| m.op(u).opcode != Opcode::CoreAtomicAdd)
            }),
            Opcode::KsMapAdd => false,
            Opcode::CoreCall | Opcode::CoreCallIndirect => match sym(m, o, "callee") {
                Some(callee) if !seen.insert(callee.clone()) => false,
                Some(callee) => m
                    .lookup_symbol(&callee)
                    .is_none_or(|f| names_counters(m, f, c, seen)),
                None => true,
            },
            _ => sym(m, o, "map").is_some_and(|s| c.maps.contains(&s)),
        }
    })
}

fn uses_in_function(m: &Module, op: OpId, v: Value) -> Vec<OpId> {
    let f = m.top_level_of(op);
    m.collect_nested(f, |d| d.operands.contains(&v))
}

/// Runs the deferred ops where the defer stands.
fn hoist(m: &mut Module, defer: OpId) {
    let region = m.op(defer).regions[0];
    let Some(&body) = m.region(region).blocks.first() else {
        return;
    };
    let (block, at) = m.position(defer).expect("placed");
    let ops: Vec<OpId> = m
        .block(body)
        .ops
        .iter()
        .copied()
        .filter(|&o| m.op(o).opcode != Opcode::KsYield)
        .collect();
    for (i, &o) in ops.iter().enumerate() {
        m.detach_op(o);
        m.place_op(o, block, Some(at + i));
    }
    m.detach_op(defer);
}
