//! Lowering of the checked AST into the `ks` dialect: one IR function per source function, a
//! declaration op per struct, map, global, config, extern and struct_ops impl, and the source
//! span of every construct as the op's location.
//!
//! Locals live in `core.local` stack slots (LLVM's mem2reg turns them into registers later), so
//! the lowering never has to build SSA form by hand; control flow stays structured (`ks.if`,
//! `ks.while`, `ks.for`, `ks.try`, `ks.defer`) until the target lowerings flatten it.

mod body;
mod expr;
mod scopes;
mod types;

use crate::diagnostics::{FileId, SourceMap, Span};
use crate::ir::{Attr, Builder, Loc, Module, OpId, Type};
use crate::sema::consteval::ConstValue;
use crate::sema::env::{FnKind, FuncId, StructOrigin, Target};
use crate::sema::types::{StructId, Ty};
use crate::sema::Checked;
use crate::syntax::ast::{Item, ItemKind, Unit};
use crate::vocab::Storage;
use std::collections::{BTreeSet, HashMap};

/// Lowers a checked unit to a `ks` module.
impl Lowerer<'_, '_> {
    /// The Python module of a unit that calls `exec()`, made once every declaration is in the
    /// module, on each `ks.exec` (the host side embeds it; §15.7).
    fn python_module(&mut self) {
        if !crate::codegen::python::uses_exec(&self.m) {
            return;
        }
        let source = crate::codegen::python::module_source(&self.m);
        let execs: Vec<OpId> = self
            .m
            .funcs()
            .flat_map(|f| {
                self.m
                    .collect_nested(f, |o| o.opcode == crate::ir::Opcode::KsExec)
            })
            .collect();
        for op in execs {
            self.m
                .set_attr(op, "module", Some(Attr::Str(source.clone().into_bytes())));
        }
    }
}

pub fn lower_unit(unit: &Unit, checked: &Checked, sources: &SourceMap) -> Module {
    let mut lw = Lowerer {
        ck: checked,
        sources,
        m: Module::new(),
        files: HashMap::new(),
        used_structs: BTreeSet::new(),
        externs: HashMap::new(),
        has_kernel: false,
        python: unit
            .imports
            .iter()
            .filter_map(|m| Some((m.name.name.clone(), m.python.clone()?)))
            .collect(),
    };
    // The unit's own file is file 0 (back ends name their debug compile unit after it); included
    // and imported files follow in order of first use.
    if !sources.is_empty() {
        lw.loc(Span {
            file: FileId(0),
            lo: 0,
            hi: 0,
        });
    }
    // Maps live in the BPF object, so a unit with maps has kernel-side objects even without programs.
    lw.has_kernel = checked.funcs.iter().any(|f| f.kind.target() == Target::Bpf)
        || !checked.impls.is_empty()
        || !checked.maps.is_empty();
    lw.declarations(unit);
    for (i, f) in checked.funcs.iter().enumerate() {
        lw.function(FuncId(i as u32), f.item);
    }
    lw.impls(unit);
    lw.command_line();
    lw.struct_decls();
    lw.python_module();
    lw.m
}

pub(crate) struct Lowerer<'c, 'a> {
    pub ck: &'c Checked<'a>,
    pub sources: &'c SourceMap,
    pub m: Module,
    files: HashMap<FileId, u32>,
    /// Structs referenced by the module, declared at the end.
    pub used_structs: BTreeSet<StructId>,
    /// Externs declared so far (user `extern`s and helpers called by name).
    pub externs: HashMap<String, ()>,
    /// The unit has kernel-side code (globals then live in the BPF object).
    has_kernel: bool,
    /// Modules imported from `.py` files, by name (§15.8).
    pub python: HashMap<String, crate::syntax::ast::PythonSource>,
}

impl<'c, 'a> Lowerer<'c, 'a> {
    pub fn loc(&mut self, span: Span) -> Loc {
        if self.sources.is_empty() {
            return Loc::default();
        }
        let source = self.sources.get(span.file);
        let file = match self.files.get(&span.file) {
            Some(&f) => f,
            None => {
                self.m.files.push(source.display.clone());
                let f = self.m.files.len() as u32 - 1;
                self.files.insert(span.file, f);
                f
            }
        };
        let (line, col) = source.line_col(span.lo);
        Loc {
            file,
            line: line as u32,
            col: col as u32,
        }
    }

    fn top(&mut self) -> Builder<'_> {
        let body = self.m.body;
        Builder::new(&mut self.m, body)
    }

    fn const_attr(&self, v: &ConstValue) -> Attr {
        match v {
            ConstValue::Int(i) => Attr::Int(*i),
            ConstValue::Bool(b) => Attr::Bool(*b),
            ConstValue::Char(c) => Attr::Int(*c as i128),
            ConstValue::Str(s) => Attr::Str(s.clone()),
        }
    }

    fn declarations(&mut self, unit: &Unit) {
        let ck = self.ck;
        for item in &unit.items {
            let loc = self.loc(item.span);
            match &item.kind {
                ItemKind::Map(d) => {
                    let Some(mi) = ck.maps.iter().find(|m| m.name == d.name.name) else {
                        continue;
                    };
                    let key = (!mi.key.is_error()).then(|| self.ir_type(&mi.key));
                    let value = self.ir_type(&mi.value);
                    let numa = d
                        .flags
                        .iter()
                        .find(|f| f.name.name == "numa_node")
                        .and_then(|f| f.arg)
                        .map(|(n, _)| n as i128);
                    let mut b = self.top();
                    b.loc = loc;
                    b.ks_map(
                        &mi.name,
                        mi.kind,
                        key,
                        value,
                        mi.max_entries as i128,
                        mi.flags as i128,
                        mi.pinned,
                        numa,
                    );
                }
                ItemKind::Global(g) => {
                    let Some(gi) = ck.globals.iter().find(|x| x.name == g.name.name) else {
                        continue;
                    };
                    let ty = self.ir_type(&gi.ty);
                    let init = g.init.as_ref().and_then(|e| self.initialiser(e));
                    let storage = if gi.pinned {
                        Storage::Pinned
                    } else if gi.local {
                        Storage::Local
                    } else if self.has_kernel {
                        Storage::Shared
                    } else {
                        Storage::Process
                    };
                    let mut b = self.top();
                    b.loc = loc;
                    b.ks_global(&gi.name, ty, storage, init);
                }
                ItemKind::Config(c) => {
                    let Some(ci) = ck.configs.iter().find(|x| x.name == c.name.name) else {
                        continue;
                    };
                    let fields: Vec<(String, Type)> = ci
                        .fields
                        .iter()
                        .map(|f| (f.name.clone(), self.ir_type(&f.ty)))
                        .collect();
                    let defaults = c
                        .fields
                        .iter()
                        .map(|f| {
                            f.default
                                .as_ref()
                                .and_then(|e| self.initialiser(e))
                                .unwrap_or(Attr::Int(0))
                        })
                        .collect();
                    // The config's storage is the struct NAME_config (§12.3).
                    let info = crate::sema::env::StructInfo {
                        name: format!("{}_config", ci.name),
                        fields: ci.fields.clone(),
                        origin: StructOrigin::File,
                        btf_id: None,
                        kernel_layout: None,
                        span: None,
                    };
                    let (offsets, size, align) = crate::sema::layout::Layout {
                        structs: &ck.structs,
                        enums: &ck.enums,
                    }
                    .c_layout(&info);
                    let mut b = self.top();
                    b.loc = loc;
                    b.ks_struct(
                        &info.name,
                        fields.clone(),
                        offsets.into_iter().map(|o| Attr::Int(o as i128)).collect(),
                        size as i128,
                        align as i128,
                        StructOrigin::Config,
                        None,
                    );
                    b.ks_config(&ci.name, fields, defaults);
                }
                ItemKind::Extern(e) => {
                    let Some(ei) = ck.externs.iter().find(|x| x.name == e.name.name) else {
                        continue;
                    };
                    let ty = Type::Func(std::rc::Rc::new(crate::ir::FnType {
                        params: ei.params.iter().map(|p| self.ir_type(p)).collect(),
                        ret: self.ir_type(&ei.ret),
                    }));
                    let id = ei.helper_id.map(|i| i as i128);
                    let name = ei.name.clone();
                    self.externs.insert(name.clone(), ());
                    let mut b = self.top();
                    b.loc = loc;
                    b.ks_extern(&name, ty, id);
                }
                ItemKind::Struct(s) => {
                    if let Some(&id) = self.struct_id(&s.name.name).as_ref() {
                        if ck.structs[id.0 as usize].origin == StructOrigin::File {
                            self.used_structs.insert(id);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Initialisers that are array literals of constants.
    /// The value of a constant initialiser (sema checked it is one): a global's initial value,
    /// a config field's default. Array literals, nested too, are lists.
    fn initialiser(&self, e: &crate::syntax::ast::Expr) -> Option<Attr> {
        if let Some(v) = self.ck.consts.get(&e.id) {
            return Some(self.const_attr(v));
        }
        match &e.kind {
            crate::syntax::ast::ExprKind::ArrayLit(items) => items
                .iter()
                .map(|i| self.initialiser(i))
                .collect::<Option<Vec<Attr>>>()
                .map(Attr::List),
            _ => None,
        }
    }

    pub fn struct_id(&self, name: &str) -> Option<StructId> {
        match self.ck.symbols.get(name) {
            Some(crate::sema::env::Symbol::Struct(id)) => Some(*id),
            _ => self
                .ck
                .structs
                .iter()
                .position(|s| s.name == name)
                .map(|i| StructId(i as u32)),
        }
    }

    /// The IR name of a function (struct_ops methods are `<impl>_<method>`, imported ones `mod.f`).
    pub fn func_name(&self, id: FuncId) -> String {
        let f = &self.ck.funcs[id.0 as usize];
        match (&f.kind, &f.module) {
            (FnKind::StructOpsMethod { impl_name }, _) => format!("{impl_name}_{}", f.name),
            (_, Some(m)) => format!("{m}.{}", f.name),
            _ => f.name.clone(),
        }
    }

    /// The IR name of the plain kernel function a struct_ops method is also compiled to when a
    /// sibling method calls it (`<impl>.<method>`: a method is a program reading its arguments
    /// from the trampoline's context, which a BPF call cannot provide).
    pub fn method_subprogram_name(&self, id: FuncId) -> String {
        let f = &self.ck.funcs[id.0 as usize];
        match &f.kind {
            FnKind::StructOpsMethod { impl_name } => format!("{impl_name}.{}", f.name),
            _ => self.func_name(id),
        }
    }

    /// The subprogram twin of a struct_ops method that sibling methods call (§16.1).
    fn method_subprogram(&mut self, id: FuncId, item: &Item) {
        let f = &self.ck.funcs[id.0 as usize];
        let ty = Type::Func(std::rc::Rc::new(crate::ir::FnType {
            params: f.params.iter().map(|p| self.ir_type(p)).collect(),
            ret: self.ir_type(&f.ret),
        }));
        let may_throw = self.ck.may_throw.contains(&id).then_some(true);
        let name = self.method_subprogram_name(id);
        let loc = self.loc(item.span);
        let op = {
            let mut b = self.top();
            b.loc = loc;
            b.ks_func(
                &name,
                ty,
                Target::Bpf,
                None,
                None,
                None,
                may_throw,
                None,
                None,
                None,
            )
        };
        body::lower_body(self, id, op);
    }

    fn function(&mut self, id: FuncId, item: &Item) {
        if self.ck.sibling_calls.values().any(|&c| c == id) {
            self.method_subprogram(id, item);
        }
        let f = &self.ck.funcs[id.0 as usize];
        let ty = Type::Func(std::rc::Rc::new(crate::ir::FnType {
            params: f.params.iter().map(|p| self.ir_type(p)).collect(),
            ret: self.ir_type(&f.ret),
        }));
        let attach = match &f.kind {
            FnKind::Program { arg, .. } => arg.clone(),
            FnKind::StructOpsMethod { .. } => Some(f.name.clone()),
            _ => None,
        };
        let kind = f.kind.program_kind();
        let section = kind.map(|k| k.section(attach.as_deref().unwrap_or("")));
        let may_throw = self.ck.may_throw.contains(&id).then_some(true);
        let test = (f.kind == FnKind::Test).then_some(true);
        let syscall = self.ck.syscall_probes.contains(&id).then_some(true);
        let name = self.func_name(id);
        let loc = self.loc(item.span);
        let op = {
            let mut b = self.top();
            b.loc = loc;
            b.ks_func(
                &name,
                ty,
                f.kind.target(),
                kind,
                attach.map(String::into_bytes),
                section.map(String::into_bytes),
                may_throw,
                test,
                syscall,
                (f.kind == FnKind::Kfunc).then_some(true),
            )
        };
        body::lower_body(self, id, op);
    }

    /// `ks.cli` for `main(args: S)`: how each field of S is parsed from the command line (§15.2).
    /// The IR's types no longer tell a `char` from a `u8` or an enum from its integer.
    fn command_line(&mut self) {
        let ck = self.ck;
        let Some(main) = ck
            .funcs
            .iter()
            .find(|f| f.name == "main" && f.module.is_none())
        else {
            return;
        };
        let Some(Ty::Struct(id)) = main.params.first() else {
            return;
        };
        let s = &ck.structs[id.0 as usize];
        let (mut kinds, mut type_names, mut enumerators) = (Vec::new(), Vec::new(), Vec::new());
        for field in &s.fields {
            let (kind, items) = match &field.ty {
                Ty::Int(i) if i.signed() => ("int", vec![]),
                Ty::Int(_) => ("uint", vec![]),
                Ty::Bool => ("bool", vec![]),
                Ty::Char => ("char", vec![]),
                Ty::Str(_) => ("str", vec![]),
                Ty::Enum(e) => (
                    "enum",
                    ck.enums[e.0 as usize]
                        .variants
                        .iter()
                        .map(|(n, v)| {
                            Attr::List(vec![Attr::Str(n.clone().into_bytes()), Attr::Int(*v)])
                        })
                        .collect(),
                ),
                _ => continue, // E0801 already reported
            };
            kinds.push(Attr::Str(kind.as_bytes().to_vec()));
            type_names.push(Attr::Str(
                crate::sema::types::Display(&field.ty, ck)
                    .to_string()
                    .into_bytes(),
            ));
            enumerators.push(Attr::List(items));
        }
        let loc = main.item.span;
        let loc = self.loc(loc);
        let mut b = self.top();
        b.loc = loc;
        b.ks_cli(&s.name, kinds, type_names, enumerators);
    }

    fn impls(&mut self, unit: &Unit) {
        for item in &unit.items {
            let ItemKind::Impl(d) = &item.kind else {
                continue;
            };
            let Some(info) = self.ck.impls.iter().find(|i| i.name == d.name.name) else {
                continue;
            };
            let mut members = Vec::new();
            let mut methods = Vec::new();
            for m in &d.methods {
                if let ItemKind::Func(f) = &m.kind {
                    members.push(Attr::Str(f.name.name.clone().into_bytes()));
                    methods.push(Attr::Sym(format!("{}_{}", d.name.name, f.name.name)));
                }
            }
            let field_names = d
                .fields
                .iter()
                .map(|f| Attr::Str(f.name.name.clone().into_bytes()))
                .collect();
            let field_values = d
                .fields
                .iter()
                .map(|f| {
                    self.ck
                        .consts
                        .get(&f.value.id)
                        .map(|v| self.const_attr(v))
                        .unwrap_or(Attr::Int(0))
                })
                .collect();
            let kernel_struct = info.kernel_struct.clone();
            let loc = self.loc(item.span);
            self.struct_ops_layout(&kernel_struct, d, loc);
            let mut b = self.top();
            b.loc = loc;
            b.ks_impl(
                &d.name.name,
                kernel_struct.into_bytes(),
                members,
                methods,
                field_names,
                field_values,
            );
        }
    }

    /// Declares the kernel struct a struct_ops impl instantiates, with the members the impl sets at
    /// their kernel offsets: methods as function pointers, static fields as bytes or integers of
    /// the member's size. The back end lays the instance out by it (§16.1).
    fn struct_ops_layout(
        &mut self,
        kernel_struct: &str,
        d: &crate::syntax::ast::ImplDecl,
        loc: Loc,
    ) {
        let Some(btf) = self.ck.btf.get() else { return };
        let (Some(kmembers), Some(ks)) = (
            btf.struct_ops_members(kernel_struct),
            btf.struct_by_name(kernel_struct),
        ) else {
            return;
        };
        if self.m.lookup_symbol(kernel_struct).is_some() {
            return;
        }
        let mut fields = Vec::new();
        let mut offsets = Vec::new();
        for km in &kmembers {
            let method = d.methods.iter().find_map(|m| match &m.kind {
                ItemKind::Func(f) if f.name.name == km.name => {
                    Some(format!("{}_{}", d.name.name, f.name.name))
                }
                _ => None,
            });
            let ty = match (&km.kind, method) {
                (_, Some(f)) => match self
                    .m
                    .lookup_symbol(&f)
                    .map(|op| crate::ir::views::KsFunc(op).ty(&self.m).clone())
                {
                    Some(t) => t,
                    None => continue,
                },
                (crate::btf::KOpsKind::Data(kt), None)
                    if d.fields.iter().any(|f| f.name.name == km.name) =>
                {
                    let size = btf.ktype_size(kt).unwrap_or(0) as u32;
                    match kt {
                        crate::btf::KType::Int { signed, .. } if size > 0 => {
                            Type::Int(crate::sema::types::IntTy::of(size * 8, *signed))
                        }
                        _ if size > 0 => Type::Array(std::rc::Rc::new(Type::u8()), size),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            fields.push((km.name.clone(), ty));
            offsets.push(Attr::Int(km.offset_bits as i128 / 8));
        }
        let body = self.m.body;
        let pos = self
            .m
            .top_ops()
            .iter()
            .position(|&o| self.m.op(o).opcode == crate::ir::Opcode::KsFunc);
        let mut b = Builder::new(&mut self.m, body);
        b.at = pos;
        b.loc = loc;
        b.ks_struct(
            kernel_struct,
            fields,
            offsets,
            ks.size as i128,
            8,
            StructOrigin::Kernel,
            Some(ks.id as i128),
        );
    }

    /// Converts a checked type; struct references are remembered so their declarations get emitted.
    pub fn ir_type(&mut self, t: &Ty) -> Type {
        types::ir_type(self, t)
    }
}
