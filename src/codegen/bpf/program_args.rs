//! How BPF programs receive their declared parameters (docs/language.md §9.2): as the function's
//! own (a context pointer), or read from their context — the trampoline's argument array, the saved
//! registers of a kprobe, or a syscall's user registers.

use crate::codegen::llvm::FnGen;
use crate::ir::views::KsFunc;
use crate::ir::{Module, OpId, Type};
use crate::vocab::ProgKind;
use inkwell::values::BasicValueEnum;
use inkwell::IntPredicate;

/// How a program receives its declared parameters (docs/language.md §9.2).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Args {
    /// As the function's parameters (the context pointer of xdp, tc, tracepoint, ...).
    Direct,
    /// From the trampoline's array of 64-bit arguments: fentry, fexit, tp_btf, lsm, struct_ops.
    Trampoline,
    /// From the saved registers in `struct pt_regs` (x86-64): kprobe, kretprobe (return value).
    Registers { ret: bool },
    /// A syscall's arguments: the user registers whose `struct pt_regs *` is the only argument
    /// of the syscall's entry wrapper, traced by fentry (`@probe("sys_openat")`).
    Syscall,
}

/// Userspace functions and most programs take their parameters directly.
pub fn args_of(m: &Module, f: OpId) -> Args {
    if KsFunc(f).syscall(m) == Some(true) {
        return Args::Syscall;
    }
    match KsFunc(f).kind(m) {
        Some(k) if k.is_trampoline() => Args::Trampoline,
        Some(ProgKind::Kprobe) => Args::Registers { ret: false },
        Some(ProgKind::Kretprobe) => Args::Registers { ret: true },
        _ => Args::Direct,
    }
}

/// Offsets in x86-64 `struct pt_regs` of the argument registers di, si, dx, cx, r8, r9, and ax.
const PT_REGS_ARGS: [u64; 6] = [112, 104, 96, 88, 72, 64];
/// A syscall's arguments are in di, si, dx, r10, r8, r9: `syscall` clobbers cx.
const PT_REGS_SYSCALL_ARGS: [u64; 6] = [112, 104, 96, 56, 72, 64];
const PT_REGS_RET: u64 = 80;

/// Argument `i` of a trampoline, register-based or syscall program, read from its context.
pub fn context_argument<'ctx>(
    fg: &FnGen<'_, '_, 'ctx>,
    args: Args,
    i: usize,
    ty: &Type,
) -> Result<BasicValueEnum<'ctx>, String> {
    let e = |x: inkwell::builder::BuilderError| x.to_string();
    let ctx = fg
        .func
        .get_nth_param(0)
        .ok_or("no context parameter")?
        .into_pointer_value();
    let (regs, offset) = match args {
        Args::Registers { ret: true } => (ctx, PT_REGS_RET),
        Args::Registers { ret: false } => (
            ctx,
            *PT_REGS_ARGS
                .get(i)
                .ok_or("more than six register arguments")?,
        ),
        Args::Syscall => {
            // The wrapper's argument is a trusted `struct pt_regs *`: loads from it are direct.
            let regs = fg
                .builder
                .build_load(fg.ptr_type(), ctx, "regs")
                .map_err(e)?
                .into_pointer_value();
            let offset = *PT_REGS_SYSCALL_ARGS
                .get(i)
                .ok_or("more than six syscall arguments")?;
            (regs, offset)
        }
        _ => (ctx, 8 * i as u64),
    };
    let addr = unsafe {
        fg.builder
            .build_gep(fg.g.ctx.i8_type(), regs, &[fg.i64c(offset)], "")
    }
    .map_err(e)?;
    let raw = fg
        .builder
        .build_load(fg.g.ctx.i64_type(), addr, "")
        .map_err(e)?
        .into_int_value();
    Ok(match ty {
        Type::Ptr(_) | Type::Func(_) => fg
            .builder
            .build_int_to_ptr(raw, fg.ptr_type(), "")
            .map_err(e)?
            .into(),
        Type::Bool => fg
            .builder
            .build_int_compare(IntPredicate::NE, raw, raw.get_type().const_zero(), "")
            .map_err(e)?
            .into(),
        Type::Int(it) => fg.resize(raw, it.bits(), false)?.into(),
        other => return Err(format!("a {other} argument cannot come from the context")),
    })
}
