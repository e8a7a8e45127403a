//! The kernel limits the stack of a whole chain of BPF-to-BPF calls, not only each frame: every
//! frame's depth, rounded up to 32 bytes, summed along the deepest chain from a program must stay
//! within 512 ("combined stack size of N calls is M. Too large"). LLVM refuses a single frame
//! over the limit; calls that stay calls (every call at -O0, a helper LLVM does not inline) and
//! `bpf_loop` callbacks are checked here, on the finished object, whose frames and calls are the
//! ones the verifier sees.

use crate::btf::elf::{sections, SectionHeader};
use crate::codegen::llvm::Error;
use crate::ir::Module;
use std::collections::HashMap;

/// The BPF stack shared by a chain of calls.
const CHAIN_BYTES: u64 = 512;
/// Each frame's depth is rounded up to this.
const FRAME_ALIGN: u64 = 32;

const SHT_SYMTAB: u32 = 2;
const SHT_REL: u32 = 9;
const STT_FUNC: u8 = 2;
const STT_SECTION: u8 = 3;
const INSN: usize = 8;
const FRAME_POINTER: usize = 10;

/// One function of the object.
struct Function {
    name: String,
    /// Programs live in their own sections; `.text` holds the functions they call.
    program: bool,
    section: usize,
    code: std::ops::Range<usize>,
    /// Bytes below the frame pointer it reaches.
    depth: u64,
    callees: Vec<usize>,
}

/// The E0601 errors of programs whose deepest chain of calls needs more than 512 bytes.
pub fn check(m: &Module, object: &[u8]) -> Vec<Error> {
    let Some(funcs) = functions(object) else {
        return Vec::new();
    };
    let mut deepest = HashMap::new();
    let mut errors = Vec::new();
    for (i, f) in funcs.iter().enumerate().filter(|(_, f)| f.program) {
        let (bytes, chain) = chain_depth(&funcs, i, &mut deepest, &mut Vec::new());
        if bytes > CHAIN_BYTES && chain.len() > 1 {
            let path: Vec<String> = chain
                .iter()
                .map(|&c| format!("`{}`", funcs[c].name))
                .collect();
            let op = m.funcs().find(|&op| m.symbol(op) == Some(f.name.as_str()));
            errors.push(Error::explained(
                op,
                crate::diagnostics::Code::E0601,
                format!(
                    "the calls {} need {bytes} bytes of stack together (each frame rounded up to {FRAME_ALIGN}), and the kernel allows {CHAIN_BYTES} across a chain of calls; keep the callees' large locals in a per-CPU array map (`var scratch : percpu_array<u32, T>(1)`), or let them be inlined (-O2)",
                    path.join(" → ")
                ),
            ));
        }
    }
    errors
}

/// The stack the deepest chain of calls from `f` needs, and that chain.
fn chain_depth(
    funcs: &[Function],
    f: usize,
    memo: &mut HashMap<usize, (u64, Vec<usize>)>,
    open: &mut Vec<usize>,
) -> (u64, Vec<usize>) {
    if let Some(known) = memo.get(&f) {
        return known.clone();
    }
    let frame = funcs[f].depth.max(1).next_multiple_of(FRAME_ALIGN);
    if open.contains(&f) {
        // Recursion, which the verifier refuses on its own terms.
        return (frame, vec![f]);
    }
    open.push(f);
    let mut best = (0, Vec::new());
    for &c in &funcs[f].callees {
        let sub = chain_depth(funcs, c, memo, open);
        if sub.0 > best.0 {
            best = sub;
        }
    }
    open.pop();
    let mut chain = vec![f];
    chain.extend(best.1);
    let result = (frame + best.0, chain);
    memo.insert(f, result.clone());
    result
}

/// The object's functions with their stack depths and callees; `None` if it cannot be read
/// (the loader will say why).
fn functions(object: &[u8]) -> Option<Vec<Function>> {
    let secs = sections(object).ok()?;
    let symtab = secs.iter().find(|s| s.kind == SHT_SYMTAB)?;
    let strtab = secs.get(symtab.link as usize)?;
    let symbols = read_symbols(object, symtab, strtab)?;
    let mut funcs: Vec<Function> = (symbols.iter())
        .filter(|s| s.kind == STT_FUNC)
        .filter_map(|s| {
            let sec = secs.get(s.section)?;
            let start = sec.range.start.checked_add(s.value as usize)?;
            let end = start.checked_add(s.size as usize)?.min(sec.range.end);
            Some(Function {
                name: s.name.clone(),
                program: sec.name != ".text",
                section: s.section,
                code: start..end,
                depth: 0,
                callees: Vec::new(),
            })
        })
        .collect();
    // (section, offset of the instruction) → the symbol its relocation names.
    let mut relocs: HashMap<(usize, usize), usize> = HashMap::new();
    for rel in secs.iter().filter(|s| s.kind == SHT_REL) {
        for e in object.get(rel.range.clone())?.chunks_exact(16) {
            let offset = u64::from_le_bytes(e[0..8].try_into().ok()?) as usize;
            let sym = (u64::from_le_bytes(e[8..16].try_into().ok()?) >> 32) as usize;
            relocs.insert((rel.info as usize, offset), sym);
        }
    }
    let at = |section: usize, offset: usize| {
        let start = secs.get(section)?.range.start + offset;
        funcs.iter().position(|f| f.code.start == start)
    };
    let mut found = Vec::new();
    for f in &funcs {
        let base = secs[f.section].range.start;
        let mut frame: [Option<i64>; 11] = [None; 11];
        frame[FRAME_POINTER] = Some(0);
        let mut depth = 0i64;
        let mut callees = Vec::new();
        let code = object.get(f.code.clone())?;
        let mut i = 0;
        while i + INSN <= code.len() {
            let insn = &code[i..i + INSN];
            let (op, dst, src) = (insn[0], (insn[1] & 0xf) as usize, (insn[1] >> 4) as usize);
            let off = i16::from_le_bytes([insn[2], insn[3]]) as i64;
            let imm = i32::from_le_bytes(insn[4..8].try_into().ok()?) as i64;
            let offset = f.code.start - base + i;
            // A call or function reference: its target, through a relocation when it has one
            // (as libbpf reads them: past a section symbol by `from_section` bytes), else
            // relative to the next instruction.
            let target = |from_section: i64| match relocs.get(&(f.section, offset)) {
                Some(&sym) => {
                    let s = symbols.get(sym)?;
                    match s.kind {
                        STT_FUNC => at(s.section, s.value as usize),
                        STT_SECTION => at(s.section, (s.value as i64 + from_section) as usize),
                        _ => None,
                    }
                }
                None => at(
                    f.section,
                    (offset as i64 + INSN as i64 * (imm + 1)) as usize,
                ),
            };
            match (op, src) {
                // call of a BPF function (BPF_PSEUDO_CALL)
                (0x85, 1) => callees.extend(target(INSN as i64 * (imm + 1))),
                // ld_imm64 of a function's address (BPF_PSEUDO_FUNC): a callback
                (0x18, 4) => callees.extend(target(imm)),
                _ => {}
            }
            if dst <= FRAME_POINTER && src <= FRAME_POINTER {
                match op & 0x07 {
                    // LDX: reads through src
                    0x01 => {
                        if let Some(k) = frame[src] {
                            depth = depth.max(-(k + off));
                        }
                        frame[dst] = None;
                    }
                    // ST, STX: write through dst
                    0x02 | 0x03 => {
                        if let Some(k) = frame[dst] {
                            depth = depth.max(-(k + off));
                        }
                    }
                    // ALU64: a frame address moves (mov) or steps (add, sub of a constant)
                    0x07 if dst != FRAME_POINTER => {
                        frame[dst] = match op {
                            0xbf => frame[src],
                            0x07 => frame[dst].map(|k| k + imm),
                            0x17 => frame[dst].map(|k| k - imm),
                            _ => None,
                        };
                        if let Some(k) = frame[dst] {
                            depth = depth.max(-k);
                        }
                    }
                    // ALU32 and LD (ld_imm64) write dst; a call clobbers r0-r5
                    0x04 | 0x00 if dst != FRAME_POINTER => frame[dst] = None,
                    0x05 if op == 0x85 => frame[..=5].fill(None),
                    _ => {}
                }
            }
            i += if op == 0x18 { 2 * INSN } else { INSN };
        }
        found.push((depth.max(0) as u64, callees));
    }
    for (f, (depth, callees)) in funcs.iter_mut().zip(found) {
        f.depth = depth;
        f.callees = callees;
    }
    Some(funcs)
}

struct Symbol {
    name: String,
    kind: u8,
    section: usize,
    value: u64,
    size: u64,
}

fn read_symbols(
    object: &[u8],
    symtab: &SectionHeader,
    strtab: &SectionHeader,
) -> Option<Vec<Symbol>> {
    let names = object.get(strtab.range.clone())?;
    object
        .get(symtab.range.clone())?
        .chunks_exact(24)
        .map(|e| {
            let name_at = u32::from_le_bytes(e[0..4].try_into().ok()?) as usize;
            let name = names.get(name_at..)?.split(|&b| b == 0).next()?;
            Some(Symbol {
                name: String::from_utf8_lossy(name).into_owned(),
                kind: e[4] & 0xf,
                section: u16::from_le_bytes(e[6..8].try_into().ok()?) as usize,
                value: u64::from_le_bytes(e[8..16].try_into().ok()?),
                size: u64::from_le_bytes(e[16..24].try_into().ok()?),
            })
        })
        .collect()
}
