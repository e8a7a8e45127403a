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
    static_libstdcxx(&out);
    if let Err(e) = runtime::build(&out) {
        eprintln!("error: building the runtime: {e}");
        std::process::exit(1);
    }
}

/// Links the C++ runtime LLVM needs statically. Dynamically linked, each of LLVM's ~3,600 RTTI
/// records and pure-virtual vtable slots is a relocation against libstdc++ that the loader
/// resolves by name at every start, writing (and so copying) the page it sits on. llvm-sys asks
/// for `-lstdc++`; a search directory holding only the archive, searched before the system's,
/// makes the linker take the archive. Where the compiler has no archive, the shared library stays.
fn static_libstdcxx(out: &std::path::Path) {
    let archive = std::process::Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .arg("-print-file-name=libstdc++.a")
        .output()
        .ok()
        .map(|o| std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_absolute() && p.is_file());
    let Some(archive) = archive else { return };
    let dir = out.join("static-cxx");
    let link = dir.join("libstdc++.a");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::remove_file(&link);
    if std::os::unix::fs::symlink(&archive, &link).is_ok() {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
}
