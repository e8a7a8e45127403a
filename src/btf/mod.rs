//! Kernel type information from BTF (docs/language.md §9.2, §9.3, §10.4, §16.1).
//!
//! `raw` reads and validates the file; this module turns the parts ksc needs (structs, enums,
//! integer typedefs, function prototypes) into plain Rust values (`KType`, `KStruct`, …) that do
//! not borrow from it. Lookups by name go through `names`' indexes, built on first use.
//!
//! Robustness: every id and string offset is bounds-checked where it is read, but references
//! need not be acyclic, so every walk here is depth-limited.

mod bytes;
pub(crate) mod elf;
mod memo;
mod names;
mod raw;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use memo::Memo;
use names::Names;
use raw::*;

/// Longest typedef/modifier chain, and deepest pointer/array/anonymous-member
/// nesting, that we follow. Real kernels stay far below; cycles hit it.
const MAX_DEPTH: u32 = 32;

/// Upper bound on flattened members of one struct (task_struct has a few hundred).
const MAX_MEMBERS: usize = 1 << 16;

/// A BTF type as ksc sees it. Typedefs and qualifiers are looked through;
/// struct/union/enum types are referenced by id, never expanded, so
/// self-referential kernel types are finite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KType {
    Void,
    Int {
        size: u32,
        signed: bool,
        is_bool: bool,
        is_char: bool,
    },
    Ptr(Box<KType>),
    Array {
        elem: Box<KType>,
        len: u32,
    },
    /// `name` is the typedef name for an anonymous struct reached via a typedef,
    /// "" for a truly anonymous one; `id` always identifies it.
    Struct {
        name: String,
        id: u32,
    },
    Union {
        name: String,
        id: u32,
    },
    Enum {
        name: String,
        id: u32,
        size: u32,
        signed: bool,
    },
    /// A pointer to a function prototype (KernelScript sees it as `*void`).
    FuncPtr,
    /// Floats, bare function prototypes, and anything malformed.
    Unknown,
}

/// A struct or union member; members of anonymous struct/union members are
/// flattened into the parent with absolute offsets (§10.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KMember {
    pub name: String,
    pub ty: KType,
    /// BTF id of the member's declared type (before looking through typedefs).
    pub type_id: u32,
    /// Bit offset from the start of the outermost struct.
    pub offset_bits: u32,
    /// Width in bits for a bit-field, 0 otherwise.
    pub bitfield_size: u32,
    /// Byte size of the member's type (the storage unit for bit-fields).
    pub size: u32,
    /// Member indexes from the outer struct through the anonymous members down
    /// to this one; what a CO-RE access-index chain needs.
    pub path: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KStruct {
    pub id: u32,
    pub name: String,
    pub size: u32,
    pub is_union: bool,
    pub members: Vec<KMember>,
}

impl KStruct {
    pub fn member(&self, name: &str) -> Option<&KMember> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// Where a bit-field's bits are: inside the storage unit of its declared type that holds them,
/// the unit libbpf relocates a bit-field access to (its offset aligned to the type's size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitField {
    /// Byte offset of the storage unit from the start of the outermost struct.
    pub unit_offset: u32,
    /// The field's lowest bit within the unit as a little-endian integer.
    pub shift: u32,
    pub bits: u32,
}

impl KMember {
    /// The bit-field's place, `None` for a whole member.
    pub fn bit_field(&self) -> Option<BitField> {
        if self.bitfield_size == 0 || self.size == 0 {
            return None;
        }
        let unit = self.size;
        let unit_offset = self.offset_bits / 8 / unit * unit;
        Some(BitField {
            unit_offset,
            shift: self.offset_bits - unit_offset * 8,
            bits: self.bitfield_size,
        })
    }

    /// Byte offset of what an access to the member loads: the member, or a bit-field's unit.
    pub fn access_offset(&self) -> u32 {
        self.bit_field()
            .map_or(self.offset_bits / 8, |b| b.unit_offset)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KEnum {
    pub id: u32,
    pub name: String,
    pub size: u32,
    pub signed: bool,
    /// Values are sign- or zero-extended per `signed`; an unsigned 64-bit
    /// enumerator above i64::MAX keeps its bit pattern (read it `as u64`).
    pub values: Vec<(String, i64)>,
}

/// A function prototype: parameters in order, return type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KFuncSig {
    /// Parameter names may be "" (e.g. in `btf_trace_*` prototypes).
    pub params: Vec<(String, KType)>,
    pub ret: KType,
    /// The C prototype ends in `...` (the trailing void parameter is dropped).
    pub variadic: bool,
}

/// What a struct_ops member is: a callback with a prototype, or plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KOpsKind {
    Func(KFuncSig),
    Data(KType),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KOpsMember {
    pub name: String,
    pub offset_bits: u32,
    pub kind: KOpsKind,
}

/// A parsed kernel BTF file. Lookups by name are memoized (see `names`).
pub struct KernelBtf {
    raw: RawBtf,
    names: Names,
    /// (struct or union id, depth) → C alignment, once computed.
    aligns: Memo<(u32, u32), u64>,
    /// Structs and unions by id, once built.
    structs: Memo<u32, Arc<KStruct>>,
}

/// Kernel BTF read on first use. Most packet programs never ask for a kernel type, and reading
/// the kernel's ~5 MB of BTF would otherwise be the largest part of compiling them.
pub struct LazyBtf {
    path: PathBuf,
    btf: OnceLock<Option<KernelBtf>>,
}

impl LazyBtf {
    /// BTF to be read from `path` when first asked for.
    pub fn new(path: PathBuf) -> Self {
        LazyBtf {
            path,
            btf: OnceLock::new(),
        }
    }

    /// BTF already read (or known to be absent).
    pub fn loaded(btf: Option<KernelBtf>) -> Self {
        LazyBtf {
            path: PathBuf::new(),
            btf: OnceLock::from(btf),
        }
    }

    /// The kernel module whose BTF defines function `name` (a kfunc, §5.4): the files beside the
    /// kernel's BTF in `/sys/kernel/btf` other than `vmlinux`, in name order. Only for BTF read from
    /// a file named `vmlinux`, whose directory holds the modules' split BTF.
    pub fn module_defining(&self, name: &str) -> Option<String> {
        let base = self.get()?;
        if self.path.file_name()? != "vmlinux" {
            return None;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(self.path.parent()?)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| n != "vmlinux") && p.is_file())
            .collect();
        entries.sort();
        entries.into_iter().find_map(|p| {
            let bytes = std::fs::read(&p).ok()?;
            let found = base.split_defines_func(&bytes, name).ok()?;
            found.then(|| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
        })
    }

    /// The kernel's types; None when the file cannot be read or parsed.
    pub fn get(&self) -> Option<&KernelBtf> {
        self.btf
            .get_or_init(|| {
                crate::timing::stage("load kernel btf", || KernelBtf::load(&self.path).ok())
            })
            .as_ref()
    }
}

impl fmt::Debug for KernelBtf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelBtf")
            .field("types", &self.raw.type_cnt())
            .finish()
    }
}

impl KernelBtf {
    /// Where the running kernel exposes its BTF.
    pub fn default_path() -> PathBuf {
        PathBuf::from("/sys/kernel/btf/vmlinux")
    }

    /// Loads BTF from an ELF object with a .BTF section or a raw BTF file.
    pub fn load(path: &Path) -> Result<KernelBtf, String> {
        let fail =
            |why: &dyn fmt::Display| format!("cannot load BTF from {}: {why}", path.display());
        if path.is_dir() {
            return Err(fail(&"is a directory"));
        }
        let bytes =
            crate::timing::stage("read btf file", || Bytes::read(path)).map_err(|e| fail(&e))?;
        RawBtf::parse(bytes).map(Self::wrap).map_err(|e| fail(&e))
    }

    /// Loads the running kernel's BTF.
    pub fn load_default() -> Result<KernelBtf, String> {
        Self::load(&Self::default_path())
    }

    /// Parses a raw BTF blob (or an ELF object with a .BTF section) held in memory.
    pub fn from_bytes(data: &[u8]) -> Result<KernelBtf, String> {
        RawBtf::parse(Bytes::Owned(data.to_vec()))
            .map(Self::wrap)
            .map_err(|e| format!("cannot parse BTF data: {e}"))
    }

    fn wrap(raw: RawBtf) -> KernelBtf {
        KernelBtf {
            raw,
            names: Names::default(),
            aligns: Memo::default(),
            structs: Memo::default(),
        }
    }

    /// Whether `module`, a kernel module's split BTF over this (vmlinux) BTF, as in
    /// `/sys/kernel/btf/<module>`, defines a function named `name` (a kfunc the module provides).
    /// A split BTF's own type ids and string offsets continue the base's; names below the base's
    /// string length are the base's strings.
    pub fn split_defines_func(&self, module: &[u8], name: &str) -> Result<bool, String> {
        let split = RawBtf::parse(Bytes::Owned(module.to_vec()))?;
        let base_strs = self.raw.str_len();
        Ok((1..split.type_cnt()).any(|id| {
            split.get(id).is_some_and(|t| {
                t.kind() == raw::KIND_FUNC && {
                    let off = t.name_off();
                    let bytes = match off.checked_sub(base_strs) {
                        Some(own) => split.name_bytes(own),
                        None => self.raw.name_bytes(off),
                    };
                    bytes == name.as_bytes()
                }
            })
        }))
    }

    /// Number of type ids, including void (id 0).
    pub fn type_count(&self) -> u32 {
        self.raw.type_cnt()
    }

    // ----- name lookup -----

    /// First type id with this name and kind (libbpf's choice among duplicates).
    fn find(&self, name: &str, kind: u32) -> Option<u32> {
        self.names.type_id(&self.raw, name, kind)
    }

    /// Looks through typedefs and qualifiers. Returns the underlying id (0 for
    /// void) and the innermost typedef passed on the way, if any; None on a
    /// cycle or a dangling id.
    fn peel(&self, mut id: u32) -> Option<(u32, Option<TypeRef<'_>>)> {
        let mut alias = None;
        for _ in 0..MAX_DEPTH {
            if id == 0 {
                return Some((0, alias));
            }
            let t = self.raw.get(id)?;
            match t.kind() {
                KIND_TYPEDEF => {
                    alias = Some(t);
                    id = t.size_or_type();
                }
                KIND_CONST | KIND_VOLATILE | KIND_RESTRICT | KIND_TYPE_TAG => id = t.size_or_type(),
                _ => return Some((id, alias)),
            }
        }
        None
    }

    fn peeled_kind(&self, id: u32) -> Option<u32> {
        let (id, _) = self.peel(id)?;
        self.raw.get(id).map(|t| t.kind())
    }

    // ----- types -----

    /// The KType for a BTF type id.
    pub fn ktype(&self, id: u32) -> KType {
        self.ktype_at(id, 0)
    }

    fn ktype_at(&self, id: u32, depth: u32) -> KType {
        if depth > MAX_DEPTH {
            return KType::Unknown;
        }
        let Some((id, alias)) = self.peel(id) else {
            return KType::Unknown;
        };
        if id == 0 {
            return KType::Void;
        }
        let Some(t) = self.raw.get(id) else {
            return KType::Unknown;
        };
        // Anonymous aggregates reached through a typedef are known by that name.
        let name = || {
            let n = t.name();
            match alias {
                Some(typedef) if n.is_empty() => typedef.name().into_owned(),
                _ => n.into_owned(),
            }
        };
        match t.kind() {
            KIND_INT => {
                let (enc, _, _) = t.int_encoding().unwrap_or((0, 0, 0));
                let n = t.name();
                KType::Int {
                    size: t.size_or_type(),
                    signed: enc & INT_SIGNED != 0,
                    // Some encoders leave the flag bits unset; the C names are definitive.
                    is_bool: enc & INT_BOOL != 0 || n == "_Bool",
                    is_char: enc & INT_CHAR != 0 || n == "char",
                }
            }
            KIND_PTR => {
                let target = t.size_or_type();
                if self.peeled_kind(target) == Some(KIND_FUNC_PROTO) {
                    KType::FuncPtr
                } else {
                    KType::Ptr(Box::new(self.ktype_at(target, depth + 1)))
                }
            }
            KIND_ARRAY => match t.array() {
                Some((elem, len)) => KType::Array {
                    elem: Box::new(self.ktype_at(elem, depth + 1)),
                    len,
                },
                None => KType::Unknown,
            },
            KIND_STRUCT => KType::Struct { name: name(), id },
            KIND_UNION => KType::Union { name: name(), id },
            KIND_ENUM | KIND_ENUM64 => KType::Enum {
                name: name(),
                id,
                size: t.size_or_type(),
                signed: t.kflag(),
            },
            KIND_FWD => {
                // A forward declaration: point at the full definition when the
                // file has one, so member lookups work.
                let n = t.name().into_owned();
                let is_union = t.kflag();
                let kind = if is_union { KIND_UNION } else { KIND_STRUCT };
                let real = if n.is_empty() {
                    None
                } else {
                    self.find(&n, kind)
                };
                let id = real.unwrap_or(id);
                if is_union {
                    KType::Union { name: n, id }
                } else {
                    KType::Struct { name: n, id }
                }
            }
            _ => KType::Unknown,
        }
    }

    /// Byte size of a BTF type (None for void, function types, malformed ones).
    pub fn type_size(&self, id: u32) -> Option<u64> {
        self.raw.resolve_size(id)
    }

    /// Byte size of a KType (pointers are 8 bytes: ksc targets 64-bit BPF).
    pub fn ktype_size(&self, ty: &KType) -> Option<u64> {
        match ty {
            KType::Void | KType::Unknown => None,
            KType::Int { size, .. } => Some(*size as u64),
            KType::Ptr(_) | KType::FuncPtr => Some(8),
            KType::Array { elem, len } => self.ktype_size(elem)?.checked_mul(*len as u64),
            KType::Struct { id, .. } | KType::Union { id, .. } => self.type_size(*id),
            KType::Enum { size, .. } => Some(*size as u64),
        }
    }

    /// The C alignment of the type with this id: its largest scalar's size (typedefs and
    /// qualifiers looked through, nested aggregates looked into while `depth` lasts).
    fn type_align(&self, mut id: u32, depth: u32) -> u64 {
        for _ in 0..MAX_DEPTH {
            let Some(t) = self.peel(id).and_then(|(id, _)| self.raw.get(id)) else {
                return 1;
            };
            return match t.kind() {
                KIND_INT | KIND_ENUM | KIND_ENUM64 => u64::from(t.size_or_type()).clamp(1, 8),
                KIND_PTR => 8,
                KIND_ARRAY => match t.array() {
                    Some((elem, _)) => {
                        id = elem;
                        continue;
                    }
                    None => 1,
                },
                KIND_STRUCT | KIND_UNION if depth > 0 => self.aggregate_align(t.id, depth - 1),
                _ => 1,
            };
        }
        1
    }

    /// `struct_align` of the struct or union with this id, remembered: a kernel struct embeds
    /// the same few (locks, lists, timers) many times over.
    fn aggregate_align(&self, id: u32, depth: u32) -> u64 {
        self.aligns.get_or_compute((id, depth), || {
            let Some(t) = self.raw.get(id) else { return 1 };
            let mut members = Vec::new();
            self.walk_members(id, 0, &mut Vec::new(), &mut Vec::new(), 0, &mut |m| {
                members.push((
                    self.type_align(m.type_id, depth),
                    m.offset_bits,
                    m.bitfield_size,
                ));
                members.len() < MAX_MEMBERS
            });
            c_alignment(t.size_or_type(), &members)
        })
    }

    /// A struct's or union's size and C alignment.
    pub fn layout_of(&self, s: &KStruct) -> crate::sema::env::KernelLayout {
        crate::sema::env::KernelLayout {
            size: u64::from(s.size),
            align: self.struct_align(s, 4),
        }
    }

    /// The C alignment of a struct or union, looking `depth` levels into nested aggregates.
    pub fn struct_align(&self, s: &KStruct, depth: u32) -> u64 {
        let members: Vec<_> = (s.members.iter())
            .map(|m| {
                (
                    self.type_align(m.type_id, depth),
                    m.offset_bits,
                    m.bitfield_size,
                )
            })
            .collect();
        c_alignment(s.size, &members)
    }

    /// The C name of a type id ("" for anonymous types and void).
    pub fn type_name(&self, id: u32) -> String {
        self.raw
            .get(id)
            .map(|t| t.name().into_owned())
            .unwrap_or_default()
    }

    // ----- structs and unions -----

    /// Struct or union by name (struct preferred); also accepts a typedef
    /// naming one, e.g. `typedef struct { … } atomic_t`.
    pub fn struct_by_name(&self, name: &str) -> Option<Arc<KStruct>> {
        let id = self
            .find(name, KIND_STRUCT)
            .or_else(|| self.find(name, KIND_UNION))
            .or_else(|| {
                let (id, _) = self.peel(self.find(name, KIND_TYPEDEF)?)?;
                Some(id)
            })?;
        let s = self.struct_by_id(id)?;
        if s.name.is_empty() {
            return Some(Arc::new(KStruct {
                name: name.to_string(),
                ..KStruct::clone(&s)
            }));
        }
        Some(s)
    }

    /// Whether a struct or union of this name exists (e.g. `trace_event_raw_<event>`).
    pub fn has_struct(&self, name: &str) -> bool {
        self.find(name, KIND_STRUCT).is_some() || self.find(name, KIND_UNION).is_some()
    }

    /// Struct or union by id, with anonymous members flattened; built once per id (a program
    /// names the same few kernel structs at every member access).
    pub fn struct_by_id(&self, id: u32) -> Option<Arc<KStruct>> {
        if let Some(s) = self.structs.get(&id) {
            return Some(s);
        }
        let t = self.raw.get(id)?;
        let is_union = match t.kind() {
            KIND_STRUCT => false,
            KIND_UNION => true,
            _ => return None,
        };
        let s = Arc::new(KStruct {
            id,
            name: t.name().into_owned(),
            size: t.size_or_type(),
            is_union,
            members: self.collect_members(id),
        });
        self.structs.insert(id, Arc::clone(&s));
        Some(s)
    }

    /// Flattened members, as `struct_by_id` lists them.
    fn collect_members(&self, id: u32) -> Vec<KMember> {
        let mut out = Vec::new();
        self.walk_members(id, 0, &mut Vec::new(), &mut Vec::new(), 0, &mut |m| {
            let size = self
                .raw
                .resolve_size(m.type_id)
                .and_then(|s| u32::try_from(s).ok());
            out.push(KMember {
                name: self.raw.str_at(m.name_off).into_owned(),
                ty: self.ktype(m.type_id),
                type_id: m.type_id,
                offset_bits: m.offset_bits,
                bitfield_size: m.bitfield_size,
                size: size.unwrap_or(0),
                path: m.path.to_vec(),
            });
            out.len() < MAX_MEMBERS
        });
        out
    }

    /// Calls `visit` on each named member of struct or union `id`, in order, with the members of
    /// anonymous struct/union members in their place; stops when `visit` returns false (and
    /// then returns false itself).
    fn walk_members(
        &self,
        id: u32,
        base_bits: u32,
        path: &mut Vec<u32>,
        stack: &mut Vec<u32>,
        depth: u32,
        visit: &mut dyn FnMut(&FlatMember) -> bool,
    ) -> bool {
        // Bounds malformed input: a DAG of anonymous members could otherwise
        // expand exponentially (valid C never nests this deep).
        if depth > MAX_DEPTH {
            return true;
        }
        let Some(t) = self.raw.get(id) else {
            return true;
        };
        // kflag set: offset packs (bitfield size << 24 | bit offset).
        let kflag = t.kflag();
        for (i, m) in t.members().iter().enumerate() {
            let (mut off, mut bits) = if kflag {
                (m.offset & 0x00ff_ffff, m.offset >> 24)
            } else {
                (m.offset, 0)
            };
            let peeled = self.peel(m.type_id).and_then(|(pid, _)| self.raw.get(pid));
            path.push(i as u32);
            if self.raw.name_bytes(m.name_off).is_empty() {
                // Anonymous struct/union: its members belong to us. Other
                // unnamed members (padding bit-fields) are not accessible.
                if let Some(inner) = peeled.filter(|p| matches!(p.kind(), KIND_STRUCT | KIND_UNION))
                {
                    // A struct cannot contain itself; skip such a cycle.
                    if inner.id != id && !stack.contains(&inner.id) {
                        stack.push(id);
                        let base = base_bits.saturating_add(off);
                        let more = self.walk_members(inner.id, base, path, stack, depth + 1, visit);
                        stack.pop();
                        if !more {
                            return false;
                        }
                    }
                }
                path.pop();
                continue;
            }
            if !kflag {
                // Old encoding: a bit-field is an INT whose encoding is narrower
                // than its size, possibly with its own bit offset.
                if let Some(p) = peeled {
                    if let Some((_, int_off, int_bits)) = p.int_encoding() {
                        if int_off != 0 || int_bits != p.size_or_type().saturating_mul(8) {
                            bits = int_bits;
                            off = off.saturating_add(int_off);
                        }
                    }
                }
            }
            let more = visit(&FlatMember {
                name_off: m.name_off,
                type_id: m.type_id,
                offset_bits: base_bits.saturating_add(off),
                bitfield_size: bits,
                path,
            });
            path.pop();
            if !more {
                return false;
            }
        }
        true
    }

    // ----- enums -----

    /// ENUM or ENUM64 by name; also accepts a typedef naming one.
    pub fn enum_by_name(&self, name: &str) -> Option<KEnum> {
        let id = self
            .find(name, KIND_ENUM)
            .or_else(|| self.find(name, KIND_ENUM64))
            .or_else(|| {
                let (id, _) = self.peel(self.find(name, KIND_TYPEDEF)?)?;
                Some(id)
            })?;
        let mut e = self.enum_by_id(id)?;
        if e.name.is_empty() {
            e.name = name.to_string();
        }
        Some(e)
    }

    pub fn enum_by_id(&self, id: u32) -> Option<KEnum> {
        let t = self.raw.get(id)?;
        if !matches!(t.kind(), KIND_ENUM | KIND_ENUM64) {
            return None;
        }
        let values = t
            .enum_values()
            .map(|(off, v)| (self.raw.str_at(off).into_owned(), v))
            .collect();
        Some(KEnum {
            id,
            name: t.name().into_owned(),
            size: t.size_or_type(),
            signed: t.kflag(),
            values,
        })
    }

    /// An enumerator by bare name: (name of its enum, "" if anonymous; value).
    pub fn enumerator(&self, name: &str) -> Option<(String, i64)> {
        let (id, v) = self.enumerator_with_id(name)?;
        Some((self.type_name(id), v))
    }

    /// Like `enumerator`, but gives the id of the enum (useful for anonymous enums). The first
    /// enumerator of that name in id order wins.
    pub fn enumerator_with_id(&self, name: &str) -> Option<(u32, i64)> {
        self.names.enumerator(&self.raw, name)
    }

    // ----- typedefs -----

    /// A typedef that resolves to an integer type (`__u32`, `u64`, `pid_t`, …).
    pub fn typedef_int(&self, name: &str) -> Option<KType> {
        match self.ktype(self.find(name, KIND_TYPEDEF)?) {
            ty @ KType::Int { .. } => Some(ty),
            _ => None,
        }
    }

    // ----- functions -----

    fn sig_of_proto(&self, proto: u32) -> Option<KFuncSig> {
        let (id, _) = self.peel(proto)?;
        let t = self.raw.get(id)?;
        if t.kind() != KIND_FUNC_PROTO {
            return None;
        }
        let raw_params = t.params();
        let last = raw_params.len().saturating_sub(1);
        let mut params = Vec::with_capacity(raw_params.len());
        let mut variadic = false;
        for (i, p) in raw_params.iter().enumerate() {
            // BTF encodes `...` as a final nameless parameter of type void.
            if i == last && p.type_id == 0 {
                variadic = true;
                continue;
            }
            params.push((
                self.raw.str_at(p.name_off).into_owned(),
                self.ktype(p.type_id),
            ));
        }
        Some(KFuncSig {
            params,
            ret: self.ktype(t.size_or_type()),
            variadic,
        })
    }

    /// The prototype a function-pointer type points to.
    fn sig_of_func_ptr(&self, type_id: u32) -> Option<KFuncSig> {
        let (id, _) = self.peel(type_id)?;
        let t = self.raw.get(id)?;
        if t.kind() != KIND_PTR {
            return None;
        }
        self.sig_of_proto(t.size_or_type())
    }

    /// Prototype of a kernel function (FUNC), for `@probe`/fentry/fexit.
    pub fn func_proto(&self, name: &str) -> Option<KFuncSig> {
        let t = self.raw.get(self.find(name, KIND_FUNC)?)?;
        self.sig_of_proto(t.size_or_type())
    }

    /// Arguments of the raw tracepoint `event` for `@tp_btf`: the prototype of
    /// typedef `btf_trace_<event>` without its leading `void *__data`.
    pub fn tp_btf_args(&self, event: &str) -> Option<Vec<(String, KType)>> {
        let id = self.find(&format!("btf_trace_{event}"), KIND_TYPEDEF)?;
        let mut sig = self.sig_of_func_ptr(id)?;
        if !sig.params.is_empty() {
            sig.params.remove(0);
        }
        Some(sig.params)
    }

    /// Prototype of LSM hook `hook`, from its BPF attach point `bpf_lsm_<hook>`.
    pub fn lsm_hook_args(&self, hook: &str) -> Option<KFuncSig> {
        self.func_proto(&format!("bpf_lsm_{hook}"))
    }

    // ----- struct_ops -----

    /// Members of a struct_ops type: callbacks with their prototypes, and data.
    pub fn struct_ops_members(&self, name: &str) -> Option<Vec<KOpsMember>> {
        let s = self.struct_by_name(name)?;
        Some(
            s.members
                .iter()
                .map(|m| {
                    let kind = match self.sig_of_func_ptr(m.type_id) {
                        Some(sig) => KOpsKind::Func(sig),
                        None => KOpsKind::Data(m.ty.clone()),
                    };
                    KOpsMember {
                        name: m.name.clone(),
                        offset_bits: m.offset_bits,
                        kind,
                    }
                })
                .collect(),
        )
    }

    /// Whether the kernel registers `name` as a struct_ops type: it then emits
    /// the value wrapper `struct bpf_struct_ops_<name>` (what libbpf looks for).
    pub fn is_struct_ops_type(&self, name: &str) -> bool {
        self.has_struct(name) && self.has_struct(&format!("bpf_struct_ops_{name}"))
    }
}

/// A member as `walk_members` meets it: where it lies in the outermost struct, and the member
/// indexes leading to it through anonymous members.
struct FlatMember<'p> {
    name_off: u32,
    type_id: u32,
    offset_bits: u32,
    bitfield_size: u32,
    path: &'p [u32],
}

/// The C alignment of an aggregate of `size` bytes from its members' (alignment, bit offset,
/// bit-field width): the largest alignment, or 1 when the layout shows the aggregate packed (a
/// member off its alignment, or a size no multiple of it), as `bpftool btf dump format c`
/// declares it `__attribute__((packed))`.
fn c_alignment(size: u32, members: &[(u64, u32, u32)]) -> u64 {
    let natural = members.iter().map(|m| m.0).max().unwrap_or(1);
    let packed = u64::from(size) % natural != 0
        || (members.iter())
            .filter(|&&(_, _, bitfield_size)| bitfield_size == 0)
            .any(|&(align, offset_bits, _)| u64::from(offset_bits) % (8 * align) != 0);
    if packed {
        1
    } else {
        natural
    }
}

impl fmt::Display for KType {
    /// KernelScript spelling where one exists (`u32`, `*task_struct`, `char[16]`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KType::Void => write!(f, "void"),
            KType::Int { is_bool: true, .. } => write!(f, "bool"),
            KType::Int {
                is_char: true,
                size: 1,
                ..
            } => write!(f, "char"),
            KType::Int { size, signed, .. } => {
                write!(
                    f,
                    "{}{}",
                    if *signed { 'i' } else { 'u' },
                    size.saturating_mul(8)
                )
            }
            KType::Ptr(t) => write!(f, "*{t}"),
            KType::Array { elem, len } => write!(f, "{elem}[{len}]"),
            KType::Struct { name, id }
            | KType::Union { name, id }
            | KType::Enum { name, id, .. } => {
                if name.is_empty() {
                    write!(f, "<anonymous #{id}>")
                } else {
                    write!(f, "{name}")
                }
            }
            KType::FuncPtr => write!(f, "*void"),
            KType::Unknown => write!(f, "<unknown>"),
        }
    }
}
