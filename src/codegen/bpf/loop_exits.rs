//! A verifier prune point where a loop exits by falling through.
//!
//! The verifier compares a path's state with the states it has already seen only at prune
//! points: jump targets, jump instructions and the instruction after a call. A loop bounded by a
//! run-time count (`for i in 0..words`) leaves once per count the verifier cannot rule out, and
//! once the counter is dead those exits are the same state. When the exit block is laid out right
//! after the loop's last test, nothing jumps to it, so each exit walks the code after the loop up
//! to the next jump before the verifier sees it has been there before.
//!
//! An empty `goto +0` on that edge makes the code after it a jump target. The verifier removes
//! the nop once it has verified the program, so it costs neither run time nor xlated
//! instructions; it is one more instruction in the object.
//!
//! Runs after `layout`, which fixes which block follows which.

use super::llvm_ir::{
    dominated_by, instructions, ordered_copy, predecessors, reachable_from, reaching, split_edge,
    successors, users_of_result,
};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    AnyValue, BasicValue, BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue,
    PhiValue,
};
use std::collections::HashSet;

pub fn mark_loop_exits(module: &Module, alu32: bool) {
    let ctx = module.get_context();
    let builder = ctx.create_builder();
    for f in module.get_functions() {
        let blocks = f.get_basic_blocks();
        let preds = predecessors(f);
        for pair in blocks.windows(2) {
            let (latch, exit) = (pair[0], pair[1]);
            if preds.get(&exit).is_none_or(|p| p != &[latch]) {
                continue;
            }
            let Some(body) = loop_of(latch, exit, &preds) else {
                continue;
            };
            if let Some(edge) = split_edge(&builder, latch, exit) {
                goto_next(&builder, f, edge, &body, alu32);
            }
        }
    }
}

/// The blocks of the loop `latch` closes, when `latch` ends in a two-way branch whose other
/// successor `exit` is outside it.
fn loop_of<'ctx>(
    latch: BasicBlock<'ctx>,
    exit: BasicBlock<'ctx>,
    preds: &std::collections::HashMap<BasicBlock<'ctx>, Vec<BasicBlock<'ctx>>>,
) -> Option<HashSet<BasicBlock<'ctx>>> {
    let succs = successors(latch);
    if succs.len() != 2 || !succs.contains(&exit) {
        return None;
    }
    let back_to_latch = reaching(latch, preds);
    if back_to_latch.contains(&exit) {
        return None;
    }
    let body: HashSet<BasicBlock> = reachable_from(&succs)
        .into_iter()
        .filter(|b| back_to_latch.contains(b))
        .collect();
    body.contains(&latch).then_some(body)
}

/// `goto +0` in `edge`, the block between a loop and its exit. The values the loop computed pass
/// through it on their way to the code after the loop, so that code cannot be scheduled ahead of
/// the jump (the two blocks become one before instruction selection).
fn goto_next<'ctx>(
    builder: &Builder<'ctx>,
    f: FunctionValue<'ctx>,
    edge: BasicBlock<'ctx>,
    body: &HashSet<BasicBlock<'ctx>>,
    alu32: bool,
) {
    let Some(br) = edge.get_terminator() else {
        return;
    };
    let after = dominated_by(f, edge);
    let mut text = "goto +0";
    // (In the function's block order: the object must not depend on a hash's order.)
    let blocks = f.get_basic_blocks();
    let loop_blocks = blocks.iter().filter(|b| body.contains(b));
    for value in loop_blocks.flat_map(|&b| instructions(b)) {
        let Some(operands) = outside_uses(value, &after) else {
            continue;
        };
        builder.position_before(&br);
        let value = BasicValueEnum::try_from(value.as_any_value_enum()).ok();
        let Some(passed) = value.and_then(|v| ordered_copy(builder, v, text, alu32)) else {
            continue;
        };
        text = "";
        for (user, k) in operands {
            user.set_operand(k, passed);
        }
    }
    if !text.is_empty() {
        builder.position_before(&br);
        let ctx = edge.get_context();
        let asm_ty = ctx.void_type().fn_type(&[], false);
        let asm =
            ctx.create_inline_asm(asm_ty, text.into(), String::new(), true, false, None, false);
        let _ = builder.build_indirect_call(asm_ty, asm, &[], "");
    }
}

/// The (user, operand) pairs by which `value` is read in the blocks of `after`: a phi reads its
/// incoming value at the end of the incoming block. None when there are none.
fn outside_uses<'ctx>(
    value: InstructionValue<'ctx>,
    after: &HashSet<BasicBlock<'ctx>>,
) -> Option<Vec<(InstructionValue<'ctx>, u32)>> {
    let mut out = Vec::new();
    for user in users_of_result(value) {
        let phi = (user.get_opcode() == InstructionOpcode::Phi)
            .then(|| PhiValue::try_from(user).ok())
            .flatten();
        for k in 0..user.get_num_operands() {
            let reads = user
                .get_operand(k)
                .and_then(|o| o.value())
                .and_then(|v| v.as_instruction_value())
                == Some(value);
            let at = match phi {
                Some(phi) => phi.get_incoming(k).map(|(_, b)| b),
                None => user.get_parent(),
            };
            if reads && at.is_some_and(|b| after.contains(&b)) {
                out.push((user, k));
            }
        }
    }
    (!out.is_empty()).then_some(out)
}
