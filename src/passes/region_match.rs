//! Regions that do the same thing but for the values of some constants — the arms of a dispatch
//! that count under different keys (`catch 1 { rejected[1] += 1 } catch 2 { rejected[2] += 1 }`).
//! Such arms can be one arm whose constants come from the dispatched value, as C writes it
//! (`rejected[reason] += 1`): one map lookup instead of one per arm.

use crate::ir::{Attr, BlockId, Module, OpId, Opcode, RegionId, Value};
use std::collections::{HashMap, HashSet};

/// How region `b` matches region `a`: for each constant of `a`, the value of `b`'s constant in
/// the same place.
pub type ConstantPairs = HashMap<Value, i128>;

/// Whether `b` is `a` but for constant values: ops pair up in order (same opcode, attributes and
/// result types; operands defined outside both regions identical, operands defined inside at the
/// same place), nested regions alike. On a match, the constants of `a` with their values in `b`.
pub fn same_but_constants(m: &Module, a: RegionId, b: RegionId) -> Option<ConstantPairs> {
    let mut walk = Matcher {
        m,
        successors: None,
        inside: HashMap::new(),
        counterparts: HashSet::new(),
        constants: HashMap::new(),
    };
    walk.regions(a, b).then_some(walk.constants)
}

/// Whether blocks `a` and `b` do exactly the same: their ops pair up as in
/// [`same_but_constants`], with equal constants, and end in the same branch.
pub fn same_block(m: &Module, a: BlockId, b: BlockId) -> bool {
    let mut walk = Matcher {
        m,
        successors: None,
        inside: HashMap::new(),
        counterparts: HashSet::new(),
        constants: HashMap::new(),
    };
    walk.blocks(a, b)
        && walk
            .constants
            .iter()
            .all(|(&c, &v)| m.const_int(c) == Some(v))
}

/// Whether the blocks reachable from `a` do exactly what those reachable from `b` do: each pair
/// as in [`same_block`], their successors pairing up one to one from `a` and `b` on. The blocks
/// paired, `a`'s first, on a match.
pub fn same_tail(m: &Module, a: BlockId, b: BlockId) -> Option<HashMap<BlockId, BlockId>> {
    let mut walk = Matcher {
        m,
        successors: Some(HashMap::from([(a, b)])),
        inside: HashMap::new(),
        counterparts: HashSet::new(),
        constants: HashMap::new(),
    };
    // Blocks are compared in the order they are reached, so a value's definition pairs up before
    // its uses (a definition dominates them: it lies on the path that reached them).
    let mut order = vec![a];
    let mut next = 0;
    while let Some(&x) = order.get(next) {
        next += 1;
        let y = walk.successors.as_ref()?[&x];
        if !walk.blocks(x, y) {
            return None;
        }
        for s in crate::ir::cfg::successors_of(m, x) {
            if !order.contains(&s) {
                order.push(s);
            }
        }
    }
    let constants_equal = (walk.constants.iter()).all(|(&c, &v)| m.const_int(c) == Some(v));
    constants_equal.then(|| walk.successors.unwrap_or_default())
}

/// How `b` begins as `a` does: the leading ops of their entry blocks that pair up as in
/// [`same_but_constants`] and that `eligible` accepts.
pub struct SharedHead {
    /// How many leading ops pair up.
    pub len: usize,
    /// The constants of `a` among them, with their values in `b`.
    pub constants: ConstantPairs,
    /// The values those ops of `a` define, with their counterparts in `b`.
    pub values: HashMap<Value, Value>,
}

/// The ops `a` and `b` begin with alike but for constants, as far as `eligible` allows.
pub fn shared_head(
    m: &Module,
    a: RegionId,
    b: RegionId,
    eligible: impl Fn(OpId) -> bool,
) -> SharedHead {
    let mut walk = Matcher {
        m,
        successors: None,
        inside: HashMap::new(),
        counterparts: HashSet::new(),
        constants: HashMap::new(),
    };
    let entry = |r: RegionId| m.region(r).blocks.first().map(|&blk| &m.block(blk).ops);
    let len = match (entry(a), entry(b)) {
        (Some(ops_a), Some(ops_b)) => ops_a
            .iter()
            .zip(ops_b)
            .take_while(|&(&p, &q)| eligible(p) && walk.op(p, q))
            .count(),
        _ => 0,
    };
    SharedHead {
        len,
        constants: walk.constants,
        values: walk.inside,
    }
}

struct Matcher<'m> {
    m: &'m Module,
    /// When matching tails, the blocks of `a` with their counterparts in `b`: successors pair up
    /// instead of being equal.
    successors: Option<HashMap<BlockId, BlockId>>,
    /// Values defined inside `a`, with their counterparts in `b`.
    inside: HashMap<Value, Value>,
    /// The values of `b` that are counterparts: they match only their value of `a`.
    counterparts: HashSet<Value>,
    constants: ConstantPairs,
}

impl Matcher<'_> {
    /// Equal successors; when matching tails, successors that pair up one to one.
    fn same_successors(&mut self, a: &[BlockId], b: &[BlockId]) -> bool {
        let Some(pairs) = &mut self.successors else {
            return a == b;
        };
        a.len() == b.len()
            && a.iter().zip(b).all(|(&s, &t)| {
                let taken = pairs.iter().any(|(&x, &y)| y == t && x != s);
                !taken && *pairs.entry(s).or_insert(t) == t
            })
    }

    fn regions(&mut self, a: RegionId, b: RegionId) -> bool {
        let m = self.m;
        let (ba, bb) = (&m.region(a).blocks, &m.region(b).blocks);
        if ba.len() != bb.len() {
            return false;
        }
        ba.iter().zip(bb).all(|(&x, &y)| self.blocks(x, y))
    }

    fn blocks(&mut self, x: BlockId, y: BlockId) -> bool {
        let m = self.m;
        let (args_a, args_b) = (&m.block(x).args, &m.block(y).args);
        if args_a.len() != args_b.len()
            || args_a
                .iter()
                .zip(args_b)
                .any(|(&p, &q)| m.value_type(p) != m.value_type(q))
        {
            return false;
        }
        self.pair(args_a, args_b);
        let (ops_a, ops_b) = (&m.block(x).ops, &m.block(y).ops);
        ops_a.len() == ops_b.len() && ops_a.iter().zip(ops_b).all(|(&p, &q)| self.op(p, q))
    }

    fn pair(&mut self, a: &[Value], b: &[Value]) {
        self.inside.extend(a.iter().copied().zip(b.iter().copied()));
        self.counterparts.extend(b.iter().copied());
    }

    fn op(&mut self, p: OpId, q: OpId) -> bool {
        let m = self.m;
        let (x, y) = (m.op(p), m.op(q));
        if x.opcode != y.opcode
            || x.operands.len() != y.operands.len()
            || x.results.len() != y.results.len()
            || x.regions.len() != y.regions.len()
            || !self.same_successors(&x.successors, &y.successors)
        {
            return false;
        }
        let same_operands =
            x.operands
                .iter()
                .zip(&y.operands)
                .all(|(&u, &v)| match self.inside.get(&u) {
                    Some(&w) => w == v,
                    None => u == v && !self.counterparts.contains(&v),
                });
        let same_types = x
            .results
            .iter()
            .zip(&y.results)
            .all(|(&u, &v)| m.value_type(u) == m.value_type(v));
        if !same_operands || !same_types {
            return false;
        }
        match (x.opcode, &x.attrs[..], &y.attrs[..]) {
            (Opcode::CoreConst, [Some(Attr::Int(_))], [Some(Attr::Int(v))]) => {
                self.constants.insert(x.results[0], *v);
            }
            _ if x.attrs != y.attrs => return false,
            _ => {}
        }
        self.pair(&x.results, &y.results);
        x.regions
            .iter()
            .zip(&y.regions)
            .all(|(&r, &s)| self.regions(r, s))
    }
}
