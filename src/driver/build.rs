//! From a lowered module to artifacts: the kernel pipeline and BPF back end, the userspace
//! pipeline and host back end, the link, and the files of `ksc build`.

use super::output::{self, Inputs, Mode};
use crate::codegen::bpf::ObjectTables;
use crate::codegen::llvm::{Error, Output};
use crate::ir::{views::KsFunc, Module};
use crate::passes::manager::RunOptions;
use crate::passes::pipeline;
use crate::vocab::{EnumSet, Target};
use std::path::Path;

/// Back-end options from the command line.
pub struct Options {
    pub bpf: crate::codegen::bpf::Options,
    pub host: crate::codegen::host::Options,
    /// `--print-after`
    pub print_after: Option<String>,
    /// `--verify-each`
    pub verify_each: bool,
}

pub fn options(args: &super::cli::CodegenArgs) -> Options {
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
        pipeline::run_for_target(module, target, &opts.bpf.cpu, run_opts)
    })
    .map_err(|e| super::opt::report_pipeline_error(&e.0, &e.1))?;
    if !crate::ir::verify::verify_module(&m).is_empty() {
        super::opt::print_verified(&m, level);
        return Err(1);
    }
    Ok(m)
}

/// Reports back-end errors at the `.ks` line of the op they concern.
fn report_backend_errors(m: &Module, file: &Path, backend: &str, errors: Vec<Error>) -> i32 {
    let mut stack_reported = std::collections::HashSet::new();
    for e in errors {
        let at =
            e.op.map(|op| super::opt::loc_text(m, op))
                .unwrap_or_else(|| format!("{}:1:1", file.display()));
        // LLVM reports the stack limit once per access past it; the user hears it once per
        // function.
        if e.code == crate::diagnostics::Code::E0601 {
            let func = e.op.map(|op| m.top_level_of(op));
            if stack_reported.insert(func) {
                let at = func.map(|f| super::opt::loc_text(m, f)).unwrap_or(at);
                eprintln!(
                    "{at}: error[E0601]: stack limit exceeded: {}",
                    stack_summary(m, func)
                );
            }
        } else {
            eprintln!(
                "{at}: error[E0999]: internal compiler error: {backend} back end: {}",
                e.message
            );
        }
    }
    1
}

/// What a kernel function keeps on its stack, largest first, and what to do about it.
fn stack_summary(m: &Module, func: Option<crate::ir::OpId>) -> String {
    use crate::ir::{Attr, Opcode};
    let Some(func) = func else {
        return "a kernel function needs more than 512 bytes of stack; move large values into a per-CPU array map".into();
    };
    let mut objects: Vec<(u64, String)> = m
        .collect_nested(func, |o| o.opcode == Opcode::CoreLocal)
        .into_iter()
        .filter_map(|op| {
            let Some(Attr::Type(t)) = m.attr(op, "ty") else {
                return None;
            };
            let size = crate::ir::layout::size_of(m, t)?;
            let what = match m.attr(op, "name") {
                Some(Attr::Str(n)) => format!("`{}`", String::from_utf8_lossy(n)),
                _ => format!("a temporary `{t}`"),
            };
            Some((size, what))
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

/// The kernel side compiled, with the module it came from (which the runtime tables are read from).
fn kernel(
    module: &Module,
    output: Output,
    file: &Path,
    opts: &Options,
) -> Result<(Module, Vec<u8>), i32> {
    let bpf = run_pipeline(module, Target::Bpf, opts)?;
    match crate::codegen::bpf::compile(&bpf, &opts.bpf, output) {
        Ok(bytes) => Ok((bpf, bytes)),
        Err(errors) => Err(report_backend_errors(&bpf, file, "BPF", errors)),
    }
}

/// The kernel side as BPF object bytes (or LLVM IR / assembly).
pub fn kernel_object(
    module: &Module,
    output: Output,
    file: &Path,
    opts: &Options,
) -> Result<Vec<u8>, i32> {
    kernel(module, output, file, opts).map(|(_, bytes)| bytes)
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
        .map_err(|errors| report_backend_errors(&host, file, "host", errors))
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
pub fn kernel_tables(
    module: &Module,
    file: &Path,
    opts: &Options,
) -> Result<Option<ObjectTables>, i32> {
    if !has_kernel_side(module) {
        return Ok(None);
    }
    let (bpf, object) = kernel(module, Output::Object, file, opts)?;
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
    let tables = kernel_tables(module, file, opts)?;
    if let Some(exe) = exe {
        let host = host_object(module, tables.as_ref(), test, Output::Object, file, opts)?;
        use crate::link::LinkError;
        match crate::timing::stage("link", || {
            crate::link::link_executable(&host, exe, crate::codegen::python::uses_python(module))
        }) {
            Ok(()) => {}
            Err(LinkError::Environment(why)) => {
                eprintln!("{}:1:1: error[E0910]: link failed: {why}", file.display());
                return Err(1);
            }
            Err(LinkError::Internal(why)) => {
                eprintln!(
                    "{}:1:1: error[E0999]: internal compiler error: {why}",
                    file.display()
                );
                return Err(1);
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
        .map_err(|errors| report_backend_errors(&kmod, file, "module", errors))
}
