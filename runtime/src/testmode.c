/* testmode.c — the test driver and test() runs (docs/language.md §17; ABI.md §3.2).
 *
 * Each test runs in a child process forked for it, on a fresh object (new maps, initial globals,
 * config defaults, prog_array filled, nothing pinned), so tests cannot see each other's state and
 * a test that crashes, loops or is interrupted ends only itself: the driver reports it (`killed by
 * signal SIGSEGV`, `timed out after 10s`) and goes on with the next one. Failures inside a test
 * come back into the child by siglongjmp from failures.c; the child sends its verdict through a
 * pipe and exits. stdout is line-buffered and flushed before the verdict, so a test's prints
 * precede its result line even through a pipe. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Seconds a test may run (its object's load included) unless --timeout says otherwise. */
#define DEFAULT_TIMEOUT 10
/* How long a test has to detach and exit after SIGTERM (timeout, interruption) before SIGKILL. */
#define GRACE_MS 2000

/* Runs the test body; false with rt.reason set when it failed. */
static bool run_body(const struct ksrt_test *t)
{
    rt.in_test = true;
    if (sigsetjmp(rt.test_jmp, 1))
        return false;
    if (rt.unit->reset_globals)
        rt.unit->reset_globals();
    int64_t result = t->run();
    if (t->returns_bool) {
        if (result != 0)
            return true;
        snprintf(rt.reason, sizeof rt.reason, "returned false");
        return false;
    }
    if (result == 0)
        return true;
    snprintf(rt.reason, sizeof rt.reason, "returned %lld", (long long)result);
    return false;
}

static bool run_test(const struct ksrt_test *t)
{
    rt.test_len = 0;
    if (rt.unit->object) {
        struct rt_load_failure f;
        if (rt_object_load(true, &f)) {
            snprintf(rt.reason, sizeof rt.reason, "object load failed: %s", f.summary);
            return false;
        }
    }
    bool passed = run_body(t);
    rt.in_test = false;
    /* A failure may have left dispatch() midway: its epoll fd open, its signal handlers set. */
    if (rt.dispatch_epfd >= 0) {
        close(rt.dispatch_epfd);
        rt.dispatch_epfd = -1;
    }
    rt_install_signal_handlers();
    if (rt.obj)
        rt_object_destroy();
    return passed;
}

/* The signals that stop the whole run (SIGINT, SIGTERM, SIGHUP): the driver passes them on to
 * the running test, whose own handler detaches what it attached, and starts no further test. */
static const int STOP_SIGNALS[] = {SIGINT, SIGTERM, SIGHUP};
static volatile sig_atomic_t interrupted; /* the stopping signal, or 0 */
static volatile sig_atomic_t running;     /* pid of the running test, or 0 */

static void on_stop_signal(int sig)
{
    interrupted = sig;
    pid_t pid = (pid_t)running;
    if (pid > 0)
        kill(pid, sig);
}

static void block_stop_signals(int how)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof STOP_SIGNALS / sizeof STOP_SIGNALS[0]; i++)
        sigaddset(&set, STOP_SIGNALS[i]);
    sigprocmask(how, &set, NULL);
}

/* The child: runs one test and writes its verdict, "P" or "F" and the reason, in one write. */
static _Noreturn void test_child(const struct ksrt_test *t, int verdict_fd, pid_t driver)
{
    /* A driver killed outright (SIGKILL) must not leave its test running. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != driver)
        _exit(128 + SIGTERM);
    rt_install_signal_handlers();
    block_stop_signals(SIG_UNBLOCK);
    bool passed = run_test(t);
    fflush(stdout);
    char verdict[1 + sizeof rt.reason];
    int len = snprintf(verdict, sizeof verdict, "%c%s", passed ? 'P' : 'F', passed ? "" : rt.reason);
    if (len > (int)sizeof verdict - 1)
        len = (int)sizeof verdict - 1;
    ssize_t unused = write(verdict_fd, verdict, (size_t)len);
    (void)unused;
    /* _exit: the atexit handlers belong to the driver (e.g. unloading the kernel module). */
    _exit(0);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What became of one test's child. */
struct outcome {
    char verdict[1 + sizeof rt.reason + 1];
    size_t len;
    bool timed_out;
    int status; /* waitpid's */
};

/* Reads the child's verdict until its end of the pipe closes, ending the child with SIGTERM when
 * it overruns `timeout_s` (0: no limit) or the run is interrupted, and with SIGKILL when it
 * outlives the grace period after that; then reaps it. */
static void await_child(pid_t pid, int fd, uint32_t timeout_s, struct outcome *o)
{
    int64_t deadline = timeout_s ? now_ms() + (int64_t)timeout_s * 1000 : -1;
    int64_t kill_at = -1; /* when SIGKILL is due, once SIGTERM went out */
    o->len = 0;
    o->timed_out = false;
    for (;;) {
        int64_t now = now_ms();
        if (deadline >= 0 && now >= deadline && !o->timed_out) {
            o->timed_out = true;
            kill(pid, SIGTERM);
        }
        if ((o->timed_out || interrupted) && kill_at < 0)
            kill_at = now + GRACE_MS;
        if (kill_at >= 0 && now >= kill_at) {
            /* Past the grace period the pipe is not waited for any longer: a process the test
             * started could hold it open. */
            kill(pid, SIGKILL);
            break;
        }
        int64_t until = kill_at >= 0 ? kill_at : deadline;
        int wait = until < 0 ? -1 : until - now > INT_MAX ? INT_MAX : (int)(until - now);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = poll(&p, 1, wait);
        if (ready < 0 && errno != EINTR)
            break;
        if (ready <= 0)
            continue;
        char chunk[512];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t room = sizeof o->verdict - 1 - o->len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(o->verdict + o->len, chunk, take);
        o->len += take;
    }
    o->verdict[o->len] = '\0';
    while (waitpid(pid, &o->status, 0) < 0 && errno == EINTR)
        ;
}

/* "SIGSEGV" for the signals a test can die of, else "signal N". */
static const char *signal_name(int sig, char *buf, size_t n)
{
#define NAMED(s) {s, #s}
    static const struct {
        int sig;
        const char *name;
    } names[] = {
        NAMED(SIGSEGV), NAMED(SIGBUS),  NAMED(SIGABRT), NAMED(SIGILL),  NAMED(SIGFPE),  NAMED(SIGKILL),
        NAMED(SIGTERM), NAMED(SIGINT),  NAMED(SIGHUP),  NAMED(SIGQUIT), NAMED(SIGTRAP), NAMED(SIGSYS),
        NAMED(SIGPIPE), NAMED(SIGALRM), NAMED(SIGUSR1), NAMED(SIGUSR2), NAMED(SIGXCPU), NAMED(SIGXFSZ),
    };
#undef NAMED
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].sig == sig)
            return names[i].name;
    snprintf(buf, n, "signal %d", sig);
    return buf;
}

/* Runs one test in a child; prints its result line and returns whether it passed. Returns
 * without printing anything when the run was interrupted before the test came to a verdict. */
static bool run_isolated(const struct ksrt_test *t, uint32_t timeout_s, bool *reported)
{
    *reported = true;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        printf("FAIL %s: cannot start the test: %s\n", t->name, rt_error_text(errno, RT_OP_OTHER).text);
        return false;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t driver = getpid();
    block_stop_signals(SIG_BLOCK);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        test_child(t, fds[1], driver);
    }
    int fork_errno = errno;
    close(fds[1]);
    if (pid > 0)
        running = pid;
    block_stop_signals(SIG_UNBLOCK);
    if (pid < 0) {
        close(fds[0]);
        printf("FAIL %s: cannot start the test: %s\n", t->name, rt_error_text(fork_errno, RT_OP_OTHER).text);
        return false;
    }
    struct outcome o;
    await_child(pid, fds[0], timeout_s, &o);
    running = 0;
    close(fds[0]);

    char buf[32];
    if (o.timed_out) {
        printf("FAIL %s: timed out after %us\n", t->name, timeout_s);
    } else if (o.len > 0 && o.verdict[0] == 'P') {
        printf("PASS %s\n", t->name);
        return true;
    } else if (o.len > 0 && o.verdict[0] == 'F') {
        printf("FAIL %s: %s\n", t->name, o.verdict + 1);
    } else if (interrupted) {
        *reported = false;
    } else if (WIFSIGNALED(o.status)) {
        printf("FAIL %s: killed by signal %s\n", t->name, signal_name(WTERMSIG(o.status), buf, sizeof buf));
    } else {
        printf("FAIL %s: exited with status %d\n", t->name, WIFEXITED(o.status) ? WEXITSTATUS(o.status) : -1);
    }
    return false;
}

static void usage_error(const char *argv0, const char *format, const char *arg)
{
    fputs("error: ", stderr);
    fprintf(stderr, format, arg);
    fprintf(stderr, "\nusage: %s [--filter SUBSTR] [--timeout SECS]\n", argv0);
}

static bool parse_seconds(const char *text, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (!*text || *end || errno || v > UINT32_MAX || text[0] == '-' || text[0] == '+')
        return false;
    *out = (uint32_t)v;
    return true;
}

int32_t ksrt_test_main(const struct ksrt_unit *unit, const struct ksrt_test *tests, uint32_t n, int32_t argc,
                       char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    rt.unit = unit;
    const char *filter = NULL;
    uint32_t timeout_s = DEFAULT_TIMEOUT;
    for (int32_t i = 1; i < argc; i++) {
        const char *timeout = NULL;
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
            filter = argv[++i];
        } else if (strncmp(argv[i], "--filter=", 9) == 0) {
            filter = argv[i] + 9;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout = argv[++i];
        } else if (strncmp(argv[i], "--timeout=", 10) == 0) {
            timeout = argv[i] + 10;
        } else {
            usage_error(argv[0], "unexpected argument '%s'", argv[i]);
            return 1;
        }
        if (timeout && !parse_seconds(timeout, &timeout_s)) {
            usage_error(argv[0], "--timeout takes a whole number of seconds (0: no limit), not '%s'", timeout);
            return 1;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof STOP_SIGNALS / sizeof STOP_SIGNALS[0]; i++)
        sigaction(STOP_SIGNALS[i], &sa, NULL);
    /* The kernel module, if any, is loaded once here for every test (and unloaded at exit). */
    struct rt_load_failure module;
    bool module_failed = unit->object && unit->has_kfuncs && rt_load_module(&module) != 0;
    uint32_t passed = 0, failed = 0;
    for (uint32_t i = 0; i < n && !interrupted; i++) {
        if (filter && !strstr(tests[i].name, filter))
            continue;
        if (module_failed) {
            printf("FAIL %s: object load failed: %s\n", tests[i].name, module.summary);
            failed++;
            continue;
        }
        bool reported;
        if (run_isolated(&tests[i], timeout_s, &reported))
            passed++;
        else if (reported)
            failed++;
    }
    if (interrupted) {
        fflush(stdout);
        return 128 + interrupted;
    }
    printf("%u passed, %u failed\n", passed, failed);
    fflush(stdout);
    return failed == 0 && passed >= 1 ? 0 : 1;
}

/* The context each test-runnable kind gets (mirrors src/kernel/run.rs): xdp_md with data_end
 * = len and ingress_ifindex 1; __sk_buff with ingress_ifindex and ifindex 1, the rest zero as
 * the kernel requires. tc and cgroup_skb get the whole frame: the kernel builds the skb with
 * eth_type_trans (protocol from the EtherType) and cgroup_skb then sees it from byte 14. */
static size_t test_ctx(const char *kind, uint32_t len, uint32_t ctx[11])
{
    memset(ctx, 0, 11 * sizeof ctx[0]);
    if (strcmp(kind, "xdp") == 0) {
        ctx[1] = len; /* data_end */
        ctx[3] = 1;   /* ingress_ifindex */
        return 6 * sizeof ctx[0];
    }
    if (strcmp(kind, "tc") == 0 || strcmp(kind, "cgroup_skb") == 0) {
        ctx[9] = 1;  /* ingress_ifindex */
        ctx[10] = 1; /* ifindex */
        return 11 * sizeof ctx[0];
    }
    return 0;
}

/* Whether BPF_PROG_TEST_RUN gives cgroup_skb programs their packet: before Linux 6.17 it never
 * computed the skb's data_end for them, so `ctx->data_end` read 0, every bounds check failed and
 * a program's packet reads could not be tested (real traffic was fine). Probed once per process
 * with a program that answers 1 when one byte of the packet is within bounds. */
static bool cgroup_skb_test_runs_see_packet(void)
{
    static int answer = -1;
    if (answer >= 0)
        return answer;
    const struct bpf_insn probe[] = {
        {.code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = 2, .src_reg = 1, .off = 76}, /* data */
        {.code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = 3, .src_reg = 1, .off = 80}, /* data_end */
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
        {.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 2, .imm = 1},
        {.code = BPF_JMP | BPF_JGT | BPF_X, .dst_reg = 2, .src_reg = 3, .off = 1},
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 1},
        {.code = BPF_JMP | BPF_EXIT},
    };
    int fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, "ksc_probe", "GPL", probe,
                           sizeof probe / sizeof probe[0], NULL);
    /* An IPv4 frame: the kernel reads the addresses of the IP header it is given. */
    uint8_t frame[64] = {[12] = 0x08, [13] = 0x00, [14] = 0x45};
    uint32_t ctx[11];
    size_t ctx_size = test_ctx("cgroup_skb", sizeof frame, ctx);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof frame,
                .ctx_in = ctx, .ctx_size_in = (uint32_t)ctx_size, .repeat = 1);
    /* A kernel that cannot tell leaves the tests to run and report what they see. */
    answer = fd < 0 || bpf_prog_test_run_opts(fd, &opts) != 0 || opts.retval == 1;
    if (fd >= 0)
        close(fd);
    return answer;
}

/* Room for programs that grow the packet (bpf_xdp_adjust_tail can reach the page's end). */
#define OUT_SLACK 4096

uint32_t ksrt_test_run(const char *prog, void *data, uint32_t len, uint32_t copy_back)
{
    if (!rt.in_test || !rt.obj)
        rt_internal_error("test(%s) outside a test", prog);
    struct bpf_program *p = bpf_object__find_program_by_name(rt.obj, prog);
    if (!p)
        rt_internal_error("unknown program %s", prog);
    const char *kind = rt_prog_kind(p);
    if (strcmp(kind, "cgroup_skb") == 0 && !cgroup_skb_test_runs_see_packet())
        rt_fail_test("test(%s): this kernel cannot test-run cgroup_skb programs: its "
                     "BPF_PROG_TEST_RUN gives them no packet end (ctx->data_end is 0; fixed in "
                     "Linux 6.17), so what the program does with the packet cannot be seen here",
                     prog);
    uint32_t ctx[11];
    size_t ctx_size = test_ctx(kind, len, ctx);
    size_t out_size = (size_t)len + OUT_SLACK;
    void *out = rt_zalloc(out_size);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = len, .data_out = out,
                .data_size_out = (uint32_t)out_size, .ctx_in = ctx_size ? ctx : NULL,
                .ctx_size_in = (uint32_t)ctx_size, .repeat = 1);
    int err = bpf_prog_test_run_opts(bpf_program__fd(p), &opts);
    if (err) {
        free(out);
        rt_fail_test("test(%s): %s", prog, rt_error_text(err, RT_OP_TEST_RUN).text);
    }
    uint32_t out_len = opts.data_size_out < out_size ? opts.data_size_out : (uint32_t)out_size;
    rt.test_len = out_len;
    memcpy(data, out, out_len < copy_back ? out_len : copy_back);
    free(out);
    return opts.retval;
}

uint32_t ksrt_test_len(void)
{
    return rt.test_len;
}
