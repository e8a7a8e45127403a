//! `read-packet-structs`: a kernel struct (`*iphdr`, `*tcphdr` from vmlinux) read or written
//! through a pointer that sema did not see as a packet pointer — a helper's parameter that every
//! call passes one — is read or written as packet bytes at the field's wire offset, as it is in
//! the program that forms the pointer. Sema reads kernel structs behind pointers of unknown origin with
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
        // (Sema let a kernel field be written only where every call passes a packet pointer.)
        for store in m.collect_nested(f, |d| d.opcode == Opcode::CoreStore) {
            let addr = m.op(store).operands[1];
            let field = m
                .defining_op(addr)
                .filter(|&o| m.op(o).opcode == Opcode::KsKfieldAddr);
            if field.is_none() || !pointers.contains(&addr) {
                continue;
            }
            if let Some((base, offset)) = wire_offset(m, addr) {
                let wire = wire_address(m, store, base, offset, m.value_type(addr).clone());
                m.op_mut(store).operands[1] = wire;
                m.erase_if_unused(addr);
            }
        }
    }
    Ok(())
}

/// Before `at`: `base` moved by `offset` bytes, as a `pointee` pointer.
fn wire_address(m: &mut Module, at: OpId, base: Value, offset: u64, pointee: Type) -> Value {
    let mut b = m.builder_before(at);
    let bytes = b.cast_to(base, Type::ptr(Type::u8()));
    let by = b.core_const(i128::from(offset), Type::i64());
    let moved = b.core_ptr_add(bytes, by);
    b.cast_to(moved, pointee)
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
    let addr = wire_address(m, read, base, offset, pointee);
    let value = m.builder_before(read).core_load(addr, ty);
    m.replace_op(read, &[value]);
    m.erase_if_unused(old_addr);
}
