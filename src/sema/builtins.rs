//! Builtin functions (Appendix A) and the standard BPF helpers ksc knows by name (§5.4).

use super::types::{IntTy, Ty};
use crate::vocab::ProgKind;

/// A parameter or result shape in the helper table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperTy {
    U32,
    U64,
    I32,
    I64,
    /// Any pointer (`*void`).
    Ptr,
    /// The program context.
    Ctx,
    Void,
    /// `*task_struct`, trusted (never NULL).
    TaskBtf,
}

impl HelperTy {
    pub fn ty(self) -> Ty {
        match self {
            HelperTy::U32 => Ty::Int(IntTy::U32),
            HelperTy::U64 => Ty::Int(IntTy::U64),
            HelperTy::I32 => Ty::Int(IntTy::I32),
            HelperTy::I64 => Ty::Int(IntTy::I64),
            HelperTy::Ptr | HelperTy::Ctx => Ty::ptr(Ty::Void),
            HelperTy::Void => Ty::Void,
            // Resolved against BTF by the checker; a void pointer stands in without BTF.
            HelperTy::TaskBtf => Ty::ptr(Ty::Void),
        }
    }

    /// How the helper reference spells the shape.
    pub fn spelling(self) -> &'static str {
        match self {
            HelperTy::U32 => "u32",
            HelperTy::U64 => "u64",
            HelperTy::I32 => "i32",
            HelperTy::I64 => "i64",
            HelperTy::Ptr => "*void",
            HelperTy::Ctx => "ctx",
            HelperTy::Void => "void",
            HelperTy::TaskBtf => "*task_struct",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Helper {
    pub name: &'static str,
    pub id: u32,
    pub params: &'static [HelperTy],
    pub ret: HelperTy,
}

use HelperTy::*;

/// The helpers users may call by name. Ids are the kernel's `enum bpf_func_id` values.
pub const HELPERS: &[Helper] = &[
    Helper {
        name: "bpf_map_lookup_elem",
        id: 1,
        params: &[Ptr, Ptr],
        ret: Ptr,
    },
    Helper {
        name: "bpf_map_update_elem",
        id: 2,
        params: &[Ptr, Ptr, Ptr, U64],
        ret: I64,
    },
    Helper {
        name: "bpf_map_delete_elem",
        id: 3,
        params: &[Ptr, Ptr],
        ret: I64,
    },
    Helper {
        name: "bpf_probe_read",
        id: 4,
        params: &[Ptr, U32, Ptr],
        ret: I64,
    },
    Helper {
        name: "bpf_ktime_get_ns",
        id: 5,
        params: &[],
        ret: U64,
    },
    Helper {
        name: "bpf_trace_printk",
        id: 6,
        params: &[Ptr, U32, U64, U64, U64],
        ret: I64,
    },
    Helper {
        name: "bpf_get_prandom_u32",
        id: 7,
        params: &[],
        ret: U32,
    },
    Helper {
        name: "bpf_get_smp_processor_id",
        id: 8,
        params: &[],
        ret: U32,
    },
    Helper {
        name: "bpf_skb_store_bytes",
        id: 9,
        params: &[Ctx, U32, Ptr, U32, U64],
        ret: I64,
    },
    Helper {
        name: "bpf_l3_csum_replace",
        id: 10,
        params: &[Ctx, U32, U64, U64, U64],
        ret: I64,
    },
    Helper {
        name: "bpf_l4_csum_replace",
        id: 11,
        params: &[Ctx, U32, U64, U64, U64],
        ret: I64,
    },
    Helper {
        name: "bpf_tail_call",
        id: 12,
        params: &[Ctx, Ptr, U32],
        ret: I64,
    },
    Helper {
        name: "bpf_clone_redirect",
        id: 13,
        params: &[Ctx, U32, U64],
        ret: I64,
    },
    Helper {
        name: "bpf_get_current_pid_tgid",
        id: 14,
        params: &[],
        ret: U64,
    },
    Helper {
        name: "bpf_get_current_uid_gid",
        id: 15,
        params: &[],
        ret: U64,
    },
    Helper {
        name: "bpf_get_current_comm",
        id: 16,
        params: &[Ptr, U32],
        ret: I64,
    },
    Helper {
        name: "bpf_get_cgroup_classid",
        id: 17,
        params: &[Ctx],
        ret: U32,
    },
    Helper {
        name: "bpf_skb_vlan_push",
        id: 18,
        params: &[Ctx, U32, U32],
        ret: I64,
    },
    Helper {
        name: "bpf_skb_vlan_pop",
        id: 19,
        params: &[Ctx],
        ret: I64,
    },
    Helper {
        name: "bpf_redirect",
        id: 23,
        params: &[U32, U64],
        ret: I64,
    },
    Helper {
        name: "bpf_get_route_realm",
        id: 24,
        params: &[Ctx],
        ret: U32,
    },
    Helper {
        name: "bpf_perf_event_output",
        id: 25,
        params: &[Ctx, Ptr, U64, Ptr, U64],
        ret: I64,
    },
    Helper {
        name: "bpf_skb_load_bytes",
        id: 26,
        params: &[Ctx, U32, Ptr, U32],
        ret: I64,
    },
    Helper {
        name: "bpf_csum_diff",
        id: 28,
        params: &[Ptr, U32, Ptr, U32, U32],
        ret: I64,
    },
    Helper {
        name: "bpf_skb_change_proto",
        id: 31,
        params: &[Ctx, U32, U64],
        ret: I64,
    },
    Helper {
        name: "bpf_skb_change_type",
        id: 32,
        params: &[Ctx, U32],
        ret: I64,
    },
    Helper {
        name: "bpf_get_current_task",
        id: 35,
        params: &[],
        ret: U64,
    },
    Helper {
        name: "bpf_get_numa_node_id",
        id: 42,
        params: &[],
        ret: I64,
    },
    Helper {
        name: "bpf_xdp_adjust_head",
        id: 44,
        params: &[Ctx, I32],
        ret: I64,
    },
    Helper {
        name: "bpf_get_socket_cookie",
        id: 46,
        params: &[Ctx],
        ret: U64,
    },
    Helper {
        name: "bpf_get_socket_uid",
        id: 47,
        params: &[Ctx],
        ret: U32,
    },
    Helper {
        name: "bpf_set_hash",
        id: 48,
        params: &[Ctx, U32],
        ret: I64,
    },
    Helper {
        name: "bpf_xdp_adjust_meta",
        id: 54,
        params: &[Ctx, I32],
        ret: I64,
    },
    Helper {
        name: "bpf_xdp_adjust_tail",
        id: 65,
        params: &[Ctx, I32],
        ret: I64,
    },
    Helper {
        name: "bpf_get_stack",
        id: 67,
        params: &[Ctx, Ptr, U32, U64],
        ret: I64,
    },
    Helper {
        name: "bpf_get_current_cgroup_id",
        id: 80,
        params: &[],
        ret: U64,
    },
    Helper {
        name: "bpf_send_signal",
        id: 109,
        params: &[U32],
        ret: I64,
    },
    Helper {
        name: "bpf_probe_read_user",
        id: 112,
        params: &[Ptr, U32, Ptr],
        ret: I64,
    },
    Helper {
        name: "bpf_probe_read_kernel",
        id: 113,
        params: &[Ptr, U32, Ptr],
        ret: I64,
    },
    Helper {
        name: "bpf_probe_read_user_str",
        id: 114,
        params: &[Ptr, U32, Ptr],
        ret: I64,
    },
    Helper {
        name: "bpf_probe_read_kernel_str",
        id: 115,
        params: &[Ptr, U32, Ptr],
        ret: I64,
    },
    Helper {
        name: "bpf_send_signal_thread",
        id: 117,
        params: &[U32],
        ret: I64,
    },
    Helper {
        name: "bpf_jiffies64",
        id: 118,
        params: &[],
        ret: U64,
    },
    Helper {
        name: "bpf_get_netns_cookie",
        id: 122,
        params: &[Ptr],
        ret: U64,
    },
    Helper {
        name: "bpf_get_current_ancestor_cgroup_id",
        id: 123,
        params: &[I32],
        ret: U64,
    },
    Helper {
        name: "bpf_ktime_get_boot_ns",
        id: 125,
        params: &[],
        ret: U64,
    },
    Helper {
        name: "bpf_get_current_task_btf",
        id: 158,
        params: &[],
        ret: TaskBtf,
    },
    Helper {
        name: "bpf_ktime_get_coarse_ns",
        id: 160,
        params: &[],
        ret: U64,
    },
    Helper {
        name: "bpf_get_func_ip",
        id: 173,
        params: &[Ctx],
        ret: U64,
    },
    Helper {
        name: "bpf_ktime_get_tai_ns",
        id: 208,
        params: &[],
        ret: U64,
    },
];

/// Which program kinds may call a helper: the kernel gives each program type its own set, and a
/// call outside it is refused at load ("program of this type cannot use helper"). Only the
/// restrictions every kernel since 5.x shares are listed (checked on 6.18 for xdp, tc, cgroup_skb,
/// tracepoint and perf_event); helpers not listed are available to every kind.
pub enum HelperKinds {
    Only(&'static [ProgKind]),
    Not(&'static [ProgKind]),
}

const TC: &[ProgKind] = &[ProgKind::Tc];
const SKB: &[ProgKind] = &[ProgKind::Tc, ProgKind::CgroupSkb];
const PACKET: &[ProgKind] = &[ProgKind::Xdp, ProgKind::Tc];
const PACKET_KINDS: &[ProgKind] = &[ProgKind::Xdp, ProgKind::Tc, ProgKind::CgroupSkb];

pub const HELPER_KINDS: &[(&str, HelperKinds)] = &[
    ("bpf_skb_store_bytes", HelperKinds::Only(TC)),
    ("bpf_l3_csum_replace", HelperKinds::Only(TC)),
    ("bpf_l4_csum_replace", HelperKinds::Only(TC)),
    ("bpf_clone_redirect", HelperKinds::Only(TC)),
    ("bpf_skb_vlan_push", HelperKinds::Only(TC)),
    ("bpf_skb_vlan_pop", HelperKinds::Only(TC)),
    ("bpf_get_route_realm", HelperKinds::Only(TC)),
    ("bpf_skb_change_proto", HelperKinds::Only(TC)),
    ("bpf_skb_change_type", HelperKinds::Only(TC)),
    ("bpf_set_hash", HelperKinds::Only(TC)),
    ("bpf_skb_load_bytes", HelperKinds::Only(SKB)),
    ("bpf_get_socket_cookie", HelperKinds::Only(SKB)),
    ("bpf_get_socket_uid", HelperKinds::Only(SKB)),
    ("bpf_redirect", HelperKinds::Only(PACKET)),
    ("bpf_csum_diff", HelperKinds::Only(PACKET)),
    ("bpf_xdp_adjust_head", HelperKinds::Only(&[ProgKind::Xdp])),
    ("bpf_xdp_adjust_meta", HelperKinds::Only(&[ProgKind::Xdp])),
    ("bpf_xdp_adjust_tail", HelperKinds::Only(&[ProgKind::Xdp])),
    ("bpf_get_stack", HelperKinds::Not(PACKET_KINDS)),
    ("bpf_probe_read", HelperKinds::Not(PACKET_KINDS)),
    (
        "bpf_get_func_ip",
        HelperKinds::Only(&[
            ProgKind::Probe,
            ProgKind::Fexit,
            ProgKind::Kprobe,
            ProgKind::Kretprobe,
        ]),
    ),
];

/// Whether a program of `kind` may call helper `name`, and if not, the kinds that may.
pub fn helper_allowed(name: &str, kind: ProgKind) -> Result<(), String> {
    match HELPER_KINDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| k)
    {
        Some(HelperKinds::Only(kinds)) if !kinds.contains(&kind) => {
            Err(format!("only {} programs may call it", kind_list(kinds)))
        }
        Some(HelperKinds::Not(kinds)) if kinds.contains(&kind) => {
            Err(format!("{} programs may not call it", kind_list(kinds)))
        }
        _ => Ok(()),
    }
}

fn kind_list(kinds: &[ProgKind]) -> String {
    kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The helper pointer parameters the kernel lets be NULL (`ARG_PTR_TO_MEM_OR_NULL` and the
/// like), by helper name and 0-based position; every other pointer parameter must point to
/// something, or the verifier refuses the call.
const NULLABLE_PARAMS: &[(&str, usize)] = &[
    ("bpf_csum_diff", 0),
    ("bpf_csum_diff", 2),
    ("bpf_snprintf", 3),
    ("bpf_trace_vprintk", 2),
    ("bpf_seq_printf", 3),
    ("bpf_loop", 2),
    ("bpf_for_each_map_elem", 2),
    ("bpf_find_vma", 3),
    ("bpf_user_ringbuf_drain", 2),
];

impl Helper {
    /// Whether the kernel accepts NULL for pointer parameter `i`.
    pub fn accepts_null(&self, i: usize) -> bool {
        NULLABLE_PARAMS.contains(&(self.name, i))
    }
}

pub fn helper(name: &str) -> Option<&'static Helper> {
    HELPERS.iter().find(|h| h.name == name)
}

/// Helpers whose C prototype ends in `...` (`bpf_trace_printk(fmt, fmt_size, ...)`), with the number
/// of fixed parameters; the table's later parameters are the variadic slots (§5.4). A call or an
/// `extern` may stop anywhere from the fixed prefix to the whole table; missing slots pass 0.
const VARIADIC_HELPERS: &[(&str, usize)] = &[("bpf_trace_printk", 2)];

impl Helper {
    /// How many leading parameters every call must pass: all of them unless the helper is variadic.
    pub fn fixed_params(&self) -> usize {
        VARIADIC_HELPERS
            .iter()
            .find(|(n, _)| *n == self.name)
            .map_or(self.params.len(), |&(_, k)| k)
    }

    /// The parameters a call with `given` arguments passes: the whole table, or for a variadic
    /// helper the first `given` when `given` lies between the fixed prefix and the table's length.
    pub fn params_for(&self, given: usize) -> &'static [HelperTy] {
        if (self.fixed_params()..self.params.len()).contains(&given) {
            &self.params[..given]
        } else {
            self.params
        }
    }
}

pub fn helper_by_id(id: u32) -> Option<&'static Helper> {
    HELPERS.iter().find(|h| h.id == id)
}

/// The Markdown reference of [`HELPERS`] (`docs/helpers.md`, printed by `ksc helper-reference`).
pub fn helper_reference() -> String {
    let mut s = String::from("# BPF helpers callable by name\n\n<!-- @generated from HELPERS in src/sema/builtins.rs; `ksc helper-reference` prints it. -->\n\n");
    s.push_str("Kernel code may call these BPF helpers by name without an `extern` [ext]; an `extern` of one must declare its\n");
    s.push_str("parameters, pointers as pointers and integers as integers (E0309). Parameters in brackets are the slots of a\n");
    s.push_str("variadic helper: calls and `extern`s may leave them out (they pass 0). Any other `extern` names a kfunc, checked\n");
    s.push_str("against kernel BTF ([language.md](language.md) §5.4).\n");
    s.push_str("Userspace code cannot call helpers (E0501). The id is the kernel's `enum bpf_func_id` value.\n\n");
    s.push_str("`*void` accepts any pointer, `ctx` is the program's context (its first parameter), and `*task_struct` is\n");
    s.push_str("the kernel's type from BTF, never null.\n\n");
    s.push_str("| helper | id | parameters | returns |\n|---|---|---|---|\n");
    for h in HELPERS {
        let fixed = h.fixed_params();
        let params: Vec<&str> = h.params.iter().map(|p| p.spelling()).collect();
        let params = if params.is_empty() {
            "none".to_string()
        } else if fixed < params.len() {
            format!(
                "`{}[, {}]`",
                params[..fixed].join(", "),
                params[fixed..].join(", ")
            )
        } else {
            format!("`{}`", params.join(", "))
        };
        s.push_str(&format!(
            "| `{}` | {} | {} | `{}` |\n",
            h.name,
            h.id,
            params,
            h.ret.spelling()
        ));
    }
    s
}

/// Builtins callable only from userspace (§9.4).
pub const USERSPACE_BUILTINS: &[&str] = &[
    "load", "attach", "detach", "read", "register", "dispatch", "daemon", "test", "test_len",
    "assert", "exec",
];

/// Builtins available in every world.
pub const UNIVERSAL_BUILTINS: &[&str] = &[
    "print", "sizeof", "ntohs", "htons", "ntohl", "htonl", "ntohll", "htonll",
];

/// Whether `name` is a builtin function. Builtins live in a prelude scope: a top-level
/// declaration of the same name shadows the builtin in the whole unit (§2.3 [fix]).
pub fn is_builtin(name: &str) -> bool {
    USERSPACE_BUILTINS.contains(&name) || UNIVERSAL_BUILTINS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_helper_reference_is_current() {
        let committed =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/helpers.md"))
                .unwrap_or_default();
        assert!(
            committed == helper_reference(),
            "docs/helpers.md is stale: run `target/release/ksc helper-reference > docs/helpers.md`"
        );
    }

    #[test]
    fn helper_names_and_ids_are_unique() {
        for (i, h) in HELPERS.iter().enumerate() {
            assert!(
                HELPERS[..i]
                    .iter()
                    .all(|o| o.name != h.name && o.id != h.id),
                "{} appears twice",
                h.name
            );
            assert!(
                h.params.len() <= 5,
                "{} takes more than 5 arguments",
                h.name
            );
        }
    }
}
