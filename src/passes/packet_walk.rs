//! Packet walks: a `while` that no counter bounds, but that goes round only while a pointer or
//! offset into the packet passes a test against `ctx->data_end`, and that advances it by at least
//! one byte every time (`while (opt + 2 <= data_end) { …; if (len < 2) { break }; opt = opt + len
//! }`), runs at most once per step that fits in the packet: the packet's directly addressable
//! bytes are fewer than 65,536 (the verifier admits no packet offset past 0xffff), so at most
//! `0xffff / step + 2` times. `bound-loops` counts such a loop to that bound, as it counts a
//! long counted `while`; as written, the verifier would follow it iteration by iteration and give
//! up ("the sequence of 8193 jumps is too complex").

use super::bound_loops::advances;
use super::provenance::{ctx_field, Provenance};
use super::value_bounds::{
    chain_terms, conditions_at, escaping_operands, in_nested_loop, int_max, is_unsigned,
    loaded_local, max_of, sum_terms, widened_from, Facts, LocalBounds,
};
use crate::ir::{views, BlockId, Builder, Module, OpId, Opcode, Type, Value};
use crate::vocab::CmpPred;

/// One past the verifier's largest packet offset (MAX_PACKET_OFF).
const PACKET_BYTES: u128 = 0x10000;

/// The verifier's largest packet offset (MAX_PACKET_OFF).
pub(super) const MAX_PACKET_OFFSET: i128 = 0xffff;

/// `offset` (an integer at most [`MAX_PACKET_OFFSET`]) as the distance from `data` to
/// `data + offset`: the same value, of which the verifier knows nothing (the difference of two
/// packet pointers), not even an exact value it knew before. Opaque before the difference, or
/// LLVM folds `(data + off) - data` back to `off`. A `u64`.
pub(super) fn unknown_distance(b: &mut Builder, data: Value, offset: Value) -> Value {
    let offset = b.cast_to(offset, Type::i64());
    let at = b.core_ptr_add(data, offset);
    let at = b.bpf_opaque(at);
    b.core_ptr_diff(at, data)
}

/// The most iterations of the packet walk `l` (in kernel function `f`), or `None` when it is
/// none: every iteration that goes round must have passed a test of the walked pointer against
/// `ctx->data_end` (or against a pointer `facts` bound within reach of `ctx->data`) and advanced
/// it by at least one byte.
pub(super) fn packet_walk_trips(m: &Module, f: OpId, l: OpId, facts: &dyn Facts) -> Option<u128> {
    walk_steps(m, f, l, facts)?
        .into_iter()
        .filter(|s| s.stopped && s.least >= 1)
        .filter_map(|s| Some(s.limit? / s.least + 2))
        .min()
}

/// Whether packet walk `l` of `f` reads through a walked local before a step that moves it by
/// at least a byte, and a test against a constant (`off < 48`) ends it: the verifier, which
/// cannot tell how a packet pointer compares with the packet's end (or another pointer), ends
/// such a walk as written only at that test. (The reads alone do not: past 0xffff bytes, where a
/// walk stepping a kilobyte or more a round gets within a few rounds, their checks are made on
/// rebased copies (§10.2), which pass on every round, and a walk `p = p + 65534` to a stop
/// pointer went round for the verifier until its 8,193-jump limit.)
pub(super) fn walk_reads_on_the_way(m: &Module, f: OpId, l: OpId, facts: &dyn Facts) -> bool {
    walk_steps(m, f, l, facts).is_some_and(|steps| {
        steps
            .iter()
            .any(|s| s.read && s.least >= 1 && s.tested_limit)
    })
}

/// Whether `while` loop `l` of `f` walks the packet forward as [`packet_walk_trips`] asks, but by
/// a step that may be 0 (`off = off + len` with nothing leaving on `len == 0`): on such a packet
/// every iteration is the one before it, and the loop never ends.
pub(super) fn walk_may_stall(m: &Module, f: OpId, l: OpId, facts: &dyn Facts) -> bool {
    walk_steps(m, f, l, facts).is_some_and(|steps| {
        let mut stopped = steps.iter().filter(|s| s.stopped).peekable();
        stopped.peek().is_some() && stopped.all(|s| s.least == 0)
    })
}

/// The local (a packet pointer, or an offset a packet address adds) that `while` loop `l` of `f`
/// walks forward through the packet by at least a byte a round with nothing that bounds how far: no test against `ctx->data_end`, or against a stop
/// pointer ksc bounds (`stop = data + len`, `len` a `u64` from a map, bounds nothing), and no
/// read through it. Unless a count ends it, the verifier, which follows every round's exact
/// position and does not relate two packet pointers, follows it round by round and gives up.
pub(super) fn walk_without_stop(m: &Module, f: OpId, l: OpId, facts: &dyn Facts) -> Option<Value> {
    let steps = walk_steps(m, f, l, facts)?;
    let advancing = || steps.iter().filter(|s| s.forward && s.least >= 1);
    if advancing().any(|s| s.stopped && s.limit.is_some()) {
        return None;
    }
    // (A counter that no packet address adds is no walk: `while (i < n)` is the verifier's.)
    let packet_locals = walked_packet_locals(m, f, l);
    advancing()
        .map(|s| s.walked)
        .find(|&w| packet_locals.iter().any(|p| p.slot == w))
}

/// A store that moves a walked local every round.
struct WalkStep {
    /// The local it moves.
    walked: Value,
    /// The least amount it moves the local by.
    least: u128,
    /// It moves the local forward (else back).
    forward: bool,
    /// Every round that goes round tested the local against a stop, or read through it.
    stopped: bool,
    /// Every round read through it before the step (the read's check stops it).
    read: bool,
    /// The farthest the local can be while the loop goes round; `None` when nothing bounds it
    /// (no test of it, or only against a stop pointer that nothing bounds).
    limit: Option<u128>,
    /// A test of it against a constant ends the loop (`off < 48`), which the verifier decides.
    tested_limit: bool,
}

/// The steps of packet walk `l` of `f` (see [`packet_walk_trips`]), whatever their least
/// amount; `None` when `l` is no packet walk.
fn walk_steps(m: &Module, f: OpId, l: OpId, facts: &dyn Facts) -> Option<Vec<WalkStep>> {
    if m.op(l).opcode != Opcode::KsWhile {
        return None;
    }
    let (cond, body) = (m.op(l).regions[0], m.op(l).regions[1]);
    let body_block = m.sole_block(body)?;
    let mut continuing = Vec::new();
    chain_terms(m, m.yielded_value(cond)?, false, &mut continuing);
    let walk = Walk {
        m,
        f,
        l,
        body: body_block,
        provenance: Provenance::of_function(m, f),
        facts,
    };
    // Where the loop decides to go round: the condition's terms (before every op of the body)
    // and the leaving tests, each with the body position it stands at; `true` for a leaving one.
    let everywhere = m.block(body_block).ops.len();
    let deciding: Vec<(usize, Value, bool)> = continuing
        .iter()
        .map(|&t| (0, t, false))
        .chain(walk.leaving_tests(everywhere).map(|(at, t)| (at, t, true)))
        .collect();
    // A counter compared with a constant there (`labels < 16`, stepped twice): a bound the
    // verifier follows as written, as it did before.
    if deciding.iter().any(|&(_, t, _)| walk.counts_elsewhere(t)) {
        return None;
    }
    let steps: Vec<(Value, Option<WalkStep>)> = (m.block(body_block).ops.iter().enumerate())
        .filter(|&(_, &o)| m.op(o).opcode == Opcode::CoreStore)
        .map(|(at, &store)| {
            let walked = m.op(store).operands[1];
            (walked, walk.step(&deciding, at, store, walked))
        })
        .collect();
    // A local stepped several times a round is bounded by each step only when every one moves
    // it forward: one not understood (or stepping back) could undo what the others did.
    let bounded = |walked: Value| {
        let mut of_local = steps.iter().filter(|(w, _)| *w == walked);
        let alone = of_local.clone().count() == 1;
        alone || of_local.all(|(_, s)| s.as_ref().is_some_and(|s| s.forward))
    };
    let bounded: Vec<bool> = steps.iter().map(|&(w, _)| bounded(w)).collect();
    let steps = steps.into_iter().zip(bounded);
    Some(
        steps
            .filter_map(|((_, s), bounded)| s.filter(|_| bounded))
            .collect(),
    )
}

/// The constant that `test` keeps `walked` at most while the loop goes round (`off < 48`: 47),
/// `leaving` as for [`Walk::tests`].
fn limit_of(m: &Module, test: Value, walked: Value, leaving: bool) -> Option<u128> {
    let (read, pred, k) = compared_with_constant(m, test, walked)?;
    // (A narrowing read limits only the low bits.)
    if int_max(m.value_type(read))? < int_max(m.value_type(walked).pointee()?)? {
        return None;
    }
    let pred = if leaving { pred.negated() } else { pred };
    let k = u128::try_from(k).ok()?;
    match pred {
        CmpPred::Lt => k.checked_sub(1),
        CmpPred::Le => Some(k),
        _ => None,
    }
}

/// Whether loop `l` of `f` moves a packet pointer back by a run-time amount
/// (`opt = opt - len`). Counted, it is a loop the verifier follows; otherwise neither the
/// verifier (each iteration's pointer lies further back) nor a `bpf_loop` callback (whose
/// rounds must start from a rebased pointer, which past the packet's start would wrap to its
/// end) can bound it.
pub(super) fn walks_pointer_back(m: &Module, f: OpId, l: OpId) -> bool {
    walked_packet_locals(m, f, l)
        .iter()
        .any(|w| w.pointer && !w.forward)
}

/// The local loop `l` of `f` moves forward through the packet on some paths and back on others
/// (`pos + 2`, `pos - 1`), if any. With no count, such a walk may go round forever over the same
/// bytes, and the verifier, which follows every round's exact position on every path, gives up.
pub(super) fn walks_both_ways(m: &Module, f: OpId, l: OpId) -> Option<Value> {
    walked_packet_locals(m, f, l)
        .into_iter()
        .find(WalkedLocal::both_ways)
        .map(|w| w.slot)
}

/// A local that a loop walks through the packet ([`walked_packet_locals`]).
pub(super) struct WalkedLocal {
    pub slot: Value,
    /// A packet pointer (else an unsigned offset added to one).
    pub pointer: bool,
    /// Its steps only add (`p + len + 1`), never subtract.
    pub forward: bool,
    /// Some step only adds (with `!forward`: others subtract).
    pub ahead: bool,
}

impl WalkedLocal {
    /// Moved forward on some paths and back on others (`pos + len`, `pos - 1`): the verifier
    /// follows every round's exact position on each path and prunes none of them.
    pub fn both_ways(&self) -> bool {
        self.ahead && !self.forward
    }

    /// Loop `l` walks this local in a way that leaves the verifier nothing to prune: both ways,
    /// or forward on some rounds and standing still on others ([`stalls`]).
    pub fn defeats_pruning(&self, m: &Module, l: OpId) -> bool {
        self.both_ways() || (self.ahead && stalls(m, l, self.slot))
    }
}

/// Whether some round of loop `l` goes on to the next (through a `continue`, or off the end of
/// its body) without stepping `slot`, which other rounds step: the position then stands still
/// on one path and moves on another, as it does both ways.
fn stalls(m: &Module, l: OpId, slot: Value) -> bool {
    // A `while` keeps its condition in region 0 and its body in region 1.
    let body_region = match m.op(l).opcode {
        Opcode::KsWhile => m.op(l).regions[1],
        _ => m.op(l).regions[0],
    };
    let body = m.region(body_region).blocks[0];
    let steps = |op: OpId| steps_on_every_path(m, op, slot);
    let continues = m
        .collect_nested(l, |d| d.opcode == Opcode::KsContinue)
        .into_iter()
        .filter(|&c| super::lower_loops::enclosing_loop(m, c) == Some(l));
    for c in continues {
        // Stepped before the `continue` in its block or in an enclosing one within the loop.
        let mut at = c;
        let mut stepped = false;
        while let Some(block) = m.op(at).parent {
            let ops = &m.block(block).ops;
            let upto = ops.iter().position(|&o| o == at).unwrap_or(ops.len());
            if ops[..upto].iter().any(|&o| steps(o)) {
                stepped = true;
                break;
            }
            if block == body {
                break;
            }
            match m.block_owner(block) {
                Some(owner) => at = owner,
                None => break,
            }
        }
        if !stepped {
            return true;
        }
    }
    let ops = &m.block(body).ops;
    let open = ops.last().is_none_or(|&o| !m.is_terminator(o));
    open && !ops.iter().any(|&o| steps(o))
}

/// `op` steps `slot` whichever way control goes through it: a store of an advanced value, or
/// an `if`/`switch` each of whose regions ends up doing so.
fn steps_on_every_path(m: &Module, op: OpId, slot: Value) -> bool {
    let d = m.op(op);
    match d.opcode {
        Opcode::CoreStore => {
            d.operands[1] == slot && super::bound_loops::advances(m, d.operands[0], slot, 8)
        }
        Opcode::KsIf | Opcode::KsSwitch => {
            !d.regions.is_empty()
                && d.regions.iter().all(|&r| {
                    m.region(r).blocks.iter().any(|&b| {
                        let ops = &m.block(b).ops;
                        ops.iter().any(|&o| steps_on_every_path(m, o, slot))
                            || ops.last().is_some_and(|&o| {
                                m.is_terminator(o) && m.op(o).opcode != Opcode::KsYield
                            })
                    })
                })
        }
        _ => false,
    }
}

/// The locals loop `l` of `f` walks through the packet: each a pointer from `ctx->data` or an
/// unsigned offset that some packet address adds to one, that the loop moves from its own value
/// (`opt = opt + len`, `off = off - len`).
pub(super) fn walked_packet_locals(m: &Module, f: OpId, l: OpId) -> Vec<WalkedLocal> {
    let provenance = Provenance::of_function(m, f);
    let from_data = |v: Value| rooted(m, &provenance, v, b"data");
    // The locals some packet address adds to a pointer from `ctx->data` (`data + off`, or
    // `data[off]`).
    let packet_offsets: Vec<Value> = m
        .collect_nested(f, |d| {
            matches!(d.opcode, Opcode::CorePtrAdd | Opcode::CoreElemAddr)
        })
        .into_iter()
        .filter(|&o| from_data(m.op(o).operands[0]))
        .filter_map(|o| loaded_local(m, unsaturated(m, m.op(o).operands[1])))
        .collect();
    let mut walked: Vec<WalkedLocal> = Vec::new();
    for store in m.collect_nested(l, |d| d.opcode == Opcode::CoreStore) {
        let (value, slot) = (m.op(store).operands[0], m.op(store).operands[1]);
        if !m.is_local(slot) {
            continue;
        }
        let ty = m.value_type(value);
        let pointer = ty.is_ptr() && from_data(value);
        let offset = is_unsigned(ty) && packet_offsets.contains(&slot);
        if !((pointer || offset) && advances(m, value, slot, 8)) {
            continue;
        }
        let forward = steps_forward(m, value);
        match walked.iter_mut().find(|w| w.slot == slot) {
            Some(w) => {
                w.forward &= forward;
                w.ahead |= forward;
                w.pointer |= pointer;
            }
            None => walked.push(WalkedLocal {
                slot,
                pointer,
                forward,
                ahead: forward,
            }),
        }
    }
    walked
}

/// The index `bounds-check` saturated into `index` where it forms a packet address it could
/// not bound (`opaque(min(opaque(off), 0xffff))`), else `index` itself.
fn unsaturated(m: &Module, index: Value) -> Value {
    let mut v = index;
    while let Some(d) = m.defining_op(v).map(|o| m.op(o)) {
        v = match d.opcode {
            Opcode::BpfOpaque | Opcode::CoreCast => d.operands[0],
            // `over ? high : x`
            Opcode::CoreSelect if m.const_int(d.operands[1]).is_some() => d.operands[2],
            _ => break,
        };
    }
    v
}

/// Every origin of pointer `v` is the context's `field`.
pub(super) fn rooted(m: &Module, provenance: &Provenance, v: Value, field: &[u8]) -> bool {
    let mut roots = provenance.roots(v).peekable();
    roots.peek().is_some()
        && roots.all(|r| {
            m.defining_op(r)
                .is_some_and(|o| ctx_field(m, o) == Some(field))
        })
}

/// Whether `value` only adds to what it moves (`p + len + 1`): no subtraction and no negated or
/// signed term.
fn steps_forward(m: &Module, value: Value) -> bool {
    let mut terms = Vec::new();
    sum_terms(m, value, &mut terms);
    terms.iter().all(|&t| match m.const_int(t) {
        Some(c) => c >= 0,
        None => {
            let ty = m.value_type(t);
            let negated = m
                .defining_op(t)
                .is_some_and(|o| matches!(m.op(o).opcode, Opcode::CoreNeg | Opcode::CoreSub));
            !negated && (ty.is_ptr() || is_unsigned(ty) || unsigned_cast(m, t))
        }
    })
}

/// `t` is an unsigned value widened (`len as i64`, to move a pointer).
fn unsigned_cast(m: &Module, t: Value) -> bool {
    m.defining_op(t).is_some_and(|o| {
        let d = m.op(o);
        d.opcode == Opcode::CoreCast && is_unsigned(m.value_type(d.operands[0]))
    })
}

struct Walk<'m> {
    m: &'m Module,
    f: OpId,
    l: OpId,
    body: BlockId,
    provenance: Provenance,
    /// Bounds of the function's locals: how far from `ctx->data` a stop pointer lies.
    facts: &'m dyn Facts,
}

impl Walk<'_> {
    /// The step `store` (op `at` of the body) makes of `walked`, and whether every iteration
    /// that goes round has tested it first (`deciding`: see [`walk_steps`]) or read through it.
    fn step(
        &self,
        deciding: &[(usize, Value, bool)],
        at: usize,
        store: OpId,
        walked: Value,
    ) -> Option<WalkStep> {
        let m = self.m;
        let (least, forward) = self.min_step(store, walked)?;
        // (Rebased each round of a callback, a pointer walked back past the packet's start
        // would not keep its address: see `walks_pointer_back`.)
        if !forward && m.value_type(walked).pointee().is_some_and(Type::is_ptr) {
            return None;
        }
        // (Only what every way round passes: a `continue` may go round before `at`.)
        let at = self.round_ends(at);
        let before = || {
            deciding
                .iter()
                .filter(move |&&(pos, _, leaving)| !leaving || pos < at)
                .map(|&(_, t, leaving)| (t, leaving))
        };
        // Past the packet's end (or a stop within reach of its start) a test or an access
        // stops it; before its start, only an access (whose check aborts there).
        let stops: Vec<Reach> = before()
            .filter(|_| forward)
            .filter_map(|(t, leaving)| self.stop_of(t, walked, leaving))
            .collect();
        let accessed = self.accessed_before(at, walked);
        // A constant limit on an offset may bound it sooner (`while (off < 48)`).
        let tested = before()
            .filter(|_| forward)
            .filter_map(|(t, leaving)| limit_of(m, t, walked, leaving))
            .min();
        let limit = tested
            .into_iter()
            .chain(stops.iter().filter_map(|r| match r {
                Reach::Within(limit) => Some(*limit),
                Reach::Unbounded => None,
            }))
            .chain(accessed.then_some(PACKET_BYTES - 1))
            .min();
        Some(WalkStep {
            walked,
            least,
            forward,
            stopped: !stops.is_empty() || accessed,
            read: accessed,
            limit,
            tested_limit: tested.is_some(),
        })
    }

    /// The least amount `store` moves `walked` by (maybe 0), and whether forward, when it
    /// steps it every round (see [`Walk::steps_every_round`]): a pointer or an unsigned offset of 32 bits or more (no wrap within a
    /// packet), moved one way by constants and terms that leaving tests before it bound from
    /// below (`opt + len + 1`, `opt - len`).
    fn min_step(&self, store: OpId, walked: Value) -> Option<(u128, bool)> {
        let m = self.m;
        let ty = m.value_type(walked).pointee()?;
        let wide = ty.is_ptr() || (is_unsigned(ty) && int_max(ty)? >= u128::from(u32::MAX));
        if !m.is_local(walked) || !wide {
            return None;
        }
        let continue_least = self.steps_every_round(store, walked)?;
        // `off - len`: the subtrahend's terms step back.
        let mut stored = m.op(store).operands[0];
        let mut back_terms = Vec::new();
        if let Some(sub) = m
            .defining_op(stored)
            .filter(|&o| m.op(o).opcode == Opcode::CoreSub)
        {
            stored = m.op(sub).operands[0];
            sum_terms(m, m.op(sub).operands[1], &mut back_terms);
        }
        let mut terms = Vec::new();
        sum_terms(m, stored, &mut terms);
        let base = terms
            .iter()
            .position(|&t| loaded_local(m, t) == Some(walked))?;
        terms.remove(base);
        let mut ahead_terms = Vec::new();
        let mut back: u128 = 0;
        // (`off + len - 1`: a constant taken away is a constant step back.)
        let mut taken = Vec::new();
        for t in back_terms {
            match m.const_int(t) {
                Some(c) if c >= 0 => back = back.checked_add(c.unsigned_abs())?,
                _ => taken.push(t),
            }
        }
        let mut back_terms = taken;
        for t in terms {
            let negated = m
                .defining_op(t)
                .filter(|&o| m.op(o).opcode == Opcode::CoreNeg);
            match (m.const_int(t), negated) {
                (Some(0), _) => {}
                (Some(c), _) if c < 0 => back = back.checked_add(c.unsigned_abs())?,
                (_, Some(neg)) => back_terms.push(m.op(neg).operands[0]),
                _ => ahead_terms.push(t),
            }
        }
        // `off + len - 1`: forward by what the leaving tests show `len` is at least, less the
        // constant; where that is not a byte, a round may leave it where it was (`len == 1`)
        // or move it back, and the walk may never end.
        if back_terms.is_empty() && back > 0 && !ahead_terms.is_empty() {
            let mut ahead: u128 = 0;
            for t in ahead_terms {
                ahead = ahead.checked_add(self.min_term(store, t)?)?;
            }
            return Some((ahead.saturating_sub(back).min(continue_least), true));
        }
        if !back_terms.is_empty() || back > 0 {
            // Both ways: nothing shows which way it goes (a step before a `continue` is ahead).
            if !ahead_terms.is_empty() || continue_least != u128::MAX {
                return None;
            }
            for t in back_terms {
                back = back.checked_add(self.min_term(store, t)?)?;
            }
            return Some((back, false));
        }
        let mut ahead: u128 = 0;
        for t in ahead_terms {
            ahead = ahead.checked_add(self.min_term(store, t)?)?;
        }
        Some((ahead.min(continue_least), true))
    }

    /// Whether every round that goes on to the next moves `walked` (nothing else takes its
    /// address): every write of it in the loop is at the body's top level, `store` with no
    /// `continue` before it — or one that goes round after a step of its own (`off = off + 1;
    /// continue` over a NOP option). The least of those steps, `u128::MAX` with none.
    fn steps_every_round(&self, store: OpId, walked: Value) -> Option<u128> {
        let m = self.m;
        let stores = m.collect_nested(self.l, |d| {
            d.opcode == Opcode::CoreStore && d.operands[1] == walked
        });
        let continues = m
            .collect_nested(self.l, |d| d.opcode == Opcode::KsContinue)
            .into_iter()
            .filter(|&c| !in_nested_loop(m, c, self.l) && !m.precedes_structurally(store, c));
        let mut least = u128::MAX;
        let mut own_steps = Vec::new();
        for c in continues {
            let (step, by) = self.continue_step(c, walked)?;
            own_steps.push(step);
            least = least.min(by);
        }
        let escapes = m
            .collect_nested(self.f, |_| true)
            .into_iter()
            .any(|o| escaping_operands(m, o).any(|v| v == walked));
        let top_level = &m.block(self.body).ops;
        let placed = stores
            .iter()
            .all(|s| top_level.contains(s) || own_steps.contains(s));
        (placed && !escapes).then_some(least)
    }

    /// The step the `continue` `c` goes round after: the one write of `walked` in its own block
    /// (before it) and in all that block holds, `walked` plus constants of at least a byte.
    fn continue_step(&self, c: OpId, walked: Value) -> Option<(OpId, u128)> {
        let m = self.m;
        let (block, at) = m.position(c)?;
        let writes = |o: OpId| {
            let mut n =
                usize::from(m.op(o).opcode == Opcode::CoreStore && m.op(o).operands[1] == walked);
            n += m
                .collect_nested(o, |d| {
                    d.opcode == Opcode::CoreStore && d.operands[1] == walked
                })
                .len();
            n
        };
        let ops = &m.block(block).ops;
        if ops.iter().map(|&o| writes(o)).sum::<usize>() != 1 {
            return None;
        }
        let step = *ops[..at].iter().find(|&&o| writes(o) == 1)?;
        if m.op(step).opcode != Opcode::CoreStore {
            return None;
        }
        let mut terms = Vec::new();
        sum_terms(m, m.op(step).operands[0], &mut terms);
        let base = terms
            .iter()
            .position(|&t| loaded_local(m, t) == Some(walked))?;
        terms.remove(base);
        let mut by: u128 = 0;
        for t in terms {
            by = by.checked_add(u128::try_from(m.const_int(t)?).ok()?)?;
        }
        (by >= 1).then_some((step, by))
    }

    /// Where the first way round the loop leaves the body's top level: the top-level op holding
    /// the first `continue` that goes round after a step of its own, else `at`.
    fn round_ends(&self, at: usize) -> usize {
        let m = self.m;
        let ops = &m.block(self.body).ops;
        m.collect_nested(self.l, |d| d.opcode == Opcode::KsContinue)
            .into_iter()
            .filter(|&c| !in_nested_loop(m, c, self.l))
            .filter_map(|c| {
                let mut top = c;
                while m.op(top).parent.is_some_and(|b| b != self.body) {
                    top = m.parent_op(top)?;
                }
                ops.iter().position(|&o| o == top)
            })
            .fold(at, usize::min)
    }

    /// The least value of term `t` of the step `store` makes: a constant, or a local's value
    /// that a leaving test between its last write and the store bounds (`if (len < 2) {
    /// break }`); an unsigned one (or one widened from unsigned) is at least 0.
    fn min_term(&self, store: OpId, t: Value) -> Option<u128> {
        let m = self.m;
        if let Some(c) = m.const_int(t) {
            return u128::try_from(c).ok();
        }
        let guarded = loaded_local(m, t).and_then(|local| {
            let ty = m.value_type(local).pointee()?;
            // (A narrowing read keeps no bound of the local.)
            if int_max(m.value_type(t))? < int_max(ty)? {
                return None;
            }
            let ops = &m.block(self.body).ops;
            let step_at = ops.iter().position(|&o| o == store)?;
            let written = self.last_write(local)?;
            self.leaving_tests(step_at)
                .filter(|&(at, _)| at > written)
                .filter_map(|(_, test)| least_passing(m, test, local))
                .max()
        });
        match guarded {
            Some(min) => Some(min),
            None => (is_unsigned(m.value_type(t)) || unsigned_cast(m, t)).then_some(0),
        }
    }

    /// Where the body's top level last writes `local`, when it is written nowhere else in the
    /// loop and nothing takes its address: the tests after that see the value the step adds.
    fn last_write(&self, local: Value) -> Option<usize> {
        let m = self.m;
        let ops = &m.block(self.body).ops;
        let writes = m.collect_nested(self.l, |d| {
            d.opcode == Opcode::CoreStore && d.operands[1] == local
        });
        let escapes = m
            .collect_nested(self.f, |_| true)
            .into_iter()
            .any(|o| escaping_operands(m, o).any(|v| v == local));
        if escapes {
            return None;
        }
        writes
            .iter()
            .map(|w| ops.iter().position(|o| o == w))
            .try_fold(None, |last: Option<usize>, at| Some(last.max(Some(at?))))?
    }

    /// The conditions of the body's top-level `if`s before op `at` whose taken arm leaves the
    /// loop, split at `||`, with the `if`'s position: each one true means the loop does not go
    /// round.
    fn leaving_tests(&self, at: usize) -> impl Iterator<Item = (usize, Value)> + '_ {
        let m = self.m;
        m.block(self.body).ops[..at]
            .iter()
            .enumerate()
            .filter(|&(_, &o)| self.is_leaving_if(o))
            .flat_map(move |(i, &o)| {
                let mut tests = Vec::new();
                chain_terms(m, m.op(o).operands[0], true, &mut tests);
                tests.into_iter().map(move |t| (i, t))
            })
    }

    /// Whether the body's top level reads memory through `walked` before op `at`: `*(data +
    /// off + 1)`, `opt[1]`. The packet check of that access (the user's, or the one
    /// `bounds-check` adds) leaves the loop once `walked` is past either end of the packet.
    fn accessed_before(&self, at: usize, walked: Value) -> bool {
        let m = self.m;
        m.block(self.body).ops[..at].iter().any(|&o| {
            let d = m.op(o);
            d.opcode == Opcode::CoreLoad && self.addresses_packet_at(d.operands[0], walked)
        })
    }

    /// `address` is `walked` (a packet pointer), or a pointer from `ctx->data` plus `walked`,
    /// moved by constants.
    fn addresses_packet_at(&self, address: Value, walked: Value) -> bool {
        let m = self.m;
        let mut base = address;
        while let Some(d) = m.defining_op(base).map(|o| m.op(o)) {
            if d.opcode != Opcode::CoreElemAddr {
                break;
            }
            if m.const_int(d.operands[1]).is_none() {
                // A byte at the walked index of a packet pointer (`opts[off]`).
                let bytes = m
                    .value_type(base)
                    .pointee()
                    .is_some_and(|t| crate::ir::layout::size_of(m, t) == Some(1));
                return bytes
                    && self.rooted(d.operands[0], b"data")
                    && moves_by_walked(m, d.operands[1], walked, true);
            }
            base = d.operands[0];
        }
        m.value_type(base).is_ptr()
            && self.rooted(base, b"data")
            && moves_by_walked(m, base, walked, true)
    }

    fn rooted(&self, v: Value, field: &[u8]) -> bool {
        rooted(self.m, &self.provenance, v, field)
    }

    /// Whether `test` compares, with a constant, an integer local that the loop only steps by
    /// constants (a counter the verifier follows).
    fn counts_elsewhere(&self, test: Value) -> bool {
        let m = self.m;
        let Some(cmp) = m.defining_op(test).and_then(|o| views::CoreCmp::of(m, o)) else {
            return false;
        };
        let (lhs, rhs) = (cmp.lhs(m), cmp.rhs(m));
        let local = match (m.const_int(lhs), m.const_int(rhs)) {
            (None, Some(_)) => loaded_local(m, lhs),
            (Some(_), None) => loaded_local(m, rhs),
            _ => None,
        };
        // Every write of it in the loop steps it by a constant: a counter.
        local.is_some_and(|local| {
            let stores = m.collect_nested(self.l, |d| {
                d.opcode == Opcode::CoreStore && d.operands[1] == local
            });
            let steps = stores.iter().all(|&st| {
                let mut terms = Vec::new();
                sum_terms(m, m.op(st).operands[0], &mut terms);
                let (own, rest): (Vec<Value>, Vec<Value>) = terms
                    .into_iter()
                    .partition(|&t| loaded_local(m, t) == Some(local));
                own.len() == 1 && !rest.is_empty() && rest.iter().all(|&t| m.const_int(t).is_some())
            });
            !stores.is_empty() && steps && m.value_type(local).pointee().is_some_and(Type::is_int)
        })
    }

    fn is_leaving_if(&self, o: OpId) -> bool {
        let m = self.m;
        let leaves = |k: Opcode| matches!(k, Opcode::KsBreak | Opcode::KsReturn | Opcode::KsThrow);
        m.op(o).opcode == Opcode::KsIf
            && m.op(o).results.is_empty()
            && m.region_ends_in(m.op(o).regions[0], leaves)
    }

    /// How far from `ctx->data` `test` keeps `walked` while it lets the loop go round, when it
    /// compares `walked`'s address (a pointer from `ctx->data`, or `ctx->data` plus the offset),
    /// plus constants, with a stop so that going round needs it at most that: `ctx->data_end`
    /// (within the packet's last offset), or a pointer from `ctx->data` (`stop = data + 16 +
    /// len`: within the bound the facts give it, if any). `leaving`: the loop goes round when
    /// `test` is false (a leaving `if`), else when it is true (the condition).
    fn stop_of(&self, test: Value, walked: Value, leaving: bool) -> Option<Reach> {
        let m = self.m;
        let cmp = views::CoreCmp::of(m, m.defining_op(test)?)?;
        let (lhs, rhs) = (cmp.lhs(m), cmp.rhs(m));
        let (address, end) = match (cmp.pred(m), leaving) {
            (CmpPred::Le | CmpPred::Lt, false) | (CmpPred::Gt | CmpPred::Ge, true) => (lhs, rhs),
            (CmpPred::Ge | CmpPred::Gt, false) | (CmpPred::Lt | CmpPred::Le, true) => (rhs, lhs),
            _ => return None,
        };
        let walks = m.value_type(address).is_ptr()
            && self.rooted(address, b"data")
            && moves_by_walked(m, address, walked, false);
        if !walks {
            None
        } else if self.rooted(end, b"data_end") {
            Some(Reach::Within(PACKET_BYTES - 1))
        } else if self.rooted(end, b"data") {
            Some(max_of(m, end, self.facts, 0).map_or(Reach::Unbounded, Reach::Within))
        } else {
            None
        }
    }
}

/// How far from `ctx->data` a walk's stop lets it go.
enum Reach {
    Within(u128),
    Unbounded,
}

/// The least value of `local` that `test` being false leaves (`len < 2`: 2; `len == 0`: 1).
fn least_passing(m: &Module, test: Value, local: Value) -> Option<u128> {
    let (_, pred, k) = compared_with_constant(m, test, local)?;
    let k = u128::try_from(k).ok()?;
    match pred {
        CmpPred::Lt => Some(k),
        CmpPred::Le => k.checked_add(1),
        CmpPred::Eq if k == 0 => Some(1),
        _ => None,
    }
}

/// `test` as `local <pred> k`: the read of `local` it compares, the predicate with the local on
/// the left, and the constant.
fn compared_with_constant(m: &Module, test: Value, local: Value) -> Option<(Value, CmpPred, i128)> {
    let cmp = views::CoreCmp::of(m, m.defining_op(test)?)?;
    let (lhs, rhs) = (cmp.lhs(m), cmp.rhs(m));
    if loaded_local(m, lhs) == Some(local) {
        Some((lhs, cmp.pred(m), m.const_int(rhs)?))
    } else if loaded_local(m, rhs) == Some(local) {
        Some((rhs, cmp.pred(m).swapped(), m.const_int(lhs)?))
    } else {
        None
    }
}

/// Whether `address`'s terms are a load of `walked`, pointers and constants (non-negative ones
/// only, unless `any_constant`).
fn moves_by_walked(m: &Module, address: Value, walked: Value, any_constant: bool) -> bool {
    let mut terms = Vec::new();
    sum_terms(m, address, &mut terms);
    let mut walks = false;
    for t in terms {
        if loaded_local(m, t) == Some(walked) {
            walks = true;
        } else if !(m.value_type(t).is_ptr()
            || m.const_int(t).is_some_and(|c| any_constant || c >= 0))
        {
            return false;
        }
    }
    walks
}

/// Whether `end` (a read of a local) is at most the packet's length, which is below
/// [`PACKET_BYTES`]: it holds that length (`(data_end - data) as u32`), or a test before `at`
/// leaves unless `ctx->data + end` (plus non-negative terms) lies within `ctx->data_end` (`if
/// (data + msg_end > data_end) { return }`), `end` reading the same store there as at `at`. Neither ksc's arithmetic nor the verifier knows that bound (the
/// verifier learns a range of the pointer, not of `end`); it is a fact of the packets the kernel
/// hands over, as the walks' bound above is.
pub(super) fn within_packet(
    m: &Module,
    provenance: &Provenance,
    bounds: &LocalBounds,
    at: OpId,
    end: Value,
) -> bool {
    let read = |v: Value| bounds.same_read(widened_from(m, v));
    let Some(end) = read(end) else {
        return false;
    };
    // (`var end = (data_end - data) as u32`: the length itself.)
    let length = bounds.stored_read(end).is_some_and(|v| {
        let v = widened_from(m, v);
        let d = m.defining_op(v).map(|o| m.op(o));
        let diff = match d {
            Some(d) if d.opcode == Opcode::CoreCast => {
                m.defining_op(d.operands[0]).map(|o| m.op(o))
            }
            _ => d,
        };
        diff.is_some_and(|d| {
            d.opcode == Opcode::CorePtrDiff
                && rooted(m, provenance, d.operands[0], b"data_end")
                && rooted(m, provenance, d.operands[1], b"data")
        })
    });
    length
        || conditions_at(m, at).into_iter().any(|(cond, outcome)| {
            let mut terms = Vec::new();
            chain_terms(m, cond, !outcome, &mut terms);
            terms.into_iter().any(|t| {
                let Some(cmp) = m.defining_op(t).and_then(|o| views::CoreCmp::of(m, o)) else {
                    return false;
                };
                let pred = if outcome {
                    cmp.pred(m)
                } else {
                    cmp.pred(m).negated()
                };
                let (address, data_end) = match pred {
                    CmpPred::Le | CmpPred::Lt => (cmp.lhs(m), cmp.rhs(m)),
                    CmpPred::Ge | CmpPred::Gt => (cmp.rhs(m), cmp.lhs(m)),
                    _ => return false,
                };
                if !(m.value_type(address).is_ptr()
                    && rooted(m, provenance, address, b"data")
                    && rooted(m, provenance, data_end, b"data_end"))
                {
                    return false;
                }
                let mut offsets = Vec::new();
                sum_terms(m, address, &mut offsets);
                let non_negative = |o: Value| match m.const_int(o) {
                    Some(c) => c >= 0,
                    None => {
                        let ty = m.value_type(o);
                        ty.is_ptr() || is_unsigned(ty) || unsigned_cast(m, o)
                    }
                };
                offsets.iter().all(|&o| non_negative(o))
                    && offsets.iter().any(|&o| read(o) == Some(end))
            })
        })
}
