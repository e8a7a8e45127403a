//! What both benchmarks share: where ksc, the C twins and their build inputs are, and how the
//! twins are compiled (as libbpf users build: clang-19 against a generated vmlinux.h).

#![allow(dead_code)] // each benchmark uses a part

use std::path::{Path, PathBuf};
use std::process::Command;

/// The programs with a hand-written C twin in benches/c/ and a scenario in benches/scenarios/.
pub fn twins(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("benches/scenarios"))
        .expect("benches/scenarios")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".json")
                .map(str::to_string)
        })
        .filter(|n| selected(n))
        .collect();
    names.sort();
    names
}

/// Set to a comma-separated list of examples to measure only those (the results files are then
/// left alone: they always hold a full run).
const ONLY: &str = "KSC_BENCH_ONLY";

/// Whether the example is measured in this run.
pub fn selected(example: &str) -> bool {
    std::env::var(ONLY).map_or(true, |only| only.split(',').any(|n| n.trim() == example))
}

/// The `.ks` source of a benchmarked program: the corpus written for the benchmark
/// (`benches/programs/`) or, for the original nine, the example of that name.
pub fn source(root: &Path, name: &str) -> PathBuf {
    let corpus = root.join("benches/programs").join(format!("{name}.ks"));
    if corpus.exists() {
        corpus
    } else {
        root.join("examples").join(format!("{name}.ks"))
    }
}

/// The checkout whose programs, twins and ksc are measured: this one, or `KSC_BENCH_ROOT` (a
/// second checkout with its own `target/release`, so a built benchmark can be pointed at it).
pub fn root() -> PathBuf {
    std::env::var_os("KSC_BENCH_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The release ksc, which the benchmarks measure as users run it.
pub fn ksc(root: &Path) -> PathBuf {
    let ksc = root.join("target/release/ksc");
    assert!(ksc.exists(), "build ksc first: cargo build --release");
    ksc
}

/// The scratch directory of the benchmarks (object files, vmlinux.h).
pub fn work_dir(root: &Path) -> PathBuf {
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    dir
}

/// libbpf's headers (`bpf/bpf_helpers.h`, …) from the libbpf-sys build.
pub fn libbpf_include(root: &Path) -> PathBuf {
    let build = root.join("target/release/build");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&build)
        .expect("target/release/build")
        .filter_map(|e| e.ok().map(|e| e.path().join("out/include")))
        .filter(|p| p.join("bpf/bpf_helpers.h").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("libbpf-sys headers in target/release/build (cargo build --release first)")
}

/// `vmlinux.h` of the running kernel, generated once into the work directory.
pub fn vmlinux_h(work: &Path) -> PathBuf {
    let header = work.join("vmlinux.h");
    if !header.exists() {
        let out = Command::new("bpftool")
            .args([
                "btf",
                "dump",
                "file",
                "/sys/kernel/btf/vmlinux",
                "format",
                "c",
            ])
            .output()
            .expect("bpftool runs");
        assert!(
            out.status.success(),
            "bpftool btf dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&header, out.stdout).expect("write vmlinux.h");
    }
    header
}

/// The clang-19 command that builds a C twin, as a libbpf developer would.
pub fn clang_command(root: &Path, work: &Path, name: &str, out: &Path) -> Command {
    let mut c = Command::new("clang-19");
    c.args(["-target", "bpf", "-O2", "-g", "-mcpu=v3"])
        .arg("-I")
        .arg(work)
        .arg("-I")
        .arg(libbpf_include(root))
        .arg("-c")
        .arg(root.join("benches/c").join(format!("{name}.bpf.c")))
        .arg("-o")
        .arg(out);
    c
}

/// Runs a command that must succeed.
pub fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The middle value, or the mean of the two middle values of an even count.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n.is_multiple_of(2) {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    } else {
        v[n / 2]
    }
}

pub fn geomean(v: &[f64]) -> f64 {
    (v.iter().map(|x| x.ln()).sum::<f64>() / v.len().max(1) as f64).exp()
}

/// Writes `benches/results/NAME.md` (the table, then the summary line) and `NAME.csv`, and prints
/// the summary.
pub fn write_results(root: &Path, name: &str, mut md: String, csv: &str, summary: &str) {
    if std::env::var_os(ONLY).is_some() {
        println!("{md}\n{summary}\n({ONLY} is set: benches/results/ left as it was)");
        return;
    }
    md.push_str(&format!("\n{summary}\n"));
    let dir = root.join("benches/results");
    std::fs::create_dir_all(&dir).expect("benches/results");
    std::fs::write(dir.join(format!("{name}.md")), md).expect("write the Markdown results");
    std::fs::write(dir.join(format!("{name}.csv")), csv).expect("write the CSV results");
    println!("{summary}");
}
