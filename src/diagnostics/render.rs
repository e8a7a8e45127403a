use super::{Diagnostic, Diagnostics, Severity, SourceMap};
use std::fmt::Write;

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// Human form: the contract line, then a snippet whose lines all start with a space (§18.1).
pub fn render_text(diags: &Diagnostics, sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in diags.sorted() {
        render_one(&mut out, d, sources);
    }
    if diags.dropped() > 0 {
        let _ = writeln!(out, "note: {} further errors not shown", diags.dropped());
    }
    out
}

fn render_one(out: &mut String, d: &Diagnostic, sources: &SourceMap) {
    if sources.is_empty() {
        let _ = writeln!(
            out,
            "<input>:1:1: {}[{}]: {}",
            severity_word(d.severity),
            d.code,
            d.message
        );
        return;
    }
    let file = sources.get(d.span.file);
    let (line, col) = file.line_col(d.span.lo);
    let _ = writeln!(
        out,
        "{}:{}:{}: {}[{}]: {}",
        file.display,
        line,
        col,
        severity_word(d.severity),
        d.code,
        d.message
    );
    snippet(out, sources, d.span);
    for note in &d.notes {
        let _ = writeln!(out, " = note: {note}");
    }
    for (span, note) in &d.related {
        let f = sources.get(span.file);
        let (line, col) = f.line_col(span.lo);
        let _ = writeln!(out, " = note: {note} ({}:{line}:{col})", f.display);
        snippet(out, sources, *span);
    }
}

/// The source line of `span` with a caret line under it; every line starts with a space (§18.1).
fn snippet(out: &mut String, sources: &SourceMap, span: crate::diagnostics::Span) {
    let file = sources.get(span.file);
    // A file that could not be read stands in empty: there is nothing to show.
    if file.text.is_empty() {
        return;
    }
    let (line, col) = file.line_col(span.lo);
    let text = file.line_text(line);
    // Binary or minified input can have absurd lines; a snippet of them helps nobody.
    if text.len() <= 400 {
        let gutter = line.to_string().len();
        let (end_line, end_col) = file.line_col(span.hi.max(span.lo));
        let width = if end_line == line {
            end_col.saturating_sub(col).max(1)
        } else {
            text.chars().count() + 1 - col.min(text.chars().count() + 1)
        };
        let _ = writeln!(out, " {:gutter$} |", "");
        let _ = writeln!(out, " {line} | {}", text.replace('\t', " "));
        let _ = writeln!(
            out,
            " {:gutter$} | {}{}",
            "",
            " ".repeat(col - 1),
            "^".repeat(width.max(1))
        );
    }
}

/// Editor/CI form: one JSON object per diagnostic per line.
pub fn render_json(diags: &Diagnostics, sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in diags.sorted() {
        let (file, (line, col), (end_line, end_col)) = if sources.is_empty() {
            ("<input>".to_string(), (1, 1), (1, 1))
        } else {
            let f = sources.get(d.span.file);
            (
                f.display.clone(),
                f.line_col(d.span.lo),
                f.line_col(d.span.hi),
            )
        };
        let related: Vec<serde_json::Value> = d
            .related
            .iter()
            .map(|(span, note)| {
                let (f, (line, col)) = if sources.is_empty() {
                    ("<input>".to_string(), (1, 1))
                } else {
                    let f = sources.get(span.file);
                    (f.display.clone(), f.line_col(span.lo))
                };
                serde_json::json!({ "message": note, "file": f, "line": line, "column": col })
            })
            .collect();
        let mut v = serde_json::json!({
            "severity": severity_word(d.severity),
            "code": d.code.to_string(),
            "message": d.message,
            "file": file,
            "line": line,
            "column": col,
            "end_line": end_line,
            "end_column": end_col,
            "notes": d.notes,
        });
        // Only diagnostics that point at a second place carry `related` (file, line, column, message).
        if !related.is_empty() {
            v["related"] = serde_json::Value::Array(related);
        }
        let _ = writeln!(out, "{v}");
    }
    out
}
