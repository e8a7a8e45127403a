/* testmode.c — the test driver and test() runs (docs/language.md §17; ABI.md §3.2).
 *
 * Every test gets a fresh object (new maps, initial globals, config defaults, prog_array filled,
 * nothing pinned), so tests cannot see each other's state. Failures inside a test come back here
 * by siglongjmp from failures.c; the driver then destroys the object and carries on. stdout is
 * line-buffered so a test's prints precede its result line even through a pipe. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int32_t ksrt_test_main(const struct ksrt_unit *unit, const struct ksrt_test *tests, uint32_t n, int32_t argc,
                       char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    rt.unit = unit;
    const char *filter = NULL;
    for (int32_t i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
            filter = argv[++i];
        } else if (strncmp(argv[i], "--filter=", 9) == 0) {
            filter = argv[i] + 9;
        } else {
            fprintf(stderr, "error: unexpected argument '%s'\nusage: %s [--filter SUBSTR]\n", argv[i], argv[0]);
            return 1;
        }
    }
    rt_install_signal_handlers();
    uint32_t passed = 0, failed = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (filter && !strstr(tests[i].name, filter))
            continue;
        if (run_test(&tests[i])) {
            printf("PASS %s\n", tests[i].name);
            passed++;
        } else {
            printf("FAIL %s: %s\n", tests[i].name, rt.reason);
            failed++;
        }
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

/* Room for programs that grow the packet (bpf_xdp_adjust_tail can reach the page's end). */
#define OUT_SLACK 4096

uint32_t ksrt_test_run(const char *prog, void *data, uint32_t len, uint32_t copy_back)
{
    if (!rt.in_test || !rt.obj)
        rt_internal_error("test(%s) outside a test", prog);
    struct bpf_program *p = bpf_object__find_program_by_name(rt.obj, prog);
    if (!p)
        rt_internal_error("unknown program %s", prog);
    uint32_t ctx[11];
    size_t ctx_size = test_ctx(rt_prog_kind(p), len, ctx);
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
