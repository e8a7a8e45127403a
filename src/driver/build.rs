//! The kernel-side pipeline from a lowered module to BPF object bytes, and artifact writing.

use crate::ir::Module;
use crate::passes::pipeline;
use std::path::Path;

/// Runs the kernel pipeline and the BPF back end; failures are reported (at the `.ks` line when
/// the back end names an op) and turn into exit status 1.
pub fn kernel_object(module: &Module, output: crate::codegen::bpf::Output, file: &Path) -> Result<Vec<u8>, i32> {
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
    crate::codegen::bpf::compile(&bpf, &crate::codegen::bpf::Options::default(), output).map_err(|errors| {
        for e in errors {
            let at = e.op.map(|op| super::opt::loc_text(&bpf, op)).unwrap_or_else(|| format!("{}:1:1", file.display()));
            eprintln!("{at}: error[E0999]: internal compiler error: BPF back end: {}", e.message);
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
