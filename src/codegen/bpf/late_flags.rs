//! A truth value kept for later blocks is computed where its block first needs it.
//!
//! BPF has no instruction that sets a register from a comparison, so a condition that lives on
//! past its block (`mirrored = clock == 0 || orig >= 2^31`, tested again after an ICMP reply is
//! built and recorded in its event) is materialised with branches, `w9 = 1; if w1 == 0 goto +1;
//! w9 = 0`, and the verifier walks what follows once per outcome for as long as the register
//! lives, as a known 0 or 1. The instruction scheduler may put those branches anywhere in the
//! block: in that reply, amid an IP header checksum that reads none of them, which the verifier
//! then walked four times. Here the condition, the comparisons it is made of and the selects it
//! decides move to where the block first uses one of their results (its end, when only later
//! blocks do), and the block is split there, so the scheduler cannot hoist them back.
//!
//! Runs after the pipeline, before `layout`.

use super::llvm_ir::{instructions, ordered_copy, users_of_result};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    AnyValue, BasicValue, BasicValueEnum, InstructionOpcode, InstructionValue, IntValue,
};
use std::collections::HashSet;

/// Moving a condition past fewer instructions than this is not worth a block.
const MIN_DISTANCE: usize = 4;
/// At most this many splits per function.
const MAX_SPLITS: usize = 64;

pub fn compute_flags_late(module: &Module, alu32: bool) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        // (A split block is visited again for its other flags, and so is the block it made.)
        let mut k = 0;
        let mut splits = 0;
        while let Some(block) = f.get_basic_blocks().get(k).copied() {
            let late = live_out_flags(block)
                .into_iter()
                .find_map(|flag| LateFlag::of(block, flag));
            match late {
                Some(late) if splits < MAX_SPLITS => {
                    splits += 1;
                    late.sink(&builder, alu32);
                }
                _ => k += 1,
            }
        }
    }
}

/// The logic on truth values in `block` that later blocks read. (Not a comparison alone: the
/// back end's preparation copies that into each block that reads it.)
fn live_out_flags(block: BasicBlock<'_>) -> Vec<InstructionValue<'_>> {
    instructions(block)
        .filter(|&i| is_truth_op(i) && i.get_opcode() != InstructionOpcode::ICmp)
        .filter(|&i| {
            users_of_result(i)
                .iter()
                .any(|u| u.get_parent() != Some(block))
        })
        .collect()
}

fn is_truth_op(i: InstructionValue<'_>) -> bool {
    let bool_typed =
        i.get_type().is_int_type() && i.get_type().into_int_type().get_bit_width() == 1;
    match i.get_opcode() {
        InstructionOpcode::ICmp => true,
        InstructionOpcode::Select
        | InstructionOpcode::And
        | InstructionOpcode::Or
        | InstructionOpcode::Xor => bool_typed,
        _ => false,
    }
}

/// A flag, what it is made of and what it decides in its block (`chain`, in block order), and
/// the first instruction of the block that reads one of them (`need`).
struct LateFlag<'ctx> {
    chain: Vec<InstructionValue<'ctx>>,
    need: InstructionValue<'ctx>,
}

impl<'ctx> LateFlag<'ctx> {
    fn of(block: BasicBlock<'ctx>, flag: InstructionValue<'ctx>) -> Option<Self> {
        let order: Vec<InstructionValue> = instructions(block).collect();
        let position = |i: InstructionValue| order.iter().position(|&x| x == i);
        // The flag, the truth values in the block only it reads, and the selects it decides.
        let mut members: HashSet<InstructionValue> = HashSet::from([flag]);
        let mut work = vec![flag];
        while let Some(i) = work.pop() {
            for k in 0..i.get_num_operands() {
                let Some(op) = i.get_operand(k).and_then(|o| o.value()) else {
                    continue;
                };
                let Some(op) = op.as_instruction_value() else {
                    continue;
                };
                let only_here = users_of_result(op)
                    .iter()
                    .all(|u| members.contains(u) || *u == i);
                if op.get_parent() == Some(block)
                    && is_truth_op(op)
                    && only_here
                    && members.insert(op)
                {
                    work.push(op);
                }
            }
        }
        let decided: Vec<InstructionValue> = users_of_result(flag)
            .into_iter()
            .filter(|u| u.get_opcode() == InstructionOpcode::Select)
            .filter(|u| u.get_parent() == Some(block) && !members.contains(u))
            .filter(|u| u.get_operand(0).and_then(|o| o.value()) == flag_value(flag))
            .collect();
        members.extend(decided);
        // The first instruction outside the chain that reads a member, else the terminator
        // (also for a phi of the block, which reads its value at the back edge).
        let terminator = block.get_terminator()?;
        let need = members
            .iter()
            .flat_map(|&m| users_of_result(m))
            .filter(|u| u.get_parent() == Some(block) && !members.contains(u))
            .filter(|u| u.get_opcode() != InstructionOpcode::Phi)
            .filter_map(&position)
            .min()
            .map_or(terminator, |at| order[at]);
        let first = members.iter().filter_map(|&m| position(m)).min()?;
        let need_at = position(need)?;
        let skipped = order[first..need_at]
            .iter()
            .filter(|i| !members.contains(i))
            .count();
        // (A decided select after `need` may read a value made between the two.)
        let inputs_ready = members.iter().all(|&m| {
            (0..m.get_num_operands())
                .filter_map(|k| m.get_operand(k)?.value()?.as_instruction_value())
                .filter(|d| !members.contains(d))
                .all(|d| position(d).is_none_or(|at| at < need_at))
        });
        if skipped < MIN_DISTANCE || !inputs_ready {
            return None;
        }
        let mut chain: Vec<InstructionValue> = members.into_iter().collect();
        chain.sort_by_key(|&i| position(i));
        Some(LateFlag { chain, need })
    }

    /// Moves the chain before `need`, reading its inputs through empty asms that run there.
    fn sink(&self, builder: &Builder<'ctx>, alu32: bool) {
        builder.position_before(&self.need);
        let mut copies: Vec<(IntValue<'ctx>, IntValue<'ctx>)> = Vec::new();
        for &i in &self.chain {
            for k in 0..i.get_num_operands() {
                let Some(BasicValueEnum::IntValue(input)) =
                    i.get_operand(k).and_then(|o| o.value())
                else {
                    continue;
                };
                let from_chain = input
                    .as_instruction()
                    .is_some_and(|d| self.chain.contains(&d));
                if input.is_const() || from_chain {
                    continue;
                }
                // (An input no register class takes as it is, a truth value, stays as it is.)
                let copy = match copies.iter().find(|(v, _)| *v == input) {
                    Some(&(_, copy)) => Some(copy),
                    None => {
                        ordered_copy(builder, input.into(), "", alu32).map(|c| c.into_int_value())
                    }
                };
                if let Some(copy) = copy {
                    copies.push((input, copy));
                    i.set_operand(k, copy);
                }
            }
        }
        for &i in &self.chain {
            i.remove_from_basic_block();
            builder.insert_instruction(&i, None);
        }
    }
}

fn flag_value(flag: InstructionValue<'_>) -> Option<BasicValueEnum<'_>> {
    BasicValueEnum::try_from(flag.as_any_value_enum()).ok()
}
