/* errors.c — what an errno means, for every message the runtime prints about a failed system
 * call, and the one function that prints the runtime's own messages.
 *
 * A bare errno ("-19", or even strerror's "No such device") leaves users guessing which of the
 * usual causes they met; the kernel's answers to BPF users are few and well known (no such
 * interface, not root, something already attached), so each message names the errno and, where
 * the operation makes one cause likely, says it. */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The kernel's internal ENOTSUPP, which reaches userspace from some BPF paths; libc has no name
 * and no text for it. */
#define RT_ENOTSUPP 524

static const char *usual_cause(int err, enum rt_op op)
{
    switch (err) {
    case EPERM:
    case EACCES:
        if (op == RT_OP_MODULE)
            return "loading kernel modules needs root (CAP_SYS_MODULE)";
        if (op == RT_OP_MOUNT)
            return "mounting needs root (CAP_SYS_ADMIN)";
        return "needs root, or CAP_BPF plus CAP_NET_ADMIN (xdp, tc, cgroup) or CAP_PERFMON (tracing); "
               "kernel lockdown or an LSM can refuse even root";
    case E2BIG:
        if (op == RT_OP_MAP_WRITE)
            return "the map is full (max_entries), or the index is past the array's end";
        return op == RT_OP_MAP_CREATE
                   ? "max_entries, the key or the value is larger than the kernel allows for this map kind"
                   : NULL;
    case ENOMEM:
        if (op == RT_OP_MAP_WRITE)
            return "the kernel has no memory for another entry";
        return op == RT_OP_MAP_CREATE ? "not enough memory for max_entries entries (hash maps preallocate them "
                                        "all unless `@flags(no_prealloc)`)"
                                      : NULL;
    case ENODEV:
        if (op == RT_OP_ATTACH_NETDEV)
            return "no such network interface";
        if (op == RT_OP_PERF)
            return "this machine has no such perf event";
        return NULL;
    case ENOENT:
        switch (op) {
        case RT_OP_ATTACH_NETDEV:
            return "no such network interface";
        case RT_OP_ATTACH_TRACEPOINT:
            return "no such tracepoint (the events are listed under /sys/kernel/tracing/events)";
        case RT_OP_ATTACH_CGROUP:
            return "no such cgroup directory";
        case RT_OP_ATTACH_KERNEL:
            return "this kernel has no such function or hook";
        case RT_OP_PERF:
            return "this machine has no such perf event";
        case RT_OP_MODULE:
            /* register_btf_kfunc_id_set: "missing module BTF, cannot register kfuncs". */
            return RT_MODULE_NO_BTF;
        default:
            return NULL;
        }
    case ENOEXEC:
        return op == RT_OP_MODULE ? "the module was built for another kernel: rebuild it with `make` in its "
                                    "directory against this kernel's headers"
                                  : NULL;
    case ENOTDIR:
        return op == RT_OP_ATTACH_CGROUP ? "not a cgroup directory" : NULL;
    case EBUSY:
    case EEXIST:
        if (op == RT_OP_ATTACH_NETDEV)
            return "another program is already attached to this interface";
        if (op == RT_OP_REGISTER)
            return "an implementation of this struct_ops is already registered";
        if (op == RT_OP_ATTACH_CGROUP || op == RT_OP_ATTACH_KERNEL || op == RT_OP_ATTACH_TRACEPOINT)
            return "another program is already attached there";
        return NULL;
    case EINVAL:
        if (op == RT_OP_MAP_CREATE)
            return "this kernel does not support the map's kind, sizes or flags";
        if (op == RT_OP_ATTACH_TRACEPOINT)
            return "the target must be CATEGORY/EVENT, e.g. \"syscalls/sys_enter_openat\"";
        if (op == RT_OP_ATTACH_NETDEV)
            return "the interface refused the program or the flags";
        if (op == RT_OP_PERF)
            return "the perf options are invalid (pid and cpu cannot both be -1)";
        if (op == RT_OP_MODULE)
            return "the module refused to start; the kernel log (dmesg) says why, e.g. that this kernel cannot "
                   "give kfuncs to a kind of program that calls them";
        return NULL;
    case EOPNOTSUPP:
    case RT_ENOTSUPP:
        if (op == RT_OP_ATTACH_NETDEV)
            return "the interface's driver does not support this attach mode (try flags 0, or generic XDP)";
        if (op == RT_OP_TEST_RUN)
            return "this kernel cannot test-run programs of this kind";
        return "this kernel does not support it";
    case ESRCH:
        return op == RT_OP_PERF ? "no such process" : NULL;
    case ENOSYS:
        return "this kernel has no such system call (built without BPF support?)";
    default:
        return NULL;
    }
}

struct rt_error_text rt_error_text(int err, enum rt_op op)
{
    struct rt_error_text t;
    if (err < 0)
        err = -err;
    const char *name = err == RT_ENOTSUPP ? "ENOTSUPP" : strerrorname_np(err);
    const char *text = err == RT_ENOTSUPP ? "Operation not supported" : strerror(err);
    const char *cause = usual_cause(err, op);
    int n = name ? snprintf(t.text, sizeof t.text, "%s (%s)", text, name)
                 : snprintf(t.text, sizeof t.text, "%s (errno %d)", text, err);
    if (cause && n > 0 && (size_t)n < sizeof t.text)
        snprintf(t.text + n, sizeof t.text - (size_t)n, "; %s", cause);
    return t;
}

void rt_report(const char *format, ...)
{
    fflush(stdout);
    fprintf(stderr, "ksrt: %s: ", rt.unit && rt.unit->base ? rt.unit->base : "?");
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
}
