//! Kernel structs through CO-RE and kernel calls (§10.4, §9.6).

use super::*;

pub(super) fn kfield_addr(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsKfieldAddr(op);
    let (base, field, ty) = (
        v.base(e.m()),
        v.field(e.m()).to_vec(),
        e.ty(v.addr_value(e.m())),
    );
    let Type::Struct(name) = e.pointee(base) else {
        return Err(format!("the base is not a struct pointer: {}", e.ty(base)));
    };
    let kernel = struct_decl(e.m(), &name)
        .is_some_and(|s| KsStruct(s).origin(e.m()) == StructOrigin::Kernel);
    if !kernel {
        return Err(format!(
            "!{name} is not a kernel struct (CO-RE needs its BTF)"
        ));
    }
    // A relocated offset is a load of LLVM's relocation global, which GVN and LICM treat as any
    // load: reused from another block or hoisted out of a loop, it no longer folds into the
    // access, and a context pointer plus a register is refused. The barrier keeps the offset next
    // to its access (pointers of other kinds take a constant register offset).
    let chained = matches!(e.m().value(base).def, ValueDef::Result(d, 0) if matches!(e.m().op(d).opcode, Opcode::BpfCoreFieldAddr | Opcode::BpfCoreElemAddr));
    if !chained && e.cx.tracepoint_contexts.contains(name.as_ref() as &str) {
        e.b.bpf_barrier();
    }
    Ok(vec![e.b.bpf_core_field_addr(base, &name, field, ty)])
}

/// Reads through an untrusted kernel or user pointer into a zeroed buffer, so a fault reads 0.
pub(super) fn probe_read(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsProbeRead(op);
    let (addr, ty) = (v.addr(e.m()), e.ty(v.value_value(e.m())));
    let size = e.size(&ty)?;
    let out = e.scratch(Role::Out, ty);
    e.store_zero(out);
    let size = e.b.core_const(size as i128, Type::u32());
    let helper = if v.user(e.m()) == Some(true) {
        PROBE_READ_USER
    } else {
        PROBE_READ_KERNEL
    };
    e.helper(helper, &[out, size, addr], Type::i64());
    Ok(vec![e.load(out)])
}

pub(super) fn call_extern(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsCallExtern(op);
    let m = e.m();
    let callee = v.callee(m).to_string();
    let args = v.args(m).to_vec();
    let results: Vec<Type> = v
        .results_value(m)
        .iter()
        .map(|&r| m.value_type(r).clone())
        .collect();
    let decl = declaration(m, Opcode::KsExtern, &callee)
        .ok_or_else(|| format!("@{callee} is not a declared extern"))?;
    let call = match KsExtern(decl).helper_id(m) {
        Some(id) => {
            // A variadic helper called with a prefix of its parameters (§5.4): the remaining
            // slots pass 0, so the helper never reads an unset register.
            let mut args = args;
            let slots = crate::vocab::helpers::by_id(id).map_or(0, |h| h.params.len());
            while args.len() < slots {
                args.push(e.b.core_const(0, Type::u64()));
            }
            e.b.bpf_helper_call(&args, id, callee.as_bytes(), &results)
        }
        None => e.b.bpf_kfunc_call(&args, &callee, &results),
    };
    Ok(e.m().op(call).results.clone())
}

/// `print` in kernel code: the trace pipe. `%s` arguments are passed as pointers to stack copies.
pub(super) fn print(e: &mut Emit, op: OpId) -> Lowered {
    let v = KsPrint(op);
    let (format, args) = (v.format(e.m()).to_vec(), v.args(e.m()).to_vec());
    let args: Vec<Value> = args
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            if matches!(e.ty(a), Type::Str(_)) {
                e.spill(Role::Arg(i), a)
            } else {
                a
            }
        })
        .collect();
    e.b.bpf_printk(&args, format);
    Ok(vec![e.b.core_const(0, Type::i32())])
}
