//! Checks on declarations that need no function bodies: attributes and program signatures (§9.1–9.2,
//! §17.1), `main` and the unit's shape (§9.1, §15.1–15.2), maps and their flags (§11.1), globals
//! (§12.1), config fields (§12.3) and struct_ops (§16.1). Codes and positions follow §18.2.

use super::builtins::HelperTy;
use super::consteval::ConstValue;
use super::env::*;
use super::types::*;
use super::Checker;
use crate::btf::{KFuncSig, KOpsKind, KType};
use crate::diagnostics::{Code, FileId, Span};
use crate::syntax::ast::*;

/// The longest file name Linux file systems, bpffs among them, accept (NAME_MAX).
const PIN_NAME_MAX: usize = 255;

/// Every attribute a function may carry. Each selects the function's target, so each is a "kind
/// attribute" in the sense of §9.2: at most one per function.
const FN_ATTRS: &[&str] = &[
    "xdp",
    "tc",
    "probe",
    "fexit",
    "kretprobe",
    "tracepoint",
    "tp_btf",
    "perf_event",
    "lsm",
    "cgroup_skb",
    "helper",
    "kfunc",
    "private",
    "test",
];

/// Attributes that are [ext] (§9.2) and so rejected by `--compat`.
const EXT_ATTRS: &[&str] = &["fexit", "kretprobe", "tp_btf", "lsm", "cgroup_skb"];

/// Most parameters a fentry-style program reads from its context array (§19).
const MAX_TRACED_PARAMS: usize = 6;
/// Registers carry a syscall's arguments; `__x64_` names its x86-64 entry wrapper.
const SYSCALL_ARGS: usize = 6;
const SYSCALL_ENTRY_PREFIX: &str = "__x64_";
/// Most parameters of a BPF subprogram or kfunc (§9.6, §19).
const MAX_CALL_PARAMS: usize = 5;

impl<'a> Checker<'a, '_> {
    pub(super) fn check_decls(&mut self) {
        let unit = self.unit;
        for item in &unit.items {
            match &item.kind {
                ItemKind::Func(_) => {}
                ItemKind::Impl(imp) => self.check_impl(item, imp),
                ItemKind::Struct(s) if item.attrs.iter().any(|a| a.name.name == "struct_ops") => {
                    self.check_struct_ops_struct(item, s)
                }
                ItemKind::Map(m) => self.check_map(item, m),
                ItemKind::Global(g) => self.check_global(item, g),
                ItemKind::Config(cfg) => {
                    self.attrs_not_allowed(item);
                    self.check_config_fields(cfg);
                }
                ItemKind::Extern(e) => {
                    self.attrs_not_allowed(item);
                    self.check_extern(e);
                }
                _ => self.attrs_not_allowed(item),
            }
        }
        for i in 0..self.funcs.len() {
            self.check_function_decl(i);
        }
        self.check_main_and_unit();
    }

    /// E0201 on every attribute of an item that takes none.
    fn attrs_not_allowed(&mut self, item: &Item) {
        for a in &item.attrs {
            let msg = match a.name.name.as_str() {
                "flags" => "`@flags` annotates a map declaration".to_string(),
                "struct_ops" => "`@struct_ops` annotates an impl block or a struct".to_string(),
                n => format!("`@{n}` can only annotate a function"),
            };
            self.error(Code::E0201, a.span, msg);
        }
    }

    /// §5.4: an `extern` of a standard helper must have the helper's parameter count (E0309); any
    /// other `extern` is a kfunc and must match a function of kernel BTF: E0111 when there is
    /// none, E0308 for another parameter count, E0309 for a parameter or return type the kernel's
    /// prototype does not have (integers by size and signedness, pointers by pointee).
    fn check_extern(&mut self, e: &ExternDecl) {
        let name = e.name.name.as_str();
        if let Some(h) = super::builtins::helper(name) {
            self.check_helper_extern(e, h);
            return;
        }
        let Some(btf) = self.btf.get() else {
            self.warning(
                Code::W0007,
                e.name.span,
                format!("kernel function `{name}` cannot be checked"),
            );
            return;
        };
        let Some(sig) = btf.func_proto(name) else {
            // §5.4: kfuncs are resolved at load, also in modules' BTF; one a loaded module
            // defines is taken as declared, one found nowhere may come from a module loaded later.
            if self.btf.module_defining(name).is_none() {
                self.warning(
                    Code::W0008,
                    e.name.span,
                    format!("no kfunc `{name}` in the kernel's or any loaded module's BTF; loading fails unless a module that defines it is loaded first"),
                );
            }
            return;
        };
        let Some(info) = self.externs.iter().find(|x| x.name == name).cloned() else {
            return;
        };
        if info.params.len() != sig.params.len() {
            let msg = format!(
                "the kernel function `{name}` takes {} argument(s); this extern declares {}",
                sig.params.len(),
                info.params.len()
            );
            self.error(Code::E0308, e.name.span, msg);
            return;
        }
        for (i, (p, (kname, k))) in info.params.iter().zip(&sig.params).enumerate() {
            if !self.matches_ktype(p, k, true) {
                let span = e.params.get(i).map(|p| p.name.span).unwrap_or(e.name.span);
                let kname = if kname.is_empty() {
                    String::new()
                } else {
                    format!(" `{kname}`")
                };
                self.error(
                    Code::E0309,
                    span,
                    format!(
                        "parameter {} of `{name}`{kname} is `{k}` in the kernel, not `{}`",
                        i + 1,
                        self.show(p)
                    ),
                );
            }
        }
        let ret_ok = match (&info.ret, &sig.ret) {
            (Ty::Void, KType::Void) => true,
            (Ty::Void, _) | (_, KType::Void) => false,
            (r, k) => self.matches_ktype(r, k, true),
        };
        if !ret_ok {
            let span = e.ret.as_ref().map(|t| t.span).unwrap_or(e.name.span);
            self.error(
                Code::E0309,
                span,
                format!(
                    "`{name}` returns `{}` in the kernel, not `{}`",
                    sig.ret,
                    self.show(&info.ret)
                ),
            );
        }
    }

    /// An `extern` of a standard helper declares its parameters, or for a variadic helper a prefix
    /// of them down to the fixed ones (`extern bpf_trace_printk(fmt: *u8, fmt_size: u32) -> i64`);
    /// pointers must be declared as pointers and integers as integers of any width (the calling
    /// convention passes 64-bit registers), and the result likewise or `void` (E0309).
    fn check_helper_extern(&mut self, e: &ExternDecl, h: &super::builtins::Helper) {
        let fixed = h.fixed_params();
        if !(fixed..=h.params.len()).contains(&e.params.len()) {
            let takes = if fixed < h.params.len() {
                format!(
                    "{fixed} to {} argument(s) (it is variadic after {fixed})",
                    h.params.len()
                )
            } else {
                format!("{} argument(s)", h.params.len())
            };
            let msg = format!(
                "the BPF helper `{}` takes {takes}; this extern declares {}",
                h.name,
                e.params.len()
            );
            self.error(Code::E0309, e.name.span, msg);
            return;
        }
        let Some(info) = self.externs.iter().find(|x| x.name == e.name.name).cloned() else {
            return;
        };
        let shape_ok = |t: &Ty, k: HelperTy| match k {
            HelperTy::Ptr | HelperTy::Ctx | HelperTy::TaskBtf => {
                matches!(t, Ty::Ptr(_) | Ty::Error)
            }
            HelperTy::Void => matches!(t, Ty::Void | Ty::Error),
            HelperTy::U32 | HelperTy::U64 | HelperTy::I32 | HelperTy::I64 => matches!(
                t,
                Ty::Int(_) | Ty::Enum(_) | Ty::Bool | Ty::Char | Ty::Error
            ),
        };
        for (i, (p, &k)) in info.params.iter().zip(h.params).enumerate() {
            if !shape_ok(p, k) {
                let what = if k.ty().is_ptr() {
                    "a pointer"
                } else {
                    "an integer"
                };
                self.error(
                    Code::E0309,
                    e.params[i].name.span,
                    format!(
                        "parameter {} of the BPF helper `{}` is {what} (`{}`), not `{}`",
                        i + 1,
                        h.name,
                        k.spelling(),
                        self.show(p)
                    ),
                );
            }
        }
        if !matches!(info.ret, Ty::Void) && !shape_ok(&info.ret, h.ret) {
            let span = e.ret.as_ref().map(|t| t.span).unwrap_or(e.name.span);
            self.error(
                Code::E0309,
                span,
                format!(
                    "the BPF helper `{}` returns `{}`, not `{}`",
                    h.name,
                    h.ret.spelling(),
                    self.show(&info.ret)
                ),
            );
        }
    }

    // ------------------------------------------------------------------------------------------
    // Functions: attributes and signatures

    fn check_function_decl(&mut self, i: usize) {
        let info = &self.funcs[i];
        // Imported functions are userspace by construction; import validation reports the rest.
        if info.module.is_some() {
            return;
        }
        let (item, decl) = (info.item, info.decl);
        if matches!(info.kind, FnKind::StructOpsMethod { .. }) {
            for a in &item.attrs {
                self.error(
                    Code::E0201,
                    a.span,
                    "methods of a struct_ops impl take no attributes",
                );
            }
            return;
        }
        if decl.name.name == "main" {
            for a in &item.attrs {
                self.error(
                    Code::E0116,
                    a.span,
                    format!(
                        "`main` is userspace code and cannot carry `@{}`",
                        a.name.name
                    ),
                );
            }
            // Checked as main whatever the attribute said, so bodies see one consistent target.
            self.funcs[i].kind = FnKind::Main;
            return;
        }
        let mut kind_attr: Option<&'a Attribute> = None;
        for a in &item.attrs {
            let n = a.name.name.as_str();
            if !FN_ATTRS.contains(&n) {
                let why = match n {
                    "struct_ops" => {
                        "`@struct_ops` annotates an impl block or a struct, not a function"
                            .to_string()
                    }
                    "flags" => "`@flags` annotates a map, not a function".to_string(),
                    _ => format!("unknown attribute `@{n}`"),
                };
                self.error(Code::E0201, a.span, why);
            } else if let Some(first) = kind_attr {
                self.error(
                    Code::E0201,
                    a.span,
                    format!(
                        "a function takes one kind attribute; it already has `@{}`",
                        first.name.name
                    ),
                );
            } else {
                kind_attr = Some(a);
            }
        }
        let Some(a) = kind_attr else { return };
        // collect.rs takes the kind from the first attribute; when an unknown one came first, the
        // function is still checked as what its kind attribute says (one error, no cascade).
        if !std::ptr::eq(a, &item.attrs[0]) {
            self.funcs[i].kind = kind_of_attr(a);
        }
        if self.compat && EXT_ATTRS.contains(&a.name.name.as_str()) {
            self.error(
                Code::E0011,
                a.span,
                format!(
                    "`@{}` is a ksc extension (rejected by --compat)",
                    a.name.name
                ),
            );
        }
        let Some(target) = self.check_attr_args(a) else {
            return;
        };
        if let Err(msg) = self.check_signature(i, a, &target) {
            self.error(Code::E0203, decl.name.span, msg);
        }
    }

    /// E0202 for a missing, extra or malformed argument. Returns the argument ("" for kinds without
    /// one) when it is well-formed.
    fn check_attr_args(&mut self, a: &Attribute) -> Option<String> {
        let n = a.name.name.as_str();
        let arg = single_str_arg(a);
        let problem = match n {
            "xdp" | "perf_event" | "helper" | "kfunc" | "private" | "test" => {
                if a.args.is_none() {
                    return Some(String::new());
                }
                format!("`@{n}` takes no argument")
            }
            "tc" | "cgroup_skb" => match arg {
                Some(d) if d == "ingress" || d == "egress" => return Some(d),
                _ => format!("`@{n}` needs a direction: `@{n}(\"ingress\")` or `@{n}(\"egress\")`"),
            },
            "tracepoint" => match arg {
                Some(t)
                    if t.split_once('/').is_some_and(|(c, e)| {
                        !c.is_empty() && !e.is_empty() && !e.contains('/')
                    }) =>
                {
                    return Some(t)
                }
                _ => {
                    "`@tracepoint` needs a \"category/event\" argument, e.g. \"sched/sched_switch\""
                        .to_string()
                }
            },
            "probe" => match arg {
                Some(t) if valid_probe_target(&t) => return Some(t),
                _ => {
                    "`@probe` needs a kernel function name, optionally with \"+offset\"".to_string()
                }
            },
            _ => match arg {
                Some(t) if !t.is_empty() && !t.contains(['+', '/']) => return Some(t),
                _ => format!(
                    "`@{n}` needs a string argument naming its {}",
                    if n == "lsm" {
                        "hook"
                    } else if n == "tp_btf" {
                        "event"
                    } else {
                        "kernel function"
                    }
                ),
            },
        };
        self.error(Code::E0202, a.span, problem);
        None
    }

    /// The §9.2 table (and §9.6, §17.1). Unknown attach targets are reported here (E0204 at the
    /// attribute, or W0007 without BTF); a signature mismatch is returned for E0203.
    fn check_signature(&mut self, i: usize, a: &Attribute, target: &str) -> Result<(), String> {
        let params = self.funcs[i].params.clone();
        let ret = self.funcs[i].ret.clone();
        let n = a.name.name.as_str();
        match n {
            "xdp" => {
                self.ctx_param(n, &params, "xdp_md")?;
                self.program_ret(n, &ret)
            }
            "tc" | "cgroup_skb" => {
                self.ctx_param(n, &params, "__sk_buff")?;
                self.program_ret(n, &ret)
            }
            "perf_event" => {
                self.ctx_param(n, &params, "bpf_perf_event_data")?;
                self.program_ret(n, &ret)
            }
            "tracepoint" => {
                self.tracepoint_params(a, target, &params)?;
                self.program_ret(n, &ret)
            }
            "probe" | "fexit" => {
                // `func+off` is a kprobe: same typing, read from registers.
                let func = target.split('+').next().unwrap_or(target);
                if let Some(entry) = self.syscall_entry(func) {
                    return self.syscall_probe(i, a, target, &entry);
                }
                let Some(sig) = self.traced_function(a, func) else {
                    return self.program_ret(n, &ret);
                };
                let with_ret = n == "fexit" && params.len() == sig.params.len() + 1;
                let own = if with_ret {
                    &params[..sig.params.len()]
                } else {
                    &params[..]
                };
                if own.len() > MAX_TRACED_PARAMS {
                    return Err(format!("a traced function's parameters are read from a context of at most {MAX_TRACED_PARAMS} arguments"));
                }
                self.kernel_prefix(func, own, &sig.params)?;
                if with_ret {
                    let last = &params[params.len() - 1];
                    if sig.ret == KType::Void {
                        return Err(format!(
                            "`{func}` returns void, so `@fexit` takes no return-value parameter"
                        ));
                    }
                    if !self.matches_ktype(last, &sig.ret, true) {
                        return Err(format!("the return-value parameter must be `{}` (what `{func}` returns), not `{}`", sig.ret, self.show(last)));
                    }
                }
                self.program_ret(n, &ret)
            }
            "kretprobe" => {
                match self.syscall_entry(target) {
                    Some(entry) => self.resolve_syscall(i, a, target, &entry, "its return value"),
                    None => {
                        self.traced_function(a, target);
                    }
                }
                match params.as_slice() {
                    [] => {}
                    [Ty::Int(_) | Ty::Enum(_) | Ty::Ptr(_) | Ty::Bool | Ty::Char | Ty::Error] => {}
                    [t] => return Err(format!("the return value of `{target}` is an integer or a pointer, not `{}`", self.show(t))),
                    _ => return Err("`@kretprobe` takes `()` or `(ret: T)` with the traced function's return value".to_string()),
                }
                self.program_ret(n, &ret)
            }
            "tp_btf" => {
                let args = match self.btf.get() {
                    None => None,
                    Some(b) => match b.tp_btf_args(target) {
                        Some(args) => Some(args),
                        None => {
                            self.error(Code::E0204, a.span, format!("no raw tracepoint `{target}` (`btf_trace_{target}`) in kernel BTF"));
                            return self.program_ret(n, &ret);
                        }
                    },
                };
                match args {
                    Some(args) => self.kernel_prefix(target, &params, &args)?,
                    None => self.warning(
                        Code::W0007,
                        a.span,
                        format!("the arguments of tracepoint `{target}` cannot be checked"),
                    ),
                }
                self.program_ret(n, &ret)
            }
            "lsm" => {
                let sig = match self.btf.get() {
                    None => None,
                    Some(b) => match b.lsm_hook_args(target) {
                        Some(sig) => Some(sig),
                        None => {
                            self.error(
                                Code::E0204,
                                a.span,
                                format!(
                                    "no LSM hook `{target}` (`bpf_lsm_{target}`) in kernel BTF"
                                ),
                            );
                            return self.program_ret(n, &ret);
                        }
                    },
                };
                match sig {
                    Some(sig) => {
                        // An extra trailing parameter receives the previous hook's verdict (`ret: i32`).
                        let with_ret = params.len() == sig.params.len() + 1;
                        let own = if with_ret {
                            &params[..sig.params.len()]
                        } else {
                            &params[..]
                        };
                        self.kernel_prefix(target, own, &sig.params)?;
                        if with_ret && !is_int32(&params[params.len() - 1]) {
                            return Err(format!("the verdict parameter after the hook's arguments is `i32`, not `{}`", self.show(&params[params.len() - 1])));
                        }
                    }
                    None => self.warning(
                        Code::W0007,
                        a.span,
                        format!("the arguments of LSM hook `{target}` cannot be checked"),
                    ),
                }
                self.program_ret(n, &ret)
            }
            "helper" | "kfunc" => {
                if params.len() > MAX_CALL_PARAMS {
                    return Err(format!("`@{n}` functions take at most {MAX_CALL_PARAMS} parameters (eBPF passes arguments in 5 registers)"));
                }
                Ok(())
            }
            "test" => {
                if !params.is_empty() || !matches!(ret, Ty::Int(IntTy::I32) | Ty::Bool | Ty::Error)
                {
                    return Err(format!(
                        "a test is `fn {}() -> i32` or `fn {}() -> bool`",
                        self.funcs[i].name, self.funcs[i].name
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// One context parameter `*ctx` (or the opaque `*u8`).
    fn ctx_param(&self, kind: &str, params: &[Ty], ctx: &str) -> Result<(), String> {
        let ok = match params {
            [Ty::Error] => true,
            [Ty::Ptr(p)] => match &**p {
                Ty::Struct(s) => self.structs[s.0 as usize].name == ctx,
                Ty::Int(IntTy::U8) | Ty::Error => true,
                _ => false,
            },
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let got = params
            .iter()
            .map(|p| self.show(p))
            .collect::<Vec<_>>()
            .join(", ");
        Err(format!(
            "`@{kind}` programs take one parameter of type `*{ctx}`, not `({got})`"
        ))
    }

    /// Program results are fixed by §9.2: `xdp_action` for XDP, `i32` (or `tc_action`) for tc,
    /// `i32` for every other kind. A program without `->` gets its kind's type (collect.rs).
    fn program_ret(&self, kind: &str, ret: &Ty) -> Result<(), String> {
        let ok = match ret {
            Ty::Error => true,
            Ty::Int(IntTy::I32) => kind != "xdp",
            Ty::Enum(e) => {
                let n = self.enums[e.0 as usize].name.as_str();
                (kind == "xdp" && n == "xdp_action") || (kind == "tc" && n == "tc_action")
            }
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let want = match kind {
            "xdp" => "`xdp_action`",
            "tc" => "`i32` or `tc_action`",
            _ => "`i32`",
        };
        Err(format!(
            "`@{kind}` programs return {want}, not `{}`",
            self.show(ret)
        ))
    }

    /// `sys_NAME`, when no kernel function has that name, is the syscall NAME traced at its x86-64
    /// entry wrapper `__x64_sys_NAME`, as libbpf's `ksyscall` resolves it (§9.2). Without BTF the
    /// wrapper is assumed.
    fn syscall_entry(&self, func: &str) -> Option<String> {
        if !func.starts_with("sys_") {
            return None;
        }
        let entry = format!("{SYSCALL_ENTRY_PREFIX}{func}");
        match self.btf.get() {
            Some(b) => {
                (b.func_proto(func).is_none() && b.func_proto(&entry).is_some()).then_some(entry)
            }
            None => Some(entry),
        }
    }

    /// Attaches program `i` to a syscall's entry wrapper, with a note naming the symbol chosen.
    fn resolve_syscall(&mut self, i: usize, a: &Attribute, func: &str, entry: &str, what: &str) {
        let assumed = if self.btf.get().is_none() {
            " (assumed: no kernel BTF to check it)"
        } else {
            ""
        };
        self.note(
            Code::N0001,
            a.span,
            format!("syscall `{func}` is traced at `{entry}`, its x86-64 entry{assumed}; the program sees {what}"),
        );
        if let FnKind::Program { arg, .. } = &mut self.funcs[i].kind {
            *arg = Some(entry.to_string());
        }
    }

    /// `@probe("sys_NAME")`: the declared parameters are the syscall's arguments (at most six
    /// integers or pointers), read from the user registers the entry wrapper receives. Pointers
    /// among them point into user memory.
    fn syscall_probe(
        &mut self,
        i: usize,
        a: &Attribute,
        target: &str,
        entry: &str,
    ) -> Result<(), String> {
        let n = a.name.name.as_str();
        let func = target.split('+').next().unwrap_or(target);
        if n == "fexit" || target.contains('+') {
            self.error_with_note(
                Code::E0204,
                a.span,
                format!("`{func}` is a syscall, traced at its entry wrapper `{entry}`, which `@{n}(\"{target}\")` cannot follow"),
                format!("use `@probe(\"{func}\")` for its arguments or `@kretprobe(\"{func}\")` for its return value"),
            );
            return Ok(());
        }
        let params = self.funcs[i].params.clone();
        if params.len() > SYSCALL_ARGS {
            return Err(format!(
                "a syscall has at most {SYSCALL_ARGS} arguments; `{func}` declares {}",
                params.len()
            ));
        }
        if let Some(bad) = params.iter().find(|t| {
            !matches!(
                t,
                Ty::Int(_) | Ty::Enum(_) | Ty::Bool | Ty::Char | Ty::Ptr(_) | Ty::Error
            )
        }) {
            return Err(format!(
                "syscall arguments are integers or pointers, not `{}`",
                self.show(bad)
            ));
        }
        self.resolve_syscall(i, a, func, entry, "its arguments");
        self.syscall_probes.insert(FuncId(i as u32));
        let ret = self.funcs[i].ret.clone();
        self.program_ret(n, &ret)
    }

    /// Prototype of a traced kernel function; E0204 when BTF lacks it, W0007 when there is no BTF.
    fn traced_function(&mut self, a: &Attribute, func: &str) -> Option<KFuncSig> {
        let Some(btf) = self.btf.get() else {
            self.warning(
                Code::W0007,
                a.span,
                format!("kernel function `{func}` cannot be checked"),
            );
            return None;
        };
        let sig = btf.func_proto(func);
        if sig.is_none() {
            let syscall = if func.starts_with("sys_") {
                format!(", and no syscall entry `{SYSCALL_ENTRY_PREFIX}{func}`")
            } else {
                String::new()
            };
            self.error(
                Code::E0204,
                a.span,
                format!("no kernel function `{func}` in kernel BTF{syscall}"),
            );
        }
        sig
    }

    /// Declared parameters must be a prefix of the kernel's (§9.2 notes on matching).
    fn kernel_prefix(
        &self,
        what: &str,
        params: &[Ty],
        kparams: &[(String, KType)],
    ) -> Result<(), String> {
        if params.len() > kparams.len() {
            return Err(format!(
                "`{what}` has {} parameter(s) in the kernel, {} declared",
                kparams.len(),
                params.len()
            ));
        }
        for (i, (p, (kname, k))) in params.iter().zip(kparams).enumerate() {
            if !self.matches_ktype(p, k, true) {
                let kname = if kname.is_empty() {
                    String::new()
                } else {
                    format!(" `{kname}`")
                };
                return Err(format!(
                    "parameter {} of `{what}`{kname} is `{k}` in the kernel, not `{}`",
                    i + 1,
                    self.show(p)
                ));
            }
        }
        Ok(())
    }

    /// `(ctx: *trace_event_raw_EVENT)`; syscall events share `sys_enter`/`sys_exit` records.
    fn tracepoint_params(
        &mut self,
        a: &Attribute,
        target: &str,
        params: &[Ty],
    ) -> Result<(), String> {
        let (cat, event) = target.split_once('/').unwrap_or(("", target));
        let expected = if cat == "syscalls" && event.starts_with("sys_enter_") {
            "trace_event_raw_sys_enter".to_string()
        } else if cat == "syscalls" && event.starts_with("sys_exit_") {
            "trace_event_raw_sys_exit".to_string()
        } else {
            format!("trace_event_raw_{event}")
        };
        let declared = match params {
            [Ty::Ptr(p)] => match &**p {
                Ty::Struct(s) => Some(self.structs[s.0 as usize].name.clone()),
                _ => None,
            },
            _ => None,
        };
        // Events of a DEFINE_EVENT class use the class's record (`trace_event_raw_<template>`), so a
        // different existing `trace_event_raw_*` record is accepted when EVENT has none of its own.
        let mut other_record = false;
        match self.btf.get() {
            None => self.warning(
                Code::W0007,
                a.span,
                format!("tracepoint `{target}` cannot be checked"),
            ),
            Some(b) => {
                let own = b.has_struct(&expected);
                other_record = !own
                    && declared
                        .as_deref()
                        .is_some_and(|d| d.starts_with("trace_event_raw_") && b.has_struct(d));
                if !own && !other_record && b.tp_btf_args(event).is_none() {
                    self.error(
                        Code::E0204,
                        a.span,
                        format!("no tracepoint `{target}` in kernel BTF (no `{expected}`)"),
                    );
                    return Ok(());
                }
            }
        }
        let ok = match params {
            [Ty::Error] => true,
            [Ty::Ptr(p)] => {
                matches!(&**p, Ty::Int(IntTy::U8) | Ty::Error)
                    || other_record
                    || declared.as_deref() == Some(expected.as_str())
            }
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let got = params
            .iter()
            .map(|p| self.show(p))
            .collect::<Vec<_>>()
            .join(", ");
        Err(format!("`@tracepoint(\"{target}\")` programs take one parameter of type `*{expected}`, not `({got})`"))
    }

    /// Whether a declared type matches a kernel type: integers by size and signedness (`bool` for
    /// `_Bool`), pointers by pointee; at the top level any pointer may be declared `*u8` (§9.2).
    fn matches_ktype(&self, t: &Ty, k: &KType, top: bool) -> bool {
        match (t, k) {
            (Ty::Error, _) | (_, KType::Unknown) => true,
            (Ty::Ptr(p), KType::Ptr(_) | KType::FuncPtr)
                if top && matches!(**p, Ty::Int(IntTy::U8) | Ty::Void) =>
            {
                true
            }
            (
                Ty::Int(i),
                KType::Int {
                    size,
                    signed,
                    is_char,
                    ..
                },
            ) => i.bits() == size * 8 && (i.signed() == *signed || *is_char),
            (Ty::Bool, KType::Int { is_bool, .. }) => *is_bool,
            (Ty::Char, KType::Int { size, .. }) => *size == 1,
            // Kernel enums' signedness is not reliably encoded; the size is what matters.
            (Ty::Int(i), KType::Enum { size, .. }) => i.bits() == size * 8,
            (Ty::Enum(e), KType::Int { size, .. } | KType::Enum { size, .. }) => {
                self.enums[e.0 as usize].repr.bits() == size * 8
            }
            (Ty::Ptr(p), KType::Ptr(inner)) => match (&**p, &**inner) {
                (Ty::Void, _) | (_, KType::Void) => true,
                (Ty::Struct(s), KType::Struct { name, .. } | KType::Union { name, .. }) => {
                    name.is_empty() || self.structs[s.0 as usize].name == *name
                }
                (pt, ik) => self.matches_ktype(pt, ik, false),
            },
            (Ty::Ptr(p), KType::FuncPtr) => matches!(**p, Ty::Void),
            (Ty::Struct(s), KType::Struct { name, .. } | KType::Union { name, .. }) => {
                self.structs[s.0 as usize].name == *name
            }
            (Ty::Array(e, n), KType::Array { elem, len }) => {
                n == len && self.matches_ktype(e, elem, false)
            }
            (Ty::Str(n), KType::Array { elem, len }) => {
                n == len && matches!(**elem, KType::Int { size: 1, .. })
            }
            _ => false,
        }
    }

    // ------------------------------------------------------------------------------------------
    // main and the unit's shape

    fn check_main_and_unit(&mut self) {
        let own: Vec<usize> = (0..self.funcs.len())
            .filter(|&i| {
                self.funcs[i].module.is_none()
                    && !matches!(self.funcs[i].kind, FnKind::StructOpsMethod { .. })
            })
            .collect();
        let mains: Vec<usize> = own
            .iter()
            .copied()
            .filter(|&i| self.funcs[i].name == "main")
            .collect();
        for &m in mains.iter().skip(1) {
            self.error(
                Code::E0113,
                self.funcs[m].decl.name.span,
                "a unit has one `main`",
            );
        }
        if let Some(&m) = mains.first() {
            self.check_main_signature(m);
        }
        let has_tests = own.iter().any(|&i| self.funcs[i].kind == FnKind::Test);
        if !mains.is_empty() || has_tests {
            return;
        }
        // Userspace functions need a main to run them (§9.1). A function whose attributes were
        // wrong is not counted: its attribute error says what is wrong.
        let first_user = own
            .iter()
            .copied()
            .find(|&i| self.funcs[i].kind == FnKind::User && self.funcs[i].item.attrs.is_empty());
        if let Some(u) = first_user {
            self.error(
                Code::E0117,
                self.funcs[u].decl.name.span,
                format!(
                    "`{}` is userspace code, but the unit has no `main`",
                    self.funcs[u].name
                ),
            );
        }
        let something = !self.impls.is_empty()
            || own.iter().any(|&i| {
                self.funcs[i].kind != FnKind::User || !self.funcs[i].item.attrs.is_empty()
            });
        if !something {
            let root = Span {
                file: FileId(0),
                lo: 0,
                hi: 0,
            };
            self.error(
                Code::E0115,
                root,
                "the unit has no kernel-side function, struct_ops impl, main or test",
            );
        }
    }

    /// `fn main() -> i32` or `fn main(args: S) -> i32` with S a struct of option fields (§15.1–15.2).
    fn check_main_signature(&mut self, m: usize) {
        let name_span = self.funcs[m].decl.name.span;
        let params = self.funcs[m].params.clone();
        let ret_ok = matches!(self.funcs[m].ret, Ty::Int(IntTy::I32) | Ty::Error);
        let args_struct = match params.as_slice() {
            [] => None,
            [Ty::Struct(s)] if self.structs[s.0 as usize].origin == StructOrigin::File => Some(*s),
            [Ty::Error] => None,
            _ => {
                self.error(
                    Code::E0114,
                    name_span,
                    "`main` takes nothing or one struct of command-line options",
                );
                return;
            }
        };
        if !ret_ok {
            self.error(
                Code::E0114,
                name_span,
                format!(
                    "`main` returns `i32`, not `{}`",
                    self.show(&self.funcs[m].ret)
                ),
            );
        }
        if let Some(s) = args_struct {
            self.check_args_struct(s);
        }
    }

    /// E0801: option fields are integers, bool, char, str(N) or enums.
    fn check_args_struct(&mut self, s: StructId) {
        let info = &self.structs[s.0 as usize];
        let Some(span) = info.span else { return };
        let unit = self.unit;
        let decl = unit
            .items
            .iter()
            .chain(unit.imports.iter().flat_map(|m| m.items.iter()))
            .find_map(|i| match &i.kind {
                ItemKind::Struct(d) if d.name.span == span => Some(d),
                _ => None,
            });
        let Some(decl) = decl else { return };
        for f in &decl.fields {
            let Some(fi) = self.structs[s.0 as usize].field(&f.name.name) else {
                continue;
            };
            if !matches!(
                fi.ty,
                Ty::Int(_) | Ty::Bool | Ty::Char | Ty::Str(_) | Ty::Enum(_) | Ty::Error
            ) {
                let shown = self.show(&fi.ty);
                self.error(Code::E0801, f.name.span, format!("option `--{}` cannot have type `{shown}` (integers, bool, char, str(N) and enums can)", f.name.name));
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Maps (§11.1)

    /// Folds the size of map `name` (§11.1): a constant expression of integer type, ≥ 0 (the
    /// kind-specific lower bounds are checked by the caller). `None` after an error.
    fn map_size(&mut self, name: &str, e: &Expr) -> Option<u64> {
        if self.compat && !matches!(e.kind, ExprKind::Int(_)) {
            self.error(Code::E0011, e.span, "a map size other than an integer literal is a ksc extension (rejected by --compat)");
        }
        let mut cx = super::body::FnCtx::new(FnKind::User, Ty::Void);
        let t = self.expr(&mut cx, e, None);
        if t.is_error() {
            return None;
        }
        if !t.is_integral() {
            self.error(
                Code::E0301,
                e.span,
                format!(
                    "the size of map `{name}` must be an integer, found `{}`",
                    self.show(&t)
                ),
            );
            return None;
        }
        let Some(v) = self.const_of(e).and_then(ConstValue::as_int) else {
            self.error(Code::E0312, e.span, format!("the size of map `{name}` must be a constant expression (an integer literal, a `const`, or arithmetic on them)"));
            return None;
        };
        match u64::try_from(v) {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    Code::E0605,
                    e.span,
                    format!("the size of map `{name}` is {v}; it must be at least 1"),
                );
                None
            }
        }
    }

    fn check_map(&mut self, item: &Item, m: &MapDecl) {
        let Some(idx) = self.maps.iter().position(|x| x.span == m.name.span) else {
            return;
        };
        let t = &m.ty;
        let at = item.span.start();
        // The name is the last component of the pin path (§11.6), which bpffs, like every Linux
        // file system, limits to NAME_MAX bytes.
        if m.pinned && m.name.name.len() > PIN_NAME_MAX {
            self.error(
                Code::E0605,
                m.name.span,
                format!(
                    "a pinned map's name is its file name under /sys/fs/bpf/<base>/maps/, at most {PIN_NAME_MAX} bytes; `{}…` has {}",
                    &m.name.name[..16],
                    m.name.name.len()
                ),
            );
        }
        let Some(kind) = MapKind::declared(&t.kind.name) else {
            self.error(
                Code::E0012,
                t.kind.span,
                format!("`{}` is not a map kind", t.kind.name),
            );
            return;
        };
        if self.compat && kind.is_extension() {
            self.error(
                Code::E0011,
                t.kind.span,
                format!(
                    "`{}` maps are a ksc extension (rejected by --compat)",
                    t.kind.name
                ),
            );
        }
        let kname = t.kind.name.as_str();
        let want = if kind.has_key() { 2 } else { 1 };
        if t.args.len() != want {
            let form = if kind.has_key() {
                "KIND<K, V>"
            } else {
                "KIND<V>(N)"
            };
            self.error(
                Code::E0605,
                at,
                format!(
                    "`{kname}` takes {want} type argument(s) ({})",
                    form.replace("KIND", kname)
                ),
            );
            return;
        }
        let size = t.size.as_ref().and_then(|e| self.map_size(&m.name.name, e));
        if let Some(n) = size {
            self.maps[idx].max_entries = n;
        }
        let size_at = t.size.as_ref().map_or(at, |e| e.span);
        match (kind, size) {
            (MapKind::Ringbuf, None) if t.size.is_some() => {}
            (MapKind::Ringbuf, None) => {
                self.error(
                    Code::E0606,
                    at,
                    "a ring buffer needs its size in bytes: `ringbuf<T>(N)`",
                );
            }
            (MapKind::Ringbuf, Some(n))
                if (!n.is_power_of_two() || !(4096..=1 << 27).contains(&n)) =>
            {
                self.error(
                    Code::E0606,
                    size_at,
                    format!("the size {n} is not a power of two in 4096..=134217728"),
                );
            }
            (_, Some(0)) if kind != MapKind::PerfEventArray => {
                self.error(Code::E0605, size_at, "`max_entries` must be at least 1");
            }
            (_, Some(n)) if n > u32::MAX as u64 => {
                self.error(
                    Code::E0605,
                    size_at,
                    format!("`max_entries` {n} does not fit in 32 bits"),
                );
            }
            _ => {}
        }
        let key = self.maps[idx].key.clone();
        let value = self.maps[idx].value.clone();
        let (key_te, value_te) = if kind.has_key() {
            (Some(&t.args[0]), &t.args[1])
        } else {
            (None, &t.args[0])
        };
        if let Some(kt) = key_te {
            if let Err(msg) = self.check_map_key(kind, &key, kt) {
                self.error(Code::E0605, at, format!("`{kname}` key: {msg}"));
            }
        }
        if let Err((code, msg)) = self.check_map_value(kind, &value, value_te) {
            self.error(code, at, format!("`{kname}` value: {msg}"));
        }
        self.maps[idx].flags = self.map_flags(kind, m, at);
    }

    fn check_map_key(&self, kind: MapKind, key: &Ty, te: &TypeExpr) -> Result<(), String> {
        if matches!(te.kind, TypeExprKind::Map(_)) {
            return Err("a map cannot be a key".to_string());
        }
        match kind {
            MapKind::Array
            | MapKind::PercpuArray
            | MapKind::Devmap
            | MapKind::Cpumap
            | MapKind::Xskmap => {
                let ok = match key {
                    Ty::Int(IntTy::U32) | Ty::Error => true,
                    Ty::Enum(e) => self.enums[e.0 as usize].repr == IntTy::U32,
                    _ => false,
                };
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "must be `u32` (an index), not `{}`",
                        self.show(key)
                    ))
                }
            }
            MapKind::LpmTrie => self.lpm_key(key),
            _ => self.storable(key),
        }
    }

    /// An LPM trie key is `struct { prefixlen: u32, <address data> }`.
    fn lpm_key(&self, key: &Ty) -> Result<(), String> {
        let shape =
            "must be a struct whose first field is `prefixlen: u32`, followed by the address";
        let s = match key {
            Ty::Error => return Ok(()),
            Ty::Struct(s) => &self.structs[s.0 as usize],
            _ => return Err(format!("{shape}, not `{}`", self.show(key))),
        };
        // Kernel structs list only the fields read so far; their BTF member order is definitive.
        let (first, count) = match (s.origin, s.btf_id, self.btf.get()) {
            (StructOrigin::Kernel, Some(id), Some(b)) if s.span.is_none() => {
                match b.struct_by_id(id) {
                    Some(ks) => {
                        let first = ks.members.first().map(|m| {
                            (
                                m.name.clone(),
                                matches!(
                                    m.ty,
                                    KType::Int {
                                        size: 4,
                                        signed: false,
                                        ..
                                    }
                                ),
                            )
                        });
                        (first, ks.members.len())
                    }
                    None => return Ok(()),
                }
            }
            _ => (
                s.fields.first().map(|f| (f.name.clone(), f.ty == U32)),
                s.fields.len(),
            ),
        };
        match first {
            Some((n, true)) if n == "prefixlen" && count >= 2 => Ok(()),
            _ => Err(format!("{shape}; `{}` is not", s.name)),
        }
    }

    fn check_map_value(
        &self,
        kind: MapKind,
        value: &Ty,
        te: &TypeExpr,
    ) -> Result<(), (Code, String)> {
        if matches!(te.kind, TypeExprKind::Map(_)) {
            return Err((Code::E0605, "a map cannot be stored in a map".to_string()));
        }
        match kind {
            MapKind::Ringbuf => match value {
                Ty::Struct(_) | Ty::Error => Ok(()),
                _ => Err((
                    Code::E0606,
                    format!(
                        "ring buffer records are structs, not `{}`",
                        self.show(value)
                    ),
                )),
            },
            MapKind::PerfEventArray => match value {
                Ty::Struct(_) | Ty::Error => Ok(()),
                _ => Err((
                    Code::E0605,
                    format!("perf event records are structs, not `{}`", self.show(value)),
                )),
            },
            // Redirect maps hold an ifindex / queue size / socket fd, or the kernel's value struct.
            MapKind::Devmap | MapKind::Cpumap | MapKind::Xskmap => match value {
                Ty::Int(IntTy::U32) | Ty::Struct(_) | Ty::Error => Ok(()),
                _ => Err((
                    Code::E0605,
                    format!("must be `u32`, not `{}`", self.show(value)),
                )),
            },
            _ => {
                self.storable(value).map_err(|m| (Code::E0605, m))?;
                if self.holds_pointer(value, 0) {
                    // The kernel keeps pointers in map values only as kptr fields, exchanged with
                    // bpf_kptr_xchg and released on every path; a plain pointer comes back as a
                    // number the verifier will not dereference.
                    return Err((Code::E0605, format!("map values cannot hold pointers (`{}`): store the struct itself, or an id that names it", self.show(value))));
                }
                Ok(())
            }
        }
    }

    /// True when a value of type `t` contains a pointer (through struct fields and arrays).
    fn holds_pointer(&self, t: &Ty, depth: u32) -> bool {
        match t {
            Ty::Ptr(_) => true,
            Ty::Array(e, _) => self.holds_pointer(e, depth),
            Ty::Struct(s) if depth < 16 => self.structs[s.0 as usize]
                .fields
                .iter()
                .any(|f| self.holds_pointer(&f.ty, depth + 1)),
            _ => false,
        }
    }

    /// Map keys and values are fixed-size data.
    fn storable(&self, t: &Ty) -> Result<(), String> {
        match t {
            Ty::Error => Ok(()),
            Ty::Void
            | Ty::Fn(_)
            | Ty::Null
            | Ty::FillArray(_)
            | Ty::ProgramHandle
            | Ty::PerfAttachment => Err(format!("`{}` is not fixed-size data", self.show(t))),
            _ if self.size_of(t).unwrap_or(0) == 0 => {
                Err(format!("`{}` has no size", self.show(t)))
            }
            _ => Ok(()),
        }
    }

    /// `@flags(...)`: E0013 for unknown names, E0605 where the kernel rejects the flag for the
    /// kind. Returns the BPF_F_* bits (lpm_trie always gets BPF_F_NO_PREALLOC).
    fn map_flags(&mut self, kind: MapKind, m: &MapDecl, at: Span) -> u32 {
        use MapKind::*;
        let mut bits = if kind == LpmTrie { 0x1 } else { 0 };
        for f in &m.flags {
            let n = f.name.name.as_str();
            let Some(bit) = flag_bit(n) else {
                self.error(Code::E0013, f.name.span, format!("`{n}` is not a map flag"));
                continue;
            };
            if self.compat && matches!(n, "rdonly_prog" | "wronly_prog" | "mmapable") {
                self.error(
                    Code::E0011,
                    f.name.span,
                    format!("the `{n}` flag is a ksc extension (rejected by --compat)"),
                );
            }
            let fspan = f.arg.map(|(_, s)| f.name.span.to(s)).unwrap_or(f.name.span);
            if (n == "numa_node") != f.arg.is_some() {
                let msg = if n == "numa_node" {
                    "`numa_node` needs the node: `numa_node(N)`".to_string()
                } else {
                    format!("`{n}` takes no argument")
                };
                self.error(Code::E0605, fspan, msg);
                continue;
            }
            let access = matches!(
                kind,
                Hash | LruHash
                    | PercpuHash
                    | Array
                    | PercpuArray
                    | LpmTrie
                    | Queue
                    | Stack
                    | BloomFilter
            );
            let allowed = match n {
                "numa_node" => true,
                "no_prealloc" => matches!(kind, Hash | PercpuHash | LpmTrie),
                "no_common_lru" => kind == LruHash,
                "mmapable" => kind == Array,
                "rdonly" | "wronly" => access || matches!(kind, Devmap | Xskmap | PerfEventArray),
                "rdonly_prog" | "wronly_prog" => access,
                // BPF_F_CLONE is meant for storage maps; accepted where access flags are.
                "clone" => access,
                _ => false,
            };
            if !allowed {
                let kname = m.ty.kind.name.as_str();
                self.error(
                    Code::E0605,
                    fspan,
                    format!("the kernel rejects `{n}` for `{kname}` maps"),
                );
                continue;
            }
            bits |= bit;
        }
        // The kernel refuses contradictory access modes.
        for (a, b, pair) in [
            (0x8, 0x10, "rdonly | wronly"),
            (0x80, 0x100, "rdonly_prog | wronly_prog"),
        ] {
            if bits & a != 0 && bits & b != 0 {
                self.error(Code::E0605, at, format!("`{pair}` is contradictory"));
            }
        }
        bits
    }

    // ------------------------------------------------------------------------------------------
    // Globals and configs

    fn check_global(&mut self, item: &Item, g: &GlobalDecl) {
        self.attrs_not_allowed(item);
        let at = item.span.start();
        if g.pinned && g.local {
            self.error(
                Code::E0613,
                at,
                format!(
                    "`{}` cannot be both pinned (shared through bpffs) and local (kernel-only)",
                    g.name.name
                ),
            );
        }
        if g.ty.is_none() && g.init.is_none() {
            self.error(
                Code::E0317,
                at,
                format!("`{}` needs a type or an initial value", g.name.name),
            );
        }
    }

    /// collect.rs enters config fields without checking names; a repeated one is E0110.
    fn check_config_fields(&mut self, cfg: &ConfigDecl) {
        for (i, f) in cfg.fields.iter().enumerate() {
            if cfg.fields[..i].iter().any(|p| p.name.name == f.name.name) {
                self.error(
                    Code::E0110,
                    f.name.span,
                    format!(
                        "field `{}` of config `{}` is declared twice",
                        f.name.name, cfg.name.name
                    ),
                );
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // struct_ops (§16.1)

    fn check_impl(&mut self, item: &'a Item, imp: &'a ImplDecl) {
        let mut seen = false;
        let mut target: Option<(String, Span)> = None;
        for a in &item.attrs {
            if a.name.name != "struct_ops" {
                self.error(
                    Code::E0201,
                    a.span,
                    format!(
                        "an impl block takes `@struct_ops(\"kernel_struct\")`, not `@{}`",
                        a.name.name
                    ),
                );
                continue;
            }
            if seen {
                self.error(Code::E0201, a.span, "an impl block takes one `@struct_ops`");
                continue;
            }
            seen = true;
            match single_str_arg(a) {
                Some(k) if !k.is_empty() => target = Some((k, a.span)),
                _ => self.error(Code::E0202, a.span, "`@struct_ops` needs the kernel struct's name, e.g. @struct_ops(\"tcp_congestion_ops\")"),
            }
        }
        if !seen && item.attrs.is_empty() {
            self.error(
                Code::E0201,
                imp.name.span,
                "an impl block needs `@struct_ops(\"kernel_struct\")`",
            );
        }
        // Methods and static fields share the impl's namespace.
        let mut names: Vec<&str> = Vec::new();
        let members = imp
            .methods
            .iter()
            .filter_map(|m| m.kind.declared_name())
            .chain(imp.fields.iter().map(|f| &f.name));
        for n in members {
            if names.contains(&n.name.as_str()) {
                self.error(
                    Code::E0110,
                    n.span,
                    format!("`{}` is defined twice in impl `{}`", n.name, imp.name.name),
                );
            }
            names.push(&n.name);
        }
        let Some((k, attr_span)) = target else { return };
        let Some(btf) = self.btf.get() else {
            self.warning(
                Code::W0007,
                attr_span,
                format!("struct_ops type `{k}` cannot be checked"),
            );
            return;
        };
        if !btf.is_struct_ops_type(&k) {
            let why = if btf.has_struct(&k) {
                "is not a registrable struct_ops type"
            } else {
                "is not in kernel BTF"
            };
            self.error(Code::E0701, attr_span, format!("`{k}` {why}"));
            return;
        }
        let kmembers = btf.struct_ops_members(&k).unwrap_or_default();
        for m in &imp.methods {
            let ItemKind::Func(f) = &m.kind else { continue };
            let Some(fid) = self.funcs.iter().position(|x| std::ptr::eq(x.decl, f)) else {
                continue;
            };
            let res = match kmembers
                .iter()
                .find(|x| x.name == f.name.name)
                .map(|x| &x.kind)
            {
                None => Err(format!("`{k}` has no member `{}`", f.name.name)),
                Some(KOpsKind::Data(t)) => Err(format!(
                    "`{k}.{}` is data (`{t}`), not a function",
                    f.name.name
                )),
                Some(KOpsKind::Func(sig)) => self.ops_method_matches(fid, &k, sig),
            };
            if let Err(msg) = res {
                self.error(Code::E0702, f.name.span, msg);
            }
        }
        let implemented: Vec<&str> = imp
            .methods
            .iter()
            .filter_map(|m| m.kind.declared_name())
            .map(|n| n.name.as_str())
            .collect();
        for group in required_methods(&k) {
            if !group.iter().any(|m| implemented.contains(m)) {
                let what = group
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(" or ");
                self.error(Code::E0702, imp.name.span, format!("impl `{}` must implement {what}: the kernel refuses to register a `{k}` without it", imp.name.name));
            }
        }
        for fld in &imp.fields {
            match kmembers
                .iter()
                .find(|x| x.name == fld.name.name)
                .map(|x| &x.kind)
            {
                None => self.error(
                    Code::E0702,
                    fld.name.span,
                    format!("`{k}` has no member `{}`", fld.name.name),
                ),
                Some(KOpsKind::Func(_)) => self.error(
                    Code::E0703,
                    fld.name.span,
                    format!(
                        "`{k}.{}` is a function member; implement it as a method",
                        fld.name.name
                    ),
                ),
                Some(KOpsKind::Data(t)) => self.check_ops_field(&k, fld, t),
            }
        }
    }

    /// Same parameter count, parameters and result matching per §16.1.
    fn ops_method_matches(&self, fid: usize, k: &str, sig: &KFuncSig) -> Result<(), String> {
        let f = &self.funcs[fid];
        let what = format!("{k}.{}", f.name);
        if f.params.len() != sig.params.len() {
            return Err(format!(
                "`{what}` takes {} parameter(s), {} declared",
                sig.params.len(),
                f.params.len()
            ));
        }
        self.kernel_prefix(&what, &f.params, &sig.params)?;
        let ok = match (&sig.ret, &f.ret) {
            (_, Ty::Error) => true,
            (KType::Void, r) => *r == Ty::Void,
            (_, Ty::Void) => false,
            (kr, r) => self.matches_ktype(r, kr, true),
        };
        if !ok {
            let want = if sig.ret == KType::Void {
                "void".to_string()
            } else {
                sig.ret.to_string()
            };
            return Err(format!(
                "`{what}` returns `{want}` in the kernel, not `{}`",
                self.show(&f.ret)
            ));
        }
        Ok(())
    }

    /// Static fields are literals (E0703) of a kind the member can hold (E0301).
    fn check_ops_field(&mut self, k: &str, fld: &ImplField, t: &KType) {
        let v = &fld.value;
        let fits = match &v.kind {
            ExprKind::Str(s) => match t {
                KType::Array { elem, len } if matches!(**elem, KType::Int { size: 1, .. }) => {
                    if s.len() >= *len as usize {
                        self.error(
                            Code::E0301,
                            v.span,
                            format!(
                                "`{k}.{}` holds at most {} bytes",
                                fld.name.name,
                                len.saturating_sub(1)
                            ),
                        );
                        return;
                    }
                    true
                }
                _ => false,
            },
            ExprKind::Int(_) | ExprKind::Char(_) => {
                matches!(t, KType::Int { .. } | KType::Enum { .. })
            }
            ExprKind::Unary(UnOp::Neg, inner) if matches!(inner.kind, ExprKind::Int(_)) => {
                matches!(t, KType::Int { .. } | KType::Enum { .. })
            }
            ExprKind::Bool(_) => matches!(t, KType::Int { .. }),
            ExprKind::Null => matches!(t, KType::Ptr(_) | KType::FuncPtr),
            _ => {
                self.error(
                    Code::E0703,
                    fld.name.span,
                    format!("the value of `{}` must be a literal", fld.name.name),
                );
                return;
            }
        };
        if !fits && *t != KType::Unknown {
            self.error(
                Code::E0301,
                v.span,
                format!(
                    "`{k}.{}` is `{t}`; this literal does not fit it",
                    fld.name.name
                ),
            );
        }
    }

    /// `@struct_ops("k") struct k { … }` views: field names must exist in BTF (E0702).
    fn check_struct_ops_struct(&mut self, item: &Item, s: &StructDecl) {
        let mut target: Option<(String, Span)> = None;
        for a in &item.attrs {
            if a.name.name != "struct_ops" {
                self.error(
                    Code::E0201,
                    a.span,
                    format!("a struct takes only `@struct_ops`, not `@{}`", a.name.name),
                );
            } else if target.is_some() {
                self.error(Code::E0201, a.span, "a struct takes one `@struct_ops`");
            } else {
                match single_str_arg(a) {
                    Some(k) if !k.is_empty() => target = Some((k, a.span)),
                    _ => {
                        self.error(
                            Code::E0202,
                            a.span,
                            "`@struct_ops` needs the kernel struct's name",
                        );
                        return;
                    }
                }
            }
        }
        let Some((k, attr_span)) = target else { return };
        let Some(btf) = self.btf.get() else {
            self.warning(
                Code::W0007,
                attr_span,
                format!("struct_ops type `{k}` cannot be checked"),
            );
            return;
        };
        let Some(members) = btf
            .struct_ops_members(&k)
            .filter(|_| btf.is_struct_ops_type(&k))
        else {
            self.error(
                Code::E0701,
                attr_span,
                format!("`{k}` is not a struct_ops type in kernel BTF"),
            );
            return;
        };
        for f in &s.fields {
            if !members.iter().any(|m| m.name == f.name.name) {
                self.error(
                    Code::E0702,
                    f.name.span,
                    format!("`{k}` has no member `{}`", f.name.name),
                );
            }
        }
    }
}

/// The attribute's single string argument; `None` when absent or not exactly one string.
fn single_str_arg(a: &Attribute) -> Option<String> {
    match a.args.as_deref() {
        Some([AttrArg::Str(s, _)]) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

/// `func` or `func+offset` (decimal or 0x hex).
fn valid_probe_target(t: &str) -> bool {
    let (func, off) = match t.split_once('+') {
        Some((f, o)) => (f, Some(o)),
        None => (t, None),
    };
    let off_ok = off.is_none_or(
        |o| match o.strip_prefix("0x").or_else(|| o.strip_prefix("0X")) {
            Some(h) => !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()),
            None => !o.is_empty() && o.chars().all(|c| c.is_ascii_digit()),
        },
    );
    !func.is_empty() && !func.contains(['/', ' ']) && off_ok
}

/// The target a kind attribute selects (mirrors collect.rs, which only looks at the first one).
fn kind_of_attr(a: &Attribute) -> FnKind {
    let arg = single_str_arg(a);
    match a.name.name.as_str() {
        "helper" => FnKind::Helper,
        "kfunc" => FnKind::Kfunc,
        "private" => FnKind::Private,
        "test" => FnKind::Test,
        "probe" if arg.as_deref().is_some_and(|s| s.contains('+')) => FnKind::Program {
            kind: ProgKind::Kprobe,
            arg,
        },
        n => match ProgKind::from_attribute(n) {
            Some(kind) => FnKind::Program { kind, arg },
            None => FnKind::User,
        },
    }
}

fn is_int32(t: &Ty) -> bool {
    matches!(t, Ty::Int(IntTy::I32 | IntTy::U32) | Ty::Error)
}

/// BPF_F_* bit of a map flag (§11.1).
fn flag_bit(name: &str) -> Option<u32> {
    Some(match name {
        "no_prealloc" => 0x1,
        "no_common_lru" => 0x2,
        "numa_node" => 0x4,
        "rdonly" => 0x8,
        "wronly" => 0x10,
        "rdonly_prog" => 0x80,
        "wronly_prog" => 0x100,
        "clone" => 0x200,
        "mmapable" => 0x400,
        _ => return None,
    })
}

/// Methods a struct_ops type cannot be registered without, as the kernel validates them (each
/// group needs one of its members): `tcp_validate_congestion_control` for TCP congestion control.
fn required_methods(kernel_struct: &str) -> &'static [&'static [&'static str]] {
    match kernel_struct {
        "tcp_congestion_ops" => &[
            &["ssthresh"],
            &["undo_cwnd"],
            &["cong_avoid", "cong_control"],
        ],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::super::Checker;
    use crate::btf::KernelBtf;
    use crate::diagnostics::{Code, Diagnostics, FileId};
    use crate::syntax::ast::Unit;
    use crate::syntax::parser::{parse_items, ParseOptions};

    /// Codes and 1-based lines from collect + decls alone, with or without the running kernel's BTF.
    fn diags(src: &str, with_btf: bool) -> Vec<(Code, usize)> {
        let mut d = Diagnostics::new();
        let mut n = 0;
        let items = parse_items(FileId(0), src, ParseOptions::default(), &mut n, &mut d);
        assert!(!d.has_errors(), "test source must parse");
        let unit = Unit {
            items,
            imports: Vec::new(),
            expr_count: n,
        };
        let btf = if with_btf {
            KernelBtf::load_default().ok()
        } else {
            None
        };
        let mut c = Checker::new(&unit, crate::btf::LazyBtf::loaded(btf), &mut d);
        c.collect();
        c.check_decls();
        let line = |lo: u32| src[..lo as usize].matches('\n').count() + 1;
        d.sorted()
            .iter()
            .map(|x| (x.code, line(x.span.lo)))
            .collect()
    }

    #[test]
    fn attribute_shapes() {
        let src = "@socket_filter\nfn a(ctx: *__sk_buff) -> i32 { return 0 }\n@tc\nfn b(ctx: *__sk_buff) -> i32 { return 0 }\n\
                   @tracepoint(\"x\")\nfn c(ctx: *u8) -> i32 { return 0 }\n@xdp @helper\nfn d(ctx: *xdp_md) -> xdp_action { return XDP_PASS }\n\
                   @helper\nstruct S { a: u32 }\nfn main() -> i32 { return 0 }\n";
        let got = diags(src, false);
        assert_eq!(
            got,
            vec![
                (Code::E0201, 1),
                (Code::E0202, 3),
                (Code::E0202, 5),
                (Code::E0201, 7),
                (Code::E0201, 9)
            ]
        );
    }

    #[test]
    fn signatures_without_btf() {
        let src = "@xdp fn x(ctx: *__sk_buff) -> xdp_action { return XDP_PASS }\n\
                   @test fn t(n: u32) -> i32 { return 0 }\n\
                   @helper fn h(a: u32, b: u32, c: u32, d: u32, e: u32, f: u32) -> u32 { return a }\n\
                   @probe(\"vfs_read\") fn p(a: u64) -> i32 { return 0 }\n\
                   @xdp fn ok(ctx: *u8) { return 2 }\n";
        let got = diags(src, false);
        assert_eq!(
            got,
            vec![
                (Code::E0203, 1),
                (Code::E0203, 2),
                (Code::E0203, 3),
                (Code::W0007, 4)
            ]
        );
    }

    #[test]
    fn main_and_unit_shape() {
        assert_eq!(
            diags("struct S { a: u32 }\n", false),
            vec![(Code::E0115, 1)]
        );
        assert_eq!(
            diags("@test fn t() -> bool { return true }\nfn u() {}\n", false),
            vec![]
        );
        let src = "struct A { n: u32, p: *u8 }\nfn main(a: A) -> i32 { return 0 }\nfn main() -> u32 { return 0 }\n";
        assert_eq!(diags(src, false), vec![(Code::E0801, 1), (Code::E0113, 3)]);
        let src = "fn helper_fn() {}\n@xdp fn x(ctx: *xdp_md) -> xdp_action { return XDP_PASS }\n";
        assert_eq!(diags(src, false), vec![(Code::E0117, 1)]);
    }

    #[test]
    fn maps_flags_and_globals() {
        let src = "struct K { prefixlen: u32, a: u32 }\nstruct E { v: u32 }\n\
                   @flags(no_prealloc | numa_node(1))\nvar h : hash<u32, u64>(8)\n\
                   var t : lpm_trie<K, u8>(8)\n\
                   var a : array<u64, u8>(8)\n\
                   @flags(no_prealloc)\nvar b : array<u32, u8>(8)\n\
                   @flags(turbo)\nvar c : hash<u32, u8>(8)\n\
                   var r : ringbuf<E>(5000)\n\
                   var z : heap<u32, u8>(8)\n\
                   pin local var g: u32 = 0\nvar v\n\
                   @xdp fn x(ctx: *xdp_md) -> xdp_action { return XDP_PASS }\n";
        let got = diags(src, false);
        assert_eq!(
            got,
            vec![
                (Code::E0605, 6),
                (Code::E0605, 7),
                (Code::E0013, 9),
                (Code::E0606, 11),
                (Code::E0012, 12),
                (Code::E0613, 13),
                (Code::E0317, 14)
            ]
        );
    }

    #[test]
    fn flag_bits_are_stored() {
        let src = "@flags(no_prealloc | numa_node(1) | rdonly_prog)\nvar h : hash<u32, u64>(8)\nstruct K { prefixlen: u32, a: u32 }\nvar t : lpm_trie<K, u8>(8)\n";
        let mut d = Diagnostics::new();
        let mut n = 0;
        let items = parse_items(FileId(0), src, ParseOptions::default(), &mut n, &mut d);
        let unit = Unit {
            items,
            imports: Vec::new(),
            expr_count: n,
        };
        let mut c = Checker::new(&unit, crate::btf::LazyBtf::loaded(None), &mut d);
        c.collect();
        c.check_decls();
        assert_eq!(c.maps[0].flags, 0x1 | 0x4 | 0x80);
        assert_eq!(c.maps[1].flags, 0x1);
    }

    #[test]
    fn kernel_targets_and_struct_ops() {
        // Needs the running kernel's BTF; skipped where there is none.
        if KernelBtf::load_default().is_err() {
            return;
        }
        let src = "@probe(\"ksc_no_such_fn\")\nfn a(x: u64) -> i32 { return 0 }\n\
                   @probe(\"vfs_read\")\nfn b(f: *file, buf: *u8, n: u64) -> i32 { return 0 }\n\
                   @fexit(\"vfs_read\")\nfn c(f: *u8, b: *u8, n: u64, p: *i64, ret: i64) -> i32 { return 0 }\n\
                   @tracepoint(\"sched/sched_wakeup\")\nfn d(ctx: *trace_event_raw_sched_wakeup_template) -> i32 { return 0 }\n\
                   @struct_ops(\"tcp_congestion_ops\")\nimpl cc {\n  fn ssthresh(sk: *sock) -> u32 { return 1 }\n  fn teleport() -> u32 { return 1 }\n  name: \"cc\",\n}\n\
                   @struct_ops(\"ksc_no_ops\")\nimpl dd {\n  fn x() -> i32 { return 0 }\n}\n";
        // impl cc also lacks `undo_cwnd` and `cong_avoid`/`cong_control`, which the kernel requires.
        assert_eq!(
            diags(src, true),
            vec![
                (Code::E0204, 1),
                (Code::E0702, 10),
                (Code::E0702, 10),
                (Code::E0702, 12),
                (Code::E0701, 15)
            ]
        );
    }
}
