//! `ksc run` and `ksc test`: build the executable into a private temporary directory, run it with
//! the terminal and arguments of ksc, and exit with its status (128 + N when signal N ended it).
//!
//! The directory goes as soon as the child has started (the kernel holds the executable; the
//! runtime looks next to it only for a kernel module, which `ksc run` never builds, and falls back
//! to modprobe), or on the way out of a failed build or a signal during it.
//!
//! ksc stays in charge of the child until it is gone. SIGINT, SIGTERM, SIGHUP and SIGQUIT sent
//! to ksc are passed on to it, and ksc waits for it and exits with its status, so that the
//! program has detached what it attached when ksc returns. The signals a terminal sends (Ctrl-C, Ctrl-\) reach its
//! whole foreground process group, the child included, so those are not sent a second time; a
//! hangup is, when ksc leads its session (the kernel then sends SIGHUP to ksc alone).
//! If ksc itself is killed outright (SIGKILL), the child gets SIGTERM from the kernel
//! (`PR_SET_PDEATHSIG`).

use super::build::{self, Options};
use crate::ir::Module;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::SeqCst};

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
    // Installed before the directory exists and restored after it is gone (drop order), so that
    // a signal during the build ends ksc through the code that removes it.
    let _forwarding = Forwarding::install();
    let dir = match crate::link::private_tempdir("ksc-run-") {
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
    // Told to stop while building: the program is not started at all.
    let received = RECEIVED.load(SeqCst);
    if received != 0 {
        return 128 + received;
    }
    let mut command = Command::new(&exe);
    command.args(args);
    let ksc = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and makes only async-signal-safe
    // system calls (prctl, getppid).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // ksc died before the prctl: there is nobody to report to.
            if libc::getppid() as u32 != ksc {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ksc: cannot run {}: {e}", exe.display());
            return 1;
        }
    };
    let pid = child.id() as i32;
    CHILD.store(pid, SeqCst);
    pass_on();
    // The child has exec'd (spawn returns after the exec): the kernel holds the executable, and
    // the directory can go now, so that not even SIGKILL of ksc leaves it behind.
    let dir_path = dir.path().to_path_buf();
    if let Err(e) = dir.close() {
        eprintln!("ksc: cannot remove {}: {e}", dir_path.display());
    }
    // Waited for without reaping first, so that the pid cannot be reused while the handler
    // may still send to it.
    wait_exited(pid);
    CHILD.store(0, SeqCst);
    let status = match child.wait() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ksc: cannot wait for {}: {e}", exe.display());
            return 1;
        }
    };
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The signals ksc passes on to the child.
const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The running child's pid, or 0.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// A signal for the child that has not been sent yet, or 0.
static PENDING: AtomicI32 = AtomicI32::new(0);
/// The last of the signals in FORWARDED that ksc received, or 0.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// Whether ksc leads its session: a terminal's hangup then reaches ksc only.
static SESSION_LEADER: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    RECEIVED.store(sig, SeqCst);
    // SI_KERNEL: the terminal's signal, which went to the child as well (its foreground process
    // group), except the hangup a session leader gets alone.
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let from_terminal = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    if from_terminal && !(sig == libc::SIGHUP && SESSION_LEADER.load(SeqCst)) {
        return;
    }
    PENDING.store(sig, SeqCst);
    pass_on();
}

/// Sends the pending signal to the child if there is one. Called by the handler and right after
/// the spawn: whichever of the two comes second finds the signal or the child already there, and
/// the swap makes sure only one sends it.
fn pass_on() {
    let pid = CHILD.load(SeqCst);
    if pid > 0 {
        let sig = PENDING.swap(0, SeqCst);
        if sig != 0 {
            // SAFETY: kill is async-signal-safe; the child is not reaped while CHILD holds it.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

/// Blocks until `pid` has exited, leaving it to be reaped (`WNOWAIT`).
fn wait_exited(pid: i32) {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// The handlers of FORWARDED while a command runs; the previous ones come back on drop.
struct Forwarding {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Forwarding {
    fn install() -> Forwarding {
        // SAFETY: plain system calls without arguments to check.
        SESSION_LEADER.store(unsafe { libc::getsid(0) == libc::getpid() }, SeqCst);
        let mut previous = Vec::new();
        for sig in FORWARDED {
            // SAFETY: sigaction with a zero-initialised struct, an empty mask and a handler that
            // only touches atomics and calls kill.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &action, &mut old) == 0 {
                    previous.push((sig, old));
                }
            }
        }
        Forwarding { previous }
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        for (sig, old) in &self.previous {
            // SAFETY: restores the action sigaction returned.
            unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
        }
    }
}
