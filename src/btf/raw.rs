//! The only place that touches libbpf: an owned `struct btf *` plus a
//! borrowed view of one `struct btf_type` and the records that follow it.
//!
//! Soundness rests on libbpf's own validation at parse time: `btf_parse_type_sec`
//! rejects a type whose trailing records would run past the type section, and
//! `btf_sanity_check` rejects unknown kinds, out-of-range type ids and string
//! offsets outside the (NUL-terminated) string section. What libbpf does *not*
//! reject — reference cycles — is handled by the callers with depth limits.

use std::borrow::Cow;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

use libbpf_sys as sys;

pub(crate) const KIND_INT: u32 = sys::BTF_KIND_INT;
pub(crate) const KIND_PTR: u32 = sys::BTF_KIND_PTR;
pub(crate) const KIND_ARRAY: u32 = sys::BTF_KIND_ARRAY;
pub(crate) const KIND_STRUCT: u32 = sys::BTF_KIND_STRUCT;
pub(crate) const KIND_UNION: u32 = sys::BTF_KIND_UNION;
pub(crate) const KIND_ENUM: u32 = sys::BTF_KIND_ENUM;
pub(crate) const KIND_FWD: u32 = sys::BTF_KIND_FWD;
pub(crate) const KIND_TYPEDEF: u32 = sys::BTF_KIND_TYPEDEF;
pub(crate) const KIND_VOLATILE: u32 = sys::BTF_KIND_VOLATILE;
pub(crate) const KIND_CONST: u32 = sys::BTF_KIND_CONST;
pub(crate) const KIND_RESTRICT: u32 = sys::BTF_KIND_RESTRICT;
pub(crate) const KIND_FUNC: u32 = sys::BTF_KIND_FUNC;
pub(crate) const KIND_FUNC_PROTO: u32 = sys::BTF_KIND_FUNC_PROTO;
pub(crate) const KIND_TYPE_TAG: u32 = sys::BTF_KIND_TYPE_TAG;
pub(crate) const KIND_ENUM64: u32 = sys::BTF_KIND_ENUM64;

pub(crate) const INT_SIGNED: u32 = sys::BTF_INT_SIGNED;
pub(crate) const INT_CHAR: u32 = sys::BTF_INT_CHAR;
pub(crate) const INT_BOOL: u32 = sys::BTF_INT_BOOL;

/// Owned libbpf BTF object; freed on drop.
pub(crate) struct RawBtf {
    ptr: NonNull<sys::btf>,
}

// The object is exclusively owned, and after parsing we only call libbpf's
// read-only accessors (type_by_id, str_by_offset, resolve_size, type_cnt),
// which neither mutate the object nor keep hidden caches.
unsafe impl Send for RawBtf {}
unsafe impl Sync for RawBtf {}

impl Drop for RawBtf {
    fn drop(&mut self) {
        // SAFETY: ptr came from btf__parse/btf__new and is freed exactly once.
        unsafe { sys::btf__free(self.ptr.as_ptr()) }
    }
}

/// libbpf reports failures as NULL + errno (libbpf 1.0 error mode).
fn take_ptr(p: *mut sys::btf, what: &dyn Fn() -> String) -> Result<RawBtf, String> {
    match NonNull::new(p) {
        Some(ptr) => Ok(RawBtf { ptr }),
        None => {
            let err = std::io::Error::last_os_error();
            Err(format!("{}: {}", what(), err))
        }
    }
}

impl RawBtf {
    /// Parses an ELF file with a .BTF section or a raw BTF blob.
    pub(crate) fn parse(path: &Path) -> Result<RawBtf, String> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| format!("{}: path contains a NUL byte", path.display()))?;
        // SAFETY: c_path is a valid NUL-terminated string; we do not want .BTF.ext.
        let p = unsafe { sys::btf__parse(c_path.as_ptr(), std::ptr::null_mut()) };
        take_ptr(p, &|| format!("cannot load BTF from {}", path.display()))
    }

    /// Parses a raw BTF blob held in memory (libbpf copies the bytes).
    pub(crate) fn from_bytes(data: &[u8]) -> Result<RawBtf, String> {
        let len = u32::try_from(data.len()).map_err(|_| "BTF blob too large".to_string())?;
        // SAFETY: data is valid for len bytes for the duration of the call.
        let p = unsafe { sys::btf__new(data.as_ptr().cast(), len) };
        take_ptr(p, &|| "cannot parse BTF data".to_string())
    }

    /// Number of type ids, including the implicit void at id 0.
    pub(crate) fn type_cnt(&self) -> u32 {
        // SAFETY: valid btf object.
        unsafe { sys::btf__type_cnt(self.ptr.as_ptr()) }
    }

    /// The type with this id; None for void (0) and for ids out of range.
    pub(crate) fn get(&self, id: u32) -> Option<TypeRef<'_>> {
        if id == 0 || id >= self.type_cnt() {
            return None;
        }
        // SAFETY: id is in range, so libbpf returns a pointer into its type data.
        let t = unsafe { sys::btf__type_by_id(self.ptr.as_ptr(), id) };
        if t.is_null() {
            return None;
        }
        // SAFETY: non-null pointer to a btf_type inside the object; the header
        // is a plain 12-byte record of u32s, read without alignment assumptions.
        let hdr = unsafe { std::ptr::read_unaligned(t) };
        Some(TypeRef { btf: self, t, hdr, id })
    }

    /// String at a string-section offset; "" when libbpf does not know it.
    pub(crate) fn str_at(&self, off: u32) -> Cow<'_, str> {
        // SAFETY: libbpf bounds-checks off and returns NULL when invalid.
        let p: *const c_char = unsafe { sys::btf__str_by_offset(self.ptr.as_ptr(), off) };
        if p.is_null() {
            return Cow::Borrowed("");
        }
        // SAFETY: points into the string section, which libbpf verified ends
        // with NUL; the object is not mutated while `self` is borrowed.
        unsafe { CStr::from_ptr(p) }.to_string_lossy()
    }

    /// Byte size of a type as libbpf computes it (follows typedefs/modifiers/arrays).
    pub(crate) fn resolve_size(&self, id: u32) -> Option<u64> {
        // SAFETY: valid object; libbpf bounds its own resolution depth.
        let n = unsafe { sys::btf__resolve_size(self.ptr.as_ptr(), id) };
        u64::try_from(n).ok()
    }
}

/// One BTF type record. The trailing data is decoded only for the kind that
/// owns it, so the lengths libbpf validated apply.
#[derive(Clone, Copy)]
pub(crate) struct TypeRef<'a> {
    btf: &'a RawBtf,
    t: *const sys::btf_type,
    hdr: sys::btf_type,
    pub(crate) id: u32,
}

/// A struct/union member with the raw (possibly kflag-encoded) offset.
pub(crate) struct RawMember {
    pub(crate) name_off: u32,
    pub(crate) type_id: u32,
    pub(crate) offset: u32,
}

/// A func-proto parameter.
pub(crate) struct RawParam {
    pub(crate) name_off: u32,
    pub(crate) type_id: u32,
}

impl<'a> TypeRef<'a> {
    pub(crate) fn kind(&self) -> u32 {
        (self.hdr.info >> 24) & 0x1f
    }
    pub(crate) fn vlen(&self) -> usize {
        (self.hdr.info & 0xffff) as usize
    }
    pub(crate) fn kflag(&self) -> bool {
        self.hdr.info >> 31 != 0
    }
    pub(crate) fn name(&self) -> Cow<'a, str> {
        self.btf.str_at(self.hdr.name_off)
    }
    /// `size` for INT/STRUCT/UNION/ENUM/ENUM64, `type` for PTR/TYPEDEF/modifiers/FUNC.
    pub(crate) fn size_or_type(&self) -> u32 {
        // SAFETY: both union arms are u32; reading either is always defined.
        unsafe { self.hdr.__bindgen_anon_1.size }
    }

    /// Reads the i-th trailing record of type R. Callers pass only the record
    /// type and count that belong to this kind.
    fn trailing<R: Copy>(&self, i: usize) -> R {
        // SAFETY: the record lies inside the type data: libbpf checked that
        // this kind's trailing records (vlen of them, or one) fit the section.
        unsafe {
            let base = self.t.add(1).cast::<R>();
            std::ptr::read_unaligned(base.add(i))
        }
    }

    /// INT encoding: (flags, bit offset, bit count).
    pub(crate) fn int_encoding(&self) -> Option<(u32, u32, u32)> {
        if self.kind() != KIND_INT {
            return None;
        }
        let v: u32 = self.trailing(0);
        Some(((v >> 24) & 0x0f, (v >> 16) & 0xff, v & 0xff))
    }

    /// ARRAY: (element type id, element count).
    pub(crate) fn array(&self) -> Option<(u32, u32)> {
        if self.kind() != KIND_ARRAY {
            return None;
        }
        let a: sys::btf_array = self.trailing(0);
        Some((a.type_, a.nelems))
    }

    pub(crate) fn members(&self) -> Vec<RawMember> {
        if self.kind() != KIND_STRUCT && self.kind() != KIND_UNION {
            return Vec::new();
        }
        (0..self.vlen())
            .map(|i| {
                let m: sys::btf_member = self.trailing(i);
                RawMember { name_off: m.name_off, type_id: m.type_, offset: m.offset }
            })
            .collect()
    }

    pub(crate) fn params(&self) -> Vec<RawParam> {
        if self.kind() != KIND_FUNC_PROTO {
            return Vec::new();
        }
        (0..self.vlen())
            .map(|i| {
                let p: sys::btf_param = self.trailing(i);
                RawParam { name_off: p.name_off, type_id: p.type_ }
            })
            .collect()
    }

    /// Enumerators as (name offset, value); the value is sign- or zero-extended
    /// according to kflag, and ENUM64 values keep their 64-bit pattern.
    pub(crate) fn enum_values(&self) -> Vec<(u32, i64)> {
        let signed = self.kflag();
        match self.kind() {
            KIND_ENUM => (0..self.vlen())
                .map(|i| {
                    let e: sys::btf_enum = self.trailing(i);
                    let v = if signed { e.val as i64 } else { e.val as u32 as i64 };
                    (e.name_off, v)
                })
                .collect(),
            KIND_ENUM64 => (0..self.vlen())
                .map(|i| {
                    let e: sys::btf_enum64 = self.trailing(i);
                    let v = ((e.val_hi32 as u64) << 32 | e.val_lo32 as u64) as i64;
                    (e.name_off, v)
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}
