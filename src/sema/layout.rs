//! C layout of KernelScript types (§6.1): sizes, alignments and field offsets for `sizeof`, struct
//! layout, the kernel stack accounting of §19, and the IR's struct declarations.

use super::env::{EnumInfo, StructInfo};
use super::types::Ty;
use super::Checker;

/// Layout queries over the checker's struct and enum tables.
pub struct Layout<'t> {
    pub structs: &'t [StructInfo],
    pub enums: &'t [EnumInfo],
}

impl Layout<'_> {
    /// Size in bytes; `None` for types without storage (void, functions as values are 8).
    pub fn size_of(&self, t: &Ty) -> Option<u64> {
        Some(match t {
            Ty::Int(i) => i.bits() as u64 / 8,
            Ty::Bool | Ty::Char => 1,
            Ty::Void | Ty::Null | Ty::Error => return None,
            Ty::Str(n) => *n as u64,
            Ty::Array(e, n) => self.size_of(e)? * *n as u64,
            Ty::FillArray(_) => return None,
            Ty::Ptr(_) | Ty::Fn(_) | Ty::ProgramHandle | Ty::PerfAttachment => 8,
            Ty::Enum(id) => self.enums[id.0 as usize].repr.bits() as u64 / 8,
            Ty::Struct(id) => {
                let s = &self.structs[id.0 as usize];
                if let Some(k) = s.kernel_layout {
                    return Some(k.size);
                }
                let (_, size, _) = self.c_layout(s);
                size
            }
        })
    }

    pub fn align_of(&self, t: &Ty) -> Option<u64> {
        Some(match t {
            Ty::Array(e, _) => self.align_of(e)?,
            Ty::Str(_) => 1,
            Ty::Struct(id) => {
                let s = &self.structs[id.0 as usize];
                if let Some(k) = s.kernel_layout {
                    return Some(k.align);
                }
                s.fields
                    .iter()
                    .filter_map(|f| self.align_of(&f.ty))
                    .max()
                    .unwrap_or(1)
            }
            other => self.size_of(other)?.max(1),
        })
    }

    /// Field offsets, size and alignment of a struct in C layout (natural alignment, no packing).
    pub fn c_layout(&self, s: &StructInfo) -> (Vec<u64>, u64, u64) {
        let mut offsets = Vec::with_capacity(s.fields.len());
        let mut off = 0u64;
        let mut align = 1u64;
        for f in &s.fields {
            let a = self.align_of(&f.ty).unwrap_or(1);
            off = off.div_ceil(a) * a;
            offsets.push(off);
            off += self.size_of(&f.ty).unwrap_or(0);
            align = align.max(a);
        }
        (offsets, off.div_ceil(align) * align, align)
    }
}

impl Checker<'_, '_> {
    pub fn size_of(&self, t: &Ty) -> Option<u64> {
        Layout {
            structs: &self.structs,
            enums: &self.enums,
        }
        .size_of(t)
    }
}
