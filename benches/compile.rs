//! Compile-time benchmark: `.ks` → `.bpf.o` (`ksc --emit=obj`) and `.ks` → executable
//! (`ksc build`) for every example, one process per compile as users run it, against clang-19 on
//! the hand-written C twins of the packet examples (benches/c/, built with vmlinux.h as libbpf
//! users build). Median wall time of repeated runs and peak memory (maximum resident set of the
//! compiler process). `cargo bench --bench compile`; writes benches/results/compile.md and .csv.
//! Never a timed test.
//!
//! (One process per compile also matters for correctness: LLVM's BPF CO-RE lowering keeps
//! process-wide state, so ksc compiles one module with kernel struct reads per process.)

mod common;

use std::fmt::Write;
use std::process::Command;
use std::time::Instant;

const RUNS: usize = 15;

/// `struct rusage` of x86-64 Linux: two timevals, then `ru_maxrss` (KiB) and 13 more longs.
#[repr(C)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    maxrss: i64,
    rest: [i64; 13],
}

extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}
const RUSAGE_CHILDREN: i32 = -1;

/// Set in the environment of the process that measures one compile's peak memory.
const MEASURE: &str = "KSC_BENCH_MEASURE_CHILD";

fn main() {
    if std::env::var_os(MEASURE).is_some() {
        return measure_child();
    }
    let root = common::root();
    let ksc = common::ksc(&root);
    let work = common::work_dir(&root);
    common::vmlinux_h(&work);
    let twins = common::twins(&root);
    let mut examples: Vec<String> = std::fs::read_dir(root.join("examples"))
        .expect("examples")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".ks")
                .map(str::to_string)
        })
        .filter(|n| common::selected(n))
        .collect();
    examples.sort();
    let mut md = String::from("# Compile time and peak memory\n\nMedian of 15 runs, one process per compile; peak = maximum resident set of the compiler.\n\n| example | ksc → .bpf.o ms | peak MB | ksc → executable ms | peak MB | clang-19 on the C twin ms | peak MB |\n|---|---:|---:|---:|---:|---:|---:|\n");
    let mut csv = String::from(
        "example,ksc_obj_ms,ksc_obj_peak_mb,ksc_exe_ms,ksc_exe_peak_mb,clang_ms,clang_peak_mb\n",
    );
    println!(
        "{:<20} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8}",
        "example", "obj ms", "peak MB", "exe ms", "peak MB", "clang ms", "peak MB"
    );
    let (mut worst_obj, mut worst_peak) = (0f64, 0f64);
    for name in &examples {
        let source = root.join(format!("examples/{name}.ks"));
        let obj = || {
            let mut c = Command::new(&ksc);
            c.arg("--emit=obj")
                .arg("-o")
                .arg(work.join("compile-bench.o"))
                .arg(&source);
            c
        };
        let exe = || {
            let mut c = Command::new(&ksc);
            c.arg("--target=bpf,host")
                .arg("-o")
                .arg(work.join("compile-bench-exe"))
                .arg(&source);
            c
        };
        let (obj_ms, obj_mb) = (time(obj), peak_mb(obj()));
        // A unit with kfuncs also writes module source, which `--target=bpf,host` leaves out.
        let (exe_ms, exe_mb) = (time(exe), peak_mb(exe()));
        let clang = twins.contains(name).then(|| {
            let c = || common::clang_command(&root, &work, name, &work.join("compile-bench-c.o"));
            (time(c), peak_mb(c()))
        });
        worst_obj = worst_obj.max(obj_ms);
        worst_peak = worst_peak.max(obj_mb).max(exe_mb);
        let (cms, cmb) = clang.map_or(("".to_string(), "".to_string()), |(t, m)| {
            (format!("{t:.1}"), format!("{m:.1}"))
        });
        println!("{name:<20} {obj_ms:>10.1} {obj_mb:>8.1} {exe_ms:>10.1} {exe_mb:>8.1} {cms:>10} {cmb:>8}");
        let _ = writeln!(
            md,
            "| {name} | {obj_ms:.1} | {obj_mb:.1} | {exe_ms:.1} | {exe_mb:.1} | {cms} | {cmb} |"
        );
        let _ = writeln!(
            csv,
            "{name},{obj_ms:.2},{obj_mb:.1},{exe_ms:.2},{exe_mb:.1},{cms},{cmb}"
        );
    }
    let summary = format!("slowest .ks → .bpf.o: {worst_obj:.1} ms (target ≤ 20 ms); highest peak memory: {worst_peak:.1} MB (target ≤ 100 MB)");
    common::write_results(&root, "compile", md, &csv, &summary);
}

/// Median wall time in milliseconds of RUNS runs of a command that must succeed.
fn time(make: impl Fn() -> Command) -> f64 {
    let times = (0..RUNS)
        .map(|_| {
            let mut c = make();
            let start = Instant::now();
            let out = c.output().expect("compiler runs");
            let ms = start.elapsed().as_secs_f64() * 1e3;
            assert!(
                out.status.success(),
                "{:?}: {}",
                c,
                String::from_utf8_lossy(&out.stderr)
            );
            ms
        })
        .collect();
    common::median(times)
}

/// Peak resident memory of one run, measured by a fresh process of this benchmark whose only
/// child is the compiler (RUSAGE_CHILDREN is the maximum over all children ever waited for).
fn peak_mb(c: Command) -> f64 {
    let me = std::env::current_exe().expect("benchmark path");
    let out = Command::new(me)
        .env(MEASURE, "1")
        .arg(c.get_program())
        .args(c.get_args())
        .output()
        .expect("measuring process runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse::<f64>()
        .map(|kib| kib / 1024.0)
        .unwrap_or_else(|_| panic!("peak memory of {c:?}: {text}"))
}

fn measure_child() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = Command::new(&args[0])
        .args(&args[1..])
        .status()
        .expect("compiler runs");
    assert!(status.success());
    let mut usage = Rusage {
        utime: [0; 2],
        stime: [0; 2],
        maxrss: 0,
        rest: [0; 13],
    };
    // SAFETY: `usage` is a valid, writable struct rusage of this platform's layout.
    let ret = unsafe { getrusage(RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(ret, 0);
    println!("{}", usage.maxrss);
}
