//! The running kernel: loading BPF objects through libbpf, the verifier's verdicts and logs
//! mapped back to `.ks` lines (`ksc verify`, and later `ksc test`).
