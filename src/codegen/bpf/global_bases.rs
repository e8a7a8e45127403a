//! A global used at several places between two calls is addressed from one register.
//!
//! To LLVM's register allocator the address of a global (`r4 = cfg ll`) is the cheapest value
//! there is to form again, so it is the first to give its register away: in an unrolled search
//! of a config's `u8[8]` each read formed the address anew, eight `ld_imm64`s of two instruction
//! slots each, where one register would do (clang does the same). A global used at two places or
//! more is addressed through one opaque copy of its address, an empty inline asm at the block
//! that leads to all of them, which the allocator keeps in a register like any other value. Only
//! the uses that no call separates from that copy take it: after a call the copy would hold one
//! of the four callee-saved registers or go to the stack, where forming the address again is as
//! cheap.

use super::llvm_ir::{crosses_call, instructions, predecessors, Dominators};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    AsValueRef, BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue, PointerValue,
};
use inkwell::AddressSpace;
use std::collections::HashMap;

/// Where a global is used: operand `operand` of `user`, `offset` bytes into the global.
struct Use<'ctx> {
    user: InstructionValue<'ctx>,
    operand: u32,
    offset: i64,
}

pub fn share_global_bases(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        let Some(dominators) = Dominators::of(f) else {
            continue;
        };
        let preds = predecessors(f);
        for (global, uses) in global_uses(f) {
            if uses.len() < 2 {
                continue;
            }
            let homes: Vec<BasicBlock> = uses.iter().filter_map(|u| u.user.get_parent()).collect();
            let Some(home) = dominators.common(&homes) else {
                continue;
            };
            let Some(base) = opaque_copy(&builder, home, global, &uses) else {
                continue;
            };
            let near: Vec<&Use> = uses
                .iter()
                .filter(|u| !crosses_call(base, u.user, &preds))
                .collect();
            if near.len() < 2 {
                base.erase_from_basic_block();
                continue;
            }
            let Ok(base) = PointerValue::try_from(base) else {
                continue;
            };
            for u in near {
                address_from(&builder, base, u);
            }
        }
    }
}

/// The uses of each data-section global in `f`, directly or through a constant offset (phis
/// aside: their operands are formed on the edges).
fn global_uses(f: FunctionValue<'_>) -> Vec<(PointerValue<'_>, Vec<Use<'_>>)> {
    let mut order: Vec<PointerValue> = Vec::new();
    let mut by_global: HashMap<PointerValue, Vec<Use>> = HashMap::new();
    for block in f.get_basic_blocks() {
        for user in instructions(block) {
            if user.get_opcode() == InstructionOpcode::Phi {
                continue;
            }
            for operand in 0..user.get_num_operands() {
                let Some(BasicValueEnum::PointerValue(p)) =
                    user.get_operand(operand).and_then(|o| o.value())
                else {
                    continue;
                };
                if p.as_instruction().is_some() {
                    continue;
                }
                let (global, offset) = super::llvm_ir::constant_base(p);
                if !is_data_global(global) {
                    continue;
                }
                if !by_global.contains_key(&global) {
                    order.push(global);
                }
                by_global.entry(global).or_default().push(Use {
                    user,
                    operand,
                    offset,
                });
            }
        }
    }
    order
        .into_iter()
        .filter_map(|g| Some((g, by_global.remove(&g)?)))
        .collect()
}

/// A global variable in `.data*`, `.bss*` or `.rodata*`: not a map definition, which helpers
/// take as an `ld_imm64` of the map, nor a function.
fn is_data_global(p: PointerValue<'_>) -> bool {
    use llvm_sys::core::{LLVMGetSection, LLVMIsAGlobalVariable};
    let v = p.as_value_ref();
    // SAFETY: `v` is a live value; its section is read only once it is known to be a global
    // variable, and the returned string is owned by LLVM.
    unsafe {
        if LLVMIsAGlobalVariable(v).is_null() {
            return false;
        }
        let section = LLVMGetSection(v);
        if section.is_null() {
            return false;
        }
        let section = std::ffi::CStr::from_ptr(section).to_bytes();
        [&b".data"[..], b".bss", b".rodata"]
            .iter()
            .any(|prefix| section.starts_with(prefix))
    }
}

/// `global`'s address through an empty inline asm, in `home` before its first use there (or its
/// terminator).
fn opaque_copy<'ctx>(
    builder: &Builder<'ctx>,
    home: BasicBlock<'ctx>,
    global: PointerValue<'ctx>,
    uses: &[Use<'ctx>],
) -> Option<InstructionValue<'ctx>> {
    let at = instructions(home)
        .find(|&i| uses.iter().any(|u| u.user == i))
        .or_else(|| home.get_terminator())?;
    builder.position_before(&at);
    let ctx = home.get_context();
    let ptr = ctx.ptr_type(AddressSpace::default());
    let asm_ty = ptr.fn_type(&[ptr.into()], false);
    // Pure: two copies of one address are one value, and only a use keeps it alive.
    let asm = ctx.create_inline_asm(
        asm_ty,
        String::new(),
        "=r,0".into(),
        false,
        false,
        None,
        false,
    );
    let copy = builder
        .build_indirect_call(asm_ty, asm, &[global.into()], "global")
        .ok()?;
    copy.try_as_basic_value()
        .basic()?
        .into_pointer_value()
        .as_instruction()
}

/// Points `u` at `base` plus its offset, formed just before it (selection folds it into the
/// load's or store's offset).
fn address_from<'ctx>(builder: &Builder<'ctx>, base: PointerValue<'ctx>, u: &Use<'ctx>) {
    let address = if u.offset == 0 {
        base
    } else {
        builder.position_before(&u.user);
        let ctx = base.get_type().get_context();
        let offset = ctx.i64_type().const_int(u.offset as u64, true);
        // SAFETY: the same byte of the same global the constant address named.
        match unsafe { builder.build_gep(ctx.i8_type(), base, &[offset], "global") } {
            Ok(p) => p,
            Err(_) => return,
        }
    };
    u.user.set_operand(u.operand, address);
}
