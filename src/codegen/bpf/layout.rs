//! Block order of the optimised module, which is the order LLVM's BPF back end emits.
//!
//! The BPF back end cannot analyse conditional branches, so its block placement keeps the IR's
//! order, and each conditional branch falls through into whichever block happens to follow it.
//! SimplifyCFG, for one, leaves the merged return block where the first `return` was, usually
//! right after the first bounds test, and a `throw` path often ends up in the way of the normal
//! one. So the blocks are laid out here, as clang lays out C: the likely successor of a branch
//! (by its branch weights: throws and aborts are cold) right after it, the return blocks last,
//! everything else in the order LLVM left it, except that of two arms that join again, the one
//! the verifier should walk first comes first (`general_first`).

use super::general_first::{general_successor, JoinValues};
use super::llvm_ir::successors;
use inkwell::basic_block::BasicBlock;
use inkwell::module::Module;
use inkwell::values::{BasicMetadataValueEnum, FunctionValue, InstructionOpcode, InstructionValue};
use std::collections::HashSet;

pub fn lay_out(module: &Module) {
    let prof = module.get_context().get_kind_id("prof");
    for f in module.get_functions() {
        let order = hot_paths_first(f, prof);
        for pair in order.windows(2) {
            // Both blocks belong to `f`, which is all move_after requires.
            let _ = pair[1].move_after(pair[0]);
        }
    }
}

/// Chains from the entry: after each block, its likely successor if its branch has weights,
/// else the arm the verifier should walk first, else the block that followed it, if that is a
/// successor; otherwise the first block not yet placed. Blocks that end in `ret` go last.
fn hot_paths_first(f: FunctionValue<'_>, prof: u32) -> Vec<BasicBlock<'_>> {
    let blocks = f.get_basic_blocks();
    let joins = JoinValues::of(f);
    let Some(&entry) = blocks.first() else {
        return Vec::new();
    };
    let returns = |b: &BasicBlock| {
        b.get_terminator()
            .is_some_and(|t| t.get_opcode() == InstructionOpcode::Return)
    };
    let (rets, body): (Vec<_>, Vec<_>) = blocks[1..].iter().copied().partition(returns);
    let mut order = vec![entry];
    let mut placed: HashSet<BasicBlock> = HashSet::from([entry]);
    let mut cur = entry;
    loop {
        let followed_by = blocks
            .iter()
            .position(|&b| b == cur)
            .and_then(|i| blocks.get(i + 1))
            .copied();
        let succs = successors(cur);
        let free = |b: &BasicBlock| !placed.contains(b) && !returns(b);
        let next = match likely_successor(cur, prof) {
            Some(likely) => Some(likely).filter(free),
            None => general_successor(&joins, cur)
                .filter(free)
                .or_else(|| followed_by.filter(|b| succs.contains(b) && free(b))),
        }
        .or_else(|| body.iter().copied().find(|b| !placed.contains(b)));
        let Some(next) = next else { break };
        placed.insert(next);
        order.push(next);
        cur = next;
    }
    order.extend(rets);
    order
}

/// The successor a conditional branch's weights favour.
fn likely_successor<'ctx>(b: BasicBlock<'ctx>, prof: u32) -> Option<BasicBlock<'ctx>> {
    let t = b.get_terminator()?;
    if t.get_opcode() != InstructionOpcode::Br || t.get_num_operands() != 3 {
        return None;
    }
    let [on_true, on_false] = branch_weights(t, prof)?;
    // A conditional `br` keeps its operands as (condition, false target, true target).
    let (if_false, if_true) = (t.get_operand(1)?.block()?, t.get_operand(2)?.block()?);
    match on_true.cmp(&on_false) {
        std::cmp::Ordering::Greater => Some(if_true),
        std::cmp::Ordering::Less => Some(if_false),
        std::cmp::Ordering::Equal => None,
    }
}

fn branch_weights(t: InstructionValue, prof: u32) -> Option<[u64; 2]> {
    let node = t.get_metadata(prof)?;
    let values = node.get_node_values()?;
    let weight = |i: usize| match values.get(i)? {
        BasicMetadataValueEnum::IntValue(v) => v.get_zero_extended_constant(),
        _ => None,
    };
    Some([weight(1)?, weight(2)?])
}
