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

use super::llvm_ir::{
    bool_constant, calls_intrinsic, instructions, phis_of, redirect, remap_incoming, successors,
    users_of_result,
};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    AsValueRef, BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue, IntValue,
};
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
            let known: HashMap<_, bool> = phis
                .iter()
                .filter_map(|phi| {
                    let value = phi.get_incoming(
                        (0..phi.count_incoming())
                            .find(|&k| phi.get_incoming(k).is_some_and(|(_, b)| b == from))?,
                    )?;
                    Some((phi.as_value_ref(), flag_constant(value.0)?))
                })
                .collect();
            if known.is_empty() {
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

/// How many successor slots `b`'s terminator has (a block listed twice would be two edges).
fn branch_targets(b: BasicBlock<'_>) -> usize {
    b.get_terminator()
        .map_or(0, |t| t.get_num_operands().saturating_sub(1) as usize)
}

fn flag_constant(v: BasicValueEnum<'_>) -> Option<bool> {
    match v {
        BasicValueEnum::IntValue(i) => bool_constant(i),
        _ => None,
    }
}

/// The one block every path from `join` reaches first outside the blocks that only compute,
/// where the flags in `known` decide the branches they can, and the blocks passed on the way.
fn sole_exit<'ctx>(
    join: BasicBlock<'ctx>,
    known: &HashMap<LLVMValueRef, bool>,
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

/// `cond`'s value where the flags in `known` have theirs, if they decide it.
fn evaluate(cond: IntValue<'_>, known: &HashMap<LLVMValueRef, bool>, depth: u32) -> Option<bool> {
    const DEPTH: u32 = 8;
    if let Some(&v) = known.get(&cond.as_value_ref()) {
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
        _ => None,
    }
}
