//! `match` (§8.6): arms as a switch, an if-chain or a decision on patterns.

use super::*;

impl FnLower<'_, '_, '_> {
    /// Lowers a match (§7.6). In tail position, arms that call programs become tail calls.
    pub fn match_expr(&mut self, e: &Expr, expected: Option<&Ty>, tail: bool) -> Option<Value> {
        let ExprKind::Match { scrutinee, arms } = &e.kind else {
            return None;
        };
        let rty = expected.cloned().unwrap_or_else(|| self.ty(e));
        let results: Vec<Type> = if rty == Ty::Void || rty.is_error() {
            vec![]
        } else {
            vec![self.ir(&rty)]
        };
        let st = self.ty(scrutinee);
        let s = self.rvalue(scrutinee);
        let default = arms
            .iter()
            .position(|a| matches!(a.pattern, Pattern::Default(_)));
        let int_scrutinee = self.int_like(&st).is_some();
        let values: Vec<Option<ConstValue>> = arms
            .iter()
            .map(|a| self.pattern_value(&a.pattern))
            .collect();
        self.at(e.span);
        if int_scrutinee
            && values.iter().zip(arms).all(|(v, a)| {
                v.as_ref().and_then(|c| c.as_int()).is_some()
                    || matches!(a.pattern, Pattern::Default(_))
            })
        {
            let mut cases = Vec::new();
            let mut arm_of_case = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (i, v) in values.iter().enumerate() {
                if let Some(n) = v.as_ref().and_then(|c| c.as_int()) {
                    // The first arm of a value wins (a set: matches may have many thousand arms).
                    if default.is_none_or(|d| i < d) && seen.insert(n) {
                        cases.push(Attr::Int(n));
                        arm_of_case.push(i);
                    }
                }
            }
            let ncases = cases.len();
            let op = self.b().ks_switch(s, cases, &results, ncases + 1);
            for (k, &arm) in arm_of_case.iter().enumerate() {
                let bb = self.entry_of(op, k);
                self.in_block(bb, |fl| fl.arm(&arms[arm].body, &rty, tail));
            }
            let bb = self.entry_of(op, ncases);
            self.in_block(bb, |fl| match default {
                Some(d) => fl.arm(&arms[d].body, &rty, tail),
                None => fl.zero_yield(&rty),
            });
            return self.lw.m.op(op).results.first().copied();
        }
        // Strings and bools: a chain of comparisons, first match wins.
        self.match_chain(s, &st, arms, &values, 0, &rty, tail, &results)
    }

    #[allow(clippy::too_many_arguments)]
    pub(in crate::lower::expr) fn match_chain(
        &mut self,
        s: Value,
        st: &Ty,
        arms: &[MatchArm],
        values: &[Option<ConstValue>],
        i: usize,
        rty: &Ty,
        tail: bool,
        results: &[Type],
    ) -> Option<Value> {
        let arm = arms.get(i)?;
        if matches!(arm.pattern, Pattern::Default(_)) {
            // Only reached at the top when the default is first; later defaults end the chain below.
            let t = self.true_value();
            let op = self.b().ks_if(t, None, results);
            let (tb, eb) = (self.entry_of(op, 0), self.entry_of(op, 1));
            self.in_block(tb, |fl| fl.arm(&arm.body, rty, tail));
            self.in_block(eb, |fl| fl.zero_yield(rty));
            return self.lw.m.op(op).results.first().copied();
        }
        let sit = self.lw.m.value_type(s).clone();
        let pv = values[i].clone().unwrap_or(ConstValue::Int(0));
        let pv = self.materialize(&pv, &sit);
        let c = match sit {
            Type::Str(_) => {
                let pv2 = self.convert(pv, &sit);
                self.b().ks_str_eq(s, pv2)
            }
            _ => self.b().core_cmp(s, pv, CmpPred::Eq),
        };
        let _ = st;
        let op = self.b().ks_if(c, None, results);
        let (tb, eb) = (self.entry_of(op, 0), self.entry_of(op, 1));
        self.in_block(tb, |fl| fl.arm(&arm.body, rty, tail));
        let next = arms.get(i + 1);
        self.in_block(eb, |fl| match next {
            None => fl.zero_yield(rty),
            Some(a) if matches!(a.pattern, Pattern::Default(_)) => fl.arm(&a.body, rty, tail),
            Some(_) => {
                let v = fl.match_chain(s, st, arms, values, i + 1, rty, tail, results);
                fl.b().ks_yield(&v.into_iter().collect::<Vec<_>>());
            }
        });
        self.lw.m.op(op).results.first().copied()
    }

    pub(in crate::lower::expr) fn true_value(&mut self) -> Value {
        self.b().core_const(1, Type::Bool)
    }

    pub(in crate::lower::expr) fn zero_yield(&mut self, rty: &Ty) {
        if *rty == Ty::Void || rty.is_error() {
            self.b().ks_yield(&[]);
        } else {
            let t = self.ir(rty);
            let z = self.b().core_zero(t);
            self.b().ks_yield(&[z]);
        }
    }

    pub(in crate::lower) fn pattern_value(&self, p: &Pattern) -> Option<ConstValue> {
        Some(match p {
            Pattern::Int(n, _) => ConstValue::Int(*n),
            Pattern::Str(s, _) => ConstValue::Str(s.clone()),
            Pattern::Char(c, _) => ConstValue::Char(*c),
            Pattern::Bool(b, _) => ConstValue::Bool(*b),
            Pattern::Name(id) => match self.lw.ck.symbols.get(&id.name) {
                Some(Symbol::EnumConst(_, v)) => ConstValue::Int(*v),
                Some(Symbol::Const(i)) => self.lw.ck.const_items[*i].value.clone(),
                _ => {
                    let (_, v) = self.lw.ck.btf.get()?.enumerator(&id.name)?;
                    ConstValue::Int(v as i128)
                }
            },
            Pattern::Default(_) => return None,
        })
    }

    /// One match arm's region: its value yielded, or a tail call / return / throw that leaves.
    pub(in crate::lower::expr) fn arm(&mut self, body: &ArmBody, rty: &Ty, tail: bool) {
        match body {
            ArmBody::Expr(x) => self.arm_value(x, rty, tail),
            ArmBody::Block(b) => self.arm_block(&b.stmts, rty, tail),
        }
    }

    pub(in crate::lower::expr) fn arm_value(&mut self, x: &Expr, rty: &Ty, tail: bool) {
        if tail {
            if let ExprKind::Call { callee, .. } = &x.kind {
                if let Some(target) = self.program_callee(callee) {
                    let Some(Slot::Var { addr }) = self.lookup(&self.params[0].clone()).cloned()
                    else {
                        return;
                    };
                    let pt = self.lw.m.value_type(addr).pointee().unwrap().clone();
                    self.at(x.span);
                    let c = self.b().core_load(addr, pt);
                    self.b().ks_tail_call(c, &target);
                    return;
                }
            }
        }
        if *rty == Ty::Void || rty.is_error() {
            self.expr_stmt(x);
            if !self.terminated() {
                self.b().ks_yield(&[]);
            }
        } else {
            let v = self.coerced(x, rty);
            self.b().ks_yield(&[v]);
        }
    }

    pub(in crate::lower::expr) fn arm_block(&mut self, stmts: &[Stmt], rty: &Ty, tail: bool) {
        let Some((last, init)) = stmts.split_last() else {
            self.zero_yield(rty);
            return;
        };
        self.stmts(init);
        if self.terminated() {
            return;
        }
        match &last.kind {
            StmtKind::Expr(x) => self.arm_value(x, rty, tail),
            StmtKind::If {
                cond: IfCond::Expr(c),
                then,
                els: Some(els),
            } if *rty != Ty::Void => {
                let cv = self.condition(c);
                let t = self.ir(rty);
                let op = self.b().ks_if(cv, None, &[t]);
                let (tb, eb) = (self.entry_of(op, 0), self.entry_of(op, 1));
                self.in_block(tb, |fl| fl.arm_block(&then.stmts, rty, tail));
                self.in_block(eb, |fl| match &**els {
                    ElseBranch::Block(b) => fl.arm_block(&b.stmts, rty, tail),
                    ElseBranch::If(s) => fl.arm_block(std::slice::from_ref(&**s), rty, tail),
                });
                let r = self.lw.m.op(op).results[0];
                self.b().ks_yield(&[r]);
            }
            _ => {
                self.stmts(std::slice::from_ref(last));
                if !self.terminated() {
                    self.zero_yield(rty);
                }
            }
        }
    }
}
