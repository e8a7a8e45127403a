//! Writing artifacts without losing anything: an output never replaces one of the unit's source
//! files, is never written through a symlink (each file is written under a fresh name in its
//! directory and renamed over the target, which replaces a symlink instead of following it), and
//! goes only into directories owned by the user running ksc (or by root). Streams are the
//! exception: `-o /dev/null`, a FIFO, or `/dev/stdout` (a link root owns) are written into, never
//! replaced.

use crate::diagnostics::SourceMap;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The files a unit was read from, by device and inode (so hard links and other spellings of a
/// path are recognised).
pub struct Inputs {
    files: Vec<(u64, u64, PathBuf)>,
}

impl Inputs {
    pub fn of(sources: &SourceMap) -> Inputs {
        let files = sources
            .files()
            .filter_map(|f| {
                let meta = std::fs::metadata(&f.path).ok()?;
                Some((meta.dev(), meta.ino(), f.path.clone()))
            })
            .collect();
        Inputs { files }
    }

    /// The input that `path` names, if it names one.
    fn named_by(&self, path: &Path) -> Option<&Path> {
        let meta = std::fs::metadata(path).ok()?;
        self.files
            .iter()
            .find(|(dev, ino, _)| (*dev, *ino) == (meta.dev(), meta.ino()))
            .map(|(_, _, p)| p.as_path())
    }

    /// Refuses `path` as an output when it is one of the inputs (itself, or a symlink or hard link
    /// to one).
    pub fn check_output(&self, path: &Path) -> Result<(), String> {
        match self.named_by(path) {
            Some(input) => Err(format!(
                "refusing to write {}: it is the input file {}",
                path.display(),
                input.display()
            )),
            None => Ok(()),
        }
    }
}

/// How an artifact is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Data,
    Executable,
}

impl Mode {
    /// Permission bits before the umask.
    fn bits(self) -> u32 {
        match self {
            Mode::Data => 0o666,
            Mode::Executable => 0o777,
        }
    }
}

/// Creates `dir` with its parents, or checks an existing one: it must be a directory owned by
/// the user running ksc, or by root (a directory another user owns could be changed under the
/// build).
pub fn prepare_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot use {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!(
            "refusing to write into {}: it belongs to another user (uid {}, you are uid {me})",
            dir.display(),
            meta.uid()
        ));
    }
    Ok(())
}

/// Writes `bytes` to `path` under the rules above.
pub fn write_file(path: &Path, bytes: &[u8], mode: Mode, inputs: &Inputs) -> Result<(), String> {
    replace_with(path, mode, inputs, |tmp| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(tmp)
            .map_err(|e| e.to_string())?;
        f.write_all(bytes).map_err(|e| e.to_string())
    })
}

/// Makes `path` by letting `make` fill a fresh file in the same directory (a path it may also
/// replace, as a linker does), then renames that over `path`. A failure leaves `path` as it was
/// and removes the fresh file.
pub fn replace_with(
    path: &Path,
    mode: Mode,
    inputs: &Inputs,
    make: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    inputs.check_output(path)?;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(format!(
            "cannot write {}: it is a directory",
            path.display()
        ));
    }
    if stream(path)? {
        return write_into_stream(path, make);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    // Dropping the guard removes the fresh file on every early return.
    let tmp = tmp.into_temp_path();
    make(&tmp).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let umask = current_umask();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode.bits() & !umask))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| format!("cannot write {}: {}", path.display(), e.error))?;
    Ok(())
}

/// Whether `path` is a stream to write into rather than a file to replace: a character device,
/// FIFO or socket, itself or behind a symlink the user or root owns (`/dev/stdout`; a link
/// another user planted is replaced, not followed). A block device is refused.
fn stream(path: &Path) -> Result<bool, String> {
    let Ok(link) = std::fs::symlink_metadata(path) else {
        return Ok(false);
    };
    let meta = if link.file_type().is_symlink() {
        let me = unsafe { libc::geteuid() };
        if link.uid() != me && link.uid() != 0 {
            return Ok(false);
        }
        match std::fs::metadata(path) {
            Ok(m) => m,
            Err(_) => return Ok(false),
        }
    } else {
        link
    };
    let kind = meta.file_type();
    if kind.is_block_device() {
        return Err(format!(
            "refusing to write {}: it is a block device",
            path.display()
        ));
    }
    Ok(kind.is_char_device() || kind.is_fifo() || kind.is_socket())
}

/// Lets `make` fill a private temporary file, then copies it into the stream at `path`.
fn write_into_stream(
    path: &Path,
    make: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let fail = |e: String| format!("cannot write {}: {e}", path.display());
    let tmp = tempfile::Builder::new()
        .prefix("ksc-out-")
        .tempfile()
        .map_err(|e| fail(e.to_string()))?
        .into_temp_path();
    make(&tmp).map_err(fail)?;
    let mut from = std::fs::File::open(&tmp).map_err(|e| fail(e.to_string()))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| fail(e.to_string()))?;
    std::io::copy(&mut from, &mut to).map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// The process's umask (read by setting it and putting it back: there is no other way).
fn current_umask() -> u32 {
    unsafe {
        let mask = libc::umask(0o022);
        libc::umask(mask);
        mask as u32
    }
}
