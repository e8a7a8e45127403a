//! From a lowered module to artifacts: the kernel pipeline and BPF back end, the userspace
//! pipeline and host back end, the link, and the files of `ksc build`.

use super::output::{self, Inputs, Mode};
use super::report::Reporter;
use crate::codegen::bpf::ObjectTables;
use crate::codegen::llvm::Output;
use crate::diagnostics::Code;
use crate::ir::{views::KsFunc, Module};
use crate::passes::manager::RunOptions;
use crate::passes::pipeline;
use crate::vocab::{EnumSet, Target};
use std::path::Path;

/// Back-end options from the command line, and where errors go.
pub struct Options<'s> {
    pub bpf: crate::codegen::bpf::Options,
    pub host: crate::codegen::host::Options,
    /// `--print-after`
    pub print_after: Option<String>,
    /// `--verify-each`
    pub verify_each: bool,
    pub report: Reporter<'s>,
}

pub fn options<'s>(args: &super::cli::CodegenArgs, report: Reporter<'s>) -> Options<'s> {
    let optimize = args.opt_level != "0";
    Options {
        bpf: crate::codegen::bpf::Options {
            cpu: args.bpf_cpu.clone(),
            optimize,
        },
        host: crate::codegen::host::Options {
            triple: None,
            optimize,
        },
        print_after: args.print_after.clone(),
        verify_each: args.verify_each,
        report,
    }
}

/// `<base>`: the file name without directory and `.ks`.
pub fn base_name(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unit".into())
}

/// `ksc check`: the kernel side's pass pipeline, whose passes report user errors sema cannot see
/// (packet offsets, helpers a program kind may not call); nothing is written.
pub fn check_pipelines(module: &Module, opts: &Options) -> i32 {
    i32::from(run_pipeline(module, Target::Bpf, opts).is_err())
}

/// Runs `target`'s pass pipeline, reporting pass errors at their `.ks` lines.
pub fn run_pipeline(module: &Module, target: Target, opts: &Options) -> Result<Module, i32> {
    let level = match target {
        Target::Bpf => "bpf-ir",
        Target::Host => "host-ir",
        Target::Kmod => "kmod-ir",
    };
    let run_opts = RunOptions {
        verify_each: opts.verify_each,
        print_after: opts.print_after.as_deref(),
    };
    let m = crate::timing::stage(level, || {
        pipeline::run_for_target(module, target, &opts.bpf, run_opts)
    })
    .map_err(|e| opts.report.pipeline_error(&e.0, &e.1))?;
    let errors = crate::ir::verify::verify_module(&m);
    if !errors.is_empty() {
        return Err(opts.report.verify_errors(&m, level, &errors));
    }
    Ok(m)
}

/// The kernel side compiled, with the module it came from (which the runtime tables are read from).
fn kernel(module: &Module, output: Output, opts: &Options) -> Result<(Module, Vec<u8>), i32> {
    let bpf = run_pipeline(module, Target::Bpf, opts)?;
    match crate::codegen::bpf::compile(&bpf, &opts.bpf, output) {
        Ok(bytes) => Ok((bpf, bytes)),
        Err(errors) => Err(opts.report.backend_errors(&bpf, "BPF", errors)),
    }
}

/// The kernel side as BPF object bytes (or LLVM IR / assembly).
pub fn kernel_object(module: &Module, output: Output, opts: &Options) -> Result<Vec<u8>, i32> {
    kernel(module, output, opts).map(|(_, bytes)| bytes)
}

/// The userspace side as a native object (or LLVM IR / assembly), around `tables`.
pub fn host_object(
    module: &Module,
    tables: Option<&ObjectTables>,
    test: bool,
    output: Output,
    file: &Path,
    opts: &Options,
) -> Result<Vec<u8>, i32> {
    let host = run_pipeline(module, Target::Host, opts)?;
    let base = base_name(file);
    let has_kfuncs = module
        .funcs()
        .any(|f| KsFunc(f).target(module) == Target::Kmod);
    let unit = crate::codegen::host::Unit {
        base: &base,
        kernel: tables,
        has_kfuncs,
        test,
    };
    crate::codegen::host::compile(&host, &unit, &opts.host, output)
        .map_err(|errors| opts.report.backend_errors(&host, "host", errors))
}

/// Whether the unit has a BPF object (the rule userspace lowering follows too).
pub fn has_kernel_side(module: &Module) -> bool {
    crate::passes::lower_host::has_kernel_side(module)
}

/// Whether the unit has a program `main` to build an executable around.
pub fn has_main(module: &Module) -> bool {
    module
        .lookup_symbol("main")
        .is_some_and(|f| module.op(f).opcode == crate::ir::Opcode::KsFunc)
}

/// The kernel side compiled to an object with the start-up tables the host executable embeds,
/// when the unit has one.
pub fn kernel_tables(module: &Module, opts: &Options) -> Result<Option<ObjectTables>, i32> {
    if !has_kernel_side(module) {
        return Ok(None);
    }
    let (bpf, object) = kernel(module, Output::Object, opts)?;
    Ok(Some(crate::codegen::bpf::object_tables(&bpf, object)))
}

/// Compiles the kernel side (if any) and, when `exe` is given, links the host executable (program
/// or test runner) there. Returns the BPF object, when the unit has a kernel side.
pub fn build(
    module: &Module,
    file: &Path,
    exe: Option<&Path>,
    test: bool,
    opts: &Options,
) -> Result<Option<Vec<u8>>, i32> {
    let tables = kernel_tables(module, opts)?;
    if let Some(exe) = exe {
        let host = host_object(module, tables.as_ref(), test, Output::Object, file, opts)?;
        use crate::link::LinkError;
        match crate::timing::stage("link", || {
            crate::link::link_executable(&host, exe, crate::codegen::python::uses_python(module))
        }) {
            Ok(()) => {}
            Err(LinkError::Environment(why)) => {
                return Err(opts.report.unit_error(Code::E0910, why));
            }
            Err(LinkError::Internal(why)) => {
                return Err(opts.report.unit_error(Code::E0999, why));
            }
        }
    }
    Ok(tables.map(|t| t.object))
}

/// Writes an artifact to `-o PATH` (never over an input, never through a symlink), or to
/// standard output (no `-o`, or `-o -` as in other compilers).
pub fn write_output(out: Option<&Path>, bytes: &[u8], inputs: &Inputs) -> i32 {
    use std::io::Write;
    let result = match out.filter(|p| *p != Path::new("-")) {
        Some(p) => output::write_file(p, bytes, Mode::Data, inputs),
        None => std::io::stdout()
            .write_all(bytes)
            .map_err(|e| format!("cannot write standard output: {e}")),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ksc: {e}");
            1
        }
    }
}

/// Which targets a build writes artifacts for (`--target`; `ksc build` writes all).
pub type Targets = EnumSet<Target>;

/// `ksc build`: the artifacts of §1.1 into DIR (default `./<base>`, created with parents):
/// `<base>.bpf.o` for a kernel side, `<base>` for a `main` (or `<base>.test` with `--test`),
/// `<base>.mod.c`, `Kbuild`, `Makefile` and `kmod-btf.sh` for `@kfunc`s.
pub fn artifacts(
    module: &Module,
    file: &Path,
    out: Option<&Path>,
    test: bool,
    targets: Targets,
    opts: &Options,
    inputs: &Inputs,
) -> i32 {
    let base = base_name(file);
    let dir = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(".").join(&base));
    if let Err(e) = output::prepare_dir(&dir) {
        eprintln!("ksc: {e}");
        return 1;
    }
    let exe = if !targets.contains(Target::Host) {
        None
    } else if test {
        Some(dir.join(format!("{base}.test")))
    } else if has_main(module) {
        Some(dir.join(&base))
    } else {
        None
    };
    // Every output is refused before anything is built or written if it would replace an input.
    let bpf_path = dir.join(format!("{base}.bpf.o"));
    let kmod_paths = [
        dir.join(format!("{base}.mod.c")),
        dir.join("Kbuild"),
        dir.join("Makefile"),
        dir.join(crate::codegen::kmod::BTF_SCRIPT_NAME),
    ];
    let py_path = dir.join(format!("{base}.py"));
    let planned = exe.iter().chain([&bpf_path, &py_path]).chain(&kmod_paths);
    if let Some(e) = planned.filter_map(|p| inputs.check_output(p).err()).next() {
        eprintln!("ksc: {e}");
        return 1;
    }
    let object = match &exe {
        // The executable is linked under a fresh name and renamed into place.
        Some(exe) => {
            let mut built = Ok(None);
            let written = output::replace_with(exe, Mode::Executable, inputs, |tmp| {
                built = build(module, file, Some(tmp), test, opts);
                built.as_ref().map(|_| ()).map_err(|_| String::new())
            });
            match (built, written) {
                (Err(code), _) => return code,
                (Ok(_), Err(e)) => {
                    eprintln!("ksc: {e}");
                    return 1;
                }
                (Ok(o), Ok(())) => o,
            }
        }
        None if targets.contains(Target::Bpf) => match build(module, file, None, test, opts) {
            Ok(o) => o,
            Err(code) => return code,
        },
        None => None,
    };
    if let (true, Some(object)) = (targets.contains(Target::Bpf), &object) {
        if let Err(e) = output::write_file(&bpf_path, object, Mode::Data, inputs) {
            eprintln!("ksc: {e}");
            return 1;
        }
    }
    if let (Some(_), false) = (&exe, test) {
        if crate::codegen::python::uses_exec(module) {
            let source = crate::codegen::python::module_source(module);
            if let Err(e) = output::write_file(&py_path, source.as_bytes(), Mode::Data, inputs) {
                eprintln!("ksc: {e}");
                return 1;
            }
        }
    }
    if targets.contains(Target::Kmod)
        && module
            .funcs()
            .any(|f| KsFunc(f).target(module) == Target::Kmod)
    {
        let source = match module_source(module, file, opts) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let [source_path, kbuild_path, makefile_path, script_path] = &kmod_paths;
        use crate::codegen::kmod;
        for (path, text, mode) in [
            (source_path, source, Mode::Data),
            (kbuild_path, kmod::kbuild(&base), Mode::Data),
            (makefile_path, kmod::makefile(&base), Mode::Data),
            (script_path, kmod::BTF_SCRIPT.to_string(), Mode::Executable),
        ] {
            if let Err(e) = output::write_file(path, text.as_bytes(), mode, inputs) {
                eprintln!("ksc: {e}");
                return 1;
            }
        }
    }
    0
}

/// The kernel-module side as C source (§16.2).
pub fn module_source(module: &Module, file: &Path, opts: &Options) -> Result<String, i32> {
    let kmod = run_pipeline(module, Target::Kmod, opts)?;
    let callers = crate::codegen::kmod::kfunc_callers(module);
    crate::codegen::kmod::emit(&kmod, &base_name(file), &callers)
        .map_err(|errors| opts.report.backend_errors(&kmod, "module", errors))
}
