//! The pass manager: passes declare what they need from the module and what they leave
//! (`Fact`s), pipelines are checked against those contracts when they are built, and analyses
//! shared by several passes (the call graph, pointer provenance) are computed once and dropped when a pass may have
//! changed what they describe.

use super::callgraph::CallGraph;
use super::provenance::Provenance;
use super::{PassErrors, PassResult};
use crate::ir::{Module, OpId, Opcode};
use crate::vocab::{EnumSet, Target, Vocabulary};
use std::collections::HashMap;

/// Something true of a module between passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact {
    /// Function bodies are structured: regions, `ks.if`, `ks.while`, `ks.yield`.
    Structured,
    /// Function bodies are CFGs of blocks with branch terminators.
    Cfg,
    /// Every target's functions are still in the module (nothing partitioned away).
    Whole,
    /// Only kernel functions and the declarations they use.
    BpfSide,
    /// Only userspace functions and the declarations they use.
    HostSide,
    /// Only kernel-module functions.
    KmodSide,
    /// Kernel functions' semantic ops (maps, ring buffers, context fields, helpers) are still
    /// `ks` ops.
    KsKernel,
    /// Userspace functions' semantic ops (loading, attaching, map access, printing) are still
    /// `ks` ops.
    KsUser,
    /// Kernel functions' semantic ops are in the `bpf` dialect.
    BpfDialect,
    /// Userspace functions' semantic ops are in the `host` dialect.
    HostDialect,
    /// Every tail-call target has its slot in `@prog_array`.
    TailCallSlots,
}

impl Fact {
    fn describe(self) -> &'static str {
        match self {
            Fact::Structured => "structured control flow (before `flatten`)",
            Fact::Cfg => "a CFG (after `flatten`)",
            Fact::Whole => "the whole module (before partitioning)",
            Fact::BpfSide => "the kernel side only (after `partition-bpf`)",
            Fact::HostSide => "the userspace side only (after `partition-host`)",
            Fact::KmodSide => "the kernel-module side only (after `partition-kmod`)",
            Fact::KsKernel => "kernel functions in the `ks` dialect (before `lower-bpf`)",
            Fact::KsUser => "userspace functions in the `ks` dialect (before `lower-host`)",
            Fact::BpfDialect => "kernel functions in the `bpf` dialect (after `lower-bpf`)",
            Fact::HostDialect => "userspace functions in the `host` dialect (after `lower-host`)",
            Fact::TailCallSlots => "tail-call slots in @prog_array (after `assign-tail-calls`)",
        }
    }
}

impl Vocabulary for Fact {
    const ALL: &'static [Fact] = &[
        Fact::Structured,
        Fact::Cfg,
        Fact::Whole,
        Fact::BpfSide,
        Fact::HostSide,
        Fact::KmodSide,
        Fact::KsKernel,
        Fact::KsUser,
        Fact::BpfDialect,
        Fact::HostDialect,
        Fact::TailCallSlots,
    ];

    fn name(self) -> &'static str {
        self.describe()
    }

    fn index(self) -> u8 {
        self as u8
    }
}

pub type Facts = EnumSet<Fact>;

fn facts(list: &[Fact]) -> Facts {
    list.iter().copied().collect()
}

/// What holds of a module fresh from lowering the syntax tree.
pub fn lowered_facts() -> Facts {
    facts(&[Fact::Structured, Fact::Whole, Fact::KsKernel, Fact::KsUser])
}

/// A pass and its contract.
pub struct PassInfo {
    pub name: &'static str,
    pub about: &'static str,
    /// Facts that must hold before the pass runs.
    pub requires: &'static [Fact],
    /// Facts the pass establishes.
    pub adds: &'static [Fact],
    /// Facts the pass ends.
    pub removes: &'static [Fact],
    /// The pass only reads the module (a check), so analyses stay valid.
    pub read_only: bool,
    pub run: fn(&mut Module, &mut Analyses) -> PassResult,
}

impl PassInfo {
    fn apply(&self, state: Facts) -> Facts {
        let mut next = state;
        for &f in self.removes {
            next.remove(f);
        }
        for &f in self.adds {
            next.insert(f);
        }
        next
    }
}

/// Analyses several passes use, computed on first request and dropped after a pass that may
/// change the module.
#[derive(Default)]
pub struct Analyses {
    call_graph: Option<CallGraph>,
    provenance: HashMap<OpId, Provenance>,
}

impl Analyses {
    pub fn call_graph(&mut self, m: &Module) -> &CallGraph {
        self.call_graph.get_or_insert_with(|| CallGraph::build(m))
    }

    /// Pointer provenance in function `f`. A pass that rewrites `f` asks before it does.
    pub fn provenance(&mut self, m: &Module, f: OpId) -> &Provenance {
        self.provenance
            .entry(f)
            .or_insert_with(|| Provenance::of_function(m, f))
    }

    pub fn invalidate(&mut self) {
        self.call_graph = None;
        self.provenance.clear();
    }
}

/// An ordered list of passes whose contracts were checked against each other.
#[derive(Clone)]
pub struct Pipeline {
    passes: Vec<&'static PassInfo>,
}

/// A pipeline that cannot run: the pass, and the facts it needs that do not hold before it.
#[derive(Debug)]
pub struct InvalidPipeline {
    pub pass: &'static str,
    pub missing: Vec<Fact>,
}

impl std::fmt::Display for InvalidPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let needs: Vec<&str> = self.missing.iter().map(|m| m.describe()).collect();
        write!(f, "pass `{}` needs {}", self.pass, needs.join(" and "))
    }
}

impl Pipeline {
    /// Checks that each pass's requirements hold when it runs, starting from `start`, and that
    /// `ends_with` holds after the last. `names` must be registered passes.
    pub fn new(names: &[&str], start: Facts, ends_with: &[Fact]) -> Result<Pipeline, String> {
        let mut passes = Vec::new();
        let mut state = start;
        for name in names {
            let p = super::registry::find(name)
                .ok_or_else(|| format!("unknown pass `{name}` (see `ksc opt --list-passes`)"))?;
            let missing: Vec<Fact> = p
                .requires
                .iter()
                .copied()
                .filter(|&f| !state.contains(f))
                .collect();
            if !missing.is_empty() {
                return Err(InvalidPipeline {
                    pass: p.name,
                    missing,
                }
                .to_string());
            }
            state = p.apply(state);
            passes.push(p);
        }
        let missing: Vec<&str> = ends_with
            .iter()
            .filter(|&&f| !state.contains(f))
            .map(|f| f.describe())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the pipeline does not end with {}",
                missing.join(" and ")
            ));
        }
        Ok(Pipeline { passes })
    }
}

/// How a pipeline is run.
#[derive(Clone, Copy, Default)]
pub struct RunOptions<'a> {
    /// Verify the module after every pass (debug builds and `ksc opt` always do).
    pub verify_each: bool,
    /// Print the module to stderr after this pass (`all`: after every pass).
    pub print_after: Option<&'a str>,
}

/// Why a pipeline stopped: a pass failed, or left a module that does not verify.
pub enum PipelineError {
    Pass(&'static str, PassErrors),
    Verify(&'static str, Vec<crate::ir::verify::VerifyError>),
}

/// Runs `pipeline` over `m` in place.
pub fn run(m: &mut Module, pipeline: &Pipeline, opts: RunOptions) -> Result<(), PipelineError> {
    let mut analyses = Analyses::default();
    let verify_each = opts.verify_each || cfg!(debug_assertions);
    for p in &pipeline.passes {
        let result = (p.run)(m, &mut analyses);
        if !p.read_only {
            analyses.invalidate();
        }
        result.map_err(|e| PipelineError::Pass(p.name, e))?;
        if verify_each {
            let errors = crate::ir::verify::verify_module(m);
            if !errors.is_empty() {
                return Err(PipelineError::Verify(p.name, errors));
            }
        }
        if opts.print_after.is_some_and(|a| a == p.name || a == "all") {
            eprintln!("// ----- KS-IR after {} -----", p.name);
            eprint!("{}", crate::ir::print::print_module(m));
        }
    }
    Ok(())
}

/// The facts a textual module shows (for `ksc opt`, whose input may come from any stage): each
/// holds unless the module contradicts it.
pub fn observed_facts(m: &Module) -> Facts {
    let mut state = Facts::all();
    let funcs: Vec<OpId> = m.funcs().collect();
    let target = |f: OpId| crate::ir::views::KsFunc(f).target(m);
    for t in Target::ALL {
        let side = match t {
            Target::Bpf => Fact::BpfSide,
            Target::Host => Fact::HostSide,
            Target::Kmod => Fact::KmodSide,
        };
        if funcs.iter().any(|&f| target(f) != t) {
            state.remove(side);
        }
    }
    if funcs
        .iter()
        .any(|&f| m.region(m.op(f).regions[0]).blocks.len() > 1)
    {
        state.remove(Fact::Structured);
    }
    // Every op in a function body, with the function's target: one walk serves every test.
    let body_ops: Vec<(Target, OpId)> = funcs
        .iter()
        .flat_map(|&f| {
            let t = target(f);
            m.collect_nested(f, |_| true)
                .into_iter()
                .filter(move |&o| o != f)
                .map(move |o| (t, o))
        })
        .collect();
    if body_ops.iter().any(|&(_, o)| !m.op(o).regions.is_empty()) {
        state.remove(Fact::Cfg);
    }
    let dialect = |o: OpId| m.op(o).opcode.info().dialect;
    for (side, lowered, unlowered, dialect_name) in [
        (Target::Bpf, Fact::BpfDialect, Fact::KsKernel, "bpf"),
        (Target::Host, Fact::HostDialect, Fact::KsUser, "host"),
    ] {
        let mut ops = body_ops
            .iter()
            .filter(|&&(t, _)| t == side)
            .map(|&(_, o)| o);
        if ops
            .clone()
            .any(|o| dialect(o) == "ks" && !left_to_later_stages(m.op(o).opcode))
        {
            state.remove(lowered);
        }
        if ops.any(|o| dialect(o) == dialect_name) {
            state.remove(unlowered);
        }
    }
    if body_ops
        .iter()
        .any(|&(_, o)| m.op(o).opcode == Opcode::KsTailCall)
        && m.lookup_symbol(crate::ir::symbols::PROG_ARRAY).is_none()
    {
        state.remove(Fact::TailCallSlots);
    }
    state
}

/// `ks` ops the dialect lowerings leave: control flow (for `flatten` and `lower-tail-calls`) and
/// global and config addresses (for the LLVM back end).
fn left_to_later_stages(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::KsGlobalAddr
            | Opcode::KsConfigAddr
            | Opcode::KsIf
            | Opcode::KsWhile
            | Opcode::KsFor
            | Opcode::KsSwitch
            | Opcode::KsYield
            | Opcode::KsBreak
            | Opcode::KsContinue
            | Opcode::KsReturn
            | Opcode::KsTry
            | Opcode::KsDefer
            | Opcode::KsThrow
            | Opcode::KsAbort
            | Opcode::KsTailCall
    )
}
