//! Pinned globals (§12.1), gathered into one pinned one-entry map. Configs need no lowering: each
//! is a global in the object's own `.data.NAME` section, declared by the BPF back end (§12.3).

use super::*;

pub(super) fn pinned_global_addr(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsGlobalAddr(op);
    let (global, ty) = (v.global(e.m()).to_string(), e.ty(v.addr_value(e.m())));
    let entry = e.array_entry(
        PINNED_GLOBALS_MAP,
        Type::ptr(Type::Struct(PINNED_GLOBALS_STRUCT.into())),
    );
    Ok(vec![e.b.core_field_addr(entry, global.into_bytes(), ty)])
}

/// Inserts module-level declarations right after `after` (with its location), or else before the
/// first function.
pub(super) fn declare(m: &mut Module, after: Option<OpId>, build: impl FnOnce(&mut Builder)) {
    let at = match after.and_then(|o| m.position(o)) {
        Some((_, i)) => Some(i + 1),
        None => m
            .top_ops()
            .iter()
            .position(|&o| m.op(o).opcode == Opcode::KsFunc),
    };
    let body = m.body;
    let loc = after.map(|o| m.op(o).loc).unwrap_or_default();
    let mut b = Builder::new(m, body);
    b.at = at;
    b.loc = loc;
    build(&mut b);
}

/// `BPF_F_MMAPABLE`: the runtime maps pinned-global values into the host process, so
/// userspace reads and writes them in place (runtime/ABI.md §5).
pub(super) const MMAPABLE: i128 = 0x400;

/// Gathers the pinned globals, in declaration order, into one struct in a pinned one-entry array
/// map. Returns their names.
pub(super) fn declare_pinned_globals(m: &mut Module) -> Result<HashSet<String>, PassErrors> {
    let fields: Vec<(String, Type)> = m
        .top_ops()
        .iter()
        .filter_map(|&o| KsGlobal::of(m, o))
        .filter(|g| g.storage(m) == Storage::Pinned)
        .map(|g| (g.name(m).to_string(), g.ty(m).clone()))
        .collect();
    let names: HashSet<String> = fields.iter().map(|(n, _)| n.clone()).collect();
    if fields.is_empty() || m.lookup_symbol(PINNED_GLOBALS_MAP).is_some() {
        return Ok(names);
    }
    let Some((offsets, size, align)) = layout::c_layout(m, &fields) else {
        return Err(vec![crate::passes::PassError::internal(
            None,
            "a pinned global has a type without a known size",
        )]);
    };
    declare(m, None, |b| {
        b.ks_struct(
            PINNED_GLOBALS_STRUCT,
            fields,
            offsets,
            size as i128,
            align as i128,
            StructOrigin::File,
            None,
        );
        b.ks_map(
            PINNED_GLOBALS_MAP,
            MapKind::Array,
            Some(Type::u32()),
            Type::Struct(PINNED_GLOBALS_STRUCT.into()),
            1,
            MMAPABLE,
            true,
            None,
        );
    });
    Ok(names)
}
