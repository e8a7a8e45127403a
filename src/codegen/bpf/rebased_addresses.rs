//! A packet address whose offset adds to an earlier address's offset is formed from that address.
//!
//! `off = off + (ext->hdrlen + 1) * 8` in an unrolled walk keeps `off` as a sum of the lengths
//! read so far, and each header's address is `data + off` formed again from the packet's start:
//! LLVM reassociates the sum (`h0 + h1 + 70`) and adds it to `data` anew, three or four
//! instructions where C's `cur += (ext->hdrlen + 1) * 8` takes two. Here an address
//! `base + (a + b + … + k)` that an earlier address `base + (a + … + j)` dominates is formed from
//! that address by adding only what is new (`prev + b + (k - j)`), as a cursor would be.
//!
//! Only packet addresses, and only where every term added is a small bounded scalar (a masked
//! value, a byte or a half-word, possibly scaled): the verifier bounds each step by itself, so
//! a term it could bound only through a test of the whole sum would leave the new pointer
//! unbounded. Runs after `pointer_steps` (loop cursors) and `packet_phis`.

use super::llvm_ir::{
    byte_gep, dominated_by, erase_dead, int_operand, is_packet, replace_all_uses, upper_bound,
};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    AnyValue, AsValueRef, FunctionValue, InstructionOpcode, InstructionValue, IntValue,
    PointerValue,
};
use std::collections::{HashMap, HashSet};

/// The largest term an address may add: what a header length scaled to bytes reaches.
const MAX_TERM: u64 = 0xffff;

pub fn rebase_addresses(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        rebase_in(module, &builder, f);
    }
}

/// A byte address as the pointer it grows from, the variable terms added to it and a constant.
struct Address<'ctx> {
    gep: InstructionValue<'ctx>,
    root: PointerValue<'ctx>,
    terms: Vec<IntValue<'ctx>>,
    constant: i64,
}

fn rebase_in<'ctx>(module: &Module<'ctx>, builder: &Builder<'ctx>, f: FunctionValue<'ctx>) {
    let addresses: Vec<Address> = f
        .get_basic_blocks()
        .into_iter()
        .flat_map(super::llvm_ir::instructions)
        .filter_map(address_of)
        .collect();
    if addresses.len() < 2 {
        return;
    }
    let mut dominated: HashMap<BasicBlock, HashSet<BasicBlock>> = HashMap::new();
    let mut dominates = |d: InstructionValue<'ctx>, g: InstructionValue<'ctx>| {
        let (Some(db), Some(gb)) = (d.get_parent(), g.get_parent()) else {
            return false;
        };
        if db == gb {
            return comes_before(d, g);
        }
        dominated
            .entry(db)
            .or_insert_with(|| dominated_by(f, db))
            .contains(&gb)
    };
    // Each address rewritten, with the pointer that now stands for it.
    let mut rewritten: HashMap<InstructionValue, PointerValue> = HashMap::new();
    for g in &addresses {
        if !sums_terms(g.gep) {
            continue;
        }
        let mut best: Option<&Address> = None;
        for d in &addresses {
            let better = best.is_none_or(|b| d.terms.len() > b.terms.len());
            if d.gep != g.gep
                && d.root == g.root
                && better
                && is_sub_multiset(&d.terms, &g.terms)
                && dominates(d.gep, g.gep)
            {
                best = Some(d);
            }
        }
        let Some(d) = best else { continue };
        let from = match rewritten.get(&d.gep) {
            Some(&p) => p,
            None => d.gep.as_any_value_enum().into_pointer_value(),
        };
        let p = rebase(module, builder, g, d, from);
        rewritten.insert(g.gep, p);
    }
    // Erased only now: until the last rewrite, the addresses list names these instructions.
    // Each has no users left, so erasing one never reaches another.
    for g in rewritten.into_keys() {
        erase_dead(g);
    }
}

/// `gep i8, p, x` on a packet pointer with a variable offset, decomposed down to the pointer
/// the chain of byte steps starts from, when every variable term is small.
fn address_of(i: InstructionValue<'_>) -> Option<Address<'_>> {
    let (mut p, step) = byte_gep(i)?;
    step.get_zero_extended_constant().is_none().then_some(())?;
    let mut terms = Vec::new();
    let mut constant = 0i64;
    add_terms(step, &mut terms, &mut constant)?;
    while let Some((base, s)) = p.as_instruction().and_then(byte_gep) {
        add_terms(s, &mut terms, &mut constant)?;
        p = base;
    }
    (is_packet(p) && !terms.is_empty()).then_some(Address {
        gep: i,
        root: p,
        terms,
        constant,
    })
}

/// Adds `x`'s terms through `add`s: constants to `constant`, the rest to `terms`. `None` when a
/// variable term is not a small bounded scalar.
fn add_terms<'ctx>(
    x: IntValue<'ctx>,
    terms: &mut Vec<IntValue<'ctx>>,
    constant: &mut i64,
) -> Option<()> {
    if let Some(c) = x.get_sign_extended_constant() {
        *constant = constant.checked_add(c)?;
        return Some(());
    }
    match x.as_instruction() {
        Some(i) if i.get_opcode() == InstructionOpcode::Add => {
            for n in 0..2 {
                add_terms(int_operand(i, n)?, terms, constant)?;
            }
            Some(())
        }
        _ => {
            (upper_bound(x)? <= MAX_TERM).then_some(())?;
            terms.push(x);
            Some(())
        }
    }
}

/// Whether the gep's own offset is a sum of two or more variable terms: one that adds a single
/// term to its base is already a step.
fn sums_terms(gep: InstructionValue<'_>) -> bool {
    let Some((_, step)) = byte_gep(gep) else {
        return false;
    };
    let (mut terms, mut constant) = (Vec::new(), 0);
    add_terms(step, &mut terms, &mut constant).is_some() && terms.len() >= 2
}

/// Whether every value of `part` occurs in `whole` at least as often.
fn is_sub_multiset(part: &[IntValue<'_>], whole: &[IntValue<'_>]) -> bool {
    let mut left: Vec<_> = whole.iter().map(|v| v.as_value_ref()).collect();
    part.iter().all(|v| {
        let at = left.iter().position(|&w| w == v.as_value_ref());
        at.map(|k| left.swap_remove(k)).is_some()
    })
}

fn comes_before(a: InstructionValue<'_>, b: InstructionValue<'_>) -> bool {
    std::iter::successors(a.get_next_instruction(), |i| i.get_next_instruction()).any(|i| i == b)
}

/// Replaces `g` by `from` (`d`'s address) plus the terms `g` adds beyond `d`'s and the difference
/// of their constants; the new pointer.
fn rebase<'ctx>(
    module: &Module<'ctx>,
    builder: &Builder<'ctx>,
    g: &Address<'ctx>,
    d: &Address<'ctx>,
    from: PointerValue<'ctx>,
) -> PointerValue<'ctx> {
    const POSITIONED: &str = "the builder is positioned before an instruction";
    let byte = module.get_context().i8_type();
    let i64t = module.get_context().i64_type();
    let mut extra: Vec<IntValue> = g.terms.clone();
    for t in &d.terms {
        if let Some(k) = extra.iter().position(|e| e == t) {
            extra.remove(k);
        }
    }
    builder.position_before(&g.gep);
    let mut p = from;
    // SAFETY (each gep): byte offsets from a pointer, reaching the address `g` formed.
    for t in extra {
        p = unsafe { builder.build_gep(byte, p, &[t], "rebased") }.expect(POSITIONED);
    }
    let rest = g.constant - d.constant;
    if rest != 0 {
        let c = i64t.const_int(rest as u64, true);
        p = unsafe { builder.build_gep(byte, p, &[c], "rebased") }.expect(POSITIONED);
    }
    replace_all_uses(g.gep, p);
    p
}
