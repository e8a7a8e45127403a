//! Errors found after sema — by a pass, the IR verifier, a back end or the linker — become the same
//! `Diagnostic`s sema reports, placed at the `.ks` position of the IR op they concern, and are
//! rendered like sema's: as text with a snippet, or as JSON lines (`--diagnostics=json`).

use super::cli::DiagnosticFormat;
use crate::codegen::llvm::Error as BackendError;
use crate::diagnostics::{
    render_json, render_text, Code, Diagnostic, Diagnostics, SourceMap, Span,
};
use crate::ir::{Module, OpId};
use crate::passes::manager::PipelineError;
use crate::passes::PassErrors;

/// Where the later stages report.
#[derive(Clone, Copy)]
pub struct Reporter<'s> {
    sources: &'s SourceMap,
    format: DiagnosticFormat,
}

impl<'s> Reporter<'s> {
    pub fn new(sources: &'s SourceMap, format: DiagnosticFormat) -> Self {
        Reporter { sources, format }
    }

    /// Renders `list` to stderr; returns exit status 1.
    pub fn emit(&self, list: impl IntoIterator<Item = Diagnostic>) -> i32 {
        let mut diags = Diagnostics::new();
        for d in list {
            diags.push(d);
        }
        let out = match self.format {
            DiagnosticFormat::Text => render_text(&diags, self.sources),
            DiagnosticFormat::Json => render_json(&diags, self.sources),
        };
        eprint!("{out}");
        1
    }

    /// An error about the unit as a whole (a link failure), at the start of its file.
    pub fn unit_error(&self, code: Code, details: impl Into<String>) -> i32 {
        self.emit([Diagnostic::error(code, self.unit_start(), details)])
    }

    /// The `.ks` position `op` came from: the start of its line and column, or the start of the
    /// unit's file when the op has none (it was made by a pass).
    pub fn span(&self, m: &Module, op: Option<OpId>) -> Span {
        op.and_then(|op| {
            let loc = m.op(op).loc;
            let file = m.files.get(loc.file as usize)?;
            self.sources.span_at(file, loc.line, loc.col)
        })
        .unwrap_or_else(|| self.unit_start())
    }

    fn unit_start(&self) -> Span {
        Span::default()
    }

    /// A pipeline's failure: the pass's errors, or the module it left that does not verify.
    pub fn pipeline_error(&self, m: &Module, e: &PipelineError) -> i32 {
        match e {
            PipelineError::Pass(pass, errors) => self.pass_errors(m, pass, errors),
            PipelineError::Verify(pass, errors) => {
                self.verify_errors(m, &format!("pass `{pass}`"), errors)
            }
        }
    }

    /// Pass failures: user errors sema cannot see (a packet offset no packet reaches, recursion
    /// through the call graph) with their code, everything else as a compiler bug.
    pub fn pass_errors(&self, m: &Module, pass: &str, errors: &PassErrors) -> i32 {
        self.emit(errors.iter().map(|e| {
            let span = self.span(m, e.op);
            if e.code == Code::E0999 {
                Diagnostic::error(Code::E0999, span, format!("pass `{pass}`: {}", e.message))
            } else {
                Diagnostic::error(e.code, span, e.message.clone())
            }
        }))
    }

    /// A module that does not verify after `stage`: always a compiler bug.
    pub fn verify_errors(
        &self,
        m: &Module,
        stage: &str,
        errors: &[crate::ir::verify::VerifyError],
    ) -> i32 {
        self.emit(errors.iter().map(|e| {
            Diagnostic::error(
                Code::E0999,
                self.span(m, Some(e.op)),
                format!(
                    "{stage} does not verify: '{}' op {}",
                    m.op(e.op).opcode.name(),
                    e.message
                ),
            )
        }))
    }

    /// Back-end errors at the `.ks` line of the op they concern. The stack limit is reported once
    /// per function (LLVM reports it once per access past it), with what the function keeps there.
    pub fn backend_errors(&self, m: &Module, backend: &str, errors: Vec<BackendError>) -> i32 {
        let mut stack_reported = std::collections::HashSet::new();
        let mut out = Vec::new();
        for e in errors {
            if e.explained {
                out.push(Diagnostic::error(e.code, self.span(m, e.op), e.message));
            } else if e.code == Code::E0601 {
                let func = e.op.map(|op| m.top_level_of(op));
                if stack_reported.insert(func) {
                    let span = self.span(m, func.or(e.op));
                    out.push(Diagnostic::error(Code::E0601, span, stack_summary(m, func)));
                }
            } else {
                out.push(Diagnostic::error(
                    e.code,
                    self.span(m, e.op),
                    format!("{backend} back end: {}", e.message),
                ));
            }
        }
        self.emit(out)
    }
}

/// What a kernel function keeps on its stack, largest first, and what to do about it.
fn stack_summary(m: &Module, func: Option<OpId>) -> String {
    use crate::ir::{Attr, Opcode};
    let Some(func) = func else {
        return "a kernel function needs more than 512 bytes of stack; move large values into a per-CPU array map".into();
    };
    // The functions it calls may be inlined into its frame: their locals count too.
    let mut objects: Vec<(u64, String)> = called_from(m, func)
        .into_iter()
        .flat_map(|f| {
            let owner = (f != func).then(|| m.symbol(f).unwrap_or("a callee"));
            m.collect_nested(f, |o| o.opcode == Opcode::CoreLocal)
                .into_iter()
                .filter_map(move |op| {
                    let Some(Attr::Type(t)) = m.attr(op, "ty") else {
                        return None;
                    };
                    let size = crate::ir::layout::size_of(m, t)?;
                    let mut what = match m.attr(op, "name") {
                        Some(Attr::Str(n)) => format!("`{}`", String::from_utf8_lossy(n)),
                        _ => format!("a temporary `{t}`"),
                    };
                    if let Some(owner) = owner {
                        what += &format!(" of `{owner}`");
                    }
                    Some((size, what))
                })
        })
        .collect();
    objects.sort_by_key(|o| std::cmp::Reverse(o.0));
    let largest: Vec<String> = objects
        .iter()
        .take(4)
        .map(|(n, what)| format!("{what} ({n} bytes)"))
        .collect();
    let name = m.symbol(func).unwrap_or("the function");
    format!("`{name}` needs more than the 512 bytes of stack eBPF allows; its largest stack objects: {}; keep large values in a per-CPU array map (`var scratch : percpu_array<u32, T>(1)`) and work on them through `if (var v = scratch[0])`", largest.join(", "))
}

/// `func` and every function it calls, directly or not.
fn called_from(m: &Module, func: OpId) -> Vec<OpId> {
    use crate::passes::callgraph::{CallGraph, Edge};
    let cg = CallGraph::build(m);
    let Some(&start) = cg.node.get(&func) else {
        return vec![func];
    };
    let calls = petgraph::visit::EdgeFiltered::from_fn(&cg.graph, |e| e.weight().0 == Edge::Call);
    let mut dfs = petgraph::visit::Dfs::new(&calls, start);
    let mut out = Vec::new();
    while let Some(n) = dfs.next(&calls) {
        out.push(cg.graph[n]);
    }
    out
}
