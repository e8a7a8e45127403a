//! A `llvm.bpf.passthrough` of a constant is the constant.
//!
//! The BPF back end wraps one of two compares LLVM would merge into one (`i < 8 && i < n`) in a
//! passthrough, so the verifier still sees each. When loop rotation later proves one of them on
//! the way into the loop (`0 < 8`), the wrapped `true` stays opaque: a register set to a constant
//! and a test of it on every path through (`w1 = 0; if w1 != 0 goto`). A constant needs no
//! barrier; without it instruction selection folds the `select` or branch it feeds.

use super::llvm_ir::{calls_intrinsic, instructions, replace_all_uses, users_of_result};
use inkwell::module::Module;
use inkwell::values::{BasicValueEnum, InstructionOpcode, InstructionValue};

pub fn fold_constant_passthroughs(module: &Module) {
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            // (The calls first: folding erases selects, which must not be looked at again.)
            let calls: Vec<_> = instructions(block)
                .filter(|&i| calls_intrinsic(i, "llvm.bpf.passthrough"))
                .collect();
            for call in calls {
                // Operands: the sequence number, the value, the callee.
                let Some(BasicValueEnum::IntValue(c)) = call.get_operand(1).and_then(|o| o.value())
                else {
                    continue;
                };
                if !c.is_constant_int() {
                    continue;
                }
                let selects = users_of_result(call);
                replace_all_uses(call, c);
                call.erase_from_basic_block();
                // (Code generation would split a select on it into a branch on the constant.)
                for select in selects {
                    fold_constant_select(select);
                }
            }
        }
    }
}

/// `select i1 C, a, b` with a constant `C` becomes the value it picks.
fn fold_constant_select(select: InstructionValue<'_>) {
    if select.get_opcode() != InstructionOpcode::Select {
        return;
    }
    let Some(BasicValueEnum::IntValue(c)) = select.get_operand(0).and_then(|o| o.value()) else {
        return;
    };
    let Some(taken) = c.get_zero_extended_constant() else {
        return;
    };
    let picked = if taken != 0 { 1 } else { 2 };
    if let Some(value) = select.get_operand(picked).and_then(|o| o.value()) {
        replace_all_uses(select, value);
        select.erase_from_basic_block();
    }
}
