//! A word read right after an atomic add to it takes the value the add fetched.
//!
//! `sketch[slot] += 1; var count = sketch[slot]` adds through the entry one lookup found and
//! reads it back through the entry of the read's own lookup, which LLVM finds to be the same
//! only after its pipeline has threaded the two `if (entry != null)` tests into one: an atomic
//! add, then a load of the word it updated, which waits for the locked instruction. C's
//! `__sync_add_and_fetch` uses the value the add fetched. `fuse-fetch-add` does this on KS-IR
//! where the read follows the add in its block; here the same holds for what LLVM merged. Sound
//! under concurrency as that pass says: the read yields what it would have read right after the
//! add. Needs BPF_FETCH (cpu v3 or later), which the caller checks.

use super::llvm_ir::{
    instructions, may_write_memory, phis_of, pointer_operand, replace_all_uses, split_edge,
    successors,
};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::types::AnyType;
use inkwell::values::{
    AnyValue, AsValueRef, BasicValue, BasicValueEnum, InstructionOpcode, InstructionValue,
    IntValue, PhiValue,
};
use llvm_sys::core::LLVMGetAtomicRMWBinOp;
use llvm_sys::LLVMAtomicRMWBinOp;

pub fn forward_fetched_values(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            // (The adds first: forwarding erases loads, which must not be looked at again.)
            let adds: Vec<_> = instructions(block).filter(|&i| is_atomic_add(i)).collect();
            for add in adds {
                forward(&builder, add);
            }
        }
        for block in f.get_basic_blocks() {
            forward_into_join(&builder, block);
        }
    }
}

fn is_atomic_add(i: InstructionValue) -> bool {
    // SAFETY: `i` is an atomicrmw instruction, which the call reads the operation of.
    i.get_opcode() == InstructionOpcode::AtomicRMW
        && unsafe { LLVMGetAtomicRMWBinOp(i.as_value_ref()) }
            == LLVMAtomicRMWBinOp::LLVMAtomicRMWBinOpAdd
}

/// Replaces the loads of the added word that follow `add` in its block, before anything that may
/// write memory, with the fetched value plus the delta.
fn forward(builder: &Builder, add: InstructionValue) {
    let (Some(word), Some(delta)) = (pointer_operand(add, 0), add.get_operand(1)) else {
        return;
    };
    let Some(delta) = delta.value().map(|d| d.into_int_value()) else {
        return;
    };
    let fetched = add.as_any_value_enum().into_int_value();
    let mut sum = None;
    let mut next = add.get_next_instruction();
    while let Some(i) = next {
        next = i.get_next_instruction();
        let reads_word = i.get_opcode() == InstructionOpcode::Load
            && pointer_operand(i, 0) == Some(word)
            && !i.get_volatile().unwrap_or(true)
            && i.get_type() == fetched.get_type().as_any_type_enum();
        if reads_word {
            let new = match sum {
                Some(s) => s,
                None => {
                    builder.position_before(&i);
                    let Ok(s) = builder.build_int_add(fetched, delta, "") else {
                        return;
                    };
                    *sum.insert(s)
                }
            };
            replace_all_uses(i, new);
            i.erase_from_basic_block();
        } else if may_write_memory(i) {
            return;
        }
    }
}

/// A join's read of an entry some of its predecessors have just added to: `m[k] += 1` on an
/// entry found or inserted, then `if (m[k] > limit)` where the paths meet. The read becomes a
/// phi of the value each add fetched plus its delta, and of a read on the other paths (on an
/// edge of its own where the predecessor branches elsewhere too), as C's
/// `__sync_add_and_fetch` keeps the value on the path that added.
fn forward_into_join(builder: &Builder, block: BasicBlock) {
    let Some((load, address)) = first_read_of_phi(block) else {
        return;
    };
    let incoming: Vec<_> = (0..address.count_incoming())
        .filter_map(|k| address.get_incoming(k))
        .collect();
    let ty = load.get_type();
    let added: Vec<Option<(InstructionValue, IntValue)>> = incoming
        .iter()
        .map(|&(word, from)| last_add_to(from, word).filter(|(a, _)| a.get_type() == ty))
        .collect();
    let once = |from: BasicBlock| successors(from).iter().filter(|&&s| s == block).count() == 1;
    if added.iter().all(Option::is_none) || !incoming.iter().all(|&(_, from)| once(from)) {
        return;
    }
    let mut values: Vec<(BasicValueEnum, BasicBlock)> = Vec::new();
    for ((word, from), add) in incoming.into_iter().zip(added) {
        let Some(term) = from.get_terminator() else {
            return;
        };
        let value = match add {
            Some((add, delta)) => {
                builder.position_before(&term);
                let fetched = add.as_any_value_enum().into_int_value();
                let Ok(sum) = builder.build_int_add(fetched, delta, "") else {
                    return;
                };
                (sum.as_basic_value_enum(), from)
            }
            None => {
                // (Read where the edge runs: the address is the entry on that edge alone.)
                let edge = match successors(from).len() {
                    1 => from,
                    _ => match split_edge(builder, from, block) {
                        Some(edge) => edge,
                        None => return,
                    },
                };
                let Some(at) = edge.get_terminator() else {
                    return;
                };
                builder.position_before(&at);
                let BasicValueEnum::PointerValue(p) = word else {
                    return;
                };
                let Ok(read) = builder.build_load(fetched_type(load), p, "") else {
                    return;
                };
                (read, edge)
            }
        };
        values.push(value);
    }
    builder.position_before(&load);
    let Ok(joined) = builder.build_phi(fetched_type(load), "") else {
        return;
    };
    for (v, from) in &values {
        joined.add_incoming(&[(v as &dyn BasicValue, *from)]);
    }
    replace_all_uses(load, joined.as_basic_value());
    load.erase_from_basic_block();
}

/// The first read in `block` before anything may write memory, when its address is a phi of
/// the block's.
fn first_read_of_phi<'ctx>(
    block: BasicBlock<'ctx>,
) -> Option<(InstructionValue<'ctx>, PhiValue<'ctx>)> {
    let phis = phis_of(block);
    for i in instructions(block) {
        if i.get_opcode() == InstructionOpcode::Load {
            if !i.get_type().is_int_type() {
                return None;
            }
            let address = pointer_operand(i, 0)?;
            let phi = phis
                .iter()
                .find(|p| p.as_basic_value() == address.as_basic_value_enum())?;
            return (!i.get_volatile().unwrap_or(true)).then_some((i, *phi));
        }
        if may_write_memory(i) {
            return None;
        }
    }
    None
}

/// The atomic add to `word` that `from` ends with (nothing writes memory after it), and its delta.
fn last_add_to<'ctx>(
    from: BasicBlock<'ctx>,
    word: BasicValueEnum<'ctx>,
) -> Option<(InstructionValue<'ctx>, IntValue<'ctx>)> {
    let mut at = from.get_terminator()?.get_previous_instruction();
    while let Some(i) = at {
        if is_atomic_add(i) {
            let same = pointer_operand(i, 0).is_some_and(|p| p.as_basic_value_enum() == word);
            let delta = i.get_operand(1)?.value()?.into_int_value();
            return same.then_some((i, delta));
        }
        if may_write_memory(i) {
            return None;
        }
        at = i.get_previous_instruction();
    }
    None
}

fn fetched_type(load: InstructionValue) -> inkwell::types::BasicTypeEnum {
    load.as_any_value_enum().into_int_value().get_type().into()
}
