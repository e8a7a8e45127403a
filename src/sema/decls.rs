//! (being written)
use super::Checker;
impl Checker<'_> {
    pub(super) fn check_decls(&mut self) {}
}
