//! Reads the textual form written by `print.rs` back into a [`Module`].
//!
//! Values and blocks are scoped to their module-level op and may be used before they are defined
//! (a CFG prints blocks in layout order, not dominance order). Op operands must sit on the op's
//! line, which is what separates `ks.break` from a following `%3 = …`.

use super::*;
use std::collections::HashMap;
use std::rc::Rc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

/// A parsed module and, for each op, where it was written (for diagnostics about the text).
pub struct Parsed {
    pub module: Module,
    pub op_positions: HashMap<OpId, (u32, u32)>,
}

pub fn parse_module(text: &str) -> Result<Parsed, ParseError> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        toks: tokens,
        pos: 0,
        prev: 0,
        m: Module::new(),
        values: HashMap::new(),
        pending_values: HashMap::new(),
        blocks: HashMap::new(),
        defined_blocks: Default::default(),
        op_positions: HashMap::new(),
    };
    p.module()?;
    Ok(Parsed {
        module: p.m,
        op_positions: p.op_positions,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Value(String),
    Block(String),
    Sym(String),
    StructTy(String),
    Ident(String),
    Int(i128),
    Str(Vec<u8>),
    Punct(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: u32,
    col: u32,
}

fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1u32, 1u32);
    let err = |line, col, m: String| ParseError {
        line,
        col,
        message: m,
    };
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c == b' ' || c == b'\t' || c == b'\r' {
            i += 1;
            col += 1;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let (start, scol) = (i, col);
        let ident_len = |from: usize| {
            b[from..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'.')
                .count()
        };
        let tok = match c {
            b'%' | b'^' | b'@' | b'!' => {
                let n = ident_len(i + 1);
                if c == b'@' && n == 0 && b.get(i + 1) == Some(&b'"') {
                    let (s, used) = string(&b[i + 1..]).map_err(|m| err(line, col, m))?;
                    i += 1 + used;
                    Tok::Sym(String::from_utf8_lossy(&s).into_owned())
                } else {
                    if n == 0 {
                        return Err(err(
                            line,
                            col,
                            format!("expected a name after `{}`", c as char),
                        ));
                    }
                    let name = String::from_utf8_lossy(&b[i + 1..i + 1 + n]).into_owned();
                    i += 1 + n;
                    match c {
                        b'%' => Tok::Value(name),
                        b'^' => Tok::Block(name),
                        b'@' => Tok::Sym(name),
                        _ => Tok::StructTy(name),
                    }
                }
            }
            b'"' => {
                let (s, used) = string(&b[i..]).map_err(|m| err(line, col, m))?;
                i += used;
                Tok::Str(s)
            }
            b'0'..=b'9' | b'-' if c != b'-' || b.get(i + 1).is_some_and(|d| d.is_ascii_digit()) => {
                let neg = c == b'-';
                let from = i + neg as usize;
                let n = b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
                let digits = std::str::from_utf8(&b[from..from + n]).unwrap();
                let v: i128 = digits
                    .parse()
                    .map_err(|_| err(line, col, "integer out of range".into()))?;
                i = from + n;
                Tok::Int(if neg { -v } else { v })
            }
            b'-' if b.get(i + 1) == Some(&b'>') => {
                i += 2;
                Tok::Punct("->")
            }
            b'{' | b'}' | b'(' | b')' | b'[' | b']' | b'<' | b'>' | b',' | b':' | b'=' => {
                i += 1;
                Tok::Punct(match c {
                    b'{' => "{",
                    b'}' => "}",
                    b'(' => "(",
                    b')' => ")",
                    b'[' => "[",
                    b']' => "]",
                    b'<' => "<",
                    b'>' => ">",
                    b',' => ",",
                    b':' => ":",
                    _ => "=",
                })
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let n = ident_len(i);
                let s = String::from_utf8_lossy(&b[i..i + n]).into_owned();
                i += n;
                Tok::Ident(s)
            }
            _ => {
                return Err(err(
                    line,
                    col,
                    format!(
                        "unexpected character `{}`",
                        String::from_utf8_lossy(&b[i..i + utf8_len(c)])
                    ),
                ))
            }
        };
        col += String::from_utf8_lossy(&b[start..i]).chars().count() as u32;
        out.push(Token {
            tok,
            line,
            col: scol,
        });
    }
    out.push(Token {
        tok: Tok::Eof,
        line,
        col,
    });
    Ok(out)
}

fn utf8_len(c: u8) -> usize {
    match c {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// A quoted string at the start of `b`: its bytes and how many input bytes it used.
fn string(b: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::new();
    let mut i = 1;
    loop {
        match b.get(i) {
            None | Some(b'\n') => return Err("unterminated string".into()),
            Some(b'"') => return Ok((out, i + 1)),
            Some(b'\\') => {
                let e = b.get(i + 1).copied().ok_or("unterminated string")?;
                i += 2;
                out.push(match e {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'\\' => b'\\',
                    b'"' => b'"',
                    b'x' => {
                        let h = b
                            .get(i..i + 2)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                            .ok_or("bad \\x escape")?;
                        i += 2;
                        h
                    }
                    _ => return Err(format!("unknown escape `\\{}`", e as char)),
                });
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Where the last `bump` started.
    prev: usize,
    m: Module,
    values: HashMap<String, Value>,
    /// Values used before their definition, with where they were first used.
    pending_values: HashMap<String, (u32, u32)>,
    blocks: HashMap<String, BlockId>,
    defined_blocks: std::collections::HashSet<String>,
    op_positions: HashMap<OpId, (u32, u32)>,
}

type PResult<T> = Result<T, ParseError>;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn here(&self) -> (u32, u32) {
        let t = &self.toks[self.pos];
        (t.line, t.col)
    }

    fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        let (line, col) = self.here();
        Err(ParseError {
            line,
            col,
            message: msg.into(),
        })
    }

    fn bump(&mut self) -> Tok {
        let t = self.toks[self.pos].tok.clone();
        self.prev = self.pos;
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    /// Steps back over the token just taken (to report an error at it).
    fn back(&mut self) {
        self.pos = self.prev;
    }

    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.is(p) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> PResult<()> {
        if self.eat(p) {
            Ok(())
        } else {
            self.err(format!("expected `{p}`, found {}", self.describe()))
        }
    }

    fn describe(&self) -> String {
        match self.peek() {
            Tok::Value(n) => format!("`%{n}`"),
            Tok::Block(n) => format!("`^{n}`"),
            Tok::Sym(n) => format!("`@{n}`"),
            Tok::StructTy(n) => format!("`!{n}`"),
            Tok::Ident(n) => format!("`{n}`"),
            Tok::Int(i) => format!("`{i}`"),
            Tok::Str(_) => "a string".into(),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::Eof => "end of input".into(),
        }
    }

    fn ident(&mut self) -> PResult<String> {
        match self.bump() {
            Tok::Ident(s) => Ok(s),
            _ => {
                self.back();
                self.err(format!("expected a name, found {}", self.describe()))
            }
        }
    }

    fn int(&mut self) -> PResult<i128> {
        match self.peek().clone() {
            Tok::Int(i) => {
                self.bump();
                Ok(i)
            }
            _ => self.err(format!("expected an integer, found {}", self.describe())),
        }
    }

    fn module(&mut self) -> PResult<()> {
        if self.ident()? != "module" {
            self.back();
            return self.err("expected `module`");
        }
        if matches!(self.peek(), Tok::Ident(s) if s == "files") {
            self.bump();
            self.expect("=")?;
            self.expect("[")?;
            while !self.eat("]") {
                match self.bump() {
                    Tok::Str(s) => self.m.files.push(String::from_utf8_lossy(&s).into_owned()),
                    _ => {
                        self.back();
                        return self.err("expected a file name");
                    }
                }
                if !self.is("]") {
                    self.expect(",")?;
                }
            }
        }
        self.expect("{")?;
        let body = self.m.body;
        while !self.is("}") {
            self.values.clear();
            self.pending_values.clear();
            self.blocks.clear();
            self.defined_blocks.clear();
            self.op(body)?;
            if let Some((name, &(line, col))) = self.pending_values.iter().next() {
                return Err(ParseError {
                    line,
                    col,
                    message: format!("use of undefined value `%{name}`"),
                });
            }
            if let Some(name) = self
                .blocks
                .keys()
                .find(|b| !self.defined_blocks.contains(*b))
            {
                let (line, col) = self.here();
                return Err(ParseError {
                    line,
                    col,
                    message: format!("branch to undefined block `^{name}`"),
                });
            }
        }
        self.expect("}")?;
        if *self.peek() != Tok::Eof {
            return self.err(format!("expected end of input, found {}", self.describe()));
        }
        Ok(())
    }

    fn use_value(&mut self, name: String, at: (u32, u32)) -> Value {
        if let Some(&v) = self.values.get(&name) {
            return v;
        }
        // A forward reference: a placeholder whose type and definition are fixed when it is defined.
        let v = self
            .m
            .new_value(Type::Void, ValueDef::Arg(BlockId(u32::MAX), 0));
        self.pending_values.insert(name.clone(), at);
        self.values.insert(name, v);
        v
    }

    /// Binds `name` to a defined value, resolving earlier forward uses.
    fn define_value(&mut self, name: &str, v: Value) -> PResult<()> {
        if let Some(&old) = self.values.get(name) {
            if self.pending_values.remove(name).is_none() {
                return self.err(format!("value `%{name}` defined twice"));
            }
            self.redirect(old, v);
        }
        self.values.insert(name.to_string(), v);
        if name.bytes().next().is_some_and(|c| !c.is_ascii_digit()) {
            self.m.set_value_name(v, Some(Rc::from(name)));
        }
        Ok(())
    }

    /// Rewrites every operand that used the placeholder `old`.
    fn redirect(&mut self, old: Value, new: Value) {
        let body = self.m.body;
        let ops: Vec<OpId> = {
            let mut v = Vec::new();
            for &t in self.m.block(body).ops.clone().iter() {
                v.push(t);
                self.m.walk_nested(t, &mut |o| v.push(o));
            }
            v
        };
        for o in ops {
            for x in &mut self.m.op_mut(o).operands {
                if *x == old {
                    *x = new;
                }
            }
        }
    }

    fn block_ref(&mut self, name: String) -> BlockId {
        if let Some(&b) = self.blocks.get(&name) {
            return b;
        }
        let b = self.m.new_block(None);
        self.blocks.insert(name, b);
        b
    }

    fn op(&mut self, block: BlockId) -> PResult<OpId> {
        let (line, col) = self.here();
        let mut result_names = Vec::new();
        if matches!(self.peek(), Tok::Value(_)) {
            loop {
                match self.bump() {
                    Tok::Value(n) => result_names.push(n),
                    _ => {
                        self.back();
                        return self.err("expected a result name");
                    }
                }
                if !self.eat(",") {
                    break;
                }
            }
            self.expect("=")?;
        }
        let name_line = self.toks[self.pos].line;
        let name = self.ident()?;
        let Some(opcode) = Opcode::from_name(&name) else {
            self.back();
            return self.err(format!("unknown op `{name}`"));
        };
        let info = opcode.info();
        let mut operands = Vec::new();
        if matches!(self.peek(), Tok::Value(_)) && self.toks[self.pos].line == name_line {
            loop {
                let at = self.here();
                match self.bump() {
                    Tok::Value(n) => {
                        let v = self.use_value(n, at);
                        operands.push(v);
                    }
                    _ => {
                        self.back();
                        return self.err("expected an operand");
                    }
                }
                if !self.eat(",") {
                    break;
                }
            }
        }
        let mut successors = Vec::new();
        if self.is("[") && self.toks[self.pos].line == name_line {
            self.bump();
            loop {
                match self.bump() {
                    Tok::Block(n) => {
                        let b = self.block_ref(n);
                        successors.push(b);
                    }
                    _ => {
                        self.back();
                        return self.err("expected a block label");
                    }
                }
                if !self.eat(",") {
                    break;
                }
            }
            self.expect("]")?;
        }
        let mut attrs: Vec<Option<Attr>> = vec![None; info.attrs.len()];
        if self.is("{") && self.toks[self.pos].line == name_line {
            self.bump();
            loop {
                let key = self.ident()?;
                let Some(i) = info.attr_index(&key) else {
                    self.back();
                    return self.err(format!("`{}` has no attribute `{key}`", info.name));
                };
                self.expect("=")?;
                attrs[i] = Some(match info.attrs[i].kind {
                    ops::AttrKind::Type => Attr::Type(self.ty()?),
                    ops::AttrKind::Fields => Attr::Fields(self.fields()?),
                    ops::AttrKind::Enum(t) => self.enum_attr(t)?,
                    _ => self.attr()?,
                });
                if !self.eat(",") {
                    break;
                }
            }
            self.expect("}")?;
        }
        let op = self.m.create_op(
            opcode,
            operands,
            Vec::new(),
            attrs,
            0,
            successors,
            Loc::default(),
        );
        self.op_positions.insert(op, (line, col));
        self.m.place_op(op, block, None);
        if self.is("(") && self.toks[self.pos].line == name_line {
            self.bump();
            loop {
                let r = self.m.new_region(Some(op));
                self.m.op_mut(op).regions.push(r);
                self.region(r)?;
                if !self.eat(",") {
                    break;
                }
            }
            self.expect(")")?;
        }
        let mut types = Vec::new();
        if self.eat(":") {
            loop {
                types.push(self.ty()?);
                if !self.eat(",") {
                    break;
                }
            }
        }
        if types.len() != result_names.len() {
            return Err(ParseError {
                line,
                col,
                message: format!(
                    "{} result names but {} result types",
                    result_names.len(),
                    types.len()
                ),
            });
        }
        for (i, (n, t)) in result_names.iter().zip(types).enumerate() {
            let v = self.m.new_value(t, ValueDef::Result(op, i as u32));
            self.m.op_mut(op).results.push(v);
            self.define_value(n, v)?;
        }
        if matches!(self.peek(), Tok::Ident(s) if s == "loc") {
            self.bump();
            self.expect("(")?;
            let a = self.int()?;
            self.expect(":")?;
            let b = self.int()?;
            let loc = if self.eat(":") {
                let c = self.int()?;
                Loc {
                    file: a as u32,
                    line: b as u32,
                    col: c as u32,
                }
            } else {
                Loc {
                    file: 0,
                    line: a as u32,
                    col: b as u32,
                }
            };
            self.expect(")")?;
            self.m.op_mut(op).loc = loc;
        }
        Ok(op)
    }

    fn region(&mut self, r: RegionId) -> PResult<()> {
        self.expect("{")?;
        if !matches!(self.peek(), Tok::Block(_)) {
            let b = self.m.new_block(Some(r));
            while !self.is("}") {
                self.op(b)?;
            }
            self.bump();
            return Ok(());
        }
        while let Tok::Block(name) = self.peek().clone() {
            self.bump();
            if !self.defined_blocks.insert(name.clone()) {
                return self.err(format!("block `^{name}` defined twice"));
            }
            let b = self.block_ref(name);
            self.m.block_mut(b).parent = Some(r);
            self.m.region_mut(r).blocks.push(b);
            if self.eat("(") {
                loop {
                    let Tok::Value(n) = self.bump() else {
                        self.back();
                        return self.err("expected a block argument");
                    };
                    self.expect(":")?;
                    let t = self.ty()?;
                    let v = self.m.add_block_arg(b, t);
                    self.define_value(&n, v)?;
                    if !self.eat(",") {
                        break;
                    }
                }
                self.expect(")")?;
            }
            self.expect(":")?;
            while !self.is("}") && !matches!(self.peek(), Tok::Block(_)) {
                self.op(b)?;
            }
        }
        self.expect("}")
    }

    pub fn ty(&mut self) -> PResult<Type> {
        match self.bump() {
            Tok::StructTy(n) => Ok(Type::Struct(Rc::from(n.as_str()))),
            Tok::Punct("[") => {
                let n = self.int()?;
                match self.bump() {
                    Tok::Ident(x) if x == "x" => {}
                    _ => {
                        self.back();
                        return self.err("expected `x` in an array type");
                    }
                }
                let t = self.ty()?;
                self.expect("]")?;
                Ok(Type::Array(
                    Rc::new(t),
                    count(n).ok_or_else(|| self.err::<()>("bad array length").unwrap_err())?,
                ))
            }
            Tok::Ident(s) => Ok(match s.as_str() {
                "void" => Type::Void,
                "bool" => Type::Bool,
                "u8" => Type::Int(IntTy::U8),
                "u16" => Type::Int(IntTy::U16),
                "u32" => Type::Int(IntTy::U32),
                "u64" => Type::Int(IntTy::U64),
                "i8" => Type::Int(IntTy::I8),
                "i16" => Type::Int(IntTy::I16),
                "i32" => Type::Int(IntTy::I32),
                "i64" => Type::Int(IntTy::I64),
                "prog_handle" => Type::ProgHandle,
                "perf_handle" => Type::PerfHandle,
                "ptr" => {
                    self.expect("<")?;
                    let t = self.ty()?;
                    self.expect(">")?;
                    Type::ptr(t)
                }
                "str" => {
                    self.expect("<")?;
                    let n = self.int()?;
                    self.expect(">")?;
                    Type::Str(
                        count(n)
                            .ok_or_else(|| self.err::<()>("bad string capacity").unwrap_err())?,
                    )
                }
                "fn" => {
                    self.expect("(")?;
                    let mut params = Vec::new();
                    while !self.eat(")") {
                        params.push(self.ty()?);
                        if !self.is(")") {
                            self.expect(",")?;
                        }
                    }
                    self.expect("->")?;
                    let ret = self.ty()?;
                    Type::Func(Rc::new(FnType { params, ret }))
                }
                _ => {
                    self.back();
                    return self.err(format!("unknown type `{s}`"));
                }
            }),
            _ => {
                self.back();
                self.err(format!("expected a type, found {}", self.describe()))
            }
        }
    }

    fn fields(&mut self) -> PResult<Vec<(String, Type)>> {
        self.expect("{")?;
        let mut out = Vec::new();
        while !self.eat("}") {
            let n = self.ident()?;
            self.expect(":")?;
            out.push((n, self.ty()?));
            if !self.is("}") {
                self.expect(",")?;
            }
        }
        Ok(out)
    }

    /// A vocabulary value, written as its quoted spelling.
    fn enum_attr(&mut self, t: ops::EnumType) -> PResult<Attr> {
        let Tok::Str(s) = self.bump() else {
            self.back();
            return self.err(format!("expected a quoted {} value", t.name()));
        };
        match std::str::from_utf8(&s).ok().and_then(|s| t.parse(s)) {
            Some(v) => Ok(Attr::Enum(v)),
            None => {
                self.back();
                self.err(format!(
                    "`{}` is not a {}; expected one of {}",
                    String::from_utf8_lossy(&s),
                    t.name(),
                    t.spellings().join(", ")
                ))
            }
        }
    }

    fn attr(&mut self) -> PResult<Attr> {
        match self.bump() {
            Tok::Int(i) => Ok(Attr::Int(i)),
            Tok::Str(s) => Ok(Attr::Str(s)),
            Tok::Sym(s) => Ok(Attr::Sym(s)),
            Tok::Ident(s) if s == "true" => Ok(Attr::Bool(true)),
            Tok::Ident(s) if s == "false" => Ok(Attr::Bool(false)),
            Tok::Punct("[") => {
                let mut items = Vec::new();
                while !self.eat("]") {
                    items.push(self.attr()?);
                    if !self.is("]") {
                        self.expect(",")?;
                    }
                }
                Ok(Attr::List(items))
            }
            _ => {
                self.back();
                self.err(format!(
                    "expected an attribute value, found {}",
                    self.describe()
                ))
            }
        }
    }
}

fn count(n: i128) -> Option<u32> {
    u32::try_from(n).ok().filter(|&n| n > 0)
}

/// Parses a type on its own.
#[cfg(test)]
pub fn parse_type(text: &str) -> Result<Type, ParseError> {
    let toks = tokenize(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        prev: 0,
        m: Module::new(),
        values: HashMap::new(),
        pending_values: HashMap::new(),
        blocks: HashMap::new(),
        defined_blocks: Default::default(),
        op_positions: HashMap::new(),
    };
    let t = p.ty()?;
    if *p.peek() != Tok::Eof {
        return p.err("trailing input after the type");
    }
    Ok(t)
}
