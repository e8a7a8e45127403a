//! ksc, the KernelScript compiler.
//!
//! The pipeline, one folder per stage: `syntax` (pest frontend → AST) → `sema` (names, types,
//! targets, safety checks) → IR and passes → codegen (bpf, host, kmod) → link. `driver` is the thin
//! command-line layer over it; `diagnostics` is shared by every stage; `btf` reads kernel types.

pub(crate) mod btf;
pub mod codegen;
pub(crate) mod diagnostics;
pub mod driver;
pub(crate) mod input;
pub(crate) mod ir;
pub mod kernel;
pub(crate) mod link;
pub(crate) mod lower;
pub(crate) mod passes;
pub mod pipeline;
pub(crate) mod sema;
pub(crate) mod syntax;
pub(crate) mod timing;
pub(crate) mod vocab;
