/* ksrt.h — the public interface of the ksc runtime library (libksrt.a).
 *
 * Host executables built by ksc call these functions with the x86-64 SysV C ABI; runtime/ABI.md
 * is the contract and says what each one does. The declarations here must match it exactly:
 * the compiler emits the calls from its own type signatures, not from this header. */
#ifndef KSRT_H
#define KSRT_H

#include <stdbool.h>
#include <stdint.h>

/* ---- Startup and exit (ABI.md §2) ---- */

struct ksrt_rb_default {
    const char *map;
    int32_t (*handler)(void *record);
};

struct ksrt_prog_slot {
    const char *map;
    uint32_t index;
    const char *prog;
};

/* A kfunc the object calls and where the unit declares or uses it ("FILE:LINE", or "FILE:LINE: `new` in
 * kernel code" for the kfuncs behind a construct), for the message of a
 * kernel that lacks it. */
struct ksrt_kfunc {
    const char *name;
    const char *where;
    const char *prog; /* the program whose first call of it is at `where`; NULL: its declaration */
};

struct ksrt_unit {
    const char *base;
    const void *object;
    uint64_t object_size;
    const char *const *pinned_maps;
    uint32_t n_pinned_maps;
    const void *pinned_globals_init;
    uint32_t pinned_globals_size;
    const struct ksrt_prog_slot *prog_slots;
    uint32_t n_prog_slots;
    const struct ksrt_rb_default *rb_defaults;
    uint32_t n_rb_defaults;
    bool has_kfuncs;
    void (*reset_globals)(void);
    const struct ksrt_kfunc *kfuncs;
    uint32_t n_kfuncs;
};

void ksrt_start(const struct ksrt_unit *unit);
_Noreturn void ksrt_exit(int32_t status);

/* ---- Command-line arguments (ABI.md §2, docs/language.md §15.2) ---- */

enum { KSRT_ARG_UINT, KSRT_ARG_INT, KSRT_ARG_BOOL, KSRT_ARG_CHAR, KSRT_ARG_STR, KSRT_ARG_ENUM };

struct ksrt_enum_item {
    const char *name;
    int64_t value;
};

struct ksrt_arg_field {
    const char *name;
    const char *type_name;
    uint32_t offset, size;
    uint8_t kind;
    const struct ksrt_enum_item *items;
    uint32_t n_items;
};

void ksrt_parse_args(int32_t argc, char **argv, void *out, const struct ksrt_arg_field *fields, uint32_t n);

/* ---- Failures (ABI.md §3.1) ---- */

_Noreturn void ksrt_runtime_error(const char *file, uint32_t line, uint32_t col, const char *message);
_Noreturn void ksrt_assert_fail(const char *file, uint32_t line, uint32_t col, const char *message);
_Noreturn void ksrt_uncaught_throw(int64_t code);

/* ---- Test mode (ABI.md §3.2) ---- */

struct ksrt_test {
    const char *name;
    int64_t (*run)(void);
    bool returns_bool;
};

int32_t ksrt_test_main(const struct ksrt_unit *unit, const struct ksrt_test *tests, uint32_t n, int32_t argc,
                       char **argv);
uint32_t ksrt_test_run(const char *prog, void *data, uint32_t len, uint32_t copy_back);
uint32_t ksrt_test_len(void);

/* ---- Maps (ABI.md §4) ---- */

bool ksrt_map_lookup(const char *map, const void *key, void *value);
int64_t ksrt_map_update(const char *map, const void *key, const void *value, uint64_t flags);
int64_t ksrt_map_delete(const char *map, const void *key);
int64_t ksrt_map_add(const char *map, const void *key, uint64_t delta);
void ksrt_map_write_check(int64_t status, const char *map, const char *file, uint32_t line, uint32_t col);
bool ksrt_map_next_key(const char *map, const void *key, void *next_key);
int32_t ksrt_map_push(const char *map, const void *value);
bool ksrt_map_pop(const char *map, void *value, bool peek);
bool ksrt_map_contains(const char *map, const void *value);

/* ---- Globals and configs (ABI.md §5) ---- */

void *ksrt_global_addr(const char *global);
void *ksrt_config_addr(const char *config);

/* ---- Ring buffers and perf event arrays (ABI.md §6) ---- */

int32_t ksrt_rb_on_event(const char *map, int32_t (*handler)(void *record));
int32_t ksrt_rb_poll(const char *map, uint32_t timeout_ms);
int32_t ksrt_dispatch(const char *const *maps, uint32_t n);

/* ---- Programs and lifecycle (ABI.md §7) ---- */

typedef struct ksrt_prog ksrt_prog;
typedef struct ksrt_perf ksrt_perf;

/* The layout of KernelScript's builtin `struct perf_options` (40 bytes). */
struct ksrt_perf_options {
    uint32_t perf_type;
    uint64_t perf_config;
    int32_t pid;
    int32_t cpu;
    uint64_t period;
    uint32_t wakeup;
    bool inherit, exclude_kernel, exclude_user;
};

ksrt_prog *ksrt_prog_load(const char *prog);
int32_t ksrt_prog_attach(ksrt_prog *p, const char *target, uint32_t flags);
void ksrt_prog_detach(ksrt_prog *p);
ksrt_perf *ksrt_perf_attach(ksrt_prog *p, const struct ksrt_perf_options *options, uint32_t flags);
int64_t ksrt_perf_read(ksrt_perf *a);
void ksrt_perf_detach(ksrt_perf *a);
int32_t ksrt_register(const char *impl);
_Noreturn void ksrt_daemon(void);
void ksrt_sleep_ms(uint32_t ms);
_Noreturn void ksrt_exec(const char *script, const char *module);

/* ---- Output, strings (ABI.md §8) ---- */

int32_t ksrt_print(const char *format, ...) __attribute__((format(printf, 1, 2)));
bool ksrt_str_eq(const char *a, uint32_t a_size, const char *b, uint32_t b_size);
void ksrt_str_copy(char *dst, uint32_t dst_size, const char *src, uint32_t src_size);
void ksrt_str_concat(char *dst, uint32_t dst_size, const char *a, uint32_t a_size, const char *b, uint32_t b_size);

/* ---- Python modules (ABI.md §9; libksrt_python.a) ---- */

int64_t ksrt_py_call(const char *file, uint32_t line, uint32_t col, const char *module, const char *path,
                     const char *source, const char *func, const char *sig, ...);

#endif /* KSRT_H */
