//! `check-kernel-memory`: memory the kernel checks at load that sema cannot size, refused here at
//! its line rather than by the verifier:
//!
//! - a helper told to read or write more bytes than the object it is given holds from there
//!   (`bpf_trace_printk(&msg[0], 4096)` on a 16-byte `msg`, `bpf_skb_store_bytes(…, &port, 8, …)`
//!   on a `u16`), or 0 bytes where the helper needs at least one: the verifier refuses the call;
//! - a load or store through a local's address that reaches outside the local;
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
use std::collections::HashMap;

/// The BPF stack of one function.
const STACK_BYTES: u64 = 512;

pub fn run(m: &Module) -> PassResult {
    let mut errors = Vec::new();
    for f in super::kernel_funcs(m) {
        let objects = StackObjects::of_function(m, f);
        for op in m.collect_nested(f, |o| {
            matches!(
                o.opcode,
                Opcode::CoreLocal | Opcode::BpfHelperCall | Opcode::CoreLoad | Opcode::CoreStore
            )
        }) {
            match m.op(op).opcode {
                Opcode::CoreLocal => errors.extend(oversized_local(m, op)),
                Opcode::BpfHelperCall => errors.extend(objects.oversized_helper_access(m, op)),
                _ => errors.extend(objects.access_past_object(m, op)),
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

/// Where addresses into a function's stack objects point: locals, and the pointers kept in
/// locals written once (`var p = &buf[4]`).
struct StackObjects {
    written_once: HashMap<Value, Value>,
}

/// An address `offset` bytes from the start of a `size`-byte stack object.
struct Position {
    offset: i128,
    size: i128,
}

impl Position {
    /// The bytes from the address to the object's end (negative past it, or before its start).
    fn held(&self) -> i128 {
        if self.offset < 0 {
            self.offset
        } else {
            self.size - self.offset
        }
    }
}

impl StackObjects {
    fn of_function(m: &Module, f: OpId) -> StackObjects {
        let ops = m.collect_nested(f, |_| true);
        let mut stores: HashMap<Value, Vec<Value>> = HashMap::new();
        for &op in &ops {
            let d = m.op(op);
            if d.opcode == Opcode::CoreStore && is_local(m, d.operands[1]) {
                stores.entry(d.operands[1]).or_default().push(d.operands[0]);
            }
        }
        for &op in &ops {
            for v in crate::passes::value_bounds::escaping_operands(m, op) {
                stores.remove(&v);
            }
        }
        let written_once = stores
            .into_iter()
            .filter_map(|(slot, values)| match values[..] {
                [v] => Some((slot, v)),
                _ => None,
            })
            .collect();
        StackObjects { written_once }
    }

    /// The first `(memory, size)` argument pair of a helper call whose constant size exceeds
    /// the bytes its object holds from the address passed, or is 0 where 0 is refused.
    fn oversized_helper_access(&self, m: &Module, call: OpId) -> Option<PassError> {
        let Some(&Attr::Int(id)) = m.attr(call, "id") else {
            return None;
        };
        let helper = helpers::by_id(id)?;
        let callee = helper.name;
        let args = &m.op(call).operands;
        helper.memory_sizes().find_map(|(memory, size)| {
            let wanted = m.const_int(*args.get(size)?)?;
            if wanted == 0 && helper.nonzero_size {
                return Some(PassError::user(
                    call,
                    Code::E0603,
                    format!("`{callee}` needs a size of at least 1 byte (argument {})", size + 1),
                ));
            }
            let held = self.position(m, *args.get(memory)?)?.held();
            (wanted > held).then(|| {
                PassError::user(
                    call,
                    Code::E0603,
                    format!("`{callee}` is given {wanted} bytes of memory at an object that holds {} from there (argument {})", held.max(0), memory + 1),
                )
            })
        })
    }

    /// A load or store through a local's address plus constant offsets that reaches outside the
    /// local (`var p = &buf[4]` then `*(p + 34)` on a `u8[8]`): the verifier refuses the stack
    /// access.
    fn access_past_object(&self, m: &Module, op: OpId) -> Option<PassError> {
        let d = m.op(op);
        let (addr, ty) = match d.opcode {
            Opcode::CoreStore => (d.operands[1], m.value_type(d.operands[0])),
            _ => (d.operands[0], m.value_type(d.results[0])),
        };
        // A local itself is accessed whole; only addresses formed from one can overshoot.
        if is_local(m, addr) {
            return None;
        }
        let width = i128::from(size_of(m, ty)?);
        let at = self.position(m, addr)?;
        (width > at.held()).then(|| {
            let why = if at.offset < 0 {
                format!("starts {} bytes before", -at.offset)
            } else {
                format!("starts {} bytes into", at.offset)
            };
            PassError::user(
                op,
                Code::E0603,
                format!(
                    "this {width}-byte access {why} a {}-byte stack object",
                    at.size
                ),
            )
        })
    }

    /// Where `ptr` points, when it is a local's address plus constant offsets.
    fn position(&self, m: &Module, ptr: Value) -> Option<Position> {
        let ValueDef::Result(op, 0) = m.value(ptr).def else {
            return None;
        };
        let d = m.op(op);
        let moved = |bytes: i128| {
            let base = self.position(m, d.operands[0])?;
            Some(Position {
                offset: base.offset.checked_add(bytes)?,
                size: base.size,
            })
        };
        match d.opcode {
            Opcode::CoreLocal => Some(Position {
                offset: 0,
                size: i128::from(size_of(m, m.value_type(ptr).pointee()?)?),
            }),
            Opcode::CoreLoad => self.position(m, *self.written_once.get(&d.operands[0])?),
            Opcode::CoreCast => self.position(m, d.operands[0]),
            Opcode::CoreElemAddr | Opcode::KsIndexAddr => {
                let elem = i128::from(size_of(m, m.value_type(ptr).pointee()?)?);
                moved(m.const_int(d.operands[1])?.checked_mul(elem)?)
            }
            Opcode::CoreFieldAddr => {
                let Some(Attr::Str(field)) = &d.attrs[0] else {
                    return None;
                };
                moved(i128::from(field_offset(
                    m,
                    m.value_type(d.operands[0]),
                    field,
                )?))
            }
            Opcode::CorePtrAdd => moved(m.const_int(d.operands[1])?),
            _ => None,
        }
    }
}

fn is_local(m: &Module, v: Value) -> bool {
    matches!(m.value(v).def, ValueDef::Result(o, 0) if m.op(o).opcode == Opcode::CoreLocal)
}
