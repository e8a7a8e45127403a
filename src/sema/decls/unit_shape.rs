//! `main` and the unit's shape (§9.1, §15.1–15.2).

use super::*;

impl<'a> Checker<'a, '_> {
    pub(in crate::sema::decls) fn check_main_and_unit(&mut self) {
        let own: Vec<usize> = (0..self.funcs.len())
            .filter(|&i| {
                self.funcs[i].module.is_none()
                    && !matches!(self.funcs[i].kind, FnKind::StructOpsMethod { .. })
            })
            .collect();
        let mains: Vec<usize> = own
            .iter()
            .copied()
            .filter(|&i| self.funcs[i].name == "main")
            .collect();
        for &m in mains.iter().skip(1) {
            self.error(
                Code::E0113,
                self.funcs[m].decl.name.span,
                "a unit has one `main`",
            );
        }
        if let Some(&m) = mains.first() {
            self.check_main_signature(m);
        }
        let has_tests = own.iter().any(|&i| self.funcs[i].kind == FnKind::Test);
        if !mains.is_empty() || has_tests {
            return;
        }
        // Userspace functions need a main to run them (§9.1). A function whose attributes were
        // wrong is not counted: its attribute error says what is wrong.
        let first_user = own
            .iter()
            .copied()
            .find(|&i| self.funcs[i].kind == FnKind::User && self.funcs[i].item.attrs.is_empty());
        if let Some(u) = first_user {
            self.error(
                Code::E0117,
                self.funcs[u].decl.name.span,
                format!(
                    "`{}` is userspace code, but the unit has no `main`",
                    self.funcs[u].name
                ),
            );
        }
        let something = !self.impls.is_empty()
            || own.iter().any(|&i| {
                self.funcs[i].kind != FnKind::User || !self.funcs[i].item.attrs.is_empty()
            });
        if !something {
            let root = Span {
                file: FileId(0),
                lo: 0,
                hi: 0,
            };
            self.error(
                Code::E0115,
                root,
                "the unit has no kernel-side function, struct_ops impl, main or test",
            );
        }
    }

    /// `fn main() -> i32` or `fn main(args: S) -> i32` with S a struct of option fields (§15.1–15.2).
    pub(in crate::sema::decls) fn check_main_signature(&mut self, m: usize) {
        let name_span = self.funcs[m].decl.name.span;
        let params = self.funcs[m].params.clone();
        let ret_ok = matches!(self.funcs[m].ret, Ty::Int(IntTy::I32) | Ty::Error);
        let args_struct = match params.as_slice() {
            [] => None,
            [Ty::Struct(s)] if self.structs[s.0 as usize].origin == StructOrigin::File => Some(*s),
            [Ty::Error] => None,
            _ => {
                self.error(
                    Code::E0114,
                    name_span,
                    "`main` takes nothing or one struct of command-line options",
                );
                return;
            }
        };
        if !ret_ok {
            self.error(
                Code::E0114,
                name_span,
                format!(
                    "`main` returns `i32`, not `{}`",
                    self.show(&self.funcs[m].ret)
                ),
            );
        }
        if let Some(s) = args_struct {
            self.check_args_struct(s);
        }
    }

    /// E0801: option fields are integers, bool, char, str(N) or enums.
    pub(in crate::sema::decls) fn check_args_struct(&mut self, s: StructId) {
        let info = &self.structs[s.0 as usize];
        let Some(span) = info.span else { return };
        let unit = self.unit;
        let decl = unit
            .items
            .iter()
            .chain(unit.imports.iter().flat_map(|m| m.items.iter()))
            .find_map(|i| match &i.kind {
                ItemKind::Struct(d) if d.name.span == span => Some(d),
                _ => None,
            });
        let Some(decl) = decl else { return };
        for f in &decl.fields {
            let Some(fi) = self.structs[s.0 as usize].field(&f.name.name) else {
                continue;
            };
            if !matches!(
                fi.ty,
                Ty::Int(_) | Ty::Bool | Ty::Char | Ty::Str(_) | Ty::Enum(_) | Ty::Error
            ) {
                let shown = self.show(&fi.ty);
                self.error(Code::E0801, f.name.span, format!("option `--{}` cannot have type `{shown}` (integers, bool, char, str(N) and enums can)", f.name.name));
            }
        }
    }
}
