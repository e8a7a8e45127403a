//! `--kernel VERSION`: the constructs of a checked unit that the named kernel lacks (warning
//! W0010 at the construct) or that the runtime replaces there by an older mechanism (note N0002),
//! from the table below (docs/language.md §19.1). The check is by version, for kernels the
//! program will meet elsewhere; on the running kernel the runtime probes features instead.

use super::env::{FnKind, FuncId, MapKind, ProgKind, Target};
use super::Checked;
use crate::diagnostics::{Code, Diagnostic, Diagnostics, Span};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// A kernel release, `major.minor` (a patch level is accepted and ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion(pub u32, pub u32);

impl std::str::FromStr for KernelVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split('.');
        let mut number = |what: &str| -> Result<u32, String> {
            parts
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("`{s}` is not a kernel version such as 6.1 ({what})"))
        };
        let version = KernelVersion(number("major")?, number("minor")?);
        match parts.next() {
            Some(patch) if patch.parse::<u32>().is_err() => {
                Err(format!("`{s}` is not a kernel version such as 6.1"))
            }
            _ => Ok(version),
        }
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

const fn v(major: u32, minor: u32) -> KernelVersion {
    KernelVersion(major, minor)
}

/// A newer mechanism the runtime prefers where the kernel has it.
struct Fallback {
    since: KernelVersion,
    newer: &'static str,
    older: &'static str,
}

/// The first kernel that runs programs of a kind, and the runtime's fallback before a newer
/// attachment mechanism.
fn program_floor(kind: ProgKind) -> (KernelVersion, Option<Fallback>) {
    match kind {
        ProgKind::Xdp => (v(4, 8), None),
        ProgKind::Tc => (
            v(4, 1),
            Some(Fallback {
                since: v(6, 6),
                newer: "TCX links",
                older: "a clsact qdisc and filter",
            }),
        ),
        ProgKind::Kprobe | ProgKind::Kretprobe => (v(4, 1), None),
        ProgKind::Tracepoint => (v(4, 7), None),
        ProgKind::PerfEvent => (v(4, 9), None),
        ProgKind::CgroupSkb => (v(4, 10), None),
        ProgKind::Probe | ProgKind::Fexit | ProgKind::TpBtf => (v(5, 5), None),
        ProgKind::Lsm => (v(5, 7), None),
        ProgKind::StructOps => (
            v(5, 6),
            Some(Fallback {
                since: v(6, 4),
                newer: "struct_ops links",
                older: "registration by a map update, undone at exit",
            }),
        ),
    }
}

fn map_floor(kind: MapKind) -> KernelVersion {
    match kind {
        MapKind::Hash | MapKind::Array => v(3, 19),
        MapKind::ProgArray => v(4, 2),
        MapKind::PerfEventArray => v(4, 3),
        MapKind::PercpuHash | MapKind::PercpuArray => v(4, 6),
        MapKind::LruHash => v(4, 10),
        MapKind::LpmTrie => v(4, 11),
        MapKind::Devmap => v(4, 14),
        MapKind::Cpumap => v(4, 15),
        MapKind::Xskmap => v(4, 18),
        MapKind::Queue | MapKind::Stack => v(4, 20),
        MapKind::Ringbuf => v(5, 8),
        MapKind::BloomFilter => v(5, 16),
    }
}

/// The first kernel that lets programs of a kind call kfuncs (the kind's kfunc hook in the
/// kernel's BTF registry), for kinds that came later than module kfuncs themselves (xdp, tc,
/// struct_ops and tracing programs could call them from the start).
fn kfunc_caller_floor(kind: ProgKind) -> Option<KernelVersion> {
    match kind {
        ProgKind::Lsm => Some(v(6, 2)),
        ProgKind::CgroupSkb => Some(v(6, 3)),
        ProgKind::Kprobe | ProgKind::Kretprobe => Some(v(6, 10)),
        ProgKind::Tracepoint | ProgKind::PerfEvent => Some(v(6, 12)),
        ProgKind::Xdp
        | ProgKind::Tc
        | ProgKind::StructOps
        | ProgKind::Probe
        | ProgKind::Fexit
        | ProgKind::TpBtf => None,
    }
}

/// `new`/`delete` in kernel code call bpf_obj_new/bpf_obj_drop.
const KERNEL_ALLOCATION: KernelVersion = v(6, 2);
/// Global variables and configs live in the object's data sections (BPF global data).
const GLOBAL_DATA: KernelVersion = v(5, 2);
/// Kernel functions called from BPF programs, and kfuncs registered by modules.
const KFUNC_CALLS: KernelVersion = v(5, 13);
const MODULE_KFUNCS: KernelVersion = v(5, 18);

/// Reports what `kernel` lacks of the unit (W0010) and where the runtime falls back (N0002).
pub fn check(ck: &Checked, kernel: KernelVersion, cpu: &str, diags: &mut Diagnostics) {
    let mut found = Vec::new();
    let mut lacks = |span: Span, what: String, since: KernelVersion| {
        if kernel < since {
            found.push(Diagnostic::warning(
                Code::W0010,
                span,
                format!("{what} need Linux {since}; Linux {kernel} refuses them"),
            ));
        }
    };
    let mut fallbacks = Vec::new();
    for f in &ck.funcs {
        let Some(kind) = f.kind.program_kind() else {
            if f.kind == FnKind::Kfunc {
                lacks(
                    f.decl.name.span,
                    "kfuncs registered by a kernel module".into(),
                    MODULE_KFUNCS,
                );
            }
            continue;
        };
        // A struct_ops impl is reported once, at the impl, not at each of its methods.
        if matches!(f.kind, FnKind::StructOpsMethod { .. }) {
            continue;
        }
        let span = f.item.attrs.first().map_or(f.decl.name.span, |a| a.span);
        let (since, newer) = program_floor(kind);
        lacks(span, format!("`@{}` programs", kind.name()), since);
        if let Some(f) = newer.filter(|f| kernel >= since && kernel < f.since) {
            fallbacks.push(fallback_note(span, kernel, &f));
        }
    }
    for (span, kind) in module_kfunc_calls(ck) {
        let Some(since) = kfunc_caller_floor(kind) else {
            continue;
        };
        lacks(
            span,
            format!(
                "calls of the unit's kfuncs from `@{}` programs",
                kind.name()
            ),
            since,
        );
    }
    for imp in &ck.impls {
        let (since, newer) = program_floor(ProgKind::StructOps);
        lacks(imp.span, "`@struct_ops` impls".into(), since);
        if let Some(f) = newer.filter(|f| kernel >= since && kernel < f.since) {
            fallbacks.push(fallback_note(imp.span, kernel, &f));
        }
    }
    if let Some(&span) = ck.kernel_allocations.first() {
        lacks(
            span,
            "`new` and `delete` in kernel code (bpf_obj_new, bpf_obj_drop)".into(),
            KERNEL_ALLOCATION,
        );
    }
    for m in &ck.maps {
        lacks(
            m.span,
            format!("`{}` maps ({})", m.kind.name(), m.name),
            map_floor(m.kind),
        );
    }
    let data = ck
        .globals
        .iter()
        .filter(|g| !g.local || ck.funcs.iter().any(|f| f.kind.target() == Target::Bpf))
        .map(|g| g.span)
        .chain(ck.configs.iter().map(|c| c.span))
        .next();
    if let Some(span) = data {
        if ck.funcs.iter().any(|f| f.kind.target() == Target::Bpf) {
            lacks(
                span,
                "global variables and configs shared with kernel programs".into(),
                GLOBAL_DATA,
            );
        }
    }
    if let Some(e) = ck.externs.iter().find(|e| e.helper_id.is_none()) {
        let span = ck
            .funcs
            .iter()
            .find(|f| f.kind.target() == Target::Bpf)
            .map_or_else(Span::default, |f| f.decl.name.span);
        lacks(
            span,
            format!("calls of kernel functions (kfunc `{}`)", e.name),
            KFUNC_CALLS,
        );
    }
    let cpu_floor = match cpu {
        "v4" => Some(v(6, 6)),
        "v3" => Some(v(5, 1)),
        "v2" => Some(v(4, 14)),
        _ => None,
    };
    if let (Some(since), Some(f)) = (
        cpu_floor,
        ck.funcs.iter().find(|f| f.kind.target() == Target::Bpf),
    ) {
        lacks(
            f.decl.name.span,
            format!("programs built for BPF cpu {cpu} (--bpf-cpu)"),
            since,
        );
    }
    for d in found.into_iter().chain(fallbacks) {
        diags.push(d);
    }
}

/// Each call of one of the unit's kfuncs with the kind of a program that reaches it (through
/// the functions it calls), once per call and kind.
fn module_kfunc_calls(ck: &Checked) -> Vec<(Span, ProgKind)> {
    let mut callees: HashMap<FuncId, Vec<(FuncId, Span)>> = HashMap::new();
    for &(caller, callee, span) in &ck.call_edges {
        callees.entry(caller).or_default().push((callee, span));
    }
    let mut found = Vec::new();
    for (i, f) in ck.funcs.iter().enumerate() {
        let Some(kind) = f.kind.program_kind() else {
            continue;
        };
        let mut seen = HashSet::new();
        let mut work = vec![FuncId(i as u32)];
        while let Some(g) = work.pop() {
            if !seen.insert(g) {
                continue;
            }
            for &(callee, span) in callees.get(&g).into_iter().flatten() {
                if ck.funcs[callee.0 as usize].kind == FnKind::Kfunc {
                    if !found.contains(&(span, kind)) {
                        found.push((span, kind));
                    }
                } else {
                    work.push(callee);
                }
            }
        }
    }
    found
}

fn fallback_note(span: Span, kernel: KernelVersion, f: &Fallback) -> Diagnostic {
    Diagnostic::note(
        Code::N0002,
        span,
        format!(
            "Linux {kernel} lacks {} (Linux {}): the runtime uses {} there",
            f.newer, f.since, f.older
        ),
    )
}
