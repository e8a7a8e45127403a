//! Every unsafe call into libbpf lives here. `load_once` opens, uses and closes its own
//! `bpf_object` before returning; a `LiveObject` (test runs) owns one until dropped. No libbpf
//! pointer escapes either.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Once;

use libbpf_sys as sys;

/// One program of an object after a load attempt.
pub(super) struct ProgInfo {
    pub name: String,
    pub section: String,
    /// Instruction count as libbpf last saw it (after relocation if the program was loaded).
    pub insns: usize,
    /// The kernel's verifier log; empty if the program was not loaded or the kernel refused it
    /// before the verifier ran.
    pub log: String,
}

/// The result of one `bpf_object__load` of a freshly opened object.
pub(super) struct Attempt {
    /// `None` if every selected program loaded, else the errno libbpf returned.
    pub errno: Option<i32>,
    pub progs: Vec<ProgInfo>,
    /// libbpf's warnings and info messages during open and load.
    pub messages: Vec<String>,
}

/// `bpf_object__open_mem` failed: errno and libbpf's messages.
pub(super) struct OpenFailure {
    pub errno: i32,
    pub messages: Vec<String>,
}

/// Creates and closes a one-entry array map: the cheapest proof that bpf() works for us.
/// The error is an errno.
pub(super) fn probe_bpf() -> Result<(), i32> {
    install_print_capture();
    // SAFETY: plain syscall wrapper; a NULL name and NULL opts are allowed.
    let fd = unsafe {
        sys::bpf_map_create(
            sys::BPF_MAP_TYPE_ARRAY,
            std::ptr::null(),
            4,
            4,
            1,
            std::ptr::null(),
        )
    };
    if fd < 0 {
        // libbpf returns -errno (and sets errno) in its 1.0 error mode.
        return Err(-fd);
    }
    // SAFETY: the fd was just created and nothing else owns it; dropping closes it.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
}

/// Opens `elf`, loads the programs `wanted(i)` selects (the i-th program in object order), each
/// with verifier `log_level` into its own `log_size`-byte buffer, reports them and closes the
/// object. Maps are always created (libbpf's default).
pub(super) fn load_once(
    elf: &[u8],
    object_name: &str,
    wanted: &dyn Fn(usize) -> bool,
    log_level: u32,
    log_size: usize,
) -> Result<Attempt, OpenFailure> {
    install_print_capture();
    let (result, messages) = capture_messages(|| {
        let mut object = open(elf, object_name)?;
        let progs = programs(object.ptr);
        object.logs = (0..progs.len())
            .map(|i| vec![0u8; if wanted(i) { log_size } else { 0 }])
            .collect();
        for (i, (&prog, buf)) in progs.iter().zip(&mut object.logs).enumerate() {
            // SAFETY: `prog` belongs to the open object; `buf` is freed only after the close.
            unsafe {
                sys::bpf_program__set_autoload(prog, wanted(i));
                if wanted(i) {
                    sys::bpf_program__set_log_level(prog, log_level);
                    sys::bpf_program__set_log_buf(prog, buf.as_mut_ptr().cast(), buf.len() as _);
                }
            }
        }
        // SAFETY: the object is open and not yet loaded.
        let ret = unsafe { sys::bpf_object__load(object.ptr) };
        let infos = prog_infos(&object, &progs);
        drop(object);
        Ok(Attempt {
            errno: (ret < 0).then_some(-ret),
            progs: infos,
            messages: Vec::new(),
        })
    });
    match result {
        Ok(attempt) => Ok(Attempt {
            messages,
            ..attempt
        }),
        Err(errno) => Err(OpenFailure { errno, messages }),
    }
}

/// Opens `elf` with its pin paths cleared (nothing is ever pinned; §1.1). The error is an errno.
fn open(elf: &[u8], object_name: &str) -> Result<OpenObject, i32> {
    let name = CString::new(object_name.replace('\0', "")).unwrap_or_default();
    let opts = sys::bpf_object_open_opts {
        sz: std::mem::size_of::<sys::bpf_object_open_opts>() as _,
        // NULL lets libbpf make up a name.
        object_name: if name.is_empty() {
            std::ptr::null()
        } else {
            name.as_ptr()
        },
        ..Default::default()
    };
    // SAFETY: `opts` and `name` are valid for the call (libbpf copies the name). libbpf 1.7 parses
    // `elf` during the open and drops its reference to the buffer before returning.
    let obj = unsafe { sys::bpf_object__open_mem(elf.as_ptr().cast(), elf.len() as _, &opts) };
    if obj.is_null() {
        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    let object = OpenObject {
        ptr: obj,
        logs: Vec::new(),
    };
    unpin_maps(object.ptr);
    // SAFETY: the object is open and not yet loaded, as the function requires.
    unsafe { ksrt_adapt_struct_ops(object.ptr) };
    Ok(object)
}

fn prog_infos(object: &OpenObject, progs: &[*mut sys::bpf_program]) -> Vec<ProgInfo> {
    progs
        .iter()
        .zip(&object.logs)
        .map(|(&prog, log)| {
            // SAFETY: `prog` is still owned by the open object; the strings are NUL-terminated.
            unsafe {
                ProgInfo {
                    name: c_string(sys::bpf_program__name(prog)),
                    section: c_string(sys::bpf_program__section_name(prog)),
                    insns: sys::bpf_program__insn_cnt(prog) as usize,
                    log: log_text(log),
                }
            }
        })
        .collect()
}

/// An object whose programs and maps all live in the kernel until it is dropped.
pub(super) struct LiveObject {
    object: OpenObject,
}

/// A map of a `LiveObject` (borrowing it, so the handle cannot outlive the object) and its shape.
#[derive(Clone, Copy)]
pub(super) struct MapInfo<'a> {
    ptr: *const sys::bpf_map,
    _object: std::marker::PhantomData<&'a LiveObject>,
    pub map_type: u32,
    pub value_size: usize,
}

/// Opens and loads every program of `elf`, each with verifier `log_level` into a `log_size`-byte
/// buffer. On failure the object is closed and the `Attempt` says what happened.
pub(super) fn load_live(
    elf: &[u8],
    object_name: &str,
    log_level: u32,
    log_size: usize,
) -> Result<Result<LiveObject, Attempt>, OpenFailure> {
    install_print_capture();
    let (result, messages) = capture_messages(|| {
        let mut object = open(elf, object_name)?;
        let progs = programs(object.ptr);
        object.logs = progs.iter().map(|_| vec![0u8; log_size]).collect();
        for (&prog, buf) in progs.iter().zip(&mut object.logs) {
            // SAFETY: `prog` belongs to the open object; `buf` is freed only after the close.
            unsafe {
                sys::bpf_program__set_log_level(prog, log_level);
                sys::bpf_program__set_log_buf(prog, buf.as_mut_ptr().cast(), buf.len() as _);
            }
        }
        // SAFETY: the object is open and not yet loaded.
        let ret = unsafe { sys::bpf_object__load(object.ptr) };
        if ret == 0 {
            return Ok(Ok(LiveObject { object }));
        }
        let progs = prog_infos(&object, &progs);
        Ok(Err(Attempt {
            errno: Some(-ret),
            progs,
            messages: Vec::new(),
        }))
    });
    match result {
        Ok(Ok(live)) => Ok(Ok(live)),
        Ok(Err(attempt)) => Ok(Err(Attempt {
            messages,
            ..attempt
        })),
        Err(errno) => Err(OpenFailure { errno, messages }),
    }
}

impl LiveObject {
    /// A loaded program's fd (owned by libbpf, valid while `self` lives) and ELF section.
    pub fn program(&self, name: &str) -> Option<(BorrowedFd<'_>, String)> {
        let name = CString::new(name).ok()?;
        // SAFETY: the object is open; the program pointer is owned by it.
        unsafe {
            let prog = sys::bpf_object__find_program_by_name(self.object.ptr, name.as_ptr());
            if prog.is_null() {
                return None;
            }
            let fd = sys::bpf_program__fd(prog);
            // SAFETY (borrow): libbpf closes the fd only in bpf_object__close, i.e. after `self`.
            (fd >= 0).then(|| {
                (
                    BorrowedFd::borrow_raw(fd),
                    c_string(sys::bpf_program__section_name(prog)),
                )
            })
        }
    }

    /// A loaded program's instruction counts: in the object (after libbpf's relocations), after
    /// the kernel's rewrite (xlated), and as the verifier processed them.
    pub fn program_counts(&self, name: &str) -> Option<(u32, u32, u32)> {
        use std::os::fd::AsRawFd;
        let cname = CString::new(name).ok()?;
        // SAFETY: the object is open; the program pointer is owned by it; the info struct is
        // written by the kernel up to the size we pass.
        unsafe {
            let prog = sys::bpf_object__find_program_by_name(self.object.ptr, cname.as_ptr());
            if prog.is_null() {
                return None;
            }
            let object_insns = sys::bpf_program__insn_cnt(prog) as u32;
            let mut info: sys::bpf_prog_info = std::mem::zeroed();
            let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
            let fd = self.program(name)?.0.as_raw_fd();
            if sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) != 0 {
                return None;
            }
            Some((object_insns, info.xlated_prog_len / 8, info.verified_insns))
        }
    }

    /// A map by name; ".bss", ".data", ".rodata" name the global-data maps by their section.
    pub fn map(&self, name: &str) -> Option<MapInfo<'_>> {
        let name = CString::new(name).ok()?;
        // SAFETY: the object is open; the map pointer is owned by it and used only through `self`.
        unsafe {
            let map = sys::bpf_object__find_map_by_name(self.object.ptr, name.as_ptr());
            (!map.is_null()).then(|| MapInfo {
                ptr: map,
                _object: std::marker::PhantomData,
                map_type: sys::bpf_map__type(map) as u32,
                value_size: sys::bpf_map__value_size(map) as usize,
            })
        }
    }
}

impl MapInfo<'_> {
    /// The key after `key` (the first key when `None`), or `None` at the end.
    pub fn next_key(&self, key: Option<&[u8]>, key_size: usize) -> Option<Vec<u8>> {
        let mut next = vec![0u8; key_size];
        // SAFETY: `self` borrows a live object; libbpf reads `key_size` bytes of `key` (or takes
        // NULL for the first key) and writes `key_size` bytes to `next`.
        let ret = unsafe {
            let k = key.map_or(std::ptr::null(), |k| k.as_ptr().cast());
            sys::bpf_map__get_next_key(self.ptr, k, next.as_mut_ptr().cast(), key_size as _)
        };
        (ret == 0).then_some(next)
    }

    pub fn key_size(&self) -> usize {
        // SAFETY: the map pointer is valid while `self` lives.
        unsafe { sys::bpf_map__key_size(self.ptr) as usize }
    }

    /// `Ok(false)` if the key is absent. libbpf checks the key and value sizes (percpu values
    /// are one 8-byte-aligned slot per possible CPU). The error is an errno.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<bool, i32> {
        // SAFETY: `self` borrows a live object, so the map pointer is valid; libbpf reads
        // `key.len()` and writes at most `value.len()` bytes after checking both against the map's sizes.
        let ret = unsafe {
            sys::bpf_map__lookup_elem(
                self.ptr,
                key.as_ptr().cast(),
                key.len() as _,
                value.as_mut_ptr().cast(),
                value.len() as _,
                0,
            )
        };
        match ret {
            0 => Ok(true),
            e if -e == ENOENT => Ok(false),
            e => Err(-e),
        }
    }

    /// BPF_ANY update; the error is an errno.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), i32> {
        // SAFETY: as in `lookup`; libbpf only reads both buffers.
        let ret = unsafe {
            sys::bpf_map__update_elem(
                self.ptr,
                key.as_ptr().cast(),
                key.len() as _,
                value.as_ptr().cast(),
                value.len() as _,
                0,
            )
        };
        if ret < 0 {
            Err(-ret)
        } else {
            Ok(())
        }
    }
}

const ENOENT: i32 = 2;

/// The number of possible CPUs (the slot count of percpu map values); the error is an errno.
pub(super) fn possible_cpus() -> Result<usize, i32> {
    // SAFETY: no arguments; libbpf caches the answer.
    let n = unsafe { sys::libbpf_num_possible_cpus() };
    if n < 0 {
        Err(-n)
    } else {
        Ok(n as usize)
    }
}

/// One BPF_PROG_TEST_RUN: `(retval, bytes written to data_out)`. The error is an errno.
/// One BPF_PROG_TEST_RUN of `repeat` runs: the last run's return value, the output length and
/// the kernel's mean time per run in nanoseconds.
pub(super) fn test_run(
    prog: BorrowedFd<'_>,
    data_in: &[u8],
    data_out: &mut [u8],
    ctx_in: Option<&[u8]>,
    repeat: u32,
) -> Result<(u32, usize, u32), i32> {
    use std::os::fd::AsRawFd;
    let ctx = ctx_in.unwrap_or(&[]);
    let mut opts = sys::bpf_test_run_opts {
        sz: std::mem::size_of::<sys::bpf_test_run_opts>() as _,
        data_in: data_in.as_ptr().cast(),
        data_size_in: data_in.len() as _,
        data_out: data_out.as_mut_ptr().cast(),
        data_size_out: data_out.len() as _,
        ctx_in: if ctx.is_empty() {
            std::ptr::null()
        } else {
            ctx.as_ptr().cast()
        },
        ctx_size_in: ctx.len() as _,
        repeat: repeat.max(1) as _,
        ..Default::default()
    };
    // SAFETY: every pointer in `opts` is valid for its stated size for the duration of the call;
    // the kernel writes at most `data_size_out` bytes to `data_out`.
    let ret = unsafe { sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    if ret < 0 {
        return Err(-ret);
    }
    Ok((
        opts.retval,
        (opts.data_size_out as usize).min(data_out.len()),
        opts.duration,
    ))
}

/// An open `bpf_object`, closed on drop (on every path out of `load_once`, or with its `LiveObject`).
struct OpenObject {
    ptr: *mut sys::bpf_object,
    /// Per-program verifier log buffers. libbpf keeps raw pointers into them until the close;
    /// fields are dropped after `Drop::drop`, i.e. after `bpf_object__close`.
    logs: Vec<Vec<u8>>,
}

impl Drop for OpenObject {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful open and is closed exactly once.
        unsafe { sys::bpf_object__close(self.ptr) }
    }
}

/// The object's programs in libbpf's order, which is also the order `bpf_object__load` uses.
fn programs(obj: *mut sys::bpf_object) -> Vec<*mut sys::bpf_program> {
    let mut out = Vec::new();
    let mut prog = std::ptr::null_mut();
    loop {
        // SAFETY: `obj` is open; `prog` is NULL or the previous program of the same object.
        prog = unsafe { sys::bpf_object__next_program(obj, prog) };
        if prog.is_null() {
            return out;
        }
        out.push(prog);
    }
}

/// libbpf's text for an errno, including its own codes (4000 and up, e.g. "Invalid ELF format").
pub(super) fn strerror(errno: i32) -> String {
    let mut buf = [0 as c_char; 256];
    // SAFETY: libbpf writes at most buf.len() bytes and always NUL-terminates.
    unsafe {
        sys::libbpf_strerror(errno, buf.as_mut_ptr(), buf.len() as _);
        c_string(buf.as_ptr())
    }
}

/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn c_string(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The kernel NUL-terminates the log inside the buffer.
fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

// libbpf prints to stderr by default; ksc routes its messages into a per-thread buffer instead,
// and drops them when no capture is active. The callback runs synchronously on the thread that
// called into libbpf, so concurrent loads on different threads (parallel tests) stay apart.

thread_local! {
    static MESSAGES: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

unsafe extern "C" {
    /// runtime/src/kernel_compat.c, linked into ksc by build.rs so that objects are adapted to the
    /// running kernel exactly as the runtime adapts them (struct_ops without links before 6.4).
    fn ksrt_adapt_struct_ops(obj: *mut sys::bpf_object) -> c_int;
    // `ap` has the exact type bindgen gave libbpf's callback, so it is passed on with the ABI of a
    // C `va_list` parameter on every target.
    fn vsnprintf(
        buf: *mut c_char,
        size: usize,
        fmt: *const c_char,
        ap: *mut sys::__va_list_tag,
    ) -> c_int;
}

unsafe extern "C" fn print_capture(
    level: sys::libbpf_print_level,
    fmt: *const c_char,
    ap: *mut sys::__va_list_tag,
) -> c_int {
    // Debug output is a line per relocation and feature probe: noise for ksc's purposes.
    if level == sys::LIBBPF_DEBUG || fmt.is_null() {
        return 0;
    }
    // Long messages (libbpf's own copy of a verifier log) are cut; ksc has the log from its buffer.
    let mut buf = [0 as c_char; 2048];
    // SAFETY: fmt/ap are libbpf's printf arguments; vsnprintf writes at most buf.len() bytes and
    // NUL-terminates.
    let n = unsafe { vsnprintf(buf.as_mut_ptr(), buf.len(), fmt, ap) };
    if n < 0 {
        return 0;
    }
    // SAFETY: NUL-terminated by vsnprintf.
    let msg = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
    let msg = msg.trim_end();
    if !msg.is_empty() {
        // try_*: a panic must not unwind into C.
        let _ = MESSAGES.try_with(|m| {
            if let Ok(Some(m)) = m.try_borrow_mut().as_deref_mut() {
                m.push(msg.to_owned());
            }
        });
    }
    n
}

fn install_print_capture() {
    static ONCE: Once = Once::new();
    // SAFETY: installs a function pointer with the signature libbpf expects.
    ONCE.call_once(|| unsafe {
        sys::libbpf_set_print(Some(print_capture));
    });
}

/// Runs `f` and returns what libbpf printed on this thread meanwhile.
fn capture_messages<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let _ = MESSAGES.try_with(|m| m.try_borrow_mut().map(|mut m| *m = Some(Vec::new())));
    let out = f();
    let msgs = MESSAGES.try_with(|m| m.try_borrow_mut().ok().and_then(|mut m| m.take()));
    (out, msgs.ok().flatten().unwrap_or_default())
}

/// Verification creates maps and never pins them (docs/language.md §1.1): pinned maps would otherwise
/// need a mounted bpffs and outlive the run.
fn unpin_maps(obj: *mut sys::bpf_object) {
    // SAFETY: iterating the maps of an open object; clearing a pin path only frees libbpf's copy.
    unsafe {
        let mut map = sys::bpf_object__next_map(obj, std::ptr::null());
        while !map.is_null() {
            sys::bpf_map__set_pin_path(map, std::ptr::null());
            map = sys::bpf_object__next_map(obj, map);
        }
    }
}
