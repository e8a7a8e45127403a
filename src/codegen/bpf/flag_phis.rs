//! Boolean phis that restate a comparison of another phi become that comparison again.
//!
//! InstCombine folds `icmp eq (phi [4, a], [0, b], [1, c]), 0` into `phi [false, a], [true, b],
//! [false, c]`: one instruction fewer in IR, but on BPF a second value (a status code and its
//! "is zero" flag, as try/catch leaves them) then lives across the calls that follow, each path
//! sets both, and the flag takes a callee-saved register that the JIT saves and restores on every
//! run. Recomputing the flag from the code it restates costs one compare where it is tested.

use super::llvm_ir::phis_of;
use inkwell::basic_block::BasicBlock;
use inkwell::module::Module;
use inkwell::values::{BasicValueEnum, IntValue, PhiValue};
use inkwell::IntPredicate;

pub fn recompute_flags(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            let phis = phis_of(block);
            let Some(first_other) = phis
                .last()
                .and_then(|p| p.as_instruction().get_next_instruction())
            else {
                continue;
            };
            // (Every flag is matched before any is erased: an erased phi must not be read.)
            let restatements: Vec<_> = (phis.iter())
                .filter_map(|&flag| {
                    let (code, predicate, k) =
                        phis.iter().find_map(|&code| restated(flag, code))?;
                    Some((flag, code, predicate, k))
                })
                .collect();
            for (flag, code, predicate, k) in restatements {
                builder.position_before(&first_other);
                let Ok(test) = builder.build_int_compare(
                    predicate,
                    code.as_basic_value().into_int_value(),
                    k,
                    "",
                ) else {
                    continue;
                };
                let Some(test) = test.as_instruction() else {
                    continue;
                };
                flag.as_instruction().replace_all_uses_with(&test);
                flag.as_instruction().erase_from_basic_block();
            }
        }
    }
}

/// The integer constant a phi takes on the edge from `from`.
fn constant_from<'ctx>(phi: PhiValue<'ctx>, from: BasicBlock<'ctx>) -> Option<IntValue<'ctx>> {
    (0..phi.count_incoming()).find_map(|i| match phi.get_incoming(i)? {
        (BasicValueEnum::IntValue(v), b) if b == from && v.is_const() => Some(v),
        _ => None,
    })
}

/// When `flag` (an `i1` phi of constants) is `code == k` or `code != k` on every edge, with
/// `code` another integer phi of constants: that predicate and `k`.
fn restated<'ctx>(
    flag: PhiValue<'ctx>,
    code: PhiValue<'ctx>,
) -> Option<(PhiValue<'ctx>, IntPredicate, IntValue<'ctx>)> {
    let bit = |v: IntValue| v.get_zero_extended_constant();
    let is_i1 = |p: PhiValue| matches!(p.as_basic_value(), BasicValueEnum::IntValue(v) if v.get_type().get_bit_width() == 1);
    if code == flag
        || !is_i1(flag)
        || is_i1(code)
        || !matches!(code.as_basic_value(), BasicValueEnum::IntValue(_))
    {
        return None;
    }
    let edges: Vec<(u64, u64, IntValue)> = (0..flag.count_incoming())
        .map(|i| {
            let (_, from) = flag.get_incoming(i)?;
            let f = bit(constant_from(flag, from)?)?;
            let c = constant_from(code, from)?;
            Some((f, bit(c)?, c))
        })
        .collect::<Option<_>>()?;
    // `code == k` is true exactly where the flag is; `code != k` false exactly where it is.
    [(IntPredicate::EQ, 1), (IntPredicate::NE, 0)]
        .into_iter()
        .find_map(|(predicate, marks)| {
            let &(_, k, kv) = edges.iter().find(|e| e.0 == marks)?;
            edges
                .iter()
                .all(|&(f, c, _)| (f == marks) == (c == k))
                .then_some((code, predicate, kv))
        })
}
