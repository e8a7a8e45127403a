//! `ksc verify`: build the BPF object in memory, load every program into the running kernel's
//! verifier, report each, and show a rejection at the `.ks` line the verifier names.

use crate::diagnostics::{
    render_json, render_text, Code, Diagnostic, Diagnostics, SourceMap, Span,
};
use crate::kernel::{self, LoadError, ProgramReport, Verdict};
use crate::syntax::ast::{ItemKind, Unit};
use std::path::Path;

/// How many lines of the verifier log follow a rejection.
const LOG_TAIL: usize = 12;

pub fn run(object: &[u8], file: &Path, unit: &Unit, sources: &SourceMap, json: bool) -> i32 {
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let at_start = Span::default();
    let reports = match kernel::verify_object(object, &name) {
        Ok(r) => r,
        Err(LoadError::Unavailable(why)) => {
            return emit(sources, json, Diagnostic::error(Code::E0902, at_start, why))
        }
        Err(e @ LoadError::Map { .. }) => {
            let LoadError::Map { name, messages, .. } = &e else {
                unreachable!()
            };
            let at = map_declaration(unit, name).unwrap_or(at_start);
            let mut d = Diagnostic::error(Code::E0903, at, e.to_string());
            // libbpf's account runs to a whole BTF dump; shown when asked for, as by the
            // executables.
            if verbose() {
                d = d.with_note("libbpf's messages:");
                for l in messages.iter().flat_map(|m| m.lines()) {
                    d = d.with_note(format!("  {l}"));
                }
            } else {
                d = d.with_note("KSRT_VERBOSE=1 in the environment shows libbpf's messages");
            }
            return emit(sources, json, d);
        }
        Err(e @ LoadError::Btf(_)) => {
            eprintln!(
                "{}:1:1: error[E0999]: internal compiler error: {e}",
                file.display()
            );
            return 1;
        }
        Err(LoadError::Open(why)) => {
            eprintln!("{}:1:1: error[E0999]: internal compiler error: libbpf cannot open the generated object: {why}", file.display());
            return 1;
        }
    };
    let mut diags = Diagnostics::new();
    for r in &reports {
        match &r.verdict {
            Verdict::Accepted => {
                let processed = r
                    .processed
                    .map(|p| format!(", verifier processed {p}"))
                    .unwrap_or_default();
                println!("ok {} ({} insns) [{}{processed}]", r.name, r.insns, r.kind);
            }
            Verdict::Rejected { last_line, .. } => {
                let own = own_kfunc(unit, r).map(|k| module_not_loaded(&k, &name));
                let last_line = own.as_deref().unwrap_or(last_line);
                println!("rejected {}: {last_line}", r.name);
                diags.push(rejection(r, last_line, sources));
            }
        }
    }
    let out = if json {
        render_json(&diags, sources)
    } else {
        render_text(&diags, sources)
    };
    eprint!("{out}");
    if diags.has_errors() {
        1
    } else {
        0
    }
}

fn emit(sources: &SourceMap, json: bool, d: Diagnostic) -> i32 {
    let mut diags = Diagnostics::new();
    diags.push(d);
    eprint!(
        "{}",
        if json {
            render_json(&diags, sources)
        } else {
            render_text(&diags, sources)
        }
    );
    1
}

/// E0901 at the source line of the last line-info annotation before the failure, with the tail
/// of the verifier log as notes.
fn rejection(r: &ProgramReport, last_line: &str, sources: &SourceMap) -> Diagnostic {
    let span = kernel::log_source_location(&r.log)
        .and_then(|(file, line, _)| {
            let id = sources.find_named(&file)?;
            let (lo, hi) = sources.get(id).line_range(line as usize)?;
            Some(Span::new(id, lo, hi))
        })
        .unwrap_or_default();
    let mut d = Diagnostic::error(
        Code::E0901,
        span,
        format!(
            "the kernel verifier rejected program `{}`: {last_line}",
            r.name
        ),
    );
    let tail: Vec<&str> = r.log.lines().filter(|l| !l.trim().is_empty()).collect();
    let from = tail.len().saturating_sub(LOG_TAIL);
    d = d.with_note(format!("verifier log (last {} lines):", tail.len() - from));
    for l in &tail[from..] {
        d = d.with_note(format!("  {l}"));
    }
    d
}

/// The unit's own `@kfunc` that libbpf could not find in any BTF, which failed `r`'s load.
fn own_kfunc(unit: &Unit, r: &ProgramReport) -> Option<String> {
    let messages: Vec<String> = r.log.lines().map(str::to_owned).collect();
    let missing = kernel::missing_kfunc(&messages)?;
    unit.items
        .iter()
        .any(|item| {
            matches!(&item.kind, ItemKind::Func(f) if f.name.name == missing)
                && item.attrs.iter().any(|a| a.name.name == "kfunc")
        })
        .then_some(missing)
}

/// Why a unit's own kfunc is missing: `ksc verify` does not build or load kernel modules (that
/// changes the running kernel), so the module must be loaded first (docs/language.md §16.2).
fn module_not_loaded(kfunc: &str, base: &str) -> String {
    let module = crate::codegen::kmod::module_name(base);
    if !Path::new("/proc/modules").exists() {
        return format!("the kfunc `{kfunc}` is this unit's own, and this kernel has no loadable module support (CONFIG_MODULES is off), so it can never be in the kernel's BTF here: verify on a kernel with modules");
    }
    if Path::new("/sys/module").join(&module).exists() {
        return format!("the kfunc `{kfunc}` is this unit's own, and its module {module} is loaded without BTF, so the kernel registered none of its kfuncs: rebuild it with `make` in the directory `ksc build` wrote (its Makefile generates the BTF)");
    }
    format!("the kfunc `{kfunc}` is this unit's own, and its module {module} is not loaded (ksc verify does not load kernel modules): `ksc build`, `make -C DIR`, `insmod DIR/{module}.ko`, then verify again")
}

/// The name in the declaration of map `name` (user maps keep their `.ks` names in the object).
fn map_declaration(unit: &Unit, name: &str) -> Option<Span> {
    unit.items.iter().find_map(|item| match &item.kind {
        ItemKind::Map(m) if m.name.name == name => Some(m.name.span),
        _ => None,
    })
}

/// Whether libbpf's messages are wanted (`KSRT_VERBOSE`, set and not 0; the runtime reads it too).
fn verbose() -> bool {
    std::env::var_os("KSRT_VERBOSE").is_some_and(|v| !v.is_empty() && v != "0")
}
