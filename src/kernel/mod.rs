//! The running kernel: loading BPF objects through libbpf, the verifier's verdicts and logs
//! mapped back to `.ks` lines (`ksc verify`, and later `ksc test`).
//!
//! libbpf loads an object's programs in order and stops at the first failure, and a rejected
//! program's full verifier log is expensive for accepted ones. So `verify_object` first loads
//! everything at once with stats-only logs (one open in the common all-accepted case); when a
//! program fails, the ones before it are accepted, the failing one is loaded alone again with the
//! full log, and the ones after it are retried together. A rejection costs two extra opens.

use std::fmt;

pub use run::{Loaded, TestRun};

mod ffi;
mod run;
#[cfg(test)]
mod tests;

/// What the kernel said about one program of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramReport {
    pub name: String,
    pub section: String,
    /// xdp, tc, tracepoint, tp_btf, fentry, fexit, kprobe, ... derived from the section name.
    pub kind: String,
    pub verdict: Verdict,
    /// Instruction count (`bpf_program__insn_cnt`, after libbpf's relocations).
    pub insns: usize,
    /// The verifier's "processed N insns" figure, when it ran.
    pub processed: Option<u64>,
    /// The verifier log (stats only for accepted programs, full for rejected ones); libbpf's
    /// messages instead when the kernel refused the program before the verifier ran.
    pub log: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// `last_line` is the verifier's complaint, or why the program never reached the verifier.
    Rejected {
        errno: i32,
        last_line: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// No usable bpf() system call (missing, or no permission): E0902.
    Unavailable(String),
    /// libbpf cannot open the ELF (or, for an object without programs, cannot load its maps).
    Open(String),
    /// The kernel would not create map `name` (errno), so no program could load; libbpf's
    /// messages as it said them.
    Map {
        name: String,
        errno: i32,
        messages: Vec<String>,
    },
    /// The kernel refused the object's BTF. libbpf would go on without it (no function info, so
    /// any program passing a callback fails with "missing btf func_info"): a compiler bug, said
    /// as such. The kernel's reason, when libbpf gave it.
    Btf(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Unavailable(why) => write!(f, "bpf() unavailable: {why}"),
            LoadError::Open(why) => write!(f, "cannot load BPF object: {why}"),
            LoadError::Btf(why) => write!(f, "the kernel refused the object's BTF: {why}"),
            LoadError::Map { name, errno, .. } => write!(
                f,
                "the kernel refused to create map `{name}`: {}",
                map_refusal(*errno)
            ),
        }
    }
}

impl std::error::Error for LoadError {}

const BPF_LOG_LEVEL1: u32 = 1;
const BPF_LOG_STATS: u32 = 4;
/// Stats-only logs are a few lines, plus the complaint for a rejected program.
const STATS_LOG_SIZE: usize = 64 << 10;
/// Full logs start here and grow 4x on ENOSPC up to the max (the kernel's limit is 1 GiB).
const FULL_LOG_MIN: usize = 1 << 20;
const FULL_LOG_MAX: usize = 256 << 20;
const ENOSPC: i32 = 28;

/// Loads every program and map of an in-memory BPF ELF into the running kernel (no attach, no
/// pinning), reports each program in object order, and tears everything down.
pub fn verify_object(elf: &[u8], object_name: &str) -> Result<Vec<ProgramReport>, LoadError> {
    let load = |wanted: &dyn Fn(usize) -> bool, level: u32, log_size: usize| {
        ffi::load_once(elf, object_name, wanted, level, log_size)
            .map_err(|f| LoadError::Open(describe(f.errno, &f.messages)))
    };
    // Opening before probing bpf() reports a broken ELF as such on any machine.
    let mut attempt = load(&|_| true, BPF_LOG_STATS, STATS_LOG_SIZE)?;
    if let Some(why) = refused_btf(&attempt.messages) {
        return Err(LoadError::Btf(why));
    }
    if attempt.errno.is_some() {
        ffi::probe_bpf().map_err(|errno| {
            LoadError::Unavailable(format!(
                "the bpf() system call failed: {}",
                load_errno_text(errno)
            ))
        })?;
        // Maps are created before any program loads: a map the kernel refuses stops them all,
        // and it is the map that needs fixing.
        if let Some(name) = failed_map(&attempt.messages) {
            return Err(LoadError::Map {
                name,
                errno: attempt.errno.unwrap_or(0),
                messages: attempt.messages,
            });
        }
        if attempt.progs.is_empty() {
            return Err(LoadError::Open(describe(
                attempt.errno.unwrap_or(0),
                &attempt.messages,
            )));
        }
    }

    let count = attempt.progs.len();
    let mut reports: Vec<Option<ProgramReport>> = vec![None; count];
    let mut pending: Vec<usize> = (0..count).collect();
    while !pending.is_empty() {
        let loaded = match attempt.errno {
            None => pending.len(),
            // libbpf names the program it stopped at; those before it loaded. If it names none
            // (an object-level failure), the first pending program is tried alone.
            Some(_) => failed_program(&attempt)
                .and_then(|i| pending.iter().position(|&p| p == i))
                .unwrap_or(0),
        };
        for &i in &pending[..loaded] {
            reports[i] = Some(report(program(&attempt, i)?, None, &[]));
        }
        if loaded < pending.len() {
            let failed = pending[loaded];
            reports[failed] = Some(load_alone(&load, failed, attempt.errno)?);
            pending.drain(..=loaded);
        } else {
            pending.clear();
        }
        if !pending.is_empty() {
            attempt = load(&|i| pending.contains(&i), BPF_LOG_STATS, STATS_LOG_SIZE)?;
        }
    }
    Ok(reports.into_iter().flatten().collect())
}

/// Loads the object with a filter of which programs to load, a log level and a log size.
type Loader<'a> =
    dyn Fn(&dyn Fn(usize) -> bool, u32, usize) -> Result<ffi::Attempt, LoadError> + 'a;

/// Loads program `i` on its own with the full verifier log, growing the buffer on ENOSPC until
/// the log's end is in it. Kernels since 6.4 keep the end of a log too long for the buffer (and
/// still say ENOSPC): there the closing statistics are already in the first buffer, and each
/// larger one would only verify the program again (a program that runs into the 1M-instruction
/// limit takes seconds each time). Older kernels keep the start, and the buffer grows.
/// `errno` is what the load with the short log failed with: a rotated log's load says ENOSPC.
fn load_alone(load: &Loader<'_>, i: usize, errno: Option<i32>) -> Result<ProgramReport, LoadError> {
    let mut log_size = FULL_LOG_MIN;
    loop {
        let attempt = load(&|j| j == i, BPF_LOG_LEVEL1 | BPF_LOG_STATS, log_size)?;
        let end_kept = processed(&program(&attempt, i)?.log).is_some();
        let errno = match attempt.errno {
            Some(ENOSPC) if end_kept => errno.or(attempt.errno),
            other => other,
        };
        if attempt.errno != Some(ENOSPC) || end_kept || log_size >= FULL_LOG_MAX {
            return Ok(report(program(&attempt, i)?, errno, &attempt.messages));
        }
        log_size *= 4;
    }
}

fn program(attempt: &ffi::Attempt, i: usize) -> Result<&ffi::ProgInfo, LoadError> {
    // Every attempt opens the same ELF, so the program list never changes; guard anyway.
    attempt
        .progs
        .get(i)
        .ok_or_else(|| LoadError::Open(format!("program #{i} disappeared between two opens")))
}

/// The program libbpf reports as "prog 'NAME': failed to load: ..." (libbpf pinned at 1.7).
fn failed_program(attempt: &ffi::Attempt) -> Option<usize> {
    let name = attempt.messages.iter().find_map(|m| {
        let (_, rest) = m.split_once("prog '")?;
        let (name, tail) = rest.split_once("': ")?;
        tail.starts_with("failed to load:").then_some(name)
    })?;
    attempt.progs.iter().position(|p| p.name == name)
}

/// The map libbpf reports as "map 'NAME': failed to create: ..." (libbpf pinned at 1.7).
fn failed_map(messages: &[String]) -> Option<String> {
    messages.iter().find_map(|m| {
        let (_, rest) = m.split_once("map '")?;
        let (name, tail) = rest.split_once("': ")?;
        tail.starts_with("failed to create")
            .then(|| name.to_owned())
    })
}

/// Why the kernel refuses to create a map, for the errno it returned.
pub fn map_refusal(errno: i32) -> String {
    let why = ffi::strerror(errno);
    let hint = match errno {
        libc::E2BIG => "max_entries, the key or the value is larger than the kernel allows for this map kind",
        libc::ENOMEM => "not enough memory for max_entries entries (hash maps preallocate them all unless `@flags(no_prealloc)`)",
        libc::EINVAL => "this kernel does not support the map's kind, sizes or flags",
        _ => return load_errno_text(errno),
    };
    format!("{why} ({hint})")
}

/// Why the kernel says EPERM or EACCES to a BPF user; the runtime's errors.c says the same.
pub const PRIVILEGES: &str = "needs root, or CAP_BPF plus CAP_NET_ADMIN (xdp, tc, cgroup) or CAP_PERFMON (tracing); kernel lockdown or an LSM can refuse even root";

/// An errno from a BPF load, with the usual cause when it is a permission refusal.
fn load_errno_text(errno: i32) -> String {
    let why = ffi::strerror(errno);
    if matches!(errno, libc::EPERM | libc::EACCES) {
        format!("{why}; {PRIVILEGES}")
    } else {
        why
    }
}

fn report(p: &ffi::ProgInfo, errno: Option<i32>, messages: &[String]) -> ProgramReport {
    let kind = kind_of(&p.section);
    let verdict = match errno {
        None => Verdict::Accepted,
        Some(errno) => Verdict::Rejected {
            errno,
            last_line: complaint(&p.log)
                .map(|c| with_cpu_hint(&c))
                .unwrap_or_else(|| refusal(&p.name, &kind, errno, messages)),
        },
    };
    // Without a verifier log, libbpf's messages are the only account of what happened. Its hint
    // to raise `ulimit -l` on EPERM is obsolete since kernels account BPF memory to cgroups.
    let log = if errno.is_some() && p.log.trim().is_empty() {
        let relevant = messages.iter().filter(|m| !m.contains("'ulimit -l'"));
        relevant.map(String::as_str).collect::<Vec<_>>().join("\n")
    } else {
        p.log.clone()
    };
    ProgramReport {
        name: p.name.clone(),
        section: p.section.clone(),
        kind,
        verdict,
        insns: p.insns,
        processed: processed(&p.log),
        log,
    }
}

/// The verifier's complaint: the last log line that is not part of the closing statistics. An
/// endless loop is reported before the two states it compared, which would read as the reason.
fn complaint(log: &str) -> Option<String> {
    if let Some(l) = log
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("infinite loop detected"))
    {
        return Some(l.to_owned());
    }
    log.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !is_stats_line(l))
        .map(str::to_owned)
}

/// The verifier's words for an instruction it does not know name their likely cause, since
/// ksc's objects are well formed: a newer BPF cpu than the kernel implements (the runtime says
/// the same, runtime/src/unit.c).
fn with_cpu_hint(complaint: &str) -> String {
    if complaint.contains("uses reserved fields") || complaint.contains("unknown opcode") {
        format!("{complaint} (an instruction this kernel does not know: the object was built for a newer BPF cpu; --bpf-cpu=v4 needs Linux 6.6, v3 Linux 5.1)")
    } else {
        complaint.to_owned()
    }
}

fn is_stats_line(line: &str) -> bool {
    ["processed ", "verification time ", "stack depth "]
        .iter()
        .any(|p| line.starts_with(p))
}

/// Why a program without a verifier log failed: libbpf's own first complaint about it if libbpf
/// stopped before the bpf() call (e.g. an unknown attach target), else the kernel's refusal.
fn refusal(name: &str, kind: &str, errno: i32, messages: &[String]) -> String {
    if let Some(kfunc) = missing_kfunc(messages) {
        return format!("the kfunc `{kfunc}` is in neither the kernel's nor a loaded module's BTF; load the module that defines it first (§5.4)");
    }
    let prefix = format!("prog '{name}': ");
    let reached_kernel = messages
        .iter()
        .any(|m| m.contains("BPF program load failed"));
    let libbpf_reason = messages
        .iter()
        .find_map(|m| m.split_once(&prefix).map(|(_, why)| why.to_owned()));
    match libbpf_reason {
        Some(why) if !reached_kernel => why,
        _ => format!(
            "the kernel refused the {kind} program before verification: {}",
            program_errno_text(kind, errno)
        ),
    }
}

/// Program kinds the kernel runs through a BPF trampoline it builds at load time.
const TRAMPOLINE_KINDS: [&str; 5] = ["fentry", "fexit", "fmod_ret", "lsm", "struct_ops"];

/// As [`load_errno_text`], but an EPERM given to root for a trampoline program is the kernel's
/// own refusal, not a missing privilege: saying "needs root" to root sends users the wrong way.
fn program_errno_text(kind: &str, errno: i32) -> String {
    let is_root = unsafe { libc::geteuid() } == 0;
    if errno == libc::EPERM && is_root && TRAMPOLINE_KINDS.contains(&kind) {
        format!(
            "{}; ksc runs as root, so this kernel itself refuses {kind} programs (built without \
             the ftrace support BPF trampolines need, or locked down): load them on a kernel with it",
            ffi::strerror(errno)
        )
    } else {
        load_errno_text(errno)
    }
}

/// The kfunc libbpf could not resolve: "extern (func ksym) 'NAME': not found in kernel or module
/// BTFs" (libbpf pinned at 1.7); the whole object fails to load.
pub fn missing_kfunc(messages: &[String]) -> Option<String> {
    messages.iter().find_map(|m| {
        let (_, rest) = m.split_once("extern (func ksym) '")?;
        let (name, tail) = rest.split_once("': ")?;
        tail.starts_with("not found in kernel or module BTF")
            .then(|| name.to_owned())
    })
}

/// The verifier's "processed N insns (limit ...)" statistics figure.
fn processed(log: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix("processed ")?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

fn describe(errno: i32, messages: &[String]) -> String {
    let err = ffi::strerror(errno);
    if messages.is_empty() {
        err
    } else {
        format!("{err}: {}", messages.join("; "))
    }
}

/// The program kind from libbpf's section name: `tcx/ingress` → tc, `fentry.s/f` → fentry, ...
pub(crate) fn kind_of(section: &str) -> String {
    let head = section.split('/').next().unwrap_or(section);
    let head = head.split('.').next().unwrap_or(head);
    match head {
        "tcx" | "tc" | "classifier" => "tc",
        "tp" | "tracepoint" => "tracepoint",
        "raw_tp" | "raw_tracepoint" => "raw_tracepoint",
        "ksyscall" => "kprobe",
        "kretsyscall" => "kretprobe",
        other => other,
    }
    .to_owned()
}

/// Maps a verifier log back to source: the last `; <text> @ FILE:LINE` line-info annotation
/// before the failure (LLVM writes these from .BTF.ext line info), as (file, line, text).
pub fn log_source_location(log: &str) -> Option<(String, u32, String)> {
    log.lines().rev().find_map(|line| {
        let rest = line.trim_start().strip_prefix(';')?;
        // The last " @ " separates the location; the source text may contain " @ " itself.
        let (text, location) = rest.rsplit_once(" @ ")?;
        let (file, line_no) = location.trim_end().rsplit_once(':')?;
        let line_no = line_no.parse().ok()?;
        (!file.is_empty()).then(|| (file.to_owned(), line_no, text.trim().to_owned()))
    })
}

/// Whether the bpf() system call is usable (creates and closes a one-entry array map).
pub fn bpf_available() -> bool {
    ffi::probe_bpf().is_ok()
}

/// libbpf's account of the kernel refusing the object's BTF (it then loads without BTF), with
/// the last line of the kernel's BTF log before it, which names the offending type.
fn refused_btf(messages: &[String]) -> Option<String> {
    let lines: Vec<&str> = messages.iter().flat_map(|m| m.lines()).collect();
    let at = lines
        .iter()
        .position(|l| l.contains("Error loading .BTF into kernel"))?;
    let reason = lines[..at]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| !l.is_empty() && !l.starts_with("libbpf:"))
        .unwrap_or(lines[at].trim());
    Some(reason.to_string())
}
