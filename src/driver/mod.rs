//! The thin driver: parses the command line, runs the pipeline stages, prints diagnostics and maps
//! the outcome to an exit status (0 ok, 1 compile errors, 2 usage errors).

mod build;
mod cli;
mod opt;
mod verify;

use crate::diagnostics::{render_json, render_text, Diagnostics, SourceMap};
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

fn report(diags: &Diagnostics, sources: &SourceMap, format: DiagnosticFormat) {
    let out = match format {
        DiagnosticFormat::Text => render_text(diags, sources),
        DiagnosticFormat::Json => render_json(diags, sources),
    };
    eprint!("{out}");
}

/// What a command asks of the pipeline after the frontend.
enum Stage {
    Check,
    /// `--emit` with the `-o` path.
    Emit(Emit, Option<std::path::PathBuf>),
    Verify,
    Build { out: Option<std::path::PathBuf>, test: bool },
    Missing(&'static str),
}

fn dispatch(cli: Cli) -> i32 {
    let (common, stage) = match cli.command {
        Some(Command::Check { common }) => (common, Stage::Check),
        Some(Command::Build { common, out, test }) => (common, Stage::Build { out, test }),
        Some(Command::Verify { common }) => (common, Stage::Verify),
        Some(Command::Test { common, .. }) => (common, Stage::Missing("`ksc test`")),
        Some(Command::Run { common, .. }) => (common, Stage::Missing("`ksc run`")),
        Some(Command::Opt { file, passes, list_passes }) => return opt::run(file.as_deref().unwrap_or(Path::new("-")), &passes, list_passes),
        Some(Command::IrReference) => {
            print!("{}", crate::ir::ops::REFERENCE);
            return 0;
        }
        None => {
            let c = cli.compile;
            let common = CommonArgs { file: c.file.unwrap_or_default(), btf: c.btf, compat: c.compat, diagnostics: c.diagnostics, codegen: c.codegen };
            (common, Stage::Emit(c.emit, c.out))
        }
    };
    compile(&common, stage)
}

fn compile(common: &CommonArgs, stage: Stage) -> i32 {
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new();
    let unit = syntax::load_unit(&common.file, ParseOptions { compat: common.compat }, &mut sources, &mut diags);
    if let Stage::Emit(Emit::Ast, _) = stage {
        report(&diags, &sources, common.diagnostics);
        if diags.has_errors() {
            return 1;
        }
        print!("{}", crate::syntax::ast::dump(&unit));
        return 0;
    }
    let checked = if diags.has_errors() {
        None
    } else {
        let opts = CheckOptions { btf_path: common.btf.clone(), compat: common.compat };
        Some(sema::check(&unit, &opts, &mut diags))
    };
    report(&diags, &sources, common.diagnostics);
    let Some(checked) = checked.filter(|_| !diags.has_errors()) else { return 1 };
    match stage {
        Stage::Check => 0,
        Stage::Emit(Emit::KsIr, _) => {
            let module = crate::lower::lower_unit(&unit, &checked, &sources);
            opt::print_verified(&module, "ks-ir")
        }
        Stage::Emit(e @ (Emit::BpfIr | Emit::HostIr), _) => {
            let module = crate::lower::lower_unit(&unit, &checked, &sources);
            let (passes, name) = if e == Emit::BpfIr { (crate::passes::pipeline::BPF, "bpf-ir") } else { (crate::passes::pipeline::HOST, "host-ir") };
            match crate::passes::pipeline::run_pipeline(&module, passes) {
                Ok(m) => opt::print_verified(&m, name),
                Err((pass, errors)) => {
                    opt::report_pass_errors(&module, &pass, &errors);
                    1
                }
            }
        }
        Stage::Emit(e @ (Emit::LlvmIr | Emit::Asm | Emit::Obj), out) => {
            let module = crate::lower::lower_unit(&unit, &checked, &sources);
            let output = match e {
                Emit::LlvmIr => crate::codegen::bpf::Output::LlvmIr,
                Emit::Asm => crate::codegen::bpf::Output::Asm,
                _ => crate::codegen::bpf::Output::Object,
            };
            match build::kernel_object(&module, output, &common.file, &build::bpf_options(&common.codegen)) {
                Ok(bytes) => build::write_output(out.as_deref(), &bytes),
                Err(code) => code,
            }
        }
        Stage::Verify => {
            let module = crate::lower::lower_unit(&unit, &checked, &sources);
            match build::kernel_object(&module, crate::codegen::bpf::Output::Object, &common.file, &build::bpf_options(&common.codegen)) {
                Ok(bytes) => verify::run(&bytes, &common.file, &sources, common.diagnostics == DiagnosticFormat::Json),
                Err(code) => code,
            }
        }
        Stage::Build { out, test } => {
            let module = crate::lower::lower_unit(&unit, &checked, &sources);
            build::artifacts(&module, &common.file, out.as_deref(), test, &build::bpf_options(&common.codegen))
        }
        Stage::Emit(other, _) => stage_missing(&format!("--emit={}", emit_name(other)), &common.file),
        Stage::Missing(what) => stage_missing(what, &common.file),
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
    eprintln!("ksc: {}: {what} needs code generation, which this ksc does not have yet (the file checks cleanly)", file.display());
    1
}
