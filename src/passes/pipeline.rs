//! The pass pipelines that turn the lowered `ks` module into each back end's module, as checked
//! `Pipeline` values (see `manager`).

#[cfg(test)]
use super::manager::Facts;
use super::manager::{self, lowered_facts, Fact, Pipeline, PipelineError, RunOptions};
use crate::ir::Module;
use crate::vocab::Target;

/// The kernel side: the BPF object's functions and declarations in the `bpf` dialect, as a CFG.
const BPF: &[&str] = &[
    "assign-tail-calls",
    "check-recursion",
    "check-helper-kinds",
    "partition-bpf",
    "check-rcu-sections",
    "compute-guarded-updates",
    "if-chains-to-switch",
    "sink-arm-tails",
    "range-tests",
    "switch-to-table",
    "fold-presence-delete",
    "sink-pure-calls",
    "hoist-counter-defers",
    "unroll-loops",
    "bound-loops",
    "read-packet-structs",
    "bounds-check",
    "widen-loop-steps",
    "mask-loop-offsets",
    "lower-loops",
    "lower-bpf",
    "check-kernel-memory",
    "guard-helper-sizes",
    "refresh-round-bounds",
    "separate-bound-tests",
    "skip-filled-zeroing",
    "flatten",
    "lower-tail-calls",
    "guard-verdicts",
    "merge-tails",
];

/// The userspace side: the host executable's functions in the `host` dialect, as a CFG.
const HOST: &[&str] = &[
    "assign-tail-calls",
    "partition-host",
    "if-chains-to-switch",
    "switch-to-table",
    "lower-host",
    "flatten",
];

/// The kernel-module side: kfuncs and their private helpers, as a CFG the module back end
/// writes as C.
const KMOD: &[&str] = &["partition-kmod", "lower-kmod", "flatten"];

/// What each back end needs of its module.
fn back_end_needs(target: Target) -> &'static [Fact] {
    match target {
        Target::Bpf => &[Fact::BpfSide, Fact::Cfg, Fact::BpfDialect],
        Target::Host => &[Fact::HostSide, Fact::Cfg, Fact::HostDialect],
        Target::Kmod => &[Fact::KmodSide, Fact::Cfg],
    }
}

/// The pipeline from a lowered module to `target`'s back end; for the kernel side, BPF cpu `cpu`
/// (`v1` to `v4`) adds the rewrites that need instructions of later cpus, and an unoptimised
/// build (`optimize` false) the ones that keep its loops loadable.
pub fn for_target(target: Target, cpu: &str, optimize: bool) -> Pipeline {
    let mut names = match target {
        Target::Bpf => BPF.to_vec(),
        Target::Host => HOST.to_vec(),
        Target::Kmod => KMOD.to_vec(),
    };
    if target == Target::Bpf && matches!(cpu, "v3" | "v4") {
        names.push("fuse-fetch-add");
    }
    if target == Target::Bpf && !optimize {
        let at = names
            .iter()
            .position(|&n| n == "bound-loops")
            .expect("in BPF");
        names.insert(at, "outline-run-time-loops");
    }
    Pipeline::new(&names, lowered_facts(), back_end_needs(target))
        .unwrap_or_else(|e| panic!("the built-in {target} pipeline is invalid: {e}"))
}

/// Runs `target`'s pipeline on a copy of the lowered module. On failure the error comes with the
/// module as the failing pass left it, which the error's ops belong to.
pub fn run_for_target(
    m: &Module,
    target: Target,
    bpf: &crate::codegen::bpf::Options,
    opts: RunOptions,
) -> Result<Module, Box<(Module, PipelineError)>> {
    let mut m = m.clone();
    let pipeline = for_target(target, &bpf.cpu, bpf.optimize);
    match manager::run(&mut m, &pipeline, opts) {
        Ok(()) => Ok(m),
        Err(e) => Err(Box::new((m, e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_pipelines_meet_their_contracts() {
        for target in Target::ALL {
            for cpu in ["v1", "v2", "v3", "v4"] {
                // Panics when the list does not meet its contracts.
                for_target(target, cpu, true);
                for_target(target, cpu, false);
            }
        }
    }

    #[test]
    fn a_pass_before_its_inputs_is_rejected() {
        // `lower-tail-calls` needs a CFG; `lower-bpf` needs the kernel side alone.
        let e = Pipeline::new(&["lower-tail-calls"], lowered_facts(), &[]).err();
        assert!(e.is_some_and(|e| e.contains("lower-tail-calls") && e.contains("CFG")));
        let e = Pipeline::new(&["lower-tail-calls"], Facts::all(), &[]);
        assert!(e.is_ok());
        let e = Pipeline::new(&["lower-bpf", "lower-bpf"], lowered_facts(), &[]).err();
        assert!(e.is_some_and(|e| e.contains("`ks` dialect")));
        let e = Pipeline::new(&["partition-bpf", "partition-host"], lowered_facts(), &[]).err();
        assert!(e.is_some_and(|e| e.contains("partition-host")));
        let e = Pipeline::new(
            &["partition-host", "flatten"],
            lowered_facts(),
            &[Fact::Cfg, Fact::HostDialect],
        )
        .err();
        assert!(e.is_some_and(|e| e.contains("does not end with")));
    }
}
