//! `skip-filled-zeroing`: a local that a helper fills before anything reads it is not zeroed.
//! Nor is one whose declaration stores it whole before any other use: only the frame's zeroing
//! goes, the declaration's stays.
//!
//! KernelScript zeroes every local (`var buf: u8[8]` holds zeros), so ksc stores zeros where a
//! local is declared and when the frame is set up. When the first thing done with the local is
//! to hand it whole to a helper that writes every byte whatever happens — `bpf_skb_load_bytes`,
//! `bpf_probe_read_kernel`, `bpf_get_current_comm`, … ([`Helper::fills`]) — nobody can see those
//! zeros; C leaves such a buffer uninitialised and so does ksc now. The kernel accepts it: those
//! helpers take uninitialised stack.
//!
//! Applies to a `core.local` when a filling call whose size covers the whole local runs before
//! every read of it (precedes it in structured order), and the only other writes before that
//! call are zero stores of the whole local (its declaration) in the call's block. Those stores
//! are removed and the local is marked `uninit`. Runs on structured kernel functions after
//! `lower-bpf`, where helper calls are `bpf.helper_call`.

use super::PassResult;
use crate::ir::{layout, Attr, Module, OpId, Opcode, Value, ValueDef};
use crate::vocab::helpers;

pub fn run(m: &mut Module) -> PassResult {
    for f in super::kernel_funcs(m) {
        let locals = m.collect_nested(f, |d| d.opcode == Opcode::CoreLocal);
        for local in locals {
            if let Some(zeroing) = dead_zeroing(m, local) {
                let zeros: Vec<Value> = zeroing.iter().map(|&o| m.op(o).operands[0]).collect();
                m.detach_ops(&zeroing);
                for z in zeros {
                    m.erase_if_unused(z);
                }
                m.set_attr(local, "uninit", Some(Attr::Bool(true)));
            } else if stored_whole_before_use(m, local) {
                m.set_attr(local, "uninit", Some(Attr::Bool(true)));
            }
        }
    }
    Ok(())
}

/// The zero stores of `local` that a filling helper call overwrites before any read, when every
/// use of the local runs after such a call.
fn dead_zeroing(m: &Module, local: OpId) -> Option<Vec<OpId>> {
    let flags = |name| matches!(m.attr(local, name), Some(Attr::Bool(true)));
    if flags("uninit") || flags("volatile") {
        return None;
    }
    let slot = m.op(local).results[0];
    let size = layout::size_of(m, m.value_type(slot).pointee()?)?;
    let uses = uses_through_aliases(m, m.top_level_of(local), slot);
    let fills: Vec<OpId> = uses
        .iter()
        .copied()
        .filter(|&u| fills(m, u, slot, size))
        .collect();
    let mut zeroing = Vec::new();
    for &u in &uses {
        if fills.contains(&u) || fills.iter().any(|&f| m.precedes_structurally(f, u)) {
            continue;
        }
        if !declaration_before_fill(m, u, slot, &fills) {
            return None;
        }
        zeroing.push(u);
    }
    (!fills.is_empty()).then_some(zeroing)
}

/// Whether a store of a whole value into `local` (its declaration, usually) runs before every
/// other use of it. Then the zeros the frame would start it with are never seen; LLVM drops
/// them only when its dead-store search reaches the declaration, which in a large function
/// (a parser inlined ahead of the buffer) it gives up on.
fn stored_whole_before_use(m: &Module, local: OpId) -> bool {
    let flags = |name| matches!(m.attr(local, name), Some(Attr::Bool(true)));
    if flags("uninit") || flags("volatile") {
        return false;
    }
    let slot = m.op(local).results[0];
    // A scalar's zeroing is free: LLVM keeps the scalar in a register.
    if m.value_type(slot).pointee().is_none_or(|t| t.is_scalar()) {
        return false;
    }
    let uses = uses_through_aliases(m, m.top_level_of(local), slot);
    let whole_store = |o: OpId| {
        let d = m.op(o);
        d.opcode == Opcode::CoreStore && d.operands.get(1) == Some(&slot)
    };
    uses.iter().copied().filter(|&s| whole_store(s)).any(|s| {
        uses.iter()
            .all(|&u| u == s || m.precedes_structurally(s, u))
    })
}

/// The ops using `v` or an alias of it ([`is_alias`]), within `scope`.
fn uses_through_aliases(m: &Module, scope: OpId, v: Value) -> Vec<OpId> {
    let mut found = Vec::new();
    let mut addresses = vec![v];
    while let Some(a) = addresses.pop() {
        m.walk_nested(scope, &mut |o| {
            if m.op(o).operands.contains(&a) {
                if is_alias(m, o) {
                    addresses.extend(m.op(o).results.iter().copied());
                } else {
                    found.push(o);
                }
            }
        });
    }
    found
}

/// `op` is a call of a helper that writes `size` bytes or more at `slot` (the slot or an alias of
/// it is the buffer argument, not another of its arguments).
fn fills(m: &Module, op: OpId, slot: Value, size: u64) -> bool {
    let d = m.op(op);
    if d.opcode != Opcode::BpfHelperCall {
        return false;
    }
    let Some(Attr::Int(id)) = m.attr(op, "id") else {
        return false;
    };
    let Some((buffer, length)) = helpers::by_id(*id).and_then(|h| h.fills) else {
        return false;
    };
    let covers = d
        .operands
        .get(length)
        .and_then(|&n| m.const_int(n))
        .is_some_and(|n| n >= i128::from(size));
    let at_local = d
        .operands
        .get(buffer)
        .is_some_and(|&b| b == slot || is_alias_of(m, b, slot));
    covers && at_local
}

/// `op` stores zeros into all of `slot` and a filling call follows it in its block with no other
/// use of the slot in between.
fn declaration_before_fill(m: &Module, op: OpId, slot: Value, fills: &[OpId]) -> bool {
    let d = m.op(op);
    let zero_store = d.opcode == Opcode::CoreStore
        && d.operands.get(1) == Some(&slot)
        && d.operands
            .first()
            .and_then(|&v| match m.value(v).def {
                ValueDef::Result(z, _) => Some(m.op(z).opcode == Opcode::CoreZero),
                ValueDef::Arg(..) => None,
            })
            .unwrap_or(false);
    let Some((block, at)) = m.position(op) else {
        return false;
    };
    let next_use = m.block(block).ops[at + 1..]
        .iter()
        .find(|&&o| touches(m, o, slot));
    zero_store && next_use.is_some_and(|o| fills.contains(o))
}

/// `op` or an op nested in it reads or writes memory through `slot` or an alias of it (an alias
/// itself does not).
fn touches(m: &Module, op: OpId, slot: Value) -> bool {
    let accesses = |o: OpId| {
        let d = m.op(o);
        !is_alias(m, o)
            && d.operands
                .iter()
                .any(|&v| v == slot || is_alias_of(m, v, slot))
    };
    let mut used = accesses(op);
    m.walk_nested(op, &mut |o| used |= accesses(o));
    used
}

/// `op` yields the address it is given: a cast, or the address of element 0 (`&buf[0]`, the
/// usual way to hand a buffer to a helper).
fn is_alias(m: &Module, op: OpId) -> bool {
    let d = m.op(op);
    match d.opcode {
        Opcode::CoreCast => true,
        Opcode::CoreElemAddr => d.operands.get(1).and_then(|&i| m.const_int(i)) == Some(0),
        _ => false,
    }
}

fn is_alias_of(m: &Module, v: Value, slot: Value) -> bool {
    match m.value(v).def {
        ValueDef::Result(c, _) if is_alias(m, c) => {
            let from = m.op(c).operands[0];
            from == slot || is_alias_of(m, from, slot)
        }
        _ => false,
    }
}
