//! The BTF container format, read in place: the header, one pass over the type section that
//! validates every record's length and remembers where each type starts, and bounds-checked
//! accessors for one type and the records that follow it.
//!
//! ksc reads the kernel's BTF on every compile, so this is on the start-up path: one read of the
//! file, no copy of the type data (unless its byte order is foreign), and no per-type allocation.
//! Type ids and string offsets are checked where they are used (an id out of range is no type, an
//! offset out of range is the empty name); reference cycles are the callers' to bound.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

use super::bytes::Bytes;

pub(crate) const KIND_INT: u32 = 1;
pub(crate) const KIND_PTR: u32 = 2;
pub(crate) const KIND_ARRAY: u32 = 3;
pub(crate) const KIND_STRUCT: u32 = 4;
pub(crate) const KIND_UNION: u32 = 5;
pub(crate) const KIND_ENUM: u32 = 6;
pub(crate) const KIND_FWD: u32 = 7;
pub(crate) const KIND_TYPEDEF: u32 = 8;
pub(crate) const KIND_VOLATILE: u32 = 9;
pub(crate) const KIND_CONST: u32 = 10;
pub(crate) const KIND_RESTRICT: u32 = 11;
pub(crate) const KIND_FUNC: u32 = 12;
pub(crate) const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
pub(crate) const KIND_TYPE_TAG: u32 = 18;
pub(crate) const KIND_ENUM64: u32 = 19;

pub(crate) const INT_SIGNED: u32 = 1 << 0;
pub(crate) const INT_CHAR: u32 = 1 << 1;
pub(crate) const INT_BOOL: u32 = 1 << 2;

const MAGIC: u16 = 0xeb9f;
/// magic u16, version u8, flags u8, then hdr_len, type_off, type_len, str_off, str_len (u32).
const HEADER_LEN: usize = 24;
/// name_off, info, size-or-type.
const TYPE_HEADER: usize = 12;
/// Longest typedef/modifier chain `resolve_size` follows (libbpf's limit too).
const MAX_RESOLVE_DEPTH: u32 = 32;

/// A parsed BTF blob in native byte order.
pub(crate) struct RawBtf {
    data: Bytes,
    strs: Range<usize>,
    /// Byte offset in `data` of type id `i + 1` (id 0 is the implicit void).
    starts: Vec<u32>,
    /// Name offset of type id `i + 1`, copied out on the first search by name: a dense array makes
    /// each later search a vector compare over 0.5 MB rather than a walk over 3 MB of records.
    name_offs: OnceLock<Vec<u32>>,
}

impl RawBtf {
    /// Parses a raw BTF blob, or the `.BTF` section of an ELF object (e.g. a `vmlinux` image).
    pub(crate) fn parse(bytes: Bytes) -> Result<RawBtf, String> {
        if bytes.starts_with(b"\x7fELF") {
            let range = super::elf::section(&bytes, ".BTF")?;
            return Self::from_blob(Bytes::Owned(bytes[range].to_vec()));
        }
        Self::from_blob(bytes)
    }

    fn from_blob(mut data: Bytes) -> Result<RawBtf, String> {
        let magic = data.get(..2).map(|m| u16::from_ne_bytes([m[0], m[1]]));
        if magic != Some(MAGIC) && magic != Some(MAGIC.swap_bytes()) {
            return Err("not an ELF or BTF file".into());
        }
        if data.len() < HEADER_LEN {
            return Err("BTF data is shorter than its header".into());
        }
        if magic == Some(MAGIC.swap_bytes()) {
            let mut native = data.to_vec();
            swap_byte_order(&mut native)?;
            data = Bytes::Owned(native);
        }
        if data[2] != 1 {
            return Err(format!("unsupported BTF version {}", data[2]));
        }
        let field = |i: usize| header_field(&data, i);
        let (hdr_len, type_off, type_len, str_off, str_len) =
            (field(0), field(1), field(2), field(3), field(4));
        let section = |off: usize, len: usize, what: &str| {
            let start = hdr_len.checked_add(off).filter(|&s| s <= data.len());
            match start.and_then(|s| {
                s.checked_add(len)
                    .filter(|&e| e <= data.len())
                    .map(|e| s..e)
            }) {
                Some(r) => Ok(r),
                None => Err(format!("BTF {what} section lies outside the data")),
            }
        };
        if hdr_len < HEADER_LEN || hdr_len > data.len() {
            return Err("BTF header length is out of range".into());
        }
        let types = section(type_off, type_len, "type")?;
        let strs = section(str_off, str_len, "string")?;
        if types.start % 4 != 0 || type_len % 4 != 0 {
            return Err("BTF type section is not 4-byte aligned".into());
        }
        if strs.is_empty() || data[strs.start] != 0 || data[strs.end - 1] != 0 {
            return Err("BTF string section must start and end with a NUL byte".into());
        }
        if u32::try_from(data.len()).is_err() {
            return Err("BTF data is larger than 4 GiB".into());
        }
        let starts = crate::timing::stage("index btf types", || type_starts(&data, types))?;
        Ok(RawBtf {
            data,
            strs,
            starts,
            name_offs: OnceLock::new(),
        })
    }

    /// Number of type ids, including the implicit void at id 0.
    pub(crate) fn type_cnt(&self) -> u32 {
        self.starts.len() as u32 + 1
    }

    /// The type with this id; None for void (0) and for ids out of range.
    pub(crate) fn get(&self, id: u32) -> Option<TypeRef<'_>> {
        let start = *self.starts.get(id.checked_sub(1)? as usize)? as usize;
        let w = |i: usize| self.word(start + 4 * i);
        Some(TypeRef {
            btf: self,
            start,
            name_off: w(0),
            info: w(1),
            size_or_type: w(2),
            id,
        })
    }

    /// A native-order u32 of the data; callers pass offsets inside a validated record.
    fn word(&self, at: usize) -> u32 {
        word_at(&self.data, at)
    }

    /// The bytes of the NUL-terminated string at a string-section offset; empty when out of range.
    pub(crate) fn name_bytes(&self, off: u32) -> &[u8] {
        let strs = &self.data[self.strs.clone()];
        let Some(tail) = strs.get(off as usize..) else {
            return &[];
        };
        // The section ends with NUL (checked at parse time), so there is always one.
        let end = memchr::memchr(0, tail).unwrap_or(tail.len());
        &tail[..end]
    }

    /// Every offset at which the string section holds exactly `name` (once, in deduplicated
    /// kernel BTF).
    pub(crate) fn string_offsets(&self, name: &[u8]) -> Vec<u32> {
        let mut needle = Vec::with_capacity(name.len() + 2);
        needle.push(0);
        needle.extend_from_slice(name);
        needle.push(0);
        // The section starts with NUL, so every string but the empty one follows a NUL.
        memchr::memmem::find_iter(&self.data[self.strs.clone()], &needle)
            .map(|at| at as u32 + 1)
            .collect()
    }

    /// The ids of the types whose name is at string offset `offset`, in id order.
    pub(crate) fn ids_named(&self, offset: u32) -> impl Iterator<Item = u32> + '_ {
        let name_offs = self.name_offs.get_or_init(|| {
            (self.starts.iter())
                .map(|&start| self.word(start as usize))
                .collect()
        });
        (name_offs.iter().enumerate())
            .filter(move |&(_, &name_off)| name_off == offset)
            .map(|(i, _)| i as u32 + 1)
    }

    /// Length of the string section (where a split BTF's own strings start, §5.4 module BTF).
    pub(crate) fn str_len(&self) -> u32 {
        self.strs.len() as u32
    }

    /// String at a string-section offset; "" when out of range.
    pub(crate) fn str_at(&self, off: u32) -> Cow<'_, str> {
        String::from_utf8_lossy(self.name_bytes(off))
    }

    /// Byte size of a type as C sees it: follows typedefs, modifiers and arrays (None for void,
    /// functions, a cycle or a size beyond u32).
    pub(crate) fn resolve_size(&self, mut id: u32) -> Option<u64> {
        let mut scale: u64 = 1;
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.get(id)?;
            let size = match t.kind() {
                KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_DATASEC
                | KIND_FLOAT => t.size_or_type() as u64,
                KIND_PTR => 8,
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_VAR
                | KIND_DECL_TAG | KIND_TYPE_TAG => {
                    id = t.size_or_type();
                    continue;
                }
                KIND_ARRAY => {
                    let (elem, len) = t.array()?;
                    scale = scale
                        .checked_mul(len as u64)
                        .filter(|&s| s <= u32::MAX as u64)?;
                    id = elem;
                    continue;
                }
                _ => return None,
            };
            return scale.checked_mul(size).filter(|&s| s <= u32::MAX as u64);
        }
        None
    }
}

/// The native-order u32 at `at`; callers pass offsets inside validated data.
fn word_at(data: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

/// The i-th u32 field of the header after magic, version and flags (hdr_len, type_off, …).
fn header_field(data: &[u8], i: usize) -> usize {
    word_at(data, 4 + 4 * i) as usize
}

/// The bytes that follow a type record's 12-byte header, by kind: a fixed part plus a part per
/// `vlen` entry; `UNKNOWN_KIND` marks kinds this reader does not know.
const TRAILING: [(u16, u16); 32] = {
    let mut t = [(UNKNOWN_KIND, 0); 32];
    let fixed_4 = [KIND_INT, KIND_VAR, KIND_DECL_TAG];
    let none = [
        KIND_PTR,
        KIND_FWD,
        KIND_TYPEDEF,
        KIND_VOLATILE,
        KIND_CONST,
        KIND_RESTRICT,
        KIND_FUNC,
        KIND_FLOAT,
        KIND_TYPE_TAG,
    ];
    let per_12 = [KIND_STRUCT, KIND_UNION, KIND_DATASEC, KIND_ENUM64];
    let mut i = 0;
    while i < fixed_4.len() {
        t[fixed_4[i] as usize] = (4, 0);
        i += 1;
    }
    let mut i = 0;
    while i < none.len() {
        t[none[i] as usize] = (0, 0);
        i += 1;
    }
    let mut i = 0;
    while i < per_12.len() {
        t[per_12[i] as usize] = (0, 12);
        i += 1;
    }
    t[KIND_ARRAY as usize] = (12, 0);
    t[KIND_ENUM as usize] = (0, 8);
    t[KIND_FUNC_PROTO as usize] = (0, 8);
    t
};
const UNKNOWN_KIND: u16 = u16::MAX;

/// Walks the type section once: every record must be a known kind whose trailing records fit.
/// Gives where each type starts. On the start-up path of every compile that
/// reads kernel BTF (~130k records), hence the table instead of a match: record kinds follow no
/// pattern a branch predictor could learn.
fn type_starts(data: &[u8], types: Range<usize>) -> Result<Vec<u32>, String> {
    let section = &data[types.clone()];
    let word = |at: usize| u32::from_ne_bytes(section[at..at + 4].try_into().expect("4 bytes"));
    // Kernel BTF averages ~25 bytes a type and no record is shorter than 12: room for 1 in 16
    // bytes means no regrowth in practice, and pages never written are never faulted in.
    let mut starts = Vec::with_capacity(section.len() / 16);
    let mut at = 0;
    while at < section.len() {
        let id = starts.len() + 1;
        if section.len() - at < TYPE_HEADER {
            return Err(format!("BTF type {id} is truncated"));
        }
        let info = word(at + 4);
        let (fixed, per_entry) = TRAILING[(info >> 24) as usize & 0x1f];
        if fixed == UNKNOWN_KIND {
            return Err(format!(
                "BTF type {id} has unknown kind {}",
                (info >> 24) & 0x1f
            ));
        }
        let trailing = fixed as usize + per_entry as usize * (info & 0xffff) as usize;
        let end = at + TYPE_HEADER + trailing;
        if end > section.len() {
            return Err(format!("BTF type {id} runs past the type section"));
        }
        starts.push((types.start + at) as u32);
        at = end;
    }
    Ok(starts)
}

/// Rewrites foreign-endian BTF in place: the header's fields and every 4-byte word of the type
/// section (all BTF type records are made of u32/i32 fields); strings are bytes.
fn swap_byte_order(data: &mut [u8]) -> Result<(), String> {
    data[..2].reverse();
    for field in data[4..HEADER_LEN].chunks_exact_mut(4) {
        field.reverse();
    }
    let (hdr_len, type_off, type_len) = (
        header_field(data, 0),
        header_field(data, 1),
        header_field(data, 2),
    );
    let types = hdr_len
        .checked_add(type_off)
        .and_then(|s| Some(s..s.checked_add(type_len)?));
    match types.filter(|t| t.end <= data.len() && t.start % 4 == 0) {
        Some(types) => {
            for w in data[types].chunks_exact_mut(4) {
                w.reverse();
            }
            Ok(())
        }
        None => Err("BTF type section lies outside the data".into()),
    }
}

/// One BTF type record. The trailing data is decoded only for the kind that owns it, whose
/// length the type walk validated.
#[derive(Clone, Copy)]
pub(crate) struct TypeRef<'a> {
    btf: &'a RawBtf,
    start: usize,
    name_off: u32,
    info: u32,
    size_or_type: u32,
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
        (self.info >> 24) & 0x1f
    }
    pub(crate) fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }
    pub(crate) fn kflag(&self) -> bool {
        self.info >> 31 != 0
    }
    pub(crate) fn name_off(&self) -> u32 {
        self.name_off
    }
    pub(crate) fn name(&self) -> Cow<'a, str> {
        self.btf.str_at(self.name_off)
    }
    /// `size` for INT/STRUCT/UNION/ENUM/ENUM64, `type` for PTR/TYPEDEF/modifiers/FUNC.
    pub(crate) fn size_or_type(&self) -> u32 {
        self.size_or_type
    }

    /// The i-th u32 after the 12-byte header.
    fn trailing(&self, i: usize) -> u32 {
        self.btf.word(self.start + TYPE_HEADER + 4 * i)
    }

    /// INT encoding: (flags, bit offset, bit count).
    pub(crate) fn int_encoding(&self) -> Option<(u32, u32, u32)> {
        if self.kind() != KIND_INT {
            return None;
        }
        let v = self.trailing(0);
        Some(((v >> 24) & 0x0f, (v >> 16) & 0xff, v & 0xff))
    }

    /// ARRAY: (element type id, element count).
    pub(crate) fn array(&self) -> Option<(u32, u32)> {
        if self.kind() != KIND_ARRAY {
            return None;
        }
        // btf_array: type, index_type, nelems.
        Some((self.trailing(0), self.trailing(2)))
    }

    pub(crate) fn members(&self) -> Vec<RawMember> {
        if self.kind() != KIND_STRUCT && self.kind() != KIND_UNION {
            return Vec::new();
        }
        (0..self.vlen())
            .map(|i| RawMember {
                name_off: self.trailing(3 * i),
                type_id: self.trailing(3 * i + 1),
                offset: self.trailing(3 * i + 2),
            })
            .collect()
    }

    pub(crate) fn params(&self) -> Vec<RawParam> {
        if self.kind() != KIND_FUNC_PROTO {
            return Vec::new();
        }
        (0..self.vlen())
            .map(|i| RawParam {
                name_off: self.trailing(2 * i),
                type_id: self.trailing(2 * i + 1),
            })
            .collect()
    }

    /// Enumerators as (name offset, value); the value is sign- or zero-extended according to
    /// kflag, and ENUM64 values keep their 64-bit pattern.
    pub(crate) fn enum_values(&self) -> impl Iterator<Item = (u32, i64)> + 'a {
        let t = *self;
        let signed = t.kflag();
        let (stride, wide) = match t.kind() {
            KIND_ENUM => (2, false),
            KIND_ENUM64 => (3, true),
            _ => (0, false),
        };
        let count = if stride == 0 { 0 } else { t.vlen() };
        (0..count).map(move |i| {
            let name = t.trailing(stride * i);
            let lo = t.trailing(stride * i + 1);
            let v = if wide {
                ((t.trailing(stride * i + 2) as u64) << 32 | lo as u64) as i64
            } else if signed {
                lo as i32 as i64
            } else {
                lo as i64
            };
            (name, v)
        })
    }
}
