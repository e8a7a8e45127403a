//! Module functions as C: the flattened CFG becomes labelled blocks and `goto`s, each SSA value a
//! local variable declared at the top (block arguments are assigned before the jump), each stack
//! slot a local whose address is taken. Integer arithmetic wraps as the kernel compiles with
//! `-fno-strict-overflow`; shifts are masked and divisions follow §6.4 like every other target.

use super::declare;
use crate::ir::views::{self, KsFunc};

use crate::ir::{Attr, BlockId, Module, OpFamily, OpId, Opcode, Type, Value};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

type Failure = (OpId, String);

/// `__bpf_kfunc R name(params)` for a kfunc, `static R ks_name(params)` for a private function.
pub fn signature(m: &Module, f: OpId) -> String {
    let (params, ret) = match KsFunc(f).ty(m) {
        Type::Func(ft) => (ft.params.clone(), ft.ret.clone()),
        _ => (Vec::new(), Type::Void),
    };
    let params: Vec<String> = params
        .iter()
        .enumerate()
        .map(|(i, p)| declare(m, p, &format!("a{i}")))
        .collect();
    let params = if params.is_empty() {
        "void".to_string()
    } else {
        params.join(", ")
    };
    let name = m.symbol(f).unwrap_or("f");
    if is_kfunc(m, f) {
        format!(
            "__bpf_kfunc {}",
            declare(m, &ret, &format!("{name}({params})"))
        )
    } else {
        format!(
            "static {}",
            declare(m, &ret, &format!("{}({params})", private_name(name)))
        )
    }
}

fn is_kfunc(m: &Module, f: OpId) -> bool {
    KsFunc(f).kfunc(m) == Some(true)
}

/// Private functions are prefixed: a `static` function may not share a name with a kernel
/// function or macro the headers declare (`min`, `kmalloc`, …).
fn private_name(name: &str) -> String {
    format!("ks_{}", name.replace('.', "_"))
}

fn callee_name(m: &Module, name: &str) -> String {
    match m.lookup_symbol(name) {
        Some(f) if is_kfunc(m, f) => name.to_string(),
        _ => private_name(name),
    }
}

pub fn function(m: &Module, f: OpId) -> Result<String, Failure> {
    let region = m.op(f).regions[0];
    let blocks = m.region(region).blocks.clone();
    let mut names: HashMap<Value, String> = HashMap::new();
    for (i, &a) in m.block(blocks[0]).args.iter().enumerate() {
        names.insert(a, format!("a{i}"));
    }
    let mut values = Vec::new();
    let mut slots = Vec::new();
    let mut targets: HashSet<BlockId> = HashSet::new();
    for &b in &blocks {
        if b != blocks[0] {
            values.extend(m.block(b).args.iter().copied());
        }
        for &op in &m.block(b).ops {
            values.extend(m.op(op).results.iter().copied());
            targets.extend(m.op(op).successors.iter().copied());
            if m.op(op).opcode == Opcode::CoreLocal {
                let Some(Attr::Type(t)) = &m.op(op).attrs[0] else {
                    return Err((op, "local without type".into()));
                };
                slots.push((m.op(op).results[0], t.clone()));
            }
        }
    }
    let mut decls = String::new();
    for v in values {
        let name = format!("t{}", v.0);
        let _ = writeln!(
            decls,
            "\t{} __maybe_unused;",
            declare(m, m.value_type(v), &name)
        );
        names.insert(v, name);
    }
    for (v, t) in slots {
        let _ = writeln!(decls, "\t{};", declare(m, &t, &format!("l{}", v.0)));
    }
    let mut out = format!("{}\n{{\n{decls}\n", super::body::signature(m, f));
    let mut w = Writer {
        m,
        names: &names,
        out: &mut out,
    };
    for &b in &blocks {
        if b != blocks[0] && targets.contains(&b) {
            let _ = writeln!(w.out, "bb{}:", b.0);
        }
        for &op in &m.block(b).ops {
            w.op(op).map_err(|e| (op, e))?;
        }
    }
    out.push_str("}\n\n");
    Ok(out)
}

struct Writer<'a> {
    m: &'a Module,
    names: &'a HashMap<Value, String>,
    out: &'a mut String,
}

impl Writer<'_> {
    fn n(&self, v: Value) -> Result<&str, String> {
        self.names
            .get(&v)
            .map(String::as_str)
            .ok_or_else(|| format!("value {} has no C variable", v.0))
    }

    fn ty(&self, v: Value) -> &Type {
        self.m.value_type(v)
    }

    fn c_type(&self, t: &Type) -> String {
        declare(self.m, t, "")
    }

    fn line(&mut self, text: String) {
        let _ = writeln!(self.out, "\t{text}");
    }

    fn aggregate(t: &Type) -> bool {
        matches!(t, Type::Array(..) | Type::Str(_) | Type::Struct(_))
    }

    /// The unsigned C type of an integer type's width (for wrapping shifts and negation).
    fn unsigned(t: &Type) -> String {
        format!("u{}", t.int().map(|i| i.bits()).unwrap_or(64))
    }

    fn jump(&self, dest: BlockId, args: &[Value]) -> Result<String, String> {
        let params = self.m.block(dest).args.clone();
        let mut s = String::new();
        for (p, a) in params.iter().zip(args) {
            let _ = write!(s, "{} = {}; ", self.n(*p)?, self.n(*a)?);
        }
        let _ = write!(s, "goto bb{};", dest.0);
        Ok(s)
    }

    /// One op of module code as C statements: its result's and operands' C names first, then
    /// the statement by the op's family.
    fn op(&mut self, op: OpId) -> Result<(), String> {
        let d = self.m.op(op).clone();
        let result = d
            .results
            .first()
            .map(|&r| self.n(r).map(str::to_string))
            .transpose()?;
        let operands: Vec<String> = d
            .operands
            .iter()
            .map(|&v| self.n(v).map(str::to_string))
            .collect::<Result<_, _>>()?;
        let named = Named {
            data: d,
            result,
            operands,
        };
        match named.data.opcode.family() {
            Some(OpFamily::Value) => self.value_op(op, &named),
            Some(OpFamily::Memory) => self.memory_op(&named),
            Some(OpFamily::Control) => self.control_op(&named),
            None => Err(not_in_modules(named.data.opcode)),
        }
    }

    /// Constants, arithmetic, comparisons and conversions as C expressions.
    fn value_op(&mut self, op: OpId, named: &Named) -> Result<(), String> {
        let m = self.m;
        let d = &named.data;
        let r = named.result.clone();
        let a = |i: usize| named.operand(i);
        let attr = |name: &str| named.attr(name);
        match d.opcode {
            Opcode::CoreConst => {
                let Some(Attr::Int(v)) = attr("value") else {
                    return Err("const without value".into());
                };
                let t = self.ty(d.results[0]).clone();
                let text = match t {
                    Type::Ptr(_) | Type::Func(_) => "NULL".to_string(),
                    Type::Bool => (v != 0).to_string(),
                    t => format!(
                        "({})0x{:x}ULL",
                        self.c_type(&t),
                        v as u128 as u64 & mask(&t)
                    ),
                };
                self.line(format!("{} = {text};", r.unwrap_or_default()));
            }
            Opcode::CoreZero => {
                let r = r.unwrap_or_default();
                if Self::aggregate(self.ty(d.results[0])) {
                    self.line(format!("memset(&{r}, 0, sizeof({r}));"));
                } else if self.ty(d.results[0]).is_ptr() {
                    self.line(format!("{r} = NULL;"));
                } else {
                    self.line(format!("{r} = 0;"));
                }
            }
            Opcode::CoreString => {
                let Some(Attr::Str(s)) = attr("value") else {
                    return Err("string without value".into());
                };
                let r = r.unwrap_or_default();
                self.line(format!("memset(&{r}, 0, sizeof({r}));"));
                // At most capacity − 1 bytes: the last one stays the terminating NUL.
                let capacity = match self.ty(d.results[0]) {
                    Type::Str(n) => *n as usize,
                    _ => return Err("string of a non-string type".into()),
                };
                let n = s.len().min(capacity.saturating_sub(1));
                if n > 0 {
                    self.line(format!("memcpy({r}, {}, {n});", c_literal(&s[..n])));
                }
            }
            Opcode::CoreAdd
            | Opcode::CoreSub
            | Opcode::CoreMul
            | Opcode::CoreAnd
            | Opcode::CoreOr
            | Opcode::CoreXor => {
                let sym = match d.opcode {
                    Opcode::CoreAdd => "+",
                    Opcode::CoreSub => "-",
                    Opcode::CoreMul => "*",
                    Opcode::CoreAnd => "&",
                    Opcode::CoreOr => "|",
                    _ => "^",
                };
                let t = self.ty(d.results[0]).clone();
                if t == Type::Bool {
                    self.line(format!(
                        "{} = {} {sym} {};",
                        r.unwrap_or_default(),
                        a(0)?,
                        a(1)?
                    ));
                } else {
                    // In the unsigned type: wraps without relying on the compiler's flags.
                    let u = Self::unsigned(&t);
                    self.line(format!(
                        "{} = ({})(({u}){} {sym} ({u}){});",
                        r.unwrap_or_default(),
                        self.c_type(&t),
                        a(0)?,
                        a(1)?
                    ));
                }
            }
            Opcode::CoreDiv | Opcode::CoreRem => {
                let t = self.ty(d.results[0]).clone();
                let signed = t.int().is_some_and(|i| i.signed());
                let f = match (signed, d.opcode == Opcode::CoreRem) {
                    (false, false) => "ks_udiv",
                    (false, true) => "ks_urem",
                    (true, false) => "ks_sdiv",
                    (true, true) => "ks_srem",
                };
                let w = if signed { "s64" } else { "u64" };
                self.line(format!(
                    "{} = ({}){f}(({w}){}, ({w}){});",
                    r.unwrap_or_default(),
                    self.c_type(&t),
                    a(0)?,
                    a(1)?
                ));
            }
            Opcode::CoreShl | Opcode::CoreShr => {
                let t = self.ty(d.operands[0]).clone();
                let bits = t.int().map(|i| i.bits()).unwrap_or(64);
                let u = Self::unsigned(&t);
                let text = if d.opcode == Opcode::CoreShl {
                    format!(
                        "({})(({u}){} << ({} & {}))",
                        self.c_type(&t),
                        a(0)?,
                        a(1)?,
                        bits - 1
                    )
                } else {
                    // `>>` of a signed type is arithmetic in GCC and Clang.
                    format!(
                        "({})({} >> ({} & {}))",
                        self.c_type(&t),
                        a(0)?,
                        a(1)?,
                        bits - 1
                    )
                };
                self.line(format!("{} = {text};", r.unwrap_or_default()));
            }
            Opcode::CoreNeg => {
                let t = self.ty(d.results[0]).clone();
                self.line(format!(
                    "{} = ({})(0 - ({}){});",
                    r.unwrap_or_default(),
                    self.c_type(&t),
                    Self::unsigned(&t),
                    a(0)?
                ));
            }
            Opcode::CoreNot => {
                let t = self.ty(d.results[0]).clone();
                let text = if t == Type::Bool {
                    format!("!{}", a(0)?)
                } else {
                    format!("({})~{}", self.c_type(&t), a(0)?)
                };
                self.line(format!("{} = {text};", r.unwrap_or_default()));
            }
            Opcode::CoreCmp => {
                let sym = views::CoreCmp(op).pred(m).c_operator();
                self.line(format!(
                    "{} = {} {sym} {};",
                    r.unwrap_or_default(),
                    a(0)?,
                    a(1)?
                ));
            }
            Opcode::CoreSelect => {
                let r = r.unwrap_or_default();
                if Self::aggregate(self.ty(d.results[0])) {
                    self.line(format!(
                        "memcpy(&{r}, {} ? &{} : &{}, sizeof({r}));",
                        a(0)?,
                        a(1)?,
                        a(2)?
                    ));
                } else {
                    self.line(format!("{r} = {} ? {} : {};", a(0)?, a(1)?, a(2)?));
                }
            }
            Opcode::CoreCast => {
                let (from, to) = (
                    self.ty(d.operands[0]).clone(),
                    self.ty(d.results[0]).clone(),
                );
                let x = a(0)?;
                let text = match (&from, &to) {
                    (_, Type::Bool) if from.is_ptr() => format!("{x} != NULL"),
                    (_, Type::Bool) => format!("{x} != 0"),
                    (Type::Ptr(_) | Type::Func(_), Type::Int(_)) => {
                        format!("({})(uintptr_t){x}", self.c_type(&to))
                    }
                    (Type::Int(_), Type::Ptr(_) | Type::Func(_)) => {
                        format!("({})(uintptr_t){x}", self.c_type(&to))
                    }
                    _ => format!("({}){x}", self.c_type(&to)),
                };
                self.line(format!("{} = {text};", r.unwrap_or_default()));
            }
            Opcode::CoreBswap => {
                let t = self.ty(d.results[0]).clone();
                let text = match t.int().map(|i| i.bits()) {
                    Some(8) => a(0)?,
                    Some(bits) => format!(
                        "({})swab{bits}(({}){})",
                        self.c_type(&t),
                        Self::unsigned(&t),
                        a(0)?
                    ),
                    None => return Err("bswap of a non-integer".into()),
                };
                self.line(format!("{} = {text};", r.unwrap_or_default()));
            }
            other => return Err(not_in_modules(other)),
        }
        Ok(())
    }

    /// Locals, loads and stores, addresses, atomics and allocation.
    fn memory_op(&mut self, named: &Named) -> Result<(), String> {
        let d = &named.data;
        let r = named.result.clone();
        let a = |i: usize| named.operand(i);
        let attr = |name: &str| named.attr(name);
        match d.opcode {
            Opcode::CoreLocal => {
                let slot = format!("l{}", d.results[0].0);
                self.line(format!("memset(&{slot}, 0, sizeof({slot}));"));
                self.line(format!("{} = &{slot};", r.unwrap_or_default()));
            }
            Opcode::CoreLoad => {
                let r = r.unwrap_or_default();
                if Self::aggregate(self.ty(d.results[0])) {
                    self.line(format!("memcpy(&{r}, {}, sizeof({r}));", a(0)?));
                } else {
                    self.line(format!("{r} = *{};", a(0)?));
                }
            }
            Opcode::CoreStore => {
                let (v, p) = (a(0)?, a(1)?);
                if Self::aggregate(self.ty(d.operands[0])) {
                    self.line(format!("memcpy({p}, &{v}, sizeof({v}));"));
                } else {
                    self.line(format!("*{p} = {v};"));
                }
            }
            Opcode::CoreFieldAddr => {
                let Some(Attr::Str(field)) = attr("field") else {
                    return Err("field_addr without field".into());
                };
                self.line(format!(
                    "{} = &{}->{};",
                    r.unwrap_or_default(),
                    a(0)?,
                    String::from_utf8_lossy(&field)
                ));
            }
            Opcode::CoreElemAddr => {
                let text = match self.ty(d.operands[0]).pointee() {
                    Some(Type::Array(..) | Type::Str(_)) => format!("&(*{})[{}]", a(0)?, a(1)?),
                    _ => format!("&{}[{}]", a(0)?, a(1)?),
                };
                self.line(format!("{} = {text};", r.unwrap_or_default()));
            }
            Opcode::CorePtrAdd => {
                let t = self.c_type(self.ty(d.results[0]));
                self.line(format!(
                    "{} = ({t})((u8 *){} + {});",
                    r.unwrap_or_default(),
                    a(0)?,
                    a(1)?
                ));
            }
            Opcode::CorePtrDiff => {
                let t = self.c_type(self.ty(d.results[0]));
                self.line(format!(
                    "{} = ({t})((u8 *){} - (u8 *){});",
                    r.unwrap_or_default(),
                    a(0)?,
                    a(1)?
                ));
            }
            Opcode::CoreCopy => {
                let Some(Attr::Int(size)) = attr("size") else {
                    return Err("copy without size".into());
                };
                self.line(format!("memcpy({}, {}, {size});", a(0)?, a(1)?));
            }
            Opcode::CoreAtomicAdd => {
                self.line(format!("__sync_fetch_and_add({}, {});", a(0)?, a(1)?));
            }
            Opcode::CoreAtomicFetchAdd => {
                self.line(format!(
                    "{} = __sync_fetch_and_add({}, {});",
                    r.unwrap_or_default(),
                    a(0)?,
                    a(1)?
                ));
            }
            Opcode::KsNew => {
                let Some(Attr::Type(t)) = attr("ty") else {
                    return Err("new without type".into());
                };
                let gfp = if matches!(attr("gfp"), Some(Attr::Int(1))) {
                    "GFP_ATOMIC"
                } else {
                    "GFP_KERNEL"
                };
                self.line(format!(
                    "{} = kzalloc(sizeof({}), {gfp});",
                    r.unwrap_or_default(),
                    self.c_type(&t)
                ));
            }
            Opcode::KsDelete => self.line(format!("kfree({});", a(0)?)),
            other => return Err(not_in_modules(other)),
        }
        Ok(())
    }

    /// Calls, jumps, returns and `print`.
    fn control_op(&mut self, named: &Named) -> Result<(), String> {
        let m = self.m;
        let d = &named.data;
        let r = named.result.clone();
        let a = |i: usize| named.operand(i);
        let attr = |name: &str| named.attr(name);
        match d.opcode {
            Opcode::CoreCall | Opcode::CoreCallIndirect => {
                let (callee, args) = if d.opcode == Opcode::CoreCall {
                    let Some(Attr::Sym(c)) = attr("callee") else {
                        return Err("call without callee".into());
                    };
                    (callee_name(m, &c), &d.operands[..])
                } else {
                    (format!("(*{})", a(0)?), &d.operands[1..])
                };
                let args: Vec<String> = args
                    .iter()
                    .map(|&v| self.n(v).map(str::to_string))
                    .collect::<Result<_, _>>()?;
                let call = format!("{callee}({})", args.join(", "));
                match r {
                    Some(r) => self.line(format!("{r} = {call};")),
                    None => self.line(format!("{call};")),
                }
            }
            Opcode::CoreFuncAddr => {
                let Some(Attr::Sym(c)) = attr("callee") else {
                    return Err("func_addr without callee".into());
                };
                self.line(format!(
                    "{} = {};",
                    r.unwrap_or_default(),
                    callee_name(m, &c)
                ));
            }
            Opcode::CoreBr => {
                let j = self.jump(d.successors[0], &d.operands)?;
                self.line(j);
            }
            Opcode::CoreCondBr => {
                let t = (attr("true_args")
                    .and_then(|a| {
                        if let Attr::Int(i) = a {
                            Some(i as usize)
                        } else {
                            None
                        }
                    })
                    .unwrap_or(0))
                .min(d.operands.len() - 1);
                let yes = self.jump(d.successors[0], &d.operands[1..1 + t])?;
                let no = self.jump(d.successors[1], &d.operands[1 + t..])?;
                self.line(format!("if ({}) {{ {yes} }} else {{ {no} }}", a(0)?));
            }
            Opcode::CoreSwitch => {
                let Some(Attr::List(cases)) = attr("cases") else {
                    return Err("switch without cases".into());
                };
                let mut s = format!("switch ({}) {{ ", a(0)?);
                for (c, &dest) in cases.iter().zip(&d.successors[1..]) {
                    if let Attr::Int(k) = c {
                        let _ = write!(s, "case {k}: goto bb{}; ", dest.0);
                    }
                }
                let _ = write!(s, "default: goto bb{}; }}", d.successors[0].0);
                self.line(s);
            }
            Opcode::CoreRet => match d.operands.first() {
                Some(_) => self.line(format!("return {};", a(0)?)),
                None => self.line("return;".into()),
            },
            Opcode::CoreUnreachable => self.line("unreachable();".into()),
            Opcode::KsPrint => self.print(d, r)?,
            other => return Err(not_in_modules(other)),
        }
        Ok(())
    }

    /// `print` as `printk(KERN_INFO …)`: every integer travels as a 64-bit value with `ll`
    /// conversions, as in kernel code; a missing argument prints as 0 or an empty string.
    fn print(&mut self, d: &crate::ir::OpData, r: Option<String>) -> Result<(), String> {
        let Some(Attr::Str(fmt)) = d.attrs[0].clone() else {
            return Err("print without format".into());
        };
        let (text, convs) = crate::codegen::format::widen_format(&fmt);
        let mut args = Vec::new();
        for (i, conv) in convs.iter().enumerate() {
            let arg = match d.operands.get(i) {
                Some(&v) => {
                    let x = self.n(v)?.to_string();
                    match (conv, self.ty(v)) {
                        (b's', _) => x,
                        (b'p', _) => format!("(void *){x}"),
                        (b'c', _) => format!("(int){x}"),
                        (b'd' | b'i', _) => format!("(s64){x}"),
                        _ => format!("(u64){x}"),
                    }
                }
                None => match conv {
                    b's' => "\"\"".to_string(),
                    b'p' => "NULL".to_string(),
                    b'c' => "0".to_string(),
                    _ => "0ULL".to_string(),
                },
            };
            args.push(arg);
        }
        let mut format = text;
        format.push(b'\n');
        let call = format!(
            "printk(KERN_INFO {}{})",
            c_literal(&format),
            args.iter().map(|a| format!(", {a}")).collect::<String>()
        );
        self.line(format!("{call};"));
        if let Some(r) = r {
            self.line(format!("{r} = 0;"));
        }
        Ok(())
    }
}

/// All bits of an integer type's width.
fn mask(t: &Type) -> u64 {
    match t.int().map(|i| i.bits()) {
        Some(b) if b < 64 => (1u64 << b) - 1,
        _ => u64::MAX,
    }
}

/// A C string literal with every byte outside printable ASCII escaped in octal: unlike the IR's
/// `\xNN` (ir::print::write_str), a C hex escape swallows every hex digit that follows it.
fn c_literal(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\{b:03o}");
            }
        }
    }
    s.push('"');
    s
}

/// An op with the C names of its result and operands.
struct Named {
    data: crate::ir::OpData,
    result: Option<String>,
    operands: Vec<String>,
}

impl Named {
    fn operand(&self, i: usize) -> Result<String, String> {
        self.operands
            .get(i)
            .cloned()
            .ok_or_else(|| format!("operand {i} missing"))
    }

    fn attr(&self, name: &str) -> Option<Attr> {
        let d = &self.data;
        d.opcode
            .info()
            .attr_index(name)
            .and_then(|i| d.attrs[i].clone())
    }
}

/// An op module code never holds.
fn not_in_modules(op: Opcode) -> String {
    format!("`{}` cannot appear in module code", op.name())
}
