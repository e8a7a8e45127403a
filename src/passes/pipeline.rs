//! The pass pipelines that turn the lowered `ks` module into each backend's module.

use super::{run, PassErrors};
use crate::ir::Module;

/// The kernel side: the BPF object's functions and declarations in the `bpf` dialect, as a CFG.
const BPF: &[&str] = &[
    "assign-tail-calls",
    "check-recursion",
    "check-helper-kinds",
    "partition-bpf",
    "if-chains-to-switch",
    "switch-to-table",
    "bounds-check",
    "lower-loops",
    "lower-bpf",
    "flatten",
    "lower-tail-calls",
    "guard-verdicts",
];

/// The kernel side for BPF cpu `cpu` (`v1` to `v4`): [`BPF`], plus the rewrites that need
/// instructions of later cpus.
pub fn bpf(cpu: &str) -> Vec<&'static str> {
    let mut passes = BPF.to_vec();
    if matches!(cpu, "v3" | "v4") {
        passes.push("fuse-fetch-add");
    }
    passes
}

/// The userspace side: the host executable's functions in the `host` dialect, as a CFG.
pub const HOST: &[&str] = &[
    "assign-tail-calls",
    "partition-host",
    "if-chains-to-switch",
    "switch-to-table",
    "lower-host",
    "flatten",
];

/// The kernel-module side: kfuncs and their private helpers, as a CFG the module back end
/// writes as C.
pub const KMOD: &[&str] = &["partition-kmod", "lower-kmod", "flatten"];

/// Runs a pipeline on a copy of the module; stops at the first pass that fails.
pub fn run_pipeline(m: &Module, passes: &[&str]) -> Result<Module, (String, PassErrors)> {
    let mut m = m.clone();
    for p in passes {
        run(p, &mut m).map_err(|e| (p.to_string(), e))?;
    }
    Ok(m)
}
