//! Checked indexing (§6.5, §6.6, §13.4): a range test and an abort before each index.

use super::*;

/// `a[i]` with a run-time index: aborts unless `i < N`. The index is widened to u64 first, so a
/// negative signed index is a huge unsigned one and fails the same test.
pub(super) fn index_addr(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsIndexAddr(op);
    let (base, index, ty) = (v.base(e.m()), v.index(e.m()), e.ty(v.addr_value(e.m())));
    let n = match e.pointee(base) {
        Type::Array(_, n) | Type::Str(n) => n,
        t => return Err(format!("cannot index {t}")),
    };
    let i = e.cast(index, &Type::u64());
    let limit = e.u64(n as i128);
    let out = e.b.core_cmp(i, limit, CmpPred::Ge);
    e.abort_if(out, OUT_OF_BOUNDS);
    // LLVM turns `base + i * size` into `base | i * size` when the base's alignment leaves the
    // low bits free (stack and global arrays indexed by a 0/1 value), and the verifier refuses
    // bitwise operations on pointers. An opaque copy of the tested index hides its bits.
    let i = if e.cx.bpf && const_value(e.m(), index).is_none() {
        e.b.bpf_opaque(i)
    } else {
        i
    };
    Ok(vec![e.b.core_elem_addr(base, i, ty)])
}
