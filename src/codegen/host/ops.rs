//! The `host` dialect: calls into the runtime's C ABI (runtime/ABI.md) and the C library, object
//! names as C strings, and runtime errors.

use crate::codegen::llvm::{c_name, FnGen, Gen};
use crate::ir::{Attr, OpData, Opcode, Type};
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::module::Linkage;
use inkwell::types::{BasicMetadataTypeEnum, BasicType};
use inkwell::values::{BasicMetadataValueEnum, FunctionValue, PointerValue};

/// Runtime functions with C variadic arguments after their fixed ones.
const VARIADIC: &[(&str, usize)] = &[("ksrt_print", 1), ("ksrt_py_call", 8)];

impl<'ctx> Gen<'_, 'ctx> {
    /// The address of a NUL-terminated constant string (merged with equal ones by LLVM).
    pub fn c_string(&self, bytes: &[u8]) -> PointerValue<'ctx> {
        let init = self.ctx.const_string(bytes, true);
        let g = self.module.add_global(init.get_type(), None, ".str");
        g.set_initializer(&init);
        g.set_constant(true);
        g.set_linkage(Linkage::Private);
        g.set_unnamed_addr(true);
        g.as_pointer_value()
    }

    /// A C function of the runtime or libc, declared on first use with the C types of the IR
    /// types it is called with. Narrow integers and bools carry the extension attribute the C ABI
    /// expects of the caller.
    pub fn c_function(&mut self, name: &str, params: &[Type], ret: &Type) -> FunctionValue<'ctx> {
        if let Some(f) = self.module.get_function(name) {
            return f;
        }
        let fixed = VARIADIC
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, k)| k.min(params.len()));
        let shown = &params[..fixed.unwrap_or(params.len())];
        let ps: Vec<BasicMetadataTypeEnum> =
            shown.iter().map(|p| self.llvm_type(p).into()).collect();
        let fty = match ret {
            Type::Void => self.ctx.void_type().fn_type(&ps, fixed.is_some()),
            t => self.llvm_type(t).fn_type(&ps, fixed.is_some()),
        };
        let f = self.module.add_function(name, fty, Some(Linkage::External));
        for (i, p) in shown.iter().enumerate() {
            if let Some(ext) = extension(p) {
                f.add_attribute(
                    AttributeLoc::Param(i as u32),
                    self.ctx
                        .create_enum_attribute(Attribute::get_named_enum_kind_id(ext), 0),
                );
            }
        }
        if let Some(ext) = extension(ret) {
            f.add_attribute(
                AttributeLoc::Return,
                self.ctx
                    .create_enum_attribute(Attribute::get_named_enum_kind_id(ext), 0),
            );
        }
        f
    }
}

/// The argument extension C requires for a narrow integer or bool.
fn extension(t: &Type) -> Option<&'static str> {
    match t {
        Type::Bool => Some("zeroext"),
        Type::Int(i) if i.bits() < 32 => Some(if i.signed() { "signext" } else { "zeroext" }),
        _ => None,
    }
}

impl<'ctx> FnGen<'_, '_, 'ctx> {
    /// The `host` dialect.
    pub fn host_op(&mut self, d: &OpData) -> Result<(), String> {
        let e = |x: inkwell::builder::BuilderError| x.to_string();
        match d.opcode {
            Opcode::HostRtCall | Opcode::HostLibcCall => {
                let Some(Attr::Str(callee)) = &d.attrs[0] else {
                    return Err("call without callee".into());
                };
                let callee = String::from_utf8_lossy(callee).into_owned();
                let params: Vec<Type> = d.operands.iter().map(|&a| self.ty(a)).collect();
                let ret = d.results.first().map(|&r| self.ty(r)).unwrap_or(Type::Void);
                let f = self.g.c_function(&callee, &params, &ret);
                let args: Vec<BasicMetadataValueEnum> = d
                    .operands
                    .iter()
                    .map(|&a| self.v(a).map(Into::into))
                    .collect::<Result<_, _>>()?;
                let call = self.builder.build_call(f, &args, "").map_err(e)?;
                if let Some(v) = call.try_as_basic_value().basic() {
                    if !d.results.is_empty() {
                        self.set(d, v);
                    }
                }
            }
            Opcode::HostMapRef | Opcode::HostProgRef => {
                let Some(Attr::Sym(name)) = &d.attrs[0] else {
                    return Err("reference without a name".into());
                };
                // Programs are named in the object by their C name (struct_ops methods included).
                let p = self.g.c_string(c_name(name).as_bytes());
                self.set(d, p);
            }
            Opcode::HostCstr => {
                let Some(Attr::Str(s)) = &d.attrs[0] else {
                    return Err("cstr without value".into());
                };
                let p = self.g.c_string(s);
                self.set(d, p);
            }
            Opcode::HostRuntimeError => {
                let Some(Attr::Str(message)) = &d.attrs[0] else {
                    return Err("runtime_error without message".into());
                };
                let loc = d.loc;
                let file = self
                    .g
                    .m
                    .files
                    .get(loc.file as usize)
                    .cloned()
                    .unwrap_or_default();
                let args = [
                    self.g.c_string(file.as_bytes()).into(),
                    self.i32c(loc.line as u64).into(),
                    self.i32c(loc.col as u64).into(),
                    self.g.c_string(message).into(),
                ];
                let f = self.g.c_function(
                    "ksrt_runtime_error",
                    &[
                        Type::ptr(Type::u8()),
                        Type::u32(),
                        Type::u32(),
                        Type::ptr(Type::u8()),
                    ],
                    &Type::Void,
                );
                self.builder.build_call(f, &args, "").map_err(e)?;
                self.builder.build_unreachable().map_err(e)?;
            }
            other => {
                return Err(format!(
                    "`{}` cannot appear in a lowered userspace function",
                    other.name()
                ))
            }
        }
        Ok(())
    }
}
