//! KS-IR: ksc's multi-level intermediate representation.
//!
//! One data structure serves every level. A [`Module`] owns arenas of ops, values, blocks and
//! regions addressed by typed handles. Ops are declared once, in `ir-specs/*.ops`; build.rs turns
//! the specs into the [`Opcode`] enum, the [`OP_INFO`] table that drives the printer, the parser and
//! the verifier, one typed builder method per op and typed views (`ops::views`). See
//! `ir-specs/README.md` for the design.

pub mod cfg;
mod family;
pub mod layout;
mod module;
pub mod ops;
pub mod parse;
pub mod print;
pub mod symbols;
mod types;
pub mod verify;

pub use family::OpFamily;
pub use module::*;
pub use ops::{views, EnumValue, Opcode, Traits};
pub use types::*;

#[cfg(test)]
mod tests;
