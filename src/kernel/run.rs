//! Running programs with BPF_PROG_TEST_RUN (`ksc test`, and the functional tests), with access to
//! the object's maps and globals.
//!
//! Every kind takes the full Ethernet frame and sees it as docs/language.md §17.4 says:
//! * xdp: `ctx->data` at the Ethernet header; an `xdp_md` context sets `ingress_ifindex = 1`
//!   (loopback, `rx_queue_index` 0), which the kernel accepts for test runs.
//! * tc (sched_cls) and cgroup_skb: the kernel builds an skb on the loopback device (so `ifindex`
//!   is 1) and `eth_type_trans` sets `protocol` from the EtherType; an `__sk_buff` context sets
//!   `ingress_ifindex = 1` too. tc sees the frame from the Ethernet header. For cgroup_skb the
//!   kernel consumes the Ethernet header itself, so `ctx->data` is the network header (byte 14 of
//!   the input) and the output packet starts with 14 zero bytes where the Ethernet header was.
//!
//! The kernel refuses (EINVAL) inputs shorter than 14 bytes or longer than about a page minus its
//! head- and tailroom, and for tc and cgroup_skb also frames whose EtherType is IPv4 (IPv6) but
//! that are shorter than Ethernet + 20 (40) bytes: it reads the addresses from the IP header.

use super::{describe, failed_program, LoadError};
use super::{ffi, kind_of, report, Verdict, BPF_LOG_STATS, STATS_LOG_SIZE};
use libbpf_sys as sys;

/// A map entry's key and value bytes.
pub type MapEntry = (Vec<u8>, Vec<u8>);

/// An object loaded into the kernel for running programs (maps created, nothing pinned or
/// attached); closed on drop.
pub struct Loaded {
    object: ffi::LiveObject,
}

/// The result of one test run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRun {
    /// The program's return value (its verdict).
    pub retval: u32,
    /// The packet as the program left it.
    pub data: Vec<u8>,
}

/// Room for programs that grow the packet (`bpf_xdp_adjust_tail` can reach the page's end).
const OUT_SLACK: usize = 4096;

impl Loaded {
    /// Loads every program and creates every map of `elf`. A rejected program is an error naming
    /// it and the verifier's last line.
    pub fn load(elf: &[u8], name: &str) -> Result<Loaded, LoadError> {
        let attempt = match ffi::load_live(elf, name, BPF_LOG_STATS, STATS_LOG_SIZE) {
            Ok(Ok(object)) => return Ok(Loaded { object }),
            Ok(Err(attempt)) => attempt,
            Err(f) => return Err(LoadError::Open(describe(f.errno, &f.messages))),
        };
        ffi::probe_bpf().map_err(|errno| {
            LoadError::Unavailable(format!(
                "the bpf() system call failed: {}",
                ffi::strerror(errno)
            ))
        })?;
        let errno = attempt.errno.unwrap_or(0);
        // Stats-only logs still end with the verifier's complaint.
        match failed_program(&attempt)
            .map(|i| report(&attempt.progs[i], Some(errno), &attempt.messages))
        {
            Some(r) => match r.verdict {
                Verdict::Rejected { last_line, .. } => Err(LoadError::Open(format!(
                    "program {} rejected: {last_line}",
                    r.name
                ))),
                Verdict::Accepted => unreachable!("report() with an errno is a rejection"),
            },
            None => Err(LoadError::Open(describe(errno, &attempt.messages))),
        }
    }

    /// BPF_PROG_TEST_RUN of `program` on `packet` (a full Ethernet frame, for every kind): the
    /// program's return value and the packet as the program left it.
    pub fn run(&self, program: &str, packet: &[u8]) -> Result<TestRun, String> {
        let (fd, section) = self
            .object
            .program(program)
            .ok_or_else(|| format!("no program {program}"))?;
        let ctx: Option<Vec<u8>> = test_context(&section, packet.len())
            .map(|c| c.iter().flat_map(|w| w.to_ne_bytes()).collect());
        let mut out = vec![0u8; packet.len() + OUT_SLACK];
        let (retval, len, _) = ffi::test_run(fd, packet, &mut out, ctx.as_deref(), 1)
            .map_err(|e| format!("test run of {program}: {}", ffi::strerror(e)))?;
        out.truncate(len);
        Ok(TestRun { retval, data: out })
    }

    /// `repeat` runs of `program` on `packet` in one BPF_PROG_TEST_RUN: the return value and the
    /// kernel's mean nanoseconds per run (for benchmarks).
    pub fn run_repeated(
        &self,
        program: &str,
        packet: &[u8],
        repeat: u32,
    ) -> Result<(u32, u32), String> {
        let (fd, section) = self
            .object
            .program(program)
            .ok_or_else(|| format!("no program {program}"))?;
        let ctx = test_context(&section, packet.len())
            .map(|c| c.iter().flat_map(|w| w.to_ne_bytes()).collect::<Vec<u8>>());
        let mut out = vec![0u8; packet.len() + OUT_SLACK];
        let (retval, _, ns) = ffi::test_run(fd, packet, &mut out, ctx.as_deref(), repeat)
            .map_err(|e| format!("test run of {program}: {}", ffi::strerror(e)))?;
        Ok((retval, ns))
    }

    /// Every entry of a map, sorted by key (values as `map_lookup` returns them).
    pub fn map_entries(&self, map: &str) -> Result<Vec<MapEntry>, String> {
        let m = self.map(map)?;
        let mut keys = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        while let Some(next) = m.next_key(key.as_deref(), m.key_size()) {
            if keys.len() > 1 << 20 {
                return Err(format!("{map} does not stop iterating"));
            }
            keys.push(next.clone());
            key = Some(next);
        }
        keys.sort();
        let mut out = Vec::new();
        for k in keys {
            if let Some(v) = self.map_lookup(map, &k)? {
                out.push((k, v));
            }
        }
        Ok(out)
    }

    /// A program's instruction counts: object, xlated (after the kernel's rewrite) and processed
    /// by the verifier.
    pub fn program_counts(&self, program: &str) -> Result<(u32, u32, u32), String> {
        self.object
            .program_counts(program)
            .ok_or_else(|| format!("no information on program {program}"))
    }

    /// The value stored under `key`, or `None` if absent. For percpu maps the value is every
    /// possible CPU's slot in CPU order, each padded to a multiple of 8 bytes.
    pub fn map_lookup(&self, map: &str, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let m = self.map(map)?;
        let mut value = vec![0u8; slot_size(&m) * slots(&m)?];
        let found = m
            .lookup(key, &mut value)
            .map_err(|e| format!("lookup in {map}: {}", ffi::strerror(e)))?;
        Ok(found.then_some(value))
    }

    /// Stores `value` under `key` (BPF_ANY). For percpu maps, a single value is written to every
    /// CPU's slot (as userspace writes do, §11.2); all slots may be given instead.
    pub fn map_update(&self, map: &str, key: &[u8], value: &[u8]) -> Result<(), String> {
        let m = self.map(map)?;
        let mut all = value.to_vec();
        if is_percpu(&m) && value.len() == m.value_size {
            all.resize(slot_size(&m), 0);
            all = all.repeat(slots(&m)?);
        }
        m.update(key, &all)
            .map_err(|e| format!("update of {map}: {}", ffi::strerror(e)))
    }

    /// The current bytes of a global-data section map (".bss", ".data", ".rodata").
    pub fn global_data(&self, section: &str) -> Result<Vec<u8>, String> {
        let value = self.map_lookup(section, &0u32.to_ne_bytes())?;
        value.ok_or_else(|| format!("{section} has no entry 0"))
    }

    /// Fills the object's `prog_array` map: slot i holds `programs[i]` (the order of the tail-call
    /// indices, §9.5: first appearance of each target in the file).
    pub fn fill_prog_array(&self, programs: &[&str]) -> Result<(), String> {
        use std::os::fd::AsRawFd;
        for (i, name) in programs.iter().enumerate() {
            let (fd, _) = self
                .object
                .program(name)
                .ok_or_else(|| format!("no program {name}"))?;
            let fd = fd.as_raw_fd() as u32;
            self.map_update(
                crate::ir::symbols::PROG_ARRAY,
                &(i as u32).to_ne_bytes(),
                &fd.to_ne_bytes(),
            )?;
        }
        Ok(())
    }

    /// Whether the object has a map named `name` (".data.c" for config `c`'s section).
    pub fn has_map(&self, name: &str) -> bool {
        self.object.map(name).is_some()
    }

    fn map(&self, name: &str) -> Result<ffi::MapInfo<'_>, String> {
        self.object
            .map(name)
            .ok_or_else(|| format!("no map {name}"))
    }
}

/// The context a test run passes for a program of ELF `section` on a packet of `len` bytes.
fn test_context(section: &str, len: usize) -> Option<Vec<u32>> {
    match kind_of(section).as_str() {
        // xdp_md: data, data_end (must equal the length), data_meta, ingress_ifindex, ...
        "xdp" => Some(vec![0, len as u32, 0, 1, 0, 0]),
        // __sk_buff up to ifindex: the kernel requires the other fields to be zero;
        // [9] ingress_ifindex, [10] ifindex (1 keeps the default loopback device).
        "tc" | "cgroup_skb" => Some([[0; 9].as_slice(), &[1, 1]].concat()),
        _ => None,
    }
}

fn is_percpu(m: &ffi::MapInfo<'_>) -> bool {
    [
        sys::BPF_MAP_TYPE_PERCPU_HASH,
        sys::BPF_MAP_TYPE_PERCPU_ARRAY,
        sys::BPF_MAP_TYPE_LRU_PERCPU_HASH,
        sys::BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    ]
    .contains(&m.map_type)
}

/// How many values a lookup returns: one per possible CPU for percpu maps.
fn slots(m: &ffi::MapInfo<'_>) -> Result<usize, String> {
    if !is_percpu(m) {
        return Ok(1);
    }
    ffi::possible_cpus()
        .map_err(|e| format!("cannot count the possible CPUs: {}", ffi::strerror(e)))
}

/// The kernel pads each percpu slot to 8 bytes.
fn slot_size(m: &ffi::MapInfo<'_>) -> usize {
    if is_percpu(m) {
        m.value_size.next_multiple_of(8)
    } else {
        m.value_size
    }
}
