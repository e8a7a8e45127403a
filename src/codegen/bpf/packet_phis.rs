//! Packet pointers merged as pointers, not formed again from merged offsets.
//!
//! The verifier gives the range a `data_end` test proves to the tested pointer's register and
//! its copies only; `data + off` formed again is a new pointer with no range. When paths that
//! each formed and tested `data + off` meet, InstCombine may fold the phi of their pointers into
//! `data + phi(off, …)` formed after the merge (jump threading makes such merges when it copies a
//! test into two paths), and the kernel then refuses a read every path tested ("offset is
//! outside of the packet"). Where each path already holds `base + off` at its end, the merged
//! pointer is a phi of those pointers again: the same addresses, with the tests' ranges kept.
//!
//! Loop headers are left to `pointer_steps`: a pointer carried around a loop changes which
//! states the verifier can prune at, which is that pass's judgement to make.

use super::llvm_ir::{
    erase_all_dead, instructions, is_packet, pointer_operand, replace_all_uses, users, Dominators,
};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    AnyValue, BasicValueEnum, InstructionOpcode, InstructionValue, IntValue, PhiValue, PointerValue,
};
use std::collections::HashMap;

pub fn merge_packet_pointers(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        let Some(doms) = Dominators::of(f) else {
            continue;
        };
        // (The pointer phi already built for an offset phi and a base.)
        let mut merged: HashMap<(PhiValue, PointerValue), PhiValue> = HashMap::new();
        let addresses: Vec<(InstructionValue, PointerValue, PhiValue)> = doms
            .blocks()
            .iter()
            .flat_map(|&b| instructions(b))
            .filter_map(|i| merged_offset_address(&doms, i).map(|(base, phi)| (i, base, phi)))
            .collect();
        let mut replaced = Vec::new();
        for (address, base, phi) in addresses {
            let pointer = match merged.get(&(phi, base)) {
                Some(&p) => p,
                None => {
                    let Some(incoming) = formed_on_every_edge(&doms, phi, base) else {
                        continue;
                    };
                    let p = build_pointer_phi(&builder, phi, &incoming);
                    merged.insert((phi, base), p);
                    p
                }
            };
            replace_all_uses(address, pointer.as_basic_value());
            replaced.push(address);
        }
        // (Erased only now: an address may be another's operand.)
        erase_all_dead(&replaced);
    }
}

/// When `i` is `getelementptr i8, base, phi` with `base` a packet pointer and `phi` an offset
/// phi outside a loop header: `(base, phi)`.
fn merged_offset_address<'ctx>(
    doms: &Dominators<'ctx>,
    i: InstructionValue<'ctx>,
) -> Option<(PointerValue<'ctx>, PhiValue<'ctx>)> {
    if i.get_opcode() != InstructionOpcode::GetElementPtr || !is_byte_address(i) {
        return None;
    }
    let base = pointer_operand(i, 0)?;
    let BasicValueEnum::IntValue(offset) = i.get_operand(1)?.value()? else {
        return None;
    };
    let phi = offset
        .as_instruction()
        .filter(|o| o.get_opcode() == InstructionOpcode::Phi)
        .and_then(|o| PhiValue::try_from(o).ok())?;
    (is_packet(base) && !heads_loop(doms, phi)).then_some((base, phi))
}

/// `getelementptr i8, p, n`: one byte index.
fn is_byte_address(i: InstructionValue<'_>) -> bool {
    i.get_num_operands() == 2
        && i.get_gep_source_element_type()
            .is_ok_and(|t| t.is_int_type() && t.into_int_type().get_bit_width() == 8)
}

/// Whether `phi`'s block is entered again from a block it dominates (or from itself).
fn heads_loop<'ctx>(doms: &Dominators<'ctx>, phi: PhiValue<'ctx>) -> bool {
    let Some(block) = phi.as_instruction().get_parent() else {
        return true;
    };
    (0..phi.count_incoming()).any(|k| {
        phi.get_incoming(k)
            .is_some_and(|(_, pred)| doms.common(&[block, pred]) == Some(block))
    })
}

/// For each incoming edge of `phi`, a `base + incoming offset` already formed where it holds at
/// the end of the edge's predecessor.
fn formed_on_every_edge<'ctx>(
    doms: &Dominators<'ctx>,
    phi: PhiValue<'ctx>,
    base: PointerValue<'ctx>,
) -> Option<Vec<(PointerValue<'ctx>, BasicBlock<'ctx>)>> {
    (0..phi.count_incoming())
        .map(|k| {
            let (value, pred) = phi.get_incoming(k)?;
            let BasicValueEnum::IntValue(offset) = value else {
                return None;
            };
            let end = pred.get_terminator()?;
            let formed = formed_address(doms, base, offset, end)?;
            Some((formed, pred))
        })
        .collect()
}

/// A `getelementptr i8, base, offset` that every path to `at` runs.
fn formed_address<'ctx>(
    doms: &Dominators<'ctx>,
    base: PointerValue<'ctx>,
    offset: IntValue<'ctx>,
    at: InstructionValue<'ctx>,
) -> Option<PointerValue<'ctx>> {
    users(offset)
        .into_iter()
        .filter(|&u| u.get_opcode() == InstructionOpcode::GetElementPtr && is_byte_address(u))
        .filter(|&u| pointer_operand(u, 0) == Some(base))
        .filter(|&u| {
            matches!(u.get_operand(1).and_then(|o| o.value()),
                Some(BasicValueEnum::IntValue(v)) if v == offset)
        })
        .find(|&u| doms.dominates_instruction(u, at))
        .map(|u| u.as_any_value_enum().into_pointer_value())
}

fn build_pointer_phi<'ctx>(
    builder: &Builder<'ctx>,
    offsets: PhiValue<'ctx>,
    incoming: &[(PointerValue<'ctx>, BasicBlock<'ctx>)],
) -> PhiValue<'ctx> {
    let at = offsets.as_instruction();
    builder.position_before(&at);
    let ty = incoming[0].0.get_type();
    let phi = builder
        .build_phi(ty, "merged.pkt")
        .expect("the builder is positioned in a block");
    for &(p, pred) in incoming {
        phi.add_incoming(&[(&p, pred)]);
    }
    phi
}
