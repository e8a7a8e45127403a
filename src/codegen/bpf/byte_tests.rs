//! A test computed from one byte becomes the cheapest test with the same truth table.
//!
//! `lower(c) == 'h'`, with `lower(c)` = `c in 'A'..'Z' ? c | 0x20 : c`: LLVM keeps the range
//! test, the `or` and the select in front of the compare (five instructions per letter), where
//! a C programmer writes `(c | 0x20) == 'h'`, the same test in two. Any pure function of a byte
//! has only 256 inputs, so after LLVM's pipeline each `i1` computed from a single 8-bit value
//! through integer arithmetic, compares and selects is evaluated for all of them, and where one
//! of a few cheap forms has the same truth table and costs less than the instructions the test
//! alone keeps alive, that form replaces it:
//!
//! * a constant;
//! * `(x & mask) == value` (one value, or the values that differ only in the bits off the mask:
//!   `c == 'H' || c == 'h'`);
//! * `(x | bits) - lo < n` (a range, or a range once the bits are set: any letter, either case),
//!
//! each also negated. Inputs for which the original is poison (a shift past the width) may take
//! either answer.

use super::llvm_ir::{instructions, replace_all_uses, users_of_result};
use inkwell::builder::Builder;
use inkwell::module::Module;
use inkwell::types::AnyTypeEnum;
use inkwell::values::{
    BasicValueEnum, FunctionValue, InstructionOpcode, InstructionValue, IntValue,
};
use inkwell::IntPredicate;
use std::collections::{HashMap, HashSet};

/// More than this many instructions between the byte and the test is not a small function of it.
const MAX_NODES: usize = 24;

pub fn decide_byte_tests(module: &Module) {
    let builder = module.get_context().create_builder();
    for f in module.get_functions() {
        rewrite_function(&builder, f);
    }
}

fn rewrite_function<'ctx>(builder: &Builder<'ctx>, f: FunctionValue<'ctx>) {
    // Every test is planned on the code as LLVM left it, then each is replaced; the
    // instructions the replaced tests alone kept alive go last, in one sweep.
    let mut plans = Vec::new();
    for block in f.get_basic_blocks() {
        for i in instructions(block) {
            if let Some(plan) = plan(i) {
                plans.push(plan);
            }
        }
    }
    let mut replaced = HashSet::new();
    for plan in &plans {
        builder.position_before(&plan.test);
        let Some(new) = emit(builder, plan.byte, plan.form) else {
            continue;
        };
        replace_all_uses(plan.test, new);
        replaced.extend(plan.dies.iter().copied());
    }
    erase_unused(replaced);
}

/// A test to replace: the byte it is a function of, the cheaper form and the instructions that
/// die with it.
struct Plan<'ctx> {
    test: InstructionValue<'ctx>,
    byte: IntValue<'ctx>,
    form: Form,
    dies: Vec<InstructionValue<'ctx>>,
}

fn plan(test: InstructionValue<'_>) -> Option<Plan<'_>> {
    if !is_boolean(test) || !is_pure(test.get_opcode()) {
        return None;
    }
    // A test that only feeds a larger test of the same byte is decided as part of that one.
    let users = users_of_result(test);
    if !users.is_empty()
        && users
            .iter()
            .all(|&u| is_boolean(u) && is_pure(u.get_opcode()))
    {
        return None;
    }
    let expr = Expr::of(test)?;
    let dies = expr.dying(test);
    let cost: u32 = dies.iter().map(|&i| cost(i)).sum();
    if cost <= 1 {
        return None; // nothing but a constant is cheaper, and LLVM folds those
    }
    let form = Form::cheapest(&expr.truth_table())?;
    (form.cost() < cost).then_some(Plan {
        test,
        byte: expr.byte,
        form,
        dies,
    })
}

fn is_boolean(i: InstructionValue<'_>) -> bool {
    matches!(i.get_type(), AnyTypeEnum::IntType(t) if t.get_bit_width() == 1)
}

/// The opcodes that only compute from their operands (and may be evaluated on every input).
fn is_pure(op: InstructionOpcode) -> bool {
    use InstructionOpcode::*;
    matches!(
        op,
        Add | Sub | Mul | And | Or | Xor | Shl | LShr | AShr | ZExt | SExt | Trunc | ICmp | Select
    )
}

/// What an instruction costs on BPF, roughly: a widening from a byte and a narrowing are free
/// (a loaded byte is already zero-extended; subregisters are not masked until compared).
fn cost(i: InstructionValue<'_>) -> u32 {
    match i.get_opcode() {
        InstructionOpcode::ZExt | InstructionOpcode::Trunc => 0,
        InstructionOpcode::SExt => 2,
        _ => 1,
    }
}

/// One operand of an expression node.
#[derive(Clone, Copy)]
enum Operand {
    Byte,
    Constant(u64),
    Node(usize),
}

struct Node<'ctx> {
    inst: InstructionValue<'ctx>,
    bits: u32,
    operands: Vec<Operand>,
}

/// A test as an expression of one byte: its nodes in an order where operands come first, the
/// last being the test.
struct Expr<'ctx> {
    byte: IntValue<'ctx>,
    nodes: Vec<Node<'ctx>>,
}

impl<'ctx> Expr<'ctx> {
    fn of(test: InstructionValue<'ctx>) -> Option<Self> {
        let mut builder = ExprBuilder {
            byte: None,
            nodes: Vec::new(),
            index: HashMap::new(),
        };
        builder.node(test)?;
        Some(Expr {
            byte: builder.byte?,
            nodes: builder.nodes,
        })
    }

    /// The test's value for each byte.
    fn truth_table(&self) -> [bool; 256] {
        let mut table = [false; 256];
        let mut values = vec![0u64; self.nodes.len()];
        for (x, entry) in table.iter_mut().enumerate() {
            for (k, node) in self.nodes.iter().enumerate() {
                let operand = |o: &Operand| match *o {
                    Operand::Byte => x as u64,
                    Operand::Constant(c) => c,
                    Operand::Node(n) => values[n],
                };
                let mut args = [0u64; 3];
                for (a, o) in args.iter_mut().zip(&node.operands) {
                    *a = operand(o);
                }
                values[k] = evaluate(node, &args, &self.nodes);
            }
            *entry = values.last().copied().unwrap_or(0) & 1 == 1;
        }
        table
    }

    /// The test and the nodes that only it (through other such nodes) uses.
    fn dying(&self, test: InstructionValue<'ctx>) -> Vec<InstructionValue<'ctx>> {
        let mut dead: HashSet<InstructionValue> = HashSet::from([test]);
        // Users come after their operands in `nodes`: one pass from the test back suffices.
        for node in self.nodes.iter().rev() {
            if dead.contains(&node.inst) {
                continue;
            }
            let users = users_of_result(node.inst);
            if users.iter().all(|u| dead.contains(u)) {
                dead.insert(node.inst);
            }
        }
        dead.into_iter().collect()
    }
}

struct ExprBuilder<'ctx> {
    byte: Option<IntValue<'ctx>>,
    nodes: Vec<Node<'ctx>>,
    index: HashMap<InstructionValue<'ctx>, usize>,
}

impl<'ctx> ExprBuilder<'ctx> {
    /// Adds `i` and its operands; its index, or None when it is not a function of one byte.
    fn node(&mut self, i: InstructionValue<'ctx>) -> Option<usize> {
        if let Some(&k) = self.index.get(&i) {
            return Some(k);
        }
        let AnyTypeEnum::IntType(ty) = i.get_type() else {
            return None;
        };
        let bits = ty.get_bit_width();
        if bits > 64 || i.get_num_operands() > 3 {
            return None;
        }
        let mut operands = Vec::new();
        for k in 0..i.get_num_operands() {
            let BasicValueEnum::IntValue(v) = i.get_operand(k)?.value()? else {
                return None;
            };
            operands.push(self.operand(v)?);
        }
        if self.nodes.len() >= MAX_NODES {
            return None;
        }
        self.nodes.push(Node {
            inst: i,
            bits,
            operands,
        });
        self.index.insert(i, self.nodes.len() - 1);
        Some(self.nodes.len() - 1)
    }

    fn operand(&mut self, v: IntValue<'ctx>) -> Option<Operand> {
        if v.is_constant_int() {
            return Some(Operand::Constant(v.get_zero_extended_constant()?));
        }
        if let Some(i) = v.as_instruction().filter(|i| is_pure(i.get_opcode())) {
            return self.node(i).map(Operand::Node);
        }
        // Anything else is the byte, and there is one.
        if v.get_type().get_bit_width() != 8 || self.byte.is_some_and(|b| b != v) {
            return None;
        }
        self.byte = Some(v);
        Some(Operand::Byte)
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn signed(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// `node` on operand values `a` (each within its width); the result within the node's width.
fn evaluate(node: &Node<'_>, a: &[u64], nodes: &[Node<'_>]) -> u64 {
    use InstructionOpcode::*;
    let bits = node.bits;
    // The width of the operands: the node's own, but for casts and compares.
    let operand_bits = |k: usize| match node.operands[k] {
        Operand::Node(n) => nodes[n].bits,
        Operand::Byte => 8,
        Operand::Constant(_) => bits,
    };
    let shift = |s: u64| (s % u64::from(bits)) as u32; // past the width: poison, any answer
    let value = match node.inst.get_opcode() {
        Add => a[0].wrapping_add(a[1]),
        Sub => a[0].wrapping_sub(a[1]),
        Mul => a[0].wrapping_mul(a[1]),
        And => a[0] & a[1],
        Or => a[0] | a[1],
        Xor => a[0] ^ a[1],
        Shl => a[0] << shift(a[1]),
        LShr => a[0] >> shift(a[1]),
        AShr => (signed(a[0], bits) >> shift(a[1])) as u64,
        ZExt | Trunc => a[0],
        SExt => signed(a[0], operand_bits(0)) as u64,
        Select => {
            if a[0] & 1 == 1 {
                a[1]
            } else {
                a[2]
            }
        }
        ICmp => {
            let w = operand_bits(0).max(operand_bits(1));
            let (x, y) = (a[0] & mask(w), a[1] & mask(w));
            let (sx, sy) = (signed(x, w), signed(y, w));
            let holds = match node.inst.get_icmp_predicate() {
                Some(IntPredicate::EQ) => x == y,
                Some(IntPredicate::NE) => x != y,
                Some(IntPredicate::UGT) => x > y,
                Some(IntPredicate::UGE) => x >= y,
                Some(IntPredicate::ULT) => x < y,
                Some(IntPredicate::ULE) => x <= y,
                Some(IntPredicate::SGT) => sx > sy,
                Some(IntPredicate::SGE) => sx >= sy,
                Some(IntPredicate::SLT) => sx < sy,
                Some(IntPredicate::SLE) => sx <= sy,
                None => false,
            };
            u64::from(holds)
        }
        _ => 0,
    };
    value & mask(bits)
}

/// A cheap test of the byte `x`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    Constant(bool),
    /// `(x & mask) == value`, or `!=` when negated.
    Masked {
        mask: u8,
        value: u8,
        negated: bool,
    },
    /// `(x | bits)` within `lo..=hi`, or outside it when negated.
    Range {
        bits: u8,
        lo: u8,
        hi: u8,
        negated: bool,
    },
}

impl Form {
    /// The cheapest form with this truth table, if one has it.
    fn cheapest(table: &[bool; 256]) -> Option<Form> {
        let mut forms = Vec::new();
        for negated in [false, true] {
            let holds: Vec<u8> = (0..=255u8)
                .filter(|&x| table[x as usize] != negated)
                .collect();
            if holds.is_empty() {
                forms.push(Form::Constant(negated));
                continue;
            }
            forms.extend(masked(&holds, negated));
            for bit in (0..8).map(|b| 1u8 << b).chain([0]) {
                forms.extend(range(table, bit, negated));
            }
        }
        forms.into_iter().min_by_key(Form::cost)
    }

    /// Instructions, as `cost` counts them.
    fn cost(&self) -> u32 {
        match *self {
            Form::Constant(_) => 0,
            Form::Masked { mask, .. } => 1 + u32::from(mask != 0xff),
            Form::Range { bits, lo, hi, .. } => {
                u32::from(bits != 0) + if lo == 0 || hi == 0xff { 1 } else { 2 }
            }
        }
    }
}

/// `(x & mask) == value` when the bytes that hold are those agreeing with the first on the
/// mask's bits, and every such byte holds.
fn masked(holds: &[u8], negated: bool) -> Option<Form> {
    let differ = holds.iter().fold(0u8, |d, &x| d | (x ^ holds[0]));
    let mask = !differ;
    (holds.len() == 1 << differ.count_ones()).then_some(Form::Masked {
        mask,
        value: holds[0] & mask,
        negated,
    })
}

/// `(x | bit)` within a range when the test does not depend on `bit` (or `bit` is 0) and the
/// values with `bit` set that hold are the ones of a range.
fn range(table: &[bool; 256], bit: u8, negated: bool) -> Option<Form> {
    let holds = |x: u8| table[x as usize] != negated;
    if (0..=255u8).any(|x| holds(x) != holds(x | bit)) {
        return None;
    }
    let set: Vec<u8> = (0..=255u8).filter(|&x| x & bit == bit).collect();
    let lo = *set.iter().find(|&&x| holds(x))?;
    let hi = *set.iter().rev().find(|&&x| holds(x))?;
    let contiguous = set.iter().all(|&x| (lo..=hi).contains(&x) == holds(x));
    (contiguous && (lo, hi) != (0, 0xff)).then_some(Form::Range {
        bits: bit,
        lo,
        hi,
        negated,
    })
}

/// The form's test of `byte`, at the builder's position, on its 32-bit zero extension.
fn emit<'ctx>(builder: &Builder<'ctx>, byte: IntValue<'ctx>, form: Form) -> Option<IntValue<'ctx>> {
    let i32t = byte.get_type().get_context().i32_type();
    let bool_type = byte.get_type().get_context().bool_type();
    let k = |v: u64| i32t.const_int(v, false);
    let x = || builder.build_int_z_extend(byte, i32t, "byte").ok();
    let compare = |p, a, b| builder.build_int_compare(p, a, b, "byte_test").ok();
    match form {
        Form::Constant(holds) => Some(bool_type.const_int(u64::from(holds), false)),
        Form::Masked {
            mask,
            value,
            negated,
        } => {
            let mut x = x()?;
            if mask != 0xff {
                x = builder.build_and(x, k(u64::from(mask)), "byte").ok()?;
            }
            let p = if negated {
                IntPredicate::NE
            } else {
                IntPredicate::EQ
            };
            compare(p, x, k(u64::from(value)))
        }
        Form::Range {
            bits,
            lo,
            hi,
            negated,
        } => {
            let mut x = x()?;
            if bits != 0 {
                x = builder.build_or(x, k(u64::from(bits)), "byte").ok()?;
            }
            let (lo, hi) = (u64::from(lo), u64::from(hi));
            let (below, at_least) = (IntPredicate::ULT, IntPredicate::UGE);
            let (inside, outside) = if negated {
                (at_least, below)
            } else {
                (below, at_least)
            };
            if lo == 0 {
                compare(inside, x, k(hi + 1))
            } else if hi == 0xff {
                compare(outside, x, k(lo))
            } else {
                let off = builder.build_int_sub(x, k(lo), "byte").ok()?;
                compare(inside, off, k(hi - lo + 1))
            }
        }
    }
}

/// Erases each of `candidates` left without users, until none is.
fn erase_unused(mut candidates: HashSet<InstructionValue<'_>>) {
    loop {
        let Some(&dead) = candidates.iter().find(|&&i| users_of_result(i).is_empty()) else {
            return;
        };
        candidates.remove(&dead);
        dead.erase_from_basic_block();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(f: impl Fn(u8) -> bool) -> [bool; 256] {
        std::array::from_fn(|x| f(x as u8))
    }

    fn lower(c: u8) -> u8 {
        if c.is_ascii_uppercase() {
            c | 0x20
        } else {
            c
        }
    }

    #[test]
    fn a_lowered_letter_is_one_bit_off() {
        let form = Form::cheapest(&table(|c| lower(c) == b'h')).unwrap();
        assert_eq!(
            form,
            Form::Masked {
                mask: !0x20,
                value: b'H',
                negated: false
            }
        );
        let not = Form::cheapest(&table(|c| lower(c) != b'h')).unwrap();
        assert!(matches!(not, Form::Masked { negated: true, .. }));
    }

    #[test]
    fn a_lowered_non_letter_is_one_value() {
        // '[' is not a letter: only '[' itself lowers to it ('{' does not).
        let form = Form::cheapest(&table(|c| lower(c) == b'[')).unwrap();
        assert_eq!(
            form,
            Form::Masked {
                mask: 0xff,
                value: b'[',
                negated: false
            }
        );
    }

    #[test]
    fn letters_of_either_case_are_a_range_once_the_case_bit_is_set() {
        let form = Form::cheapest(&table(|c| lower(c).is_ascii_lowercase())).unwrap();
        assert_eq!(
            form,
            Form::Range {
                bits: 0x20,
                lo: b'a',
                hi: b'z',
                negated: false
            }
        );
        assert_eq!(form.cost(), 3);
    }

    #[test]
    fn ranges_at_either_end_are_one_compare() {
        let form = Form::cheapest(&table(|c| c >= 0x80)).unwrap();
        assert_eq!(form.cost(), 1);
        let digits = Form::cheapest(&table(|c| c.is_ascii_digit())).unwrap();
        assert_eq!(digits.cost(), 2);
    }

    #[test]
    fn scattered_sets_have_no_cheap_form() {
        assert_eq!(Form::cheapest(&table(|c| c.is_ascii_hexdigit())), None);
        assert_eq!(Form::cheapest(&table(|c| c == 3 || c == 200)), None);
    }

    #[test]
    fn constant_tables_are_constants() {
        assert_eq!(Form::cheapest(&table(|_| true)), Some(Form::Constant(true)));
        assert_eq!(
            Form::cheapest(&table(|c| lower(c) == b'H')),
            Some(Form::Constant(false))
        );
    }
}
