use std::path::{Path, PathBuf};

/// Index of a file in the `SourceMap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileId(pub u32);

/// A byte range in one source file. Every AST node carries one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub lo: u32,
    pub hi: u32,
}

impl Span {
    pub fn new(file: FileId, lo: usize, hi: usize) -> Self {
        Span {
            file,
            lo: lo as u32,
            hi: hi as u32,
        }
    }

    /// The smallest span covering both (same file assumed).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            lo: self.lo.min(other.lo),
            hi: self.hi.max(other.hi),
        }
    }

    /// The empty span at the start of this one.
    pub fn start(self) -> Span {
        Span {
            hi: self.lo,
            ..self
        }
    }
}

pub struct SourceFile {
    /// The path as the user named it (or as resolved from an include), used in diagnostics.
    pub display: String,
    /// The path used to open related files.
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<u32>,
}

impl SourceFile {
    fn new(display: String, path: PathBuf, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i as u32 + 1),
        );
        SourceFile {
            display,
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and column; the column counts Unicode scalar values (§2.1).
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = offset.min(self.text.len() as u32);
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line] as usize;
        let mut end = offset as usize;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        (line + 1, self.text[start..end].chars().count() + 1)
    }

    /// The text of a 1-based line, without its terminator.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1] as usize;
        let end = self
            .line_starts
            .get(line)
            .map(|&e| e as usize)
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The byte range of a 1-based line's text, from its first non-blank character.
    pub fn line_range(&self, line: usize) -> Option<(usize, usize)> {
        if line == 0 || line > self.line_starts.len() {
            return None;
        }
        let start = self.line_starts[line - 1] as usize;
        let text = self.line_text(line);
        let indent = text.len() - text.trim_start().len();
        Some((start + indent, start + text.len()))
    }
}

#[derive(Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, display: String, path: &Path, text: String) -> FileId {
        self.files
            .push(SourceFile::new(display, path.to_path_buf(), text));
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter()
    }

    /// The file whose displayed path is `name` or ends with `/name` (verifier logs carry only the
    /// file name of the compile unit).
    pub fn find_named(&self, name: &str) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| f.display == name || f.display.ends_with(&format!("/{name}")))
            .map(|i| FileId(i as u32))
    }

    /// The empty span at 1-based `line` and `col` of the file displayed as `name` (the IR's
    /// source positions); `None` when no such file or line exists.
    pub fn span_at(&self, name: &str, line: u32, col: u32) -> Option<Span> {
        let id = self.files.iter().position(|f| f.display == name)?;
        let file = &self.files[id];
        let start = *file.line_starts.get((line as usize).checked_sub(1)?)? as usize;
        let offset = (start + (col.max(1) as usize - 1)).min(file.text.len());
        Some(Span::new(FileId(id as u32), offset, offset))
    }

    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| f.path == path)
            .map(|i| FileId(i as u32))
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}
