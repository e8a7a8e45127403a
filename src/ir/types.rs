//! IR types. Enums are their storage integer, `char` is `u8`, and structs are named references to
//! a `ks.struct` declaration of the module, so a textual module is self-contained.

pub use crate::sema::types::IntTy;
use std::fmt;
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Void,
    Bool,
    Int(IntTy),
    Ptr(Rc<Type>),
    Array(Rc<Type>, u32),
    /// `str(N)`: N bytes including the NUL.
    Str(u32),
    Struct(Rc<str>),
    Func(Rc<FnType>),
    /// A loaded program's handle (`ProgramHandle`).
    ProgHandle,
    /// A perf-event attachment (`PerfAttachment`).
    PerfHandle,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FnType {
    pub params: Vec<Type>,
    pub ret: Type,
}

impl Type {
    pub fn ptr(to: Type) -> Type {
        Type::Ptr(Rc::new(to))
    }

    pub fn u8() -> Type {
        Type::Int(IntTy::U8)
    }

    pub fn u16() -> Type {
        Type::Int(IntTy::U16)
    }

    pub fn u32() -> Type {
        Type::Int(IntTy::U32)
    }

    pub fn i32() -> Type {
        Type::Int(IntTy::I32)
    }

    pub fn u64() -> Type {
        Type::Int(IntTy::U64)
    }

    pub fn i64() -> Type {
        Type::Int(IntTy::I64)
    }

    pub fn is_int(&self) -> bool {
        matches!(self, Type::Int(_))
    }

    pub fn is_ptr(&self) -> bool {
        matches!(self, Type::Ptr(_))
    }

    /// Integers, bools and pointers: what fits a register.
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Type::Int(_)
                | Type::Bool
                | Type::Ptr(_)
                | Type::Func(_)
                | Type::ProgHandle
                | Type::PerfHandle
        )
    }

    pub fn pointee(&self) -> Option<&Type> {
        match self {
            Type::Ptr(t) => Some(t),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<IntTy> {
        match self {
            Type::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Void => f.write_str("void"),
            Type::Bool => f.write_str("bool"),
            Type::Int(i) => f.write_str(i.name()),
            Type::Ptr(t) => write!(f, "ptr<{t}>"),
            Type::Array(t, n) => write!(f, "[{n} x {t}]"),
            Type::Str(n) => write!(f, "str<{n}>"),
            Type::Struct(n) => write!(f, "!{n}"),
            Type::Func(ft) => {
                f.write_str("fn(")?;
                for (i, p) in ft.params.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{p}")?;
                }
                write!(f, ") -> {}", ft.ret)
            }
            Type::ProgHandle => f.write_str("prog_handle"),
            Type::PerfHandle => f.write_str("perf_handle"),
        }
    }
}
