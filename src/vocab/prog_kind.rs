//! What each program kind means: how source names it, where libbpf finds it, what it may do.

use super::ProgKind;

impl ProgKind {
    /// The kind an attribute `@NAME` on a function declares by itself (kinds that depend on the
    /// attach target, such as kprobes and struct_ops methods, are decided elsewhere).
    pub fn from_attribute(name: &str) -> Option<ProgKind> {
        Some(match name {
            "xdp" => ProgKind::Xdp,
            "tc" => ProgKind::Tc,
            "probe" => ProgKind::Probe,
            "fexit" => ProgKind::Fexit,
            "kretprobe" => ProgKind::Kretprobe,
            "tracepoint" => ProgKind::Tracepoint,
            "tp_btf" => ProgKind::TpBtf,
            "perf_event" => ProgKind::PerfEvent,
            "lsm" => ProgKind::Lsm,
            "cgroup_skb" => ProgKind::CgroupSkb,
            _ => return None,
        })
    }

    /// The ELF section libbpf expects for a program of this kind attached to `target`
    /// (docs/language.md §9.2, TOOLCHAIN.md).
    pub fn section(self, target: &str) -> String {
        match self {
            ProgKind::Xdp => "xdp".into(),
            ProgKind::Tc => format!("tcx/{target}"),
            ProgKind::Probe => format!("fentry/{target}"),
            ProgKind::Kprobe => format!("kprobe/{target}"),
            ProgKind::Fexit => format!("fexit/{target}"),
            ProgKind::Kretprobe => format!("kretprobe/{target}"),
            ProgKind::Tracepoint => format!("tracepoint/{target}"),
            ProgKind::TpBtf => format!("tp_btf/{target}"),
            ProgKind::PerfEvent => "perf_event".into(),
            ProgKind::Lsm => format!("lsm/{target}"),
            ProgKind::CgroupSkb => format!("cgroup_skb/{target}"),
            ProgKind::StructOps => format!("struct_ops/{target}"),
        }
    }

    /// `enum bpf_prog_type`'s name (uapi/linux/bpf.h), as the kernel module's C spells it.
    pub fn bpf_prog_type(self) -> &'static str {
        match self {
            ProgKind::Xdp => "BPF_PROG_TYPE_XDP",
            ProgKind::Tc => "BPF_PROG_TYPE_SCHED_CLS",
            ProgKind::CgroupSkb => "BPF_PROG_TYPE_CGROUP_SKB",
            ProgKind::Probe | ProgKind::Fexit | ProgKind::TpBtf => "BPF_PROG_TYPE_TRACING",
            ProgKind::Lsm => "BPF_PROG_TYPE_LSM",
            ProgKind::StructOps => "BPF_PROG_TYPE_STRUCT_OPS",
            ProgKind::Kprobe | ProgKind::Kretprobe => "BPF_PROG_TYPE_KPROBE",
            ProgKind::Tracepoint => "BPF_PROG_TYPE_TRACEPOINT",
            ProgKind::PerfEvent => "BPF_PROG_TYPE_PERF_EVENT",
        }
    }

    /// Attached through a BPF trampoline: the context is the traced function's arguments.
    pub fn is_trampoline(self) -> bool {
        matches!(
            self,
            ProgKind::Probe
                | ProgKind::Fexit
                | ProgKind::TpBtf
                | ProgKind::Lsm
                | ProgKind::StructOps
        )
    }

    /// The verdict that lets the event through unchanged (XDP_PASS, SK_PASS, TC_ACT_OK, 0), which
    /// ksc returns when a tail call fails or the program aborts.
    pub fn pass_verdict(self) -> i128 {
        match self {
            ProgKind::Xdp => 2,
            ProgKind::CgroupSkb => 1,
            _ => 0,
        }
    }

    /// Kinds `test()` can run through BPF_PROG_TEST_RUN (§17.4).
    pub fn test_runnable(self) -> bool {
        matches!(self, ProgKind::Xdp | ProgKind::Tc | ProgKind::CgroupSkb)
    }

    /// The family a tail call must stay within (§9.5), or `None` when the kind cannot be a target.
    pub fn tail_call_family(self) -> Option<ProgKind> {
        match self {
            ProgKind::Xdp
            | ProgKind::Tc
            | ProgKind::CgroupSkb
            | ProgKind::Tracepoint
            | ProgKind::PerfEvent
            | ProgKind::Kprobe => Some(self),
            _ => None,
        }
    }
}
