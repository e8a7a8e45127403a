//! Places (lvalues): variables, fields, indexing, dereferences and map entries as addresses.

use super::*;

impl FnLower<'_, '_, '_> {
    pub(in crate::lower::expr) fn place(&mut self, e: &Expr) -> Place {
        let it = self.ir(&self.ty(e));
        // A constant has no storage (§12.2): indexing one (`PREFIX[i]`) reads a copy of its value.
        // A string's copy is made once, at the function's entry: read by a run-time index in a
        // loop, a copy made where it is read was stored again every round.
        if let (Some(ConstValue::Str(bytes)), Type::Str(_)) = (self.const_of(e), &it) {
            return Place {
                base: Base::Addr(self.constant_string(&bytes, &it)),
                path: vec![],
                ty: it,
                untrusted: None,
            };
        }
        if let (ExprKind::Ident(_), Some(c)) = (&e.kind, self.const_of(e)) {
            let value = self.materialize(&c, &it);
            let copy = self.slot(it.clone(), "");
            self.b().core_store(value, copy);
            return Place {
                base: Base::Addr(copy),
                path: vec![],
                ty: it,
                untrusted: None,
            };
        }
        match &e.kind {
            ExprKind::Ident(n) => match self.lookup(n).cloned() {
                Some(Slot::Var { addr }) => Place {
                    base: Base::Addr(addr),
                    path: vec![],
                    ty: it,
                    untrusted: None,
                },
                Some(Slot::Entry { addr, .. }) => {
                    let pt = self.lw.m.value_type(addr).pointee().unwrap().clone();
                    let p = self.b().core_load(addr, pt.clone());
                    Place {
                        base: Base::Maybe(p),
                        path: vec![],
                        ty: pt.pointee().unwrap().clone(),
                        untrusted: None,
                    }
                }
                None => {
                    let a = self.b().ks_global_addr(n, Type::ptr(it.clone()));
                    Place {
                        base: Base::Addr(a),
                        path: vec![],
                        ty: it,
                        untrusted: None,
                    }
                }
            },
            ExprKind::Field(base, f) => {
                if let ExprKind::Ident(n) = &base.kind {
                    if self.lookup(n).is_none() {
                        if let Some(Symbol::Config(ci)) = self.lw.ck.symbols.get(n) {
                            let cname = self.lw.ck.configs[*ci].name.clone();
                            let st = Type::Struct(Rc::from(format!("{cname}_config").as_str()));
                            let a = self.b().ks_config_addr(&cname, Type::ptr(st));
                            return Place {
                                base: Base::Addr(a),
                                path: vec![Step::Field(f.name.clone(), it.clone())],
                                ty: it,
                                untrusted: None,
                            };
                        }
                    }
                }
                let mut p = self.place(base);
                let kernel = match self.ty(base) {
                    Ty::Struct(id)
                        if self.lw.ck.structs[id.0 as usize].origin == StructOrigin::Kernel =>
                    {
                        Some(id)
                    }
                    _ => None,
                };
                let fixed_layout = self.kind.target() == Target::Host
                    || p.path.iter().any(|s| matches!(s, Step::Wire(..)));
                p.path.push(if let Some(id) = kernel {
                    match self.kernel_member(id, &f.name) {
                        Some(km) if fixed_layout => {
                            Step::Wire(km.access_offset(), it.clone(), km.bit_field())
                        }
                        km => {
                            Step::KField(f.name.clone(), it.clone(), km.and_then(|k| k.bit_field()))
                        }
                    }
                } else {
                    Step::Field(f.name.clone(), it.clone())
                });
                p.ty = it;
                p
            }
            ExprKind::Arrow(base, f) => {
                let bt = self.ty(base);
                let (origin, member) = match bt.pointee() {
                    Some(Ty::Struct(id)) => (
                        self.lw.ck.structs[id.0 as usize].origin,
                        self.kernel_member(*id, &f.name),
                    ),
                    _ => (StructOrigin::File, None),
                };
                // Packet bytes and userspace memory lay a kernel struct out as this machine's
                // BTF does: fixed offsets, no CO-RE.
                let fixed_layout = self.kind.target() == Target::Host
                    || self.lw.ck.packet_reads.contains(&base.id);
                let pv = self.rvalue(base);
                let pv = if origin == StructOrigin::Context {
                    pv
                } else {
                    self.deref(pv, e.span)
                };
                match origin {
                    StructOrigin::Context => Place {
                        base: Base::Ctx {
                            ctx: pv,
                            field: f.name.clone(),
                            index: None,
                        },
                        path: vec![],
                        ty: it,
                        untrusted: None,
                    },
                    StructOrigin::Kernel if fixed_layout && member.is_some() => {
                        let km = member.expect("tested");
                        Place {
                            base: Base::Addr(pv),
                            path: vec![Step::Wire(km.access_offset(), it.clone(), km.bit_field())],
                            ty: it,
                            untrusted: None,
                        }
                    }
                    StructOrigin::Kernel => Place {
                        base: Base::Addr(pv),
                        path: vec![Step::KField(
                            f.name.clone(),
                            it.clone(),
                            member.and_then(|k| k.bit_field()),
                        )],
                        ty: it,
                        untrusted: self.foreign(base).or_else(|| {
                            (!self.trusted_kernel_pointers()).then_some(Foreign::Kernel)
                        }),
                    },
                    _ => Place {
                        base: Base::Addr(pv),
                        path: vec![Step::Field(f.name.clone(), it.clone())],
                        ty: it,
                        untrusted: self.foreign(base),
                    },
                }
            }
            ExprKind::Index(base, idx) => {
                if let Some(mi) = self.map_of(base) {
                    let info = self.lw.ck.maps[mi].clone();
                    let k = self.coerced(idx, &info.key);
                    return Place {
                        base: Base::MapElem { map: mi, key: k },
                        path: vec![],
                        ty: it,
                        untrusted: None,
                    };
                }
                // Left to right (§7.7): the indexed value, then the index.
                if self.ty(base).is_ptr() {
                    let pv = self.rvalue(base);
                    let i = self.rvalue(idx);
                    let pv = self.deref(pv, e.span);
                    return Place {
                        base: Base::Addr(pv),
                        path: vec![Step::PtrIndex(i)],
                        ty: it,
                        untrusted: self.foreign(base),
                    };
                }
                let checked = self.const_of(idx).is_none();
                let mut p = self.place(base);
                let i = self.rvalue(idx);
                if let Base::Ctx { index, .. } = &mut p.base {
                    *index = Some(i);
                } else {
                    p.path.push(Step::Index(i, it.clone(), checked));
                }
                p.ty = it;
                p
            }
            ExprKind::Unary(UnOp::Deref, x) => {
                let pv = self.rvalue(x);
                let pv = self.deref(pv, e.span);
                Place {
                    base: Base::Addr(pv),
                    path: vec![],
                    ty: it,
                    untrusted: self.foreign(x),
                }
            }
            _ => {
                // A value without an address (a call result, a literal): spill it.
                let v = self.rvalue(e);
                let a = self.slot(it.clone(), "");
                self.b().core_store(v, a);
                Place {
                    base: Base::Addr(a),
                    path: vec![],
                    ty: it,
                    untrusted: None,
                }
            }
        }
    }

    /// A pointer about to be dereferenced (`*p`, `p->f`, `p[i]`). Userspace checks it for null at
    /// run time and aborts (§6.8, §13.4); kernel code needs no check (E0609 and the verifier).
    pub(in crate::lower::expr) fn deref(&mut self, p: Value, span: Span) -> Value {
        if self.kind.target() != Target::Host {
            return p;
        }
        let prev = self.loc;
        self.at(span);
        let ty = self.lw.m.value_type(p).clone();
        let checked = self.b().ks_nonnull(p, ty);
        self.loc = prev;
        checked
    }

    /// Kernel struct pointers are BTF-trusted (direct loads) in trampoline-based programs (§10.4).
    pub(in crate::lower::expr) fn trusted_kernel_pointers(&self) -> bool {
        matches!(
            self.kind.program_kind(),
            Some(
                ProgKind::Probe
                    | ProgKind::Fexit
                    | ProgKind::TpBtf
                    | ProgKind::Lsm
                    | ProgKind::StructOps
                    | ProgKind::Tracepoint
            )
        )
    }

    pub(in crate::lower::expr) fn apply_path(&mut self, mut addr: Value, path: &[Step]) -> Value {
        for s in path {
            addr = match s {
                Step::Field(f, t) => {
                    self.b()
                        .core_field_addr(addr, f.as_bytes().to_vec(), Type::ptr(t.clone()))
                }
                Step::Wire(bytes, t, _) => {
                    let mut b = self.b();
                    let byte = b.cast_to(addr, Type::ptr(Type::u8()));
                    let offset = b.core_const(i128::from(*bytes), Type::i64());
                    let moved = b.core_ptr_add(byte, offset);
                    b.cast_to(moved, Type::ptr(t.clone()))
                }
                Step::KField(f, t, _) => {
                    self.b()
                        .ks_kfield_addr(addr, f.as_bytes().to_vec(), Type::ptr(t.clone()))
                }
                Step::Index(i, t, true) => self.b().ks_index_addr(addr, *i, Type::ptr(t.clone())),
                Step::Index(i, t, false) => {
                    let at = Type::ptr(t.clone());
                    self.b().core_elem_addr(addr, *i, at)
                }
                Step::PtrIndex(i) => {
                    let at = self.lw.m.value_type(addr).clone();
                    self.b().core_elem_addr(addr, *i, at)
                }
            };
        }
        addr
    }

    /// The address of a place (for `&e`, and for in-memory reads and writes).
    pub(in crate::lower::expr) fn place_address(&mut self, p: &Place) -> Value {
        match &p.base {
            Base::Addr(a) | Base::Maybe(a) => self.apply_path(*a, &p.path),
            Base::MapElem { .. } => {
                let e = self.entry_of_base(&p.base);
                self.apply_path(e, &p.path)
            }
            Base::Ctx { .. } => {
                let v = self.load_place(p);
                let a = self.slot(p.ty.clone(), "");
                self.b().core_store(v, a);
                a
            }
        }
    }

    /// The entry address (null when absent) a map element or entry binding denotes.
    pub(in crate::lower::expr) fn entry_of_base(&mut self, base: &Base) -> Value {
        match base {
            Base::MapElem { map, key } => {
                let info = self.lw.ck.maps[*map].clone();
                let vt = self.ir(&info.value);
                self.b().ks_map_lookup(*key, &info.name, Type::ptr(vt))
            }
            Base::Maybe(e) | Base::Addr(e) => *e,
            Base::Ctx { ctx, .. } => *ctx,
        }
    }

    pub(in crate::lower::expr) fn read(
        &mut self,
        addr: Value,
        ty: &Type,
        untrusted: Option<Foreign>,
    ) -> Value {
        match untrusted {
            Some(memory) => {
                let user = (memory == Foreign::User).then_some(true);
                self.b().ks_probe_read(addr, user, ty.clone())
            }
            None => self.b().core_load(addr, ty.clone()),
        }
    }

    /// Where sema found that the pointer `e` must be read through a helper (§9.2).
    pub(in crate::lower::expr) fn foreign(&self, e: &Expr) -> Option<Foreign> {
        self.lw.ck.foreign_reads.get(&e.id).copied()
    }

    /// Member `field` of kernel struct `id`, from BTF.
    fn kernel_member(&self, id: StructId, field: &str) -> Option<KMember> {
        let btf_id = self.lw.ck.structs[id.0 as usize].btf_id?;
        let ks = self.lw.ck.btf.get()?.struct_by_id(btf_id)?;
        ks.member(field).cloned()
    }

    pub(in crate::lower::expr) fn load_place(&mut self, p: &Place) -> Value {
        let v = self.load_whole(p);
        match bit_field_of(p) {
            Some(bf) => self.extract_bits(v, &p.ty, bf),
            None => v,
        }
    }

    /// A bit-field's value from its storage unit: shifted down, then masked (unsigned) or
    /// sign-extended by a shift pair (signed).
    fn extract_bits(&mut self, unit: Value, ty: &Type, bf: BitField) -> Value {
        let Some(int) = ty.int() else {
            return unit;
        };
        let width = i128::from(int.bits());
        let (shift, bits) = (bf.shift as i128, bf.bits as i128);
        if int.signed() {
            let up = self.b().core_const(width - shift - bits, ty.clone());
            let raised = self.b().core_shl(unit, up);
            let down = self.b().core_const(width - bits, ty.clone());
            return self.b().core_shr(raised, down);
        }
        let mut v = unit;
        if shift > 0 {
            let by = self.b().core_const(shift, ty.clone());
            v = self.b().core_shr(v, by);
        }
        if shift + bits < width {
            let mask = self.b().core_const((1 << bits) - 1, ty.clone());
            v = self.b().core_and(v, mask);
        }
        v
    }

    /// Storage unit `unit` with bit-field `bf` set to the low bits of `v`.
    fn insert_bits(&mut self, unit: Value, v: Value, ty: &Type, bf: BitField) -> Value {
        let Some(int) = ty.int() else {
            return v;
        };
        let width = int.bits();
        let low = if bf.bits >= 128 {
            u128::MAX
        } else {
            (1u128 << bf.bits) - 1
        };
        let all = if width >= 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        let field = (low << bf.shift) & all;
        // (As the type's own bits, so a signed unit's mask is its negative value.)
        let as_ty = |x: u128| {
            if int.signed() && width < 128 && x >> (width - 1) & 1 == 1 {
                x as i128 - (1i128 << width)
            } else {
                x as i128
            }
        };
        let keep = self.b().core_const(as_ty(all & !field), ty.clone());
        let kept = self.b().core_and(unit, keep);
        let low_mask = self.b().core_const(as_ty(low & all), ty.clone());
        let mut bits = self.b().core_and(v, low_mask);
        if bf.shift > 0 {
            let by = self.b().core_const(i128::from(bf.shift), ty.clone());
            bits = self.b().core_shl(bits, by);
        }
        self.b().core_or(kept, bits)
    }

    /// The whole value a place names: for a bit-field, its storage unit.
    fn load_whole(&mut self, p: &Place) -> Value {
        match &p.base {
            Base::Addr(a) => {
                let addr = self.apply_path(*a, &p.path);
                self.read(addr, &p.ty, p.untrusted)
            }
            Base::Ctx { ctx, field, index } => {
                let idx: Vec<Value> = index.iter().copied().collect();
                self.b()
                    .ks_ctx_load(*ctx, &idx, field.as_bytes().to_vec(), p.ty.clone())
            }
            Base::MapElem { .. } | Base::Maybe(_) => {
                let entry = self.entry_of_base(&p.base);
                if p.path.is_empty() {
                    return self.b().ks_load_or_zero(entry, p.ty.clone());
                }
                // Reading a part of an entry: zero when the entry is absent.
                let present = self.non_null(entry);
                let op = self.b().ks_if(present, None, std::slice::from_ref(&p.ty));
                let (tb, eb) = (self.entry_of(op, 0), self.entry_of(op, 1));
                let path = p.path.clone();
                let ty = p.ty.clone();
                self.in_block(tb, |fl| {
                    let a = fl.apply_path(entry, &path);
                    let v = fl.b().core_load(a, ty.clone());
                    fl.b().ks_yield(&[v]);
                });
                self.in_block(eb, |fl| {
                    let z = fl.b().core_zero(ty.clone());
                    fl.b().ks_yield(&[z]);
                });
                self.lw.m.op(op).results[0]
            }
        }
    }

    pub(in crate::lower::expr) fn store_place(&mut self, p: &Place, v: Value) {
        // A bit-field's write keeps the other bits of its storage unit.
        let v = match bit_field_of(p) {
            Some(bf) => {
                let unit = self.load_whole(p);
                self.insert_bits(unit, v, &p.ty, bf)
            }
            None => v,
        };
        match &p.base {
            Base::Addr(a) => {
                let addr = self.apply_path(*a, &p.path);
                self.b().core_store(v, addr);
            }
            Base::Ctx { ctx, field, index } => {
                let idx: Vec<Value> = index.iter().copied().collect();
                self.b()
                    .ks_ctx_store(v, *ctx, &idx, field.as_bytes().to_vec());
            }
            Base::MapElem { map, key } if p.path.is_empty() => {
                let name = self.lw.ck.maps[*map].name.clone();
                self.b().ks_map_update(*key, v, &name, 0);
            }
            Base::MapElem { .. } | Base::Maybe(_) => {
                // Writing a part of an entry changes it in place, and nothing when it is absent.
                let entry = self.entry_of_base(&p.base);
                let present = self.non_null(entry);
                let op = self.b().ks_if(present, None, &[]);
                let tb = self.entry_of(op, 0);
                let path = p.path.clone();
                self.in_block(tb, |fl| {
                    let a = fl.apply_path(entry, &path);
                    fl.b().core_store(v, a);
                });
            }
        }
    }

    pub fn assign(&mut self, target: &Expr, op: AssignOp, value: &Expr) {
        // `v = m[k2]` on a binding to an entry of `m` binds `v` to that entry (§11.3).
        if let (ExprKind::Ident(n), None) = (&target.kind, op.binop()) {
            if let Some(Slot::Entry { addr, map }) = self.lookup(n).cloned() {
                if self.accessed_map(value) == Some(map) {
                    let entry = self.entry_address(value);
                    self.b().core_store(entry, addr);
                    return;
                }
            }
        }
        let tt = self.ty(target);
        let tit = self.ir(&tt);
        // The right-hand side is evaluated before the target's keys and indices (§7.7).
        let v = match op.binop() {
            Some(b) if matches!(b, BinOp::Shl | BinOp::Shr) || tt.is_ptr() => self.rvalue(value),
            _ => self.coerced(value, &tt),
        };
        self.at(target.span);
        let place = self.place(target);
        let binding = match (&target.kind, &place.base) {
            (ExprKind::Ident(n), Base::Maybe(entry)) => match self.lookup(n) {
                Some(Slot::Entry { addr, .. }) => Some((*addr, *entry)),
                _ => None,
            },
            _ => None,
        };
        if let Some((binding, entry)) = binding {
            let value = match op.binop() {
                Some(bop) => {
                    let old = self.load_place(&place);
                    self.arith(bop, old, v, &tit)
                }
                None => v,
            };
            self.assign_entry_binding(binding, entry, value, place.ty.clone());
            return;
        }
        let Some(bop) = op.binop() else {
            self.store_place(&place, v);
            return;
        };
        // `m[k] += n` on an integer value: one atomic read-modify-write (§11.2).
        if let (Base::MapElem { map, key }, true, BinOp::Add) =
            (&place.base, place.path.is_empty(), bop)
        {
            let name = self.lw.ck.maps[*map].name.clone();
            self.b().ks_map_add(*key, v, &name);
            return;
        }
        // `g += n` on an integer global in kernel code is one atomic add (§12.1).
        if let (Base::Addr(a), BinOp::Add, true) = (
            &place.base,
            bop,
            self.kind.target() == crate::sema::env::Target::Bpf && tit.is_int(),
        ) {
            if self.is_global_address(*a) {
                let addr = self.apply_path(*a, &place.path);
                let delta = self.convert(v, &tit);
                self.b().core_atomic_add(addr, delta);
                return;
            }
        }
        let old = self.load_place(&place);
        let new = self.arith(bop, old, v, &tit);
        self.store_place(&place, new);
    }

    /// `v = value` on an entry binding (§11.3): the value is written into the entry when it is
    /// present; when it is absent, `v` becomes a copy that holds the value, so the reads and
    /// writes of `v` that follow, and storing `v` into a map, see it (`if (v == null) { v = V {…} }`
    /// then `m[k] = v`). Writing nowhere would drop what the program plainly meant to keep.
    fn assign_entry_binding(&mut self, binding: Value, entry: Value, v: Value, ty: Type) {
        let present = self.non_null(entry);
        let op = self.b().ks_if(present, None, &[]);
        let (then, otherwise) = (self.entry_of(op, 0), self.entry_of(op, 1));
        self.in_block(then, |fl| {
            fl.b().core_store(v, entry);
        });
        let copy = self.slot(ty, "");
        self.in_block(otherwise, |fl| {
            fl.b().core_store(v, copy);
            fl.b().core_store(copy, binding);
        });
    }

    /// True for the address of a global variable's storage (`ks.global_addr`).
    pub(in crate::lower::expr) fn is_global_address(&self, v: Value) -> bool {
        matches!(self.lw.m.value(v).def, crate::ir::ValueDef::Result(op, _) if self.lw.m.op(op).opcode == crate::ir::Opcode::KsGlobalAddr)
    }

    // ---- operators ------------------------------------------------------------------------
}

/// The bit-field a place ends in.
fn bit_field_of(p: &Place) -> Option<BitField> {
    match p.path.last() {
        Some(Step::KField(_, _, bf) | Step::Wire(_, _, bf)) => *bf,
        _ => None,
    }
}
