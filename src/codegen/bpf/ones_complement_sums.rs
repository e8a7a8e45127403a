//! A one's-complement sum of byte-swapped words is summed as the words lie in memory.
//!
//! `sum = sum + ntohs(words[i])` (or `hdr[2*i] * 256 + hdr[2*i+1]`, which `byte_numbers`
//! turns into the same swap), folded twice (`(sum & 0xffff) + (sum >> 16)`) and compared with
//! `0xffff` or complemented and stored back with `htons`: each word costs a `be16` that the C
//! twin does not pay, because a one's-complement sum commutes with swapping the bytes of every
//! word (RFC 1071): 2^16 ≡ 1 (mod 0xffff), so a swapped word is its value times 256 modulo
//! 0xffff, and the twice-folded sum, which lies in 0..=0xffff and is 0 only for a sum of
//! zeros, is that residue's one representative. So the sum of the unswapped words, folded the
//! same way, is the byte swap of the original result.
//!
//! This pass finds the two folds, walks the sum back through `add`s and phis to its terms, and
//! when every term can be expressed unswapped (a swapped word loses its swap; a constant is
//! swapped; an unswapped word or a byte gains a swap or a shift) and every use of the folded
//! result can take the swapped value (a comparison with a constant compares with the swapped
//! constant; masks and complements swap their constants; a `bswap` of it cancels; a store
//! stores it swapped), it rewrites them, if that removes more swaps than it adds (terms in a
//! loop weigh more). The identity needs the sum not to wrap: the number of terms it may add,
//! loop trip counts included, must be at most 65537.

use super::llvm_ir::{
    bswap_operand, build_bswap, calls_intrinsic, erase_all_dead, in_cycle, instructions,
    int_operand, loop_of, phis_of, replace_all_uses, successors, swap_bytes, upper_bound,
    users_of_result,
};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    AnyValue, AsValueRef, BasicValue, InstructionOpcode, InstructionValue, IntValue, PhiValue,
};
use inkwell::IntPredicate;
use std::collections::{HashMap, HashSet};

/// The most terms a 32-bit sum of 16-bit words can add without wrapping.
const MOST_TERMS: u64 = 65537;
/// How much more a term or use inside a loop weighs than one outside.
const LOOP_WEIGHT: i64 = 8;
/// How many values the walk back from a sum looks at before giving up.
const MOST_NODES: usize = 256;

pub fn sum_unswapped(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        // Found first: a rewrite erases swaps, shifts and extensions, never a fold.
        let folds: Vec<InstructionValue> = f
            .get_basic_blocks()
            .into_iter()
            .flat_map(instructions)
            .filter(|&i| folded(i).is_some() || lossily_folded(i).is_some())
            .collect();
        for fold in folds {
            if let Some(plan) = Plan::of_first_fold(fold) {
                if plan.pays() {
                    plan.apply(module, &builder);
                }
            }
        }
    }
}

/// An operand of an `add` or phi inside the sum: where a term enters it.
#[derive(Clone, Copy)]
struct Slot<'ctx> {
    user: InstructionValue<'ctx>,
    index: u32,
}

/// What a term becomes when the sum is taken unswapped.
enum Term<'ctx> {
    /// A 16-bit word, zero-extended: the word in the other byte order, zero-extended.
    Word(Swap16<'ctx>),
    /// `b << 8` with `b` at most 0xff: `b`.
    HighByte(IntValue<'ctx>),
    /// A value at most 0xff: shifted into the high byte.
    LowByte(IntValue<'ctx>),
    /// Any other value at most 0xffff: its low 16 bits swapped.
    Narrow(IntValue<'ctx>),
    /// A constant: each 16-bit half swapped, and the two added (2^16 ≡ 1 modulo 0xffff).
    Constant(u64),
}

/// How a 16-bit value is had in the other byte order.
enum Swap16<'ctx> {
    /// `bswap(x)`: `x`.
    Unswap(IntValue<'ctx>),
    /// A constant, already swapped.
    Constant(u64),
    /// `x op k` (`and`, `or`, `xor`): `swapped(x) op swapped(k)`.
    Mask {
        op: InstructionOpcode,
        value: Box<Swap16<'ctx>>,
        k: u64,
    },
    /// `(high << 8) | low` of two zero-extended bytes: `(low << 8) | high`.
    Bytes {
        high: IntValue<'ctx>,
        low: IntValue<'ctx>,
    },
    /// `zext(b) << 8`: `zext(b)`.
    LowByte(IntValue<'ctx>),
    /// `zext(b)`: `zext(b) << 8`.
    HighByte(IntValue<'ctx>),
    /// Anything else: a `bswap` of it.
    Swap(IntValue<'ctx>),
}

impl<'ctx> Swap16<'ctx> {
    /// How `x` is swapped, and the swaps that saves (negative: costs). `alone`: `x` is used
    /// only by what is being rewritten, so what computes it may go.
    fn plan(x: IntValue<'ctx>, alone: bool) -> (Self, i64) {
        if let Some(c) = x.get_zero_extended_constant() {
            return (Swap16::Constant(swap_bytes(c, 16)), 0);
        }
        if let Some(unswapped) = bswap_operand(x) {
            let goes = alone
                && x.as_instruction()
                    .is_some_and(|s| users_of_result(s).len() == 1);
            return (Swap16::Unswap(unswapped), i64::from(goes));
        }
        if let Some(i) = x.as_instruction().filter(|_| alone) {
            if let Some((high, low)) = byte_pair(i) {
                return (Swap16::Bytes { high, low }, 0);
            }
            if let Some(b) = high_byte(i) {
                return (Swap16::LowByte(b), 1);
            }
            if let Some(b) = zero_extended_byte(i) {
                return (Swap16::HighByte(b), -1);
            }
            let op = i.get_opcode();
            if matches!(
                op,
                InstructionOpcode::And | InstructionOpcode::Or | InstructionOpcode::Xor
            ) && users_of_result(i).len() == 1
            {
                if let (Some(k), Some(inner)) = (
                    int_operand(i, 1).and_then(|k| k.get_zero_extended_constant()),
                    int_operand(i, 0),
                ) {
                    let (value, units) = Swap16::plan(inner, true);
                    let value = Box::new(value);
                    return (Swap16::Mask { op, value, k }, units);
                }
            }
        }
        (Swap16::Swap(x), -1)
    }

    fn build(&self, module: &Module<'ctx>, builder: &Builder<'ctx>) -> Option<IntValue<'ctx>> {
        let i16t = module.get_context().i16_type();
        Some(match self {
            Swap16::Unswap(x) => *x,
            Swap16::Constant(c) => i16t.const_int(*c, false),
            Swap16::Mask { op, value, k } => {
                let (x, k) = (
                    value.build(module, builder)?,
                    i16t.const_int(swap_bytes(*k, 16), false),
                );
                match op {
                    InstructionOpcode::And => builder.build_and(x, k, "word"),
                    InstructionOpcode::Or => builder.build_or(x, k, "word"),
                    _ => builder.build_xor(x, k, "word"),
                }
                .ok()?
            }
            Swap16::Bytes { high, low } => {
                let low = builder.build_int_z_extend(*low, i16t, "byte").ok()?;
                let shifted = builder
                    .build_left_shift(low, i16t.const_int(8, false), "byte")
                    .ok()?;
                let high = builder.build_int_z_extend(*high, i16t, "byte").ok()?;
                builder.build_or(shifted, high, "word").ok()?
            }
            Swap16::LowByte(b) => builder.build_int_z_extend(*b, i16t, "byte").ok()?,
            Swap16::HighByte(b) => {
                let b = builder.build_int_z_extend(*b, i16t, "byte").ok()?;
                builder
                    .build_left_shift(b, i16t.const_int(8, false), "byte")
                    .ok()?
            }
            Swap16::Swap(x) => build_bswap(module, builder, *x)?,
        })
    }
}

/// `b` when `i` is `zext(b) << 8` on 16 bits.
fn high_byte(i: InstructionValue<'_>) -> Option<IntValue<'_>> {
    let by = int_operand(i, 1)?.get_zero_extended_constant()?;
    if i.get_opcode() != InstructionOpcode::Shl || by != 8 || value_width(i) != 16 {
        return None;
    }
    zero_extended_byte(int_operand(i, 0)?.as_instruction()?)
}

/// `b` when `i` is `zext(b)` of a byte.
fn zero_extended_byte(i: InstructionValue<'_>) -> Option<IntValue<'_>> {
    let b = int_operand(i, 0)?;
    (i.get_opcode() == InstructionOpcode::ZExt && b.get_type().get_bit_width() == 8).then_some(b)
}

/// The bytes `(high, low)` when `i` is `(zext(high) << 8) | zext(low)` on 16 bits.
fn byte_pair<'ctx>(i: InstructionValue<'ctx>) -> Option<(IntValue<'ctx>, IntValue<'ctx>)> {
    if i.get_opcode() != InstructionOpcode::Or || value_width(i) != 16 {
        return None;
    }
    (0..2).find_map(|k| {
        let high = high_byte(int_operand(i, k)?.as_instruction()?)?;
        let low = zero_extended_byte(int_operand(i, 1 - k)?.as_instruction()?)?;
        Some((high, low))
    })
}

/// How the rewritten value of a use relates to the value the program computed there.
#[derive(Clone, Copy, PartialEq)]
enum Relation {
    /// Both at most 0xffff, one the other's 16-bit byte swap.
    Exact,
    /// The low 16 bits are each other's byte swap; the bits above may differ.
    Low16,
}

/// A change to the uses of the folded result.
enum UseChange<'ctx> {
    /// Operand `index` of `user` becomes this constant.
    Constant {
        user: InstructionValue<'ctx>,
        index: u32,
        value: u64,
    },
    /// A `bswap` of a rewritten 16-bit value: the value itself.
    Cancel(InstructionValue<'ctx>),
    /// A store of a rewritten 16-bit value: stores it swapped.
    StoreSwapped(InstructionValue<'ctx>),
}

struct Plan<'ctx> {
    /// The `add`s and phis that make up the sum.
    inner: Vec<InstructionValue<'ctx>>,
    terms: Vec<(Slot<'ctx>, Term<'ctx>)>,
    /// `xor`/`and`/`or` with a constant between a term and the sum: their constants swap.
    term_masks: Vec<(InstructionValue<'ctx>, u32, u64)>,
    uses: Vec<UseChange<'ctx>>,
    /// Swaps and shifts removed minus those added, loop-weighted.
    gain: i64,
}

impl<'ctx> Plan<'ctx> {
    /// The plan for a sum whose first fold is `fold`, when the whole rewrite is sound.
    fn of_first_fold(fold: InstructionValue<'ctx>) -> Option<Self> {
        let (sum, lossy) = match folded(fold) {
            Some(sum) => (sum, false),
            None => (lossily_folded(fold)?, true),
        };
        if sum.get_type().get_bit_width() != 32 {
            return None;
        }
        let mut plan = Plan {
            inner: Vec::new(),
            terms: Vec::new(),
            term_masks: Vec::new(),
            uses: Vec::new(),
            gain: 0,
        };
        let mut walk = SumWalk::default();
        walk.collect(sum, None, &mut plan)?;
        let fold_users = if lossy {
            vec![int_operand(fold, 0)?.as_instruction()?, fold]
                .into_iter()
                .chain(int_operand(fold, 1)?.as_instruction())
                .filter(|&i| Some(i) != sum.as_instruction())
                .collect()
        } else {
            fold_parts(fold)
        };
        walk.check_users(sum, &fold_users)?;
        let terms = walk.most_terms(sum, &mut Vec::new())?.0;
        if terms > MOST_TERMS {
            return None;
        }
        let most = terms * 0xffff;
        let (result, relation) = if lossy {
            (fold_bound(most) <= 0xffff).then_some((fold, Relation::Low16))?
        } else {
            fold_chain(fold, fold_bound(most))?
        };
        plan.relate_uses(result, relation)?;
        plan.inner = walk.inner.into_iter().collect();
        Some(plan)
    }

    fn pays(&self) -> bool {
        self.gain > 0
    }

    /// Follows the folded result through its users, planning how each takes the swapped value.
    fn relate_uses(&mut self, value: InstructionValue<'ctx>, relation: Relation) -> Option<()> {
        for user in users_of_result(value) {
            let weight = weight_of(user);
            let width = value_width(user);
            match user.get_opcode() {
                InstructionOpcode::ICmp if relation == Relation::Exact => {
                    if !matches!(
                        user.get_icmp_predicate(),
                        Some(IntPredicate::EQ | IntPredicate::NE)
                    ) {
                        return None;
                    }
                    let (index, k) = constant_operand(user, value)?;
                    if k <= 0xffff {
                        self.uses.push(UseChange::Constant {
                            user,
                            index,
                            value: swap_bytes(k, 16),
                        });
                    }
                }
                InstructionOpcode::And | InstructionOpcode::Or | InstructionOpcode::Xor => {
                    let (index, k) = constant_operand(user, value)?;
                    let high = k & !0xffff;
                    let and = is_and(user);
                    // Low16: the bits above are unknown, so only a mask that clears them helps.
                    if relation == Relation::Low16 && and && high != 0 {
                        return None;
                    }
                    self.uses.push(UseChange::Constant {
                        user,
                        index,
                        value: high | swap_bytes(k, 16),
                    });
                    let exact = width == 16 || and || relation == Relation::Exact && high == 0;
                    let next = if exact {
                        Relation::Exact
                    } else {
                        Relation::Low16
                    };
                    self.relate_uses(user, next)?;
                }
                InstructionOpcode::Trunc if width == 16 => {
                    self.relate_uses(user, Relation::Exact)?;
                }
                InstructionOpcode::ZExt => self.relate_uses(user, relation)?,
                InstructionOpcode::Call
                    if calls_intrinsic(user, "llvm.bswap") && value_width(value) == 16 =>
                {
                    self.uses.push(UseChange::Cancel(user));
                    self.gain += weight;
                }
                InstructionOpcode::Store
                    if value_width(value) == 16
                        && int_operand(user, 0).and_then(|v| v.as_instruction()) == Some(value)
                        && int_operand(user, 1).is_none() =>
                {
                    self.uses.push(UseChange::StoreSwapped(user));
                    self.gain -= weight;
                }
                _ => return None,
            }
        }
        Some(())
    }

    fn apply(self, module: &Module<'ctx>, builder: &Builder<'ctx>) {
        let mut replaced = Vec::new();
        for (slot, term) in &self.terms {
            position_for(builder, *slot);
            let Some(old) = slot.user.get_operand(slot.index).and_then(|o| o.value()) else {
                continue;
            };
            let ty = old.into_int_value().get_type();
            let new = match *term {
                Term::Constant(c) => {
                    let swapped = swap_bytes(c & 0xffff, 16) + swap_bytes(c >> 16, 16);
                    Some(ty.const_int(swapped, false))
                }
                Term::Word(ref word) => word
                    .build(module, builder)
                    .and_then(|w| builder.build_int_z_extend(w, ty, "word").ok()),
                Term::HighByte(b) if b.get_type() == ty => Some(b),
                Term::HighByte(b) => builder.build_int_z_extend(b, ty, "byte").ok(),
                Term::LowByte(b) => builder
                    .build_left_shift(b, ty.const_int(8, false), "byte")
                    .ok(),
                Term::Narrow(v) => {
                    let i16t = module.get_context().i16_type();
                    builder
                        .build_int_truncate(v, i16t, "word")
                        .ok()
                        .and_then(|w| build_bswap(module, builder, w))
                        .and_then(|w| builder.build_int_z_extend(w, ty, "word").ok())
                }
            };
            if let Some(new) = new {
                slot.user.set_operand(slot.index, new);
                replaced.extend(old.as_instruction_value());
            }
        }
        // The no-wrap flags LLVM proved for the swapped terms are not proofs for the others.
        for add in self
            .inner
            .iter()
            .filter(|i| i.get_opcode() != InstructionOpcode::Phi)
        {
            // SAFETY: `add` is a live `add`, `shl` or `mul`.
            unsafe {
                llvm_sys::core::LLVMSetNUW(add.as_value_ref(), 0);
                llvm_sys::core::LLVMSetNSW(add.as_value_ref(), 0);
            }
        }
        for &(mask, index, k) in &self.term_masks {
            let ty = mask.get_type().into_int_type();
            mask.set_operand(index, ty.const_int(swap_bytes(k, 16), false));
        }
        for change in self.uses {
            match change {
                UseChange::Constant { user, index, value } => {
                    let Some(old) = int_operand(user, index) else {
                        continue;
                    };
                    user.set_operand(index, old.get_type().const_int(value, false));
                }
                UseChange::Cancel(swap) => {
                    if let Some(x) = int_operand(swap, 0) {
                        replace_all_uses(swap, x);
                        replaced.push(swap);
                    }
                }
                UseChange::StoreSwapped(store) => {
                    builder.position_before(&store);
                    if let Some(v) = int_operand(store, 0) {
                        if let Some(s) = build_bswap(module, builder, v) {
                            store.set_operand(0, s);
                        }
                    }
                }
            }
        }
        // (Together: one old term may be another's operand, or the same value in two places.)
        erase_all_dead(&replaced);
    }
}

/// The sum's values, walked back from the folded sum to its terms.
#[derive(Default)]
struct SumWalk<'ctx> {
    /// The `add`s and phis that make up the sum.
    inner: HashSet<InstructionValue<'ctx>>,
    /// Terms as they enter, by the instruction they enter (the bound counts them).
    term_slots: HashMap<(InstructionValue<'ctx>, u32), u64>,
    visited: usize,
}

impl<'ctx> SumWalk<'ctx> {
    /// Plans the terms under `v`, which enters the sum at `slot` (none for the sum itself).
    fn collect(
        &mut self,
        v: IntValue<'ctx>,
        slot: Option<Slot<'ctx>>,
        plan: &mut Plan<'ctx>,
    ) -> Option<()> {
        self.visited += 1;
        if self.visited > MOST_NODES {
            return None;
        }
        if let Some(i) = v.as_instruction() {
            if self.inner.contains(&i) {
                return Some(());
            }
            // A partial sum used for something else as well is a term of this one.
            let inner = (is_sum_node(i)
                && (slot.is_none() || users_of_result(i).into_iter().all(is_sum_node)))
                && i.get_type().into_int_type().get_bit_width() == 32;
            if inner {
                self.inner.insert(i);
                // A scaling's factor is no term.
                let operands = if scale(i).is_some() {
                    1
                } else {
                    i.get_num_operands()
                };
                for index in 0..operands {
                    let Some(operand) = int_operand(i, index) else {
                        continue;
                    };
                    self.collect(operand, Some(Slot { user: i, index }), plan)?;
                }
                return Some(());
            }
        }
        let slot = slot?;
        let (slot_in_sum, (slot, term, units)) = (slot, term(v, slot, plan)?);
        // A constant above 0xffff is two words, its high and low halves.
        let words = match term {
            Term::Constant(c) if c > 0xffff => 2,
            _ => 1,
        };
        self.term_slots
            .insert((slot_in_sum.user, slot_in_sum.index), words);
        plan.gain += weight_of(slot.user) * units;
        plan.terms.push((slot, term));
        Some(())
    }

    /// Every value inside the sum is used only inside it, the sum also by its fold.
    fn check_users(&self, sum: IntValue<'ctx>, fold: &[InstructionValue<'ctx>]) -> Option<()> {
        let sum = sum.as_instruction()?;
        for &i in &self.inner {
            let outside =
                |u: &InstructionValue| !(self.inner.contains(u) || i == sum && fold.contains(u));
            if users_of_result(i).iter().any(outside) {
                return None;
            }
        }
        Some(())
    }

    /// How many terms `v` may have added (and the phis on `stack` its value goes round), or
    /// none when a loop it goes round has no bound.
    fn most_terms(
        &self,
        v: IntValue<'ctx>,
        stack: &mut Vec<InstructionValue<'ctx>>,
    ) -> Option<(u64, HashSet<InstructionValue<'ctx>>)> {
        let Some(i) = v.as_instruction().filter(|i| self.inner.contains(i)) else {
            return Some((1, HashSet::new()));
        };
        if stack.contains(&i) {
            return Some((0, HashSet::from([i])));
        }
        stack.push(i);
        let mut reached = HashSet::new();
        let count = if let Some(factor) = scale(i) {
            let (n, r) = self.operand_terms(i, 0, stack)?;
            reached.extend(r);
            n.saturating_mul(factor)
        } else if i.get_opcode() == InstructionOpcode::Add {
            let mut total = 0u64;
            for index in 0..2 {
                let (n, r) = self.operand_terms(i, index, stack)?;
                total = total.saturating_add(n);
                reached.extend(r);
            }
            total
        } else {
            let (mut outside, mut around) = (0u64, None::<u64>);
            for index in 0..i.get_num_operands() {
                let (n, mut r) = self.operand_terms(i, index, stack)?;
                if r.remove(&i) {
                    around = Some(around.unwrap_or(0).max(n));
                } else {
                    outside = outside.max(n);
                }
                reached.extend(r);
            }
            match around {
                Some(each) => {
                    let trips = trip_bound(i.get_parent()?)?;
                    outside.saturating_add(trips.saturating_mul(each))
                }
                None => outside,
            }
        };
        stack.pop();
        Some((count, reached))
    }

    fn operand_terms(
        &self,
        i: InstructionValue<'ctx>,
        index: u32,
        stack: &mut Vec<InstructionValue<'ctx>>,
    ) -> Option<(u64, HashSet<InstructionValue<'ctx>>)> {
        let operand = int_operand(i, index)?;
        if let Some(&words) = self.term_slots.get(&(i, index)) {
            return Some((words, HashSet::new()));
        }
        self.most_terms(operand, stack)
    }
}

/// Whether `i` can be part of a sum: an `add`, a phi or a scaling.
fn is_sum_node(i: InstructionValue<'_>) -> bool {
    matches!(
        i.get_opcode(),
        InstructionOpcode::Add | InstructionOpcode::Phi
    ) || scale(i).is_some()
}

/// The factor when `i` scales a part of the sum by a small constant (`2 * x`, `x << 1`): as
/// many copies of its terms.
fn scale(i: InstructionValue<'_>) -> Option<u64> {
    const MOST_FACTOR: u64 = 16;
    let k = int_operand(i, 1)?.get_zero_extended_constant()?;
    let factor = match i.get_opcode() {
        InstructionOpcode::Shl if k < 5 => 1 << k,
        InstructionOpcode::Mul if k <= MOST_FACTOR => k,
        _ => return None,
    };
    Some(factor)
}

/// What term `v`, entering at `slot`, becomes unswapped, the slot it is replaced at (past masks
/// with a constant, which are planned to swap their constants) and the swaps that saves.
fn term<'ctx>(
    v: IntValue<'ctx>,
    slot: Slot<'ctx>,
    plan: &mut Plan<'ctx>,
) -> Option<(Slot<'ctx>, Term<'ctx>, i64)> {
    if let Some(c) = v.get_zero_extended_constant() {
        return (c <= u64::from(u32::MAX)).then_some((slot, Term::Constant(c), 0));
    }
    let i = v.as_instruction()?;
    let (found, units) = match i.get_opcode() {
        InstructionOpcode::ZExt => {
            let x = int_operand(i, 0)?;
            match x.get_type().get_bit_width() {
                16 => {
                    let (word, units) = Swap16::plan(x, users_of_result(i).len() == 1);
                    (Term::Word(word), units)
                }
                8 => (Term::LowByte(v), -1),
                _ => return None,
            }
        }
        InstructionOpcode::Shl => {
            let b = int_operand(i, 0)?;
            let by = int_operand(i, 1)?.get_zero_extended_constant()?;
            if by != 8 || upper_bound(b)? > 0xff {
                return None;
            }
            (Term::HighByte(b), 1)
        }
        InstructionOpcode::And | InstructionOpcode::Or | InstructionOpcode::Xor
            if users_of_result(i).len() == 1 =>
        {
            let (index, k) = (0..2).find_map(|n| {
                let c = int_operand(i, n)?.get_zero_extended_constant()?;
                Some((n, c))
            })?;
            let inner = Slot {
                user: i,
                index: 1 - index,
            };
            let found = term(int_operand(i, inner.index)?, inner, plan)?;
            if k > 0xffff || matches!(found.1, Term::Constant(_)) {
                return None;
            }
            plan.term_masks.push((i, index, k));
            return Some(found);
        }
        _ => match upper_bound(v)? {
            0..=0xff => (Term::LowByte(v), -1),
            0x100..=0xffff => (Term::Narrow(v), -1),
            _ => return None,
        },
    };
    Some((slot, found, units))
}

/// `x` when `fold` is `(x & 0xffff) + (x >> 16)`, either way round.
fn folded(fold: InstructionValue<'_>) -> Option<IntValue<'_>> {
    if fold.get_opcode() != InstructionOpcode::Add {
        return None;
    }
    let (a, b) = (
        int_operand(fold, 0)?.as_instruction()?,
        int_operand(fold, 1)?.as_instruction()?,
    );
    let (low, high) = if is_and(a) { (a, b) } else { (b, a) };
    let x = masked_low_half(low)?;
    (shifted_high_half(high)? == x).then_some(x)
}

/// The `and` and `lshr` that a fold adds.
fn fold_parts(fold: InstructionValue<'_>) -> Vec<InstructionValue<'_>> {
    (0..2)
        .filter_map(|k| int_operand(fold, k)?.as_instruction())
        .collect()
}

/// The folds after `first` (whose value is at most `most`) and what the last yields: the
/// canonical sum (`Exact`), or a value whose low 16 bits are it (`Low16`: `f + (f >> 16)`, as
/// LLVM leaves a fold whose high bits are cut off). None if the folds may leave it above 0xffff.
fn fold_chain(
    first: InstructionValue<'_>,
    mut most: u64,
) -> Option<(InstructionValue<'_>, Relation)> {
    let mut value = first;
    loop {
        let users = users_of_result(value);
        let exact = users.iter().find_map(|&u| {
            let fold = *users_of_result(u).first()?;
            let value = value.as_any_value_enum().into_int_value();
            (folded(fold) == Some(value) && users_are(u, &[fold])).then_some(fold)
        });
        if let Some(fold) = exact.filter(|&f| users_are(value, &fold_parts(f))) {
            value = fold;
            most = fold_bound(most);
            continue;
        }
        let lossy = users
            .iter()
            .copied()
            .find(|&u| lossily_folded(u).and_then(|x| x.as_instruction()) == Some(value));
        if let Some(fold) = lossy {
            let shift = (0..2).find_map(|k| {
                int_operand(fold, k)?
                    .as_instruction()
                    .filter(|&i| i != value)
            })?;
            return (users_are(value, &[shift, fold]) && fold_bound(most) <= 0xffff)
                .then_some((fold, Relation::Low16));
        }
        return (most <= 0xffff).then_some((value, Relation::Exact));
    }
}

/// The most a fold of a value at most `most` can yield.
fn fold_bound(most: u64) -> u64 {
    match most {
        0..=0xffff => most,
        // (x - 0x10000) + 1, at most 0xffff.
        0x10000..=0x1fffe => 0xffff,
        _ => 0xffff + (most >> 16),
    }
}

/// `x` when `fold` is `x + (x >> 16)`, a fold whose high bits do not matter.
fn lossily_folded(fold: InstructionValue<'_>) -> Option<IntValue<'_>> {
    if fold.get_opcode() != InstructionOpcode::Add {
        return None;
    }
    (0..2).find_map(|k| {
        let shift = int_operand(fold, k)?.as_instruction()?;
        let x = shifted_high_half(shift)?;
        (int_operand(fold, 1 - k)? == x && users_are(shift, &[fold])).then_some(x)
    })
}

/// `x` when `i` is `x & 0xffff`.
fn masked_low_half(i: InstructionValue<'_>) -> Option<IntValue<'_>> {
    if !is_and(i) || int_operand(i, 1)?.get_zero_extended_constant()? != 0xffff {
        return None;
    }
    int_operand(i, 0)
}

/// `x` when `i` is `x >> 16`.
fn shifted_high_half(i: InstructionValue<'_>) -> Option<IntValue<'_>> {
    if i.get_opcode() != InstructionOpcode::LShr
        || int_operand(i, 1)?.get_zero_extended_constant()? != 16
    {
        return None;
    }
    int_operand(i, 0)
}

fn is_and(i: InstructionValue<'_>) -> bool {
    i.get_opcode() == InstructionOpcode::And
}

/// Whether the users of `i` are exactly `expected`.
fn users_are(i: InstructionValue<'_>, expected: &[InstructionValue<'_>]) -> bool {
    let users = users_of_result(i);
    users.len() == expected.len() && users.iter().all(|u| expected.contains(u))
}

/// The constant operand of `user` other than `value`, and its index.
fn constant_operand<'ctx>(
    user: InstructionValue<'ctx>,
    value: InstructionValue<'ctx>,
) -> Option<(u32, u64)> {
    let other =
        (0..2).find(|&k| int_operand(user, k).and_then(|o| o.as_instruction()) != Some(value))?;
    let k = int_operand(user, other)?.get_zero_extended_constant()?;
    Some((other, k))
}

/// The bound on how many times the loop headed by `header` runs its body: its only latch leaves
/// on `iv < n` (or `iv + 1 < n`) for a counter `iv` that starts at 0 and steps by 1, with `n`
/// bounded.
fn trip_bound(header: BasicBlock<'_>) -> Option<u64> {
    let body = loop_of(header);
    let mut latches = body
        .iter()
        .copied()
        .filter(|&b| successors(b).contains(&header));
    let latch = latches.next()?;
    if latches.next().is_some() {
        return None;
    }
    let branch = latch.get_terminator()?;
    if branch.get_opcode() != InstructionOpcode::Br || branch.get_num_operands() != 3 {
        return None;
    }
    let test = int_operand(branch, 0)?.as_instruction()?;
    // A conditional `br` lists its false successor before its true one.
    let stays_if_true = branch
        .get_operand(2)
        .and_then(|o| o.block())
        .is_some_and(|b| body.contains(&b));
    let stays_if_false = branch
        .get_operand(1)
        .and_then(|o| o.block())
        .is_some_and(|b| body.contains(&b));
    if test.get_opcode() != InstructionOpcode::ICmp || stays_if_true == stays_if_false {
        return None;
    }
    let (a, n) = (int_operand(test, 0)?, int_operand(test, 1)?);
    let predicate = test.get_icmp_predicate()?;
    // Normalise to "stays while counter < n".
    let (counter, limit) = match (predicate, stays_if_true) {
        (IntPredicate::ULT | IntPredicate::SLT, true) => (a, n),
        (IntPredicate::UGT | IntPredicate::SGT, true) => (n, a),
        (IntPredicate::UGE | IntPredicate::SGE, false) => (a, n),
        (IntPredicate::ULE | IntPredicate::SLE, false) => (n, a),
        _ => return None,
    };
    let most = upper_bound(limit)?;
    let signed = matches!(
        predicate,
        IntPredicate::SLT | IntPredicate::SGT | IntPredicate::SGE | IntPredicate::SLE
    );
    if signed && most >= 1 << (limit.get_type().get_bit_width() - 1) {
        return None;
    }
    counts_from_zero(counter, header)?;
    most.checked_add(1)
}

/// Some when `v` is a phi of `header` (or that phi plus 1) that starts at 0 and steps by 1.
fn counts_from_zero<'ctx>(v: IntValue<'ctx>, header: BasicBlock<'ctx>) -> Option<()> {
    let phi_of = |x: IntValue<'ctx>| -> Option<PhiValue<'ctx>> {
        let i = x.as_instruction()?;
        (i.get_parent()? == header)
            .then(|| PhiValue::try_from(i).ok())
            .flatten()
    };
    let phi = phi_of(v).or_else(|| {
        let step = v.as_instruction()?;
        (step.get_opcode() == InstructionOpcode::Add
            && int_operand(step, 1)?.get_zero_extended_constant()? == 1)
            .then(|| phi_of(int_operand(step, 0)?))
            .flatten()
    })?;
    if !phis_of(header).contains(&phi) {
        return None;
    }
    let body = loop_of(header);
    for k in 0..phi.count_incoming() {
        let (value, from) = phi.get_incoming(k)?;
        let value = value.into_int_value();
        if body.contains(&from) {
            let step = value.as_instruction()?;
            let steps_by_one = step.get_opcode() == InstructionOpcode::Add
                && int_operand(step, 0)? == phi.as_basic_value().into_int_value()
                && int_operand(step, 1)?.get_zero_extended_constant()? == 1;
            if !steps_by_one {
                return None;
            }
        } else if value.get_zero_extended_constant()? != 0 {
            return None;
        }
    }
    Some(())
}

/// Puts the builder where a new term for `slot` goes: before an `add`, at the end of the
/// incoming block for a phi.
fn position_for<'ctx>(builder: &Builder<'ctx>, slot: Slot<'ctx>) {
    match PhiValue::try_from(slot.user) {
        Ok(phi) => {
            if let Some(end) = phi
                .get_incoming(slot.index)
                .and_then(|(_, from)| from.get_terminator())
            {
                builder.position_before(&end);
            }
        }
        Err(_) => builder.position_before(&slot.user),
    }
}

fn weight_of(i: InstructionValue<'_>) -> i64 {
    if i.get_parent().is_some_and(in_cycle) {
        LOOP_WEIGHT
    } else {
        1
    }
}

fn value_width(i: InstructionValue<'_>) -> u32 {
    match i.get_type() {
        inkwell::types::AnyTypeEnum::IntType(t) => t.get_bit_width(),
        _ => 0,
    }
}
