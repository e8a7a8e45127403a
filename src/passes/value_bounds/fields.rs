//! Bounds of the integer fields of struct locals (`info.l4_off`, a header offset a parser
//! returns in a struct), flow-insensitively: the largest value any store can put in the field.
//! A field holds only what was stored into it (locals start zeroed), so that bound holds at
//! every load — for locals accessed only as whole values and through their fields' loads and
//! stores, never through an address that escapes.

use super::{def_op, max_of, Facts};
use crate::ir::{Attr, Module, OpId, Opcode, Type, Value};
use std::collections::HashMap;

/// What a field's bound is asked with: the function, its facts about other values, the bounds
/// of the struct fields its callees return, and how many more struct copies to follow.
#[derive(Clone, Copy)]
pub struct FieldQuery<'a> {
    pub m: &'a Module,
    pub facts: &'a dyn Facts,
    pub results: &'a dyn Fn(&str, &[u8]) -> Option<u128>,
    /// The bounds every call puts on the fields of the function's struct parameters.
    pub params: &'a dyn Fn(Value, &[u8]) -> Option<u128>,
    pub depth: u32,
}

/// A write into a struct local.
enum Write {
    /// `local.field = value`.
    Field(Vec<u8>, Value),
    /// `local = value`, the whole struct.
    Whole(Value),
}

/// The writes into each tracked struct local of one function.
#[derive(Default)]
pub struct StructLocals {
    writes: HashMap<Value, Vec<Write>>,
}

/// How many struct copies a bound is followed through (`tmp` → `info` → the result).
pub const COPY_DEPTH: u32 = 4;

impl StructLocals {
    pub fn of_function(m: &Module, f: OpId) -> StructLocals {
        let ops = m.collect_nested(f, |_| true);
        let mut writes: HashMap<Value, Vec<Write>> = ops
            .iter()
            .filter(|&&o| m.op(o).opcode == Opcode::CoreLocal)
            .map(|&o| m.op(o).results[0])
            .filter(|&v| matches!(m.value_type(v).pointee(), Some(Type::Struct(_))))
            .map(|v| (v, Vec::new()))
            .collect();
        // The fields' addresses, with their local and field. (Any field read and written only
        // whole, a `bool` flag beside the offsets, leaves the integer fields tracked.)
        let mut fields: HashMap<Value, (Value, Vec<u8>)> = HashMap::new();
        for &op in &ops {
            let d = m.op(op);
            if d.opcode != Opcode::CoreFieldAddr || !writes.contains_key(&d.operands[0]) {
                continue;
            }
            if let Some(Attr::Str(field)) = m.attr(op, "field") {
                fields.insert(d.results[0], (d.operands[0], field.clone()));
            }
        }
        let mut escaped = Vec::new();
        for &op in &ops {
            let d = m.op(op);
            for (i, &v) in d.operands.iter().enumerate() {
                let use_ = (d.opcode, i);
                if let Some((local, field)) = fields.get(&v) {
                    match use_ {
                        (Opcode::CoreLoad, 0) => {}
                        (Opcode::CoreStore, 1) => {
                            if let Some(list) = writes.get_mut(local) {
                                list.push(Write::Field(field.clone(), d.operands[0]));
                            }
                        }
                        _ => escaped.push(*local),
                    }
                } else if writes.contains_key(&v) {
                    match use_ {
                        (Opcode::CoreLoad, 0) => {}
                        (Opcode::CoreFieldAddr, 0) if fields.contains_key(&d.results[0]) => {}
                        (Opcode::CoreStore, 1) => writes
                            .get_mut(&v)
                            .expect("tracked")
                            .push(Write::Whole(d.operands[0])),
                        _ => escaped.push(v),
                    }
                }
            }
        }
        for v in escaped {
            writes.remove(&v);
        }
        StructLocals { writes }
    }

    /// The largest value field `field` of `value` (a struct) can hold, when known.
    pub fn value_field_max(&self, q: FieldQuery, value: Value, field: &[u8]) -> Option<u128> {
        let Some(op) = def_op(q.m, value) else {
            return (q.params)(value, field);
        };
        let d = q.m.op(op);
        match d.opcode {
            Opcode::CoreZero => Some(0),
            Opcode::CoreLoad if q.depth > 0 => {
                let deeper = FieldQuery {
                    depth: q.depth - 1,
                    ..q
                };
                self.local_field_max(deeper, d.operands[0], field)
            }
            Opcode::CoreCall => match q.m.attr(op, "callee") {
                Some(Attr::Sym(callee)) => (q.results)(callee, field),
                _ => None,
            },
            _ => None,
        }
    }

    /// The largest value field `field` of tracked struct local `local` can hold.
    pub fn local_field_max(&self, q: FieldQuery, local: Value, field: &[u8]) -> Option<u128> {
        self.writes.get(&local)?.iter().try_fold(0u128, |acc, w| {
            let b = match w {
                Write::Field(f, v) if f.as_slice() == field => max_of(q.m, *v, q.facts, 0)?,
                Write::Field(..) => return Some(acc),
                Write::Whole(v) => self.value_field_max(q, *v, field)?,
            };
            Some(acc.max(b))
        })
    }

    /// For a load of a field of a tracked struct local, the local and the field.
    pub fn loaded_field(&self, m: &Module, load: Value) -> Option<(Value, Vec<u8>)> {
        let d = m.op(def_op(m, load)?);
        if d.opcode != Opcode::CoreLoad {
            return None;
        }
        let addr = def_op(m, d.operands[0])?;
        let a = m.op(addr);
        if a.opcode != Opcode::CoreFieldAddr || !self.writes.contains_key(&a.operands[0]) {
            return None;
        }
        let Some(Attr::Str(field)) = m.attr(addr, "field") else {
            return None;
        };
        Some((a.operands[0], field.clone()))
    }
}
