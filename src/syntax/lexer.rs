//! Lexical validation before parsing (docs/language.md §2).
//!
//! pest reports every failure as "expected …", which would turn a stray `?` or a bad escape into a
//! generic syntax error. This pass walks the text once with the real token rules and reports
//! E0001–E0004 at the offending literal or character, and bounds bracket nesting so the recursive
//! parser can never exhaust the stack on hostile input.

use crate::diagnostics::{Code, Diagnostics, FileId, Span};
use std::borrow::Cow;
use std::ops::Range;

/// Deepest `(`/`[`/`{` nesting accepted. Real programs stay far below; the parser and every later
/// recursive pass rely on this bound.
pub const MAX_NESTING: usize = 200;

/// What the scan learnt besides errors.
#[derive(Default)]
pub struct LexFacts {
    /// Spans of `/* */` comments (an extension, rejected under `--compat`).
    pub block_comments: Vec<Span>,
    /// Byte ranges of every comment, line and block.
    pub comments: Vec<Range<usize>>,
}

/// The text the grammar parses: `text` with every comment blanked to spaces (newlines kept), so
/// byte offsets and lines are unchanged. The scan has already told comments from string contents;
/// leaving them to the grammar would make pest try a comment at every token boundary, which was a
/// third of its parse time.
pub fn blank_comments<'t>(text: &'t str, facts: &LexFacts) -> Cow<'t, str> {
    if facts.comments.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut bytes = text.as_bytes().to_vec();
    for r in &facts.comments {
        for b in &mut bytes[r.clone()] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    // Whole comments, multi-byte characters included, became ASCII, so the text is still UTF-8.
    Cow::Owned(String::from_utf8(bytes).expect("blanking whole comments keeps UTF-8"))
}

pub fn validate(file: FileId, text: &str, diags: &mut Diagnostics) -> LexFacts {
    let mut lx = Lexer {
        file,
        bytes: text.as_bytes(),
        pos: 0,
        diags,
        facts: LexFacts::default(),
        depth: 0,
    };
    lx.run();
    lx.facts
}

struct Lexer<'a> {
    file: FileId,
    bytes: &'a [u8],
    pos: usize,
    diags: &'a mut Diagnostics,
    facts: LexFacts,
    depth: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

const PUNCT: &[u8] = b"+-*/%=!<>&|^~.,:;@(){}[]";

impl Lexer<'_> {
    fn span(&self, lo: usize, hi: usize) -> Span {
        Span::new(self.file, lo, hi)
    }

    fn peek(&self, k: usize) -> Option<u8> {
        self.bytes.get(self.pos + k).copied()
    }

    fn run(&mut self) {
        while let Some(b) = self.peek(0) {
            let start = self.pos;
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'/' if self.peek(1) == Some(b'/') => self.skip_line_comment(),
                b'/' if self.peek(1) == Some(b'*') => self.block_comment(),
                b'"' => self.string_literal(),
                b'\'' => self.char_literal(),
                b'0'..=b'9' => self.number(),
                _ if is_ident_start(b) => {
                    while self.peek(0).is_some_and(is_ident_char) {
                        self.pos += 1;
                    }
                }
                b'(' | b'[' | b'{' => {
                    self.depth += 1;
                    self.pos += 1;
                    if self.depth == MAX_NESTING + 1 {
                        let sp = self.span(start, start + 1);
                        self.diags.error(
                            Code::E0010,
                            sp,
                            format!("brackets nested deeper than {MAX_NESTING} levels"),
                        );
                    }
                }
                b')' | b']' | b'}' => {
                    self.depth = self.depth.saturating_sub(1);
                    self.pos += 1;
                }
                _ if PUNCT.contains(&b) => self.pos += 1,
                _ => {
                    // One diagnostic per unexpected character, never per byte of it.
                    let len = utf8_len(b);
                    let hi = (start + len).min(self.bytes.len());
                    let shown = String::from_utf8_lossy(&self.bytes[start..hi]).into_owned();
                    let what = if b == b'?' {
                        "`?` (there is no conditional operator; use if/else or match)".to_string()
                    } else if b.is_ascii_graphic() {
                        format!("`{shown}`")
                    } else if b < 0x80 {
                        format!("byte 0x{b:02x}")
                    } else {
                        format!(
                            "non-ASCII `{}` outside a comment or string",
                            shown.escape_debug()
                        )
                    };
                    let sp = self.span(start, hi);
                    self.diags.error(Code::E0001, sp, what);
                    self.pos = hi;
                }
            }
            if self.diags.error_count() > 100 {
                return;
            }
        }
    }

    fn skip_line_comment(&mut self) {
        let start = self.pos;
        while self.peek(0).is_some_and(|b| b != b'\n') {
            self.pos += 1;
        }
        self.facts.comments.push(start..self.pos);
    }

    fn block_comment(&mut self) {
        let start = self.pos;
        self.pos += 2;
        loop {
            match self.peek(0) {
                None => {
                    let sp = self.span(start, start + 2);
                    self.diags
                        .error(Code::E0002, sp, "block comment is never closed with `*/`");
                    return;
                }
                Some(b'*') if self.peek(1) == Some(b'/') => {
                    self.pos += 2;
                    self.facts.block_comments.push(self.span(start, self.pos));
                    self.facts.comments.push(start..self.pos);
                    return;
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Validates one escape after the backslash at `self.pos`; returns false when it is invalid.
    fn escape(&mut self) -> bool {
        self.pos += 1; // the backslash
        match self.peek(0) {
            Some(b'n' | b't' | b'r' | b'\\' | b'\'' | b'"' | b'0') => {
                self.pos += 1;
                true
            }
            Some(b'x') => {
                let ok = self.peek(1).is_some_and(|b| b.is_ascii_hexdigit())
                    && self.peek(2).is_some_and(|b| b.is_ascii_hexdigit());
                self.pos += if ok { 3 } else { 1 };
                ok
            }
            Some(b) => {
                self.pos += utf8_len(b);
                false
            }
            None => false,
        }
    }

    fn string_literal(&mut self) {
        let start = self.pos;
        self.pos += 1;
        let mut bad_escape: Option<usize> = None;
        loop {
            match self.peek(0) {
                None => {
                    let sp = self.span(start, start + 1);
                    self.diags
                        .error(Code::E0002, sp, "string literal is never closed with `\"`");
                    return;
                }
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let at = self.pos;
                    if !self.escape() && bad_escape.is_none() {
                        bad_escape = Some(at);
                    }
                }
                Some(_) => self.pos += 1,
            }
        }
        if let Some(at) = bad_escape {
            let esc = String::from_utf8_lossy(&self.bytes[at..(at + 2).min(self.bytes.len())])
                .into_owned();
            let sp = self.span(start, self.pos);
            self.diags.error(
                Code::E0003,
                sp,
                format!("unknown escape `{esc}` (valid: \\n \\t \\r \\\\ \\' \\\" \\0 \\xHH)"),
            );
        }
    }

    fn char_literal(&mut self) {
        let start = self.pos;
        self.pos += 1;
        let mut units = 0usize;
        let mut bad = false;
        loop {
            match self.peek(0) {
                None | Some(b'\n') => {
                    let sp = self.span(start, start + 1);
                    self.diags.error(
                        Code::E0002,
                        sp,
                        "character literal is never closed with `'`",
                    );
                    return;
                }
                Some(b'\'') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    bad |= !self.escape();
                    units += 1;
                }
                Some(_) => {
                    self.pos += 1;
                    units += 1;
                }
            }
        }
        let sp = self.span(start, self.pos);
        if bad {
            self.diags
                .error(Code::E0003, sp, "unknown escape in character literal");
        } else if units != 1 {
            let why = if units == 0 {
                "empty character literal"
            } else {
                "a character literal must denote exactly one byte"
            };
            self.diags.error(Code::E0003, sp, why);
        }
    }

    fn number(&mut self) {
        let start = self.pos;
        while self.peek(0).is_some_and(is_ident_char) {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or("");
        if let Err(why) = parse_int_literal(text) {
            let sp = self.span(start, self.pos);
            self.diags.error(Code::E0004, sp, why);
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Decodes an integer literal (§2.4): decimal, `0x`, `0b`, `0o`, with single `_` separators
/// between digits, at most 2^64−1.
pub fn parse_int_literal(text: &str) -> Result<u64, String> {
    let lower = text.to_ascii_lowercase();
    let (radix, digits) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r)
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() {
        return Err(format!("`{text}` has no digits"));
    }
    if digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return Err(format!("`{text}`: `_` may only stand between two digits"));
    }
    let mut value: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c
            .to_digit(radix)
            .ok_or_else(|| format!("`{c}` is not a valid digit in `{text}`"))?;
        value = value
            .checked_mul(radix as u64)
            .and_then(|v| v.checked_add(d as u64))
            .ok_or_else(|| format!("`{text}` does not fit in 64 bits"))?;
    }
    Ok(value)
}

/// Decodes the body of a string or character literal that `validate` accepted.
pub fn unescape(body: &str) -> Vec<u8> {
    let b = body.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let (byte, used) = match b[i + 1] {
                b'n' => (b'\n', 2),
                b't' => (b'\t', 2),
                b'r' => (b'\r', 2),
                b'0' => (0, 2),
                b'x' if i + 3 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or("0");
                    (u8::from_str_radix(hex, 16).unwrap_or(0), 4)
                }
                other => (other, 2),
            };
            out.push(byte);
            i += used;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_literals() {
        assert_eq!(parse_int_literal("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_int_literal("0xFFFF_0000"), Ok(0xFFFF_0000));
        assert_eq!(parse_int_literal("0o644"), Ok(0o644));
        assert_eq!(parse_int_literal("0b1010"), Ok(10));
        assert_eq!(parse_int_literal("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "1__0",
            "1_",
            "0x_1",
            "0b12",
            "0o8",
            "18446744073709551616",
            "12ab",
            "0x",
        ] {
            assert!(parse_int_literal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"a\n\x41\0\\"), b"a\nA\0\\".to_vec());
    }

    fn codes(src: &str) -> Vec<String> {
        let mut d = Diagnostics::new();
        validate(FileId(0), src, &mut d);
        d.iter().map(|d| d.code.to_string()).collect()
    }

    #[test]
    fn lexical_errors() {
        assert_eq!(codes("var x = a ? 1 : 2"), ["E0001"]);
        assert_eq!(codes("\"abc"), ["E0002"]);
        assert_eq!(codes("/* never"), ["E0002"]);
        assert_eq!(codes(r#""\q""#), ["E0003"]);
        assert_eq!(codes("''"), ["E0003"]);
        assert_eq!(codes("'ab'"), ["E0003"]);
        assert_eq!(codes("1__0"), ["E0004"]);
        assert!(codes("var s = \"a\\tb\" // ok ?\n/* ? */").is_empty());
        assert_eq!(codes(&"(".repeat(MAX_NESTING + 5)), ["E0010"]);
    }

    #[test]
    fn comments_are_blanked_but_strings_and_offsets_kept() {
        let src = "var s = \"// not a comment\" // gone ü\n/* a\nb */x";
        let mut d = Diagnostics::new();
        let facts = validate(FileId(0), src, &mut d);
        let blank = blank_comments(src, &facts);
        assert_eq!(blank.len(), src.len());
        // `// gone ü` is ten bytes; each comment line keeps its length and its newline.
        let expected = format!(
            "var s = \"// not a comment\" {}\n{}\n{}x",
            " ".repeat(10),
            " ".repeat(4),
            " ".repeat(4)
        );
        assert_eq!(blank, expected);
    }
}
