//! The bytes of a BTF file. The running kernel's own BTF files are mapped when the kernel allows
//! it (Linux 6.16 and later): sysfs hands them out a page per read(), so reading the ~5 MB of
//! vmlinux BTF costs ~1,300 system calls and as many page faults, while a mapping costs one call.
//! Any other file, and the kernel's on older kernels, is read.

use std::ops::Deref;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;

/// Where the kernel publishes its BTF (vmlinux and one file per module).
const KERNEL_BTF_DIR: &str = "/sys/kernel/btf";

pub(crate) enum Bytes {
    Owned(Vec<u8>),
    /// A read-only private mapping of a kernel BTF file, which cannot change while mapped.
    Mapped {
        ptr: NonNull<u8>,
        len: usize,
    },
}

// The mapping is read-only and owned by this value alone.
unsafe impl Send for Bytes {}
unsafe impl Sync for Bytes {}

impl Bytes {
    pub(crate) fn read(path: &Path) -> std::io::Result<Bytes> {
        if path.starts_with(KERNEL_BTF_DIR) {
            if let Some(mapped) = map(path) {
                return Ok(mapped);
            }
        }
        // Kernel BTF has no size limit of its own (a vmlinux ELF can be large), but it must be a
        // file: `--btf /dev/zero` would never end.
        Ok(Bytes::Owned(crate::input::read_regular(path, None)?))
    }
}

fn map(path: &Path) -> Option<Bytes> {
    let file = std::fs::File::open(path).ok()?;
    let len = usize::try_from(file.metadata().ok()?.len())
        .ok()
        .filter(|&l| l > 0)?;
    // SAFETY: a fresh read-only private mapping of an open file; failure is MAP_FAILED. The
    // mapping outlives the descriptor, as mmap(2) allows.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    NonNull::new(p.cast()).map(|ptr| Bytes::Mapped { ptr, len })
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            // SAFETY: `len` readable bytes stay mapped until drop; kernel BTF files are immutable.
            Bytes::Mapped { ptr, len } => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), *len) },
        }
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        if let Bytes::Mapped { ptr, len } = self {
            // SAFETY: unmaps exactly the mapping made in `map`, once.
            unsafe { libc::munmap(ptr.as_ptr().cast(), *len) };
        }
    }
}
