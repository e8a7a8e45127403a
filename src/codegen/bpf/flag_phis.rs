//! Boolean phis that restate a comparison of another phi become that comparison again.
//!
//! InstCombine folds `icmp eq (phi [4, a], [0, b], [1, c]), 0` into `phi [false, a], [true, b],
//! [false, c]`: one instruction fewer in IR, but on BPF a second value (a status code and its
//! "is zero" flag, as try/catch leaves them) then lives across the calls that follow, each path
//! sets both, and the flag takes a callee-saved register that the JIT saves and restores on every
//! run. Recomputing the flag from the code it restates costs one compare where it is tested.
//!
//! SimplifyCFG also hands a phi a `switch`'s condition on an edge only one case takes (`phi [1,
//! a], [%c, b]` where `b` switches on `%c` and goes there for 0): the constant again, first. On
//! BPF a constant costs what a copy does, the condition need not live until the join, and the
//! phi is again one of constants that a flag may restate.

use super::llvm_ir::phis_of;
use inkwell::basic_block::BasicBlock;
use inkwell::module::Module;
use inkwell::values::{BasicValue, BasicValueEnum, InstructionOpcode, IntValue, PhiValue};
use inkwell::IntPredicate;

pub fn recompute_flags(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            let phis = phis_of(block);
            for &phi in &phis {
                unforward_switch_conditions(phi, block);
            }
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

/// Each incoming value of `phi` (in `block`) that is the condition of the switch it comes from,
/// on an edge one case alone takes, becomes that case's value.
fn unforward_switch_conditions<'ctx>(phi: PhiValue<'ctx>, block: BasicBlock<'ctx>) {
    for i in 0..phi.count_incoming() {
        let Some((BasicValueEnum::IntValue(v), from)) = phi.get_incoming(i) else {
            continue;
        };
        let Some(switch) = from
            .get_terminator()
            .filter(|t| t.get_opcode() == InstructionOpcode::Switch)
        else {
            continue;
        };
        // Operands: the condition, the default, then each case's value and destination.
        let operand = |k: u32| switch.get_operand(k);
        let condition = operand(0).and_then(|o| o.value());
        let default = operand(1).and_then(|o| o.block());
        if condition != Some(v.as_basic_value_enum()) || default == Some(block) {
            continue;
        }
        let cases: Vec<BasicValueEnum> = (2..switch.get_num_operands())
            .step_by(2)
            .filter(|&k| operand(k + 1).and_then(|o| o.block()) == Some(block))
            .filter_map(|k| operand(k).and_then(|o| o.value()))
            .collect();
        if let [case] = cases[..] {
            phi.as_instruction().set_operand(i, case);
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
