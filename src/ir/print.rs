//! The textual form of KS-IR, MLIR-like:
//!
//! ```text
//! module files = ["fw.ks"] {
//!   ks.func {name = @count, ty = fn(ptr<!xdp_md>) -> u32, target = "bpf", kind = "xdp"} ({
//!   ^bb0(%ctx: ptr<!xdp_md>):
//!     %0 = core.const {value = 2} : u32 loc(4:12)
//!     ks.return %0 loc(4:5)
//!   }) loc(3:1)
//! }
//! ```
//!
//! An op is `RESULTS = NAME OPERANDS [SUCCESSORS] {ATTRS} (REGIONS) : RESULT-TYPES loc(...)`, all on
//! one line up to its regions. Values are numbered per module-level op in print order (parameters
//! keep their names); blocks are `^bbN`, labelled unless a region is one argument-less block.
//! The parser (`parse.rs`) reads exactly this, so print → parse → print is the identity.

use super::*;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

pub fn print_module(m: &Module) -> String {
    let mut p = Printer {
        m,
        out: String::new(),
        names: HashMap::new(),
        used_names: HashSet::new(),
        next_value: 0,
        blocks: HashMap::new(),
    };
    p.out.push_str("module");
    if !m.files.is_empty() {
        p.out.push_str(" files = [");
        for (i, f) in m.files.iter().enumerate() {
            if i > 0 {
                p.out.push_str(", ");
            }
            write_str(&mut p.out, f.as_bytes());
        }
        p.out.push(']');
    }
    p.out.push_str(" {\n");
    for &op in m.top_ops() {
        p.names.clear();
        p.used_names.clear();
        p.blocks.clear();
        p.next_value = 0;
        p.number_blocks(op);
        p.op(op, 1);
    }
    p.out.push_str("}\n");
    p.out
}

struct Printer<'m> {
    m: &'m Module,
    out: String,
    names: HashMap<Value, String>,
    used_names: HashSet<String>,
    next_value: u32,
    blocks: HashMap<BlockId, u32>,
}

impl Printer<'_> {
    /// Numbers blocks in print order (a block before the blocks nested in its ops).
    fn number_blocks(&mut self, op: OpId) {
        let mut n = 0u32;
        self.number_nested(op, &mut n);
    }

    fn number_nested(&mut self, op: OpId, n: &mut u32) {
        for &r in &self.m.op(op).regions {
            for &b in &self.m.region(r).blocks {
                self.blocks.insert(b, *n);
                *n += 1;
                for &o in &self.m.block(b).ops {
                    self.number_nested(o, n);
                }
            }
        }
    }

    fn name(&mut self, v: Value) -> String {
        if let Some(n) = self.names.get(&v) {
            return n.clone();
        }
        let n = match &self.m.value(v).name {
            Some(s) if !self.used_names.contains(&**s) => s.to_string(),
            _ => {
                self.next_value += 1;
                (self.next_value - 1).to_string()
            }
        };
        self.used_names.insert(n.clone());
        self.names.insert(v, n.clone());
        n
    }

    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
    }

    fn op(&mut self, op: OpId, depth: usize) {
        let m = self.m;
        let data = m.op(op);
        let info = data.opcode.info();
        self.indent(depth);
        if !data.results.is_empty() {
            for (i, &r) in data.results.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                let n = self.name(r);
                let _ = write!(self.out, "%{n}");
            }
            self.out.push_str(" = ");
        }
        self.out.push_str(info.name);
        for (i, &v) in data.operands.iter().enumerate() {
            self.out.push_str(if i == 0 { " " } else { ", " });
            let n = self.name(v);
            let _ = write!(self.out, "%{n}");
        }
        if !data.successors.is_empty() {
            self.out.push_str(" [");
            for (i, b) in data.successors.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                let _ = write!(
                    self.out,
                    "^bb{}",
                    self.blocks.get(b).copied().unwrap_or(u32::MAX)
                );
            }
            self.out.push(']');
        }
        let present: Vec<(usize, &Attr)> = data
            .attrs
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.as_ref().map(|a| (i, a)))
            .collect();
        if !present.is_empty() {
            self.out.push_str(" {");
            for (k, (i, a)) in present.into_iter().enumerate() {
                if k > 0 {
                    self.out.push_str(", ");
                }
                let _ = write!(self.out, "{} = ", info.attrs[i].name);
                write_attr(&mut self.out, a);
            }
            self.out.push('}');
        }
        if !data.regions.is_empty() {
            self.out.push_str(" (");
            for (i, &r) in data.regions.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                self.region(r, depth);
            }
            self.out.push(')');
        }
        if !data.results.is_empty() {
            self.out.push_str(" : ");
            for (i, &r) in data.results.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                let _ = write!(self.out, "{}", m.value_type(r));
            }
        }
        write_loc(&mut self.out, data.loc);
        self.out.push('\n');
    }

    fn region(&mut self, r: RegionId, depth: usize) {
        let m = self.m;
        let blocks = &m.region(r).blocks;
        self.out.push_str("{\n");
        let labelled = blocks.len() != 1 || !m.block(blocks[0]).args.is_empty();
        for &b in blocks {
            if labelled {
                self.indent(depth);
                let _ = write!(self.out, "^bb{}", self.blocks[&b]);
                let args = &m.block(b).args;
                if !args.is_empty() {
                    self.out.push('(');
                    for (i, &a) in args.iter().enumerate() {
                        if i > 0 {
                            self.out.push_str(", ");
                        }
                        let n = self.name(a);
                        let _ = write!(self.out, "%{n}: {}", m.value_type(a));
                    }
                    self.out.push(')');
                }
                self.out.push_str(":\n");
            }
            for &op in &m.block(b).ops {
                self.op(op, depth + 1);
            }
        }
        self.indent(depth);
        self.out.push('}');
    }
}

pub fn write_loc(out: &mut String, loc: Loc) {
    if loc.line == 0 {
        return;
    }
    if loc.file == 0 {
        let _ = write!(out, " loc({}:{})", loc.line, loc.col);
    } else {
        let _ = write!(out, " loc({}:{}:{})", loc.file, loc.line, loc.col);
    }
}

pub fn write_attr(out: &mut String, a: &Attr) {
    match a {
        Attr::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Attr::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Attr::Str(s) => write_str(out, s),
        Attr::Enum(e) => write_str(out, e.name().as_bytes()),
        Attr::Sym(s) => {
            out.push('@');
            if is_bare_symbol(s) {
                out.push_str(s);
            } else {
                write_str(out, s.as_bytes());
            }
        }
        Attr::Type(t) => {
            let _ = write!(out, "{t}");
        }
        Attr::Fields(fs) => {
            out.push('{');
            for (i, (n, t)) in fs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{n}: {t}");
            }
            out.push('}');
        }
        Attr::List(items) => {
            out.push('[');
            for (i, a) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_attr(out, a);
            }
            out.push(']');
        }
    }
}

pub fn is_bare_symbol(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        && !s.as_bytes()[0].is_ascii_digit()
}

/// A quoted string with C-style escapes for everything outside printable ASCII.
pub fn write_str(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &c in bytes {
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(c as char),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push('"');
}
