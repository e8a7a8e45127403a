//! Code generation: the `bpf` dialect to a BPF ELF object through LLVM (inkwell), the `host`
//! dialect to a native object, and the module C source for `@kfunc`s.

pub mod bpf;
mod format;
pub mod host;
pub mod kmod;
pub mod llvm;
pub mod python;
