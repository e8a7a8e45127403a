//! A packet read at an offset merged from constants is made on each path instead.
//!
//! `proto = data[23]` for IPv4 and `proto = data[20]` for IPv6 are one load after LLVM sinks
//! them into the block where the paths meet: `data + phi(23, 20)`. The verifier then arrives
//! there with the offset a different constant on each path, and as it is added to a packet
//! pointer it must keep them apart: everything after the meeting point is walked once per path.
//! C reads the byte in each branch and meets with the byte, a value the verifier knows no more
//! of on one path than on the other, so the second path is pruned where they meet. Here each
//! path reads at its own offset again, on the edge into the meeting block, and the block takes
//! the byte read.
//!
//! Only where the offsets are constants, the base pointer is there on every path, and nothing
//! in the block before the load writes memory or calls.

use super::llvm_ir::{
    byte_gep, instructions, int_operand, is_packet, phis_of, predecessors, replace_all_uses,
    split_edge, users_of_result, Dominators,
};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::types::BasicTypeEnum;
use inkwell::values::{
    BasicValue, BasicValueEnum, InstructionOpcode, InstructionValue, IntValue, PointerValue,
};
use std::collections::HashMap;

/// At most this many merged reads are split per function.
const MAX_SPLITS: usize = 16;

pub fn read_on_each_path(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        // (Each split adds blocks, so the dominators are found again for the next.)
        for _ in 0..MAX_SPLITS {
            let Some(doms) = Dominators::of(f) else {
                break;
            };
            let preds = predecessors(f);
            let found = f
                .get_basic_blocks()
                .into_iter()
                .find_map(|join| MergedRead::of(join, &doms, &preds));
            match found.and_then(|read| read.split(&builder)) {
                Some(()) => {}
                None => break,
            }
        }
    }
}

/// `load (gep base, offsets)` in `join`, `offsets` a phi of one constant per predecessor
/// (`edges`: each constant with the block it comes from).
struct MergedRead<'ctx> {
    join: BasicBlock<'ctx>,
    base: PointerValue<'ctx>,
    edges: Vec<(IntValue<'ctx>, BasicBlock<'ctx>)>,
    address: InstructionValue<'ctx>,
    load: InstructionValue<'ctx>,
}

impl<'ctx> MergedRead<'ctx> {
    fn of(
        join: BasicBlock<'ctx>,
        doms: &Dominators<'ctx>,
        preds: &HashMap<BasicBlock<'ctx>, Vec<BasicBlock<'ctx>>>,
    ) -> Option<Self> {
        let incoming = preds.get(&join)?;
        phis_of(join).into_iter().find_map(|offsets| {
            let phi = offsets.as_instruction();
            let edges: Vec<(IntValue, BasicBlock)> = (0..offsets.count_incoming())
                .filter_map(|k| {
                    let (v, from) = offsets.get_incoming(k)?;
                    let BasicValueEnum::IntValue(v) = v else {
                        return None;
                    };
                    v.is_const().then_some((v, from))
                })
                .collect();
            // One constant per predecessor, each reached once.
            let distinct = incoming
                .iter()
                .all(|p| edges.iter().filter(|e| e.1 == *p).count() == 1);
            if edges.len() != incoming.len() || !distinct {
                return None;
            }
            let [address] = users_of_result(phi)[..] else {
                return None;
            };
            let (base, offset) = byte_gep(address)?;
            let [load] = users_of_result(address)[..] else {
                return None;
            };
            let base_everywhere = base
                .as_instruction()
                .is_none_or(|b| doms.dominates_instruction(b, phi));
            // Nothing before the load in the block but phis and addresses: no write, no call.
            let quiet = instructions(join).take_while(|&i| i != load).all(|i| {
                matches!(
                    i.get_opcode(),
                    InstructionOpcode::Phi | InstructionOpcode::GetElementPtr
                )
            });
            (offset.as_instruction() == Some(phi)
                && address.get_parent() == Some(join)
                && load.get_opcode() == InstructionOpcode::Load
                && load.get_parent() == Some(join)
                && is_packet(base)
                && base_everywhere
                && quiet)
                .then_some(MergedRead {
                    join,
                    base,
                    edges,
                    address,
                    load,
                })
        })
    }

    /// On each incoming edge, the load at that edge's offset; in `join`, a phi of the values.
    fn split(self, builder: &Builder<'ctx>) -> Option<()> {
        let ty = BasicTypeEnum::try_from(self.load.get_type()).ok()?;
        let i8_ty = self.join.get_context().i8_type();
        let align = self.load.get_alignment().ok()?;
        let mut read = Vec::new();
        for &(offset, from) in &self.edges {
            // (Each split makes the join's phis again: the constants were collected before.)
            let edge = split_edge(builder, from, self.join)?;
            builder.position_before(&edge.get_terminator()?);
            // SAFETY: the base and offset the merged load read through, on this path.
            let at = unsafe { builder.build_gep(i8_ty, self.base, &[offset], "").ok()? };
            let value = builder.build_load(ty, at, "").ok()?;
            if let Some(i) = value.as_instruction_value() {
                let _ = i.set_alignment(align);
            }
            read.push((value, edge));
        }
        let first = instructions(self.join).find(|i| i.get_opcode() != InstructionOpcode::Phi)?;
        builder.position_before(&first);
        let merged = builder.build_phi(ty, "").ok()?;
        for (value, edge) in &read {
            merged.add_incoming(&[(value as &dyn BasicValue, *edge)]);
        }
        replace_all_uses(self.load, merged.as_basic_value());
        let offsets = int_operand(self.address, 1).and_then(|o| o.as_instruction());
        self.load.erase_from_basic_block();
        self.address.erase_from_basic_block();
        if let Some(offsets) = offsets.filter(|o| o.get_first_use().is_none()) {
            offsets.erase_from_basic_block();
        }
        Some(())
    }
}
