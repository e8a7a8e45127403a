//! KernelScript types (docs/language.md §6): representation, layout and the unification rules of §6.3.

use std::fmt;
use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntTy {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
}

impl IntTy {
    pub fn bits(self) -> u32 {
        match self {
            IntTy::U8 | IntTy::I8 => 8,
            IntTy::U16 | IntTy::I16 => 16,
            IntTy::U32 | IntTy::I32 => 32,
            IntTy::U64 | IntTy::I64 => 64,
        }
    }

    pub fn signed(self) -> bool {
        matches!(self, IntTy::I8 | IntTy::I16 | IntTy::I32 | IntTy::I64)
    }

    pub fn of(bits: u32, signed: bool) -> IntTy {
        match (bits, signed) {
            (8, false) => IntTy::U8,
            (16, false) => IntTy::U16,
            (32, false) => IntTy::U32,
            (8, true) => IntTy::I8,
            (16, true) => IntTy::I16,
            (32, true) => IntTy::I32,
            (_, true) => IntTy::I64,
            _ => IntTy::U64,
        }
    }

    pub fn min(self) -> i128 {
        if self.signed() {
            -(1i128 << (self.bits() - 1))
        } else {
            0
        }
    }

    pub fn max(self) -> i128 {
        if self.signed() {
            (1i128 << (self.bits() - 1)) - 1
        } else {
            (1i128 << self.bits()) - 1
        }
    }

    /// Wraps `v` to this type's range, as run-time arithmetic does.
    pub fn wrap(self, v: i128) -> i128 {
        let bits = self.bits();
        let m = v & ((1i128 << bits) - 1);
        if self.signed() && m >= (1i128 << (bits - 1)) {
            m - (1i128 << bits)
        } else {
            m
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IntTy::U8 => "u8",
            IntTy::U16 => "u16",
            IntTy::U32 => "u32",
            IntTy::U64 => "u64",
            IntTy::I8 => "i8",
            IntTy::I16 => "i16",
            IntTy::I32 => "i32",
            IntTy::I64 => "i64",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StructId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnumId(pub u32);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FnSig {
    pub params: Vec<Ty>,
    pub ret: Ty,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Int(IntTy),
    Bool,
    Char,
    Void,
    /// `str(N)`: N bytes of storage including the NUL.
    Str(u32),
    Array(Rc<Ty>, u32),
    Ptr(Rc<Ty>),
    Struct(StructId),
    Enum(EnumId),
    Fn(Rc<FnSig>),
    /// The type of `null` before it meets a pointer.
    Null,
    /// A fill array literal (`[]`, `[v]`) whose length comes from its context.
    FillArray(Rc<Ty>),
    ProgramHandle,
    PerfAttachment,
    /// After an error, or a kernel type ksc cannot express: compatible with everything so one
    /// mistake yields one diagnostic.
    Error,
}

pub const U8: Ty = Ty::Int(IntTy::U8);
pub const U32: Ty = Ty::Int(IntTy::U32);
pub const U64: Ty = Ty::Int(IntTy::U64);
pub const I32: Ty = Ty::Int(IntTy::I32);
pub const I64: Ty = Ty::Int(IntTy::I64);

impl Ty {
    pub fn ptr(to: Ty) -> Ty {
        Ty::Ptr(Rc::new(to))
    }

    pub fn array(elem: Ty, n: u32) -> Ty {
        Ty::Array(Rc::new(elem), n)
    }

    pub fn is_int(&self) -> bool {
        matches!(self, Ty::Int(_))
    }

    /// Integers and things that behave like them in arithmetic (enums, §6.3 rule 4).
    pub fn is_integral(&self) -> bool {
        matches!(self, Ty::Int(_) | Ty::Enum(_) | Ty::Error)
    }

    pub fn is_ptr(&self) -> bool {
        matches!(self, Ty::Ptr(_))
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Ty::Error)
    }

    pub fn pointee(&self) -> Option<&Ty> {
        match self {
            Ty::Ptr(t) => Some(t),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<IntTy> {
        match self {
            Ty::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// Unification of two integer types (§6.3 rules 2–3).
pub fn unify_ints(a: IntTy, b: IntTy) -> Option<IntTy> {
    use IntTy::{I16, I32, I64, I8, U16, U32, U64, U8};
    if a.signed() == b.signed() {
        return Some(if a.bits() >= b.bits() { a } else { b });
    }
    let (s, u) = if a.signed() { (a, b) } else { (b, a) };
    match (s, u) {
        (I8 | I16 | I32, U32) => Some(I32),
        (I64, U32) | (I64, U64) => Some(I64),
        (I8, U8) => Some(I8),
        (I16, U16) => Some(I16),
        _ => None,
    }
}

/// Names of types for messages; struct and enum names come from the checker's tables.
pub trait TypeNames {
    fn struct_name(&self, id: StructId) -> String;
    fn enum_name(&self, id: EnumId) -> String;
}

pub struct Display<'a, N: TypeNames>(pub &'a Ty, pub &'a N);

impl<N: TypeNames> fmt::Display for Display<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.1;
        match self.0 {
            Ty::Int(i) => f.write_str(i.name()),
            Ty::Bool => f.write_str("bool"),
            Ty::Char => f.write_str("char"),
            Ty::Void => f.write_str("void"),
            Ty::Str(k) => write!(f, "str({k})"),
            Ty::Array(e, k) => write!(f, "{}[{k}]", Display(e, n)),
            Ty::FillArray(e) => write!(f, "{}[_]", Display(e, n)),
            Ty::Ptr(t) => write!(f, "*{}", Display(t, n)),
            Ty::Struct(id) => f.write_str(&n.struct_name(*id)),
            Ty::Enum(id) => f.write_str(&n.enum_name(*id)),
            Ty::Fn(sig) => {
                f.write_str("fn(")?;
                for (i, p) in sig.params.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", Display(p, n))?;
                }
                write!(f, ") -> {}", Display(&sig.ret, n))
            }
            Ty::Null => f.write_str("null"),
            Ty::ProgramHandle => f.write_str("ProgramHandle"),
            Ty::PerfAttachment => f.write_str("PerfAttachment"),
            Ty::Error => f.write_str("<error>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IntTy::{I16, I32, I64, I8, U16, U32, U64, U8};

    #[test]
    fn integer_unification_follows_the_reference_pairs() {
        assert_eq!(unify_ints(U8, U32), Some(U32));
        assert_eq!(unify_ints(I16, I64), Some(I64));
        assert_eq!(unify_ints(I32, U32), Some(I32));
        assert_eq!(unify_ints(U32, I16), Some(I32));
        assert_eq!(unify_ints(I64, U64), Some(I64));
        assert_eq!(unify_ints(U8, I8), Some(I8));
        assert_eq!(unify_ints(I16, U16), Some(I16));
        assert_eq!(unify_ints(U16, I32), None);
        assert_eq!(unify_ints(U64, I32), None);
        assert_eq!(unify_ints(U8, I64), None);
    }

    #[test]
    fn ranges_and_wrapping() {
        assert_eq!(U8.max(), 255);
        assert_eq!(I8.min(), -128);
        assert_eq!(U32.wrap(-1), 0xFFFF_FFFF);
        assert_eq!(I8.wrap(200), -56);
        assert_eq!(U64.max(), u64::MAX as i128);
    }
}
