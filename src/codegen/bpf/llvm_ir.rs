//! Small queries over optimised LLVM IR that the post-pipeline rewrites share.

use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::types::{BasicMetadataTypeEnum, BasicType, BasicTypeEnum, IntType};
use inkwell::values::{
    AnyValueEnum, AsValueRef, BasicMetadataValueEnum, BasicValue, BasicValueEnum, BasicValueUse,
    FunctionValue, InstructionOpcode, InstructionValue, IntValue, PhiValue, PointerValue,
};
use std::collections::{HashMap, HashSet};

/// Operand `index` of `i`, when it is an integer.
pub(super) fn int_operand(i: InstructionValue<'_>, index: u32) -> Option<IntValue<'_>> {
    match i.get_operand(index)?.value()? {
        BasicValueEnum::IntValue(v) => Some(v),
        _ => None,
    }
}

/// Operand `index` of `i`, when it is a pointer.
pub(super) fn pointer_operand(i: InstructionValue<'_>, index: u32) -> Option<PointerValue<'_>> {
    match i.get_operand(index)?.value()? {
        BasicValueEnum::PointerValue(p) => Some(p),
        _ => None,
    }
}

/// The largest unsigned value `v` can hold, where its definition shows one: a constant, a
/// zero-extended narrower value, a value masked or shifted right, or bounded values shifted
/// left, scaled, added, selected or merged between without leaving the type.
pub(super) fn upper_bound(v: IntValue<'_>) -> Option<u64> {
    bound_within(v, 0)
}

/// [`upper_bound`], `depth` definitions in (a phi may lead round a loop back to itself).
fn bound_within(v: IntValue<'_>, depth: u32) -> Option<u64> {
    const DEPTH: u32 = 12;
    if let Some(c) = v.get_zero_extended_constant() {
        return Some(c);
    }
    if depth > DEPTH {
        return None;
    }
    let upper_bound = |v| bound_within(v, depth + 1);
    let i = v.as_instruction()?;
    let bits = v.get_type().get_bit_width();
    let type_max = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let bound = |n| int_operand(i, n).and_then(upper_bound);
    let shift = || {
        int_operand(i, 1)?
            .get_zero_extended_constant()
            .filter(|&c| c < 64)
    };
    let found = match i.get_opcode() {
        InstructionOpcode::ZExt => {
            let from = int_operand(i, 0)?.get_type().get_bit_width();
            let widest = (from < 64).then(|| (1u64 << from) - 1);
            match (widest, bound(0)) {
                (Some(w), Some(b)) => Some(w.min(b)),
                (w, b) => w.or(b),
            }
        }
        InstructionOpcode::And => match (bound(0), bound(1)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        InstructionOpcode::LShr => Some(bound(0).unwrap_or(type_max) >> shift()?),
        InstructionOpcode::Shl => {
            let (b, c) = (bound(0)?, shift()?);
            (b.leading_zeros() as u64 >= c).then(|| b << c)
        }
        InstructionOpcode::Mul => bound(0)?.checked_mul(bound(1)?),
        InstructionOpcode::Add => bound(0)?.checked_add(bound(1)?),
        InstructionOpcode::Select => Some(bound(1)?.max(bound(2)?)),
        InstructionOpcode::Phi => {
            let phi = inkwell::values::PhiValue::try_from(i).ok()?;
            (0..phi.count_incoming()).try_fold(0u64, |most, k| {
                let (value, _) = phi.get_incoming(k)?;
                Some(most.max(upper_bound(value.into_int_value())?))
            })
        }
        _ => None,
    };
    found.filter(|&b| b <= type_max)
}

/// An `i1` constant's value.
pub(super) fn bool_constant(v: IntValue<'_>) -> Option<bool> {
    (v.get_type().get_bit_width() == 1 && v.is_constant_int())
        .then(|| v.get_zero_extended_constant() == Some(1))
}

/// `getelementptr i8, p, x` as `(p, x)`, whatever `x` is.
pub(super) fn byte_gep(i: InstructionValue<'_>) -> Option<(PointerValue<'_>, IntValue<'_>)> {
    if i.get_opcode() != InstructionOpcode::GetElementPtr || i.get_num_operands() != 2 {
        return None;
    }
    let bytes = i
        .get_gep_source_element_type()
        .is_ok_and(|t| t.is_int_type() && t.into_int_type().get_bit_width() == 8);
    match (i.get_operand(0)?.value()?, i.get_operand(1)?.value()?) {
        (BasicValueEnum::PointerValue(p), BasicValueEnum::IntValue(x)) if bytes => Some((p, x)),
        _ => None,
    }
}

/// Makes each of `users` that uses `old` use `new` instead (RAUW would also rewrite `new`'s own
/// use of `old`).
pub(super) fn redirect_uses<'ctx>(
    users: &[InstructionValue<'ctx>],
    old: BasicValueEnum<'ctx>,
    new: BasicValueEnum<'ctx>,
) {
    for user in users {
        for n in 0..user.get_num_operands() {
            if user.get_operand(n).and_then(|o| o.value()) == Some(old) {
                user.set_operand(n, new);
            }
        }
    }
}

/// `p` as a pointer plus a constant byte offset, through `getelementptr i8, p, C` (instructions
/// and constant expressions: a global's bytes).
pub(super) fn constant_base(mut p: PointerValue<'_>) -> (PointerValue<'_>, i64) {
    let mut offset = 0i64;
    while let Some((base, step)) = byte_step(p) {
        offset += step;
        p = base;
    }
    (p, offset)
}

/// `getelementptr i8, base, C` as `(base, C)`.
fn byte_step(p: PointerValue<'_>) -> Option<(PointerValue<'_>, i64)> {
    use llvm_sys::core::{
        LLVMGetConstOpcode, LLVMGetGEPSourceElementType, LLVMGetIntTypeWidth, LLVMGetNumOperands,
        LLVMGetOperand, LLVMGetTypeKind, LLVMIsAConstantExpr, LLVMIsAGetElementPtrInst,
    };
    let v = p.as_value_ref();
    // SAFETY: `v` is a live value; it is checked to be a GEP (instruction or constant
    // expression) before its operands and source type are read.
    unsafe {
        let is_gep = !LLVMIsAGetElementPtrInst(v).is_null()
            || !LLVMIsAConstantExpr(v).is_null()
                && LLVMGetConstOpcode(v) == llvm_sys::LLVMOpcode::LLVMGetElementPtr;
        if !is_gep || LLVMGetNumOperands(v) != 2 {
            return None;
        }
        let source = LLVMGetGEPSourceElementType(v);
        if LLVMGetTypeKind(source) != llvm_sys::LLVMTypeKind::LLVMIntegerTypeKind
            || LLVMGetIntTypeWidth(source) != 8
        {
            return None;
        }
        let step = match BasicValueEnum::new(LLVMGetOperand(v, 1)) {
            BasicValueEnum::IntValue(c) => c.get_sign_extended_constant()?,
            _ => return None,
        };
        match BasicValueEnum::new(LLVMGetOperand(v, 0)) {
            BasicValueEnum::PointerValue(base) => Some((base, step)),
            _ => None,
        }
    }
}

/// A pointer into the packet: formed, through any offsets, from `ctx->data` (an integer the
/// context holds, turned into a pointer).
pub(super) fn is_packet(mut p: PointerValue<'_>) -> bool {
    while let Some(i) = p.as_instruction() {
        match i.get_opcode() {
            InstructionOpcode::IntToPtr => return true,
            InstructionOpcode::GetElementPtr => match pointer_operand(i, 0) {
                Some(base) => p = base,
                None => return false,
            },
            _ => return false,
        }
    }
    false
}

pub(super) fn is_alloca(p: PointerValue<'_>) -> bool {
    p.as_instruction()
        .is_some_and(|i| i.get_opcode() == InstructionOpcode::Alloca)
}

/// The BPF helper a call calls: ksc calls helper N as `call inttoptr (i64 N to ptr)(…)`.
pub(super) fn helper_id(call: InstructionValue<'_>) -> Option<u64> {
    use llvm_sys::core::{
        LLVMConstIntGetZExtValue, LLVMGetCalledValue, LLVMGetConstOpcode, LLVMGetOperand,
        LLVMIsAConstantExpr, LLVMIsAConstantInt,
    };
    if call.get_opcode() != InstructionOpcode::Call {
        return None;
    }
    // SAFETY: `call` is a live call instruction; each value is checked for its kind before use.
    unsafe {
        let callee = LLVMGetCalledValue(call.as_value_ref());
        if callee.is_null()
            || LLVMIsAConstantExpr(callee).is_null()
            || LLVMGetConstOpcode(callee) != llvm_sys::LLVMOpcode::LLVMIntToPtr
        {
            return None;
        }
        let number = LLVMGetOperand(callee, 0);
        (!LLVMIsAConstantInt(number).is_null()).then(|| LLVMConstIntGetZExtValue(number))
    }
}

/// Whether `call` calls an LLVM intrinsic whose name starts with `prefix` (`llvm.lifetime`).
pub(super) fn calls_intrinsic(call: InstructionValue<'_>, prefix: &str) -> bool {
    use llvm_sys::core::{LLVMGetCalledValue, LLVMGetValueName2, LLVMIsAFunction};
    if call.get_opcode() != InstructionOpcode::Call {
        return false;
    }
    // SAFETY: `call` is a live call instruction; the callee is checked to be a function.
    unsafe {
        let callee = LLVMGetCalledValue(call.as_value_ref());
        if callee.is_null() || LLVMIsAFunction(callee).is_null() {
            return false;
        }
        let mut len = 0usize;
        let name = LLVMGetValueName2(callee, &mut len);
        !name.is_null()
            && std::slice::from_raw_parts(name.cast::<u8>(), len).starts_with(prefix.as_bytes())
    }
}

/// `x` when `v` is `llvm.bswap(x)`.
pub(super) fn bswap_operand(v: IntValue<'_>) -> Option<IntValue<'_>> {
    let call = v.as_instruction()?;
    if !calls_intrinsic(call, "llvm.bswap") {
        return None;
    }
    int_operand(call, 0)
}

/// Builds `llvm.bswap(v)` at the builder's position.
pub(super) fn build_bswap<'ctx>(
    module: &inkwell::module::Module<'ctx>,
    builder: &Builder<'ctx>,
    v: IntValue<'ctx>,
) -> Option<IntValue<'ctx>> {
    let bswap = inkwell::intrinsics::Intrinsic::find("llvm.bswap")?
        .get_declaration(module, &[v.get_type().into()])?;
    Some(
        builder
            .build_call(bswap, &[v.into()], "swapped")
            .ok()?
            .try_as_basic_value()
            .basic()?
            .into_int_value(),
    )
}

/// `raw`'s low `bits` bits (16, 32 or 64) in the other byte order.
pub(super) fn swap_bytes(raw: u64, bits: u32) -> u64 {
    match bits {
        16 => u64::from((raw as u16).swap_bytes()),
        32 => u64::from((raw as u32).swap_bytes()),
        _ => raw.swap_bytes(),
    }
}

/// Calls inline asm `text` (operand `constraint`s) on `args` at the builder's position: an
/// instruction the back end emits as written and cannot see through. Marked as reading and
/// writing no memory and always returning, so it only computes.
pub(super) fn pure_asm<'ctx>(
    builder: &Builder<'ctx>,
    ty: IntType<'ctx>,
    text: String,
    constraint: &str,
    args: &[IntValue<'ctx>],
    name: &str,
) -> Option<IntValue<'ctx>> {
    let ctx = builder.get_insert_block()?.get_context();
    let params: Vec<BasicMetadataTypeEnum> = args.iter().map(|a| a.get_type().into()).collect();
    let asm_ty = ty.fn_type(&params, false);
    let asm = ctx.create_inline_asm(asm_ty, text, constraint.into(), false, false, None, false);
    let values: Vec<BasicMetadataValueEnum> = args.iter().map(|&a| a.into()).collect();
    let call = builder
        .build_indirect_call(asm_ty, asm, &values, name)
        .ok()?;
    let attribute =
        |name: &str| ctx.create_enum_attribute(Attribute::get_named_enum_kind_id(name), 0);
    for name in ["memory", "nounwind", "willreturn"] {
        call.add_attribute(AttributeLoc::Function, attribute(name));
    }
    Some(call.try_as_basic_value().basic()?.into_int_value())
}

/// The value `i` copies when it is `bpf.opaque`'s empty inline assembly (`"=r,0"`): the same
/// value, hidden from LLVM.
pub(super) fn opaque_operand(i: InstructionValue<'_>) -> Option<BasicValueEnum<'_>> {
    use llvm_sys::core::{
        LLVMGetCalledValue, LLVMGetInlineAsmAsmString, LLVMGetInlineAsmConstraintString,
        LLVMIsAInlineAsm,
    };
    if i.get_opcode() != InstructionOpcode::Call || i.get_num_operands() != 2 {
        return None;
    }
    // SAFETY: `i` is a live call instruction; the strings belong to its inline assembly, which
    // outlives this read.
    let identity = unsafe {
        let callee = LLVMGetCalledValue(i.as_value_ref());
        if callee.is_null() || LLVMIsAInlineAsm(callee).is_null() {
            return None;
        }
        let (mut text_len, mut constraint_len) = (0usize, 0usize);
        let text = LLVMGetInlineAsmAsmString(callee, &mut text_len);
        let constraint = LLVMGetInlineAsmConstraintString(callee, &mut constraint_len);
        !text.is_null()
            && text_len == 0
            && !constraint.is_null()
            && std::slice::from_raw_parts(constraint.cast::<u8>(), constraint_len) == b"=r,0"
    };
    identity.then(|| i.get_operand(0)?.value())?
}

/// Whether `i` becomes a BPF `call` (a helper, a kfunc, a function): not an intrinsic, which
/// becomes instructions, nor inline assembly.
pub(super) fn is_bpf_call(i: InstructionValue<'_>) -> bool {
    use llvm_sys::core::{LLVMGetCalledValue, LLVMIsAInlineAsm};
    if i.get_opcode() != InstructionOpcode::Call || calls_intrinsic(i, "llvm.") {
        return false;
    }
    // SAFETY: `i` is a live call instruction.
    unsafe {
        let callee = LLVMGetCalledValue(i.as_value_ref());
        !callee.is_null() && LLVMIsAInlineAsm(callee).is_null()
    }
}

pub(super) fn successors<'ctx>(b: BasicBlock<'ctx>) -> Vec<BasicBlock<'ctx>> {
    let Some(t) = b.get_terminator() else {
        return Vec::new();
    };
    (0..t.get_num_operands())
        .filter_map(|i| t.get_operand(i)?.block())
        .collect()
}

/// The instructions that use `v` (each once).
pub(super) fn users<'ctx>(v: impl BasicValue<'ctx>) -> Vec<InstructionValue<'ctx>> {
    users_from(v.get_first_use())
}

/// The instructions that use the result of `i` (each once).
pub(super) fn users_of_result(i: InstructionValue<'_>) -> Vec<InstructionValue<'_>> {
    users_from(i.get_first_use())
}

fn users_from(first: Option<BasicValueUse<'_>>) -> Vec<InstructionValue<'_>> {
    let mut out = Vec::new();
    let mut at = first;
    while let Some(u) = at {
        // A user that yields a value comes back as that value's kind, not as an instruction.
        let user = match u.get_user() {
            AnyValueEnum::InstructionValue(i) => Some(i),
            AnyValueEnum::IntValue(x) => x.as_instruction(),
            AnyValueEnum::PointerValue(x) => x.as_instruction(),
            AnyValueEnum::StructValue(x) => x.as_instruction(),
            AnyValueEnum::ArrayValue(x) => x.as_instruction(),
            AnyValueEnum::VectorValue(x) => x.as_instruction(),
            AnyValueEnum::FloatValue(x) => x.as_instruction(),
            AnyValueEnum::PhiValue(x) => Some(x.as_instruction()),
            _ => None,
        };
        if let Some(i) = user.filter(|i| !out.contains(i)) {
            out.push(i);
        }
        at = u.get_next_use();
    }
    out
}

/// The instructions of `block`, in order.
pub(super) fn instructions(block: BasicBlock<'_>) -> impl Iterator<Item = InstructionValue<'_>> {
    std::iter::successors(block.get_first_instruction(), |i| i.get_next_instruction())
}

/// The phis at the start of `block`.
pub(super) fn phis_of(block: BasicBlock<'_>) -> Vec<PhiValue<'_>> {
    let mut out = Vec::new();
    let mut at = block.get_first_instruction();
    while let Some(i) = at.filter(|i| i.get_opcode() == InstructionOpcode::Phi) {
        out.extend(PhiValue::try_from(i).ok());
        at = i.get_next_instruction();
    }
    out
}

/// Makes every use of `old` a use of `new`, which may be a constant.
pub(super) fn replace_all_uses<'ctx>(old: InstructionValue<'ctx>, new: impl AsValueRef) {
    // SAFETY: both are live values of the same type in one context.
    unsafe { llvm_sys::core::LLVMReplaceAllUsesWith(old.as_value_ref(), new.as_value_ref()) }
}

/// The blocks reachable from `starts`, `starts` included, in breadth-first order.
pub(super) fn reachable_from<'ctx>(starts: &[BasicBlock<'ctx>]) -> Vec<BasicBlock<'ctx>> {
    let mut seen: HashSet<BasicBlock> = starts.iter().copied().collect();
    let mut order = starts.to_vec();
    let mut k = 0;
    while k < order.len() {
        for s in successors(order[k]) {
            if seen.insert(s) {
                order.push(s);
            }
        }
        k += 1;
    }
    order
}

/// The blocks on a cycle through `header`; empty when it heads none.
pub(super) fn loop_of(header: BasicBlock<'_>) -> HashSet<BasicBlock<'_>> {
    let ahead = reachable_from(&successors(header));
    if !ahead.contains(&header) {
        return HashSet::new();
    }
    ahead
        .into_iter()
        .filter(|&b| b == header || reachable_from(&successors(b)).contains(&header))
        .collect()
}

/// Whether `b` lies on a cycle: it can reach itself.
pub(super) fn in_cycle(b: BasicBlock<'_>) -> bool {
    reachable_from(&successors(b)).contains(&b)
}

/// The blocks that branch to each block of `f` (once per block, however many edges).
pub(super) fn predecessors(f: FunctionValue<'_>) -> HashMap<BasicBlock<'_>, Vec<BasicBlock<'_>>> {
    let mut out: HashMap<_, Vec<_>> = HashMap::new();
    for b in f.get_basic_blocks() {
        for s in successors(b) {
            let from = out.entry(s).or_default();
            if !from.contains(&b) {
                from.push(b);
            }
        }
    }
    out
}

/// Erases `i`, when nothing uses it, and then each instruction it leaves without uses.
pub(super) fn erase_dead(i: InstructionValue<'_>) {
    erase_all_dead(&[i]);
}

/// Erases each of `roots` that nothing uses but the others, and then each instruction they leave
/// without uses (not allocas, nor instructions that write memory). All of them are found first,
/// each after every user it had, and erased in that order: no instruction is looked at once
/// erased, however roots and operands are shared (`x + x`, a root that is another's operand).
pub(super) fn erase_all_dead(roots: &[InstructionValue<'_>]) {
    let mut dead: Vec<InstructionValue> = Vec::new();
    let mut candidates = roots.to_vec();
    loop {
        let found = dead.len();
        let mut next = 0;
        while let Some(&c) = candidates.get(next) {
            next += 1;
            if dead.contains(&c) || !users_of_result(c).iter().all(|u| dead.contains(u)) {
                continue;
            }
            dead.push(c);
            candidates.extend(
                (0..c.get_num_operands())
                    .filter_map(|k| c.get_operand(k)?.value()?.as_instruction_value())
                    .filter(|o| {
                        !matches!(o.get_opcode(), InstructionOpcode::Alloca)
                            && !may_write_memory(*o)
                    }),
            );
        }
        // (A root whose only users were roots looked at after it dies in the next round.)
        if dead.len() == found {
            break;
        }
    }
    for x in dead {
        x.erase_from_basic_block();
    }
}

/// Whether `i` may write memory: a store, an atomic, a fence, or a call of anything but the
/// intrinsics that only compute or read.
pub(super) fn may_write_memory(i: InstructionValue<'_>) -> bool {
    const PURE: [&str; 6] = [
        "llvm.bswap",
        "llvm.dbg",
        "llvm.assume",
        "llvm.bpf.getelementptr.and.load",
        "llvm.umin",
        "llvm.umax",
    ];
    match i.get_opcode() {
        InstructionOpcode::Store
        | InstructionOpcode::AtomicRMW
        | InstructionOpcode::AtomicCmpXchg
        | InstructionOpcode::Fence => true,
        InstructionOpcode::Call => !PURE.iter().any(|p| calls_intrinsic(i, p)) && !reads_only(i),
        _ => false,
    }
}

/// Whether `i` is a store (or a `memset`/`memcpy`) into a stack slot other than the object at
/// `base`: it cannot change what is loaded from `base`.
pub(super) fn stores_elsewhere(i: InstructionValue<'_>, base: PointerValue<'_>) -> bool {
    let destination = match i.get_opcode() {
        InstructionOpcode::Store => pointer_operand(i, 1),
        _ if calls_intrinsic(i, "llvm.memset") || calls_intrinsic(i, "llvm.memcpy") => {
            pointer_operand(i, 0)
        }
        _ => None,
    };
    destination
        .map(|p| constant_base(p).0)
        .is_some_and(|written| is_alloca(written) && written != base)
}

/// Whether a call is declared to write no memory (`memory(read)` or `memory(none)`, as the
/// BPF back end says of bpf_map_lookup_elem).
pub(super) fn reads_only(call: InstructionValue<'_>) -> bool {
    use llvm_sys::core::{
        LLVMGetCallSiteEnumAttribute, LLVMGetEnumAttributeKindForName, LLVMGetEnumAttributeValue,
    };
    // MemoryEffects: two bits (read 1, write 2) for each of three locations.
    const WRITES: u64 = 0b10_10_10;
    // SAFETY: `call` is a live call; the attribute is checked for null before it is read.
    unsafe {
        let kind = LLVMGetEnumAttributeKindForName(c"memory".as_ptr(), 6);
        let attribute = LLVMGetCallSiteEnumAttribute(
            call.as_value_ref(),
            llvm_sys::LLVMAttributeFunctionIndex,
            kind,
        );
        !attribute.is_null() && LLVMGetEnumAttributeValue(attribute) & WRITES == 0
    }
}

/// Every edge of the terminator `term` to `from` goes to `to` instead.
pub(super) fn redirect<'ctx>(
    term: InstructionValue<'ctx>,
    from: BasicBlock<'ctx>,
    to: BasicBlock<'ctx>,
) {
    use llvm_sys::core::{LLVMGetNumSuccessors, LLVMGetSuccessor, LLVMSetSuccessor};
    // SAFETY: `term` is a live terminator; both blocks belong to its function.
    unsafe {
        let t = term.as_value_ref();
        for i in 0..LLVMGetNumSuccessors(t) {
            if LLVMGetSuccessor(t, i) == from.as_mut_ptr() {
                LLVMSetSuccessor(t, i, to.as_mut_ptr());
            }
        }
    }
}

/// A block on the edge from `from` to `to` (which `from` reaches once): `from` branches to it,
/// it branches on to `to`, and `to`'s phis take from it what they took from `from`.
pub(super) fn split_edge<'ctx>(
    builder: &Builder<'ctx>,
    from: BasicBlock<'ctx>,
    to: BasicBlock<'ctx>,
) -> Option<BasicBlock<'ctx>> {
    let term = from.get_terminator()?;
    let edge = to.get_context().insert_basic_block_after(from, "edge");
    // (At the end of a new block the builder would keep the last place's debug location,
    // which may be another function's.)
    builder.position_before(&term);
    builder.position_at_end(edge);
    builder.build_unconditional_branch(to).ok()?;
    redirect(term, to, edge);
    for phi in phis_of(to) {
        remap_incoming(builder, phi, |b| Some(if b == from { edge } else { b }))?;
    }
    Some(edge)
}

/// Makes `phi` again with each incoming block `b` as `remap(b)` says (`None`: the edge is gone),
/// in its place and for all its uses; the new phi.
pub(super) fn remap_incoming<'ctx>(
    builder: &Builder<'ctx>,
    phi: PhiValue<'ctx>,
    remap: impl Fn(BasicBlock<'ctx>) -> Option<BasicBlock<'ctx>>,
) -> Option<PhiValue<'ctx>> {
    builder.position_before(&phi.as_instruction());
    let made = builder
        .build_phi(phi.as_basic_value().get_type(), "")
        .ok()?;
    for k in 0..phi.count_incoming() {
        let (v, b) = phi.get_incoming(k)?;
        if let Some(b) = remap(b) {
            made.add_incoming(&[(&v as &dyn BasicValue, b)]);
        }
    }
    replace_all_uses(phi.as_instruction(), made.as_basic_value());
    phi.as_instruction().erase_from_basic_block();
    Some(made)
}

/// Whether `i`, collected from `block` before a rewrite, is still one of its instructions (a
/// rewrite may have erased it: an erased instruction must not be looked at).
pub(super) fn still_in(block: BasicBlock<'_>, i: InstructionValue<'_>) -> bool {
    instructions(block).any(|x| x == i)
}

/// Whether every path from the entry to `b` passes through `d`.
pub(super) fn dominates<'ctx>(
    f: FunctionValue<'ctx>,
    d: BasicBlock<'ctx>,
    b: BasicBlock<'ctx>,
) -> bool {
    dominated_by(f, d).contains(&b)
}

/// The blocks every path from the entry to which passes through `d`: `d` itself, the blocks
/// after it, and any the entry does not reach.
pub(super) fn dominated_by<'ctx>(
    f: FunctionValue<'ctx>,
    d: BasicBlock<'ctx>,
) -> HashSet<BasicBlock<'ctx>> {
    let Some(entry) = f.get_first_basic_block() else {
        return HashSet::new();
    };
    // The blocks a path from the entry reaches without passing `d`.
    let mut around = HashSet::new();
    if entry != d {
        around.insert(entry);
    }
    let mut work: Vec<BasicBlock> = around.iter().copied().collect();
    while let Some(x) = work.pop() {
        for s in successors(x) {
            if s != d && around.insert(s) {
                work.push(s);
            }
        }
    }
    f.get_basic_blocks()
        .into_iter()
        .filter(|x| !around.contains(x))
        .collect()
}

/// Whether a path from `address` to `user` passes a call (after which every register but the
/// callee-saved four is lost, and those four are few).
pub(super) fn crosses_call<'ctx>(
    address: InstructionValue<'ctx>,
    user: InstructionValue<'ctx>,
    preds: &HashMap<BasicBlock<'ctx>, Vec<BasicBlock<'ctx>>>,
) -> bool {
    instructions_between(address, user, preds)
        .into_iter()
        .any(is_bpf_call)
}

/// The instructions that may run after `from` and before `to`, which `from` dominates, on a
/// path that does not run `from` again.
pub(super) fn instructions_between<'ctx>(
    from: InstructionValue<'ctx>,
    to: InstructionValue<'ctx>,
    preds: &HashMap<BasicBlock<'ctx>, Vec<BasicBlock<'ctx>>>,
) -> Vec<InstructionValue<'ctx>> {
    let (Some(home), Some(at)) = (from.get_parent(), to.get_parent()) else {
        return Vec::new();
    };
    let after_from =
        std::iter::successors(from.get_next_instruction(), |i| i.get_next_instruction());
    if home == at {
        return after_from.take_while(|&i| i != to).collect();
    }
    // Blocks a path leaving `home` reaches without entering `home` again (which runs `from`).
    let mut region = HashSet::new();
    let mut work: Vec<BasicBlock> = successors(home);
    while let Some(b) = work.pop() {
        if b != home && region.insert(b) {
            work.extend(successors(b));
        }
    }
    let reaching_to = reaching(at, preds);
    let mut out: Vec<InstructionValue> = after_from.collect();
    // (`to`'s own block is among these, whole, when a path may pass it before arriving at `to`.)
    for &b in region.iter().filter(|b| reaching_to.contains(b)) {
        out.extend(instructions(b));
    }
    if !reaching_to.contains(&at) {
        out.extend(instructions(at).take_while(|&i| i != to));
    }
    out
}

/// The blocks from which `to` can be reached.
pub(super) fn reaching<'ctx>(
    to: BasicBlock<'ctx>,
    preds: &HashMap<BasicBlock<'ctx>, Vec<BasicBlock<'ctx>>>,
) -> HashSet<BasicBlock<'ctx>> {
    let mut seen = HashSet::new();
    let mut work = vec![to];
    while let Some(b) = work.pop() {
        for &p in preds.get(&b).into_iter().flatten() {
            if seen.insert(p) {
                work.push(p);
            }
        }
    }
    seen
}

/// The immediate dominators of `f`'s reachable blocks (Cooper, Harvey and Kennedy's iteration
/// over reverse postorder), for the nearest block every path to a set of blocks passes.
pub(super) struct Dominators<'ctx> {
    /// Each reachable block's position in reverse postorder (the entry is 0).
    order: HashMap<BasicBlock<'ctx>, usize>,
    /// The immediate dominator of each block, by position (the entry's is itself).
    idom: Vec<usize>,
    blocks: Vec<BasicBlock<'ctx>>,
}

impl<'ctx> Dominators<'ctx> {
    pub(super) fn of(f: FunctionValue<'ctx>) -> Option<Self> {
        let entry = f.get_first_basic_block()?;
        // Postorder by an explicit stack: (block, successors visited so far).
        let mut post = Vec::new();
        let mut seen = HashSet::from([entry]);
        let mut stack = vec![(entry, successors(entry), 0usize)];
        while let Some((b, succ, next)) = stack.last_mut() {
            if let Some(&s) = succ.get(*next) {
                *next += 1;
                if seen.insert(s) {
                    stack.push((s, successors(s), 0));
                }
            } else {
                post.push(*b);
                stack.pop();
            }
        }
        let blocks: Vec<BasicBlock> = post.into_iter().rev().collect();
        let order: HashMap<BasicBlock, usize> =
            blocks.iter().enumerate().map(|(i, &b)| (b, i)).collect();
        let preds = predecessors(f);
        // (`UNSET`: not yet reached by the iteration.)
        const UNSET: usize = usize::MAX;
        let mut idom = vec![UNSET; blocks.len()];
        idom[0] = 0;
        let mut changed = true;
        while changed {
            changed = false;
            for (i, b) in blocks.iter().enumerate().skip(1) {
                let mut new = UNSET;
                for p in preds.get(b).into_iter().flatten() {
                    match order.get(p) {
                        Some(&p) if idom[p] != UNSET => {
                            new = if new == UNSET {
                                p
                            } else {
                                Self::meet(&idom, new, p)
                            };
                        }
                        _ => {}
                    }
                }
                if new != UNSET && idom[i] != new {
                    idom[i] = new;
                    changed = true;
                }
            }
        }
        Some(Dominators {
            order,
            idom,
            blocks,
        })
    }

    /// The nearest common dominator of two blocks, by position.
    fn meet(idom: &[usize], mut a: usize, mut b: usize) -> usize {
        while a != b {
            while a > b {
                a = idom[a];
            }
            while b > a {
                b = idom[b];
            }
        }
        a
    }

    /// The reachable blocks, each after every block that dominates it (reverse postorder).
    pub(super) fn blocks(&self) -> &[BasicBlock<'ctx>] {
        &self.blocks
    }

    /// The nearest block that every path from the entry to each of `blocks` passes through.
    pub(super) fn common(&self, blocks: &[BasicBlock<'ctx>]) -> Option<BasicBlock<'ctx>> {
        let mut at: Option<usize> = None;
        for b in blocks {
            let i = *self.order.get(b)?;
            at = Some(at.map_or(i, |a| Self::meet(&self.idom, a, i)));
        }
        at.map(|i| self.blocks[i])
    }
    /// Whether every path from the entry to instruction `b` passes instruction `a` first.
    pub(super) fn dominates_instruction(
        &self,
        a: InstructionValue<'ctx>,
        b: InstructionValue<'ctx>,
    ) -> bool {
        let (Some(x), Some(y)) = (a.get_parent(), b.get_parent()) else {
            return false;
        };
        if x == y {
            return std::iter::successors(a.get_next_instruction(), |i| i.get_next_instruction())
                .any(|i| i == b);
        }
        self.common(&[x, y]) == Some(x)
    }
}

/// `value` through an inline asm with `text` (empty: no instruction at all) that hands it back
/// unchanged in its register. The asm has side effects: the back end keeps it in order with
/// the block's stores, calls and other such asms, and cannot see through it, so what reads the
/// copy runs after it. `None` for a type no register class takes as it is.
pub(super) fn ordered_copy<'ctx>(
    builder: &Builder<'ctx>,
    value: BasicValueEnum<'ctx>,
    text: &str,
    alu32: bool,
) -> Option<BasicValueEnum<'ctx>> {
    let ty = value.get_type();
    let constraint = match ty {
        BasicTypeEnum::PointerType(_) => "=r,0",
        BasicTypeEnum::IntType(t) if t.get_bit_width() == 64 => "=r,0",
        BasicTypeEnum::IntType(t) if t.get_bit_width() == 32 && alu32 => "=w,0",
        _ => return None,
    };
    let ctx = builder.get_insert_block()?.get_context();
    let asm_ty = ty.fn_type(&[ty.into()], false);
    let asm = ctx.create_inline_asm(
        asm_ty,
        text.into(),
        constraint.into(),
        true,
        false,
        None,
        false,
    );
    let call = builder
        .build_indirect_call(asm_ty, asm, &[value.into()], "")
        .ok()?;
    let nounwind = Attribute::get_named_enum_kind_id("nounwind");
    call.add_attribute(
        AttributeLoc::Function,
        ctx.create_enum_attribute(nounwind, 0),
    );
    call.try_as_basic_value().basic()
}
