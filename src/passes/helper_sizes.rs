//! `guard-helper-sizes`: a helper's run-time size argument that may exceed the stack object its
//! memory argument points into (`bpf_skb_load_bytes(ctx, off, &buf[0], n)` with `n` unclamped,
//! `buf` 32 bytes) is checked before the call, and the program aborts (§13.4) when it would. The
//! verifier refuses such a call at load ("invalid write to stack"): a size it cannot bound by the
//! object is an overflow it will not run. Where the size's bound, as the verifier tracks it,
//! already fits, nothing is added; constant sizes are `check-kernel-memory`'s (a compile-time
//! error).
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
    for (call, size, held) in guards {
        guard(m, call, size, held);
    }
    Ok(())
}

/// The `(call, size, bytes held)` of each of the call's run-time sizes that may exceed the bytes
/// its stack object holds from the address passed.
fn unbounded_sizes(
    m: &Module,
    stack: &Stack,
    bounds: &LocalBounds,
    f: OpId,
    call: OpId,
) -> Vec<(OpId, Value, u128)> {
    let Some(&Attr::Int(id)) = m.attr(call, "id") else {
        return Vec::new();
    };
    let Some(helper) = helpers::by_id(id) else {
        return Vec::new();
    };
    let args = &m.op(call).operands;
    helper
        .memory_sizes()
        .filter_map(|(memory, size)| {
            let (&memory, &size) = (args.get(memory)?, args.get(size)?);
            if m.const_int(size).is_some() {
                return None;
            }
            let held = u128::try_from(stack.bytes_held(f, memory)?).ok()?;
            let fits = bounds.max_of(m, size).is_some_and(|max| max <= held);
            (!fits).then_some((call, size, held))
        })
        .collect()
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
