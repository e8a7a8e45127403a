//! LLVM plumbing shared by the back ends: diagnostics from LLVM become ksc diagnostics instead of
//! messages on stderr or an abort of the whole process (TOOLCHAIN.md).

use inkwell::context::Context;
use llvm_sys::core::{
    LLVMContextSetDiagnosticHandler, LLVMGetDiagInfoDescription, LLVMGetDiagInfoSeverity,
};
use llvm_sys::prelude::LLVMDiagnosticInfoRef;
use llvm_sys::LLVMDiagnosticSeverity;
use std::cell::RefCell;
use std::ffi::{c_void, CStr};

thread_local! {
    /// Errors LLVM reported on this thread since the last `take_errors`.
    static ERRORS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

extern "C" fn on_diagnostic(info: LLVMDiagnosticInfoRef, _: *mut c_void) {
    // SAFETY: LLVM passes a valid diagnostic for the duration of the call; the description is a
    // heap string we own and must free.
    unsafe {
        if LLVMGetDiagInfoSeverity(info) != LLVMDiagnosticSeverity::LLVMDSError {
            return;
        }
        let desc = LLVMGetDiagInfoDescription(info);
        let text = CStr::from_ptr(desc).to_string_lossy().into_owned();
        llvm_sys::core::LLVMDisposeMessage(desc);
        ERRORS.with(|e| e.borrow_mut().push(text));
    }
}

/// Routes the context's diagnostics (the BPF backend's stack-limit and unsupported-feature
/// errors among them) to this thread's error list.
pub fn capture_diagnostics(ctx: &Context) {
    use inkwell::context::AsContextRef;
    // SAFETY: the handler is a plain function and the context outlives every use of it.
    unsafe {
        LLVMContextSetDiagnosticHandler(ctx.as_ctx_ref(), Some(on_diagnostic), std::ptr::null_mut())
    }
}

extern "C" fn on_fatal_error(reason: *const std::ffi::c_char) {
    // LLVM cannot continue after a fatal error and Rust cannot unwind through it: report it in
    // ksc's format and exit 1 rather than let LLVM abort the process.
    // SAFETY: LLVM passes a NUL-terminated message.
    let text = unsafe { CStr::from_ptr(reason) }.to_string_lossy();
    eprintln!("<llvm>:1:1: error[E0999]: internal compiler error: LLVM: {text}");
    std::process::exit(1);
}

/// Installs the process-wide LLVM fatal-error handler (once).
pub fn capture_fatal_errors() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: the handler is a plain function with the signature LLVM expects.
    ONCE.call_once(|| unsafe {
        llvm_sys::error_handling::LLVMInstallFatalErrorHandler(Some(on_fatal_error))
    });
}

pub fn take_errors() -> Vec<String> {
    ERRORS.with(|e| std::mem::take(&mut *e.borrow_mut()))
}
