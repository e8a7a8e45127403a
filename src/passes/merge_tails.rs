//! `merge-tails`: blocks of a kernel function that do exactly the same and end alike — each
//! `return malformed()` of a parser, each `errors[Truncated] += 1; return XDP_DROP` — become one
//! block every branch to them goes to, as C writes one `goto malformed` target. LLVM keeps such
//! tails apart once their calls are inlined (each copy a map lookup and an add), so the object
//! held one copy per site. Only blocks that do something (a call, a write) and take no
//! arguments, never the entry block.
//! So do exit paths of several blocks that do exactly the same: each `return fallback` of a
//! pinned global is a lookup of the pinned globals, its null test and stand-in, and a return.
//! Requires: `flatten` (a CFG); runs last among the kernel passes.

use super::region_match::{same_block, same_tail};
use super::PassResult;
use crate::ir::cfg::successors_of;
use crate::ir::{BlockId, Module, Opcode, RegionId, Traits};
use std::collections::{HashMap, HashSet};

/// The most blocks an exit path merged as one may have.
const EXIT_PATH_BLOCKS: usize = 8;

pub fn run(m: &mut Module) -> PassResult {
    for f in super::kernel_funcs(m) {
        let Some(&body) = m.op(f).regions.first() else {
            continue;
        };
        merge_exit_paths(m, body);
        let blocks = m.region(body).blocks.clone();
        let Some((&entry, rest)) = blocks.split_first() else {
            continue;
        };
        // Candidates grouped by length and terminator first: most blocks compare with few.
        let mut groups: HashMap<(usize, Option<Opcode>), Vec<BlockId>> = HashMap::new();
        let mut merged: HashMap<BlockId, BlockId> = HashMap::new();
        for &b in rest {
            let data = m.block(b);
            // (A block that only picks a value and branches, LLVM lays out best itself: it
            // copies such tails into their predecessors.)
            if !data.args.is_empty() || !acts(m, b) {
                continue;
            }
            let key = (data.ops.len(), data.ops.last().map(|&o| m.op(o).opcode));
            let kept = groups.entry(key).or_default();
            match kept.iter().find(|&&k| same_block(m, k, b)) {
                Some(&k) => {
                    merged.insert(b, k);
                }
                None => kept.push(b),
            }
        }
        if merged.is_empty() {
            continue;
        }
        for &b in std::iter::once(&entry).chain(rest) {
            let Some(&last) = m.block(b).ops.last() else {
                continue;
            };
            for s in &mut m.op_mut(last).successors {
                if let Some(&k) = merged.get(s) {
                    *s = k;
                }
            }
        }
        for b in merged.keys() {
            for o in m.block(*b).ops.clone() {
                m.detach_op(o);
            }
        }
        m.region_mut(body)
            .blocks
            .retain(|b| !merged.contains_key(b));
    }
    Ok(())
}

/// The block calls or writes memory.
fn acts(m: &Module, b: BlockId) -> bool {
    m.block(b).ops.iter().any(|&o| {
        let op = m.op(o).opcode;
        op == Opcode::CoreCall || op.has(Traits::WRITES)
    })
}

/// Merges the exit paths of `body` (see [`exit_path`]) that do exactly the same: branches to
/// the later one go to the first.
fn merge_exit_paths(m: &mut Module, body: RegionId) {
    let blocks = m.region(body).blocks.clone();
    let mut predecessors: HashMap<BlockId, Vec<BlockId>> = HashMap::new();
    for &b in &blocks {
        for s in successors_of(m, b) {
            predecessors.entry(s).or_default().push(b);
        }
    }
    let paths: Vec<(BlockId, Vec<BlockId>)> = (blocks.iter().skip(1))
        .filter(|&&b| m.block(b).args.is_empty())
        .filter_map(|&b| Some((b, exit_path(m, b, &predecessors)?)))
        .filter(|(_, path)| path.len() > 1 && path.iter().any(|&b| acts(m, b)))
        .collect();
    let mut gone: HashSet<BlockId> = HashSet::new();
    let mut merged: HashMap<BlockId, BlockId> = HashMap::new();
    for (i, (head, path)) in paths.iter().enumerate() {
        if gone.contains(head) {
            continue;
        }
        for (other, other_path) in &paths[i + 1..] {
            let apart = !other_path
                .iter()
                .any(|b| path.contains(b) || gone.contains(b));
            if apart && other_path.len() == path.len() && same_tail(m, *head, *other).is_some() {
                merged.insert(*other, *head);
                gone.extend(other_path.iter().copied());
            }
        }
    }
    if merged.is_empty() {
        return;
    }
    for &b in blocks.iter().filter(|b| !gone.contains(b)) {
        let Some(&last) = m.block(b).ops.last() else {
            continue;
        };
        for s in &mut m.op_mut(last).successors {
            if let Some(&k) = merged.get(s) {
                *s = k;
            }
        }
    }
    for &b in &gone {
        for o in m.block(b).ops.clone() {
            m.detach_op(o);
        }
    }
    m.region_mut(body).blocks.retain(|b| !gone.contains(b));
}

/// The blocks reachable from `head` when no other block reaches them (the path ends the
/// function: every branch into it goes to `head`), at most [`EXIT_PATH_BLOCKS`] of them.
fn exit_path(
    m: &Module,
    head: BlockId,
    predecessors: &HashMap<BlockId, Vec<BlockId>>,
) -> Option<Vec<BlockId>> {
    let mut path = vec![head];
    let mut next = 0;
    while let Some(&b) = path.get(next) {
        next += 1;
        for s in successors_of(m, b) {
            if s == head {
                return None;
            }
            if !path.contains(&s) {
                path.push(s);
                if path.len() > EXIT_PATH_BLOCKS {
                    return None;
                }
            }
        }
    }
    let closed = path[1..]
        .iter()
        .all(|b| (predecessors.get(b).into_iter().flatten()).all(|p| path.contains(p)));
    closed.then_some(path)
}
