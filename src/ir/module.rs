//! The arena that holds a module: ops, SSA values, blocks and regions, addressed by handles.

use super::{EnumValue, Opcode, Traits, Type};
use std::rc::Rc;

macro_rules! handle {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

handle!(
    /// An SSA value: an op result or a block argument.
    Value
);
handle!(OpId);
handle!(BlockId);
handle!(RegionId);

/// A branch target. Branch arguments are the branching op's operands (see `core.br`).
pub type Successor = BlockId;

/// A source position: file index into `Module::files`, 1-based line and column; line 0 is unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Loc {
    pub file: u32,
    pub line: u32,
    pub col: u32,
}

/// Attribute values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attr {
    Int(i128),
    Bool(bool),
    Str(Vec<u8>),
    /// A value of one of the closed vocabularies (`enum(NAME)` in the specs).
    Enum(EnumValue),
    Sym(String),
    Type(Type),
    Fields(Vec<(String, Type)>),
    List(Vec<Attr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueDef {
    Result(OpId, u32),
    Arg(BlockId, u32),
}

#[derive(Clone, Debug)]
pub struct ValueData {
    pub ty: Type,
    pub def: ValueDef,
    /// Source name for function parameters (printed `%name`, and kept for debug info).
    pub name: Option<Rc<str>>,
}

#[derive(Clone, Debug)]
pub struct OpData {
    pub opcode: Opcode,
    pub operands: Vec<Value>,
    pub results: Vec<Value>,
    /// One slot per attribute of the spec, in spec order; `None` for an absent optional one.
    pub attrs: Vec<Option<Attr>>,
    pub regions: Vec<RegionId>,
    pub successors: Vec<Successor>,
    pub loc: Loc,
    pub parent: Option<BlockId>,
}

#[derive(Clone, Debug, Default)]
pub struct BlockData {
    pub args: Vec<Value>,
    pub ops: Vec<OpId>,
    pub parent: Option<RegionId>,
}

#[derive(Clone, Debug, Default)]
pub struct RegionData {
    pub blocks: Vec<BlockId>,
    pub parent: Option<OpId>,
}

/// A module: source file names (for locations) and a body block of module-level ops.
#[derive(Clone, Debug)]
pub struct Module {
    pub files: Vec<String>,
    values: Vec<ValueData>,
    ops: Vec<OpData>,
    blocks: Vec<BlockData>,
    regions: Vec<RegionData>,
    pub body: BlockId,
}

impl Default for Module {
    fn default() -> Self {
        Module::new()
    }
}

impl Module {
    pub fn new() -> Module {
        let mut m = Module {
            files: Vec::new(),
            values: Vec::new(),
            ops: Vec::new(),
            blocks: Vec::new(),
            regions: Vec::new(),
            body: BlockId(0),
        };
        m.body = m.new_block(None);
        m
    }

    pub fn op(&self, id: OpId) -> &OpData {
        &self.ops[id.index()]
    }

    pub fn op_mut(&mut self, id: OpId) -> &mut OpData {
        &mut self.ops[id.index()]
    }

    pub fn block(&self, id: BlockId) -> &BlockData {
        &self.blocks[id.index()]
    }

    pub fn block_mut(&mut self, id: BlockId) -> &mut BlockData {
        &mut self.blocks[id.index()]
    }

    pub fn region(&self, id: RegionId) -> &RegionData {
        &self.regions[id.index()]
    }

    pub fn region_mut(&mut self, id: RegionId) -> &mut RegionData {
        &mut self.regions[id.index()]
    }

    pub fn value(&self, v: Value) -> &ValueData {
        &self.values[v.index()]
    }

    pub fn value_type(&self, v: Value) -> &Type {
        &self.values[v.index()].ty
    }

    pub fn set_value_type(&mut self, v: Value, ty: Type) {
        self.values[v.index()].ty = ty;
    }

    pub fn set_value_name(&mut self, v: Value, name: Option<Rc<str>>) {
        self.values[v.index()].name = name;
    }

    pub fn value_count(&self) -> usize {
        self.values.len()
    }

    pub fn new_value(&mut self, ty: Type, def: ValueDef) -> Value {
        self.values.push(ValueData {
            ty,
            def,
            name: None,
        });
        Value(self.values.len() as u32 - 1)
    }

    pub fn new_block(&mut self, parent: Option<RegionId>) -> BlockId {
        self.blocks.push(BlockData {
            args: Vec::new(),
            ops: Vec::new(),
            parent,
        });
        let b = BlockId(self.blocks.len() as u32 - 1);
        if let Some(r) = parent {
            self.regions[r.index()].blocks.push(b);
        }
        b
    }

    pub fn new_region(&mut self, parent: Option<OpId>) -> RegionId {
        self.regions.push(RegionData {
            blocks: Vec::new(),
            parent,
        });
        RegionId(self.regions.len() as u32 - 1)
    }

    pub fn add_block_arg(&mut self, b: BlockId, ty: Type) -> Value {
        let idx = self.blocks[b.index()].args.len() as u32;
        let v = self.new_value(ty, ValueDef::Arg(b, idx));
        self.blocks[b.index()].args.push(v);
        v
    }

    /// Creates an op that belongs to no block yet; `regions` empty regions are attached.
    #[allow(clippy::too_many_arguments)] // one per part of an op
    pub fn create_op(
        &mut self,
        opcode: Opcode,
        operands: Vec<Value>,
        result_types: Vec<Type>,
        attrs: Vec<Option<Attr>>,
        regions: usize,
        successors: Vec<Successor>,
        loc: Loc,
    ) -> OpId {
        let id = OpId(self.ops.len() as u32);
        self.ops.push(OpData {
            opcode,
            operands,
            results: Vec::new(),
            attrs,
            regions: Vec::new(),
            successors,
            loc,
            parent: None,
        });
        let results = result_types
            .into_iter()
            .enumerate()
            .map(|(i, t)| self.new_value(t, ValueDef::Result(id, i as u32)))
            .collect();
        self.ops[id.index()].results = results;
        let regions = (0..regions).map(|_| self.new_region(Some(id))).collect();
        self.ops[id.index()].regions = regions;
        id
    }

    /// Places a parentless op into a block at `pos` (or at the end).
    pub fn place_op(&mut self, op: OpId, block: BlockId, pos: Option<usize>) {
        self.ops[op.index()].parent = Some(block);
        let ops = &mut self.blocks[block.index()].ops;
        match pos {
            Some(p) => ops.insert(p, op),
            None => ops.push(op),
        }
    }

    /// Moves every op of block `from` to the end of block `to`, in order.
    pub fn move_ops(&mut self, from: BlockId, to: BlockId) {
        let ops = std::mem::take(&mut self.blocks[from.index()].ops);
        for &op in &ops {
            self.ops[op.index()].parent = Some(to);
        }
        self.blocks[to.index()].ops.extend(ops);
    }

    /// Takes an op out of its block (it stays in the arena, unreachable).
    pub fn detach_op(&mut self, op: OpId) {
        if let Some(b) = self.ops[op.index()].parent.take() {
            self.blocks[b.index()].ops.retain(|&o| o != op);
        }
    }

    /// Detaches many ops at once: one pass over each block they leave (detaching them one by
    /// one rescans the block each time, quadratic in a module of 100k functions).
    pub fn detach_ops(&mut self, ops: &[OpId]) {
        let gone: std::collections::HashSet<OpId> = ops.iter().copied().collect();
        let mut blocks = Vec::new();
        for &op in ops {
            if let Some(b) = self.ops[op.index()].parent.take() {
                blocks.push(b);
            }
        }
        blocks.sort_unstable_by_key(|b| b.index());
        blocks.dedup();
        for b in blocks {
            self.blocks[b.index()].ops.retain(|o| !gone.contains(o));
        }
    }

    pub fn attr(&self, op: OpId, name: &str) -> Option<&Attr> {
        let o = self.op(op);
        o.opcode
            .info()
            .attr_index(name)
            .and_then(|i| o.attrs[i].as_ref())
    }

    pub fn set_attr(&mut self, op: OpId, name: &str, value: Option<Attr>) {
        let i = self
            .op(op)
            .opcode
            .info()
            .attr_index(name)
            .unwrap_or_else(|| panic!("{} has no attribute {name}", self.op(op).opcode.name()));
        self.ops[op.index()].attrs[i] = value;
    }

    /// The `name` symbol of a module-level op.
    pub fn symbol(&self, op: OpId) -> Option<&str> {
        match self.attr(op, "name") {
            Some(Attr::Sym(s)) => Some(s),
            _ => None,
        }
    }

    /// Module-level ops in order.
    pub fn top_ops(&self) -> &[OpId] {
        &self.blocks[self.body.index()].ops
    }

    /// The module-level op declaring `name`.
    pub fn lookup_symbol(&self, name: &str) -> Option<OpId> {
        self.top_ops()
            .iter()
            .copied()
            .find(|&o| self.symbol(o) == Some(name))
    }

    pub fn funcs(&self) -> impl Iterator<Item = OpId> + '_ {
        self.top_ops()
            .iter()
            .copied()
            .filter(|&o| self.op(o).opcode == Opcode::KsFunc)
    }

    /// The op that owns the region containing `block`.
    pub fn block_owner(&self, block: BlockId) -> Option<OpId> {
        self.block(block).parent.and_then(|r| self.region(r).parent)
    }

    /// The op enclosing `op` (None at module level).
    pub fn parent_op(&self, op: OpId) -> Option<OpId> {
        self.op(op).parent.and_then(|b| self.block_owner(b))
    }

    /// Whether `op` lies somewhere inside `outer` (in one of its regions, at any depth).
    pub fn is_nested_in(&self, op: OpId, outer: OpId) -> bool {
        let mut at = self.parent_op(op);
        while let Some(p) = at {
            if p == outer {
                return true;
            }
            at = self.parent_op(p);
        }
        false
    }

    /// The ops enclosing `op`, innermost first, each with the region of it `op` lies in.
    pub fn enclosing(&self, op: OpId) -> Vec<(OpId, RegionId)> {
        let mut out = Vec::new();
        let mut cur = op;
        while let Some(region) = self.op(cur).parent.and_then(|b| self.block(b).parent) {
            let Some(owner) = self.region(region).parent else {
                break;
            };
            out.push((owner, region));
            cur = owner;
        }
        out
    }

    /// True when `a` and `b` lie in different arms of one `if` or `switch`: no run reaches both.
    pub fn in_exclusive_arms(&self, a: OpId, b: OpId) -> bool {
        let outer_b = self.enclosing(b);
        self.enclosing(a).iter().find_map(|&(owner, region)| {
            outer_b
                .iter()
                .find(|&&(o, _)| o == owner)
                .map(|&(_, other)| {
                    other != region
                        && matches!(self.op(owner).opcode, Opcode::KsIf | Opcode::KsSwitch)
                })
        }) == Some(true)
    }

    /// The module-level op (function, usually) that contains `op`.
    pub fn top_level_of(&self, mut op: OpId) -> OpId {
        while let Some(p) = self.parent_op(op) {
            op = p;
        }
        op
    }

    /// Every op nested in a region, in pre-order (an op before the ops of its regions).
    pub fn walk_region(&self, region: RegionId, f: &mut dyn FnMut(OpId)) {
        let mut stack: Vec<OpId> = Vec::new();
        for &b in self.region(region).blocks.iter().rev() {
            stack.extend(self.block(b).ops.iter().rev());
        }
        while let Some(op) = stack.pop() {
            f(op);
            for &r in self.op(op).regions.iter().rev() {
                for &b in self.region(r).blocks.iter().rev() {
                    stack.extend(self.block(b).ops.iter().rev());
                }
            }
        }
    }

    /// Every op nested in `op`'s regions, in pre-order.
    pub fn walk_nested(&self, op: OpId, f: &mut dyn FnMut(OpId)) {
        for &r in &self.op(op).regions {
            self.walk_region(r, f);
        }
    }

    pub fn is_terminator(&self, op: OpId) -> bool {
        self.op(op).opcode.has(Traits::TERMINATOR)
    }

    /// The block holding `op` and its index there.
    /// Whether `a` runs before `b` on every path through structured IR: `a` precedes, in its
    /// own block, `b` or an op that encloses `b`.
    pub fn precedes_structurally(&self, a: OpId, b: OpId) -> bool {
        let Some((block, at)) = self.position(a) else {
            return false;
        };
        let mut cur = b;
        loop {
            if let Some((bb, i)) = self.position(cur) {
                if bb == block {
                    return at < i;
                }
            }
            match self.parent_op(cur) {
                Some(p) => cur = p,
                None => return false,
            }
        }
    }

    pub fn position(&self, op: OpId) -> Option<(BlockId, usize)> {
        let b = self.op(op).parent?;
        self.block(b)
            .ops
            .iter()
            .position(|&o| o == op)
            .map(|i| (b, i))
    }

    /// A builder that inserts right before `op`, at `op`'s source location.
    pub fn builder_before(&mut self, op: OpId) -> Builder<'_> {
        let (block, at) = self.position(op).expect("the op is in a block");
        let loc = self.op(op).loc;
        Builder {
            module: self,
            block,
            at: Some(at),
            loc,
        }
    }

    /// A builder that inserts right after `op`, at `op`'s source location.
    pub fn builder_after(&mut self, op: OpId) -> Builder<'_> {
        let mut b = self.builder_before(op);
        b.at = b.at.map(|at| at + 1);
        b
    }

    /// The one block of a structured region, when it has no block arguments.
    pub fn sole_block(&self, r: RegionId) -> Option<BlockId> {
        match self.region(r).blocks[..] {
            [b] if self.block(b).args.is_empty() => Some(b),
            _ => None,
        }
    }

    /// The single value a structured region ends by yielding (`ks.yield %v`), if it does.
    pub fn yielded_value(&self, r: RegionId) -> Option<Value> {
        let last = *self.block(self.sole_block(r)?).ops.last()?;
        let d = self.op(last);
        (d.opcode == Opcode::KsYield && d.operands.len() == 1).then(|| d.operands[0])
    }

    /// The op whose result `v` is (none for a block argument).
    pub fn defining_op(&self, v: Value) -> Option<OpId> {
        match self.value(v).def {
            ValueDef::Result(op, _) => Some(op),
            ValueDef::Arg(..) => None,
        }
    }

    /// The value of an integer constant, through casts and negations.
    pub fn const_int(&self, v: Value) -> Option<i128> {
        let ValueDef::Result(op, _) = self.value(v).def else {
            return None;
        };
        let d = self.op(op);
        match d.opcode {
            Opcode::CoreConst => match self.attr(op, "value") {
                Some(Attr::Int(i)) => Some(*i),
                _ => None,
            },
            Opcode::CoreCast => self.const_int(d.operands[0]),
            Opcode::CoreNeg => self.const_int(d.operands[0]).map(|v| -v),
            // Sums and products of constants (an unrolled loop's `6 + i`), when the result's
            // type holds them: a wrapped one is left to run time.
            Opcode::CoreAdd | Opcode::CoreSub | Opcode::CoreMul => {
                let (a, b) = (
                    self.const_int(d.operands[0])?,
                    self.const_int(d.operands[1])?,
                );
                let r = match d.opcode {
                    Opcode::CoreAdd => a.checked_add(b)?,
                    Opcode::CoreSub => a.checked_sub(b)?,
                    _ => a.checked_mul(b)?,
                };
                let Type::Int(t) = self.value_type(v) else {
                    return None;
                };
                let bits = t.bits();
                let (low, high) = if t.signed() {
                    (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
                } else {
                    (0, (1i128 << bits) - 1)
                };
                (low..=high).contains(&r).then_some(r)
            }
            _ => None,
        }
    }

    /// Whether `v` is the address of a local variable (a `core.local`).
    pub fn is_local(&self, v: Value) -> bool {
        matches!(self.value(v).def, ValueDef::Result(op, _) if self.op(op).opcode == Opcode::CoreLocal)
    }

    /// The entry block of a function's body.
    pub fn func_entry(&self, func: OpId) -> BlockId {
        self.region(self.op(func).regions[0]).blocks[0]
    }

    /// Replaces `op` by values computed before it: every use of its results inside the enclosing
    /// module-level op is redirected to `replacements`, and `op` is detached.
    pub fn replace_op(&mut self, op: OpId, replacements: &[Value]) {
        let top = self.top_level_of(op);
        let results = self.op(op).results.clone();
        for (&from, &to) in results.iter().zip(replacements) {
            self.replace_uses_in(top, from, to);
        }
        self.detach_op(op);
    }

    /// True when `op` only computes or reads: with its results unused, dropping it loses nothing.
    pub fn is_effect_free(&self, op: OpId) -> bool {
        let d = self.op(op);
        d.regions.is_empty()
            && (d.opcode.has(Traits::PURE)
                || d.opcode.has(Traits::READS) && !d.opcode.has(Traits::WRITES))
    }

    /// Detaches the op defining `v` when it is effect-free and nothing in its function uses its
    /// results any more; then the ops defining its operands, likewise.
    /// How many operands of ops in `v`'s function name `v`.
    pub fn use_count(&self, v: Value) -> usize {
        let scope = match self.value(v).def {
            ValueDef::Result(op, _) => self.top_level_of(op),
            ValueDef::Arg(b, _) => match self.block_owner(b) {
                Some(op) => self.top_level_of(op),
                None => return 0,
            },
        };
        self.uses_within(scope, v)
    }

    /// The ops among `op` and the ops inside it that use each value, once per use.
    pub fn users_within(&self, op: OpId) -> std::collections::HashMap<Value, Vec<OpId>> {
        let mut users: std::collections::HashMap<Value, Vec<OpId>> = Default::default();
        for o in self.collect_nested(op, |_| true) {
            for &v in &self.op(o).operands {
                users.entry(v).or_default().push(o);
            }
        }
        users
    }

    /// How many operands of `op` and of the ops inside it name `v`.
    pub fn uses_within(&self, op: OpId, v: Value) -> usize {
        let count = |o: OpId| self.op(o).operands.iter().filter(|&&x| x == v).count();
        let mut uses = count(op);
        self.walk_nested(op, &mut |o| uses += count(o));
        uses
    }

    pub fn erase_if_unused(&mut self, v: Value) {
        let ValueDef::Result(op, _) = self.value(v).def else {
            return;
        };
        if self.op(op).parent.is_none() || !self.is_effect_free(op) {
            return;
        }
        let results = self.op(op).results.clone();
        let mut used = false;
        self.walk_nested(self.top_level_of(op), &mut |o| {
            used |= self.op(o).operands.iter().any(|x| results.contains(x))
        });
        if used {
            return;
        }
        self.detach_op(op);
        for operand in self.op(op).operands.clone() {
            self.erase_if_unused(operand);
        }
    }

    /// True when every block of region `r` ends in an op whose opcode satisfies `pred`.
    pub fn region_ends_in(&self, r: RegionId, pred: impl Fn(Opcode) -> bool) -> bool {
        self.region(r).blocks.iter().all(|&b| {
            self.block(b)
                .ops
                .last()
                .is_some_and(|&o| pred(self.op(o).opcode))
        })
    }

    /// The ops nested in `op` (pre-order) that satisfy `pred`, collected before any rewriting.
    pub fn collect_nested(&self, op: OpId, pred: impl Fn(&OpData) -> bool) -> Vec<OpId> {
        let mut out = Vec::new();
        self.walk_nested(op, &mut |o| {
            if pred(self.op(o)) {
                out.push(o)
            }
        });
        out
    }

    /// A deep copy of `op` (regions, blocks and nested ops included), not placed in any block.
    /// Operands defined outside `op` are renamed through `vmap` (or kept); the copy's own values
    /// are added to it.
    pub fn clone_op(
        &mut self,
        op: OpId,
        vmap: &mut std::collections::HashMap<Value, Value>,
    ) -> OpId {
        let d = self.op(op).clone();
        let operands = d
            .operands
            .iter()
            .map(|v| *vmap.get(v).unwrap_or(v))
            .collect();
        let tys = d
            .results
            .iter()
            .map(|&r| self.value_type(r).clone())
            .collect();
        let new = self.create_op(
            d.opcode,
            operands,
            tys,
            d.attrs.clone(),
            0,
            Vec::new(),
            d.loc,
        );
        for (o, n) in d.results.iter().zip(self.op(new).results.clone()) {
            vmap.insert(*o, n);
        }
        let mut bmap = std::collections::HashMap::new();
        for &r in &d.regions {
            let nr = self.new_region(Some(new));
            self.ops[new.index()].regions.push(nr);
            for &b in &self.region(r).blocks.clone() {
                let nb = self.new_block(Some(nr));
                bmap.insert(b, nb);
                for a in self.block(b).args.clone() {
                    let t = self.value_type(a).clone();
                    let na = self.add_block_arg(nb, t);
                    vmap.insert(a, na);
                }
            }
            for &b in &self.region(r).blocks.clone() {
                for o in self.block(b).ops.clone() {
                    let c = self.clone_op(o, vmap);
                    self.place_op(c, bmap[&b], None);
                }
            }
        }
        // Successors of ops inside the copy point at the copied blocks.
        let mut inner = Vec::new();
        self.walk_nested(new, &mut |o| inner.push(o));
        for o in inner {
            for s in &mut self.ops[o.index()].successors {
                if let Some(&nb) = bmap.get(s) {
                    *s = nb;
                }
            }
        }
        new
    }

    /// True when `v` is defined inside one of `op`'s regions.
    pub fn defined_within(&self, v: Value, op: OpId) -> bool {
        let mut block = match self.value(v).def {
            ValueDef::Result(o, _) => self.op(o).parent,
            ValueDef::Arg(b, _) => Some(b),
        };
        while let Some(b) = block {
            match self.block_owner(b) {
                Some(owner) if owner == op => return true,
                Some(owner) => block = self.op(owner).parent,
                None => return false,
            }
        }
        false
    }

    /// Replaces every use of `from` by `to` inside `op`'s regions (and `op` itself).
    pub fn replace_uses_in(&mut self, op: OpId, from: Value, to: Value) {
        let mut ids = vec![op];
        self.walk_nested(op, &mut |o| ids.push(o));
        for o in ids {
            for v in &mut self.ops[o.index()].operands {
                if *v == from {
                    *v = to;
                }
            }
        }
    }
}

/// Appends ops at an insertion point with a current source location.
pub struct Builder<'m> {
    pub module: &'m mut Module,
    pub block: BlockId,
    /// Insert before this index of the block instead of appending.
    pub at: Option<usize>,
    pub loc: Loc,
}

impl<'m> Builder<'m> {
    pub fn new(module: &'m mut Module, block: BlockId) -> Self {
        Builder {
            module,
            block,
            at: None,
            loc: Loc::default(),
        }
    }

    /// `v` as type `to`: `v` itself when it has that type already, else a `core.cast`.
    pub fn cast_to(&mut self, v: Value, to: Type) -> Value {
        if *self.module.value_type(v) == to {
            v
        } else {
            self.core_cast(v, to)
        }
    }

    /// Creates an op at the insertion point. Each region gets an empty entry block.
    pub fn insert(
        &mut self,
        opcode: Opcode,
        operands: Vec<Value>,
        result_types: Vec<Type>,
        attrs: Vec<Option<Attr>>,
        regions: usize,
        successors: Vec<Successor>,
    ) -> OpId {
        let op = self.module.create_op(
            opcode,
            operands,
            result_types,
            attrs,
            regions,
            successors,
            self.loc,
        );
        for i in 0..regions {
            let r = self.module.op(op).regions[i];
            self.module.new_block(Some(r));
        }
        self.module.place_op(op, self.block, self.at);
        if let Some(a) = &mut self.at {
            *a += 1;
        }
        op
    }

    /// Moves the insertion point to the end of a block.
    pub fn set_block(&mut self, block: BlockId) {
        self.block = block;
        self.at = None;
    }

    /// `if (cond) { abort(message) }` at the insertion point, the abort at the builder's location
    /// (a compiler-inserted check, §13.4); the insertion point stays after the `if`.
    pub fn abort_if(&mut self, cond: Value, message: &[u8]) {
        let check = self.ks_if(cond, None, &[]);
        let fail = self.entry(check, 0);
        let mut fb = Builder {
            module: &mut *self.module,
            block: fail,
            at: None,
            loc: self.loc,
        };
        fb.ks_abort(message.to_vec());
    }

    /// The entry block of region `i` of `op`.
    pub fn entry(&self, op: OpId, i: usize) -> BlockId {
        self.module.region(self.module.op(op).regions[i]).blocks[0]
    }

    /// True when the current block already ends in a terminator.
    pub fn terminated(&self) -> bool {
        self.module
            .block(self.block)
            .ops
            .last()
            .is_some_and(|&o| self.module.is_terminator(o))
    }
}
