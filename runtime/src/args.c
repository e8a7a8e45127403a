/* args.c — ksrt_parse_args: the fields of main's struct parameter as long options
 * (docs/language.md §15.2).
 *
 * `--FIELD=VALUE` or `--FIELD VALUE`, '-' and '_' interchangeable in FIELD, later occurrences
 * win. A bool alone means true; it takes the next argument only when that is a bool literal, so
 * `--verbose --port 1` keeps working. Integers are range-checked against the field's size
 * without ever overflowing. Any error prints `error: MESSAGE` and the usage to stderr, exit 1. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *program_name(int32_t argc, char **argv)
{
    if (argc < 1 || !argv[0] || !*argv[0])
        return "program";
    const char *slash = strrchr(argv[0], '/');
    return slash ? slash + 1 : argv[0];
}

static void usage(FILE *out, const char *prog, const struct ksrt_arg_field *fields, uint32_t n)
{
    fprintf(out, "usage: %s [OPTIONS]\n", prog);
    for (uint32_t i = 0; i < n; i++)
        fprintf(out, "  --%s=<%s>\n", fields[i].name, fields[i].type_name);
}

struct parser {
    const char *prog;
    const struct ksrt_arg_field *fields;
    uint32_t n;
};

static _Noreturn __attribute__((format(printf, 2, 3))) void fail(const struct parser *p, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("error: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    usage(stderr, p->prog, p->fields, p->n);
    exit(1);
}

/* `--NAME` (len bytes of it) matches the field, '-' and '_' being the same character. */
static bool same_name(const char *option, size_t len, const char *field)
{
    for (size_t i = 0; i < len; i++, field++) {
        char a = option[i] == '-' ? '_' : option[i];
        char b = *field == '-' ? '_' : *field;
        if (!*field || a != b)
            return false;
    }
    return *field == '\0';
}

static bool is_bool_literal(const char *s)
{
    return strcmp(s, "true") == 0 || strcmp(s, "false") == 0 || strcmp(s, "1") == 0 || strcmp(s, "0") == 0;
}

enum number { NUMBER_OK, NUMBER_MALFORMED, NUMBER_OUT_OF_RANGE };

/* Parses [-]DIGITS in decimal, 0x, 0o or 0b into a sign and a magnitude. A well-formed number
 * beyond 2^64 - 1 is out of range, not malformed. */
static enum number parse_magnitude(const char *s, bool *negative, uint64_t *magnitude)
{
    *negative = *s == '-';
    if (*negative)
        s++;
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        base = 16;
    else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
        base = 8;
    else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
        base = 2;
    if (base != 10)
        s += 2;
    if (!*s)
        return NUMBER_MALFORMED;
    uint64_t v = 0;
    bool overflow = false;
    for (; *s; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (*s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (*s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            return NUMBER_MALFORMED;
        if (d >= base)
            return NUMBER_MALFORMED;
        if (v > (UINT64_MAX - d) / base)
            overflow = true;
        else
            v = v * base + d;
    }
    *magnitude = v;
    return overflow ? NUMBER_OUT_OF_RANGE : NUMBER_OK;
}

/* The value as the low `size` bytes of its two's-complement bits, range-checked. */
static enum number integer_value(const char *s, bool is_signed, uint32_t size, uint64_t *bits)
{
    bool negative;
    uint64_t magnitude;
    enum number r = parse_magnitude(s, &negative, &magnitude);
    if (r != NUMBER_OK)
        return r;
    unsigned width = 8 * size;
    if (!is_signed) {
        if (negative || (width < 64 && magnitude >> width))
            return NUMBER_OUT_OF_RANGE;
        *bits = magnitude;
        return NUMBER_OK;
    }
    uint64_t limit = (uint64_t)1 << (width - 1); /* |min|; max is limit - 1 */
    if (negative ? magnitude > limit : magnitude >= limit)
        return NUMBER_OUT_OF_RANGE;
    *bits = negative ? (uint64_t)0 - magnitude : magnitude;
    return NUMBER_OK;
}

static void store(void *out, const struct ksrt_arg_field *f, uint64_t bits)
{
    memcpy((char *)out + f->offset, &bits, f->size); /* little-endian: the low `size` bytes */
}

static void set_field(const struct parser *p, void *out, const struct ksrt_arg_field *f, const char *value)
{
    if (f->kind != KSRT_ARG_STR && (f->size < 1 || f->size > 8))
        rt_internal_error("option --%s has size %u", f->name, f->size);
    switch (f->kind) {
    case KSRT_ARG_UINT:
    case KSRT_ARG_INT: {
        uint64_t bits = 0;
        enum number r = integer_value(value, f->kind == KSRT_ARG_INT, f->size, &bits);
        if (r == NUMBER_MALFORMED)
            fail(p, "invalid value '%s' for --%s: expected %s", value, f->name, f->type_name);
        if (r == NUMBER_OUT_OF_RANGE)
            fail(p, "value '%s' for --%s is out of range for %s", value, f->name, f->type_name);
        store(out, f, bits);
        return;
    }
    case KSRT_ARG_BOOL:
        if (!is_bool_literal(value))
            fail(p, "invalid value '%s' for --%s: expected true, false, 1 or 0", value, f->name);
        store(out, f, strcmp(value, "true") == 0 || strcmp(value, "1") == 0);
        return;
    case KSRT_ARG_CHAR:
        if (strlen(value) != 1)
            fail(p, "invalid value '%s' for --%s: expected exactly one character", value, f->name);
        store(out, f, (uint8_t)value[0]);
        return;
    case KSRT_ARG_STR: {
        size_t len = strlen(value);
        if (f->size == 0 || len > f->size - 1)
            fail(p, "value for --%s is too long: %zu bytes, at most %u allowed", f->name, len,
                 f->size ? f->size - 1 : 0);
        memset((char *)out + f->offset, 0, f->size);
        memcpy((char *)out + f->offset, value, len);
        return;
    }
    case KSRT_ARG_ENUM: {
        for (uint32_t i = 0; i < f->n_items; i++)
            if (strcmp(f->items[i].name, value) == 0) {
                store(out, f, (uint64_t)f->items[i].value);
                return;
            }
        bool negative;
        uint64_t magnitude;
        if (parse_magnitude(value, &negative, &magnitude) == NUMBER_OK) {
            for (uint32_t i = 0; i < f->n_items; i++) {
                int64_t v = f->items[i].value;
                if (negative ? v < 0 && (uint64_t)0 - (uint64_t)v == magnitude : v >= 0 && (uint64_t)v == magnitude) {
                    store(out, f, (uint64_t)v);
                    return;
                }
            }
        }
        char names[1024] = "";
        size_t used = 0;
        for (uint32_t i = 0; i < f->n_items && used < sizeof names; i++) {
            int w = snprintf(names + used, sizeof names - used, "%s%s (%lld)", i ? ", " : "", f->items[i].name,
                             (long long)f->items[i].value);
            used += w > 0 ? (size_t)w : 0;
        }
        fail(p, "invalid value '%s' for --%s: expected one of %s", value, f->name, names);
    }
    default:
        rt_internal_error("option --%s has unknown kind %u", f->name, f->kind);
    }
}

void ksrt_parse_args(int32_t argc, char **argv, void *out, const struct ksrt_arg_field *fields, uint32_t n)
{
    struct parser p = {program_name(argc, argv), fields, n};
    for (int32_t i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout, p.prog, fields, n);
            fflush(stdout);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            fail(&p, "unexpected argument '%s'", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const struct ksrt_arg_field *f = NULL;
        for (uint32_t j = 0; j < n && !f; j++)
            if (same_name(name, name_len, fields[j].name))
                f = &fields[j];
        if (!f)
            fail(&p, "unknown option '--%.*s'", (int)name_len, name);
        const char *value;
        if (eq)
            value = eq + 1;
        else if (f->kind == KSRT_ARG_BOOL)
            value = i + 1 < argc && is_bool_literal(argv[i + 1]) ? argv[++i] : "true";
        else if (i + 1 < argc)
            value = argv[++i];
        else
            fail(&p, "missing value for --%s", f->name);
        set_field(&p, out, f, value);
    }
}
