//! Struct types in module C: the unit's own structs defined field by field (C layout, as
//! everywhere in KernelScript), kernel structs declared and taken from the kernel's headers.

use super::{declare, struct_c_name};
use crate::ir::views::KsStruct;
use crate::ir::{Module, OpId, Type};
use std::collections::HashSet;
use std::fmt::Write;

/// Writes the struct declarations and definitions module functions need, each definition after
/// those of the structs it contains by value.
pub fn struct_definitions(m: &Module, _funcs: &[OpId], out: &mut String) {
    let decls: Vec<OpId> = m
        .top_ops()
        .iter()
        .copied()
        .filter(|&o| KsStruct::of(m, o).is_some())
        .collect();
    let mut kernel = Vec::new();
    for &d in &decls {
        if KsStruct(d).origin(m).is_kernel_type() {
            kernel.push(d);
        }
    }
    for &d in &kernel {
        let _ = writeln!(out, "{};", struct_c_name(m, KsStruct(d).name(m)));
    }
    let mut done: HashSet<String> = kernel
        .iter()
        .map(|&d| KsStruct(d).name(m).to_string())
        .collect();
    for &d in &decls {
        define(m, d, &mut done, out);
    }
    out.push('\n');
}

fn define(m: &Module, d: OpId, done: &mut HashSet<String>, out: &mut String) {
    let s = KsStruct(d);
    let name = s.name(m).to_string();
    if !done.insert(name.clone()) {
        return;
    }
    let fields = s.fields(m).to_vec();
    for (_, t) in &fields {
        if let Some(inner) = by_value_struct(t) {
            if let Some(decl) = crate::ir::layout::struct_decl(m, inner) {
                define(m, decl, done, out);
            }
        }
    }
    let _ = writeln!(out, "\n{} {{", struct_c_name(m, &name));
    for (field, t) in &fields {
        let _ = writeln!(out, "\t{};", declare(m, t, field));
    }
    out.push_str("};\n");
}

/// The struct a field holds by value (directly or as array elements).
fn by_value_struct(t: &Type) -> Option<&str> {
    match t {
        Type::Struct(s) => Some(s),
        Type::Array(e, _) => by_value_struct(e),
        _ => None,
    }
}
