//! `read-packet-structs`: a kernel struct (`*iphdr`, `*tcphdr` from vmlinux) read through a
//! pointer that sema did not see as a packet pointer — a helper's parameter that every call
//! passes one — is read as packet bytes at the field's wire offset, as it is in the program that
//! forms the pointer. Sema reads kernel structs behind pointers of unknown origin with
//! `bpf_probe_read_kernel` at CO-RE offsets, which on packet bytes is a helper call per field
//! (where C reads a byte) and a read no bounds check covers. Runs before `bounds-check`, which then
//! proves these reads as it proves any other.

use super::bounds_check::packet_pointers;
use super::manager::Analyses;
use super::PassResult;
use crate::ir::layout::field_offset;
use crate::ir::views::KsProbeRead;
use crate::ir::{Module, OpId, Opcode, Type, Value, ValueDef};

pub fn run(m: &mut Module, analyses: &mut Analyses) -> PassResult {
    let packet = packet_pointers(m, analyses);
    for (f, pointers) in packet {
        for read in m.collect_nested(f, |d| d.opcode == Opcode::KsProbeRead) {
            let addr = m.op(read).operands[0];
            if KsProbeRead(read).user(m) == Some(true) || !pointers.contains(&addr) {
                continue;
            }
            if let Some((base, offset)) = wire_offset(m, addr) {
                read_directly(m, read, base, offset);
            }
        }
    }
    Ok(())
}

/// `addr` as a pointer that is not a kernel field's address plus the fields' byte offsets.
fn wire_offset(m: &Module, mut addr: Value) -> Option<(Value, u64)> {
    let mut offset = 0;
    while let ValueDef::Result(op, _) = m.value(addr).def {
        if m.op(op).opcode != Opcode::KsKfieldAddr {
            break;
        }
        let base = m.op(op).operands[0];
        let field = match m.attr(op, "field") {
            Some(crate::ir::Attr::Str(f)) => f.clone(),
            _ => return None,
        };
        offset += field_offset(m, m.value_type(base), &field)?;
        addr = base;
    }
    Some((addr, offset))
}

fn read_directly(m: &mut Module, read: OpId, base: Value, offset: u64) {
    let old_addr = m.op(read).operands[0];
    let result = m.op(read).results[0];
    let ty = m.value_type(result).clone();
    let pointee = m.value_type(old_addr).clone();
    let mut b = m.builder_before(read);
    let bytes = b.cast_to(base, Type::ptr(Type::u8()));
    let at = b.core_const(i128::from(offset), Type::i64());
    let moved = b.core_ptr_add(bytes, at);
    let addr = b.cast_to(moved, pointee);
    let value = b.core_load(addr, ty);
    m.replace_op(read, &[value]);
    m.erase_if_unused(old_addr);
}
