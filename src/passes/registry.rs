//! Every pass by name, with its contract: the facts it needs and the facts it adds or ends
//! (`manager::Fact`). A pipeline that runs a pass before its inputs exist is rejected when it is
//! built, not when the pass trips over the module.

use super::manager::{Fact, PassInfo};
use super::*;
use crate::vocab::Target;
use Fact::*;

pub static PASSES: &[PassInfo] = &[
    PassInfo {
        name: "check-recursion",
        about: "reject recursion among kernel (bpf) functions, naming the cycle",
        requires: &[Structured],
        adds: &[],
        removes: &[],
        read_only: true,
        run: |m, a| callgraph::check_recursion(m, a.call_graph(m)),
    },
    PassInfo {
        name: "check-helper-kinds",
        about: "reject BPF helper calls the calling program's kind may not make (the kernel refuses them at load)",
        requires: &[Structured, KsKernel],
        adds: &[],
        removes: &[],
        read_only: true,
        run: |m, a| callgraph::check_helper_kinds(m, a.call_graph(m)),
    },
    PassInfo {
        name: "reachability",
        about: "drop functions and declarations no root (program, main, test, kfunc, impl) reaches",
        requires: &[Whole],
        adds: &[],
        removes: &[],
        read_only: false,
        run: |m, _| partition::reachability(m),
    },
    PassInfo {
        name: "partition-bpf",
        about: "keep only the kernel side: bpf functions and the declarations they use",
        requires: &[Whole],
        adds: &[BpfSide],
        removes: &[Whole],
        read_only: false,
        run: |m, a| partition::partition(m, Target::Bpf, a),
    },
    PassInfo {
        name: "partition-host",
        about: "keep only the userspace side: host functions and the declarations they use",
        requires: &[Whole],
        adds: &[HostSide],
        removes: &[Whole],
        read_only: false,
        run: |m, a| partition::partition(m, Target::Host, a),
    },
    PassInfo {
        name: "partition-kmod",
        about: "keep only the kernel-module side: kmod functions",
        requires: &[Whole],
        adds: &[KmodSide],
        removes: &[Whole],
        read_only: false,
        run: |m, a| partition::partition(m, Target::Kmod, a),
    },
    PassInfo {
        name: "assign-tail-calls",
        about: "declare @prog_array with a stable index per tail-call target (whole module)",
        requires: &[Whole, Structured],
        adds: &[TailCallSlots],
        removes: &[],
        read_only: false,
        run: |m, _| tail_calls::assign(m),
    },
    PassInfo {
        name: "lower-tail-calls",
        about: "ks.tail_call to bpf.tail_call through @prog_array plus the pass verdict (after flatten)",
        requires: &[Cfg, BpfSide, TailCallSlots],
        adds: &[],
        removes: &[],
        read_only: false,
        run: |m, _| tail_calls::lower(m),
    },
    PassInfo {
        name: "if-chains-to-switch",
        about: "long else-if chains testing one integer against constants to one ks.switch",
        requires: &[Structured],
        adds: &[],
        removes: &[],
        read_only: false,
        run: |m, _| if_chain::run(m),
    },
    PassInfo {
        name: "switch-to-table",
        about: "large switches whose arms differ only in integer constants to one arm reading them from tables",
        requires: &[Structured],
        adds: &[],
        removes: &[],
        read_only: false,
        run: |m, _| switch_table::run(m),
    },
    PassInfo {
        name: "sink-arm-tails",
        about: "an operation ending every arm of a branch alike but for integer operands runs once after it",
        requires: &[Structured, KsKernel],
        adds: &[],
        removes: &[],
        read_only: false,
        run: |m, _| arm_tails::run(m),
    },
    PassInfo {
        name: "fold-presence-delete",
        about: "a presence test of a hash entry that guards its delete becomes the delete's own result",
        requires: &[Structured, KsKernel],
        adds: &[],
        removes: &[],
        read_only: false,
        run: |m, _| presence_delete::run(m),
    },
    PassInfo {
        name: "bound-loops",
        about: "counted loops to a run-time bound known to be small count to that bound instead, inline",
        requires: &[Structured, KsKernel],
        adds: &[],
        removes: &[],
        read_only: false,
        run: |m, _| bound_loops::run(m),
    },
    PassInfo {
        name: "bounds-check",
        about: "packet bounds checks before packet accesses, minus those a dominating test proves",
        requires: &[Structured, KsKernel],
        adds: &[],
        removes: &[],
        read_only: false,
        run: bounds_check::run,
    },
    PassInfo {
        name: "lower-loops",
        about: "long counted loops in kernel code to bpf_loop callbacks with captured state",
        requires: &[Structured, KsKernel],
        adds: &[],
        removes: &[],
        read_only: false,
        run: |m, _| lower_loops::run(m),
    },
    PassInfo {
        name: "flatten",
        about: "structured control flow to a CFG; defers on every exit, throws and aborts through a hidden status",
        requires: &[Structured],
        adds: &[Cfg],
        removes: &[Structured],
        read_only: false,
        run: |m, _| flatten::run(m),
    },
    PassInfo {
        name: "lower-bpf",
        about: "ks ops of kernel functions to the bpf dialect (helpers, maps, context, CO-RE, dynptr ring buffers)",
        requires: &[Structured, KsKernel],
        adds: &[BpfDialect],
        removes: &[KsKernel],
        read_only: false,
        run: |m, _| lower_bpf::run(m),
    },
    PassInfo {
        name: "lower-host",
        about: "ks ops of userspace functions to the host dialect (runtime ABI calls)",
        requires: &[Structured, KsUser],
        adds: &[HostDialect],
        removes: &[KsUser],
        read_only: false,
        run: lower_host::run,
    },
    PassInfo {
        name: "fuse-fetch-add",
        about: "an atomic add and the reloads of its word right after it to one fetch-add (BPF cpu v3+)",
        requires: &[BpfDialect],
        adds: &[],
        removes: &[],
        read_only: false,
        run: |m, _| fetch_add::run(m),
    },
    PassInfo {
        name: "guard-verdicts",
        about: "computed returns of programs whose range the verifier checks (cgroup_skb, lsm, fentry/fexit) fall back to the pass verdict outside it (after flatten)",
        requires: &[Cfg, BpfSide],
        adds: &[],
        removes: &[],
        read_only: false,
        run: |m, _| verdict_guard::run(m),
    },
    PassInfo {
        name: "lower-kmod",
        about: "checked indexing in kernel-module functions to range tests and aborts",
        requires: &[Structured, KmodSide],
        adds: &[],
        removes: &[],
        read_only: false,
        run: |m, _| lower_bpf::run_kmod(m),
    },
];

pub fn find(name: &str) -> Option<&'static PassInfo> {
    PASSES.iter().find(|p| p.name == name)
}

/// Every pass's name and what it does, for `ksc opt --list-passes`.
pub fn list() -> impl Iterator<Item = &'static PassInfo> {
    PASSES.iter()
}
