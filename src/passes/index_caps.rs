//! The last round a loop's own index check lets begin (docs/language.md §14.4).
//!
//! `for (j in 0..n) { if (buf[j] != pattern[j]) { break } }` with `pattern: u8[8]` and `n` a
//! value nothing bounds: every round that goes on to the next indexes `pattern` with its counter
//! first, and an index out of range aborts (§13.4), so no round after the one with `j = 8` can
//! begin. `bound-loops` counts such a loop to that round, as it does one a test keeps short,
//! instead of making it a `bpf_loop` callback the verifier checks again for every state of the
//! code around it (inside an outer loop of 33 rounds that went past the 1M-instruction limit).
//! What runs does not change: the same rounds, then the same abort.

use super::lower_loops::enclosing_loop;
use super::value_bounds::{int_max, is_unsigned, loaded_local, stored_values, widened_from};
use crate::ir::{Module, OpId, Opcode, Type, Value};

/// The largest counter value a round of `ks.for` `lp` can begin with when an index check of its
/// counter ends it: the round that indexes past the array aborts there.
pub(super) fn last_round(m: &Module, lp: OpId) -> Option<i128> {
    let lo = m.const_int(m.op(lp).operands[0])?;
    let body = match m.region(m.op(lp).regions[0]).blocks[..] {
        [b] => b,
        _ => return None,
    };
    let counter = *m.block(body).args.first()?;
    if !is_unsigned(m.value_type(counter)) || lo < 0 {
        return None;
    }
    // The counter's reads: itself, and loads of the one local it alone is stored into.
    let slot = m.block(body).ops.iter().find_map(|&op| {
        let d = m.op(op);
        (d.opcode == Opcode::CoreStore && d.operands[0] == counter && m.is_local(d.operands[1]))
            .then(|| d.operands[1])
    });
    let slot = slot.filter(|&s| stored_values(m, s).is_some_and(|v| v == [counter]));
    let reads_counter = |v: Value| v == counter || (slot.is_some() && loaded_local(m, v) == slot);
    let continues = m.collect_nested(lp, |d| d.opcode == Opcode::KsContinue);
    let continues: Vec<OpId> = continues
        .into_iter()
        .filter(|&c| enclosing_loop(m, c) == Some(lp))
        .collect();
    m.block(body)
        .ops
        .iter()
        .filter(|&&op| m.op(op).opcode == Opcode::KsIndexAddr)
        .filter(|&&op| continues.iter().all(|&c| m.precedes_structurally(op, c)))
        .filter_map(|&op| {
            let length = match m.value_type(m.op(op).operands[0]).pointee() {
                Some(Type::Array(_, n) | Type::Str(n)) => i128::from(*n),
                _ => return None,
            };
            let (read, offset) = counter_offset(m, m.op(op).operands[1])?;
            // (The sum must not wrap before it passes the length.)
            let room = int_max(m.value_type(widened_from(m, m.op(op).operands[1])))?;
            let last = length - offset;
            (reads_counter(read) && last >= lo && u128::try_from(length).ok()? <= room)
                .then_some(last)
        })
        .min()
}

/// `index` as a value plus a constant (`j + 2`, `2 + j`, `j`), through widenings.
fn counter_offset(m: &Module, index: Value) -> Option<(Value, i128)> {
    let index = widened_from(m, index);
    let Some(d) = m.defining_op(index).map(|op| m.op(op)) else {
        return Some((index, 0));
    };
    if d.opcode != Opcode::CoreAdd {
        return Some((index, 0));
    }
    let (a, b) = (d.operands[0], d.operands[1]);
    match (m.const_int(a), m.const_int(b)) {
        (None, Some(c)) if c >= 0 => Some((widened_from(m, a), c)),
        (Some(c), None) if c >= 0 => Some((widened_from(m, b), c)),
        _ => None,
    }
}
