//! Linking: the host object, the runtime library and libbpf become one executable. Both archives
//! are compiled into ksc itself (build.rs), written to a private temporary directory for the link
//! and removed afterwards, so an installed ksc links from any directory with no other files. The
//! system C compiler drives the link (`$CC`, else `cc`), which brings the C library and start
//! files; libbpf needs libelf and zlib, the only shared libraries beyond libc.

use std::path::Path;
use std::process::Command;

const RUNTIME: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libksrt.a"));
const LIBBPF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libbpf.a"));
/// The Python bridge and the linker flags of the libpython3 it was built against (empty: this
/// ksc was built without libpython3-dev).
const PYTHON: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libksrt_python.a"));
const PYTHON_LIBS: &str = env!("KSC_PYTHON_LIBS");

/// Why linking failed.
#[derive(Debug)]
pub enum LinkError {
    /// The machine refused: the output cannot be written (permissions, a full or read-only disk),
    /// the C compiler or libelf/zlib is missing. The user can fix it; the message says how.
    Environment(String),
    /// The linker rejected what ksc produced: a compiler bug.
    Internal(String),
}

/// A new directory `$TMPDIR/PREFIX*` that only its owner can enter (0700, whatever the umask),
/// removed when dropped.
pub fn private_tempdir(prefix: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
}

/// Links `object` (a native relocatable object from the host back end) into the executable `out`;
/// with `python` (the unit imports a `.py` file), the Python bridge and libpython3 too.
pub fn link_executable(object: &[u8], out: &Path, python: bool) -> Result<(), LinkError> {
    if python && (PYTHON.is_empty() || PYTHON_LIBS.is_empty()) {
        return Err(LinkError::Environment(
            "this ksc was built without libpython3 (pkg-config python3-embed failed), which `import … from \"x.py\"` needs: install libpython3-dev and rebuild ksc".into(),
        ));
    }
    let dir = private_tempdir("ksc-link-")
        .map_err(|e| LinkError::Environment(format!("cannot create a temporary directory: {e}")))?;
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).map(|_| p).map_err(|e| {
            LinkError::Environment(format!(
                "cannot write {} for linking: {e}",
                dir.path().join(name).display()
            ))
        })
    };
    let obj = write("unit.o", object)?;
    let runtime = write("libksrt.a", RUNTIME)?;
    let libbpf = write("libbpf.a", LIBBPF)?;
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let mut command = Command::new(&cc);
    command.arg("-o").arg(out).arg(&obj);
    if python {
        // Before libksrt.a: the bridge calls into the runtime.
        command.arg(write("libksrt_python.a", PYTHON)?);
    }
    command.arg(&runtime).arg(&libbpf).args(["-lelf", "-lz"]);
    if python {
        command.args(PYTHON_LIBS.split_whitespace());
    }
    let output = command.output().map_err(|e| {
        LinkError::Environment(format!(
            "cannot run the C compiler `{}` to link (set $CC to another one): {e}",
            cc.to_string_lossy()
        ))
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(classify(
        &String::from_utf8_lossy(&output.stderr),
        &cc.to_string_lossy(),
        out,
    ))
}

/// Causes of a failed link that lie with the machine, not with the object: what the linker and
/// the C library say when the output cannot be written or a library is not installed.
const ENVIRONMENT_CAUSES: &[&str] = &[
    "cannot open output file",
    "Permission denied",
    "No space left on device",
    "Disk quota exceeded",
    "Read-only file system",
    "File too large",
    "Text file busy",
    "Is a directory",
    "No such file or directory",
    "Operation not permitted",
    "cannot find -l",
    "unable to find library -l",
];

/// The linker's own account of a failure: its first complaint, not the driver's summary
/// ("collect2: error: ld returned 1 exit status"), which names no cause.
fn classify(stderr: &str, cc: &str, out: &Path) -> LinkError {
    let is_summary = |l: &str| {
        l.contains("collect2: error:")
            || l.contains("linker command failed with exit code")
            || l.trim().is_empty()
    };
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !is_summary(l))
        .collect();
    let environment = lines
        .iter()
        .find(|l| ENVIRONMENT_CAUSES.iter().any(|c| l.contains(c)));
    if let Some(cause) = environment {
        let hint = if cause.contains("-lpython") {
            " (install libpython3-dev)"
        } else if cause.contains("-lelf") || cause.contains("-lz") {
            " (install libelf-dev and zlib1g-dev)"
        } else {
            ""
        };
        return LinkError::Environment(format!("{cause}{hint}"));
    }
    // A symbol error spans lines ("in function `f':", then "undefined reference to …").
    let cause = if lines.is_empty() {
        stderr
            .trim()
            .lines()
            .next()
            .unwrap_or("it said nothing")
            .to_string()
    } else {
        lines[..lines.len().min(3)].join("; ")
    };
    LinkError::Internal(format!(
        "linking {} with `{cc}` failed: {cause}",
        out.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linker_s_cause_not_the_driver_s_summary() {
        let e = classify(
            "/usr/bin/ld: cannot open output file out/x: Permission denied\ncollect2: error: ld returned 1 exit status\n",
            "cc",
            Path::new("out/x"),
        );
        assert!(
            matches!(&e, LinkError::Environment(m) if m == "/usr/bin/ld: cannot open output file out/x: Permission denied"),
            "{e:?}"
        );
        let e = classify(
            "/usr/bin/ld: unit.o: in function `main':\n(.text+0x5): undefined reference to `ksrt_nope'\ncollect2: error: ld returned 1 exit status\n",
            "cc",
            Path::new("x"),
        );
        assert!(
            matches!(&e, LinkError::Internal(m) if m.contains("undefined reference to `ksrt_nope'")),
            "{e:?}"
        );
        let e = classify(
            "/usr/bin/ld: cannot find -lelf: No such file or directory\n",
            "cc",
            Path::new("x"),
        );
        assert!(
            matches!(&e, LinkError::Environment(m) if m.ends_with("(install libelf-dev and zlib1g-dev)")),
            "{e:?}"
        );
    }

    #[test]
    fn private_tempdir_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: umask only changes this process's file creation mask.
        let old = unsafe { libc::umask(0o022) };
        let dir = super::private_tempdir("ksc-test-").unwrap();
        unsafe { libc::umask(old) };
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
