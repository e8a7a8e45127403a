//! `--time-report`: how long each compiler stage took, printed to standard error when the compile
//! ends (like clang's `-ftime-report`). Off by default, and then a stage costs one relaxed atomic
//! load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static STAGES: Mutex<Vec<(&'static str, Duration)>> = Mutex::new(Vec::new());
static START: OnceLock<Instant> = OnceLock::new();

/// Turns recording on for the rest of the process.
pub fn enable() {
    START.get_or_init(Instant::now);
    ENABLED.store(true, Ordering::Relaxed);
}

/// Runs `f`, recording its wall time under `stage` when reporting is on.
pub fn stage<T>(stage: &'static str, f: impl FnOnce() -> T) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    STAGES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((stage, took));
    out
}

/// The recorded stages in the order they finished, and the time since reporting was turned on
/// (just after the command line was read), as a table; None when reporting is off.
pub fn report() -> Option<String> {
    if !ENABLED.load(Ordering::Relaxed) {
        return None;
    }
    let stages = STAGES.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::from("ksc: time report (wall clock, ms)\n");
    for (name, took) in stages.iter() {
        out.push_str(&format!("  {:>8.2}  {name}\n", took.as_secs_f64() * 1e3));
    }
    if let Some(start) = START.get() {
        out.push_str(&format!(
            "  {:>8.2}  total after start-up\n",
            start.elapsed().as_secs_f64() * 1e3
        ));
    }
    Some(out)
}
