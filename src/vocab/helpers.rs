//! The BPF helpers ksc knows: the kernel's `enum bpf_func_id` value, name and prototype of each,
//! the program kinds that may call it, and what it does to the memory its arguments point to.
//! One table for every stage: sema checks calls against it, lowering emits the compiler's own
//! calls from it, and the BPF back end reads the memory effects from it.

use super::ProgKind;
use HelperTy::*;

/// A parameter or result shape.
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

/// Which program kinds may call a helper: the kernel gives each program type its own set, and a
/// call outside it is refused at load ("program of this type cannot use helper"). Only the
/// restrictions every kernel since 5.x shares are listed (checked on 6.18 for xdp, tc, cgroup_skb,
/// tracepoint and perf_event); other helpers are available to every kind.
#[derive(Clone, Copy, Debug)]
pub enum Callers {
    Any,
    Only(&'static [ProgKind]),
    Not(&'static [ProgKind]),
}

#[derive(Clone, Copy, Debug)]
pub struct Helper {
    pub id: u32,
    pub name: &'static str,
    pub params: &'static [HelperTy],
    pub ret: HelperTy,
    /// Users may call it by name (§5.4); the others only the compiler emits.
    pub callable: bool,
    pub callers: Callers,
    /// Pointer parameters (0-based) the kernel lets be NULL (`ARG_PTR_TO_MEM_OR_NULL` and the
    /// like); every other pointer parameter must point to something.
    pub nullable: &'static [usize],
    /// For a C prototype ending in `...`, the number of fixed parameters; the later ones are
    /// variadic slots a call may leave out.
    pub fixed_params: Option<usize>,
    /// Pointer arguments the kernel only reads and never keeps (map keys and values, records to
    /// output): a slot passed there holds the same bytes after the call and does not escape.
    pub reads_only: &'static [usize],
    /// Whether the helper may write memory the program can see (LRU bookkeeping aside).
    pub writes_memory: bool,
    /// Whether the helper may move or resize the packet, so the kernel forgets every packet
    /// pointer the program holds (`bpf_helper_changes_pkt_data`).
    pub moves_packet: bool,
    /// `(buffer, size)`: the helper writes all `size` bytes at parameter `buffer`, whether it
    /// succeeds or not (zeroes on failure), so what the buffer held before is never seen (the
    /// kernel's `ARG_PTR_TO_UNINIT_MEM` with a full-size write).
    pub fills: Option<(usize, usize)>,
    /// `(memory, size)`: parameter `memory` points to `size` bytes the helper reads or writes
    /// (`ARG_PTR_TO_MEM` with `ARG_CONST_SIZE`); the kernel checks them against the object.
    pub sized: &'static [(usize, usize)],
    /// Its sizes must be at least 1 (`ARG_CONST_SIZE`, not `ARG_CONST_SIZE_OR_ZERO`).
    pub nonzero_size: bool,
}

impl Helper {
    const fn callable(
        id: u32,
        name: &'static str,
        params: &'static [HelperTy],
        ret: HelperTy,
    ) -> Helper {
        Helper {
            id,
            name,
            params,
            ret,
            callable: true,
            callers: Callers::Any,
            nullable: &[],
            fixed_params: None,
            reads_only: &[],
            writes_memory: true,
            moves_packet: false,
            fills: None,
            sized: &[],
            nonzero_size: false,
        }
    }

    const fn internal(
        id: u32,
        name: &'static str,
        params: &'static [HelperTy],
        ret: HelperTy,
    ) -> Helper {
        Helper {
            callable: false,
            ..Helper::callable(id, name, params, ret)
        }
    }

    const fn only(self, kinds: &'static [ProgKind]) -> Helper {
        Helper {
            callers: Callers::Only(kinds),
            ..self
        }
    }

    const fn not(self, kinds: &'static [ProgKind]) -> Helper {
        Helper {
            callers: Callers::Not(kinds),
            ..self
        }
    }

    const fn nullable(self, params: &'static [usize]) -> Helper {
        Helper {
            nullable: params,
            ..self
        }
    }

    const fn variadic_after(self, fixed: usize) -> Helper {
        Helper {
            fixed_params: Some(fixed),
            ..self
        }
    }

    const fn reads_only(self, params: &'static [usize]) -> Helper {
        Helper {
            reads_only: params,
            ..self
        }
    }

    const fn moves_packet(self) -> Helper {
        Helper {
            moves_packet: true,
            ..self
        }
    }

    const fn sized(self, pairs: &'static [(usize, usize)]) -> Helper {
        Helper {
            sized: pairs,
            ..self
        }
    }

    const fn nonzero_size(self) -> Helper {
        Helper {
            nonzero_size: true,
            ..self
        }
    }

    /// The `(memory, size)` parameter pairs, those it fills included.
    pub fn memory_sizes(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.fills.into_iter().chain(self.sized.iter().copied())
    }

    const fn fills(self, buffer: usize, size: usize) -> Helper {
        Helper {
            fills: Some((buffer, size)),
            ..self
        }
    }

    const fn writes_no_memory(self) -> Helper {
        Helper {
            writes_memory: false,
            ..self
        }
    }

    /// Whether a program of `kind` may call it; if not, which kinds may (or may not).
    pub fn allowed_in(&self, kind: ProgKind) -> Result<(), String> {
        let list = |kinds: &[ProgKind]| {
            kinds
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.callers {
            Callers::Only(kinds) if !kinds.contains(&kind) => {
                Err(format!("only {} programs may call it", list(kinds)))
            }
            Callers::Not(kinds) if kinds.contains(&kind) => {
                Err(format!("{} programs may not call it", list(kinds)))
            }
            _ => Ok(()),
        }
    }

    /// Whether the kernel accepts NULL for pointer parameter `i`.
    pub fn accepts_null(&self, i: usize) -> bool {
        self.nullable.contains(&i)
    }

    /// How many leading parameters every call must pass: all of them unless the helper is variadic.
    pub fn fixed_params(&self) -> usize {
        self.fixed_params.unwrap_or(self.params.len())
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

const TC: &[ProgKind] = &[ProgKind::Tc];
const SKB: &[ProgKind] = &[ProgKind::Tc, ProgKind::CgroupSkb];
const PACKET: &[ProgKind] = &[ProgKind::Xdp, ProgKind::Tc];
const XDP: &[ProgKind] = &[ProgKind::Xdp];
const PACKET_KINDS: &[ProgKind] = &[ProgKind::Xdp, ProgKind::Tc, ProgKind::CgroupSkb];
const FUNC_IP: &[ProgKind] = &[
    ProgKind::Probe,
    ProgKind::Fexit,
    ProgKind::Kprobe,
    ProgKind::Kretprobe,
];

// The helpers the compiler emits itself, by name for the lowering.

pub const MAP_LOOKUP_ELEM: Helper = Helper::callable(1, "bpf_map_lookup_elem", &[Ptr, Ptr], Ptr)
    .reads_only(&[1])
    .writes_no_memory();

pub const MAP_UPDATE_ELEM: Helper =
    Helper::callable(2, "bpf_map_update_elem", &[Ptr, Ptr, Ptr, U64], I64).reads_only(&[1, 2]);

pub const MAP_DELETE_ELEM: Helper =
    Helper::callable(3, "bpf_map_delete_elem", &[Ptr, Ptr], I64).reads_only(&[1]);

pub const PERF_EVENT_OUTPUT: Helper =
    Helper::callable(25, "bpf_perf_event_output", &[Ctx, Ptr, U64, Ptr, U64], I64)
        .reads_only(&[3])
        .sized(&[(3, 4)]);

pub const REDIRECT_MAP: Helper = Helper::internal(51, "bpf_redirect_map", &[Ptr, U32, U64], I64);

pub const MAP_PUSH_ELEM: Helper =
    Helper::internal(87, "bpf_map_push_elem", &[Ptr, Ptr, U64], I64).reads_only(&[1]);

pub const MAP_POP_ELEM: Helper = Helper::internal(88, "bpf_map_pop_elem", &[Ptr, Ptr], I64);

pub const MAP_PEEK_ELEM: Helper = Helper::internal(89, "bpf_map_peek_elem", &[Ptr, Ptr], I64);

pub const PROBE_READ_USER: Helper =
    Helper::callable(112, "bpf_probe_read_user", &[Ptr, U32, Ptr], I64).fills(0, 1);

pub const PROBE_READ_KERNEL: Helper =
    Helper::callable(113, "bpf_probe_read_kernel", &[Ptr, U32, Ptr], I64).fills(0, 1);

pub const RINGBUF_OUTPUT: Helper =
    Helper::internal(130, "bpf_ringbuf_output", &[Ptr, Ptr, U64, U64], I64)
        .reads_only(&[1])
        .sized(&[(1, 2)]);

pub const RINGBUF_RESERVE: Helper =
    Helper::internal(131, "bpf_ringbuf_reserve", &[Ptr, U64, U64], Ptr);

pub const RINGBUF_SUBMIT: Helper = Helper::internal(132, "bpf_ringbuf_submit", &[Ptr, U64], Void);

pub const RINGBUF_DISCARD: Helper = Helper::internal(133, "bpf_ringbuf_discard", &[Ptr, U64], Void);

/// Every helper, by id.
pub const HELPERS: &[Helper] = &[
    MAP_LOOKUP_ELEM,
    MAP_UPDATE_ELEM,
    MAP_DELETE_ELEM,
    Helper::callable(4, "bpf_probe_read", &[Ptr, U32, Ptr], I64)
        .not(PACKET_KINDS)
        .fills(0, 1),
    Helper::callable(5, "bpf_ktime_get_ns", &[], U64),
    Helper::callable(6, "bpf_trace_printk", &[Ptr, U32, U64, U64, U64], I64)
        .variadic_after(2)
        .sized(&[(0, 1)])
        .nonzero_size(),
    Helper::callable(7, "bpf_get_prandom_u32", &[], U32),
    Helper::callable(8, "bpf_get_smp_processor_id", &[], U32),
    Helper::callable(9, "bpf_skb_store_bytes", &[Ctx, U32, Ptr, U32, U64], I64)
        .only(TC)
        .moves_packet()
        .sized(&[(2, 3)])
        .nonzero_size(),
    Helper::callable(10, "bpf_l3_csum_replace", &[Ctx, U32, U64, U64, U64], I64)
        .only(TC)
        .moves_packet(),
    Helper::callable(11, "bpf_l4_csum_replace", &[Ctx, U32, U64, U64, U64], I64)
        .only(TC)
        .moves_packet(),
    Helper::callable(12, "bpf_tail_call", &[Ctx, Ptr, U32], I64),
    Helper::callable(13, "bpf_clone_redirect", &[Ctx, U32, U64], I64)
        .only(TC)
        .moves_packet(),
    Helper::callable(14, "bpf_get_current_pid_tgid", &[], U64),
    Helper::callable(15, "bpf_get_current_uid_gid", &[], U64),
    Helper::callable(16, "bpf_get_current_comm", &[Ptr, U32], I64)
        .fills(0, 1)
        .nonzero_size(),
    Helper::callable(17, "bpf_get_cgroup_classid", &[Ctx], U32),
    Helper::callable(18, "bpf_skb_vlan_push", &[Ctx, U32, U32], I64)
        .only(TC)
        .moves_packet(),
    Helper::callable(19, "bpf_skb_vlan_pop", &[Ctx], I64)
        .only(TC)
        .moves_packet(),
    Helper::callable(23, "bpf_redirect", &[U32, U64], I64).only(PACKET),
    Helper::callable(24, "bpf_get_route_realm", &[Ctx], U32).only(TC),
    PERF_EVENT_OUTPUT,
    Helper::callable(26, "bpf_skb_load_bytes", &[Ctx, U32, Ptr, U32], I64)
        .only(SKB)
        .fills(2, 3)
        .nonzero_size(),
    Helper::callable(28, "bpf_csum_diff", &[Ptr, U32, Ptr, U32, U32], I64)
        .only(PACKET)
        .sized(&[(0, 1), (2, 3)])
        .nullable(&[0, 2]),
    Helper::callable(31, "bpf_skb_change_proto", &[Ctx, U32, U64], I64)
        .only(TC)
        .moves_packet(),
    Helper::callable(32, "bpf_skb_change_type", &[Ctx, U32], I64).only(TC),
    Helper::callable(35, "bpf_get_current_task", &[], U64),
    Helper::callable(42, "bpf_get_numa_node_id", &[], I64),
    Helper::callable(44, "bpf_xdp_adjust_head", &[Ctx, I32], I64)
        .only(XDP)
        .moves_packet(),
    Helper::callable(46, "bpf_get_socket_cookie", &[Ctx], U64).only(SKB),
    Helper::callable(47, "bpf_get_socket_uid", &[Ctx], U32).only(SKB),
    Helper::callable(48, "bpf_set_hash", &[Ctx, U32], I64).only(TC),
    REDIRECT_MAP,
    Helper::callable(54, "bpf_xdp_adjust_meta", &[Ctx, I32], I64)
        .only(XDP)
        .moves_packet(),
    Helper::callable(65, "bpf_xdp_adjust_tail", &[Ctx, I32], I64)
        .only(XDP)
        .moves_packet(),
    Helper::callable(67, "bpf_get_stack", &[Ctx, Ptr, U32, U64], I64)
        .not(PACKET_KINDS)
        .fills(1, 2),
    Helper::callable(80, "bpf_get_current_cgroup_id", &[], U64),
    MAP_PUSH_ELEM,
    MAP_POP_ELEM,
    MAP_PEEK_ELEM,
    Helper::callable(109, "bpf_send_signal", &[U32], I64),
    PROBE_READ_USER,
    PROBE_READ_KERNEL,
    Helper::callable(114, "bpf_probe_read_user_str", &[Ptr, U32, Ptr], I64).sized(&[(0, 1)]),
    Helper::callable(115, "bpf_probe_read_kernel_str", &[Ptr, U32, Ptr], I64).sized(&[(0, 1)]),
    Helper::callable(117, "bpf_send_signal_thread", &[U32], I64),
    Helper::callable(118, "bpf_jiffies64", &[], U64),
    Helper::callable(122, "bpf_get_netns_cookie", &[Ptr], U64),
    Helper::callable(123, "bpf_get_current_ancestor_cgroup_id", &[I32], U64),
    Helper::callable(125, "bpf_ktime_get_boot_ns", &[], U64),
    RINGBUF_OUTPUT,
    RINGBUF_RESERVE,
    RINGBUF_SUBMIT,
    RINGBUF_DISCARD,
    Helper::callable(158, "bpf_get_current_task_btf", &[], TaskBtf),
    Helper::callable(160, "bpf_ktime_get_coarse_ns", &[], U64),
    Helper::callable(173, "bpf_get_func_ip", &[Ctx], U64).only(FUNC_IP),
    Helper::callable(208, "bpf_ktime_get_tai_ns", &[], U64),
];

/// The helper users call by `name`, if ksc knows it.
pub fn callable(name: &str) -> Option<&'static Helper> {
    HELPERS.iter().find(|h| h.callable && h.name == name)
}

/// The helper with kernel id `id`.
pub fn by_id(id: i128) -> Option<&'static Helper> {
    HELPERS.iter().find(|h| i128::from(h.id) == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_unique_and_ordered() {
        for w in HELPERS.windows(2) {
            assert!(w[0].id < w[1].id, "{} before {}", w[0].name, w[1].name);
        }
        let mut names: Vec<&str> = HELPERS.iter().map(|h| h.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), HELPERS.len());
    }

    #[test]
    fn effects_name_pointer_parameters() {
        for h in HELPERS {
            for &i in h.reads_only.iter().chain(h.nullable) {
                assert!(
                    matches!(h.params.get(i), Some(Ptr | Ctx)),
                    "{} parameter {i}",
                    h.name
                );
            }
        }
    }
}
