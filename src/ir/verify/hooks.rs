//! Op-specific verifier rules, named by the `verify:` lines of the op specs.

use super::Verifier;
use crate::ir::views::*;
use crate::ir::*;

fn str_attr(a: &[u8]) -> &str {
    std::str::from_utf8(a).unwrap_or("")
}

pub fn const_fits(v: &mut Verifier, op: OpId) {
    let c = CoreConst(op);
    let (value, t) = (c.value(v.module), v.ty(c.result_value(v.module)));
    let ok = match t {
        Type::Int(i) => value >= i.min() && value <= i.max(),
        Type::Bool => value == 0 || value == 1,
        _ => value == 0,
    };
    if !ok {
        v.error(op, format!("constant {value} does not fit {t}"));
    }
}

pub fn table_values(v: &mut Verifier, op: OpId) {
    let t = CoreTable(op);
    let rt = v.ty(t.result_value(v.module)).clone();
    let Type::Int(ty) = rt else {
        return;
    };
    if v.ty(t.index(v.module)) != &Type::u64() {
        v.error(op, "a table is indexed by a u64");
    }
    let values = t.values(v.module);
    if values.is_empty() {
        v.error(op, "a table needs at least one value");
    }
    for x in values {
        match x {
            Attr::Int(x) if (ty.min()..=ty.max()).contains(x) => {}
            other => {
                v.error(op, format!("table value {other:?} does not fit {rt}"));
                return;
            }
        }
    }
}

pub fn string_fits(v: &mut Verifier, op: OpId) {
    let s = CoreString(op);
    if let Type::Str(n) = v.ty(s.result_value(v.module)) {
        if s.value(v.module).len() as u64 + 1 > *n as u64 {
            v.error(
                op,
                format!(
                    "string of {} bytes does not fit str<{n}>",
                    s.value(v.module).len()
                ),
            );
        }
    }
}

pub fn same_operand_types(v: &mut Verifier, op: OpId) {
    let o = &v.module.op(op).operands;
    if o.len() == 2 && v.ty(o[0]) != v.ty(o[1]) {
        v.error(
            op,
            format!(
                "operands have different types: {} and {}",
                v.ty(o[0]),
                v.ty(o[1])
            ),
        );
    }
}

pub fn cmp(v: &mut Verifier, op: OpId) {
    same_operand_types(v, op);
}

pub fn local(v: &mut Verifier, op: OpId) {
    let l = CoreLocal(op);
    let want = Type::ptr(l.ty(v.module).clone());
    if *v.ty(l.addr_value(v.module)) != want {
        v.error(op, format!("result must be {want}"));
    }
}

pub fn load(v: &mut Verifier, op: OpId) {
    let o = v.module.op(op);
    let (addr, value) = (o.operands[0], o.results[0]);
    if v.ty(addr).pointee() != Some(v.ty(value)) {
        v.error(op, format!("loads {} through {}", v.ty(value), v.ty(addr)));
    }
}

pub fn store(v: &mut Verifier, op: OpId) {
    let s = CoreStore(op);
    let (val, addr) = (s.value(v.module), s.addr(v.module));
    if v.ty(addr).pointee() != Some(v.ty(val)) {
        v.error(op, format!("stores {} through {}", v.ty(val), v.ty(addr)));
    }
}

/// The fields of a `ks.struct` declaration.
fn struct_fields<'m>(v: &Verifier<'m>, name: &str) -> Option<&'m [(String, Type)]> {
    let s = v.symbol_op(name, Opcode::KsStruct)?;
    Some(KsStruct(s).fields(v.module))
}

pub fn field_addr(v: &mut Verifier, op: OpId) {
    let o = v.module.op(op);
    let (base, addr) = (o.operands[0], o.results[0]);
    let Some(Attr::Str(field)) = v.module.attr(op, "field") else {
        return;
    };
    let field = str_attr(field);
    let Some(Type::Struct(name)) = v.ty(base).pointee() else {
        v.error(
            op,
            format!("base must point to a struct, got {}", v.ty(base)),
        );
        return;
    };
    let Some(fields) = struct_fields(v, name) else {
        v.error(op, format!("unknown struct !{name}"));
        return;
    };
    match fields.iter().find(|(n, _)| n == field) {
        None => v.error(op, format!("!{name} has no field `{field}`")),
        Some((_, t)) if *v.ty(addr) != Type::ptr(t.clone()) => {
            v.error(op, format!("result must be ptr<{t}>"))
        }
        _ => {}
    }
}

fn func_type<'m>(v: &Verifier<'m>, f: OpId) -> Option<&'m FnType> {
    match v.module.attr(f, "ty") {
        Some(Attr::Type(Type::Func(ft))) => Some(ft),
        _ => None,
    }
}

fn check_args(
    v: &mut Verifier,
    op: OpId,
    ft: &FnType,
    args: &[Value],
    results: &[Value],
    what: &str,
) {
    if args.len() != ft.params.len() {
        v.error(
            op,
            format!(
                "{what} takes {} arguments, got {}",
                ft.params.len(),
                args.len()
            ),
        );
        return;
    }
    for (i, (&a, p)) in args.iter().zip(&ft.params).enumerate() {
        if v.ty(a) != p {
            v.error(
                op,
                format!("argument {i} of {what} must be {p}, got {}", v.ty(a)),
            );
        }
    }
    let want = if ft.ret == Type::Void { 0 } else { 1 };
    if results.len() != want || (want == 1 && *v.ty(results[0]) != ft.ret) {
        v.error(op, format!("{what} returns {}", ft.ret));
    }
}

pub fn call(v: &mut Verifier, op: OpId) {
    let c = CoreCall(op);
    let callee = c.callee(v.module);
    let Some(f) = v.symbol_op(callee, Opcode::KsFunc) else {
        v.error(op, format!("@{callee} is not a function of this module"));
        return;
    };
    let Some(ft) = func_type(v, f) else { return };
    let (args, results) = (
        c.args(v.module).to_vec(),
        c.results_value(v.module).to_vec(),
    );
    check_args(v, op, ft, &args, &results, &format!("@{callee}"));
}

pub fn branch_args(v: &mut Verifier, op: OpId) {
    let m = v.module;
    let o = m.op(op);
    // core.br passes all its operands; core.cond_br splits those after the condition.
    let groups: Vec<(BlockId, &[Value])> = if o.opcode == Opcode::CoreBr {
        o.successors
            .iter()
            .map(|&s| (s, o.operands.as_slice()))
            .collect()
    } else {
        let rest = &o.operands[1..];
        let t = (CoreCondBr(op).true_args(m).max(0) as usize).min(rest.len());
        o.successors
            .iter()
            .zip([&rest[..t], &rest[t..]])
            .map(|(&s, a)| (s, a))
            .collect()
    };
    for (b, vals) in groups {
        let params = &m.block(b).args;
        if params.len() != vals.len()
            || params
                .iter()
                .zip(vals)
                .any(|(&p, &a)| m.value_type(p) != m.value_type(a))
        {
            v.error(
                op,
                "branch arguments do not match the successor's block arguments",
            );
        }
    }
}

pub fn switch(v: &mut Verifier, op: OpId) {
    let s = CoreSwitch(op);
    let n = s.cases(v.module).len();
    if v.module.op(op).successors.len() != n + 1 {
        v.error(
            op,
            format!("{n} cases need {} successors (default first)", n + 1),
        );
    }
}

fn check_return(v: &mut Verifier, op: OpId) {
    let Some(f) = v.func else { return };
    let Some(ft) = func_type(v, f) else { return };
    let vals = &v.module.op(op).operands;
    let ok = if ft.ret == Type::Void {
        vals.is_empty()
    } else {
        vals.len() == 1 && *v.ty(vals[0]) == ft.ret
    };
    if !ok {
        v.error(op, format!("the function returns {}", ft.ret));
    }
}

pub fn ret(v: &mut Verifier, op: OpId) {
    check_return(v, op);
}

pub fn return_value(v: &mut Verifier, op: OpId) {
    check_return(v, op);
}

pub fn struct_decl(v: &mut Verifier, op: OpId) {
    let s = KsStruct(op);
    if s.offsets(v.module).len() != s.fields(v.module).len() {
        v.error(op, "one offset per field is required");
    }
}

pub fn func(v: &mut Verifier, op: OpId) {
    let f = KsFunc(op);
    let m = v.module;
    let Type::Func(ft) = f.ty(m) else {
        v.error(op, "`ty` must be a function type");
        return;
    };
    let body = f.body_region(m);
    if let Some(&entry) = m.region(body).blocks.first() {
        let args = &m.block(entry).args;
        if args.len() != ft.params.len()
            || args
                .iter()
                .zip(&ft.params)
                .any(|(&a, p)| m.value_type(a) != p)
        {
            v.error(op, "the entry block's arguments must match the parameters");
        }
    }
}

pub fn yields_match_results(v: &mut Verifier, op: OpId) {
    let m = v.module;
    let want: Vec<&Type> = m.op(op).results.iter().map(|&r| m.value_type(r)).collect();
    for &r in &m.op(op).regions {
        for &b in &m.region(r).blocks {
            if let Some(&last) = m.block(b).ops.last() {
                if m.op(last).opcode == Opcode::KsYield {
                    let got: Vec<&Type> = m
                        .op(last)
                        .operands
                        .iter()
                        .map(|&x| m.value_type(x))
                        .collect();
                    if got != want {
                        v.error(
                            last,
                            "yielded values do not match the enclosing op's results",
                        );
                    }
                } else if !want.is_empty() && !m.is_terminator(last) {
                    v.error(
                        op,
                        "a region of an op with results must end in ks.yield or leave",
                    );
                }
            } else if !want.is_empty() {
                v.error(
                    op,
                    "a region of an op with results must end in ks.yield or leave",
                );
            }
        }
    }
}

pub fn switch_arms(v: &mut Verifier, op: OpId) {
    let s = KsSwitch(op);
    let n = s.cases(v.module).len();
    if v.module.op(op).regions.len() != n + 1 {
        v.error(
            op,
            format!("{n} cases need {} regions (default last)", n + 1),
        );
    }
    yields_match_results(v, op);
}

pub fn for_loop(v: &mut Verifier, op: OpId) {
    let m = v.module;
    let f = KsFor(op);
    let (lo, hi) = (f.lo(m), f.hi(m));
    if v.ty(lo) != v.ty(hi) {
        v.error(op, "loop bounds must have the same type");
    }
    let entry = m.region(f.body_region(m)).blocks.first().copied();
    if let Some(b) = entry {
        let args = &m.block(b).args;
        if args.len() != 1 || m.value_type(args[0]) != v.ty(lo) {
            v.error(op, "the body takes the counter as its one block argument");
        }
    }
}

pub fn try_handlers(v: &mut Verifier, op: OpId) {
    let t = KsTry(op);
    let catches = t.catches(v.module);
    if v.module.op(op).regions.len() != catches.len() + 1 {
        v.error(op, "one handler region per catch clause is required");
    }
    if catches
        .iter()
        .any(|c| !matches!(c, Attr::Int(_)) && c != &Attr::Str(b"_".to_vec()))
    {
        v.error(op, "catch patterns are integers or \"_\"");
    }
}

pub fn index_addr(v: &mut Verifier, op: OpId) {
    let i = KsIndexAddr(op);
    let m = v.module;
    let elem = match v.ty(i.base(m)).pointee() {
        Some(Type::Array(t, _)) => (**t).clone(),
        Some(Type::Str(_)) => Type::u8(),
        _ => {
            v.error(op, "base must point to an array or string");
            return;
        }
    };
    if *v.ty(i.addr_value(m)) != Type::ptr(elem.clone()) {
        v.error(op, format!("result must be ptr<{elem}>"));
    }
}

pub fn nonnull(v: &mut Verifier, op: OpId) {
    let n = KsNonnull(op);
    let m = v.module;
    if v.ty(n.checked_value(m)) != v.ty(n.addr(m)) {
        v.error(op, "result must have the operand's type");
    }
}

pub fn map_key(v: &mut Verifier, op: OpId) {
    let m = v.module;
    let Some(Attr::Sym(name)) = m.attr(op, "map") else {
        return;
    };
    let Some(decl) = v.symbol_op(name, Opcode::KsMap) else {
        v.error(op, format!("@{name} is not a map"));
        return;
    };
    let d = KsMap(decl);
    let key = m.op(op).operands[0];
    if d.key(m).is_some_and(|k| k != v.ty(key)) {
        v.error(op, format!("key must be {}", d.key(m).unwrap()));
    }
    if m.op(op).opcode == Opcode::KsMapUpdate {
        let val = m.op(op).operands[1];
        if v.ty(val) != d.value(m) {
            v.error(op, format!("value must be {}", d.value(m)));
        }
    }
    if m.op(op).opcode == Opcode::KsMapLookup
        && *v.ty(m.op(op).results[0]) != Type::ptr(d.value(m).clone())
    {
        v.error(op, format!("result must be ptr<{}>", d.value(m)));
    }
}

pub fn tail_call(v: &mut Verifier, op: OpId) {
    let callee = KsTailCall(op).callee(v.module);
    match v.symbol_op(callee, Opcode::KsFunc) {
        Some(f) if KsFunc(f).kind(v.module).is_some() => {}
        _ => v.error(op, format!("@{callee} is not a program")),
    }
}
