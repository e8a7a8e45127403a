//! Config blocks and pinned globals (§12.1, §12.3), as maps.

use super::*;

/// The map holding config `c`: `c_config_map`, one entry of struct `c_config`.
pub(super) fn config_map(config: &str) -> String {
    format!("{config}_config_map")
}

pub(super) fn config_addr(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsConfigAddr(op);
    let (config, ty) = (v.config(e.m()).to_string(), e.ty(v.addr_value(e.m())));
    Ok(vec![e.array_entry(&config_map(&config), ty)])
}

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

/// `BPF_F_MMAPABLE`: the runtime maps config and pinned-global values into the host process, so
/// userspace reads and writes them in place (runtime/ABI.md §5).
pub(super) const MMAPABLE: i128 = 0x400;

/// Declares the map of every config, after the config: kernel code reads it and userspace code
/// reaches it through the runtime, whichever side uses it.
pub(super) fn declare_config_maps(m: &mut Module) {
    let configs: Vec<OpId> = m
        .top_ops()
        .iter()
        .copied()
        .filter(|&o| m.op(o).opcode == Opcode::KsConfig)
        .collect();
    for decl in configs {
        let c = KsConfig(decl).name(m).to_string();
        let name = config_map(&c);
        if m.lookup_symbol(&name).is_none() {
            let value = Type::Struct(format!("{c}_config").as_str().into());
            declare(m, Some(decl), |b| {
                b.ks_map(
                    &name,
                    MapKind::Array,
                    Some(Type::u32()),
                    value,
                    1,
                    MMAPABLE,
                    false,
                    None,
                );
            });
        }
    }
}

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
