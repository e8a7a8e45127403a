//! Function declarations: attributes, program kinds and signatures (§9.1–9.2, §17.1).

use super::*;

impl<'a> Checker<'a, '_> {
    pub(in crate::sema::decls) fn check_function_decl(&mut self, i: usize) {
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
                    "uprobe" | "uretprobe" | "usdt" => {
                        format!("unknown attribute `@{n}`: ksc does not trace user-space code")
                    }
                    _ => format!("unknown attribute `@{n}`"),
                };
                let user_space_probe = matches!(n, "uprobe" | "uretprobe" | "usdt");
                match closest_name(n, FN_ATTRS).filter(|_| !user_space_probe) {
                    Some(near) => self.error_with_note(
                        Code::E0201,
                        a.span,
                        why,
                        format!("did you mean `@{near}`?"),
                    ),
                    None => self.error(Code::E0201, a.span, why),
                }
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
    pub(in crate::sema::decls) fn check_attr_args(&mut self, a: &Attribute) -> Option<String> {
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
            "probe" | "kprobe" => match arg {
                Some(t) if valid_probe_target(&t) => return Some(t),
                _ => format!("`@{n}` needs a kernel function name, optionally with \"+offset\""),
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
    pub(in crate::sema::decls) fn check_signature(
        &mut self,
        i: usize,
        a: &Attribute,
        target: &str,
    ) -> Result<(), String> {
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
            "probe" | "kprobe" | "fexit" => {
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
    pub(in crate::sema::decls) fn ctx_param(
        &self,
        kind: &str,
        params: &[Ty],
        ctx: &str,
    ) -> Result<(), String> {
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
    pub(in crate::sema::decls) fn program_ret(&self, kind: &str, ret: &Ty) -> Result<(), String> {
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
    pub(in crate::sema::decls) fn syscall_entry(&self, func: &str) -> Option<String> {
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
    pub(in crate::sema::decls) fn resolve_syscall(
        &mut self,
        i: usize,
        a: &Attribute,
        func: &str,
        entry: &str,
        what: &str,
    ) {
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
    pub(in crate::sema::decls) fn syscall_probe(
        &mut self,
        i: usize,
        a: &Attribute,
        target: &str,
        entry: &str,
    ) -> Result<(), String> {
        let n = a.name.name.as_str();
        let func = target.split('+').next().unwrap_or(target);
        if n != "probe" || target.contains('+') {
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
    pub(in crate::sema::decls) fn traced_function(
        &mut self,
        a: &Attribute,
        func: &str,
    ) -> Option<KFuncSig> {
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
    pub(in crate::sema::decls) fn kernel_prefix(
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
    pub(in crate::sema::decls) fn tracepoint_params(
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
    pub(in crate::sema::decls) fn matches_ktype(&self, t: &Ty, k: &KType, top: bool) -> bool {
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
}

/// The name of `names` within two edits of `name` (a typo: `@tracepiont`, `@kprob`), if one is.
fn closest_name<'n>(name: &str, names: &[&'n str]) -> Option<&'n str> {
    names
        .iter()
        .map(|&c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= 2 && d < name.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance of two ASCII names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.as_bytes().iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let next = (diagonal + usize::from(x != y))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
