//! A path on which a boolean phi is a constant that decides where the tests after it lead jumps
//! there at once.
//!
//! `var link_local = a[0] == 0xfe && (a[1] & 0xc0) == 0x80` computed ahead of
//! `if (code != 0 || hop_limit != 255 || !link_local || …) { throw … }` leaves a flag phi
//! (`true` where `a[0] != 0xfe` already said "not link-local") that LLVM folds into the `||`
//! with `select`s. C's `||` would have left at the first failing test; here each path carries
//! its flag through the remaining tests, and the verifier walks them once per value of it. Where
//! every path from the phi's block, with the flag as that edge gives it, reaches one block, and
//! the blocks in between only compute (loads, compares, logic: nothing written, nothing called),
//! the edge goes to that block instead. LLVM's JumpThreading threads through one block only, and
//! a `select` chain hides the flag from it.
//!
//! A number a path gives a phi decides tests the same way, with what the tests that led to the
//! path say of the values it is compared with: in `if (budget != 0 && sent[k] >= budget)` the
//! lookup that finds nothing gives the count 0, and `0 >= budget` is false where `budget != 0`
//! led (C jumps on from the null test; kept, the verifier walked what follows once more).

use super::llvm_ir::{
    bool_constant, calls_intrinsic, instructions, int_operand, phis_of, predecessors, redirect,
    remap_incoming, successors, users_of_result,
};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    AsValueRef, BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue, IntValue,
    PhiValue,
};
use inkwell::IntPredicate;
use llvm_sys::prelude::LLVMValueRef;
use std::collections::{HashMap, HashSet};

/// How many blocks past the phi's a decided path may run through (the tests of one condition).
const REACH: usize = 6;

pub fn jump_decided_flags(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        // Each jump changes the phis planned on: the next is planned on the new ones.
        while let Some(jump) = plan(f) {
            jump.apply(&builder);
        }
    }
}

/// `from` branches to `join`; with the flags `join`'s phis take from `from`, every path from
/// `join` reaches `to`.
struct Jump<'ctx> {
    from: BasicBlock<'ctx>,
    join: BasicBlock<'ctx>,
    to: BasicBlock<'ctx>,
}

impl<'ctx> Jump<'ctx> {
    fn apply(self, builder: &Builder<'ctx>) {
        let Some(term) = self.from.get_terminator() else {
            return;
        };
        redirect(term, self.join, self.to);
        // `join`'s phis no longer take anything from `from`: each is made again without it.
        for phi in phis_of(self.join) {
            remap_incoming(builder, phi, |b| (b != self.from).then_some(b));
        }
    }
}

fn plan(f: FunctionValue<'_>) -> Option<Jump<'_>> {
    let preds = predecessors(f);
    f.get_basic_blocks().into_iter().find_map(|join| {
        let phis = phis_of(join);
        let froms: Vec<BasicBlock> = phis.first().map_or(Vec::new(), |p| {
            (0..p.count_incoming())
                .filter_map(|k| Some(p.get_incoming(k)?.1))
                .collect()
        });
        froms.into_iter().find_map(|from| {
            // One edge into `join`, so the phis' values on it are the ones from `from`.
            let edges = successors(from).iter().filter(|&&s| s == join).count();
            if edges != 1 || branch_targets(from) != successors(from).len() {
                return None;
            }
            let mut known = Known {
                ranges: edge_facts(from, &preds),
                ..Known::default()
            };
            let facts = known.ranges.len();
            for phi in &phis {
                let Some(BasicValueEnum::IntValue(v)) = incoming_from(*phi, from) else {
                    continue;
                };
                match (bool_constant(v), v.get_zero_extended_constant()) {
                    (Some(flag), _) => {
                        known.flags.insert(phi.as_value_ref(), flag);
                    }
                    // (A number the phi takes from a path: `replies[client]` is 0 where the
                    // lookup found nothing.)
                    (None, Some(c)) if v.get_type().get_bit_width() <= 64 => {
                        known.ranges.insert(phi.as_value_ref(), (c, c));
                    }
                    _ => {}
                }
            }
            if known.flags.is_empty() && known.ranges.len() == facts {
                return None;
            }
            let (to, passed) = sole_exit(join, &known)?;
            (to != join && !passed.contains(&from) && phis_of(to).is_empty()).then_some(Jump {
                from,
                join,
                to,
            })
        })
    })
}

/// The value `phi` takes from `from`.
fn incoming_from<'ctx>(
    phi: PhiValue<'ctx>,
    from: BasicBlock<'ctx>,
) -> Option<BasicValueEnum<'ctx>> {
    let k =
        (0..phi.count_incoming()).find(|&k| phi.get_incoming(k).is_some_and(|(_, b)| b == from))?;
    Some(phi.get_incoming(k)?.0)
}

/// How many successor slots `b`'s terminator has (a block listed twice would be two edges).
fn branch_targets(b: BasicBlock<'_>) -> usize {
    b.get_terminator()
        .map_or(0, |t| t.get_num_operands().saturating_sub(1) as usize)
}

/// The one block every path from `join` reaches first outside the blocks that only compute,
/// where the flags in `known` decide the branches they can, and the blocks passed on the way.
fn sole_exit<'ctx>(
    join: BasicBlock<'ctx>,
    known: &Known,
) -> Option<(BasicBlock<'ctx>, Vec<BasicBlock<'ctx>>)> {
    let mut passed: Vec<BasicBlock> = Vec::new();
    let mut exits: HashSet<BasicBlock> = HashSet::new();
    let mut work = vec![join];
    let mut decided = false;
    while let Some(b) = work.pop() {
        if passed.contains(&b) || exits.contains(&b) {
            continue;
        }
        if b != join && (!phis_of(b).is_empty() || !only_computes(b)) {
            exits.insert(b);
            continue;
        }
        if b == join && !only_computes(join) {
            return None;
        }
        passed.push(b);
        if passed.len() > REACH {
            return None;
        }
        let term = b.get_terminator()?;
        match term.get_opcode() {
            InstructionOpcode::Br if term.get_num_operands() == 1 => work.push(block(term, 0)?),
            InstructionOpcode::Br => {
                let cond = match term.get_operand(0)?.value()? {
                    BasicValueEnum::IntValue(c) => c,
                    _ => return None,
                };
                // (A conditional `br`'s operands: the condition, then the false and true targets.)
                match evaluate(cond, known, 0) {
                    Some(true) => {
                        decided = true;
                        work.push(block(term, 2)?);
                    }
                    Some(false) => {
                        decided = true;
                        work.push(block(term, 1)?);
                    }
                    None => {
                        work.push(block(term, 1)?);
                        work.push(block(term, 2)?);
                    }
                }
            }
            _ => return None,
        }
    }
    let [to] = exits.into_iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    // What the passed blocks compute must not be needed past them: skipped, it would not exist.
    let used_outside = passed.iter().flat_map(|&b| instructions(b)).any(|i| {
        users_of_result(i)
            .iter()
            .any(|u| u.get_parent().is_some_and(|p| !passed.contains(&p)))
    });
    (decided && !used_outside).then_some((to, passed))
}

fn block(term: InstructionValue<'_>, k: u32) -> Option<BasicBlock<'_>> {
    term.get_operand(k)?.block()
}

/// Whether `b` only computes values: nothing it runs writes memory, calls or may trap.
fn only_computes(b: BasicBlock<'_>) -> bool {
    use InstructionOpcode::*;
    instructions(b).all(|i| match i.get_opcode() {
        Load => !i.get_volatile().unwrap_or(true),
        Call => calls_intrinsic(i, "llvm.bswap"),
        GetElementPtr | ICmp | Select | Or | And | Xor | Add | Sub | Shl | LShr | AShr | ZExt
        | SExt | Trunc | Phi | BitCast | PtrToInt | IntToPtr | Br => true,
        _ => false,
    })
}

/// What a path into the join knows: the flags its phis take from it, and the unsigned range of
/// numbers — the phis' constants, and values the tests that led to it compared with a constant.
#[derive(Default)]
struct Known {
    flags: HashMap<LLVMValueRef, bool>,
    ranges: HashMap<LLVMValueRef, (u64, u64)>,
}

impl Known {
    /// The unsigned range of `v` (up to 64 bits), where known.
    fn range(&self, v: IntValue<'_>) -> Option<(u64, u64)> {
        if let Some(c) = v.get_zero_extended_constant() {
            return Some((c, c));
        }
        self.ranges.get(&v.as_value_ref()).copied()
    }
}

/// How many single-predecessor steps up from a block its tests are looked for.
const FACT_REACH: usize = 4;

/// What the tests on the way into `b` say of values compared with a constant: `x == K` makes
/// `x` exactly `K`; `x != 0` makes it at least 1. Followed up through blocks with one
/// predecessor, so each test holds wherever `b` runs.
fn edge_facts<'ctx>(
    b: BasicBlock<'ctx>,
    preds: &HashMap<BasicBlock<'ctx>, Vec<BasicBlock<'ctx>>>,
) -> HashMap<LLVMValueRef, (u64, u64)> {
    let mut facts = HashMap::new();
    let mut at = b;
    for _ in 0..FACT_REACH {
        let Some(&[pred]) = preds.get(&at).map(Vec::as_slice) else {
            break;
        };
        let fact = pred.get_terminator().and_then(|t| {
            let BasicValueEnum::IntValue(cond) = t.get_operand(0)?.value()? else {
                return None;
            };
            let cmp = cond.as_instruction()?;
            let (x, k) = match (int_operand(cmp, 0)?, int_operand(cmp, 1)?) {
                (x, k) if k.is_const() && !x.is_const() => (x, k.get_zero_extended_constant()?),
                _ => return None,
            };
            // (A conditional `br` lists its false target before its true one.)
            let taken = block(t, 2)? == at;
            let not_taken = block(t, 1)? == at;
            let holds = match (cmp.get_icmp_predicate()?, taken, not_taken) {
                (IntPredicate::EQ, true, false) | (IntPredicate::NE, false, true) => true,
                (IntPredicate::NE, true, false) | (IntPredicate::EQ, false, true) => false,
                _ => return None,
            };
            let top = u64::MAX >> (64 - x.get_type().get_bit_width().min(64));
            match (holds, k) {
                (true, k) => Some((x, (k, k))),
                (false, 0) => Some((x, (1, top))),
                _ => None,
            }
        });
        if let Some((x, range)) = fact {
            facts.entry(x.as_value_ref()).or_insert(range);
        }
        at = pred;
    }
    facts
}

/// `cond`'s value where what `known` knows decides it.
fn evaluate(cond: IntValue<'_>, known: &Known, depth: u32) -> Option<bool> {
    const DEPTH: u32 = 8;
    if let Some(&v) = known.flags.get(&cond.as_value_ref()) {
        return Some(v);
    }
    if cond.get_type().get_bit_width() != 1 || depth > DEPTH {
        return None;
    }
    if let Some(c) = bool_constant(cond) {
        return Some(c);
    }
    let i = cond.as_instruction()?;
    let operand = |k: u32| match i.get_operand(k)?.value()? {
        BasicValueEnum::IntValue(v) => evaluate(v, known, depth + 1),
        _ => None,
    };
    match i.get_opcode() {
        InstructionOpcode::Select => match operand(0) {
            Some(true) => operand(1),
            Some(false) => operand(2),
            None => operand(1).filter(|&a| operand(2) == Some(a)),
        },
        InstructionOpcode::Or => match (operand(0), operand(1)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        InstructionOpcode::And => match (operand(0), operand(1)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        InstructionOpcode::Xor => Some(operand(0)? != operand(1)?),
        InstructionOpcode::ICmp => {
            let a = known.range(int_operand(i, 0)?)?;
            let b = known.range(int_operand(i, 1)?)?;
            compare_ranges(i.get_icmp_predicate()?, a, b)
        }
        _ => None,
    }
}

/// `a PRED b` for every `a` and `b` in the two unsigned ranges, when it is the same for all.
fn compare_ranges(
    pred: IntPredicate,
    (a_lo, a_hi): (u64, u64),
    (b_lo, b_hi): (u64, u64),
) -> Option<bool> {
    let always = |t: bool, f: bool| match (t, f) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    match pred {
        IntPredicate::ULT => always(a_hi < b_lo, a_lo >= b_hi),
        IntPredicate::ULE => always(a_hi <= b_lo, a_lo > b_hi),
        IntPredicate::UGT => always(a_lo > b_hi, a_hi <= b_lo),
        IntPredicate::UGE => always(a_lo >= b_hi, a_hi < b_lo),
        IntPredicate::EQ => always(
            a_lo == a_hi && b_lo == b_hi && a_lo == b_lo,
            a_hi < b_lo || b_hi < a_lo,
        ),
        IntPredicate::NE => always(
            a_hi < b_lo || b_hi < a_lo,
            a_lo == a_hi && b_lo == b_hi && a_lo == b_lo,
        ),
        _ => None,
    }
}
