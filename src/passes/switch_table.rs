//! `switch-to-table`: a large `ks.switch` whose case arms run the same ops, differing only in
//! integer constants, becomes one copy of those ops that reads each differing constant from a
//! table indexed by the switched value, guarded by a test that the value is one of the cases.
//!
//! `match (port) { 22: 1, 80: 2, … }` with thousands of arms is, in LLVM, a phi with thousands
//! of empty predecessor blocks, and SimplifyCFG's handling of those is quadratic (20k arms took
//! ~30 s, most of a build). A lookup table is what the optimiser would end with anyway; building
//! it here keeps compile time linear in the arms. Small switches are left to LLVM, which
//! chooses between branches, bit tests and tables by target.

use super::PassResult;
use crate::ir::layout;
use crate::ir::views::KsFunc;
use crate::ir::{Attr, BlockId, Builder, Loc, Module, OpId, Opcode, Type, Value};
use crate::vocab::{CmpPred, Target};
use std::collections::{HashMap, HashSet};

/// Switches with fewer cases stay switches: LLVM handles them in near-linear time.
pub const MIN_CASES: usize = 256;
/// A table spans the cases' whole range; a range wider than this many entries per case is too
/// sparse to be worth one.
const MAX_ENTRIES_PER_CASE: i128 = 4;
/// A dense table's most entries; a wider range is searched (userspace) or stays a switch.
const MAX_ENTRIES: i128 = 1 << 20;
/// Kernel code's tables share the object's .rodata map, whose value the kernel allocates in one
/// piece (at most a few MiB); a switch needing more bytes of tables stays a switch.
const MAX_KERNEL_TABLE_BYTES: u64 = 1 << 19;

pub fn run(m: &mut Module) -> PassResult {
    let funcs: Vec<OpId> = m.funcs().collect();
    for f in funcs {
        let in_userspace = KsFunc(f).target(m) == Target::Host;
        let switches = m.collect_nested(f, |d| {
            d.opcode == Opcode::KsSwitch && d.regions.len() > MIN_CASES
        });
        for sw in switches {
            if let Some(plan) = plan(m, f, sw, in_userspace) {
                rewrite(m, f, sw, plan);
            }
        }
    }
    Ok(())
}

/// How the switched value finds its table entry.
enum Index {
    /// `value - min` for cases spanning `span` values; `holes` when some of them are no case.
    Dense { span: usize, holes: bool },
    /// The rank of `value - min` among the sorted case offsets, found by binary search (in
    /// userspace only: the verifier would walk every path of a search in kernel code).
    Sparse { offsets: Vec<u64> },
}

/// What a rewritable switch becomes.
struct Plan {
    /// The smallest case.
    min: i128,
    index: Index,
    /// Table slot of each case arm, in arm order; `None` for a case an earlier one shadows.
    slots: Vec<Option<usize>>,
    /// Positions (in the first arm's block) of the constants that differ between arms.
    varying: Vec<usize>,
}

impl Plan {
    fn entries(&self) -> usize {
        match &self.index {
            Index::Dense { span, .. } => *span,
            Index::Sparse { offsets } => offsets.len(),
        }
    }
}

fn plan(m: &Module, func: OpId, sw: OpId, in_userspace: bool) -> Option<Plan> {
    let d = m.op(sw);
    if !m.value_type(d.operands[0]).is_int() {
        return None;
    }
    let Some(Attr::List(cases)) = &d.attrs[0] else {
        return None;
    };
    let cases: Vec<i128> = cases
        .iter()
        .map(|c| match c {
            Attr::Int(k) => Some(*k),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let arms: Vec<BlockId> = d.regions[..cases.len()]
        .iter()
        .map(|&r| m.sole_block(r))
        .collect::<Option<_>>()?;
    let varying = varying_constants(m, &arms)?;
    if !in_userspace && !only_data(m, func, sw, m.block(arms[0]).ops.as_slice(), &varying) {
        return None;
    }
    let (&min, &max) = (cases.iter().min()?, cases.iter().max()?);
    let offset = |k: i128| (k - min) as u64;
    let mut first = HashSet::new();
    let firsts: Vec<bool> = cases.iter().map(|&k| first.insert(k)).collect();
    let span = max - min + 1;
    let dense = span <= MAX_ENTRIES && span <= MAX_ENTRIES_PER_CASE * cases.len() as i128;
    let (index, slots) = if dense {
        let slots = cases
            .iter()
            .zip(&firsts)
            .map(|(&k, &f)| f.then_some(offset(k) as usize))
            .collect();
        let holes = (first.len() as i128) < span;
        let span = span as usize;
        (Index::Dense { span, holes }, slots)
    } else if in_userspace {
        let mut offsets: Vec<u64> = first.iter().map(|&k| offset(k)).collect();
        offsets.sort_unstable();
        let slots = cases
            .iter()
            .zip(&firsts)
            .map(|(&k, &f)| f.then(|| offsets.binary_search(&offset(k)).unwrap()))
            .collect();
        (Index::Sparse { offsets }, slots)
    } else {
        return None;
    };
    if !in_userspace {
        let entries = match &index {
            Index::Dense { span, .. } => *span as u64,
            Index::Sparse { offsets } => offsets.len() as u64,
        };
        let first = &m.block(arms[0]).ops;
        let entry_bytes: u64 = 1 + varying
            .iter()
            .map(|&i| layout::size_of(m, m.value_type(m.op(first[i]).results[0])).unwrap_or(8))
            .sum::<u64>();
        if entries * entry_bytes > MAX_KERNEL_TABLE_BYTES {
            return None;
        }
    }
    Some(Plan {
        min,
        index,
        slots,
        varying,
    })
}

/// When every arm runs the same region-free ops as the first, wired the same way and differing
/// only in the values of integer constants: the positions of those constants.
fn varying_constants(m: &Module, arms: &[BlockId]) -> Option<Vec<usize>> {
    let first = &m.block(arms[0]).ops;
    let defined_in_first = positions(m, first);
    let mut varying = vec![false; first.len()];
    for &arm in &arms[1..] {
        let ops = &m.block(arm).ops;
        if ops.len() != first.len() {
            return None;
        }
        let defined_here = positions(m, ops);
        for (i, (&a, &b)) in first.iter().zip(ops).enumerate() {
            let (x, y) = (m.op(a), m.op(b));
            let same_results = x.results.len() == y.results.len()
                && x.results
                    .iter()
                    .zip(&y.results)
                    .all(|(&r, &s)| m.value_type(r) == m.value_type(s));
            let same_operands = x.operands.len() == y.operands.len()
                && x.operands.iter().zip(&y.operands).all(|(p, q)| {
                    match (defined_in_first.get(p), defined_here.get(q)) {
                        (Some(i), Some(j)) => i == j,
                        (None, None) => p == q,
                        _ => false,
                    }
                });
            if x.opcode != y.opcode
                || !x.regions.is_empty()
                || !y.regions.is_empty()
                || !x.successors.is_empty()
                || !same_results
                || !same_operands
            {
                return None;
            }
            if x.attrs != y.attrs {
                let int_const =
                    x.opcode == Opcode::CoreConst && m.value_type(x.results[0]).is_int();
                if !int_const {
                    return None;
                }
                varying[i] = true;
            }
        }
    }
    Some((0..first.len()).filter(|&i| varying[i]).collect())
}

/// In kernel code a constant read from a table is a scalar the verifier knows no bounds of
/// (with the switch, each path had its own constant). That is fine for data — arithmetic and
/// comparisons on it, values stored to memory or returned — but not where the verifier needs a
/// known value (a helper's size argument, a pointer offset, a map or context access). Follows
/// the table's values through the whole function, through locals they are stored in (flow-
/// insensitively) and out of the regions that yield them.
fn only_data(m: &Module, func: OpId, sw: OpId, arm: &[OpId], varying: &[usize]) -> bool {
    let mut from_table: HashSet<Value> = varying.iter().map(|&i| m.op(arm[i]).results[0]).collect();
    from_table.extend(m.op(sw).results.iter().copied());
    let mut slots: HashSet<Value> = HashSet::new();
    let mut ops = Vec::new();
    m.walk_nested(func, &mut |op| ops.push(op));
    loop {
        let before = (from_table.len(), slots.len());
        for &op in &ops {
            let d = m.op(op);
            if d.opcode == Opcode::CoreLoad && slots.contains(&d.operands[0]) {
                from_table.extend(d.results.iter().copied());
            }
            let uses: Vec<usize> = (0..d.operands.len())
                .filter(|&i| from_table.contains(&d.operands[i]))
                .collect();
            if uses.is_empty() {
                continue;
            }
            match d.opcode {
                Opcode::CoreAdd
                | Opcode::CoreSub
                | Opcode::CoreMul
                | Opcode::CoreDiv
                | Opcode::CoreRem
                | Opcode::CoreAnd
                | Opcode::CoreOr
                | Opcode::CoreXor
                | Opcode::CoreShl
                | Opcode::CoreShr
                | Opcode::CoreCmp
                | Opcode::CoreSelect
                | Opcode::CoreCast
                    if d.results.iter().all(|&r| !m.value_type(r).is_ptr()) =>
                {
                    from_table.extend(d.results.iter().copied())
                }
                Opcode::CoreStore if uses == [0] => {
                    if m.is_local(d.operands[1]) {
                        slots.insert(d.operands[1]);
                    }
                }
                Opcode::KsYield => {
                    let owner = d.parent.and_then(|b| m.block_owner(b));
                    from_table.extend(
                        owner
                            .into_iter()
                            .flat_map(|o| m.op(o).results.iter().copied()),
                    );
                }
                Opcode::KsReturn | Opcode::KsIf | Opcode::KsSwitch => {}
                _ => return false,
            }
        }
        if (from_table.len(), slots.len()) == before {
            return true;
        }
    }
}

/// Each result of `ops` by (op position, result index).
fn positions(m: &Module, ops: &[OpId]) -> HashMap<Value, (usize, usize)> {
    ops.iter()
        .enumerate()
        .flat_map(|(i, &op)| {
            m.op(op)
                .results
                .iter()
                .enumerate()
                .map(move |(j, &r)| (r, (i, j)))
        })
        .collect()
}

/// `switch x {cases} (arms…, default)` becomes
/// `off = u64(x) - min; if (off names a case) { first arm, constants from tables[index] } else { default }`.
fn rewrite(m: &mut Module, func: OpId, sw: OpId, plan: Plan) {
    let d = m.op(sw).clone();
    let arms: Vec<BlockId> = d.regions[..plan.slots.len()]
        .iter()
        .map(|&r| m.region(r).blocks[0])
        .collect();
    let default = m.region(*d.regions.last().unwrap()).blocks[0];
    let tables: Vec<(OpId, Vec<Attr>)> = plan
        .varying
        .iter()
        .map(|&i| {
            let mut values = vec![Attr::Int(0); plan.entries()];
            for (arm, slot) in arms.iter().zip(&plan.slots) {
                if let Some(slot) = *slot {
                    values[slot] = m.op(m.block(*arm).ops[i]).attrs[0].clone().unwrap();
                }
            }
            (m.block(arms[0]).ops[i], values)
        })
        .collect();
    let result_types: Vec<Type> = d.results.iter().map(|&r| m.value_type(r).clone()).collect();
    let slots = match plan.index {
        Index::Sparse { .. } => Some(search_slots(m, func, d.loc)),
        Index::Dense { .. } => None,
    };
    let mut b = m.builder_before(sw);
    let x = widen_to_u64(&mut b, d.operands[0]);
    let min = b.core_const(plan.min as u64 as i128, Type::u64());
    let offset = b.core_sub(x, min);
    let (index, is_case) = match &plan.index {
        Index::Dense { span, holes: false } => {
            let span = b.core_const(*span as i128, Type::u64());
            (offset, b.core_cmp(offset, span, CmpPred::Lt))
        }
        Index::Dense { span, holes: true } => {
            let mut hits = vec![Attr::Int(0); *span];
            for slot in plan.slots.iter().flatten() {
                hits[*slot] = Attr::Int(1);
            }
            let hit = b.core_table(offset, hits, Type::u8());
            let zero = b.core_const(0, Type::u8());
            (offset, b.core_cmp(hit, zero, CmpPred::Ne))
        }
        Index::Sparse { offsets } => {
            let (lo, hi) = slots.expect("search slots for a sparse switch");
            binary_search(&mut b, offset, offsets, lo, hi)
        }
    };
    let branch = b.ks_if(is_case, None, &result_types);
    let (then, otherwise) = (b.entry(branch, 0), b.entry(branch, 1));
    for (konst, values) in tables {
        let op = m.op_mut(konst);
        op.opcode = Opcode::CoreTable;
        op.operands = vec![index];
        op.attrs = vec![Some(Attr::List(values))];
    }
    m.move_ops(arms[0], then);
    m.move_ops(default, otherwise);
    let top = m.top_level_of(sw);
    let results = m.op(branch).results.clone();
    for (&from, to) in d.results.iter().zip(results) {
        m.replace_uses_in(top, from, to);
    }
    m.detach_op(sw);
}

/// Two u64 stack slots at the top of the function, for a search's bounds.
fn search_slots(m: &mut Module, func: OpId, loc: Loc) -> (Value, Value) {
    let entry = m.func_entry(func);
    let mut b = Builder::new(m, entry);
    b.at = Some(0);
    b.loc = loc;
    let mut slot = |name: &str| {
        b.core_local(
            Type::u64(),
            Some(name.as_bytes().to_vec()),
            None,
            None,
            Type::ptr(Type::u64()),
        )
    };
    (slot("search.lo"), slot("search.hi"))
}

/// The lower-bound binary search of `key` in the sorted `offsets`:
/// `lo = 0; hi = n; while (lo < hi) { mid = (lo + hi) >> 1; if (offsets[mid] < key) lo = mid + 1 else hi = mid }`.
/// Yields the rank found and whether it holds `key`.
fn binary_search(
    b: &mut Builder<'_>,
    key: Value,
    offsets: &[u64],
    lo: Value,
    hi: Value,
) -> (Value, Value) {
    let keys: Vec<Attr> = offsets.iter().map(|&k| Attr::Int(k as i128)).collect();
    let (zero, one) = (b.core_const(0, Type::u64()), b.core_const(1, Type::u64()));
    let n = b.core_const(offsets.len() as i128, Type::u64());
    b.core_store(zero, lo);
    b.core_store(n, hi);
    let search = b.ks_while();
    let (cond, body) = (b.entry(search, 0), b.entry(search, 1));
    let after = (b.block, b.at);
    b.set_block(cond);
    let (l, h) = (b.core_load(lo, Type::u64()), b.core_load(hi, Type::u64()));
    let more = b.core_cmp(l, h, CmpPred::Lt);
    b.ks_yield(&[more]);
    b.set_block(body);
    let (l, h) = (b.core_load(lo, Type::u64()), b.core_load(hi, Type::u64()));
    let sum = b.core_add(l, h);
    let mid = b.core_shr(sum, one);
    let probe = b.core_table(mid, keys.clone(), Type::u64());
    let below = b.core_cmp(probe, key, CmpPred::Lt);
    let step = b.ks_if(below, None, &[]);
    let (up, down) = (b.entry(step, 0), b.entry(step, 1));
    b.set_block(up);
    let next = b.core_add(mid, one);
    b.core_store(next, lo);
    b.set_block(down);
    b.core_store(mid, hi);
    (b.block, b.at) = after;
    let rank = b.core_load(lo, Type::u64());
    let found = b.core_table(rank, keys, Type::u64());
    let inside = b.core_cmp(rank, n, CmpPred::Lt);
    let equal = b.core_cmp(found, key, CmpPred::Eq);
    (rank, b.core_and(inside, equal))
}

/// `v` as a u64 with its value's bits: sign-extended when signed, so case offsets subtract as
/// they do in the value's own type.
fn widen_to_u64(b: &mut crate::ir::Builder<'_>, v: Value) -> Value {
    let ty = b.module.value_type(v).clone();
    let wide = match ty {
        Type::Int(t) if t.signed() => b.cast_to(v, Type::i64()),
        _ => v,
    };
    b.cast_to(wide, Type::u64())
}
