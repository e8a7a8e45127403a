/* guard.c — the guard process: what the kernel does not remove when a process dies.
 *
 * Links (XDP, TCX, tracing, LSM, cgroup, perf, struct_ops on Linux 6.4+) belong to file
 * descriptors, so the kernel drops them however the process ends. Two kinds of attachment
 * outlive it: a TC filter on a clsact qdisc (the fallback of kernels without TCX, before 6.6) with
 * the qdisc the runtime created for it, and a struct_ops map registered by a map update (kernels
 * before 6.4). Signal handlers remove them on SIGINT/SIGTERM/SIGHUP, but nothing runs on
 * SIGKILL. So when the first such attachment is made, the runtime forks a guard: a process that
 * holds nothing but its end of a socket pair (and the struct_ops maps it is sent), learns of
 * every such attachment and of its removal, and when the socket reports end of file — every
 * copy of the other end closed: the process and any daemon() child of it are gone, however they
 * ended — removes what it still knows of and exits.
 *
 * The runtime detaches first and tells the guard afterwards: a process killed in between leaves
 * the guard a filter to remove that is gone already (ENOENT, ignored), never a filter it
 * forgot. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum guard_op {
    GUARD_TC,          /* a clsact filter: ifindex, attach_point, handle, priority */
    GUARD_STRUCT_OPS,  /* a struct_ops map registered without link; its fd comes with the message */
    GUARD_QDISC,       /* a clsact qdisc the runtime created on ifindex */
    GUARD_FORGET,      /* the attachment `id` is removed */
    GUARD_FORGET_QDISC /* the qdisc on ifindex is removed */
};

struct guard_msg {
    uint32_t op;
    uint64_t id; /* the attachment record's address: unique while it is attached */
    int32_t ifindex;
    uint32_t attach_point, handle, priority;
};

struct guarded {
    struct guard_msg msg;
    int fd; /* GUARD_STRUCT_OPS: the map */
};

/* This process's end of the socket pair, -1 without a guard. A fork (daemon(), a test's child)
 * inherits it and shares the guard, which then waits for both. */
static int guard_fd = -1;

/* The guard's loop: the table of what to remove, kept until the socket's end of file. */
static _Noreturn void guard_main(int sock)
{
    struct guarded *table = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        struct guard_msg msg;
        char control[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {.iov_base = &msg, .iov_len = sizeof msg};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
        ssize_t got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break; /* end of file: the guarded process is gone */
        int fd = -1;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
        if (got != (ssize_t)sizeof msg) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        if (msg.op == GUARD_FORGET || msg.op == GUARD_FORGET_QDISC) {
            for (size_t i = 0; i < n; i++) {
                bool same = msg.op == GUARD_FORGET ? table[i].msg.op != GUARD_QDISC && table[i].msg.id == msg.id
                                                   : table[i].msg.op == GUARD_QDISC && table[i].msg.ifindex == msg.ifindex;
                if (same) {
                    if (table[i].fd >= 0)
                        close(table[i].fd);
                    table[i] = table[--n];
                    break;
                }
            }
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            struct guarded *grown = realloc(table, cap * sizeof *table);
            if (!grown)
                break; /* remove what is known rather than forget the rest */
            table = grown;
        }
        table[n].msg = msg;
        table[n].fd = fd;
        n++;
    }
    /* Filters and registrations first, then the qdiscs they sat on. */
    for (size_t i = 0; i < n; i++) {
        struct guard_msg *m = &table[i].msg;
        if (m->op == GUARD_TC) {
            LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = m->ifindex, .attach_point = m->attach_point);
            LIBBPF_OPTS(bpf_tc_opts, opts, .handle = m->handle, .priority = m->priority);
            bpf_tc_detach(&hook, &opts);
        } else if (m->op == GUARD_STRUCT_OPS) {
            bpf_map_delete_elem(table[i].fd, &(uint32_t){0});
        }
    }
    for (size_t i = 0; i < n; i++)
        if (table[i].msg.op == GUARD_QDISC) {
            LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = table[i].msg.ifindex,
                        .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
            bpf_tc_hook_destroy(&hook);
        }
    _exit(0);
}

/* Forks the guard on first use; false (reported once) when there can be none. */
static bool guard_running(void)
{
    if (guard_fd >= 0)
        return true;
    static bool reported;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        if (!reported)
            rt_report("warning: cannot start the guard process (%s): a SIGKILL would leave TC filters or struct_ops registered",
                      rt_error_text(errno, RT_OP_OTHER).text);
        reported = true;
        return false;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        if (!reported)
            rt_report("warning: cannot start the guard process (%s): a SIGKILL would leave TC filters or struct_ops registered",
                      rt_error_text(err, RT_OP_OTHER).text);
        reported = true;
        return false;
    }
    if (pid == 0) {
        /* Nothing of the process stays alive through the guard: no links, no maps, no terminal,
         * no pipe a reader waits on; its own session, so that signals aimed at the process's
         * group or terminal do not end it before it has done its job. */
        static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU};
        for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
            signal(signals[i], SIG_IGN);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        for (int fd = 0; fd < 3; fd++)
            if (null >= 0 && null != fd)
                dup2(null, fd);
        int keep = sv[1];
        if (keep > 3 && dup3(sv[1], 3, O_CLOEXEC) == 3)
            keep = 3;
        if (close_range((unsigned)keep + 1, ~0U, 0) != 0) {
            /* Before Linux 5.9: one close per possible descriptor. */
            struct rlimit lim;
            int max = getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < 1U << 20 ? (int)lim.rlim_cur : 1 << 20;
            for (int fd = keep + 1; fd < max; fd++)
                close(fd);
        }
        guard_main(keep);
    }
    close(sv[1]);
    guard_fd = sv[0];
    return true;
}

/* exec(): the process becomes Python, which inherits this end of the socket, so the guard goes
 * on watching until Python (and so the last user of the attachments) has ended. */
void rt_guard_across_exec(void)
{
    if (guard_fd < 0)
        return;
    int flags = fcntl(guard_fd, F_GETFD);
    if (flags >= 0)
        fcntl(guard_fd, F_SETFD, flags & ~FD_CLOEXEC);
}

static void guard_send(const struct guard_msg *msg, int fd)
{
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = sizeof *msg};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(control, 0, sizeof control);
        mh.msg_control = control;
        mh.msg_controllen = sizeof control;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    while (sendmsg(guard_fd, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

void rt_guard_attachment(const struct rt_attachment *a)
{
    if (!a->tc && a->struct_ops_fd < 0)
        return;
    if (!guard_running())
        return;
    struct guard_msg msg = {.id = (uint64_t)(uintptr_t)a};
    if (a->tc) {
        msg.op = GUARD_TC;
        msg.ifindex = a->hook.ifindex;
        msg.attach_point = a->hook.attach_point;
        msg.handle = a->tc_opts.handle;
        msg.priority = a->tc_opts.priority;
        guard_send(&msg, -1);
    } else {
        msg.op = GUARD_STRUCT_OPS;
        guard_send(&msg, a->struct_ops_fd);
    }
}

void rt_guard_forget(const struct rt_attachment *a)
{
    if (guard_fd < 0 || (!a->tc && a->struct_ops_fd < 0))
        return;
    struct guard_msg msg = {.op = GUARD_FORGET, .id = (uint64_t)(uintptr_t)a};
    guard_send(&msg, -1);
}

void rt_guard_qdisc(int ifindex, bool created)
{
    if (created ? !guard_running() : guard_fd < 0)
        return;
    struct guard_msg msg = {.op = created ? GUARD_QDISC : GUARD_FORGET_QDISC, .ifindex = ifindex};
    guard_send(&msg, -1);
}
