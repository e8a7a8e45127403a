/* internal.h — state and helpers shared by the runtime's source files; not part of the ABI.
 *
 * The runtime serves one BPF object at a time: the one ksrt_start loaded for `main`, or the fresh
 * copy loaded for the current test. Everything derived from it (resolved maps, program handles,
 * attachments, mmapped memory, cached global addresses) hangs off `rt` and is released together
 * with the object by rt_object_destroy. */
#ifndef KSRT_INTERNAL_H
#define KSRT_INTERNAL_H

#include "kernel_compat.h"
#include "ksrt.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>

/* One kernel attachment. Records stay on the registry list until the object is destroyed, so
 * handles held by compiled code stay valid after a detach; `live` says whether it is attached.
 * The fatal-signal handler walks the list, so a record is complete before it is linked in. */
struct rt_attachment {
    struct rt_attachment *next;
    volatile sig_atomic_t live;
    struct bpf_link *link;   /* libbpf link (tcx, tracing, cgroup, perf event, struct_ops) */
    int link_fd;             /* XDP link made with bpf_link_create, else -1 */
    int perf_fd;             /* the perf event of a perf attachment, else -1 */
    bool tc;                 /* a clsact filter (the fallback when TCX is refused) */
    bool own_qdisc;          /* tc: the runtime created the clsact qdisc, removed with the last filter */
    struct bpf_tc_hook hook;
    struct bpf_tc_opts tc_opts;
    const char *impl;        /* a struct_ops registration: the impl's map name */
    int struct_ops_fd;       /* a registration without link (kernels before 6.4): the map, else -1 */
};

struct ksrt_prog {
    struct ksrt_prog *next;
    struct bpf_program *prog;
    struct rt_attachment *att; /* current attachment; NULL when detached */
};

/* A perf attachment is an attachment record handed out as an opaque handle. */
struct ksrt_perf {
    struct rt_attachment att;
};

/* A map of the current object, resolved by name once. */
struct rt_map {
    struct rt_map *next;
    char *name;
    struct bpf_map *map;
    int fd;
    enum bpf_map_type type;
    uint32_t key_size, value_size, max_entries;
    bool percpu;
    size_t n_slots, slot_size; /* value layout in syscalls: n_slots slots (CPUs) of slot_size bytes */
    void *scratch;             /* n_slots * slot_size bytes, for composing and summing values */
    void *mem;                 /* mmapped values (BPF_F_MMAPABLE arrays), or NULL */
    size_t mem_size;
    /* RINGBUF and PERF_EVENT_ARRAY maps */
    int32_t (*handler)(void *record);
    struct ring_buffer *ringbuf;
    struct perf_buffer *perfbuf;
    void *record_copy; /* 8-byte-aligned copy of a perf sample for the handler */
    size_t record_copy_size;
    bool stopped;      /* a handler returned non-zero during the current consume */
    int32_t stop_value;
    int64_t consumed;
};

/* A resolved global or config address. */
struct rt_global {
    struct rt_global *next;
    char *name;
    bool config;
    void *addr;
};

struct rt_state {
    const struct ksrt_unit *unit;
    struct bpf_object *obj;
    struct rt_map *maps;
    struct ksrt_prog *progs;
    struct rt_global *globals;
    struct rt_attachment *attachments;
    /* test mode */
    bool in_test;
    sigjmp_buf test_jmp;
    char reason[1024];
    uint32_t test_len;
    int dispatch_epfd; /* epoll fd of a running ksrt_dispatch, else -1 (a handler may longjmp out) */
    int stopped_by;    /* the stop signal (SIGINT/SIGTERM) that ended a dispatch, else 0 */
};

extern struct rt_state rt;

/* Why rt_object_load failed. `summary` is the short reason (tests: `object load failed:
 * SUMMARY`), `headline` what ksrt_start prints after "ksrt: BASE: ", `detail` the verifier log
 * or, with KSRT_VERBOSE=1 in the environment, libbpf's messages to print below it (may be empty;
 * valid until the next load). */
struct rt_load_failure {
    char summary[512];
    char headline[1024];
    const char *detail;
    /* libbpf said more than the headline, and it is not shown: KSRT_VERBOSE=1 shows it. */
    bool messages_hidden;
};

/* unit.c */
int rt_object_load(bool test_mode, struct rt_load_failure *failure);
int rt_load_module(struct rt_load_failure *failure); /* <base>_kmod, once per process; 0 or -1 */
/* The unit's kernel module when this process loaded it (and must unload it), else NULL. */
const char *rt_loaded_module(void);
/* delete_module(name), retried while the programs that used its kfuncs are being freed. */
void rt_unload_module(const char *name);
/* Why a module's kfuncs are missing when the module has no BTF (built against kernel headers
 * without vmlinux), and what to do. */
#define RT_MODULE_NO_BTF                                                                                       \
    "the module has no BTF, without which the kernel registers no kfuncs: build it with `make` in the "        \
    "directory ksc wrote it to (its Makefile generates the BTF the kernel headers cannot)"
void rt_module_moved(pid_t from); /* this process unloads the module that `from` loaded */
void rt_undo_startup(void); /* removes the pins and directories of a start-up that failed midway */
void rt_object_destroy(void);
void rt_install_signal_handlers(void);
/* After a stop signal ended a dispatch, a program that dispatches or sleeps again ends here as
 * the signal ends it outside dispatch: detached, status 128 + N (§15.3). */
void rt_end_if_stopped(void);

/* errors.c */

/* The operation that failed, for the usual cause of an errno. */
enum rt_op {
    RT_OP_OTHER,
    RT_OP_LOAD,              /* bpf() while loading the object */
    RT_OP_ATTACH_NETDEV,     /* xdp, tc: the target is a network interface */
    RT_OP_ATTACH_TRACEPOINT, /* the target is CATEGORY/EVENT */
    RT_OP_ATTACH_CGROUP,     /* the target is a cgroup v2 directory */
    RT_OP_ATTACH_KERNEL,     /* fentry, kprobe, lsm, tp_btf, …: the target is in the section */
    RT_OP_PERF,              /* perf_event_open */
    RT_OP_REGISTER,          /* struct_ops registration */
    RT_OP_TEST_RUN,          /* BPF_PROG_TEST_RUN */
    RT_OP_MODULE,            /* loading or unloading the kernel module */
    RT_OP_MAP_WRITE,         /* a userspace map update */
    RT_OP_MAP_CREATE,        /* creating a map while loading the object */
    RT_OP_MOUNT,             /* mounting the BPF filesystem */
};

/* An errno as messages show it: "strerror (ENAME)", then "; " and its usual cause for `op` where
 * one is likely. `err` may be negative. Used as `rt_error_text(err, op).text` within one
 * expression (the text lives as long as the full expression). */
struct rt_error_text {
    char text[320];
};
struct rt_error_text rt_error_text(int err, enum rt_op op);

/* Prints "ksrt: BASE: MESSAGE" on stderr (after flushing stdout, so the order is kept). */
void rt_report(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* failures.c */
/* What to add to "uncaught throw CODE" (the Python exception behind it), set by the Python
 * bridge (runtime/python/py.c) when a unit uses it; NULL or returning NULL: nothing. */
extern const char *(*rt_throw_detail)(int64_t code);
_Noreturn void rt_internal_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void rt_fail_test(const char *format, ...) __attribute__((format(printf, 1, 2)));
void *rt_zalloc(size_t size);

/* maps.c */
struct rt_map *rt_map(const char *name);
void rt_release_map(struct rt_map *m);

/* globals.c */
void *rt_map_memory(struct rt_map *m);

/* ringbuf.c */
int rt_open_perf_buffers(const char **failed); /* 0, or -errno and the map's name */
void rt_release_buffers(struct rt_map *m);

/* progs.c */
const char *rt_prog_kind(const struct bpf_program *prog);
void rt_detach_all(void);             /* detaches everything and frees the attachment records */
void rt_detach_all_from_signal(void); /* the async-signal-safe part of rt_detach_all */

/* guard.c: the process that removes clsact filters and qdiscs and struct_ops registered without
 * link once this process is gone, even after SIGKILL. Tell it after attaching and after
 * detaching (not before). */
void rt_guard_attachment(const struct rt_attachment *a); /* a clsact filter or a linkless struct_ops */
void rt_guard_forget(const struct rt_attachment *a);
void rt_guard_qdisc(int ifindex, bool created); /* a clsact qdisc created, or removed */
void rt_guard_across_exec(void); /* the guard outlives an exec() until the new image ends */

#endif /* KSRT_INTERNAL_H */
