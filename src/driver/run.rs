//! `ksc run` and `ksc test`: build the executable into a private temporary directory, run it with
//! the terminal and arguments of ksc, and exit with its status (128 + N when signal N ended it).

use super::build::{self, Options};
use crate::ir::Module;
use std::path::Path;
use std::process::Command;

/// `ksc run FILE -- ARGS`.
pub fn program(module: &Module, file: &Path, args: &[String], opts: &Options) -> i32 {
    if !build::has_main(module) {
        eprintln!(
            "{}:1:1: error[E0999]: nothing to run: the unit has no `main` function",
            file.display()
        );
        return 1;
    }
    execute(module, file, false, args, opts)
}

/// `ksc test FILE [--filter SUBSTR] [--timeout SECS]`: the runner takes both options as they are
/// (its default timeout is the runtime's).
pub fn tests(
    module: &Module,
    file: &Path,
    filter: Option<&str>,
    timeout: Option<u32>,
    opts: &Options,
) -> i32 {
    let mut args = Vec::new();
    if let Some(f) = filter {
        args.extend(["--filter".to_string(), f.to_string()]);
    }
    if let Some(t) = timeout {
        args.extend(["--timeout".to_string(), t.to_string()]);
    }
    execute(module, file, true, &args, opts)
}

fn execute(module: &Module, file: &Path, test: bool, args: &[String], opts: &Options) -> i32 {
    let dir = match tempfile::Builder::new().prefix("ksc-run-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ksc: cannot create a temporary directory: {e}");
            return 1;
        }
    };
    // The executable keeps the unit's name: the runtime names pins, pid files and its messages
    // after it.
    let base = build::base_name(file);
    let exe = dir
        .path()
        .join(if test { format!("{base}.test") } else { base });
    if let Err(code) = build::build(module, file, Some(&exe), test, opts) {
        return code;
    }
    let status = match Command::new(&exe).args(args).status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ksc: cannot run {}: {e}", exe.display());
            return 1;
        }
    };
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
