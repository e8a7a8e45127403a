//! Linking: the host object, the runtime library and libbpf become one executable. Both archives
//! are compiled into ksc itself (build.rs), written to a private temporary directory for the link
//! and removed afterwards, so an installed ksc links from any directory with no other files. The
//! system C compiler drives the link (`$CC`, else `cc`), which brings the C library and start
//! files; libbpf needs libelf and zlib, the only shared libraries beyond libc.

use std::path::Path;
use std::process::Command;

const RUNTIME: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libksrt.a"));
const LIBBPF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libbpf.a"));

/// A new directory `$TMPDIR/PREFIX*` that only its owner can enter (0700, whatever the umask),
/// removed when dropped.
pub fn private_tempdir(prefix: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
}

/// Links `object` (a native relocatable object from the host back end) into the executable `out`.
pub fn link_executable(object: &[u8], out: &Path) -> Result<(), String> {
    let dir = private_tempdir("ksc-link-")
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes)
            .map(|_| p)
            .map_err(|e| format!("cannot write {name} for linking: {e}"))
    };
    let obj = write("unit.o", object)?;
    let runtime = write("libksrt.a", RUNTIME)?;
    let libbpf = write("libbpf.a", LIBBPF)?;
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let output = Command::new(&cc)
        .arg("-o")
        .arg(out)
        .arg(&obj)
        .arg(&runtime)
        .arg(&libbpf)
        .args(["-lelf", "-lz"])
        .output()
        .map_err(|e| {
            format!(
                "cannot run the C compiler `{}` to link: {e}",
                cc.to_string_lossy()
            )
        })?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        let first = text
            .lines()
            .find(|l| l.contains("error") || l.contains("cannot find"))
            .or_else(|| text.lines().next())
            .unwrap_or("");
        return Err(format!("linking {} failed: {first}", out.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_tempdir_is_owner_only() {
        // SAFETY: umask only changes this process's file creation mask.
        let old = unsafe { libc::umask(0o022) };
        let dir = super::private_tempdir("ksc-test-").unwrap();
        unsafe { libc::umask(old) };
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
