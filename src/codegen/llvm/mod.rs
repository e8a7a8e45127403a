//! The LLVM layer both native back ends share: one generator (`Gen`) that turns IR types into LLVM
//! and debug-info types, `core` ops into instructions and functions into LLVM functions with a
//! debug location on every instruction. It knows neither target: each back end plugs in through
//! `BackEnd` (symbols, function attributes, how programs receive their arguments, its own
//! dialect's ops). The BPF back end adds the object's maps; the host back end adds the runtime
//! descriptor and the C `main`.

pub mod constants;
pub mod diagnostics;
mod function;
pub mod types;

pub(crate) use function::FnGen;

use crate::ir::{Module, OpId};
use inkwell::context::Context;
use inkwell::debug_info::{
    DICompileUnit, DIFile, DIType, DWARFEmissionKind, DWARFSourceLanguage, DebugInfoBuilder,
};
use inkwell::module::{FlagBehavior, Module as LlvmModule};
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{FileType, TargetMachine};
use inkwell::types::StructType;
use inkwell::values::{FunctionValue, GlobalValue};
use std::collections::HashMap;
use std::path::Path;

/// What a back end produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    LlvmIr,
    Asm,
    Object,
}

/// A back-end failure, at the op (and so the source line) it concerns when known.
#[derive(Debug)]
pub struct Error {
    pub op: Option<OpId>,
    /// E0999 (a compiler bug) unless the back end found a limit of the target the program
    /// exceeds (E0601, the BPF stack).
    pub code: crate::diagnostics::Code,
    pub message: String,
    /// The message is written for the program's author and is reported as it is (else a stack
    /// overflow is summarised from the function's locals and anything else is a compiler bug).
    pub explained: bool,
}

impl Error {
    pub fn internal(op: Option<OpId>, message: impl Into<String>) -> Error {
        Error {
            op,
            code: crate::diagnostics::Code::E0999,
            message: message.into(),
            explained: false,
        }
    }

    /// A limit of the target the program exceeds, said in the words of `message`.
    pub fn explained(
        op: Option<OpId>,
        code: crate::diagnostics::Code,
        message: impl Into<String>,
    ) -> Error {
        Error {
            op,
            code,
            message: message.into(),
            explained: true,
        }
    }

    /// An error LLVM reported. The BPF back end's stack accounting can exceed what sema counted
    /// (temporaries); it says so in its own words, which are classified here, where LLVM's
    /// wording is known, and nowhere else.
    fn from_llvm(op: Option<OpId>, message: String) -> Error {
        let code = if message.contains("stack limit") {
            crate::diagnostics::Code::E0601
        } else {
            crate::diagnostics::Code::E0999
        };
        Error {
            op,
            code,
            message,
            explained: false,
        }
    }
}

/// What a back end adds to the shared layer.
pub(crate) trait BackEnd {
    /// The LLVM symbol of IR function `name`.
    fn function_symbol(&self, name: &str) -> String;
    /// Target attributes of a newly declared function.
    fn decorate_function<'ctx>(&self, g: &Gen<'_, 'ctx>, f: OpId, func: FunctionValue<'ctx>);
    /// Whether `f` receives its declared parameters through one context pointer (and reads them
    /// with `context_argument`) rather than as LLVM parameters.
    fn arguments_in_context(&self, m: &Module, f: OpId) -> bool;
    /// Parameter `i` of `f`, read from its context at the top of the entry block.
    fn context_argument<'ctx>(
        &self,
        fg: &FnGen<'_, '_, 'ctx>,
        f: OpId,
        i: usize,
        ty: &crate::ir::Type,
    ) -> Result<inkwell::values::BasicValueEnum<'ctx>, String>;
    /// An op of the back end's own dialect.
    fn dialect_op(&self, fg: &mut FnGen, d: &crate::ir::OpData) -> Result<(), String>;
    /// The section private constant tables go in, if the target needs one named.
    fn constant_section(&self) -> Option<&'static str>;
    /// Whether signed division and remainder are instructions (else they are built from unsigned).
    fn has_signed_division(&self) -> bool;
    /// Whether a path that never runs must still end in a return: unoptimised BPF code keeps a
    /// branch into it, and the verifier refuses code that can fall off its end.
    fn unreachable_returns(&self) -> bool {
        false
    }
}

/// A name that BTF accepts (a C identifier): IR names such as `f.loop0` use dots.
pub fn c_name(s: &str) -> String {
    s.replace('.', "__")
}

pub(crate) struct Gen<'m, 'ctx> {
    pub m: &'m Module,
    pub back_end: &'m dyn BackEnd,
    pub ctx: &'ctx Context,
    pub module: &'m LlvmModule<'ctx>,
    pub di: DebugInfoBuilder<'ctx>,
    pub cu: DICompileUnit<'ctx>,
    /// The unit's own file (the IR's file 0), which module-level debug types are attached to.
    pub file: DIFile<'ctx>,
    /// Every file of the unit, by IR file index.
    pub files: Vec<DIFile<'ctx>>,
    pub structs: HashMap<String, StructType<'ctx>>,
    /// LLVM field index of each `ks.struct` field (padding fields shift them).
    pub field_index: HashMap<String, Vec<u32>>,
    pub di_types: HashMap<String, DIType<'ctx>>,
    /// Structs whose debug type is being built (to break pointer cycles).
    pub di_in_progress: std::collections::HashSet<String>,
    /// Functions by IR symbol (and kfuncs and runtime functions by their C name).
    pub funcs: HashMap<String, FunctionValue<'ctx>>,
    /// Maps and globals by IR symbol.
    pub globals: HashMap<String, GlobalValue<'ctx>>,
    pub errors: Vec<Error>,
}

impl<'m, 'ctx> Gen<'m, 'ctx> {
    pub fn new(
        m: &'m Module,
        back_end: &'m dyn BackEnd,
        ctx: &'ctx Context,
        module: &'m LlvmModule<'ctx>,
    ) -> Self {
        let (di, cu, files) = debug_info(module, m);
        let file = files[0];
        Gen {
            m,
            back_end,
            ctx,
            module,
            di,
            cu,
            file,
            files,
            structs: HashMap::new(),
            field_index: HashMap::new(),
            di_types: HashMap::new(),
            di_in_progress: Default::default(),
            funcs: HashMap::new(),
            globals: HashMap::new(),
            errors: Vec::new(),
        }
    }

    pub fn error(&mut self, op: Option<OpId>, message: impl Into<String>) {
        self.errors.push(Error::internal(op, message));
    }

    /// The LLVM symbol of an IR function.
    pub fn function_symbol(&self, name: &str) -> String {
        self.back_end.function_symbol(name)
    }

    /// Finalises debug info, checks the module, runs LLVM's pass `pipeline` (in `opt -passes`
    /// syntax) and writes the output; `before_passes` may refuse the module, `after_passes` may
    /// rearrange the optimised one.
    pub fn finish(
        mut self,
        tm: &TargetMachine,
        pipeline: &str,
        output: Output,
        before_passes: impl FnOnce(&LlvmModule<'ctx>) -> Result<(), String>,
        after_passes: impl FnOnce(&LlvmModule<'ctx>) -> Result<(), String>,
    ) -> Result<Vec<u8>, Vec<Error>> {
        self.di.finalize();
        let mut errors = std::mem::take(&mut self.errors);
        if errors.is_empty() {
            if let Err(e) = self.module.verify() {
                errors.push(Error::internal(
                    None,
                    format!(
                        "LLVM rejected the generated IR: {}",
                        e.to_string().lines().next().unwrap_or("")
                    ),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        before_passes(self.module).map_err(|message| vec![Error::internal(None, message)])?;
        crate::timing::stage("llvm optimize", || {
            self.module
                .run_passes(pipeline, tm, PassBuilderOptions::create())
        })
        .map_err(|e| vec![Error::internal(None, e.to_string())])?;
        crate::timing::stage("llvm rewrites", || after_passes(self.module))
            .map_err(|message| vec![Error::internal(None, message)])?;
        // The rewrites after the pipeline must leave valid IR: an invalid module would abort LLVM.
        if let Err(e) = self.module.verify() {
            return Err(vec![Error::internal(
                None,
                format!(
                    "ksc's rewrite of the optimised IR is invalid: {}",
                    e.to_string().lines().next().unwrap_or("")
                ),
            )]);
        }
        let result = crate::timing::stage("llvm emit", || match output {
            Output::LlvmIr => Ok(self.module.print_to_string().to_bytes().to_vec()),
            Output::Asm => tm
                .write_to_memory_buffer(self.module, FileType::Assembly)
                .map(|b| b.as_slice().to_vec()),
            Output::Object => tm
                .write_to_memory_buffer(self.module, FileType::Object)
                .map(|b| b.as_slice().to_vec()),
        });
        let llvm_errors = diagnostics::take_errors();
        if !llvm_errors.is_empty() {
            return Err(llvm_errors
                .into_iter()
                .map(|message| Error::from_llvm(self.function_named_in(&message), message))
                .collect());
        }
        result.map_err(|e| vec![Error::internal(None, e.to_string())])
    }

    /// The function an LLVM backend message is about ("… in function NAME …"), so the error can
    /// be reported at its `.ks` definition.
    fn function_named_in(&self, message: &str) -> Option<OpId> {
        let rest = message.split("in function ").nth(1)?;
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
            .collect();
        self.m.funcs().find(|&f| {
            self.m.symbol(f).map(|s| self.function_symbol(s)).as_deref() == Some(name.as_str())
        })
    }
}

/// The compile unit (named after the unit's own file) and a debug file per source file. Files are
/// named by absolute path: LLVM reads the source lines for BPF's `.BTF.ext` line info from disk
/// while writing the object, and debuggers find the source the same way.
fn debug_info<'ctx>(
    module: &LlvmModule<'ctx>,
    m: &Module,
) -> (
    DebugInfoBuilder<'ctx>,
    DICompileUnit<'ctx>,
    Vec<DIFile<'ctx>>,
) {
    let split = |path: &str| {
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| Path::new(path).to_path_buf());
        let dir = abs
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let name = abs
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.to_string());
        (name, dir)
    };
    let paths: Vec<String> = if m.files.is_empty() {
        vec!["unit.ks".into()]
    } else {
        m.files.clone()
    };
    let ctx = module.get_context();
    module.add_basic_value_flag(
        "Debug Info Version",
        FlagBehavior::Warning,
        ctx.i32_type().const_int(3, false),
    );
    module.add_basic_value_flag(
        "Dwarf Version",
        FlagBehavior::Warning,
        ctx.i32_type().const_int(5, false),
    );
    let (name, dir) = split(&paths[0]);
    let (di, cu) = module.create_debug_info_builder(
        true,
        DWARFSourceLanguage::C,
        &name,
        &dir,
        "ksc",
        false,
        "",
        0,
        "",
        DWARFEmissionKind::Full,
        0,
        false,
        false,
        "",
        "",
    );
    let files = paths.iter().map(|p| {
        let (name, dir) = split(p);
        di.create_file(&name, &dir)
    });
    let files = files.collect();
    (di, cu, files)
}
