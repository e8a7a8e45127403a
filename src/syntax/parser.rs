//! pest parse tree → typed AST.
//!
//! The file is parsed one top-level item at a time: pest stops at its first error, so after a
//! failing item we resynchronise at the next line that starts an item and go on, which lets one
//! run report the errors of several items.

use super::ast::*;
use super::lexer::{parse_int_literal, unescape};
use crate::diagnostics::{Code, Diagnostics, FileId, Span};
use pest::iterators::Pair;
use pest::Parser as _;

#[derive(pest_derive::Parser)]
#[grammar = "syntax/grammar.pest"]
struct KsParser;

/// Options that change what the parser accepts.
#[derive(Clone, Copy, Debug, Default)]
pub struct ParseOptions {
    /// `--compat`: every [ext] construct is E0011.
    pub compat: bool,
}

/// Parses one file into items. `text` has its comments blanked ([`super::lexer::blank_comments`]):
/// the grammar has no comment rule. Expression ids continue from `*next_expr_id`.
pub fn parse_items(
    file: FileId,
    text: &str,
    opts: ParseOptions,
    next_expr_id: &mut u32,
    diags: &mut Diagnostics,
) -> Vec<Item> {
    let mut b = Builder {
        file,
        text,
        base: 0,
        opts,
        next_id: next_expr_id,
        diags,
    };
    let mut items = Vec::new();
    let mut off = skip_trivia(text, 0);
    while off < text.len() {
        match KsParser::parse(Rule::item, &text[off..]) {
            Ok(mut pairs) => {
                let Some(pair) = pairs.next() else { break };
                let end = off + pair.as_span().end();
                b.base = off;
                if let Some(item) = b.item(pair) {
                    items.push(item);
                }
                off = skip_trivia(text, end.max(off + 1));
            }
            Err(e) => {
                let pos = off + error_pos(&e);
                b.report_syntax_error(pos, &e);
                // Past the flood limit nothing more would be shown; stop instead of grinding
                // through a hostile file's remaining errors.
                if b.diags.error_count() >= crate::diagnostics::MAX_ERRORS {
                    break;
                }
                off = resync(text, pos.max(off + 1));
            }
        }
    }
    items
}

fn error_pos(e: &pest::error::Error<Rule>) -> usize {
    match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((p, _)) => p,
    }
}

/// Skips whitespace and stray `;` between items (comments were blanked by the lexer).
fn skip_trivia(text: &str, mut i: usize) -> usize {
    let b = text.as_bytes();
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n' | b';') {
        i += 1;
    }
    i
}

/// Longest operator, prefix or postfix chain accepted in one expression.
const MAX_CHAIN: usize = 256;

const ITEM_STARTS: &[&str] = &[
    "fn", "@", "struct", "enum", "var", "pin", "local", "config", "include", "import", "type",
    "const", "extern", "impl",
];

/// The start of the next line (after `pos`) that begins, in column 1, with a top-level item keyword.
fn resync(text: &str, pos: usize) -> usize {
    let mut i = pos;
    while let Some(nl) = text[i..].find('\n') {
        i += nl + 1;
        let rest = &text[i..];
        let starts_item = ITEM_STARTS.iter().any(|kw| {
            rest.starts_with(kw)
                && (*kw == "@"
                    || !rest[kw.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
        });
        if starts_item {
            return i;
        }
    }
    text.len()
}

/// How a grammar rule is named in "expected …" messages.
fn rule_name(r: &Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "end of file",
        Rule::ident | Rule::name => "identifier",
        Rule::int_lit => "integer literal",
        Rule::string_lit => "string literal",
        Rule::char_lit => "character literal",
        Rule::item | Rule::attribute => "a declaration",
        Rule::type_expr
        | Rule::prim_type
        | Rule::named_type
        | Rule::ptr_type
        | Rule::array_type => "a type",
        Rule::block => "`{`",
        Rule::stmt => "a statement",
        Rule::expr | Rule::operand | Rule::postfix | Rule::prefix_op => "an expression",
        Rule::assign_op => "`=`",
        Rule::infix_op => "an operator",
        Rule::call_args => "`(`",
        Rule::index => "`[`",
        Rule::dot_field => "`.`",
        Rule::arrow_field => "`->`",
        Rule::cast_suffix | Rule::kw_as => "`as`",
        Rule::params | Rule::param => "a parameter",
        Rule::ret_spec => "`->`",
        Rule::kw_else => "`else`",
        Rule::kw_fn => "`fn`",
        Rule::kw_in => "`in`",
        Rule::kw_from => "`from`",
        Rule::catch_clause => "`catch`",
        Rule::match_arm | Rule::match_pattern => "a match arm",
        Rule::field_init => "a field initialiser",
        Rule::struct_field => "a field",
        Rule::enum_variant => "an enumerator",
        Rule::config_field => "a config field",
        Rule::impl_member | Rule::impl_field => "a method or field",
        Rule::if_let => "`var`",
        Rule::for_range | Rule::for_each => "a loop variable",
        Rule::range_bound => "a range bound",
        Rule::catch_pattern => "a catch pattern",
        Rule::attr_args | Rule::attr_arg | Rule::attr_flag => "an attribute argument",
        _ => return None,
    })
}

/// Renders the token at `pos` for messages.
fn found_token(text: &str, pos: usize) -> String {
    let rest = &text[pos.min(text.len())..];
    if rest.is_empty() {
        return "end of file".into();
    }
    let c = rest.chars().next().unwrap_or(' ');
    let tok: String = if c.is_ascii_alphanumeric() || c == '_' {
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect()
    } else {
        const TWO: &[&str] = &[
            "->", "==", "!=", "<=", ">=", "&&", "||", "<<", ">>", "+=", "-=", "::", "..",
        ];
        TWO.iter()
            .find(|t| rest.starts_with(**t))
            .map(|t| t.to_string())
            .unwrap_or_else(|| c.to_string())
    };
    format!("`{tok}`")
}

/// When a syntax error falls on an operator inside a `for (i in a..b)` header, the bound was an
/// unparenthesised expression (`0..2 * t`), which the reference grammar does not allow: say how to
/// write it. The header is found by walking back to the unmatched `(` after `for`.
fn range_bound_hint(text: &str, pos: usize) -> Option<String> {
    let rest = text.get(pos..)?;
    if !rest.starts_with(['*', '/', '%', '+', '-', '&', '|', '^', '<', '>'])
        || rest.starts_with("->")
    {
        return None;
    }
    let before = &text[..pos];
    let (open, _) = scan_brackets(
        before.char_indices().rev(),
        [')', ']'],
        ['(', '['],
        |(_, c), _| matches!(c, '(' | '{' | '}' | ';' | '['),
    )
    .filter(|&(_, c)| c == '(')?;
    let keyword = before[..open].trim_end();
    let is_for = keyword.ends_with("for")
        && !keyword[..keyword.len() - 3].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    let header = &before[open + 1..];
    let (_, bounds) = header.split_once(" in ")?;
    if !is_for {
        return None;
    }
    // The bound: from the last `..` (or `in`) to the next `..` or the header's `)`.
    let start = bounds.rfind("..").map_or(0, |i| i + 2);
    let end = scan_brackets(
        rest.char_indices(),
        ['(', '['],
        [')', ']'],
        |(i, c), depth| {
            matches!(c, ')' | ']' | '{' | ';') || depth == 0 && rest[i..].starts_with("..")
        },
    )
    .map_or(rest.len(), |(i, _)| i);
    let after = &rest[..end];
    let bound = format!("{}{}", &bounds[start..], after);
    Some(format!(
        "a range bound is a literal, a name, a field or a parenthesised expression: write `({})`",
        bound.trim()
    ))
}

/// The first of `chars` at which `stop((index, char), depth)` holds, skipping over bracket pairs: `enter`
/// opens a pair in walking order and `leave` closes one (a `leave` with no open pair is asked to
/// `stop` like any other character).
fn scan_brackets(
    chars: impl Iterator<Item = (usize, char)>,
    enter: [char; 2],
    leave: [char; 2],
    mut stop: impl FnMut((usize, char), usize) -> bool,
) -> Option<(usize, char)> {
    let mut depth = 0usize;
    for (i, c) in chars {
        if enter.contains(&c) {
            depth += 1;
        } else if leave.contains(&c) && depth > 0 {
            depth -= 1;
        } else if stop((i, c), depth) {
            return Some((i, c));
        }
    }
    None
}

struct Builder<'a> {
    file: FileId,
    text: &'a str,
    /// Offset of the slice pest parsed, added to every pest position.
    base: usize,
    opts: ParseOptions,
    next_id: &'a mut u32,
    diags: &'a mut Diagnostics,
}

fn inner(p: Pair<'_, Rule>) -> Vec<Pair<'_, Rule>> {
    p.into_inner().collect()
}

impl<'a> Builder<'a> {
    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        Span::new(self.file, self.base + s.start(), self.base + s.end())
    }

    fn ident(&self, p: &Pair<'_, Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(p),
        }
    }

    fn expr_id(&mut self) -> ExprId {
        let id = ExprId(*self.next_id);
        *self.next_id += 1;
        id
    }

    fn mk(&mut self, kind: ExprKind, span: Span) -> Expr {
        Expr {
            kind,
            span,
            id: self.expr_id(),
        }
    }

    /// Records use of an extension; under `--compat` it is E0011.
    fn ext(&mut self, span: Span, what: &str) {
        if self.opts.compat {
            self.diags.error(
                Code::E0011,
                span,
                format!("{what} is a ksc extension (rejected by --compat)"),
            );
        }
    }

    fn unsupported(&mut self, span: Span, what: &str) {
        self.diags.error(Code::E0011, span, what.to_string());
    }

    fn report_syntax_error(&mut self, pos: usize, e: &pest::error::Error<Rule>) {
        let span = Span::new(self.file, pos, (pos + 1).min(self.text.len()));
        if self.text[pos.min(self.text.len())..].starts_with("::") {
            self.unsupported(
                Span::new(self.file, pos, pos + 2),
                "`::` paths do not exist; enum constants are bare names (`Red`, not `Color::Red`)",
            );
            return;
        }
        let mut expected: Vec<&str> = match &e.variant {
            pest::error::ErrorVariant::ParsingError { positives, .. } => {
                positives.iter().filter_map(rule_name).collect()
            }
            pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
        };
        // A wall of operator tokens helps nobody: any of them could continue the expression.
        let is_op = |s: &&str| {
            s.starts_with('`') && s.len() <= 4 && !matches!(*s, "`(`" | "`[`" | "`{`" | "`=`")
        };
        if expected.contains(&"an operator") || expected.iter().filter(|s| is_op(s)).count() > 3 {
            expected.retain(|s| !is_op(s));
            expected.push("an operator");
        }
        expected.sort();
        expected.dedup();
        let found = found_token(self.text, pos);
        let msg = match expected.len() {
            0 => format!("unexpected {found}"),
            1 => format!("expected {}, found {found}", expected[0]),
            n => format!(
                "expected {} or {}, found {found}",
                expected[..n - 1].join(", "),
                expected[n - 1]
            ),
        };
        let msg = match range_bound_hint(self.text, pos) {
            Some(hint) => format!("{msg}; {hint}"),
            None => msg,
        };
        self.diags.error(Code::E0010, span, msg);
    }

    fn int(&mut self, p: &Pair<'_, Rule>) -> u64 {
        let text = p.as_str();
        if text.len() > 2 && (text.starts_with("0o") || text.starts_with("0O")) {
            self.ext(self.span(p), "an octal literal");
        }
        if text.contains('_') {
            self.ext(self.span(p), "a digit separator");
        }
        // The lexer already reported malformed literals.
        parse_int_literal(text).unwrap_or(0)
    }

    fn string(&self, p: &Pair<'_, Rule>) -> Vec<u8> {
        p.clone()
            .into_inner()
            .next()
            .map(|b| unescape(b.as_str()))
            .unwrap_or_default()
    }

    fn char_value(&self, p: &Pair<'_, Rule>) -> u8 {
        self.string(p).first().copied().unwrap_or(0)
    }

    fn str_lit(&self, p: &Pair<'_, Rule>) -> StrLit {
        StrLit {
            value: self.string(p),
            span: self.span(p),
        }
    }

    // -------------------------------------------------------------------------------------------
    // Items

    fn item(&mut self, p: Pair<'_, Rule>) -> Option<Item> {
        let span = self.span(&p);
        let mut attrs = Vec::new();
        let mut body = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::attribute => attrs.push(self.attribute(c)),
                _ => body = Some(c),
            }
        }
        let body = body?;
        let kind = self.item_kind(body, &mut attrs)?;
        Some(Item {
            attrs,
            kind,
            span,
            from_header: false,
        })
    }

    fn attribute(&mut self, p: Pair<'_, Rule>) -> Attribute {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = it.next().map(|n| self.ident(&n)).unwrap_or(Ident {
            name: String::new(),
            span,
        });
        let mut args = None;
        // `@x()` and `@x` differ: the parentheses are visible in the text.
        if self.text[span.lo as usize..span.hi as usize].contains('(') {
            args = Some(Vec::new());
        }
        if let Some(list) = it.next() {
            let mut v = Vec::new();
            for a in list.into_inner() {
                let Some(a) = a.into_inner().next() else {
                    continue;
                };
                let sp = self.span(&a);
                v.push(match a.as_rule() {
                    Rule::string_lit => AttrArg::Str(self.string(&a), sp),
                    Rule::int_lit => AttrArg::Int(self.int(&a), sp),
                    _ => {
                        let mut f = a.into_inner();
                        let fname = f.next().map(|n| self.ident(&n)).unwrap_or(Ident {
                            name: String::new(),
                            span: sp,
                        });
                        let arg = f.next().map(|n| (self.int(&n), self.span(&n)));
                        AttrArg::Flag { name: fname, arg }
                    }
                });
            }
            args = Some(v);
        }
        Attribute { name, args, span }
    }

    fn item_kind(&mut self, p: Pair<'_, Rule>, attrs: &mut Vec<Attribute>) -> Option<ItemKind> {
        Some(match p.as_rule() {
            Rule::include_item => ItemKind::Include(self.str_lit(&inner(p)[1])),
            Rule::import_item => {
                let c = inner(p);
                ItemKind::Import {
                    name: self.ident(&c[1]),
                    path: self.str_lit(&c[3]),
                }
            }
            Rule::config_item => {
                let mut it = p.into_inner().skip(1);
                let name = self.ident(&it.next()?);
                let fields = it
                    .map(|f| {
                        let c = inner(f);
                        ConfigField {
                            name: self.ident(&c[0]),
                            ty: self.type_expr(c[1].clone()),
                            default: c.get(2).map(|e| self.expr(e.clone())),
                        }
                    })
                    .collect();
                ItemKind::Config(ConfigDecl { name, fields })
            }
            Rule::global_item => self.global_item(p, attrs)?,
            Rule::const_item => {
                self.ext(self.span(&p), "a top-level `const`");
                let (name, ty, init) = self.const_parts(p)?;
                ItemKind::Const(ConstDecl { name, ty, init })
            }
            Rule::struct_item => {
                let mut it = p.into_inner().skip(1);
                let name = self.ident(&it.next()?);
                let fields = it
                    .map(|f| {
                        let c = inner(f);
                        FieldDecl {
                            name: self.ident(&c[0]),
                            ty: self.type_expr(c[1].clone()),
                        }
                    })
                    .collect();
                ItemKind::Struct(StructDecl { name, fields })
            }
            Rule::enum_item => {
                let mut it = p.into_inner().skip(1);
                let name = self.ident(&it.next()?);
                let variants = it.map(|v| self.enum_variant(v)).collect();
                ItemKind::Enum(EnumDecl { name, variants })
            }
            Rule::alias_item => {
                let c = inner(p);
                ItemKind::Alias {
                    name: self.ident(&c[1]),
                    ty: self.type_expr(c[2].clone()),
                }
            }
            Rule::extern_item => {
                let mut it = p.into_inner().skip(1);
                let name = self.ident(&it.next()?);
                let mut params = Vec::new();
                let mut ret = None;
                for c in it {
                    match c.as_rule() {
                        Rule::params => params = self.params(c),
                        _ => ret = Some(self.type_expr(c)),
                    }
                }
                ItemKind::Extern(ExternDecl { name, params, ret })
            }
            Rule::func_item => ItemKind::Func(self.func(p)?),
            Rule::impl_item => {
                let mut it = p.into_inner().skip(1);
                let name = self.ident(&it.next()?);
                let mut methods = Vec::new();
                let mut fields = Vec::new();
                for m in it {
                    let m_span = self.span(&m);
                    let c = inner(m);
                    if c.first().map(|x| x.as_rule()) == Some(Rule::impl_field) {
                        let f = inner(c[0].clone());
                        fields.push(ImplField {
                            name: self.ident(&f[0]),
                            value: self.expr(f[1].clone()),
                        });
                        continue;
                    }
                    let mut mattrs = Vec::new();
                    for x in c {
                        match x.as_rule() {
                            Rule::attribute => mattrs.push(self.attribute(x)),
                            _ => {
                                if let Some(f) = self.func(x) {
                                    methods.push(Item {
                                        attrs: std::mem::take(&mut mattrs),
                                        kind: ItemKind::Func(f),
                                        span: m_span,
                                        from_header: false,
                                    });
                                }
                            }
                        }
                    }
                }
                ItemKind::Impl(ImplDecl {
                    name,
                    methods,
                    fields,
                })
            }
            _ => return None,
        })
    }

    fn global_item(&mut self, p: Pair<'_, Rule>, attrs: &mut Vec<Attribute>) -> Option<ItemKind> {
        let (mut pinned, mut local) = (false, false);
        let mut name = None;
        let mut ty = None;
        let mut init = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::kw_pin => pinned = true,
                Rule::kw_local => local = true,
                Rule::kw_var => {}
                Rule::ident => name = Some(self.ident(&c)),
                Rule::type_expr => ty = Some(self.type_expr(c)),
                _ => init = Some(self.expr(c)),
            }
        }
        let name = name?;
        if let Some(TypeExpr {
            kind: TypeExprKind::Map(m),
            ..
        }) = &ty
        {
            // `@flags(...)` belongs to the map; any other attribute before a map is E0013.
            let mut flags = Vec::new();
            for a in attrs.drain(..) {
                if a.name.name != "flags" {
                    self.diags.error(
                        Code::E0013,
                        a.name.span,
                        format!(
                            "`@{}` cannot annotate a map; only `@flags(...)` can",
                            a.name.name
                        ),
                    );
                    continue;
                }
                for arg in a.args.unwrap_or_default() {
                    match arg {
                        AttrArg::Flag { name, arg } => flags.push(MapFlag { name, arg }),
                        other => self.diags.error(
                            Code::E0013,
                            other.span(),
                            "a map flag must be a flag name",
                        ),
                    }
                }
            }
            if local {
                self.diags
                    .error(Code::E0604, name.span, "a map cannot be `local`");
            }
            if let Some(init) = &init {
                self.diags.error(
                    Code::E0604,
                    init.span,
                    "a map declaration takes no initialiser",
                );
            }
            return Some(ItemKind::Map(MapDecl {
                name,
                ty: m.clone(),
                pinned,
                flags,
            }));
        }
        Some(ItemKind::Global(GlobalDecl {
            name,
            ty,
            init,
            pinned,
            local,
        }))
    }

    fn const_parts(&mut self, p: Pair<'_, Rule>) -> Option<(Ident, Option<TypeExpr>, Expr)> {
        let mut name = None;
        let mut ty = None;
        let mut init = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::kw_const => {}
                Rule::ident => name = Some(self.ident(&c)),
                Rule::type_expr => ty = Some(self.type_expr(c)),
                _ => init = Some(self.expr(c)),
            }
        }
        Some((name?, ty, init?))
    }

    fn enum_variant(&mut self, v: Pair<'_, Rule>) -> EnumVariant {
        let c = inner(v);
        let name = self.ident(&c[0]);
        let value = match c.len() {
            2 => Some((self.int(&c[1]) as i128, self.span(&c[1]))),
            3 => Some((
                -(self.int(&c[2]) as i128),
                self.span(&c[1]).to(self.span(&c[2])),
            )),
            _ => None,
        };
        EnumVariant { name, value }
    }

    fn params(&mut self, p: Pair<'_, Rule>) -> Vec<Param> {
        p.into_inner()
            .map(|q| {
                let c = inner(q);
                Param {
                    name: self.ident(&c[0]),
                    ty: self.type_expr(c[1].clone()),
                }
            })
            .collect()
    }

    fn func(&mut self, p: Pair<'_, Rule>) -> Option<FuncDecl> {
        let mut it = p.into_inner().skip(1);
        let name = self.ident(&it.next()?);
        let mut params = Vec::new();
        let mut ret = RetSpec::Inferred;
        let mut body = None;
        for c in it {
            match c.as_rule() {
                Rule::params => params = self.params(c),
                Rule::ret_spec => {
                    let r = c.into_inner().next()?;
                    ret = if r.as_rule() == Rule::named_ret {
                        let n = inner(r);
                        RetSpec::Named(self.ident(&n[0]), self.type_expr(n[1].clone()))
                    } else {
                        RetSpec::Type(self.type_expr(r))
                    };
                }
                _ => body = Some(self.block(c)),
            }
        }
        Some(FuncDecl {
            name,
            params,
            ret,
            body: body?,
        })
    }

    // -------------------------------------------------------------------------------------------
    // Types

    fn type_expr(&mut self, p: Pair<'_, Rule>) -> TypeExpr {
        let span = self.span(&p);
        let p = if p.as_rule() == Rule::type_expr {
            p.into_inner().next().expect("type_expr has one child")
        } else {
            p
        };
        let kind = match p.as_rule() {
            Rule::prim_type => {
                TypeExprKind::Prim(PrimType::from_keyword(p.as_str()).unwrap_or(PrimType::Void))
            }
            Rule::named_type => TypeExprKind::Named(
                self.ident(&p.into_inner().next().expect("named_type has an ident")),
            ),
            Rule::ptr_type => TypeExprKind::Ptr(Box::new(
                self.type_expr(p.into_inner().next().expect("pointee")),
            )),
            Rule::str_type => {
                let n = inner(p);
                TypeExprKind::Str(self.int(&n[1]))
            }
            Rule::fn_type => {
                let mut parts: Vec<TypeExpr> = Vec::new();
                for c in p.into_inner().skip(1) {
                    if c.as_rule() == Rule::fn_type_param {
                        let last = c.into_inner().last().expect("fn param type");
                        parts.push(self.type_expr(last));
                    } else {
                        parts.push(self.type_expr(c));
                    }
                }
                let ret = parts.pop().expect("fn type has a return type");
                TypeExprKind::Fn {
                    params: parts,
                    ret: Box::new(ret),
                }
            }
            Rule::array_type => {
                let c = inner(p);
                let elem = self.type_expr(c[0].clone());
                let n = self.int(&c[1]);
                TypeExprKind::Array(Box::new(elem), n)
            }
            Rule::map_type => TypeExprKind::Map(self.map_type(p)),
            _ => {
                self.unsupported(span, "`[T; N]` array types do not exist; write `T[N]`");
                TypeExprKind::Prim(PrimType::Void)
            }
        };
        TypeExpr { kind, span }
    }

    fn map_type(&mut self, p: Pair<'_, Rule>) -> MapTypeExpr {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let kind = self.ident(&it.next().expect("map kind"));
        let mut args = Vec::new();
        let mut size = None;
        for c in it {
            match c.as_rule() {
                Rule::type_expr => args.push(self.type_expr(c)),
                _ => size = Some(Box::new(self.expr(c))),
            }
        }
        MapTypeExpr {
            kind,
            args,
            size,
            span,
        }
    }

    // -------------------------------------------------------------------------------------------
    // Statements

    fn block(&mut self, p: Pair<'_, Rule>) -> Block {
        let span = self.span(&p);
        let stmts = p.into_inner().filter_map(|s| self.stmt(s)).collect();
        Block { stmts, span }
    }

    fn stmt(&mut self, p: Pair<'_, Rule>) -> Option<Stmt> {
        let s = p.into_inner().next()?;
        let span = self.span(&s);
        let kind = match s.as_rule() {
            Rule::var_stmt => {
                let mut name = None;
                let mut ty = None;
                let mut init = None;
                for c in s.into_inner() {
                    match c.as_rule() {
                        Rule::kw_var => {}
                        Rule::ident => name = Some(self.ident(&c)),
                        Rule::type_expr => ty = Some(self.type_expr(c)),
                        _ => init = Some(self.expr(c)),
                    }
                }
                StmtKind::Var {
                    name: name?,
                    ty,
                    init,
                }
            }
            Rule::const_stmt => {
                let (name, ty, init) = self.const_parts(s)?;
                StmtKind::Const { name, ty, init }
            }
            Rule::return_stmt => StmtKind::Return(s.into_inner().nth(1).map(|e| self.expr(e))),
            Rule::if_stmt => return Some(self.if_stmt(s)),
            Rule::while_stmt => {
                let c = inner(s);
                StmtKind::While {
                    cond: self.expr(c[1].clone()),
                    body: self.block(c[2].clone()),
                }
            }
            Rule::for_stmt => {
                let c = inner(s);
                let head = c[1].clone();
                let body = self.block(c[2].clone());
                let is_each = head.as_rule() == Rule::for_each;
                let h = inner(head);
                if is_each {
                    self.ext(span, "map iteration `for (k, v in m)`");
                    StmtKind::ForEach {
                        key: self.ident(&h[0]),
                        value: self.ident(&h[1]),
                        map: self.ident(&h[3]),
                        body,
                    }
                } else {
                    StmtKind::ForRange {
                        var: self.ident(&h[0]),
                        lo: self.range_bound(h[2].clone()),
                        hi: self.range_bound(h[3].clone()),
                        body,
                    }
                }
            }
            Rule::delete_stmt => StmtKind::Delete(self.expr(s.into_inner().nth(1)?)),
            Rule::break_stmt => StmtKind::Break,
            Rule::continue_stmt => StmtKind::Continue,
            Rule::try_stmt => {
                let mut it = s.into_inner().skip(1);
                let body = self.block(it.next()?);
                let catches = it.filter_map(|c| self.catch_clause(c)).collect();
                StmtKind::Try { body, catches }
            }
            Rule::throw_stmt => StmtKind::Throw(self.expr(s.into_inner().nth(1)?)),
            Rule::defer_stmt => {
                let e = s.into_inner().nth(1)?;
                if e.as_rule() == Rule::block {
                    self.unsupported(
                        span,
                        "`defer { … }` is not supported; defer one call or assignment, or a helper that does the rest",
                    );
                    return None;
                }
                let deferred = Stmt {
                    span: self.span(&e),
                    kind: self.assign_or_expr(e)?,
                };
                StmtKind::Defer(Box::new(deferred))
            }
            Rule::loop_stmt => {
                self.unsupported(
                    span,
                    "`loop` does not exist; use `while (true)` with a `break`",
                );
                return None;
            }
            Rule::block_stmt => {
                self.unsupported(span, "block statements `{ … }` are not supported");
                return None;
            }
            _ => self.assign_or_expr(s)?,
        };
        Some(Stmt { kind, span })
    }

    /// `target op= value`, or an expression statement.
    fn assign_or_expr(&mut self, s: Pair<'_, Rule>) -> Option<StmtKind> {
        let mut it = s.into_inner();
        let target = self.expr(it.next()?);
        Some(match (it.next(), it.next()) {
            (Some(op), Some(value)) => {
                let op = self.assign_op(&op);
                let value = self.expr(value);
                if matches!(target.kind, ExprKind::Unary(UnOp::Deref, _)) {
                    self.ext(target.span, "assignment through `*p`");
                }
                StmtKind::Assign { target, op, value }
            }
            _ => StmtKind::Expr(target),
        })
    }

    fn assign_op(&mut self, p: &Pair<'_, Rule>) -> AssignOp {
        let op = match p.as_str() {
            "+=" => AssignOp::Add,
            "-=" => AssignOp::Sub,
            "*=" => AssignOp::Mul,
            "/=" => AssignOp::Div,
            "%=" => AssignOp::Rem,
            "&=" => AssignOp::BitAnd,
            "|=" => AssignOp::BitOr,
            "^=" => AssignOp::BitXor,
            "<<=" => AssignOp::Shl,
            ">>=" => AssignOp::Shr,
            _ => AssignOp::Set,
        };
        if matches!(
            op,
            AssignOp::BitAnd | AssignOp::BitOr | AssignOp::BitXor | AssignOp::Shl | AssignOp::Shr
        ) {
            self.ext(self.span(p), "a bitwise compound assignment");
        }
        op
    }

    fn if_stmt(&mut self, p: Pair<'_, Rule>) -> Stmt {
        let span = self.span(&p);
        let c = inner(p);
        let cond = if c[1].as_rule() == Rule::if_let {
            let l = inner(c[1].clone());
            IfCond::Let {
                name: self.ident(&l[1]),
                init: self.expr(l[2].clone()),
            }
        } else {
            IfCond::Expr(self.expr(c[1].clone()))
        };
        let then = self.block(c[2].clone());
        let els = c.get(4).map(|e| {
            Box::new(if e.as_rule() == Rule::if_stmt {
                ElseBranch::If(Box::new(self.if_stmt(e.clone())))
            } else {
                ElseBranch::Block(self.block(e.clone()))
            })
        });
        Stmt {
            kind: StmtKind::If { cond, then, els },
            span,
        }
    }

    fn catch_clause(&mut self, p: Pair<'_, Rule>) -> Option<Catch> {
        let span = self.span(&p);
        let c = inner(p);
        let pat = c.get(1)?.clone();
        let pspan = self.span(&pat);
        let body = self.block(c.get(2)?.clone());
        let parts = inner(pat);
        let pattern = match parts.as_slice() {
            [i] if i.as_rule() == Rule::int_lit => CatchPattern::Code(self.int(i), pspan),
            [i] if i.as_str() == "_" => CatchPattern::Wildcard(pspan),
            [i] if i.as_rule() == Rule::ident => CatchPattern::Named(Ident {
                name: i.as_str().to_string(),
                span: pspan,
            }),
            _ => {
                self.diags.error(
                    Code::E0014,
                    pspan,
                    format!(
                        "`{}`: a catch pattern is a non-negative integer literal, a constant's name or `_`",
                        pat_text(&parts)
                    ),
                );
                CatchPattern::Wildcard(pspan)
            }
        };
        Some(Catch {
            pattern,
            body,
            span,
        })
    }

    fn range_bound(&mut self, p: Pair<'_, Rule>) -> Expr {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let mut first = it.next().expect("range bound atom");
        // `-5..5`: a negative literal bound, as users write it (the reference needs `(-5)`).
        if first.as_rule() == Rule::neg {
            self.ext(span, "a negative range bound");
            first = it.next().expect("the literal after `-`");
            let literal = self.atom(first);
            return self.mk(ExprKind::Unary(UnOp::Neg, Box::new(literal)), span);
        }
        let mut e = self.atom(first);
        for s in it {
            e = self.suffix(e, s);
        }
        e
    }

    // -------------------------------------------------------------------------------------------
    // Expressions

    /// Rejects an operator, prefix, cast or postfix chain longer than `MAX_CHAIN`; with the
    /// lexer's bracket bound this keeps every AST shallow enough for the recursive passes.
    fn chain_too_long(&mut self, span: Span, count: usize, what: &str) -> bool {
        if count <= MAX_CHAIN {
            return false;
        }
        self.diags.error(Code::E0010, span, format!("{count} {what} in one expression; ksc accepts at most {MAX_CHAIN} (split it into several statements)"));
        true
    }

    fn expr(&mut self, p: Pair<'_, Rule>) -> Expr {
        let span = self.span(&p);
        if self.chain_too_long(span, p.clone().into_inner().count() / 2, "binary operators") {
            return self.mk(ExprKind::Int(0), span);
        }
        // Shunting-yard over `operand (op operand)*`: no recursion per operator.
        let mut operands: Vec<Expr> = Vec::new();
        let mut ops: Vec<(BinOp, Span)> = Vec::new();
        for c in p.into_inner() {
            if c.as_rule() == Rule::operand {
                operands.push(self.operand(c));
                continue;
            }
            let op = BinOp::from_symbol(c.as_str()).expect("infix_op matches only operators");
            let op_span = self.span(&c);
            if op.is_extension() {
                self.ext(op_span, &format!("the `{}` operator", op.symbol()));
                self.warn_line_start(op_span, op.symbol());
            }
            while let Some(&(top, _)) = ops.last() {
                if top.precedence() >= op.precedence() {
                    self.reduce(&mut operands, &mut ops);
                } else {
                    break;
                }
            }
            ops.push((op, op_span));
        }
        while !ops.is_empty() {
            self.reduce(&mut operands, &mut ops);
        }
        operands.pop().expect("expression has an operand")
    }

    fn reduce(&mut self, operands: &mut Vec<Expr>, ops: &mut Vec<(BinOp, Span)>) {
        let (op, _) = ops.pop().expect("operator");
        let rhs = operands.pop().expect("rhs");
        let lhs = operands.pop().expect("lhs");
        let span = lhs.span.to(rhs.span);
        let e = self.mk(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span);
        operands.push(e);
    }

    /// W0006 (§3 rule 7): an extension operator at the start of a line continues the previous line.
    fn warn_line_start(&mut self, op_span: Span, what: &str) {
        // Only the whitespace just before the operator is looked at, so long lines stay linear.
        let before = self.text[..op_span.lo as usize].trim_end_matches([' ', '\t', '\r']);
        if before.ends_with('\n') {
            self.diags.warning(Code::W0006, op_span, format!("`{what}` at the start of a line continues the expression on the previous line; write `;` before it to start a new statement"));
        }
    }

    fn operand(&mut self, p: Pair<'_, Rule>) -> Expr {
        let span = self.span(&p);
        if self.chain_too_long(
            span,
            p.clone().into_inner().count().saturating_sub(1),
            "prefix operators and casts",
        ) {
            return self.mk(ExprKind::Int(0), span);
        }
        let mut prefixes = Vec::new();
        let mut casts = Vec::new();
        let mut core = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::prefix_op => prefixes.push(c),
                Rule::cast_suffix => casts.push(c),
                _ => core = Some(self.postfix(c)),
            }
        }
        let mut e = core.expect("operand has a postfix expression");
        for pre in prefixes.into_iter().rev() {
            let op_span = self.span(&pre);
            let op = match pre.as_str() {
                "!" => UnOp::Not,
                "-" => UnOp::Neg,
                "*" => UnOp::Deref,
                "&" => UnOp::AddrOf,
                _ => {
                    self.ext(op_span, "the `~` operator");
                    UnOp::BitNot
                }
            };
            let span = op_span.to(e.span);
            e = self.mk(ExprKind::Unary(op, Box::new(e)), span);
        }
        for c in casts {
            let cspan = self.span(&c);
            self.ext(cspan, "an `as` cast");
            self.warn_line_start(cspan, "as");
            let ty = self.type_expr(c.into_inner().nth(1).expect("cast type"));
            let span = e.span.to(cspan);
            e = self.mk(ExprKind::Cast(Box::new(e), ty), span);
        }
        e
    }

    fn postfix(&mut self, p: Pair<'_, Rule>) -> Expr {
        let span = self.span(&p);
        if self.chain_too_long(
            span,
            p.clone().into_inner().count().saturating_sub(1),
            "postfix operations",
        ) {
            return self.mk(ExprKind::Int(0), span);
        }
        let mut it = p.into_inner().peekable();
        let head = it.next().expect("postfix atom");
        let mut e = match it.next_if(|s| s.as_rule() == Rule::struct_fields) {
            Some(fields) => self.struct_lit(head, fields),
            None => self.atom(head),
        };
        let mut after_index_or_call = false;
        for s in it {
            let r = s.as_rule();
            if after_index_or_call && matches!(r, Rule::dot_field | Rule::arrow_field) {
                self.ext(self.span(&s), "a postfix chain after indexing or a call");
            }
            e = self.suffix(e, s);
            after_index_or_call = matches!(r, Rule::index | Rule::call_args);
        }
        e
    }

    fn suffix(&mut self, e: Expr, s: Pair<'_, Rule>) -> Expr {
        let sspan = self.span(&s);
        let span = e.span.to(sspan);
        let kind = match s.as_rule() {
            Rule::call_args => {
                let args = s.into_inner().map(|a| self.expr(a)).collect();
                ExprKind::Call {
                    callee: Box::new(e),
                    args,
                }
            }
            Rule::index => ExprKind::Index(
                Box::new(e),
                Box::new(self.expr(s.into_inner().next().expect("index"))),
            ),
            Rule::dot_field => ExprKind::Field(
                Box::new(e),
                self.ident(&s.into_inner().next().expect("field")),
            ),
            _ => ExprKind::Arrow(
                Box::new(e),
                self.ident(&s.into_inner().next().expect("field")),
            ),
        };
        self.mk(kind, span)
    }

    fn struct_lit(&mut self, name: Pair<'_, Rule>, fields: Pair<'_, Rule>) -> Expr {
        let span = self.span(&name).to(self.span(&fields));
        let name = self.ident(&name);
        let fields = fields
            .into_inner()
            .map(|f| {
                let c = inner(f);
                (self.ident(&c[0]), self.expr(c[1].clone()))
            })
            .collect();
        self.mk(ExprKind::StructLit { name, fields }, span)
    }

    fn atom(&mut self, p: Pair<'_, Rule>) -> Expr {
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::int_lit => ExprKind::Int(self.int(&p)),
            Rule::string_lit => ExprKind::Str(self.string(&p)),
            Rule::char_lit => ExprKind::Char(self.char_value(&p)),
            Rule::kw_true => ExprKind::Bool(true),
            Rule::kw_false => ExprKind::Bool(false),
            Rule::kw_null => ExprKind::Null,
            Rule::ident => ExprKind::Ident(p.as_str().to_string()),
            Rule::paren_expr => {
                let mut e = self.expr(p.into_inner().next().expect("parenthesised expression"));
                e.span = span;
                return e;
            }
            Rule::array_lit => ExprKind::ArrayLit(p.into_inner().map(|e| self.expr(e)).collect()),
            Rule::match_expr => {
                let mut it = p.into_inner().skip(1);
                let scrutinee = Box::new(self.expr(it.next().expect("match scrutinee")));
                let arms = it.map(|a| self.match_arm(a)).collect();
                ExprKind::Match { scrutinee, arms }
            }
            Rule::new_expr => {
                let mut it = p.into_inner().skip(1);
                let ty = self.type_expr(it.next().expect("new type"));
                let arg = it.next().map(|a| Box::new(self.expr(a)));
                ExprKind::New { ty, arg }
            }
            Rule::sizeof_expr => {
                self.ext(span, "`sizeof`");
                let a = p.into_inner().nth(1).expect("sizeof argument");
                if a.as_rule() == Rule::type_expr {
                    ExprKind::SizeofType(self.type_expr(a))
                } else {
                    ExprKind::SizeofExpr(Box::new(self.expr(a)))
                }
            }
            _ => {
                self.unsupported(
                    span,
                    "`if` is a statement, not an expression; use `match` for a conditional value",
                );
                ExprKind::Int(0)
            }
        };
        self.mk(kind, span)
    }

    fn match_arm(&mut self, p: Pair<'_, Rule>) -> MatchArm {
        let span = self.span(&p);
        let c = inner(p);
        let pat = c[0].clone();
        let pspan = self.span(&pat);
        let parts = inner(pat);
        let pattern = match parts.as_slice() {
            [x] => match x.as_rule() {
                Rule::kw_default => Pattern::Default(pspan),
                Rule::int_lit => Pattern::Int(self.int(x) as i128, pspan),
                Rule::string_lit => Pattern::Str(self.string(x), pspan),
                Rule::char_lit => Pattern::Char(self.char_value(x), pspan),
                Rule::kw_true => Pattern::Bool(true, pspan),
                Rule::kw_false => Pattern::Bool(false, pspan),
                _ => Pattern::Name(self.ident(x)),
            },
            [_, n] => Pattern::Int(-(self.int(n) as i128), pspan),
            _ => Pattern::Default(pspan),
        };
        let body = if c[1].as_rule() == Rule::block {
            ArmBody::Block(self.block(c[1].clone()))
        } else {
            ArmBody::Expr(self.expr(c[1].clone()))
        };
        MatchArm {
            pattern,
            body,
            span,
        }
    }
}

fn pat_text(parts: &[Pair<'_, Rule>]) -> String {
    parts
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join("")
}
