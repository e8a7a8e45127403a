//! Equality tests of adjacent bytes against constants compare whole words.
//!
//! `req[1] == 'E' && req[2] == 'T' && req[3] == ' '` in the `'G'` arm of `match (req[0])` is
//! three byte loads and three jumps, and `ip->ttl == 64 && ip->protocol == 6` two of each, where C
//! compares `*(u32 *)req == 'GET '`-like words. No pass of LLVM's BPF pipeline merges such
//! tests: the bytes are only 1-aligned to it, and a packet's bytes may be read unaligned only
//! because the kernel says so. After the pipeline, a conjunction of `(load & mask) == constant`
//! tests — one value (`&&` of `==`, or `||` of `!=`), or a branch on one followed by blocks that
//! only test more and fail to the same place — is tested as the fewest words that cover its
//! bytes, each masked to the bits tested, where that costs fewer instructions:
//!
//! - stack words are aligned and lie inside their object (every byte of a KernelScript local is
//!   written before it is read, so the bytes a mask drops are initialised);
//! - packet words cover only bytes some test (or a dominating branch) read, so the verifier has
//!   proved them all before the first test, which is where the word is read;
//! - bytes that the branches leading here proved equal to constants (the arm of a `match` on the
//!   first byte), with nothing written since, fill a word for free.

mod pairs;

use super::llvm_ir::{
    constant_base, erase_dead, instructions, int_operand, is_alloca, is_packet, may_write_memory,
    phis_of, pointer_operand, predecessors, replace_all_uses, still_in, stores_elsewhere,
    successors, users_of_result,
};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::targets::{ByteOrdering, TargetData};
use inkwell::values::{
    AsValueRef, BasicValue, BasicValueEnum, InstructionOpcode, InstructionValue, IntValue,
    PointerValue,
};
use inkwell::IntPredicate;
use std::collections::{BTreeMap, HashMap};

type Predecessors<'ctx> = HashMap<BasicBlock<'ctx>, Vec<BasicBlock<'ctx>>>;

/// How far a chain of testing blocks, or the branches proving bytes above it, are followed.
const MOST_BLOCKS: usize = 32;

pub fn compare_words(module: &Module) {
    let layout = TargetData::create(module.get_data_layout().as_str().to_str().unwrap_or(""));
    if layout.get_byte_ordering() != ByteOrdering::LittleEndian {
        return;
    }
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        let preds = predecessors(f);
        let blocks = f.get_basic_blocks();
        for &block in &blocks {
            if let Some(chain) = branch_chain(block, &preds) {
                rewrite(&builder, &layout, &preds, chain);
            }
        }
        for &block in &blocks {
            for root in instructions(block)
                .filter(|&i| is_value_root(i))
                .collect::<Vec<_>>()
            {
                if !still_in(block, root) {
                    continue;
                }
                if let Some(head) = int_value(root).and_then(|v| conjunction(v, root, &preds)) {
                    let chain = Chain {
                        at: root,
                        head,
                        links: Vec::new(),
                    };
                    rewrite(&builder, &layout, &preds, chain);
                }
            }
        }
    }
}

/// `(load & mask) == value`: the `width` bytes loaded at `offset` from `base`.
#[derive(Clone, Copy)]
struct Test<'ctx> {
    load: InstructionValue<'ctx>,
    base: PointerValue<'ctx>,
    offset: i64,
    width: u32,
    mask: u64,
    value: u64,
}

impl Test<'_> {
    /// Instructions it takes on its own: a load and a jump, and the `and` of a mask.
    fn cost(&self) -> u32 {
        2 + u32::from(self.mask != full_mask(self.width))
    }
}

/// An `i1` that is `holds_when` exactly when all its tests and other conditions hold: `&&` of
/// `==` tests (true), or its negation, `||` of `!=` tests (false).
struct Conjunction<'ctx> {
    root: IntValue<'ctx>,
    holds_when: bool,
    tests: Vec<Test<'ctx>>,
    /// Equality tests between two runs of loaded bytes.
    pairs: Vec<pairs::Pair<'ctx>>,
    /// The conditions that are not tests of loaded bytes, in their order.
    others: Vec<IntValue<'ctx>>,
}

/// A conjunction and the blocks after it that only test more: the words are tested at `at`.
struct Chain<'ctx> {
    at: InstructionValue<'ctx>,
    head: Conjunction<'ctx>,
    links: Vec<Link<'ctx>>,
}

/// A block reached only when the chain so far held, testing more; once the words hold, its
/// tests do too.
enum Link<'ctx> {
    /// It branches on its tests, failing to where the head fails, with the same phi values.
    Branch {
        term: InstructionValue<'ctx>,
        tests: Conjunction<'ctx>,
    },
    /// It jumps to where the head fails, the values it passes there chosen by its tests (a
    /// failing test chooses the head's).
    Choice {
        selects: Vec<InstructionValue<'ctx>>,
        tests: Conjunction<'ctx>,
    },
}

impl<'ctx> Link<'ctx> {
    fn tests(&self) -> &Conjunction<'ctx> {
        match self {
            Link::Branch { tests, .. } | Link::Choice { tests, .. } => tests,
        }
    }
}

fn branch_chain<'ctx>(head: BasicBlock<'ctx>, preds: &Predecessors<'ctx>) -> Option<Chain<'ctx>> {
    let term = head.get_terminator()?;
    let conj = conjunction(branch_condition(term)?, term, preds)?;
    let (mut next, fail) = outcomes(term, conj.holds_when);
    // Packet bytes tested further on are proved by the checks above the head, unless the head
    // tests a bounds check of its own among its other conditions — or a link does, for the
    // packet bytes tested after it (LLVM merges `data + 65 > data_end` into the test before
    // the read it guards).
    let mut stack_only = !conj.others.is_empty();
    let mut links = Vec::new();
    let mut chain_blocks = vec![head];
    while links.len() < MOST_BLOCKS {
        let prev = *chain_blocks.last().expect("the head");
        if next == fail || preds.get(&next).map(Vec::as_slice) != Some(&[prev]) {
            break;
        }
        if instructions(next).any(may_write_memory) {
            break;
        }
        let Some(t) = next.get_terminator() else {
            break;
        };
        // Defined at the head or above it, not in a block of the chain.
        let above = |d: Option<InstructionValue<'ctx>>| {
            d.and_then(|i| i.get_parent())
                .is_none_or(|b| b == head || !chain_blocks.contains(&b) && b != next)
        };
        let movable = |c: &Conjunction<'ctx>, stack_only: bool| {
            c.tests
                .iter()
                .all(|t| (!stack_only || is_alloca(t.base)) && above(t.base.as_instruction()))
                && c.pairs.iter().all(|p| p.movable(stack_only, above))
        };
        if let Some(c) = branch_condition(t) {
            let Some(tests) = conjunction(c, t, preds).filter(|c| movable(c, stack_only)) else {
                break;
            };
            let (pass, fail_too) = outcomes(t, tests.holds_when);
            if fail_too != fail || !same_incoming(fail, head, next) {
                break;
            }
            stack_only |= !tests.others.is_empty();
            links.push(Link::Branch { term: t, tests });
            chain_blocks.push(next);
            next = pass;
        } else {
            if successors(next) == [fail] {
                links.extend(
                    choice(next, head, fail, preds)
                        .filter(|l| l.tests().others.is_empty() && movable(l.tests(), stack_only)),
                );
            }
            break;
        }
    }
    Some(Chain {
        at: term,
        head: conj,
        links,
    })
}

/// `block`'s jump to `fail` as a choice by tests: every phi of `fail` takes from `block` what
/// it takes from `head`, or a `select` on one condition that takes `head`'s value when it fails.
fn choice<'ctx>(
    block: BasicBlock<'ctx>,
    head: BasicBlock<'ctx>,
    fail: BasicBlock<'ctx>,
    preds: &Predecessors<'ctx>,
) -> Option<Link<'ctx>> {
    let mut selects = Vec::new();
    let mut tests: Option<Conjunction> = None;
    for phi in phis_of(fail) {
        let from_head = phi.get_incoming(index_of(phi, head)?)?.0;
        let from_block = phi.get_incoming(index_of(phi, block)?)?.0;
        if same(from_head, from_block) {
            continue;
        }
        let select = from_block
            .as_instruction_value()
            .filter(|s| s.get_opcode() == InstructionOpcode::Select)
            .filter(|s| s.get_parent() == Some(block))?;
        let condition = int_operand(select, 0)?;
        if tests.as_ref().is_some_and(|t| t.root != condition) {
            return None;
        }
        if tests.is_none() {
            tests = Some(conjunction(condition, select, preds)?);
        }
        let when_failing = if tests.as_ref()?.holds_when { 2 } else { 1 };
        if !same(select.get_operand(when_failing)?.value()?, from_head) {
            return None;
        }
        selects.push(select);
    }
    let tests = tests?;
    Some(Link::Choice { selects, tests })
}

fn index_of<'ctx>(phi: inkwell::values::PhiValue<'ctx>, block: BasicBlock<'ctx>) -> Option<u32> {
    (0..phi.count_incoming()).find(|&k| phi.get_incoming(k).is_some_and(|(_, b)| b == block))
}

/// Whether every phi of `block` takes the same value from `a` as from `b`.
fn same_incoming<'ctx>(block: BasicBlock<'ctx>, a: BasicBlock<'ctx>, b: BasicBlock<'ctx>) -> bool {
    phis_of(block).into_iter().all(|phi| {
        let value = |from| Some(phi.get_incoming(index_of(phi, from)?)?.0);
        matches!((value(a), value(b)), (Some(x), Some(y)) if same(x, y))
    })
}

fn same(a: BasicValueEnum<'_>, b: BasicValueEnum<'_>) -> bool {
    a.as_value_ref() == b.as_value_ref()
}

/// The condition of a conditional branch.
fn branch_condition(term: InstructionValue<'_>) -> Option<IntValue<'_>> {
    if term.get_opcode() != InstructionOpcode::Br || term.get_num_operands() != 3 {
        return None;
    }
    int_operand(term, 0)
}

/// Where a conditional branch goes when its conjunction holds, and where when it fails.
fn outcomes<'ctx>(
    term: InstructionValue<'ctx>,
    holds_when: bool,
) -> (BasicBlock<'ctx>, BasicBlock<'ctx>) {
    let (when_true, when_false) = (successor(term, 0), successor(term, 1));
    if holds_when {
        (when_true, when_false)
    } else {
        (when_false, when_true)
    }
}

fn successor(term: InstructionValue<'_>, k: u32) -> BasicBlock<'_> {
    // SAFETY: `term` is a live terminator with more than `k` successors.
    unsafe {
        BasicBlock::new(llvm_sys::core::LLVMGetSuccessor(term.as_value_ref(), k))
            .expect("a terminator's successor is a block")
    }
}

/// A junction whose value is not itself joined: the root of a conjunction computed as a value
/// (a conditional branch's is taken with its chain).
fn is_value_root(i: InstructionValue<'_>) -> bool {
    let Some(v) = int_value(i).filter(|v| v.get_type().get_bit_width() == 1) else {
        return false;
    };
    let joined = |u: InstructionValue| {
        let u = int_value(u);
        u.is_some_and(|u| junction(u, true).is_some() || junction(u, false).is_some())
    };
    (junction(v, true).is_some() || junction(v, false).is_some())
        && users_of_result(i)
            .into_iter()
            .all(|u| !joined(u) && branch_condition(u).is_none())
}

fn conjunction<'ctx>(
    root: IntValue<'ctx>,
    at: InstructionValue<'ctx>,
    preds: &Predecessors<'ctx>,
) -> Option<Conjunction<'ctx>> {
    if root.get_type().get_bit_width() != 1 {
        return None;
    }
    [true, false].into_iter().find_map(|holds_when| {
        let mut c = Conjunction {
            root,
            holds_when,
            tests: Vec::new(),
            pairs: Vec::new(),
            others: Vec::new(),
        };
        gather(root, &mut c, at, preds, 0);
        (!(c.tests.is_empty() && c.pairs.is_empty())).then_some(c)
    })
}

/// Sorts the leaves of `v`'s junctions into tests and other conditions. A test counts only
/// where nothing may have written its bytes between its load and `at`.
fn gather<'ctx>(
    v: IntValue<'ctx>,
    c: &mut Conjunction<'ctx>,
    at: InstructionValue<'ctx>,
    preds: &Predecessors<'ctx>,
    depth: u32,
) {
    if depth < 16 {
        if let Some((a, b)) = junction(v, c.holds_when) {
            gather(a, c, at, preds, depth + 1);
            gather(b, c, at, preds, depth + 1);
            return;
        }
    }
    if let Some(t) = test(v, c.holds_when).filter(|t| unwritten_since(t.load, at, preds)) {
        c.tests.push(t);
    } else if let Some(p) = pairs::pair(v, c.holds_when).filter(|p| p.unwritten(at, preds)) {
        c.pairs.push(p);
    } else {
        c.others.push(v);
    }
}

/// `a && b` (`holds_when` true) or `a || b` (false): `and`/`or`, or the `select` that LLVM
/// keeps where `b` is not evaluated unless it decides.
fn junction(v: IntValue<'_>, holds_when: bool) -> Option<(IntValue<'_>, IntValue<'_>)> {
    let i = v.as_instruction()?;
    if v.get_type().get_bit_width() != 1 {
        return None;
    }
    let is_bool = |k, b: bool| {
        int_operand(i, k).and_then(|x| x.get_zero_extended_constant()) == Some(u64::from(b))
    };
    match i.get_opcode() {
        InstructionOpcode::And if holds_when => Some((int_operand(i, 0)?, int_operand(i, 1)?)),
        InstructionOpcode::Or if !holds_when => Some((int_operand(i, 0)?, int_operand(i, 1)?)),
        InstructionOpcode::Select if holds_when && is_bool(2, false) => {
            Some((int_operand(i, 0)?, int_operand(i, 1)?))
        }
        InstructionOpcode::Select if !holds_when && is_bool(1, true) => {
            Some((int_operand(i, 0)?, int_operand(i, 2)?))
        }
        _ => None,
    }
}

/// The predicate of a conjunction's tests: `==` when it holds when they all do, else `!=`.
fn equality(holds_when: bool) -> IntPredicate {
    if holds_when {
        IntPredicate::EQ
    } else {
        IntPredicate::NE
    }
}

/// The two operands of `v` when it is the conjunction's kind of compare (see [`equality`]).
fn compared(v: IntValue<'_>, holds_when: bool) -> Option<(IntValue<'_>, IntValue<'_>)> {
    let i = v.as_instruction()?;
    if i.get_opcode() != InstructionOpcode::ICmp || i.get_icmp_predicate()? != equality(holds_when)
    {
        return None;
    }
    Some((int_operand(i, 0)?, int_operand(i, 1)?))
}

/// `v` as a test: `(load & mask) == C` (`holds_when` true) or `!=` (false).
fn test(v: IntValue<'_>, holds_when: bool) -> Option<Test<'_>> {
    let (loaded_value, constant) = compared(v, holds_when)?;
    let value = constant.get_zero_extended_constant()?;
    let t = loaded(loaded_value, value)?;
    // A test that can never hold is left as it is.
    (value & !t.mask == 0).then_some(t)
}

/// `v`, a loaded value or a loaded value masked by a constant, as a test against `value`.
fn loaded(v: IntValue<'_>, value: u64) -> Option<Test<'_>> {
    let i = v.as_instruction()?;
    let (load, mask) = match i.get_opcode() {
        InstructionOpcode::And => (
            int_operand(i, 0)?.as_instruction()?,
            int_operand(i, 1)?.get_zero_extended_constant()?,
        ),
        _ => (i, u64::MAX),
    };
    if load.get_opcode() != InstructionOpcode::Load || load.get_volatile().unwrap_or(true) {
        return None;
    }
    let width = match int_value(load)?.get_type().get_bit_width() {
        8 => 1,
        16 => 2,
        32 => 4,
        _ => return None,
    };
    let (base, offset) = constant_base(pointer_operand(load, 0)?);
    (is_alloca(base) || is_packet(base)).then_some(Test {
        load,
        base,
        offset,
        width,
        mask: mask & full_mask(width),
        value,
    })
}

fn full_mask(width: u32) -> u64 {
    u64::MAX >> (64 - 8 * width)
}

fn int_value(i: InstructionValue<'_>) -> Option<IntValue<'_>> {
    match BasicValueEnum::try_from(inkwell::values::AnyValue::as_any_value_enum(&i)).ok()? {
        BasicValueEnum::IntValue(v) => Some(v),
        _ => None,
    }
}

/// Whether nothing between `load` and `at` may write memory: `at`'s block up to it, the rest of
/// the load's block, and every block on a path between them (the load's block must be on every
/// path into `at`'s).
fn unwritten_since<'ctx>(
    load: InstructionValue<'ctx>,
    at: InstructionValue<'ctx>,
    preds: &Predecessors<'ctx>,
) -> bool {
    let reads = pointer_operand(load, 0).map(|p| constant_base(p).0);
    unwritten_after(load, reads, at, preds)
}

/// Whether nothing between `start` and `at` may write memory (the object at `reads`, when
/// given), as `unwritten_since` says for a load.
fn unwritten_after<'ctx>(
    start: InstructionValue<'ctx>,
    reads: Option<PointerValue<'ctx>>,
    at: InstructionValue<'ctx>,
    preds: &Predecessors<'ctx>,
) -> bool {
    let (Some(home), Some(start_in)) = (at.get_parent(), start.get_parent()) else {
        return false;
    };
    if start_in == home {
        return unwritten_between(Some(start), at, reads);
    }
    if !unwritten_between(None, at, reads) {
        return false;
    }
    let mut seen = std::collections::HashSet::from([home]);
    let mut work = vec![home];
    let mut reached_start = false;
    while let Some(block) = work.pop() {
        // (A block without predecessors is the entry, reached without passing the start.)
        let Some(from) = preds.get(&block) else {
            return false;
        };
        for &above in from {
            let Some(end) = above.get_terminator() else {
                return false;
            };
            if above == start_in {
                if !reached_start && !unwritten_between(Some(start), end, reads) {
                    return false;
                }
                reached_start = true;
            } else if seen.insert(above) {
                if seen.len() > MOST_BLOCKS || !unwritten_between(None, end, reads) {
                    return false;
                }
                work.push(above);
            }
        }
    }
    reached_start
}

/// Whether nothing after `from` (or from the block's start) up to `to`, in one block, may
/// write memory (the object at `reads`, when given).
fn unwritten_between<'ctx>(
    from: Option<InstructionValue<'ctx>>,
    to: InstructionValue<'ctx>,
    reads: Option<PointerValue<'ctx>>,
) -> bool {
    let start = match from {
        Some(i) => i.get_next_instruction(),
        None => to.get_parent().and_then(|b| b.get_first_instruction()),
    };
    let mut at = start;
    while let Some(i) = at.filter(|&i| i != to) {
        if may_write_memory(i) && !reads.is_some_and(|r| stores_elsewhere(i, r)) {
            return false;
        }
        at = i.get_next_instruction();
    }
    at.is_some()
}

/// Tests that the branches leading to `block`, through blocks with one predecessor, proved
/// true on the way, of bytes that nothing has written since, up to `at`.
fn proven_tests<'ctx>(
    block: BasicBlock<'ctx>,
    at: InstructionValue<'ctx>,
    preds: &Predecessors<'ctx>,
) -> Vec<Test<'ctx>> {
    let mut out = Vec::new();
    if !unwritten_between(None, at, None) {
        return out;
    }
    let mut to = block;
    for _ in 0..MOST_BLOCKS {
        let Some(&[from]) = preds.get(&to).map(Vec::as_slice) else {
            break;
        };
        let Some(term) = from.get_terminator() else {
            break;
        };
        out.extend(
            edge_tests(term, to, preds)
                .into_iter()
                .filter(|t| unwritten_since(t.load, term, preds)),
        );
        if instructions(from).any(may_write_memory) {
            break;
        }
        to = from;
    }
    out
}

/// The tests that hold whenever `term` goes to `to`.
fn edge_tests<'ctx>(
    term: InstructionValue<'ctx>,
    to: BasicBlock<'ctx>,
    preds: &Predecessors<'ctx>,
) -> Vec<Test<'ctx>> {
    match term.get_opcode() {
        InstructionOpcode::Switch => {
            // Operands: the value, the default, then each case's value and block.
            let cases: Vec<u32> = (1..term.get_num_operands() / 2)
                .filter(|&k| term.get_operand(2 * k + 1).and_then(|o| o.block()) == Some(to))
                .collect();
            let to_default = term.get_operand(1).and_then(|o| o.block()) == Some(to);
            let (&[k], false) = (cases.as_slice(), to_default) else {
                return Vec::new();
            };
            let value = int_operand(term, 2 * k).and_then(|c| c.get_zero_extended_constant());
            let tested = int_operand(term, 0);
            match (tested, value) {
                (Some(v), Some(c)) => loaded(v, c)
                    .filter(|t| c & !t.mask == 0)
                    .into_iter()
                    .collect(),
                _ => Vec::new(),
            }
        }
        InstructionOpcode::Br => {
            let Some(c) = branch_condition(term) else {
                return Vec::new();
            };
            let Some(conj) = conjunction(c, term, preds) else {
                return Vec::new();
            };
            let (pass, fail) = outcomes(term, conj.holds_when);
            if pass == to && fail != to {
                conj.tests
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// What the words test of one byte: the bits of `mask` equal those of `value`.
#[derive(Clone, Copy, Default)]
struct Byte {
    mask: u8,
    value: u8,
    /// A test of the chain asks about it (rather than only a proven one).
    tested: bool,
}

/// One word to compare: `(load & mask) == value` of `width` bytes at `offset`.
struct Word {
    offset: i64,
    width: u32,
    mask: u64,
    value: u64,
}

fn rewrite<'ctx>(
    builder: &Builder<'ctx>,
    layout: &TargetData,
    preds: &Predecessors<'ctx>,
    chain: Chain<'ctx>,
) {
    let conjunctions = || std::iter::once(&chain.head).chain(chain.links.iter().map(Link::tests));
    let tests: Vec<Test> = conjunctions()
        .flat_map(|c| c.tests.iter().copied())
        .collect();
    let pairs: Vec<pairs::Pair> = conjunctions()
        .flat_map(|c| c.pairs.iter().copied())
        .collect();
    let old_cost: u32 =
        tests.iter().map(Test::cost).sum::<u32>() + pairs::PAIR_COST * pairs.len() as u32;
    if tests.len() + pairs.len() < 2 {
        return;
    }
    // The bytes of each object, and which of them were read (a packet word reads no others).
    let mut objects: Vec<(PointerValue, BTreeMap<i64, Byte>)> = Vec::new();
    for t in &tests {
        let at = match objects.iter().position(|o| o.0 == t.base) {
            Some(k) => k,
            None => {
                objects.push((t.base, BTreeMap::new()));
                objects.len() - 1
            }
        };
        if !add_bytes(&mut objects[at].1, t, true) {
            return; // the tests contradict each other: never true, left alone
        }
    }
    let home = chain.at.get_parent().expect("placed");
    for known in proven_tests(home, chain.at, preds) {
        if let Some(o) = objects.iter_mut().find(|o| o.0 == known.base) {
            let mut with_known = o.1.clone();
            if add_bytes(&mut with_known, &known, false) {
                o.1 = with_known;
            }
        }
    }
    let Some((pair_words, mut new_cost)) = pairs::plan(&pairs, layout) else {
        return;
    };
    let mut plans = Vec::new();
    for (base, bytes) in &objects {
        let Some((words, cost)) = plan(*base, bytes, layout) else {
            return;
        };
        new_cost += cost;
        plans.push((*base, words));
    }
    if new_cost >= old_cost {
        return;
    }
    let Some(condition) = build_words(builder, &chain, &plans, &pair_words) else {
        return;
    };
    let old_root = chain.head.root.as_instruction();
    match branch_condition(chain.at) {
        Some(_) => set_condition(chain.at, condition),
        None => replace_all_uses(chain.at, condition),
    }
    old_root.into_iter().for_each(erase_dead);
    let decided =
        |c: &Conjunction<'ctx>| c.root.get_type().const_int(u64::from(c.holds_when), false);
    for link in chain.links {
        match link {
            Link::Branch { term, tests } => {
                // What is left to test here is the conditions that are not tests.
                builder.position_before(&term);
                let rest = join(builder, tests.others.clone(), tests.holds_when);
                set_condition(term, rest.unwrap_or_else(|| decided(&tests)));
                tests.root.as_instruction().into_iter().for_each(erase_dead);
            }
            Link::Choice { selects, tests } => {
                let when_holding = if tests.holds_when { 1 } else { 2 };
                for s in selects {
                    if let Some(v) = s.get_operand(when_holding).and_then(|o| o.value()) {
                        replace_all_uses(s, v);
                        s.erase_from_basic_block();
                    }
                }
                tests.root.as_instruction().into_iter().for_each(erase_dead);
            }
        }
    }
}

/// Adds the bytes `t` tests (`tested`) or proved (not `tested`) to `bytes`; false when they
/// contradict what is there.
fn add_bytes(bytes: &mut BTreeMap<i64, Byte>, t: &Test, tested: bool) -> bool {
    for k in 0..t.width {
        let mask = (t.mask >> (8 * k)) as u8;
        let value = (t.value >> (8 * k)) as u8;
        // A byte loaded but masked off is still read, which lets a packet word cover it.
        let b = bytes.entry(t.offset + i64::from(k)).or_default();
        if (b.value ^ value) & b.mask & mask != 0 {
            return false;
        }
        b.value |= value & mask;
        b.mask |= mask;
        b.tested |= tested && mask != 0;
    }
    true
}

/// The cheapest words that test every tested byte of `bytes` (offsets from `base`), and what
/// they cost.
fn plan(
    base: PointerValue<'_>,
    bytes: &BTreeMap<i64, Byte>,
    layout: &TargetData,
) -> Option<(Vec<Word>, u32)> {
    let tested: Vec<i64> = bytes.iter().filter(|b| b.1.tested).map(|b| *b.0).collect();
    let (&first, &last) = (tested.first()?, tested.last()?);
    // Where a word may be read: a stack word aligned inside its object; a packet word over
    // bytes that were read.
    let stack = match base.as_instruction() {
        Some(alloca) if is_alloca(base) => {
            let size = layout.get_store_size(&alloca.get_allocated_type().ok()?);
            Some((
                i64::try_from(size).ok()?,
                i64::from(alloca.get_alignment().ok()?),
            ))
        }
        _ => None,
    };
    let readable = |offset: i64, width: i64| match stack {
        Some((size, align)) => {
            offset >= 0 && offset % width == 0 && offset + width <= size && width <= align
        }
        None => (offset..offset + width).all(|o| bytes.contains_key(&o)),
    };
    // A word may start up to 3 bytes before the first tested byte, over proven bytes.
    let start = match stack {
        Some(_) => (first - first.rem_euclid(4)).max(0),
        None => *bytes.range(first - 3..).next()?.0,
    };
    let end = last + 1;
    let word = |offset: i64, width: u32| {
        let (mut mask, mut value) = (0u64, 0u64);
        for k in 0..width {
            if let Some(b) = bytes.get(&(offset + i64::from(k))) {
                mask |= u64::from(b.mask) << (8 * k);
                value |= u64::from(b.value) << (8 * k);
            }
        }
        Word {
            offset,
            width,
            mask,
            value,
        }
    };
    let cost = |w: &Word| 2 + u32::from(w.mask != full_mask(w.width));
    // cheapest[p]: the cost of testing the tested bytes from `p` on, and the word read at `p`.
    let span = usize::try_from(end - start).ok()?;
    let mut cheapest: Vec<(u32, Option<u32>)> = vec![(0, None); span + 1];
    for p in (0..span).rev() {
        let offset = start + p as i64;
        let is_tested = bytes.get(&offset).is_some_and(|b| b.tested);
        let mut best = if is_tested {
            (u32::MAX, None)
        } else {
            (cheapest[p + 1].0, None)
        };
        // Wider first: of two plans that cost the same, the one with fewer loads.
        for width in [4u32, 2, 1] {
            if !readable(offset, i64::from(width)) || !(bytes.get(&offset).is_some() || width > 1) {
                continue;
            }
            let after = cheapest[(p + width as usize).min(span)].0;
            let total = cost(&word(offset, width)).saturating_add(after);
            if total < best.0 {
                best = (total, Some(width));
            }
        }
        cheapest[p] = best;
    }
    let mut words = Vec::new();
    let mut p = 0;
    while p < span {
        match cheapest[p].1 {
            Some(width) => {
                words.push(word(start + p as i64, width));
                p += width as usize;
            }
            None => p += 1,
        }
    }
    let total = cheapest[0].0;
    (total != u32::MAX).then_some((words, total))
}

/// Reads and compares the planned words before the chain's `at`, joined with the head's other
/// conditions in its own form (`&&` of `==` or `||` of `!=`).
fn build_words<'ctx>(
    builder: &Builder<'ctx>,
    chain: &Chain<'ctx>,
    plans: &[(PointerValue<'ctx>, Vec<Word>)],
    pair_words: &[pairs::PairWord<'ctx>],
) -> Option<IntValue<'ctx>> {
    let ctx = chain.head.root.get_type().get_context();
    let holds_when = chain.head.holds_when;
    builder.position_before(&chain.at);
    let mut conditions = Vec::new();
    // Each word is compared as a 32-bit value: the BPF back end widens narrower compares, and a
    // mask of an `i16` would need a second `and` to clear what the widening sets.
    let i32_type = ctx.i32_type();
    for (base, words) in plans {
        for w in words {
            let ty = match w.width {
                1 => ctx.i8_type(),
                2 => ctx.i16_type(),
                _ => i32_type,
            };
            let offset = ctx.i64_type().const_int(w.offset as u64, true);
            // SAFETY: the word lies inside the stack object, or over packet bytes the tests read.
            let address =
                unsafe { builder.build_gep(ctx.i8_type(), *base, &[offset], "word") }.ok()?;
            let load = builder.build_load(ty, address, "word").ok()?;
            // Aligned on the stack; the kernel reads packet words unaligned, which LLVM would
            // otherwise split into bytes.
            load.as_instruction_value()?.set_alignment(w.width).ok()?;
            let mut value = builder
                .build_int_z_extend_or_bit_cast(load.into_int_value(), i32_type, "word")
                .ok()?;
            if w.mask != full_mask(w.width) {
                let mask = i32_type.const_int(w.mask, false);
                value = builder.build_and(value, mask, "word").ok()?;
            }
            let expected = i32_type.const_int(w.value, false);
            conditions.push(
                builder
                    .build_int_compare(equality(holds_when), value, expected, "word")
                    .ok()?,
            );
        }
    }
    for w in pair_words {
        conditions.push(pairs::build(builder, chain.at, w, holds_when)?);
    }
    conditions.extend(chain.head.others.iter().copied());
    join(builder, conditions, holds_when)
}

/// `conditions` joined in their order as one conjunction in the form `holds_when` says (`&&`
/// when true, `||` when false), built where `builder` is; `None` when there are none.
fn join<'ctx>(
    builder: &Builder<'ctx>,
    mut conditions: Vec<IntValue<'ctx>>,
    holds_when: bool,
) -> Option<IntValue<'ctx>> {
    let mut joined = conditions.pop()?;
    let decides = joined.get_type().const_int(u64::from(!holds_when), false);
    while let Some(c) = conditions.pop() {
        // `c && rest` is `select c, rest, false`; `c || rest` is `select c, true, rest`.
        let (then, otherwise) = if holds_when {
            (joined, decides)
        } else {
            (decides, joined)
        };
        joined = builder
            .build_select(c, then, otherwise, "word")
            .ok()?
            .into_int_value();
    }
    Some(joined)
}

fn set_condition<'ctx>(branch: InstructionValue<'ctx>, condition: IntValue<'ctx>) {
    // SAFETY: `branch` is a live conditional branch and `condition` an `i1` of its context.
    unsafe { llvm_sys::core::LLVMSetCondition(branch.as_value_ref(), condition.as_value_ref()) }
}
