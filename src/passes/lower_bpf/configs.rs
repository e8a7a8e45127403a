//! Config blocks and pinned globals (§12.1, §12.3), as maps.

use super::*;
use crate::ir::OpData;

/// The map holding config `c`: `c_config_map`, one entry of struct `c_config`.
pub(super) fn config_map(config: &str) -> String {
    format!("{config}_config_map")
}

pub(super) fn config_addr(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsConfigAddr(op);
    let (config, ty) = (v.config(e.m()).to_string(), e.ty(v.addr_value(e.m())));
    Ok(vec![e.array_entry(&config_map(&config), ty)])
}

/// Config reads in the arms of one branch (`if (svc == DNS) { limit = cfg.dns_max } else if …`,
/// a `match`) would each look the config up: one `ks.config_addr` per config now stands before
/// the branch and every read takes its address, as C looks its config up once. Not where the
/// branch makes calls: the entry would have to live in a callee-saved register or a stack slot
/// through them, where a lookup on each path costs less.
pub(super) fn share_config_reads(m: &mut Module, func: OpId) {
    let reads = m.collect_nested(func, |o| o.opcode == Opcode::KsConfigAddr);
    let mut by_config: HashMap<(String, Type), Vec<OpId>> = HashMap::new();
    for op in reads {
        let v = KsConfigAddr(op);
        let key = (
            v.config(m).to_string(),
            m.value_type(v.addr_value(m)).clone(),
        );
        by_config.entry(key).or_default().push(op);
    }
    for (_, ops) in by_config {
        let Some((&first, rest)) = ops.split_first() else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        let Some((block, at, last)) = dominating_point(m, &ops) else {
            continue;
        };
        // Only the arms of one branch: reads in ops that follow each other (a test's `&&`, then
        // its body) already share a lookup where one runs after the other, and a lookup before
        // all of them would run on paths that read nothing.
        let holder = m.block(block).ops[at];
        let branches = matches!(m.op(holder).opcode, Opcode::KsIf | Opcode::KsSwitch);
        if at != last || !branches || !m.collect_nested(holder, makes_call).is_empty() {
            continue;
        }
        let shared = m.op(first).results[0];
        m.detach_op(first);
        m.place_op(first, block, Some(at));
        for &op in rest {
            m.replace_op(op, &[shared]);
        }
    }
}

/// Ops that become calls, after which the caller-saved registers are lost.
fn makes_call(d: &OpData) -> bool {
    matches!(
        d.opcode,
        Opcode::KsMapLookup
            | Opcode::KsMapUpdate
            | Opcode::KsMapDelete
            | Opcode::KsMapAdd
            | Opcode::KsMapPush
            | Opcode::KsMapPop
            | Opcode::KsMapContains
            | Opcode::KsRedirectMap
            | Opcode::KsPerfOutput
            | Opcode::KsRbReserve
            | Opcode::KsRbSubmit
            | Opcode::KsRbDiscard
            | Opcode::KsRbOutput
            | Opcode::KsProbeRead
            | Opcode::KsCallExtern
            | Opcode::KsPrint
            | Opcode::KsNew
            | Opcode::KsDelete
            | Opcode::KsTailCall
            | Opcode::CoreCall
            | Opcode::CoreCallIndirect
    )
}

/// The innermost block holding every op of `ops` (or an op around it), with the indexes there
/// of the first and the last that does: every one of them runs after the first.
fn dominating_point(m: &Module, ops: &[OpId]) -> Option<(BlockId, usize, usize)> {
    // Each op's enclosing (block, index) pairs, outermost first.
    let chain = |op: OpId| {
        let mut out = Vec::new();
        let mut at = Some(op);
        while let Some(o) = at {
            let Some(pos) = m.position(o) else { break };
            out.push(pos);
            at = m.parent_op(o);
        }
        out.reverse();
        out
    };
    let chains: Vec<Vec<(BlockId, usize)>> = ops.iter().map(|&o| chain(o)).collect();
    let shortest = chains.iter().map(Vec::len).min()?;
    let depth = (0..shortest)
        .take_while(|&d| chains.iter().all(|c| c[d].0 == chains[0][d].0))
        .count();
    let level = depth.checked_sub(1)?;
    let block = chains[0][level].0;
    let at = chains.iter().map(|c| c[level].1).min()?;
    let last = chains.iter().map(|c| c[level].1).max()?;
    Some((block, at, last))
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
