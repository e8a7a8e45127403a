//! (being written)
use super::Checker;
impl Checker<'_> {
    pub(super) fn check_bodies(&mut self) {}
}
