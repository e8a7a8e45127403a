//! `check-kernel-memory`: memory the kernel checks at load that sema cannot size, refused here at
//! its line rather than by the verifier:
//!
//! - a helper told to read or write more bytes than the object it is given holds from there
//!   (`bpf_trace_printk(&msg[0], 4096)` on a 16-byte `msg`, `bpf_skb_store_bytes(…, &port, 8, …)`
//!   on a `u16`): the verifier refuses the stack access;
//! - a stack object larger than the 512 bytes eBPF gives a function, also one ksc makes itself
//!   (the zeroed stand-in of a config read, as large as the config): sema counts the user's locals.
//!
//! Runs after `lower-bpf`, which makes those stand-ins and turns every helper call into a
//! `bpf.helper_call`.

use super::{PassError, PassResult};
use crate::diagnostics::Code;
use crate::ir::layout::{field_offset, size_of};
use crate::ir::{Attr, Module, OpId, Opcode, Value, ValueDef};
use crate::vocab::helpers;

/// The BPF stack of one function.
const STACK_BYTES: u64 = 512;

pub fn run(m: &Module) -> PassResult {
    let mut errors = Vec::new();
    for f in super::kernel_funcs(m) {
        for op in m.collect_nested(f, |o| {
            matches!(o.opcode, Opcode::CoreLocal | Opcode::BpfHelperCall)
        }) {
            match m.op(op).opcode {
                Opcode::CoreLocal => errors.extend(oversized_local(m, op)),
                _ => errors.extend(oversized_helper_access(m, op)),
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn oversized_local(m: &Module, local: OpId) -> Option<PassError> {
    let ty = m.value_type(m.op(local).results[0]).pointee()?;
    let bytes = size_of(m, ty)?;
    let shown = match ty {
        crate::ir::Type::Struct(name) => name.to_string(),
        other => other.to_string(),
    };
    (bytes > STACK_BYTES).then(|| {
        PassError::user(
            local,
            Code::E0601,
            format!(
                "this needs a {bytes}-byte `{shown}` on the stack; eBPF gives a function {STACK_BYTES} bytes (keep large data in a map value)"
            ),
        )
    })
}

/// The first `(memory, size)` argument pair of a helper call whose constant size exceeds the
/// bytes its object holds from the address passed.
fn oversized_helper_access(m: &Module, call: OpId) -> Option<PassError> {
    let Some(&Attr::Int(id)) = m.attr(call, "id") else {
        return None;
    };
    let helper = helpers::by_id(id)?;
    let callee = helper.name;
    let args = &m.op(call).operands;
    helper.memory_sizes().find_map(|(memory, size)| {
        let wanted = u64::try_from(m.const_int(*args.get(size)?)?).ok()?;
        let held = bytes_from(m, *args.get(memory)?)?;
        (wanted > held).then(|| {
            PassError::user(
                call,
                Code::E0603,
                format!("`{callee}` is given {wanted} bytes of memory at an object that holds {held} from there (argument {})", memory + 1),
            )
        })
    })
}

/// The bytes of the stack object `ptr` points into, from `ptr` to the object's end, when `ptr` is
/// a local's address plus constant offsets.
fn bytes_from(m: &Module, ptr: Value) -> Option<u64> {
    let ValueDef::Result(op, 0) = m.value(ptr).def else {
        return None;
    };
    let d = m.op(op);
    let base = |i: usize| bytes_from(m, d.operands[i]);
    match d.opcode {
        Opcode::CoreLocal => size_of(m, m.value_type(ptr).pointee()?),
        Opcode::CoreCast => base(0),
        Opcode::CoreElemAddr | Opcode::KsIndexAddr => {
            let elem = size_of(m, m.value_type(ptr).pointee()?)?;
            let index = u64::try_from(m.const_int(d.operands[1])?).ok()?;
            base(0)?.checked_sub(index.checked_mul(elem)?)
        }
        Opcode::CoreFieldAddr => {
            let Some(Attr::Str(field)) = &d.attrs[0] else {
                return None;
            };
            base(0)?.checked_sub(field_offset(m, m.value_type(d.operands[0]), field)?)
        }
        Opcode::CorePtrAdd => {
            let offset = u64::try_from(m.const_int(d.operands[1])?).ok()?;
            base(0)?.checked_sub(offset)
        }
        _ => None,
    }
}
