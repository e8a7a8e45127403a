//! A merged return of constants splits into one return block per constant.
//!
//! SimplifyCFG merges every `return K` of a function into one block, `phi [K1, a], [K2, b], …;
//! ret`, and sinks the operation that paths share before it (the `atomicrmw` of
//! `counters[k] += 1; return V`) into one block with a phi of the verdicts. The BPF back end then
//! sets r0 before each jump there, and where that jump is conditional (the null test of the
//! counter's lookup) r0 is set before the test, so the pointer tested first moves out of r0: two
//! instructions more per `counters[k] += 1; return V` site than C, whose join block per site
//! lets the machine tail merger share one `lock add; r0 = V; exit` among the sites returning
//! the same verdict. Here each constant gets its own `ret K` block, and a sunk block is copied
//! once per verdict its paths return, so every path reaches the return of its own value and the
//! tails merge as C's do.
//! Only returns of constants split: a value computed on a path stays one value, which the
//! register allocator keeps in r0; and only a sunk block of a few instructions, no calls, is
//! copied. Runs before `layout`, which places the returning blocks last.

use super::llvm_ir::{instructions, phis_of, redirect, replace_all_uses, users_of_result};
use inkwell::basic_block::BasicBlock;
use inkwell::module::Module;
use inkwell::values::{
    AsValueRef, BasicValue, BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue,
    IntValue, PhiValue,
};
use llvm_sys::prelude::LLVMValueRef;
use std::collections::HashMap;

/// The most instructions (besides its phis and branch) a sunk block may hold to be copied.
const COPIED_BLOCK_LIMIT: usize = 4;

pub fn split_returns(module: &Module) {
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            if let Some((phi, edges)) = merged_return_of_constants(block) {
                split(module, f, block, phi, edges);
            }
        }
    }
}

/// How a path reaches the merged return.
enum ReturnEdge<'ctx> {
    /// Straight from `from`, returning `value`.
    Constant(IntValue<'ctx>, BasicBlock<'ctx>),
    /// Through `block`, an operation sunk there, whose phi `verdict` holds the constant each of
    /// its predecessors returns.
    Sunk {
        block: BasicBlock<'ctx>,
        verdict: PhiValue<'ctx>,
    },
}

/// `phi …; ret phi` and nothing else, when every value the phi takes is a constant or the
/// verdict phi of a sunk block: the phi and its edges.
fn merged_return_of_constants(block: BasicBlock) -> Option<(PhiValue, Vec<ReturnEdge>)> {
    let [phi] = phis_of(block)[..] else {
        return None;
    };
    let [_, ret] = instructions(block).collect::<Vec<_>>()[..] else {
        return None;
    };
    let returns_phi = ret.get_opcode() == InstructionOpcode::Return
        && ret
            .get_operand(0)
            .and_then(|o| o.value())
            .is_some_and(|v| v.as_value_ref() == phi.as_value_ref());
    if !returns_phi {
        return None;
    }
    let edges = (0..phi.count_incoming())
        .map(|i| match phi.get_incoming(i)? {
            (BasicValueEnum::IntValue(v), from) if v.is_const() => {
                Some(ReturnEdge::Constant(v, from))
            }
            (value, from) => sunk_block(value, from, block),
        })
        .collect::<Option<Vec<_>>>()?;
    Some((phi, edges))
}

/// `from` as a sunk block: phis (one of them `value`, a phi of constants), a few instructions
/// used nowhere else, no calls, then `br` to `ret_block`.
fn sunk_block<'ctx>(
    value: BasicValueEnum<'ctx>,
    from: BasicBlock<'ctx>,
    ret_block: BasicBlock<'ctx>,
) -> Option<ReturnEdge<'ctx>> {
    let verdict = phis_of(from)
        .into_iter()
        .find(|p| p.as_value_ref() == value.as_value_ref())?;
    let constants = (0..verdict.count_incoming()).all(|i| {
        matches!(verdict.get_incoming(i), Some((BasicValueEnum::IntValue(v), _)) if v.is_const())
    });
    let term = from.get_terminator()?;
    let to_return = term.get_opcode() == InstructionOpcode::Br
        && term.get_num_operands() == 1
        && term.get_operand(0).and_then(|o| o.block()) == Some(ret_block);
    let body: Vec<_> = instructions(from)
        .filter(|i| i.get_opcode() != InstructionOpcode::Phi && *i != term)
        .collect();
    let contained = instructions(from).all(|i| {
        users_of_result(i).iter().all(|u| {
            u.get_parent() == Some(from)
                || (i == verdict.as_instruction() && u.get_parent() == Some(ret_block))
        })
    });
    let copyable = body.len() <= COPIED_BLOCK_LIMIT
        && body
            .iter()
            .all(|i| i.get_opcode() != InstructionOpcode::Call);
    // Where one verdict is returned on nearly every path, LLVM sets r0 to it once before the
    // paths part, and copies for the few others cost more than the phi copies they save.
    let groups = verdict_groups(verdict);
    let paths: usize = groups.iter().map(|(_, preds)| preds.len()).sum();
    let dominant = groups
        .iter()
        .map(|(_, preds)| preds.len())
        .max()
        .unwrap_or(0);
    let worth_copying = 4 * dominant <= 3 * paths;
    (constants && to_return && contained && copyable && worth_copying).then_some(ReturnEdge::Sunk {
        block: from,
        verdict,
    })
}

fn split<'ctx>(
    module: &Module<'ctx>,
    f: FunctionValue<'ctx>,
    block: BasicBlock<'ctx>,
    phi: PhiValue<'ctx>,
    edges: Vec<ReturnEdge<'ctx>>,
) {
    let ctx = module.get_context();
    let builder = ctx.create_builder();
    let mut returns: HashMap<Option<u64>, BasicBlock> = HashMap::new();
    let mut ret_block = |value: IntValue<'ctx>| {
        // Keyed by the constant's bits; a constant wider than 64 bits gets a block per edge.
        let key = value.get_zero_extended_constant();
        if let Some(&b) = key.and_then(|_| returns.get(&key)) {
            return b;
        }
        let b = ctx.append_basic_block(f, "ret");
        builder.position_at_end(b);
        let _ = builder.build_return(Some(&value));
        returns.insert(key, b);
        b
    };
    let mut sunk_blocks = Vec::new();
    for edge in edges {
        match edge {
            ReturnEdge::Constant(value, from) => {
                if let Some(term) = from.get_terminator() {
                    redirect(term, block, ret_block(value));
                }
            }
            ReturnEdge::Sunk {
                block: sunk,
                verdict,
            } => {
                // A copy that could not be built leaves the block in place, for the IR verifier
                // to report rather than a deleted block still branched to.
                if copy_per_verdict(module, f, sunk, verdict).is_some() {
                    sunk_blocks.push(sunk);
                }
            }
        }
    }
    // (Its users, `block`'s return and what the sunk blocks store, go with their blocks.)
    let phi_ty = phi.as_basic_value().into_int_value().get_type();
    replace_all_uses(phi.as_instruction(), phi_ty.get_undef());
    phi.as_instruction().erase_from_basic_block();
    // The sunk blocks branch to `block`, whose phis name them: their branches go first, then
    // `block` (dropping its phis' uses of them), then they. Deleting a block still used frees
    // memory LLVM writes to later.
    for &b in &sunk_blocks {
        if let Some(t) = b.get_terminator() {
            t.erase_from_basic_block();
        }
    }
    // SAFETY: no edge leads to these blocks any more, and nothing outside them uses their values.
    for b in std::iter::once(block).chain(sunk_blocks) {
        let _ = unsafe { b.delete() };
    }
}

/// One copy of the sunk block per constant its verdict phi takes, each reached by the paths
/// returning that constant and returning it. `None` if LLVM's builder refused an instruction.
fn copy_per_verdict<'ctx>(
    module: &Module<'ctx>,
    f: FunctionValue<'ctx>,
    sunk: BasicBlock<'ctx>,
    verdict: PhiValue<'ctx>,
) -> Option<()> {
    let ctx = module.get_context();
    let builder = ctx.create_builder();
    for (k, preds) in verdict_groups(verdict) {
        let copy = ctx.append_basic_block(f, "sunk");
        builder.position_at_end(copy);
        // In this copy the verdict is its constant (the sunk operation may use it too).
        let mut mapped: HashMap<LLVMValueRef, LLVMValueRef> =
            HashMap::from([(verdict.as_value_ref(), k.as_value_ref())]);
        for p in phis_of(sunk).into_iter().filter(|&p| p != verdict) {
            let q = builder.build_phi(p.as_basic_value().get_type(), "").ok()?;
            for i in 0..p.count_incoming() {
                if let Some((v, from)) = p.get_incoming(i).filter(|(_, b)| preds.contains(b)) {
                    q.add_incoming(&[(&v as &dyn BasicValue, from)]);
                }
            }
            mapped.insert(p.as_value_ref(), q.as_value_ref());
        }
        let body = instructions(sunk).filter(|i| {
            i.get_opcode() != InstructionOpcode::Phi && i.get_opcode() != InstructionOpcode::Br
        });
        for i in body.collect::<Vec<_>>() {
            let c = i.explicit_clone();
            builder.insert_instruction(&c, None);
            remap_operands(c, &mapped);
            mapped.insert(i.as_value_ref(), c.as_value_ref());
        }
        builder.build_return(Some(&k)).ok()?;
        for from in preds {
            if let Some(term) = from.get_terminator() {
                redirect(term, sunk, copy);
            }
        }
    }
    Some(())
}

/// The predecessors of a sunk block grouped by the constant its verdict phi takes from them.
fn verdict_groups(verdict: PhiValue) -> Vec<(IntValue, Vec<BasicBlock>)> {
    let mut groups: Vec<(IntValue, Vec<BasicBlock>)> = Vec::new();
    for i in 0..verdict.count_incoming() {
        let Some((BasicValueEnum::IntValue(k), from)) = verdict.get_incoming(i) else {
            continue;
        };
        let bits = k.get_zero_extended_constant();
        match groups
            .iter_mut()
            .find(|g| g.0.get_zero_extended_constant() == bits)
        {
            Some(g) if !g.1.contains(&from) => g.1.push(from),
            Some(_) => {}
            None => groups.push((k, vec![from])),
        }
    }
    groups
}

/// Operands of `i` that are keys of `mapped` become their values.
fn remap_operands(i: InstructionValue, mapped: &HashMap<LLVMValueRef, LLVMValueRef>) {
    use llvm_sys::core::{LLVMGetNumOperands, LLVMGetOperand, LLVMSetOperand};
    // SAFETY: `i` is a live instruction; each replacement has the type of what it replaces.
    unsafe {
        let r = i.as_value_ref();
        for n in 0..LLVMGetNumOperands(r) {
            if let Some(&to) = mapped.get(&LLVMGetOperand(r, n as u32)) {
                LLVMSetOperand(r, n as u32, to);
            }
        }
    }
}
