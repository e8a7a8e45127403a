//! IR types as LLVM types (for code) and as debug-info types (from which LLVM writes the BTF the
//! kernel and libbpf read). Structs are laid out by their `ks.struct` declaration.

use super::Gen;
use crate::ir::layout::{field_offsets, struct_decl};
use crate::ir::{views::KsStruct, Type};
use inkwell::debug_info::{AsDIScope, DIFlags, DIFlagsConstants, DIType};
use inkwell::types::{BasicType, BasicTypeEnum};
use inkwell::AddressSpace;

const DW_ATE_BOOLEAN: u32 = 0x02;
const DW_ATE_SIGNED: u32 = 0x05;
const DW_ATE_UNSIGNED: u32 = 0x07;
const DW_ATE_UNSIGNED_CHAR: u32 = 0x08;

impl<'ctx> Gen<'_, 'ctx> {
    /// The LLVM integer type of a width.
    pub fn int_type(&self, bits: u32) -> inkwell::types::IntType<'ctx> {
        match bits {
            1 => self.ctx.bool_type(),
            8 => self.ctx.i8_type(),
            16 => self.ctx.i16_type(),
            32 => self.ctx.i32_type(),
            _ => self.ctx.i64_type(),
        }
    }

    /// The LLVM type of a value of this IR type in registers (bools are i1).
    pub fn llvm_type(&mut self, t: &Type) -> BasicTypeEnum<'ctx> {
        match t {
            Type::Bool => self.ctx.bool_type().into(),
            _ => self.memory_type(t),
        }
    }

    /// The LLVM type of this IR type in memory (bools are a byte, as in C).
    pub fn memory_type(&mut self, t: &Type) -> BasicTypeEnum<'ctx> {
        match t {
            Type::Void => self.ctx.i8_type().into(),
            Type::Bool => self.ctx.i8_type().into(),
            Type::Int(i) => self.int_type(i.bits()).into(),
            Type::Ptr(_) | Type::Func(_) | Type::ProgHandle | Type::PerfHandle => {
                self.ctx.ptr_type(AddressSpace::default()).into()
            }
            Type::Array(e, n) => self.memory_type(e).array_type(*n).into(),
            Type::Str(n) => self.ctx.i8_type().array_type(*n).into(),
            Type::Struct(name) => self.struct_type(name).into(),
        }
    }

    /// A named LLVM struct mirroring a `ks.struct`: its fields at their declared offsets, with
    /// explicit padding, so addresses agree with the declaration on every target.
    pub fn struct_type(&mut self, name: &str) -> inkwell::types::StructType<'ctx> {
        if let Some(t) = self.structs.get(name) {
            return *t;
        }
        let st = self.ctx.opaque_struct_type(&format!("struct.{name}"));
        self.structs.insert(name.to_string(), st);
        let Some(decl) = struct_decl(self.m, name) else {
            st.set_body(&[], false);
            return st;
        };
        let s = KsStruct(decl);
        let fields = s.fields(self.m).to_vec();
        let offsets = field_offsets(self.m, decl);
        let size = s.size(self.m) as u64;
        let align = s.align(self.m) as u64;
        let mut body: Vec<BasicTypeEnum> = Vec::new();
        let mut index = vec![0u32; fields.len()];
        let mut at = 0u64;
        // Context structs declare only some fields, not in offset order: lay them out by offset.
        for i in by_offset(&offsets) {
            let (ft, off) = (&fields[i].1, offsets[i]);
            if off < at {
                continue; // overlapping views (unions) share the earlier field's storage
            }
            if off > at {
                body.extend(self.filler(at, off - at, align));
            }
            index[i] = body.len() as u32;
            let t = self.memory_type(ft);
            body.push(t);
            at = off + self.size_of(ft);
        }
        if size > at {
            body.extend(self.filler(at, size - at, align));
        }
        st.set_body(&body, true);
        self.field_index.insert(name.to_string(), index);
        st
    }

    /// Storage the IR names no field in (padding, a kernel struct's unused members) from `at`
    /// for `bytes`: runs of the widest words the struct's alignment and their offsets allow
    /// (7 bytes at offset 17 are 1 + 2 + 4), so LLVM copies and zeroes it in words, not bytes.
    fn filler(&self, mut at: u64, bytes: u64, align: u64) -> Vec<BasicTypeEnum<'ctx>> {
        let end = at + bytes;
        // (word width, count) runs, widest word first at each offset.
        let mut runs: Vec<(u64, u32)> = Vec::new();
        while at < end {
            let word = [8u64, 4, 2]
                .into_iter()
                .find(|&w| w <= align && at.is_multiple_of(w) && at + w <= end)
                .unwrap_or(1);
            match runs.last_mut() {
                Some((w, n)) if *w == word => *n += 1,
                _ => runs.push((word, 1)),
            }
            at += word;
        }
        let pieces = runs
            .into_iter()
            .map(|(word, count)| {
                let unit = match word {
                    8 => self.ctx.i64_type(),
                    4 => self.ctx.i32_type(),
                    2 => self.ctx.i16_type(),
                    _ => self.ctx.i8_type(),
                };
                unit.array_type(count).into()
            })
            .collect();
        pieces
    }

    pub fn size_of(&self, t: &Type) -> u64 {
        crate::ir::layout::size_of(self.m, t).unwrap_or(0)
    }

    /// The LLVM struct field index of a `ks.struct` field.
    pub fn field_position(&mut self, strukt: &str, field: &str) -> Option<u32> {
        self.struct_type(strukt);
        let decl = struct_decl(self.m, strukt)?;
        let i = KsStruct(decl)
            .fields(self.m)
            .iter()
            .position(|(n, _)| n == field)?;
        self.field_index.get(strukt).and_then(|v| v.get(i)).copied()
    }

    /// A field's index among the members of its struct's debug type (which lists them by offset).
    pub fn debug_member_index(&self, strukt: &str, field: &str) -> Option<u32> {
        let decl = struct_decl(self.m, strukt)?;
        let s = KsStruct(decl);
        let i = s.fields(self.m).iter().position(|(n, _)| n == field)?;
        let offsets = field_offsets(self.m, decl);
        by_offset(&offsets)
            .iter()
            .position(|&j| j == i)
            .map(|p| p as u32)
    }

    /// The debug-info type of an IR type.
    pub fn di_type(&mut self, t: &Type) -> DIType<'ctx> {
        let key = t.to_string();
        if let Some(d) = self.di_types.get(&key) {
            return *d;
        }
        let d = match t {
            Type::Void => self.basic("char", 8, DW_ATE_UNSIGNED_CHAR),
            Type::Bool => self.basic("_Bool", 8, DW_ATE_BOOLEAN),
            Type::Int(i) => {
                let name = match (i.bits(), i.signed()) {
                    (8, false) => "unsigned char",
                    (16, false) => "unsigned short",
                    (32, false) => "unsigned int",
                    (64, false) => "unsigned long long",
                    (8, true) => "signed char",
                    (16, true) => "short",
                    (32, true) => "int",
                    _ => "long long",
                };
                self.basic(
                    name,
                    i.bits() as u64,
                    if i.signed() {
                        DW_ATE_SIGNED
                    } else {
                        DW_ATE_UNSIGNED
                    },
                )
            }
            Type::Ptr(p) => {
                // A pointer back into a struct being described (`next: *Node`) is described as
                // `void *`: inkwell has no forward declarations to close the cycle.
                let cyclic = matches!(&**p, Type::Struct(s) if self.di_in_progress.contains(&**s));
                let pd = if **p == Type::Void || cyclic {
                    None
                } else {
                    Some(self.di_type(p))
                };
                self.pointer(pd)
            }
            // A function pointer points at a FUNC_PROTO (struct_ops members must, for libbpf).
            Type::Func(ft) => {
                let ret = if ft.ret == Type::Void {
                    None
                } else {
                    Some(self.di_type(&ft.ret))
                };
                let params: Vec<DIType> =
                    ft.params.clone().iter().map(|p| self.di_type(p)).collect();
                let proto =
                    self.di
                        .create_subroutine_type(self.file, ret, &params, DIFlags::PUBLIC);
                // SAFETY: both are `repr(transparent)` wrappers of the same LLVM metadata pointer, and
                // a subroutine type is a DIType in LLVM; inkwell offers no upcast.
                let proto: DIType<'ctx> = unsafe { std::mem::transmute(proto) };
                self.pointer(Some(proto))
            }
            Type::ProgHandle | Type::PerfHandle => self.pointer(None),
            Type::Array(e, n) => {
                let ed = self.di_type(e);
                let size = self.size_of(t) * 8;
                self.di
                    .create_array_type(ed, size, 0, &one_dimension(*n as i64))
                    .as_type()
            }
            Type::Str(n) => {
                let c = self.basic("char", 8, DW_ATE_UNSIGNED_CHAR);
                self.di
                    .create_array_type(c, *n as u64 * 8, 0, &one_dimension(*n as i64))
                    .as_type()
            }
            Type::Struct(name) => self.di_struct(name),
        };
        self.di_types.insert(key, d);
        d
    }

    fn basic(&self, name: &str, bits: u64, encoding: u32) -> DIType<'ctx> {
        self.di
            .create_basic_type(name, bits, encoding, DIFlags::PUBLIC)
            .expect("named basic type")
            .as_type()
    }

    /// A pointer debug type; `None` points to `void`.
    pub fn pointer(&self, to: Option<DIType<'ctx>>) -> DIType<'ctx> {
        match to {
            Some(p) => self
                .di
                .create_pointer_type("", p, 64, 0, AddressSpace::default())
                .as_type(),
            None => {
                // `void *`: a pointer with no base type (BTF: a PTR to type 0), which kernel
                // prototypes such as kfuncs' `void *` arguments are compared against.
                // SAFETY: the builder belongs to this module; the result is a non-null DIType
                // (`repr(transparent)` over the metadata pointer), which inkwell cannot build.
                unsafe {
                    let md = llvm_sys::debuginfo::LLVMDIBuilderCreatePointerType(
                        self.di.as_mut_ptr(),
                        std::ptr::null_mut(),
                        64,
                        0,
                        0,
                        std::ptr::null(),
                        0,
                    );
                    std::mem::transmute::<llvm_sys::prelude::LLVMMetadataRef, DIType<'ctx>>(md)
                }
            }
        }
    }

    fn di_struct(&mut self, name: &str) -> DIType<'ctx> {
        let Some(decl) = struct_decl(self.m, name) else {
            return self.basic("char", 8, DW_ATE_UNSIGNED_CHAR);
        };
        let s = KsStruct(decl);
        let fields = s.fields(self.m).to_vec();
        let offsets = field_offsets(self.m, decl);
        let size = s.size(self.m) as u64;
        self.di_in_progress.insert(name.to_string());
        let mut members = Vec::new();
        // BTF requires members in increasing offset order.
        // Context packet pointers are 32-bit fields the kernel rewrites: describe what is there.
        let context = s.origin(self.m) == crate::vocab::StructOrigin::Context;
        for i in by_offset(&offsets) {
            let ((fname, ft), off) = (&fields[i], offsets[i]);
            let ft = if context && ft.is_ptr() {
                &Type::u32()
            } else {
                ft
            };
            let fd = self.di_type(ft);
            let bits = self.size_of(ft) * 8;
            members.push(
                self.di
                    .create_member_type(
                        self.cu.as_debug_info_scope(),
                        fname,
                        self.file,
                        0,
                        bits,
                        0,
                        off * 8,
                        DIFlags::PUBLIC,
                        fd,
                    )
                    .as_type(),
            );
        }
        self.di_in_progress.remove(name);
        // The kernel refuses BTF whose members pass the struct's end (and then libbpf loads
        // without any BTF): a struct is at least as large as its members reach.
        let reach = by_offset(&offsets)
            .last()
            .map_or(0, |&i| offsets[i] + self.size_of(&fields[i].1));
        let size = size.max(reach);
        let cname = super::c_name(name);
        self.di
            .create_struct_type(
                self.cu.as_debug_info_scope(),
                &cname,
                self.file,
                0,
                size * 8,
                0,
                DIFlags::PUBLIC,
                None,
                &members,
                0,
                None,
                &cname,
            )
            .as_type()
    }
}

/// Field indices sorted by offset (stable for equal offsets).
fn by_offset(offsets: &[u64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..offsets.len()).collect();
    order.sort_by_key(|&i| offsets[i]);
    order
}

/// The subrange of a one-dimensional debug-info array of `n` elements (DWARF arrays take one
/// range per dimension).
#[allow(clippy::single_range_in_vec_init)]
pub fn one_dimension(n: i64) -> [std::ops::Range<i64>; 1] {
    [0..n]
}
