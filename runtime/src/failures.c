/* failures.c — aborts, assertion failures, uncaught throws and internal errors (ABI.md §3.1).
 *
 * Outside tests each prints its message to stderr, cleans up as ksrt_exit does and exits with
 * the documented status. Inside a test it records the reason and siglongjmps back into
 * ksrt_test_main, which reports the test as failed and goes on with the next one. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

_Noreturn void rt_fail_test(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(rt.reason, sizeof rt.reason, format, args);
    va_end(args);
    siglongjmp(rt.test_jmp, 1);
}

/* A broken promise between compiler and runtime: never a test failure, always exit 1. */
_Noreturn void rt_internal_error(const char *format, ...)
{
    rt_detach_all();
    rt_undo_startup();
    fflush(stdout);
    va_list args;
    va_start(args, format);
    fputs("ksrt: internal error: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(1);
}

_Noreturn void ksrt_runtime_error(const char *file, uint32_t line, uint32_t col, const char *message)
{
    if (rt.in_test)
        rt_fail_test("runtime error: %s", message);
    fflush(stdout);
    fprintf(stderr, "%s:%u:%u: runtime error: %s\n", file, line, col, message);
    ksrt_exit(101);
}

_Noreturn void ksrt_assert_fail(const char *file, uint32_t line, uint32_t col, const char *message)
{
    if (rt.in_test) {
        if (message)
            rt_fail_test("assertion failed at %s:%u: %s", file, line, message);
        rt_fail_test("assertion failed at %s:%u", file, line);
    }
    fflush(stdout);
    if (message)
        fprintf(stderr, "%s:%u:%u: assertion failed: %s\n", file, line, col, message);
    else
        fprintf(stderr, "%s:%u:%u: assertion failed\n", file, line, col);
    ksrt_exit(101);
}

const char *(*rt_throw_detail)(int64_t code);

_Noreturn void ksrt_uncaught_throw(int64_t code)
{
    const char *detail = rt_throw_detail ? rt_throw_detail(code) : NULL;
    if (rt.in_test)
        rt_fail_test("uncaught throw %lld%s%s", (long long)code, detail ? ": " : "", detail ? detail : "");
    fflush(stdout);
    fprintf(stderr, "uncaught throw %lld%s%s\n", (long long)code, detail ? ": " : "", detail ? detail : "");
    ksrt_exit(1);
}

void *rt_zalloc(size_t size)
{
    void *p = calloc(1, size ? size : 1); /* size 0 (a ring buffer's value) must not read as failure */
    if (!p) {
        fputs("ksrt: out of memory\n", stderr);
        exit(1);
    }
    return p;
}
