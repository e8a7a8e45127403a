//! The thin driver: parses the command line, runs the pipeline stages, prints diagnostics and maps
//! the outcome to an exit status (0 ok, 1 compile errors, 2 usage errors).

mod cli;

use crate::diagnostics::{render_json, render_text, Code, Diagnostics, SourceMap, Span};
use crate::sema::{self, CheckOptions};
use crate::syntax::{self, ParseOptions};
use clap::Parser;
use cli::{Cli, Command, CommonArgs, DiagnosticFormat, Emit};
use std::path::Path;

/// Stack for the compiler thread: the parser and checker recurse over (bounded) nesting, and a
/// generous stack keeps hostile input a diagnostic instead of a crash.
const COMPILER_STACK: usize = 512 << 20;

pub fn main() -> i32 {
    let cli = Cli::parse();
    let worker = std::thread::Builder::new().stack_size(COMPILER_STACK).spawn(move || run(cli));
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("<input>:1:1: error[E0999]: internal compiler error: the compiler thread failed");
            1
        }
    }
}

/// Everything a command needs to know about the frontend run.
struct Frontend {
    sources: SourceMap,
    diags: Diagnostics,
    unit: syntax::ast::Unit,
    checked: Option<sema::Checked>,
}

/// `analyse`: run semantic analysis after parsing (everything but `--emit=ast` does).
fn frontend(common: &CommonArgs, analyse: bool) -> Frontend {
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new();
    let unit = syntax::load_unit(&common.file, ParseOptions { compat: common.compat }, &mut sources, &mut diags);
    let mut checked = None;
    if analyse && !diags.has_errors() {
        let opts = CheckOptions { btf_path: common.btf.clone(), compat: common.compat };
        checked = Some(sema::check(&unit, &opts, &mut diags));
    }
    Frontend { sources, diags, unit, checked }
}

fn report(fe: &Frontend, format: DiagnosticFormat) {
    let out = match format {
        DiagnosticFormat::Text => render_text(&fe.diags, &fe.sources),
        DiagnosticFormat::Json => render_json(&fe.diags, &fe.sources),
    };
    eprint!("{out}");
}

/// Runs one command under `catch_unwind`, so that even a compiler bug becomes E0999, exit 1.
fn run(cli: Cli) -> i32 {
    match std::panic::catch_unwind(move || dispatch(cli)) {
        Ok(code) => code,
        Err(_) => {
            eprintln!("<input>:1:1: error[E0999]: internal compiler error (please report this input)");
            1
        }
    }
}

fn dispatch(cli: Cli) -> i32 {
    let (common, stage) = match cli.command {
        Some(Command::Check { common }) => (common, None),
        Some(Command::Build { common, .. }) => (common, Some("`ksc build`")),
        Some(Command::Verify { common }) => (common, Some("`ksc verify`")),
        Some(Command::Test { common, .. }) => (common, Some("`ksc test`")),
        Some(Command::Run { common, .. }) => (common, Some("`ksc run`")),
        None => {
            let c = cli.compile;
            let common = CommonArgs { file: c.file.unwrap_or_default(), btf: c.btf, compat: c.compat, diagnostics: c.diagnostics };
            let fe = frontend(&common, c.emit != Emit::Ast);
            report(&fe, common.diagnostics);
            if fe.diags.has_errors() {
                return 1;
            }
            return match c.emit {
                Emit::Ast => {
                    print!("{}", crate::syntax::ast::dump(&fe.unit));
                    0
                }
                other => stage_missing(&format!("--emit={}", emit_name(other)), &common.file),
            };
        }
    };
    let fe = frontend(&common, true);
    report(&fe, common.diagnostics);
    if fe.diags.has_errors() {
        return 1;
    }
    let _ = &fe.checked;
    match stage {
        None => 0,
        Some(what) => stage_missing(what, &common.file),
    }
}

fn emit_name(e: Emit) -> &'static str {
    match e {
        Emit::Ast => "ast",
        Emit::KsIr => "ks-ir",
        Emit::BpfIr => "bpf-ir",
        Emit::HostIr => "host-ir",
        Emit::LlvmIr => "llvm-ir",
        Emit::Asm => "asm",
        Emit::Obj => "obj",
        Emit::Exe => "exe",
    }
}

/// A stage that does not exist yet says so and fails; it never pretends to have worked.
fn stage_missing(what: &str, file: &Path) -> i32 {
    let _ = (Code::E0999, Span::default());
    eprintln!("ksc: {}: {what} needs code generation, which this ksc does not have yet (the file checks cleanly)", file.display());
    1
}
