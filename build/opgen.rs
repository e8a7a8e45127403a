//! The op-spec reader and code generator run by build.rs.
//!
//! Input: `ir-specs/<dialect>.ops`. Output in OUT_DIR: `ops.rs` (the `Opcode` enum, the `OP_INFO`
//! table the printer, parser and verifier are driven by, typed builders and views, and the
//! dispatch to verifier hooks) and `ops.md` (the op reference).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

pub struct Dialect {
    pub name: String,
    pub summary: String,
    pub ops: Vec<OpSpec>,
    /// Closed vocabularies declared in this file (`enum NAME { ... }`).
    pub enums: Vec<EnumSpec>,
}

/// A closed vocabulary: a Rust enum in `crate::vocab` and the attribute kind `enum(NAME)`.
#[derive(Default)]
pub struct EnumSpec {
    pub name: String,
    pub summary: String,
    /// (spelling in IR text and source, what it means)
    pub values: Vec<(String, String)>,
    pub line: usize,
}

#[derive(Default)]
pub struct OpSpec {
    pub dialect: String,
    pub name: String,
    pub summary: String,
    pub operands: Vec<Slot>,
    pub results: Vec<Slot>,
    pub attrs: Vec<AttrSpec>,
    pub regions: Vec<String>,
    pub variadic_regions: bool,
    pub successors: Vec<String>,
    pub variadic_successors: bool,
    pub traits: Vec<String>,
    pub verify: Option<String>,
    pub line: usize,
}

pub struct Slot {
    pub name: String,
    pub constraint: String,
    pub variadic: bool,
}

pub struct AttrSpec {
    pub name: String,
    pub kind: String,
    pub optional: bool,
}

const CONSTRAINTS: &[&str] = &[
    "any", "int", "bool", "ptr", "scalar", "intbool", "str", "fnptr", "u8", "u16", "u32", "u64",
    "i8", "i16", "i32", "i64",
];
const ATTR_KINDS: &[&str] = &[
    "int", "bool", "str", "sym", "type", "fields", "list", "value",
];
const TRAITS: &[&str] = &[
    "pure",
    "terminator",
    "reads",
    "writes",
    "kernel",
    "user",
    "module_level",
    "isolated",
];

pub fn generate(spec_dir: &Path, out: &Path) -> Result<(), String> {
    println!("cargo:rerun-if-changed={}", spec_dir.display());
    let mut files: Vec<_> = fs::read_dir(spec_dir)
        .map_err(|e| format!("{}: {e}", spec_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ops"))
        .collect();
    // core first so shared ops lead the table, then the levels from high to low.
    let rank = |p: &Path| match p.file_stem().and_then(|s| s.to_str()) {
        Some("core") => 0,
        Some("ks") => 1,
        Some("bpf") => 2,
        Some("host") => 3,
        _ => 4,
    };
    files.sort_by_key(|p| (rank(p), p.clone()));
    let mut dialects = Vec::new();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let text = fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        dialects.push(parse(&text).map_err(|e| format!("{}:{e}", f.display()))?);
    }
    let enums: Vec<&EnumSpec> = dialects.iter().flat_map(|d| d.enums.iter()).collect();
    for op in dialects.iter().flat_map(|d| d.ops.iter()) {
        for a in &op.attrs {
            if let Some(e) = enum_kind(&a.kind) {
                if !enums.iter().any(|x| x.name == e) {
                    return Err(format!(
                        "op {}.{}: no enum `{e}` is declared",
                        op.dialect, op.name
                    ));
                }
            }
        }
    }
    fs::write(out.join("vocab.rs"), vocab(&enums)).map_err(|e| e.to_string())?;
    fs::write(out.join("ops.rs"), rust(&dialects)).map_err(|e| e.to_string())?;
    fs::write(out.join("ops.md"), markdown(&dialects)).map_err(|e| e.to_string())?;
    Ok(())
}

pub fn parse(text: &str) -> Result<Dialect, String> {
    let mut d = Dialect {
        name: String::new(),
        summary: String::new(),
        ops: Vec::new(),
        enums: Vec::new(),
    };
    let mut cur: Option<OpSpec> = None;
    let mut cur_enum: Option<EnumSpec> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let n = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(e) = cur_enum.as_mut() {
            if line == "}" {
                let e = cur_enum.take().unwrap();
                if e.summary.is_empty() || e.values.is_empty() {
                    return Err(format!(
                        "{}: enum {} needs a summary and values",
                        e.line, e.name
                    ));
                }
                d.enums.push(e);
                continue;
            }
            let (key, value) = line
                .split_once(':')
                .ok_or(format!("{n}: expected `value: meaning`"))?;
            let (key, value) = (key.trim(), value.trim().to_string());
            if key == "summary" {
                e.summary = value;
            } else if !is_spec_name(key) || e.values.iter().any(|(v, _)| v == key) {
                return Err(format!("{n}: bad or repeated enum value `{key}`"));
            } else {
                e.values.push((key.to_string(), value));
            }
        } else if let Some(rest) = line.strip_prefix("enum ") {
            if cur.is_some() {
                return Err(format!("{n}: `enum` inside an op"));
            }
            let name = rest.trim_end_matches('{').trim();
            if !name.starts_with(|c: char| c.is_ascii_uppercase())
                || !name.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(format!("{n}: an enum is named in CamelCase, not `{name}`"));
            }
            cur_enum = Some(EnumSpec {
                name: name.to_string(),
                line: n,
                ..Default::default()
            });
        } else if let Some(rest) = line.strip_prefix("dialect ") {
            let (name, summary) = rest
                .split_once(' ')
                .ok_or(format!("{n}: dialect needs a name and a summary"))?;
            d.name = name.to_string();
            d.summary = summary.trim().trim_matches('"').to_string();
        } else if let Some(rest) = line.strip_prefix("op ") {
            if cur.is_some() {
                return Err(format!("{n}: `op` inside an op"));
            }
            let name = rest.trim_end_matches('{').trim();
            if !is_spec_name(name) {
                return Err(format!("{n}: bad op name `{name}`"));
            }
            cur = Some(OpSpec {
                dialect: d.name.clone(),
                name: name.to_string(),
                line: n,
                ..Default::default()
            });
        } else if line == "}" {
            let op = cur.take().ok_or(format!("{n}: `}}` outside an op"))?;
            if op.summary.is_empty() {
                return Err(format!("{}: op {} has no summary", op.line, op.name));
            }
            if d.ops.iter().any(|o| o.name == op.name) {
                return Err(format!("{}: op {} declared twice", op.line, op.name));
            }
            d.ops.push(op);
        } else {
            let op = cur.as_mut().ok_or(format!("{n}: `{line}` outside an op"))?;
            let (key, value) = line
                .split_once(':')
                .ok_or(format!("{n}: expected `key: value`"))?;
            let value = value.trim();
            match key.trim() {
                "summary" => op.summary = value.to_string(),
                "operands" => op.operands = slots(value, n)?,
                "results" => op.results = slots(value, n)?,
                "attrs" => {
                    for a in list(value) {
                        let (name, kind) = a
                            .split_once(':')
                            .ok_or(format!("{n}: attribute `{a}` needs a kind"))?;
                        let kind = kind.trim();
                        let (kind, optional) = match kind.strip_suffix('?') {
                            Some(k) => (k, true),
                            None => (kind, false),
                        };
                        if !ATTR_KINDS.contains(&kind) && enum_kind(kind).is_none() {
                            return Err(format!("{n}: unknown attribute kind `{kind}`"));
                        }
                        op.attrs.push(AttrSpec {
                            name: name.trim().to_string(),
                            kind: kind.to_string(),
                            optional,
                        });
                    }
                }
                "regions" => {
                    for r in list(value) {
                        match r.strip_suffix("...") {
                            Some(r) => {
                                op.variadic_regions = true;
                                op.regions.push(r.to_string());
                            }
                            None => op.regions.push(r.to_string()),
                        }
                    }
                }
                "successors" => {
                    for s in list(value) {
                        match s.strip_suffix("...") {
                            Some(s) => {
                                op.variadic_successors = true;
                                op.successors.push(s.to_string());
                            }
                            None => op.successors.push(s.to_string()),
                        }
                    }
                }
                "traits" => {
                    for t in list(value) {
                        if !TRAITS.contains(&t.as_str()) {
                            return Err(format!("{n}: unknown trait `{t}`"));
                        }
                        op.traits.push(t);
                    }
                }
                "verify" => op.verify = Some(value.to_string()),
                k => return Err(format!("{n}: unknown key `{k}`")),
            }
        }
    }
    if cur.is_some() || cur_enum.is_some() {
        return Err("end of file inside an op or enum".into());
    }
    if d.name.is_empty() && !d.ops.is_empty() {
        return Err("1: missing `dialect` line".into());
    }
    for op in &d.ops {
        for (i, r) in op.results.iter().enumerate() {
            if let Some(src) = r
                .constraint
                .strip_prefix("same(")
                .and_then(|s| s.strip_suffix(')'))
            {
                if !op.operands.iter().any(|o| o.name == src) {
                    return Err(format!(
                        "{}: result {} of {} refers to unknown operand {src}",
                        op.line, i, op.name
                    ));
                }
            }
        }
    }
    Ok(d)
}

/// Op and enum-value names: lowercase snake case.
fn is_spec_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
}

/// `enum(NAME)` → `NAME`.
fn enum_kind(kind: &str) -> Option<&str> {
    kind.strip_prefix("enum(")?.strip_suffix(')')
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn slots(v: &str, n: usize) -> Result<Vec<Slot>, String> {
    let mut out = Vec::new();
    for s in list(v) {
        let (name, c) = s
            .split_once(':')
            .ok_or(format!("{n}: `{s}` needs a constraint"))?;
        let c = c.trim();
        let (c, variadic) = match c.strip_suffix("...") {
            Some(c) => (c, true),
            None => (c, false),
        };
        if !(CONSTRAINTS.contains(&c) || (c.starts_with("same(") && c.ends_with(')'))) {
            return Err(format!("{n}: unknown constraint `{c}`"));
        }
        out.push(Slot {
            name: name.trim().to_string(),
            constraint: c.to_string(),
            variadic,
        });
    }
    if out.iter().rev().skip(1).any(|s| s.variadic) {
        return Err(format!(
            "{n}: only the last operand or result may be variadic"
        ));
    }
    Ok(out)
}

fn camel(s: &str) -> String {
    s.split(['_', '.'])
        .filter(|p| !p.is_empty())
        .map(|p| p[..1].to_uppercase() + &p[1..])
        .collect()
}

fn variant(op: &OpSpec) -> String {
    camel(&format!("{}_{}", op.dialect, op.name))
}

fn snake(op: &OpSpec) -> String {
    format!("{}_{}", op.dialect, op.name)
}

/// Rust identifiers for spec names that are keywords.
fn ident(s: &str) -> String {
    match s {
        "type" | "struct" | "impl" | "fn" | "if" | "else" | "for" | "while" | "loop" | "break"
        | "continue" | "return" | "match" | "ref" | "move" => format!("r#{s}"),
        _ => s.to_string(),
    }
}

fn constraint_expr(c: &str, op: &OpSpec) -> String {
    if let Some(src) = c.strip_prefix("same(").and_then(|s| s.strip_suffix(')')) {
        let i = op.operands.iter().position(|o| o.name == src).unwrap();
        return format!("Constraint::SameAs({i})");
    }
    match c {
        "any" => "Constraint::Any".into(),
        "int" => "Constraint::Int".into(),
        "bool" => "Constraint::Bool".into(),
        "ptr" => "Constraint::Ptr".into(),
        "scalar" => "Constraint::Scalar".into(),
        "intbool" => "Constraint::IntOrBool".into(),
        "str" => "Constraint::Str".into(),
        "fnptr" => "Constraint::FnPtr".into(),
        fixed => format!("Constraint::Exactly(IntTy::{})", fixed.to_uppercase()),
    }
}

fn attr_kind(k: &str) -> String {
    if let Some(e) = enum_kind(k) {
        return format!("AttrKind::Enum(EnumType::{e})");
    }
    match k {
        "int" => "AttrKind::Int",
        "bool" => "AttrKind::Bool",
        "str" => "AttrKind::Str",
        "sym" => "AttrKind::Sym",
        "type" => "AttrKind::Type",
        "fields" => "AttrKind::Fields",
        "list" => "AttrKind::List",
        _ => "AttrKind::Value",
    }
    .to_string()
}

/// The Rust parameter type a builder takes for an attribute kind, and how it becomes an `Attr`.
fn attr_param(a: &AttrSpec) -> (String, String) {
    // The parameter's type, and the constructor wrapping its value into an `Attr` (`None`: the
    // parameter is an `Attr` already).
    let enum_ty = enum_kind(&a.kind).map(|e| format!("crate::vocab::{e}"));
    let (ty, ctor) = match a.kind.as_str() {
        _ if enum_ty.is_some() => (enum_ty.as_deref().unwrap(), Some("Attr::from")),
        "int" => ("i128", Some("Attr::Int")),
        "bool" => ("bool", Some("Attr::Bool")),
        "str" => ("impl Into<Vec<u8>>", Some("Attr::Str")),
        "sym" => ("&str", Some("Attr::Sym")),
        "type" => ("Type", Some("Attr::Type")),
        "fields" => ("Vec<(String, Type)>", Some("Attr::Fields")),
        "list" => ("Vec<Attr>", Some("Attr::List")),
        _ => ("Attr", None),
    };
    let name = ident(&a.name);
    let converts = matches!(a.kind.as_str(), "str" | "sym");
    if a.optional {
        // An optional string is passed as bytes already; a symbol still converts.
        let ty = if a.kind == "str" {
            "Option<Vec<u8>>".to_string()
        } else {
            format!("Option<{ty}>")
        };
        let conv = match ctor {
            Some(c) if a.kind == "sym" => format!("{name}.map(|v| {c}(v.into()))"),
            Some(c) => format!("{name}.map({c})"),
            None => name.clone(),
        };
        (format!("{name}: {ty}"), conv)
    } else {
        let value = if converts {
            format!("{name}.into()")
        } else {
            name.clone()
        };
        let conv = match ctor {
            Some(c) => format!("Some({c}({value}))"),
            None => format!("Some({value})"),
        };
        (format!("{name}: {ty}"), conv)
    }
}

pub fn rust(dialects: &[Dialect]) -> String {
    let ops: Vec<&OpSpec> = dialects.iter().flat_map(|d| d.ops.iter()).collect();
    let mut s = String::new();
    s.push_str("// @generated by build/opgen.rs from ir-specs/*.ops. Do not edit.\n\n");

    // The opcode enum.
    s.push_str("/// Every op of every dialect.\n#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum Opcode {\n");
    for op in &ops {
        let _ = writeln!(s, "    /// {}", op.summary);
        let _ = writeln!(s, "    {},", variant(op));
    }
    s.push_str("}\n\n");
    let _ = writeln!(s, "/// Every opcode in table order (the tests walk them).\n#[cfg(test)]\npub const ALL_OPCODES: [Opcode; {}] = [", ops.len());
    for op in &ops {
        let _ = writeln!(s, "    Opcode::{},", variant(op));
    }
    s.push_str("];\n\n");

    // The table.
    let _ = writeln!(s, "pub static OP_INFO: [OpInfo; {}] = [", ops.len());
    for op in &ops {
        let _ = writeln!(s, "    OpInfo {{");
        let _ = writeln!(s, "        name: \"{}.{}\",", op.dialect, op.name);
        let _ = writeln!(s, "        dialect: \"{}\",", op.dialect);
        let _ = writeln!(s, "        summary: {:?},", op.summary);
        for (field, slots) in [("operands", &op.operands), ("results", &op.results)] {
            let _ = write!(s, "        {field}: &[");
            for sl in slots.iter() {
                let _ = write!(
                    s,
                    "SlotInfo {{ name: \"{}\", constraint: {}, variadic: {} }}, ",
                    sl.name,
                    constraint_expr(&sl.constraint, op),
                    sl.variadic
                );
            }
            s.push_str("],\n");
        }
        let _ = write!(s, "        attrs: &[");
        for a in &op.attrs {
            let _ = write!(
                s,
                "AttrInfo {{ name: \"{}\", kind: {}, optional: {} }}, ",
                a.name,
                attr_kind(&a.kind),
                a.optional
            );
        }
        s.push_str("],\n");
        let _ = writeln!(s, "        regions: &{:?},", op.regions);
        let _ = writeln!(s, "        variadic_regions: {},", op.variadic_regions);
        let _ = writeln!(s, "        successors: &{:?},", op.successors);
        let _ = writeln!(
            s,
            "        variadic_successors: {},",
            op.variadic_successors
        );
        let traits: Vec<String> = op
            .traits
            .iter()
            .map(|t| format!("Traits::{}", t.to_uppercase()))
            .collect();
        let _ = writeln!(
            s,
            "        traits: Traits({}),",
            if traits.is_empty() {
                "0".to_string()
            } else {
                traits
                    .iter()
                    .map(|t| format!("{t}.0"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            }
        );
        let _ = writeln!(s, "    }},");
    }
    s.push_str("];\n\n");

    enum_attrs(&mut s, dialects);

    // Name lookup.
    s.push_str("impl Opcode {\n    pub fn from_name(name: &str) -> Option<Opcode> {\n        Some(match name {\n");
    for op in &ops {
        let _ = writeln!(
            s,
            "            \"{}.{}\" => Opcode::{},",
            op.dialect,
            op.name,
            variant(op)
        );
    }
    s.push_str("            _ => return None,\n        })\n    }\n}\n\n");

    // Verifier hooks.
    s.push_str("/// Runs the op-specific verifier hook named in the op's spec.\npub(crate) fn run_verify_hook(v: &mut crate::ir::verify::Verifier, op: OpId) {\n    match v.module.op(op).opcode {\n");
    for op in &ops {
        if let Some(h) = &op.verify {
            let _ = writeln!(
                s,
                "        Opcode::{} => crate::ir::verify::hooks::{h}(v, op),",
                variant(op)
            );
        }
    }
    s.push_str("        _ => {}\n    }\n}\n\n");

    // Typed builders.
    s.push_str("/// One typed constructor per op: operands, then attributes, then result types that cannot be inferred.\nimpl Builder<'_> {\n");
    for op in &ops {
        let mut params = Vec::new();
        let mut operand_exprs = Vec::new();
        for o in &op.operands {
            let n = ident(&o.name);
            if o.variadic {
                params.push(format!("{n}: &[Value]"));
                operand_exprs.push(Part::Slice(n));
            } else {
                params.push(format!("{n}: Value"));
                operand_exprs.push(Part::One(n));
            }
        }
        let mut attr_exprs = Vec::new();
        for a in &op.attrs {
            let (p, conv) = attr_param(a);
            params.push(p);
            attr_exprs.push(conv);
        }
        let mut result_exprs = Vec::new();
        for r in &op.results {
            let n = format!("{}_ty", r.name);
            if r.variadic {
                params.push(format!("{n}: &[Type]"));
                result_exprs.push(Part::Slice(n));
            } else if let Some(src) = r
                .constraint
                .strip_prefix("same(")
                .and_then(|x| x.strip_suffix(')'))
            {
                result_exprs.push(Part::One(format!(
                    "self.module.value_type({}).clone()",
                    ident(src)
                )));
            } else if r.constraint == "bool" {
                result_exprs.push(Part::One("Type::Bool".into()));
            } else if CONSTRAINTS[8..].contains(&r.constraint.as_str()) {
                result_exprs.push(Part::One(format!(
                    "Type::Int(IntTy::{})",
                    r.constraint.to_uppercase()
                )));
            } else {
                params.push(format!("{n}: Type"));
                result_exprs.push(Part::One(n));
            }
        }
        if op.variadic_regions {
            params.push("region_count: usize".into());
        }
        if !op.successors.is_empty() {
            params.push("successors: Vec<Successor>".into());
        }
        let single = op.results.len() == 1 && !op.results[0].variadic && op.regions.is_empty();
        let ret = if single { "Value" } else { "OpId" };
        let _ = writeln!(s, "    /// `{}.{}`: {}", op.dialect, op.name, op.summary);
        let _ = writeln!(s, "    #[allow(clippy::too_many_arguments)]");
        let _ = writeln!(
            s,
            "    pub fn {}(&mut self, {}) -> {ret} {{",
            snake(op),
            params.join(", ")
        );
        let _ = writeln!(s, "{}", collect_vec("ops", "Value", &operand_exprs));
        let _ = writeln!(s, "{}", collect_vec("tys", "Type", &result_exprs));
        let _ = writeln!(
            s,
            "        let attrs: Vec<Option<Attr>> = vec![{}];",
            attr_exprs.join(", ")
        );
        let regions = if op.variadic_regions {
            match op.regions.len() - 1 {
                0 => "region_count".to_string(),
                fixed => format!("{fixed} + region_count"),
            }
        } else {
            op.regions.len().to_string()
        };
        let succ = if op.successors.is_empty() {
            "Vec::new()"
        } else {
            "successors"
        };
        let insert = format!(
            "self.insert(Opcode::{}, ops, tys, attrs, {regions}, {succ})",
            variant(op)
        );
        if single {
            let _ = writeln!(s, "        let op = {insert};");
            let _ = writeln!(s, "        self.module.op(op).results[0]");
        } else {
            let _ = writeln!(s, "        {insert}");
        }
        let _ = writeln!(s, "    }}\n");
    }
    s.push_str("}\n\n");

    // Typed views.
    s.push_str("/// Typed views: `views::KsMapLookup::of(m, op)` gives named access to an op's parts (named as\n/// the specs name them, `index` included). Every op has one, used or not.\n#[allow(clippy::should_implement_trait, dead_code)]\npub mod views {\n    use super::*;\n");
    for op in &ops {
        let v = variant(op);
        let _ = writeln!(s, "\n    /// `{}.{}`", op.dialect, op.name);
        let _ = writeln!(
            s,
            "    #[derive(Clone, Copy, Debug)]\n    pub struct {v}(pub OpId);"
        );
        let _ = writeln!(s, "    #[allow(dead_code)]\n    impl {v} {{");
        let _ = writeln!(s, "        pub fn of(m: &Module, op: OpId) -> Option<Self> {{ (m.op(op).opcode == Opcode::{v}).then_some({v}(op)) }}");
        let fixed = op.operands.iter().filter(|o| !o.variadic).count();
        for (i, o) in op.operands.iter().enumerate() {
            let n = ident(&o.name);
            if o.variadic {
                let _ = writeln!(s, "        pub fn {n}(self, m: &Module) -> &[Value] {{ &m.op(self.0).operands[{fixed}..] }}");
            } else {
                let _ = writeln!(s, "        pub fn {n}(self, m: &Module) -> Value {{ m.op(self.0).operands[{i}] }}");
            }
        }
        for (i, r) in op.results.iter().enumerate() {
            let n = format!("{}_value", r.name);
            if r.variadic {
                let _ = writeln!(s, "        pub fn {n}(self, m: &Module) -> &[Value] {{ &m.op(self.0).results[{i}..] }}");
            } else {
                let _ = writeln!(
                    s,
                    "        pub fn {n}(self, m: &Module) -> Value {{ m.op(self.0).results[{i}] }}"
                );
            }
        }
        for (i, a) in op.attrs.iter().enumerate() {
            let n = ident(&a.name);
            let enum_ty = enum_kind(&a.kind).map(|e| format!("crate::vocab::{e}"));
            let enum_pat =
                enum_kind(&a.kind).map(|e| format!("Some(Attr::Enum(EnumValue::{e}(v)))"));
            let (ty, body) = match a.kind.as_str() {
                _ if enum_ty.is_some() => (enum_ty.as_deref().unwrap(), "*v"),
                "int" => ("i128", "*v"),
                "bool" => ("bool", "*v"),
                "str" => ("&[u8]", "v.as_slice()"),
                "sym" => ("&str", "v.as_str()"),
                "type" => ("&Type", "v"),
                "fields" => ("&[(String, Type)]", "v.as_slice()"),
                "list" => ("&[Attr]", "v.as_slice()"),
                _ => ("&Attr", "v"),
            };
            let pat = match a.kind.as_str() {
                _ if enum_pat.is_some() => enum_pat.as_deref().unwrap(),
                "int" => "Some(Attr::Int(v))",
                "bool" => "Some(Attr::Bool(v))",
                "str" => "Some(Attr::Str(v))",
                "sym" => "Some(Attr::Sym(v))",
                "type" => "Some(Attr::Type(v))",
                "fields" => "Some(Attr::Fields(v))",
                "list" => "Some(Attr::List(v))",
                _ => "Some(v)",
            };
            if a.optional {
                let _ = writeln!(s, "        pub fn {n}(self, m: &Module) -> Option<{ty}> {{ match &m.op(self.0).attrs[{i}] {{ {pat} => Some({body}), _ => None }} }}");
            } else {
                let _ = writeln!(s, "        pub fn {n}(self, m: &Module) -> {ty} {{ match &m.op(self.0).attrs[{i}] {{ {pat} => {body}, _ => panic!(\"verified {} has attribute {}\") }} }}", op.name, a.name);
            }
        }
        for (i, r) in op.regions.iter().enumerate() {
            let n = format!("{}_region", r);
            if op.variadic_regions && i + 1 == op.regions.len() {
                let _ = writeln!(s, "        pub fn {n}(self, m: &Module) -> &[RegionId] {{ &m.op(self.0).regions[{i}..] }}");
            } else {
                let _ = writeln!(s, "        pub fn {n}(self, m: &Module) -> RegionId {{ m.op(self.0).regions[{i}] }}");
            }
        }
        s.push_str("    }\n");
    }
    s.push_str("}\n");
    s
}

/// The vocabularies as Rust enums, for `crate::vocab`: each with its values in spec order, their
/// spellings and a parser for them.
pub fn vocab(enums: &[&EnumSpec]) -> String {
    let mut s = String::from("// @generated by build/opgen.rs from ir-specs/*.ops. Do not edit.\n");
    for e in enums {
        let name = &e.name;
        let _ = writeln!(s, "\n/// {}", e.summary);
        s.push_str("#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\n");
        let _ = writeln!(s, "pub enum {name} {{");
        for (v, doc) in &e.values {
            let _ = writeln!(s, "    /// `{v}`: {doc}\n    {},", camel(v));
        }
        s.push_str("}\n\n");
        let _ = writeln!(s, "impl {name} {{");
        let all: Vec<String> = e
            .values
            .iter()
            .map(|(v, _)| format!("{name}::{}", camel(v)))
            .collect();
        let _ = writeln!(
            s,
            "    pub const ALL: [{name}; {}] = [{}];\n",
            all.len(),
            all.join(", ")
        );
        s.push_str("    /// The spelling in IR text and in source.\n    pub const fn name(self) -> &'static str {\n        match self {\n");
        for (v, _) in &e.values {
            let _ = writeln!(s, "            {name}::{} => \"{v}\",", camel(v));
        }
        s.push_str("        }\n    }\n\n");
        let _ = writeln!(s, "    pub fn from_name(name: &str) -> Option<{name}> {{\n        Self::ALL.into_iter().find(|v| v.name() == name)\n    }}");
        s.push_str("}\n\n");
        let _ = writeln!(s, "impl Vocabulary for {name} {{\n    const ALL: &'static [Self] = &{name}::ALL;\n\n    fn name(self) -> &'static str {{\n        {name}::name(self)\n    }}\n\n    fn index(self) -> u8 {{\n        self as u8\n    }}\n}}\n");
        let _ = writeln!(s, "impl std::fmt::Display for {name} {{\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n        f.write_str(self.name())\n    }}\n}}");
    }
    s
}

/// `EnumType` (which vocabulary an `enum(NAME)` attribute holds), `EnumValue` (a value of one)
/// and the conversions the builders, views, printer and parser use.
fn enum_attrs(s: &mut String, dialects: &[Dialect]) {
    let enums: Vec<&EnumSpec> = dialects.iter().flat_map(|d| d.enums.iter()).collect();
    s.push_str("/// The vocabulary an `enum(NAME)` attribute is drawn from.\n#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]\npub enum EnumType {\n");
    for e in &enums {
        let _ = writeln!(s, "    {},", e.name);
    }
    s.push_str("}\n\n/// A value of an `enum(NAME)` attribute.\n#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]\npub enum EnumValue {\n");
    for e in &enums {
        let _ = writeln!(s, "    {0}(crate::vocab::{0}),", e.name);
    }
    s.push_str(
        "}\n\nimpl EnumType {\n    pub fn name(self) -> &'static str {\n        match self {\n",
    );
    for e in &enums {
        let _ = writeln!(s, "            EnumType::{0} => \"{0}\",", e.name);
    }
    s.push_str("        }\n    }\n\n    /// Every value's spelling, in spec order.\n    pub fn spellings(self) -> Vec<&'static str> {\n        match self {\n");
    for e in &enums {
        let _ = writeln!(s, "            EnumType::{0} => crate::vocab::{0}::ALL.iter().map(|v| v.name()).collect(),", e.name);
    }
    s.push_str("        }\n    }\n\n    pub fn parse(self, spelling: &str) -> Option<EnumValue> {\n        match self {\n");
    for e in &enums {
        let _ = writeln!(s, "            EnumType::{0} => crate::vocab::{0}::from_name(spelling).map(EnumValue::{0}),", e.name);
    }
    s.push_str("        }\n    }\n}\n\nimpl EnumValue {\n    pub fn ty(self) -> EnumType {\n        match self {\n");
    for e in &enums {
        let _ = writeln!(s, "            EnumValue::{0}(_) => EnumType::{0},", e.name);
    }
    s.push_str(
        "        }\n    }\n\n    pub fn name(self) -> &'static str {\n        match self {\n",
    );
    for e in &enums {
        let _ = writeln!(s, "            EnumValue::{0}(v) => v.name(),", e.name);
    }
    s.push_str("        }\n    }\n}\n");
    for e in &enums {
        let _ = writeln!(s, "\nimpl From<crate::vocab::{0}> for Attr {{\n    fn from(v: crate::vocab::{0}) -> Attr {{\n        Attr::Enum(EnumValue::{0}(v))\n    }}\n}}", e.name);
    }
    s.push('\n');
}

pub fn markdown(dialects: &[Dialect]) -> String {
    let mut s = String::new();
    s.push_str("# KS-IR op reference\n\n<!-- @generated by build/opgen.rs from ir-specs/*.ops; `ksc ir-reference` prints it. -->\n\n");
    s.push_str("Constraints: `any`, `int` (u8…i64), `bool`, `ptr`, `scalar` (int, bool or ptr), `intbool`, `str`, `fnptr`, an exact integer type, or `same(x)` (the type of operand x). A `...` suffix marks a variadic list.\n\n");
    for d in dialects.iter().filter(|d| !d.ops.is_empty()) {
        let _ = writeln!(s, "## `{}`\n\n{}\n", d.name, d.summary);
        for op in &d.ops {
            let _ = writeln!(s, "### `{}.{}`\n\n{}\n", op.dialect, op.name, op.summary);
            let slot = |v: &[Slot]| {
                v.iter()
                    .map(|x| {
                        format!(
                            "`{}: {}{}`",
                            x.name,
                            x.constraint,
                            if x.variadic { "..." } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if !op.operands.is_empty() {
                let _ = writeln!(s, "- operands: {}", slot(&op.operands));
            }
            if !op.results.is_empty() {
                let _ = writeln!(s, "- results: {}", slot(&op.results));
            }
            if !op.attrs.is_empty() {
                let a: Vec<String> = op
                    .attrs
                    .iter()
                    .map(|a| {
                        format!(
                            "`{}: {}{}`",
                            a.name,
                            a.kind,
                            if a.optional { "?" } else { "" }
                        )
                    })
                    .collect();
                let _ = writeln!(s, "- attributes: {}", a.join(", "));
            }
            if !op.regions.is_empty() {
                let _ = writeln!(
                    s,
                    "- regions: {}{}",
                    op.regions
                        .iter()
                        .map(|r| format!("`{r}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if op.variadic_regions {
                        " (variadic)"
                    } else {
                        ""
                    }
                );
            }
            if !op.successors.is_empty() {
                let _ = writeln!(
                    s,
                    "- successors: {}{}",
                    op.successors
                        .iter()
                        .map(|r| format!("`{r}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if op.variadic_successors {
                        " (variadic)"
                    } else {
                        ""
                    }
                );
            }
            if !op.traits.is_empty() {
                let _ = writeln!(s, "- traits: {}", op.traits.join(", "));
            }
            if let Some(v) = &op.verify {
                let _ = writeln!(s, "- verifier hook: `{v}`");
            }
            s.push('\n');
        }
    }
    s.push_str("## Enumerations\n\nAn attribute of kind `enum(NAME)` holds one of these values, written as its quoted spelling; the same enums (`crate::vocab`) are used by every stage of the compiler.\n\n");
    for e in dialects.iter().flat_map(|d| d.enums.iter()) {
        let _ = writeln!(s, "### `{}`\n\n{}\n", e.name, e.summary);
        for (v, doc) in &e.values {
            let _ = writeln!(s, "- `{v}`: {doc}");
        }
        s.push('\n');
    }
    s
}

/// A piece of a builder's operand or result list: one value, or a slice parameter spliced in.
enum Part {
    One(String),
    Slice(String),
}

/// `let NAME: Vec<TY> = …;` from parts, as a `vec![…]` of the single values and the slice
/// parameters appended after them (a variadic part is always last in a spec).
fn collect_vec(name: &str, ty: &str, parts: &[Part]) -> String {
    let (mut ones, mut slices): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for p in parts {
        match p {
            Part::One(e) => ones.push(e),
            Part::Slice(e) => slices.push(e),
        }
    }
    match (ones.is_empty(), slices.as_slice()) {
        (_, []) => format!("        let {name}: Vec<{ty}> = vec![{}];", ones.join(", ")),
        (true, [only]) => format!("        let {name}: Vec<{ty}> = {only}.to_vec();"),
        _ => {
            let mut out = format!(
                "        let mut {name}: Vec<{ty}> = vec![{}];",
                ones.join(", ")
            );
            for sl in slices {
                out.push_str(&format!("\n        {name}.extend_from_slice({sl});"));
            }
            out
        }
    }
}
