//! Code generation: the `bpf` dialect to a BPF ELF object through LLVM (inkwell), the `host`
//! dialect to a native executable, and the module C source for `@kfunc`s.

pub mod bpf;
pub mod host;
pub mod llvm;
