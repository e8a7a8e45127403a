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

mod functions;
mod globals;
mod maps;
mod struct_ops;
mod unit_shape;

/// The longest file name Linux file systems, bpffs among them, accept (NAME_MAX).
const PIN_NAME_MAX: usize = 255;

/// Every attribute a function may carry. Each selects the function's target, so each is a "kind
/// attribute" in the sense of §9.2: at most one per function.
pub(in crate::sema) const FN_ATTRS: &[&str] = &[
    "xdp",
    "tc",
    "probe",
    "kprobe",
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
const EXT_ATTRS: &[&str] = &[
    "fexit",
    "kprobe",
    "kretprobe",
    "tp_btf",
    "lsm",
    "cgroup_skb",
];

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
