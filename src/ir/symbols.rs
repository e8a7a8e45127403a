//! Names of the declarations the compiler adds to a module itself, which more than one stage
//! refers to: the pass that declares one and the passes, back ends and runtime that find it.

/// The `ks.prog_array` whose `programs` give each tail-call target its index (`assign-tail-calls`
/// declares it; `lower-tail-calls`, the BPF back end and the runtime use it).
pub const PROG_ARRAY: &str = "prog_array";

/// The one-entry array map holding every pinned global (§12.1), and its value struct (a struct
/// cannot share the map's symbol); `lower-bpf` declares both, the BPF back end's tables read them.
pub const PINNED_GLOBALS_MAP: &str = "__pinned_globals";
pub const PINNED_GLOBALS_STRUCT: &str = "__pinned_globals_t";
