//! Tests against the running kernel. Objects are assembled with LLVM 19's `llvm-mc` (and `llc`
//! for the one that needs BTF line info), since ksc's own BPF code generator is not used here.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const LLVM_BIN: &str = "/usr/lib/llvm-19/bin";
const EACCES: i32 = 13;
const EPERM: i32 = 1;

/// Whether kernel-backed tests can run. With KSC_REQUIRE_KERNEL=1 (CI) an unusable bpf() fails
/// the test instead of skipping it.
fn kernel() -> bool {
    if bpf_available() {
        return true;
    }
    let required = std::env::var("KSC_REQUIRE_KERNEL").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "KSC_REQUIRE_KERNEL=1 but the bpf() system call is unusable"
    );
    eprintln!("note: bpf() unusable (not root, or no CONFIG_BPF_SYSCALL), skipping kernel test");
    false
}

/// A fresh scratch directory per call (tests run in parallel).
fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ksc-kernel-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_llvm(tool: &str, args: &[&str], input: &Path, output: &Path) {
    let status = Command::new(Path::new(LLVM_BIN).join(tool))
        .args(args)
        .arg(input)
        .arg("-o")
        .arg(output)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {LLVM_BIN}/{tool} (apt-get install llvm-19): {e}"));
    assert!(status.success(), "{tool} failed on {}", input.display());
}

/// One global function per (section, name, body); plus the GPL license section.
fn assemble(programs: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut src = String::new();
    for (section, name, body) in programs {
        src += &format!(
            "\t.section {section},\"ax\",@progbits\n\t.globl {name}\n\t.type {name},@function\n\
             {name}:\n{body}\n\t.size {name}, .-{name}\n"
        );
    }
    src += "\t.section license,\"aw\",@progbits\n\t.globl _license\n_license:\n\t.asciz \"GPL\"\n";
    let dir = scratch();
    let (s, o) = (dir.join("t.s"), dir.join("t.o"));
    std::fs::write(&s, src).unwrap();
    run_llvm(
        "llvm-mc",
        &["-triple", "bpfel", "-mcpu=v3", "-filetype=obj"],
        &s,
        &o,
    );
    let elf = std::fs::read(&o).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    elf
}

const PASS: &str = "\tr0 = 2\n\texit";
/// Reads r2, which the verifier knows is uninitialised at entry.
const UNINIT: &str = "\tr0 = r2\n\texit";

fn rejected(r: &ProgramReport) -> (i32, &str) {
    match &r.verdict {
        Verdict::Rejected { errno, last_line } => (*errno, last_line.as_str()),
        Verdict::Accepted => panic!(
            "{} was accepted, expected a rejection; log:\n{}",
            r.name, r.log
        ),
    }
}

#[test]
fn bpf_is_available() {
    let required = std::env::var("KSC_REQUIRE_KERNEL").is_ok_and(|v| v == "1");
    let available = bpf_available();
    assert!(
        available || !required,
        "KSC_REQUIRE_KERNEL=1 but bpf_available() is false"
    );
    // A second probe must not leak or fail because of the first.
    assert_eq!(bpf_available(), available);
}

#[test]
fn accepted_xdp_program() {
    let elf = assemble(&[("xdp", "pass", PASS)]);
    if !kernel() {
        return;
    }
    let reports = verify_object(&elf, "ok").unwrap();
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(
        (r.name.as_str(), r.section.as_str(), r.kind.as_str()),
        ("pass", "xdp", "xdp")
    );
    assert_eq!(r.verdict, Verdict::Accepted, "log:\n{}", r.log);
    assert_eq!(r.insns, 2);
    assert!(
        r.processed.is_some_and(|n| n > 0),
        "no processed figure in:\n{}",
        r.log
    );
}

#[test]
fn rejected_uninitialised_register() {
    let elf = assemble(&[("xdp", "bad", UNINIT)]);
    if !kernel() {
        return;
    }
    let reports = verify_object(&elf, "bad").unwrap();
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    let (errno, last_line) = rejected(r);
    assert_eq!(errno, EACCES);
    assert_eq!(last_line, "R2 !read_ok");
    // The full log: the instruction trace, the complaint and the statistics.
    assert!(r.log.contains("0: (bf) r0 = r2"), "log:\n{}", r.log);
    assert!(r.log.contains("R2 !read_ok"));
    assert!(r.processed.is_some());
}

#[test]
fn every_program_is_reported() {
    // libbpf alone would stop at `bad` and never load `after`.
    let elf = assemble(&[
        ("xdp", "before", PASS),
        ("xdp", "bad", "\texit"),
        ("tc", "after", "\tr0 = 0\n\texit"),
    ]);
    if !kernel() {
        return;
    }
    let reports = verify_object(&elf, "mixed").unwrap();
    let names: Vec<_> = reports.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["before", "bad", "after"]);
    assert_eq!(reports[0].verdict, Verdict::Accepted);
    assert_eq!(rejected(&reports[1]), (EACCES, "R0 !read_ok"));
    assert_eq!(
        reports[2].verdict,
        Verdict::Accepted,
        "log:\n{}",
        reports[2].log
    );
    assert_eq!(reports[2].kind, "tc");
    assert!(reports.iter().all(|r| r.processed.is_some()));
}

#[test]
fn two_rejections_in_a_row() {
    let elf = assemble(&[
        ("xdp", "bad1", "\texit"),
        ("xdp", "bad2", UNINIT),
        ("xdp", "good", PASS),
    ]);
    if !kernel() {
        return;
    }
    let reports = verify_object(&elf, "two").unwrap();
    assert_eq!(rejected(&reports[0]).1, "R0 !read_ok");
    assert_eq!(rejected(&reports[1]).1, "R2 !read_ok");
    assert_eq!(reports[2].verdict, Verdict::Accepted);
}

#[test]
fn long_log_keeps_its_end() {
    // ~40k traced instructions give a level-1 log well over the first 1 MiB buffer.
    let body = "\tr0 = 0\n".repeat(40_000) + UNINIT;
    let elf = assemble(&[("xdp", "long", &body)]);
    if !kernel() {
        return;
    }
    let r = &verify_object(&elf, "long").unwrap()[0];
    // The errno of the refusal, not the ENOSPC of a log too long for its buffer.
    assert_eq!(rejected(r), (EACCES, "R2 !read_ok"));
    assert!(r.processed.is_some(), "no statistics in the log");
    assert_eq!(r.insns, 40_002);
    if r.log.contains("\n0: (b7) r0 = 0") {
        // A kernel that keeps a long log's start (before 6.4): the buffer grew to hold it all.
        assert!(r.log.len() > FULL_LOG_MIN, "log only {} bytes", r.log.len());
    } else {
        // One that keeps the end: the first buffer held the complaint and the statistics, and
        // no larger one was tried (it would have verified the program again).
        assert!(r.log.len() <= FULL_LOG_MIN, "log of {} bytes", r.log.len());
    }
}

#[test]
fn fentry_is_refused_before_the_verifier() {
    // The test kernel refuses fentry with EPERM before verification (see TOOLCHAIN.md).
    let elf = assemble(&[
        ("fentry/do_nanosleep", "fe", "\tr0 = 0\n\texit"),
        ("xdp", "pass", PASS),
    ]);
    if !kernel() {
        return;
    }
    let reports = verify_object(&elf, "fentry").unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].kind, "fentry");
    if reports[0].verdict != Verdict::Accepted {
        let (errno, last_line) = rejected(&reports[0]);
        assert_eq!(errno, EPERM, "{last_line}");
        assert!(
            last_line.contains("refused the fentry program before verification"),
            "{last_line}"
        );
        // Root lacks no privilege: the refusal is the kernel's own.
        let as_root = unsafe { libc::geteuid() } == 0;
        assert_eq!(
            last_line.contains("this kernel itself refuses fentry programs"),
            as_root,
            "{last_line}"
        );
        assert_eq!(last_line.contains("needs root"), !as_root, "{last_line}");
        assert!(
            !reports[0].log.is_empty(),
            "libbpf's messages stand in for the missing log"
        );
    }
    assert_eq!(reports[1].verdict, Verdict::Accepted);
}

#[test]
fn unknown_attach_target_is_libbpfs_complaint() {
    let elf = assemble(&[(
        "fentry/ksc_no_such_kernel_function",
        "fe",
        "\tr0 = 0\n\texit",
    )]);
    if !kernel() {
        return;
    }
    let reports = verify_object(&elf, "target").unwrap();
    let (_, last_line) = rejected(&reports[0]);
    assert!(
        last_line.contains("ksc_no_such_kernel_function"),
        "{last_line}"
    );
}

#[test]
fn garbage_elf_is_open_error() {
    for elf in [
        &b"definitely not an ELF file"[..],
        b"",
        b"\x7fELF\x02\x01\x01\0garbage",
    ] {
        match verify_object(elf, "garbage") {
            Err(LoadError::Open(msg)) => assert!(!msg.is_empty()),
            other => panic!("expected LoadError::Open, got {other:?}"),
        }
    }
}

#[test]
fn object_name_with_nul_is_harmless() {
    let elf = assemble(&[("xdp", "pass", PASS)]);
    if !kernel() {
        return;
    }
    assert_eq!(
        verify_object(&elf, "a\0b").unwrap()[0].verdict,
        Verdict::Accepted
    );
}

#[test]
fn line_info_maps_back_to_source() {
    // A real verifier log with BTF line info: llc writes .BTF.ext from the debug locations and
    // reads the source text from the .ks file on disk.
    let dir = scratch();
    std::fs::write(dir.join("fw.ks"), "@xdp fn fw(ctx: *xdp_md) -> xdp_action {\n    var n = 0\n    if (ctx.bad > 3) {\n        return XDP_PASS\n    }\n    return XDP_DROP\n}\n").unwrap();
    let ir = format!(
        r#"target datalayout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"
target triple = "bpfel"
@_license = global [4 x i8] c"GPL\00", section "license", align 1
define i32 @fw(ptr %ctx) #0 section "xdp" !dbg !5 {{
  call void @llvm.dbg.value(metadata ptr %ctx, metadata !12, metadata !DIExpression()), !dbg !13
  %p = getelementptr i8, ptr %ctx, i64 100, !dbg !14
  %x = load i32, ptr %p, align 4, !dbg !14
  %c = icmp ugt i32 %x, 3, !dbg !14
  %r = select i1 %c, i32 2, i32 1, !dbg !15
  ret i32 %r, !dbg !15
}}
declare void @llvm.dbg.value(metadata, metadata, metadata)
attributes #0 = {{ nounwind }}
!llvm.dbg.cu = !{{!0}}
!llvm.module.flags = !{{!3, !4}}
!0 = distinct !DICompileUnit(language: DW_LANG_C99, file: !1, producer: "ksc-test", isOptimized: false, runtimeVersion: 0, emissionKind: FullDebug)
!1 = !DIFile(filename: "fw.ks", directory: "{dir}")
!3 = !{{i32 7, !"Dwarf Version", i32 5}}
!4 = !{{i32 2, !"Debug Info Version", i32 3}}
!5 = distinct !DISubprogram(name: "fw", scope: !1, file: !1, line: 1, type: !6, scopeLine: 1, flags: DIFlagPrototyped, spFlags: DISPFlagDefinition, unit: !0, retainedNodes: !11)
!6 = !DISubroutineType(types: !7)
!7 = !{{!8, !9}}
!8 = !DIBasicType(name: "int", size: 32, encoding: DW_ATE_signed)
!9 = !DIDerivedType(tag: DW_TAG_pointer_type, baseType: null, size: 64)
!11 = !{{!12}}
!12 = !DILocalVariable(name: "ctx", arg: 1, scope: !5, file: !1, line: 1, type: !9, flags: DIFlagArtificial)
!13 = !DILocation(line: 1, column: 1, scope: !5)
!14 = !DILocation(line: 3, column: 5, scope: !5)
!15 = !DILocation(line: 6, column: 5, scope: !5)
"#,
        dir = dir.display()
    );
    let (ll, o) = (dir.join("fw.ll"), dir.join("fw.o"));
    std::fs::write(&ll, ir).unwrap();
    run_llvm(
        "llc",
        &["-march=bpfel", "-mcpu=v3", "-filetype=obj"],
        &ll,
        &o,
    );
    let elf = std::fs::read(&o).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    if !kernel() {
        return;
    }
    let reports = verify_object(&elf, "fw").unwrap();
    let (_, last_line) = rejected(&reports[0]);
    assert_eq!(
        last_line, "invalid bpf_context access off=100 size=4",
        "log:\n{}",
        reports[0].log
    );
    let (file, line, text) = log_source_location(&reports[0].log).expect("line info in the log");
    // LLVM 19 records the DIFile's name as given (it read the text from directory/name).
    assert_eq!(file, "fw.ks");
    assert_eq!((line, text.as_str()), (3, "if (ctx.bad > 3) {"));
}

// Verifier log excerpts in the format of kernel 6.x (`; <source> @ <file>:<line>` before the
// instructions of each line), written for these tests.
const LOG_REJECTED: &str = "\
func#0 @0
0: R1=ctx() R10=fp0
; var hdr = ctx.data @ fw.ks:10
0: (61) r2 = *(u32 *)(r1 +0)          ; R1=ctx() R2_w=pkt(r=0)
; var x = hdr[20] @ fw.ks:11
1: (71) r3 = *(u8 *)(r2 +20)
; if (x > 3) { @ fw.ks:12
2: (25) if r3 > 0x3 goto pc+2
invalid access to packet, off=20 size=1, R2(id=0,off=20,r=0)
R2 offset is outside of the packet
processed 3 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
";

#[test]
fn source_location_is_the_last_annotation() {
    assert_eq!(
        log_source_location(LOG_REJECTED),
        Some(("fw.ks".to_owned(), 12, "if (x > 3) {".to_owned()))
    );
}

#[test]
fn source_location_edge_cases() {
    // Absolute paths; " @ " inside the source text; empty source text (file unreadable at build).
    let log = "; return a @ b @ /home/u/src/fw.ks:7\n0: (b7) r0 = 2\n;  @ lib/util.ks:42\n1: (95) exit\nR0 !read_ok\n";
    assert_eq!(
        log_source_location(log),
        Some(("lib/util.ks".to_owned(), 42, String::new()))
    );
    assert_eq!(
        log_source_location("; return a @ b @ /home/u/src/fw.ks:7\n"),
        Some(("/home/u/src/fw.ks".to_owned(), 7, "return a @ b".to_owned()))
    );
    // No line info at all (object without .BTF.ext), comments that are not annotations.
    assert_eq!(log_source_location("0: (95) exit\nR0 !read_ok\n"), None);
    assert_eq!(
        log_source_location("; just a comment\n; x @ fw.ks:notanumber\n"),
        None
    );
    assert_eq!(log_source_location(""), None);
}

#[test]
fn complaint_and_statistics_from_logs() {
    assert_eq!(
        complaint(LOG_REJECTED).as_deref(),
        Some("R2 offset is outside of the packet")
    );
    assert_eq!(processed(LOG_REJECTED), Some(3));
    let stats = "verification time 9 usec\nstack depth 0\nprocessed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";
    assert_eq!(complaint(stats), None);
    assert_eq!(processed(stats), Some(2));
    assert_eq!(processed(""), None);
}

#[test]
fn kinds_from_section_names() {
    for (section, kind) in [
        ("xdp", "xdp"),
        ("xdp.frags", "xdp"),
        ("tcx/ingress", "tc"),
        ("tcx/egress", "tc"),
        ("tc", "tc"),
        ("tc/ingress", "tc"),
        ("tracepoint/syscalls/sys_enter_openat", "tracepoint"),
        ("tp/sched/sched_switch", "tracepoint"),
        ("tp_btf/sched_switch", "tp_btf"),
        ("fentry/do_nanosleep", "fentry"),
        ("fentry.s/do_nanosleep", "fentry"),
        ("fexit/do_nanosleep", "fexit"),
        ("kprobe/do_sys_openat2", "kprobe"),
        ("kretprobe/do_sys_openat2", "kretprobe"),
        ("perf_event", "perf_event"),
        ("lsm/file_open", "lsm"),
        ("lsm.s/file_open", "lsm"),
        ("cgroup_skb/ingress", "cgroup_skb"),
        ("struct_ops/tcp_ca_init", "struct_ops"),
    ] {
        assert_eq!(kind_of(section), kind, "{section}");
    }
}

#[test]
fn a_refused_btf_is_named_with_the_kernel_reason() {
    let messages = vec![
        "libbpf: loading object 'x' from buffer\n".to_string(),
        "[60] STRUCT trace_event_raw_sys_enter size=0 vlen=3\n\tid type_id=51 bits_offset=64 Member bits_offset exceeds its struct size\n".to_string(),
        "libbpf: Error loading .BTF into kernel: -EINVAL. BTF is optional, ignoring.\n".to_string(),
    ];
    assert_eq!(
        refused_btf(&messages).as_deref(),
        Some("id type_id=51 bits_offset=64 Member bits_offset exceeds its struct size")
    );
    assert_eq!(refused_btf(&messages[..1]), None);
}

/// A loader that answers every attempt with ENOSPC and `log(size)`, counting the attempts.
fn too_long_log(
    calls: &AtomicUsize,
    log: fn(usize) -> String,
) -> impl Fn(&dyn Fn(usize) -> bool, u32, usize) -> Result<ffi::Attempt, LoadError> + '_ {
    move |_, _, size| {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(ffi::Attempt {
            errno: Some(ENOSPC),
            progs: vec![ffi::ProgInfo {
                name: "p".into(),
                section: "xdp".into(),
                insns: 2,
                log: log(size),
            }],
            messages: vec![],
        })
    }
}

#[test]
fn rotated_log_is_not_verified_again() {
    // A kernel that keeps the end: the statistics are in the first buffer.
    let calls = AtomicUsize::new(0);
    let load = too_long_log(&calls, |_| {
        "R2 !read_ok\nprocessed 1000000 insns (limit 1000000)\n".into()
    });
    let r = load_alone(&load, 0, Some(EACCES)).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(r.processed, Some(1_000_000));
    // The refusal's errno from the short-log load, not the log buffer's ENOSPC.
    assert_eq!(rejected(&r).0, EACCES);
}

#[test]
fn truncated_log_start_grows_the_buffer() {
    // A kernel that keeps the start: no statistics until the buffer holds the whole log.
    let calls = AtomicUsize::new(0);
    let load = too_long_log(&calls, |size| {
        let end = if size > FULL_LOG_MIN {
            "processed 9 insns"
        } else {
            ""
        };
        format!("0: (b7) r0 = 0\n{end}\n")
    });
    let r = load_alone(&load, 0, Some(EACCES)).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(r.processed, Some(9));
}
