//! Offsets a loop steps through a packet become pointers the loop steps.
//!
//! `off = off + len + 1` in a loop that reads `*(data + off)` keeps the offset in a register and
//! forms `data + off` again on every iteration: two instructions more than C's `p += len + 1`,
//! on every iteration the verifier walks. After LLVM's pipeline the loop header's offset phi,
//! when it is only ever added to one base pointer or stepped, is replaced by a pointer phi: the
//! base plus the offset it starts at, stepped by the same amounts.
//!
//! Only for packet pointers, and only where the verifier accepts the pointer whenever it accepted
//! the offsets: the header forms `base + off` on every iteration before any exit (so the first
//! pointer was formed before), and every step is a small bounded scalar (a masked value, a byte
//! or a half-word), so forming the pointer one step ahead of the next iteration cannot push it
//! out of the range the verifier allows a packet pointer's variable part.

use super::llvm_ir::{byte_gep, constant_base, phis_of, replace_all_uses, upper_bound, users};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    AnyValue, AsValueRef, BasicValue, BasicValueEnum, FunctionValue, InstructionOpcode,
    InstructionValue, IntValue, PhiValue, PointerValue,
};
use std::collections::HashMap;

/// The largest step the rewrite accepts: a masked value, a byte or a half-word.
const MAX_STEP: u64 = 0xffff;

pub fn step_pointers(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        let Some(entry) = f.get_first_basic_block() else {
            continue;
        };
        for block in f.get_basic_blocks() {
            for phi in phis_of(block) {
                if let Some(induction) = offset_induction(f, entry, block, phi) {
                    rewrite(module, &builder, &induction);
                }
            }
        }
    }
}

/// An offset phi whose uses are `gep i8, base, phi` in its own block and steps `phi + s`.
struct OffsetInduction<'ctx> {
    phi: PhiValue<'ctx>,
    base: PointerValue<'ctx>,
    /// `gep i8, base, phi`, each in the phi's block.
    addresses: Vec<InstructionValue<'ctx>>,
    /// `phi + s`, with `s`; each used only as the phi's incoming value or as `gep i8, base, step`.
    steps: Vec<(InstructionValue<'ctx>, IntValue<'ctx>)>,
}

fn offset_induction<'ctx>(
    f: FunctionValue<'ctx>,
    entry: BasicBlock<'ctx>,
    header: BasicBlock<'ctx>,
    phi: PhiValue<'ctx>,
) -> Option<OffsetInduction<'ctx>> {
    let BasicValueEnum::IntValue(offset) = phi.as_basic_value() else {
        return None;
    };
    if offset.get_type().get_bit_width() != 64 {
        return None;
    }
    let mut base = None;
    let mut same_base = |b: PointerValue<'ctx>| *base.get_or_insert(b) == b;
    let (mut addresses, mut steps) = (Vec::new(), Vec::new());
    for user in users(offset) {
        if let Some(b) = byte_address_of(user, offset) {
            if user.get_parent() != Some(header) || !same_base(b) {
                return None;
            }
            addresses.push(user);
        } else {
            let s = step_of(user, offset)?;
            steps.push((user, s));
        }
    }
    let base = base?;
    if steps.is_empty() || !available_everywhere(f, entry, base) || !is_packet_pointer(base) {
        return None;
    }
    for &(step, _) in &steps {
        let stepped = step.as_any_value_enum().into_int_value();
        for user in users(stepped) {
            let feeds_phi = user == phi.as_instruction();
            let addressed = byte_address_of(user, stepped).is_some_and(|b| b == base);
            if !feeds_phi && !addressed {
                return None;
            }
        }
    }
    Some(OffsetInduction {
        phi,
        base,
        addresses,
        steps,
    })
}

/// When `i` is `getelementptr i8, base, offset`: `base`.
fn byte_address_of<'ctx>(
    i: InstructionValue<'ctx>,
    offset: IntValue<'ctx>,
) -> Option<PointerValue<'ctx>> {
    byte_gep(i).and_then(|(base, x)| (x == offset).then_some(base))
}

/// When `i` is `offset + s` (either order) with `s` a small bounded scalar: `s`.
fn step_of<'ctx>(i: InstructionValue<'ctx>, offset: IntValue<'ctx>) -> Option<IntValue<'ctx>> {
    if i.get_opcode() != InstructionOpcode::Add {
        return None;
    }
    let operand = |n| match i.get_operand(n)?.value()? {
        BasicValueEnum::IntValue(v) => Some(v),
        _ => None,
    };
    let (a, b) = (operand(0)?, operand(1)?);
    let s = match (a == offset, b == offset) {
        (true, false) => b,
        (false, true) => a,
        _ => return None,
    };
    is_small(s).then_some(s)
}

/// A scalar whose definition bounds it by [`MAX_STEP`].
fn is_small(v: IntValue<'_>) -> bool {
    upper_bound(v).is_some_and(|b| b <= MAX_STEP)
}

/// A packet pointer: ksc forms `ctx->data` as `inttoptr`, and a header address is a constant
/// offset from it. Other pointers may be null where the loop's first address is formed (a map
/// value tested inside the loop) or may not take a variable offset at all (the context).
fn is_packet_pointer(p: PointerValue<'_>) -> bool {
    constant_base(p)
        .0
        .as_instruction()
        .is_some_and(|i| i.get_opcode() == InstructionOpcode::IntToPtr)
}

/// Whether `p` may be used anywhere in `f`: an argument, a global or constant, or a value of the
/// entry block (which dominates every block).
fn available_everywhere<'ctx>(
    f: FunctionValue<'ctx>,
    entry: BasicBlock<'ctx>,
    p: PointerValue<'ctx>,
) -> bool {
    match p.as_instruction() {
        Some(i) => i.get_parent() == Some(entry),
        None => {
            p.is_const()
                || f.get_param_iter()
                    .any(|a| a.as_value_ref() == p.as_value_ref())
        }
    }
}

fn rewrite<'ctx>(module: &Module<'ctx>, builder: &Builder<'ctx>, ind: &OffsetInduction<'ctx>) {
    const POSITIONED: &str = "the builder is positioned before an instruction";
    let byte = module.get_context().i8_type();
    let phi = ind.phi.as_instruction();
    let header = phi.get_parent().expect("a phi is in a block");
    builder.position_before(&header.get_first_instruction().expect("the phi"));
    let pointer = builder
        .build_phi(ind.base.get_type(), "step.ptr")
        .expect(POSITIONED);
    let pointer_value = pointer.as_basic_value().into_pointer_value();
    // SAFETY (each gep): byte offsets from a pointer, the same addresses the offsets formed.
    let advance = |at: InstructionValue<'ctx>, p: PointerValue<'ctx>, by: IntValue<'ctx>| {
        builder.position_before(&at);
        unsafe { builder.build_gep(byte, p, &[by], "") }.expect(POSITIONED)
    };
    let stepped: Vec<(InstructionValue, PointerValue)> = (ind.steps.iter())
        .map(|&(step, s)| {
            let after = step
                .get_next_instruction()
                .expect("an add is not a terminator");
            (step, advance(after, pointer_value, s))
        })
        .collect();
    // A block that branches to the header twice (a switch) gives the same value on both edges.
    let mut from_outside: HashMap<BasicBlock, PointerValue> = HashMap::new();
    for n in 0..ind.phi.count_incoming() {
        let (value, from) = ind.phi.get_incoming(n).expect("an incoming edge");
        let stepped_here = stepped
            .iter()
            .find(|(step, _)| value.as_instruction_value() == Some(*step));
        let incoming = match stepped_here {
            Some(&(_, p)) => p,
            None => *from_outside.entry(from).or_insert_with(|| {
                let end = from.get_terminator().expect("a block ends in a terminator");
                advance(end, ind.base, value.into_int_value())
            }),
        };
        pointer.add_incoming(&[(&incoming, from)]);
    }
    for &address in &ind.addresses {
        replace(address, pointer_value);
    }
    for &(step, p) in &stepped {
        let step_value = step.as_any_value_enum().into_int_value();
        for user in users(step_value) {
            if byte_address_of(user, step_value).is_some() {
                replace(user, p);
            }
        }
    }
    // The offset phi and its steps now only feed each other: cut the cycle, then drop both.
    for &(step, _) in &ind.steps {
        for n in 0..step.get_num_operands() {
            if step.get_operand(n).and_then(|o| o.value()) == Some(ind.phi.as_basic_value()) {
                step.set_operand(n, phi.get_type().into_int_type().const_zero());
            }
        }
    }
    phi.erase_from_basic_block();
    for &(step, _) in &ind.steps {
        step.erase_from_basic_block();
    }
}

fn replace<'ctx>(old: InstructionValue<'ctx>, new: PointerValue<'ctx>) {
    replace_all_uses(old, new);
    old.erase_from_basic_block();
}
