//! `separate-bound-tests`: tests of one integer against constants stay tests of that integer.
//!
//! InstCombine folds two such tests into one range test on a derived value: `n > 0 && n <= 40`
//! becomes `(n - 1) < 40`, and so do `if (n == 0) { return } if (n > 40) { return }` once
//! SimplifyCFG has merged the two branches. The verifier learns nothing about `n` from a test of
//! `n - 1`, so an index, a helper size or a packet offset that the source's tests bound — and
//! that ksc, trusting them, leaves unchecked — is refused at load ("invalid variable-offset
//! write to stack", "invalid indirect access to stack … size=255"), on every kernel.
//!
//! So the tests of one subject (a value, or every read of one local or field, give or take a
//! cast and an added constant) are kept apart where LLVM could merge them ([`side_by_side`]) and
//! the subject makes an address or a helper's argument, maybe in a function it is passed to or
//! returned from ([`Addressing`]): every such test but those against the highest bound an
//! ordered test puts on it compares a `bpf.passthrough` of its operand, which LLVM cannot
//! relate to the others and instruction selection sees as the operand itself. LLVM keeps what
//! the highest test tells it; the verifier learns from every test. Equalities are left as they
//! are unless they test an edge of the type (a constant in each arm is all they give, and LLVM
//! builds switches from them), as are a `while` loop's own tests (its trip count is LLVM's).
//!
//! Runs after `lower-bpf` and `guard-helper-sizes` (whose tests are on opaque copies) and
//! before `flatten`.

use super::PassResult;
use crate::ir::{views, Attr, BlockId, IntTy, Module, OpId, Opcode, Value, ValueDef};
use crate::vocab::CmpPred;
use std::collections::{HashMap, HashSet};

pub fn run(m: &mut Module) -> PassResult {
    let separate: Vec<(OpId, usize)> = {
        let addressing = Addressing::of_module(m);
        let mut separate = Vec::new();
        for f in super::kernel_funcs(m) {
            let mut subjects: HashMap<Subject, Vec<Test>> = HashMap::new();
            for cmp in m.collect_nested(f, |d| d.opcode == Opcode::CoreCmp) {
                if let Some((subject, test)) = test_of(m, cmp) {
                    subjects.entry(subject).or_default().push(test);
                }
            }
            subjects.retain(|subject, _| addressing.reaches(m, subject));
            for tests in subjects.values() {
                separate.extend(separated(m, tests).map(|t| (t.cmp, t.operand)));
            }
        }
        separate
    };
    for (cmp, operand) in separate {
        let value = m.op(cmp).operands[operand];
        let hidden = m.builder_before(cmp).bpf_passthrough(value);
        m.op_mut(cmp).operands[operand] = hidden;
    }
    Ok(())
}

/// What a test compares, up to casts and added constants: the same subject for every read of a
/// local or of a field through one base, which LLVM may turn into one value.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Subject {
    Value(Value),
    Load(Box<Subject>),
    Field(Box<Subject>, Vec<u8>),
}

/// A test of a subject against a constant.
struct Test {
    cmp: OpId,
    /// Which operand holds the subject.
    operand: usize,
    /// The constant less what was added to the subject: the bound on the subject itself (for an
    /// ordered test, the least value of the upper range).
    bound: i128,
    kind: TestKind,
    /// The condition of a `while` loop.
    loop_condition: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum TestKind {
    /// `<`, `<=`, `>`, `>=`.
    Ordered,
    /// `==` or `!=` against 0 or an extreme of the subject's type: with an ordered test, a
    /// range that wraps round (`n == 0 || n > 40` is `n - 1 >= 40`).
    EdgeEquality,
    /// Any other `==` or `!=`: with an ordered test, no one range, or the ordered test's own
    /// edge moved by one (`n == 40 || n > 40` is `n >= 40`).
    Equality,
}

/// The tests of one subject to separate from the others: none unless an ordered test is among
/// them, else the ordered tests against another bound than the highest and the equalities that
/// could make one range with an ordered test, where another test against another bound runs
/// next to them; never a loop's.
fn separated<'t>(m: &Module, tests: &'t [Test]) -> impl Iterator<Item = &'t Test> + 't {
    let highest = tests
        .iter()
        .filter(|t| t.kind == TestKind::Ordered)
        .map(|t| t.bound)
        .max();
    let foldable = |t: &Test| t.kind != TestKind::Equality;
    let apart = move |t: &Test| {
        let candidate = match t.kind {
            TestKind::Ordered => highest.is_some_and(|h| t.bound != h),
            TestKind::EdgeEquality => highest.is_some(),
            TestKind::Equality => false,
        };
        candidate
            && !t.loop_condition
            && tests
                .iter()
                .any(|u| foldable(u) && u.bound != t.bound && side_by_side(m, t.cmp, u.cmp))
    };
    let apart: Vec<bool> = tests.iter().map(apart).collect();
    tests.iter().zip(apart).filter_map(|(t, a)| a.then_some(t))
}

/// Whether LLVM may see tests `a` and `b` as one condition: SimplifyCFG merges two branches into
/// an `and` or `or` when nothing but computing the second test lies on the way from the first
/// (exits may branch off it). So: in one statement (an `&&` chain, an `if` in another's arm),
/// or in statements with only such code between them, from the first's end to the second's
/// start.
fn side_by_side(m: &Module, a: OpId, b: OpId) -> bool {
    let (path_a, path_b) = (statement_path(m, a), statement_path(m, b));
    let Some((depth_a, depth_b)) = path_a.iter().enumerate().find_map(|(i, (block, _))| {
        let j = path_b.iter().position(|(other, _)| other == block)?;
        Some((i, j))
    }) else {
        return false;
    };
    let (at_a, at_b) = (path_a[depth_a].1, path_b[depth_b].1);
    if at_a == at_b {
        return true;
    }
    let (first, second, at_first, at_second) = match at_a < at_b {
        true => (&path_a[..depth_a], &path_b[..depth_b], at_a, at_b),
        false => (&path_b[..depth_b], &path_a[..depth_a], at_b, at_a),
    };
    let ops = |block: BlockId| &m.block(block).ops;
    let common = path_a[depth_a].0;
    ops(common)[at_first + 1..at_second]
        .iter()
        .all(|&op| quiet(m, op))
        && first
            .iter()
            .all(|&(block, at)| ops(block)[at + 1..].iter().all(|&op| quiet(m, op)))
        && second
            .iter()
            .all(|&(block, at)| ops(block)[..at].iter().all(|&op| quiet(m, op)))
}

/// The blocks enclosing `op`, innermost first, each with the index there of `op` or of the op
/// holding it.
fn statement_path(m: &Module, op: OpId) -> Vec<(BlockId, usize)> {
    let mut path = Vec::new();
    let mut cur = Some(op);
    while let Some(op) = cur {
        let Some(place) = m.position(op) else { break };
        path.push(place);
        cur = m.parent_op(op);
    }
    path
}

/// Whether `op` does nothing on the way on: it only computes, or it branches to code that
/// leaves (whatever that code does: LLVM sinks the alike exits of two tests into one block and
/// then merges the tests).
fn quiet(m: &Module, op: OpId) -> bool {
    let d = m.op(op);
    match d.opcode {
        Opcode::KsIf => d.regions.iter().all(|&r| {
            let leaves = m.region_ends_in(r, |o| {
                matches!(
                    o,
                    Opcode::KsReturn
                        | Opcode::KsBreak
                        | Opcode::KsContinue
                        | Opcode::KsThrow
                        | Opcode::KsAbort
                        | Opcode::KsTailCall
                )
            });
            leaves
                || m.region(r)
                    .blocks
                    .iter()
                    .all(|&b| m.block(b).ops.iter().all(|&op| quiet(m, op)))
        }),
        Opcode::KsYield => true,
        _ => m.is_effect_free(op),
    }
}

fn test_of(m: &Module, cmp: OpId) -> Option<(Subject, Test)> {
    let c = views::CoreCmp::of(m, cmp)?;
    let (lhs, rhs) = (c.lhs(m), c.rhs(m));
    let ty = m.value_type(lhs).int()?;
    let (operand, subject, constant) = match (m.const_int(lhs), m.const_int(rhs)) {
        (None, Some(k)) => (0, lhs, k),
        (Some(k), None) => (1, rhs, k),
        _ => return None,
    };
    let (root, added) = strip_arithmetic(m, subject);
    // An ordered test's bound is where the upper of the two ranges it tells apart starts, so
    // that `i > 39` and `i < 40` test one bound.
    let pred = match operand {
        0 => c.pred(m),
        _ => c.pred(m).swapped(),
    };
    let upper_start = match pred {
        CmpPred::Le | CmpPred::Gt => constant.checked_add(1)?,
        _ => constant,
    };
    let bound = upper_start.checked_sub(added)?;
    let kind = match pred {
        CmpPred::Eq | CmpPred::Ne => {
            let root_ty = m.value_type(root).int().unwrap_or(ty);
            let edge = |k: i128, t: IntTy| k == 0 || k == -1 || k == t.min() || k == t.max();
            match edge(constant, ty) || edge(bound, root_ty) {
                true => TestKind::EdgeEquality,
                false => TestKind::Equality,
            }
        }
        _ => TestKind::Ordered,
    };
    let test = Test {
        cmp,
        operand,
        bound,
        kind,
        loop_condition: in_loop_condition(m, cmp),
    };
    Some((subject_of(m, root), test))
}

/// `v` without the casts and the constants added to or taken from it, and the sum of those.
fn strip_arithmetic(m: &Module, mut v: Value) -> (Value, i128) {
    let mut added: i128 = 0;
    while let ValueDef::Result(op, 0) = m.value(v).def {
        let d = m.op(op);
        let constant = |i: usize| d.operands.get(i).and_then(|&x| m.const_int(x));
        let (next, k) = match d.opcode {
            Opcode::CoreCast if m.value_type(d.operands[0]).is_int() => (d.operands[0], 0),
            Opcode::CoreAdd => match (constant(0), constant(1)) {
                (_, Some(k)) => (d.operands[0], k),
                (Some(k), None) => (d.operands[1], k),
                _ => break,
            },
            Opcode::CoreSub => match constant(1) {
                Some(k) => (d.operands[0], -k),
                None => break,
            },
            _ => break,
        };
        let Some(sum) = added.checked_add(k) else {
            break;
        };
        (v, added) = (next, sum);
    }
    (v, added)
}

/// The subject a value read from memory stands for: the address it was read from, named by the
/// local, or the field and the subject of its base.
fn subject_of(m: &Module, v: Value) -> Subject {
    let Some(op) = m.defining_op(v) else {
        return Subject::Value(v);
    };
    let d = m.op(op);
    match d.opcode {
        Opcode::CoreLoad => Subject::Load(Box::new(subject_of(m, d.operands[0]))),
        Opcode::CoreFieldAddr => match &d.attrs[0] {
            Some(Attr::Str(field)) => {
                Subject::Field(Box::new(subject_of(m, d.operands[0])), field.clone())
            }
            _ => Subject::Value(v),
        },
        Opcode::KsIf => match null_safe_read(m, op, v) {
            Some(read) => subject_of(m, read),
            None => Subject::Value(v),
        },
        _ => Subject::Value(v),
    }
}

/// For `v`, the one result of `ks.if` `op`, which yields a load in one arm and a constant in the
/// other (a field read through a pointer that may be null), the load.
fn null_safe_read(m: &Module, op: OpId, v: Value) -> Option<Value> {
    let d = m.op(op);
    if d.results.as_slice() != [v] {
        return None;
    }
    let constant = |x: Value| {
        m.defining_op(x)
            .is_some_and(|d| matches!(m.op(d).opcode, Opcode::CoreZero | Opcode::CoreConst))
    };
    let (a, b) = (
        m.yielded_value(d.regions[0])?,
        m.yielded_value(d.regions[1])?,
    );
    let (read, other) = if constant(b) { (a, b) } else { (b, a) };
    let is_load = m
        .defining_op(read)
        .is_some_and(|d| m.op(d).opcode == Opcode::CoreLoad);
    (constant(other) && is_load).then_some(read)
}

/// Where the kernel functions' values go: what a test tells of a subject matters only when the
/// subject makes an address or a helper's argument, whose bounds the verifier checks, maybe in
/// a function it is passed to or returned from. (Elsewhere LLVM's range test is the better code:
/// `c >= 'A' && c <= 'Z'` is one test of `c - 65`.)
struct Addressing {
    users: HashMap<Value, Vec<OpId>>,
    /// The loads of each local.
    loads: HashMap<Value, Vec<Value>>,
    /// The direct calls of each function, by symbol.
    calls: HashMap<String, Vec<OpId>>,
    /// The subjects read by a load whose value reaches an address or a helper's argument.
    reaching: HashSet<Subject>,
}

impl Addressing {
    fn of_module(m: &Module) -> Addressing {
        let mut a = Addressing {
            users: HashMap::new(),
            loads: HashMap::new(),
            calls: HashMap::new(),
            reaching: HashSet::new(),
        };
        let mut ops = Vec::new();
        for f in super::kernel_funcs(m) {
            ops.extend(m.collect_nested(f, |_| true));
        }
        for &op in &ops {
            let d = m.op(op);
            for &v in &d.operands {
                a.users.entry(v).or_default().push(op);
            }
            match d.opcode {
                Opcode::CoreLoad if m.is_local(d.operands[0]) => {
                    a.loads.entry(d.operands[0]).or_default().push(d.results[0]);
                }
                Opcode::CoreCall => {
                    if let Some(Attr::Sym(callee)) = m.attr(op, "callee") {
                        a.calls.entry(callee.clone()).or_default().push(op);
                    }
                }
                _ => {}
            }
        }
        for &op in &ops {
            let d = m.op(op);
            if d.opcode == Opcode::CoreLoad && a.flows_to_address(m, d.results[0]) {
                a.reaching.insert(subject_of(m, d.results[0]));
            }
        }
        a
    }

    fn reaches(&self, m: &Module, subject: &Subject) -> bool {
        match subject {
            Subject::Value(v) => self.flows_to_address(m, *v),
            _ => self.reaching.contains(subject),
        }
    }

    /// Whether `v`, or what is computed from it, stored from it into a local, passed from it to
    /// a function or returned from it to a caller, is an index, a pointer offset or a helper's
    /// argument.
    fn flows_to_address(&self, m: &Module, v: Value) -> bool {
        let mut seen = HashSet::new();
        self.flows_from(m, v, &mut seen)
    }

    fn flows_from(&self, m: &Module, v: Value, seen: &mut HashSet<Value>) -> bool {
        if !seen.insert(v) {
            return false;
        }
        let users = self.users.get(&v).into_iter().flatten();
        users.into_iter().any(|&user| {
            let d = m.op(user);
            let position = || d.operands.iter().position(|&x| x == v);
            match d.opcode {
                Opcode::CoreElemAddr | Opcode::CorePtrAdd => d.operands[1] == v,
                Opcode::BpfHelperCall | Opcode::BpfKfuncCall => true,
                Opcode::CoreStore if d.operands[0] == v && m.is_local(d.operands[1]) => self
                    .loads
                    .get(&d.operands[1])
                    .into_iter()
                    .flatten()
                    .any(|&load| self.flows_from(m, load, seen)),
                Opcode::CoreCast
                | Opcode::CoreAdd
                | Opcode::CoreSub
                | Opcode::CoreMul
                | Opcode::CoreAnd
                | Opcode::CoreShl
                | Opcode::CoreSelect
                | Opcode::BpfOpaque => self.flows_from(m, d.results[0], seen),
                Opcode::KsYield => {
                    let parent = m
                        .parent_op(user)
                        .filter(|&p| m.op(p).opcode == Opcode::KsIf);
                    let result = parent
                        .zip(position())
                        .and_then(|(p, i)| m.op(p).results.get(i).copied());
                    result.is_some_and(|r| self.flows_from(m, r, seen))
                }
                Opcode::CoreCall => {
                    let param = match m.attr(user, "callee") {
                        Some(Attr::Sym(callee)) => m.lookup_symbol(callee),
                        _ => None,
                    }
                    .filter(|&callee| !m.op(callee).regions.is_empty())
                    .zip(position())
                    .and_then(|(callee, i)| m.block(m.func_entry(callee)).args.get(i).copied());
                    param.is_some_and(|p| self.flows_from(m, p, seen))
                }
                Opcode::KsReturn => {
                    let f = m.top_level_of(user);
                    let calls = m.symbol(f).and_then(|name| self.calls.get(name));
                    calls.into_iter().flatten().any(|&call| {
                        let result = position().and_then(|i| m.op(call).results.get(i).copied());
                        result.is_some_and(|r| self.flows_from(m, r, seen))
                    })
                }
                _ => false,
            }
        })
    }
}

/// Whether `op` computes the condition of a `while` loop.
fn in_loop_condition(m: &Module, op: OpId) -> bool {
    m.enclosing(op).iter().any(|&(owner, region)| {
        m.op(owner).opcode == Opcode::KsWhile && m.op(owner).regions[0] == region
    })
}
