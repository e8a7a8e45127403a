//! The program context (§9.3): field loads and stores by kind.

use super::*;

/// Where a context field lives: its UAPI offset, the access width, and the element count of an
/// array field (`cb`).
pub(super) struct CtxField {
    offset: i128,
    width: i128,
    count: Option<u32>,
}

pub(super) fn ctx_field(m: &Module, ctx: Value, field: &[u8]) -> Result<CtxField, String> {
    let field = String::from_utf8_lossy(field);
    let Some(Type::Struct(name)) = m.value_type(ctx).pointee() else {
        return Err(format!(
            "the context operand is not a struct pointer: {}",
            m.value_type(ctx)
        ));
    };
    let decl = struct_decl(m, name)
        .map(KsStruct)
        .ok_or_else(|| format!("no ks.struct declares the context !{name}"))?;
    let i = decl
        .fields(m)
        .iter()
        .position(|(n, _)| *n == field)
        .ok_or_else(|| format!("!{name} has no field `{field}`"))?;
    let Some(&Attr::Int(offset)) = decl.offsets(m).get(i) else {
        return Err(format!("!{name} has no offset for `{field}`"));
    };
    let (width, count) = match &decl.fields(m)[i].1 {
        Type::Array(elem, n) => (size_of(m, elem), Some(*n)),
        // Packet pointers are __u32 fields in the UAPI struct; the kernel rewrites the load.
        Type::Ptr(_) => (Some(4), None),
        t => (size_of(m, t), None),
    };
    let width = width.ok_or_else(|| format!("the size of !{name}.{field} is unknown"))? as i128;
    Ok(CtxField {
        offset,
        width,
        count,
    })
}

/// Emits `access` at the offset of the addressed context field. An array element needs a constant
/// offset: a run-time index selects among the in-range elements with a switch and aborts when out
/// of range.
pub(super) fn ctx_access(
    e: &mut Emit,
    ctx: Value,
    field: &[u8],
    index: Option<Value>,
    result: Option<Type>,
    access: &dyn Fn(&mut Emit, CtxField) -> Option<Value>,
) -> Lowered {
    let f = ctx_field(e.m(), ctx, field)?;
    let (index, count) = match (index, f.count) {
        (None, None) => return Ok(access(e, f).into_iter().collect()),
        (Some(i), Some(n)) => (i, n),
        (None, Some(_)) => {
            return Err(format!(
                "the context array `{}` must be accessed element by element",
                String::from_utf8_lossy(field)
            ))
        }
        (Some(_), None) => {
            return Err(format!(
                "the context field `{}` is not an array",
                String::from_utf8_lossy(field)
            ))
        }
    };
    let element = |k: i128| CtxField {
        offset: f.offset + k * f.width,
        width: f.width,
        count: None,
    };
    if let Some(k) = const_value(e.m(), index) {
        if !(0..count as i128).contains(&k) {
            return Err(format!("context index {k} is out of range 0..{count}"));
        }
        return Ok(access(e, element(k)).into_iter().collect());
    }
    let results: Vec<Type> = result.into_iter().collect();
    let sw = e.b.ks_switch(
        index,
        (0..count as i128).map(Attr::Int).collect(),
        &results,
        count as usize + 1,
    );
    for k in 0..count as usize {
        let arm = e.b.entry(sw, k);
        e.nested(arm, |e| {
            let v: Vec<Value> = access(e, element(k as i128)).into_iter().collect();
            e.b.bpf_barrier();
            e.b.ks_yield(&v);
        });
    }
    let default = e.b.entry(sw, count as usize);
    e.nested(default, |e| {
        e.b.ks_abort(OUT_OF_BOUNDS);
    });
    Ok(e.m().op(sw).results.clone())
}

pub(super) fn ctx_load(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsCtxLoad(op);
    let (ctx, field, index, ty) = (
        v.ctx(e.m()),
        v.field(e.m()).to_vec(),
        v.index(e.m()).first().copied(),
        e.ty(v.value_value(e.m())),
    );
    ctx_access(e, ctx, &field, index, Some(ty.clone()), &|e, f| {
        Some(e.b.bpf_ctx_load(ctx, f.offset, f.width, ty.clone()))
    })
}

pub(super) fn ctx_store(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsCtxStore(op);
    let (value, ctx, field, index) = (
        v.value(e.m()),
        v.ctx(e.m()),
        v.field(e.m()).to_vec(),
        v.index(e.m()).first().copied(),
    );
    ctx_access(e, ctx, &field, index, None, &|e, f| {
        e.b.bpf_ctx_store(value, ctx, f.offset, f.width);
        None
    })
}
