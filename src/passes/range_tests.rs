//! `range-tests`: `op == 1 || op == 2` — equality tests of one value against adjacent constants —
//! becomes one unsigned range test, `(op - 1) <= 1`, as clang compiles the C a libbpf developer
//! writes for it (`if (op != 1 && op != 2) op = 0`). The verifier then walks two paths where the
//! chain of tests gave it one per constant, each carrying its own exact value and so never pruned
//! against the others (core_arp_guard: 81 instructions processed, 60 as one test).
//!
//! The verifier learns no bound on `op` from a range test on a copy of it; LLVM would, and could
//! then drop a bounds check ksc emitted for a later use of `op` as an index, a size or a table
//! position. So the test is made on an opaque copy (the register copy C's range test makes too),
//! from which LLVM learns nothing either.
//! Runs on structured kernel functions; `&&` of `!=` tests is the negated form.

use super::PassResult;
use crate::ir::{Builder, Module, OpId, Opcode, RegionId, Type, Value, ValueDef};
use crate::vocab::CmpPred;

pub fn run(m: &mut Module) -> PassResult {
    for f in super::kernel_funcs(m) {
        // Outermost first: a chain's inner links go with it (and are then no longer in `f`).
        for chain in m.collect_nested(f, |d| d.opcode == Opcode::KsIf) {
            if m.is_nested_in(chain, f) {
                rewrite(m, f, chain);
            }
        }
    }
    Ok(())
}

/// What the tests of a chain compare: one SSA value, or a local read afresh by each test.
#[derive(Clone, Copy, PartialEq)]
enum Subject {
    Value(Value),
    Local(Value),
}

/// A chain of tests: `any` for `a == k || …`, else `a != k && …`; `x` is the value the first
/// test compares.
struct Chain {
    subject: Subject,
    x: Value,
    ty: Type,
    constants: Vec<i128>,
    any: bool,
}

fn rewrite(m: &mut Module, f: OpId, op: OpId) {
    let Some(chain) = chain(m, op) else { return };
    if links_a_larger_chain(m, f, op) {
        return;
    }
    let mut ks = chain.constants.clone();
    ks.sort_unstable();
    ks.dedup();
    let (lo, hi) = (ks[0], ks[ks.len() - 1]);
    if ks.len() < 2 || hi - lo + 1 != ks.len() as i128 {
        return;
    }
    if !read_just_before(m, chain.x, op) {
        return;
    }
    let Some(int) = chain.ty.int() else { return };
    let flip = constant_arm_second(m, f, m.op(op).results[0]);
    let unsigned = Type::Int(crate::ir::IntTy::of(int.bits(), false));
    let loc = m.op(op).loc;
    let (block, at) = m.position(op).expect("placed");
    let mut b = Builder::new(m, block);
    b.at = Some(at);
    b.loc = loc;
    // Tested on an opaque copy: LLVM must not learn the value's range from a test the verifier
    // makes on a copy, or it could drop a bounds check ksc emits for a later use of the value.
    let x = b.bpf_opaque(chain.x);
    let low = b.core_const(lo, chain.ty.clone());
    let offset = b.core_sub(x, low);
    let offset = b.cast_to(offset, unsigned.clone());
    let span = b.core_const(hi - lo, unsigned);
    let pred = if chain.any != flip.is_some() {
        CmpPred::Le
    } else {
        CmpPred::Gt
    };
    let test = b.core_cmp(offset, span, pred);
    let first = m.op(op).operands[0];
    m.replace_op(op, &[test]);
    drop_unused_link(m, first);
    if let Some(branch) = flip {
        m.op_mut(branch).regions.swap(0, 1);
    }
}

/// `if (in range) { key = op } else { key = 0 }`: the verifier walks a branch's fall-through
/// first, and the `key = 0` path is pruned against the one where `key` is any value only when
/// that one was walked before it. A BPF select falls through to its value for false, so the
/// branch that uses the test had better take its constant arm when the test holds, as clang
/// lays out C's `if (op != 1 && op != 2) op = 0`. That branch, if the test's only user is one.
fn constant_arm_second(m: &Module, f: OpId, result: Value) -> Option<OpId> {
    let users = m.collect_nested(f, |d| d.operands.contains(&result));
    let [branch] = users[..] else { return None };
    let d = m.op(branch);
    let constant = |r: RegionId| m.yielded_value(r).and_then(|v| m.const_int(v)).is_some();
    (d.opcode == Opcode::KsIf
        && d.operands[0] == result
        && d.results.len() == 1
        && m.value_type(d.results[0]).is_int()
        && !constant(d.regions[0])
        && constant(d.regions[1]))
    .then_some(branch)
}

/// Drops what computed a link of a rewritten chain: the test, or an inner chain (left-nested).
fn drop_unused_link(m: &mut Module, v: Value) {
    let ValueDef::Result(op, _) = m.value(v).def else {
        return;
    };
    if m.op(op).opcode != Opcode::KsIf {
        m.erase_if_unused(v);
    } else if m.use_count(v) == 0 {
        let first = m.op(op).operands[0];
        m.detach_op(op);
        drop_unused_link(m, first);
    }
}

/// Whether `op`'s result is a link of a chain around it, which is rewritten as a whole.
fn links_a_larger_chain(m: &Module, f: OpId, op: OpId) -> bool {
    let result = m.op(op).results[0];
    let users = m.collect_nested(f, |d| d.operands.contains(&result));
    let [user] = users[..] else { return false };
    let outer = match m.op(user).opcode {
        Opcode::KsIf => Some(user),
        Opcode::KsYield => m.parent_op(user),
        _ => None,
    };
    outer.is_some_and(|o| m.op(o).opcode == Opcode::KsIf && chain(m, o).is_some())
}

/// `x` is computed in `op`'s block with nothing but effect-free ops after it, so the loads in the
/// chain's arms read what `x` read.
fn read_just_before(m: &Module, x: Value, op: OpId) -> bool {
    let ValueDef::Result(def, _) = m.value(x).def else {
        return true;
    };
    match (m.position(def), m.position(op)) {
        (Some((b1, i)), Some((b2, j))) if b1 == b2 && i < j => {
            m.block(b1).ops[i + 1..j].iter().all(|&o| {
                m.is_effect_free(o)
                    || m.op(o).opcode == Opcode::KsIf
                        && m.op(o).regions.iter().all(|&r| computes_only(m, r))
            })
        }
        _ => false,
    }
}

/// The chain `op` computes: a `ks.if` whose arm for the short-circuit case yields the constant
/// that decides (`true` for `||`, `false` for `&&`) and whose other arm only computes the next
/// test (an equality, or a chain of the same kind).
fn chain(m: &Module, op: OpId) -> Option<Chain> {
    let d = m.op(op);
    if d.opcode != Opcode::KsIf || d.results.len() != 1 || *m.value_type(d.results[0]) != Type::Bool
    {
        return None;
    }
    let any = match (
        yielded_constant(m, d.regions[0]),
        yielded_constant(m, d.regions[1]),
    ) {
        (Some(1), None) => true,
        (None, Some(0)) => false,
        _ => return None,
    };
    let rest = if any { d.regions[1] } else { d.regions[0] };
    if !computes_only(m, rest) {
        return None;
    }
    // `a || b || c` nests either way round: ((a || b) || c) or (a || (b || c)).
    let first = link(m, d.operands[0], any)?;
    let more = link(m, m.yielded_value(rest)?, any)?;
    (more.subject == first.subject && more.ty == first.ty).then(|| {
        let mut constants = first.constants;
        constants.extend(more.constants);
        Chain { constants, ..first }
    })
}

/// One operand of a chain: a test, or a chain of the same kind.
fn link(m: &Module, cond: Value, any: bool) -> Option<Chain> {
    if let Some(t) = test(m, cond, any) {
        return Some(Chain {
            subject: t.subject,
            x: t.x,
            ty: t.ty,
            constants: vec![t.k],
            any,
        });
    }
    let ValueDef::Result(inner, _) = m.value(cond).def else {
        return None;
    };
    chain(m, inner).filter(|c| c.any == any)
}

/// `x == k` (`x != k` when not `any`) with `x` an integer and `k` a constant, either way round.
fn test(m: &Module, cond: Value, any: bool) -> Option<Test> {
    let ValueDef::Result(op, _) = m.value(cond).def else {
        return None;
    };
    let c = crate::ir::views::CoreCmp::of(m, op)?;
    let wanted = if any { CmpPred::Eq } else { CmpPred::Ne };
    if c.pred(m) != wanted {
        return None;
    }
    let (x, k) = match (m.const_int(c.lhs(m)), m.const_int(c.rhs(m))) {
        (None, Some(k)) => (c.lhs(m), k),
        (Some(k), None) => (c.rhs(m), k),
        _ => return None,
    };
    let ty = m.value_type(x).clone();
    ty.int()?;
    // A local read afresh by each test, maybe widened (`(t as u32) != 3`).
    let mut read = x;
    while let ValueDef::Result(o, _) = m.value(read).def {
        match m.op(o).opcode {
            Opcode::CoreCast if widens(m, o) => read = m.op(o).operands[0],
            _ => break,
        }
    }
    let subject = match m.value(read).def {
        ValueDef::Result(load, _)
            if m.op(load).opcode == Opcode::CoreLoad && m.is_local(m.op(load).operands[0]) =>
        {
            Subject::Local(m.op(load).operands[0])
        }
        _ => Subject::Value(x),
    };
    Some(Test { subject, x, ty, k })
}

struct Test {
    subject: Subject,
    /// The compared value itself.
    x: Value,
    ty: Type,
    k: i128,
}

/// An integer cast that keeps every value (to at least as many bits, signedness kept or a wider
/// unsigned source's values all fitting).
fn widens(m: &Module, cast: OpId) -> bool {
    let (from, to) = (
        m.value_type(m.op(cast).operands[0]).int(),
        m.value_type(m.op(cast).results[0]).int(),
    );
    match (from, to) {
        (Some(a), Some(b)) => {
            a.signed() == b.signed() && a.bits() <= b.bits()
                || !a.signed() && b.signed() && a.bits() < b.bits()
        }
        _ => false,
    }
}

/// The constant a region yields as its only op besides the constant itself.
fn yielded_constant(m: &Module, r: RegionId) -> Option<i128> {
    let b = m.sole_block(r)?;
    let ops = &m.block(b).ops;
    (ops.len() == 2).then_some(())?;
    m.const_int(m.yielded_value(r)?)
}

/// The region only computes: loads, pure ops and chains nested in it, so dropping it loses no
/// effect and every load in it reads what the test before it read.
fn computes_only(m: &Module, r: RegionId) -> bool {
    let mut ok = true;
    m.walk_region(r, &mut |o| {
        let d = m.op(o);
        ok &= matches!(d.opcode, Opcode::KsIf | Opcode::KsYield) || m.is_effect_free(o);
    });
    ok
}
