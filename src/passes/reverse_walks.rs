//! Reverse walks count down (docs/language.md §14.4).
//!
//! A range only counts up, so a walk from the end is written `for (k in 0..n) { … buf[n - 1 - k] … }`.
//! Compiled as written, the loop carries two values: `k`, which the verifier knows exactly in
//! every iteration, and the index LLVM derives from it, `n - 1 - k`. A state with `k = 3` never
//! prunes one with `k = 4`, so every path through the body is followed again in each of the up to
//! 64 iterations (blind11_tc_tls_sni: 120k instructions processed for a 40-instruction loop).
//! C counts such a walk down, `for (j = n; j > 0; j--)`: the verifier knows only a range of `j`.
//!
//! So a loop to a run-time bound whose counter is read only as a distance from that bound
//! (`n - 1 - k`, `n - k`, `n - (k + 1)`, give or take constants) or tested against constants
//! (`k == 0`) counts that distance down instead (`down` on its `ks.for`, from `n - 1` to `lo`),
//! and `k` is computed from it: LLVM folds `n - 1 - k` back into the one counter. A counter read
//! any other way (an index `buf[k]`, a sum) keeps the loop as it is: its exact value is what lets
//! the verifier prove such an access, as it does C's.

use std::collections::HashMap;

use super::value_bounds::is_unsigned;
use crate::ir::{Attr, BlockId, Builder, Module, OpId, Opcode, Value};
use crate::vocab::CmpPred;

/// The abort of a bound larger than bound-loops proved it is (which does not happen).
const UNPROVEN_BOUND: &[u8] = b"loop bound above the most ksc proved it to be";

/// Makes `ks.for` `lp` of function `f`, whose run-time bound is at most `most`, the count-down
/// loop above when its counter is read only as a reverse index; false when it is not.
pub(super) fn count_down(m: &mut Module, f: OpId, lp: OpId, most: i128) -> bool {
    let Some(walk) = ReverseWalk::of(m, f, lp) else {
        return false;
    };
    let loc = m.op(lp).loc;
    let (lo, hi) = (m.op(lp).operands[0], m.op(lp).operands[1]);
    let ty = m.value_type(hi).clone();
    let counter = walk.counter;
    let mut b = m.builder_before(lp);
    // ksc has shown `hi` is at most `most`; the verifier may not have (a bound learnt
    // from a spilled value, or from a test LLVM merged with another), and without it could not
    // end the loop. So the bound is tested again where the verifier sees it: a test of a
    // passthrough, which LLVM can neither fold (it knows the bound) nor merge with the loop's
    // own test. It never fails.
    let limit = b.core_const(most, ty.clone());
    let tested = b.bpf_passthrough(hi);
    let over = b.core_cmp(tested, limit, CmpPred::Gt);
    let check = b.ks_if(over, Some(false), &[]);
    let fails = b.entry(check, 0);
    b.set_block(fails);
    b.ks_abort(UNPROVEN_BOUND.to_vec());
    // The loop now counts `lo + hi - 1 - k`, the rounds left after this one (from `lo`): `k` is
    // `hi - 1 - (that - lo)`.
    m.set_attr(lp, "down", Some(Attr::Bool(true)));
    let readers = m.collect_nested(lp, |d| d.operands.contains(&counter));
    let body = walk.body;
    let mut b = Builder::new(m, body);
    b.at = Some(0);
    b.loc = loc;
    let left = b.core_sub(counter, lo);
    let one = b.core_const(1, ty.clone());
    let last = b.core_sub(hi, one);
    let k = b.core_sub(last, left);
    for op in readers {
        m.replace_uses_in(op, counter, k);
    }
    true
}

/// A `ks.for` whose counter is read only as a distance from its bound or in tests against
/// constants, with at least one such distance.
struct ReverseWalk {
    body: BlockId,
    counter: Value,
}

impl ReverseWalk {
    fn of(m: &Module, f: OpId, lp: OpId) -> Option<ReverseWalk> {
        let hi = m.op(lp).operands[1];
        if !is_unsigned(m.value_type(hi)) || m.const_int(hi).is_some() {
            return None;
        }
        let body = match m.region(m.op(lp).regions[0]).blocks[..] {
            [b] => b,
            _ => return None,
        };
        let counter = *m.block(body).args.first()?;
        if m.value_type(counter) != m.value_type(hi) {
            return None;
        }
        let users = Users::in_function(m, f);
        // The counter's reads: itself, and the loads of the one local it is stored into.
        let mut reads = vec![counter];
        for &user in users.of(counter) {
            let d = m.op(user);
            match d.opcode {
                Opcode::CoreStore if d.operands[0] == counter && m.is_local(d.operands[1]) => {
                    let slot = d.operands[1];
                    let slot_reads = users.loads_only(m, slot, user)?;
                    if slot_reads.iter().any(|&r| !m.defined_within(r, lp)) {
                        return None;
                    }
                    reads.extend(slot_reads);
                }
                _ => {}
            }
        }
        let bound = Bound::of(m, &users, lp, hi);
        let mut distances = 0;
        for &read in &reads {
            for &user in users.of(read) {
                let d = m.op(user);
                let stores_counter = read == counter
                    && d.opcode == Opcode::CoreStore
                    && d.operands[0] == counter
                    && m.is_local(d.operands[1]);
                let tested = d.opcode == Opcode::CoreCmp
                    && d.operands.iter().any(|&o| m.const_int(o).is_some());
                if stores_counter || tested {
                    continue;
                }
                if !bound.distance_above(m, &users, &reads, user) {
                    return None;
                }
                distances += 1;
            }
        }
        (distances > 0).then_some(ReverseWalk { body, counter })
    }
}

/// The loop's run-time bound and the reads in its body that stand for it: the bound itself, or
/// loads of the local it was loaded from, which the loop does not store.
struct Bound {
    value: Value,
    local: Option<Value>,
}

impl Bound {
    fn of(m: &Module, users: &Users, lp: OpId, hi: Value) -> Bound {
        // A local only loaded and stored (its address never taken), and not stored in the loop.
        let local = m
            .defining_op(hi)
            .filter(|&d| m.op(d).opcode == Opcode::CoreLoad)
            .map(|d| m.op(d).operands[0])
            .filter(|&l| m.is_local(l))
            .filter(|&l| {
                let only_read_and_written = users.of(l).iter().all(|&u| {
                    let d = m.op(u);
                    d.opcode == Opcode::CoreLoad
                        || d.opcode == Opcode::CoreStore && d.operands[0] != l
                });
                let stored_in_loop =
                    m.collect_nested(lp, |d| d.opcode == Opcode::CoreStore && d.operands[1] == l);
                only_read_and_written && stored_in_loop.is_empty()
            });
        Bound { value: hi, local }
    }

    fn stands_for(&self, m: &Module, v: Value) -> bool {
        v == self.value
            || self.local.is_some_and(|l| {
                m.defining_op(v)
                    .is_some_and(|d| m.op(d).opcode == Opcode::CoreLoad && m.op(d).operands[0] == l)
            })
    }

    /// Whether `op`, which uses a read of the counter, is on the way to a distance from the
    /// bound: a sum or difference of the counter, the bound and constants that reaches
    /// `bound - counter + c` through sums whose only use is the next step.
    fn distance_above(&self, m: &Module, users: &Users, reads: &[Value], mut op: OpId) -> bool {
        loop {
            let Some(form) = self.linear(m, reads, m.op(op).results.first().copied(), 4) else {
                return false;
            };
            match form {
                Linear {
                    bound: 1,
                    counter: -1,
                    ..
                } => return true,
                Linear {
                    bound: 0,
                    counter: 1 | -1,
                    ..
                } => {
                    let result = m.op(op).results[0];
                    match users.of(result) {
                        [next] => op = *next,
                        _ => return false,
                    }
                }
                _ => return false,
            }
        }
    }

    /// `v` as `bound × b + counter × c + k`, when it is a sum or difference of those.
    fn linear(&self, m: &Module, reads: &[Value], v: Option<Value>, depth: u32) -> Option<Linear> {
        let v = v?;
        if reads.contains(&v) {
            return Some(Linear {
                bound: 0,
                counter: 1,
                constant: 0,
            });
        }
        if self.stands_for(m, v) {
            return Some(Linear {
                bound: 1,
                counter: 0,
                constant: 0,
            });
        }
        if let Some(k) = m.const_int(v) {
            return Some(Linear {
                bound: 0,
                counter: 0,
                constant: k,
            });
        }
        let d = m.op(m.defining_op(v)?);
        if depth == 0 || m.value_type(v) != m.value_type(d.operands.first().copied()?) {
            return None;
        }
        let (a, b) = (
            self.linear(m, reads, Some(d.operands[0]), depth - 1)?,
            self.linear(m, reads, d.operands.get(1).copied(), depth - 1)?,
        );
        match d.opcode {
            Opcode::CoreAdd => Some(a.plus(&b, 1)),
            Opcode::CoreSub => Some(a.plus(&b, -1)),
            _ => None,
        }
    }
}

#[derive(Clone, Copy)]
struct Linear {
    bound: i128,
    counter: i128,
    constant: i128,
}

impl Linear {
    fn plus(&self, other: &Linear, sign: i128) -> Linear {
        Linear {
            bound: self.bound + sign * other.bound,
            counter: self.counter + sign * other.counter,
            constant: self
                .constant
                .wrapping_add(sign.wrapping_mul(other.constant)),
        }
    }
}

/// The ops of a function that use each value.
struct Users(HashMap<Value, Vec<OpId>>);

impl Users {
    fn in_function(m: &Module, f: OpId) -> Users {
        Users(m.users_within(f))
    }

    fn of(&self, v: Value) -> &[OpId] {
        self.0.get(&v).map_or(&[], |u| u.as_slice())
    }

    /// The loads of local `slot` when `store` is its only other use.
    fn loads_only(&self, m: &Module, slot: Value, store: OpId) -> Option<Vec<Value>> {
        let mut loads = Vec::new();
        for &user in self.of(slot) {
            let d = m.op(user);
            match d.opcode {
                _ if user == store => {}
                Opcode::CoreLoad => loads.push(d.results[0]),
                _ => return None,
            }
        }
        Some(loads)
    }
}
