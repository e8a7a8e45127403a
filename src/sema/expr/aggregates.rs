//! Struct, array and string literals.

use super::*;

impl<'a> Checker<'a, '_> {
    pub(in crate::sema::expr) fn array_literal(
        &mut self,
        cx: &mut FnCtx,
        items: &[Expr],
        span: Span,
        expected: Option<&Ty>,
    ) -> Ty {
        let (elem, len) = match expected {
            Some(Ty::Array(el, n)) => ((**el).clone(), Some(*n)),
            _ => (Ty::Error, None),
        };
        let mut elem_ty = elem.clone();
        for it in items {
            let t = self.expr(cx, it, if elem.is_error() { None } else { Some(&elem) });
            if !matches!(
                it.kind,
                ExprKind::Int(_)
                    | ExprKind::Bool(_)
                    | ExprKind::Char(_)
                    | ExprKind::Str(_)
                    | ExprKind::Null
            ) && self.const_of(it).is_none()
            {
                self.error(
                    Code::E0312,
                    it.span,
                    "array literal elements must be literals",
                );
            }
            if !elem.is_error() {
                self.coerce(it, &t, &elem, Code::E0301);
            } else if elem_ty.is_error() {
                elem_ty = t;
            }
        }
        if let Some(n) = len {
            if items.len() as u64 > n as u64 {
                self.error(
                    Code::E0301,
                    span,
                    format!("{} elements do not fit in an array of {n}", items.len()),
                );
            }
        }
        if elem_ty.is_error() {
            elem_ty = U32;
        }
        match (len, items.len()) {
            (Some(n), _) => Ty::array(elem_ty, n),
            (None, 0 | 1) => Ty::FillArray(Rc::new(elem_ty)),
            (None, k) => Ty::array(elem_ty, k as u32),
        }
    }

    pub(in crate::sema::expr) fn struct_literal(
        &mut self,
        cx: &mut FnCtx,
        name: &Ident,
        fields: &[(Ident, Expr)],
        span: Span,
    ) -> Ty {
        let sid = match self.symbols.get(&name.name) {
            Some(Symbol::Struct(s)) => Some(*s),
            Some(Symbol::Alias(Ty::Struct(s))) => Some(*s),
            _ => self.struct_by_name.get(&name.name).copied().or_else(|| {
                match self.kernel_type(&name.name) {
                    Some(Ty::Struct(s)) => Some(s),
                    _ => None,
                }
            }),
        };
        let Some(sid) = sid else {
            self.error(
                Code::E0112,
                name.span,
                format!("`{}` is not a struct", name.name),
            );
            for (_, v) in fields {
                self.expr(cx, v, None);
            }
            return Ty::Error;
        };
        let mut seen: Vec<&str> = Vec::new();
        for (f, v) in fields {
            if seen.contains(&f.name.as_str()) {
                self.error(
                    Code::E0307,
                    f.span,
                    format!("field `{}` is initialised twice", f.name),
                );
                continue;
            }
            seen.push(&f.name);
            match self.struct_field(sid, &f.name) {
                Some(ft) => {
                    let ft = self.representable_field(sid, f, ft);
                    let t = self.expr(cx, v, Some(&ft));
                    self.coerce(v, &t, &ft, Code::E0301);
                }
                None => {
                    self.error(
                        Code::E0307,
                        f.span,
                        format!("`{}` has no field `{}`", name.name, f.name),
                    );
                    self.expr(cx, v, None);
                }
            }
        }
        let info = &self.structs[sid.0 as usize];
        let optional: &[&str] = if info.name == "perf_options" {
            &[
                "pid",
                "cpu",
                "period",
                "wakeup",
                "inherit",
                "exclude_kernel",
                "exclude_user",
            ]
        } else {
            &[]
        };
        if info.origin != StructOrigin::Kernel {
            let missing: Vec<String> = info
                .fields
                .iter()
                .filter(|f| {
                    !seen.contains(&f.name.as_str()) && !optional.contains(&f.name.as_str())
                })
                .map(|f| f.name.clone())
                .collect();
            if !missing.is_empty() {
                self.error(
                    Code::E0307,
                    span,
                    format!(
                        "missing field{} {}",
                        if missing.len() > 1 { "s" } else { "" },
                        missing
                            .iter()
                            .map(|m| format!("`{m}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        Ty::Struct(sid)
    }

    /// The code a catch pattern stands for: its literal, or the value of the `const` or
    /// enumerator it names when that is a non-negative integer; `None` for `_` (and for a name
    /// that is neither, an error sema reports).
    pub fn catch_code(&mut self, p: &CatchPattern) -> Option<u64> {
        match p {
            CatchPattern::Code(v, _) => Some(*v),
            CatchPattern::Wildcard(_) => None,
            CatchPattern::Named(id) => {
                let value = match self.symbols.get(&id.name).cloned() {
                    Some(Symbol::EnumConst(_, v)) => Some(v),
                    Some(Symbol::Const(_)) => match self.top_level_const(&id.name) {
                        Some((_, ConstValue::Int(v))) => Some(v),
                        _ => None,
                    },
                    _ => self
                        .enums
                        .iter()
                        .find_map(|en| en.variants.iter().find(|v| v.0 == id.name).map(|v| v.1)),
                };
                value.and_then(|v| u64::try_from(v).ok())
            }
        }
    }

    pub(in crate::sema::expr) fn match_expr(
        &mut self,
        cx: &mut FnCtx,
        e: &Expr,
        scrutinee: &Expr,
        arms: &[MatchArm],
    ) -> Ty {
        let tail = std::mem::take(&mut cx.tail_match);
        let st = self.expr(cx, scrutinee, None);
        if arms.is_empty() {
            self.error(Code::E0404, e.span, "a match needs at least one arm");
            return Ty::Error;
        }
        let mut result: Option<Ty> = None;
        let mut has_default = false;
        let mut covered: Vec<i128> = Vec::new();
        let mut all_arms_diverge = true;
        let mut valueless_arm: Option<Span> = None;
        let mut join = crate::sema::stmt::InvalidationJoin::new(cx);
        for arm in arms {
            join.begin(cx);
            self.check_pattern(&arm.pattern, &st, &mut covered);
            if matches!(arm.pattern, Pattern::Default(_)) {
                has_default = true;
            }
            let (t, span, reach) = match &arm.body {
                ArmBody::Expr(
                    x @ Expr {
                        kind: ExprKind::Call { callee, args },
                        ..
                    },
                ) if tail => {
                    self.call_expected = result.clone();
                    let t = self.call(cx, x, callee, args, true);
                    self.call_expected = None;
                    self.expr_types[x.id.0 as usize] = t.clone();
                    (t, x.span, true)
                }
                ArmBody::Expr(x) => {
                    let t = self.expr(cx, x, result.as_ref());
                    let reach = !self.diverging.contains(&x.id);
                    all_arms_diverge &= !reach;
                    join.end(cx, reach);
                    (t, x.span, reach)
                }
                ArmBody::Block(b) => {
                    let (t, reach) = self.arm_block(cx, b, tail);
                    all_arms_diverge &= !reach;
                    join.end(cx, reach);
                    (t, b.span, reach)
                }
            };
            if matches!(t, Ty::Void) {
                // An arm that ends in return/throw has no value and needs none (nor does an
                // `if` tail, whose branches yield); one that completes with a call of a void
                // function is wrong once another arm has a value.
                let valueless = match &arm.body {
                    ArmBody::Expr(_) => Some(span),
                    ArmBody::Block(b) => self.valueless_tail(b),
                };
                if reach {
                    valueless_arm = valueless_arm.or(valueless);
                }
                continue;
            }
            result = match result {
                None => Some(t),
                Some(r) => match self.unify(&r, &t) {
                    Some(u) => Some(u),
                    None => {
                        self.error(
                            Code::E0404,
                            span,
                            format!(
                                "this arm is `{}` but earlier arms are `{}`",
                                self.show(&t),
                                self.show(&r)
                            ),
                        );
                        Some(r)
                    }
                },
            };
        }
        let exhaustive = has_default
            || match &st {
                Ty::Enum(id) => self.enums[id.0 as usize]
                    .variants
                    .iter()
                    .all(|v| covered.contains(&v.1)),
                Ty::Bool => covered.contains(&0) && covered.contains(&1),
                _ => false,
            };
        if !exhaustive {
            self.warning(
                Code::W0002,
                e.span,
                "no arm matches some values and there is no `default`; they yield the zero value",
            );
            // Values no arm names pass through the match unchanged.
            join.begin(cx);
            join.end(cx, true);
        }
        if let (Some(span), Some(r)) = (valueless_arm, &result) {
            if !r.is_error() {
                self.error(
                    Code::E0404,
                    span,
                    format!(
                        "this arm has no value, but the other arms are `{}`",
                        self.show(r)
                    ),
                );
                result = Some(Ty::Error);
            }
        }
        join.finish(cx);
        // Every value reaches an arm and no arm completes: nothing after the match runs.
        if exhaustive && all_arms_diverge {
            self.diverging.insert(e.id);
        }
        result.unwrap_or(Ty::Void)
    }

    /// Where a block arm ends in a call of a void function, on any path through a tail `if`.
    fn valueless_tail(&self, b: &Block) -> Option<Span> {
        match &b.stmts.last()?.kind {
            StmtKind::Expr(e) => (matches!(self.expr_types[e.id.0 as usize], Ty::Void)
                && !self.diverging.contains(&e.id))
            .then_some(e.span),
            StmtKind::If { then, els, .. } => self.valueless_tail(then).or_else(|| {
                let mut els = els.as_deref();
                loop {
                    match els? {
                        ElseBranch::Block(b) => return self.valueless_tail(b),
                        ElseBranch::If(stmt) => match &stmt.kind {
                            StmtKind::If {
                                then, els: next, ..
                            } => {
                                if let Some(span) = self.valueless_tail(then) {
                                    return Some(span);
                                }
                                els = next.as_deref();
                            }
                            _ => return None,
                        },
                    }
                }
            }),
            _ => None,
        }
    }

    pub(in crate::sema::expr) fn check_pattern(
        &mut self,
        p: &Pattern,
        st: &Ty,
        covered: &mut Vec<i128>,
    ) {
        let bad = |me: &mut Self, span: Span, what: String| me.error(Code::E0404, span, what);
        match p {
            Pattern::Default(_) => {}
            Pattern::Int(v, span) => {
                if self.int_like(st).is_none() && !st.is_error() && !matches!(st, Ty::Char) {
                    bad(
                        self,
                        *span,
                        format!("an integer pattern cannot match `{}`", self.show(st)),
                    );
                } else if let Some(t) = self.int_like(st) {
                    if *v < t.min() || *v > t.max() {
                        self.error(
                            Code::E0310,
                            *span,
                            format!("{v} does not fit in `{}`", self.show(st)),
                        );
                    }
                }
                covered.push(*v);
            }
            Pattern::Str(_, span) => {
                if !matches!(st, Ty::Str(_) | Ty::Error) {
                    bad(
                        self,
                        *span,
                        format!("a string pattern cannot match `{}`", self.show(st)),
                    );
                }
            }
            Pattern::Char(c, span) => {
                if !matches!(st, Ty::Char | Ty::Error) && self.int_like(st).is_none() {
                    bad(
                        self,
                        *span,
                        format!("a character pattern cannot match `{}`", self.show(st)),
                    );
                }
                covered.push(*c as i128);
            }
            Pattern::Bool(b, span) => {
                if !matches!(st, Ty::Bool | Ty::Error) {
                    bad(
                        self,
                        *span,
                        format!("a bool pattern cannot match `{}`", self.show(st)),
                    );
                }
                covered.push(*b as i128);
            }
            Pattern::Name(n) => match self.symbols.get(&n.name).cloned() {
                Some(Symbol::EnumConst(_, v)) => covered.push(v),
                Some(Symbol::Const(_)) => {
                    if let Some((_, ConstValue::Int(v))) = self.top_level_const(&n.name) {
                        covered.push(v);
                    }
                }
                _ => {
                    let builtin = self
                        .enums
                        .iter()
                        .find_map(|en| en.variants.iter().find(|v| v.0 == n.name).map(|v| v.1));
                    match builtin {
                        Some(v) => covered.push(v),
                        None => bad(self, n.span, format!("`{}` is not an enum constant or a `const`; match patterns compare, they do not bind", n.name)),
                    }
                }
            },
        }
    }
}
