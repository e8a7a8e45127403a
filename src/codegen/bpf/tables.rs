//! What the runtime must set up in a freshly loaded object that the object itself cannot say
//! (runtime/ABI.md §2): the initial value of the pinned globals, which live in a plain array map
//! whose pin may outlive the object, and the contents of the tail-call program array. (Config
//! defaults are the initial data of each config's section.)

use crate::ir::layout::{image, struct_decl};
use crate::ir::views::{KsExtern, KsFunc, KsGlobal, KsMap, KsProgArray, KsStruct};
use crate::ir::{Attr, Module, Opcode, Type};

/// The object and its start-up tables, read from the kernel-side module it was compiled from.
pub struct ObjectTables {
    pub object: Vec<u8>,
    pub pinned_maps: Vec<String>,
    /// Ring buffers and perf event arrays, which may have a default handler in userspace.
    pub event_buffers: Vec<String>,
    /// The initial `__pinned_globals` value (empty when the unit has no pinned globals).
    pub pinned_globals_init: Vec<u8>,
    /// (program array, index, program) for every tail-call target.
    pub prog_slots: Vec<(String, u32, String)>,
    /// Where the kfuncs are declared and called, for the runtime's account of a kernel that
    /// lacks one or refuses a call (docs/language.md §5.4).
    pub kfuncs: Vec<KfuncSite>,
}

/// A kfunc's declaration (`program` empty) or its first call in a program, as `FILE:LINE`.
pub struct KfuncSite {
    pub kfunc: String,
    pub place: String,
    pub program: String,
}

pub fn object_tables(m: &Module, object: Vec<u8>) -> ObjectTables {
    let mut t = ObjectTables {
        object,
        pinned_maps: Vec::new(),
        event_buffers: Vec::new(),
        pinned_globals_init: Vec::new(),
        prog_slots: Vec::new(),
        kfuncs: Vec::new(),
    };
    for &op in m.top_ops() {
        if let Some(map) = KsMap::of(m, op) {
            if map.pinned(m) {
                t.pinned_maps.push(map.name(m).to_string());
            }
            if map.kind(m).is_event_stream() {
                t.event_buffers.push(map.name(m).to_string());
            }
        } else if let Some(e) = KsExtern::of(m, op) {
            if e.helper_id(m).is_none() {
                let loc = m.op(op).loc;
                let file = m.files.get(loc.file as usize).map_or("", String::as_str);
                t.kfuncs.push(KfuncSite {
                    kfunc: e.name(m).to_string(),
                    place: format!("{file}:{}", loc.line),
                    program: String::new(),
                });
            }
        } else if let Some(pa) = KsProgArray::of(m, op) {
            let name = pa.name(m).to_string();
            for (i, p) in pa.programs(m).iter().enumerate() {
                if let Attr::Sym(prog) = p {
                    t.prog_slots.push((name.clone(), i as u32, prog.clone()));
                }
            }
        }
    }
    // `new` and `delete` in kernel code call kfuncs too (Linux 6.2): the first of each is where a
    // kernel without them is reported.
    for (opcode, kfunc, construct) in [
        (Opcode::BpfObjNew, "bpf_obj_new_impl", "`new`"),
        (Opcode::BpfObjDrop, "bpf_obj_drop_impl", "`delete`"),
    ] {
        let first = m
            .funcs()
            .find_map(|f| m.collect_nested(f, |d| d.opcode == opcode).first().copied());
        if let Some(op) = first {
            let loc = m.op(op).loc;
            let file = m.files.get(loc.file as usize).map_or("", String::as_str);
            t.kfuncs.push(KfuncSite {
                kfunc: kfunc.to_string(),
                place: format!("{file}:{}: {construct} in kernel code", loc.line),
                program: String::new(),
            });
        }
    }
    // The first call of each kfunc in each program: where a kernel that lets no program of that
    // kind call kfuncs refuses it.
    for f in m.funcs().filter(|&f| KsFunc(f).kind(m).is_some()) {
        let program = m.symbol(f).unwrap_or_default().to_string();
        let mut seen = std::collections::HashSet::new();
        for call in m.collect_nested(f, |d| d.opcode == Opcode::BpfKfuncCall) {
            let Some(Attr::Sym(kfunc)) = m.attr(call, "callee") else {
                continue;
            };
            if seen.insert(kfunc.clone()) {
                let loc = m.op(call).loc;
                let file = m.files.get(loc.file as usize).map_or("", String::as_str);
                t.kfuncs.push(KfuncSite {
                    kfunc: kfunc.clone(),
                    place: format!("{file}:{}", loc.line),
                    program: program.clone(),
                });
            }
        }
    }
    t.pinned_globals_init = pinned_globals_image(m);
    t
}

/// The `__pinned_globals` struct's initial bytes: each pinned global's initialiser at its field.
fn pinned_globals_image(m: &Module) -> Vec<u8> {
    let Some(decl) = struct_decl(m, crate::ir::symbols::PINNED_GLOBALS_STRUCT) else {
        return Vec::new();
    };
    let fields = KsStruct(decl).fields(m).to_vec();
    let inits: Vec<Attr> = fields
        .iter()
        .map(|(name, ty)| {
            let init = m
                .lookup_symbol(name)
                .and_then(|g| KsGlobal::of(m, g))
                .and_then(|g| g.init(m).cloned());
            init.filter(|a| image(m, ty, a).is_some())
                .unwrap_or_else(|| zero_of(ty))
        })
        .collect();
    let ty = Type::Struct(crate::ir::symbols::PINNED_GLOBALS_STRUCT.into());
    image(m, &ty, &Attr::List(inits)).unwrap_or_default()
}

/// An initialiser that is all zero bytes for `ty`.
fn zero_of(ty: &Type) -> Attr {
    match ty {
        Type::Str(_) => Attr::Str(Vec::new()),
        Type::Array(e, _) => Attr::List(vec![zero_of(e)]),
        Type::Struct(_) => Attr::List(Vec::new()),
        _ => Attr::Int(0),
    }
}
