//! Functional tests: compile `.ks` programs (tests/programs and examples), load them into the
//! running kernel and run them with BPF_PROG_TEST_RUN on packets built here, checking verdicts,
//! output packets, maps and globals.
//!
//! Needs root (bpf()). With KSC_REQUIRE_KERNEL=1 an unusable bpf() fails every test; without it
//! the tests skip with a note.

use kernelscript::codegen::bpf::Options;
use kernelscript::kernel::{bpf_available, Loaded};
use kernelscript::pipeline::compile_bpf_object;
use std::path::Path;
use std::sync::Mutex;

const XDP_ABORTED: u32 = 0;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;
const CG_ALLOW: u32 = 1;
const CG_DROP: u32 = 0;

// ---------------------------------------------------------------------------------------------
// Harness

fn kernel() -> bool {
    if bpf_available() {
        return true;
    }
    let required = std::env::var("KSC_REQUIRE_KERNEL").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "KSC_REQUIRE_KERNEL=1 but the bpf() system call is unusable"
    );
    eprintln!("note: bpf() unusable (not root?), skipping kernel test");
    false
}

/// Compiles `file` (relative to the crate root) and loads it; `None` when skipping.
fn load(file: &str) -> Option<Loaded> {
    load_with(file, Options::default())
}

fn load_with(file: &str, opts: Options) -> Option<Loaded> {
    if !kernel() {
        return None;
    }
    // The compiler wants a deep stack (ksc runs it on a 512 MiB thread) and LLVM's target
    // registration is not meant to race, so compile one file at a time on a big thread.
    static COMPILER: Mutex<()> = Mutex::new(());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let elf = {
        let _one_at_a_time = COMPILER.lock().unwrap_or_else(|e| e.into_inner());
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(move || compile_bpf_object(&path, &opts))
            .unwrap()
            .join()
            .unwrap()
    };
    let elf = elf.unwrap_or_else(|e| panic!("{file} does not compile:\n{e}"));
    let name = Path::new(file)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    Some(Loaded::load(&elf, &name).unwrap_or_else(|e| panic!("{file}: {e}")))
}

fn verdict(obj: &Loaded, prog: &str, packet: &[u8]) -> u32 {
    obj.run(prog, packet)
        .unwrap_or_else(|e| panic!("{e}"))
        .retval
}

fn lookup(obj: &Loaded, map: &str, key: &[u8]) -> Option<Vec<u8>> {
    obj.map_lookup(map, key).unwrap_or_else(|e| panic!("{e}"))
}

fn u64_at(obj: &Loaded, map: &str, key: &[u8]) -> Option<u64> {
    lookup(obj, map, key).map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap()))
}

/// A u32 array entry (always present).
fn u32_at(obj: &Loaded, map: &str, index: u32) -> u32 {
    let v = lookup(obj, map, &index.to_ne_bytes()).expect("array entries always exist");
    u32::from_ne_bytes(v[..4].try_into().unwrap())
}

/// A percpu u64 entry summed over the CPUs (each slot is 8 bytes).
fn percpu_sum(obj: &Loaded, map: &str, index: u32) -> u64 {
    let v = lookup(obj, map, &index.to_ne_bytes()).expect("array entries always exist");
    v.chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Packet builders (network byte order on the wire)

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_IPV6: u16 = 0x86DD;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    [&MAC_B[..], &MAC_A, &ethertype.to_be_bytes(), payload].concat()
}

/// An 802.1Q-tagged frame (priority 0).
fn eth_vlan(vid: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let tag = [ETH_P_8021Q.to_be_bytes(), (vid & 0x0FFF).to_be_bytes()].concat();
    [&MAC_B[..], &MAC_A, &tag, &ethertype.to_be_bytes(), payload].concat()
}

/// The Internet checksum (RFC 1071) of `bytes`.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// A 20-byte IPv4 header (no options, DF, TTL 64) with a correct checksum, then `payload`.
fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = [
        &[0x45, 0][..],
        &total.to_be_bytes(),
        &[0, 1, 0x40, 0, 64, proto, 0, 0],
        &src,
        &dst,
    ]
    .concat();
    let sum = checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    [h, payload.to_vec()].concat()
}

fn ipv6(next_header: u8, payload: &[u8]) -> Vec<u8> {
    let src = [[0x20, 0x01, 0x0d, 0xb8].as_slice(), &[0; 11], &[1]].concat();
    let dst = [[0x20, 0x01, 0x0d, 0xb8].as_slice(), &[0; 11], &[2]].concat();
    let len = (payload.len() as u16).to_be_bytes();
    [
        &[0x60, 0, 0, 0][..],
        &len,
        &[next_header, 64],
        &src,
        &dst,
        payload,
    ]
    .concat()
}

/// A 20-byte TCP SYN (checksum left 0: no program here checks it).
fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    let ports = [sport.to_be_bytes(), dport.to_be_bytes()].concat();
    [
        &ports[..],
        &[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xFF, 0xFF, 0, 0, 0, 0],
    ]
    .concat()
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    [
        &sport.to_be_bytes()[..],
        &dport.to_be_bytes(),
        &len.to_be_bytes(),
        &[0, 0],
        payload,
    ]
    .concat()
}

/// An ICMP echo request with a correct checksum.
fn icmp_echo(id: u16, seq: u16) -> Vec<u8> {
    let mut m = [
        &[8, 0, 0, 0][..],
        &id.to_be_bytes(),
        &seq.to_be_bytes(),
        b"ping",
    ]
    .concat();
    let sum = checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

const HOST_1: [u8; 4] = [10, 0, 0, 1];
const HOST_2: [u8; 4] = [10, 0, 0, 2];

fn tcp_frame(src: [u8; 4], dport: u16) -> Vec<u8> {
    eth(ETH_P_IP, &ipv4(src, HOST_2, TCP, &tcp(40000, dport)))
}

fn udp_frame(src: [u8; 4], dport: u16) -> Vec<u8> {
    eth(
        ETH_P_IP,
        &ipv4(src, HOST_2, UDP, &udp(5000, dport, b"query")),
    )
}

fn arp_frame() -> Vec<u8> {
    eth(
        ETH_P_ARP,
        &[
            0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
        ],
    )
}

#[test]
fn builders_make_valid_headers() {
    let f = tcp_frame(HOST_1, 80);
    assert_eq!(f.len(), 14 + 20 + 20);
    assert_eq!(
        checksum(&f[14..34]),
        0,
        "a correct IPv4 header sums to zero"
    );
    assert_eq!(checksum(&icmp_echo(1, 1)), 0);
    assert_eq!(&f[16..18], &40u16.to_be_bytes(), "total length");
    assert_eq!(
        eth_vlan(100, ETH_P_IP, &[])[12..18],
        [0x81, 0x00, 0x00, 0x64, 0x08, 0x00]
    );
}

// ---------------------------------------------------------------------------------------------
// The API itself

#[test]
fn run_rejects_frames_shorter_than_ethernet() {
    let Some(obj) = load("tests/programs/globals.ks") else {
        return;
    };
    let err = obj.run("count_hits", &[0; 13]).unwrap_err();
    assert!(err.contains("Invalid argument"), "{err}");
    assert!(obj.run("no_such_program", &[0; 14]).is_err());
    assert!(obj.map_lookup("no_such_map", &[0; 4]).is_err());
}

#[test]
fn rejected_program_names_itself_and_the_verifier_complaint() {
    if !kernel() {
        return;
    }
    // Replace the program's final `exit` with `r0 = r2`: falling off the end is the verifier's
    // first complaint.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/globals.ks");
    let mut elf = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || compile_bpf_object(&path, &Options::default()).unwrap())
        .unwrap()
        .join()
        .unwrap();
    let (start, size) = find_section(&elf, "xdp").expect("an xdp section");
    let last = start + size - 8;
    assert_eq!(elf[last], 0x95, "the program ends with exit");
    elf[last..last + 8].copy_from_slice(&[0xbf, 0x20, 0, 0, 0, 0, 0, 0]);
    let err = Loaded::load(&elf, "broken")
        .err()
        .expect("the verifier rejects the program")
        .to_string();
    assert!(
        err.contains("count_hits") && err.contains("last insn is not an exit or jmp"),
        "{err}"
    );
}

/// The file offset and size of an ELF64 section's contents, by name.
fn find_section(elf: &[u8], name: &str) -> Option<(usize, usize)> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3A), u16_at(0x3C), u16_at(0x3E));
    let strtab = u64_at(shoff + shstrndx * shentsize + 0x18);
    (0..shnum).map(|i| shoff + i * shentsize).find_map(|sh| {
        let start = strtab + u32::from_le_bytes(elf[sh..sh + 4].try_into().unwrap()) as usize;
        let end = start + elf[start..].iter().position(|&b| b == 0)?;
        (&elf[start..end] == name.as_bytes()).then(|| (u64_at(sh + 0x18), u64_at(sh + 0x20)))
    })
}

// ---------------------------------------------------------------------------------------------
// examples/xdp_firewall.ks

#[test]
fn firewall_drops_blocked_sources_and_counts_each_packet() {
    let Some(obj) = load("examples/xdp_firewall.ks") else {
        return;
    };
    let blocked = [203, 0, 113, 7];
    // The key is the source address as it sits in the packet (network byte order).
    obj.map_update("blocklist", &blocked, &0u64.to_ne_bytes())
        .unwrap();
    for n in 1..=3 {
        assert_eq!(verdict(&obj, "firewall", &tcp_frame(blocked, 80)), XDP_DROP);
        assert_eq!(
            u64_at(&obj, "blocklist", &blocked),
            Some(n),
            "exactly one count per packet"
        );
    }
    assert_eq!(verdict(&obj, "firewall", &udp_frame(blocked, 53)), XDP_DROP);
    assert_eq!(u64_at(&obj, "blocklist", &blocked), Some(4));
}

#[test]
fn firewall_passes_unblocked_sources_without_creating_entries() {
    let Some(obj) = load("examples/xdp_firewall.ks") else {
        return;
    };
    obj.map_update("blocklist", &[203, 0, 113, 7], &0u64.to_ne_bytes())
        .unwrap();
    assert_eq!(verdict(&obj, "firewall", &tcp_frame(HOST_1, 80)), XDP_PASS);
    assert_eq!(lookup(&obj, "blocklist", &HOST_1), None);
    assert_eq!(u64_at(&obj, "blocklist", &[203, 0, 113, 7]), Some(0));
}

#[test]
fn firewall_short_ipv4_frame_takes_its_own_verdict() {
    let Some(obj) = load("examples/xdp_firewall.ks") else {
        return;
    };
    let blocked = [203, 0, 113, 7];
    obj.map_update("blocklist", &blocked, &0u64.to_ne_bytes())
        .unwrap();
    let frame = tcp_frame(blocked, 80);
    // Ethernet + 19 bytes of IPv4: the program's explicit check says XDP_DROP, not the pass verdict.
    for len in [14, 20, 33] {
        assert_eq!(
            verdict(&obj, "firewall", &frame[..len]),
            XDP_DROP,
            "{len}-byte frame"
        );
    }
    assert_eq!(
        u64_at(&obj, "blocklist", &blocked),
        Some(0),
        "short frames are not counted"
    );
    assert_eq!(
        verdict(&obj, "firewall", &frame[..34]),
        XDP_DROP,
        "a bare IPv4 header is enough"
    );
    assert_eq!(u64_at(&obj, "blocklist", &blocked), Some(1));
}

#[test]
fn firewall_passes_non_ipv4_frames() {
    let Some(obj) = load("examples/xdp_firewall.ks") else {
        return;
    };
    assert_eq!(verdict(&obj, "firewall", &arp_frame()), XDP_PASS);
    assert_eq!(
        verdict(&obj, "firewall", &eth(ETH_P_IPV6, &ipv6(TCP, &tcp(1, 2)))),
        XDP_PASS
    );
    // The blocked address inside a VLAN tag is not parsed: the outer EtherType is 0x8100.
    let blocked = [203, 0, 113, 7];
    obj.map_update("blocklist", &blocked, &0u64.to_ne_bytes())
        .unwrap();
    let tagged = eth_vlan(5, ETH_P_IP, &ipv4(blocked, HOST_2, TCP, &tcp(1, 2)));
    assert_eq!(verdict(&obj, "firewall", &tagged), XDP_PASS);
    assert_eq!(u64_at(&obj, "blocklist", &blocked), Some(0));
}

// ---------------------------------------------------------------------------------------------
// examples/proto_counters.ks

#[test]
fn protocol_counters_count_each_protocol_in_its_slot() {
    let Some(obj) = load("examples/proto_counters.ks") else {
        return;
    };
    let frames = [
        tcp_frame(HOST_1, 443),
        udp_frame(HOST_1, 53),
        udp_frame(HOST_1, 123),
        eth(ETH_P_IP, &ipv4(HOST_1, HOST_2, ICMP, &icmp_echo(7, 1))),
        eth(ETH_P_IPV6, &ipv6(ICMPV6, &[128, 0, 0, 0, 0, 1, 0, 1])),
        eth(ETH_P_IPV6, &ipv6(UDP, &udp(1, 2, &[]))),
        arp_frame(),
    ];
    for f in &frames {
        assert_eq!(verdict(&obj, "count_protocols", f), XDP_PASS);
    }
    let len = |i: usize| frames[i].len() as u64;
    assert_eq!(percpu_sum(&obj, "packets", TCP.into()), 1);
    assert_eq!(
        percpu_sum(&obj, "packets", UDP.into()),
        3,
        "two IPv4 and one IPv6 UDP frame"
    );
    assert_eq!(percpu_sum(&obj, "packets", ICMP.into()), 1);
    assert_eq!(percpu_sum(&obj, "packets", ICMPV6.into()), 1);
    assert_eq!(percpu_sum(&obj, "bytes", TCP.into()), len(0));
    assert_eq!(
        percpu_sum(&obj, "bytes", UDP.into()),
        len(1) + len(2) + len(5)
    );
    assert_eq!(percpu_sum(&obj, "bytes", ICMPV6.into()), len(4));
    assert_eq!(percpu_sum(&obj, "non_ip", 0), 1);
    let total: u64 = (0..256).map(|p| percpu_sum(&obj, "packets", p)).sum();
    assert_eq!(total, 6, "nothing counted elsewhere");
}

#[test]
fn protocol_counters_ignore_truncated_ip_headers() {
    let Some(obj) = load("examples/proto_counters.ks") else {
        return;
    };
    assert_eq!(
        verdict(&obj, "count_protocols", &tcp_frame(HOST_1, 80)[..33]),
        XDP_PASS
    );
    assert_eq!(
        verdict(
            &obj,
            "count_protocols",
            &eth(ETH_P_IPV6, &ipv6(TCP, &[]))[..53]
        ),
        XDP_PASS
    );
    let total: u64 = (0..256).map(|p| percpu_sum(&obj, "packets", p)).sum();
    assert_eq!(total + percpu_sum(&obj, "non_ip", 0), 0);
}

// ---------------------------------------------------------------------------------------------
// Compiler-inserted bounds checks (docs/language.md §10.2): tests/programs/bounds.ks

#[test]
fn implicit_bounds_check_failure_returns_xdp_pass() {
    let Some(obj) = load("tests/programs/bounds.ks") else {
        return;
    };
    let frame = tcp_frame(HOST_1, 80); // 54 bytes, TTL 64, frame[40] = 0x00 (TCP seq)
                                       // 20 bytes: the TTL read (offset 22) already fails; only the statement before it happened.
    assert_eq!(verdict(&obj, "xdp_deep", &frame[..20]), XDP_PASS);
    assert_eq!(u64_at(&obj, "runs", &0u32.to_ne_bytes()), Some(1));
    assert_eq!(lookup(&obj, "seen", &1u32.to_ne_bytes()), None);
    assert_eq!(lookup(&obj, "seen", &0u32.to_ne_bytes()), None);
    // 40 bytes: the TTL is stored, reading byte 40 fails and that store never happens.
    assert_eq!(verdict(&obj, "xdp_deep", &frame[..40]), XDP_PASS);
    assert_eq!(lookup(&obj, "seen", &1u32.to_ne_bytes()), Some(vec![64]));
    assert_eq!(lookup(&obj, "seen", &0u32.to_ne_bytes()), None);
    // 41 bytes: everything in bounds, the program's own verdict.
    let mut long = frame[..41].to_vec();
    long[40] = 0xAB;
    assert_eq!(verdict(&obj, "xdp_deep", &long), XDP_DROP);
    assert_eq!(lookup(&obj, "seen", &0u32.to_ne_bytes()), Some(vec![0xAB]));
    assert_eq!(u64_at(&obj, "runs", &0u32.to_ne_bytes()), Some(3));
}

const UNTOUCHED: u32 = 0xDEAD_BEEF;

/// Runs `var_index.ks`'s program on frames needing each side of the implicit check.
fn check_variable_index(obj: &Loaded) {
    obj.map_update("seen", &0u32.to_ne_bytes(), &UNTOUCHED.to_ne_bytes())
        .unwrap();
    let frame = udp_frame(HOST_1, 53);
    assert_eq!(
        verdict(obj, "xdp_l4_first", &frame[..33]),
        XDP_ABORTED,
        "explicit check"
    );
    assert_eq!(
        verdict(obj, "xdp_l4_first", &frame[..34]),
        XDP_PASS,
        "no L4 byte: implicit check"
    );
    assert_eq!(u32_at(obj, "seen", 0), UNTOUCHED);
    assert_eq!(verdict(obj, "xdp_l4_first", &frame), XDP_DROP);
    assert_eq!(u32_at(obj, "seen", 0), u32::from(frame[34]));
    // IHL 6 (one option word) moves the L4 header to byte 38.
    let with_option = tcp_frame_with_option(0x1234);
    assert_eq!(verdict(obj, "xdp_l4_first", &with_option[..38]), XDP_PASS);
    assert_eq!(verdict(obj, "xdp_l4_first", &with_option[..39]), XDP_DROP);
    assert_eq!(u32_at(obj, "seen", 0), u32::from(with_option[38]));
}

#[test]
fn implicit_bounds_check_with_a_variable_index() {
    let Some(obj) = load("tests/programs/var_index.ks") else {
        return;
    };
    check_variable_index(&obj);
}

#[test]
fn implicit_bounds_check_with_a_variable_index_at_o0() {
    let Some(obj) = load_with(
        "tests/programs/var_index.ks",
        Options {
            optimize: false,
            ..Options::default()
        },
    ) else {
        return;
    };
    check_variable_index(&obj);
}

#[test]
fn implicit_bounds_check_with_an_unbounded_index() {
    let Some(obj) = load("tests/programs/var_index_unbounded.ks") else {
        return;
    };
    obj.map_update("seen", &0u32.to_ne_bytes(), &UNTOUCHED.to_ne_bytes())
        .unwrap();
    let frame = [tcp_frame(HOST_1, 80), vec![0xEE]].concat(); // 55 bytes
    let set_offset = |o: u32| {
        obj.map_update(".bss", &0u32.to_ne_bytes(), &o.to_ne_bytes())
            .unwrap()
    };
    for offset in [55, 1000, 0x1_0000 + 54, u32::MAX] {
        set_offset(offset);
        assert_eq!(
            verdict(&obj, "read_at", &frame),
            XDP_PASS,
            "offset {offset}"
        );
        assert_eq!(u32_at(&obj, "seen", 0), UNTOUCHED);
    }
    set_offset(54);
    assert_eq!(verdict(&obj, "read_at", &frame), XDP_DROP);
    assert_eq!(u32_at(&obj, "seen", 0), 0xEE);
}

#[test]
fn implicit_bounds_check_failure_returns_the_skb_pass_verdicts() {
    let Some(obj) = load("tests/programs/bounds.ks") else {
        return;
    };
    let frame = [tcp_frame(HOST_1, 80), vec![0xCD]].concat(); // 55 bytes
    assert_eq!(verdict(&obj, "tc_deep", &frame[..40]), TC_ACT_OK);
    assert_eq!(lookup(&obj, "seen", &2u32.to_ne_bytes()), None);
    assert_eq!(verdict(&obj, "tc_deep", &frame[..41]), TC_ACT_SHOT);
    assert_eq!(
        lookup(&obj, "seen", &2u32.to_ne_bytes()),
        Some(vec![frame[40]])
    );
    // cgroup_skb's data starts at the network header: its byte 40 is frame byte 54.
    assert_eq!(verdict(&obj, "cg_deep", &frame[..54]), CG_ALLOW);
    assert_eq!(lookup(&obj, "seen", &3u32.to_ne_bytes()), None);
    assert_eq!(verdict(&obj, "cg_deep", &frame), CG_DROP);
    assert_eq!(lookup(&obj, "seen", &3u32.to_ne_bytes()), Some(vec![0xCD]));
}

// ---------------------------------------------------------------------------------------------
// VLAN: tests/programs/vlan.ks

#[test]
fn vlan_tagged_frames_are_parsed_by_ethertype() {
    let Some(obj) = load("tests/programs/vlan.ks") else {
        return;
    };
    let ip = ipv4(HOST_1, HOST_2, UDP, &udp(1, 2, &[]));
    assert_eq!(
        verdict(&obj, "vlan_filter", &eth_vlan(100, ETH_P_IP, &ip)),
        XDP_DROP
    );
    assert_eq!(
        verdict(&obj, "vlan_filter", &eth_vlan(101, ETH_P_IP, &ip)),
        XDP_PASS
    );
    assert_eq!(
        verdict(
            &obj,
            "vlan_filter",
            &eth_vlan(100, ETH_P_IPV6, &ipv6(UDP, &[]))
        ),
        XDP_DROP
    );
    assert_eq!(verdict(&obj, "vlan_filter", &eth(ETH_P_IP, &ip)), XDP_PASS);
    assert_eq!(verdict(&obj, "vlan_filter", &arp_frame()), XDP_PASS);
    // A tag without room for the inner EtherType: the program's own verdict.
    assert_eq!(
        verdict(&obj, "vlan_filter", &eth_vlan(100, ETH_P_IP, &[])[..17]),
        XDP_DROP
    );
    let count = |et: u16| u64_at(&obj, "by_ethertype", &et.to_ne_bytes());
    assert_eq!(
        count(ETH_P_IP),
        Some(3),
        "the inner EtherType of tagged frames, and the untagged one"
    );
    assert_eq!(count(ETH_P_IPV6), Some(1));
    assert_eq!(count(ETH_P_ARP), Some(1));
    assert_eq!(count(ETH_P_8021Q), None);
}

// ---------------------------------------------------------------------------------------------
// tc and cgroup_skb: tests/programs/kinds.ks, examples/tc_egress_guard.ks,
// examples/cgroup_net_policy.ks

#[test]
fn tc_ingress_verdicts_and_context() {
    let Some(obj) = load("tests/programs/kinds.ks") else {
        return;
    };
    let dns = udp_frame(HOST_1, 53);
    assert_eq!(verdict(&obj, "tc_dns_shot", &dns), TC_ACT_SHOT);
    // What tc sees (§17.4): the whole frame from the Ethernet header, on ifindex 1.
    assert_eq!(u32_at(&obj, "tc_seen", 0), 1, "ifindex");
    assert_eq!(u32_at(&obj, "tc_seen", 1), 1, "ingress_ifindex");
    assert_eq!(
        u32_at(&obj, "tc_seen", 2),
        u32::from(u16::from_ne_bytes(ETH_P_IP.to_be_bytes())),
        "protocol (network order)"
    );
    assert_eq!(u32_at(&obj, "tc_seen", 3), dns.len() as u32, "len");
    assert_eq!(
        u32_at(&obj, "tc_seen", 4),
        dns.len() as u32,
        "data_end - data"
    );
    assert_eq!(
        verdict(&obj, "tc_dns_shot", &udp_frame(HOST_1, 5353)),
        TC_ACT_OK
    );
    assert_eq!(
        verdict(&obj, "tc_dns_shot", &tcp_frame(HOST_1, 53)),
        TC_ACT_OK
    );
    assert_eq!(verdict(&obj, "tc_dns_shot", &dns[..41]), TC_ACT_OK);
}

#[test]
fn tc_output_packet_is_the_whole_frame() {
    let Some(obj) = load("tests/programs/kinds.ks") else {
        return;
    };
    let frame = udp_frame(HOST_1, 53);
    assert_eq!(obj.run("tc_dns_shot", &frame).unwrap().data, frame);
}

#[test]
fn cgroup_skb_verdicts_and_network_header_view() {
    let Some(obj) = load("tests/programs/kinds.ks") else {
        return;
    };
    let dns = udp_frame(HOST_1, 53);
    let run = obj.run("cg_no_udp", &dns).unwrap();
    assert_eq!(run.retval, CG_DROP);
    // The kernel strips the Ethernet header for the program and zeroes it in the output.
    assert_eq!(run.data, [&[0; 14][..], &dns[14..]].concat());
    assert_eq!(u32_at(&obj, "cg_seen", 0), 1, "ifindex");
    assert_eq!(u32_at(&obj, "cg_seen", 1), 1, "ingress_ifindex");
    assert_eq!(
        u32_at(&obj, "cg_seen", 2),
        u32::from(u16::from_ne_bytes(ETH_P_IP.to_be_bytes()))
    );
    assert_eq!(
        u32_at(&obj, "cg_seen", 3),
        dns.len() as u32 - 14,
        "len counts from the IP header"
    );
    assert_eq!(
        u32_at(&obj, "cg_seen", 4),
        dns.len() as u32 - 14,
        "data is the IP header"
    );
    assert_eq!(verdict(&obj, "cg_no_udp", &tcp_frame(HOST_1, 80)), CG_ALLOW);
    assert_eq!(
        verdict(
            &obj,
            "cg_no_udp",
            &eth(ETH_P_IPV6, &ipv6(UDP, &udp(1, 2, &[])))
        ),
        CG_ALLOW
    );
    // Shorter than an IPv4 header: the program's explicit check. (The kernel refuses to build an
    // skb from a truncated IPv4 or IPv6 header, so such a frame has another EtherType here.)
    assert_eq!(
        verdict(&obj, "cg_no_udp", &eth(ETH_P_ARP, &[0x45; 19])),
        CG_ALLOW
    );
}

#[test]
fn skb_test_runs_need_a_whole_ip_header() {
    let Some(obj) = load("tests/programs/kinds.ks") else {
        return;
    };
    let dns = udp_frame(HOST_1, 53);
    let v6 = eth(ETH_P_IPV6, &ipv6(UDP, &udp(1, 2, &[])));
    for prog in ["tc_dns_shot", "cg_no_udp"] {
        assert!(obj
            .run(prog, &dns[..33])
            .unwrap_err()
            .contains("Invalid argument"));
        assert!(obj
            .run(prog, &v6[..53])
            .unwrap_err()
            .contains("Invalid argument"));
        assert!(obj.run(prog, &dns[..34]).is_ok() && obj.run(prog, &v6[..54]).is_ok());
        assert!(
            obj.run(prog, &arp_frame()[..14]).is_ok(),
            "other EtherTypes need only Ethernet"
        );
    }
    // XDP has no such restriction.
    assert_eq!(verdict(&obj, "xdp_ctx", &dns[..20]), XDP_PASS);
}

#[test]
fn xdp_context_sees_loopback_and_the_whole_frame() {
    let Some(obj) = load("tests/programs/kinds.ks") else {
        return;
    };
    let frame = tcp_frame(HOST_1, 80);
    let run = obj.run("xdp_ctx", &frame).unwrap();
    assert_eq!((run.retval, run.data), (XDP_PASS, frame.clone()));
    assert_eq!(u32_at(&obj, "xdp_seen", 0), 1, "ingress_ifindex");
    assert_eq!(u32_at(&obj, "xdp_seen", 1), frame.len() as u32);
}

#[test]
fn tc_egress_guard_blocks_and_counts_ports() {
    let Some(obj) = load("examples/tc_egress_guard.ks") else {
        return;
    };
    let (block, mark) = (1u32, 2u32); // enum PortAction
    obj.map_update("port_policy", &23u16.to_ne_bytes(), &block.to_ne_bytes())
        .unwrap();
    obj.map_update("port_policy", &8080u16.to_ne_bytes(), &mark.to_ne_bytes())
        .unwrap();
    assert_eq!(
        verdict(&obj, "egress_guard", &tcp_frame(HOST_1, 23)),
        TC_ACT_SHOT
    );
    assert_eq!(
        verdict(&obj, "egress_guard", &udp_frame(HOST_1, 23)),
        TC_ACT_SHOT
    );
    assert_eq!(
        verdict(&obj, "egress_guard", &tcp_frame(HOST_1, 8080)),
        TC_ACT_OK
    );
    assert_eq!(
        verdict(&obj, "egress_guard", &tcp_frame(HOST_1, 22)),
        TC_ACT_OK
    );
    assert_eq!(
        verdict(
            &obj,
            "egress_guard",
            &eth(ETH_P_IP, &ipv4(HOST_1, HOST_2, ICMP, &icmp_echo(1, 1)))
        ),
        TC_ACT_OK
    );
    assert_eq!(percpu_sum(&obj, "shot_packets", 0), 2);
}

#[test]
fn cgroup_policy_denies_metadata_and_accounts_bytes() {
    let Some(obj) = load("examples/cgroup_net_policy.ks") else {
        return;
    };
    let metadata = [169, 254, 169, 254];
    obj.map_update("denied_dst", &metadata, &[1]).unwrap();
    let to_metadata = eth(ETH_P_IP, &ipv4(HOST_1, metadata, TCP, &tcp(40000, 80)));
    assert_eq!(verdict(&obj, "cg_egress", &to_metadata), CG_DROP);
    assert_eq!(verdict(&obj, "cg_egress", &to_metadata), CG_DROP);
    let allowed = tcp_frame(HOST_1, 443);
    assert_eq!(verdict(&obj, "cg_egress", &allowed), CG_ALLOW);
    assert_eq!(verdict(&obj, "cg_egress", &allowed), CG_ALLOW);
    // ctx->len counts from the IP header; the global lives in .bss.
    assert_eq!(
        u64_at(&obj, "tx_bytes", &HOST_2),
        Some(2 * (allowed.len() as u64 - 14))
    );
    assert_eq!(lookup(&obj, "tx_bytes", &metadata), None);
    let bss = obj.global_data(".bss").unwrap();
    assert_eq!(
        u64::from_ne_bytes(bss[..8].try_into().unwrap()),
        2,
        "denied_packets"
    );
    assert_eq!(verdict(&obj, "cg_ingress", &allowed), CG_ALLOW);
    assert_eq!(
        u64_at(&obj, "rx_bytes", &HOST_1),
        Some(allowed.len() as u64 - 14)
    );
}

// ---------------------------------------------------------------------------------------------
// Tail calls: examples/xdp_pipeline.ks

/// Tail-call targets in order of first appearance in the file (§9.5).
const PIPELINE_STAGES: [&str; 3] = ["ipv4_stage", "tcp_stage", "udp_stage"];

fn stage_hits(obj: &Loaded) -> [u64; 4] {
    [0, 1, 2, 3].map(|s| percpu_sum(obj, "stage_hits", s))
}

#[test]
fn pipeline_tail_calls_reach_every_stage() {
    let Some(obj) = load("examples/xdp_pipeline.ks") else {
        return;
    };
    obj.fill_prog_array(&PIPELINE_STAGES).unwrap();
    obj.map_update("tcp_deny", &23u16.to_ne_bytes(), &[1])
        .unwrap();
    obj.map_update("udp_deny", &161u16.to_ne_bytes(), &[1])
        .unwrap();
    assert_eq!(
        verdict(&obj, "pipeline_entry", &tcp_frame(HOST_1, 23)),
        XDP_DROP
    );
    assert_eq!(stage_hits(&obj), [1, 1, 1, 0]);
    assert_eq!(
        verdict(&obj, "pipeline_entry", &tcp_frame(HOST_1, 22)),
        XDP_PASS
    );
    assert_eq!(
        verdict(&obj, "pipeline_entry", &udp_frame(HOST_1, 161)),
        XDP_DROP
    );
    assert_eq!(
        verdict(&obj, "pipeline_entry", &udp_frame(HOST_1, 53)),
        XDP_PASS
    );
    assert_eq!(stage_hits(&obj), [4, 4, 2, 2]);
    let icmp = eth(ETH_P_IP, &ipv4(HOST_1, HOST_2, ICMP, &icmp_echo(1, 1)));
    assert_eq!(verdict(&obj, "pipeline_entry", &icmp), XDP_PASS);
    assert_eq!(verdict(&obj, "pipeline_entry", &arp_frame()), XDP_PASS);
    assert_eq!(stage_hits(&obj), [6, 5, 2, 2]);
    // Truncated after the IPv4 header: the TCP stage's own verdict.
    assert_eq!(
        verdict(&obj, "pipeline_entry", &tcp_frame(HOST_1, 23)[..36]),
        XDP_DROP
    );
    assert_eq!(stage_hits(&obj), [7, 6, 3, 2]);
}

#[test]
fn pipeline_without_prog_array_falls_back_to_the_pass_verdict() {
    let Some(obj) = load("examples/xdp_pipeline.ks") else {
        return;
    };
    obj.map_update("tcp_deny", &23u16.to_ne_bytes(), &[1])
        .unwrap();
    // An empty slot makes bpf_tail_call return, and the caller returns XDP_PASS.
    assert_eq!(
        verdict(&obj, "pipeline_entry", &tcp_frame(HOST_1, 23)),
        XDP_PASS
    );
    assert_eq!(stage_hits(&obj), [1, 0, 0, 0]);
    // Only the IPv4 stage present: its own tail calls fail in turn.
    obj.fill_prog_array(&PIPELINE_STAGES[..1]).unwrap();
    assert_eq!(
        verdict(&obj, "pipeline_entry", &tcp_frame(HOST_1, 23)),
        XDP_PASS
    );
    assert_eq!(stage_hits(&obj), [2, 1, 0, 0]);
}

// ---------------------------------------------------------------------------------------------
// Header rewrite: tests/programs/rewrite.ks

#[test]
fn rewrite_swaps_macs_and_decrements_ttl() {
    let Some(obj) = load("tests/programs/rewrite.ks") else {
        return;
    };
    let frame = udp_frame(HOST_1, 53);
    let run = obj.run("reflect", &frame).unwrap();
    assert_eq!(run.retval, XDP_TX);
    let out = run.data;
    assert_eq!(out.len(), frame.len());
    assert_eq!(out[0..6], frame[6..12], "destination is the old source");
    assert_eq!(out[6..12], frame[0..6], "source is the old destination");
    assert_eq!(out[22], 63, "TTL");
    assert_eq!(
        checksum(&out[14..34]),
        0,
        "the updated IPv4 checksum is correct"
    );
    // Nothing else changed.
    let unchanged = |r: std::ops::Range<usize>| assert_eq!(out[r.clone()], frame[r]);
    unchanged(12..22);
    unchanged(23..24);
    unchanged(26..frame.len());
}

#[test]
fn rewrite_drops_expiring_ttl_and_leaves_other_frames_alone() {
    let Some(obj) = load("tests/programs/rewrite.ks") else {
        return;
    };
    let mut frame = tcp_frame(HOST_1, 80);
    frame[22] = 1;
    let run = obj.run("reflect", &frame).unwrap();
    assert_eq!((run.retval, run.data), (XDP_DROP, frame));
    let arp = arp_frame();
    assert_eq!(
        obj.run("reflect", &arp).unwrap(),
        kernelscript::kernel::TestRun {
            retval: XDP_PASS,
            data: arp
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Globals: tests/programs/globals.ks

#[test]
fn globals_are_shared_through_bss_and_data() {
    let Some(obj) = load("tests/programs/globals.ks") else {
        return;
    };
    let hits = || u64::from_ne_bytes(obj.global_data(".bss").unwrap()[..8].try_into().unwrap());
    let threshold =
        || u32::from_ne_bytes(obj.global_data(".data").unwrap()[..4].try_into().unwrap());
    assert_eq!((hits(), threshold()), (0, 100), "initial values");
    let frame = tcp_frame(HOST_1, 80); // 54 bytes
    assert_eq!(verdict(&obj, "count_hits", &frame), XDP_PASS);
    assert_eq!(verdict(&obj, "count_hits", &frame), XDP_PASS);
    assert_eq!(hits(), 2);
    // Userspace writes the .data global; the program sees the new threshold.
    obj.map_update(".data", &0u32.to_ne_bytes(), &40u32.to_ne_bytes())
        .unwrap();
    assert_eq!(verdict(&obj, "count_hits", &frame), XDP_DROP);
    assert_eq!(verdict(&obj, "count_hits", &frame[..40]), XDP_PASS);
    assert_eq!(hits(), 4);
}

// ---------------------------------------------------------------------------------------------
// Helpers, defer, throw/catch, aborts, struct map values, config: tests/programs/control.ks

/// `Flow { packets: u64, bytes: u64, last_ttl: u8 }` in C layout (24 bytes).
fn flow(obj: &Loaded, src: [u8; 4]) -> Option<(u64, u64, u8)> {
    let v = lookup(obj, "flows", &src)?;
    let word = |i: usize| u64::from_ne_bytes(v[i..i + 8].try_into().unwrap());
    Some((word(0), word(8), v[16]))
}

fn exits(obj: &Loaded) -> u64 {
    u64_at(obj, "exits", &0u32.to_ne_bytes()).unwrap()
}

/// IPv4 with one 4-byte option (IHL 6) carrying TCP to `dport`.
fn tcp_frame_with_option(dport: u16) -> Vec<u8> {
    let mut ip = ipv4(
        HOST_1,
        HOST_2,
        TCP,
        &[[1u8; 4].as_slice(), &tcp(40000, dport)].concat(),
    );
    ip[0] = 0x46;
    ip[10..12].fill(0);
    let sum = checksum(&ip[..24]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    eth(ETH_P_IP, &ip)
}

#[test]
fn control_flow_defer_throw_and_in_place_struct_updates() {
    let Some(obj) = load("tests/programs/control.ks") else {
        return;
    };
    // Config `limits` is section `.data.limits`, loaded holding its default max_packets = 3.
    assert_eq!(
        obj.global_data(".data.limits").unwrap(),
        3u64.to_ne_bytes(),
        "the config's defaults are the section's initial data"
    );
    let frame = tcp_frame(HOST_1, 80);
    let len = frame.len() as u64;
    assert_eq!(verdict(&obj, "policy", &frame), XDP_PASS);
    assert_eq!(
        flow(&obj, HOST_1),
        Some((1, len, 64)),
        "created by the struct literal"
    );
    let mut ttl_9 = frame.clone();
    ttl_9[22] = 9;
    assert_eq!(verdict(&obj, "policy", &ttl_9), XDP_PASS);
    assert_eq!(verdict(&obj, "policy", &frame), XDP_PASS);
    assert_eq!(
        flow(&obj, HOST_1),
        Some((3, 3 * len, 64)),
        "updated in place"
    );
    assert_eq!(
        verdict(&obj, "policy", &frame),
        XDP_DROP,
        "over the configured budget"
    );
    assert_eq!(flow(&obj, HOST_1), Some((4, 4 * len, 64)));
    assert_eq!(exits(&obj), 4, "the defer ran on every return");
}

#[test]
fn control_flow_catch_abort_and_match() {
    let Some(obj) = load("tests/programs/control.ks") else {
        return;
    };
    let mut dead = tcp_frame(HOST_1, 80);
    dead[22] = 0;
    assert_eq!(verdict(&obj, "policy", &dead), XDP_DROP, "throw 11 caught");
    assert_eq!(flow(&obj, HOST_1), None);
    assert_eq!(
        verdict(&obj, "policy", &dead[..33]),
        XDP_ABORTED,
        "explicit short-packet verdict"
    );
    assert_eq!(exits(&obj), 2);

    // A budget of zero, written into the config's section as userspace writes it: only first
    // packets per source get past the budget check.
    obj.map_update(".data.limits", &0u32.to_ne_bytes(), &0u64.to_ne_bytes())
        .unwrap();
    assert_eq!(verdict(&obj, "policy", &tcp_frame(HOST_1, 22)), XDP_TX);
    assert_eq!(
        verdict(&obj, "policy", &tcp_frame_with_option(22)[..57]),
        XDP_DROP
    );
    assert_eq!(
        verdict(&obj, "policy", &tcp_frame_with_option(22)),
        XDP_DROP
    );
    let ssh = [10, 0, 0, 3];
    let ssh_with_option = {
        let mut f = tcp_frame_with_option(22);
        f[26..30].copy_from_slice(&ssh);
        f
    };
    assert_eq!(
        verdict(&obj, "policy", &ssh_with_option),
        XDP_TX,
        "port found behind the option"
    );
    let truncated = [10, 0, 0, 4];
    let mut f = tcp_frame(truncated, 22);
    f.truncate(37); // the port ends at byte 38: the helper's implicit check aborts the program
    assert_eq!(verdict(&obj, "policy", &f), XDP_PASS);
    assert_eq!(
        flow(&obj, truncated),
        Some((1, 37, 64)),
        "statements before the abort took effect"
    );
    let gre = eth(ETH_P_IP, &ipv4([10, 0, 0, 5], HOST_2, 47, &[0; 4]));
    assert_eq!(verdict(&obj, "policy", &gre), XDP_ABORTED, "match default");
    assert_eq!(
        verdict(&obj, "policy", &udp_frame([10, 0, 0, 6], 53)),
        XDP_PASS
    );
    assert_eq!(exits(&obj), 9, "the defer also ran on the abort");
}

// ---------------------------------------------------------------------------------------------
// Other code generation settings

#[test]
fn same_verdicts_at_o0_and_other_cpu_versions() {
    let mut ttl_0 = tcp_frame(HOST_1, 80);
    ttl_0[22] = 0;
    let frame = udp_frame(HOST_1, 53);
    let cases: [(&str, &str, Vec<u8>, u32); 9] = [
        (
            "tests/programs/bounds.ks",
            "xdp_deep",
            frame[..40].to_vec(),
            XDP_PASS,
        ),
        (
            "tests/programs/bounds.ks",
            "xdp_deep",
            frame.clone(),
            XDP_DROP,
        ),
        (
            "tests/programs/bounds.ks",
            "tc_deep",
            frame[..34].to_vec(),
            TC_ACT_OK,
        ),
        (
            "tests/programs/bounds.ks",
            "cg_deep",
            frame.clone(),
            CG_ALLOW,
        ),
        ("tests/programs/control.ks", "policy", ttl_0, XDP_DROP),
        (
            "tests/programs/control.ks",
            "policy",
            tcp_frame(HOST_1, 22)[..37].to_vec(),
            XDP_PASS,
        ),
        (
            "tests/programs/control.ks",
            "policy",
            tcp_frame_with_option(22),
            XDP_TX,
        ),
        (
            "tests/programs/vlan.ks",
            "vlan_filter",
            eth_vlan(100, ETH_P_IP, &[0; 20]),
            XDP_DROP,
        ),
        (
            "tests/programs/rewrite.ks",
            "reflect",
            frame.clone(),
            XDP_TX,
        ),
    ];
    for (optimize, cpu) in [(false, "v3"), (true, "v2"), (true, "v4"), (false, "v1")] {
        for (file, prog, packet, expected) in &cases {
            let opts = Options {
                cpu: cpu.into(),
                optimize,
            };
            let Some(obj) = load_with(file, opts) else {
                return;
            };
            assert_eq!(
                verdict(&obj, prog, packet),
                *expected,
                "{prog} with optimize={optimize}, cpu {cpu}"
            );
        }
    }
}
