//! Constant initialisers of globals and the debug description of module-level storage.

use super::{c_name, Gen};
use crate::ir::{Attr, Type};
use inkwell::debug_info::{AsDIScope, DIType};
use inkwell::values::{BasicValueEnum, GlobalValue};

impl<'ctx> Gen<'_, 'ctx> {
    pub fn align_of(&self, t: &Type) -> u32 {
        crate::ir::layout::align_of(self.m, t).unwrap_or(1) as u32
    }

    pub fn attach_debug(&mut self, g: GlobalValue<'ctx>, name: &str, ty: DIType<'ctx>, line: u32) {
        let gve = self.di.create_global_variable_expression(
            self.cu.as_debug_info_scope(),
            &c_name(name),
            &c_name(name),
            self.file,
            line,
            ty,
            false,
            None,
            None,
            0,
        );
        g.set_metadata(gve.as_metadata_value(self.ctx), self.ctx.get_kind_id("dbg"));
    }

    /// A constant of an IR type from an initialiser attribute (integers, bools, strings, lists).
    pub fn constant(&mut self, ty: &Type, a: &Attr) -> Option<BasicValueEnum<'ctx>> {
        let llty = self.memory_type(ty);
        Some(match (ty, a) {
            // Zero of any type (a config field declared without a default).
            (Type::Array(..) | Type::Struct(_) | Type::Str(_), Attr::Int(0)) => llty.const_zero(),
            (Type::Int(_), Attr::Int(i)) => llty.into_int_type().const_int(*i as u64, false).into(),
            (Type::Bool, Attr::Bool(b)) => llty.into_int_type().const_int(*b as u64, false).into(),
            (Type::Bool, Attr::Int(i)) => llty
                .into_int_type()
                .const_int((*i != 0) as u64, false)
                .into(),
            (Type::Str(n), Attr::Str(s)) => {
                let mut bytes = s.clone();
                bytes.resize(*n as usize, 0);
                self.ctx.const_string(&bytes, false).into()
            }
            (Type::Array(e, n), Attr::List(items)) => {
                let et = self.memory_type(e);
                let mut vals = Vec::new();
                for i in 0..*n as usize {
                    let v = match items.get(if items.len() == 1 { 0 } else { i }) {
                        Some(item) => self.constant(e, item)?,
                        None => et.const_zero(),
                    };
                    vals.push(v);
                }
                use inkwell::types::BasicTypeEnum as T;
                match et {
                    T::IntType(t) => t
                        .const_array(&vals.iter().map(|v| v.into_int_value()).collect::<Vec<_>>())
                        .into(),
                    T::StructType(t) => t
                        .const_array(
                            &vals
                                .iter()
                                .map(|v| v.into_struct_value())
                                .collect::<Vec<_>>(),
                        )
                        .into(),
                    T::ArrayType(t) => t
                        .const_array(
                            &vals
                                .iter()
                                .map(|v| v.into_array_value())
                                .collect::<Vec<_>>(),
                        )
                        .into(),
                    _ => return None,
                }
            }
            (Type::Struct(name), Attr::List(items)) => {
                // Fields in declaration order; LLVM's body also holds padding, left zero.
                let st = self.struct_type(name);
                let decl = crate::ir::layout::struct_decl(self.m, name)?;
                let fields = crate::ir::views::KsStruct(decl).fields(self.m).to_vec();
                let mut body: Vec<BasicValueEnum> = st
                    .get_field_types()
                    .iter()
                    .map(|t| t.const_zero())
                    .collect();
                for ((field, fty), item) in fields.iter().zip(items) {
                    let i = self.field_position(name, field)? as usize;
                    body[i] = self.constant(fty, item)?;
                }
                st.const_named_struct(&body).into()
            }
            _ => return None,
        })
    }
}

/// Whether an initialiser is all zero bytes (such globals go to `.bss`, as a C compiler does).
pub fn is_zero(a: &Attr) -> bool {
    match a {
        Attr::Int(i) => *i == 0,
        Attr::Bool(b) => !*b,
        Attr::Str(s) => s.iter().all(|&c| c == 0),
        Attr::List(l) => l.iter().all(is_zero),
        _ => false,
    }
}
