//! `guard-verdicts`: a program whose return value the verifier checks against a range
//! (cgroup_skb [0, 1] or [0, 3], lsm [-4095, 0], fentry/fexit 0) returns the pass verdict where a
//! computed return value falls outside that range.
//!
//! Sema rejects constant returns out of range (E0310), but `return x - 1` or `return len as i32`
//! in a cgroup_skb program passed the checks and then the verifier refused the object ("At program
//! exit the register R0 has unknown scalar value"). The guard makes such a program loadable and
//! gives out-of-range values the meaning docs/language.md §9.2 assigns them.
//! Requires: `flatten` (returns are `core.ret`); runs after `lower-tail-calls`.

use super::PassResult;
use crate::ir::{views::KsFunc, Module, OpId, Opcode, Type, Value, ValueDef};
use crate::sema::verdict::verdicts;
use crate::vocab::{CmpPred, ProgKind};

pub fn run(m: &mut Module) -> PassResult {
    let funcs: Vec<OpId> = m.funcs().collect();
    for f in funcs {
        let Some(range) = checked_range(m, f) else {
            continue;
        };
        let pass = KsFunc(f).kind(m).map_or(0, ProgKind::pass_verdict);
        for ret in m.collect_nested(f, |d| d.opcode == Opcode::CoreRet) {
            guard(m, ret, range, pass);
        }
    }
    Ok(())
}

/// The return range the verifier enforces for program `f`, if any.
fn checked_range(m: &Module, f: OpId) -> Option<(i128, i128)> {
    let kind = KsFunc(f).kind(m)?;
    if !matches!(
        kind,
        ProgKind::CgroupSkb | ProgKind::Lsm | ProgKind::Probe | ProgKind::Fexit
    ) {
        return None;
    }
    let attach = KsFunc(f)
        .attach(m)
        .and_then(|a| std::str::from_utf8(a).ok());
    verdicts(kind, attach).range
}

fn guard(m: &mut Module, ret: OpId, (lo, hi): (i128, i128), pass: i128) {
    let Some(&v) = m.op(ret).operands.first() else {
        return;
    };
    if constant_within(m, v, (lo, hi), 4) {
        return;
    }
    let ret_ty: Type = m.value_type(v).clone();
    // In a whole register: BPF cpu v1 compares an i32 in a sign-extended copy of it, which is
    // not the register returned.
    let ty = Type::i64();
    let mut b = m.builder_before(ret);
    let v = b.cast_to(v, ty.clone());
    let fallback = b.core_const(pass, ty.clone());
    // Each bound is tested on an opaque copy of the value it then selects: the verifier learns a
    // range only from a test of the register returned, and LLVM would otherwise fold both tests
    // into one range check on a derived register, or on the value's source (`b & 254 == 16`).
    let mut value = v;
    for (bound, outside) in [(lo, CmpPred::Lt), (hi, CmpPred::Gt)] {
        let copy = b.bpf_opaque(value);
        let limit = b.core_const(bound, ty.clone());
        let out = b.core_cmp(copy, limit, outside);
        value = b.core_select(out, fallback, copy);
    }
    let value = b.cast_to(value, ret_ty);
    m.op_mut(ret).operands[0] = value;
}

/// Whether `v` is, on every path, a constant the verifier accepts: a constant (sema refuses
/// those out of range), or an argument of a block whose predecessors all jump to it with one
/// (returns merged by `flatten`, or passed through a cleanup block such as a ring-buffer
/// release before the return).
fn constant_within(m: &Module, v: Value, (lo, hi): (i128, i128), depth: u32) -> bool {
    let (block, index) = match m.value(v).def {
        ValueDef::Result(op, _) => {
            return m.op(op).opcode == Opcode::CoreConst
                && m.const_int(v).is_none_or(|c| (lo..=hi).contains(&c));
        }
        ValueDef::Arg(block, index) => (block, index as usize),
    };
    let Some(region) = m.block(block).parent.filter(|_| depth > 0) else {
        return false;
    };
    let mut jumps = m.region(region).blocks.iter().filter_map(|&b| {
        let term = m.op(*m.block(b).ops.last()?);
        term.successors.contains(&block).then_some(term)
    });
    let mut any = false;
    let all = jumps.all(|term| {
        any = true;
        term.opcode == Opcode::CoreBr
            && term
                .operands
                .get(index)
                .is_some_and(|&arg| constant_within(m, arg, (lo, hi), depth - 1))
    });
    all && any
}
