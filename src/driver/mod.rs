//! The thin driver: parses the command line, runs the pipeline stages, prints diagnostics and maps
//! the outcome to an exit status (0 ok, 1 compile errors, 2 usage errors).

mod build;
mod cli;
mod opt;
mod output;
mod report;
mod run;
mod verify;

use crate::diagnostics::{render_json, render_text, Diagnostics, SourceMap};
use crate::sema;
use crate::vocab::Target;
use cli::{Cli, CodegenArgs, Command, DiagnosticFormat, Emit};
use output::Inputs;
use std::path::Path;

/// Stack for the compiler thread: the parser and checker recurse over (bounded) nesting, and a
/// generous stack keeps hostile input a diagnostic instead of a crash.
const COMPILER_STACK: usize = 512 << 20;

pub fn main() -> i32 {
    let cli = Cli::parse_args();
    let worker = std::thread::Builder::new()
        .stack_size(COMPILER_STACK)
        .spawn(move || run(cli));
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!(
                "<input>:1:1: error[E0999]: internal compiler error: the compiler thread failed"
            );
            1
        }
    }
}

/// Runs one command under `catch_unwind`, so that even a compiler bug becomes E0999, exit 1.
fn run(cli: Cli) -> i32 {
    match std::panic::catch_unwind(move || dispatch(cli)) {
        Ok(code) => code,
        Err(_) => {
            eprintln!(
                "<input>:1:1: error[E0999]: internal compiler error (please report this input)"
            );
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

/// The input file and the options every compiling command takes.
struct CommonArgs {
    file: std::path::PathBuf,
    btf: Option<std::path::PathBuf>,
    compat: bool,
    diagnostics: DiagnosticFormat,
    time_report: bool,
    kernel: Option<crate::sema::kernel_floor::KernelVersion>,
    codegen: CodegenArgs,
}

/// What a command asks of the pipeline after the frontend.
enum Stage {
    Check,
    /// `--emit` for the selected targets, with the `-o` path and `--test`.
    Emit(Emit, build::Targets, Option<std::path::PathBuf>, bool),
    Verify,
    Build {
        out: Option<std::path::PathBuf>,
        test: bool,
    },
    Test {
        filter: Option<String>,
        timeout: Option<u32>,
    },
    Run {
        args: Vec<String>,
    },
}

fn dispatch(cli: Cli) -> i32 {
    let (file, stage) = match cli.command {
        Some(Command::Check { common }) => (common.file, Stage::Check),
        Some(Command::Build { common, out, test }) => (common.file, Stage::Build { out, test }),
        Some(Command::Verify { common }) => (common.file, Stage::Verify),
        Some(Command::Test {
            common,
            filter,
            timeout,
        }) => (common.file, Stage::Test { filter, timeout }),
        Some(Command::Run { common, args }) => (common.file, Stage::Run { args }),
        Some(Command::Opt {
            file,
            passes,
            list_passes,
        }) => {
            return opt::run(
                file.as_deref().unwrap_or(Path::new("-")),
                &passes,
                list_passes,
            )
        }
        Some(Command::IrReference) => {
            print!("{}", crate::ir::ops::REFERENCE);
            return 0;
        }
        Some(Command::HelperReference) => {
            print!("{}", crate::sema::builtins::helper_reference());
            return 0;
        }
        None => {
            let c = cli.compile;
            let targets: build::Targets = c.target.iter().copied().collect();
            (
                c.file.unwrap_or_default(),
                Stage::Emit(c.emit, targets, c.out, c.test),
            )
        }
    };
    let g = cli.global;
    let common = CommonArgs {
        file,
        btf: g.btf,
        compat: g.compat,
        diagnostics: g.diagnostics,
        time_report: g.time_report,
        kernel: g.kernel,
        codegen: g.codegen,
    };
    if common.time_report {
        crate::timing::enable();
    }
    // `ksc verify OBJECT.bpf.o`: an object built earlier (on another machine or for another
    // kernel) is loaded as it is.
    if matches!(stage, Stage::Verify) && verify::is_elf(&common.file) {
        return verify::run_prebuilt(&common.file);
    }
    let code = compile(&common, stage);
    if let Some(report) = crate::timing::report() {
        eprint!("{report}");
    }
    code
}

fn compile(common: &CommonArgs, stage: Stage) -> i32 {
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new();
    let opts = crate::pipeline::FrontEndOptions {
        compat: common.compat,
        btf: common.btf.clone(),
        kernel: common.kernel.map(|k| (k, common.codegen.bpf_cpu.clone())),
    };
    let unit = crate::pipeline::parse(&common.file, &opts, &mut sources, &mut diags);
    if let Stage::Emit(Emit::Ast, _, out, _) = &stage {
        report(&diags, &sources, common.diagnostics);
        if diags.has_errors() {
            return 1;
        }
        return build::write_output(
            out.as_deref(),
            crate::syntax::ast::dump(&unit).as_bytes(),
            &Inputs::of(&sources),
        );
    }
    let checked = crate::pipeline::check(&unit, &opts, &mut diags);
    report(&diags, &sources, common.diagnostics);
    let Some(checked) = checked else {
        return 1;
    };
    let code = run_stage(common, stage, &unit, &checked, &sources);
    // The process ends right after this: freeing the syntax tree, the checker's tables and the
    // kernel's BTF index piece by piece would only cost time (clang's -disable-free, likewise).
    std::mem::forget(checked);
    std::mem::forget(unit);
    std::mem::forget(sources);
    code
}

/// The stages after a successful check.
fn run_stage(
    common: &CommonArgs,
    stage: Stage,
    unit: &crate::syntax::ast::Unit,
    checked: &sema::Checked,
    sources: &SourceMap,
) -> i32 {
    // The kernel-side passes `check` runs have nothing to look at in a userspace-only unit.
    let kernel_side = checked.funcs.iter().any(|f| f.kind.target() == Target::Bpf);
    if matches!(stage, Stage::Check) && !kernel_side {
        return 0;
    }
    let module = crate::timing::stage("lower to ks-ir", || {
        crate::lower::lower_unit(unit, checked, sources)
    });
    let opts = build::options(
        &common.codegen,
        report::Reporter::new(sources, common.diagnostics),
    );
    let file = &common.file;
    let code = match stage {
        // The passes find what sema cannot see (packet offsets through locals, recursion through
        // the call graph); code generation is left to the commands that write code.
        Stage::Check => build::check_pipelines(&module, &opts),
        Stage::Emit(Emit::KsIr, _, out, _) => {
            emit_text(&module, "ks-ir", out.as_deref(), sources, opts.report)
        }
        Stage::Emit(e @ (Emit::BpfIr | Emit::HostIr), _, out, _) => {
            let target = if e == Emit::BpfIr {
                Target::Bpf
            } else {
                Target::Host
            };
            match build::run_pipeline(&module, target, &opts) {
                Ok(m) => emit_text(&m, emit_name(e), out.as_deref(), sources, opts.report),
                Err(code) => code,
            }
        }
        Stage::Emit(e @ (Emit::LlvmIr | Emit::Asm | Emit::Obj), targets, out, test) => {
            let output = match e {
                Emit::LlvmIr => crate::codegen::llvm::Output::LlvmIr,
                Emit::Asm => crate::codegen::llvm::Output::Asm,
                _ => crate::codegen::llvm::Output::Object,
            };
            // One output file: the kernel side when it is selected, else the userspace side
            // (whose embedded object is compiled too, as the executable would have it).
            let bytes = if targets.contains(Target::Bpf) {
                build::kernel_object(&module, output, &opts)
            } else if targets.contains(Target::Host) {
                emit_host(&module, output, file, test, &opts)
            } else {
                eprintln!(
                    "ksc: {}: --emit={} needs --target=bpf or --target=host",
                    file.display(),
                    emit_name(e)
                );
                return 2;
            };
            match bytes {
                Ok(bytes) => build::write_output(out.as_deref(), &bytes, &Inputs::of(sources)),
                Err(code) => code,
            }
        }
        Stage::Emit(Emit::Exe, targets, out, test) => build::artifacts(
            &module,
            file,
            out.as_deref(),
            test,
            targets,
            &opts,
            &Inputs::of(sources),
        ),
        Stage::Emit(Emit::Ast, ..) => 0,
        Stage::Verify => {
            match build::kernel_object(&module, crate::codegen::llvm::Output::Object, &opts) {
                Ok(bytes) => verify::run(
                    &bytes,
                    file,
                    unit,
                    sources,
                    common.diagnostics == DiagnosticFormat::Json,
                ),
                Err(code) => code,
            }
        }
        Stage::Build { out, test } => build::artifacts(
            &module,
            file,
            out.as_deref(),
            test,
            build::Targets::all(),
            &opts,
            &Inputs::of(sources),
        ),
        Stage::Test { filter, timeout } => {
            run::tests(&module, file, filter.as_deref(), timeout, &opts)
        }
        Stage::Run { args } => run::program(&module, file, &args, &opts),
    };
    std::mem::forget(module);
    code
}

/// A verified IR module as text, into `-o FILE` or onto standard output.
fn emit_text(
    module: &crate::ir::Module,
    stage: &str,
    out: Option<&Path>,
    sources: &SourceMap,
    report: report::Reporter,
) -> i32 {
    let errors = crate::ir::verify::verify_module(module);
    if !errors.is_empty() {
        return report.verify_errors(module, stage, &errors);
    }
    let text = crate::ir::print::print_module(module);
    build::write_output(out, text.as_bytes(), &Inputs::of(sources))
}

/// The userspace side's LLVM IR, assembly or object, around the unit's BPF object.
fn emit_host(
    module: &crate::ir::Module,
    output: crate::codegen::llvm::Output,
    file: &Path,
    test: bool,
    opts: &build::Options,
) -> Result<Vec<u8>, i32> {
    let tables = build::kernel_tables(module, opts)?;
    build::host_object(module, tables.as_ref(), test, output, file, opts)
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
