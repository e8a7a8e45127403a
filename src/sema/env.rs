//! The file namespace (§5.1) and its tables: structs, enums, functions, maps, globals, configs.
//! Also the always-available prelude (§10.4) and the kernel scope read from BTF.

use super::types::{EnumId, IntTy, StructId, Ty};
use crate::diagnostics::Span;
use crate::syntax::ast::{FuncDecl, Item};
pub use crate::vocab::{MapKind, ProgKind, StructOrigin, Target};

#[derive(Clone, Debug)]
pub struct FieldInfo {
    pub name: String,
    pub ty: Ty,
}

#[derive(Clone, Debug)]
pub struct StructInfo {
    pub name: String,
    pub fields: Vec<FieldInfo>,
    pub origin: StructOrigin,
    /// Kernel BTF type id (CO-RE relocations need it later).
    pub btf_id: Option<u32>,
    /// Size and alignment from BTF for kernel structs (their layout is the kernel's, not C layout
    /// of `fields`).
    pub kernel_layout: Option<KernelLayout>,
    pub span: Option<Span>,
}

/// A kernel struct's size and C alignment, as its BTF gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLayout {
    pub size: u64,
    pub align: u64,
}

/// The largest packet `test()` runs (§17.4).
pub const MAX_TEST_PACKET: u64 = 3500;

impl StructInfo {
    /// A user struct with an integer `packet_size` field is a test context (§17.4, the reference's
    /// `test(prog, XdpTestContext { packet_size: 500, … })`): `test()` runs a zero-filled packet of
    /// that many bytes, not the struct's own bytes.
    pub fn is_test_context(&self) -> bool {
        self.origin == StructOrigin::File
            && self
                .field("packet_size")
                .is_some_and(|f| matches!(f.ty, Ty::Int(_)))
    }

    pub fn field(&self, name: &str) -> Option<&FieldInfo> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[derive(Clone, Debug)]
pub struct EnumInfo {
    pub name: String,
    pub variants: Vec<(String, i128)>,
    pub repr: IntTy,
}

/// Memory a kernel program reads only through `bpf_probe_read_kernel`/`_user`: where pointers
/// taken from saved registers point (kprobe arguments; a syscall's arguments, §9.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Foreign {
    Kernel,
    User,
}

impl Foreign {
    pub fn describe(self) -> &'static str {
        match self {
            Foreign::Kernel => "kernel memory read from registers (use `bpf_probe_read_kernel`)",
            Foreign::User => "user memory (use `bpf_probe_read_user`)",
        }
    }
}

/// Where a function runs and how it may be called (§9.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FnKind {
    Program { kind: ProgKind, arg: Option<String> },
    Helper,
    StructOpsMethod { impl_name: String },
    Kfunc,
    Private,
    Test,
    User,
    Main,
}

impl FnKind {
    pub fn target(&self) -> Target {
        match self {
            FnKind::Program { .. } | FnKind::Helper | FnKind::StructOpsMethod { .. } => Target::Bpf,
            FnKind::Kfunc | FnKind::Private => Target::Kmod,
            FnKind::Test | FnKind::User | FnKind::Main => Target::Host,
        }
    }

    pub fn program_kind(&self) -> Option<ProgKind> {
        match self {
            FnKind::Program { kind, .. } => Some(*kind),
            FnKind::StructOpsMethod { .. } => Some(ProgKind::StructOps),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(pub u32);

pub struct FuncInfo<'a> {
    pub name: String,
    /// `module.name` for functions of imported modules.
    pub module: Option<String>,
    pub kind: FnKind,
    pub params: Vec<Ty>,
    pub ret: Ty,
    pub decl: &'a FuncDecl,
    pub item: &'a Item,
}

#[derive(Clone, Debug)]
pub struct MapInfo {
    pub name: String,
    pub kind: MapKind,
    /// `Ty::Error` for kinds without a key.
    pub key: Ty,
    pub value: Ty,
    pub max_entries: u64,
    pub pinned: bool,
    pub flags: u32,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct GlobalInfo {
    pub name: String,
    pub ty: Ty,
    pub pinned: bool,
    pub local: bool,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ConfigInfo {
    pub name: String,
    pub fields: Vec<FieldInfo>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ExternInfo {
    pub name: String,
    pub params: Vec<Ty>,
    pub ret: Ty,
    /// The standard BPF helper id when the name is a known helper.
    pub helper_id: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct ImplInfo {
    pub name: String,
    pub kernel_struct: String,
    pub span: Span,
}

/// What a name in the file namespace denotes.
#[derive(Clone, Debug)]
pub enum Symbol {
    Struct(StructId),
    Enum(EnumId),
    Alias(Ty),
    EnumConst(EnumId, i128),
    Map(usize),
    Global(usize),
    Const(usize),
    Config(usize),
    Func(FuncId),
    Extern(usize),
    Impl(usize),
    Module(usize),
}

/// A top-level `const` (§12.2): its type and folded value.
#[derive(Clone, Debug)]
pub struct ConstInfo {
    pub name: String,
    pub ty: Ty,
    pub value: super::consteval::ConstValue,
}
