//! A count that a loop ending at the packet's end keeps is counted in the loop.
//!
//! `for (i in 0..n) { if (data + i + 1 > data_end) { break } count += 60 }`: the count is used
//! only after the loop, whose trip count depends on where the packet ends. The code generator's
//! loop strength reduction (after ksc's rewrites, so out of their reach) replaces such a count by
//! its closed form, `min(n, data_end - data) * 60`, and forms `data_end - data` as
//! `data_end + ~data`: arithmetic on packet pointers, which the verifier refuses ("bitwise
//! operator ^= on pointer"). IndVarSimplify's own exit-value rewrite is off
//! (`-replexitval=never`); LSR's has no switch. So each step of such a count goes through an
//! empty inline asm, which scalar evolution cannot see through: the count stays a register the
//! loop adds to. The asm is no instruction.
//!
//! Only counts the loop uses for nothing but their own steps (the ones LSR would rewrite), and
//! only in loops that may leave on a comparison of pointers.

use super::llvm_ir::{
    instructions, int_operand, loop_of, phis_of, pure_asm, redirect_uses, successors,
    users_of_result,
};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    AnyValue, BasicValue, BasicValueEnum, InstructionOpcode, InstructionValue, IntValue, PhiValue,
};
use std::collections::HashSet;

/// How many `select`, `and` or `or` steps an exit condition is followed back to its comparisons.
const CONDITION_DEPTH: u32 = 4;

pub fn keep_loop_counts(module: &Module, alu32: bool) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        for header in f.get_basic_blocks() {
            let phis = phis_of(header);
            if phis.is_empty() {
                continue;
            }
            let body = loop_of(header);
            if body.is_empty() || !leaves_on_pointer_test(&body) {
                continue;
            }
            for phi in phis {
                for step in steps_of_count(phi, &body) {
                    hide(&builder, step, alu32);
                }
            }
        }
    }
}

/// Whether a branch that leaves `body` decides on a comparison of pointers.
fn leaves_on_pointer_test(body: &HashSet<BasicBlock<'_>>) -> bool {
    body.iter().any(|&b| {
        let Some(t) = b.get_terminator() else {
            return false;
        };
        let leaves = successors(b).iter().any(|s| !body.contains(s));
        leaves
            && t.get_opcode() == InstructionOpcode::Br
            && t.get_num_operands() == 3
            && int_operand(t, 0).is_some_and(|c| compares_pointers(c, CONDITION_DEPTH))
    })
}

fn compares_pointers(c: IntValue<'_>, depth: u32) -> bool {
    let Some(i) = c.as_instruction() else {
        return false;
    };
    match i.get_opcode() {
        InstructionOpcode::ICmp => (0..2).any(|n| {
            matches!(
                i.get_operand(n).and_then(|o| o.value()),
                Some(BasicValueEnum::PointerValue(_))
            )
        }),
        InstructionOpcode::Select
        | InstructionOpcode::And
        | InstructionOpcode::Or
        | InstructionOpcode::Freeze
            if depth > 0 =>
        {
            (0..i.get_num_operands())
                .filter_map(|n| int_operand(i, n))
                .any(|x| compares_pointers(x, depth - 1))
        }
        _ => false,
    }
}

/// The steps `phi + C` of a count the loop uses only to step it, each feeding `phi` back.
fn steps_of_count<'ctx>(
    phi: PhiValue<'ctx>,
    body: &HashSet<BasicBlock<'ctx>>,
) -> Vec<InstructionValue<'ctx>> {
    let BasicValueEnum::IntValue(count) = phi.as_basic_value() else {
        return Vec::new();
    };
    let mut steps = Vec::new();
    for n in 0..phi.count_incoming() {
        let Some((value, from)) = phi.get_incoming(n) else {
            return Vec::new();
        };
        if !body.contains(&from) {
            continue;
        }
        let Some(step) = value.as_instruction_value() else {
            return Vec::new();
        };
        let constant_step = step.get_opcode() == InstructionOpcode::Add
            && (0..2).any(|k| int_operand(step, k) == Some(count))
            && (0..2).any(|k| int_operand(step, k).is_some_and(|x| x.is_const()));
        if !constant_step {
            return Vec::new();
        }
        if !steps.contains(&step) {
            steps.push(step);
        }
    }
    let in_loop = |i: &InstructionValue| i.get_parent().is_some_and(|b| body.contains(&b));
    let phi_only_stepped = users_of_result(phi.as_instruction())
        .iter()
        .filter(|u| in_loop(u))
        .all(|u| steps.contains(u));
    let steps_only_fed_back = steps.iter().all(|&s| {
        users_of_result(s)
            .iter()
            .filter(|u| in_loop(u))
            .all(|u| *u == phi.as_instruction())
    });
    if phi_only_stepped && steps_only_fed_back {
        steps
    } else {
        Vec::new()
    }
}

/// Sends `step` through an empty asm and its users to the asm's result.
fn hide<'ctx>(builder: &Builder<'ctx>, step: InstructionValue<'ctx>, alu32: bool) {
    let Ok(value) = IntValue::try_from(step.as_any_value_enum()) else {
        return;
    };
    let constraint = match value.get_type().get_bit_width() {
        64 => "=r,0",
        32 if alu32 => "=w,0",
        _ => return,
    };
    let Some(next) = step.get_next_instruction() else {
        return;
    };
    // Past the phis, if the step is one of the block's first instructions.
    let at = instructions(step.get_parent().expect("an instruction is in a block"))
        .skip_while(|i| *i != next)
        .find(|i| i.get_opcode() != InstructionOpcode::Phi);
    let Some(at) = at else { return };
    let users = users_of_result(step);
    builder.position_before(&at);
    let Some(hidden) = pure_asm(
        builder,
        value.get_type(),
        String::new(),
        constraint,
        &[value],
        "counted",
    ) else {
        return;
    };
    redirect_uses(
        &users,
        value.as_basic_value_enum(),
        hidden.as_basic_value_enum(),
    );
}
