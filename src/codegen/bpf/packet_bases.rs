//! A packet pointer's context word merged as a whole register.
//!
//! `ctx->data` is a 32-bit context field that the kernel rewrites into a 64-bit pointer load;
//! ksc reads it as `inttoptr(zext(load i32))`. When GVN merges two reads of it (one before a map
//! update, one after, on different paths), the merge is a phi of the 32-bit words, zero-extended
//! after it, and the back end moves the word between registers with `w1 = w8`: to the verifier
//! a 32-bit move of a pointer makes a scalar ("R1 invalid mem access 'scalar'"). Here the phi
//! (or select) is made one of the extended words, each extended right after its read, where the
//! read and the extension select as one 64-bit load.

use super::llvm_ir::{erase_dead, instructions, int_operand, users_of_result};
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{InstructionOpcode, InstructionValue, IntValue, PhiValue};
use std::collections::HashMap;

/// How many phis and selects deep a merged word is followed.
const MAX_DEPTH: u32 = 8;

pub fn widen_packet_bases(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        let extensions: Vec<InstructionValue> = f
            .get_basic_blocks()
            .into_iter()
            .flat_map(instructions)
            .filter(|&i| is_pointer_extension(i))
            .collect();
        let mut widened = HashMap::new();
        for ext in extensions {
            let Some(word) = int_operand(ext, 0) else {
                continue;
            };
            let merged = word.as_instruction().is_some_and(|i| {
                matches!(
                    i.get_opcode(),
                    InstructionOpcode::Phi | InstructionOpcode::Select
                )
            });
            if !merged || !widenable(word, MAX_DEPTH) {
                continue;
            }
            let wide = widen(&builder, word, &mut widened);
            if let Some(wide) = wide.and_then(|w| w.as_instruction()) {
                ext.replace_all_uses_with(&wide);
                erase_dead(ext);
            }
        }
    }
}

/// `zext i32 … to i64` whose value becomes a pointer.
fn is_pointer_extension(i: InstructionValue<'_>) -> bool {
    i.get_opcode() == InstructionOpcode::ZExt
        && int_operand(i, 0).is_some_and(|w| w.get_type().get_bit_width() == 32)
        && users_of_result(i)
            .iter()
            .any(|u| u.get_opcode() == InstructionOpcode::IntToPtr)
}

/// Whether every word `word` merges, through at most `depth` phis and selects, is a constant or
/// an instruction.
fn widenable(word: IntValue<'_>, depth: u32) -> bool {
    let Some(def) = word.as_instruction() else {
        return word.is_const();
    };
    if def.get_opcode() == InstructionOpcode::Select {
        return depth > 0
            && [1, 2]
                .iter()
                .all(|&k| int_operand(def, k).is_some_and(|v| widenable(v, depth - 1)));
    }
    let Ok(phi) = PhiValue::try_from(def) else {
        return true;
    };
    depth > 0
        && (0..phi.count_incoming()).all(|k| {
            phi.get_incoming(k)
                .is_some_and(|(v, _)| v.is_int_value() && widenable(v.into_int_value(), depth - 1))
        })
}

/// `word` zero-extended to 64 bits ([`widenable`]): a phi or select of words becomes one of
/// extended words, any other word is extended right after it is made.
fn widen<'ctx>(
    builder: &Builder<'ctx>,
    word: IntValue<'ctx>,
    widened: &mut HashMap<IntValue<'ctx>, IntValue<'ctx>>,
) -> Option<IntValue<'ctx>> {
    if let Some(&w) = widened.get(&word) {
        return Some(w);
    }
    let i64_type = word.get_type().get_context().i64_type();
    let Some(def) = word.as_instruction() else {
        return Some(i64_type.const_int(word.get_zero_extended_constant()?, false));
    };
    if let Ok(phi) = PhiValue::try_from(def) {
        builder.position_before(&def);
        let wide_phi = builder.build_phi(i64_type, "word").ok()?;
        let wide = wide_phi.as_basic_value().into_int_value();
        widened.insert(word, wide);
        for k in 0..phi.count_incoming() {
            let (value, from) = phi.get_incoming(k)?;
            let incoming = widen(builder, value.into_int_value(), widened)?;
            wide_phi.add_incoming(&[(&incoming, from)]);
        }
        return Some(wide);
    }
    if def.get_opcode() == InstructionOpcode::Select {
        let condition = def.get_operand(0)?.value()?.into_int_value();
        let (a, b) = (int_operand(def, 1)?, int_operand(def, 2)?);
        let (a, b) = (widen(builder, a, widened)?, widen(builder, b, widened)?);
        builder.position_before(&def);
        let wide = builder
            .build_select(condition, a, b, "word")
            .ok()?
            .into_int_value();
        widened.insert(word, wide);
        return Some(wide);
    }
    match def.get_next_instruction() {
        Some(next) => builder.position_before(&next),
        None => builder.position_at_end(def.get_parent()?),
    }
    let wide = builder.build_int_z_extend(word, i64_type, "").ok()?;
    widened.insert(word, wide);
    Some(wide)
}
