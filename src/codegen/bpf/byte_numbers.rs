//! Big-endian numbers that LLVM's inlining assembles from adjacent bytes are read as one word.
//!
//! `@helper fn be32(p: *u8) -> u32 { return *p * 16777216 + *(p + 1) * 65536 + … }` called as
//! `be32(data + 26)`: `bounds-check` reads such a number as one load where it sees the bytes'
//! root and offset, but inside the helper `p` is a parameter of unknown alignment, so the helper
//! reads four bytes and shifts and ors them (ten instructions where C's `bpf_ntohl(ip->saddr)`
//! is two). Once LLVM has inlined the helper, the bytes are loads at constant offsets from the
//! caller's pointer. After the pipeline, an `or` tree of shifted byte loads that forms a two,
//! four or eight-byte big-endian number, its loads in one block with nothing written between
//! them, is one load of the word and a byte swap, where the word is as aligned as a C header
//! field would be (see `Residues`). The same number compared for equality with another
//! such number or a constant is compared unswapped.
//!
//! The word is read where the first byte was: the verifier proved every byte readable there
//! (a packet's range changes only at a branch), so it proves the word.

use super::llvm_ir::{
    bswap_operand, build_bswap, constant_base, erase_dead, instructions, int_operand, is_alloca,
    may_write_memory, opaque_operand, pointer_operand, replace_all_uses, swap_bytes,
    users_of_result,
};
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::types::{AnyTypeEnum, IntType};
use inkwell::values::{
    AnyValue, BasicValue, BasicValueEnum, InstructionOpcode, InstructionValue, IntValue,
    PointerValue,
};
use inkwell::IntPredicate;

/// The bytes kernels that check packet alignment assume before the frame, which align the IP
/// header (as `bounds-check`'s byte pairs count them).
const NET_IP_ALIGN: i64 = 2;

pub fn read_words(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        let roots: Vec<InstructionValue> = f
            .get_basic_blocks()
            .into_iter()
            .flat_map(instructions)
            .filter(|&i| is_tree_root(i))
            .collect();
        for root in roots {
            if let Some(number) = Number::of(root) {
                number.read_as_word(module, &builder);
            }
        }
    }
}

/// An `or` that no larger `or` tree takes in.
fn is_tree_root(i: InstructionValue<'_>) -> bool {
    use InstructionOpcode::{Or, Shl, ZExt};
    i.get_opcode() == Or
        && users_of_result(i)
            .iter()
            .all(|u| !matches!(u.get_opcode(), Or | Shl | ZExt))
}

/// A byte load and where the tree shifts it.
struct Byte<'ctx> {
    load: InstructionValue<'ctx>,
    base: PointerValue<'ctx>,
    offset: i64,
    shift: u32,
}

/// A big-endian number of `n` bytes from `base + offset`, shifted up by `shift` bits.
struct Number<'ctx> {
    root: InstructionValue<'ctx>,
    first_load: InstructionValue<'ctx>,
    base: PointerValue<'ctx>,
    offset: i64,
    n: u32,
    shift: u32,
}

impl<'ctx> Number<'ctx> {
    fn of(root: InstructionValue<'ctx>) -> Option<Self> {
        let AnyTypeEnum::IntType(ty) = root.get_type() else {
            return None;
        };
        let mut bytes = Vec::new();
        let value = root.as_any_value_enum().into_int_value();
        collect_bytes(value, &mut bytes, 0)?;
        let n = bytes.len() as u32;
        if !matches!(n, 2 | 4 | 8) {
            return None;
        }
        bytes.sort_by_key(|b| b.offset);
        let first = &bytes[0];
        let shift = bytes[bytes.len() - 1].shift;
        let in_order = bytes.iter().enumerate().all(|(j, b)| {
            b.base == first.base
                && b.offset == first.offset + j as i64
                && b.shift == shift + 8 * (n - 1 - j as u32)
        });
        if !in_order || shift % 8 != 0 || shift + 8 * n > ty.get_bit_width() {
            return None;
        }
        let block = first.load.get_parent()?;
        if bytes.iter().any(|b| b.load.get_parent() != Some(block)) {
            return None;
        }
        // The loads in block order: nothing between the first and the last may write memory.
        let loads: Vec<InstructionValue> = bytes.iter().map(|b| b.load).collect();
        let mut in_block = instructions(block).skip_while(|i| !loads.contains(i));
        let first_load = in_block.next()?;
        let mut left = loads.len() - 1;
        for i in in_block {
            if left == 0 {
                break;
            }
            if loads.contains(&i) {
                left -= 1;
            } else if may_write_memory(i) {
                return None;
            }
        }
        let number = Number {
            root,
            first_load,
            base: first.base,
            offset: first.offset,
            n,
            shift,
        };
        number.is_aligned().then_some(number)
    }

    /// Whether the word is aligned as C would read it: on the stack within an object aligned at
    /// least as much; in the packet at an offset from its start that is a multiple of the width
    /// once the `NET_IP_ALIGN` bytes before the frame are counted (strict-alignment kernels
    /// check packet accesses so). Other memory is left to the bytes.
    fn is_aligned(&self) -> bool {
        let n = i64::from(self.n);
        if is_alloca(self.base) {
            let align = self
                .base
                .as_instruction()
                .and_then(|a| a.get_alignment().ok())
                .unwrap_or(1);
            return i64::from(align) >= n && self.offset % n == 0;
        }
        Residues::default().packet(self.base, 12).is_some_and(|r| {
            r.modulus % n == 0 && (r.value + self.offset + NET_IP_ALIGN).rem_euclid(n) == 0
        })
    }

    fn read_as_word(&self, module: &Module<'ctx>, builder: &Builder<'ctx>) {
        let Some(word) = self.emit(module, builder) else {
            return;
        };
        replace_all_uses(self.root, word);
        compare_unswapped(builder, word);
        erase_dead(self.root);
    }

    /// `bswap(*(uN *)(base + offset))`, widened and shifted to the number's type, before the
    /// first byte's load.
    fn emit(&self, module: &Module<'ctx>, builder: &Builder<'ctx>) -> Option<IntValue<'ctx>> {
        let context = module.get_context();
        let AnyTypeEnum::IntType(ty) = self.root.get_type() else {
            return None;
        };
        let word_type = match self.n {
            2 => context.i16_type(),
            4 => context.i32_type(),
            _ => context.i64_type(),
        };
        builder.position_before(&self.first_load);
        let i8t = context.i8_type();
        let offset = context.i64_type().const_int(self.offset as u64, true);
        // SAFETY: a byte offset within the bytes the tree read.
        let address = unsafe { builder.build_gep(i8t, self.base, &[offset], "word") }.ok()?;
        let load = builder.build_load(word_type, address, "word").ok()?;
        load.as_instruction_value()?.set_alignment(self.n).ok()?;
        let swapped = build_bswap(module, builder, load.into_int_value())?;
        let mut value = resize(builder, swapped, ty)?;
        if self.shift > 0 {
            value = builder
                .build_left_shift(value, ty.const_int(u64::from(self.shift), false), "number")
                .ok()?;
        }
        Some(value)
    }
}

fn resize<'ctx>(
    builder: &Builder<'ctx>,
    v: IntValue<'ctx>,
    ty: IntType<'ctx>,
) -> Option<IntValue<'ctx>> {
    let (from, to) = (v.get_type().get_bit_width(), ty.get_bit_width());
    if from == to {
        Some(v)
    } else if from < to {
        builder.build_int_z_extend(v, ty, "number").ok()
    } else {
        builder.build_int_truncate(v, ty, "number").ok()
    }
}

/// The byte loads of the `or` tree at `v`, each with its shift within `v`; None when a leaf is
/// anything else or a shift moves a byte's bits past its type.
fn collect_bytes<'ctx>(v: IntValue<'ctx>, out: &mut Vec<Byte<'ctx>>, depth: u32) -> Option<()> {
    let i = v.as_instruction()?;
    if depth > 16 || out.len() > 8 {
        return None;
    }
    match i.get_opcode() {
        InstructionOpcode::Or => {
            collect_bytes(int_operand(i, 0)?, out, depth + 1)?;
            collect_bytes(int_operand(i, 1)?, out, depth + 1)
        }
        InstructionOpcode::Shl => {
            let by = int_operand(i, 1)?.get_zero_extended_constant()?;
            let by = u32::try_from(by).ok()?;
            let below = out.len();
            collect_bytes(int_operand(i, 0)?, out, depth + 1)?;
            let bits = v.get_type().get_bit_width();
            for byte in &mut out[below..] {
                byte.shift += by;
                if byte.shift + 8 > bits {
                    return None;
                }
            }
            Some(())
        }
        InstructionOpcode::ZExt => collect_bytes(int_operand(i, 0)?, out, depth + 1),
        InstructionOpcode::Load if v.get_type().get_bit_width() == 8 => {
            if i.get_volatile().unwrap_or(true) {
                return None;
            }
            let (base, offset) = constant_base(pointer_operand(i, 0)?);
            out.push(Byte {
                load: i,
                base,
                offset,
                shift: 0,
            });
            Some(())
        }
        _ => None,
    }
}

/// A value's remainder modulo a power of two: `value` mod `modulus`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Residue {
    value: i64,
    modulus: i64,
}

impl Residue {
    const UNKNOWN: Residue = Residue {
        value: 0,
        modulus: 1,
    };
    /// At most what is needed: an eight-byte word's alignment.
    const MOST: i64 = 8;

    fn known(value: i64, modulus: i64) -> Residue {
        let modulus = modulus.clamp(1, Self::MOST);
        Residue {
            value: value.rem_euclid(modulus),
            modulus,
        }
    }

    fn add(self, other: Residue) -> Residue {
        Residue::known(self.value + other.value, self.modulus.min(other.modulus))
    }

    fn sub(self, other: Residue) -> Residue {
        Residue::known(self.value - other.value, self.modulus.min(other.modulus))
    }

    /// The residue both of two values that may be either have.
    fn join(self, other: Residue) -> Residue {
        let mut modulus = self.modulus.min(other.modulus);
        while modulus > 1 && self.value % modulus != other.value % modulus {
            modulus /= 2;
        }
        Residue::known(self.value, modulus)
    }
}

/// The low bits of packet offsets: where a pointer lies from the packet's start, and the low
/// bits known of an integer, modulo up to 8. A loop's phi has the residue its incoming values
/// share when, assumed of the phi, it reproduces itself round the loop (`rec = rec + 8 + n * 4`
/// from `22 + ihl * 4`: 2 modulo 4 in every round); `assumed` holds those assumptions.
#[derive(Default)]
struct Residues<'ctx> {
    assumed: Vec<(InstructionValue<'ctx>, Residue)>,
}

impl<'ctx> Residues<'ctx> {
    /// Where `p` lies from the packet's start: through byte offsets (constant, or a variable
    /// one whose low bits are known: `ihl * 4`, `l3 + 20`), copies hidden from LLVM, and the
    /// joins of several (a header behind an optional VLAN tag) down to the packet pointer formed
    /// from `ctx->data`.
    fn packet(&mut self, p: PointerValue<'ctx>, depth: u32) -> Option<Residue> {
        let i = p.as_instruction()?;
        if let Some(r) = self.assumed_of(i) {
            return Some(r);
        }
        match i.get_opcode() {
            // `ctx->data`, loaded and widened.
            InstructionOpcode::IntToPtr => {
                let widened = int_operand(i, 0)?.as_instruction()?;
                let field = int_operand(widened, 0)?.as_instruction()?;
                let loaded = matches!(
                    field.get_opcode(),
                    InstructionOpcode::Load | InstructionOpcode::Call
                );
                (widened.get_opcode() == InstructionOpcode::ZExt && loaded)
                    .then_some(Residue::known(0, Residue::MOST))
            }
            InstructionOpcode::GetElementPtr if i.get_num_operands() == 2 => {
                let step = self.int(int_operand(i, 1)?, depth);
                Some(self.packet(pointer_operand(i, 0)?, depth)?.add(step))
            }
            InstructionOpcode::Call => {
                let copied = opaque_operand(i)?;
                self.packet(copied.into_pointer_value(), depth)
            }
            InstructionOpcode::Select if depth > 0 => {
                let a = self.packet(pointer_operand(i, 1)?, depth - 1)?;
                Some(a.join(self.packet(pointer_operand(i, 2)?, depth - 1)?))
            }
            InstructionOpcode::Phi if depth > 0 => {
                self.phi(i, |r, x| r.packet(x.into_pointer_value(), depth - 1))
            }
            _ => None,
        }
    }

    /// The low bits known of an integer.
    fn int(&mut self, v: IntValue<'ctx>, depth: u32) -> Residue {
        if let Some(c) = v.get_sign_extended_constant() {
            return Residue::known(c, Residue::MOST);
        }
        let Some(i) = v.as_instruction() else {
            return Residue::UNKNOWN;
        };
        if let Some(r) = self.assumed_of(i) {
            return r;
        }
        let operand = |k: u32| int_operand(i, k);
        let constant = |k: u32| operand(k).and_then(|c| c.get_sign_extended_constant());
        let mut below = |k: u32| match (operand(k), depth) {
            (Some(x), 1..) => self.int(x, depth - 1),
            _ => Residue::UNKNOWN,
        };
        use InstructionOpcode::*;
        match i.get_opcode() {
            Add => below(0).add(below(1)),
            Sub => match (pointer_difference(i), depth) {
                // `(data + off) - data`: the distance is `off`.
                (Some((a, b)), 1..) => {
                    let a = self.packet(a, depth - 1);
                    let b = self.packet(b, depth - 1);
                    match (a, b) {
                        (Some(a), Some(b)) => a.sub(b),
                        _ => Residue::UNKNOWN,
                    }
                }
                _ => {
                    let (a, b) = (below(0), below(1));
                    a.sub(b)
                }
            },
            Shl => match constant(1) {
                Some(by @ 0..=3) => {
                    let x = below(0);
                    Residue::known(x.value << by, x.modulus << by)
                }
                Some(4..) => Residue::known(0, Residue::MOST),
                _ => Residue::UNKNOWN,
            },
            Mul => match constant(1) {
                Some(c) => {
                    let x = below(0);
                    let factor = 1i64 << c.trailing_zeros().min(3);
                    Residue::known(x.value * c, x.modulus * factor)
                }
                None => Residue::UNKNOWN,
            },
            // Bits the mask clears are known zeros; a run of known low bits from bit 0 is a
            // residue.
            And => match constant(1) {
                Some(mask) => {
                    let x = below(0);
                    let mut modulus = 1;
                    while modulus < Residue::MOST && (mask & modulus == 0 || modulus < x.modulus) {
                        modulus *= 2;
                    }
                    Residue::known(x.value & mask, modulus)
                }
                None => Residue::UNKNOWN,
            },
            // The low bits both operands know.
            Or | Xor => {
                let (a, b) = (below(0), below(1));
                let bits = if i.get_opcode() == Or {
                    a.value | b.value
                } else {
                    a.value ^ b.value
                };
                Residue::known(bits, a.modulus.min(b.modulus))
            }
            ZExt | SExt | Trunc => below(0),
            Call => match (opaque_operand(i), depth) {
                (Some(copied), 1..) => self.int(copied.into_int_value(), depth - 1),
                _ => Residue::UNKNOWN,
            },
            Select if depth > 0 => below(1).join(below(2)),
            Phi if depth > 0 => self
                .phi(i, |r, x| Some(r.int(x.into_int_value(), depth - 1)))
                .unwrap_or(Residue::UNKNOWN),
            _ => Residue::UNKNOWN,
        }
    }

    /// The residue assumed of `phi` while it is being worked out (its value round the loop).
    fn assumed_of(&self, phi: InstructionValue<'ctx>) -> Option<Residue> {
        let assumed = self.assumed.iter().rev().find(|(p, _)| *p == phi)?;
        Some(assumed.1)
    }

    /// The residue `phi`'s incoming values share: the join of the incoming values' residues
    /// under an assumption that reproduces itself — started from the most precise incoming
    /// residue found with nothing assumed (the value entering the loop) and coarsened until the
    /// join under it is the assumption.
    fn phi(
        &mut self,
        phi: InstructionValue<'ctx>,
        mut incoming: impl FnMut(&mut Self, BasicValueEnum<'ctx>) -> Option<Residue>,
    ) -> Option<Residue> {
        let values: Vec<BasicValueEnum<'ctx>> = (0..phi.get_num_operands())
            .filter_map(|k| phi.get_operand(k)?.value())
            .collect();
        self.assumed.push((phi, Residue::UNKNOWN));
        let first: Vec<Option<Residue>> = values.iter().map(|&v| incoming(self, v)).collect();
        self.assumed.pop();
        let mut assumed = first.into_iter().flatten().max_by_key(|r| r.modulus)?;
        // (The modulus halves at least every round that does not settle.)
        for _ in 0..4 {
            self.assumed.push((phi, assumed));
            let mut joined = Some(assumed);
            for &v in &values {
                joined = match (joined, incoming(self, v)) {
                    (Some(j), Some(r)) => Some(j.join(r)),
                    _ => None,
                };
            }
            self.assumed.pop();
            let joined = joined?;
            if joined == assumed {
                return Some(assumed);
            }
            assumed = joined;
        }
        None
    }
}

/// `a` and `b` when `sub` is `ptrtoint(a) - ptrtoint(b)` (a distance between two pointers).
fn pointer_difference<'ctx>(
    sub: InstructionValue<'ctx>,
) -> Option<(PointerValue<'ctx>, PointerValue<'ctx>)> {
    let pointer = |k: u32| {
        let cast = int_operand(sub, k)?.as_instruction()?;
        (cast.get_opcode() == InstructionOpcode::PtrToInt).then(|| pointer_operand(cast, 0))?
    };
    Some((pointer(0)?, pointer(1)?))
}

/// `x` when `v` is `bswap(x)` or its zero extension.
fn unswapped(v: IntValue<'_>) -> Option<IntValue<'_>> {
    let i = v.as_instruction()?;
    match i.get_opcode() {
        InstructionOpcode::ZExt => bswap_operand(int_operand(i, 0)?),
        _ => bswap_operand(v),
    }
}

/// `bswap(a) == bswap(b)` is `a == b`, and `bswap(a) == C` is `a == bswap(C)` (each side
/// perhaps zero-extended): equality tests of a number just read are made on the word as loaded
/// (InstCombine folds these, but it has run).
fn compare_unswapped<'ctx>(builder: &Builder<'ctx>, number: IntValue<'ctx>) {
    let Some(raw) = unswapped(number) else {
        return;
    };
    let bits = raw.get_type().get_bit_width();
    for test in users_of_result(number.as_instruction().expect("built")) {
        let equality = matches!(
            test.get_icmp_predicate(),
            Some(IntPredicate::EQ | IntPredicate::NE)
        );
        if test.get_opcode() != InstructionOpcode::ICmp || !equality {
            continue;
        }
        let (Some(a), Some(b)) = (int_operand(test, 0), int_operand(test, 1)) else {
            continue;
        };
        let other = if a == number { b } else { a };
        let ty = other.get_type();
        let replacement = match other.get_zero_extended_constant() {
            // (A constant wider than the word is never equal: left as it is.)
            Some(c) if bits == 64 || c >> bits == 0 => {
                Some(ty.const_int(swap_bytes(c, bits), false))
            }
            Some(_) => None,
            None => unswapped(other).filter(|o| o.get_type() == raw.get_type()),
        };
        let Some(replacement) = replacement else {
            continue;
        };
        builder.position_before(&test);
        let (Some(lhs), Some(rhs)) = (resize(builder, raw, ty), resize(builder, replacement, ty))
        else {
            continue;
        };
        test.set_operand(0, lhs);
        test.set_operand(1, rhs);
    }
    if let Some(i) = number.as_instruction() {
        erase_dead(i);
    }
}

#[cfg(test)]
mod tests {
    use super::Residue;

    #[test]
    fn residues_add_and_join() {
        let ihl4 = Residue::known(0, 4);
        let eth = Residue::known(14, 8);
        assert_eq!(ihl4.add(eth), Residue::known(2, 4));
        // 14 or 18 (an optional VLAN tag): both 2 mod 4, not the same mod 8.
        assert_eq!(
            Residue::known(14, 8).join(Residue::known(18, 8)),
            Residue::known(2, 4)
        );
        assert_eq!(
            Residue::known(1, 8).join(Residue::known(2, 8)),
            Residue::UNKNOWN
        );
    }
}
