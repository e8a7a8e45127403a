//! ksc, the KernelScript compiler.
//!
//! The pipeline, one folder per stage: `syntax` (pest frontend → AST) → `sema` (names, types,
//! targets, safety checks) → IR and passes → codegen (bpf, host, kmod) → link. `driver` is the thin
//! command-line layer over it; `diagnostics` is shared by every stage; `btf` reads kernel types.

pub mod btf;
pub mod codegen;
pub mod diagnostics;
pub mod driver;
pub mod input;
pub mod ir;
pub mod kernel;
pub mod link;
pub mod lower;
pub mod passes;
pub mod pipeline;
pub mod sema;
pub mod syntax;
pub mod timing;
pub mod vocab;
