//! Globals (§12.1) and config fields (§12.3).

use super::*;

impl<'a> Checker<'a, '_> {
    pub(in crate::sema::decls) fn check_global(&mut self, item: &Item, g: &GlobalDecl) {
        self.attrs_not_allowed(item);
        let at = item.span.start();
        if g.pinned && g.local {
            self.error(
                Code::E0613,
                at,
                format!(
                    "`{}` cannot be both pinned (shared through bpffs) and local (kernel-only)",
                    g.name.name
                ),
            );
        }
        if g.ty.is_none() && g.init.is_none() {
            self.error(
                Code::E0317,
                at,
                format!("`{}` needs a type or an initial value", g.name.name),
            );
        }
    }

    /// collect.rs enters config fields without checking names; a repeated one is E0110.
    pub(in crate::sema::decls) fn check_config_fields(&mut self, cfg: &ConfigDecl) {
        for (i, f) in cfg.fields.iter().enumerate() {
            if cfg.fields[..i].iter().any(|p| p.name.name == f.name.name) {
                self.error(
                    Code::E0110,
                    f.name.span,
                    format!(
                        "field `{}` of config `{}` is declared twice",
                        f.name.name, cfg.name.name
                    ),
                );
            }
        }
    }
}
