//! `guard-helper-sizes`: a helper's run-time size argument that may exceed the stack object its
//! memory argument points into (`bpf_skb_load_bytes(ctx, off, &buf[0], n)` with `n` unclamped,
//! `buf` 32 bytes) is checked before the call, and the program aborts (§13.4) when it would. The
//! verifier refuses such a call at load ("invalid write to stack"): a size it cannot bound by the
//! object is an overflow it will not run. Where the size's bound, as the verifier tracks it,
//! already fits, nothing is added; constant sizes are `check-kernel-memory`'s (a compile-time
//! error). A helper that refuses a size of 0 ("invalid zero-sized read") gets a size that may be
//! 0 checked too, in the same test, in 64 bits: `n - 1 > held - 1` aborts for 0 as for too large, and the
//! call is given `(n - 1) + 1` from the register tested, which every verifier bounds from it
//! (older ones learn nothing from `n != 0`, the form LLVM gives `n < 1`). A size that is at
//! least 1 by its expression (`x + 1` that cannot wrap) is rebuilt as `opaque(x) + 1` in the
//! argument's type: LLVM would otherwise compute a sum it knows fits a byte in one and widen it
//! with a mask, after which the verifier knows only that it is at least 0.
//!
//! Runs after `lower-bpf` (every helper call is a `bpf.helper_call`) and before `flatten`.

use super::kernel_memory::Stack;
use super::value_bounds::{self, CallBounds, LocalBounds};
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
        match g.least {
            Least::Unknown => guard_nonzero(m, g),
            Least::Sum(ref sum) => {
                let size = rebuild_sum(m, &g, sum);
                if !g.fits {
                    guard(m, &g, size);
                }
            }
            Least::Unneeded => {
                let size = opaque_size(m, &g);
                guard(m, &g, size);
            }
        }
    }
    Ok(())
}

/// A run-time size the call needs checked or rebuilt: operand `index` of `call`, `size`, at most
/// `held` bytes (`fits` when the size's bound already says so).
struct Guard {
    call: OpId,
    index: usize,
    size: Value,
    held: u128,
    fits: bool,
    least: Least,
}

/// What keeps a size the helper needs nonzero from being 0.
enum Least {
    /// The helper takes 0.
    Unneeded,
    /// Nothing: the size is tested for 0 too.
    Unknown,
    /// It is `x + c`, `c` at least 1, and cannot wrap.
    Sum(Sum),
}

/// `x + c` (through a widening cast), with `x` unsigned, `c` a constant of at least 1, and the
/// sum within its type.
struct Sum {
    x: Value,
    c: i128,
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
            let least = match helper.nonzero_size && held > 0 {
                false => Least::Unneeded,
                true => sum_of_at_least_one(m, size).map_or(Least::Unknown, Least::Sum),
            };
            (!fits || !matches!(least, Least::Unneeded)).then_some(Guard {
                call,
                index,
                size,
                held,
                fits,
                least,
            })
        })
        .collect()
}

/// `v` as `x + c` that is never 0 by its expression: `(b & 15) + 1`, or such a sum widened.
fn sum_of_at_least_one(m: &Module, v: Value) -> Option<Sum> {
    let d = m.op(m.defining_op(v)?);
    match d.opcode {
        Opcode::CoreCast if value_bounds::widens_unsigned(m, d.operands[0], v) => {
            sum_of_at_least_one(m, d.operands[0])
        }
        Opcode::CoreAdd => {
            let (a, b) = (d.operands[0], d.operands[1]);
            let positive = |x: Value| m.const_int(x).filter(|&c| c >= 1);
            let (x, c) = match (positive(a), positive(b)) {
                (_, Some(c)) => (a, c),
                (Some(c), None) => (b, c),
                (None, None) => return None,
            };
            let max = |x: Value| value_bounds::max_of(m, x, &(), 2);
            let top = value_bounds::int_max(m.value_type(v))?;
            let no_wrap = max(x)
                .zip(u128::try_from(c).ok())
                .is_some_and(|(x, c)| x.checked_add(c).is_some_and(|s| s <= top));
            (no_wrap && value_bounds::is_unsigned(m.value_type(x))).then_some(Sum { x, c })
        }
        _ => None,
    }
}

/// The call's size as `opaque(x) + c` in the argument's type, which the call is given: the
/// verifier's least value for it is then `c` whatever LLVM knows of `x`.
fn rebuild_sum(m: &mut Module, g: &Guard, sum: &Sum) -> Value {
    let ty: Type = m.value_type(g.size).clone();
    let widen = *m.value_type(sum.x) != ty;
    let mut b = m.builder_before(g.call);
    let x = match widen {
        false => sum.x,
        true => b.core_cast(sum.x, ty.clone()),
    };
    let x = b.bpf_opaque(x);
    let c = b.core_const(sum.c, ty);
    let size = b.core_add(x, c);
    m.op_mut(g.call).operands[g.index] = size;
    size
}

/// The call's size behind an opaque value, which the call is given.
fn opaque_size(m: &mut Module, g: &Guard) -> Value {
    let size = m.builder_before(g.call).bpf_opaque(g.size);
    m.op_mut(g.call).operands[g.index] = size;
    size
}

/// `if (size > held) abort` before the call, which is given `size`: the verifier learns the
/// bound from the test on the register the call is then given. (`size` is opaque, or built on an
/// opaque value, or LLVM would rewrite it from what the test proves: `(x + 1) > 8` becomes
/// `x > 7`, and the sum, known to fit a byte, is computed in one and widened with a mask that
/// loses the verifier's least value.)
fn guard(m: &mut Module, g: &Guard, size: Value) {
    let ty: Type = m.value_type(size).clone();
    let mut b = m.builder_before(g.call);
    let limit = b.core_const(g.held as i128, ty);
    let over = b.core_cmp(size, limit, CmpPred::Gt);
    b.abort_if(over, b"helper size beyond its buffer");
}

/// `m = opaque(opaque(size) - 1); if (m > held - 1) abort`, and the call gets `m + 1`: one test
/// for a size of 0 (which wraps) and one past the buffer, on the register whose successor the
/// call is given, so the verifier knows the size lies in `[1, held]` on any kernel. (Opaque, or
/// LLVM would fold `m + 1` back into the size the test did not bound.)
fn guard_nonzero(m: &mut Module, g: Guard) {
    // In 64 bits: without 32-bit instructions (cpu v1) a narrower value is zero-extended by
    // shifts of a copy, and the verifier knows no lower bound of the register the call gets.
    let ty = Type::u64();
    let mut b = m.builder_before(g.call);
    let wide = b.cast_to(g.size, ty.clone());
    let size = b.bpf_opaque(wide);
    let one = b.core_const(1, ty.clone());
    let less = b.core_sub(size, one);
    let less = b.bpf_opaque(less);
    let limit = b.core_const(g.held as i128 - 1, ty);
    let outside = b.core_cmp(less, limit, CmpPred::Gt);
    b.abort_if(outside, b"helper size zero or beyond its buffer");
    let ty = Type::u64();
    let mut b = m.builder_before(g.call);
    let one = b.core_const(1, ty);
    let checked = b.core_add(less, one);
    m.op_mut(g.call).operands[g.index] = checked;
}
