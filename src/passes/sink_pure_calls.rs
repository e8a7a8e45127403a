//! `sink-pure-calls`: `var ev = event_of(flags)` computed before a map lookup and read only after
//! it is computed after the lookup, as C computes it (`next_state(old, flags)` inside the branch
//! that found the entry).
//!
//! A helper that only computes from its arguments returns one of a few constants on each path
//! through it (an event, a class, a verdict). Computed before a helper call, each of those paths
//! reaches the call with its own constant in a register, and the verifier walks the call and
//! everything after it once per constant: the value is tested afterwards, so it cannot merge the
//! paths. Computed after, the paths have merged before the call (only the argument, one unknown
//! value, is live across it).
//!
//! The call moves when: its callee is pure (only arithmetic, tests, its own locals and calls to
//! pure helpers; no throws); its result goes straight into a local variable that nothing else
//! writes or takes the address of; and every read of that variable is in the same block, after an
//! op that compiles to a call (a map operation, a helper) and follows the store. The call and its
//! store move to just before the first op that reads the variable; when that op is an `if` or a
//! `switch` holding every read, into each of its arms that reads it instead (and so on inward),
//! as C computes the value in each branch. No path runs the helper twice.

use super::PassResult;
use crate::ir::{Attr, BlockId, Module, OpId, Opcode, Traits, Value, ValueDef};
use std::collections::HashMap;

pub fn run(m: &mut Module) -> PassResult {
    let mut pure = HashMap::new();
    for f in super::kernel_funcs(m) {
        let calls = m.collect_nested(f, |d| d.opcode == Opcode::CoreCall);
        for call in calls {
            if !callee(m, call).is_some_and(|g| is_pure(m, g, &mut pure)) {
                continue;
            }
            if let Some((store, reads)) = sinkable(m, call) {
                sink(m, call, store, &reads);
            }
        }
    }
    Ok(())
}

fn callee(m: &Module, call: OpId) -> Option<OpId> {
    match m.attr(call, "callee") {
        Some(Attr::Sym(name)) => m.lookup_symbol(name),
        _ => None,
    }
}

/// Whether `f` computes its result from its arguments alone (memoised in `known`; a function
/// being examined counts as impure, so recursion is not pure).
fn is_pure(m: &Module, f: OpId, known: &mut HashMap<OpId, bool>) -> bool {
    if let Some(&p) = known.get(&f) {
        return p;
    }
    known.insert(f, false);
    let throws = matches!(m.attr(f, "may_throw"), Some(Attr::Bool(true)));
    let is_func = m.op(f).opcode == Opcode::KsFunc;
    let body = m.collect_nested(f, |_| true);
    let pure = is_func
        && !throws
        && !m.op(f).regions.is_empty()
        && body.iter().all(|&o| {
            let d = m.op(o);
            match d.opcode {
                Opcode::CoreLocal => true,
                op if is_branch(op) => true,
                Opcode::CoreLoad | Opcode::CoreStore | Opcode::CoreFieldAddr => {
                    let pointer = if d.opcode == Opcode::CoreStore {
                        d.operands[1]
                    } else {
                        d.operands[0]
                    };
                    is_own_local(m, pointer)
                }
                Opcode::CoreCall => callee(m, o).is_some_and(|g| is_pure(m, g, known)),
                op => op.has(Traits::PURE) && d.regions.is_empty(),
            }
        });
    known.insert(f, pure);
    pure
}

/// A local variable of the function, or a field of one.
fn is_own_local(m: &Module, mut p: Value) -> bool {
    loop {
        let ValueDef::Result(o, _) = m.value(p).def else {
            return false;
        };
        match m.op(o).opcode {
            Opcode::CoreLocal => return true,
            Opcode::CoreFieldAddr => p = m.op(o).operands[0],
            _ => return false,
        }
    }
}

/// The store of the call's result and the loads of the local it fills, when the call can move
/// past a helper call to them.
fn sinkable(m: &Module, call: OpId) -> Option<(OpId, Vec<OpId>)> {
    let result = *m.op(call).results.first()?;
    // Numbers only: a pointer held across the call could be one a packet-moving helper
    // invalidates.
    let numbers = m.op(call).operands.iter().chain([&result]).all(|&v| {
        let t = m.value_type(v);
        t.is_int() || *t == crate::ir::Type::Bool
    });
    if !numbers {
        return None;
    }
    let f = m.top_level_of(call);
    let users = m.collect_nested(f, |d| d.operands.contains(&result));
    let [store] = users[..] else { return None };
    let s = m.op(store);
    if s.opcode != Opcode::CoreStore || s.operands[0] != result {
        return None;
    }
    let local = s.operands[1];
    let ValueDef::Result(decl, _) = m.value(local).def else {
        return None;
    };
    if m.op(decl).opcode != Opcode::CoreLocal {
        return None;
    }
    let (block, call_at) = m.position(call)?;
    let (store_block, store_at) = m.position(store)?;
    if store_block != block || store_at < call_at {
        return None;
    }
    // Every other use of the local is a load, inside an op of the call's block after the store.
    let ops = m.block(block).ops.clone();
    let mut first_reader = None;
    let mut reads = Vec::new();
    for o in m.collect_nested(f, |d| d.operands.contains(&local)) {
        if o == store {
            continue;
        }
        if m.op(o).opcode != Opcode::CoreLoad {
            return None;
        }
        let at = top_in_block(m, o, &ops)?;
        if at <= store_at {
            return None;
        }
        first_reader = Some(first_reader.map_or(at, |f: usize| f.min(at)));
        reads.push(o);
    }
    let first_reader = first_reader?;
    // A helper call between the store and the first read: otherwise nothing is gained.
    let calls_between = ops[store_at + 1..first_reader].iter().any(|&o| {
        !is_plain(m.op(o).opcode)
            || !m
                .collect_nested(o, |d| !is_plain(d.opcode) && !is_branch(d.opcode))
                .is_empty()
    });
    calls_between.then_some((store, reads))
}

/// Ops that compile to no call: arithmetic and local variables.
fn is_plain(op: Opcode) -> bool {
    op.has(Traits::PURE)
        || matches!(
            op,
            Opcode::CoreLocal | Opcode::CoreLoad | Opcode::CoreStore | Opcode::CoreFieldAddr
        )
}

fn is_branch(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::KsIf | Opcode::KsSwitch | Opcode::KsYield | Opcode::KsReturn
    )
}

/// Whether `o` is in `block` or nested in one of its ops.
fn in_block(m: &Module, o: OpId, block: BlockId) -> bool {
    top_in_block(m, o, &m.block(block).ops).is_some()
}

/// Whether `block` ends by leaving the function.
fn returns(m: &Module, block: BlockId) -> bool {
    m.block(block)
        .ops
        .last()
        .is_some_and(|&o| matches!(m.op(o).opcode, Opcode::KsReturn | Opcode::KsThrow))
}

/// The position in `ops` of the op that is or encloses `o`.
fn top_in_block(m: &Module, o: OpId, ops: &[OpId]) -> Option<usize> {
    let mut cur = o;
    loop {
        if let Some(at) = ops.iter().position(|&x| x == cur) {
            return Some(at);
        }
        cur = m.parent_op(cur)?;
    }
}

/// The call and its store move to the reads: see `place`.
fn sink(m: &mut Module, call: OpId, store: OpId, reads: &[OpId]) {
    let (block, _) = m.position(call).expect("placed");
    m.detach_ops(&[call, store]);
    let mut placed = false;
    place(m, (call, store), block, reads, &mut placed);
}

/// Places the call and its store (the originals first, copies after) before the first op of
/// `block` that reads the local; or, when that op is a branch, in each of its arms that reads
/// it, provided the reads after the branch run only on paths through arms that did not (the
/// arms that read end in a `return`), and before the next read after it.
fn place(m: &mut Module, pair: (OpId, OpId), block: BlockId, reads: &[OpId], placed: &mut bool) {
    let ops = m.block(block).ops.clone();
    let tops: Vec<(OpId, usize)> = reads
        .iter()
        .filter_map(|&r| Some((r, top_in_block(m, r, &ops)?)))
        .collect();
    let Some(first) = tops.iter().map(|&(_, t)| t).min() else {
        return;
    };
    let branch = ops[first];
    let (inside, after): (Vec<_>, Vec<_>) = tops.iter().partition(|&&(_, t)| t == first);
    let inside: Vec<OpId> = inside.into_iter().map(|&(r, _)| r).collect();
    let after: Vec<OpId> = after.into_iter().map(|&(r, _)| r).collect();
    let arms: Vec<BlockId> = m
        .op(branch)
        .regions
        .iter()
        .filter_map(|&r| m.sole_block(r))
        .collect();
    let reading_arms: Vec<BlockId> = arms
        .iter()
        .copied()
        .filter(|&arm| inside.iter().any(|&r| in_block(m, r, arm)))
        .collect();
    let descend = matches!(m.op(branch).opcode, Opcode::KsIf | Opcode::KsSwitch)
        && arms.len() == m.op(branch).regions.len()
        && (after.is_empty() || reading_arms.iter().all(|&arm| returns(m, arm)));
    if descend {
        for arm in reading_arms {
            place(m, pair, arm, &inside, placed);
        }
        place(m, pair, block, &after, placed);
        return;
    }
    let (call, store) = if std::mem::replace(placed, true) {
        let mut renamed = HashMap::new();
        let call = m.clone_op(pair.0, &mut renamed);
        (call, m.clone_op(pair.1, &mut renamed))
    } else {
        pair
    };
    m.place_op(store, block, Some(first));
    m.place_op(call, block, Some(first));
}
