//! Which arm of a branch the verifier should walk first, for its state pruning.
//!
//! The verifier walks a conditional jump's fall-through first and comes back for the target
//! later. Where the two arms join, the second walk stops early ("safe") only if its state is
//! within one saved by the first: a register or stack slot the first walk knew as a constant
//! cannot cover an unknown value on the second, so everything after the join is verified twice.
//! A zero stored into a map key on one arm and a packet byte on the other is the common case
//! (`protocol: 0` when the inner frame is not IPv4): the zero arm walked first costs a second
//! walk of the lookups, updates and exits after it; walked second, it is pruned at the join.
//!
//! So for a branch whose arms join at phis that take constants from one arm and computed
//! values from the other, the arm with the computed values is the one laid out to fall
//! through. Branches inside loops keep LLVM's order: there the order also decides how
//! iterations converge, which this rule does not model.

use super::llvm_ir::{in_cycle, phis_of, reachable_from, users_of_result};
use inkwell::basic_block::BasicBlock;
use inkwell::values::AsValueRef;
use inkwell::values::{
    BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue, PhiValue,
};
use std::collections::HashSet;

/// How far a phi's value is followed through arithmetic to find what checks it.
const MAX_USES: usize = 32;

/// The phis of one function: for each, its block and, per incoming edge, the block it comes
/// from and whether its value is a constant that sharpens the verifier's state (`None` for
/// undef, which counts either way). Gathered once per function, read for each branch.
pub(super) struct JoinValues<'ctx> {
    phis: Vec<(BasicBlock<'ctx>, Vec<Incoming<'ctx>>)>,
}

/// A phi's incoming edge: where from, and whether a sharpening constant (`None`: undef).
type Incoming<'ctx> = (BasicBlock<'ctx>, Option<bool>);

impl<'ctx> JoinValues<'ctx> {
    pub(super) fn of(f: FunctionValue<'ctx>) -> Self {
        let mut phis = Vec::new();
        for join in f.get_basic_blocks() {
            for phi in phis_of(join) {
                let sharpens = constant_sharpens_state(phi);
                let incoming = (0..phi.count_incoming())
                    .filter_map(|i| phi.get_incoming(i))
                    .map(|(value, from)| {
                        let constant = is_constant(value).map(|c| c && sharpens(value));
                        (from, constant)
                    })
                    .collect();
                phis.push((join, incoming));
            }
        }
        JoinValues { phis }
    }
}

/// The successor of `b`'s conditional branch whose values at the join are less known to the
/// verifier, if the phis after the branch tell the two arms apart that way.
pub(super) fn general_successor<'ctx>(
    joins: &JoinValues<'ctx>,
    b: BasicBlock<'ctx>,
) -> Option<BasicBlock<'ctx>> {
    let t = b.get_terminator()?;
    if t.get_opcode() != InstructionOpcode::Br || t.get_num_operands() != 3 {
        return None;
    }
    let arms = [t.get_operand(1)?.block()?, t.get_operand(2)?.block()?];
    if arms[0] == arms[1] || in_cycle(b) {
        return None;
    }
    // The blocks each arm leads to (the branch is in no cycle, so neither leads back to it).
    let reached = arms.map(|arm| reachable_from(&[arm]).into_iter().collect::<HashSet<_>>());
    // The arm an edge `from -> join` of a join both arms reach belongs to: `from` is the branch
    // itself and `join` that arm, or only that arm leads to `from`.
    let arm_of = |from: BasicBlock<'ctx>, join: BasicBlock<'ctx>| {
        if !(reached[0].contains(&join) && reached[1].contains(&join)) {
            return None;
        }
        (0..2).find(|&k| {
            if from == b {
                join == arms[k]
            } else {
                reached[k].contains(&from) && !reached[1 - k].contains(&from)
            }
        })
    };
    // Phis that take a constant only from arm k and computed values only from the other.
    let mut constant_from = [0usize; 2];
    for (join, incoming) in &joins.phis {
        let mut kinds: [Option<bool>; 2] = [None, None];
        for &(from, constant) in incoming {
            let (Some(k), Some(constant)) = (arm_of(from, *join), constant) else {
                continue;
            };
            kinds[k] = match kinds[k] {
                None => Some(constant),
                Some(c) if c == constant => Some(c),
                // Both kinds from one arm: this phi says nothing.
                Some(_) => {
                    kinds = [Some(true), Some(true)];
                    break;
                }
            };
        }
        match kinds {
            [Some(true), Some(false)] => constant_from[0] += 1,
            [Some(false), Some(true)] => constant_from[1] += 1,
            _ => {}
        }
    }
    match constant_from[0].cmp(&constant_from[1]) {
        std::cmp::Ordering::Greater => Some(arms[1]),
        std::cmp::Ordering::Less => Some(arms[0]),
        std::cmp::Ordering::Equal => None,
    }
}

/// For a phi, whether a constant it takes keeps the verifier from pruning where an unknown
/// value would not: a zero stored to the stack (a slot known to be zero), or a value a
/// comparison, an address or a call argument uses (the verifier tracks those precisely). Any
/// other constant ends as an unknown byte in memory or a register nothing checks.
fn constant_sharpens_state(phi: PhiValue<'_>) -> impl Fn(BasicValueEnum<'_>) -> bool {
    let mut zero_stored = false;
    let mut checked = false;
    let mut work = vec![phi.as_instruction()];
    let mut seen = HashSet::new();
    while let Some(i) = work.pop() {
        if !seen.insert(i) || seen.len() > MAX_USES {
            continue;
        }
        for user in users_of_result(i) {
            match user.get_opcode() {
                // The value stored, straight from the phi (a narrow slot of a computed zero is
                // no longer known to be zero); a phi that is the address is checked.
                InstructionOpcode::Store if stores_value(user, i) => {
                    zero_stored |= i == phi.as_instruction()
                }
                InstructionOpcode::ZExt
                | InstructionOpcode::SExt
                | InstructionOpcode::Trunc
                | InstructionOpcode::And
                | InstructionOpcode::Or
                | InstructionOpcode::Xor
                | InstructionOpcode::Shl
                | InstructionOpcode::LShr
                | InstructionOpcode::AShr
                | InstructionOpcode::Add
                | InstructionOpcode::Sub
                | InstructionOpcode::Mul
                | InstructionOpcode::Phi => work.push(user),
                _ => checked = true,
            }
        }
    }
    move |v| checked || (zero_stored && is_zero(v))
}

/// Whether `store` stores the value `i` (rather than storing to it).
fn stores_value(store: InstructionValue<'_>, i: InstructionValue<'_>) -> bool {
    store
        .get_operand(0)
        .and_then(|o| o.value())
        .is_some_and(|v| v.as_value_ref() == i.as_value_ref())
}

fn is_zero(v: BasicValueEnum<'_>) -> bool {
    match v {
        BasicValueEnum::IntValue(i) => i.get_zero_extended_constant() == Some(0),
        BasicValueEnum::PointerValue(p) => p.is_null(),
        _ => false,
    }
}

/// Whether the verifier knows `v` exactly where it is set; `None` for undef, which is left to
/// the register allocator and counts either way.
fn is_constant(v: BasicValueEnum<'_>) -> Option<bool> {
    match v {
        BasicValueEnum::IntValue(i) if i.is_undef() => None,
        BasicValueEnum::PointerValue(p) if p.is_undef() => None,
        BasicValueEnum::IntValue(i) => Some(i.is_const()),
        BasicValueEnum::PointerValue(p) => Some(p.is_const()),
        _ => Some(false),
    }
}
