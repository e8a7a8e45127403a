use super::*;
use std::sync::OnceLock;

/// The running kernel's BTF, parsed once for all tests. None (test skipped)
/// when the file is absent, unless KSC_REQUIRE_KERNEL=1.
fn kernel() -> Option<&'static KernelBtf> {
    static BTF: OnceLock<Option<KernelBtf>> = OnceLock::new();
    let path = KernelBtf::default_path();
    let required = std::env::var("KSC_REQUIRE_KERNEL").is_ok_and(|v| v == "1");
    if !path.exists() {
        assert!(
            !required,
            "KSC_REQUIRE_KERNEL=1 but {} is missing",
            path.display()
        );
        eprintln!(
            "note: {} not present, skipping kernel BTF test",
            path.display()
        );
        return None;
    }
    BTF.get_or_init(|| Some(KernelBtf::load(&path).expect("kernel BTF must parse")))
        .as_ref()
}

fn int(size: u32, signed: bool) -> KType {
    KType::Int {
        size,
        signed,
        is_bool: false,
        is_char: false,
    }
}

fn is_ptr_to_struct(t: &KType, want: &str) -> bool {
    matches!(t, KType::Ptr(inner) if matches!(&**inner, KType::Struct { name, .. } if name == want))
}

#[test]
fn missing_file_is_err() {
    let e = KernelBtf::load(Path::new("/nonexistent/ksc/vmlinux")).unwrap_err();
    assert!(e.contains("/nonexistent/ksc/vmlinux"), "{e}");
}

#[test]
fn garbage_file_is_err() {
    let path = std::env::temp_dir().join(format!("ksc-btf-garbage-{}", std::process::id()));
    std::fs::write(&path, b"this is definitely not BTF or ELF\n").unwrap();
    let r = KernelBtf::load(&path);
    let _ = std::fs::remove_file(&path);
    assert!(r.unwrap_err().contains("not an ELF or BTF file"));
    // Right magic, garbage after it: the header check refuses it.
    std::fs::write(&path, [0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0xff, 0xff]).unwrap();
    let r = KernelBtf::load(&path);
    let _ = std::fs::remove_file(&path);
    assert!(r.is_err());
    assert!(KernelBtf::load(&std::env::temp_dir()).is_err());
    assert!(KernelBtf::from_bytes(b"").is_err());
    // Right magic, truncated header.
    assert!(KernelBtf::from_bytes(&[0x9f, 0xeb, 1, 0, 24, 0]).is_err());
}

// ----- synthetic BTF: exercises decoding and cycle handling without a kernel -----

/// Builds a raw little-endian BTF blob from type records (as u32 words) and a
/// string table.
fn raw_btf(types: &[u32], strs: &[u8]) -> Vec<u8> {
    let type_len = (types.len() * 4) as u32;
    let mut v = Vec::new();
    v.extend_from_slice(&0xeb9fu16.to_le_bytes());
    v.push(1); // version
    v.push(0); // flags
    for w in [24u32, 0, type_len, type_len, strs.len() as u32] {
        v.extend_from_slice(&w.to_le_bytes());
    }
    for w in types {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v.extend_from_slice(strs);
    v
}

fn info(kind: u32, vlen: u32, kflag: bool) -> u32 {
    (kflag as u32) << 31 | kind << 24 | vlen
}

#[test]
fn synthetic_types_and_cycles() {
    // Strings: 0:"" 1:"int" 5:"s" 7:"a" 9:"loop" 14:"b" 16:"e" 18:"X"
    let strs = b"\0int\0s\0a\0loop\0b\0e\0X\0";
    #[rustfmt::skip]
    let types = [
        // [1] int, 4 bytes, signed 32 bits
        1, info(KIND_INT, 0, false), 4, (INT_SIGNED << 24) | 32,
        // [2] typedef loop -> [2] (self cycle)
        9, info(KIND_TYPEDEF, 0, false), 2,
        // [3] ptr -> [3] (pointer cycle)
        0, info(KIND_PTR, 0, false), 3,
        // [4] struct s { int a; <anon> [5]; loop b; } with kflag bitfields
        5, info(KIND_STRUCT, 3, true), 8,
            7, 1, 3 << 24, // 3-bit field at bit 0
            0, 5, 32,
            14, 2, 0,
        // [5] anonymous struct containing itself (malformed recursion)
        0, info(KIND_STRUCT, 2, false), 4,
            0, 5, 0,
            16, 1, 0,
        // [6] enum64 X-bearing, unsigned, value 2^63+1
        0, info(KIND_ENUM64, 1, false), 8,
            18, 1, 0x8000_0000,
    ];
    // Parsing validates record lengths, not acyclicity: the walks below must bound themselves.
    let btf = KernelBtf::from_bytes(&raw_btf(&types, strs)).expect("record lengths are valid");
    assert_eq!(btf.ktype(1), int(4, true));
    assert_eq!(btf.ktype(2), KType::Unknown);
    assert!(matches!(btf.ktype(3), KType::Ptr(_)));
    assert_eq!(btf.typedef_int("loop"), None);
    let s = btf.struct_by_name("s").expect("struct s");
    let a = s.member("a").unwrap();
    assert_eq!((a.offset_bits, a.bitfield_size), (0, 3));
    assert_eq!(s.member("b").unwrap().ty, KType::Unknown);
    // The self-containing anonymous struct is flattened a bounded number of times.
    let e = s.member("e").unwrap();
    assert_eq!(e.offset_bits, 32);
    assert_eq!(e.path, vec![1, 1]);
    assert_eq!(
        btf.enumerator("X"),
        Some((String::new(), (1u64 << 63 | 1) as i64))
    );
    assert_eq!(btf.enumerator("nope"), None);
    assert!(btf.struct_by_name("nope").is_none());
}

#[test]
fn c_alignment_of_nested_arrayed_and_packed_structs() {
    // Strings: 0:"" 1:"int" 5:"long" 10:"in" 13:"out" 17:"pk" 20:"x" 22:"y"
    let strs = b"\0int\0long\0in\0out\0pk\0x\0y\0";
    #[rustfmt::skip]
    let types = [
        // [1] int, [2] long
        1, info(KIND_INT, 0, false), 4, (INT_SIGNED << 24) | 32,
        5, info(KIND_INT, 0, false), 8, (INT_SIGNED << 24) | 64,
        // [3] struct in { int x; long y; }
        10, info(KIND_STRUCT, 2, false), 16,
            20, 1, 0,
            22, 2, 64,
        // [4] struct out { int x; struct in y[2]; }
        13, info(KIND_STRUCT, 2, false), 40,
            20, 1, 0,
            22, 5, 64,
        // [5] struct in[2]
        0, info(KIND_ARRAY, 0, false), 0, 3, 1, 2,
        // [6] struct pk { int x; long y; } __attribute__((packed)): y sits at byte 4
        17, info(KIND_STRUCT, 2, false), 12,
            20, 1, 0,
            22, 2, 32,
    ];
    let btf = KernelBtf::from_bytes(&raw_btf(&types, strs)).expect("valid BTF");
    let layout = |name: &str| {
        let l = btf.layout_of(&btf.struct_by_name(name).expect(name));
        (l.size, l.align)
    };
    assert_eq!(layout("in"), (16, 8));
    // The array's element is looked into, and the remembered answer is the same one.
    assert_eq!(layout("out"), (40, 8));
    assert_eq!(layout("out"), (40, 8));
    assert_eq!(layout("pk"), (12, 1));
    // Without depth the nested struct counts as byte-aligned: only `int x` remains.
    let out = btf.struct_by_name("out").unwrap();
    assert_eq!(btf.struct_align(&out, 0), 4);
}

// ----- running kernel -----

#[test]
fn task_struct_fields() {
    let Some(btf) = kernel() else { return };
    let ts = btf.struct_by_name("task_struct").expect("task_struct");
    assert!(!ts.is_union);
    assert_eq!(ts.member("pid").expect("pid").ty, int(4, true));
    assert_eq!(ts.member("tgid").expect("tgid").ty, int(4, true));
    // Self-reference stays a reference.
    assert!(is_ptr_to_struct(
        &ts.member("real_parent").unwrap().ty,
        "task_struct"
    ));
    let comm = &ts.member("comm").unwrap().ty;
    assert!(
        matches!(comm, KType::Array { elem, len: 16 } if matches!(**elem, KType::Int { size: 1, is_char: true, .. }))
    );
    assert_eq!(comm.to_string(), "char[16]");
    assert!(btf.has_struct("task_struct"));
    assert_eq!(
        btf.ktype_size(&KType::Struct {
            name: ts.name.clone(),
            id: ts.id
        }),
        Some(ts.size as u64)
    );
}

#[test]
fn xdp_md_and_xdp_action() {
    let Some(btf) = kernel() else { return };
    let md = btf.struct_by_name("xdp_md").expect("xdp_md");
    assert_eq!(md.member("data").unwrap().ty, int(4, false));
    assert_eq!(md.member("data").unwrap().offset_bits, 0);
    assert_eq!(md.member("data_end").unwrap().offset_bits, 32);
    let act = btf.enum_by_name("xdp_action").expect("xdp_action");
    assert!(act.values.contains(&("XDP_PASS".to_string(), 2)));
    assert_eq!(
        btf.enumerator("XDP_PASS"),
        Some(("xdp_action".to_string(), 2))
    );
}

#[test]
fn anonymous_members_and_bitfields_flatten() {
    let Some(btf) = kernel() else { return };
    let skb = btf.struct_by_name("sk_buff").expect("sk_buff");
    // `next` and `dev` live in anonymous unions/structs.
    let next = skb.member("next").expect("next");
    assert_eq!(next.offset_bits, 0);
    assert!(next.path.len() > 1);
    assert!(is_ptr_to_struct(
        &skb.member("dev").expect("dev").ty,
        "net_device"
    ));
    let pkt_type = skb.member("pkt_type").expect("pkt_type");
    assert_eq!(pkt_type.bitfield_size, 3);
    assert!(skb.member("len").is_some());
    let sk = btf.struct_by_name("__sk_buff").expect("__sk_buff");
    assert!(matches!(
        sk.member("cb").unwrap().ty,
        KType::Array { len: 5, .. }
    ));
}

#[test]
fn integer_typedefs() {
    let Some(btf) = kernel() else { return };
    assert_eq!(btf.typedef_int("__u32"), Some(int(4, false)));
    assert_eq!(btf.typedef_int("u64"), Some(int(8, false)));
    assert_eq!(btf.typedef_int("pid_t"), Some(int(4, true)));
    assert_eq!(btf.typedef_int("__u8"), Some(int(1, false)));
    assert!(matches!(
        btf.typedef_int("bool"),
        Some(KType::Int {
            is_bool: true,
            size: 1,
            ..
        })
    ));
    assert_eq!(btf.typedef_int("atomic_t"), None);
    assert_eq!(btf.typedef_int("no_such_typedef_ksc"), None);
}

#[test]
fn struct_ops_tcp_congestion_ops() {
    let Some(btf) = kernel() else { return };
    assert!(btf.is_struct_ops_type("tcp_congestion_ops"));
    assert!(!btf.is_struct_ops_type("task_struct"));
    let ms = btf
        .struct_ops_members("tcp_congestion_ops")
        .expect("tcp_congestion_ops");
    let get = |n: &str| ms.iter().find(|m| m.name == n).map(|m| &m.kind);
    match get("ssthresh").expect("ssthresh") {
        KOpsKind::Func(sig) => {
            assert_eq!(sig.params.len(), 1);
            assert!(is_ptr_to_struct(&sig.params[0].1, "sock"));
            assert_eq!(sig.ret, int(4, false));
        }
        other => panic!("ssthresh: {other:?}"),
    }
    match get("cong_avoid").expect("cong_avoid") {
        KOpsKind::Func(sig) => {
            assert_eq!(sig.params.len(), 3);
            assert_eq!(sig.ret, KType::Void);
        }
        other => panic!("cong_avoid: {other:?}"),
    }
    match get("name").expect("name") {
        KOpsKind::Data(KType::Array { elem, len: 16 }) => {
            assert!(matches!(
                **elem,
                KType::Int {
                    size: 1,
                    is_char: true,
                    ..
                }
            ))
        }
        other => panic!("name: {other:?}"),
    }
}

#[test]
fn tp_btf_sched_switch() {
    let Some(btf) = kernel() else { return };
    let args = btf
        .tp_btf_args("sched_switch")
        .expect("btf_trace_sched_switch");
    // (bool preempt, task_struct *prev, task_struct *next, unsigned int prev_state)
    assert!(args.len() >= 3, "{args:?}");
    assert!(
        matches!(args[0].1, KType::Int { is_bool: true, .. }),
        "{args:?}"
    );
    assert!(is_ptr_to_struct(&args[1].1, "task_struct"));
    assert!(is_ptr_to_struct(&args[2].1, "task_struct"));
    assert!(btf.tp_btf_args("no_such_event_ksc").is_none());
    assert!(btf.has_struct("trace_event_raw_sched_switch"));
    assert!(btf.has_struct("trace_event_raw_sys_enter"));
}

#[test]
fn lsm_file_open_and_kernel_funcs() {
    let Some(btf) = kernel() else { return };
    let sig = btf.lsm_hook_args("file_open").expect("bpf_lsm_file_open");
    assert_eq!(sig.params.len(), 1);
    assert!(is_ptr_to_struct(&sig.params[0].1, "file"));
    assert_eq!(sig.ret, int(4, true));
    let vr = btf.func_proto("vfs_read").expect("vfs_read");
    assert_eq!(vr.params.len(), 4);
    assert_eq!(vr.params[0].0, "file");
    assert!(is_ptr_to_struct(&vr.params[0].1, "file"));
    assert_eq!(vr.params[2].1, int(8, false)); // size_t
    assert!(!vr.variadic);
    assert!(btf.func_proto("no_such_function_ksc").is_none());
}

#[test]
fn scans_and_index_answer_alike() {
    // The first lookups of a kind scan, later ones use an index: asking in opposite orders makes
    // each name answered both ways.
    if kernel().is_none() {
        return;
    }
    let names = [
        ("task_struct", KIND_STRUCT),
        ("sk_buff", KIND_STRUCT),
        ("file", KIND_STRUCT),
        ("inode", KIND_STRUCT),
        ("sock", KIND_STRUCT),
        ("tcp_sock", KIND_STRUCT),
        ("xdp_md", KIND_STRUCT),
        ("linux_binprm", KIND_STRUCT),
        ("xdp_action", KIND_ENUM),
        ("u32", KIND_TYPEDEF),
        ("pid_t", KIND_TYPEDEF),
        ("no_such_type_ksc", KIND_STRUCT),
        ("vfs_read", KIND_FUNC),
        ("tcp_slow_start", KIND_FUNC),
        ("bpf_lsm_file_open", KIND_FUNC),
        ("schedule", KIND_FUNC),
        ("do_sys_openat2", KIND_FUNC),
        ("tcp_cong_avoid_ai", KIND_FUNC),
        ("kfree", KIND_FUNC),
        ("vfs_write", KIND_FUNC),
        ("no_such_function_ksc", KIND_FUNC),
    ];
    let enumerators = [
        "XDP_PASS",
        "XDP_DROP",
        "TCP_ESTABLISHED",
        "BPF_ANY",
        "TC_ACT_OK",
        "IPPROTO_TCP",
        "SOCK_STREAM",
        "TASK_COMM_LEN",
        "BPF_MAP_TYPE_HASH",
        "NO_SUCH_ENUMERATOR_KSC",
    ];
    let forward = KernelBtf::load_default().expect("kernel BTF");
    let backward = KernelBtf::load_default().expect("kernel BTF");
    let ask = |btf: &KernelBtf, order: &mut dyn Iterator<Item = usize>| {
        let mut types = vec![None; names.len()];
        let mut values = vec![None; enumerators.len()];
        for i in order {
            if let Some(&(name, kind)) = names.get(i) {
                types[i] = btf.find(name, kind);
            }
            if let Some(name) = enumerators.get(i) {
                values[i] = btf.enumerator_with_id(name);
            }
        }
        (types, values)
    };
    let n = names.len().max(enumerators.len());
    let (ft, fv) = ask(&forward, &mut (0..n));
    let (bt, bv) = ask(&backward, &mut (0..n).rev());
    assert_eq!(ft, bt);
    assert_eq!(fv, bv);
    assert!(ft[0].is_some() && ft[12].is_some() && ft[11].is_none() && ft[20].is_none());
    assert_eq!(fv[0].map(|(_, v)| v), Some(2));
    assert_eq!(fv[9], None);
}

/// `raw_btf` with every header field and type word byte-swapped (strings are bytes).
fn swapped(blob: &[u8]) -> Vec<u8> {
    let mut v = blob.to_vec();
    v[..2].reverse();
    let types_end = 24 + u32::from_le_bytes(blob[16..20].try_into().unwrap()) as usize;
    for w in v[4..types_end].chunks_exact_mut(4) {
        w.reverse();
    }
    v
}

/// A minimal ELF64 little-endian object holding `btf` as its `.BTF` section.
fn elf_with_btf(btf: &[u8]) -> Vec<u8> {
    let shstrtab = b"\0.BTF\0.shstrtab\0";
    let data_at = 64;
    let names_at = data_at + btf.len();
    let shoff = (names_at + shstrtab.len()).next_multiple_of(8);
    let mut v = vec![0u8; 64];
    v[..4].copy_from_slice(b"\x7fELF");
    v[4] = 2; // 64-bit
    v[5] = 1; // little-endian
    v[6] = 1;
    v[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
    v[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    v[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
    v[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(btf);
    v.extend_from_slice(shstrtab);
    v.resize(shoff, 0);
    let section = |name: u32, offset: usize, size: usize| {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(&name.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
        h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
        h
    };
    v.extend(section(0, 0, 0));
    v.extend(section(1, data_at, btf.len()));
    v.extend(section(6, names_at, shstrtab.len()));
    v
}

#[test]
fn foreign_byte_order_and_elf_containers() {
    let strs = b"\0int\0s\0a\0";
    #[rustfmt::skip]
    let types = [
        1, info(KIND_INT, 0, false), 4, (INT_SIGNED << 24) | 32,
        5, info(KIND_STRUCT, 1, false), 4,
            7, 1, 0,
    ];
    let blob = raw_btf(&types, strs);
    for bytes in [
        blob.clone(),
        swapped(&blob),
        elf_with_btf(&blob),
        elf_with_btf(&swapped(&blob)),
    ] {
        let btf = KernelBtf::from_bytes(&bytes).expect("parses");
        let s = btf.struct_by_name("s").expect("struct s");
        assert_eq!(s.member("a").map(|m| &m.ty), Some(&int(4, true)));
        assert_eq!(btf.type_size(2), Some(4));
    }
    let mut no_btf = elf_with_btf(&blob);
    no_btf[64 + blob.len() + 1] = b'X'; // ".BTF" → ".XTF"
    assert!(KernelBtf::from_bytes(&no_btf)
        .unwrap_err()
        .contains("no .BTF section"));
}

#[test]
fn malformed_type_sections_are_refused() {
    let strs = b"\0a\0";
    // A struct claiming two members but carrying one.
    let short = raw_btf(&[1, info(KIND_STRUCT, 2, false), 4, 1, 0, 0], strs);
    assert!(KernelBtf::from_bytes(&short)
        .unwrap_err()
        .contains("runs past"));
    let unknown = raw_btf(&[1, info(31, 0, false), 0], strs);
    assert!(KernelBtf::from_bytes(&unknown)
        .unwrap_err()
        .contains("unknown kind 31"));
    // Strings must be NUL-terminated.
    assert!(KernelBtf::from_bytes(&raw_btf(&[], b"\0a")).is_err());
    // Ids and string offsets out of range are no type and no name, never a panic.
    let dangling = raw_btf(&[99, info(KIND_PTR, 0, false), 1234], strs);
    let btf = KernelBtf::from_bytes(&dangling).expect("checked lazily");
    assert_eq!(btf.type_name(1), "");
    assert_eq!(btf.ktype(1), KType::Ptr(Box::new(KType::Unknown)));
    assert_eq!(btf.type_size(1), Some(8));
    assert_eq!(btf.ktype(7), KType::Unknown);
}

/// A BTF blob: header, the given type records and string section.
fn blob(types: &[u32], strs: &[u8]) -> Vec<u8> {
    let type_len = (types.len() * 4) as u32;
    let mut v = vec![0x9f, 0xeb, 1, 0];
    for w in [24u32, 0, type_len, type_len, strs.len() as u32] {
        v.extend_from_slice(&w.to_ne_bytes());
    }
    for w in types {
        v.extend_from_slice(&w.to_ne_bytes());
    }
    v.extend_from_slice(strs);
    v
}

#[test]
fn split_btf_functions_by_name() {
    // Base: one int named "int" (strings "\0int\0", length 5).
    let base = blob(&[1, 1 << 24, 4, 32], b"\0int\0");
    let base = KernelBtf::from_bytes(&base).unwrap();
    // Module: a prototype `void (void)` (id 2) and FUNC `mod_kfunc` (id 3) whose name is the
    // module's own string at 5 + 1; a second FUNC named with the base's "int".
    let proto = 13 << 24;
    let func = 12 << 24;
    let module = blob(&[0, proto, 0, 6, func, 2, 1, func, 2], b"\0mod_kfunc\0");
    assert!(base.split_defines_func(&module, "mod_kfunc").unwrap());
    assert!(base.split_defines_func(&module, "int").unwrap());
    assert!(!base.split_defines_func(&module, "other").unwrap());
    assert!(base.split_defines_func(b"junk", "mod_kfunc").is_err());
}

#[test]
fn module_btf_beside_vmlinux() {
    let dir = std::env::temp_dir().join(format!("ksc-btf-modules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vmlinux"), blob(&[1, 1 << 24, 4, 32], b"\0int\0")).unwrap();
    let module = blob(&[0, 13 << 24, 0, 6, 12 << 24, 2], b"\0mod_kfunc\0");
    std::fs::write(dir.join("a_mod"), &module).unwrap();
    std::fs::write(dir.join("b_junk"), b"not btf").unwrap();
    let lazy = LazyBtf::new(dir.join("vmlinux"));
    let found = lazy.module_defining("mod_kfunc");
    let absent = lazy.module_defining("nowhere");
    // BTF not read from a file named vmlinux has no modules beside it.
    std::fs::copy(dir.join("vmlinux"), dir.join("base.btf")).unwrap();
    let other = LazyBtf::new(dir.join("base.btf")).module_defining("mod_kfunc");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(found.as_deref(), Some("a_mod"));
    assert_eq!(absent, None);
    assert_eq!(other, None);
}
