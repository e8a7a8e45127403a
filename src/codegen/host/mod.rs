//! The host back end: a `host`-dialect module (after the userspace pipeline) to a native object
//! through inkwell, with DWARF so gdb and perf show `.ks` lines. The object holds the user's
//! functions, the embedded BPF object and the descriptor the runtime starts from (`entry`); the
//! linker (`crate::link`) joins it with the runtime library into one executable.

mod back_end;
mod entry;
mod ops;

pub use crate::codegen::llvm::{Error, Output};

use crate::codegen::llvm::Gen;
use crate::ir::{views::KsFunc, Module, OpId};
use inkwell::context::Context;
use inkwell::targets::{
    CodeModel, InitializationConfig, RelocMode, Target, TargetMachine, TargetTriple,
};
use inkwell::OptimizationLevel;

/// How to compile.
#[derive(Clone, Debug)]
pub struct Options {
    /// The target triple; the machine ksc runs on when `None`.
    pub triple: Option<String>,
    pub optimize: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            triple: None,
            optimize: true,
        }
    }
}

/// What the executable is built around, beyond the module's functions.
pub struct Unit<'a> {
    /// `<base>`: pin directory, pid file and kernel module name (§11.6, §15.3, §16.2).
    pub base: &'a str,
    /// The BPF object and its start-up tables, when the unit has kernel-side code.
    pub kernel: Option<&'a crate::codegen::bpf::ObjectTables>,
    /// The unit has `@kfunc`s: the runtime loads `<base>.ko` first.
    pub has_kfuncs: bool,
    /// Build the test runner (§17) instead of the program's `main`.
    pub test: bool,
}

/// Compiles a userspace module to LLVM IR text, assembly or a relocatable object.
pub fn compile(
    m: &Module,
    unit: &Unit,
    opts: &Options,
    output: Output,
) -> Result<Vec<u8>, Vec<Error>> {
    let fail = |message: String| vec![Error::internal(None, message)];
    crate::codegen::llvm::diagnostics::capture_fatal_errors();
    // The host is x86-64, the one native target ksc links. (`initialize_native` would go through
    // llvm-sys's C shim, whose object also names every other target's initializer and so links
    // all of LLVM's back ends and runs their static constructors at every start.)
    Target::initialize_x86(&InitializationConfig::default());
    let triple = match &opts.triple {
        Some(t) => TargetTriple::create(t),
        None => TargetMachine::get_default_triple(),
    };
    let target = Target::from_triple(&triple).map_err(|e| fail(e.to_string()))?;
    let level = if opts.optimize {
        OptimizationLevel::Default
    } else {
        OptimizationLevel::None
    };
    // Position-independent: the system linker makes PIE executables by default.
    let tm = target
        .create_target_machine(
            &triple,
            "generic",
            "",
            level,
            RelocMode::PIC,
            CodeModel::Default,
        )
        .ok_or_else(|| fail(format!("LLVM has no target machine for {}", triple)))?;
    let ctx = Context::create();
    crate::codegen::llvm::diagnostics::capture_diagnostics(&ctx);
    let module = ctx.create_module("ksc");
    module.set_triple(&triple);
    module.set_data_layout(&tm.get_target_data().get_data_layout());
    let mut g = Gen::new(m, &back_end::Host, &ctx, &module);
    g.process_globals();
    let funcs: Vec<OpId> = m
        .funcs()
        .filter(|&f| KsFunc(f).target(m) == crate::vocab::Target::Host)
        .collect();
    for &f in &funcs {
        g.declare_function(f);
    }
    for &f in &funcs {
        g.define_function(f);
    }
    g.entry(unit);
    let pipeline = if opts.optimize {
        "default<O2>"
    } else {
        "default<O0>"
    };
    g.finish(&tm, pipeline, output, |_| Ok(()), |_| Ok(()))
}
