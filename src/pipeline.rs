//! The whole compiler as a library call, for tools and tests: a `.ks` file to a BPF object.

use crate::diagnostics::{render_text, Diagnostics, SourceMap};
use crate::sema::{self, CheckOptions};
use crate::syntax::{self, ParseOptions};
use std::path::Path;

/// Compiles the kernel side of a `.ks` file to BPF ELF object bytes, or returns the rendered
/// diagnostics (or back-end errors) as text.
pub fn compile_bpf_object(
    file: &Path,
    opts: &crate::codegen::bpf::Options,
) -> Result<Vec<u8>, String> {
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new();
    let unit = syntax::load_unit(
        file,
        ParseOptions { compat: false },
        &mut sources,
        &mut diags,
    );
    if diags.has_errors() {
        return Err(render_text(&diags, &sources));
    }
    let checked = sema::check(
        &unit,
        &CheckOptions {
            btf_path: None,
            compat: false,
        },
        &mut diags,
    );
    if diags.has_errors() {
        return Err(render_text(&diags, &sources));
    }
    let module = crate::lower::lower_unit(&unit, &checked, &sources);
    let bpf = crate::passes::pipeline::run_for_target(
        &module,
        crate::vocab::Target::Bpf,
        &opts.cpu,
        Default::default(),
    )
    .map_err(|e| match &e.1 {
        crate::passes::manager::PipelineError::Pass(pass, errors) => {
            format!("pass {pass}: {errors:?}")
        }
        crate::passes::manager::PipelineError::Verify(pass, _) => {
            format!("pass {pass} left a module that does not verify")
        }
    })?;
    crate::codegen::bpf::compile(&bpf, opts, crate::codegen::bpf::Output::Object).map_err(
        |errors| {
            errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("\n")
        },
    )
}
