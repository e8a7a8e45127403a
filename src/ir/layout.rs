//! C layout of IR types, read from the module's `ks.struct` declarations: sizes for helpers, ring
//! buffers and bounds checks, and the layout of structs the passes declare (pinned globals, loop contexts).

use crate::ir::{views::KsStruct, Attr, Module, OpId, Opcode, Type};

/// The `ks.struct` declaring `name` (a map or global may share the name, so the opcode matters).
pub fn struct_decl(m: &Module, name: &str) -> Option<OpId> {
    m.top_ops()
        .iter()
        .copied()
        .find(|&o| m.op(o).opcode == Opcode::KsStruct && m.symbol(o) == Some(name))
}

/// The byte offsets of a `ks.struct`'s fields, in declaration order.
pub fn field_offsets(m: &Module, decl: OpId) -> Vec<u64> {
    KsStruct(decl)
        .offsets(m)
        .iter()
        .map(|a| if let Attr::Int(o) = a { *o as u64 } else { 0 })
        .collect()
}

/// The byte offset of `field` in the struct `base_ty` points to.
pub fn field_offset(m: &Module, base_ty: &Type, field: &[u8]) -> Option<u64> {
    let Some(Type::Struct(s)) = base_ty.pointee() else {
        return None;
    };
    let decl = struct_decl(m, s)?;
    let i = KsStruct(decl)
        .fields(m)
        .iter()
        .position(|(n, _)| n.as_bytes() == field)?;
    field_offsets(m, decl).get(i).copied()
}

/// Size in bytes, or `None` for types without storage.
pub fn size_of(m: &Module, t: &Type) -> Option<u64> {
    Some(match t {
        Type::Void => return None,
        Type::Bool => 1,
        Type::Int(i) => i.bits() as u64 / 8,
        Type::Ptr(_) | Type::Func(_) | Type::ProgHandle | Type::PerfHandle => 8,
        Type::Array(e, n) => size_of(m, e)? * *n as u64,
        Type::Str(n) => *n as u64,
        Type::Struct(s) => KsStruct(struct_decl(m, s)?).size(m) as u64,
    })
}

pub fn align_of(m: &Module, t: &Type) -> Option<u64> {
    Some(match t {
        Type::Array(e, _) => align_of(m, e)?,
        Type::Str(_) => 1,
        Type::Struct(s) => KsStruct(struct_decl(m, s)?).align(m) as u64,
        other => size_of(m, other)?,
    })
}

/// Field offsets, size and alignment of a C struct with these fields (natural alignment).
pub fn c_layout(m: &Module, fields: &[(String, Type)]) -> Option<(Vec<Attr>, u64, u64)> {
    let mut offsets = Vec::with_capacity(fields.len());
    let (mut off, mut align) = (0u64, 1u64);
    for (_, t) in fields {
        let a = align_of(m, t)?;
        off = off.div_ceil(a) * a;
        offsets.push(Attr::Int(off as i128));
        off += size_of(m, t)?;
        align = align.max(a);
    }
    Some((offsets, off.div_ceil(align) * align, align))
}

/// The bytes of a constant of type `t` in memory (little-endian, C layout, padding zero): the
/// initial image of storage the runtime writes, such as a config's defaults.
pub fn image(m: &Module, t: &Type, value: &Attr) -> Option<Vec<u8>> {
    let mut out = vec![0u8; size_of(m, t)? as usize];
    write_image(m, t, value, &mut out)?;
    Some(out)
}

fn write_image(m: &Module, t: &Type, value: &Attr, out: &mut [u8]) -> Option<()> {
    match (t, value) {
        // Zero of any type (a config field declared without a default): the bytes stay zero.
        (Type::Array(..) | Type::Struct(_) | Type::Str(_), Attr::Int(0)) => {}
        (Type::Int(_) | Type::Bool, Attr::Int(_) | Attr::Bool(_)) => {
            let v = match value {
                Attr::Int(i) => *i as u128,
                _ => matches!(value, Attr::Bool(true)) as u128,
            };
            let n = out.len().min(16);
            out[..n].copy_from_slice(&v.to_le_bytes()[..n]);
        }
        (Type::Str(_), Attr::Str(s)) => {
            // At most capacity − 1 content bytes: the last byte stays the terminating NUL.
            let n = s.len().min(out.len().saturating_sub(1));
            out[..n].copy_from_slice(&s[..n]);
        }
        (Type::Array(e, n), Attr::List(items)) => {
            let size = size_of(m, e)? as usize;
            for i in 0..*n as usize {
                // One item fills the whole array (`[0; N]`-style initialisers).
                let Some(item) = items.get(if items.len() == 1 { 0 } else { i }) else {
                    break;
                };
                write_image(m, e, item, &mut out[i * size..(i + 1) * size])?;
            }
        }
        (Type::Struct(name), Attr::List(items)) => {
            let decl = struct_decl(m, name)?;
            let fields = KsStruct(decl).fields(m).to_vec();
            for (((_, ft), off), item) in fields.iter().zip(field_offsets(m, decl)).zip(items) {
                let (lo, size) = (off as usize, size_of(m, ft)? as usize);
                write_image(m, ft, item, out.get_mut(lo..lo + size)?)?;
            }
        }
        _ => return None,
    }
    Some(())
}
