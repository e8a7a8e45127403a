//! Map-entry bindings (§11.3): what invalidates them.

use super::*;

impl<'a> Checker<'a, '_> {
    /// Bindings to entries of map `mi` are invalid from here on: `by` is the operation.
    pub(in crate::sema::stmt) fn invalidate_bindings(cx: &mut FnCtx, mi: usize, by: Span) {
        for (_, l) in cx.scopes.iter_mut().flatten() {
            if l.entry_of == Some(mi) {
                l.invalidated_by = Some(by);
                l.non_null = false;
            }
        }
    }

    /// E0609 for a use of a map-entry binding that an earlier operation may have invalidated;
    /// reported once per binding (the first use) so one mistake gives one error.
    pub(in crate::sema) fn check_binding_valid(&mut self, cx: &mut FnCtx, name: &str, at: Span) {
        let Some(l) = cx.lookup_mut(name) else { return };
        let (Some(by), Some(mi), false) = (l.invalidated_by, l.entry_of, l.invalidation_reported)
        else {
            return;
        };
        l.invalidation_reported = true;
        let map = self.maps[mi].name.clone();
        self.error_because(
            Code::E0609,
            at,
            format!("`{name}` is bound to an entry of `{map}`, which may have been deleted; look the entry up again (`if (var {name} = {map}[k])`)"),
            by,
            format!("this `delete` on `{map}` invalidates every binding to its entries"),
        );
    }

    /// Before a loop body: a `delete` in the body that can reach the next iteration invalidates the
    /// bindings declared outside the loop for the whole body (uses before the delete run after it
    /// in the next iteration).
    pub(in crate::sema::stmt) fn invalidate_for_loop(&self, cx: &mut FnCtx, body: &Block) {
        let mut deletes = Vec::new();
        self.loop_deletes(cx, body, &mut deletes);
        for (mi, span) in deletes {
            Self::invalidate_bindings(cx, mi, span);
        }
    }

    pub(in crate::sema::stmt) fn loop_deletes(
        &self,
        cx: &FnCtx,
        b: &Block,
        out: &mut Vec<(usize, Span)>,
    ) {
        for (i, s) in b.stmts.iter().enumerate() {
            // A delete followed by a return or throw in its block never reaches the back edge.
            let leaves = b.stmts[i + 1..]
                .iter()
                .any(|t| matches!(t.kind, StmtKind::Return(_) | StmtKind::Throw(_)));
            match &s.kind {
                StmtKind::Delete(e) if !leaves => {
                    if let Some(mi) = self.map_entry_of(cx, e) {
                        out.push((mi, s.span));
                    }
                }
                StmtKind::If { then, els, .. } if !leaves => {
                    self.loop_deletes(cx, then, out);
                    let mut next = els.as_deref();
                    while let Some(e) = next {
                        match e {
                            ElseBranch::Block(b) => {
                                self.loop_deletes(cx, b, out);
                                next = None;
                            }
                            ElseBranch::If(s) => {
                                let StmtKind::If { then, els, .. } = &s.kind else {
                                    break;
                                };
                                self.loop_deletes(cx, then, out);
                                next = els.as_deref();
                            }
                        }
                    }
                }
                StmtKind::While { body, .. }
                | StmtKind::ForRange { body, .. }
                | StmtKind::ForEach { body, .. }
                    if !leaves =>
                {
                    self.loop_deletes(cx, body, out)
                }
                StmtKind::Try { body, catches } if !leaves => {
                    self.loop_deletes(cx, body, out);
                    for c in catches {
                        self.loop_deletes(cx, &c.body, out);
                    }
                }
                StmtKind::Expr(e) if !leaves => {
                    for b in match_arm_blocks(e) {
                        self.loop_deletes(cx, b, out);
                    }
                }
                _ => {}
            }
        }
    }
}
