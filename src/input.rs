//! Reading the files ksc is given (sources, headers, modules, textual IR, kernel BTF) so that hostile
//! paths cannot hang or exhaust the compiler: only regular files are read, never FIFOs (which block),
//! devices (`/dev/zero` never ends) or directories, and sources are capped in size
//! (docs/language.md §19).

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest source file (`.ks`, `.kh`, `.ksir`) ksc reads: far beyond any real program, and
/// small enough that reading it cannot exhaust memory.
pub const MAX_SOURCE_BYTES: u64 = 64 << 20;

/// Why a file could not be read.
#[derive(Debug)]
pub enum InputError {
    /// The operating system refused (not found, permission denied, …).
    Io(std::io::Error),
    /// The path names something other than a regular file; the word says what ("a directory").
    NotRegular(&'static str),
    /// The file is larger than the limit (bytes).
    TooLarge(u64),
}

impl InputError {
    /// True when the path names nothing (the `file not found` code applies).
    pub fn is_not_found(&self) -> bool {
        matches!(self, InputError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::Io(e) => write!(f, "{e}"),
            InputError::NotRegular(what) => {
                write!(f, "is {what}, not a regular file")
            }
            InputError::TooLarge(limit) => {
                write!(f, "is larger than {} MiB", limit >> 20)
            }
        }
    }
}

impl From<InputError> for std::io::Error {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Io(e) => e,
            other => std::io::Error::new(std::io::ErrorKind::InvalidInput, other.to_string()),
        }
    }
}

fn kind_of(t: std::fs::FileType) -> Option<&'static str> {
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

/// Reads a regular file whole, refusing anything else and files longer than `limit` bytes (no
/// limit with `None`).
pub fn read_regular(path: &Path, limit: Option<u64>) -> Result<Vec<u8>, InputError> {
    // Look before opening: opening a FIFO blocks until a writer comes, and opening a device can
    // have effects of its own.
    let meta = std::fs::metadata(path).map_err(InputError::Io)?;
    if let Some(what) = kind_of(meta.file_type()) {
        return Err(InputError::NotRegular(what));
    }
    // The path may have been replaced since: never block on open, and look again at what was
    // opened.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(InputError::Io)?;
    let meta = file.metadata().map_err(InputError::Io)?;
    if let Some(what) = kind_of(meta.file_type()) {
        return Err(InputError::NotRegular(what));
    }
    let cap = limit.unwrap_or(u64::MAX);
    if meta.len() > cap {
        return Err(InputError::TooLarge(cap));
    }
    // The size can change under us (or lie, as in /proc): read at most one byte past the limit.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(InputError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(InputError::TooLarge(cap));
    }
    Ok(bytes)
}
