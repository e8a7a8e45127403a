//! The module verifier: the generic rules every op's spec implies (arity, type constraints,
//! attributes, regions, successors, terminators, target rules), value scoping and dominance, and
//! the op-specific hooks in `hooks.rs` that specs name with `verify:`.

pub(crate) mod hooks;

use super::cfg::{reverse_postorder, successors_of};
use super::ops::{OpInfo, Traits};
use super::*;
use crate::vocab::Target;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    pub op: OpId,
    pub message: String,
}

pub struct Verifier<'m> {
    pub module: &'m Module,
    pub errors: Vec<VerifyError>,
    pub symbols: HashMap<&'m str, OpId>,
    /// The function being verified.
    pub func: Option<OpId>,
}

/// The values visible at a point, with an undo log: entering a block adds its definitions,
/// leaving it takes them back, so no scope is ever copied.
#[derive(Default)]
struct Scope {
    visible: HashSet<Value>,
    added: Vec<Value>,
}

impl Scope {
    fn contains(&self, v: Value) -> bool {
        self.visible.contains(&v)
    }

    fn extend(&mut self, values: impl IntoIterator<Item = Value>) {
        for v in values {
            if self.visible.insert(v) {
                self.added.push(v);
            }
        }
    }

    fn mark(&self) -> usize {
        self.added.len()
    }

    fn undo(&mut self, mark: usize) {
        for v in self.added.drain(mark..) {
            self.visible.remove(&v);
        }
    }
}

/// Verifies a module; an empty list means it is well formed.
pub fn verify_module(m: &Module) -> Vec<VerifyError> {
    let mut v = Verifier {
        module: m,
        errors: Vec::new(),
        symbols: HashMap::new(),
        func: None,
    };
    for &op in m.top_ops() {
        if let Some(name) = m.symbol(op) {
            if v.symbols.insert(name, op).is_some() {
                v.error(op, format!("symbol @{name} is defined twice"));
            }
        }
    }
    for &op in m.top_ops() {
        if !m.op(op).opcode.has(Traits::MODULE_LEVEL) {
            v.error(
                op,
                "only declarations and functions may appear at module level",
            );
        }
        v.func = (m.op(op).opcode == Opcode::KsFunc).then_some(op);
        v.op_tree(op, &mut Scope::default());
    }
    v.errors
}

impl<'m> Verifier<'m> {
    pub fn error(&mut self, op: OpId, message: impl Into<String>) {
        self.errors.push(VerifyError {
            op,
            message: message.into(),
        });
    }

    pub fn ty(&self, v: Value) -> &'m Type {
        self.module.value_type(v)
    }

    /// The `target` of the function being verified.
    pub fn target(&self) -> Option<Target> {
        // By name, not through the view: the function's own attributes may be what is invalid.
        match self.module.attr(self.func?, "target") {
            Some(Attr::Enum(EnumValue::Target(t))) => Some(*t),
            _ => None,
        }
    }

    /// The module-level op a symbol names, if it has the expected opcode.
    pub fn symbol_op(&self, name: &str, opcode: Opcode) -> Option<OpId> {
        self.symbols
            .get(name)
            .copied()
            .filter(|&o| self.module.op(o).opcode == opcode)
    }

    /// Checks an op and, recursively, its regions. `visible` holds the values defined outside.
    fn op_tree(&mut self, op: OpId, visible: &mut Scope) {
        let m = self.module;
        // Hooks rely on the spec's shape (arity, attributes, regions): run them only on ops that have it.
        let errors_before = self.errors.len();
        self.generic(op);
        if self.errors.len() == errors_before {
            super::ops::run_verify_hook(self, op);
        }
        let data = m.op(op);
        if data.opcode.has(Traits::ISOLATED) {
            let mut own = Scope::default();
            for &r in &data.regions {
                self.region(r, &mut own);
            }
        } else {
            for &r in &data.regions {
                self.region(r, visible);
            }
        }
    }

    /// Checks a region's blocks with `scope` holding the values defined outside; leaves `scope`
    /// as it found it. A structured region's single block sees its own earlier definitions; a
    /// CFG region's blocks are visited in dominator-tree order, each seeing the definitions of
    /// the blocks that dominate it (one walk, so deep nests and long chains stay linear).
    fn region(&mut self, r: RegionId, scope: &mut Scope) {
        let m = self.module;
        let blocks = &m.region(r).blocks;
        if blocks.is_empty() {
            if let Some(p) = m.region(r).parent {
                self.error(p, "a region needs at least one block");
            }
            return;
        }
        let in_func_body = m
            .region(r)
            .parent
            .is_some_and(|p| m.op(p).opcode == Opcode::KsFunc);
        if blocks.len() == 1 {
            let mark = scope.mark();
            self.block(r, blocks[0], true, false, in_func_body, scope);
            scope.undo(mark);
            return;
        }
        let doms = dominators(m, r);
        let mut children: HashMap<BlockId, Vec<BlockId>> = HashMap::new();
        for &b in blocks {
            if let Some(&d) = doms.get(&b).filter(|&&d| d != b) {
                children.entry(d).or_default().push(b);
            }
        }
        // Preorder over the dominator tree; a block's definitions stay visible for its subtree.
        let mut stack = vec![(blocks[0], None)];
        while let Some((b, mark)) = stack.pop() {
            if let Some(mark) = mark {
                scope.undo(mark);
                continue;
            }
            let mark = scope.mark();
            self.block(r, b, true, true, in_func_body, scope);
            stack.push((b, Some(mark)));
            for &c in children.get(&b).into_iter().flatten().rev() {
                stack.push((c, None));
            }
        }
        // Like LLVM, dominance means nothing in a block no path reaches.
        for &b in blocks.iter().filter(|b| !doms.contains_key(b)) {
            let mark = scope.mark();
            self.block(r, b, false, true, in_func_body, scope);
            scope.undo(mark);
        }
    }

    /// Checks block `b` of region `r`, adding its arguments and results to `scope` (the caller
    /// undoes them). `checked`: operands must be in scope.
    fn block(
        &mut self,
        r: RegionId,
        b: BlockId,
        checked: bool,
        multi: bool,
        in_func_body: bool,
        scope: &mut Scope,
    ) {
        let m = self.module;
        scope.extend(m.block(b).args.iter().copied());
        let ops = &m.block(b).ops;
        for (i, &op) in ops.iter().enumerate() {
            for (k, &v) in m.op(op).operands.iter().enumerate() {
                if checked && !scope.contains(v) {
                    self.error(op, format!("operand #{k} is not defined before this use"));
                }
            }
            if m.is_terminator(op) && i + 1 != ops.len() {
                self.error(op, "a terminator must be the last op of its block");
            }
            for &s in &m.op(op).successors {
                if m.block(s).parent != Some(r) {
                    self.error(op, "a successor must be a block of the same region");
                }
            }
            self.op_tree(op, scope);
            scope.extend(m.op(op).results.iter().copied());
        }
        let ends = ops.last().is_some_and(|&o| m.is_terminator(o));
        if (multi || in_func_body) && !ends {
            let owner = ops.last().copied().or(m.region(r).parent);
            if let Some(o) = owner {
                self.error(
                    o,
                    "a block of a function body or CFG region must end in a terminator",
                );
            }
        }
    }

    /// The rules every spec implies.
    fn generic(&mut self, op: OpId) {
        let m = self.module;
        let data = m.op(op);
        let info: &OpInfo = data.opcode.info();
        let (fixed, variadic) = OpInfo::arity(info.operands);
        let n = data.operands.len();
        if n < fixed || (!variadic && n != fixed) {
            self.error(
                op,
                format!(
                    "expects {}{} operand{}, got {n}",
                    if variadic { "at least " } else { "" },
                    fixed,
                    if fixed == 1 { "" } else { "s" }
                ),
            );
            return;
        }
        for (i, &v) in data.operands.iter().enumerate() {
            let slot = &info.operands[i.min(info.operands.len() - 1)];
            if !slot.constraint.accepts(m.value_type(v)) {
                self.error(
                    op,
                    format!(
                        "operand `{}` must be {}, got {}",
                        slot.name,
                        slot.constraint.describe(),
                        m.value_type(v)
                    ),
                );
            }
        }
        let (rfixed, rvariadic) = OpInfo::arity(info.results);
        let rn = data.results.len();
        if rn < rfixed || (!rvariadic && rn != rfixed) {
            self.error(
                op,
                format!(
                    "expects {}{} result{}, got {rn}",
                    if rvariadic { "at least " } else { "" },
                    rfixed,
                    if rfixed == 1 { "" } else { "s" }
                ),
            );
            return;
        }
        for (i, &v) in data.results.iter().enumerate() {
            let slot = &info.results[i.min(info.results.len() - 1)];
            let t = m.value_type(v);
            match slot.constraint {
                ops::Constraint::SameAs(k)
                    if data.operands.get(k).is_some_and(|&o| m.value_type(o) != t) =>
                {
                    self.error(
                        op,
                        format!(
                            "result `{}` must have the type of operand `{}`",
                            slot.name, info.operands[k].name
                        ),
                    );
                }
                c if !c.accepts(t) => self.error(
                    op,
                    format!("result `{}` must be {}, got {t}", slot.name, c.describe()),
                ),
                _ => {}
            }
        }
        if data.attrs.len() != info.attrs.len() {
            self.error(op, "attribute slots do not match the spec");
            return;
        }
        for (a, spec) in data.attrs.iter().zip(info.attrs) {
            match a {
                None if !spec.optional => {
                    self.error(op, format!("missing attribute `{}`", spec.name))
                }
                Some(a) if !spec.kind.accepts(a) => {
                    self.error(op, format!("attribute `{}` has the wrong kind", spec.name))
                }
                _ => {}
            }
        }
        let nr = data.regions.len();
        let want = info.regions.len();
        if (info.variadic_regions && nr + 1 < want) || (!info.variadic_regions && nr != want) {
            self.error(
                op,
                format!(
                    "expects {}{} region{}, got {nr}",
                    if info.variadic_regions {
                        "at least "
                    } else {
                        ""
                    },
                    if info.variadic_regions {
                        want - 1
                    } else {
                        want
                    },
                    if want == 1 { "" } else { "s" }
                ),
            );
        }
        let ns = data.successors.len();
        let ws = info.successors.len();
        if (info.variadic_successors && ns + 1 < ws) || (!info.variadic_successors && ns != ws) {
            self.error(
                op,
                format!(
                    "expects {ws} successor{}, got {ns}",
                    if ws == 1 { "" } else { "s" }
                ),
            );
        }
        if let Some(target) = self.target() {
            let bad = (data.opcode.has(Traits::KERNEL) || info.dialect == "bpf")
                && target != Target::Bpf
                || (data.opcode.has(Traits::USER) || info.dialect == "host")
                    && target != Target::Host;
            if bad {
                self.error(
                    op,
                    format!("`{}` is not allowed in a {target} function", info.name),
                );
            }
        }
    }
}

/// Immediate dominators of the blocks of a CFG region (entry = first block), by the iterative
/// algorithm of Cooper, Harvey and Kennedy. Unreachable blocks are absent.
pub fn dominators(m: &Module, r: RegionId) -> HashMap<BlockId, BlockId> {
    let order = reverse_postorder(m, r);
    let Some(&entry) = order.first() else {
        return HashMap::new();
    };
    let rpo: HashMap<BlockId, usize> = order.iter().enumerate().map(|(i, &b)| (b, i)).collect();
    let mut preds: HashMap<BlockId, Vec<BlockId>> = HashMap::new();
    for &b in &order {
        for s in successors_of(m, b) {
            preds.entry(s).or_default().push(b);
        }
    }
    let mut idom: HashMap<BlockId, BlockId> = HashMap::new();
    idom.insert(entry, entry);
    let mut changed = true;
    while changed {
        changed = false;
        for &b in order.iter().skip(1) {
            let mut new: Option<BlockId> = None;
            for &p in preds.get(&b).map(|v| v.as_slice()).unwrap_or(&[]) {
                if !idom.contains_key(&p) {
                    continue;
                }
                new = Some(match new {
                    None => p,
                    Some(mut a) => {
                        let mut c = p;
                        while a != c {
                            while rpo[&a] > rpo[&c] {
                                a = idom[&a];
                            }
                            while rpo[&c] > rpo[&a] {
                                c = idom[&c];
                            }
                        }
                        a
                    }
                });
            }
            if let Some(n) = new {
                if idom.get(&b) != Some(&n) {
                    idom.insert(b, n);
                    changed = true;
                }
            }
        }
    }
    idom
}
