/* progs.c — program handles, attach/detach per program kind, perf events, struct_ops
 * registration and daemon() (docs/language.md §9.2, §15.3, §15.4, §16.1).
 *
 * Every attachment is kept on a registry so that exit, a fatal signal or the end of a test can
 * remove all of them: nothing may stay attached once the process is gone. Links (XDP through
 * bpf_link_create, TCX, tracing, cgroup, perf, struct_ops) are owned by file descriptors and die
 * with the process anyway; the clsact filter fallback and struct_ops registered without a link
 * (kernels before 6.4, kernel_compat.c) are the things that must be removed, and the guard
 * process (guard.c) removes them when the process dies of a signal it cannot catch. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The program kind from its ELF section, as docs/language.md §9.2 names kinds. */
const char *rt_prog_kind(const struct bpf_program *prog)
{
    static const struct {
        const char *head, *kind;
    } kinds[] = {
        {"xdp", "xdp"},
        {"tc", "tc"},
        {"tcx", "tc"},
        {"classifier", "tc"},
        {"tracepoint", "tracepoint"},
        {"tp", "tracepoint"},
        {"raw_tp", "raw_tracepoint"},
        {"raw_tracepoint", "raw_tracepoint"},
        {"tp_btf", "tp_btf"},
        {"fentry", "fentry"},
        {"fexit", "fexit"},
        {"lsm", "lsm"},
        {"kprobe", "kprobe"},
        {"ksyscall", "kprobe"},
        {"kretprobe", "kretprobe"},
        {"kretsyscall", "kretprobe"},
        {"perf_event", "perf_event"},
        {"cgroup_skb", "cgroup_skb"},
        {"struct_ops", "struct_ops"},
    };
    const char *section = bpf_program__section_name(prog);
    size_t head = strcspn(section, "/.");
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strlen(kinds[i].head) == head && strncmp(section, kinds[i].head, head) == 0)
            return kinds[i].kind;
    return "BPF";
}

static struct rt_attachment *new_attachment(void)
{
    struct rt_attachment *a = rt_zalloc(sizeof *a);
    a->link_fd = -1;
    a->perf_fd = -1;
    a->struct_ops_fd = -1;
    return a;
}

/* Links a complete record into the registry (the signal handler may read it at any time). */
static void publish(struct rt_attachment *a)
{
    a->live = 1;
    a->next = rt.attachments;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    rt.attachments = a;
}

/* Removes the clsact qdisc `a` created, unless another filter of this process still sits on it,
 * which then owns it. */
static void release_qdisc(struct rt_attachment *a)
{
    for (struct rt_attachment *b = rt.attachments; b; b = b->next)
        if (b != a && b->live && b->tc && b->hook.ifindex == a->hook.ifindex) {
            b->own_qdisc = true;
            return;
        }
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a->hook.ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
    bpf_tc_hook_destroy(&hook);
    rt_guard_qdisc(a->hook.ifindex, false);
}

static void detach(struct rt_attachment *a)
{
    if (!a->live)
        return;
    a->live = 0;
    if (a->link)
        bpf_link__destroy(a->link); /* closes a perf link's event fd too */
    if (a->link_fd >= 0)
        close(a->link_fd);
    if (a->tc)
        bpf_tc_detach(&a->hook, &a->tc_opts);
    rt_guard_forget(a);
    if (a->tc && a->own_qdisc)
        release_qdisc(a);
    a->link = NULL;
    a->link_fd = -1;
    a->perf_fd = -1;
    a->tc = false;
    a->own_qdisc = false;
}

void rt_detach_all(void)
{
    /* Program links first, struct_ops registrations last (ABI.md §2). */
    for (struct rt_attachment *a = rt.attachments; a; a = a->next)
        if (!a->impl)
            detach(a);
    for (struct rt_attachment *a = rt.attachments; a; a = a->next)
        detach(a);
    struct rt_attachment *list = rt.attachments;
    rt.attachments = NULL;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    for (struct rt_attachment *next; list; list = next) {
        next = list->next;
        free(list);
    }
}

void rt_detach_all_from_signal(void)
{
    for (struct rt_attachment *a = rt.attachments; a; a = a->next) {
        if (!a->live)
            continue;
        a->live = 0;
        /* A registration without link is the map's element: closing the map's fd (libbpf's
         * link fd then) would leave it registered after the process is gone. */
        if (a->struct_ops_fd >= 0)
            bpf_map_delete_elem(a->struct_ops_fd, &(uint32_t){0});
        else if (a->link)
            close(bpf_link__fd(a->link));
        if (a->link_fd >= 0)
            close(a->link_fd);
        if (a->perf_fd >= 0)
            close(a->perf_fd);
        if (a->tc)
            bpf_tc_detach(&a->hook, &a->tc_opts);
        rt_guard_forget(a); /* sendmsg is async-signal-safe */
    }
    /* The qdiscs after all the filters on them. */
    for (struct rt_attachment *a = rt.attachments; a; a = a->next)
        if (a->tc && a->own_qdisc) {
            LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a->hook.ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
            bpf_tc_hook_destroy(&hook);
            rt_guard_qdisc(a->hook.ifindex, false);
        }
}

ksrt_prog *ksrt_prog_load(const char *name)
{
    if (!rt.obj)
        rt_internal_error("load(%s) without a BPF object", name);
    for (struct ksrt_prog *p = rt.progs; p; p = p->next)
        if (strcmp(bpf_program__name(p->prog), name) == 0)
            return p;
    struct bpf_program *prog = bpf_object__find_program_by_name(rt.obj, name);
    if (!prog)
        rt_internal_error("unknown program %s", name);
    struct ksrt_prog *p = rt_zalloc(sizeof *p);
    p->prog = prog;
    p->next = rt.progs;
    rt.progs = p;
    return p;
}

static int interface(const char *name)
{
    unsigned int ifindex = if_nametoindex(name);
    return ifindex ? (int)ifindex : -ENODEV;
}

/* A link rather than the netlink API, so a killed process leaves nothing attached. */
static int attach_xdp(struct bpf_program *prog, struct rt_attachment *a, const char *target, uint32_t flags)
{
    int ifindex = interface(target);
    if (ifindex < 0)
        return ifindex;
    LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
    int fd = bpf_link_create(bpf_program__fd(prog), ifindex, BPF_XDP, &opts);
    if (fd < 0)
        return fd;
    a->link_fd = fd;
    return 0;
}

/* TCX link (kernel >= 6.6); when the kernel or the section's attach type refuses it, a filter
 * on a clsact qdisc, which rt_detach_all removes again (and the guard, after SIGKILL). */
static int attach_tc(struct bpf_program *prog, struct rt_attachment *a, const char *target)
{
    int ifindex = interface(target);
    if (ifindex < 0)
        return ifindex;
    a->link = bpf_program__attach_tcx(prog, ifindex, NULL);
    if (a->link)
        return 0;
    int err = -errno;
    if (err != -EINVAL && err != -EOPNOTSUPP)
        return err;
    bool egress = strstr(bpf_program__section_name(prog), "egress") != NULL;
    memset(&a->hook, 0, sizeof a->hook);
    a->hook.sz = sizeof a->hook;
    a->hook.ifindex = ifindex;
    a->hook.attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS;
    err = bpf_tc_hook_create(&a->hook);
    if (err && err != -EEXIST)
        return err;
    /* A qdisc this process created goes again with its last filter (release_qdisc), also after
     * SIGKILL (the guard); one that was there stays. */
    a->own_qdisc = err == 0;
    if (a->own_qdisc)
        rt_guard_qdisc(ifindex, true);
    memset(&a->tc_opts, 0, sizeof a->tc_opts);
    a->tc_opts.sz = sizeof a->tc_opts;
    a->tc_opts.prog_fd = bpf_program__fd(prog);
    err = bpf_tc_attach(&a->hook, &a->tc_opts);
    if (err) {
        if (a->own_qdisc) {
            LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
            bpf_tc_hook_destroy(&hook);
            rt_guard_qdisc(ifindex, false);
        }
        return err;
    }
    /* bpf_tc_detach wants only the handle and priority the kernel chose. */
    a->tc_opts.prog_fd = 0;
    a->tc_opts.prog_id = 0;
    a->tc_opts.flags = 0;
    a->tc = true;
    return 0;
}

/* libbpf finds a tracepoint's id in tracefs. Systems that boot without tracefs mounted (no
 * debugfs either) would make every tracepoint attach fail with ENOENT, so mount it on first
 * use, as perf does; a failure here leaves libbpf to report the attach error. */
static void ensure_tracefs(void)
{
    struct stat st;
    if (stat("/sys/kernel/tracing/events", &st) == 0 || stat("/sys/kernel/debug/tracing/events", &st) == 0)
        return;
    mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL);
}

static int attach_tracepoint(struct bpf_program *prog, struct rt_attachment *a, const char *target)
{
    ensure_tracefs();
    if (!*target) {
        a->link = bpf_program__attach(prog);
    } else {
        const char *slash = strchr(target, '/');
        if (!slash)
            return -EINVAL;
        char category[256];
        snprintf(category, sizeof category, "%.*s", (int)(slash - target), target);
        a->link = bpf_program__attach_tracepoint(prog, category, slash + 1);
    }
    return a->link ? 0 : -errno;
}

static int attach_cgroup(struct bpf_program *prog, struct rt_attachment *a, const char *target)
{
    int fd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    a->link = bpf_program__attach_cgroup(prog, fd);
    int err = a->link ? 0 : -errno;
    close(fd); /* the link holds its own reference to the cgroup */
    return err;
}

/* Says why an attach failed; the program gets the -errno as well (docs/language.md §15.3). */
static void report_attach_failure(const struct bpf_program *prog, const char *target, int err, enum rt_op op)
{
    const char *kind = rt_prog_kind(prog);
    char where[300] = "";
    if (target && *target)
        snprintf(where, sizeof where, " to %s", target);
    rt_report("cannot attach %s program %s%s: %s", kind, bpf_program__name(prog), where, rt_error_text(err, op).text);
}

int32_t ksrt_prog_attach(ksrt_prog *p, const char *target, uint32_t flags)
{
    const char *kind = rt_prog_kind(p->prog);
    if (p->att) {
        rt_report("cannot attach %s program %s: it is attached already (detach it first)", kind,
                  bpf_program__name(p->prog));
        return -EBUSY;
    }
    struct rt_attachment *a = new_attachment();
    int err;
    enum rt_op op = RT_OP_ATTACH_KERNEL;
    if (strcmp(kind, "xdp") == 0) {
        op = RT_OP_ATTACH_NETDEV;
        err = attach_xdp(p->prog, a, target, flags);
    } else if (strcmp(kind, "tc") == 0) {
        op = RT_OP_ATTACH_NETDEV;
        err = attach_tc(p->prog, a, target);
    } else if (strcmp(kind, "tracepoint") == 0) {
        op = RT_OP_ATTACH_TRACEPOINT;
        err = attach_tracepoint(p->prog, a, target);
    } else if (strcmp(kind, "cgroup_skb") == 0) {
        op = RT_OP_ATTACH_CGROUP;
        err = attach_cgroup(p->prog, a, target);
    } else if (strcmp(kind, "perf_event") == 0 || strcmp(kind, "struct_ops") == 0) {
        free(a);
        rt_report("cannot attach %s program %s with attach(h, target, flags): %s", kind, bpf_program__name(p->prog),
                  strcmp(kind, "perf_event") == 0 ? "perf_event programs attach with attach(h, perf_options, flags)"
                                                  : "struct_ops methods are attached by register(impl)");
        return -EINVAL;
    } else {
        /* fentry, fexit, tp_btf, lsm, kprobe, kretprobe, raw_tp: the target is in the section. */
        a->link = bpf_program__attach(p->prog);
        err = a->link ? 0 : -errno;
    }
    if (err) {
        free(a);
        report_attach_failure(p->prog, target, err, op);
        return err;
    }
    publish(a);
    rt_guard_attachment(a);
    p->att = a;
    return 0;
}

void ksrt_prog_detach(ksrt_prog *p)
{
    if (p && p->att) {
        detach(p->att);
        p->att = NULL;
    }
}

_Static_assert(sizeof(struct ksrt_perf_options) == 40, "the layout of the builtin struct perf_options");

ksrt_perf *ksrt_perf_attach(ksrt_prog *p, const struct ksrt_perf_options *o, uint32_t flags)
{
    if (o->pid == -1 && o->cpu == -1) {
        report_attach_failure(p->prog, "a perf event", -EINVAL, RT_OP_PERF);
        errno = EINVAL;
        return NULL;
    }
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = o->perf_type;
    attr.config = o->perf_config;
    attr.sample_period = o->period;
    attr.wakeup_events = o->wakeup;
    attr.inherit = o->inherit;
    attr.exclude_kernel = o->exclude_kernel;
    attr.exclude_user = o->exclude_user;
    attr.disabled = 1; /* libbpf enables it once the program is attached */
    int fd = (int)syscall(SYS_perf_event_open, &attr, (pid_t)o->pid, (int)o->cpu, -1,
                          (unsigned long)flags | PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        report_attach_failure(p->prog, "a perf event", err, RT_OP_PERF);
        errno = err;
        return NULL;
    }
    struct bpf_link *link = bpf_program__attach_perf_event(p->prog, fd);
    if (!link) {
        int err = errno;
        close(fd);
        report_attach_failure(p->prog, "its perf event", err, RT_OP_PERF);
        errno = err;
        return NULL;
    }
    struct ksrt_perf *h = rt_zalloc(sizeof *h);
    h->att.link = link;
    h->att.link_fd = -1;
    h->att.perf_fd = fd;
    h->att.struct_ops_fd = -1;
    publish(&h->att);
    return h;
}

int64_t ksrt_perf_read(ksrt_perf *a)
{
    uint64_t value;
    if (!a || !a->att.live || read(a->att.perf_fd, &value, sizeof value) != (ssize_t)sizeof value)
        return -1;
    return (int64_t)value;
}

void ksrt_perf_detach(ksrt_perf *a)
{
    if (a)
        detach(&a->att);
}

int32_t ksrt_register(const char *impl)
{
    if (!rt.obj)
        rt_internal_error("register(%s) without a BPF object", impl);
    for (struct rt_attachment *a = rt.attachments; a; a = a->next)
        if (a->impl && a->live && strcmp(a->impl, impl) == 0) {
            rt_report("cannot register %s: it is registered already", impl);
            return -EBUSY;
        }
    struct bpf_map *map = bpf_object__find_map_by_name(rt.obj, impl);
    if (!map || bpf_map__type(map) != BPF_MAP_TYPE_STRUCT_OPS)
        rt_internal_error("unknown struct_ops impl %s", impl);
    struct bpf_link *link = bpf_map__attach_struct_ops(map);
    if (!link) {
        int err = -errno;
        rt_report("cannot register %s: %s", impl, rt_error_text(err, RT_OP_REGISTER).text);
        return err;
    }
    struct rt_attachment *a = new_attachment();
    a->link = link;
    a->impl = bpf_map__name(map);
    if (!(bpf_map__map_flags(map) & KSRT_BPF_F_LINK))
        a->struct_ops_fd = bpf_map__fd(map);
    publish(a);
    rt_guard_attachment(a);
    return 0;
}

/* The daemon's pid file, /var/run/<base>.pid, locked (flock) for the daemon's lifetime: a second
 * daemon of the same deployment finds it locked and refuses to start, instead of overwriting the
 * file (and the first deleting the second's file at exit). Returns the locked descriptor, or -1
 * when there can be no pid file (not root: /var/run is not writable), which is only reported. */
static int lock_pid_file(const char *path)
{
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
            rt_report("warning: no pid file %s: %s", path, rt_error_text(errno, RT_OP_OTHER).text);
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            char pid[32] = "";
            ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            rt_report("another %s daemon is running (pid %s, %s); stop it first", rt.unit->base,
                      pid[0] ? pid : "unknown", path);
            close(fd);
            ksrt_exit(1);
        }
        /* The file may have been removed by its exiting owner between our open and our lock:
         * then the lock guards nothing and the path is opened again. */
        struct stat held, named;
        if (fstat(fd, &held) == 0 && stat(path, &named) == 0 && held.st_ino == named.st_ino &&
            held.st_dev == named.st_dev)
            return fd;
        close(fd);
    }
}

void ksrt_sleep_ms(uint32_t ms)
{
    rt_end_if_stopped();
    struct timespec left = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    /* The stop signals end the process in their handler; any other interruption sleeps the rest. */
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

_Noreturn void ksrt_daemon(void)
{
    const char *base = rt.unit->base;
    /* Blocked before the fork so that a signal can neither be lost nor kill us unannounced. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "/var/run/%s.pid", base);
    /* Locked before the fork, while errors still reach the terminal; the lock belongs to the open
     * file, which the daemon inherits. */
    int pid_fd = lock_pid_file(path);
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    if (daemon(0, 0) != 0) {
        rt_report("cannot become a daemon: %s", rt_error_text(errno, RT_OP_OTHER).text);
        if (pid_fd >= 0)
            unlink(path);
        ksrt_exit(1);
    }
    /* The parent left with _exit: the daemon unloads the kernel module at its exit. */
    rt_module_moved(parent);
    if (pid_fd >= 0) {
        /* stderr is /dev/null now: a failed write goes unreported; the lock still guards. */
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
        if (ftruncate(pid_fd, 0) == 0)
            (void)!pwrite(pid_fd, pid, (size_t)n, 0);
    }
    int sig;
    while (sigwait(&stop, &sig) != 0)
        ;
    /* Removed while still locked: a daemon starting now either sees our lock or a new file. */
    if (pid_fd >= 0)
        unlink(path);
    ksrt_exit(0);
}
