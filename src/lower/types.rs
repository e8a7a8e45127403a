//! Checked types to IR types, and the `ks.struct` declarations of every struct the module uses.

use super::Lowerer;
use crate::ir::{Attr, FnType, Type};
use crate::sema::env::{KernelLayout, StructOrigin};
use crate::sema::layout::Layout;
use crate::sema::types::{StructId, Ty};
use std::rc::Rc;

pub fn ir_type(lw: &mut Lowerer, t: &Ty) -> Type {
    match t {
        Ty::Int(i) => Type::Int(*i),
        Ty::Bool => Type::Bool,
        Ty::Char => Type::u8(),
        Ty::Void | Ty::Error => Type::Void,
        Ty::Str(n) => Type::Str(*n),
        Ty::Array(e, n) => Type::Array(Rc::new(ir_type(lw, e)), *n),
        Ty::FillArray(e) => Type::Array(Rc::new(ir_type(lw, e)), 1),
        Ty::Ptr(p) => Type::ptr(ir_type(lw, p)),
        Ty::Null => Type::ptr(Type::Void),
        Ty::Struct(id) => {
            lw.used_structs.insert(*id);
            Type::Struct(Rc::from(lw.ck.structs[id.0 as usize].name.as_str()))
        }
        Ty::Enum(id) => Type::Int(lw.ck.enums[id.0 as usize].repr),
        Ty::Fn(sig) => Type::Func(Rc::new(FnType {
            params: sig.params.iter().map(|p| ir_type(lw, p)).collect(),
            ret: ir_type(lw, &sig.ret),
        })),
        Ty::ProgramHandle => Type::ProgHandle,
        Ty::PerfAttachment => Type::PerfHandle,
    }
}

/// UAPI offsets of the context fields of §9.3 (the kernel rewrites these accesses).
const CONTEXT_OFFSETS: &[(&str, &str, u32)] = &[
    ("xdp_md", "data", 0),
    ("xdp_md", "data_end", 4),
    ("xdp_md", "data_meta", 8),
    ("xdp_md", "ingress_ifindex", 12),
    ("xdp_md", "rx_queue_index", 16),
    ("xdp_md", "egress_ifindex", 20),
    ("__sk_buff", "len", 0),
    ("__sk_buff", "pkt_type", 4),
    ("__sk_buff", "mark", 8),
    ("__sk_buff", "queue_mapping", 12),
    ("__sk_buff", "protocol", 16),
    ("__sk_buff", "vlan_present", 20),
    ("__sk_buff", "vlan_tci", 24),
    ("__sk_buff", "vlan_proto", 28),
    ("__sk_buff", "priority", 32),
    ("__sk_buff", "ingress_ifindex", 36),
    ("__sk_buff", "ifindex", 40),
    ("__sk_buff", "tc_index", 44),
    ("__sk_buff", "cb", 48),
    ("__sk_buff", "hash", 68),
    ("__sk_buff", "tc_classid", 72),
    ("__sk_buff", "data", 76),
    ("__sk_buff", "data_end", 80),
];

pub fn context_offset(strukt: &str, field: &str) -> Option<u32> {
    CONTEXT_OFFSETS
        .iter()
        .find(|(s, f, _)| *s == strukt && *f == field)
        .map(|e| e.2)
}

impl Lowerer<'_, '_> {
    /// Emits a `ks.struct` for every used struct (and the structs their fields use) at the top of
    /// the module, in a stable order.
    pub(super) fn struct_decls(&mut self) {
        let mut done = std::collections::BTreeSet::new();
        let mut decls = Vec::new();
        while let Some(&id) = self.used_structs.iter().find(|id| !done.contains(*id)) {
            done.insert(id);
            decls.push(id);
            let fields = self.ck.structs[id.0 as usize].fields.clone();
            for f in &fields {
                ir_type(self, &f.ty);
            }
        }
        decls.sort();
        for (pos, id) in decls.into_iter().enumerate() {
            self.struct_decl(id, pos);
        }
    }

    fn struct_decl(&mut self, id: StructId, pos: usize) {
        let ck = self.ck;
        let s = &ck.structs[id.0 as usize];
        let layout = Layout {
            structs: &ck.structs,
            enums: &ck.enums,
        };
        let fields: Vec<(String, Type)> = s
            .fields
            .iter()
            .map(|f| (f.name.clone(), ir_type(self, &f.ty)))
            .collect();
        let (offsets, size, align): (Vec<u64>, u64, u64) = match s.origin {
            StructOrigin::File | StructOrigin::Config | StructOrigin::Builtin => layout.c_layout(s),
            StructOrigin::Context => (
                s.fields
                    .iter()
                    .map(|f| context_offset(&s.name, &f.name).unwrap_or(0) as u64)
                    .collect(),
                if s.name == "xdp_md" { 24 } else { 192 },
                4,
            ),
            StructOrigin::Kernel => {
                let ks = ck
                    .btf
                    .get()
                    .and_then(|b| s.btf_id.and_then(|i| b.struct_by_id(i)));
                let offs = s
                    .fields
                    .iter()
                    .map(|f| {
                        ks.as_ref()
                            .and_then(|k| k.member(&f.name))
                            .map(|m| m.access_offset() as u64)
                            .unwrap_or(0)
                    })
                    .collect();
                // What C gives the type (sema lays out user structs holding it the same way),
                // so copies of it (an `in6_addr` into a key) move in words rather than bytes.
                let k = s
                    .kernel_layout
                    .unwrap_or(KernelLayout { size: 0, align: 1 });
                (offs, k.size, k.align)
            }
        };
        let origin = s.origin;
        let loc = s.span.map(|sp| self.loc(sp)).unwrap_or_default();
        let name = s.name.clone();
        let btf_id = s.btf_id.map(|i| i as i128);
        let body = self.m.body;
        let mut b = crate::ir::Builder::new(&mut self.m, body);
        b.at = Some(pos);
        b.loc = loc;
        b.ks_struct(
            &name,
            fields,
            offsets.into_iter().map(|o| Attr::Int(o as i128)).collect(),
            size as i128,
            align as i128,
            origin,
            btf_id,
        );
    }
}
