//! One lookup where a program looks the same entry up twice with nothing between that could
//! change the answer.
//!
//! `if (m[k] == null) { … return }` followed by `if (m[k] == v)` reads the entry twice, where a C
//! writer keeps the pointer of the first lookup. LLVM does not merge the two calls: the helper
//! is opaque to it beyond `memory(read)`, and it cannot know that nothing but a helper adds or
//! removes entries. Here a lookup is the earlier one when that one dominates it, both look up
//! the same map with the same key ([`SameKey`]), and on every path between them no helper or
//! function that may write memory runs (nor, for a key known by its slot, a write of the slot). Stores to map values, globals
//! and the packet change no entry's presence or address. Another CPU's update between the two
//! is one the program could as well have seen after both (§11.3).

use super::llvm_ir::{
    calls_intrinsic, helper_id, in_cycle, instructions, instructions_between, is_alloca,
    is_bpf_call, pointer_operand, predecessors, reads_only, replace_all_uses, split_edge,
    successors, Dominators,
};
use crate::vocab::helpers::{self, MAP_LOOKUP_ELEM};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::values::{
    AnyValue, AsValueRef, BasicValue, BasicValueEnum, FunctionValue, InstructionOpcode,
    InstructionValue, PointerValue,
};
use std::collections::HashMap;

pub fn share_map_lookups(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        share_in(f);
        // Each reload changes the blocks: the next is planned on the new ones.
        while let Some(reload) = plan_reload(f) {
            if !reload.apply(&builder) {
                break;
            }
        }
    }
}

fn share_in(f: FunctionValue<'_>) {
    let Some(dominators) = Dominators::of(f) else {
        return;
    };
    let preds = predecessors(f);
    let mut kept: Vec<InstructionValue> = Vec::new();
    for &b in dominators.blocks() {
        for lookup in instructions(b)
            .filter(|&i| is_lookup(i))
            .collect::<Vec<_>>()
        {
            let earlier = kept.iter().copied().find(|&first| {
                let Some(key) = same_entry(first, lookup, &preds) else {
                    return false;
                };
                dominators.dominates_instruction(first, lookup)
                    && !instructions_between(first, lookup, &preds)
                        .into_iter()
                        .any(|i| may_change_entry(i, lookup, key))
            });
            match earlier {
                Some(first) => {
                    replace_all_uses(lookup, first);
                    lookup.erase_from_basic_block();
                }
                None => kept.push(lookup),
            }
        }
    }
}

/// A lookup whose entry an earlier lookup found on some of the paths that reach it, and that
/// may have changed on the others: `if (m[k] == null) { m[k] = v }` then `var s = m[k]`. C keeps
/// the first pointer where nothing added the entry and looks up again only after the update.
struct Reload<'ctx> {
    /// The later lookup, first of its block among the instructions that may change an entry.
    lookup: InstructionValue<'ctx>,
    /// The earlier lookup of the same entry.
    first: InstructionValue<'ctx>,
    /// The lookup's predecessors on whose every path from `first` nothing changed the entry.
    clean: Vec<BasicBlock<'ctx>>,
    /// Its other predecessors: each gets its own lookup, on the edge to the lookup's block.
    dirty: Vec<BasicBlock<'ctx>>,
    /// The key's value when it is known by value: stored into the key slot before each reload.
    key_value: Option<BasicValueEnum<'ctx>>,
}

impl<'ctx> Reload<'ctx> {
    /// Whether the lookup was replaced (nothing else stops the planning loop coming back to it).
    fn apply(self, builder: &Builder<'ctx>) -> bool {
        let Some(home) = self.lookup.get_parent() else {
            return false;
        };
        let mut incoming: Vec<(BasicValueEnum<'ctx>, BasicBlock<'ctx>)> = Vec::new();
        for &p in &self.clean {
            incoming.push((call_result(self.first), p));
        }
        for &p in &self.dirty {
            let edge = if successors(p).len() == 1 {
                p
            } else {
                let Some(edge) = split_edge(builder, p, home) else {
                    return false;
                };
                edge
            };
            let Some(term) = edge.get_terminator() else {
                return false;
            };
            builder.position_before(&term);
            if let (Some(value), Some(slot)) = (self.key_value, pointer_operand(self.lookup, 1)) {
                let _ = builder.build_store(slot, value);
            }
            let again = self.lookup.explicit_clone();
            builder.insert_instruction(&again, None);
            incoming.push((call_result(again), edge));
        }
        let Some(start) = home.get_first_instruction() else {
            return false;
        };
        builder.position_before(&start);
        let Ok(phi) = builder.build_phi(call_result(self.lookup).get_type(), "entry") else {
            return false;
        };
        for (v, b) in &incoming {
            phi.add_incoming(&[(v as &dyn BasicValue, *b)]);
        }
        replace_all_uses(self.lookup, phi.as_basic_value());
        self.lookup.erase_from_basic_block();
        true
    }
}

/// The pointer a lookup returns.
fn call_result(lookup: InstructionValue<'_>) -> BasicValueEnum<'_> {
    lookup.as_any_value_enum().into_pointer_value().into()
}

/// The first lookup in `f` that an earlier lookup of the same entry answers on some of its
/// incoming edges (see [`Reload`]).
fn plan_reload(f: FunctionValue<'_>) -> Option<Reload<'_>> {
    let dominators = Dominators::of(f)?;
    let preds = predecessors(f);
    let lookups: Vec<InstructionValue> = dominators
        .blocks()
        .iter()
        .flat_map(|&b| instructions(b).filter(|&i| is_lookup(i)))
        .collect();
    lookups.iter().enumerate().find_map(|(k, &lookup)| {
        lookups[..k]
            .iter()
            .find_map(|&first| reload_of(first, lookup, &dominators, &preds))
    })
}

fn reload_of<'ctx>(
    first: InstructionValue<'ctx>,
    lookup: InstructionValue<'ctx>,
    dominators: &Dominators<'ctx>,
    preds: &HashMap<BasicBlock<'ctx>, Vec<BasicBlock<'ctx>>>,
) -> Option<Reload<'ctx>> {
    let home = lookup.get_parent()?;
    let origin = first.get_parent()?;
    // `first`'s block strictly dominates the lookup's, so it dominates each predecessor; a block
    // on a cycle would see its own lookup's entry come round again.
    if origin == home || !dominators.dominates_instruction(first, lookup) || in_cycle(home) {
        return None;
    }
    let key = same_entry(first, lookup, preds)?;
    if instructions(home)
        .take_while(|&i| i != lookup)
        .any(|i| may_change_entry(i, lookup, key))
    {
        return None;
    }
    // The reload's operands must be there at the end of every predecessor.
    let key_value = match key {
        SameKey::Slot => None,
        SameKey::Value => Some(stored_key(lookup, preds)?),
    };
    let operands = [
        pointer_operand(lookup, 0)?.as_basic_value_enum(),
        pointer_operand(lookup, 1)?.as_basic_value_enum(),
    ];
    if !operands
        .into_iter()
        .chain(key_value)
        .all(|v| available_before(v, home, dominators))
    {
        return None;
    }
    let (clean, dirty): (Vec<_>, Vec<_>) = preds.get(&home)?.iter().partition(|&&p| {
        p.get_terminator().is_some_and(|term| {
            !instructions_between(first, term, preds)
                .into_iter()
                .any(|i| may_change_entry(i, lookup, key))
        })
    });
    (!clean.is_empty() && !dirty.is_empty()).then_some(Reload {
        lookup,
        first,
        clean,
        dirty,
        key_value,
    })
}

/// Whether `v` is defined on every path into `block` before it is entered.
fn available_before<'ctx>(
    v: BasicValueEnum<'ctx>,
    block: BasicBlock<'ctx>,
    dominators: &Dominators<'ctx>,
) -> bool {
    match v.as_instruction_value().and_then(|i| i.get_parent()) {
        None => true,
        Some(defined) => defined != block && dominators.common(&[defined, block]) == Some(defined),
    }
}

fn is_lookup(i: InstructionValue<'_>) -> bool {
    helper_id(i) == Some(MAP_LOOKUP_ELEM.id as u64)
}

/// How two lookups are known to look up one key.
#[derive(Clone, Copy)]
enum SameKey {
    /// They read one stack slot, which holds one key while nothing writes it.
    Slot,
    /// Each reads a slot a store of one value fills just before it (an inlined helper's own
    /// slot): what the slots hold between the two does not matter.
    Value,
}

/// Whether two lookups name one map and one key, and how the key is known to be one.
fn same_entry<'ctx>(
    a: InstructionValue<'ctx>,
    b: InstructionValue<'ctx>,
    preds: &HashMap<BasicBlock<'ctx>, Vec<BasicBlock<'ctx>>>,
) -> Option<SameKey> {
    let operands = |i| Some((pointer_operand(i, 0)?, pointer_operand(i, 1)?));
    let ((map_a, key_a), (map_b, key_b)) = (operands(a)?, operands(b)?);
    if map_a != map_b {
        return None;
    }
    if key_a == key_b && stack_slot(key_a).is_some() {
        return Some(SameKey::Slot);
    }
    let (x, y) = (stored_key(a, preds)?, stored_key(b, preds)?);
    (x == y).then_some(SameKey::Value)
}

/// The value a lookup's key slot holds, when a store fills the whole slot on the straight-line
/// path to the lookup and nothing writes the slot after it.
fn stored_key<'ctx>(
    lookup: InstructionValue<'ctx>,
    preds: &HashMap<BasicBlock<'ctx>, Vec<BasicBlock<'ctx>>>,
) -> Option<BasicValueEnum<'ctx>> {
    // (Far enough for the stores ksc's lowering places before a lookup; it also ends a walk
    // around a cycle of blocks no entry reaches.)
    const STEPS: usize = 64;
    let slot = pointer_operand(lookup, 1).filter(|&p| is_alloca(p))?;
    let alloca = slot.as_instruction()?;
    let mut at = lookup;
    for _ in 0..STEPS {
        let previous = match at.get_previous_instruction() {
            Some(i) => i,
            None => {
                // On into the one block that leads here.
                let [only] = preds.get(&at.get_parent()?)?[..] else {
                    return None;
                };
                only.get_last_instruction()?
            }
        };
        at = previous;
        if at.get_opcode() == InstructionOpcode::Store && pointer_operand(at, 1) == Some(slot) {
            let value = at.get_operand(0)?.value()?;
            return (alloca.get_allocated_type().ok() == Some(value.get_type())).then_some(value);
        }
        if may_change_entry(at, lookup, SameKey::Slot) {
            return None;
        }
    }
    None
}

/// The stack slot `p` points into, through any offsets.
fn stack_slot(p: PointerValue<'_>) -> Option<PointerValue<'_>> {
    underlying(p).filter(|&root| is_alloca(root))
}

/// The object `p` is formed from through offsets and casts, or `None` when it is chosen at run
/// time (a phi, a select) or read from memory.
fn underlying(mut p: PointerValue<'_>) -> Option<PointerValue<'_>> {
    loop {
        let Some(i) = p.as_instruction() else {
            // A global, an argument, a constant expression over a global.
            return Some(p);
        };
        match i.get_opcode() {
            InstructionOpcode::GetElementPtr | InstructionOpcode::BitCast => {
                p = pointer_operand(i, 0)?;
            }
            InstructionOpcode::Alloca | InstructionOpcode::Call | InstructionOpcode::IntToPtr => {
                return Some(p)
            }
            _ => return None,
        }
    }
}

/// Whether `i`, run between two lookups, may change what the second finds: a call that may
/// write memory (a map update or delete among them) or, when the key is known by its slot, a
/// write to the slot.
fn may_change_entry(i: InstructionValue<'_>, lookup: InstructionValue<'_>, key: SameKey) -> bool {
    if is_bpf_call(i) {
        let harmless_helper = helper_id(i)
            .and_then(|id| helpers::by_id(i128::from(id)))
            .is_some_and(|h| !h.writes_memory);
        return !harmless_helper && !reads_only(i);
    }
    let destination = match i.get_opcode() {
        InstructionOpcode::Store => pointer_operand(i, 1),
        InstructionOpcode::AtomicRMW | InstructionOpcode::AtomicCmpXchg => pointer_operand(i, 0),
        InstructionOpcode::Call
            if calls_intrinsic(i, "llvm.memset")
                || calls_intrinsic(i, "llvm.memcpy")
                || calls_intrinsic(i, "llvm.memmove") =>
        {
            pointer_operand(i, 0)
        }
        _ => return false,
    };
    if matches!(key, SameKey::Value) {
        return false;
    }
    let key_slot = pointer_operand(lookup, 1).and_then(stack_slot);
    match (destination.and_then(underlying), key_slot) {
        (Some(written), Some(slot)) => written.as_value_ref() == slot.as_value_ref(),
        _ => true,
    }
}
