//! Program verdicts (§9.2): the type each program kind returns and the values the kernel accepts
//! from it. One table serves the return-type check (E0203), the verdict-type check of returned
//! values (E0301: an XDP constant in a tc program) and the range check of constant verdicts
//! (E0310), so that an accepted program never exits with a value the verifier rejects.

use super::env::ProgKind;

/// What programs of one kind return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdicts {
    /// The builtin enum naming this kind's verdicts (`xdp_action`, `tc_action`).
    pub enum_name: Option<&'static str>,
    /// The values the kernel accepts (inclusive), when it restricts them.
    pub range: Option<(i128, i128)>,
    /// What the range means, for messages.
    pub meaning: &'static str,
}

/// The verdict table. `arg` is the kind attribute's argument (`"ingress"`, `"egress"`, …).
///
/// Ranges: cgroup_skb, lsm, fentry and fexit are what the verifier enforces at program exit
/// (`check_return_code`: cgroup_skb ingress [0, 1], egress [0, 3] where bit 1 asks for congestion
/// notification; LSM hooks returning int [-MAX_ERRNO, 0]; fentry/fexit [0, 0]). XDP and tc are not
/// range-checked by the verifier, but the kernel treats any value outside the enum as an error
/// (XDP: `bpf_warn_invalid_xdp_action` and a drop; tc: an unknown action), so a constant outside
/// it is always a mistake. Kprobes, tracepoints and perf_event programs may return anything.
pub fn verdicts(kind: ProgKind, arg: Option<&str>) -> Verdicts {
    let any = Verdicts {
        enum_name: None,
        range: None,
        meaning: "",
    };
    match kind {
        ProgKind::Xdp => Verdicts {
            enum_name: Some("xdp_action"),
            range: Some((0, 4)),
            meaning: "an `xdp_action` (XDP_ABORTED 0 … XDP_REDIRECT 4); the kernel drops the packet on any other value",
        },
        ProgKind::Tc => Verdicts {
            enum_name: Some("tc_action"),
            range: Some((-1, 8)),
            meaning: "a TC action (TC_ACT_UNSPEC -1 … TC_ACT_TRAP 8)",
        },
        ProgKind::CgroupSkb if arg == Some("egress") => Verdicts {
            enum_name: None,
            range: Some((0, 3)),
            meaning: "0 (drop) or 1 (allow), plus 2 to request congestion notification; the verifier rejects other values",
        },
        ProgKind::CgroupSkb => Verdicts {
            enum_name: None,
            range: Some((0, 1)),
            meaning: "0 (drop) or 1 (allow); the verifier rejects other values",
        },
        ProgKind::Lsm => Verdicts {
            enum_name: None,
            range: Some((-4095, 0)),
            meaning: "0 (allow) or a negative errno -4095 … -1 (deny); the verifier rejects other values",
        },
        ProgKind::Probe | ProgKind::Fexit => Verdicts {
            enum_name: None,
            range: Some((0, 0)),
            meaning: "0; the verifier rejects fentry/fexit programs that return anything else",
        },
        ProgKind::Kprobe | ProgKind::Kretprobe | ProgKind::Tracepoint | ProgKind::TpBtf | ProgKind::PerfEvent | ProgKind::StructOps => any,
    }
}

/// The verdict enums: a value of one of them belongs to one program kind.
pub const VERDICT_ENUMS: [&str; 2] = ["xdp_action", "tc_action"];

/// What a value of an enum is, for messages: the verdict enums name their program kind.
pub fn enum_kind(enum_name: &str) -> String {
    match enum_name {
        "xdp_action" => "an XDP verdict".to_string(),
        "tc_action" => "a TC verdict".to_string(),
        n => format!("a `{n}` value"),
    }
}

/// The constant with the same meaning in another kind, for the note of a wrong-kind verdict:
/// `TC_ACT_SHOT` in an XDP program → `XDP_DROP`.
pub fn equivalent(constant: &str, kind: ProgKind) -> Option<&'static str> {
    let meaning = match constant {
        "XDP_DROP" | "XDP_ABORTED" | "TC_ACT_SHOT" => "drop",
        "XDP_PASS" | "TC_ACT_OK" | "TC_ACT_UNSPEC" => "pass",
        "XDP_REDIRECT" | "TC_ACT_REDIRECT" => "redirect",
        _ => return None,
    };
    Some(match (kind, meaning) {
        (ProgKind::Xdp, "drop") => "XDP_DROP",
        (ProgKind::Xdp, "pass") => "XDP_PASS",
        (ProgKind::Xdp, _) => "XDP_REDIRECT",
        (ProgKind::Tc, "drop") => "TC_ACT_SHOT",
        (ProgKind::Tc, "pass") => "TC_ACT_OK",
        (ProgKind::Tc, _) => "TC_ACT_REDIRECT",
        (ProgKind::CgroupSkb, "drop") => "0",
        (ProgKind::CgroupSkb, "pass") => "1",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [ProgKind; 12] = [
        ProgKind::Xdp,
        ProgKind::Tc,
        ProgKind::Probe,
        ProgKind::Kprobe,
        ProgKind::Fexit,
        ProgKind::Kretprobe,
        ProgKind::Tracepoint,
        ProgKind::TpBtf,
        ProgKind::PerfEvent,
        ProgKind::Lsm,
        ProgKind::CgroupSkb,
        ProgKind::StructOps,
    ];

    /// The values ksc itself makes programs return (after a failed tail call, an abort, a
    /// non-exhaustive match's zero) must be in every kind's range.
    #[test]
    fn generated_returns_are_in_range() {
        for kind in KINDS {
            for arg in [None, Some("ingress"), Some("egress")] {
                let v = verdicts(kind, arg);
                let pass = kind.pass_verdict();
                if let Some((lo, hi)) = v.range {
                    assert!((lo..=hi).contains(&pass), "{kind:?} pass verdict {pass}");
                    assert!((lo..=hi).contains(&0), "{kind:?} zero value");
                }
            }
        }
    }

    #[test]
    fn equivalents_name_the_right_kind() {
        assert_eq!(equivalent("TC_ACT_SHOT", ProgKind::Xdp), Some("XDP_DROP"));
        assert_eq!(equivalent("XDP_DROP", ProgKind::Tc), Some("TC_ACT_SHOT"));
        assert_eq!(equivalent("XDP_PASS", ProgKind::CgroupSkb), Some("1"));
        assert_eq!(equivalent("XDP_TX", ProgKind::Tc), None);
    }
}
