//! Diagnostics: the `FILE:LINE:COL: error[CODE]: message` contract of docs/language.md §18, with source
//! snippets for people and JSON lines for editors and CI.

mod codes;
mod render;
mod source;

pub use codes::Code;
pub use render::{render_json, render_text};
pub use source::{FileId, SourceMap, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Information about a decision the compiler made for the program (which symbol it chose).
    Note,
    Warning,
    Error,
}

#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    /// Canonical phrase of the code, optionally followed by `: details`.
    pub message: String,
    pub span: Span,
    /// Extra lines printed after the snippet (`= note: …`).
    pub notes: Vec<String>,
    /// Notes about another place in the source (the statement that caused this error), printed
    /// with their own location and snippet.
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn error(code: Code, span: Span, details: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, span, details.into())
    }

    pub fn warning(code: Code, span: Span, details: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, span, details.into())
    }

    pub fn note(code: Code, span: Span, details: impl Into<String>) -> Self {
        Self::new(Severity::Note, code, span, details.into())
    }

    fn new(severity: Severity, code: Code, span: Span, details: String) -> Self {
        let message = if details.is_empty() {
            code.phrase().to_string()
        } else {
            format!("{}: {}", code.phrase(), details)
        };
        Diagnostic {
            severity,
            code,
            message,
            span,
            notes: Vec::new(),
            related: Vec::new(),
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn with_note_at(mut self, span: Span, note: impl Into<String>) -> Self {
        self.related.push((span, note.into()));
        self
    }
}

/// Where every phase reports. Errors past `MAX_ERRORS` are counted but not kept, so hostile input
/// (a 10 MB file of garbage) cannot flood the terminal or memory.
#[derive(Default)]
pub struct Diagnostics {
    list: Vec<Diagnostic>,
    errors: usize,
    dropped: usize,
}

pub const MAX_ERRORS: usize = 100;

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        // Copies of one construct (an unrolled loop body, a function inlined twice) report the
        // same problem at the same place once.
        let repeated = self.list.iter().any(|o| {
            o.severity == d.severity
                && o.code == d.code
                && o.span == d.span
                && o.message == d.message
        });
        if repeated {
            return;
        }
        if d.severity == Severity::Error {
            self.errors += 1;
            if self.errors > MAX_ERRORS {
                self.dropped += 1;
                return;
            }
        }
        self.list.push(d);
    }

    pub fn error(&mut self, code: Code, span: Span, details: impl Into<String>) {
        self.push(Diagnostic::error(code, span, details));
    }

    pub fn warning(&mut self, code: Code, span: Span, details: impl Into<String>) {
        self.push(Diagnostic::warning(code, span, details));
    }

    pub fn note(&mut self, code: Code, span: Span, details: impl Into<String>) {
        self.push(Diagnostic::note(code, span, details));
    }

    pub fn has_errors(&self) -> bool {
        self.errors > 0
    }

    pub fn error_count(&self) -> usize {
        self.errors
    }

    /// Errors that were reported but not kept because of the flood limit.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter()
    }

    /// How many diagnostics are kept; with `since_mut`, what a step added.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The diagnostics kept after the first `start`.
    pub fn since_mut(&mut self, start: usize) -> impl Iterator<Item = &mut Diagnostic> {
        self.list.iter_mut().skip(start)
    }

    /// Drops the diagnostics after the first `start` that `drop` selects (consequences of one
    /// already reported, which would only repeat it).
    pub fn drop_since(&mut self, start: usize, drop: impl Fn(&Diagnostic) -> bool) {
        let mut i = start;
        while i < self.list.len() {
            if drop(&self.list[i]) {
                if self.list[i].severity == Severity::Error {
                    self.errors -= 1;
                }
                self.list.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Diagnostics in source order (file, then position), which is how people read them.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut v: Vec<&Diagnostic> = self.list.iter().collect();
        v.sort_by_key(|d| (d.span.file, d.span.lo));
        v
    }
}
