//! The frontend: source text → lexical validation → pest parse → AST, with `include` and `import`
//! resolved relative to the including file (docs/language.md §2–§5.2).

pub mod ast;
pub mod lexer;
pub mod parser;

use crate::diagnostics::{Code, Diagnostics, SourceMap, Span};
use crate::input::{read_regular, InputError, MAX_SOURCE_BYTES};
use ast::{ImportedModule, Item, ItemKind, Unit};
pub use parser::ParseOptions;
use std::path::{Path, PathBuf};

/// Loads, parses and include-expands the unit rooted at `path`.
pub fn load_unit(
    path: &Path,
    opts: ParseOptions,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Unit {
    let mut loader = Loader {
        opts,
        sources,
        diags,
        next_expr_id: 0,
        include_stack: Vec::new(),
        included: Vec::new(),
    };
    let display = path.display().to_string();
    let mut unit = Unit::default();
    match read_regular(path, Some(MAX_SOURCE_BYTES)) {
        Ok(bytes) => {
            let items = loader.parse_file(display, path, bytes);
            unit.items = loader.expand(items, path, false);
            unit.imports = loader.imports(&unit.items, path);
        }
        Err(e) => {
            // Nothing to point into: report against an empty stand-in file so the contract holds
            // (an empty file shows no snippet).
            let id = loader.sources.add(display, path, String::new());
            let (code, details) = match e {
                InputError::Io(_) => (Code::E0101, format!("cannot read {}: {e}", path.display())),
                _ => (Code::E0106, format!("{} {e}", path.display())),
            };
            loader.diags.error(code, Span::new(id, 0, 0), details);
        }
    }
    unit.expr_count = loader.next_expr_id;
    unit
}

struct Loader<'a> {
    opts: ParseOptions,
    sources: &'a mut SourceMap,
    diags: &'a mut Diagnostics,
    next_expr_id: u32,
    /// Headers being expanded, innermost last (cycle detection).
    include_stack: Vec<PathBuf>,
    /// Headers already expanded once (a second include is a no-op, §5.2).
    included: Vec<PathBuf>,
}

impl Loader<'_> {
    /// Reads an included header or imported module, reporting at the path string `at` why not.
    fn read_included(&mut self, rel: &str, full: &Path, at: Span) -> Option<Vec<u8>> {
        match read_regular(full, Some(MAX_SOURCE_BYTES)) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                let (code, details) = if e.is_not_found() {
                    (
                        Code::E0101,
                        format!("`{rel}` (looked for {})", full.display()),
                    )
                } else if let InputError::Io(_) = e {
                    (
                        Code::E0101,
                        format!("`{rel}`: cannot read {}: {e}", full.display()),
                    )
                } else {
                    (Code::E0106, format!("`{rel}`: {} {e}", full.display()))
                };
                self.diags.error(code, at, details);
                None
            }
        }
    }

    /// Registers a file and parses it. Returns no items if it is not valid UTF-8 or has lexical errors.
    fn parse_file(&mut self, display: String, path: &Path, bytes: Vec<u8>) -> Vec<Item> {
        let (text, bad_utf8) = match String::from_utf8(bytes) {
            Ok(t) => (t, None),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                (String::from_utf8_lossy(e.as_bytes()).into_owned(), Some(at))
            }
        };
        let id = self.sources.add(display, path, text);
        let text = &self.sources.get(id).text;
        if let Some(at) = bad_utf8 {
            // Offsets past the first bad byte shift under lossy decoding; the first one is exact.
            self.diags.error(
                Code::E0001,
                Span::new(id, at, at + 1),
                "invalid UTF-8 byte in source file",
            );
            return Vec::new();
        }
        let before = self.diags.error_count();
        let facts = lexer::validate(id, text, self.diags);
        if self.diags.error_count() > before {
            return Vec::new();
        }
        if self.opts.compat {
            for c in &facts.block_comments {
                self.diags.error(
                    Code::E0011,
                    *c,
                    "a `/* */` comment is a ksc extension (rejected by --compat)",
                );
            }
        }
        let text = lexer::blank_comments(&self.sources.get(id).text, &facts).into_owned();
        parser::parse_items(id, &text, self.opts, &mut self.next_expr_id, self.diags)
    }

    /// Replaces `include` items by the header's declarations.
    fn expand(&mut self, items: Vec<Item>, from: &Path, in_header: bool) -> Vec<Item> {
        let mut out = Vec::with_capacity(items.len());
        for mut item in items {
            if in_header {
                item.from_header = true;
                if !header_allows(&item.kind) {
                    let what = match item.kind {
                        ItemKind::Func(_) => "a function body",
                        ItemKind::Impl(_) => "an impl block",
                        _ => "this declaration",
                    };
                    self.diags.error(Code::E0102, item.span, format!("{what} cannot appear in a `.kh` header (headers declare struct, enum, type, extern and config only)"));
                    continue;
                }
            }
            let ItemKind::Include(path) = &item.kind else {
                out.push(item);
                continue;
            };
            let rel = path.text();
            if !rel.ends_with(".kh") {
                self.diags.error(
                    Code::E0103,
                    path.span,
                    format!("`{rel}`: `include` takes a `.kh` header"),
                );
                continue;
            }
            let full = resolve(from, &rel);
            let key = full.canonicalize().unwrap_or_else(|_| full.clone());
            if self.include_stack.contains(&key) {
                let chain: Vec<String> = self
                    .include_stack
                    .iter()
                    .chain([&key])
                    .map(|p| p.display().to_string())
                    .collect();
                self.diags.error(
                    Code::E0103,
                    path.span,
                    format!("include cycle: {}", chain.join(" → ")),
                );
                continue;
            }
            if self.included.contains(&key) {
                continue;
            }
            let Some(bytes) = self.read_included(&rel, &full, path.span) else {
                continue;
            };
            self.included.push(key.clone());
            self.include_stack.push(key);
            let header_items = self.parse_file(full.display().to_string(), &full, bytes);
            let expanded = self.expand(header_items, &full, true);
            self.include_stack.pop();
            out.extend(expanded);
        }
        out
    }

    /// Loads every `import NAME from "x.ks"` of the root unit.
    fn imports(&mut self, items: &[Item], from: &Path) -> Vec<ImportedModule> {
        let mut out = Vec::new();
        for item in items {
            let ItemKind::Import { name, path } = &item.kind else {
                continue;
            };
            let rel = path.text();
            if rel.ends_with(".py") {
                // Python modules are embedded as source and called through CPython (§5.2).
                let full = resolve(from, &rel);
                let Some(bytes) = self.read_included(&rel, &full, path.span) else {
                    continue;
                };
                let Ok(source) = String::from_utf8(bytes) else {
                    self.diags.error(
                        Code::E0106,
                        path.span,
                        format!("`{rel}`: {} is not UTF-8 text", full.display()),
                    );
                    continue;
                };
                if source.contains('\0') {
                    self.diags.error(
                        Code::E0106,
                        path.span,
                        format!("`{rel}`: {} contains a NUL byte", full.display()),
                    );
                    continue;
                }
                out.push(ImportedModule {
                    name: name.clone(),
                    items: Vec::new(),
                    python: Some(ast::PythonSource {
                        path: full.display().to_string(),
                        source,
                    }),
                });
                continue;
            }
            if !rel.ends_with(".ks") {
                self.diags.error(
                    Code::E0103,
                    path.span,
                    format!("`{rel}`: `import` takes a `.ks` module"),
                );
                continue;
            }
            let full = resolve(from, &rel);
            let Some(bytes) = self.read_included(&rel, &full, path.span) else {
                continue;
            };
            let parsed = self.parse_file(full.display().to_string(), &full, bytes);
            let items = self.expand(parsed, &full, false);
            if let Some(bad) = items.iter().find_map(|i| forbidden_in_module(i)) {
                self.diags.error(Code::E0104, item.span, format!("`{rel}` {bad}; an imported module holds userspace functions and types only"));
                continue;
            }
            out.push(ImportedModule {
                name: name.clone(),
                items,
                python: None,
            });
        }
        out
    }
}

fn resolve(from: &Path, rel: &str) -> PathBuf {
    let dir = from.parent().unwrap_or(Path::new("."));
    dir.join(rel)
}

fn header_allows(kind: &ItemKind) -> bool {
    matches!(
        kind,
        ItemKind::Struct(_)
            | ItemKind::Enum(_)
            | ItemKind::Alias { .. }
            | ItemKind::Extern(_)
            | ItemKind::Config(_)
            | ItemKind::Include(_)
    )
}

/// Why an item may not be in an imported module (§5.2), if it may not.
fn forbidden_in_module(item: &Item) -> Option<&'static str> {
    match &item.kind {
        ItemKind::Func(f) if f.name.name == "main" => Some("contains `main`"),
        ItemKind::Func(_) if !item.attrs.is_empty() => Some("contains kernel-side functions"),
        ItemKind::Impl(_) => Some("contains a struct_ops impl"),
        ItemKind::Map(_) => Some("declares maps"),
        ItemKind::Global(_) => Some("declares globals"),
        ItemKind::Config(_) => Some("declares a config block"),
        _ => None,
    }
}
