//! Packet bytes read again after a helper call instead of held across it.
//!
//! A helper that writes no memory is a `memory(read)` call to LLVM, so GVN lets a header byte
//! read before a map lookup serve its uses after the lookup. On BPF a value live across a call
//! needs one of the four callee-saved registers r6–r9, which packet pointers, `data_end` and the
//! program's own state usually fill; the register allocator then splits a fifth value's range
//! with copies around the call, and the copy after the call is one more state the verifier
//! cannot prune at. C reads the byte again, since its compiler must assume the call wrote it.
//! Where more than four values that cross calls are live at once, a packet load whose pointer
//! is live at its later uses anyway is read again at those uses, as C would, provided nothing
//! between the read and the use may write those bytes or move the packet.
//!
//! A byte one branch tested against several constants (`type == 3 || type == 11`, or a switch
//! sending several cases to one block) is read again after a call too, however few values cross
//! calls, and so is a test of it (`icmp_type == 11`, kept by GVN as a flag): where the branch
//! leads, the verifier knows the value exactly on each path that got there (3 on one, 11 on the
//! other), and held across the calls, it keeps those paths' states apart, so the verifier walks
//! everything after the branch once per value. Read again, as C reads `icmp->type` again, it is
//! dead there and the paths meet in one state. (A byte tested against constants by branches to
//! different code is left alone: those paths seldom meet in one state, and the value each
//! knows decides its later tests of the byte.)

use super::llvm_ir::{
    calls_intrinsic, constant_base, helper_id, in_cycle, instructions, is_packet, phis_of,
    predecessors, successors, users_of_result,
};
use crate::vocab::helpers;
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::types::{AnyType, AnyTypeEnum, BasicTypeEnum};
use inkwell::values::{
    AnyValue, AsValueRef, BasicValue, BasicValueEnum, CallSiteValue, FunctionValue,
    InstructionOpcode, InstructionValue, PhiValue, PointerValue,
};
use std::collections::{HashMap, HashSet, VecDeque};

/// r6–r9: the registers a value that lives across a call can stay in.
const CALLEE_SAVED: usize = 4;

/// MemoryEffects bits for "may write" of each location: argument memory, inaccessible memory,
/// everything else.
const WRITES_ARGUMENTS: u64 = 0b00_00_10;
const WRITES_OTHER: u64 = 0b10_00_00;

pub fn reload_packet_bytes(module: &Module) {
    let builder = module.get_context().create_builder();
    let memory = Attribute::get_named_enum_kind_id("memory");
    for f in module.get_functions() {
        if f.get_first_basic_block().is_none() {
            continue;
        }
        let mut tried = HashSet::new();
        // Each round reads one value again; a function has few values live across calls.
        while let Some(plan) = next_reload(f, memory, &mut tried) {
            reload(&builder, &plan);
        }
    }
}

/// A register-sized value as the register allocator sees it: casts and constant offsets share
/// their operand's register (BPF addresses take a constant offset), constants, globals and stack
/// slots take none.
type Reg = usize;

fn register(v: BasicValueEnum<'_>) -> Option<Reg> {
    let mut v = v;
    loop {
        let Some(i) = v.as_instruction_value() else {
            // SAFETY: `v` is a live value; the check only reads its kind.
            let argument = unsafe { !llvm_sys::core::LLVMIsAArgument(v.as_value_ref()).is_null() };
            return argument.then_some(v.as_value_ref() as Reg);
        };
        match transparent_operand(i) {
            Some(operand) => v = operand,
            None if i.get_opcode() == InstructionOpcode::Alloca => return None,
            None => return Some(v.as_value_ref() as Reg),
        }
    }
}

/// The operand whose register `i`'s result shares, for casts and constant byte offsets.
fn transparent_operand(i: InstructionValue<'_>) -> Option<BasicValueEnum<'_>> {
    use InstructionOpcode::*;
    match i.get_opcode() {
        ZExt | Trunc | BitCast | IntToPtr | PtrToInt => i.get_operand(0)?.value(),
        GetElementPtr => {
            let own = PointerValue::try_from(i.as_any_value_enum()).ok()?;
            let base = i.get_operand(0)?.value()?;
            // constant_base strips at least this step exactly when it is a constant byte step.
            (constant_base(own).0 != own).then_some(base)
        }
        _ => None,
    }
}

/// The registers `i` reads, phis excluded (their operands are read at the end of each
/// predecessor); none for an instruction that shares its operand's register.
fn registers_read(i: InstructionValue<'_>) -> Vec<Reg> {
    if transparent_operand(i).is_some() {
        return Vec::new();
    }
    (0..i.get_num_operands())
        .filter_map(|k| i.get_operand(k)?.value())
        .filter_map(register)
        .collect()
}

fn register_written(i: InstructionValue<'_>) -> Option<Reg> {
    if transparent_operand(i).is_some() || i.get_type().is_void_type() {
        return None;
    }
    Some(i.as_value_ref() as Reg)
}

/// A call the back end emits as a BPF `call` (intrinsics become instructions).
fn is_bpf_call(i: InstructionValue<'_>) -> bool {
    i.get_opcode() == InstructionOpcode::Call && !calls_intrinsic(i, "llvm.")
}

/// Which registers are live where, and which of them live across a call.
struct Liveness<'ctx> {
    blocks: Vec<BasicBlock<'ctx>>,
    live_out: Vec<HashSet<Reg>>,
    crosses_call: HashSet<Reg>,
}

impl<'ctx> Liveness<'ctx> {
    fn of(f: FunctionValue<'ctx>) -> Liveness<'ctx> {
        let blocks = f.get_basic_blocks();
        let index: HashMap<BasicBlock, usize> =
            blocks.iter().enumerate().map(|(k, &b)| (b, k)).collect();
        let succs: Vec<Vec<usize>> = blocks
            .iter()
            .map(|&b| successors(b).iter().map(|s| index[s]).collect())
            .collect();
        let mut live_in = vec![HashSet::new(); blocks.len()];
        let mut live_out = vec![HashSet::new(); blocks.len()];
        let mut changed = true;
        while changed {
            changed = false;
            for k in (0..blocks.len()).rev() {
                let mut out: HashSet<Reg> = HashSet::new();
                for &s in &succs[k] {
                    out.extend(live_in[s].iter().copied());
                    out.extend(phi_reads(blocks[s], blocks[k]));
                }
                let mut live = out.clone();
                for i in instructions(blocks[k])
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    step_back(&mut live, i);
                }
                if out != live_out[k] || live != live_in[k] {
                    live_out[k] = out;
                    live_in[k] = live;
                    changed = true;
                }
            }
        }
        let mut crosses_call = HashSet::new();
        for (k, &b) in blocks.iter().enumerate() {
            let mut live = live_out[k].clone();
            for i in instructions(b).collect::<Vec<_>>().into_iter().rev() {
                if is_bpf_call(i) {
                    let result = register_written(i);
                    crosses_call.extend(live.iter().filter(|&&r| Some(r) != result));
                }
                step_back(&mut live, i);
            }
        }
        Liveness {
            blocks,
            live_out,
            crosses_call,
        }
    }

    /// The sets of call-crossing registers live at one point, wherever there are more than
    /// the callee-saved registers.
    fn crowded_points(&self) -> Vec<HashSet<Reg>> {
        let mut out = Vec::new();
        for (k, &b) in self.blocks.iter().enumerate() {
            let mut live = self.live_out[k].clone();
            for i in instructions(b).collect::<Vec<_>>().into_iter().rev() {
                let crossing: HashSet<Reg> =
                    live.intersection(&self.crosses_call).copied().collect();
                if crossing.len() > CALLEE_SAVED && !out.contains(&crossing) {
                    out.push(crossing);
                }
                step_back(&mut live, i);
            }
        }
        out
    }

    fn live_into(&self, b: BasicBlock<'ctx>) -> HashSet<Reg> {
        let k = self
            .blocks
            .iter()
            .position(|&x| x == b)
            .expect("block of f");
        let mut live = self.live_out[k].clone();
        for i in instructions(b).collect::<Vec<_>>().into_iter().rev() {
            step_back(&mut live, i);
        }
        live
    }

    fn live_out_of(&self, b: BasicBlock<'ctx>) -> &HashSet<Reg> {
        let k = self
            .blocks
            .iter()
            .position(|&x| x == b)
            .expect("block of f");
        &self.live_out[k]
    }
}

/// Live before `i`, given live after it (phis define their result only).
fn step_back(live: &mut HashSet<Reg>, i: InstructionValue<'_>) {
    if let Some(r) = register_written(i) {
        live.remove(&r);
    }
    if i.get_opcode() != InstructionOpcode::Phi {
        live.extend(registers_read(i));
    }
}

/// The registers `block`'s phis read at the end of `pred`.
fn phi_reads(block: BasicBlock<'_>, pred: BasicBlock<'_>) -> Vec<Reg> {
    phis_of(block)
        .into_iter()
        .filter_map(|phi| {
            (0..phi.count_incoming())
                .filter_map(|k| phi.get_incoming(k))
                .find(|&(_, from)| from == pred)
                .and_then(|(v, _)| register(v))
        })
        .collect()
}

/// One load read again (and the operations `chain` on it redone): at each use in `uses`, from
/// `base + offset`.
struct Reload<'ctx> {
    load: InstructionValue<'ctx>,
    chain: Vec<InstructionValue<'ctx>>,
    base: PointerValue<'ctx>,
    offset: i64,
    /// Each use reached after a call: the instruction and, for a phi, the predecessor whose
    /// end the value is read at.
    uses: Vec<(InstructionValue<'ctx>, Option<BasicBlock<'ctx>>)>,
}

/// The next load to read again, if more call-crossing values than callee-saved registers are
/// live somewhere and one of them is a packet load that may be.
fn next_reload<'ctx>(
    f: FunctionValue<'ctx>,
    memory: u32,
    tried: &mut HashSet<Reg>,
) -> Option<Reload<'ctx>> {
    let live = Liveness::of(f);
    let crowded = live.crowded_points();
    // Each candidate with why: a crowded load is read again only where its pointer is live
    // anyway (else the pointer would take the register the value gave up); a byte the verifier
    // pins to several values is worth its pointer's register.
    let candidates: Vec<(InstructionValue, Why)> = live
        .blocks
        .iter()
        .flat_map(|&b| instructions(b))
        .filter_map(|i| {
            let r = i.as_value_ref() as Reg;
            if tried.contains(&r) {
                return None;
            }
            if branch_tested(i) {
                Some((i, Why::PinnedOnJoiningPaths))
            } else {
                let crowded_load = i.get_opcode() == InstructionOpcode::Load
                    && crowded.iter().any(|set| set.contains(&r));
                crowded_load.then_some((i, Why::Crowded))
            }
        })
        .collect();
    for (value, why) in candidates {
        tried.insert(value.as_value_ref() as Reg);
        if let Some(plan) = reload_plan(&live, value, why, memory) {
            return Some(plan);
        }
    }
    None
}

/// Why a value is read again after calls.
#[derive(Clone, Copy, PartialEq)]
enum Why {
    /// More values cross calls than callee-saved registers hold them.
    Crowded,
    /// Paths that each know the byte as a different constant join before the calls.
    PinnedOnJoiningPaths,
}

/// `value`, a packet load or a chain of operations on one with constants (`icmp eq i8 %t, 11`),
/// as the load and the chain; None for anything else.
fn packet_chain(
    value: InstructionValue<'_>,
) -> Option<(InstructionValue<'_>, Vec<InstructionValue<'_>>)> {
    let mut chain = Vec::new();
    let mut at = value;
    for _ in 0..4 {
        if at.get_opcode() == InstructionOpcode::Load {
            chain.reverse();
            return Some((at, chain));
        }
        use InstructionOpcode::*;
        if !matches!(
            at.get_opcode(),
            ZExt | Trunc | And | Or | Xor | Add | Sub | Shl | LShr | ICmp
        ) {
            return None;
        }
        // One operand from the load, the others constants.
        let mut from = None;
        for k in 0..at.get_num_operands() {
            let operand = at.get_operand(k)?.value()?;
            match operand.as_instruction_value() {
                Some(i) if from.is_none() => from = Some(i),
                Some(_) => return None,
                None if matches!(operand, BasicValueEnum::IntValue(c) if c.is_constant_int()) => {}
                None => return None,
            }
        }
        chain.push(at);
        at = from?;
    }
    None
}

/// Whether `value` is a packet byte (or a test of one) that one branch tested against several
/// constants: where the branch leads, the verifier knows it differently on each way there.
fn branch_tested(value: InstructionValue<'_>) -> bool {
    let Some((load, _)) = packet_chain(value) else {
        return false;
    };
    let Some(BasicValueEnum::PointerValue(pointer)) = load.get_operand(0).and_then(|o| o.value())
    else {
        return false;
    };
    if !is_packet(pointer) || in_loop(load) {
        return false;
    }
    let tests: Vec<InstructionValue> = users_of_result(load)
        .into_iter()
        .filter(|&u| u.get_opcode() == InstructionOpcode::ICmp)
        .collect();
    // The blocks each test leads into knowing the byte equal to its constant.
    let pinned: Vec<(InstructionValue, BasicBlock)> = tests
        .iter()
        .flat_map(|&t| pinned_targets(t).into_iter().map(move |b| (t, b)))
        .collect();
    let joins = |b: BasicBlock| pinned.iter().filter(|&&(_, p)| p == b).count() >= 2;
    let joining: Vec<InstructionValue> = pinned
        .iter()
        .filter(|&&(_, b)| joins(b))
        .map(|&(t, _)| t)
        .collect();
    if joining.is_empty() && !switches_to_one_block(load) {
        return false;
    }
    // A test of the byte again before any call splits the paths again at once, and after the
    // calls each would then know less of it than before (`proto == 6` after `switch (proto)
    // { 6, 17 => … }`): only when the paths stay joined up to the calls is reading it again worth it.
    tests.iter().all(|&t| {
        joining.contains(&t)
            || t.get_parent()
                .is_some_and(|at| path_to(load, at, Some(t)).is_some())
    })
}

/// Whether `i` lies in a loop. (There the verifier's states at the loop head decide what it
/// walks again, and a value read again each round is one it knows less of.)
fn in_loop(i: InstructionValue<'_>) -> bool {
    i.get_parent().is_some_and(in_cycle)
}

/// The blocks conditional branches on `test` (an `==`/`!=` of a byte and a constant) enter
/// knowing the byte equal to the constant: directly, or through an `||` of `==` tests (an `&&`
/// of `!=` tests), as LLVM leaves `t == 3 || t == 11` when it keeps one branch for both.
fn pinned_targets<'ctx>(test: InstructionValue<'ctx>) -> Vec<BasicBlock<'ctx>> {
    let equal = match test.get_icmp_predicate() {
        Some(inkwell::IntPredicate::EQ) => true,
        Some(inkwell::IntPredicate::NE) => false,
        _ => return Vec::new(),
    };
    let constant = (0..2).any(|k| {
        matches!(test.get_operand(k).and_then(|o| o.value()),
            Some(BasicValueEnum::IntValue(c)) if c.is_constant_int())
    });
    let mut out = Vec::new();
    if constant {
        pinned_through(test, equal, 4, &mut out);
    }
    out
}

/// Follows `value` up through joins of the same kind (any true for `==`, any false for `!=`)
/// to the branches it decides, adding the destination where it holds.
fn pinned_through<'ctx>(
    value: InstructionValue<'ctx>,
    equal: bool,
    depth: u32,
    out: &mut Vec<BasicBlock<'ctx>>,
) {
    for user in users_of_result(value) {
        let joins = match user.get_opcode() {
            // Operands: the condition, the false destination, the true destination.
            InstructionOpcode::Br => {
                out.extend(
                    user.get_operand(if equal { 2 } else { 1 })
                        .and_then(|o| o.block()),
                );
                false
            }
            InstructionOpcode::Or => equal,
            InstructionOpcode::And => !equal,
            // `select a, true, b` is `a || b`; `select a, b, false` is `a && b`.
            InstructionOpcode::Select => {
                let arm = if equal { 1 } else { 2 };
                matches!(user.get_operand(arm).and_then(|o| o.value()),
                    Some(BasicValueEnum::IntValue(c)) if c.get_zero_extended_constant() == Some(u64::from(equal)))
            }
            InstructionOpcode::Call => calls_intrinsic(user, "llvm.bpf.passthrough"),
            _ => false,
        };
        if joins && depth > 0 {
            pinned_through(user, equal, depth - 1, out);
        }
    }
}

/// Whether a `switch` on `load` sends two case values to one block.
fn switches_to_one_block(load: InstructionValue<'_>) -> bool {
    users_of_result(load).into_iter().any(|u| {
        if u.get_opcode() != InstructionOpcode::Switch {
            return false;
        }
        // Operands: the value, the default, then each case's value and destination.
        let targets: Vec<_> = (3..u.get_num_operands())
            .step_by(2)
            .filter_map(|k| u.get_operand(k)?.block())
            .collect();
        (0..targets.len()).any(|k| targets[k + 1..].contains(&targets[k]))
    })
}

fn reload_plan<'ctx>(
    live: &Liveness<'ctx>,
    value: InstructionValue<'ctx>,
    why: Why,
    memory: u32,
) -> Option<Reload<'ctx>> {
    let (load, chain) = packet_chain(value)?;
    if load.get_volatile().ok()?
        || load.get_atomic_ordering().ok()? != inkwell::AtomicOrdering::NotAtomic
    {
        return None;
    }
    let pointer = load.get_operand(0)?.value()?.into_pointer_value();
    if !is_packet(pointer) {
        return None;
    }
    let (base, offset) = constant_base(pointer);
    let base_reg = register(base.as_basic_value_enum())?;
    let span = (offset, offset + byte_size(load.get_type())?);
    let mut uses = Vec::new();
    for (user, pred) in uses_of(value) {
        let at = pred.unwrap_or_else(|| user.get_parent().expect("placed"));
        let before = pred.is_none().then_some(user);
        let Some(path) = path_to(load, at, before) else {
            continue; // no call between
        };
        let base_live = why == Why::PinnedOnJoiningPaths
            || match pred {
                Some(p) => live.live_out_of(p).contains(&base_reg),
                None => live.live_into(at).contains(&base_reg),
            };
        if !base_live || !path.iter().all(|&i| leaves_bytes(i, base, span, memory)) {
            return None;
        }
        uses.push((user, pred));
    }
    (!uses.is_empty()).then_some(Reload {
        load,
        chain,
        base,
        offset,
        uses,
    })
}

/// The uses of `i`'s result: each user with, for a phi, the predecessor it reads it from.
fn uses_of(i: InstructionValue<'_>) -> Vec<(InstructionValue<'_>, Option<BasicBlock<'_>>)> {
    let mut out = Vec::new();
    for user in users_of_result(i) {
        match PhiValue::try_from(user) {
            Ok(phi) => out.extend(
                (0..phi.count_incoming())
                    .filter_map(|k| phi.get_incoming(k))
                    .filter(|(v, _)| v.as_value_ref() == i.as_value_ref())
                    .map(|(_, from)| (user, Some(from))),
            ),
            Err(_) => out.push((user, None)),
        }
    }
    out
}

/// When some path from `def` to `before` (or, if `None`, to the end of `at`) passes a call: the
/// instructions on every such path (from after `def`), for the caller to check. `None` when no
/// call lies between.
fn path_to<'ctx>(
    def: InstructionValue<'ctx>,
    at: BasicBlock<'ctx>,
    before: Option<InstructionValue<'ctx>>,
) -> Option<Vec<InstructionValue<'ctx>>> {
    let home = def.get_parent()?;
    let after_def: Vec<_> =
        std::iter::successors(def.get_next_instruction(), |i| i.get_next_instruction()).collect();
    let up_to_use = |b: BasicBlock<'ctx>| -> Vec<InstructionValue<'ctx>> {
        instructions(b).take_while(|&i| Some(i) != before).collect()
    };
    if at == home && before.is_none_or(|u| after_def.contains(&u)) {
        let path: Vec<_> = after_def
            .into_iter()
            .take_while(|&i| Some(i) != before)
            .collect();
        return path.iter().any(|&i| is_bpf_call(i)).then_some(path);
    }
    // Blocks reachable from `def` without passing it again, that can reach `at`.
    let forward = reachable(successors(home), |b| b != home, successors);
    let preds = predecessors(home.get_parent()?);
    let backward = reachable(
        vec![at],
        |b| b != home,
        |b| preds.get(&b).cloned().unwrap_or_default(),
    );
    let mut path = after_def;
    for b in forward.intersection(&backward) {
        if *b == at {
            path.extend(up_to_use(at));
        } else {
            path.extend(instructions(*b));
        }
    }
    path.iter().any(|&i| is_bpf_call(i)).then_some(path)
}

fn reachable<'ctx>(
    start: Vec<BasicBlock<'ctx>>,
    enter: impl Fn(BasicBlock<'ctx>) -> bool,
    next: impl Fn(BasicBlock<'ctx>) -> Vec<BasicBlock<'ctx>>,
) -> HashSet<BasicBlock<'ctx>> {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<_> = start.into_iter().filter(|&b| enter(b)).collect();
    while let Some(b) = queue.pop_front() {
        if seen.insert(b) {
            queue.extend(next(b).into_iter().filter(|&s| enter(s)));
        }
    }
    seen
}

/// Whether `i` leaves the packet bytes `span` (offsets from `base`) as they were and the packet
/// where it was.
fn leaves_bytes(
    i: InstructionValue<'_>,
    base: PointerValue<'_>,
    span: (i64, i64),
    memory: u32,
) -> bool {
    use InstructionOpcode::*;
    let target = |k: u32| i.get_operand(k).and_then(|o| o.value());
    match i.get_opcode() {
        Store => target(1).is_some_and(|p| misses(p, i_size(target(0)), base, span)),
        AtomicRMW | AtomicCmpXchg => {
            target(0).is_some_and(|p| misses(p, i_size(target(1)), base, span))
        }
        Call => call_leaves_bytes(i, base, span, memory),
        _ => true,
    }
}

fn i_size(v: Option<BasicValueEnum<'_>>) -> Option<i64> {
    byte_size(v?.get_type().as_any_type_enum())
}

fn byte_size(t: AnyTypeEnum<'_>) -> Option<i64> {
    match t {
        AnyTypeEnum::IntType(t) => Some((i64::from(t.get_bit_width()) + 7) / 8),
        AnyTypeEnum::PointerType(_) => Some(8),
        _ => None,
    }
}

/// Whether a write of `size` bytes (unknown: any) through `p` misses the bytes `span` of `base`.
fn misses(
    p: BasicValueEnum<'_>,
    size: Option<i64>,
    base: PointerValue<'_>,
    span: (i64, i64),
) -> bool {
    let BasicValueEnum::PointerValue(p) = p else {
        return false;
    };
    if !is_packet(p) {
        return outside_packet(p);
    }
    let (b, off) = constant_base(p);
    b == base && size.is_some_and(|s| off + s <= span.0 || span.1 <= off)
}

/// A pointer whose object is a stack slot, a global or a map value (also one of several such,
/// joined), none of which is packet memory.
fn outside_packet(p: PointerValue<'_>) -> bool {
    outside_packet_within(p, 4)
}

fn outside_packet_within(mut p: PointerValue<'_>, depth: u32) -> bool {
    loop {
        let Some(i) = p.as_instruction() else {
            // SAFETY: `p` is a live value; the check only reads its kind.
            return unsafe { !llvm_sys::core::LLVMIsAGlobalValue(p.as_value_ref()).is_null() };
        };
        match i.get_opcode() {
            InstructionOpcode::Alloca => return true,
            InstructionOpcode::GetElementPtr => match i.get_operand(0).and_then(|o| o.value()) {
                Some(BasicValueEnum::PointerValue(b)) => p = b,
                _ => return false,
            },
            InstructionOpcode::Call => {
                return helper_id(i).is_some_and(|id| id == u64::from(helpers::MAP_LOOKUP_ELEM.id))
            }
            // (A select's condition is not a pointer and not an object.)
            InstructionOpcode::Phi | InstructionOpcode::Select if depth > 0 => {
                return (0..i.get_num_operands()).all(|k| {
                    match i.get_operand(k).and_then(|o| o.value()) {
                        Some(BasicValueEnum::PointerValue(q)) => {
                            outside_packet_within(q, depth - 1)
                        }
                        Some(BasicValueEnum::IntValue(_)) => {
                            i.get_opcode() == InstructionOpcode::Select && k == 0
                        }
                        _ => false,
                    }
                })
            }
            _ => return false,
        }
    }
}

fn call_leaves_bytes(
    call: InstructionValue<'_>,
    base: PointerValue<'_>,
    span: (i64, i64),
    memory: u32,
) -> bool {
    if let Some(id) = helper_id(call) {
        // A helper reaches the packet only through the context or a packet pointer: one given
        // neither (a map update with keys and values on the stack) leaves its bytes alone.
        let pointers_elsewhere = (0..call.get_num_operands().saturating_sub(1)).all(|k| match call
            .get_operand(k)
            .and_then(|o| o.value())
        {
            Some(BasicValueEnum::PointerValue(p)) => outside_packet(p),
            _ => true,
        });
        return helpers::by_id(i128::from(id))
            .is_some_and(|h| !h.moves_packet && (!h.writes_memory || pointers_elsewhere));
    }
    if !calls_intrinsic(call, "llvm.") {
        return false;
    }
    let Ok(site) = CallSiteValue::try_from(call) else {
        return false;
    };
    let effects = site
        .get_enum_attribute(AttributeLoc::Function, memory)
        .or_else(|| {
            site.get_called_fn_value()?
                .get_enum_attribute(AttributeLoc::Function, memory)
        })
        .map(|a| a.get_enum_value());
    match effects {
        Some(e) if e & WRITES_OTHER != 0 => false,
        Some(e) if e & WRITES_ARGUMENTS != 0 => {
            (0..site.count_arguments()).all(|k| match call.get_operand(k).and_then(|o| o.value()) {
                Some(BasicValueEnum::PointerValue(p)) => misses(p.into(), None, base, span),
                _ => true,
            })
        }
        Some(_) => true,
        None => false,
    }
}

/// Reads the value again before each use, from the same address.
fn reload<'ctx>(builder: &Builder<'ctx>, plan: &Reload<'ctx>) {
    let ty = plan.load.get_type();
    let ctx = plan.base.get_type().get_context();
    let mut made: HashMap<(BasicBlock, Option<InstructionValue>), BasicValueEnum> = HashMap::new();
    for &(user, pred) in &plan.uses {
        let (block, at) = match pred {
            Some(p) => (p, p.get_terminator()),
            None => (user.get_parent().expect("placed"), Some(user)),
        };
        let key = (block, pred.is_none().then_some(user));
        let reread = *made.entry(key).or_insert_with(|| {
            match at {
                Some(at) => builder.position_before(&at),
                None => builder.position_at_end(block),
            }
            let i8t = ctx.i8_type();
            let offset = ctx.i64_type().const_int(plan.offset as u64, true);
            // SAFETY: `base + offset` is the address the original load read.
            let address = unsafe { builder.build_gep(i8t, plan.base, &[offset], "reread") }
                .expect("builder positioned");
            let basic = BasicTypeEnum::try_from(ty).expect("loaded a value");
            let v = builder
                .build_load(basic, address, "reread")
                .expect("builder positioned");
            if let Some(i) = v.as_instruction_value() {
                if let Ok(align) = plan.load.get_alignment() {
                    let _ = i.set_alignment(align);
                }
                share_location(plan.load, i);
            }
            // The chain again, each operation on the one before.
            let mut last = (plan.load, v);
            for &op in &plan.chain {
                let copy = op.explicit_clone();
                builder.insert_instruction(&copy, None);
                share_location(op, copy);
                replace_operand(copy, last.0, last.1, None);
                let result = copy.as_any_value_enum();
                let Ok(result) = BasicValueEnum::try_from(result) else {
                    break;
                };
                last = (op, result);
            }
            last.1
        });
        let value = *plan.chain.last().unwrap_or(&plan.load);
        replace_operand(user, value, reread, pred);
    }
    for &i in plan.chain.iter().rev().chain([&plan.load]) {
        if users_of_result(i).is_empty() {
            i.erase_from_basic_block();
        }
    }
}

/// Gives `to` the debug location of `from`.
fn share_location(from: InstructionValue<'_>, to: InstructionValue<'_>) {
    // SAFETY: both are live instructions of one function; the location is shared.
    unsafe {
        let loc = llvm_sys::debuginfo::LLVMInstructionGetDebugLoc(from.as_value_ref());
        llvm_sys::debuginfo::LLVMInstructionSetDebugLoc(to.as_value_ref(), loc);
    }
}

/// Makes `user` read `new` where it read `old` (for a phi, only the value from `pred`).
fn replace_operand<'ctx>(
    user: InstructionValue<'ctx>,
    old: InstructionValue<'ctx>,
    new: BasicValueEnum<'ctx>,
    pred: Option<BasicBlock<'ctx>>,
) {
    for k in 0..user.get_num_operands() {
        let Some(operand) = user.get_operand(k).and_then(|o| o.value()) else {
            continue;
        };
        if operand.as_value_ref() != old.as_value_ref() {
            continue;
        }
        if let Some(p) = pred {
            // SAFETY: `user` is a phi with at least k + 1 incoming values.
            let from = unsafe { llvm_sys::core::LLVMGetIncomingBlock(user.as_value_ref(), k) };
            if from != p.as_mut_ptr() {
                continue;
            }
        }
        user.set_operand(k, new);
    }
}
