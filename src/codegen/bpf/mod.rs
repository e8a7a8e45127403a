//! The BPF back end: a `bpf`-dialect module (after the kernel pipeline) to LLVM IR through
//! inkwell, then to a BPF ELF object with `.BTF` and `.BTF.ext`, no C compiler involved.
//!
//! The shapes libbpf and the kernel need are in TOOLCHAIN.md: one section per program, a
//! `license` section, BTF-defined maps in `.maps` described by their debug types, debug info on
//! every function (named parameters) and instruction, and the new-pass-manager pipeline run
//! before the object is written.

mod array_entries;
mod back_end;
mod bool_values;
mod byte_copies;
mod byte_numbers;
mod byte_tests;
mod carried_values;
mod chosen_keys;
mod compare_words;
mod constant_passthroughs;
mod decided_flags;
mod decls;
mod fetch_adds;
mod flag_phis;
mod frame_addresses;
mod frame_chains;
mod general_first;
mod global_bases;
mod implied_checks;
mod isa_divisions;
mod late_flags;
mod layout;
mod llvm_ir;
mod loop_counts;
mod loop_exits;
mod lost_bounds;
mod map_lookups;
mod merged_reads;
mod ones_complement_sums;
mod ops;
mod packet_bases;
mod packet_fields;
mod packet_phis;
mod packet_reloads;
mod pointer_steps;
mod program_args;
mod rebased_addresses;
mod split_returns;
mod stack_words;
mod store_words;
mod struct_returns;
mod swapped_compares;
mod tables;
mod wide_constant_phis;

pub use crate::codegen::llvm::{Error, Output};
pub use tables::{object_tables, ObjectTables};

use crate::codegen::llvm::Gen;
use crate::ir::{views::KsFunc, Module, OpId};
use inkwell::context::Context;
use inkwell::module::Module as LlvmModule;
use inkwell::targets::{CodeModel, InitializationConfig, RelocMode, Target, TargetTriple};
use inkwell::OptimizationLevel;

/// How to compile.
#[derive(Clone, Debug)]
pub struct Options {
    /// `v1`..`v4`; v3 by default (alu32 and jmp32, accepted by every supported kernel).
    pub cpu: String,
    /// Run LLVM's `default<O2>` pipeline (else `default<O0>`, which BPF CO-RE still needs).
    pub optimize: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cpu: "v3".into(),
            optimize: true,
        }
    }
}

/// Compiles a kernel-side module to LLVM IR text, BPF assembly or an ELF object.
pub fn compile(m: &Module, opts: &Options, output: Output) -> Result<Vec<u8>, Vec<Error>> {
    crate::codegen::llvm::diagnostics::capture_fatal_errors();
    Target::initialize_bpf(&InitializationConfig::default());
    // Inkwell leaves out the BPF assembly parser, which an asm with text needs to become an
    // object (`isa_divisions`).
    // SAFETY: LLVM's target registration, idempotent and safe to call at any time.
    unsafe { llvm_sys::target::LLVMInitializeBPFAsmParser() };
    keep_loop_exits_in_loops();
    if !opts.optimize {
        keep_loop_headers_first();
    }
    let triple = TargetTriple::create("bpfel");
    let target =
        Target::from_triple(&triple).map_err(|e| vec![Error::internal(None, e.to_string())])?;
    // Code generation runs at O1 or above even for -O0: LLVM rewrites CO-RE relocation loads into
    // relocated immediates (BPFMISimplifyPatchable) only among its machine SSA optimisations,
    // and without them a -O0 object dereferences a field offset. -O0 still skips every IR pass.
    let level = if opts.optimize {
        OptimizationLevel::Default
    } else {
        OptimizationLevel::Less
    };
    let tm = target
        .create_target_machine(
            &triple,
            &opts.cpu,
            "",
            level,
            RelocMode::Default,
            CodeModel::Default,
        )
        .ok_or_else(|| {
            vec![Error::internal(
                None,
                format!("LLVM has no BPF target machine for cpu `{}`", opts.cpu),
            )]
        })?;
    let ctx = Context::create();
    crate::codegen::llvm::diagnostics::capture_diagnostics(&ctx);
    let module = ctx.create_module("ksc");
    module.set_triple(&triple);
    module.set_data_layout(&tm.get_target_data().get_data_layout());
    let back_end = back_end::Bpf {
        signed_division: opts.cpu == "v4",
        optimize: opts.optimize,
        inlined_calls: Default::default(),
        shareable_lookups: Default::default(),
        type_id_seq: Default::default(),
        passthrough_seq: Default::default(),
    };
    let mut g = Gen::new(m, &back_end, &ctx, &module);
    crate::timing::stage("bpf to llvm ir", || {
        g.declarations();
        let funcs: Vec<OpId> = m
            .funcs()
            .filter(|&f| KsFunc(f).target(m) == crate::vocab::Target::Bpf)
            .collect();
        for &f in &funcs {
            g.declare_function(f);
        }
        g.struct_ops_instances();
        for &f in &funcs {
            g.define_function(f);
        }
        g.license();
    });
    // v3 and up have 32-bit ALU instructions on `w` registers.
    let alu32 = matches!(opts.cpu.as_str(), "v3" | "v4");
    let bytes = g.finish(
        &tm,
        pipeline(opts.optimize),
        output,
        |m| {
            refuse_second_core_module(m)?;
            if opts.optimize {
                struct_returns::return_fields(m);
            }
            Ok(())
        },
        |m| {
            isa_divisions::divide_in_instructions(m, alu32);
            array_entries::inline_array_entries(m, &tm)?;
            map_lookups::share_map_lookups(m);
            if alu32 {
                fetch_adds::forward_fetched_values(m);
            }
            constant_passthroughs::fold_constant_passthroughs(m);
            flag_phis::recompute_flags(m);
            byte_copies::merge(m);
            chosen_keys::hide_chosen_keys(m);
            pointer_steps::step_pointers(m);
            packet_phis::merge_packet_pointers(m);
            merged_reads::read_on_each_path(m);
            rebased_addresses::rebase_addresses(m);
            loop_counts::keep_loop_counts(m, alu32);
            packet_bases::widen_packet_bases(m);
            stack_words::widen_stack_numbers(m);
            store_words::merge_word_stores(m);
            byte_numbers::read_words(m);
            byte_tests::decide_byte_tests(m);
            ones_complement_sums::sum_unswapped(m);
            swapped_compares::compare_unswapped(m);
            compare_words::compare_words(m);
            packet_fields::share_packet_fields(m);
            implied_checks::fold_implied_checks(m);
            decided_flags::jump_decided_flags(m);
            packet_reloads::reload_packet_bytes(m);
            split_returns::split_returns(m);
            wide_constant_phis::widen_constant_phis(m);
            frame_addresses::form_at_uses(m);
            global_bases::share_global_bases(m);
            general_first::constants_on_the_jump(m);
            bool_values::compute_truth_values(m);
            lost_bounds::keep_lost_bounds(m);
            late_flags::compute_flags_late(m, alu32);
            carried_values::forget_carried_values(m);
            layout::lay_out(m);
            loop_exits::mark_loop_exits(m, alu32);
            Ok(())
        },
    )?;
    if matches!(output, Output::Object) {
        let errors = frame_chains::check(m, &bytes);
        if !errors.is_empty() {
            return Err(errors);
        }
    }
    Ok(bytes)
}

/// IndVarSimplify turns a side-effect-free loop's exits into one test before the loop when it can
/// compute their trip counts: a per-iteration packet test (`data + i + 1 > data_end`, which ksc
/// inserts where the user's test does not cover a read) becomes arithmetic on `data_end`, which
/// the verifier prohibits ("pointer arithmetic on pkt_end"). For the same reason it must not
/// compute what such a loop leaves behind in closed form (a count of the bytes up to the frame's
/// end as `min(n, data_end - data)`, arithmetic on two packet pointers). The options are
/// process-wide; LLVM's options are parsed once.
fn keep_loop_exits_in_loops() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        set_llvm_options(&[c"-indvars-predicate-loops=false", c"-replexitval=never"])
    });
}

/// Unoptimised code keeps its blocks in the order ksc emits them, each loop's test ahead of its
/// body: the back end's block placement moves a test that is not at the loop's bottom below the
/// body, entered by a jump and closed by the body falling through into it, and Linux 6.1
/// refuses a loop closed by a fall-through ("back-edge from insn …"). (Optimised code tests at
/// the bottom already: LLVM rotates its loops.) The option is process-wide; the `ksc` command
/// compiles one module per process.
fn keep_loop_headers_first() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| set_llvm_options(&[c"-disable-block-placement"]));
}

/// Sets LLVM's process-wide command-line options.
fn set_llvm_options(options: &[&std::ffi::CStr]) {
    let args: Vec<*const std::ffi::c_char> = std::iter::once(c"ksc")
        .chain(options.iter().copied())
        .map(std::ffi::CStr::as_ptr)
        .collect();
    // SAFETY: NUL-terminated strings that outlive the call; the overview may be null.
    unsafe {
        llvm_sys::support::LLVMParseCommandLineOptions(
            args.len() as i32,
            args.as_ptr(),
            std::ptr::null(),
        )
    }
}

/// LLVM 19's BPF CO-RE lowering keeps its relocation globals in a process-wide table keyed by
/// access string, so a second module with the same kernel-field access in one process would
/// reuse a global of a destroyed module. The `ksc` command compiles once per process; refuse the
/// second CO-RE module instead of crashing.
fn refuse_second_core_module(module: &LlvmModule) -> Result<(), String> {
    if module_uses_core(module)
        && CORE_MODULE_COMPILED.swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        return Err("LLVM's BPF CO-RE lowering supports one module with kernel struct reads per process; compile this unit in a new process".into());
    }
    Ok(())
}

static CORE_MODULE_COMPILED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn module_uses_core(module: &LlvmModule) -> bool {
    module
        .get_function("llvm.preserve.struct.access.index.p0.p0")
        .is_some()
        || module.get_function("llvm.bpf.btf.type.id").is_some()
}

impl Gen<'_, '_> {
    fn license(&mut self) {
        let bytes = self.ctx.const_string(b"GPL", true);
        let g = self.module.add_global(bytes.get_type(), None, "_license");
        g.set_initializer(&bytes);
        g.set_section(Some("license"));
    }
}

#[cfg(test)]
mod tests;

/// LLVM's IR passes. Unoptimised, the code as written still gets what the verifier needs to
/// follow it: locals move from the stack into registers (SROA) and repeated loads and
/// computations are shared (early CSE), nothing else. The verifier tracks a scalar's bounds
/// exactly in a register but loses them in a struct field or narrow slot on the stack (an offset
/// ksc proves bounded, `l4_off` of a returned header struct, looked unbounded and a packet test
/// on it proved nothing), and each reload of the same value is one more register whose
/// differences keep it from pruning states (a ten-option TCP walk exceeded the 1M-instruction
/// limit).
fn pipeline(optimize: bool) -> &'static str {
    if optimize {
        "default<O2>"
    } else {
        "default<O0>,function(sroa<preserve-cfg>,early-cse)"
    }
}
