//! `guard-helper-sizes`: a helper's run-time size argument that may exceed the stack object its
//! memory argument points into (`bpf_skb_load_bytes(ctx, off, &buf[0], n)` with `n` unclamped,
//! `buf` 32 bytes) is checked before the call, and the program aborts (§13.4) when it would. The
//! verifier refuses such a call at load ("invalid write to stack"): a size it cannot bound by the
//! object is an overflow it will not run. Where the size's bound, as the verifier tracks it,
//! already fits, nothing is added; constant sizes are `check-kernel-memory`'s (a compile-time
//! error). A helper that refuses a size of 0 ("invalid zero-sized read") gets a size that may be
//! 0 checked too, in the same test: `n - 1 > held - 1` aborts for 0 as for too large, and the
//! call is given `(n - 1) + 1` from the register tested, which every verifier bounds from it
//! (older ones learn nothing from `n != 0`, the form LLVM gives `n < 1`).
//!
//! Runs after `lower-bpf` (every helper call is a `bpf.helper_call`) and before `flatten`.

use super::kernel_memory::Stack;
use super::value_bounds::{CallBounds, LocalBounds};
use super::PassResult;
use crate::ir::{Attr, Module, OpId, Opcode, Type, Value};
use crate::vocab::{helpers, CmpPred};

pub fn run(m: &mut Module) -> PassResult {
    let guards = {
        let stack = Stack::of_module(m);
        let calls = CallBounds::of_module(m);
        let mut guards = Vec::new();
        for f in super::kernel_funcs(m) {
            let helper_calls = m.collect_nested(f, |o| o.opcode == Opcode::BpfHelperCall);
            if helper_calls.is_empty() {
                continue;
            }
            let bounds = LocalBounds::of_function(m, f, &calls);
            for call in helper_calls {
                guards.extend(unbounded_sizes(m, &stack, &bounds, f, call));
            }
        }
        guards
    };
    for g in guards {
        match g.may_be_zero {
            true => guard_nonzero(m, g),
            false => guard(m, g.call, g.size, g.held),
        }
    }
    Ok(())
}

/// A run-time size the call needs checked: operand `index` of `call`, `size`, at most `held`
/// bytes, and nonzero when `may_be_zero`.
struct Guard {
    call: OpId,
    index: usize,
    size: Value,
    held: u128,
    may_be_zero: bool,
}

/// The call's run-time sizes that may exceed the bytes their stack object holds from the address
/// passed, or be 0 where the helper refuses 0.
fn unbounded_sizes(
    m: &Module,
    stack: &Stack,
    bounds: &LocalBounds,
    f: OpId,
    call: OpId,
) -> Vec<Guard> {
    let Some(&Attr::Int(id)) = m.attr(call, "id") else {
        return Vec::new();
    };
    let Some(helper) = helpers::by_id(id) else {
        return Vec::new();
    };
    let args = &m.op(call).operands;
    helper
        .memory_sizes()
        .filter_map(|(memory, index)| {
            let (&memory, &size) = (args.get(memory)?, args.get(index)?);
            if m.const_int(size).is_some() {
                return None;
            }
            let held = u128::try_from(stack.bytes_held(f, memory)?).ok()?;
            let fits = bounds.max_of(m, size).is_some_and(|max| max <= held);
            let may_be_zero = helper.nonzero_size && !at_least_one(m, size) && held > 0;
            (!fits || may_be_zero).then_some(Guard {
                call,
                index,
                size,
                held,
                may_be_zero,
            })
        })
        .collect()
}

/// `v` is never 0 by its expression, as the verifier sees it too: a constant, or a sum with a
/// constant of at least 1 (`(b & 15) + 1`) that does not wrap.
fn at_least_one(m: &Module, v: Value) -> bool {
    let Some(op) = m.defining_op(v) else {
        return false;
    };
    let d = m.op(op);
    match d.opcode {
        Opcode::CoreConst => m.const_int(v).is_some_and(|c| c >= 1),
        Opcode::CoreCast => {
            super::value_bounds::widens_unsigned(m, d.operands[0], v)
                && at_least_one(m, d.operands[0])
        }
        Opcode::CoreAdd => {
            let (a, b) = (d.operands[0], d.operands[1]);
            let positive = |x: Value| m.const_int(x).is_some_and(|c| c >= 1);
            let max = |x: Value| super::value_bounds::max_of(m, x, &(), 2);
            let top = super::value_bounds::int_max(m.value_type(v));
            let no_wrap = max(a)
                .zip(max(b))
                .zip(top)
                .is_some_and(|((x, y), t)| x.checked_add(y).is_some_and(|s| s <= t));
            no_wrap && (positive(a) || positive(b))
        }
        _ => false,
    }
}

/// `if (size > held) abort` before the call: the verifier learns the bound from the test on the
/// register the call is then given.
fn guard(m: &mut Module, call: OpId, size: Value, held: u128) {
    let ty: Type = m.value_type(size).clone();
    let mut b = m.builder_before(call);
    let limit = b.core_const(held as i128, ty);
    let over = b.core_cmp(size, limit, CmpPred::Gt);
    b.abort_if(over, b"helper size beyond its buffer");
}

/// `m = opaque(opaque(size) - 1); if (m > held - 1) abort`, and the call gets `m + 1`: one test
/// for a size of 0 (which wraps) and one past the buffer, on the register whose successor the
/// call is given, so the verifier knows the size lies in `[1, held]` on any kernel. (Opaque, or
/// LLVM would fold `m + 1` back into the size the test did not bound.)
fn guard_nonzero(m: &mut Module, g: Guard) {
    let ty: Type = m.value_type(g.size).clone();
    let mut b = m.builder_before(g.call);
    let size = b.bpf_opaque(g.size);
    let one = b.core_const(1, ty.clone());
    let less = b.core_sub(size, one);
    let less = b.bpf_opaque(less);
    let limit = b.core_const(g.held as i128 - 1, ty);
    let outside = b.core_cmp(less, limit, CmpPred::Gt);
    b.abort_if(outside, b"helper size zero or beyond its buffer");
    let ty: Type = m.value_type(g.size).clone();
    let mut b = m.builder_before(g.call);
    let one = b.core_const(1, ty);
    let checked = b.core_add(less, one);
    m.op_mut(g.call).operands[g.index] = checked;
}
