//! Generated-code benchmark: every program with a hand-written C twin (benches/c/, built by
//! clang-19 -O2 -mcpu=v3) against ksc's object for it. The programs are the packet-processing
//! examples and the corpus of benches/programs/ (written for this benchmark, each twin
//! independently of ksc's output). Both run through BPF_PROG_TEST_RUN on the packets of
//! benches/scenarios/<program>.json.
//!
//! First the two must agree: on fresh objects with the scenario's map setup, every packet gives
//! the same verdict and output packet, and the maps the scenario names end with equal contents.
//! Then, in each round (`KSC_BENCH_ROUNDS`, default 6), every packet runs `KSC_BENCH_REPEAT`
//! times (default 1,000,000) under one object and then the other, each object first in every
//! other round; an example's ns/run is the median over the rounds of the mean over its packets,
//! and its ratio the median over the rounds of each round's ksc ÷ C, so that a machine slower
//! in one round than another moves both sides of that round's ratio alike.
//! `KSC_BENCH_PER_PACKET=1` also prints each packet's figures. Instruction counts: in the object, after the kernel's rewrite (xlated) and as processed by
//! the verifier, summed over the object's programs.
//!
//! `cargo bench --bench codegen` (root, a kernel with BPF); writes benches/results/codegen.md and
//! codegen.csv and prints the geometric-mean ratios ksc ÷ C.

mod common;

use kernelscript::kernel::Loaded;
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;
use std::process::Command;

struct Scenario {
    program: String,
    setup: Vec<(String, Vec<u8>, Vec<u8>)>,
    packets: Vec<(String, Vec<u8>)>,
    compare_maps: Vec<String>,
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex bytes"))
        .collect()
}

fn scenario(path: &Path) -> Scenario {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("scenario"))
        .expect("scenario JSON");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    Scenario {
        program: text(&v["program"]),
        setup: list("setup")
            .iter()
            .map(|e| {
                (
                    text(&e["map"]),
                    hex(&text(&e["key"])),
                    hex(&text(&e["value"])),
                )
            })
            .collect(),
        packets: list("packets")
            .iter()
            .map(|p| (text(&p["name"]), hex(&text(&p["hex"]))))
            .collect(),
        compare_maps: list("compare_maps").iter().map(text).collect(),
    }
}

/// The tail-call table ksc assigned (`ks.prog_array {programs = [...]}` in its bpf-ir), which the
/// C twin mirrors.
fn prog_array(ksc: &Path, source: &Path) -> Vec<String> {
    let out = Command::new(ksc)
        .arg("--emit=bpf-ir")
        .arg(source)
        .output()
        .expect("ksc runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find(|l| l.contains("ks.prog_array")) else {
        return Vec::new();
    };
    let list = line
        .split("programs = [")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or("");
    list.split(',')
        .map(|p| p.trim().trim_start_matches('@').to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Program names of an object, from its symbol table (the functions in program sections).
fn programs(object: &Path) -> Vec<String> {
    let out = Command::new("llvm-objdump-19")
        .arg("-t")
        .arg(object)
        .output()
        .expect("llvm-objdump-19 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut names: Vec<String> = text
        .lines()
        .filter(|l| l.contains(" F ") && !l.contains(" .text"))
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The map of `loaded` that scenarios call `map`. They name a config's storage as the C twins
/// keep it, the one-entry array `C_config_map`; ksc keeps config `C` as the only variable of
/// section `.data.C`, which libbpf makes a one-entry array of the same value (§12.3).
fn storage(loaded: &Loaded, map: &str) -> String {
    match map.strip_suffix("_config_map") {
        Some(config) if !loaded.has_map(map) => format!(".data.{config}"),
        _ => map.to_string(),
    }
}

fn load(object: &[u8], name: &str, s: &Scenario, table: &[String]) -> Loaded {
    let loaded = Loaded::load(object, name).unwrap_or_else(|e| panic!("{name} loads: {e:?}"));
    for (map, key, value) in &s.setup {
        loaded
            .map_update(&storage(&loaded, map), key, value)
            .unwrap_or_else(|e| panic!("{name}: setup of {map}: {e}"));
    }
    if !table.is_empty() {
        let names: Vec<&str> = table.iter().map(String::as_str).collect();
        loaded
            .fill_prog_array(&names)
            .unwrap_or_else(|e| panic!("{name}: prog_array: {e}"));
    }
    loaded
}

/// The two objects agree on every packet and on the compared maps.
fn check_equivalent(name: &str, ksc_obj: &[u8], c_obj: &[u8], s: &Scenario, table: &[String]) {
    let (k, c) = (load(ksc_obj, name, s, table), load(c_obj, name, s, table));
    for (label, packet) in &s.packets {
        let (rk, rc) = (
            k.run(&s.program, packet).expect("ksc run"),
            c.run(&s.program, packet).expect("C run"),
        );
        assert_eq!(
            rk.retval, rc.retval,
            "{name}/{label}: verdicts differ (ksc {}, C {})",
            rk.retval, rc.retval
        );
        assert_eq!(rk.data, rc.data, "{name}/{label}: output packets differ");
    }
    for map in &s.compare_maps {
        let (mk, mc) = (
            k.map_entries(&storage(&k, map)).expect("ksc map"),
            c.map_entries(&storage(&c, map)).expect("C map"),
        );
        assert_eq!(mk, mc, "{name}: map {map} differs after the packets");
    }
}

struct Row {
    name: String,
    ns: (f64, f64),
    /// The median of the rounds' ratios ksc ÷ C.
    ns_ratio: f64,
    object: (u32, u32),
    xlated: (u32, u32),
    processed: (u32, u32),
}

fn counts(loaded: &Loaded, progs: &[String]) -> (u32, u32, u32) {
    progs
        .iter()
        .filter_map(|p| loaded.program_counts(p).ok())
        .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
}

extern "C" {
    fn sched_setaffinity(pid: i32, size: usize, mask: *const u64) -> i32;
}

/// Runs everything on CPU 0: per-CPU map slots then compare equal between the objects, and the
/// timings do not move between cores.
fn pin_to_cpu0() {
    let mask: u64 = 1;
    // SAFETY: a valid one-word CPU mask for the calling thread (pid 0).
    let ret = unsafe { sched_setaffinity(0, std::mem::size_of::<u64>(), &mask) };
    assert_eq!(ret, 0, "sched_setaffinity");
}

fn main() {
    pin_to_cpu0();
    let root = common::root();
    let ksc = common::ksc(&root);
    let work = common::work_dir(&root);
    common::vmlinux_h(&work);
    let repeat: u32 = std::env::var("KSC_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = std::env::var("KSC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let mut rows = Vec::new();
    for name in common::twins(&root) {
        let s = scenario(&root.join(format!("benches/scenarios/{name}.json")));
        let source = common::source(&root, &name);
        let (ksc_path, c_path) = (
            work.join(format!("{name}.ksc.bpf.o")),
            work.join(format!("{name}.c.bpf.o")),
        );
        let mut k = Command::new(&ksc);
        k.arg("--emit=obj").arg("-o").arg(&ksc_path).arg(&source);
        common::run(k, &format!("ksc {name}"));
        common::run(
            common::clang_command(&root, &work, &name, &c_path),
            &format!("clang-19 {name}"),
        );
        let (ksc_obj, c_obj) = (
            std::fs::read(&ksc_path).expect("ksc object"),
            std::fs::read(&c_path).expect("C object"),
        );
        let table = prog_array(&ksc, &source);
        check_equivalent(&name, &ksc_obj, &c_obj, &s, &table);

        let (k, c) = (
            load(&ksc_obj, &name, &s, &table),
            load(&c_obj, &name, &s, &table),
        );
        // A round runs every packet once per object; its figure is the mean over the packets. The
        // kernel times whole nanoseconds, so a per-packet median would round each packet alike in
        // every round; the mean of a round spreads that rounding over the packets first.
        let time = |obj: &Loaded, label: &str, packet: &[u8]| {
            obj.run_repeated(&s.program, packet, repeat)
                .unwrap_or_else(|e| panic!("{name}/{label}: {e}"))
                .1 as f64
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let (mut rounds_k, mut rounds_c) = (Vec::new(), Vec::new());
        let mut per_packet = vec![(Vec::new(), Vec::new()); s.packets.len()];
        for round in 0..rounds {
            let (mut tk, mut tc) = (Vec::new(), Vec::new());
            for (label, packet) in &s.packets {
                // Each object goes first in every other round, so neither gains from its position.
                if round % 2 == 0 {
                    tk.push(time(&k, label, packet));
                    tc.push(time(&c, label, packet));
                } else {
                    tc.push(time(&c, label, packet));
                    tk.push(time(&k, label, packet));
                }
            }
            rounds_k.push(mean(&tk));
            rounds_c.push(mean(&tc));
            for (i, (k, c)) in tk.into_iter().zip(tc).enumerate() {
                per_packet[i].0.push(k);
                per_packet[i].1.push(c);
            }
        }
        if std::env::var_os(PER_PACKET).is_some() {
            for ((label, _), (k, c)) in s.packets.iter().zip(per_packet) {
                let (k, c) = (common::median(k), common::median(c));
                println!(
                    "  {label:<28} ns/run {k:>7.1} vs {c:>7.1}  {:.2}",
                    ratio(k, c)
                );
            }
        }
        let (ck, cc) = (
            counts(&k, &programs(&ksc_path)),
            counts(&c, &programs(&c_path)),
        );
        let round_ratios = rounds_k.iter().zip(&rounds_c).map(|(k, c)| ratio(*k, *c));
        let row = Row {
            name: name.clone(),
            ns_ratio: common::median(round_ratios.collect()),
            ns: (common::median(rounds_k), common::median(rounds_c)),
            object: (ck.0, cc.0),
            xlated: (ck.1, cc.1),
            processed: (ck.2, cc.2),
        };
        println!(
            "{:<20} ns/run {:>7.1} vs {:>7.1}   xlated {:>5} vs {:>5}   processed {:>6} vs {:>6}",
            row.name,
            row.ns.0,
            row.ns.1,
            row.xlated.0,
            row.xlated.1,
            row.processed.0,
            row.processed.1
        );
        rows.push(row);
    }
    report(&root, &rows, repeat, rounds);
}

/// Set to print each packet's median ns/run under both objects, to see which paths differ.
const PER_PACKET: &str = "KSC_BENCH_PER_PACKET";

/// One of the three figures compared, as a ratio ksc ÷ C of a row.
type Metric = fn(&Row) -> f64;

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

fn report(root: &Path, rows: &[Row], repeat: u32, rounds: usize) {
    let mut md = format!("# Generated code: ksc against hand-written C\n\nBPF_PROG_TEST_RUN, {repeat} runs per round, {rounds} alternating rounds, medians (ratio: of the rounds' ratios); `cargo bench --bench codegen`.\n\n| example | ns/run ksc | ns/run C | ratio | insns ksc | insns C | xlated ksc | xlated C | ratio | processed ksc | processed C |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut csv = String::from("example,ns_ksc,ns_c,object_insns_ksc,object_insns_c,xlated_ksc,xlated_c,processed_ksc,processed_c\n");
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {:.1} | {:.1} | {:.2} | {} | {} | {} | {} | {:.2} | {} | {} |",
            r.name,
            r.ns.0,
            r.ns.1,
            r.ns_ratio,
            r.object.0,
            r.object.1,
            r.xlated.0,
            r.xlated.1,
            ratio(r.xlated.0 as f64, r.xlated.1 as f64),
            r.processed.0,
            r.processed.1
        );
        let _ = writeln!(
            csv,
            "{},{:.2},{:.2},{},{},{},{},{},{}",
            r.name,
            r.ns.0,
            r.ns.1,
            r.object.0,
            r.object.1,
            r.xlated.0,
            r.xlated.1,
            r.processed.0,
            r.processed.1
        );
    }
    // Issue 20's targets: each geometric mean at most 1.00, no program above 1.10 on any metric.
    let metrics: [(&str, Metric); 3] = [
        ("ns/run", |r| r.ns_ratio),
        ("xlated instructions", |r| {
            ratio(r.xlated.0 as f64, r.xlated.1 as f64)
        }),
        ("verifier-processed", |r| {
            ratio(r.processed.0 as f64, r.processed.1 as f64)
        }),
    ];
    let mut summary = format!(
        "geometric mean ksc ÷ C over {} programs (target ≤ 1.00 each):",
        rows.len()
    );
    let mut outliers = String::new();
    for (metric, of) in metrics {
        let ratios: Vec<f64> = rows.iter().map(of).collect();
        let _ = write!(summary, " {metric} {:.3},", common::geomean(&ratios));
        for (r, x) in rows.iter().zip(&ratios) {
            if *x > 1.10 {
                let _ = write!(outliers, " {} {metric} {x:.2};", r.name);
            }
        }
    }
    summary.pop();
    if outliers.is_empty() {
        summary.push_str("\nno program above 1.10 on any metric");
    } else {
        summary.push_str(&format!("\nabove 1.10:{outliers}"));
    }
    common::write_results(root, "codegen", md, &csv, &summary);
}
