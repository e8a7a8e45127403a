//! `lower-loops`: long counted loops in kernel functions become `bpf_loop` calls (docs/language.md §14.4).
//!
//! A `ks.for` whose trip count is not a constant of at most 64 is outlined into a callback
//! function `<func>.loopN(index: u64, ctx: ptr<!<func>.loopN.ctx>) -> i64` and replaced by
//! `bpf.loop`. Everything the body uses from outside — locals, the context pointer, other SSA
//! values — is captured in a context struct on the caller's stack: a local the code around the
//! loop only loads and stores by value (copied in before the call and out after), any other by
//! its slot's address. Exits that leave the loop are carried out through the struct: `continue`
//! returns 0, `break` sets exit 1 and returns 1, and the `return`s, throws, aborts and tail calls
//! get exit codes (one per way the caller carries them out) that the caller dispatches on after
//! `bpf.loop`. Short constant loops stay counted loops the verifier bounds (the shortest are
//! unrolled before, by `unroll-loops`).
//! Runs on structured kernel functions after `bounds-check` and before `lower-bpf`.

use super::packet_walk::{unknown_distance, walked_packet_locals, WalkedLocal, MAX_PACKET_OFFSET};
use super::value_bounds::{int_max, is_unsigned};
use super::{PassError, PassResult};
use crate::diagnostics::Code;
use crate::ir::layout::{c_layout, size_of};
use crate::ir::{
    views, views::KsFunc, views::KsStruct, Attr, BlockId, Builder, FnType, Module, OpId, Opcode,
    Type, Value,
};
use crate::vocab::{CmpPred, StructOrigin, Target};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Counted loops with at most this many iterations stay inline (the verifier bounds them).
pub const INLINE_TRIP_COUNT: i128 = 64;

/// The most iterations `bpf_loop` runs (the kernel's BPF_MAX_LOOPS): asked for more, it runs
/// none and returns -E2BIG.
pub const MAX_LOOP_TRIPS: i128 = 1 << 23;

/// What the abort before a loop asked to run more than [`MAX_LOOP_TRIPS`] says.
pub const TOO_MANY_TRIPS: &[u8] = b"loop runs more than bpf_loop's 8388608 iterations";

/// The exit codes of a throw and an abort that reach a callback's top from elsewhere — a called
/// function, a check a later pass inserts — which `flatten` records in the context struct
/// (`exit`, and the thrown `code`) before returning 1.
pub const RAISED_THROW_EXIT: i128 = u32::MAX as i128 - 1;
pub const RAISED_ABORT_EXIT: i128 = u32::MAX as i128;

pub fn run(m: &mut Module) -> PassResult {
    let mut work = super::kernel_funcs(m);
    let mut errors = Vec::new();
    while let Some(f) = work.pop() {
        let mut n = 0;
        while let Some(l) = outermost_long_loop(m, f) {
            if let Some(trips) = constant_trips(m, l).filter(|&t| t > MAX_LOOP_TRIPS) {
                errors.push(PassError::user(
                    l,
                    Code::E0408,
                    format!("this loop may run {trips} times; a kernel loop runs at most {MAX_LOOP_TRIPS} (bpf_loop's limit): split it, or bound it below that"),
                ));
                break;
            }
            let cb = outline(m, f, l, n);
            n += 1;
            work.push(cb);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The iterations of a `ks.for` whose bounds are both constants.
pub(super) fn constant_trips(m: &Module, l: OpId) -> Option<i128> {
    let o = &m.op(l).operands;
    let (lo, hi) = (m.const_int(o[0])?, m.const_int(o[1])?);
    Some((hi - lo).max(0))
}

/// The most iterations of a `ks.for` to a constant bound: from a constant, or from an unsigned
/// run-time start (at least 0, so at most the bound).
pub(super) fn most_trips(m: &Module, l: OpId) -> Option<i128> {
    let o = &m.op(l).operands;
    let lo = match m.const_int(o[0]) {
        Some(lo) => lo,
        None if is_unsigned(m.value_type(o[0])) => 0,
        None => return None,
    };
    Some((m.const_int(o[1])? - lo).max(0))
}

/// A loop this pass outlines into a `bpf_loop` callback (whose counter the verifier cannot bound).
pub fn is_long(m: &Module, l: OpId) -> bool {
    // (bound-loops counts a loop down only to a bound it proved small.)
    if m.attr(l, "down") == Some(&Attr::Bool(true)) {
        return false;
    }
    if m.attr(l, "outline") == Some(&Attr::Bool(true)) {
        return true;
    }
    let Some(trips) = most_trips(m, l) else {
        return true;
    };
    // Longer loops stay counted when bound-loops marked them walking memory (see
    // `bound_loops::walks_memory`); the mark is made once, so every pass gets the same answer.
    trips > INLINE_TRIP_COUNT && m.attr(l, "walks") != Some(&Attr::Bool(true))
}

/// Whether `op` will run in a callback: in a long `ks.for` this pass outlines, or in a map's
/// `for_each` body. What such code reads of its function's state comes through the callback's
/// context, where the verifier knows no more than the values' types.
pub(super) fn runs_in_callback(m: &Module, op: OpId) -> bool {
    let mut at = op;
    while let Some(l) = enclosing_loop(m, at) {
        match m.op(l).opcode {
            Opcode::KsMapForeach => return true,
            Opcode::KsFor if is_long(m, l) => return true,
            _ => at = l,
        }
    }
    false
}

/// The first long `ks.for` of a function that is not inside another one.
fn outermost_long_loop(m: &Module, f: OpId) -> Option<OpId> {
    let mut found = None;
    m.walk_nested(f, &mut |o| {
        if found.is_none() && m.op(o).opcode == Opcode::KsFor && is_long(m, o) {
            found = Some(o);
        }
    });
    found
}

/// How the body can leave the loop (besides `break`, exit code 1). Exits the caller carries out
/// alike share one exit code: every `return` (the value travels in the struct), every throw,
/// the aborts of one message (`bounds-check`'s, one per packet access), tail calls to one
/// program with one context.
#[derive(PartialEq)]
enum Exit {
    Return,
    Throw,
    Abort(Vec<u8>),
    TailCall {
        callee: String,
        ctx: Value,
    },
    /// A throw or an abort from a call or a later check ([`RAISED_THROW_EXIT`]).
    RaisedThrow,
    RaisedAbort,
}

/// Packet pointers the loop walks (`opt = opt + len`) start and end each iteration rebuilt as
/// `ctx->data + ((opt - ctx->data) & 0xffff)`: the same address, as the verifier admits no packet
/// offset past 0xffff. As a callback, the verifier would see the offset grow with every round it
/// checks and never meet a state it saw before (it gives up at 1M instructions); masked, the
/// second round repeats the first. The difference of two packet pointers is a value the verifier
/// knows nothing of, so the mask alone bounds it, in every round alike. At the head, the body
/// of every round sees the same pointer; at each way round to the next (`continue`, the body's
/// end), the state `bpf_loop` is checked with does too, whichever constant step (`opt + 1` over
/// a NOP option) the round took.
///
/// Unsigned offsets the loop walks and adds to `ctx->data` (`off = off + len`, `data + off`)
/// are rebuilt the same way, as `((ctx->data + off) - ctx->data) & 0xffff`, when they are at
/// most 0xffff (always, where a test of the packet passed before the step); a larger one, which
/// no packet access can use, is left as it is.
fn rebase_walked_packet_pointers(m: &mut Module, func: OpId, lp: OpId) {
    let Some(ctx) = context_param(m, func) else {
        return;
    };
    let walked = walked_packet_locals(m, func, lp);
    if walked.is_empty() {
        return;
    }
    let body = m.region(m.op(lp).regions[0]).blocks[0];
    let loc = m.op(lp).loc;
    // Where a round goes on to the next: each `continue` of this loop, and the body's end.
    let continues: Vec<OpId> = m
        .collect_nested(lp, |d| d.opcode == Opcode::KsContinue)
        .into_iter()
        .filter(|&o| enclosing_loop(m, o) == Some(lp))
        .collect();
    let ends_open = m
        .block(body)
        .ops
        .last()
        .is_none_or(|&o| !m.is_terminator(o));
    for WalkedLocal { slot, pointer, .. } in walked {
        if m.value_type(slot).pointee().is_none() {
            continue;
        }
        for &c in &continues {
            let mut b = m.builder_before(c);
            b.loc = loc;
            rebase(&mut b, ctx, slot, pointer);
        }
        if ends_open {
            let mut b = Builder::new(m, body);
            b.loc = loc;
            rebase(&mut b, ctx, slot, pointer);
        }
        let mut b = Builder::new(m, body);
        b.at = Some(0);
        b.loc = loc;
        rebase(&mut b, ctx, slot, pointer);
    }
}

/// The context a kernel function can read `ctx->data` from: a program's first parameter, or a
/// `@helper`'s parameter that points to a context struct (`fn find_type(ctx: *xdp_md, …)`).
fn context_param(m: &Module, func: OpId) -> Option<Value> {
    let params = &m.block(m.func_entry(func)).args;
    if KsFunc(func).kind(m).is_some() {
        return params.first().copied();
    }
    let is_context = |v: &Value| match m.value_type(*v).pointee() {
        Some(Type::Struct(s)) => crate::ir::layout::struct_decl(m, s)
            .is_some_and(|d| KsStruct(d).origin(m) == StructOrigin::Context),
        _ => false,
    };
    params.iter().copied().find(is_context)
}

/// Stores walked local `slot` back as its distance from `ctx->data`, masked (see
/// [`rebase_walked_packet_pointers`]).
fn rebase(b: &mut Builder, ctx: Value, slot: Value, pointer: bool) {
    let ty = b
        .module
        .value_type(slot)
        .pointee()
        .cloned()
        .expect("a local");
    let byte_ptr = Type::ptr(Type::u8());
    let now = b.core_load(slot, ty.clone());
    let data = b.ks_ctx_load(ctx, &[], b"data".to_vec(), byte_ptr.clone());
    if pointer {
        let from = b.cast_to(now, byte_ptr);
        // Opaque, so LLVM keeps the mask it could otherwise not see through either way.
        let distance = b.core_ptr_diff(from, data);
        let distance = b.bpf_opaque(distance);
        let mask = b.core_const(MAX_PACKET_OFFSET, Type::u64());
        let distance = b.core_and(distance, mask);
        let rebuilt = b.core_ptr_add(data, distance);
        let rebuilt = b.cast_to(rebuilt, ty);
        b.core_store(rebuilt, slot);
    } else {
        let wide = b.cast_to(now, Type::u64());
        let mask = b.core_const(MAX_PACKET_OFFSET, Type::u64());
        let fits = b.core_cmp(wide, mask, CmpPred::Le);
        let guard = b.ks_if(fits, None, &[]);
        let (block, at) = (b.block, b.at);
        b.set_block(b.entry(guard, 0));
        let distance = unknown_distance(b, data, wide);
        let distance = b.core_and(distance, mask);
        let rebuilt = b.cast_to(distance, ty);
        b.core_store(rebuilt, slot);
        (b.block, b.at) = (block, at);
    }
}

fn outline(m: &mut Module, func: OpId, lp: OpId, n: usize) -> OpId {
    rebase_walked_packet_pointers(m, func, lp);
    let fname = m.symbol(func).unwrap_or("f").to_string();
    let cb_name = format!("{fname}.loop{n}");
    let ret = match m.attr(func, "ty") {
        Some(Attr::Type(Type::Func(ft))) => ft.ret.clone(),
        _ => Type::Void,
    };
    // Captures: the lower bound (the counter starts there) and every value the body uses that is
    // defined outside the loop.
    let mut captures: Vec<Value> = vec![m.op(lp).operands[0]];
    m.walk_nested(lp, &mut |o| {
        for &v in &m.op(o).operands {
            if !m.defined_within(v, lp) && !captures.contains(&v) {
                captures.push(v);
            }
        }
    });
    // Locals each iteration fills afresh become the callback's own: in the caller's frame, the
    // values one iteration left in them would be part of every state the verifier compares at
    // `bpf_loop` (`kind` 0, 1, 3… after each round), and the rounds would not converge. Not
    // where a loop stays inside the body: a callback's own local is a register value LLVM's loop
    // strength reduction may add to a captured array's address before the inner loop, ahead of
    // the index check (`buf + pos`, which the verifier refuses for an unknown 32-bit `pos`).
    let inner_loop = !m
        .collect_nested(lp, |d| {
            matches!(
                d.opcode,
                Opcode::KsFor | Opcode::KsWhile | Opcode::KsMapForeach
            )
        })
        .is_empty();
    let (iteration_locals, captures): (Vec<Value>, Vec<Value>) = captures
        .into_iter()
        .partition(|&v| !inner_loop && filled_each_iteration(m, lp, v));
    let exit_ops = loop_exits(m, lp);
    let mut exits: Vec<Exit> = Vec::new();
    let codes: Vec<i128> = exit_ops
        .into_iter()
        .map(|e| {
            let k = exits.iter().position(|x| *x == e).unwrap_or_else(|| {
                exits.push(e);
                exits.len() - 1
            });
            2 + k as i128
        })
        .collect();
    if may_raise_later(m, lp) {
        exits.extend([Exit::RaisedThrow, Exit::RaisedAbort]);
    }
    let lo = m.op(lp).operands[0];
    let hi = m.op(lp).operands[1];
    let counter_ty = m.value_type(lo).clone();

    // The context struct: the exit code, captures, the return value and the thrown code. The exit
    // code lies 4 bytes into an 8-byte word: the verifier keeps no value for a stack write off
    // such a word's start, so the rounds after different exits (each stops `bpf_loop`, but the
    // verifier goes on checking rounds after it) meet the same state at the call.
    let mut fields: Vec<(String, Type)> =
        vec![("unused".into(), Type::u32()), ("exit".into(), Type::u32())];
    // Locals the code around the loop only loads and stores travel in the struct by value: the
    // body uses the struct's field as the local, the caller copies the value in before the loop
    // and out after it. (Through the local's address, the struct would hold a pointer to the
    // slot and every access in the body would load it first.) Not where a loop stays inside the
    // body, for the reason above: LLVM would see the field's value through the inner loop too.
    let by_value: Vec<bool> = captures
        .iter()
        .map(|&c| !inner_loop && copied_through(m, func, lp, c))
        .collect();
    let field_type = |m: &Module, i: usize, c: Value| {
        let t = m.value_type(c);
        match by_value[i] {
            true => t.pointee().expect("a local").clone(),
            false => t.clone(),
        }
    };
    // Each capture starts a word of its own: the verifier keeps the value of a register stored
    // at a word's start (its bounds, which the body may need), not of one stored 4 bytes in.
    // Except a counter the body steps by constants (`tags = tags + 1`): kept, its exact value
    // differs every round, and once a test after the loop decides on it (`if (tags > 0)`) the
    // verifier needs that value and never sees a round start in a state it has seen ("the
    // sequence of 8193 jumps is too complex"). Such a counter of 4 bytes or fewer lies 4 bytes
    // into its word, as the exit code does; so does a tally the body steps from itself by what it
    // read (`number = number + delta`), which grew every round the verifier checked.
    for (i, &v) in captures.iter().enumerate() {
        let t = field_type(m, i, v);
        let size = size_of(m, &t).expect("captured values have sizes");
        let hidden = by_value[i]
            && size <= 4
            && (is_stepped_counter(m, lp, v) || super::tallies::tally(m, lp, v).is_some());
        if hidden {
            fields.push((format!("h{i}"), Type::Array(Rc::new(Type::u8()), 4)));
        }
        let tail = (size + if hidden { 4 } else { 0 }) % 8;
        fields.push((format!("c{i}"), t));
        if tail != 0 {
            fields.push((
                format!("p{i}"),
                Type::Array(Rc::new(Type::u8()), 8 - tail as u32),
            ));
        }
    }
    if ret != Type::Void {
        fields.push(("ret".into(), ret.clone()));
    }
    fields.push(("code".into(), Type::i64()));
    let ctx_name = format!("{cb_name}.ctx");
    let (offsets, size, align) = c_layout(m, &fields).expect("captured values have sizes");
    let ctx_ty = Type::Struct(Rc::from(ctx_name.as_str()));
    let loc = m.op(lp).loc;
    {
        let pos = m
            .top_ops()
            .iter()
            .position(|&o| m.op(o).opcode == Opcode::KsFunc);
        let body = m.body;
        let mut b = Builder::new(m, body);
        b.at = pos;
        b.loc = loc;
        b.ks_struct(
            &ctx_name,
            fields.clone(),
            offsets,
            size as i128,
            align as i128,
            StructOrigin::File,
            None,
        );
    }

    // The callback: counter from the index, captures from the struct, then the body.
    let cb_ty = Type::Func(Rc::new(FnType {
        params: vec![Type::u64(), Type::ptr(ctx_ty.clone())],
        ret: Type::i64(),
    }));
    let cb = {
        let pos = m.top_ops().iter().position(|&o| o == func).map(|p| p + 1);
        let body = m.body;
        let floc = m.op(func).loc;
        let mut b = Builder::new(m, body);
        b.at = pos;
        b.loc = floc;
        b.ks_func(
            &cb_name,
            cb_ty,
            Target::Bpf,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        )
    };
    let entry = m.func_entry(cb);
    let index = m.add_block_arg(entry, Type::u64());
    m.set_value_name(index, Some(Rc::from("index")));
    let ctxp = m.add_block_arg(entry, Type::ptr(ctx_ty.clone()));
    m.set_value_name(ctxp, Some(Rc::from("loop_ctx")));
    let mut vmap: HashMap<Value, Value> = HashMap::new();
    for &local in &iteration_locals {
        let declared = m.defining_op(local).expect("a core.local");
        let own = m.clone_op(declared, &mut vmap);
        m.place_op(own, entry, None);
    }
    let mut b = Builder::new(m, entry);
    b.loc = loc;
    for (i, &c) in captures.iter().enumerate() {
        let t = field_type(b.module, i, c);
        let a = b.core_field_addr(ctxp, format!("c{i}").into_bytes(), Type::ptr(t.clone()));
        let v = match by_value[i] {
            true => a,
            false => b.core_load(a, t),
        };
        vmap.insert(c, v);
    }
    let lo_in = vmap[&lo];
    let off = b.core_cast(index, counter_ty.clone());
    let counter = b.core_add(lo_in, off);
    let old_body = m.region(m.op(lp).regions[0]).blocks[0];
    if let Some(&arg) = m.block(old_body).args.first() {
        vmap.insert(arg, counter);
    }
    for op in m.block(old_body).ops.clone() {
        let c = m.clone_op(op, &mut vmap);
        m.place_op(c, entry, None);
    }
    rewrite_exits(m, cb, ctxp, &codes, &ret);
    let mut b = Builder::new(m, entry);
    b.loc = loc;
    if !b.terminated() {
        let zero = b.core_const(0, Type::i64());
        b.ks_return(&[zero]);
    }

    // The call site: fill the struct, run bpf.loop, then carry out the exit the body chose.
    // The struct is zeroed there, where the loop starts, not with the frame: as a local zeroed
    // at its declaration, the zeros (one store per word) would run on every path through the
    // function, the many that never reach the loop too.
    let func_entry = m.func_entry(func);
    let slot = {
        let mut b = Builder::new(m, func_entry);
        b.at = Some(0);
        b.loc = loc;
        b.core_local(
            ctx_ty.clone(),
            Some(b"loop_ctx".to_vec()),
            None,
            Some(true),
            Type::ptr(ctx_ty.clone()),
        )
    };
    let mut b = m.builder_before(lp);
    let z = b.core_zero(ctx_ty.clone());
    b.core_store(z, slot);
    let mut copied_out = Vec::new();
    for (i, &c) in captures.iter().enumerate() {
        let t = field_type(b.module, i, c);
        let a = b.core_field_addr(slot, format!("c{i}").into_bytes(), Type::ptr(t.clone()));
        let v = match by_value[i] {
            true => {
                copied_out.push((a, c, t.clone()));
                b.core_load(c, t)
            }
            false => c,
        };
        b.core_store(v, a);
    }
    // Trip count: hi - lo when positive (the bounds were evaluated once, before the loop).
    let more = b.core_cmp(hi, lo, CmpPred::Gt);
    let span = b.core_sub(hi, lo);
    let zero = b.core_zero(counter_ty.clone());
    let trips = b.core_select(more, span, zero);
    // More than bpf_loop runs would silently run nothing (and a 64-bit count cut to 32 bits
    // would run the wrong number): a run-time count past the limit aborts (§14.4).
    if int_max(&counter_ty).is_none_or(|top| top > MAX_LOOP_TRIPS as u128) {
        let limit = b.core_const(MAX_LOOP_TRIPS, counter_ty.clone());
        let too_many = b.core_cmp(trips, limit, CmpPred::Gt);
        let check = b.ks_if(too_many, None, &[]);
        let (block, at) = (b.block, b.at);
        b.set_block(b.entry(check, 0));
        b.ks_abort(TOO_MANY_TRIPS.to_vec());
        (b.block, b.at) = (block, at);
    }
    let trips = b.cast_to(trips, Type::u32());
    // Not called for no rounds: where the verifier knows the count is 0 on every path to the
    // call, it never checks the callback and drops it as dead code, yet keeps the live
    // reference to it, and refuses the program ("verifier bug: No program to jit", 6.18).
    let zero = b.core_zero(Type::u32());
    let some = b.core_cmp(trips, zero, CmpPred::Ne);
    let run = b.ks_if(some, None, &[]);
    let (block, at) = (b.block, b.at);
    b.set_block(b.entry(run, 0));
    b.bpf_loop(trips, slot, &cb_name);
    (b.block, b.at) = (block, at);
    for (field, local, t) in copied_out {
        let v = b.core_load(field, t);
        b.core_store(v, local);
    }
    dispatch_exits(m, lp, slot, &ctx_ty, &exits, &ret);
    m.detach_op(lp);
    cb
}

/// Whether captured `v` is a local of a register's size whose address the code of `func` outside
/// loop `lp` only loads from and stores to: nothing else can reach it while the loop runs, so the
/// loop may work on a copy.
fn copied_through(m: &Module, func: OpId, lp: OpId, v: Value) -> bool {
    if !m.is_local(v) || !m.value_type(v).pointee().is_some_and(Type::is_scalar) {
        return false;
    }
    let inside: HashSet<OpId> = m.collect_nested(lp, |_| true).into_iter().collect();
    let mut only_loads_and_stores = true;
    m.walk_nested(func, &mut |o| {
        let d = m.op(o);
        if o == lp || inside.contains(&o) {
            return;
        }
        for (i, &x) in d.operands.iter().enumerate() {
            let plain = match d.opcode {
                Opcode::CoreLoad => i == 0,
                Opcode::CoreStore => i == 1,
                _ => false,
            };
            only_loads_and_stores &= x != v || plain;
        }
    });
    only_loads_and_stores
}

/// Whether `v` is a local of the function that only loop `lp` uses and that every iteration
/// fills whole before anything else touches it: a store to it at the top of the body comes first
/// (`var kind = opt[0]`), so no iteration reads what another left.
fn filled_each_iteration(m: &Module, lp: OpId, v: Value) -> bool {
    if !m.is_local(v) || m.use_count(v) != m.uses_within(lp, v) {
        return false;
    }
    let body = m.region(m.op(lp).regions[0]).blocks[0];
    let first_touch = m.block(body).ops.iter().copied().find(|&o| {
        let mut touches = false;
        m.walk_nested(o, &mut |x| touches |= m.op(x).operands.contains(&v));
        touches || m.op(o).operands.contains(&v)
    });
    first_touch.is_some_and(|o| {
        let d = m.op(o);
        d.opcode == Opcode::CoreStore
            && d.operands[1] == v
            && d.operands[0] != v
            && m.value_type(v).pointee() == Some(m.value_type(d.operands[0]))
    })
}

/// How each op in the loop body that leaves the function leaves it, in order.
fn loop_exits(m: &Module, lp: OpId) -> Vec<Exit> {
    let mut out = Vec::new();
    m.walk_nested(lp, &mut |o| match m.op(o).opcode {
        Opcode::KsReturn => out.push(Exit::Return),
        Opcode::KsThrow => out.push(Exit::Throw),
        Opcode::KsAbort => out.push(Exit::Abort(match m.attr(o, "message") {
            Some(Attr::Str(s)) => s.clone(),
            _ => b"aborted".to_vec(),
        })),
        Opcode::KsTailCall => out.push(Exit::TailCall {
            callee: match m.attr(o, "callee") {
                Some(Attr::Sym(s)) => s.clone(),
                _ => String::new(),
            },
            ctx: m.op(o).operands[0],
        }),
        _ => {}
    });
    out
}

/// The body calls a function (which may throw or abort) or makes an access `lower-bpf` checks
/// with an abort (a run-time index into an array in a map value, a global, a config or the
/// context).
fn may_raise_later(m: &Module, lp: OpId) -> bool {
    let run_time = |index: &[Value]| index.iter().any(|&i| m.const_int(i).is_none());
    let mut raises = false;
    m.walk_nested(lp, &mut |o| {
        raises |= match m.op(o).opcode {
            Opcode::CoreCall => true,
            Opcode::KsIndexAddr => run_time(&m.op(o).operands[1..2]),
            Opcode::KsCtxLoad => run_time(views::KsCtxLoad(o).index(m)),
            Opcode::KsCtxStore => run_time(views::KsCtxStore(o).index(m)),
            _ => false,
        }
    });
    raises
}

/// The loop an op's `break`/`continue` belongs to: the nearest enclosing loop op.
pub(super) fn enclosing_loop(m: &Module, mut op: OpId) -> Option<OpId> {
    while let Some(p) = m.parent_op(op) {
        if matches!(
            m.op(p).opcode,
            Opcode::KsFor | Opcode::KsWhile | Opcode::KsMapForeach
        ) {
            return Some(p);
        }
        if m.op(p).opcode == Opcode::KsFunc {
            return None;
        }
        op = p;
    }
    None
}

fn set_field(b: &mut Builder, ctxp: Value, field: &str, v: Value) {
    let t = b.module.value_type(v).clone();
    let a = b.core_field_addr(ctxp, field.as_bytes().to_vec(), Type::ptr(t));
    b.core_store(v, a);
}

/// In the callback: `continue` returns 0; `break` and the function exits record their code
/// (`codes`, one per exit op in order) and return 1, which stops `bpf_loop`.
fn rewrite_exits(m: &mut Module, cb: OpId, ctxp: Value, codes: &[i128], ret: &Type) {
    let body_ops: Vec<OpId> = m.collect_nested(cb, |d| {
        matches!(
            d.opcode,
            Opcode::KsBreak
                | Opcode::KsContinue
                | Opcode::KsReturn
                | Opcode::KsThrow
                | Opcode::KsAbort
                | Opcode::KsTailCall
        )
    });
    // Clones keep their original order, so the k-th exit op of the callback is the k-th exit.
    let mut k = 0;
    for op in body_ops {
        let opcode = m.op(op).opcode;
        if matches!(opcode, Opcode::KsBreak | Opcode::KsContinue) && enclosing_loop(m, op).is_some()
        {
            continue;
        }
        let loc = m.op(op).loc;
        let mut b = m.builder_before(op);
        b.loc = loc;
        let code = match opcode {
            Opcode::KsContinue => None,
            Opcode::KsBreak => Some(1),
            _ => {
                k += 1;
                Some(codes[k - 1])
            }
        };
        if let Some(c) = code {
            let cv = b.core_const(c, Type::u32());
            set_field(&mut b, ctxp, "exit", cv);
        }
        match opcode {
            Opcode::KsReturn if *ret != Type::Void => {
                let v = b.module.op(op).operands[0];
                set_field(&mut b, ctxp, "ret", v);
            }
            Opcode::KsThrow => {
                let v = b.module.op(op).operands[0];
                set_field(&mut b, ctxp, "code", v);
            }
            _ => {}
        }
        let r = b.core_const(code.is_some() as i128, Type::i64());
        b.ks_return(&[r]);
        m.detach_op(op);
    }
    debug_assert_eq!(k, codes.len());
}

/// Local `local` is an unsigned integer that loop `lp` writes only by stepping it by constants.
fn is_stepped_counter(m: &Module, lp: OpId, local: Value) -> bool {
    let stores = super::loop_steps::stores_of(m, lp, local);
    let unsigned = m.value_type(local).pointee().is_some_and(is_unsigned);
    unsigned
        && !stores.is_empty()
        && stores
            .iter()
            .all(|&s| super::loop_steps::steps_by_constant(m, s, local))
}

/// After `bpf.loop`: one arm per exit code that carries out the exit in the caller.
fn dispatch_exits(
    m: &mut Module,
    lp: OpId,
    slot: Value,
    ctx_ty: &Type,
    exits: &[Exit],
    ret: &Type,
) {
    if exits.is_empty() {
        return;
    }
    let _ = ctx_ty;
    let loc = m.op(lp).loc;
    let mut b = m.builder_before(lp);
    b.loc = loc;
    let a = b.core_field_addr(slot, b"exit".to_vec(), Type::ptr(Type::u32()));
    let code = b.core_load(a, Type::u32());
    let cases: Vec<Attr> = exits
        .iter()
        .enumerate()
        .map(|(k, e)| {
            Attr::Int(match e {
                Exit::RaisedThrow => RAISED_THROW_EXIT,
                Exit::RaisedAbort => RAISED_ABORT_EXIT,
                _ => 2 + k as i128,
            })
        })
        .collect();
    let sw = b.ks_switch(code, cases, &[], exits.len() + 1);
    for (k, e) in exits.iter().enumerate() {
        let arm: BlockId = b.entry(sw, k);
        let mut ab = Builder::new(b.module, arm);
        ab.loc = loc;
        match e {
            Exit::Return if *ret == Type::Void => {
                ab.ks_return(&[]);
            }
            Exit::Return => {
                let a = ab.core_field_addr(slot, b"ret".to_vec(), Type::ptr(ret.clone()));
                let v = ab.core_load(a, ret.clone());
                ab.ks_return(&[v]);
            }
            Exit::Throw | Exit::RaisedThrow => {
                let a = ab.core_field_addr(slot, b"code".to_vec(), Type::ptr(Type::i64()));
                let v = ab.core_load(a, Type::i64());
                ab.ks_throw(v);
            }
            Exit::RaisedAbort => {
                ab.ks_abort(b"aborted".to_vec());
            }
            Exit::Abort(msg) => {
                ab.ks_abort(msg.clone());
            }
            Exit::TailCall { callee, ctx } => {
                ab.ks_tail_call(*ctx, callee);
            }
        }
    }
    let default = b.entry(sw, exits.len());
    Builder::new(b.module, default).ks_yield(&[]);
}
