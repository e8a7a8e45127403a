//! One read of each packet-pointer field of the context (`ctx->data`, `ctx->data_end`) where
//! nothing can move the packet.
//!
//! The checks `bounds-check` inserts read `ctx->data_end` afresh, and LLVM cannot reuse an
//! earlier read across a map update or an atomic add (to LLVM they may write the context). But
//! only a helper that moves the packet changes these fields, so in a program that calls none, a
//! read that an earlier read of the same field dominates is that read, as a C programmer's
//! `data_end` local is. The later read would otherwise cost the field load and, with the
//! context spilled across calls, a reload of the context too.

use super::llvm_ir::{
    calls_intrinsic, constant_base, helper_id, instructions, is_bpf_call, pointer_operand,
    replace_all_uses, users_of_result, Dominators,
};
use crate::vocab::helpers;
use inkwell::module::Module;
use inkwell::types::AnyTypeEnum;
use inkwell::values::{
    AsValueRef, BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue,
};

/// The intrinsic the back end reads context fields at a nonzero offset with.
const CONTEXT_LOAD: &str = "llvm.bpf.getelementptr.and.load";

pub fn share_packet_fields(module: &Module) {
    for f in programs_keeping_packet(module) {
        if let Some(context) = program_context(f) {
            share_reads(f, context);
        }
    }
}

/// The programs in which nothing can move the packet, so a packet pointer read once stays valid
/// to their end.
pub(super) fn programs_keeping_packet<'ctx>(module: &Module<'ctx>) -> Vec<FunctionValue<'ctx>> {
    // A call of anything else (a function, a kfunc, a helper handed a callback) is harmless
    // only when nothing in the unit moves the packet.
    let unit_keeps_packet = module.get_functions().all(|f| {
        f.get_basic_block_iter()
            .all(|b| instructions(b).all(|i| moved_by_helper(i) != Some(true)))
    });
    module
        .get_functions()
        .filter(|&f| program_context(f).is_some())
        .filter(|f| {
            f.get_basic_block_iter().all(|b| {
                instructions(b).all(|i| {
                    !is_bpf_call(i) || moved_by_helper(i) == Some(false) || unit_keeps_packet
                })
            })
        })
        .collect()
}

/// For a call of a known helper, whether it may move the packet.
fn moved_by_helper(i: InstructionValue<'_>) -> Option<bool> {
    let helper = helpers::by_id(i128::from(helper_id(i)?))?;
    Some(helper.moves_packet)
}

/// A program's context pointer (its first parameter); other functions' first parameters may
/// point anywhere, packet bytes included.
fn program_context(f: FunctionValue<'_>) -> Option<BasicValueEnum<'_>> {
    f.get_first_basic_block()?;
    f.get_section()?;
    f.get_first_param().filter(|p| p.is_pointer_value())
}

fn share_reads<'ctx>(f: FunctionValue<'ctx>, context: BasicValueEnum<'ctx>) {
    let Some(dominators) = Dominators::of(f) else {
        return;
    };
    let dominates = |a, b| dominators.dominates_instruction(a, b);
    let mut kept: Vec<(Field, InstructionValue<'ctx>)> = Vec::new();
    for &b in dominators.blocks() {
        for i in instructions(b).collect::<Vec<_>>() {
            let Some(field) = packet_field(i, context) else {
                continue;
            };
            let earlier = kept
                .iter()
                .find(|(k, first)| *k == field && dominates(*first, i));
            match earlier {
                Some(&(_, first)) => {
                    replace_all_uses(i, first);
                    i.erase_from_basic_block();
                    share_casts(first, &dominates);
                }
                None => kept.push((field, i)),
            }
        }
    }
}

/// Where a context read reads: its width and offset (for the intrinsic, its constant operands,
/// which spell the offset and the access).
#[derive(PartialEq)]
struct Field {
    width: u32,
    offset: Vec<u64>,
}

/// `i` as a read of a context field that holds a packet pointer (one the program turns into a
/// pointer).
fn packet_field<'ctx>(i: InstructionValue<'ctx>, context: BasicValueEnum<'ctx>) -> Option<Field> {
    let width = match i.get_type() {
        AnyTypeEnum::IntType(t) => t.get_bit_width(),
        _ => return None,
    };
    let offset = match i.get_opcode() {
        InstructionOpcode::Load => {
            let (base, offset) = constant_base(pointer_operand(i, 0)?);
            (base.as_value_ref() == context.as_value_ref()).then_some(vec![offset as u64])?
        }
        InstructionOpcode::Call if calls_intrinsic(i, CONTEXT_LOAD) => {
            let base = pointer_operand(i, 0)?;
            if base.as_value_ref() != context.as_value_ref() {
                return None;
            }
            // (Its flags and indices, all constants; the callee is last.)
            (1..i.get_num_operands() - 1)
                .map(|k| match i.get_operand(k)?.value()? {
                    BasicValueEnum::IntValue(c) => c.get_zero_extended_constant(),
                    _ => None,
                })
                .collect::<Option<Vec<u64>>>()?
        }
        _ => return None,
    };
    becomes_pointer(i).then_some(Field { width, offset })
}

/// Whether the integer `i` reads is turned into a pointer (through a widening).
fn becomes_pointer(i: InstructionValue<'_>) -> bool {
    users_of_result(i)
        .into_iter()
        .any(|u| match u.get_opcode() {
            InstructionOpcode::IntToPtr => true,
            InstructionOpcode::ZExt => users_of_result(u)
                .iter()
                .any(|w| w.get_opcode() == InstructionOpcode::IntToPtr),
            _ => false,
        })
}

/// The widenings and pointer casts of `v` that an identical one dominates become that one, so
/// the shared read stays one register.
fn share_casts<'ctx>(
    v: InstructionValue<'ctx>,
    dominates: &dyn Fn(InstructionValue<'ctx>, InstructionValue<'ctx>) -> bool,
) {
    let is_cast = |u: &InstructionValue| {
        matches!(
            u.get_opcode(),
            InstructionOpcode::ZExt | InstructionOpcode::IntToPtr
        )
    };
    loop {
        let casts: Vec<InstructionValue> = users_of_result(v).into_iter().filter(is_cast).collect();
        let pair = casts.iter().find_map(|&c| {
            let same = |k: &&InstructionValue<'ctx>| {
                **k != c && k.get_opcode() == c.get_opcode() && k.get_type() == c.get_type()
            };
            casts
                .iter()
                .filter(same)
                .find(|&&k| dominates(k, c))
                .map(|&k| (k, c))
        });
        let Some((kept, repeated)) = pair else {
            break;
        };
        replace_all_uses(repeated, kept);
        repeated.erase_from_basic_block();
    }
    for c in users_of_result(v).into_iter().filter(is_cast) {
        share_casts(c, dominates);
    }
}
