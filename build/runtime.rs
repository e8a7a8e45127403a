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
    python(&include, out)?;
    // ksc loads objects itself (`verify`, `test`) and must adapt them to the kernel exactly as
    // the runtime does, so it links the runtime's kernel fallbacks too.
    c_build(&include, out)
        .file("runtime/src/kernel_compat.c")
        .try_compile("ksrt_kernel_compat")
        .map_err(|e| e.to_string())
}

/// The Python bridge (`import m from "x.py"`), `libksrt_python.a`, against the system's
/// libpython3 (`pkg-config python3-embed`, Debian's libpython3-dev). Without it ksc still builds;
/// linking a unit that imports a `.py` file then says what to install (KSC_PYTHON_LIBS empty).
fn python(include: &Path, out: &Path) -> Result<(), String> {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let query = |what: &str| {
        std::process::Command::new("pkg-config")
            .args([what, "python3-embed"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let archive = out.join("libksrt_python.a");
    let (Some(cflags), Some(libs)) = (query("--cflags"), query("--libs")) else {
        println!("cargo:warning=pkg-config python3-embed failed: units importing .py files will not link (install libpython3-dev)");
        std::fs::write(&archive, b"").map_err(|e| e.to_string())?;
        println!("cargo:rustc-env=KSC_PYTHON_LIBS=");
        return Ok(());
    };
    let mut build = c_build(include, out);
    for flag in cflags.split_whitespace() {
        build.flag(flag);
    }
    build
        .file("runtime/python/py.c")
        .try_compile("ksrt_python")
        .map_err(|e| e.to_string())?;
    println!("cargo:rustc-env=KSC_PYTHON_LIBS={libs}");
    Ok(())
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
