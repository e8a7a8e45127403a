//! The call graph of a module (petgraph): which function calls, tail-calls or references which.

use super::PassResult;
use crate::ir::{views::KsFunc, Attr, Module, OpId, Opcode};
use crate::vocab::Target;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use std::collections::HashMap;

/// How one function reaches another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    Call,
    TailCall,
    /// A function named as a value or handler (`func_addr`, `load`, `on_event`, `test`, impls).
    Reference,
}

pub struct CallGraph {
    pub graph: DiGraph<OpId, (Edge, OpId)>,
    pub node: HashMap<OpId, NodeIndex>,
}

impl CallGraph {
    pub fn build(m: &Module) -> CallGraph {
        let mut graph = DiGraph::new();
        let mut node = HashMap::new();
        let mut by_name = HashMap::new();
        for f in m.funcs() {
            node.insert(f, graph.add_node(f));
            by_name.insert(m.symbol(f).unwrap_or_default().to_string(), f);
        }
        for f in m.funcs() {
            let from = node[&f];
            let mut edges = Vec::new();
            m.walk_nested(f, &mut |op| {
                let data = m.op(op);
                let (edge, attr) = match data.opcode {
                    Opcode::CoreCall => (Edge::Call, "callee"),
                    Opcode::KsTailCall => (Edge::TailCall, "callee"),
                    Opcode::CoreFuncAddr => (Edge::Reference, "callee"),
                    Opcode::KsLoadProg | Opcode::KsTestRun => (Edge::Reference, "prog"),
                    Opcode::KsRbOnEvent => (Edge::Reference, "handler"),
                    Opcode::BpfLoop => (Edge::Call, "callback"),
                    _ => return,
                };
                if let Some(Attr::Sym(s)) = m.attr(op, attr) {
                    if let Some(&to) = by_name.get(s.as_str()) {
                        edges.push((to, edge, op));
                    }
                }
            });
            for (to, e, op) in edges {
                graph.add_edge(from, node[&to], (e, op));
            }
        }
        CallGraph { graph, node }
    }
}

fn target(m: &Module, f: OpId) -> Target {
    KsFunc(f).target(m)
}

/// Recursion among kernel functions cannot be compiled for eBPF (docs/language.md §9.4, E0502).
pub fn check_recursion(m: &Module, cg: &CallGraph) -> PassResult {
    let mut errors = Vec::new();
    for scc in petgraph::algo::tarjan_scc(&cg.graph) {
        let f = cg.graph[scc[0]];
        if target(m, f) != Target::Bpf {
            continue;
        }
        let self_loop = cg
            .graph
            .edges_connecting(scc[0], scc[0])
            .any(|e| e.weight().0 == Edge::Call);
        if scc.len() == 1 && !self_loop {
            continue;
        }
        let (cycle, closing) = cycle_path(m, cg, &scc);
        let names: Vec<String> = cycle
            .iter()
            .map(|&f| format!("@{}", m.symbol(f).unwrap_or("?")))
            .collect();
        errors.push(super::PassError::user(
            closing,
            crate::diagnostics::Code::E0502,
            format!("{} -> {}", names.join(" -> "), names[0]),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Each program may call only the BPF helpers its kind allows (sema's table); the kernel would
/// refuse the program at load. Checked over everything a program calls (helpers, loop bodies),
/// at the helper call, naming the program (E0501).
pub fn check_helper_kinds(m: &Module, cg: &CallGraph) -> PassResult {
    let mut errors = Vec::new();
    let mut reported = std::collections::HashSet::new();
    for program in m.funcs().filter(|&f| target(m, f) == Target::Bpf) {
        let Some(kind) = KsFunc(program).kind(m) else {
            continue;
        };
        // What runs in this program: calls only (a tail call's target is a program of its own).
        let calls_only =
            petgraph::visit::EdgeFiltered::from_fn(&cg.graph, |e| e.weight().0 == Edge::Call);
        let mut reached = petgraph::visit::Dfs::new(&calls_only, cg.node[&program]);
        let mut calls = Vec::new();
        while let Some(n) = reached.next(&calls_only) {
            m.walk_nested(cg.graph[n], &mut |op| {
                if let (Opcode::KsCallExtern, Some(Attr::Sym(callee))) =
                    (m.op(op).opcode, m.attr(op, "callee"))
                {
                    calls.push((op, callee.to_string()));
                }
            });
        }
        for (op, callee) in calls {
            let allowed =
                crate::vocab::helpers::callable(&callee).map_or(Ok(()), |h| h.allowed_in(kind));
            if let Err(why) = allowed {
                if reported.insert(op) {
                    let name = m.symbol(program).unwrap_or("?");
                    errors.push(super::PassError::user(op, crate::diagnostics::Code::E0501, format!("`{callee}` is not available to {kind} programs (`{name}` reaches this call): {why}")));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A cycle through a strongly connected component, starting at the member declared first, and
/// the call that closes it.
fn cycle_path(m: &Module, cg: &CallGraph, scc: &[NodeIndex]) -> (Vec<OpId>, OpId) {
    let order: HashMap<OpId, usize> = m.funcs().enumerate().map(|(i, f)| (f, i)).collect();
    let start = *scc
        .iter()
        .min_by_key(|&&n| order[&cg.graph[n]])
        .expect("a non-empty component");
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let next = cg
            .graph
            .edges(cur)
            .filter(|e| e.weight().0 == Edge::Call && scc.contains(&e.target()))
            .min_by_key(|e| (e.target() != start, order[&cg.graph[e.target()]]));
        let Some(e) = next else { break };
        if e.target() == start || path.contains(&e.target()) {
            return (path.iter().map(|&n| cg.graph[n]).collect(), e.weight().1);
        }
        path.push(e.target());
        cur = e.target();
    }
    (path.iter().map(|&n| cg.graph[n]).collect(), cg.graph[start])
}
