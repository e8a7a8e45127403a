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

use super::llvm_ir::{instructions, may_write_memory, pointer_operand, replace_all_uses};
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::types::AnyType;
use inkwell::values::{AnyValue, AsValueRef, InstructionOpcode, InstructionValue};
use llvm_sys::core::LLVMGetAtomicRMWBinOp;
use llvm_sys::LLVMAtomicRMWBinOp;

pub fn forward_fetched_values(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            for add in instructions(block).collect::<Vec<_>>() {
                if is_atomic_add(add) {
                    forward(&builder, add);
                }
            }
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
