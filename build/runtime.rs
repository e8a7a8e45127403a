//! Builds the userspace runtime (`runtime/src/*.c`) into `libksrt.a` and puts libbpf's static
//! library next to it in OUT_DIR. ksc embeds both and hands them to the system linker when it
//! links a host executable, so an installed ksc needs no files besides itself.

use std::path::{Path, PathBuf};

pub fn build(out: &Path) -> Result<(), String> {
    println!("cargo:rerun-if-changed=runtime");
    println!("cargo:rerun-if-env-changed=KSC_WERROR");
    // libbpf-sys (links = "bpf") tells dependents where its headers are; libbpf.a sits beside them.
    let include = PathBuf::from(
        std::env::var("DEP_BPF_INCLUDE")
            .map_err(|_| "libbpf-sys did not report its include directory")?,
    );
    let libbpf = include
        .parent()
        .ok_or("libbpf include directory has no parent")?
        .join("libbpf.a");
    std::fs::copy(&libbpf, out.join("libbpf.a"))
        .map_err(|e| format!("cannot copy {}: {e}", libbpf.display()))?;
    let mut sources: Vec<PathBuf> = std::fs::read_dir("runtime/src")
        .map_err(|e| format!("runtime/src: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    c_build(&include, out)
        .files(&sources)
        // The archive is for the executables ksc links, not for ksc itself.
        .cargo_metadata(false)
        .try_compile("ksrt")
        .map_err(|e| e.to_string())?;
    // ksc loads objects itself (`verify`, `test`) and must adapt them to the kernel exactly as
    // the runtime does, so it links the runtime's kernel fallbacks too.
    c_build(&include, out)
        .file("runtime/src/kernel_compat.c")
        .try_compile("ksrt_kernel_compat")
        .map_err(|e| e.to_string())
}

fn c_build(include: &Path, out: &Path) -> cc::Build {
    let mut build = cc::Build::new();
    build
        .include("runtime")
        .include(include)
        .define("_GNU_SOURCE", None)
        .flag("-std=gnu11")
        .flag("-fPIC")
        .warnings(true)
        .extra_warnings(true)
        // Warnings fail CI (KSC_WERROR=1), but never a user's `cargo install` with a newer compiler.
        .warnings_into_errors(std::env::var_os("KSC_WERROR").is_some())
        .opt_level(2)
        .debug(true)
        .out_dir(out);
    build
}
