//! A stack word written piece by piece, one value and zeros, is written as one word.
//!
//! `conns[key] = Conn { state: first, packets: 1, … }` with a `u8` field before a `u64` leaves
//! seven bytes of padding, which ksc zeroes (the kernel reads the whole value). SROA splits the
//! struct, and the back end writes the 8-byte word as four stores: the field, then zeros of one,
//! two and four bytes. C zeroes the struct first and writes the field over it: two stores. Here
//! the stores of one basic block that fill an aligned 8-byte word of a stack object together —
//! zeros, and at most one value — become a single store of that value widened to the word (and
//! shifted to its place), when that saves instructions. Nothing between the first and last of
//! them may read or write memory, so no one sees the word half written.

use super::llvm_ir::{
    constant_base, erase_dead, instructions, is_alloca, may_write_memory, pointer_operand,
};
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::targets::TargetData;
use inkwell::values::{
    BasicValueEnum, InstructionOpcode, InstructionValue, IntValue, PointerValue,
};
use std::collections::HashMap;

const WORD: i64 = 8;

pub fn merge_word_stores(module: &Module) {
    let builder = module.get_context().create_builder();
    let layout = TargetData::create(module.get_data_layout().as_str().to_str().unwrap_or(""));
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            let mut run: Vec<Piece> = Vec::new();
            for i in instructions(block).collect::<Vec<_>>() {
                if let Some(piece) = piece(i, &layout) {
                    run.push(piece);
                } else if i.get_opcode() == InstructionOpcode::Load || may_write_memory(i) {
                    merge_run(&builder, &mut run);
                }
            }
            merge_run(&builder, &mut run);
        }
    }
}

/// A store of an integer into an 8-aligned stack object at a constant offset.
#[derive(Clone, Copy)]
struct Piece<'ctx> {
    store: InstructionValue<'ctx>,
    object: PointerValue<'ctx>,
    offset: i64,
    bytes: i64,
    value: IntValue<'ctx>,
}

fn piece<'ctx>(i: InstructionValue<'ctx>, layout: &TargetData) -> Option<Piece<'ctx>> {
    if i.get_opcode() != InstructionOpcode::Store || i.get_volatile().unwrap_or(true) {
        return None;
    }
    let BasicValueEnum::IntValue(value) = i.get_operand(0)?.value()? else {
        return None;
    };
    let (object, offset) = constant_base(pointer_operand(i, 1)?);
    if !is_alloca(object) {
        return None;
    }
    let alloca = object.as_instruction()?;
    let size = i64::try_from(layout.get_store_size(&alloca.get_allocated_type().ok()?)).ok()?;
    let bytes = i64::from(value.get_type().get_bit_width()) / 8;
    let fits = offset >= 0 && offset + bytes <= size && offset / WORD * WORD + WORD <= size;
    (alloca.get_alignment().ok()? >= WORD as u32 && bytes > 0 && fits).then_some(Piece {
        store: i,
        object,
        offset,
        bytes,
        value,
    })
}

/// Merges each word the run's stores fill, then empties the run.
fn merge_run(builder: &Builder, run: &mut Vec<Piece>) {
    let mut words: HashMap<(PointerValue, i64), Vec<Piece>> = HashMap::new();
    for &p in run.iter() {
        if p.offset / WORD == (p.offset + p.bytes - 1) / WORD {
            words
                .entry((p.object, p.offset / WORD))
                .or_default()
                .push(p);
        }
    }
    run.clear();
    for ((object, word), pieces) in words {
        merge_word(builder, object, word * WORD, &pieces);
    }
}

fn merge_word(builder: &Builder, object: PointerValue, start: i64, pieces: &[Piece]) {
    // Every byte written exactly once (a later store over an earlier one is left alone).
    let mut covered = 0u8;
    for p in pieces {
        let mask = (((1u16 << p.bytes) - 1) << (p.offset - start)) as u8;
        if covered & mask != 0 {
            return;
        }
        covered |= mask;
    }
    let zero = |p: &&Piece| p.value.get_zero_extended_constant() == Some(0);
    let values: Vec<&Piece> = pieces.iter().filter(|p| !zero(p)).collect();
    if covered != 0xff || values.len() > 1 {
        return;
    }
    // One store for all of them, plus a shift where the value does not start the word.
    let shift = values.first().map_or(0, |p| p.offset - start);
    let saved = pieces.len() as i64 - 1 - i64::from(shift != 0);
    if saved <= 0 {
        return;
    }
    let last = pieces
        .iter()
        .map(|p| p.store)
        .max_by_key(|s| position(*s))
        .expect("a word has pieces");
    builder.position_before(&last);
    let ctx = object.get_type().get_context();
    let i64_type = ctx.i64_type();
    let built = (|| -> Option<()> {
        let word = match values.first() {
            None => i64_type.const_zero(),
            Some(p) => {
                let wide = builder.build_int_z_extend(p.value, i64_type, "").ok()?;
                let by = i64_type.const_int(8 * shift as u64, false);
                match shift {
                    0 => wide,
                    _ => builder.build_left_shift(wide, by, "").ok()?,
                }
            }
        };
        let offset = i64_type.const_int(start as u64, false);
        // SAFETY: the word lies inside the stack object (checked against its size).
        let address = unsafe { builder.build_gep(ctx.i8_type(), object, &[offset], "") }.ok()?;
        let store = builder.build_store(address, word).ok()?;
        store.set_alignment(WORD as u32).ok()?;
        Some(())
    })();
    if built.is_some() {
        for p in pieces {
            erase_dead(p.store);
        }
    }
}

/// How many instructions precede `i` in its block.
fn position(i: InstructionValue) -> usize {
    let mut n = 0;
    let mut at = i.get_previous_instruction();
    while let Some(p) = at {
        n += 1;
        at = p.get_previous_instruction();
    }
    n
}
