//! An address inside a stack slot is formed in each block that uses it.
//!
//! Instruction selection works a block at a time. A stack slot itself is a frame index any block
//! can name, but `getelementptr i8, ptr %slot, i64 4` defined in one block and used in others is
//! a value like any other: it is computed once (`r2 = r10; r2 += -44`) and kept in a register
//! from its definition to its last use, across helper calls, so it is spilled and reloaded. The
//! late rewrites form such addresses once, where the slot is (a key moved to the upper half of
//! an 8-byte slot); C compilers form them where they are used. Each user in another block that
//! the address would reach across a call gets its own copy, which selection folds into the
//! store's offset or forms next to the call. (Without a call in between a register holds it at
//! no cost, and forming it once keeps it out of blocks the verifier walks more than once.)

use super::llvm_ir::{
    crosses_call, instructions, is_alloca, pointer_operand, predecessors, users_of_result,
};
use inkwell::module::Module;
use inkwell::values::{BasicValueEnum, InstructionOpcode, InstructionValue, PointerValue};

pub fn form_at_uses(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        let addresses: Vec<_> = f
            .get_basic_blocks()
            .into_iter()
            .flat_map(instructions)
            .filter(|&i| is_slot_offset(i))
            .collect();
        let preds = predecessors(f);
        for address in addresses {
            let home = address.get_parent();
            for user in users_of_result(address) {
                // (A phi's operand is formed on its edge; leave those to the back end.)
                if user.get_parent() == home
                    || user.get_opcode() == InstructionOpcode::Phi
                    || !crosses_call(address, user, &preds)
                {
                    continue;
                }
                let copy = address.explicit_clone();
                builder.position_before(&user);
                builder.insert_instruction(&copy, None);
                let Ok(copy) = PointerValue::try_from(copy) else {
                    continue;
                };
                for n in 0..user.get_num_operands() {
                    if operand_is(user, n, address) {
                        user.set_operand(n, copy);
                    }
                }
            }
            if users_of_result(address).is_empty() {
                address.erase_from_basic_block();
            }
        }
    }
}

/// `getelementptr T, ptr %slot, C…` with `%slot` an alloca and every index a constant.
fn is_slot_offset(i: InstructionValue<'_>) -> bool {
    i.get_opcode() == InstructionOpcode::GetElementPtr
        && pointer_operand(i, 0).is_some_and(is_alloca)
        && (1..i.get_num_operands()).all(|n| {
            matches!(i.get_operand(n).and_then(|o| o.value()),
                Some(BasicValueEnum::IntValue(c)) if c.is_constant_int())
        })
}

fn operand_is(user: InstructionValue<'_>, n: u32, address: InstructionValue<'_>) -> bool {
    pointer_operand(user, n).and_then(|p| p.as_instruction()) == Some(address)
}
