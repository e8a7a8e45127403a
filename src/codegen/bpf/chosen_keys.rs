//! Map keys chosen among constants reach the verifier as unknown scalars.
//!
//! `counts[classify(flags)] += 1; if (class == Drop) …` stores a value that each arm of a
//! multi-way branch set to its own constant. The verifier follows every arm with its constant:
//! a constant array key is made precise (kernels ≥ 6.13 use it to drop the lookup's null case),
//! and so is a constant that later decides a branch, and a precise value that differs keeps the
//! arms' states apart, so everything after the join is verified once per constant. C programs do
//! not pay this: the key is a `__u32` local at a 4-byte stack offset, which the verifier does not
//! track, and the compiler reloads it after the call. After LLVM's pipeline ksc does the same on
//! purpose:
//!
//! 1. A key slot that receives such choices, and never a plain constant (which the verifier uses
//!    well; other computed keys it can only treat as unknown), moves to the upper half of an
//!    8-byte slot, an offset the verifier keeps no spill state for, so storing the key loses its
//!    value. A slot shared with computed keys moves only when some choice's arms differ in
//!    nothing else at their join: otherwise their states stay apart anyway, and hiding the key
//!    only costs the lookup's null case.
//! 2. When the choice is used after a lookup, the uses read the key back from that slot, as C's
//!    reload does, provided nothing after the lookup can depend on which arm ran: every memory
//!    access there goes through a stack slot, a global or a pointer the lookups there returned,
//!    every helper argument is a constant or such a pointer, no loop, no call of another
//!    function. The verifier then checks that code once, with the key unknown, for all arms.
//! 3. A zero is the one value the upper half keeps: storing a register known to be 0 there marks
//!    the bytes as zero and the register precise, so the arm that chose 0 still keeps its state
//!    apart from the others' on the way from the join to the lookup. When the key is not used
//!    after the lookup, the arms store it instead as a whole 8-byte word at the slot's start (the
//!    key in its low bytes): kernels ≥ 6.8 keep such an aligned spill, zero included, as an
//!    imprecise register, and do not take a word wider than the key for a constant key. (Kernels
//!    before 6.8 treat a stored zero as before.) A key used after the lookup stays in the upper
//!    half: a test of it makes it precise anyway, and a zero there spares the lookup's null case
//!    (kernels ≥ 6.13).

use super::llvm_ir::{
    calls_intrinsic, dominates, helper_id, instructions, is_alloca, phis_of, pointer_operand,
    reachable_from, successors, users, users_of_result,
};
use crate::vocab::helpers::{Helper, MAP_DELETE_ELEM, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue, IntValue, PhiValue,
    PointerValue,
};
use std::collections::{BTreeSet, HashSet};

/// Helpers whose second argument points to a map key.
const KEYED_HELPERS: [Helper; 3] = [MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM];
/// Fewer distinct constants than this cost the verifier little.
const MIN_CHOICES: usize = 3;

pub fn hide_chosen_keys(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        for slot in key_slots(f) {
            if let Some(moved) = move_to_untracked_half(module, &builder, slot) {
                if !reload_after_lookups(&builder, f, moved.upper)
                    && !used_after_lookups(moved.upper)
                {
                    store_whole_words(&builder, moved);
                }
            }
        }
    }
}

/// The allocas passed as keys to map helpers, in order.
fn key_slots(f: FunctionValue<'_>) -> Vec<PointerValue<'_>> {
    let mut slots = Vec::new();
    for block in f.get_basic_blocks() {
        for i in instructions(block) {
            if i.get_opcode() != InstructionOpcode::Call
                || !helper_id(i)
                    .is_some_and(|id| KEYED_HELPERS.iter().any(|h| u64::from(h.id) == id))
            {
                continue;
            }
            if let Some(key) = pointer_operand(i, 1).filter(|&k| is_alloca(k)) {
                if !slots.contains(&key) {
                    slots.push(key);
                }
            }
        }
    }
    slots
}

/// A key moved into the upper half of an 8-byte slot.
#[derive(Clone, Copy)]
struct MovedKey<'ctx> {
    /// The 8-byte slot.
    whole: PointerValue<'ctx>,
    /// Its bytes 4..: the key's address.
    upper: PointerValue<'ctx>,
}

/// Step 1: when a value stored into `slot` is a choice among constants and none is a plain
/// constant, the slot becomes bytes 4.. of a new 8-byte-aligned slot.
fn move_to_untracked_half<'ctx>(
    module: &Module<'ctx>,
    builder: &Builder<'ctx>,
    slot: PointerValue<'ctx>,
) -> Option<MovedKey<'ctx>> {
    let alloca = slot.as_instruction()?;
    let width = alloca
        .get_allocated_type()
        .ok()
        .filter(|t| t.is_int_type())?
        .into_int_type()
        .get_bit_width();
    if width > 32 {
        return None;
    }
    let (mut choices, mut converging, mut computed) = (0, 0, 0);
    for user in users(slot) {
        match user.get_opcode() {
            InstructionOpcode::Store if pointer_operand(user, 1) == Some(slot) => {
                match stored_value(user) {
                    Some(v) if is_choice(v) => {
                        choices += 1;
                        converging += usize::from(arms_converge(v));
                    }
                    // Nor does an array lookup gain from any key but a constant.
                    Some(v) if !v.is_const() => computed += 1,
                    _ => return None,
                }
            }
            InstructionOpcode::Call if is_lifetime(user) || helper_id(user).is_some() => {}
            _ => return None,
        }
    }
    if choices == 0 || computed > 0 && converging == 0 {
        return None;
    }
    let ctx = module.get_context();
    builder.position_before(&alloca);
    let whole = builder.build_alloca(ctx.i64_type(), "key.slot").ok()?;
    whole.as_instruction()?.set_alignment(8).ok()?;
    // SAFETY: byte 4 of an 8-byte slot.
    let upper = unsafe {
        builder.build_gep(
            ctx.i8_type(),
            whole,
            &[ctx.i64_type().const_int(4, false)],
            "key",
        )
    }
    .ok()?;
    for user in users(slot) {
        let replacement = if is_lifetime(user) { whole } else { upper };
        for n in 0..user.get_num_operands() {
            if pointer_operand(user, n) == Some(slot) {
                user.set_operand(n, replacement);
            }
        }
        // A lifetime covers the whole new slot.
        if is_lifetime(user) {
            user.set_operand(0, ctx.i64_type().const_int(8, false));
        }
        // The stores were 8-aligned with the old slot; the key is now 4-aligned.
        if user.get_opcode() == InstructionOpcode::Store {
            let align = user.get_alignment().unwrap_or(1).min(4);
            user.set_alignment(align).ok()?;
        }
    }
    alloca.erase_from_basic_block();
    Some(MovedKey { whole, upper })
}

/// Step 2: a choice stored into `key` right before a lookup and used after it is read back from
/// `key` there, when the code after the lookup cannot depend on which constant it is. Whether
/// any was.
fn reload_after_lookups<'ctx>(
    builder: &Builder<'ctx>,
    f: FunctionValue<'ctx>,
    key: PointerValue<'ctx>,
) -> bool {
    let mut reloaded_any = false;
    for store in users(key) {
        if store.get_opcode() != InstructionOpcode::Store {
            continue;
        }
        let (Some(value), Some(lookup)) = (stored_value(store), next_use_of(key, store)) else {
            continue;
        };
        if !is_choice(value) || helper_id(lookup) != Some(u64::from(MAP_LOOKUP_ELEM.id)) {
            continue;
        }
        let Some(join) = lookup.get_parent() else {
            continue;
        };
        use_narrowed_value(builder, f, value);
        let after_lookup = |u: &InstructionValue<'ctx>| {
            !comes_before(*u, lookup)
                && u.get_parent()
                    .is_some_and(|b| b == join || dominates(f, join, b))
        };
        // Arithmetic on the key before the lookup whose results are only used after it (a test
        // LLVM hoisted) moves after the reload with the other uses.
        let (mut later, earlier): (Vec<_>, Vec<_>) = users(value)
            .into_iter()
            .filter(|&u| u != store)
            .partition(|u| !comes_before(*u, lookup));
        let movable = |u: &InstructionValue<'ctx>| {
            is_pure_arithmetic(*u) && users_of_result(*u).iter().all(after_lookup)
        };
        let moved: Vec<_> = earlier.iter().copied().filter(movable).collect();
        if later.is_empty() && moved.is_empty()
            || !later.iter().all(after_lookup)
            || !arm_independent(f, lookup)
        {
            continue;
        }
        let Some(after) = lookup.get_next_instruction() else {
            continue;
        };
        builder.position_before(&after);
        let Ok(BasicValueEnum::IntValue(reloaded)) =
            builder.build_load(value.get_type(), key, "key.reload")
        else {
            continue;
        };
        if let Some(load) = reloaded.as_instruction() {
            let _ = load.set_alignment(4);
        }
        reloaded_any = true;
        for u in moved {
            u.remove_from_basic_block();
            builder.insert_instruction(&u, None);
            later.push(u);
        }
        for u in later {
            for n in 0..u.get_num_operands() {
                if matches!(u.get_operand(n).and_then(|o| o.value()), Some(BasicValueEnum::IntValue(v)) if v == value)
                {
                    u.set_operand(n, reloaded);
                }
            }
        }
    }
    reloaded_any
}

/// A choice stored narrowed (`trunc i64 %phi to i32`) is often used wide too (`and i64 %phi,
/// 6`). When the narrowing loses nothing (every constant fits), the wide uses the narrowed
/// value reaches become uses of it widened again, so they are uses of the key.
fn use_narrowed_value<'ctx>(
    builder: &Builder<'ctx>,
    f: FunctionValue<'ctx>,
    value: IntValue<'ctx>,
) {
    let Some(trunc) = value
        .as_instruction()
        .filter(|t| t.get_opcode() == InstructionOpcode::Trunc)
    else {
        return;
    };
    let Some(BasicValueEnum::IntValue(wide)) = trunc.get_operand(0).and_then(|o| o.value()) else {
        return;
    };
    let width = value.get_type().get_bit_width();
    let fits = constants_chosen(wide)
        .is_some_and(|cs| cs.iter().all(|&c| width >= 64 || c < 1u64 << width));
    let (Some(home), Some(next)) = (trunc.get_parent(), trunc.get_next_instruction()) else {
        return;
    };
    let reached = |u: &InstructionValue<'ctx>| {
        u.get_opcode() != InstructionOpcode::Phi
            && *u != trunc
            && (comes_before(trunc, *u)
                || u.get_parent()
                    .is_some_and(|b| b != home && dominates(f, home, b)))
    };
    let wide_uses: Vec<_> = users(wide).into_iter().filter(reached).collect();
    if !fits || wide_uses.is_empty() {
        return;
    }
    builder.position_before(&next);
    let Ok(widened) = builder.build_int_z_extend(value, wide.get_type(), "key.wide") else {
        return;
    };
    for u in wide_uses {
        for n in 0..u.get_num_operands() {
            if matches!(u.get_operand(n).and_then(|o| o.value()), Some(BasicValueEnum::IntValue(v)) if v == wide)
            {
                u.set_operand(n, widened);
            }
        }
    }
}

/// Whether a value stored into `key` is used after the helper call that reads it.
fn used_after_lookups(key: PointerValue<'_>) -> bool {
    users(key).into_iter().any(|store| {
        if store.get_opcode() != InstructionOpcode::Store {
            return false;
        }
        let (Some(value), Some(lookup), Some(block)) = (
            stored_value(store),
            next_use_of(key, store),
            store.get_parent(),
        ) else {
            return true;
        };
        let later_blocks = reachable_from(&successors(block));
        let after = |u: InstructionValue<'_>| {
            comes_before(lookup, u) || u.get_parent().is_some_and(|b| later_blocks.contains(&b))
        };
        // Through arithmetic computed before the call (a test LLVM hoisted above it).
        let mut derived: Vec<InstructionValue> = users(value);
        let mut k = 0;
        while k < derived.len() && k < 64 {
            let u = derived[k];
            if u != store && after(u) {
                return true;
            }
            if is_pure_arithmetic(u) {
                derived.extend(users_of_result(u));
            }
            k += 1;
        }
        k == 64
    })
}

/// Step 3: the key's stores become 8-byte stores of the zero-extended key at the slot's start,
/// and the helpers read it there.
fn store_whole_words(builder: &Builder<'_>, key: MovedKey<'_>) {
    for user in users(key.upper) {
        if user.get_opcode() == InstructionOpcode::Store {
            let Some(value) = stored_value(user) else {
                continue;
            };
            builder.position_before(&user);
            let word_type = value.get_type().get_context().i64_type();
            let Ok(word) = builder.build_int_z_extend(value, word_type, "key.word") else {
                return;
            };
            let Ok(store) = builder.build_store(key.whole, word) else {
                return;
            };
            let _ = store.set_alignment(8);
            user.erase_from_basic_block();
        } else {
            for n in 0..user.get_num_operands() {
                if pointer_operand(user, n) == Some(key.upper) {
                    user.set_operand(n, key.whole);
                }
            }
        }
    }
    if let Some(gep) = key.upper.as_instruction() {
        if users(key.upper).is_empty() {
            gep.erase_from_basic_block();
        }
    }
}

/// Integer arithmetic, comparisons and casts: free to move past a call.
fn is_pure_arithmetic(i: InstructionValue<'_>) -> bool {
    use InstructionOpcode::*;
    matches!(
        i.get_opcode(),
        Add | Sub | Mul | And | Or | Xor | Shl | LShr | AShr | ICmp | ZExt | SExt | Trunc
    )
}

/// Whether `v` chooses among at least `MIN_CHOICES` constants: a phi or select of constants
/// (through others and casts), not a constant itself.
fn is_choice(v: IntValue<'_>) -> bool {
    !v.is_const() && constants_chosen(v).is_some_and(|c| c.len() >= MIN_CHOICES)
}

/// Whether the arms that chose `v` at a phi differ in nothing else there: another phi of the
/// join with values that differ by arm keeps the arms' states apart whatever the key, and then
/// hiding the key only costs the lookup's null case (which a constant key spares).
fn arms_converge(v: IntValue<'_>) -> bool {
    let mut root = v;
    while let Some(i) = root.as_instruction().filter(|i| {
        matches!(
            i.get_opcode(),
            InstructionOpcode::ZExt | InstructionOpcode::SExt | InstructionOpcode::Trunc
        )
    }) {
        match i.get_operand(0).and_then(|o| o.value()) {
            Some(BasicValueEnum::IntValue(x)) => root = x,
            _ => return false,
        }
    }
    let Some(join) = root
        .as_instruction()
        .filter(|i| i.get_opcode() == InstructionOpcode::Phi)
        .and_then(|i| i.get_parent())
    else {
        return true;
    };
    phis_of(join).into_iter().all(|phi| {
        let phi_value = phi.as_instruction();
        Some(phi_value) == root.as_instruction()
            || users_of_result(phi_value).is_empty()
            || (1..phi.count_incoming())
                .all(|n| phi.get_incoming(n).map(|x| x.0) == phi.get_incoming(0).map(|x| x.0))
    })
}

/// The constants `v` can be, when it is one or picks among them through phis, selects and casts.
fn constants_chosen(v: IntValue<'_>) -> Option<BTreeSet<u64>> {
    fn gather<'c>(
        v: IntValue<'c>,
        seen: &mut HashSet<IntValue<'c>>,
        out: &mut BTreeSet<u64>,
    ) -> bool {
        if let Some(c) = v.get_zero_extended_constant() {
            out.insert(c);
            return true;
        }
        let Some(i) = v.as_instruction() else {
            return false;
        };
        if !seen.insert(v) || seen.len() > 64 {
            return false;
        }
        let operands: Vec<u32> = match i.get_opcode() {
            InstructionOpcode::Phi => (0..i.get_num_operands()).collect(),
            InstructionOpcode::Select => vec![1, 2],
            // Widened or narrowed, as stored: as many choices or fewer.
            InstructionOpcode::ZExt | InstructionOpcode::SExt | InstructionOpcode::Trunc => vec![0],
            _ => return false,
        };
        operands
            .into_iter()
            .all(|n| match i.get_operand(n).and_then(|o| o.value()) {
                Some(BasicValueEnum::IntValue(x)) => gather(x, seen, out),
                _ => false,
            })
    }
    let mut out = BTreeSet::new();
    gather(v, &mut HashSet::new(), &mut out).then_some(out)
}

/// Whether the code from `lookup` on verifies the same for every value of the key: see the
/// module comment.
fn arm_independent<'ctx>(f: FunctionValue<'ctx>, lookup: InstructionValue<'ctx>) -> bool {
    let Some(join) = lookup.get_parent() else {
        return false;
    };
    let region = reachable_from(&successors(join));
    if region.contains(&join) || has_cycle(&region) {
        return false;
    }
    let mut paths: HashSet<BasicBlock> = region.iter().copied().collect();
    paths.insert(join);
    let mut defined_here: HashSet<InstructionValue> = HashSet::from([lookup]);
    let mut after_lookup = instructions(join)
        .skip_while(|&i| i != lookup)
        .skip(1)
        .collect::<Vec<_>>();
    for b in &region {
        after_lookup.extend(instructions(*b));
    }
    after_lookup.iter().all(|&i| {
        let ok = safe_regardless_of_arm(f, i, &defined_here, &paths);
        defined_here.insert(i);
        ok
    })
}

fn safe_regardless_of_arm<'ctx>(
    f: FunctionValue<'ctx>,
    i: InstructionValue<'ctx>,
    defined_here: &HashSet<InstructionValue<'ctx>>,
    paths: &HashSet<BasicBlock<'ctx>>,
) -> bool {
    // The program's context (its first parameter), whose fields are read at fixed offsets.
    let context = f
        .get_section()
        .and(f.get_first_param())
        .filter(|p| p.is_pointer_value())
        .map(|p| p.into_pointer_value());
    let fixed_place = |p: Option<PointerValue<'ctx>>| {
        p.map(fixed_offset_base).is_some_and(|base| {
            is_alloca(base)
                || Some(base) == context
                || base.as_instruction().is_none()
                    && f.get_params()
                        .iter()
                        .all(|a| *a != BasicValueEnum::PointerValue(base))
                || base.as_instruction().is_some_and(|d| {
                    d.get_opcode() == InstructionOpcode::Call && defined_here.contains(&d)
                })
        })
    };
    match i.get_opcode() {
        InstructionOpcode::Load => fixed_place(pointer_operand(i, 0)),
        InstructionOpcode::Store => fixed_place(pointer_operand(i, 1)),
        InstructionOpcode::AtomicRMW | InstructionOpcode::AtomicCmpXchg => {
            fixed_place(pointer_operand(i, 0))
        }
        InstructionOpcode::Call => {
            // A helper's scalar arguments may be sizes or offsets the verifier bounds; an LLVM
            // intrinsic's (a byte swap, a memcpy's constant length) are values or constants.
            let intrinsic = calls_intrinsic(i, "llvm.");
            (intrinsic || helper_id(i).is_some())
                && (0..i.get_num_operands() - 1).all(|n| {
                    match i.get_operand(n).and_then(|o| o.value()) {
                        Some(BasicValueEnum::IntValue(v)) => intrinsic || v.is_const(),
                        Some(BasicValueEnum::PointerValue(p)) => fixed_place(Some(p)),
                        _ => intrinsic,
                    }
                })
        }
        InstructionOpcode::Return => match i.get_operand(0).and_then(|o| o.value()) {
            None => true,
            Some(BasicValueEnum::IntValue(v)) => returns_constant(v, i, paths),
            Some(_) => false,
        },
        InstructionOpcode::IntToPtr
        | InstructionOpcode::PtrToInt
        | InstructionOpcode::Invoke
        | InstructionOpcode::IndirectBr
        | InstructionOpcode::Fence => false,
        _ => true,
    }
}

/// Whether `ret`, returning `v`, returns one of some constants on the paths through `paths`: a
/// phi in the returning block is followed only along those paths' edges.
fn returns_constant<'ctx>(
    v: IntValue<'ctx>,
    ret: InstructionValue<'ctx>,
    paths: &HashSet<BasicBlock<'ctx>>,
) -> bool {
    let phi = v
        .as_instruction()
        .filter(|d| d.get_opcode() == InstructionOpcode::Phi && d.get_parent() == ret.get_parent())
        .and_then(|d| PhiValue::try_from(d).ok());
    let Some(phi) = phi else {
        return constants_chosen(v).is_some();
    };
    (0..phi.count_incoming()).all(|n| match phi.get_incoming(n) {
        Some((_, from)) if !paths.contains(&from) => true,
        Some((BasicValueEnum::IntValue(x), _)) => constants_chosen(x).is_some(),
        _ => false,
    })
}

fn is_lifetime(i: InstructionValue<'_>) -> bool {
    calls_intrinsic(i, "llvm.lifetime")
}

fn stored_value(store: InstructionValue<'_>) -> Option<IntValue<'_>> {
    match store.get_operand(0)?.value()? {
        BasicValueEnum::IntValue(v) => Some(v),
        _ => None,
    }
}

/// The first instruction after `from` in its block that uses `key`.
fn next_use_of<'ctx>(
    key: PointerValue<'ctx>,
    from: InstructionValue<'ctx>,
) -> Option<InstructionValue<'ctx>> {
    let mut at = from.get_next_instruction();
    while let Some(i) = at {
        if (0..i.get_num_operands()).any(|n| pointer_operand(i, n) == Some(key)) {
            return Some(i);
        }
        at = i.get_next_instruction();
    }
    None
}

/// Whether `a` is before `b` in `b`'s block.
fn comes_before(a: InstructionValue<'_>, b: InstructionValue<'_>) -> bool {
    a.get_parent() == b.get_parent() && {
        let mut at = a.get_next_instruction();
        while let Some(i) = at {
            if i == b {
                return true;
            }
            at = i.get_next_instruction();
        }
        false
    }
}

/// Whether the blocks of `region` (closed under successors) contain a loop.
fn has_cycle(region: &[BasicBlock<'_>]) -> bool {
    fn visit<'c>(
        b: BasicBlock<'c>,
        on_path: &mut HashSet<BasicBlock<'c>>,
        done: &mut HashSet<BasicBlock<'c>>,
    ) -> bool {
        if done.contains(&b) {
            return false;
        }
        if !on_path.insert(b) {
            return true;
        }
        let cyclic = successors(b).into_iter().any(|s| visit(s, on_path, done));
        on_path.remove(&b);
        done.insert(b);
        cyclic
    }
    let (mut on_path, mut done) = (HashSet::new(), HashSet::new());
    region.iter().any(|&b| visit(b, &mut on_path, &mut done))
}

/// The pointer `p` is a constant offset from, through GEPs whose indices are all constants.
fn fixed_offset_base(mut p: PointerValue<'_>) -> PointerValue<'_> {
    while let Some(i) = p.as_instruction() {
        let constant_indices = (1..i.get_num_operands()).all(|n| {
            matches!(i.get_operand(n).and_then(|o| o.value()), Some(BasicValueEnum::IntValue(c)) if c.is_const())
        });
        match pointer_operand(i, 0) {
            Some(base)
                if i.get_opcode() == InstructionOpcode::GetElementPtr && constant_indices =>
            {
                p = base
            }
            _ => break,
        }
    }
    p
}
