//! `lower-kmod`: what module functions need before `flatten` — checked indexing becomes a range
//! test and `ks.abort`, exactly as in kernel code. Everything else of module code (`print`,
//! `new`/`delete`, plain `core` ops) maps one to one onto C and is left to the module back end.

use super::{PassErrors, PassResult};
use crate::ir::views::KsFunc;
use crate::ir::{Module, OpId};
use crate::vocab::Target;

pub fn run(m: &mut Module) -> PassResult {
    let funcs: Vec<OpId> = m
        .funcs()
        .filter(|&f| KsFunc(f).target(m) == Target::Kmod)
        .collect();
    let mut errors = PassErrors::new();
    for f in funcs {
        super::lower_bpf::lower_index_checks(m, f, &mut errors);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
