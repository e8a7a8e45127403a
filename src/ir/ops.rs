//! The generated op table (from `ir-specs/*.ops`) and the types it is written in terms of.

use super::*;

/// What an operand or result accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Constraint {
    Any,
    Int,
    Bool,
    Ptr,
    /// Integer, bool, pointer or function value.
    Scalar,
    IntOrBool,
    Str,
    FnPtr,
    Exactly(IntTy),
    /// The type of operand N.
    SameAs(usize),
}

impl Constraint {
    pub fn accepts(self, t: &Type) -> bool {
        match self {
            Constraint::Any | Constraint::SameAs(_) => true,
            Constraint::Int => t.is_int(),
            Constraint::Bool => *t == Type::Bool,
            Constraint::Ptr => t.is_ptr(),
            Constraint::Scalar => t.is_scalar(),
            Constraint::IntOrBool => t.is_int() || *t == Type::Bool,
            Constraint::Str => matches!(t, Type::Str(_)),
            Constraint::FnPtr => matches!(t, Type::Func(_)),
            Constraint::Exactly(i) => *t == Type::Int(i),
        }
    }

    pub fn describe(self) -> String {
        match self {
            Constraint::Any => "any type".into(),
            Constraint::Int => "an integer".into(),
            Constraint::Bool => "bool".into(),
            Constraint::Ptr => "a pointer".into(),
            Constraint::Scalar => "a scalar".into(),
            Constraint::IntOrBool => "an integer or bool".into(),
            Constraint::Str => "a string".into(),
            Constraint::FnPtr => "a function value".into(),
            Constraint::Exactly(i) => i.name().into(),
            Constraint::SameAs(i) => format!("the type of operand {i}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    Int,
    Bool,
    Str,
    Sym,
    Type,
    Fields,
    List,
    /// One of a closed vocabulary's values.
    Enum(EnumType),
    /// Any literal attribute (global initialisers).
    Value,
}

impl AttrKind {
    pub fn accepts(self, a: &Attr) -> bool {
        matches!(
            (self, a),
            (AttrKind::Int, Attr::Int(_))
                | (AttrKind::Bool, Attr::Bool(_))
                | (AttrKind::Str, Attr::Str(_))
                | (AttrKind::Sym, Attr::Sym(_))
                | (AttrKind::Type, Attr::Type(_))
                | (AttrKind::Fields, Attr::Fields(_))
                | (AttrKind::List, Attr::List(_))
                | (AttrKind::Value, _)
        ) || matches!((self, a), (AttrKind::Enum(t), Attr::Enum(v)) if v.ty() == t)
    }
}

pub struct SlotInfo {
    pub name: &'static str,
    pub constraint: Constraint,
    pub variadic: bool,
}

pub struct AttrInfo {
    pub name: &'static str,
    pub kind: AttrKind,
    pub optional: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Traits(pub u16);

impl Traits {
    pub const PURE: Traits = Traits(1);
    pub const TERMINATOR: Traits = Traits(2);
    pub const READS: Traits = Traits(4);
    pub const WRITES: Traits = Traits(8);
    /// Only valid in kernel (bpf) functions.
    pub const KERNEL: Traits = Traits(16);
    /// Only valid in userspace (host) functions.
    pub const USER: Traits = Traits(32);
    /// Lives directly in the module body.
    pub const MODULE_LEVEL: Traits = Traits(64);
    /// Its regions cannot see values defined outside it.
    pub const ISOLATED: Traits = Traits(128);

    pub fn has(self, t: Traits) -> bool {
        self.0 & t.0 != 0
    }
}

/// Everything the spec says about one op.
pub struct OpInfo {
    pub name: &'static str,
    pub dialect: &'static str,
    pub summary: &'static str,
    pub operands: &'static [SlotInfo],
    pub results: &'static [SlotInfo],
    pub attrs: &'static [AttrInfo],
    pub regions: &'static [&'static str],
    pub variadic_regions: bool,
    pub successors: &'static [&'static str],
    pub variadic_successors: bool,
    pub traits: Traits,
}

impl OpInfo {
    pub fn attr_index(&self, name: &str) -> Option<usize> {
        self.attrs.iter().position(|a| a.name == name)
    }

    /// The number of fixed slots and whether more may follow.
    pub fn arity(slots: &[SlotInfo]) -> (usize, bool) {
        let variadic = slots.last().is_some_and(|s| s.variadic);
        (slots.len() - variadic as usize, variadic)
    }
}

impl Opcode {
    pub fn info(self) -> &'static OpInfo {
        &OP_INFO[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn has(self, t: Traits) -> bool {
        self.info().traits.has(t)
    }
}

/// The Markdown op reference generated from the specs.
pub const REFERENCE: &str = include_str!(concat!(env!("OUT_DIR"), "/ops.md"));

include!(concat!(env!("OUT_DIR"), "/ops.rs"));
