//! Runs of byte copies from the packet into a stack object become wider moves.
//!
//! `for (i in 0..16) { key.addr[i] = *(ip6 + 8 + i) }`, unrolled, is sixteen byte loads and
//! sixteen byte stores; C copies the same bytes with `__builtin_memcpy` from a header struct, in
//! words. LLVM cannot widen the copy itself: the packet bytes are only 1-aligned to it, and the
//! BPF target has no misaligned accesses. The kernel has no such limit for packet reads (only
//! the stack is strictly aligned), so after LLVM's pipeline a run of byte copies in one block —
//! consecutive packet bytes into consecutive stack bytes, each loaded byte stored once — is
//! copied in the widest moves the stack side's alignment allows (up to 8 bytes), the packet side
//! read as C reads a header field. A run lies in one block, so the checks that proved its bytes
//! (branches) all come before it; the moves go where the run's last store was, with nothing in
//! between that writes memory.

use super::llvm_ir::{constant_base, is_alloca, is_packet, pointer_operand};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{BasicValueEnum, InstructionOpcode, InstructionValue, PointerValue};
use std::collections::HashSet;

pub fn merge(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            for run in runs(block) {
                merge_run(module, &builder, &run);
            }
        }
    }
}

/// One byte copied: `store (load src + s), dst + d`.
#[derive(Clone, Copy)]
struct Copy<'ctx> {
    load: InstructionValue<'ctx>,
    store: InstructionValue<'ctx>,
    src: PointerValue<'ctx>,
    src_offset: i64,
    dst: PointerValue<'ctx>,
    dst_offset: i64,
}

/// The byte copies of `block`, split where something may write memory or read the stack
/// objects being written.
fn runs(block: BasicBlock<'_>) -> Vec<Vec<Copy<'_>>> {
    let mut runs = vec![Vec::new()];
    // The instructions since the current run began: a copy whose load is older straddles a
    // boundary (its byte may have been written since) and is left alone.
    let mut since_start: HashSet<InstructionValue> = HashSet::new();
    let mut at = block.get_first_instruction();
    while let Some(i) = at {
        at = i.get_next_instruction();
        let boundary = match i.get_opcode() {
            InstructionOpcode::Store => match byte_copy(i) {
                Some(c) if since_start.contains(&c.load) => {
                    runs.last_mut().expect("one run at least").push(c);
                    false
                }
                _ => true,
            },
            // Loads from the stack objects written may read bytes a later move would write.
            InstructionOpcode::Load => pointer_operand(i, 0).is_some_and(|p| {
                let base = constant_base(p).0;
                is_alloca(base) && runs.last().is_some_and(|r| r.iter().any(|c| c.dst == base))
            }),
            InstructionOpcode::Call
            | InstructionOpcode::AtomicRMW
            | InstructionOpcode::AtomicCmpXchg
            | InstructionOpcode::Fence => true,
            _ => false,
        };
        if boundary {
            runs.push(Vec::new());
            since_start.clear();
        }
        since_start.insert(i);
    }
    // A byte written twice in a run keeps its order only as written.
    runs.retain(|r| {
        let mut written = HashSet::new();
        r.len() > 1 && r.iter().all(|c| written.insert((c.dst, c.dst_offset)))
    });
    runs
}

/// `store i8 (load i8 src), dst` with the loaded byte used only there, a packet source and a
/// stack destination.
fn byte_copy(store: InstructionValue<'_>) -> Option<Copy<'_>> {
    let Some(inkwell::values::Operand::Value(BasicValueEnum::IntValue(v))) = store.get_operand(0)
    else {
        return None;
    };
    if v.get_type().get_bit_width() != 8 || store.get_volatile().ok()? {
        return None;
    }
    let load = v.as_instruction()?;
    if load.get_opcode() != InstructionOpcode::Load
        || load.get_volatile().ok()?
        || load.get_parent() != store.get_parent()
    {
        return None;
    }
    let only_use = load.get_first_use()?;
    if only_use.get_next_use().is_some() {
        return None;
    }
    let (src, src_offset) = constant_base(pointer_operand(load, 0)?);
    let (dst, dst_offset) = constant_base(pointer_operand(store, 1)?);
    (is_alloca(dst) && is_packet(src)).then_some(Copy {
        load,
        store,
        src,
        src_offset,
        dst,
        dst_offset,
    })
}

/// Copies the consecutive stretches of `run` (same source and destination, both offsets
/// stepping by one) in wide moves.
fn merge_run<'ctx>(module: &Module<'ctx>, builder: &Builder<'ctx>, run: &[Copy<'ctx>]) {
    // In the order of their first copy, so that the object is the same on every run.
    type Group<'c> = ((PointerValue<'c>, PointerValue<'c>, i64), Vec<Copy<'c>>);
    let mut groups: Vec<Group> = Vec::new();
    for &c in run {
        let key = (c.src, c.dst, c.src_offset - c.dst_offset);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, copies)) => copies.push(c),
            None => groups.push((key, vec![c])),
        }
    }
    // Where the moves go: after the run's last store (a block ends in a terminator).
    let Some(at) = run.last().and_then(|c| c.store.get_next_instruction()) else {
        return;
    };
    for (_, mut copies) in groups {
        copies.sort_by_key(|c| c.dst_offset);
        for stretch in copies.chunk_by(|a, b| b.dst_offset == a.dst_offset + 1) {
            move_stretch(module, builder, stretch, at);
        }
    }
}

/// Moves `stretch` in the widest moves the destination's alignment allows, before `at`, and
/// removes the byte copies they replace.
fn move_stretch<'ctx>(
    module: &Module<'ctx>,
    builder: &Builder<'ctx>,
    stretch: &[Copy<'ctx>],
    at: InstructionValue<'ctx>,
) {
    let first = stretch[0];
    let Some(align) = first
        .dst
        .as_instruction()
        .and_then(|a| a.get_alignment().ok())
    else {
        return;
    };
    let ctx = module.get_context();
    let i8t = ctx.i8_type();
    let i64t = ctx.i64_type();
    let mut j = 0usize;
    while j < stretch.len() {
        let dst_offset = first.dst_offset + j as i64;
        let aligned_to = |w: usize| {
            (align as usize) >= w && dst_offset.rem_euclid(w as i64) == 0 && j + w <= stretch.len()
        };
        let Some(width) = [8usize, 4, 2].into_iter().find(|&w| aligned_to(w)) else {
            j += 1;
            continue;
        };
        builder.position_before(&at);
        let ty = match width {
            8 => ctx.i64_type(),
            4 => ctx.i32_type(),
            _ => ctx.i16_type(),
        };
        let src_offset = first.src_offset + j as i64;
        // SAFETY: byte offsets within the objects the copies already read and wrote.
        let moved = unsafe {
            let from = builder.build_gep(
                i8t,
                first.src,
                &[i64t.const_int(src_offset as u64, true)],
                "",
            );
            let to = builder.build_gep(
                i8t,
                first.dst,
                &[i64t.const_int(dst_offset as u64, true)],
                "",
            );
            from.and_then(|from| to.map(|to| (from, to)))
        };
        let Ok((from, to)) = moved else {
            return;
        };
        let Ok(BasicValueEnum::IntValue(word)) = builder.build_load(ty, from, "") else {
            return;
        };
        let Ok(store) = builder.build_store(to, word) else {
            return;
        };
        let _ = store.set_alignment(width as u32);
        if let Some(load) = word.as_instruction() {
            let _ = load.set_alignment(width as u32);
        }
        for c in &stretch[j..j + width] {
            c.store.erase_from_basic_block();
            c.load.erase_from_basic_block();
        }
        j += width;
    }
}
