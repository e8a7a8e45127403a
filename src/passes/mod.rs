//! The passes over KS-IR. Each is a function over a module, registered by name with its contract
//! (`registry`) so that `ksc opt --passes=a,b` and the compilation pipelines (`pipeline`) run the
//! same code under the same checks (`manager`).

mod arm_tails;
mod bound_loops;
mod bound_tests;
mod bounds_check;
pub mod callgraph;
mod endless_loops;
mod fetch_add;
mod filled_locals;
mod flatten;
mod guarded_updates;
mod helper_sizes;
mod hoist_defers;
mod if_chain;
mod index_caps;
mod kernel_memory;
mod loop_steps;
pub mod lower_bpf;
pub mod lower_host;
mod lower_loops;
pub mod manager;
mod merge_tails;
mod outline_run_time_loops;
mod packet_structs;
mod packet_walk;
mod partition;
pub mod pipeline;
mod presence_delete;
pub mod provenance;
mod range_tests;
mod rcu_sections;
mod region_match;
pub mod registry;
mod reverse_walks;
mod round_bounds;
mod run_time_counts;
mod sink_pure_calls;
mod switch_table;
pub mod tail_calls;
mod tallies;
mod throw_codes;
mod unroll_loops;
mod value_bounds;
mod verdict_guard;

use crate::diagnostics::Code;
use crate::ir::{views::KsFunc, Module, OpId, Opcode, RegionId};
use crate::vocab::Target;

/// True when a region always leaves (ends in return, throw, abort, break, continue or tail call).
fn region_leaves(m: &Module, r: RegionId) -> bool {
    m.region_ends_in(r, |o| {
        matches!(
            o,
            Opcode::KsReturn
                | Opcode::KsThrow
                | Opcode::KsAbort
                | Opcode::KsBreak
                | Opcode::KsContinue
                | Opcode::KsTailCall
                | Opcode::CoreRet
        )
    })
}

/// The ops that may run after `from` and before `op` (which `from` structurally precedes), nested
/// ones included: those after `from` in its block up to the one containing `op`, then inside each
/// op enclosing `op` the ones before it. Of an `if` or `switch` only the arm holding `op` counts
/// (the others are alternatives); a loop or `try` counts whole, since an earlier iteration or the
/// body may run first (a superset, which only makes answers built on it more conservative).
fn ops_between(m: &Module, from: OpId, op: OpId) -> Option<Vec<OpId>> {
    let (block, from) = m.position(from)?;
    // `op` and its enclosing ops up to the one in `from`'s block, innermost first.
    let mut chain = vec![op];
    while m.position(*chain.last()?).map(|(b, _)| b) != Some(block) {
        chain.push(m.parent_op(*chain.last()?)?);
    }
    let with_nested = |o: OpId| {
        m.collect_nested(o, |_| true)
            .into_iter()
            .chain(std::iter::once(o))
    };
    let outer = *chain.last()?;
    let (_, to) = m.position(outer)?;
    let mut out: Vec<OpId> = m.block(block).ops[from + 1..to]
        .iter()
        .flat_map(|&o| with_nested(o))
        .collect();
    // Down the chain: each enclosing op, then what precedes the next one inside it.
    for pair in chain.windows(2).rev() {
        let (inner, enclosing) = (pair[0], pair[1]);
        out.push(enclosing);
        if !matches!(m.op(enclosing).opcode, Opcode::KsIf | Opcode::KsSwitch) {
            out.extend(with_nested(enclosing).filter(|&o| o != enclosing));
            continue;
        }
        let (b, at) = m.position(inner)?;
        out.extend(m.block(b).ops[..at].iter().flat_map(|&o| with_nested(o)));
    }
    out.retain(|&o| o != op);
    Some(out)
}

/// The functions compiled for the kernel, the ones the BPF-side passes rewrite.
pub fn kernel_funcs(m: &Module) -> Vec<OpId> {
    m.funcs()
        .filter(|&f| KsFunc(f).target(m) == Target::Bpf)
        .collect()
}

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
