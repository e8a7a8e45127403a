//! Equality tests between two runs of bytes in memory compare words too.
//!
//! `ip6->daddr == echo6.addr` or `eth->src == gateway_mac` is an element-by-element loop that
//! LLVM unrolls into one byte compare per element, each side a byte load (the configuration's
//! bytes through a phi that falls back to zero when its lookup fails); C compares two `u64`s.
//! A test of `x == y` where `x` and `y` are loaded at the same distance from two bases, run
//! after run, becomes a test of the widest words both sides may read there: a stack side only
//! aligned words inside its slot, a packet, global or map-value side any word over bytes the
//! tests read (the kernel reads those unaligned).
//!
//! A side may also be a phi of the same bytes loaded on every edge (GVN leaves one where a branch
//! that calls a helper or writes other memory joins the path that did not): when nothing wrote
//! them since, they are read again where the test is.

use super::super::llvm_ir::{constant_base, is_alloca, is_packet, pointer_operand};
use super::{
    compared, equality, int_value, unwritten_after, unwritten_between, unwritten_since,
    Predecessors,
};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::targets::TargetData;
use inkwell::values::{
    AsValueRef, BasicValue, BasicValueEnum, InstructionOpcode, InstructionValue, IntValue,
    PhiValue, PointerValue,
};

/// What one side of a compared pair reads.
#[derive(Clone, Copy)]
pub(super) enum Side<'ctx> {
    /// Bytes loaded at `offset` from `base`.
    Loaded {
        load: InstructionValue<'ctx>,
        base: PointerValue<'ctx>,
        offset: i64,
    },
    /// A phi that takes bytes loaded at `offset` from `base` on one edge (`from`) and a constant
    /// on each other edge: a read that falls back to a default.
    Joined {
        phi: PhiValue<'ctx>,
        from: BasicBlock<'ctx>,
        load: InstructionValue<'ctx>,
        base: PointerValue<'ctx>,
        offset: i64,
    },
    /// A phi that takes bytes loaded at `offset` from `base` on every edge.
    Reloaded {
        phi: PhiValue<'ctx>,
        base: PointerValue<'ctx>,
        offset: i64,
    },
}

impl<'ctx> Side<'ctx> {
    fn offset(&self) -> i64 {
        match *self {
            Side::Loaded { offset, .. }
            | Side::Joined { offset, .. }
            | Side::Reloaded { offset, .. } => offset,
        }
    }

    fn base(&self) -> PointerValue<'ctx> {
        match *self {
            Side::Loaded { base, .. } | Side::Joined { base, .. } | Side::Reloaded { base, .. } => {
                base
            }
        }
    }

    /// Which bytes it reads (and, for a phi, over which edge into which block): equal for the
    /// sides of one run.
    fn stream(&self) -> (usize, usize, usize) {
        match *self {
            Side::Loaded { base, .. } | Side::Reloaded { base, .. } => {
                (base.as_value_ref() as usize, 0, 0)
            }
            Side::Joined {
                phi, from, base, ..
            } => {
                let joins_in = phi.as_instruction().get_parent();
                (
                    base.as_value_ref() as usize,
                    from.as_mut_ptr() as usize,
                    joins_in.map_or(0, |b| b.as_mut_ptr() as usize),
                )
            }
        }
    }
}

/// `x == y` (or `!=`, as the conjunction asks) of two sides of `width` bytes.
#[derive(Clone, Copy)]
pub(super) struct Pair<'ctx> {
    pub(super) a: Side<'ctx>,
    pub(super) b: Side<'ctx>,
    width: u32,
}

/// What testing one pair, or one word of both sides, costs: a load per side and a jump.
pub(super) const PAIR_COST: u32 = 3;

impl<'ctx> Pair<'ctx> {
    /// Whether nothing may have written the bytes where their words will be read: at `at` for
    /// a loaded side, at the end of its block for a joined one.
    pub(super) fn unwritten(&self, at: InstructionValue<'ctx>, preds: &Predecessors<'ctx>) -> bool {
        [self.a, self.b].iter().all(|s| match *s {
            Side::Loaded { load, .. } => unwritten_since(load, at, preds),
            Side::Joined {
                from, load, base, ..
            } => from
                .get_terminator()
                .is_some_and(|term| unwritten_between(Some(load), term, Some(base))),
            Side::Reloaded { phi, base, .. } => {
                let incoming_unwritten = (0..phi.count_incoming()).all(|k| {
                    let Some((value, from)) = phi.get_incoming(k) else {
                        return false;
                    };
                    let (Some(load), Some(term)) =
                        (value.as_instruction_value(), from.get_terminator())
                    else {
                        return false;
                    };
                    unwritten_since(load, term, preds)
                });
                incoming_unwritten && unwritten_after(phi.as_instruction(), Some(base), at, preds)
            }
        })
    }

    /// Whether both sides can be read at a chain's head: `above` says whether a definition is
    /// at the head or above it; `stack_only` that packet bytes are not proved there.
    pub(super) fn movable(
        &self,
        stack_only: bool,
        above: impl Fn(Option<InstructionValue<'ctx>>) -> bool,
    ) -> bool {
        [self.a, self.b].iter().all(|s| match *s {
            Side::Loaded { load, base, .. } => {
                above(base.as_instruction())
                    && if is_packet(base) {
                        !stack_only
                    } else if is_alloca(base) || base.as_instruction().is_none() {
                        true
                    } else {
                        // Readable where it was read (a map value after its null test).
                        above(Some(load))
                    }
            }
            Side::Joined { phi, .. } => above(Some(phi.as_instruction())),
            Side::Reloaded { phi, base, .. } => {
                above(Some(phi.as_instruction())) && !(stack_only && is_packet(base))
            }
        })
    }
}

/// `v` as a pair: `icmp eq x, y` (`holds_when` true) or `ne` (false) of two sides.
pub(super) fn pair(v: IntValue<'_>, holds_when: bool) -> Option<Pair<'_>> {
    let (x, y) = compared(v, holds_when)?;
    let width = match x.get_type().get_bit_width() {
        8 => 1,
        16 => 2,
        32 => 4,
        _ => return None,
    };
    Some(Pair {
        a: side(x)?,
        b: side(y)?,
        width,
    })
}

fn side(v: IntValue<'_>) -> Option<Side<'_>> {
    let i = v.as_instruction()?;
    match i.get_opcode() {
        InstructionOpcode::Load => {
            let (base, offset) = loaded_at(i)?;
            Some(Side::Loaded {
                load: i,
                base,
                offset,
            })
        }
        InstructionOpcode::Phi => {
            let phi = PhiValue::try_from(i).ok()?;
            joined(phi).or_else(|| reloaded(phi))
        }
        _ => None,
    }
}

/// `phi` as a load on one edge, constants on the others.
fn joined(phi: PhiValue<'_>) -> Option<Side<'_>> {
    let mut loaded = None;
    for k in 0..phi.count_incoming() {
        let (value, from) = phi.get_incoming(k)?;
        let BasicValueEnum::IntValue(value) = value else {
            return None;
        };
        if value.is_constant_int() {
            continue;
        }
        let load = value.as_instruction()?;
        if loaded.is_some() || load.get_parent() != Some(from) {
            return None;
        }
        let (base, offset) = loaded_at(load)?;
        loaded = Some((from, load, base, offset));
    }
    let (from, load, base, offset) = loaded?;
    Some(Side::Joined {
        phi,
        from,
        load,
        base,
        offset,
    })
}

/// `phi` as loads of the same bytes on every edge. (The base is on every path into the phi's
/// block, since each edge's load uses it.)
fn reloaded(phi: PhiValue<'_>) -> Option<Side<'_>> {
    let mut at = None;
    for k in 0..phi.count_incoming() {
        let (value, _) = phi.get_incoming(k)?;
        let place = loaded_at(value.as_instruction_value()?)?;
        if at.is_some_and(|a| a != place) {
            return None;
        }
        at = Some(place);
    }
    let (base, offset) = at?;
    Some(Side::Reloaded { phi, base, offset })
}

fn loaded_at(load: InstructionValue<'_>) -> Option<(PointerValue<'_>, i64)> {
    if load.get_opcode() != InstructionOpcode::Load || load.get_volatile().unwrap_or(true) {
        return None;
    }
    Some(constant_base(pointer_operand(load, 0)?))
}

/// Whether a word of `width` bytes at `offset` may be read from what `side` reads.
fn readable(side: &Side<'_>, offset: i64, width: u32, layout: &TargetData) -> bool {
    let base = side.base();
    if width == 1 {
        return true;
    }
    if let Some(alloca) = base.as_instruction().filter(|_| is_alloca(base)) {
        let (Ok(ty), Ok(align)) = (alloca.get_allocated_type(), alloca.get_alignment()) else {
            return false;
        };
        let size = layout.get_store_size(&ty) as i64;
        let w = i64::from(width);
        return offset >= 0 && offset % w == 0 && offset + w <= size && width <= align;
    }
    // The packet, a global, a map value: the kernel reads them unaligned.
    is_packet(base) || base.as_instruction().is_none() || is_call(base)
}

fn is_call(p: PointerValue<'_>) -> bool {
    p.as_instruction()
        .is_some_and(|i| i.get_opcode() == InstructionOpcode::Call)
}

/// One word compared of both sides: `width` bytes from the first pair of a run on.
pub(super) struct PairWord<'ctx> {
    first: Pair<'ctx>,
    /// Bytes from the first pair's offsets.
    skip: i64,
    width: u32,
    /// For a joined side: the constants its phi takes per edge, combined over the word.
    constants: [Vec<(BasicBlock<'ctx>, u64)>; 2],
}

/// The words that test every pair, and what they cost; `None` when a pair cannot be tested at
/// the chain's head.
pub(super) fn plan<'ctx>(
    pairs: &[Pair<'ctx>],
    layout: &TargetData,
) -> Option<(Vec<PairWord<'ctx>>, u32)> {
    // Pairs over the same two streams, in the order their first pair came (`x == y` and
    // `y == x` alike), then by distance, width and offset.
    let mut leaders: Vec<Pair> = Vec::new();
    let mut keyed = Vec::new();
    for &p in pairs {
        let streams = (p.a.stream(), p.b.stream());
        let swapped = Pair {
            a: p.b,
            b: p.a,
            width: p.width,
        };
        let (rank, p) = match leaders
            .iter()
            .position(|l| (l.a.stream(), l.b.stream()) == streams)
        {
            Some(r) => (r, p),
            None => match leaders
                .iter()
                .position(|l| (l.b.stream(), l.a.stream()) == streams)
            {
                Some(r) => (r, swapped),
                None => {
                    leaders.push(p);
                    (leaders.len() - 1, p)
                }
            },
        };
        keyed.push((
            (rank, p.b.offset() - p.a.offset(), p.width, p.a.offset()),
            p,
        ));
    }
    keyed.sort_by_key(|k| k.0);
    let sorted: Vec<Pair> = keyed.into_iter().map(|k| k.1).collect();
    let mut words = Vec::new();
    let mut cost = 0;
    let mut k = 0;
    while k < sorted.len() {
        // The run of pairs from `k`: the same streams, byte after byte.
        let first = sorted[k];
        let mut end = k + 1;
        while end < sorted.len() {
            let (prev, next) = (sorted[end - 1], sorted[end]);
            let continues = next.a.stream() == first.a.stream()
                && next.b.stream() == first.b.stream()
                && next.width == first.width
                && next.b.offset() - next.a.offset() == first.b.offset() - first.a.offset()
                && next.a.offset() == prev.a.offset() + i64::from(first.width);
            if !continues {
                break;
            }
            end += 1;
        }
        let run = &sorted[k..end];
        let bytes = run.len() as i64 * i64::from(first.width);
        let mut skip = 0;
        while skip < bytes {
            let rest = bytes - skip;
            // A last stretch narrower than a word but not a word's size (3, 5, 6, 7 bytes) is
            // one word ending where the run ends, over bytes the word before compared too.
            let overlapping = (skip > 0 && rest < 8 && !(rest as u64).is_power_of_two())
                .then(|| (rest as u64).next_power_of_two() as u32)
                .map(|w| (bytes - i64::from(w), w))
                .filter(|&(at, w)| {
                    at % i64::from(first.width) == 0
                        && readable(&first.a, first.a.offset() + at, w, layout)
                        && readable(&first.b, first.b.offset() + at, w, layout)
                });
            let (at, width) = match overlapping {
                Some(word) => word,
                None => {
                    let width = [8u32, 4, 2, 1]
                        .into_iter()
                        .filter(|&w| w >= first.width && i64::from(w) <= rest)
                        .find(|&w| {
                            readable(&first.a, first.a.offset() + skip, w, layout)
                                && readable(&first.b, first.b.offset() + skip, w, layout)
                        })?;
                    (skip, width)
                }
            };
            let members =
                &run[(at / i64::from(first.width)) as usize..][..(width / first.width) as usize];
            let constants = [
                combined_constants(members, first.width, |p| p.a)?,
                combined_constants(members, first.width, |p| p.b)?,
            ];
            words.push(PairWord {
                first,
                skip: at,
                width,
                constants,
            });
            cost += PAIR_COST;
            skip = at + i64::from(width);
        }
        k = end;
    }
    Some((words, cost))
}

/// The constants a joined side's phis take on each constant edge, combined over `members`
/// (little-endian, as the word is loaded). Empty for a loaded side.
fn combined_constants<'ctx>(
    members: &[Pair<'ctx>],
    width: u32,
    side: impl Fn(&Pair<'ctx>) -> Side<'ctx>,
) -> Option<Vec<(BasicBlock<'ctx>, u64)>> {
    let Side::Joined { phi, from, .. } = side(&members[0]) else {
        return Some(Vec::new());
    };
    let mut out: Vec<(BasicBlock, u64)> = Vec::new();
    for k in 0..phi.count_incoming() {
        let block = phi.get_incoming(k)?.1;
        if block == from {
            continue;
        }
        let mut word = 0u64;
        for (j, m) in members.iter().enumerate() {
            let Side::Joined { phi, .. } = side(m) else {
                return None;
            };
            let c = (0..phi.count_incoming())
                .filter_map(|n| phi.get_incoming(n))
                .find(|(_, b)| *b == block)?
                .0
                .into_int_value()
                .get_zero_extended_constant()?;
            word |= c << (8 * j as u32 * width);
        }
        out.push((block, word));
    }
    Some(out)
}

/// Compares `w`'s words of both sides before `builder`'s position; `holds_when` says `==` or
/// `!=`.
pub(super) fn build<'ctx>(
    builder: &Builder<'ctx>,
    at: InstructionValue<'ctx>,
    w: &PairWord<'ctx>,
    holds_when: bool,
) -> Option<IntValue<'ctx>> {
    let a = read_side(builder, at, &w.first.a, w.skip, w.width, &w.constants[0])?;
    let b = read_side(builder, at, &w.first.b, w.skip, w.width, &w.constants[1])?;
    builder.position_before(&at);
    builder
        .build_int_compare(equality(holds_when), a, b, "pair")
        .ok()
}

fn read_side<'ctx>(
    builder: &Builder<'ctx>,
    at: InstructionValue<'ctx>,
    side: &Side<'ctx>,
    skip: i64,
    width: u32,
    constants: &[(BasicBlock<'ctx>, u64)],
) -> Option<IntValue<'ctx>> {
    let ctx = at.get_parent()?.get_context();
    let ty = match width {
        1 => ctx.i8_type(),
        2 => ctx.i16_type(),
        4 => ctx.i32_type(),
        _ => ctx.i64_type(),
    };
    let load_word = |base: PointerValue<'ctx>, offset: i64| -> Option<IntValue<'ctx>> {
        let offset = ctx.i64_type().const_int((offset + skip) as u64, true);
        // SAFETY: bytes the pair's loads read, at the same object.
        let address = unsafe { builder.build_gep(ctx.i8_type(), base, &[offset], "pair") }.ok()?;
        let load = builder.build_load(ty, address, "pair").ok()?;
        // Aligned on the stack (checked); the kernel reads the others unaligned, which LLVM
        // would otherwise split into bytes.
        load.as_instruction_value()?.set_alignment(width).ok()?;
        Some(load.into_int_value())
    };
    match *side {
        Side::Loaded { base, offset, .. } | Side::Reloaded { base, offset, .. } => {
            builder.position_before(&at);
            load_word(base, offset)
        }
        Side::Joined {
            phi,
            from,
            base,
            offset,
            ..
        } => {
            let term = from.get_terminator()?;
            builder.position_before(&term);
            let loaded = load_word(base, offset)?;
            let home = phi.as_instruction().get_parent()?;
            builder.position_before(&home.get_first_instruction()?);
            let joined = builder.build_phi(ty, "pair").ok()?;
            joined.add_incoming(&[(&loaded, from)]);
            for &(block, c) in constants {
                joined.add_incoming(&[(&ty.const_int(c, false), block)]);
            }
            int_value(joined.as_instruction())
        }
    }
}
