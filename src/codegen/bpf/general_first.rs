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

use super::llvm_ir::{
    calls_intrinsic, in_cycle, instructions, int_operand, is_bpf_call, phis_of, reachable_from,
    replace_all_uses, users_of_result,
};
use inkwell::basic_block::BasicBlock;
use inkwell::module::Module;
use inkwell::values::AsValueRef;
use inkwell::values::{
    BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue, IntValue,
};
use inkwell::IntPredicate;
use std::collections::{HashMap, HashSet};

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
                let sharpens = constant_sharpens_state(phi.as_instruction());
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

/// For a value chosen between constants and computed values (a phi, a clamp), whether a
/// constant it takes keeps the verifier from pruning where an unknown value would not: a zero
/// stored to the stack (a slot known to be zero), or a value a comparison, an address or a call
/// argument uses (the verifier tracks those precisely). Any other constant ends as an unknown
/// byte in memory or a register nothing checks.
fn constant_sharpens_state(join: InstructionValue<'_>) -> impl Fn(BasicValueEnum<'_>) -> bool {
    let mut zero_stored = false;
    let mut checked = false;
    let mut work = vec![join];
    let mut seen = HashSet::new();
    while let Some(i) = work.pop() {
        if !seen.insert(i) || seen.len() > MAX_USES {
            continue;
        }
        for user in users_of_result(i) {
            match user.get_opcode() {
                // The value stored, straight from the phi (a narrow slot of a computed zero is
                // no longer known to be zero); a phi that is the address is checked.
                InstructionOpcode::Store if stores_value(user, i) => zero_stored |= i == join,
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

/// A clamp (`n = min(len, 64)`, any of LLVM's min/max intrinsics with a constant) becomes a
/// branch in the back end, `r = x; if x < 64 goto join; r = 64; join:`, and the verifier walks
/// the constant first. The state it saves there (`n == 64`) covers nothing the general walk
/// brings later, so everything after the clamp is walked in full twice. Written as `r = 64; if
/// x > 64 goto join; r = x`, the general value is walked first and the constant's walk is pruned
/// at the join, when `x` is dead there; when `x` lives on (LLVM tests `len` where the source
/// tested `n`), pruning waits until it is dead. Only clamps whose result sizes or becomes data
/// outside loops (`clamps_data`); clamps in loops keep their order, as branches do.
pub(super) fn constants_on_the_jump(module: &Module<'_>) {
    for f in module.get_functions() {
        let mut cyclic: HashMap<BasicBlock, bool> = HashMap::new();
        for b in f.get_basic_blocks() {
            for i in instructions(b).collect::<Vec<_>>() {
                let Some((test, x, c)) = clamp(i) else {
                    continue;
                };
                if !constant_sharpens_state(i)(c.into())
                    || *cyclic.entry(b).or_insert_with(|| in_cycle(b))
                {
                    continue;
                }
                let builder = b.get_context().create_builder();
                builder.position_before(&i);
                let Ok(picks_constant) = builder.build_int_compare(test, x, c, "") else {
                    continue;
                };
                let Ok(clamped) = builder.build_select(picks_constant, c, x, "") else {
                    continue;
                };
                replace_all_uses(i, clamped);
                i.erase_from_basic_block();
            }
        }
    }
}

/// For `umin(x, C)` and its kin: the test of `x` against `C` that picks `C`, `x` and `C`.
fn clamp<'ctx>(
    i: InstructionValue<'ctx>,
) -> Option<(IntPredicate, IntValue<'ctx>, IntValue<'ctx>)> {
    let test = [
        ("llvm.umin.", IntPredicate::UGT),
        ("llvm.umax.", IntPredicate::ULT),
        ("llvm.smin.", IntPredicate::SGT),
        ("llvm.smax.", IntPredicate::SLT),
    ]
    .into_iter()
    .find(|(name, _)| calls_intrinsic(i, name))?
    .1;
    let (x, c) = (int_operand(i, 0)?, int_operand(i, 1)?);
    if !c.is_const() || c.is_undef() || x.is_const() || !clamps_data(i) {
        return None;
    }
    Some((test, x, c))
}

/// Whether the result of `min` (through casts, offsets and ksc's empty asm barriers) is a call's
/// argument or a stored value outside loops: `n = min(len, 64)` sizing a copy or recorded. A
/// bound LLVM computed for a loop's exit test is used only in the loop, and a saturated packet
/// offset only in address arithmetic; neither is the user's clamp.
fn clamps_data(min: InstructionValue<'_>) -> bool {
    let mut work = vec![min];
    let mut seen = HashSet::new();
    while let Some(v) = work.pop() {
        if !seen.insert(v) || seen.len() > MAX_USES {
            continue;
        }
        for user in users_of_result(v) {
            let outside_loops = || user.get_parent().is_some_and(|b| !in_cycle(b));
            match user.get_opcode() {
                InstructionOpcode::ZExt
                | InstructionOpcode::SExt
                | InstructionOpcode::Trunc
                | InstructionOpcode::Add
                | InstructionOpcode::Sub
                | InstructionOpcode::And => work.push(user),
                // An empty asm passes the value on; intrinsics (min, max, memset) end the walk.
                InstructionOpcode::Call
                    if !is_bpf_call(user) && !calls_intrinsic(user, "llvm.") =>
                {
                    work.push(user)
                }
                InstructionOpcode::Call if is_bpf_call(user) && outside_loops() => return true,
                InstructionOpcode::Store if outside_loops() => return true,
                _ => {}
            }
        }
    }
    false
}
