//! `check-kernel-memory`: memory the kernel checks at load that sema cannot size, refused here at
//! its line rather than by the verifier:
//!
//! - a helper told to read or write more bytes than the object it is given holds from there
//!   (`bpf_trace_printk(&msg[0], 4096)` on a 16-byte `msg`, `bpf_skb_store_bytes(…, &port, 8, …)`
//!   on a `u16`), or 0 bytes where the helper needs at least one: the verifier refuses the call;
//! - a load or store through a local's address that reaches outside the local, or that is not
//!   aligned to its width (locals are 8-aligned; the verifier refuses misaligned stack access);
//! - a stack object larger than the 512 bytes eBPF gives a function, also one ksc makes itself
//!   (the zeroed stand-in of a pinned-global read, as large as the pinned globals): sema counts
//!   the user's locals.
//!
//! Runs after `lower-bpf`, which makes those stand-ins and turns every helper call into a
//! `bpf.helper_call`.

use super::value_bounds::CallSites;
use super::{PassError, PassResult};
use crate::diagnostics::Code;
use crate::ir::layout::{field_offset, size_of};
use crate::ir::{Attr, BlockId, Module, OpId, Opcode, Value, ValueDef};
use crate::vocab::helpers;
use std::collections::HashMap;

/// The BPF stack of one function.
const STACK_BYTES: u64 = 512;

pub fn run(m: &Module) -> PassResult {
    let mut errors = Vec::new();
    let stack = Stack::of_module(m);
    for f in super::kernel_funcs(m) {
        for op in m.collect_nested(f, |o| {
            matches!(
                o.opcode,
                Opcode::CoreLocal | Opcode::BpfHelperCall | Opcode::CoreLoad | Opcode::CoreStore
            )
        }) {
            match m.op(op).opcode {
                Opcode::CoreLocal => errors.extend(oversized_local(m, op)),
                Opcode::BpfHelperCall => errors.extend(stack.oversized_helper_access(f, op)),
                _ => errors.extend(stack.access_past_object(f, op)),
            }
        }
    }
    // An unrolled loop repeats its accesses: one error per source position.
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| {
        e.op.is_none_or(|op| {
            let loc = m.op(op).loc;
            seen.insert((loc.file, loc.line, loc.col))
        })
    });
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

/// Where addresses into the kernel functions' stack objects point: locals, the pointers kept in
/// locals written once (`var p = &buf[4]`), and the parameters of functions whose every call is
/// known, which point wherever those calls' arguments do (the verifier checks a static function
/// at each call, with that call's stack pointer).
pub(super) struct Stack<'m> {
    m: &'m Module,
    /// By function: its locals written once, and the value written.
    written_once: HashMap<OpId, HashMap<Value, Value>>,
    call_sites: CallSites,
}

/// How deep a parameter's address is followed through its callers.
const MAX_CALL_DEPTH: u32 = 8;

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

impl<'m> Stack<'m> {
    pub(super) fn of_module(m: &'m Module) -> Stack<'m> {
        let funcs = super::kernel_funcs(m);
        Stack {
            m,
            written_once: funcs.iter().map(|&f| (f, written_once(m, f))).collect(),
            call_sites: CallSites::of(m, &funcs),
        }
    }

    /// The fewest bytes the stack object `ptr` (a value of `f`) may point into holds from there,
    /// over every place it may point; `None` where it is not known to point into the stack.
    pub(super) fn bytes_held(&self, f: OpId, ptr: Value) -> Option<i128> {
        (self.positions(f, ptr, 0).iter())
            .map(|(at, _)| at.held())
            .min()
    }

    /// The first `(memory, size)` argument pair of a helper call whose constant size exceeds
    /// the bytes its object holds from the address passed, or is 0 where 0 is refused.
    fn oversized_helper_access(&self, f: OpId, call: OpId) -> Option<PassError> {
        let m = self.m;
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
            let (at, via) = self
                .positions(f, *args.get(memory)?, 0)
                .into_iter()
                .min_by_key(|(at, _)| at.held())?;
            let held = at.held();
            (wanted > held).then(|| {
                PassError::user(
                    call,
                    Code::E0603,
                    format!("`{callee}` is given {wanted} bytes of memory at an object that holds {} from there (argument {}){}", held.max(0), memory + 1, self.passed_by(via)),
                )
            })
        })
    }

    /// A load or store through a local's address plus constant offsets that reaches outside the
    /// local (`var p = &buf[4]` then `*(p + 34)` on a `u8[8]`): the verifier refuses the stack
    /// access.
    fn access_past_object(&self, f: OpId, op: OpId) -> Option<PassError> {
        let m = self.m;
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
        let positions = self.positions(f, addr, 0);
        let Some((at, via)) = positions.iter().find(|(at, _)| width > at.held()) else {
            return self.misaligned(&positions, ty, width, op);
        };
        let why = if at.offset < 0 {
            format!("starts {} bytes before", -at.offset)
        } else {
            format!("starts {} bytes into", at.offset)
        };
        Some(PassError::user(
            op,
            Code::E0603,
            format!(
                "this {width}-byte access {why} a {}-byte stack object{}",
                at.size,
                self.passed_by(*via)
            ),
        ))
    }

    /// Stack objects start 8-aligned; the kernel refuses a scalar access of 2, 4 or 8 bytes
    /// that is not aligned to its width ("misaligned stack access").
    fn misaligned(
        &self,
        positions: &[(Position, Option<OpId>)],
        ty: &crate::ir::Type,
        width: i128,
        op: OpId,
    ) -> Option<PassError> {
        let scalar = ty.is_int() || ty.is_ptr();
        let (at, via) = (positions.iter())
            .find(|(at, _)| scalar && width > 1 && at.offset.rem_euclid(width) != 0)?;
        Some(PassError::user(
            op,
            Code::E0603,
            format!(
                "this {width}-byte access starts {} bytes into a stack object, not a multiple of {width}: the kernel refuses misaligned stack accesses{}",
                at.offset,
                self.passed_by(*via)
            ),
        ))
    }

    /// Names the call an address came through, for a message.
    fn passed_by(&self, via: Option<OpId>) -> String {
        via.map_or(String::new(), |call| {
            let loc = self.m.op(call).loc;
            format!(
                " (the address passed by the call at line {}:{})",
                loc.line, loc.col
            )
        })
    }

    /// Where `ptr`, a value of function `f`, may point, each with the call that passed the
    /// local's address on when it came through a parameter: a local's address plus constant offsets. Empty when
    /// unknown.
    fn positions(&self, f: OpId, ptr: Value, depth: u32) -> Vec<(Position, Option<OpId>)> {
        let m = self.m;
        let d = match m.value(ptr).def {
            ValueDef::Result(op, 0) => m.op(op),
            ValueDef::Arg(block, i) => return self.parameter_positions(f, block, i, depth),
            _ => return Vec::new(),
        };
        let moved = |bytes: Option<i128>| -> Vec<(Position, Option<OpId>)> {
            let Some(bytes) = bytes else {
                return Vec::new();
            };
            self.positions(f, d.operands[0], depth)
                .into_iter()
                .filter_map(|(base, via)| {
                    let offset = base.offset.checked_add(bytes)?;
                    Some((
                        Position {
                            offset,
                            size: base.size,
                        },
                        via,
                    ))
                })
                .collect()
        };
        match d.opcode {
            Opcode::CoreLocal => (m.value_type(ptr).pointee())
                .and_then(|t| size_of(m, t))
                .map(|size| {
                    let size = i128::from(size);
                    (Position { offset: 0, size }, None)
                })
                .into_iter()
                .collect(),
            Opcode::CoreLoad => match self.written_once[&f].get(&d.operands[0]) {
                Some(&v) => self.positions(f, v, depth),
                None => Vec::new(),
            },
            Opcode::CoreCast => self.positions(f, d.operands[0], depth),
            Opcode::CoreElemAddr | Opcode::KsIndexAddr => {
                let elem = (m.value_type(ptr).pointee()).and_then(|t| size_of(m, t));
                let index = m.const_int(d.operands[1]);
                moved(
                    index
                        .zip(elem)
                        .and_then(|(i, e)| i.checked_mul(i128::from(e))),
                )
            }
            Opcode::CoreFieldAddr => {
                let Some(Attr::Str(field)) = &d.attrs[0] else {
                    return Vec::new();
                };
                let offset = field_offset(m, m.value_type(d.operands[0]), field);
                moved(offset.map(i128::from))
            }
            Opcode::CorePtrAdd => moved(m.const_int(d.operands[1])),
            _ => Vec::new(),
        }
    }

    /// Where parameter `index` of `f` may point: wherever the argument of each call of `f`
    /// does, when those calls are all there are.
    fn parameter_positions(
        &self,
        f: OpId,
        block: BlockId,
        index: u32,
        depth: u32,
    ) -> Vec<(Position, Option<OpId>)> {
        let m = self.m;
        if block != m.func_entry(f) || depth >= MAX_CALL_DEPTH {
            return Vec::new();
        }
        let Some(sites) = self.call_sites.fixed(m, f) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for &(caller, call) in sites {
            let Some(&arg) = m.op(call).operands.get(index as usize) else {
                continue;
            };
            let from_caller = self.positions(caller, arg, depth + 1);
            // Name the call that formed the address, not one that only handed it on.
            out.extend(
                from_caller
                    .into_iter()
                    .map(|(at, via)| (at, via.or(Some(call)))),
            );
        }
        out
    }
}

/// The locals of `f` written exactly once and never escaping, with the value written.
fn written_once(m: &Module, f: OpId) -> HashMap<Value, Value> {
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
    stores
        .into_iter()
        .filter_map(|(slot, values)| match values[..] {
            [v] => Some((slot, v)),
            _ => None,
        })
        .collect()
}

fn is_local(m: &Module, v: Value) -> bool {
    matches!(m.value(v).def, ValueDef::Result(o, 0) if m.op(o).opcode == Opcode::CoreLocal)
}
