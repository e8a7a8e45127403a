//! Entering declarations: the prelude, every top-level name of the unit and its imports, type
//! resolution (`TypeExpr` → `Ty`), and the kernel scope backed by BTF (§10.4).

use super::consteval::ConstValue;
use super::env::*;
use super::types::*;
use super::Checker;
use crate::btf::KType;
use crate::diagnostics::{Code, Span};
use crate::syntax::ast::*;
use std::collections::HashMap;
use std::rc::Rc;

impl<'a> Checker<'a, '_> {
    pub(super) fn collect(&mut self) {
        self.enter_prelude();
        let unit = self.unit;
        // Names first, so declarations may refer to each other in any order.
        for item in &unit.items {
            self.declare_type_name(item);
        }
        for item in &unit.items {
            self.define_type(item);
        }
        self.break_recursive_structs();
        for (mi, m) in unit.imports.iter().enumerate() {
            self.declare_symbol(&m.name, Symbol::Module(mi));
            for item in &m.items {
                self.declare_type_name(item);
            }
            for item in &m.items {
                self.define_type(item);
            }
        }
        for item in &unit.items {
            self.declare_value(item);
        }
        for m in &unit.imports {
            let mut fns = HashMap::new();
            for item in &m.items {
                if let ItemKind::Func(f) = &item.kind {
                    let id = self.add_func(item, f, FnKind::User, Some(m.name.name.clone()));
                    fns.insert(f.name.name.clone(), id);
                }
            }
            self.modules.push((m.name.name.clone(), fns));
        }
        self.reserve_config_structs();
    }

    /// Config `c` keeps its fields in struct `c_config` (§12.3), a name the object and its BTF
    /// use too: another top-level item of that name is a redefinition.
    fn reserve_config_structs(&mut self) {
        for c in &self.configs {
            let reserved = format!("{}_config", c.name);
            if let Some(&span) = self.symbol_spans.get(&reserved) {
                let d = crate::diagnostics::Diagnostic::error(
                    Code::E0110,
                    span,
                    format!("`{reserved}` is already defined"),
                )
                .with_note(format!(
                    "config `{}` declares struct `{reserved}` for its fields (§12.3)",
                    c.name
                ));
                self.diags.push(d);
            }
        }
    }

    fn declare_symbol(&mut self, name: &Ident, sym: Symbol) {
        if self.symbols.contains_key(&name.name) {
            let d = crate::diagnostics::Diagnostic::error(
                Code::E0110,
                name.span,
                format!("`{}` is already defined", name.name),
            )
            .with_note("all top-level names share one namespace (§5.1)");
            self.diags.push(d);
            return;
        }
        self.symbols.insert(name.name.clone(), sym);
        self.symbol_spans.insert(name.name.clone(), name.span);
    }

    // ------------------------------------------------------------------------------------------
    // Prelude (§10.4): always available, with or without BTF.

    fn enter_prelude(&mut self) {
        let pkt = Ty::ptr(U8);
        let xdp_fields: Vec<(&str, Ty)> = vec![
            ("data", pkt.clone()),
            ("data_end", pkt.clone()),
            ("data_meta", pkt.clone()),
            ("ingress_ifindex", U32),
            ("rx_queue_index", U32),
            ("egress_ifindex", U32),
        ];
        self.add_builtin_struct("xdp_md", StructOrigin::Context, xdp_fields);
        let mut skb_fields: Vec<(&str, Ty)> = vec![("data", pkt.clone()), ("data_end", pkt)];
        for f in [
            "len",
            "ifindex",
            "protocol",
            "pkt_type",
            "vlan_tci",
            "ingress_ifindex",
            "hash",
            "priority",
            "mark",
        ] {
            skb_fields.push((f, U32));
        }
        skb_fields.push(("cb", Ty::array(U32, 5)));
        self.add_builtin_struct("__sk_buff", StructOrigin::Context, skb_fields);

        self.add_builtin_enum(
            "xdp_action",
            &[
                ("XDP_ABORTED", 0),
                ("XDP_DROP", 1),
                ("XDP_PASS", 2),
                ("XDP_TX", 3),
                ("XDP_REDIRECT", 4),
            ],
        );
        self.add_builtin_enum(
            "tc_action",
            &[
                ("TC_ACT_UNSPEC", -1),
                ("TC_ACT_OK", 0),
                ("TC_ACT_RECLASSIFY", 1),
                ("TC_ACT_SHOT", 2),
                ("TC_ACT_PIPE", 3),
                ("TC_ACT_STOLEN", 4),
                ("TC_ACT_QUEUED", 5),
                ("TC_ACT_REPEAT", 6),
                ("TC_ACT_REDIRECT", 7),
                ("TC_ACT_TRAP", 8),
            ],
        );
        self.add_builtin_enum("gfp_flag", &[("GFP_KERNEL", 0), ("GFP_ATOMIC", 1)]);
        let perf_type = self.add_builtin_enum(
            "perf_type",
            &[
                ("perf_type_hardware", 0),
                ("perf_type_software", 1),
                ("perf_type_tracepoint", 2),
                ("perf_type_hw_cache", 3),
                ("perf_type_raw", 4),
                ("perf_type_breakpoint", 5),
            ],
        );
        self.add_builtin_enum(
            "perf_hw_config",
            &[
                ("cpu_cycles", 0),
                ("instructions", 1),
                ("cache_references", 2),
                ("cache_misses", 3),
                ("branch_instructions", 4),
                ("branch_misses", 5),
            ],
        );
        self.add_builtin_enum(
            "perf_sw_config",
            &[
                ("cpu_clock", 0),
                ("task_clock", 1),
                ("page_faults", 2),
                ("context_switches", 3),
                ("cpu_migrations", 4),
            ],
        );
        self.add_builtin_struct(
            "perf_options",
            StructOrigin::Builtin,
            vec![
                ("perf_type", Ty::Enum(perf_type)),
                ("perf_config", U64),
                ("pid", I32),
                ("cpu", I32),
                ("period", U64),
                ("wakeup", U32),
                ("inherit", Ty::Bool),
                ("exclude_kernel", Ty::Bool),
                ("exclude_user", Ty::Bool),
            ],
        );
    }

    fn add_builtin_struct(
        &mut self,
        name: &str,
        origin: StructOrigin,
        fields: Vec<(&str, Ty)>,
    ) -> StructId {
        let id = StructId(self.structs.len() as u32);
        self.structs.push(StructInfo {
            name: name.to_string(),
            fields: fields
                .into_iter()
                .map(|(n, ty)| FieldInfo {
                    name: n.to_string(),
                    ty,
                })
                .collect(),
            origin,
            btf_id: None,
            kernel_layout: None,
            span: None,
        });
        self.struct_by_name.insert(name.to_string(), id);
        id
    }

    fn add_builtin_enum(&mut self, name: &str, variants: &[(&str, i128)]) -> EnumId {
        let id = EnumId(self.enums.len() as u32);
        let repr = if variants.iter().any(|v| v.1 < 0) {
            IntTy::I32
        } else {
            IntTy::U32
        };
        self.enums.push(EnumInfo {
            name: name.to_string(),
            variants: variants.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            repr,
        });
        self.enum_by_name.insert(name.to_string(), id);
        id
    }

    // ------------------------------------------------------------------------------------------
    // Types declared in the unit

    fn declare_type_name(&mut self, item: &'a Item) {
        match &item.kind {
            ItemKind::Struct(s) => {
                let kernel_view = item.from_header && self.is_kernel_type_name(&s.name.name);
                if let Some(&existing) = self.struct_by_name.get(&s.name.name) {
                    // A header declaration of a prelude struct is a view of it: the prelude wins.
                    if item.from_header
                        && self.structs[existing.0 as usize].origin != StructOrigin::File
                    {
                        return;
                    }
                }
                if item.attrs.iter().any(|a| a.name.name == "struct_ops") {
                    // `@struct_ops("k") struct k { … }` declares nothing new (§16.1).
                    return;
                }
                let id = StructId(self.structs.len() as u32);
                // A view of a kernel struct has the kernel's layout: its offsets and its size.
                let kernel = if kernel_view {
                    self.btf.get().and_then(|b| {
                        b.struct_by_name(&s.name.name)
                            .map(|k| (k.id, b.layout_of(&k)))
                    })
                } else {
                    None
                };
                let (btf_id, kernel_layout) = (kernel.map(|k| k.0), kernel.map(|k| k.1));
                self.structs.push(StructInfo {
                    name: s.name.name.clone(),
                    fields: Vec::new(),
                    origin: if kernel_view {
                        StructOrigin::Kernel
                    } else {
                        StructOrigin::File
                    },
                    btf_id,
                    kernel_layout,
                    span: Some(s.name.span),
                });
                self.struct_by_name.insert(s.name.name.clone(), id);
                self.declare_symbol(&s.name, Symbol::Struct(id));
            }
            ItemKind::Enum(e) => {
                if item.from_header {
                    if let Some(&existing) = self.enum_by_name.get(&e.name.name) {
                        // A header view of a prelude enum: its values must agree.
                        let known = self.enums[existing.0 as usize].variants.clone();
                        for v in &e.variants {
                            if let (Some((val, sp)), Some((_, kv))) =
                                (v.value, known.iter().find(|k| k.0 == v.name.name))
                            {
                                if val != *kv {
                                    self.error(
                                        Code::E0301,
                                        sp,
                                        format!(
                                            "`{}` is {} in the kernel's `{}`",
                                            v.name.name, kv, e.name.name
                                        ),
                                    );
                                }
                            }
                        }
                        return;
                    }
                }
                let id = EnumId(self.enums.len() as u32);
                self.enums.push(EnumInfo {
                    name: e.name.name.clone(),
                    variants: Vec::new(),
                    repr: IntTy::U32,
                });
                self.enum_by_name.insert(e.name.name.clone(), id);
                self.declare_symbol(&e.name, Symbol::Enum(id));
            }
            ItemKind::Alias { name, ty } => {
                self.declare_symbol(name, Symbol::Alias(Ty::Error));
                self.pending_aliases.insert(name.name.clone(), (ty, false));
            }
            _ => {}
        }
    }

    fn is_kernel_type_name(&self, name: &str) -> bool {
        self.btf
            .get()
            .is_some_and(|b| b.struct_by_name(name).is_some())
    }

    fn define_type(&mut self, item: &'a Item) {
        match &item.kind {
            ItemKind::Struct(s) => {
                let Some(&id) = self.struct_by_name.get(&s.name.name) else {
                    return;
                };
                if self.structs[id.0 as usize].span != Some(s.name.span) {
                    return;
                }
                let mut fields: Vec<FieldInfo> = Vec::new();
                for f in &s.fields {
                    let ty = self.resolve_type(&f.ty);
                    if fields.iter().any(|x| x.name == f.name.name) {
                        self.error(
                            Code::E0110,
                            f.name.span,
                            format!("field `{}` is declared twice", f.name.name),
                        );
                        continue;
                    }
                    if matches!(ty, Ty::Void) {
                        self.error(
                            Code::E0301,
                            f.ty.span,
                            "a struct field cannot have type void",
                        );
                    }
                    fields.push(FieldInfo {
                        name: f.name.name.clone(),
                        ty,
                    });
                }
                self.structs[id.0 as usize].fields = fields;
            }
            ItemKind::Enum(e) => {
                let Some(&id) = self.enum_by_name.get(&e.name.name) else {
                    return;
                };
                if item.from_header && !self.enums[id.0 as usize].variants.is_empty() {
                    return;
                }
                let mut next: i128 = 0;
                let mut variants = Vec::new();
                for v in &e.variants {
                    let val = v.value.map(|(x, _)| x).unwrap_or(next);
                    next = val + 1;
                    variants.push((v.name.name.clone(), val));
                    self.declare_symbol(&v.name, Symbol::EnumConst(id, val));
                }
                let repr = if variants
                    .iter()
                    .all(|v| (0..=u32::MAX as i128).contains(&v.1))
                {
                    IntTy::U32
                } else if variants
                    .iter()
                    .all(|v| (i32::MIN as i128..=i32::MAX as i128).contains(&v.1))
                {
                    IntTy::I32
                } else {
                    IntTy::I64
                };
                let info = &mut self.enums[id.0 as usize];
                info.variants = variants;
                info.repr = repr;
            }
            ItemKind::Alias { name, .. } => {
                self.resolve_alias(&name.name, name.span);
            }
            _ => {}
        }
    }

    /// Resolves an alias on first use, so aliases may refer to aliases declared later; an alias
    /// that reaches itself is E0301 at the name that closes the cycle.
    fn resolve_alias(&mut self, name: &str, at: Span) -> Ty {
        match self.pending_aliases.get(name).copied() {
            None => match self.symbols.get(name) {
                Some(Symbol::Alias(t)) => t.clone(),
                _ => Ty::Error,
            },
            Some((_, true)) => {
                self.error(
                    Code::E0301,
                    at,
                    format!("type alias `{name}` refers to itself"),
                );
                self.pending_aliases.remove(name);
                Ty::Error
            }
            Some((te, false)) => {
                self.pending_aliases.insert(name.to_string(), (te, true));
                let t = self.resolve_type(te);
                if self.pending_aliases.remove(name).is_some() {
                    self.symbols
                        .insert(name.to_string(), Symbol::Alias(t.clone()));
                }
                t
            }
        }
    }

    /// A struct that contains itself by value has no finite size: E0301 at the field that closes
    /// the cycle, whose type then becomes `Error` so layout never loops.
    fn break_recursive_structs(&mut self) {
        let mut done = vec![false; self.structs.len()];
        for start in 0..self.structs.len() {
            if self.structs[start].span.is_none() || done[start] {
                continue;
            }
            let mut path = vec![StructId(start as u32)];
            self.find_cycle(&mut path, &mut done);
        }
    }

    /// Depth-first over by-value fields; `done` marks structs already explored (no blowup on DAGs).
    fn find_cycle(&mut self, path: &mut Vec<StructId>, done: &mut Vec<bool>) {
        let cur = *path.last().expect("non-empty path");
        for fi in 0..self.structs[cur.0 as usize].fields.len() {
            let mut t = &self.structs[cur.0 as usize].fields[fi].ty;
            while let Ty::Array(e, _) = t {
                t = e;
            }
            let Ty::Struct(next) = *t else { continue };
            if path.contains(&next) {
                let s = &self.structs[cur.0 as usize];
                let (sname, fname, span) = (
                    s.name.clone(),
                    s.fields[fi].name.clone(),
                    s.span.unwrap_or_default(),
                );
                let target = self.structs[next.0 as usize].name.clone();
                self.error(Code::E0301, span, format!("`{sname}.{fname}` contains `{target}` by value, which contains `{sname}`: the size is infinite (use a pointer)"));
                self.structs[cur.0 as usize].fields[fi].ty = Ty::Error;
                continue;
            }
            if done.get(next.0 as usize).copied().unwrap_or(true) {
                continue;
            }
            path.push(next);
            self.find_cycle(path, done);
            path.pop();
        }
        done[cur.0 as usize] = true;
    }

    // ------------------------------------------------------------------------------------------
    // Values: functions, maps, globals, configs, externs, impls, consts

    fn declare_value(&mut self, item: &'a Item) {
        match &item.kind {
            ItemKind::Func(f) => {
                let kind = self.func_kind(item);
                self.add_func(item, f, kind, None);
            }
            ItemKind::Impl(imp) => {
                let kname = item
                    .attrs
                    .iter()
                    .find(|a| a.name.name == "struct_ops")
                    .and_then(|a| a.args.as_ref())
                    .and_then(|a| a.first())
                    .and_then(|a| {
                        if let AttrArg::Str(s, _) = a {
                            Some(String::from_utf8_lossy(s).into_owned())
                        } else {
                            None
                        }
                    })
                    .unwrap_or_default();
                let idx = self.impls.len();
                self.impls.push(ImplInfo {
                    name: imp.name.name.clone(),
                    kernel_struct: kname,
                    span: imp.name.span,
                });
                self.declare_symbol(&imp.name, Symbol::Impl(idx));
                for m in &imp.methods {
                    if let ItemKind::Func(f) = &m.kind {
                        self.add_func(
                            m,
                            f,
                            FnKind::StructOpsMethod {
                                impl_name: imp.name.name.clone(),
                            },
                            None,
                        );
                    }
                }
            }
            ItemKind::Map(m) => {
                let info = self.map_info(m);
                let idx = self.maps.len();
                self.maps.push(info);
                self.declare_symbol(&m.name, Symbol::Map(idx));
            }
            ItemKind::Global(g) => {
                let ty = match &g.ty {
                    Some(t) => self.resolve_type(t),
                    None => Ty::Error, // inferred from the initialiser when bodies are checked
                };
                let idx = self.globals.len();
                self.globals.push(GlobalInfo {
                    name: g.name.name.clone(),
                    ty,
                    pinned: g.pinned,
                    local: g.local,
                    span: g.name.span,
                });
                self.declare_symbol(&g.name, Symbol::Global(idx));
            }
            ItemKind::Const(k) => {
                let ty =
                    k.ty.as_ref()
                        .map(|t| self.resolve_type(t))
                        .unwrap_or(Ty::Error);
                let idx = self.consts.len();
                self.consts.push(ConstInfo {
                    name: k.name.name.clone(),
                    ty,
                    value: ConstValue::Int(0),
                });
                self.declare_symbol(&k.name, Symbol::Const(idx));
            }
            ItemKind::Config(cfg) => {
                let mut fields: Vec<FieldInfo> = Vec::new();
                for f in &cfg.fields {
                    let ty = self.resolve_type(&f.ty);
                    fields.push(FieldInfo {
                        name: f.name.name.clone(),
                        ty,
                    });
                }
                let idx = self.configs.len();
                self.configs.push(ConfigInfo {
                    name: cfg.name.name.clone(),
                    fields,
                    span: cfg.name.span,
                });
                self.declare_symbol(&cfg.name, Symbol::Config(idx));
            }
            ItemKind::Extern(e) => {
                let params = e.params.iter().map(|p| self.resolve_type(&p.ty)).collect();
                let ret = e
                    .ret
                    .as_ref()
                    .map(|t| self.resolve_type(t))
                    .unwrap_or(Ty::Void);
                let helper_id = super::builtins::helper(&e.name.name).map(|h| h.id);
                let idx = self.externs.len();
                self.externs.push(ExternInfo {
                    name: e.name.name.clone(),
                    params,
                    ret,
                    helper_id,
                });
                self.declare_symbol(&e.name, Symbol::Extern(idx));
            }
            ItemKind::Struct(_)
            | ItemKind::Enum(_)
            | ItemKind::Alias { .. }
            | ItemKind::Include(_)
            | ItemKind::Import { .. } => {}
        }
    }

    /// Kind from the attributes; attribute errors are reported by `decls`.
    fn func_kind(&self, item: &Item) -> FnKind {
        let Some(a) = item.attrs.first() else {
            let is_main = matches!(&item.kind, ItemKind::Func(f) if f.name.name == "main");
            return if is_main { FnKind::Main } else { FnKind::User };
        };
        let arg = a
            .args
            .as_ref()
            .and_then(|v| v.first())
            .and_then(|x| match x {
                AttrArg::Str(s, _) => Some(String::from_utf8_lossy(s).into_owned()),
                _ => None,
            });
        match a.name.name.as_str() {
            "helper" => FnKind::Helper,
            "kfunc" => FnKind::Kfunc,
            "private" => FnKind::Private,
            "test" => FnKind::Test,
            "kretprobe" => FnKind::Program {
                kind: ProgKind::Kretprobe,
                arg,
            },
            "probe" if arg.as_deref().is_some_and(|s| s.contains('+')) => FnKind::Program {
                kind: ProgKind::Kprobe,
                arg,
            },
            // `@kprobe("f")` is `@probe("f+0")`: a kprobe at the function's entry.
            "kprobe" => FnKind::Program {
                kind: ProgKind::Kprobe,
                arg,
            },
            n => match ProgKind::from_attribute(n) {
                Some(kind) => FnKind::Program { kind, arg },
                None => FnKind::User,
            },
        }
    }

    pub(super) fn add_func(
        &mut self,
        item: &'a Item,
        f: &'a FuncDecl,
        kind: FnKind,
        module: Option<String>,
    ) -> FuncId {
        let params = f.params.iter().map(|p| self.resolve_type(&p.ty)).collect();
        let ret = match &f.ret {
            RetSpec::Type(t) | RetSpec::Named(_, t) => self.resolve_type(t),
            RetSpec::Inferred => match &kind {
                // A program's result type is fixed by its kind (§9.2).
                FnKind::Program { kind: k, .. } if body_returns_value(&f.body) => {
                    match super::verdict::verdicts(*k, None).enum_name {
                        Some("xdp_action") => self
                            .enum_by_name
                            .get("xdp_action")
                            .map_or(I32, |id| Ty::Enum(*id)),
                        _ => I32,
                    }
                }
                _ if body_returns_value(&f.body) => U32,
                _ => Ty::Void,
            },
        };
        let id = FuncId(self.funcs.len() as u32);
        let is_method = matches!(kind, FnKind::StructOpsMethod { .. });
        self.funcs.push(FuncInfo {
            name: f.name.name.clone(),
            module: module.clone(),
            kind,
            params,
            ret,
            decl: f,
            item,
        });
        if module.is_none() && !is_method {
            if f.name.name == "sizeof" {
                self.error(
                    Code::E0110,
                    f.name.span,
                    "`sizeof` is an operator (§6.11) and cannot be redefined",
                );
            } else if f.name.name == "main" && self.symbols.contains_key("main") {
                // A second `main` is E0113, reported with the declaration checks.
            } else if f.name.name == "main"
                && matches!(self.symbols.get("main"), Some(Symbol::Func(_)))
            {
                // A second `main` is E0113 (decls.rs), not a plain redefinition.
            } else {
                self.declare_symbol(&f.name, Symbol::Func(id));
            }
        }
        id
    }

    fn map_info(&mut self, m: &MapDecl) -> MapInfo {
        let t = &m.ty;
        let kind = MapKind::declared(&t.kind.name);
        let (key, value) = match (kind, t.args.as_slice()) {
            (Some(k), [v]) if !k.has_key() => (Ty::Error, self.resolve_type(v)),
            (_, [k, v]) => (self.resolve_type(k), self.resolve_type(v)),
            (_, [v]) => (Ty::Error, self.resolve_type(v)),
            _ => (Ty::Error, Ty::Error),
        };
        MapInfo {
            name: m.name.name.clone(),
            kind: kind.unwrap_or(MapKind::Hash),
            key,
            value,
            // A non-literal size is folded with the declaration checks (decls.rs).
            max_entries: match t.size.as_ref().map(|e| &e.kind) {
                Some(ExprKind::Int(n)) => *n,
                _ => 1024,
            },
            pinned: m.pinned,
            flags: 0,
            span: m.name.span,
        }
    }

    // ------------------------------------------------------------------------------------------
    // Type resolution

    pub fn resolve_type(&mut self, t: &TypeExpr) -> Ty {
        match &t.kind {
            TypeExprKind::Prim(p) => match p {
                PrimType::U8 => U8,
                PrimType::U16 => Ty::Int(IntTy::U16),
                PrimType::U32 => U32,
                PrimType::U64 => U64,
                PrimType::I8 => Ty::Int(IntTy::I8),
                PrimType::I16 => Ty::Int(IntTy::I16),
                PrimType::I32 => I32,
                PrimType::I64 => I64,
                PrimType::Bool => Ty::Bool,
                PrimType::Char => Ty::Char,
                PrimType::Void => Ty::Void,
            },
            TypeExprKind::Str(n) => {
                if *n == 0 || *n > 4096 {
                    self.error(
                        Code::E0602,
                        t.span,
                        format!("str({n}): a string capacity is 1 to 4096 bytes"),
                    );
                    return Ty::Error;
                }
                Ty::Str(*n as u32)
            }
            TypeExprKind::Named(id) => self.named_type(id),
            TypeExprKind::Array(elem, n) => {
                let e = self.resolve_type(elem);
                if *n == 0 || *n > 1 << 20 {
                    self.error(
                        Code::E0602,
                        t.span,
                        format!("array length {n} is outside 1..=1048576"),
                    );
                    return Ty::Error;
                }
                if matches!(e, Ty::Void | Ty::Ptr(_) | Ty::Str(_) | Ty::Array(..)) {
                    self.error(
                        Code::E0602,
                        t.span,
                        format!("arrays of `{}` are not allowed", self.show(&e)),
                    );
                    return Ty::Error;
                }
                Ty::array(e, *n as u32)
            }
            TypeExprKind::Ptr(inner) => Ty::ptr(self.resolve_type(inner)),
            TypeExprKind::Fn { params, ret } => {
                let params = params.iter().map(|p| self.resolve_type(p)).collect();
                let ret = self.resolve_type(ret);
                Ty::Fn(Rc::new(FnSig { params, ret }))
            }
            TypeExprKind::Map(m) => {
                self.error(
                    Code::E0604,
                    m.span,
                    "a map type can only declare a top-level map",
                );
                Ty::Error
            }
        }
    }

    fn named_type(&mut self, id: &Ident) -> Ty {
        match self.symbols.get(&id.name) {
            Some(Symbol::Struct(s)) => return Ty::Struct(*s),
            Some(Symbol::Enum(e)) => return Ty::Enum(*e),
            Some(Symbol::Alias(_)) => return self.resolve_alias(&id.name, id.span),
            Some(_) => {
                self.error(Code::E0112, id.span, format!("`{}` is not a type", id.name));
                return Ty::Error;
            }
            None => {}
        }
        if id.name == "size_t" {
            return U64;
        }
        if let Some(&s) = self.struct_by_name.get(&id.name) {
            return Ty::Struct(s);
        }
        if let Some(&e) = self.enum_by_name.get(&id.name) {
            return Ty::Enum(e);
        }
        if let Some(t) = self.kernel_type(&id.name) {
            return t;
        }
        let hint = if self.btf.get().is_none() {
            " (kernel BTF is unavailable, so kernel types cannot be resolved)"
        } else {
            ""
        };
        self.error(
            Code::E0112,
            id.span,
            format!(
                "`{}` is not declared in this file or in kernel BTF{hint}",
                id.name
            ),
        );
        Ty::Error
    }

    /// Looks a name up in the kernel scope and brings the type into the tables.
    pub fn kernel_type(&mut self, name: &str) -> Option<Ty> {
        let btf = self.btf.get()?;
        if let Some(ks) = btf.struct_by_name(name) {
            let layout = btf.layout_of(&ks);
            return Some(Ty::Struct(
                self.intern_kernel_struct(&ks.name, ks.id, layout),
            ));
        }
        if let Some(ke) = btf.enum_by_name(name) {
            let id = EnumId(self.enums.len() as u32);
            let repr = IntTy::of(ke.size * 8, ke.signed);
            self.enums.push(EnumInfo {
                name: name.to_string(),
                variants: ke
                    .values
                    .iter()
                    .map(|(n, v)| (n.clone(), *v as i128))
                    .collect(),
                repr,
            });
            self.enum_by_name.insert(name.to_string(), id);
            return Some(Ty::Enum(id));
        }
        if let Some(KType::Int {
            size,
            signed,
            is_bool,
            is_char,
        }) = btf.typedef_int(name)
        {
            return Some(int_ktype(size, signed, is_bool, is_char));
        }
        None
    }

    /// A kernel struct's entry; its fields are read from BTF on first access.
    fn intern_kernel_struct(&mut self, name: &str, btf_id: u32, layout: KernelLayout) -> StructId {
        if let Some(&id) = self.struct_by_name.get(name) {
            return id;
        }
        let id = StructId(self.structs.len() as u32);
        self.structs.push(StructInfo {
            name: name.to_string(),
            fields: Vec::new(),
            origin: StructOrigin::Kernel,
            btf_id: Some(btf_id),
            kernel_layout: Some(layout),
            span: None,
        });
        self.struct_by_name.insert(name.to_string(), id);
        id
    }

    /// Field lookup, loading kernel struct members from BTF when needed. A kernel member whose
    /// type KernelScript cannot represent (a flexible array) has the error type: the caller
    /// reports it (`unrepresentable_field`).
    pub fn struct_field(&mut self, id: StructId, field: &str) -> Option<Ty> {
        let info = &self.structs[id.0 as usize];
        if let Some(f) = info.field(field) {
            return Some(f.ty.clone());
        }
        if info.origin != StructOrigin::Kernel || info.span.is_some() {
            return None;
        }
        let btf_id = info.btf_id?;
        let ks = self.btf.get()?.struct_by_id(btf_id)?;
        let m = ks.member(field)?.clone();
        let ty = self.ktype_to_ty(&m.ty);
        self.structs[id.0 as usize].fields.push(FieldInfo {
            name: field.to_string(),
            ty: ty.clone(),
        });
        Some(ty)
    }

    pub fn ktype_to_ty(&mut self, k: &KType) -> Ty {
        match k {
            KType::Void => Ty::Void,
            KType::Int {
                size,
                signed,
                is_bool,
                is_char,
            } => int_ktype(*size, *signed, *is_bool, *is_char),
            KType::Ptr(inner) => Ty::ptr(self.ktype_to_ty(inner)),
            KType::Array { elem, len } => {
                let e = self.ktype_to_ty(elem);
                if *len == 0 {
                    Ty::Error
                } else {
                    Ty::array(e, *len)
                }
            }
            KType::Struct { name, id } | KType::Union { name, id } => {
                // A named member of an anonymous type (`in6_addr`'s `in6_u`) gets the type
                // under a name no C type has, which BTF accepts as an identifier.
                let kind = if matches!(k, KType::Union { .. }) {
                    "union"
                } else {
                    "struct"
                };
                let anonymous = format!("__anon_{kind}_{id}");
                let name = if name.is_empty() { &anonymous } else { name };
                let layout = (self.btf.get())
                    .and_then(|b| b.struct_by_id(*id).map(|k| b.layout_of(&k)))
                    .unwrap_or(KernelLayout { size: 0, align: 1 });
                Ty::Struct(self.intern_kernel_struct(name, *id, layout))
            }
            KType::Enum { size, signed, .. } => Ty::Int(IntTy::of(size * 8, *signed)),
            KType::FuncPtr => Ty::ptr(Ty::Void),
            KType::Unknown => Ty::Error,
        }
    }
}

fn int_ktype(size: u32, signed: bool, is_bool: bool, is_char: bool) -> Ty {
    if is_bool {
        Ty::Bool
    } else if is_char {
        Ty::Char
    } else {
        Ty::Int(IntTy::of((size * 8).clamp(8, 64), signed))
    }
}

/// §5.3: a function without `->` returns `u32` if any `return` has a value.
fn body_returns_value(b: &Block) -> bool {
    b.stmts.iter().any(stmt_returns_value)
}

fn stmt_returns_value(s: &Stmt) -> bool {
    match &s.kind {
        StmtKind::Return(Some(_)) => true,
        StmtKind::If { then, els, .. } => {
            body_returns_value(then)
                || els.as_ref().is_some_and(|e| match &**e {
                    ElseBranch::Block(b) => body_returns_value(b),
                    ElseBranch::If(s) => stmt_returns_value(s),
                })
        }
        StmtKind::While { body, .. }
        | StmtKind::ForRange { body, .. }
        | StmtKind::ForEach { body, .. } => body_returns_value(body),
        StmtKind::Try { body, catches } => {
            body_returns_value(body) || catches.iter().any(|c| body_returns_value(&c.body))
        }
        _ => false,
    }
}
