//! Calls: user functions, kfuncs, helpers and the builtins (§10).

use super::*;

impl FnLower<'_, '_, '_> {
    pub fn void_expr(&mut self, e: &Expr) {
        self.at(e.span);
        match &e.kind {
            ExprKind::Call { callee, args } if self.python_callee(callee).is_some() => {
                // A Python function called for its effect: its result is ignored (§15.8).
                let (module, func) = self.python_callee(callee).unwrap();
                self.python_call(e, &module, &func, args, &[]);
            }
            ExprKind::Call { callee, args } => {
                self.call(e, callee, args);
            }
            ExprKind::Match { .. } => {
                self.match_expr(e, Some(&Ty::Void), false);
            }
            _ => {
                self.rvalue(e);
            }
        }
    }

    pub(in crate::lower::expr) fn args_for(&mut self, args: &[Expr], params: &[Ty]) -> Vec<Value> {
        args.iter()
            .zip(params)
            .map(|(a, p)| self.coerced(a, p))
            .collect()
    }

    pub(in crate::lower::expr) fn result_types(&mut self, e: &Expr) -> Vec<Type> {
        let t = self.ty(e);
        if t == Ty::Void || t.is_error() {
            vec![]
        } else {
            vec![self.ir(&t)]
        }
    }

    /// Lowers a call; `None` for calls without a value.
    pub(in crate::lower::expr) fn call(
        &mut self,
        e: &Expr,
        callee: &Expr,
        args: &[Expr],
    ) -> Option<Value> {
        let results = self.result_types(e);
        match &callee.kind {
            ExprKind::Ident(n) if self.lookup(n).is_none() => {
                if let Some(&id) = self.lw.ck.sibling_calls.get(&e.id) {
                    // A sibling struct_ops method: its subprogram twin (§16.1).
                    let params = self.lw.ck.funcs[id.0 as usize].params.clone();
                    let vals = self.args_for(args, &params);
                    let name = self.lw.method_subprogram_name(id);
                    self.at(e.span);
                    let op = self.b().core_call(&vals, &name, &results);
                    return self.lw.m.op(op).results.first().copied();
                }
                if let Some(sym) = self.lw.ck.symbols.get(n).cloned() {
                    match sym {
                        Symbol::Func(id) => {
                            let f = &self.lw.ck.funcs[id.0 as usize];
                            let params = f.params.clone();
                            let vals = self.args_for(args, &params);
                            let name = self.lw.func_name(id);
                            self.at(e.span);
                            let op = self.b().core_call(&vals, &name, &results);
                            return self.lw.m.op(op).results.first().copied();
                        }
                        Symbol::Extern(i) => {
                            let params = self.lw.ck.externs[i].params.clone();
                            let vals = self.args_for(args, &params);
                            self.at(e.span);
                            let op = self.b().ks_call_extern(&vals, n, &results);
                            return self.lw.m.op(op).results.first().copied();
                        }
                        _ => {}
                    }
                }
                self.builtin(e, n, args, &results)
            }
            ExprKind::Field(recv, m) => {
                if let Some(mi) = self.map_of(recv) {
                    return self.map_method(e, mi, &m.name, args, &results);
                }
                if let Some((module, func)) = self.python_callee(callee) {
                    return self.python_call(e, &module, &func, args, &results);
                }
                if let ExprKind::Ident(modname) = &recv.kind {
                    if let Some((_, funcs)) =
                        self.lw.ck.modules.iter().find(|(mn, _)| mn == modname)
                    {
                        if let Some(&id) = funcs.get(&m.name) {
                            let params = self.lw.ck.funcs[id.0 as usize].params.clone();
                            let vals = self.args_for(args, &params);
                            let name = self.lw.func_name(id);
                            self.at(e.span);
                            let op = self.b().core_call(&vals, &name, &results);
                            return self.lw.m.op(op).results.first().copied();
                        }
                    }
                }
                self.indirect_call(e, callee, args, &results)
            }
            _ => self.indirect_call(e, callee, args, &results),
        }
    }

    /// `(m, f)` when `callee` is `m.f` with `m` a module imported from a `.py` file.
    pub fn python_callee(&self, callee: &Expr) -> Option<(String, String)> {
        let ExprKind::Field(recv, f) = &callee.kind else {
            return None;
        };
        match &recv.kind {
            ExprKind::Ident(m) if self.lookup(m).is_none() && self.lw.python.contains_key(m) => {
                Some((m.clone(), f.name.clone()))
            }
            _ => None,
        }
    }

    /// `m.f(args)` on a Python module (§15.8): each argument is stored in a slot, `ks.py_call`
    /// converts them and the result by `sig`, and a non-zero status is rethrown as a throw.
    pub(in crate::lower::expr) fn python_call(
        &mut self,
        e: &Expr,
        module: &str,
        func: &str,
        args: &[Expr],
        results: &[Type],
    ) -> Option<Value> {
        let src = self.lw.python[module].clone();
        let mut ptrs = Vec::new();
        let mut sig = Vec::new();
        for a in args {
            let t = self.ty(a);
            let it = self.ir(&t);
            let v = self.coerced(a, &t);
            let slot = self.slot(it, "");
            self.b().core_store(v, slot);
            ptrs.push(slot);
            sig.push(self.python_sig(&t));
        }
        let mut sig = sig.join(" ");
        sig.push('>');
        let result = results.first().map(|rt| {
            let t = self.ty(e);
            sig.push_str(&self.python_sig(&t));
            let slot = self.slot(rt.clone(), "");
            ptrs.push(slot);
            (slot, rt.clone())
        });
        if result.is_none() {
            sig.push('v');
        }
        self.at(e.span);
        let status = self.b().ks_py_call(
            &ptrs,
            module.as_bytes().to_vec(),
            src.path.into_bytes(),
            src.source.into_bytes(),
            func.as_bytes().to_vec(),
            sig.into_bytes(),
        );
        let zero = self.b().core_const(0, Type::i64());
        let raised = self.b().core_cmp(status, zero, CmpPred::Ne);
        let op = self.b().ks_if(raised, None, &[]);
        let tb = self.entry_of(op, 0);
        self.in_block(tb, |fl| {
            fl.b().ks_throw(status);
        });
        result.map(|(slot, rt)| self.b().core_load(slot, rt))
    }

    /// The type descriptor of `t` in a `ks.py_call` signature: `iN`/`uN` (N bytes), `b`, `c`,
    /// `sN` (a `str(N)`), `aN` (a `char[N]`), `{SIZE,FIELD@OFFSET:TYPE,…}`.
    pub(in crate::lower::expr) fn python_sig(&self, t: &Ty) -> String {
        let layout = crate::sema::layout::Layout {
            structs: &self.lw.ck.structs,
            enums: &self.lw.ck.enums,
        };
        match t {
            Ty::Int(i) => format!("{}{}", if i.signed() { 'i' } else { 'u' }, i.bits() / 8),
            Ty::Enum(id) => {
                let r = self.lw.ck.enums[id.0 as usize].repr;
                format!("{}{}", if r.signed() { 'i' } else { 'u' }, r.bits() / 8)
            }
            Ty::Bool => "b".into(),
            Ty::Char => "c".into(),
            Ty::Str(n) => format!("s{n}"),
            Ty::Array(e, n) if matches!(**e, Ty::Char) => format!("a{n}"),
            Ty::Struct(id) => {
                let s = &self.lw.ck.structs[id.0 as usize];
                let (offsets, size, _) = layout.c_layout(s);
                let mut out = format!("{{{size}");
                for (f, off) in s.fields.iter().zip(offsets) {
                    out.push_str(&format!(",{}@{off}:{}", f.name, self.python_sig(&f.ty)));
                }
                out.push('}');
                out
            }
            // Sema allows nothing else (E0309).
            _ => "v".into(),
        }
    }

    pub(in crate::lower::expr) fn indirect_call(
        &mut self,
        e: &Expr,
        callee: &Expr,
        args: &[Expr],
        results: &[Type],
    ) -> Option<Value> {
        let f = self.rvalue(callee);
        let params = match self.ty(callee) {
            Ty::Fn(sig) => sig.params.clone(),
            _ => args.iter().map(|a| self.ty(a)).collect(),
        };
        let vals = self.args_for(args, &params);
        self.at(e.span);
        let op = self.b().core_call_indirect(f, &vals, results);
        self.lw.m.op(op).results.first().copied()
    }

    pub(in crate::lower::expr) fn builtin(
        &mut self,
        e: &Expr,
        name: &str,
        args: &[Expr],
        results: &[Type],
    ) -> Option<Value> {
        let rt = results.first().cloned().unwrap_or(Type::Void);
        let v = match name {
            "print" => {
                let fmt = args
                    .first()
                    .and_then(|a| self.const_of(a))
                    .and_then(|c| match c {
                        ConstValue::Str(s) => Some(s),
                        _ => None,
                    });
                let vals: Vec<Value> = args.iter().skip(1).map(|a| self.rvalue(a)).collect();
                self.at(e.span);
                self.b().ks_print(&vals, fmt.unwrap_or_default())
            }
            "ntohs" | "htons" | "ntohl" | "htonl" | "ntohll" | "htonll" => {
                let v = self.coerced_ir(&args[0], &rt);
                self.at(e.span);
                self.b().core_bswap(v)
            }
            "load" => {
                let prog = self.callee_name(&args[0]);
                self.b().ks_load_prog(&prog, rt)
            }
            "attach" => {
                let h = self.rvalue(&args[0]);
                let flags = self.coerced_ir(&args[2], &Type::u32());
                if matches!(self.ty(&args[1]), Ty::Struct(_)) {
                    let o = self.place(&args[1]);
                    let opts = self.place_address(&o);
                    self.at(e.span);
                    self.b().ks_attach_perf(h, opts, flags, rt)
                } else {
                    let t = self.rvalue(&args[1]);
                    self.at(e.span);
                    self.b().ks_attach(h, t, flags)
                }
            }
            "detach" => {
                let h = self.rvalue(&args[0]);
                self.b().ks_detach(h);
                return None;
            }
            "read" => {
                let h = self.rvalue(&args[0]);
                self.b().ks_perf_read(h)
            }
            "register" => {
                let i = self.callee_name(&args[0]);
                self.b().ks_register(&i)
            }
            "dispatch" => {
                let maps = args
                    .iter()
                    .map(|a| Attr::Sym(self.callee_name(a)))
                    .collect();
                self.b().ks_dispatch(maps)
            }
            "daemon" => {
                self.b().ks_daemon();
                return None;
            }
            "sleep" => {
                let ms = self.rvalue(&args[0]);
                self.b().ks_sleep(ms);
                return None;
            }
            "exec" => {
                let script = self.rvalue(&args[0]);
                self.at(e.span);
                self.b().ks_exec(script, None::<Vec<u8>>);
                // `ksrt_exec` never returns; the abort ends the block (sema made the call diverge).
                self.b().ks_abort(b"exec() returned".to_vec());
                return None;
            }
            "test" => return Some(self.test_call(e, args)),
            "test_len" => self.b().ks_test_len(),
            "assert" => {
                let c = self.rvalue(&args[0]);
                let msg = args
                    .get(1)
                    .and_then(|a| self.const_of(a))
                    .and_then(|c| match c {
                        ConstValue::Str(s) => Some(s),
                        _ => None,
                    });
                self.at(e.span);
                self.b().ks_assert(c, msg);
                return None;
            }
            _ => return self.helper_call(e, name, args, results),
        };
        Some(v).filter(|_| !results.is_empty() || name == "print" || name == "test_len")
    }

    /// A BPF helper called by its standard name: declared as an extern on first use.
    pub(in crate::lower::expr) fn helper_call(
        &mut self,
        e: &Expr,
        name: &str,
        args: &[Expr],
        results: &[Type],
    ) -> Option<Value> {
        let h = crate::sema::builtins::helper(name)?;
        let params: Vec<Ty> = h.params.iter().map(|p| p.ty()).collect();
        // A variadic helper's missing slots are filled in by `lower_bpf` (they pass 0).
        let vals = self.args_for(args, &params);
        self.declare_extern(name, &params, results, Some(h.id));
        self.at(e.span);
        let op = self.b().ks_call_extern(&vals, name, results);
        self.lw.m.op(op).results.first().copied()
    }

    /// Declares `name` as a `ks.extern` on first use (helpers called by name, kfuncs of the unit).
    pub(in crate::lower::expr) fn declare_extern(
        &mut self,
        name: &str,
        params: &[Ty],
        results: &[Type],
        helper_id: Option<u32>,
    ) {
        if self.lw.externs.contains_key(name) {
            return;
        }
        self.lw.externs.insert(name.to_string(), ());
        let ptys: Vec<Type> = params.iter().map(|p| self.ir(p)).collect();
        let ret = results.first().cloned().unwrap_or(Type::Void);
        let body = self.lw.m.body;
        let mut b = crate::ir::Builder::new(&mut self.lw.m, body);
        b.ks_extern(
            name,
            Type::Func(Rc::new(FnType { params: ptys, ret })),
            helper_id.map(|i| i as i128),
        );
    }

    /// The symbol a builtin's name argument denotes (a program, map or impl).
    pub(in crate::lower::expr) fn callee_name(&self, a: &Expr) -> String {
        match &a.kind {
            ExprKind::Ident(n) => match self.lw.ck.symbols.get(n) {
                Some(Symbol::Func(id)) => self.lw.func_name(*id),
                _ => n.clone(),
            },
            _ => String::new(),
        }
    }

    pub(in crate::lower::expr) fn test_call(&mut self, e: &Expr, args: &[Expr]) -> Value {
        let prog = self.callee_name(&args[0]);
        let it = self.ty(&args[1]);
        if let Ty::Struct(id) = &it {
            if self.lw.ck.structs[id.0 as usize].is_test_context() {
                return self.test_context_call(e, &prog, args);
            }
        }
        let ity = self.ir(&it);
        let capacity = crate::sema::layout::Layout {
            structs: &self.lw.ck.structs,
            enums: &self.lw.ck.enums,
        }
        .size_of(&it)
        .unwrap_or(0);
        let assignable = matches!(&args[1].kind, ExprKind::Ident(n) if matches!(self.lookup(n), Some(Slot::Var { .. })) || matches!(self.lw.ck.symbols.get(n), Some(Symbol::Global(_))));
        let p = self.place(&args[1]);
        let data = self.place_address(&p);
        let data = self.convert(data, &Type::ptr(Type::u8()));
        let len: Vec<Value> = args
            .get(2)
            .map(|l| self.coerced_ir(l, &Type::u32()))
            .into_iter()
            .collect();
        self.at(e.span);
        self.b().ks_test_run(
            data,
            &len,
            &prog,
            capacity as i128,
            assignable && matches!(ity, Type::Array(..) | Type::Str(_)),
            matches!(ity, Type::Str(_)),
        )
    }

    /// `test(prog, ctx)` with a test context: a zero-filled packet of `ctx.packet_size` bytes
    /// (a length past the largest test packet fails the test at run time, as any too-long `len`).
    pub(in crate::lower::expr) fn test_context_call(
        &mut self,
        e: &Expr,
        prog: &str,
        args: &[Expr],
    ) -> Value {
        let max = crate::sema::env::MAX_TEST_PACKET;
        let buffer_ty = Type::Array(Rc::new(Type::u8()), max as u32);
        let buffer = self.slot(buffer_ty.clone(), "");
        let zero = self.b().core_zero(buffer_ty);
        self.b().core_store(zero, buffer);
        let context = self.place(&args[1]);
        let context = self.place_address(&context);
        let field = &self.lw.ck.structs[match self.ty(&args[1]) {
            Ty::Struct(id) => id.0 as usize,
            _ => unreachable!("a test context is a struct"),
        }]
        .field("packet_size")
        .expect("a test context has packet_size")
        .ty
        .clone();
        let field_ty = self.ir(field);
        let size_addr = self.b().core_field_addr(
            context,
            b"packet_size".to_vec(),
            Type::ptr(field_ty.clone()),
        );
        let size = self.b().core_load(size_addr, field_ty);
        let len = self.convert(size, &Type::u32());
        let data = self.convert(buffer, &Type::ptr(Type::u8()));
        self.at(e.span);
        self.b()
            .ks_test_run(data, &[len], prog, max as i128, false, false)
    }

    pub(in crate::lower::expr) fn map_method(
        &mut self,
        e: &Expr,
        mi: usize,
        method: &str,
        args: &[Expr],
        results: &[Type],
    ) -> Option<Value> {
        let info = self.lw.ck.maps[mi].clone();
        let rt = results.first().cloned().unwrap_or(Type::Void);
        let v = match method {
            "reserve" => {
                self.at(e.span);
                self.b().ks_rb_reserve(&info.name, rt)
            }
            "submit" | "discard" => {
                let p = self.rvalue(&args[0]);
                self.at(e.span);
                if method == "submit" {
                    self.b().ks_rb_submit(p, &info.name)
                } else {
                    self.b().ks_rb_discard(p, &info.name)
                }
            }
            "output" if args.len() == 2 => {
                let c = self.rvalue(&args[0]);
                let v = self.coerced(&args[1], &info.value);
                self.at(e.span);
                self.b().ks_perf_output(c, v, &info.name)
            }
            "output" => {
                let v = self.coerced(&args[0], &info.value);
                self.at(e.span);
                self.b().ks_rb_output(v, &info.name)
            }
            "push" => {
                let v = self.coerced(&args[0], &info.value);
                self.at(e.span);
                self.b().ks_map_push(v, &info.name)
            }
            "pop" | "peek" => return self.pop_call(e).map(|(v, _)| v),
            "contains" => {
                let v = self.coerced(&args[0], &info.value);
                self.at(e.span);
                self.b().ks_map_contains(v, &info.name)
            }
            "redirect" => {
                let k = self.coerced_ir(&args[0], &Type::u32());
                let f = self.coerced_ir(&args[1], &Type::u64());
                self.at(e.span);
                self.b().ks_redirect_map(k, f, &info.name, rt)
            }
            "on_event" => {
                let h = self.callee_name(&args[0]);
                self.b().ks_rb_on_event(&info.name, &h)
            }
            "poll" => {
                let t = self.coerced_ir(&args[0], &Type::u32());
                self.b().ks_rb_poll(t, &info.name)
            }
            _ => return None,
        };
        Some(v)
    }

    // ---- match ----------------------------------------------------------------------------
}
