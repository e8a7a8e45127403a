//! Checked indexing (§6.5, §6.6, §13.4): a range test and an abort before each index.

use super::*;
use crate::passes::value_bounds::{exact_in_verifier, LocalBounds};

/// What is known of a run-time index below its array's length, which decides its range test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KnownIndex {
    /// A bound the verifier tracks too keeps it below (a counter of `for (j in 0..8)` into a
    /// `u8[8]`): the test could never fail, and the verifier proves the access without it.
    Bounded,
    /// The tests before it keep it below a length that is a power of two, by a bound the verifier
    /// does not track (`if (i + 7 > n) { break }` with `n ≤ 64`, then `req[i + 6]`): it is
    /// masked to the length, which changes no value it can have and shows the verifier the
    /// bound, in place of the test, its branch and the abort.
    Masked,
}

/// The index ops of kernel function `f` with a run-time index known to stay below the array's
/// length, and how.
pub(super) fn known_indexes(m: &Module, f: OpId, calls: &CallBounds) -> HashMap<OpId, KnownIndex> {
    let indexes = m.collect_nested(f, |o| {
        o.opcode == Opcode::KsIndexAddr && const_value(m, o.operands[1]).is_none()
    });
    if indexes.is_empty() {
        return HashMap::new();
    }
    let bounds = LocalBounds::of_function(m, f, calls);
    indexes
        .into_iter()
        .filter_map(|op| {
            let v = KsIndexAddr(op);
            let n = match m.value_type(v.base(m)).pointee() {
                Some(Type::Array(_, n) | Type::Str(n)) => u128::from(*n),
                _ => return None,
            };
            let index = v.index(m);
            if bounds.max_of(m, index).is_some_and(|max| max < n) {
                return Some((op, KnownIndex::Bounded));
            }
            let tested =
                n.is_power_of_two() && bounds.tested_max(m, op, index).is_some_and(|max| max < n);
            tested.then_some((op, KnownIndex::Masked))
        })
        .collect()
}

/// `a[i]` with a run-time index: aborts unless `i < N`. The index is widened to u64 first, so a
/// negative signed index is a huge unsigned one and fails the same test.
pub(super) fn index_addr(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsIndexAddr(op);
    let (base, index, ty) = (v.base(e.m()), v.index(e.m()), e.ty(v.addr_value(e.m())));
    let n = match e.pointee(base) {
        Type::Array(_, n) | Type::Str(n) => n,
        t => return Err(format!("cannot index {t}")),
    };
    let i = e.cast(index, &Type::u64());
    let limit = e.u64(n as i128);
    // LLVM turns `base + i * size` into `base | i * size` when the base's alignment leaves the
    // low bits free (stack arrays indexed by a 0/1 value), and the verifier refuses
    // bitwise operations on pointers. An opaque copy of the index hides its bits — where LLVM
    // can know them: not in a map value or behind a context pointer, where the copy would only
    // cost a register move per access and stop constant indexes folding after unrolling.
    let hide =
        e.cx.bpf && const_value(e.m(), index).is_none() && may_have_known_alignment(e.m(), base, 8);
    // The copy is tested when the index is not masked below the length: tested as it is, the
    // abort would tell LLVM `i < N` on every later path, and it would drop the user's own later
    // `i & 3` the verifier needs (`marks[i & 3]` after `marks[i] = 1` read the stack at an
    // offset it could not bound). A masked index keeps its raw test, which LLVM folds away.
    let known = e.cx.known_indexes.get(&op).copied();
    let i = match known {
        Some(KnownIndex::Masked) => {
            // LLVM knows the bound from the same tests and drops a mask of the index itself.
            // The verifier knows it too where it holds the index exactly; elsewhere, on kernels
            // that learn nothing from comparing two ranges (6.1), only a mask of an opaque copy
            // shows it.
            let mask = e.u64(n as i128 - 1);
            let i = if exact_in_verifier(e.m(), index, 4) {
                i
            } else {
                e.b.bpf_opaque(i)
            };
            e.b.core_and(i, mask)
        }
        _ => i,
    };
    let masked = known == Some(KnownIndex::Masked) || masked_below(e.m(), index, n as u128);
    let i = if hide && !masked {
        e.b.bpf_opaque(i)
    } else {
        i
    };
    // (A constant in range, as an unrolled copy's counter, needs no test.)
    let in_range = const_value(e.m(), index).is_some_and(|c| (0..n as i128).contains(&c));
    if known.is_none() && !in_range {
        let out = e.b.core_cmp(i, limit, CmpPred::Ge);
        e.abort_if(out, OUT_OF_BOUNDS);
    }
    let i = if hide && masked { e.b.bpf_opaque(i) } else { i };
    Ok(vec![e.b.core_elem_addr(base, i, ty)])
}

/// Whether LLVM may know the low bits of pointer `v`: it may point into a stack slot (directly,
/// through a local, or on every arm of a choice — LLVM knows of a merge only the bits all its
/// inputs share). Pointers a helper returns or a context field holds have bits LLVM cannot see;
/// so has a global's address in BPF code, an immediate the back end tracks no bits of.
fn may_have_known_alignment(m: &Module, v: Value, depth: u32) -> bool {
    let mut v = v;
    let op = loop {
        let ValueDef::Result(op, _) = m.value(v).def else {
            return true;
        };
        match crate::passes::provenance::derivation(m, op) {
            Some((base, _)) => v = base,
            None => break op,
        }
    };
    if depth == 0 {
        return true;
    }
    let d = m.op(op);
    match d.opcode {
        Opcode::BpfHelperCall | Opcode::BpfKfuncCall | Opcode::BpfCtxLoad | Opcode::KsCtxLoad => {
            false
        }
        // A global's address is a 64-bit immediate whose bits the BPF back end does not track.
        Opcode::KsGlobalAddr | Opcode::KsConfigAddr => false,
        // A pointer read from memory: known only if that memory is a local LLVM promotes.
        Opcode::CoreLoad => {
            let from = crate::passes::provenance::object_base(m, d.operands[0]);
            matches!(m.value(from).def, ValueDef::Result(o, _) if m.op(o).opcode == Opcode::CoreLocal)
        }
        Opcode::KsIf | Opcode::KsSwitch => {
            let index = d.results.iter().position(|&r| r == v).unwrap_or(0);
            let yields = d
                .regions
                .iter()
                .flat_map(|&r| &m.region(r).blocks)
                .filter_map(|&b| {
                    let &t = m.block(b).ops.last()?;
                    let t = m.op(t);
                    (t.opcode == Opcode::KsYield).then(|| t.operands.get(index).copied())?
                });
            let mut yields = yields;
            yields.all(|y| may_have_known_alignment(m, y, depth - 1))
        }
        _ => true,
    }
}

/// Whether `v` is an `and` with a constant below `n` (through casts): its test always passes.
fn masked_below(m: &Module, v: Value, n: u128) -> bool {
    let ValueDef::Result(op, _) = m.value(v).def else {
        return false;
    };
    let d = m.op(op);
    match d.opcode {
        Opcode::CoreCast => masked_below(m, d.operands[0], n),
        Opcode::CoreAnd => d.operands.iter().any(|&o| {
            m.const_int(o)
                .and_then(|c| u128::try_from(c).ok())
                .is_some_and(|c| c < n)
        }),
        _ => false,
    }
}
