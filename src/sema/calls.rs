//! (being written)
use super::Checker;
impl Checker<'_> {
    pub(super) fn check_call_graph(&mut self) {}
}
