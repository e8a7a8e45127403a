/* print.c — print and the string helpers (docs/language.md §15.5, §6.5; ABI.md §8).
 *
 * The compiler has already turned a KernelScript format into a C format whose conversions match
 * the passed arguments, so print is vprintf plus the newline. Strings are fixed-capacity buffers
 * whose content ends at the first NUL or at the capacity; results are NUL-padded to the full
 * capacity so that strings compare and hash bytewise as map keys. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int32_t ksrt_print(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    putchar('\n');
    return 0;
}

static size_t content_len(const char *s, uint32_t size)
{
    return strnlen(s, size);
}

bool ksrt_str_eq(const char *a, uint32_t a_size, const char *b, uint32_t b_size)
{
    size_t a_len = content_len(a, a_size), b_len = content_len(b, b_size);
    return a_len == b_len && memcmp(a, b, a_len) == 0;
}

void ksrt_str_copy(char *dst, uint32_t dst_size, const char *src, uint32_t src_size)
{
    ksrt_str_concat(dst, dst_size, src, src_size, "", 0);
}

void ksrt_str_concat(char *dst, uint32_t dst_size, const char *a, uint32_t a_size, const char *b, uint32_t b_size)
{
    if (dst_size == 0)
        return;
    size_t room = dst_size - 1;
    size_t a_len = content_len(a, a_size), b_len = content_len(b, b_size);
    if (a_len > room)
        a_len = room;
    if (b_len > room - a_len)
        b_len = room - a_len;
    memcpy(dst, a, a_len);
    memcpy(dst + a_len, b, b_len);
    memset(dst + a_len + b_len, 0, dst_size - a_len - b_len);
}
