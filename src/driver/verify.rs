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
                diags.push(rejection(r, last_line, sources, unit));
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

/// Whether `path` is an ELF file (an object `ksc build` wrote) rather than KernelScript source.
pub fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == *b"\x7fELF")
}

/// `ksc verify OBJECT`: loads a BPF object built earlier — the same object on every kernel, as
/// CO-RE intends — and reports each program; a rejection shows the verifier's source line (the
/// object's line info names the `.ks` file) and the log's tail.
pub fn run_prebuilt(path: &Path) -> i32 {
    let shown = path.display();
    let object = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("ksc: cannot read {shown}: {e}");
            return 1;
        }
    };
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default()
        .trim_end_matches(".o")
        .trim_end_matches(".bpf")
        .to_string();
    let reports = match kernel::verify_object(&object, &name) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{shown}: error: {e}");
            return 1;
        }
    };
    let mut rejected = 0;
    for r in &reports {
        match &r.verdict {
            Verdict::Accepted => println!("ok {} ({} insns) [{}]", r.name, r.insns, r.kind),
            Verdict::Rejected { last_line, .. } => {
                rejected += 1;
                println!("rejected {}: {last_line}", r.name);
                let at = kernel::log_source_location(&r.log)
                    .map(|(file, line, _)| format!(" at {file}:{line}"))
                    .unwrap_or_default();
                eprintln!(
                    "{shown}: error: the kernel verifier rejected program `{}`{at}: {last_line}",
                    r.name
                );
                let tail: Vec<&str> = r.log.lines().filter(|l| !l.trim().is_empty()).collect();
                for l in &tail[tail.len().saturating_sub(LOG_TAIL)..] {
                    eprintln!("  {l}");
                }
            }
        }
    }
    (rejected > 0) as i32
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
/// of the verifier log as notes; for a kfunc the kernel lacks (libbpf stops before the verifier),
/// at the kfunc's `extern`.
fn rejection(r: &ProgramReport, last_line: &str, sources: &SourceMap, unit: &Unit) -> Diagnostic {
    let log: Vec<String> = r.log.lines().map(str::to_owned).collect();
    let missing = kernel::missing_kfunc(&log).and_then(|k| declaration(unit, &k));
    let span = missing
        .or_else(|| {
            kernel::log_source_location(&r.log).and_then(|(file, line, _)| {
                let id = sources.find_named(&file)?;
                let (lo, hi) = sources.get(id).line_range(line as usize)?;
                Some(Span::new(id, lo, hi))
            })
        })
        // Refused before the verifier ran: no log line to point at, so the program itself.
        .or_else(|| declaration(unit, &r.name))
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

/// The name in the `extern` or function declaring `name` (a kfunc, or a program by its symbol).
fn declaration(unit: &Unit, name: &str) -> Option<Span> {
    unit.items.iter().find_map(|item| match &item.kind {
        ItemKind::Extern(e) if e.name.name == name => Some(e.name.span),
        ItemKind::Func(f) if f.name.name == name => Some(f.name.span),
        _ => None,
    })
}

/// Whether libbpf's messages are wanted (`KSRT_VERBOSE`, set and not 0; the runtime reads it too).
fn verbose() -> bool {
    std::env::var_os("KSRT_VERBOSE").is_some_and(|v| !v.is_empty() && v != "0")
}
