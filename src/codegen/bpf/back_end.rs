//! What the BPF back end tells the shared LLVM layer: C symbols, the attributes BPF functions
//! need, how programs receive their arguments, and the `bpf` dialect.

use super::program_args::{self, args_of, Args};
use crate::codegen::llvm::{c_name, BackEnd, FnGen, Gen};
use crate::ir::views::KsFunc;
use crate::ir::{Module, OpData, OpId, Type};
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::types::{BasicMetadataTypeEnum, BasicTypeEnum};
use inkwell::values::{BasicValueEnum, FunctionValue};

pub struct Bpf {
    /// The CPU has `sdiv`/`smod` (v4).
    pub signed_division: bool,
    /// Optimising (not -O0): functions only called directly are inlined.
    pub optimize: bool,
    /// The functions only ever called directly (never referenced otherwise), found once per module.
    pub inlined_calls: std::cell::OnceCell<std::collections::HashSet<String>>,
    /// The array lookups another lookup may share (see `array_entries`), found once per module.
    pub shareable_lookups: std::cell::OnceCell<std::collections::HashSet<crate::ir::Value>>,
    /// The last sequence number given to an `llvm.bpf.btf.type.id` call (each must be distinct).
    pub type_id_seq: std::cell::Cell<u32>,
    /// The last sequence number given to an `llvm.bpf.passthrough` call of a `bpf.passthrough`.
    pub passthrough_seq: std::cell::Cell<u32>,
}

impl Bpf {
    /// A sequence number for the next `llvm.bpf.btf.type.id` call.
    pub fn next_type_id_seq(&self) -> u32 {
        self.type_id_seq.set(self.type_id_seq.get() + 1);
        self.type_id_seq.get()
    }

    /// A sequence number for the next `bpf.passthrough`: each call must be distinct, or LLVM
    /// would merge two of one value. (Counted from 2^24, clear of the numbers the BPF back end
    /// gives its own passthroughs.)
    pub fn next_passthrough_seq(&self) -> u32 {
        let next = self.passthrough_seq.get().max(1 << 24) + 1;
        self.passthrough_seq.set(next);
        next
    }
}

impl BackEnd for Bpf {
    /// Kernel functions keep their (C) name, which is what BTF and the verifier show.
    fn function_symbol(&self, name: &str) -> String {
        c_name(name)
    }

    /// BPF returns only a register and passes at most five: a function returning a struct,
    /// array or string, or whose arguments take more than five registers (a struct passed by
    /// value takes one per scalar, padding included), is always inlined (kernel code has no
    /// recursion), which -O0's pipeline does too; LLVM's BPF back end crashes on a call it has
    /// to lower otherwise.
    /// Optimising, every function only ever called directly is inlined too, as C's `static
    /// __always_inline` helpers are: LLVM's own heuristics leave a call it guesses cold (one behind a
    /// few packet tests) or one of several calls as a BPF call, paying the call, argument moves and
    /// the throw status each time, where the verifier walks the callee at every call anyway.
    fn decorate_function<'ctx>(&self, g: &Gen<'_, 'ctx>, f: OpId, func: FunctionValue<'ctx>) {
        let program = KsFunc(f).kind(g.m).is_some();
        let ret = match KsFunc(f).ty(g.m) {
            Type::Func(ft) => ft.ret.clone(),
            _ => Type::Void,
        };
        let registers: u64 = func
            .get_type()
            .get_param_types()
            .iter()
            .map(|&p| argument_registers(p))
            .sum();
        let aggregate_return = !ret.is_scalar() && ret != Type::Void;
        let only_called = self.optimize
            && g.m.symbol(f).is_some_and(|name| {
                self.inlined_calls
                    .get_or_init(|| only_called(g.m))
                    .contains(name)
            });
        if !program && (aggregate_return || registers > MAX_ARGUMENT_REGISTERS || only_called) {
            let always = Attribute::get_named_enum_kind_id("alwaysinline");
            func.add_attribute(
                AttributeLoc::Function,
                g.ctx.create_enum_attribute(always, 0),
            );
        }
    }

    fn arguments_in_context(&self, m: &Module, f: OpId) -> bool {
        args_of(m, f) != Args::Direct
    }

    fn context_argument<'ctx>(
        &self,
        fg: &FnGen<'_, '_, 'ctx>,
        f: OpId,
        i: usize,
        ty: &Type,
    ) -> Result<BasicValueEnum<'ctx>, String> {
        program_args::context_argument(fg, args_of(fg.g.m, f), i, ty)
    }

    fn dialect_op(&self, fg: &mut FnGen, d: &OpData) -> Result<(), String> {
        fg.bpf_op(self, d)
    }

    fn constant_section(&self) -> Option<&'static str> {
        Some(".rodata")
    }

    fn has_signed_division(&self) -> bool {
        self.signed_division
    }

    fn unreachable_returns(&self) -> bool {
        !self.optimize
    }
}

/// The registers r1–r5 that carry a BPF call's arguments.
const MAX_ARGUMENT_REGISTERS: u64 = 5;

/// The registers an argument of LLVM type `t` takes: the BPF back end passes an aggregate by
/// value one register per scalar it holds, padding included (`<{ i32, i16, i8, [1 x i8] }>`
/// takes four).
fn argument_registers(t: BasicMetadataTypeEnum) -> u64 {
    fn of(t: BasicTypeEnum) -> u64 {
        match t {
            BasicTypeEnum::StructType(s) => s.get_field_types().into_iter().map(of).sum(),
            BasicTypeEnum::ArrayType(a) => u64::from(a.len()) * of(a.get_element_type()),
            _ => 1,
        }
    }
    BasicTypeEnum::try_from(t).map_or(1, of)
}

/// The functions called directly whose address is never taken (a callback must stay a function).
fn only_called(m: &Module) -> std::collections::HashSet<String> {
    let mut called = std::collections::HashSet::new();
    let mut referenced = std::collections::HashSet::new();
    for &top in m.top_ops() {
        m.walk_nested(top, &mut |o| {
            if let Some(crate::ir::Attr::Sym(callee)) = m.attr(o, "callee") {
                match m.op(o).opcode {
                    crate::ir::Opcode::CoreCall => called.insert(callee.clone()),
                    _ => referenced.insert(callee.clone()),
                };
            }
        });
    }
    called.retain(|name| !referenced.contains(name));
    called
}
