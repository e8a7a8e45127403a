//! Semantic analysis (docs/language.md §5–§19): order-independent name resolution in one file
//! namespace, the type system, target partitioning and call rules, and the flow and safety checks.
//!
//! The checker works in three steps: `collect` enters every top-level declaration (so order does not
//! matter), `decls` checks declarations on their own (maps, attributes, signatures, main), and
//! `body` checks every function body, typing each expression (`expr`) and statement (`stmt`).
//! Whole-program rules over the call graph (recursion, tail calls) run last (`calls`).

mod body;
pub mod builtins;
mod callgraph;
mod calls;
mod collect;
pub mod consteval;
mod decls;
pub mod env;
mod expr;
pub mod kernel_floor;
pub mod layout;
mod stmt;
pub mod types;
pub mod verdict;

use crate::btf::{KernelBtf, LazyBtf};
use crate::diagnostics::{Code, Diagnostics, Span};
use crate::syntax::ast::{ExprId, Unit};
use consteval::ConstValue;
use env::*;
use std::collections::HashMap;
use std::path::PathBuf;
use types::{EnumId, StructId, Ty, TypeNames};

pub struct CheckOptions {
    pub btf_path: Option<PathBuf>,
    pub compat: bool,
}

/// What later stages need from the checker: the resolved declarations, the type and folded value
/// of every expression, and the whole-program facts (tail-call targets, functions that may throw).
pub struct Checked<'a> {
    pub btf: LazyBtf,
    pub symbols: HashMap<String, Symbol>,
    pub funcs: Vec<FuncInfo<'a>>,
    pub externs: Vec<ExternInfo>,
    pub impls: Vec<ImplInfo>,
    pub const_items: Vec<ConstInfo>,
    /// Imported module name → its functions by name.
    pub modules: Vec<(String, HashMap<String, FuncId>)>,
    pub may_throw: std::collections::HashSet<FuncId>,
    /// Type of every local declaration, by the span of its name.
    pub local_decls: HashMap<Span, LocalDecl>,
    pub structs: Vec<StructInfo>,
    pub enums: Vec<EnumInfo>,
    pub maps: Vec<MapInfo>,
    pub globals: Vec<GlobalInfo>,
    pub configs: Vec<ConfigInfo>,
    /// Type of every expression, indexed by `ExprId`.
    pub expr_types: Vec<Ty>,
    /// Folded value of every constant expression.
    pub consts: HashMap<ExprId, ConstValue>,
    /// Kernel-side functions reachable through tail calls, in order of first appearance (§9.5).
    pub tail_call_targets: Vec<String>,
    /// Trailing expression statements lowered as `return e` (§5.3 [fix]).
    pub implicit_returns: std::collections::HashSet<ExprId>,
    /// Calls of a struct_ops method by its bare name from a sibling method of the same impl
    /// (§16.1): the call expression and the method it calls.
    pub sibling_calls: HashMap<ExprId, FuncId>,
    /// Programs traced at a syscall's x86-64 entry wrapper (`@probe("sys_openat")`, §9.2): their
    /// parameters are the syscall's arguments, read from the user registers the wrapper receives.
    pub syscall_probes: std::collections::HashSet<FuncId>,
    /// Pointers read through a helper where they are dereferenced: the pointer expression and
    /// the memory it points into (§9.2).
    pub foreign_reads: HashMap<ExprId, Foreign>,
    /// Packet pointers where they are dereferenced: read directly whatever they are cast to,
    /// kernel header structs (`iphdr`) included (§10.1).
    pub packet_reads: std::collections::HashSet<ExprId>,
    /// `new` in kernel code (bpf_obj_new, a kfunc of Linux 6.2), for `--kernel` (§19.1).
    pub kernel_allocations: Vec<Span>,
    /// Calls between the unit's functions: (caller, callee, call span).
    pub call_edges: Vec<(FuncId, FuncId, Span)>,
}

pub fn check<'a>(unit: &'a Unit, opts: &CheckOptions, diags: &mut Diagnostics) -> Checked<'a> {
    let btf = LazyBtf::new(
        opts.btf_path
            .clone()
            .unwrap_or_else(KernelBtf::default_path),
    );
    crate::timing::stage("check", || {
        let mut c = Checker::new(unit, btf, diags);
        c.compat = opts.compat;
        c.collect();
        c.check_decls();
        c.check_bodies();
        c.check_call_graph();
        c.finish()
    })
}

/// What later stages need to know about a local declaration (keyed by the name's span).
#[derive(Clone, Debug)]
pub struct LocalDecl {
    pub ty: Ty,
    /// `var v = m[k]` without a type: `v` denotes an entry of map `m` (its index), §11.3.
    pub entry_of: Option<usize>,
}

/// A `@helper` call's pointer argument that may be null: (callee, parameter, argument span, and the
/// caller's own parameter when the argument is that parameter passed on untested).
pub type HelperNullArg = (FuncId, usize, Span, Option<(FuncId, usize)>);

/// A `@helper` call's pointer argument that may point elsewhere than into the packet, in the
/// same form: `None` directly, `Some` caller parameter when it passes that one on.
pub type HelperForeignArg = HelperNullArg;

/// One local variable in scope.

#[derive(Clone, Debug)]
pub(crate) struct Local {
    pub ty: Ty,
    pub mutable: bool,
    /// `const` locals carry their value for folding.
    pub value: Option<ConstValue>,
    /// Bound to a map entry (`var v = m[k]`, §11.3): the map's index.
    pub entry_of: Option<usize>,
    /// Known not to be null on the current path (§6.8).
    pub non_null: bool,
    /// Pointer that may be null when dereferenced in kernel code.
    pub nullable: bool,
    /// A pointer parameter of a `@helper` (or a copy of one): null only if a call site may pass
    /// null, which is known once every body has been checked (§6.8).
    pub param_of: Option<(FuncId, usize)>,
    /// Ring-buffer record reserved from this map (§11.5).
    pub record_of: Option<usize>,
    /// The record was submitted or discarded.
    pub released: bool,
    /// Object from kernel `new` (§13.6).
    pub owned_object: bool,
    /// Packet pointer derived from the context (§10.1).
    pub packet: bool,
    /// Map-entry binding that may have been invalidated, and the operation that did it (§11.3).
    pub invalidated_by: Option<Span>,
    /// The use of an invalidated binding was reported (once per binding).
    pub invalidation_reported: bool,
    /// Holds the address of this function's local (name, span of the `&`): it must not be
    /// returned (E0607).
    pub address_of_local: Option<(String, Span)>,
    /// Points into memory read only through a helper (a kprobe's or syscall's pointer argument,
    /// or a pointer derived from one, §9.2).
    pub foreign: Option<Foreign>,
    /// The name in the local's declaration (for notes about shadowing).
    pub declared_at: Option<Span>,
}

impl Local {
    pub fn new(ty: Ty) -> Self {
        Local {
            ty,
            mutable: true,
            value: None,
            entry_of: None,
            non_null: false,
            nullable: false,
            param_of: None,
            record_of: None,
            released: false,
            owned_object: false,
            packet: false,
            invalidated_by: None,
            invalidation_reported: false,
            address_of_local: None,
            foreign: None,
            declared_at: None,
        }
    }
}

pub(crate) struct Checker<'a, 'd> {
    pub unit: &'a Unit,
    pub btf: LazyBtf,
    pub diags: &'d mut Diagnostics,

    pub symbols: HashMap<String, Symbol>,
    /// Where each top-level name was declared (for E0110 on redefinition).
    pub symbol_spans: HashMap<String, Span>,
    pub structs: Vec<StructInfo>,
    pub struct_by_name: HashMap<String, StructId>,
    pub enums: Vec<EnumInfo>,
    pub enum_by_name: HashMap<String, EnumId>,
    pub funcs: Vec<FuncInfo<'a>>,
    pub maps: Vec<MapInfo>,
    pub globals: Vec<GlobalInfo>,
    pub consts: Vec<ConstInfo>,
    pub configs: Vec<ConfigInfo>,
    pub externs: Vec<ExternInfo>,
    pub impls: Vec<ImplInfo>,
    /// Imported module name → its functions' ids by name.
    pub modules: Vec<(String, HashMap<String, FuncId>)>,

    pub expr_types: Vec<Ty>,
    pub const_values: HashMap<ExprId, ConstValue>,
    /// Call edges between functions (caller, callee, call span), for the call-graph checks.
    pub call_edges: Vec<(FuncId, FuncId, Span)>,
    /// Tail calls (caller, callee, span), in source order.
    pub tail_calls: Vec<(FuncId, FuncId, Span)>,
    /// Functions a throw can escape from (§13.1).
    pub may_throw: std::collections::HashSet<FuncId>,
    /// Top-level consts folded so far (`None` while in progress or after an error).
    pub const_done: HashMap<usize, Option<(Ty, ConstValue)>>,
    /// `match` expressions that never complete: exhaustive, and every arm returns, throws, breaks
    /// or continues (reachability, E0405/W0004).
    pub diverging: std::collections::HashSet<ExprId>,
    /// Trailing expression statements that are their function's value (§5.3 [fix]): lowered as
    /// `return e`.
    pub implicit_returns: std::collections::HashSet<ExprId>,
    /// Calls of a sibling struct_ops method by its bare name (§16.1).
    pub sibling_calls: HashMap<ExprId, FuncId>,
    pub syscall_probes: std::collections::HashSet<FuncId>,
    pub foreign_reads: HashMap<ExprId, Foreign>,
    pub packet_reads: std::collections::HashSet<ExprId>,
    pub kernel_allocations: Vec<Span>,
    /// `--compat`: [ext] declarations (map kinds, flags, attributes) are E0011.
    pub compat: bool,
    pub local_decls: HashMap<Span, LocalDecl>,
    /// Dereferences of `@helper` pointer parameters not tested for null: (helper, parameter,
    /// place, name). E0609 once the call sites show a caller may pass null (§6.8).
    pub helper_param_derefs: Vec<(FuncId, usize, Span, String)>,
    /// Pointer arguments of `@helper` calls that may be null: (callee, parameter, call span, and
    /// `Some` caller parameter when the argument is that parameter passed on untested).
    pub helper_null_args: Vec<HelperNullArg>,
    /// Writes of kernel struct fields through `@helper` pointer parameters: (helper, parameter,
    /// place, `struct.field`). E0311 unless every call passes a packet pointer (§10.4).
    pub helper_param_writes: Vec<(FuncId, usize, Span, String)>,
    /// Pointer arguments of `@helper` calls that may not point into the packet.
    pub helper_foreign_args: Vec<HelperForeignArg>,
    /// The type the context of the call being checked expects of its value: what a Python
    /// call's result converts to (§15.8).
    pub call_expected: Option<Ty>,
    /// Aliases not resolved yet, and whether their resolution is under way (cycle detection).
    pub pending_aliases: HashMap<String, (&'a crate::syntax::ast::TypeExpr, bool)>,
}

impl<'a, 'd> Checker<'a, 'd> {
    fn new(unit: &'a Unit, btf: LazyBtf, diags: &'d mut Diagnostics) -> Self {
        Checker {
            unit,
            btf,
            diags,
            symbols: HashMap::new(),
            symbol_spans: HashMap::new(),
            structs: Vec::new(),
            struct_by_name: HashMap::new(),
            enums: Vec::new(),
            enum_by_name: HashMap::new(),
            funcs: Vec::new(),
            maps: Vec::new(),
            globals: Vec::new(),
            consts: Vec::new(),
            configs: Vec::new(),
            externs: Vec::new(),
            impls: Vec::new(),
            modules: Vec::new(),
            expr_types: vec![Ty::Error; unit.expr_count as usize],
            const_values: HashMap::new(),
            call_edges: Vec::new(),
            tail_calls: Vec::new(),
            may_throw: Default::default(),
            const_done: HashMap::new(),
            diverging: Default::default(),
            implicit_returns: Default::default(),
            sibling_calls: HashMap::new(),
            syscall_probes: Default::default(),
            foreign_reads: HashMap::new(),
            packet_reads: Default::default(),
            kernel_allocations: Vec::new(),
            compat: false,
            local_decls: HashMap::new(),
            helper_param_derefs: Vec::new(),
            helper_null_args: Vec::new(),
            helper_param_writes: Vec::new(),
            helper_foreign_args: Vec::new(),
            pending_aliases: HashMap::new(),
            call_expected: None,
        }
    }

    pub fn error(&mut self, code: Code, span: Span, details: impl Into<String>) {
        self.diags.error(code, span, details);
    }

    /// An error followed by a `= note:` line (a suggestion).
    pub fn error_with_note(
        &mut self,
        code: Code,
        span: Span,
        details: impl Into<String>,
        note: impl Into<String>,
    ) {
        self.diags
            .push(crate::diagnostics::Diagnostic::error(code, span, details).with_note(note));
    }

    /// An error with a note that points at another place (the cause).
    pub fn error_because(
        &mut self,
        code: Code,
        span: Span,
        details: impl Into<String>,
        cause: Span,
        note: impl Into<String>,
    ) {
        self.diags.push(
            crate::diagnostics::Diagnostic::error(code, span, details).with_note_at(cause, note),
        );
    }

    pub fn warning(&mut self, code: Code, span: Span, details: impl Into<String>) {
        self.diags.warning(code, span, details);
    }

    pub fn note(&mut self, code: Code, span: Span, details: impl Into<String>) {
        self.diags.note(code, span, details);
    }

    /// Renders a type for a message.
    pub fn show(&self, t: &Ty) -> String {
        types::Display(t, self).to_string()
    }

    fn finish(self) -> Checked<'a> {
        let tail_call_targets = {
            let mut v: Vec<String> = Vec::new();
            for (_, callee, _) in &self.tail_calls {
                let n = self.funcs[callee.0 as usize].name.clone();
                if !v.contains(&n) {
                    v.push(n);
                }
            }
            v
        };
        Checked {
            btf: self.btf,
            symbols: self.symbols,
            funcs: self.funcs,
            externs: self.externs,
            impls: self.impls,
            const_items: self.consts,
            modules: self.modules,
            may_throw: self.may_throw,
            local_decls: self.local_decls,
            structs: self.structs,
            enums: self.enums,
            maps: self.maps,
            globals: self.globals,
            configs: self.configs,
            expr_types: self.expr_types,
            consts: self.const_values,
            tail_call_targets,
            implicit_returns: self.implicit_returns,
            sibling_calls: self.sibling_calls,
            syscall_probes: self.syscall_probes,
            foreign_reads: self.foreign_reads,
            packet_reads: self.packet_reads,
            kernel_allocations: self.kernel_allocations,
            call_edges: self.call_edges,
        }
    }
}

impl TypeNames for Checker<'_, '_> {
    fn struct_name(&self, id: StructId) -> String {
        self.structs
            .get(id.0 as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    fn enum_name(&self, id: EnumId) -> String {
        self.enums
            .get(id.0 as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }
}

impl TypeNames for Checked<'_> {
    fn struct_name(&self, id: StructId) -> String {
        self.structs
            .get(id.0 as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    fn enum_name(&self, id: EnumId) -> String {
        self.enums
            .get(id.0 as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }
}
