//! Struct, array and string literals and aggregate values.

use super::*;

impl FnLower<'_, '_, '_> {
    pub(in crate::lower::expr) fn array_literal(&mut self, items: &[Expr], it: &Type) -> Value {
        let Type::Array(elem, n) = it.clone() else {
            return self.b().core_zero(it.clone());
        };
        let temp = self.slot(it.clone(), "");
        let z = self.b().core_zero(it.clone());
        self.b().core_store(z, temp);
        let elem = (*elem).clone();
        let ety = self.elem_sema_ty(items);
        if items.len() == 1 {
            // `[v]`: every element is v.
            let v = match &ety {
                Some(t) => {
                    let v = self.coerced(&items[0], t);
                    self.convert(v, &elem)
                }
                None => self.coerced_ir(&items[0], &elem),
            };
            self.for_each_index(n, |fl, i| {
                let a = fl.b().core_elem_addr(temp, i, Type::ptr(elem.clone()));
                fl.b().core_store(v, a);
            });
        } else {
            for (k, item) in items.iter().enumerate().take(n as usize) {
                let v = self.coerced_ir(item, &elem);
                let i = self.b().core_const(k as i128, Type::u32());
                let a = self.b().core_elem_addr(temp, i, Type::ptr(elem.clone()));
                self.b().core_store(v, a);
            }
        }
        self.b().core_load(temp, it.clone())
    }

    pub(in crate::lower::expr) fn elem_sema_ty(&self, items: &[Expr]) -> Option<Ty> {
        items.first().map(|i| self.ty(i)).filter(|t| !t.is_error())
    }

    pub(in crate::lower::expr) fn struct_literal(
        &mut self,
        fields: &[(Ident, Expr)],
        t: &Ty,
        it: &Type,
    ) -> Value {
        let Ty::Struct(id) = t else {
            return self.b().core_zero(it.clone());
        };
        let info = self.lw.ck.structs[id.0 as usize].clone();
        let temp = self.slot(it.clone(), "");
        let z = self.b().core_zero(it.clone());
        self.b().core_store(z, temp);
        // perf_options fields left out take their documented defaults (§15.4).
        if info.origin == StructOrigin::Builtin {
            for (name, v) in [("pid", -1i128), ("period", 1_000_000), ("wakeup", 1)] {
                if !fields.iter().any(|(f, _)| f.name == name) {
                    if let Some(fi) = info.field(name) {
                        let ft = self.ir(&fi.ty.clone());
                        let c = self.b().core_const(v, ft.clone());
                        let a =
                            self.b()
                                .core_field_addr(temp, name.as_bytes().to_vec(), Type::ptr(ft));
                        self.b().core_store(c, a);
                    }
                }
            }
        }
        for (name, value) in fields {
            let Some(fi) = info.field(&name.name) else {
                continue;
            };
            let fty = fi.ty.clone();
            let v = self.coerced(value, &fty);
            let ft = self.ir(&fty);
            self.at(name.span);
            let a = self
                .b()
                .core_field_addr(temp, name.name.as_bytes().to_vec(), Type::ptr(ft));
            self.b().core_store(v, a);
        }
        self.b().core_load(temp, it.clone())
    }

    // ---- calls ----------------------------------------------------------------------------
}
