//! Parameters that hold a packet pointer or `data_end` at every call (`@helper fn f(data: *u8,
//! data_end: *u8)`, the reference's way of handing a packet to a helper). The verifier checks a
//! static function with its caller's registers, so such a parameter is a packet pointer or the
//! packet's end inside the function, and a function given `data_end` is bounds-checked as one
//! given the context. Programs and functions whose address is taken have no such parameters.

use super::{ctx_field, Origin};
use crate::ir::{Module, OpId, Opcode, Value, ValueDef};
use crate::passes::manager::Analyses;
use crate::passes::provenance::Provenance;
use crate::passes::value_bounds::CallSites;
use std::collections::{HashMap, HashSet};

#[derive(Default)]
pub(super) struct ParamRoles {
    packet: HashSet<Value>,
    end: HashSet<Value>,
}

impl ParamRoles {
    pub fn of_module(m: &Module, analyses: &mut Analyses) -> ParamRoles {
        let funcs = crate::passes::kernel_funcs(m);
        let call_sites = CallSites::of(m, &funcs);
        let mut roles = ParamRoles::default();
        let candidates = funcs.iter().any(|&f| {
            call_sites.fixed(m, f).is_some()
                && m.block(m.func_entry(f))
                    .args
                    .iter()
                    .any(|&a| m.value_type(a).is_ptr())
        });
        if !candidates {
            return roles;
        }
        // A caller's parameters make its arguments packet pointers in turn: repeat while roles
        // are found (a call chain's depth).
        for _ in 0..8 {
            let classes: HashMap<OpId, Classes> = funcs
                .iter()
                .map(|&f| (f, Classes::of(m, f, analyses.provenance(m, f), &roles)))
                .collect();
            let mut found = ParamRoles::default();
            for &f in &funcs {
                let Some(sites) = call_sites.fixed(m, f) else {
                    continue;
                };
                let params = m.block(m.func_entry(f)).args.clone();
                for (i, p) in params.into_iter().enumerate() {
                    if !m.value_type(p).is_ptr() {
                        continue;
                    }
                    let args = || {
                        sites.iter().map(move |&(caller, call)| {
                            (caller, m.op(call).operands.get(i).copied())
                        })
                    };
                    let all = |set: fn(&Classes) -> &HashSet<Value>| {
                        args().all(|(caller, a)| {
                            a.is_some_and(|a| set(&classes[&caller]).contains(&a))
                        })
                    };
                    if all(|c| &c.packet) {
                        found.packet.insert(p);
                    } else if all(|c| &c.end) {
                        found.end.insert(p);
                    }
                }
            }
            let done = found.packet == roles.packet && found.end == roles.end;
            roles = found;
            if done {
                break;
            }
        }
        roles
    }

    /// Where parameter `v` points, if it holds a packet pointer or data_end at every call.
    pub fn origin(&self, v: Value) -> Option<Origin> {
        if self.packet.contains(&v) {
            Some(Origin::Data)
        } else if self.end.contains(&v) {
            Some(Origin::End)
        } else {
            None
        }
    }

    /// Whether one of `f`'s parameters holds a packet pointer at every call.
    pub fn has_packet_param(&self, m: &Module, f: OpId) -> bool {
        let entry = m.func_entry(f);
        m.block(entry).args.iter().any(|a| self.packet.contains(a))
    }

    /// `f`'s parameter holding data_end at every call, if any.
    pub fn end_param(&self, m: &Module, f: OpId) -> Option<Value> {
        let entry = m.func_entry(f);
        m.block(entry)
            .args
            .iter()
            .copied()
            .find(|a| self.end.contains(a))
    }
}

/// The packet pointers and data_end values of one function.
pub(super) struct Classes {
    pub packet: HashSet<Value>,
    pub end: HashSet<Value>,
}

impl Classes {
    /// data_end values (`ctx->data_end`, a data_end parameter, a local that only ever held
    /// data_end, a cast of one) and packet pointers (formed from `ctx->data`, `ctx->data_meta` or a packet
    /// parameter, and not from data_end).
    pub fn of(m: &Module, f: OpId, provenance: &Provenance, roles: &ParamRoles) -> Classes {
        let ops = m.collect_nested(f, |_| true);
        let origin = |v: Value| match m.value(v).def {
            ValueDef::Result(op, _) => match ctx_field(m, op) {
                Some(b"data" | b"data_meta") => Some(Origin::Data),
                Some(b"data_end") => Some(Origin::End),
                _ => None,
            },
            ValueDef::Arg(..) => roles.origin(v),
        };
        let pointers: Vec<Value> = m
            .block(m.func_entry(f))
            .args
            .iter()
            .copied()
            .chain(ops.iter().flat_map(|&op| m.op(op).results.iter().copied()))
            .filter(|&v| m.value_type(v).is_ptr())
            .collect();
        let mut end = HashSet::new();
        loop {
            let before = end.len();
            for &v in &pointers {
                // (A cast keeps the address: `data_end` compared with a `*tcphdr` is cast to one.)
                let holds_end = origin(v) == Some(Origin::End)
                    || provenance
                        .stored_before(v)
                        .is_some_and(|s| s.iter().all(|x| end.contains(x)))
                    || m.defining_op(v).is_some_and(|op| {
                        m.op(op).opcode == Opcode::CoreCast && end.contains(&m.op(op).operands[0])
                    });
                if holds_end {
                    end.insert(v);
                }
            }
            if end.len() == before {
                break;
            }
        }
        let packet = pointers
            .iter()
            .copied()
            .filter(|&v| {
                let origins: Vec<Option<Origin>> = provenance.roots(v).map(origin).collect();
                origins.iter().all(|&o| o != Some(Origin::End))
                    && origins.contains(&Some(Origin::Data))
            })
            .collect();
        Classes { packet, end }
    }
}
