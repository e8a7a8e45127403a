//! Numbers spelled from adjacent stack bytes are read as one aligned word.
//!
//! `vni = b[4] * 65536 + b[5] * 256 + b[6]` over a buffer `bpf_skb_load_bytes` filled is three
//! byte loads, two shifts and two `or`s; C reads `bpf_ntohl(*(u32 *)&b[4]) >> 8`. LLVM combines
//! such bytes itself only into a whole aligned word of two, four or eight bytes. After its
//! pipeline, an `or`/`add` tree of adjacent stack bytes, weighed big- or little-endian, that
//! LLVM leaves alone becomes one load of the smallest aligned word around them that lies inside
//! the stack object, byte-swapped for big-endian, shifted and masked to the bytes it spelled.
//! Every byte of a KernelScript local is written before it is read (locals start zeroed, or a
//! helper fills them), so the word's extra bytes are initialised. The bytes and the tree lie in
//! one block with nothing in between that writes memory.

use super::llvm_ir::{
    constant_base, erase_dead, instructions, is_alloca, may_write_memory, pointer_operand,
    still_in, users_of_result,
};
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::targets::TargetData;
use inkwell::types::{BasicType, IntType};
use inkwell::values::{
    AnyValue, BasicValue, BasicValueEnum, InstructionOpcode, InstructionValue, IntValue,
    PointerValue,
};

pub fn widen_stack_numbers(module: &Module) {
    let builder = module.get_context().create_builder();
    let layout = TargetData::create(module.get_data_layout().as_str().to_str().unwrap_or(""));
    for f in module.get_functions() {
        for block in f.get_basic_blocks() {
            for root in instructions(block).collect::<Vec<_>>() {
                if !still_in(block, root) {
                    continue;
                }
                if let Some(number) = stack_number(root, &layout) {
                    rewrite(module, &builder, &number);
                }
            }
        }
    }
}

/// A byte of a stack object in a number: the load, its offset in the object and its weight
/// (the number is the sum of `byte << 8 * weight`).
struct WeighedByte<'ctx> {
    load: InstructionValue<'ctx>,
    offset: i64,
    weight: u32,
}

/// `root`, an `or`/`add` tree of `bytes` that reads them as one word would, from `window`
/// bytes at `start` in `object`.
struct StackNumber<'ctx> {
    root: InstructionValue<'ctx>,
    object: PointerValue<'ctx>,
    /// The lowest offset of the bytes and how many there are.
    first: i64,
    count: u32,
    big_endian: bool,
    start: i64,
    window: u32,
}

fn stack_number<'ctx>(
    root: InstructionValue<'ctx>,
    layout: &TargetData,
) -> Option<StackNumber<'ctx>> {
    if !is_sum(root) || users_of_result(root).iter().any(|&u| is_sum(u)) {
        return None;
    }
    let BasicValueEnum::IntValue(value) = root_value(root)? else {
        return None;
    };
    let mut bytes = Vec::new();
    let mut object = None;
    if !weigh(value.into(), 0, &mut bytes, &mut object) {
        return None;
    }
    let object = object?;
    bytes.sort_by_key(|b| b.offset);
    let count = u32::try_from(bytes.len()).ok()?;
    let first = bytes[0].offset;
    let adjacent = bytes.iter().zip(0..).all(|(b, k)| b.offset == first + k);
    let big_endian = bytes
        .iter()
        .zip(0..)
        .all(|(b, k)| b.weight + k == count - 1);
    let little_endian = bytes.iter().zip(0..).all(|(b, k)| b.weight == k);
    if !adjacent || !(big_endian || little_endian) || !(3..=7).contains(&count) {
        return None;
    }
    if value.get_type().get_bit_width() < 8 * count {
        return None;
    }
    let block = root.get_parent()?;
    if bytes.iter().any(|b| b.load.get_parent() != Some(block))
        || !nothing_written_between(bytes.iter().map(|b| b.load), root)
    {
        return None;
    }
    let alloca = object.as_instruction()?;
    let size = i64::try_from(layout.get_store_size(&alloca.get_allocated_type().ok()?)).ok()?;
    let align = i64::from(alloca.get_alignment().ok()?);
    // LLVM reads a whole aligned word itself.
    let aligned_whole = count.is_power_of_two() && first % i64::from(count) == 0;
    if aligned_whole {
        return None;
    }
    let (start, window) = [4u32, 8]
        .into_iter()
        .filter(|&w| w >= count)
        .find_map(|w| {
            let w64 = i64::from(w);
            let lowest = (first + i64::from(count) - w64).max(0);
            (lowest..=first)
                .rev()
                .find(|s| s % w64 == 0 && s + w64 <= size && w64 <= align)
                .map(|s| (s, w))
        })?;
    Some(StackNumber {
        root,
        object,
        first,
        count,
        big_endian,
        start,
        window,
    })
}

fn is_sum(i: InstructionValue<'_>) -> bool {
    matches!(
        i.get_opcode(),
        InstructionOpcode::Or | InstructionOpcode::Add
    )
}

fn root_value(i: InstructionValue<'_>) -> Option<BasicValueEnum<'_>> {
    BasicValueEnum::try_from(i.as_any_value_enum()).ok()
}

/// Collects the bytes of `v` at `weight` and above; false when a leaf is not a stack byte of the
/// one object, or when a shift or sum is too narrow to hold the byte where it puts it.
fn weigh<'ctx>(
    v: BasicValueEnum<'ctx>,
    weight: u32,
    bytes: &mut Vec<WeighedByte<'ctx>>,
    object: &mut Option<PointerValue<'ctx>>,
) -> bool {
    weigh_within(v, weight, u32::MAX, bytes, object)
}

/// `weigh`, where no byte may end up weighing more than `heaviest` (what the narrowest value on
/// the way holds).
fn weigh_within<'ctx>(
    v: BasicValueEnum<'ctx>,
    weight: u32,
    heaviest: u32,
    bytes: &mut Vec<WeighedByte<'ctx>>,
    object: &mut Option<PointerValue<'ctx>>,
) -> bool {
    let Some(i) = v.as_instruction_value() else {
        return false;
    };
    let BasicValueEnum::IntValue(x) = v else {
        return false;
    };
    let bytes_held = x.get_type().get_bit_width() / 8;
    if bytes_held == 0 {
        return false;
    }
    let heaviest = heaviest.min(weight + bytes_held - 1);
    if bytes.len() > 8 || weight > heaviest {
        return false;
    }
    let operand = |k| i.get_operand(k).and_then(|o| o.value());
    let constant = |k| match operand(k) {
        Some(BasicValueEnum::IntValue(c)) => c.get_zero_extended_constant(),
        _ => None,
    };
    let mut below = |x, w| weigh_within(x, w, heaviest, bytes, object);
    match i.get_opcode() {
        InstructionOpcode::Or | InstructionOpcode::Add => match (operand(0), operand(1)) {
            (Some(a), Some(b)) => below(a, weight) && below(b, weight),
            _ => false,
        },
        InstructionOpcode::Shl => match (operand(0), constant(1)) {
            (Some(x), Some(bits)) if bits % 8 == 0 && bits < 64 => {
                below(x, weight + bits as u32 / 8)
            }
            _ => false,
        },
        InstructionOpcode::Mul => match (operand(0), constant(1)) {
            (Some(x), Some(c)) if c.is_power_of_two() && c.trailing_zeros() % 8 == 0 => {
                below(x, weight + c.trailing_zeros() / 8)
            }
            _ => false,
        },
        InstructionOpcode::ZExt => operand(0).is_some_and(|x| below(x, weight)),
        InstructionOpcode::Load => {
            let Some(pointer) = pointer_operand(i, 0)
                .filter(|_| x.get_type().get_bit_width() == 8 && !i.get_volatile().unwrap_or(true))
            else {
                return false;
            };
            let (base, offset) = constant_base(pointer);
            if !is_alloca(base) || *object.get_or_insert(base) != base {
                return false;
            }
            if bytes.iter().any(|b| b.offset == offset) {
                return false;
            }
            bytes.push(WeighedByte {
                load: i,
                offset,
                weight,
            });
            true
        }
        _ => false,
    }
}

/// Whether nothing from the first of `loads` up to `root` (one block) may write memory.
fn nothing_written_between<'ctx>(
    loads: impl Iterator<Item = InstructionValue<'ctx>>,
    root: InstructionValue<'ctx>,
) -> bool {
    let loads: Vec<_> = loads.collect();
    let Some(block) = root.get_parent() else {
        return false;
    };
    let mut started = false;
    for i in instructions(block) {
        if i == root {
            return started || loads.is_empty();
        }
        started |= loads.contains(&i);
        if started && may_write_memory(i) {
            return false;
        }
    }
    false
}

fn rewrite<'ctx>(module: &Module<'ctx>, builder: &Builder<'ctx>, n: &StackNumber<'ctx>) {
    let ctx = module.get_context();
    let word_ty = if n.window == 8 {
        ctx.i64_type()
    } else {
        ctx.i32_type()
    };
    builder.position_before(&n.root);
    let offset = ctx.i64_type().const_int(n.start as u64, false);
    // SAFETY: the word lies inside the stack object (checked against its size).
    let address = unsafe { builder.build_gep(ctx.i8_type(), n.object, &[offset], "word") }
        .expect("positioned");
    let load = builder
        .build_load(word_ty, address, "word")
        .expect("positioned");
    if let Some(i) = load.as_instruction_value() {
        let _ = i.set_alignment(n.window);
    }
    let mut word = load.into_int_value();
    let end = n.first + i64::from(n.count);
    let shift = if n.big_endian {
        word = byte_swap(module, builder, word);
        8 * (n.start + i64::from(n.window) - end)
    } else {
        8 * (n.first - n.start)
    };
    if shift > 0 {
        let bits = word_ty.const_int(shift as u64, false);
        word = builder
            .build_right_shift(word, bits, false, "word")
            .expect("positioned");
    }
    let spare_high = if n.big_endian {
        n.start < n.first
    } else {
        end < n.start + i64::from(n.window)
    };
    if spare_high {
        let mask = word_ty.const_int(u64::MAX >> (64 - 8 * n.count), false);
        word = builder.build_and(word, mask, "word").expect("positioned");
    }
    let root_ty: IntType = match root_value(n.root) {
        Some(BasicValueEnum::IntValue(v)) => v.get_type(),
        _ => return,
    };
    let value: IntValue = if root_ty.get_bit_width() > 8 * n.window {
        builder.build_int_z_extend(word, root_ty, "word")
    } else if root_ty.get_bit_width() < 8 * n.window {
        builder.build_int_truncate(word, root_ty, "word")
    } else {
        Ok(word)
    }
    .expect("positioned");
    super::llvm_ir::replace_all_uses(n.root, value);
    erase_dead(n.root);
}

fn byte_swap<'ctx>(
    module: &Module<'ctx>,
    builder: &Builder<'ctx>,
    word: IntValue<'ctx>,
) -> IntValue<'ctx> {
    let ty = word.get_type();
    let bswap = inkwell::intrinsics::Intrinsic::find("llvm.bswap")
        .and_then(|i| i.get_declaration(module, &[ty.as_basic_type_enum()]))
        .expect("llvm.bswap exists for every integer width that is a whole number of bytes");
    builder
        .build_call(bswap, &[word.into()], "word")
        .expect("positioned")
        .try_as_basic_value()
        .basic()
        .expect("bswap returns its operand's type")
        .into_int_value()
}
