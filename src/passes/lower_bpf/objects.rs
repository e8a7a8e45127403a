//! Kernel objects from `new` (§13.6): `bpf_obj_new` / `bpf_obj_drop`, and the automatic delete of
//! an object its function did not delete. Each allocation keeps its pointer in an "owned" slot and
//! registers a cleanup that drops whatever the slot still holds; `delete p` drops `p` when it is not
//! null and first clears every owned slot holding it, so no path drops an object twice (sema keeps
//! objects inside their allocating function, E0612).

use super::{Emit, Lowered};
use crate::ir::views::KsNew;
use crate::ir::{OpId, Value};

pub fn new(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsNew(op);
    let (ty, ptr_ty) = (v.ty(e.m()).clone(), e.ty(v.addr_value(e.m())));
    let owned = e.volatile_slot(ptr_ty.clone());
    let obj = e.b.bpf_obj_new(ty, ptr_ty.clone());
    e.b.core_store(obj, owned);
    let cleanup = e.b.ks_defer();
    let body = e.b.entry(cleanup, 0);
    e.nested(body, |e| {
        let held = e.load(owned);
        e.if_non_null(held, |e| {
            e.b.bpf_obj_drop(held);
            e.store_zero(owned);
        });
    });
    e.cx.owned.push(owned);
    Ok(vec![obj])
}

/// `delete p`: nothing for null; otherwise forget `p` in the owned slots, then drop it.
pub fn delete(e: &mut Emit, op: OpId) -> Lowered {
    let p: Value = e.m().op(op).operands[0];
    let owned: Vec<Value> = e.cx.owned.iter().copied().filter(|&s| e.pointee(s) == e.ty(p)).collect();
    e.if_non_null(p, |e| {
        for slot in owned {
            let held = e.load(slot);
            let same = e.b.core_cmp(held, p, "eq");
            let clear = e.b.ks_if(same, &[]);
            let then = e.b.entry(clear, 0);
            e.nested(then, |e| e.store_zero(slot));
        }
        e.b.bpf_obj_drop(p);
    });
    Ok(vec![])
}

impl Emit<'_> {
    /// `if (p != null) { f }`.
    fn if_non_null(&mut self, p: Value, f: impl FnOnce(&mut Emit<'_>)) {
        let null = self.b.core_const(0, self.ty(p));
        let present = self.b.core_cmp(p, null, "ne");
        let op = self.b.ks_if(present, &[]);
        let then = self.b.entry(op, 0);
        self.nested(then, f);
    }
}
