//! The kernel-side pipeline from a lowered module to BPF object bytes, and artifact writing.

use crate::ir::Module;
use crate::passes::pipeline;
use std::path::Path;

/// Runs the kernel pipeline and the BPF back end; failures are reported (at the `.ks` line when
/// the back end names an op) and turn into exit status 1.
pub fn kernel_object(module: &Module, output: crate::codegen::bpf::Output, file: &Path, opts: &crate::codegen::bpf::Options) -> Result<Vec<u8>, i32> {
    let bpf = match pipeline::run_pipeline(module, pipeline::BPF) {
        Ok(m) => m,
        Err((pass, errors)) => {
            super::opt::report_pass_errors(module, &pass, &errors);
            return Err(1);
        }
    };
    let verify = crate::ir::verify::verify_module(&bpf);
    if !verify.is_empty() {
        super::opt::print_verified(&bpf, "bpf-ir");
        return Err(1);
    }
    crate::codegen::bpf::compile(&bpf, opts, output).map_err(|errors| {
        for e in errors {
            let at = e.op.map(|op| super::opt::loc_text(&bpf, op)).unwrap_or_else(|| format!("{}:1:1", file.display()));
            // The BPF backend's own stack accounting can exceed what sema counted (temporaries).
            if e.message.contains("stack limit") {
                eprintln!("{at}: error[E0601]: stack limit exceeded: {}", e.message);
            } else {
                eprintln!("{at}: error[E0999]: internal compiler error: BPF back end: {}", e.message);
            }
        }
        1
    })
}

/// Writes an artifact to `-o PATH`, or to standard output.
pub fn write_output(out: Option<&Path>, bytes: &[u8]) -> i32 {
    use std::io::Write;
    let result = match out {
        Some(p) => std::fs::write(p, bytes),
        None => std::io::stdout().write_all(bytes),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ksc: cannot write {}: {e}", out.map(|p| p.display().to_string()).unwrap_or_else(|| "standard output".into()));
            1
        }
    }
}

/// `ksc build`: the artifacts of §1.1 into DIR (default `./<base>`, created with parents). The
/// BPF object is written when the unit has kernel-side code; artifacts of back ends that do not
/// exist yet (host executable, test executable, module source) are reported, exit status 1.
pub fn artifacts(module: &Module, file: &Path, out: Option<&Path>, test: bool, opts: &crate::codegen::bpf::Options) -> i32 {
    use crate::ir::{views::KsFunc, Opcode};
    let base = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "unit".into());
    let dir = out.map(Path::to_path_buf).unwrap_or_else(|| Path::new(".").join(&base));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("ksc: cannot create {}: {e}", dir.display());
        return 1;
    }
    let target = |t: &[u8]| module.funcs().any(|f| KsFunc(f).target(module) == t);
    let kernel = target(b"bpf") || module.top_ops().iter().any(|&o| module.op(o).opcode == Opcode::KsImpl);
    let main = module.lookup_symbol("main").is_some();
    let kfuncs = target(b"kmod");
    if kernel {
        let object = match kernel_object(module, crate::codegen::bpf::Output::Object, file, opts) {
            Ok(o) => o,
            Err(code) => return code,
        };
        let path = dir.join(format!("{base}.bpf.o"));
        if let Err(e) = std::fs::write(&path, object) {
            eprintln!("ksc: cannot write {}: {e}", path.display());
            return 1;
        }
    }
    let mut missing = Vec::new();
    if main && !test {
        missing.push(format!("{base} (the host executable)"));
    }
    if test {
        missing.push(format!("{base}.test (the test executable)"));
    }
    if kfuncs {
        missing.push(format!("{base}.mod.c and Kbuild (the kernel module source)"));
    }
    if missing.is_empty() {
        return 0;
    }
    eprintln!("ksc: {}: {} need back ends this ksc does not have yet{}", file.display(), missing.join(", "), if kernel { format!("; {base}.bpf.o was written") } else { String::new() });
    1
}

/// The BPF back end's options from the command line.
pub fn bpf_options(args: &super::cli::CodegenArgs) -> crate::codegen::bpf::Options {
    crate::codegen::bpf::Options { cpu: args.bpf_cpu.clone(), optimize: args.opt_level != "0" }
}
