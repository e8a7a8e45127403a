//! The kernel-module back end (§16.2): the kmod side of a unit, after its pipeline, as the C
//! source of a GPL module. `@kfunc`s become `__bpf_kfunc` functions registered with
//! `register_btf_kfunc_id_set` for the program types that call them; `@private` functions are
//! `static`. The module is built by the kernel's own build system from the `Kbuild` file written
//! next to it, through the `Makefile` beside it, which then gives the module BTF where the kernel
//! headers cannot (`kmod-btf.sh`; ksc does not build modules).

mod body;
mod types;

use crate::codegen::llvm::Error;
use crate::ir::views::{KsFunc, KsStruct};
use crate::ir::{Module, OpId, Opcode, Type};
use crate::vocab::Target;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write;

/// The module's name: Kbuild itself writes `<module>.mod.c` while linking a module, so the
/// module cannot be called `<base>` next to ksc's `<base>.mod.c`.
pub fn module_name(base: &str) -> String {
    format!("{base}_kmod")
}

/// `Kbuild` for `<base>.mod.c`: the module `<base>_kmod.ko`, compiled from a copy of the source
/// under the module's name. The kernel's build reads it (in preference to the `Makefile`).
pub fn kbuild(base: &str) -> String {
    let name = module_name(base);
    format!(
        "# Kbuild for the kernel module of {base}.ks, written by ksc.\n\
         # Build with `make` in this directory (see Makefile): it also gives {name}.ko its BTF\n\
         # when the kernel headers cannot.\n\
         obj-m := {name}.o\n\
         $(obj)/{name}.c: $(src)/{base}.mod.c\n\
         \tcp $< $@\n\
         clean-files := {name}.c\n"
    )
}

/// The script the `Makefile` runs after the kernel's build: BTF for the module when the kernel
/// headers have no vmlinux (README: kernel modules).
pub const BTF_SCRIPT: &str = include_str!("kmod-btf.sh");
/// Its name in the output directory.
pub const BTF_SCRIPT_NAME: &str = "kmod-btf.sh";

/// `Makefile` beside `Kbuild`: `make [KVER=…] [KDIR=…]` builds `<base>_kmod.ko` with the kernel's
/// build system and then makes sure it has BTF, without which the kernel registers no kfuncs.
pub fn makefile(base: &str) -> String {
    let name = module_name(base);
    format!(
        "# Makefile for the kernel module of {base}.ks, written by ksc.\n\
         #   make                     {name}.ko for the running kernel\n\
         #   make KVER=6.1.0-28-amd64  for another installed kernel (headers in /lib/modules/KVER/build)\n\
         #   make KDIR=PATH            against a kernel build tree\n\
         # The kernel's build (which reads Kbuild) runs first; {BTF_SCRIPT_NAME} then generates the\n\
         # module's BTF if the kernel headers could not (no vmlinux, as in Debian's 6.1 headers).\n\
         KVER ?= $(shell uname -r)\n\
         KDIR ?= /lib/modules/$(KVER)/build\n\
         \n\
         modules:\n\
         \t$(MAKE) -C $(KDIR) M=$(CURDIR) modules\n\
         \tbash $(CURDIR)/{BTF_SCRIPT_NAME} $(CURDIR)/{name}.ko $(KVER) $(KDIR)\n\
         \n\
         clean:\n\
         \t$(MAKE) -C $(KDIR) M=$(CURDIR) clean\n\
         \n\
         .PHONY: modules clean\n"
    )
}

/// The program types whose programs (transitively) call a kfunc of the unit, from the whole
/// lowered module; `BPF_PROG_TYPE_UNSPEC` (every type) when none does.
pub fn kfunc_callers(full: &Module) -> Vec<&'static str> {
    let kfuncs: HashSet<String> = full
        .funcs()
        .filter(|&f| KsFunc(f).target(full) == Target::Kmod)
        .filter_map(|f| full.symbol(f).map(str::to_string))
        .collect();
    let callees: HashMap<String, Vec<String>> = full
        .funcs()
        .map(|f| {
            let calls = full.collect_nested(f, |o| o.opcode == Opcode::CoreCall);
            let names = calls.iter().filter_map(|&c| match full.attr(c, "callee") {
                Some(crate::ir::Attr::Sym(s)) => Some(s.clone()),
                _ => None,
            });
            (
                full.symbol(f).unwrap_or_default().to_string(),
                names.collect(),
            )
        })
        .collect();
    let mut types = BTreeSet::new();
    for f in full.funcs() {
        let v = KsFunc(f);
        let (Some(kind), Target::Bpf) = (v.kind(full), v.target(full)) else {
            continue;
        };
        let mut seen = HashSet::new();
        let mut stack = vec![full.symbol(f).unwrap_or_default().to_string()];
        while let Some(n) = stack.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            if kfuncs.contains(&n) {
                types.insert(kind.bpf_prog_type());
                break;
            }
            stack.extend(callees.get(&n).into_iter().flatten().cloned());
        }
    }
    if types.is_empty() {
        return vec!["BPF_PROG_TYPE_UNSPEC"];
    }
    types.into_iter().collect()
}

/// The module's C source.
pub fn emit(m: &Module, base: &str, prog_types: &[&str]) -> Result<String, Vec<Error>> {
    let funcs: Vec<OpId> = m
        .funcs()
        .filter(|&f| KsFunc(f).target(m) == Target::Kmod)
        .collect();
    let mut out = String::new();
    let name = module_name(base);
    let _ = write!(
        out,
        "// SPDX-License-Identifier: GPL-2.0\n\
         /* The kernel module of {base}.ks, written by ksc: its @kfunc functions for BPF programs\n \
         * and the @private functions they call. Build it with the Kbuild file beside it. */\n\n\
         #include <linux/bpf.h>\n#include <linux/btf.h>\n#include <linux/btf_ids.h>\n#include <linux/init.h>\n\
         #include <linux/kernel.h>\n#include <linux/math64.h>\n#include <linux/module.h>\n#include <linux/slab.h>\n\
         #include <linux/string.h>\n#include <linux/swab.h>\n#include <linux/types.h>\n\n"
    );
    out.push_str(PRELUDE);
    types::struct_definitions(m, &funcs, &mut out);
    // Prototypes first: functions may call each other in any order.
    for &f in &funcs {
        let _ = writeln!(out, "{};", body::signature(m, f));
    }
    out.push('\n');
    let mut errors = Vec::new();
    // Kernels from 6.6 use these to accept kfunc definitions without prior declarations.
    out.push_str("__bpf_kfunc_start_defs();\n\n");
    for &f in &funcs {
        match body::function(m, f) {
            Ok(text) => out.push_str(&text),
            Err((op, message)) => errors.push(Error::internal(Some(op), message)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    out.push_str("__bpf_kfunc_end_defs();\n\n");
    let kfuncs: Vec<&str> = funcs
        .iter()
        .filter(|&&f| KsFunc(f).kfunc(m) == Some(true))
        .filter_map(|&f| m.symbol(f))
        .collect();
    registration(&mut out, &name, &kfuncs, prog_types);
    Ok(out)
}

/// Helpers the function bodies use: eBPF's division rules (§6.4) and the kfunc markers of
/// kernels before 6.2 / 6.9.
const PRELUDE: &str = r#"#ifndef __bpf_kfunc
#define __bpf_kfunc __used noinline
#endif
#ifndef __bpf_kfunc_start_defs
#define __bpf_kfunc_start_defs()
#define __bpf_kfunc_end_defs()
#endif

/* KernelScript division: x / 0 is 0, x % 0 is x, MIN / -1 is MIN (docs/language.md §6.4). */
static inline __maybe_unused u64 ks_udiv(u64 a, u64 b) { return b ? div64_u64(a, b) : 0; }
static inline __maybe_unused u64 ks_urem(u64 a, u64 b) { return b ? a - div64_u64(a, b) * b : a; }
static inline __maybe_unused s64 ks_sdiv(s64 a, s64 b)
{
	if (!b)
		return 0;
	if (b == -1)
		return (s64)(0 - (u64)a);
	return div64_s64(a, b);
}
static inline __maybe_unused s64 ks_srem(s64 a, s64 b)
{
	if (!b)
		return a;
	if (b == -1)
		return 0;
	return a - div64_s64(a, b) * b;
}

"#;

fn registration(out: &mut String, name: &str, kfuncs: &[&str], prog_types: &[&str]) {
    if kfuncs.is_empty() {
        let _ = write!(
            out,
            "static int __init ks_module_init(void)\n{{\n\treturn 0;\n}}\n\n"
        );
    } else {
        out.push_str("#ifdef BTF_KFUNCS_START\nBTF_KFUNCS_START(ks_kfunc_ids)\n#else\nBTF_SET8_START(ks_kfunc_ids)\n#endif\n");
        for k in kfuncs {
            let _ = writeln!(out, "BTF_ID_FLAGS(func, {k})");
        }
        out.push_str("#ifdef BTF_KFUNCS_END\nBTF_KFUNCS_END(ks_kfunc_ids)\n#else\nBTF_SET8_END(ks_kfunc_ids)\n#endif\n\n");
        out.push_str("static const struct btf_kfunc_id_set ks_kfunc_set = {\n\t.owner = THIS_MODULE,\n\t.set = &ks_kfunc_ids,\n};\n\n");
        out.push_str("static int __init ks_module_init(void)\n{\n\tint err;\n\n");
        for t in prog_types {
            if *t == "BPF_PROG_TYPE_UNSPEC" {
                // Kernels before 6.2 have no hook for every program type (EINVAL): the kfuncs
                // are registered for each kind of program that can call kfuncs there.
                out.push_str("\terr = register_btf_kfunc_id_set(BPF_PROG_TYPE_UNSPEC, &ks_kfunc_set);\n\tif (err == -EINVAL) {\n\t\tstatic const enum bpf_prog_type kinds[] = {\n\t\t\tBPF_PROG_TYPE_XDP, BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_STRUCT_OPS,\n\t\t\tBPF_PROG_TYPE_TRACING, BPF_PROG_TYPE_SYSCALL,\n\t\t};\n\t\tint i;\n\n\t\tfor (i = 0, err = 0; i < ARRAY_SIZE(kinds) && !err; i++)\n\t\t\terr = register_btf_kfunc_id_set(kinds[i], &ks_kfunc_set);\n\t}\n");
                let _ = write!(out, "\tif (err) {{\n\t\tpr_err(\"{name}: cannot register kfuncs: %d\\n\", err);\n\t\treturn err;\n\t}}\n");
                continue;
            }
            // EINVAL: this kernel lets no program of the type call kfuncs. The module still
            // serves the other types; the verifier refuses the programs of this one, which the
            // runtime reports with the call's line.
            let _ = write!(out, "\terr = register_btf_kfunc_id_set({t}, &ks_kfunc_set);\n\tif (err == -EINVAL)\n\t\tpr_warn(\"{name}: this kernel lets no {t} program call kfuncs\\n\");\n\telse if (err) {{\n\t\tpr_err(\"{name}: cannot register kfuncs for {t}: %d\\n\", err);\n\t\treturn err;\n\t}}\n");
        }
        out.push_str("\treturn 0;\n}\n\n");
    }
    // The kernel drops a module's kfunc registrations with its BTF when it unloads.
    let _ = write!(out, "static void __exit ks_module_exit(void)\n{{\n}}\n\nmodule_init(ks_module_init);\nmodule_exit(ks_module_exit);\nMODULE_LICENSE(\"GPL\");\nMODULE_DESCRIPTION(\"kfuncs of {name}, compiled by ksc\");\n");
}

/// User structs are prefixed so that they cannot collide with the kernel's own.
fn struct_c_name(m: &Module, name: &str) -> String {
    match crate::ir::layout::struct_decl(m, name).map(|d| KsStruct(d).origin(m)) {
        Some(origin) if origin.is_kernel_type() => format!("struct {name}"),
        _ => format!("struct ks_{name}"),
    }
}

/// The C declaration of `name` with IR type `t` (arrays and function pointers wrap the name).
fn declare(m: &Module, t: &Type, name: &str) -> String {
    match t {
        Type::Void => format!("void {name}").trim_end().to_string(),
        Type::Bool => format!("bool {name}").trim_end().to_string(),
        Type::Int(i) => format!("{}{} {name}", if i.signed() { "s" } else { "u" }, i.bits())
            .trim_end()
            .to_string(),
        Type::Struct(s) => format!("{} {name}", struct_c_name(m, s))
            .trim_end()
            .to_string(),
        Type::Ptr(p) => match &**p {
            Type::Array(..) | Type::Str(_) | Type::Func(_) => declare(m, p, &format!("(*{name})")),
            _ => declare(m, p, &format!("*{name}")),
        },
        Type::Array(e, n) => declare(m, e, &format!("{name}[{n}]")),
        Type::Str(n) => format!("char {name}[{n}]"),
        Type::Func(ft) => {
            let params: Vec<String> = ft.params.iter().map(|p| declare(m, p, "")).collect();
            let params = if params.is_empty() {
                "void".to_string()
            } else {
                params.join(", ")
            };
            declare(m, &ft.ret, &format!("(*{name})({params})"))
        }
        Type::ProgHandle | Type::PerfHandle => format!("void *{name}"),
    }
}
