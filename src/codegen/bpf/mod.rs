//! The BPF back end: a `bpf`-dialect module (after the kernel pipeline) to LLVM IR through
//! inkwell, then to a BPF ELF object with `.BTF` and `.BTF.ext`, no C compiler involved.
//!
//! The shapes libbpf and the kernel need are in TOOLCHAIN.md: one section per program, a
//! `license` section, BTF-defined maps in `.maps` described by their debug types, debug info on
//! every function (named parameters) and instruction, and the new-pass-manager pipeline run
//! before the object is written.

mod body;
mod decls;
mod types;

use crate::ir::{views::KsFunc, Module, OpId};
use inkwell::context::Context;
use inkwell::debug_info::{DICompileUnit, DIFile, DIType, DWARFEmissionKind, DWARFSourceLanguage, DebugInfoBuilder};
use inkwell::module::{FlagBehavior, Module as LlvmModule};
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{CodeModel, FileType, InitializationConfig, RelocMode, Target, TargetTriple};
use inkwell::types::StructType;
use inkwell::values::{FunctionValue, GlobalValue};
use inkwell::OptimizationLevel;
use std::collections::HashMap;
use std::path::Path;

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
        Options { cpu: "v3".into(), optimize: true }
    }
}

/// What the back end produces.
pub enum Output {
    LlvmIr,
    Asm,
    Object,
}

/// A back-end failure, at the op (and so the source line) it concerns when known.
#[derive(Debug)]
pub struct Error {
    pub op: Option<OpId>,
    pub message: String,
}

/// Compiles a kernel-side module to LLVM IR text, BPF assembly or an ELF object.
pub fn compile(m: &Module, opts: &Options, output: Output) -> Result<Vec<u8>, Vec<Error>> {
    crate::codegen::llvm::capture_fatal_errors();
    Target::initialize_bpf(&InitializationConfig::default());
    let triple = TargetTriple::create("bpfel");
    let target = Target::from_triple(&triple).map_err(|e| vec![Error { op: None, message: e.to_string() }])?;
    let level = if opts.optimize { OptimizationLevel::Default } else { OptimizationLevel::None };
    let tm = target
        .create_target_machine(&triple, &opts.cpu, "", level, RelocMode::Default, CodeModel::Default)
        .ok_or_else(|| vec![Error { op: None, message: format!("LLVM has no BPF target machine for cpu `{}`", opts.cpu) }])?;
    let ctx = Context::create();
    crate::codegen::llvm::capture_diagnostics(&ctx);
    let module = ctx.create_module("ksc");
    module.set_triple(&triple);
    module.set_data_layout(&tm.get_target_data().get_data_layout());
    let (di, cu, file) = debug_info(&module, m);
    let mut g = Gen { m, signed_division: opts.cpu == "v4", type_id_seq: 0, ctx: &ctx, module: &module, di, cu, file, structs: HashMap::new(), field_index: HashMap::new(), di_types: HashMap::new(), di_in_progress: Default::default(), funcs: HashMap::new(), globals: HashMap::new(), errors: Vec::new() };
    g.declarations();
    let funcs: Vec<OpId> = m.funcs().filter(|&f| KsFunc(f).target(m) == b"bpf").collect();
    for &f in &funcs {
        g.declare_function(f);
    }
    g.struct_ops_instances();
    for &f in &funcs {
        g.define_function(f);
    }
    g.license();
    g.di.finalize();
    let mut errors = std::mem::take(&mut g.errors);
    if errors.is_empty() {
        if let Err(e) = module.verify() {
            errors.push(Error { op: None, message: format!("LLVM rejected the generated IR: {}", e.to_string().lines().next().unwrap_or("")) });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // LLVM 19's BPF CO-RE lowering keeps its relocation globals in a process-wide table keyed by
    // access string, so a second module with the same kernel-field access in one process would
    // reuse a global of a destroyed module. The `ksc` command compiles once per process; refuse
    // the second CO-RE module instead of crashing.
    if module_uses_core(&module) && CORE_MODULE_COMPILED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Err(vec![Error { op: None, message: "LLVM's BPF CO-RE lowering supports one module with kernel struct reads per process; compile this unit in a new process".into() }]);
    }
    let pipeline = if opts.optimize { "default<O2>" } else { "default<O0>" };
    module.run_passes(pipeline, &tm, PassBuilderOptions::create()).map_err(|e| vec![Error { op: None, message: e.to_string() }])?;
    let result = match output {
        Output::LlvmIr => Ok(module.print_to_string().to_bytes().to_vec()),
        Output::Asm => tm.write_to_memory_buffer(&module, FileType::Assembly).map(|b| b.as_slice().to_vec()),
        Output::Object => tm.write_to_memory_buffer(&module, FileType::Object).map(|b| b.as_slice().to_vec()),
    };
    let llvm_errors = crate::codegen::llvm::take_errors();
    if !llvm_errors.is_empty() {
        return Err(llvm_errors.into_iter().map(|message| Error { op: function_named_in(m, &message), message }).collect());
    }
    result.map_err(|e| vec![Error { op: None, message: e.to_string() }])
}

static CORE_MODULE_COMPILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn module_uses_core(module: &LlvmModule) -> bool {
    module.get_function("llvm.preserve.struct.access.index.p0.p0").is_some() || module.get_function("llvm.bpf.btf.type.id").is_some()
}

/// The compile unit and the file of the unit's main source. The file is named by its absolute
/// path: LLVM reads the source lines for `.BTF.ext` line info from disk while writing the object.
fn debug_info<'ctx>(module: &LlvmModule<'ctx>, m: &Module) -> (DebugInfoBuilder<'ctx>, DICompileUnit<'ctx>, DIFile<'ctx>) {
    let path = m.files.first().cloned().unwrap_or_else(|| "unit.ks".into());
    let abs = std::fs::canonicalize(&path).unwrap_or_else(|_| Path::new(&path).to_path_buf());
    let dir = abs.parent().map(|d| d.display().to_string()).unwrap_or_default();
    let name = abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(path);
    let ctx = module.get_context();
    module.add_basic_value_flag("Debug Info Version", FlagBehavior::Warning, ctx.i32_type().const_int(3, false));
    module.add_basic_value_flag("Dwarf Version", FlagBehavior::Warning, ctx.i32_type().const_int(5, false));
    let (di, cu) = module.create_debug_info_builder(true, DWARFSourceLanguage::C, &name, &dir, "ksc", false, "", 0, "", DWARFEmissionKind::Full, 0, false, false, "", "");
    let file = di.create_file(&name, &dir);
    (di, cu, file)
}

/// The function an LLVM backend message is about ("… in function NAME …"), so the error can be
/// reported at its `.ks` definition.
fn function_named_in(m: &Module, message: &str) -> Option<OpId> {
    let rest = message.split("in function ").nth(1)?;
    let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    m.funcs().find(|&f| m.symbol(f).map(c_name).as_deref() == Some(name.as_str()))
}

/// A name that BTF accepts (a C identifier): IR names such as `f.loop0` use dots.
pub fn c_name(s: &str) -> String {
    s.replace('.', "__")
}

pub(crate) struct Gen<'m, 'ctx> {
    pub m: &'m Module,
    /// The CPU has `sdiv`/`smod` (v4).
    pub signed_division: bool,
    /// Sequence numbers of `llvm.bpf.btf.type.id` calls (each must be distinct).
    pub type_id_seq: u32,
    pub ctx: &'ctx Context,
    pub module: &'m LlvmModule<'ctx>,
    pub di: DebugInfoBuilder<'ctx>,
    pub cu: DICompileUnit<'ctx>,
    pub file: DIFile<'ctx>,
    pub structs: HashMap<String, StructType<'ctx>>,
    /// LLVM field index of each `ks.struct` field (padding fields shift them).
    pub field_index: HashMap<String, Vec<u32>>,
    pub di_types: HashMap<String, DIType<'ctx>>,
    /// Structs whose debug type is being built (to break pointer cycles).
    pub di_in_progress: std::collections::HashSet<String>,
    pub funcs: HashMap<String, FunctionValue<'ctx>>,
    /// Maps and globals by IR symbol.
    pub globals: HashMap<String, GlobalValue<'ctx>>,
    pub errors: Vec<Error>,
}

impl Gen<'_, '_> {
    pub fn error(&mut self, op: Option<OpId>, message: impl Into<String>) {
        self.errors.push(Error { op, message: message.into() });
    }

    fn license(&mut self) {
        let bytes = self.ctx.const_string(b"GPL", true);
        let g = self.module.add_global(bytes.get_type(), None, "_license");
        g.set_initializer(&bytes);
        g.set_section(Some("license"));
    }
}

#[cfg(test)]
mod tests;
