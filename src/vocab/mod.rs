//! The closed vocabularies every stage shares: targets, program kinds, map kinds, comparison
//! predicates, global storage and struct origins. The enums are declared once, in
//! `ir-specs/enums.ops`, and generated; what each value means to a stage is a method here,
//! written as an exhaustive `match` so that a new value cannot be forgotten. `helpers` is the one
//! table of the BPF helpers ksc knows.

pub mod helpers;
mod map_kind;
mod prog_kind;
mod set;

include!(concat!(env!("OUT_DIR"), "/vocab.rs"));

pub use set::EnumSet;

/// What every vocabulary enum offers generic code.
pub trait Vocabulary: Copy + Eq + 'static {
    /// Every value, in spec order.
    const ALL: &'static [Self];
    /// The spelling in IR text and source.
    fn name(self) -> &'static str;
    /// The position in [`Vocabulary::ALL`].
    fn index(self) -> u8;
}

impl CmpPred {
    /// The C operator (the kernel module's C).
    pub fn c_operator(self) -> &'static str {
        match self {
            CmpPred::Eq => "==",
            CmpPred::Ne => "!=",
            CmpPred::Lt => "<",
            CmpPred::Le => "<=",
            CmpPred::Gt => ">",
            CmpPred::Ge => ">=",
        }
    }

    /// The predicate with its operands exchanged: `a < b` is `b > a`.
    pub fn swapped(self) -> CmpPred {
        match self {
            CmpPred::Lt => CmpPred::Gt,
            CmpPred::Le => CmpPred::Ge,
            CmpPred::Gt => CmpPred::Lt,
            CmpPred::Ge => CmpPred::Le,
            same => same,
        }
    }

    /// The predicate that holds exactly when this one does not.
    pub fn negated(self) -> CmpPred {
        match self {
            CmpPred::Eq => CmpPred::Ne,
            CmpPred::Ne => CmpPred::Eq,
            CmpPred::Lt => CmpPred::Ge,
            CmpPred::Le => CmpPred::Gt,
            CmpPred::Gt => CmpPred::Le,
            CmpPred::Ge => CmpPred::Lt,
        }
    }
}

impl StructOrigin {
    /// The kernel's own type (a BTF struct or a program context): C and BTF name it as the
    /// kernel does, and its layout is the kernel's.
    pub fn is_kernel_type(self) -> bool {
        matches!(self, StructOrigin::Kernel | StructOrigin::Context)
    }
}
