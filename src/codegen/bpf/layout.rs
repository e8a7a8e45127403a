//! Block order of the optimised module, before LLVM's BPF back end lays it out.
//!
//! Where branch probabilities tie, the back end keeps the IR's block order, and SimplifyCFG
//! leaves the merged return block where the first `return` was, usually right after the first
//! bounds test. Every early-exit test then branches over it on the path that goes on: one taken
//! branch per test on the hot path, and an extra jump back to it. Clang emits its return block
//! last; moving ours there makes the tests fall through, as in hand-written C.

use inkwell::module::Module;
use inkwell::values::InstructionOpcode;

/// Moves the blocks that end in `ret` (the entry block aside) to the end of their function.
pub fn returns_last(module: &Module) {
    for f in module.get_functions() {
        let blocks = f.get_basic_blocks();
        for &b in blocks.iter().skip(1) {
            let returns = b.get_terminator().is_some_and(|t| t.get_opcode() == InstructionOpcode::Return);
            if let (true, Some(last)) = (returns, f.get_last_basic_block()) {
                if b != last {
                    // Both blocks belong to `f`, which is all move_after requires.
                    let _ = b.move_after(last);
                }
            }
        }
    }
}
