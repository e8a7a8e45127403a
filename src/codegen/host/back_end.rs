//! What the host back end tells the shared LLVM layer: prefixed symbols, the attributes that let
//! perf and gdb walk userspace stacks, and the `host` dialect.

use crate::codegen::llvm::{BackEnd, FnGen, Gen};
use crate::ir::{Module, OpData, OpId, Type};
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::values::{BasicValueEnum, FunctionValue};

pub struct Host;

impl BackEnd for Host {
    /// Userspace functions are prefixed so that no user name can collide with the C library or
    /// the runtime they are linked with.
    fn function_symbol(&self, name: &str) -> String {
        format!("ks.{name}")
    }

    /// Frame pointers and unwind tables, so perf and gdb walk userspace stacks.
    fn decorate_function<'ctx>(&self, g: &Gen<'_, 'ctx>, _: OpId, func: FunctionValue<'ctx>) {
        func.add_attribute(
            AttributeLoc::Function,
            g.ctx.create_string_attribute("frame-pointer", "all"),
        );
        let uwtable = Attribute::get_named_enum_kind_id("uwtable");
        func.add_attribute(
            AttributeLoc::Function,
            g.ctx.create_enum_attribute(uwtable, 2),
        );
    }

    fn arguments_in_context(&self, _: &Module, _: OpId) -> bool {
        false
    }

    fn context_argument<'ctx>(
        &self,
        _: &FnGen<'_, '_, 'ctx>,
        _: OpId,
        _: usize,
        _: &Type,
    ) -> Result<BasicValueEnum<'ctx>, String> {
        Err("userspace functions take their arguments directly".into())
    }

    fn dialect_op(&self, fg: &mut FnGen, d: &OpData) -> Result<(), String> {
        fg.host_op(d)
    }

    fn constant_section(&self) -> Option<&'static str> {
        None
    }

    fn has_signed_division(&self) -> bool {
        true
    }
}
