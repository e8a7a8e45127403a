//! Compile-time benchmark: `ksc --emit=obj` (the whole pipeline, one process per compile, as
//! users run it) on examples, median of repeated runs. `cargo bench --bench compile`; not a timed
//! test. (One process per compile also matters for correctness: LLVM's BPF CO-RE lowering keeps
//! process-wide state, so ksc compiles one module with kernel struct reads per process.)

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const RUNS: usize = 15;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ksc = root.join("target/release/ksc");
    assert!(ksc.exists(), "build ksc first: cargo build --release");
    let examples = ["xdp_firewall", "proto_counters", "tc_egress_guard", "xdp_pipeline", "sched_switch_count", "exec_snoop", "dns_guard"];
    let out = std::env::temp_dir().join("ksc-bench.o");
    println!("{:<22} {:>10} {:>10}", "example", "median ms", "max ms");
    for name in examples {
        let source = root.join("examples").join(format!("{name}.ks"));
        let mut times: Vec<f64> = (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let status = Command::new(&ksc).arg("--emit=obj").arg("-o").arg(&out).arg(&source).status().expect("ksc runs");
                assert!(status.success(), "{name} compiles");
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!("{:<22} {:>10.2} {:>10.2}", name, times[RUNS / 2], times[RUNS - 1]);
    }
}
