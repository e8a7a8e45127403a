//! Generates the IR's op table, typed builders and views, verifier hook dispatch and the op
//! reference from the declarative specs in `ir-specs/*.ops` (see ir-specs/README.md), and builds
//! the userspace runtime that host executables link with.

#[path = "build/opgen.rs"]
mod opgen;
#[path = "build/runtime.rs"]
mod runtime;

fn main() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Err(e) = opgen::generate(std::path::Path::new("ir-specs"), &out) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    // A position-dependent ksc: the static LLVM inside it would otherwise need ~120k relative
    // relocations (and the page faults they cause) at every start, which dominates compile time.
    println!("cargo:rustc-link-arg-bins=-no-pie");
    if let Err(e) = runtime::build(&out) {
        eprintln!("error: building the runtime: {e}");
        std::process::exit(1);
    }
}
