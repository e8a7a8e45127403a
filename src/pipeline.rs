//! The whole compiler as library calls: the front end every command runs (`parse`, `check`) and a
//! `.ks` file to a BPF object (`compile_bpf_object`) for tools and tests. The driver is a thin
//! layer over the same calls.

use crate::diagnostics::{render_text, Diagnostics, SourceMap};
use crate::sema::{self, CheckOptions};
use crate::syntax::{self, ParseOptions};
use crate::vocab::Target;
use std::path::{Path, PathBuf};

/// What the front end needs from the command line.
#[derive(Clone, Debug, Default)]
pub struct FrontEndOptions {
    /// Reject the extensions to the reference dialect (`--compat`).
    pub compat: bool,
    /// Kernel BTF to resolve kernel types against (`--btf`; default: the running kernel's).
    pub btf: Option<PathBuf>,
    /// The oldest kernel the unit must load on (`--kernel`), and the BPF cpu it is built for.
    pub kernel: Option<(crate::sema::kernel_floor::KernelVersion, String)>,
}

/// Parses the unit and its imports. The tree is returned even when it has errors (in `diags`).
pub fn parse(
    file: &Path,
    opts: &FrontEndOptions,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> syntax::ast::Unit {
    crate::timing::stage("parse", || {
        syntax::load_unit(
            file,
            ParseOptions {
                compat: opts.compat,
            },
            sources,
            diags,
        )
    })
}

/// Checks a parsed unit (nothing, when parsing found errors); the checked unit only when every
/// check passed. Diagnostics go to `diags`.
pub fn check<'u>(
    unit: &'u syntax::ast::Unit,
    opts: &FrontEndOptions,
    diags: &mut Diagnostics,
) -> Option<sema::Checked<'u>> {
    if diags.has_errors() {
        return None;
    }
    let check = CheckOptions {
        btf_path: opts.btf.clone(),
        compat: opts.compat,
    };
    let checked = sema::check(unit, &check, diags);
    if let (Some((kernel, cpu)), false) = (&opts.kernel, diags.has_errors()) {
        sema::kernel_floor::check(&checked, *kernel, cpu, diags);
    }
    (!diags.has_errors()).then_some(checked)
}

/// Compiles the kernel side of a `.ks` file to BPF ELF object bytes, or returns the rendered
/// diagnostics (or back-end errors) as text.
pub fn compile_bpf_object(
    file: &Path,
    opts: &crate::codegen::bpf::Options,
) -> Result<Vec<u8>, String> {
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new();
    let opts_front = FrontEndOptions::default();
    let unit = parse(file, &opts_front, &mut sources, &mut diags);
    let Some(checked) = check(&unit, &opts_front, &mut diags) else {
        return Err(render_text(&diags, &sources));
    };
    let module = crate::lower::lower_unit(&unit, &checked, &sources);
    let bpf =
        crate::passes::pipeline::run_for_target(&module, Target::Bpf, opts, Default::default())
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
