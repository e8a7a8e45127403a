//! Kernel objects from `new` (§13.6): `bpf_obj_new` / `bpf_obj_drop`, and the automatic delete of
//! an object its function did not delete. Each allocation keeps its pointer in an "owned" slot and
//! registers a cleanup that drops whatever the slot still holds; `delete v` drops `v` when it is not
//! null and first clears the owned slot of the allocation stored in variable `v`, so no path drops
//! an object twice (sema keeps objects in the local variables of their allocating function, E0612).
//! The association is static (which variable an allocation was stored in), because the verifier
//! cannot follow a run-time comparison of two copies of one pointer.

use super::{Emit, Lowered};
use crate::ir::views::KsNew;
use crate::ir::{OpId, Value};
use crate::vocab::CmpPred;

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
    // The variables the allocation is stored into (`var n = new T()`).
    let result = v.addr_value(e.m());
    let func = e.m().top_level_of(op);
    for store in e.m().collect_nested(func, |o| {
        o.opcode == crate::ir::Opcode::CoreStore && o.operands[0] == result
    }) {
        let var = e.m().op(store).operands[1];
        e.cx.owned_by_var.insert(var, owned);
    }
    Ok(vec![obj])
}

/// `delete v`: nothing for null; otherwise clear the owned slot of `v`'s allocation, then drop.
pub fn delete(e: &mut Emit, op: OpId) -> Lowered {
    let p: Value = e.m().op(op).operands[0];
    let var = match e.m().value(p).def {
        crate::ir::ValueDef::Result(load, _)
            if e.m().op(load).opcode == crate::ir::Opcode::CoreLoad =>
        {
            Some(e.m().op(load).operands[0])
        }
        _ => None,
    };
    let owned = var.and_then(|v| e.cx.owned_by_var.get(&v).copied());
    e.if_non_null(p, |e| {
        if let Some(slot) = owned {
            e.store_zero(slot);
        }
        e.b.bpf_obj_drop(p);
    });
    Ok(vec![])
}

impl Emit<'_> {
    /// `if (p != null) { f }`.
    fn if_non_null(&mut self, p: Value, f: impl FnOnce(&mut Emit<'_>)) {
        let null = self.b.core_const(0, self.ty(p));
        let present = self.b.core_cmp(p, null, CmpPred::Ne);
        let op = self.b.ks_if(present, None, &[]);
        let then = self.b.entry(op, 0);
        self.nested(then, f);
    }
}
