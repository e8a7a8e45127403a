//! The pass manager and the passes over KS-IR. Each pass is a function over a module, registered
//! by name so `ksc opt --passes=a,b` and the compilation pipelines run the same code.

mod bounds_check;
pub mod callgraph;
mod fetch_add;
mod flatten;
mod if_chain;
pub mod lower_bpf;
pub mod lower_host;
mod lower_kmod;
mod lower_loops;
mod partition;
pub mod pipeline;
mod switch_table;
pub mod tail_calls;
mod verdict_guard;

use crate::diagnostics::Code;
use crate::ir::{Module, OpId};

/// A pass failure, optionally at an op. Most are compiler bugs (E0999); a pass that finds a
/// user error sema cannot see (a packet offset no packet can reach) says which.
#[derive(Debug)]
pub struct PassError {
    pub op: Option<OpId>,
    pub code: Code,
    pub message: String,
}

impl PassError {
    pub fn internal(op: Option<OpId>, message: impl Into<String>) -> PassError {
        PassError {
            op,
            code: Code::E0999,
            message: message.into(),
        }
    }

    pub fn user(op: OpId, code: Code, message: impl Into<String>) -> PassError {
        PassError {
            op: Some(op),
            code,
            message: message.into(),
        }
    }
}

pub type PassErrors = Vec<PassError>;
pub type PassResult = Result<(), PassErrors>;

struct Pass {
    name: &'static str,
    about: &'static str,
    run: fn(&mut Module) -> PassResult,
}

const PASSES: &[Pass] = &[
    Pass { name: "check-recursion", about: "reject recursion among kernel (bpf) functions, naming the cycle", run: callgraph::check_recursion },
    Pass { name: "check-helper-kinds", about: "reject BPF helper calls the calling program's kind may not make (the kernel refuses them at load)", run: callgraph::check_helper_kinds },
    Pass { name: "reachability", about: "drop functions and declarations no root (program, main, test, kfunc, impl) reaches", run: partition::reachability },
    Pass { name: "partition-bpf", about: "keep only the kernel side: bpf functions and the declarations they use", run: |m| partition::partition(m, "bpf") },
    Pass { name: "partition-host", about: "keep only the userspace side: host functions and the declarations they use", run: |m| partition::partition(m, "host") },
    Pass { name: "partition-kmod", about: "keep only the kernel-module side: kmod functions", run: |m| partition::partition(m, "kmod") },
    Pass { name: "assign-tail-calls", about: "declare @prog_array with a stable index per tail-call target (whole module)", run: tail_calls::assign },
    Pass { name: "lower-tail-calls", about: "ks.tail_call to bpf.tail_call through @prog_array plus the pass verdict (after flatten)", run: tail_calls::lower },
    Pass { name: "if-chains-to-switch", about: "long else-if chains testing one integer against constants to one ks.switch", run: if_chain::run },
    Pass { name: "switch-to-table", about: "large switches whose arms differ only in integer constants to one arm reading them from tables", run: switch_table::run },
    Pass { name: "bounds-check", about: "packet bounds checks before packet accesses, minus those a dominating test proves", run: bounds_check::run },
    Pass { name: "lower-loops", about: "long counted loops in kernel code to bpf_loop callbacks with captured state", run: lower_loops::run },
    Pass { name: "flatten", about: "structured control flow to a CFG; defers on every exit, throws and aborts through a hidden status", run: flatten::run },
    Pass { name: "lower-bpf", about: "ks ops of kernel functions to the bpf dialect (helpers, maps, context, CO-RE, dynptr ring buffers)", run: lower_bpf::run },
    Pass { name: "lower-host", about: "ks ops of userspace functions to the host dialect (runtime ABI calls)", run: lower_host::run },
    Pass { name: "fuse-fetch-add", about: "an atomic add and the reloads of its word right after it to one fetch-add (BPF cpu v3+)", run: fetch_add::run },
    Pass { name: "guard-verdicts", about: "computed returns of programs whose range the verifier checks (cgroup_skb, lsm, fentry/fexit) fall back to the pass verdict outside it (after flatten)", run: verdict_guard::run },
    Pass { name: "lower-kmod", about: "checked indexing in kernel-module functions to range tests and aborts", run: lower_kmod::run },
];

pub fn list() -> Vec<(&'static str, &'static str)> {
    PASSES.iter().map(|p| (p.name, p.about)).collect()
}

/// Runs the pass called `name`.
pub fn run(name: &str, m: &mut Module) -> PassResult {
    match PASSES.iter().find(|p| p.name == name) {
        Some(p) => (p.run)(m),
        None => Err(vec![PassError::internal(
            None,
            format!("unknown pass `{name}` (see `ksc opt --list-passes`)"),
        )]),
    }
}
