//! A phi of small integer constants is chosen in a whole register.
//!
//! Every throw site of a merged `catch` sets the code it throws (`w5 = 3; if … goto handler`),
//! and runs of sites throw the same code. LLVM's late clean-up drops an immediate load that a
//! register already holds, but not a 32-bit one: `w5 = 3` also defines the upper half of `r5`
//! (an implicit definition the clean-up does not reason about), so each site keeps its copy. A
//! phi of `i8`/`i16`/`i32` constants is made an `i64` phi of the same constants, narrowed where
//! it is used (which costs nothing: the narrow value is the register's lower half), and its
//! copies become `r5 = 3`, which the clean-up removes where the register already holds it.
//! A phi with one value among many repeated constants (the outcome a `defer` records, which
//! each throw site sets to its code) is widened too, the value extended where it comes from.
//! Not a phi that becomes the function's result: that is set in `w0` where it is decided, and
//! widened it is chosen in another register held across the function and copied at the exit.

use super::llvm_ir::{instructions, phis_of, successors, users};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{BasicValueEnum, InstructionOpcode, PhiValue};
use std::collections::HashMap;

pub fn widen_constant_phis(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            for phi in phis_of(block) {
                widen(&builder, phi);
            }
        }
    }
}

/// The blocks that branch to `block`.
fn predecessors_of(block: BasicBlock<'_>) -> Vec<BasicBlock<'_>> {
    let Some(f) = block.get_parent() else {
        return Vec::new();
    };
    f.get_basic_blocks()
        .into_iter()
        .filter(|&b| successors(b).contains(&block))
        .collect()
}

/// Whether `phi` is the function's result, directly or through further phis: the result is set
/// in `w0`, where a narrow constant costs no copy, while a wide one is chosen in another register
/// and copied into `r0` at the shared return.
fn is_returned(phi: PhiValue<'_>, depth: u32) -> bool {
    users(phi.as_basic_value())
        .into_iter()
        .any(|u| match u.get_opcode() {
            InstructionOpcode::Return => true,
            InstructionOpcode::Phi if depth > 0 => {
                PhiValue::try_from(u).is_ok_and(|p| is_returned(p, depth - 1))
            }
            _ => false,
        })
}

/// How many sites must repeat the constant the site before them set for a phi with a value
/// among its constants to be widened.
const MANY_REPEATS: usize = 4;

fn widen<'ctx>(builder: &Builder<'ctx>, phi: PhiValue<'ctx>) -> Option<()> {
    let BasicValueEnum::IntValue(value) = phi.as_basic_value() else {
        return None;
    };
    let width = value.get_type().get_bit_width();
    if !(8..=32).contains(&width) {
        return None;
    }
    let incoming: Vec<_> = (0..phi.count_incoming())
        .map(|k| phi.get_incoming(k))
        .collect::<Option<_>>()?;
    // (A value that is not a constant — the outcome a `defer` records, set on one path and
    // thrown as a code on the others — is widened where it comes from.)
    let constants: Vec<Option<u64>> = incoming
        .iter()
        .map(|(v, _)| match v {
            BasicValueEnum::IntValue(c) => Some(c.get_zero_extended_constant()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    // Only where one site's copy would find the register already set by the site before it
    // (the one predecessor of its block passes the same constant): elsewhere the register
    // width is a coin toss for the allocator and the tail duplicator.
    let block = phi.as_instruction().get_parent()?;
    let repeats = incoming.iter().zip(&constants).filter(|((_, from), c)| {
        let preds = predecessors_of(*from);
        c.is_some()
            && matches!(preds.as_slice(), [above] if incoming
                .iter()
                .zip(&constants)
                .any(|((_, b), d)| b == above && d == *c))
    });
    // A value widened costs an extension where it comes from (and the allocator a choice): worth
    // it for one value among many repeating sites, a `catch`'s code against the outcome a
    // `defer` records, not for a phi that merely mixes the two.
    let values = constants.iter().filter(|c| c.is_none()).count();
    let enough = match values {
        0 => repeats.count() > 0,
        1 => repeats.count() >= MANY_REPEATS,
        _ => false,
    };
    // (Checked before anything is built: a value is extended before its block's terminator.)
    let ends = incoming
        .iter()
        .zip(&constants)
        .all(|((_, from), c)| c.is_some() || from.get_terminator().is_some());
    if !enough || !ends || is_returned(phi, 4) {
        return None;
    }
    let i64_type = value.get_type().get_context().i64_type();
    builder.position_before(&block.get_first_instruction()?);
    let wide = builder.build_phi(i64_type, "wide").ok()?;
    // (One widening per edge's block: a switch's several edges to the block share it.)
    let mut widened = HashMap::new();
    for ((v, from), c) in incoming.iter().zip(&constants) {
        let value = match c {
            Some(c) => i64_type.const_int(*c, false),
            None => match widened.get(from) {
                Some(&w) => w,
                None => {
                    builder.position_before(&from.get_terminator().expect("checked"));
                    let w = builder
                        .build_int_z_extend(v.into_int_value(), i64_type, "wide")
                        .ok()?;
                    widened.insert(*from, w);
                    w
                }
            },
        };
        wide.add_incoming(&[(&value, *from)]);
    }
    // The narrow value, after the block's phis.
    let first_other = instructions(block).find(|i| i.get_opcode() != InstructionOpcode::Phi)?;
    builder.position_before(&first_other);
    let narrow = builder
        .build_int_truncate(
            wide.as_basic_value().into_int_value(),
            value.get_type(),
            "narrow",
        )
        .ok()?;
    value.replace_all_uses_with(narrow);
    phi.as_instruction().erase_from_basic_block();
    Some(())
}
