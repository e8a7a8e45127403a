//! Scaling benchmark: how `ksc build` grows with the size of a unit. Generated programs of 1k,
//! 10k and 100k small functions, else-if chains and match expressions (dense cases, and sparse
//! ones a thousand apart), and of one function of 10k and 100k statements; wall time and peak memory (maximum resident
//! set of the compiler process) of one compile each. Every stage of ksc should stay near-linear.
//! `cargo bench --bench scaling`; writes benches/results/scaling.md. Never a timed test.

mod common;

use std::fmt::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn main() {
    let root = common::root();
    let ksc = common::ksc(&root);
    let dir = common::work_dir(&root).join("scaling");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let cases: Vec<(String, String)> = [1_000, 10_000, 100_000]
        .iter()
        .map(|&n| (format!("{n} functions"), functions(n)))
        .chain(
            [1_000, 10_000, 100_000]
                .iter()
                .map(|&n| (format!("{n}-branch else-if chain"), else_if_chain(n))),
        )
        .chain(
            [1_000, 10_000, 100_000]
                .iter()
                .map(|&n| (format!("{n}-arm match"), match_arms(n, 1))),
        )
        .chain(
            [10_000, 100_000]
                .iter()
                .map(|&n| (format!("{n}-arm sparse match"), match_arms(n, 1000))),
        )
        .chain(
            [10_000, 100_000]
                .iter()
                .map(|&n| (format!("{n} statements"), statements(n))),
        )
        .collect();
    let mut table = String::from(
        "# ksc build: scaling\n\nOne compile of each generated unit (`ksc build`), wall time and peak \
         memory of the compiler process, on this machine. Regenerate with \
         `cargo bench --bench scaling`.\n\n| unit | source | time | peak memory |\n|---|---:|---:|---:|\n",
    );
    for (name, source) in &cases {
        let file = dir.join("unit.ks");
        std::fs::write(&file, source).expect("write the generated unit");
        let (secs, kib) = compile(&ksc, &file, &dir.join("out"));
        let line = format!(
            "| {name} | {} KiB | {secs:.2} s | {} MiB |",
            source.len() / 1024,
            kib / 1024
        );
        println!("{line}");
        writeln!(table, "{line}").unwrap();
    }
    std::fs::write(root.join("benches/results/scaling.md"), table).expect("write the results");
}

/// Wall seconds and peak resident KiB of `ksc build FILE -o OUT`.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its resource usage
fn compile(ksc: &Path, file: &Path, out: &Path) -> (f64, i64) {
    let start = Instant::now();
    let child = Command::new(ksc)
        .arg("build")
        .arg(file)
        .arg("-o")
        .arg(out)
        .spawn()
        .expect("run ksc");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for the child we started.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let secs = start.elapsed().as_secs_f64();
    assert!(
        pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "ksc build {} failed",
        file.display()
    );
    (secs, usage.ru_maxrss)
}

fn functions(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        writeln!(s, "fn f{i}(x: u32) -> u32 {{\n    return x + {i}\n}}\n").unwrap();
    }
    s.push_str("fn main() -> i32 {\n    var s: u32 = 0\n");
    for i in (0..n).step_by((n / 100).max(1)) {
        writeln!(s, "    s = s + f{i}(s)").unwrap();
    }
    s.push_str("    return s as i32\n}\n");
    s
}

fn else_if_chain(n: usize) -> String {
    let mut s = String::from(
        "fn pick(x: u32) -> u32 {\n    var r: u32 = 0\n    if (x == 0) {\n        r = 1\n    }",
    );
    for i in 1..n {
        write!(s, " else if (x == {i}) {{\n        r = {}\n    }}", i * 3).unwrap();
    }
    s.push_str("\n    return r\n}\n\nfn main() -> i32 {\n    return pick(3) as i32\n}\n");
    s
}

/// A match of `n` arms whose cases are `stride` apart.
fn match_arms(n: usize, stride: usize) -> String {
    let mut s = String::from("fn pick(x: u32) -> u32 {\n    return match (x) {\n");
    for i in 0..n {
        writeln!(s, "        {}: {},", i * stride, i * 7).unwrap();
    }
    s.push_str(
        "        default: 0,\n    }\n}\n\nfn main() -> i32 {\n    return pick(3) as i32\n}\n",
    );
    s
}

fn statements(n: usize) -> String {
    let mut s = String::from("fn main() -> i32 {\n    var s: u64 = 0\n");
    for i in 0..n {
        writeln!(s, "    s = s + {i}").unwrap();
    }
    s.push_str("    return s as i32\n}\n");
    s
}
