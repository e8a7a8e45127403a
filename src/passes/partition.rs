//! Target partitioning and reachability: one module holds all three worlds after lowering; the
//! backends each get only their functions and the declarations those functions use.

use super::callgraph::CallGraph;
use super::manager::Analyses;
use super::PassResult;
use crate::ir::views::{KsConfig, KsFunc, KsGlobal, KsMap};
use crate::ir::{Attr, Module, OpId, Opcode};
use crate::vocab::{Storage, Target};
use petgraph::visit::Dfs;
use std::collections::HashSet;

/// Functions that are entry points: programs, main, tests, kfuncs, struct_ops methods, and the
/// default ring-buffer handlers `<map>_callback` the runtime registers (§11.5).
fn roots(m: &Module, funcs: impl Iterator<Item = OpId>) -> Vec<OpId> {
    let methods = impl_methods(m);
    funcs
        .filter(|&f| {
            let v = KsFunc(f);
            v.kind(m).is_some()
                || v.test(m) == Some(true)
                || m.symbol(f) == Some("main")
                || v.target(m) == Target::Kmod
                || m.symbol(f).is_some_and(|name| methods.contains(name))
                || default_handler(m, f)
        })
        .collect()
}

fn default_handler(m: &Module, f: OpId) -> bool {
    let Some(map) = m.symbol(f).and_then(|n| n.strip_suffix("_callback")) else {
        return false;
    };
    m.lookup_symbol(map)
        .and_then(|d| KsMap::of(m, d))
        .is_some_and(|map| map.kind(m).is_event_stream())
}

/// Maps, configs and object globals live in the BPF object even when only userspace uses them.
fn in_object(m: &Module, op: OpId) -> bool {
    match m.op(op).opcode {
        Opcode::KsMap | Opcode::KsConfig => true,
        Opcode::KsGlobal => KsGlobal(op).storage(m) != Storage::Process,
        _ => false,
    }
}

/// The functions some struct_ops `impl` names as a method (collected once: the unit may have
/// many functions).
fn impl_methods(m: &Module) -> HashSet<&str> {
    let mut names = HashSet::new();
    for &o in m.top_ops() {
        if let (Opcode::KsImpl, Some(Attr::List(l))) = (m.op(o).opcode, m.attr(o, "methods")) {
            names.extend(l.iter().filter_map(|a| match a {
                Attr::Sym(s) => Some(s.as_str()),
                _ => None,
            }));
        }
    }
    names
}

/// Symbols used anywhere inside the given ops (maps, globals, configs, externs, structs, funcs).
fn used_symbols(m: &Module, roots: &[OpId]) -> HashSet<String> {
    let mut used = HashSet::new();
    for &r in roots {
        let mut visit = |op: OpId| {
            for a in m.op(op).attrs.iter().flatten() {
                collect_attr(a, &mut used);
            }
            // A config's storage is its value struct `NAME_config` (§12.3).
            if let Some(c) = KsConfig::of(m, op) {
                used.insert(format!("{}_config", c.name(m)));
            }
            // A struct_ops instance is laid out by the kernel struct it names.
            if let (Opcode::KsImpl, Some(Attr::Str(k))) =
                (m.op(op).opcode, m.attr(op, "kernel_struct"))
            {
                used.insert(String::from_utf8_lossy(k).into_owned());
            }
            for &v in m.op(op).results.iter().chain(&m.op(op).operands) {
                collect_struct_names(m.value_type(v), &mut used);
            }
        };
        visit(r);
        m.walk_nested(r, &mut visit);
        for &rg in &m.op(r).regions {
            for &b in &m.region(rg).blocks {
                for &a in &m.block(b).args {
                    collect_struct_names(m.value_type(a), &mut used);
                }
            }
        }
    }
    used
}

fn collect_attr(a: &Attr, used: &mut HashSet<String>) {
    match a {
        Attr::Sym(s) => {
            used.insert(s.clone());
        }
        Attr::Type(t) => collect_struct_names(t, used),
        Attr::Fields(fs) => fs.iter().for_each(|(_, t)| collect_struct_names(t, used)),
        Attr::List(l) => l.iter().for_each(|a| collect_attr(a, used)),
        _ => {}
    }
}

fn collect_struct_names(t: &crate::ir::Type, used: &mut HashSet<String>) {
    use crate::ir::Type;
    match t {
        Type::Struct(n) => {
            used.insert(n.to_string());
        }
        Type::Ptr(p) | Type::Array(p, _) => collect_struct_names(p, used),
        Type::Func(f) => {
            f.params.iter().for_each(|p| collect_struct_names(p, used));
            collect_struct_names(&f.ret, used);
        }
        _ => {}
    }
}

/// Keeps the functions in `keep` and the declarations they (transitively) use.
fn retain(m: &mut Module, keep: &HashSet<OpId>, object: bool) {
    let mut roots: Vec<OpId> = m.funcs().filter(|f| keep.contains(f)).collect();
    roots.extend(
        m.top_ops()
            .iter()
            .copied()
            .filter(|&o| m.op(o).opcode == Opcode::KsImpl && impl_kept(m, o, keep)),
    );
    if object {
        roots.extend(m.top_ops().iter().copied().filter(|&o| in_object(m, o)));
    }
    let mut used = used_symbols(m, &roots);
    for &r in &roots {
        if let Some(s) = m.symbol(r) {
            used.insert(s.to_string());
        }
    }
    // Declarations refer to structs (fields, map keys) and impls to methods: close over them.
    loop {
        let decls: Vec<OpId> = m
            .top_ops()
            .iter()
            .copied()
            .filter(|&o| {
                m.op(o).opcode != Opcode::KsFunc && m.symbol(o).is_some_and(|s| used.contains(s))
            })
            .collect();
        let more = used_symbols(m, &decls);
        let before = used.len();
        used.extend(more);
        if used.len() == before {
            break;
        }
    }
    let drop: Vec<OpId> = m
        .top_ops()
        .iter()
        .copied()
        .filter(|&o| match m.op(o).opcode {
            Opcode::KsFunc => !keep.contains(&o),
            // Both sides need the tail-call table: the kernel calls through it, the runtime fills it.
            Opcode::KsProgArray => false,
            // The command line is parsed by the host executable only.
            Opcode::KsCli => object,
            Opcode::KsImpl => {
                !m.symbol(o).is_some_and(|s| used.contains(s)) && !impl_kept(m, o, keep)
            }
            _ => !m.symbol(o).is_some_and(|s| used.contains(s)),
        })
        .collect();
    m.detach_ops(&drop);
}

fn impl_kept(m: &Module, imp: OpId, keep: &HashSet<OpId>) -> bool {
    match m.attr(imp, "methods") {
        Some(Attr::List(l)) => l.iter().any(
            |a| matches!(a, Attr::Sym(s) if m.lookup_symbol(s).is_some_and(|f| keep.contains(&f))),
        ),
        _ => false,
    }
}

fn reachable(cg: &CallGraph, roots: impl Iterator<Item = OpId>) -> HashSet<OpId> {
    let mut seen = HashSet::new();
    for r in roots {
        let mut dfs = Dfs::new(&cg.graph, cg.node[&r]);
        while let Some(n) = dfs.next(&cg.graph) {
            seen.insert(cg.graph[n]);
        }
    }
    seen
}

pub fn reachability(m: &mut Module) -> PassResult {
    let roots = roots(m, m.funcs());
    let keep = reachable(&CallGraph::build(m), roots.into_iter());
    retain(m, &keep, false);
    Ok(())
}

/// Keeps one world: its functions (reachable from its roots, or all of them when it has no roots)
/// and the declarations they use. References to programs from userspace (`load`, `test`) stay as
/// symbols: the host backend resolves them in the BPF object.
pub fn partition(m: &mut Module, target: Target, analyses: &mut Analyses) -> PassResult {
    if target == Target::Bpf && kfuncs_as_externs(m) {
        analyses.invalidate();
    }
    let in_target: Vec<OpId> = m
        .funcs()
        .filter(|&f| KsFunc(f).target(m) == target)
        .collect();
    let roots = roots(m, in_target.iter().copied());
    let keep: HashSet<OpId> = if roots.is_empty() {
        in_target.iter().copied().collect()
    } else {
        reachable(analyses.call_graph(m), roots.into_iter())
            .into_iter()
            .filter(|f| in_target.contains(f))
            .collect()
    };
    retain(m, &keep, target == Target::Bpf);
    Ok(())
}

/// Kernel code reaches the unit's own `@kfunc`s through BTF like any kfunc (§16.2): on the
/// kernel side each becomes a `ks.extern` (no helper id) and its calls `ks.call_extern`.
/// Returns whether any call changed.
fn kfuncs_as_externs(m: &mut Module) -> bool {
    let kfuncs: Vec<OpId> = m
        .funcs()
        .filter(|&f| KsFunc(f).target(m) == Target::Kmod)
        .collect();
    let names: HashSet<String> = kfuncs
        .iter()
        .filter_map(|&f| m.symbol(f).map(str::to_string))
        .collect();
    let bpf_funcs = super::kernel_funcs(m);
    let mut called = HashSet::new();
    for f in bpf_funcs {
        for call in m.collect_nested(f, |o| o.opcode == Opcode::CoreCall) {
            let Some(Attr::Sym(callee)) = m.attr(call, "callee").cloned() else {
                continue;
            };
            if !names.contains(&callee) {
                continue;
            }
            let (args, results) = (m.op(call).operands.clone(), m.op(call).results.clone());
            let tys: Vec<_> = results.iter().map(|&r| m.value_type(r).clone()).collect();
            let new = m.builder_before(call).ks_call_extern(&args, &callee, &tys);
            let new_results = m.op(new).results.clone();
            m.replace_op(call, &new_results);
            called.insert(callee);
        }
    }
    for f in kfuncs {
        let Some(name) = m.symbol(f).map(str::to_string) else {
            continue;
        };
        if !called.contains(&name) {
            continue;
        }
        let ty = KsFunc(f).ty(m).clone();
        let loc = m.op(f).loc;
        // The extern takes the function's place under the same name.
        let pos = m.top_ops().iter().position(|&o| o == f);
        m.detach_op(f);
        let body = m.body;
        let mut b = crate::ir::Builder::new(m, body);
        b.at = pos;
        b.loc = loc;
        b.ks_extern(&name, ty, None);
    }
    !called.is_empty()
}
