//! A byte-swapped value chosen on several paths and only compared with constants is compared
//! unswapped.
//!
//! `proto = ntohs(eth->proto)`, replaced by the inner EtherType behind a VLAN tag, then
//! `if (proto != ETH_P_IPV6)`: LLVM folds `bswap(x) == C` into `x == bswap(C)` for one value,
//! but not through the phi that joins the two reads, so each path swaps its value (a move and a
//! `be16`) before the test. C compares `h_proto` with `bpf_htons(ETH_P_IPV6)`. After LLVM's
//! pipeline, a phi whose incoming values are all swaps or constants, and whose every use is an
//! `==`/`!=` against a constant or a `switch` (`match (proto)`), joins the unswapped values and
//! is compared with the swapped constants.

use super::llvm_ir::{bswap_operand, phis_of, swap_bytes, users, users_of_result};
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    BasicValue, BasicValueEnum, InstructionOpcode, InstructionValue, IntValue, PhiValue,
};
use inkwell::IntPredicate;

pub fn compare_unswapped(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            for phi in phis_of(block) {
                if let Some(tests) = constant_tests(phi) {
                    rewrite(&builder, phi, &tests);
                }
            }
        }
    }
}

/// The `icmp eq/ne phi, C` that are all of `phi`'s uses, when its incoming values are swaps or
/// constants.
fn constant_tests<'ctx>(phi: PhiValue<'ctx>) -> Option<Vec<InstructionValue<'ctx>>> {
    let BasicValueEnum::IntValue(value) = phi.as_basic_value() else {
        return None;
    };
    if !matches!(value.get_type().get_bit_width(), 16 | 32 | 64) {
        return None;
    }
    let incoming = (0..phi.count_incoming()).filter_map(|k| phi.get_incoming(k));
    let mut swaps = 0;
    for (v, _) in incoming {
        match v {
            BasicValueEnum::IntValue(c) if c.is_constant_int() => {}
            BasicValueEnum::IntValue(x) if bswap_operand(x).is_some() => swaps += 1,
            _ => return None,
        }
    }
    let tests = users(value);
    let all_tests = tests.iter().all(|&t| match t.get_opcode() {
        InstructionOpcode::ICmp => {
            matches!(
                t.get_icmp_predicate(),
                Some(IntPredicate::EQ | IntPredicate::NE)
            ) && compared_constant(t).is_some()
        }
        // `match (proto) { … }`: case values are always constants.
        InstructionOpcode::Switch => t
            .get_operand(0)
            .and_then(|o| o.value())
            .is_some_and(|c| c == phi.as_basic_value()),
        _ => false,
    });
    (swaps > 0 && all_tests && !tests.is_empty()).then_some(tests)
}

/// The constant side of `icmp pred a, b` and its operand index.
fn compared_constant(test: InstructionValue<'_>) -> Option<(u32, IntValue<'_>)> {
    (0..2).find_map(|k| match test.get_operand(k)?.value()? {
        BasicValueEnum::IntValue(c) if c.is_constant_int() => Some((k, c)),
        _ => None,
    })
}

fn swapped_constant(c: IntValue<'_>) -> IntValue<'_> {
    let ty = c.get_type();
    let raw = c.get_zero_extended_constant().unwrap_or(0);
    ty.const_int(swap_bytes(raw, ty.get_bit_width()), false)
}

fn rewrite<'ctx>(builder: &Builder<'ctx>, phi: PhiValue<'ctx>, tests: &[InstructionValue<'ctx>]) {
    let ty = phi.as_basic_value().into_int_value().get_type();
    let block = phi.as_instruction().get_parent().expect("placed");
    match block.get_first_instruction() {
        Some(first) => builder.position_before(&first),
        None => builder.position_at_end(block),
    }
    let raw = builder.build_phi(ty, "unswapped").expect("positioned");
    for k in 0..phi.count_incoming() {
        let Some((BasicValueEnum::IntValue(v), from)) = phi.get_incoming(k) else {
            continue;
        };
        let x = bswap_operand(v).unwrap_or_else(|| swapped_constant(v));
        raw.add_incoming(&[(&x, from)]);
    }
    for &test in tests {
        if test.get_opcode() == InstructionOpcode::Switch {
            // Operands: the value, the default, then each case's value and destination.
            test.set_operand(0, raw.as_basic_value());
            for k in (2..test.get_num_operands()).step_by(2) {
                if let Some(BasicValueEnum::IntValue(c)) =
                    test.get_operand(k).and_then(|o| o.value())
                {
                    test.set_operand(k, swapped_constant(c));
                }
            }
            continue;
        }
        let Some((k, c)) = compared_constant(test) else {
            continue;
        };
        test.set_operand(k, swapped_constant(c));
        test.set_operand(1 - k, raw.as_basic_value());
    }
    if users(phi.as_basic_value().into_int_value()).is_empty() {
        let mut swaps: Vec<InstructionValue> = Vec::new();
        for k in 0..phi.count_incoming() {
            if let Some(swap) = phi
                .get_incoming(k)
                .and_then(|(v, _)| v.as_instruction_value())
            {
                if !swaps.contains(&swap) {
                    swaps.push(swap);
                }
            }
        }
        phi.as_instruction().erase_from_basic_block();
        for swap in swaps {
            if users_of_result(swap).is_empty() {
                swap.erase_from_basic_block();
            }
        }
    }
}
