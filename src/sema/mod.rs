//! Semantic analysis (placeholder being replaced).
use crate::diagnostics::Diagnostics;
use crate::syntax::ast::Unit;
use std::path::PathBuf;

pub struct CheckOptions {
    pub btf_path: Option<PathBuf>,
    pub compat: bool,
}

pub struct Checked;

pub fn check(_unit: &Unit, _opts: &CheckOptions, _diags: &mut Diagnostics) -> Checked {
    Checked
}
