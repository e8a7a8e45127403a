//! Tail calls (docs/language.md §9.5), in two steps.
//!
//! `assign-tail-calls` runs on the whole module, before partitioning: it declares one
//! `ks.prog_array @prog_array` whose `programs` list gives every tail-call target a stable index,
//! in order of first appearance. Both sides keep it: the kernel side calls through it, the
//! runtime fills it right after loading the object.
//!
//! `lower-tail-calls` runs on the flattened kernel side: each `ks.tail_call @f(%ctx)` (whose
//! cleanups `flatten` already emitted before it) becomes `bpf.tail_call %ctx, idx` followed by
//! the caller's pass verdict, which is returned only when the kernel refuses the tail call.

use super::{PassErrors, PassResult};
use crate::ir::{views::KsFunc, Attr, Builder, Module, OpId, Opcode, Type};
use crate::vocab::ProgKind;

use crate::ir::symbols::PROG_ARRAY;

fn tail_calls(m: &Module) -> Vec<OpId> {
    let mut out = Vec::new();
    for f in m.funcs() {
        out.extend(m.collect_nested(f, |o| o.opcode == Opcode::KsTailCall));
    }
    out
}

fn callee(m: &Module, op: OpId) -> String {
    match m.attr(op, "callee") {
        Some(Attr::Sym(s)) => s.clone(),
        _ => String::new(),
    }
}

pub fn assign(m: &mut Module) -> PassResult {
    if m.lookup_symbol(PROG_ARRAY).is_some() {
        return Ok(());
    }
    let mut programs: Vec<String> = Vec::new();
    for op in tail_calls(m) {
        let c = callee(m, op);
        if !programs.contains(&c) {
            programs.push(c);
        }
    }
    if programs.is_empty() {
        return Ok(());
    }
    // Place it after the other declarations, before the first function.
    let pos = m
        .top_ops()
        .iter()
        .position(|&o| m.op(o).opcode == Opcode::KsFunc);
    let body = m.body;
    let mut b = Builder::new(m, body);
    b.at = pos;
    b.ks_prog_array(PROG_ARRAY, programs.into_iter().map(Attr::Sym).collect());
    Ok(())
}

pub fn lower(m: &mut Module) -> PassResult {
    let calls = tail_calls(m);
    if calls.is_empty() {
        return Ok(());
    }
    let programs: Vec<String> = match m
        .lookup_symbol(PROG_ARRAY)
        .and_then(|p| m.attr(p, "programs"))
    {
        Some(Attr::List(l)) => l
            .iter()
            .filter_map(|a| {
                if let Attr::Sym(s) = a {
                    Some(s.clone())
                } else {
                    None
                }
            })
            .collect(),
        _ => {
            return Err(vec![super::PassError::internal(
                Some(calls[0]),
                "tail calls need `assign-tail-calls` to run first",
            )])
        }
    };
    let mut errors = PassErrors::new();
    for op in calls {
        let target = callee(m, op);
        let Some(index) = programs.iter().position(|p| *p == target) else {
            errors.push(super::PassError::internal(
                Some(op),
                format!("@{target} has no prog_array slot"),
            ));
            continue;
        };
        let func = m.top_level_of(op);
        let verdict = KsFunc(func).kind(m).map_or(0, ProgKind::pass_verdict);
        let ret = match m.attr(func, "ty") {
            Some(Attr::Type(Type::Func(ft))) => ft.ret.clone(),
            _ => Type::Void,
        };
        let ctx = m.op(op).operands[0];
        let mut b = m.builder_before(op);
        let idx = b.core_const(index as i128, Type::u32());
        b.bpf_tail_call(ctx, idx, PROG_ARRAY);
        let v = if ret == Type::Void {
            vec![]
        } else {
            vec![b.core_const(verdict, ret)]
        };
        b.core_ret(&v);
        m.detach_op(op);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
