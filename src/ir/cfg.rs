//! CFG queries over a region's blocks: successors and a source-like reverse post-order.

use super::{BlockId, Module, Opcode, RegionId};
use std::collections::HashSet;

/// The successors of a block: those of its terminator.
pub fn successors_of(m: &Module, b: BlockId) -> Vec<BlockId> {
    m.block(b)
        .ops
        .last()
        .map(|&o| m.op(o).successors.clone())
        .unwrap_or_default()
}

/// The successors in the order source writes them: a switch's cases before its default (which
/// `core.switch` lists first).
fn successors_in_source_order(m: &Module, b: BlockId) -> Vec<BlockId> {
    let mut succs = successors_of(m, b);
    let is_switch = (m.block(b).ops.last()).is_some_and(|&o| m.op(o).opcode == Opcode::CoreSwitch);
    if is_switch && !succs.is_empty() {
        succs.rotate_left(1);
    }
    succs
}

/// The blocks reachable from the region's entry in reverse post-order, a block's first successor
/// (a branch's true arm, a switch's first case) and everything only it reaches placed before its later successors, and
/// every join after the arms that reach it — the order a C compiler lays source out in.
pub fn reverse_postorder(m: &Module, r: RegionId) -> Vec<BlockId> {
    let Some(&entry) = m.region(r).blocks.first() else {
        return Vec::new();
    };
    let mut order = Vec::new();
    let mut seen = HashSet::from([entry]);
    // Successors are visited last-first so that the first one ends up first once reversed.
    let mut stack = vec![(entry, successors_in_source_order(m, entry))];
    while let Some((b, pending)) = stack.last_mut() {
        match pending.pop() {
            Some(s) => {
                if seen.insert(s) {
                    let succs = successors_in_source_order(m, s);
                    stack.push((s, succs));
                }
            }
            None => {
                order.push(*b);
                stack.pop();
            }
        }
    }
    order.reverse();
    order
}
