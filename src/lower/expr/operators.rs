//! Unary and binary operators, comparisons and implicit conversions.

use super::*;

impl FnLower<'_, '_, '_> {
    pub(in crate::lower::expr) fn arith(
        &mut self,
        op: BinOp,
        l: Value,
        r: Value,
        t: &Type,
    ) -> Value {
        if t.is_ptr() {
            let off = self.convert(r, &Type::i64());
            let off = if op == BinOp::Sub {
                self.b().core_neg(off)
            } else {
                off
            };
            return self.b().core_ptr_add(l, off);
        }
        let l = self.convert(l, t);
        let r = self.convert(r, t);
        match op {
            BinOp::Add => self.add(l, r, t),
            BinOp::Sub => self.b().core_sub(l, r),
            BinOp::Mul => self.b().core_mul(l, r),
            BinOp::Div => self.b().core_div(l, r),
            BinOp::Rem => self.b().core_rem(l, r),
            BinOp::BitAnd | BinOp::And => self.b().core_and(l, r),
            BinOp::BitOr | BinOp::Or => self.b().core_or(l, r),
            BinOp::BitXor => self.b().core_xor(l, r),
            BinOp::Shl => self.b().core_shl(l, r),
            BinOp::Shr => self.b().core_shr(l, r),
            _ => l,
        }
    }

    /// `l + r`, spelt the shorter way round when one side is an unsigned constant past half its
    /// type (`off + 0xffffffff` is `off - 1` in a `u32`): one value, and one form for the passes
    /// that tell a step forward from a step back.
    fn add(&mut self, l: Value, r: Value, t: &Type) -> Value {
        let Type::Int(i) = t else {
            return self.b().core_add(l, r);
        };
        let wraps_back = |k: i128| !i.signed() && k > i.max() / 2;
        let (x, k) = match (self.b().module.const_int(l), self.b().module.const_int(r)) {
            (None, Some(k)) if wraps_back(k) => (l, k),
            (Some(k), None) if wraps_back(k) => (r, k),
            _ => return self.b().core_add(l, r),
        };
        let back = self.b().core_const(i.max() - k + 1, t.clone());
        self.b().core_sub(x, back)
    }

    /// The type both operands of a comparison are converted to (§6.3).
    pub(in crate::lower::expr) fn comparison_type(&mut self, l: &Ty, r: &Ty) -> Type {
        let il = self.int_like(l);
        let ir_ = self.int_like(r);
        if let (Some(a), Some(b)) = (il, ir_) {
            return Type::Int(unify_ints(a, b).unwrap_or(if a.bits() >= b.bits() { a } else { b }));
        }
        match (l, r) {
            (Ty::Null, t) | (t, Ty::Null) => self.ir(t),
            (Ty::Str(a), Ty::Str(b)) => Type::Str(*a.max(b)),
            _ => self.ir(l),
        }
    }

    pub(in crate::lower::expr) fn int_like(&self, t: &Ty) -> Option<IntTy> {
        match t {
            Ty::Int(i) => Some(*i),
            Ty::Char => Some(IntTy::U8),
            Ty::Enum(id) => Some(self.lw.ck.enums[id.0 as usize].repr),
            _ => None,
        }
    }

    pub(in crate::lower::expr) fn binary(
        &mut self,
        e: &Expr,
        op: BinOp,
        l: &Expr,
        r: &Expr,
        it: &Type,
    ) -> Value {
        match op {
            BinOp::And | BinOp::Or => {
                // Short-circuit: the right operand runs only when it decides the result.
                let lv = self.rvalue(l);
                let res = self.b().ks_if(lv, None, &[Type::Bool]);
                let (tb, eb) = (self.entry_of(res, 0), self.entry_of(res, 1));
                let (eval_in, const_in, c) = if op == BinOp::And {
                    (tb, eb, 0)
                } else {
                    (eb, tb, 1)
                };
                self.in_block(eval_in, |fl| {
                    let rv = fl.rvalue(r);
                    fl.b().ks_yield(&[rv]);
                });
                self.in_block(const_in, |fl| {
                    let k = fl.b().core_const(c, Type::Bool);
                    fl.b().ks_yield(&[k]);
                });
                self.at(e.span);
                self.lw.m.op(res).results[0]
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let pred = match op {
                    BinOp::Eq => CmpPred::Eq,
                    BinOp::Ne => CmpPred::Ne,
                    BinOp::Lt => CmpPred::Lt,
                    BinOp::Le => CmpPred::Le,
                    BinOp::Gt => CmpPred::Gt,
                    _ => CmpPred::Ge,
                };
                // `m[k] == null`: a presence test (§11.3).
                for (a, b) in [(l, r), (r, l)] {
                    if matches!(b.kind, ExprKind::Null) && (self.is_presence(a) || self.pop_like(a))
                    {
                        let p = if self.pop_like(a) {
                            self.pop_call(a).unwrap().1
                        } else {
                            let p = self.entry_address(a);
                            self.non_null(p)
                        };
                        self.at(e.span);
                        return if op == BinOp::Eq {
                            self.b().core_not(p)
                        } else {
                            p
                        };
                    }
                }
                let (lt, rt) = (self.ty(l), self.ty(r));
                let ct = self.comparison_type(&lt, &rt);
                let lv = self.coerced_ir(l, &ct);
                let rv = self.coerced_ir(r, &ct);
                self.at(e.span);
                let eq = match ct {
                    Type::Str(_) => Some(self.b().ks_str_eq(lv, rv)),
                    Type::Struct(_) | Type::Array(..) => Some(self.b().ks_agg_eq(lv, rv)),
                    _ => None,
                };
                match eq {
                    Some(eq) if op == BinOp::Ne => self.b().core_not(eq),
                    Some(eq) => eq,
                    None => self.b().core_cmp(lv, rv, pred),
                }
            }
            _ => {
                let (lt, rt) = (self.ty(l), self.ty(r));
                if let Type::Str(_) = it {
                    let lv = self.rvalue(l);
                    let rv = self.rvalue(r);
                    self.at(e.span);
                    return self.b().ks_str_concat(lv, rv, it.clone());
                }
                if lt.is_ptr() && rt.is_ptr() {
                    let lv = self.rvalue(l);
                    let rv = self.rvalue(r);
                    self.at(e.span);
                    return self.b().core_ptr_diff(lv, rv);
                }
                let lv = if lt.is_ptr() {
                    self.rvalue(l)
                } else {
                    self.coerced_ir(l, it)
                };
                let rv = if lt.is_ptr() || matches!(op, BinOp::Shl | BinOp::Shr) {
                    self.rvalue(r)
                } else {
                    self.coerced_ir(r, it)
                };
                self.at(e.span);
                self.arith(op, lv, rv, it)
            }
        }
    }

    pub(in crate::lower::expr) fn pop_like(&self, e: &Expr) -> bool {
        matches!(&e.kind, ExprKind::Call { callee, args } if args.is_empty() && matches!(&callee.kind, ExprKind::Field(recv, m) if matches!(m.name.as_str(), "pop" | "peek") && self.map_of(recv).is_some()))
    }

    /// Like `coerced`, to an IR type (comparison operands).
    pub(in crate::lower::expr) fn coerced_ir(&mut self, e: &Expr, t: &Type) -> Value {
        if let (Some(c), true) = (self.const_of(e), t.is_int() || *t == Type::Bool) {
            self.at(e.span);
            return self.materialize(&c, t);
        }
        if matches!(e.kind, ExprKind::Null) {
            return self.b().core_const(0, t.clone());
        }
        let v = self.rvalue(e);
        self.convert(v, t)
    }

    // ---- aggregates -----------------------------------------------------------------------
}
