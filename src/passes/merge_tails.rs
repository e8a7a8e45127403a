//! `merge-tails`: blocks of a kernel function that do exactly the same and end alike — each
//! `return malformed()` of a parser, each `errors[Truncated] += 1; return XDP_DROP` — become one
//! block every branch to them goes to, as C writes one `goto malformed` target. LLVM keeps such
//! tails apart once their calls are inlined (each copy a map lookup and an add), so the object
//! held one copy per site. Only blocks that do something (a call, a write) and take no
//! arguments, never the entry block.
//! Requires: `flatten` (a CFG); runs last among the kernel passes.

use super::region_match::same_block;
use super::PassResult;
use crate::ir::{BlockId, Module, Opcode, Traits};
use std::collections::HashMap;

pub fn run(m: &mut Module) -> PassResult {
    for f in super::kernel_funcs(m) {
        let Some(&body) = m.op(f).regions.first() else {
            continue;
        };
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
            let acts = data.ops.iter().any(|&o| {
                let op = m.op(o).opcode;
                op == Opcode::CoreCall || op.has(Traits::WRITES)
            });
            if !data.args.is_empty() || !acts {
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
