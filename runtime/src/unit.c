/* unit.c — ksrt_start/ksrt_exit and the life of the BPF object (docs/language.md §15.1, §11.6, §12).
 *
 * Loading: kernel module first (units with kfuncs), then open the embedded ELF with libbpf, point
 * pinned maps at /sys/fs/bpf/<base>/... (libbpf reuses a compatible pin and pins what it creates),
 * load, then write what the kernel cannot know: new pinned globals' initial values and prog_array
 * slots (config defaults are in the object's data); and open perf buffers so that no early event
 * is lost. libbpf's
 * messages are captured and shown only when the load fails, because the runtime prints nothing
 * on success. Pins need a BPF filesystem at /sys/fs/bpf, which is mounted when missing; a start-up
 * that fails removes the pins and directories it created. Test mode loads the same way without
 * pins. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct rt_state rt = {.dispatch_epfd = -1};

static const char PINNED_GLOBALS[] = "__pinned_globals";

/* libbpf's warnings and info messages of the current open/load. */
static struct {
    char *buf;
    size_t len, cap;
    bool on;
} captured;

static int capture_libbpf_message(enum libbpf_print_level level, const char *format, va_list args)
{
    /* libbpf's hint to raise `ulimit -l` on EPERM is obsolete since kernels charge BPF memory
     * to cgroups (5.11) and would mislead next to the real reason. */
    if (!captured.on || level == LIBBPF_DEBUG || strstr(format, "'ulimit -l'"))
        return 0;
    va_list copy;
    va_copy(copy, args);
    int n = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    if (n <= 0)
        return 0;
    if (captured.len + (size_t)n + 1 > captured.cap) {
        size_t cap = 2 * (captured.len + (size_t)n + 1);
        char *buf = realloc(captured.buf, cap);
        if (!buf)
            return 0;
        captured.buf = buf;
        captured.cap = cap;
    }
    vsnprintf(captured.buf + captured.len, (size_t)n + 1, format, args);
    captured.len += (size_t)n;
    return n;
}

static void capture_start(void)
{
    libbpf_set_print(capture_libbpf_message);
    captured.len = 0;
    if (captured.buf)
        captured.buf[0] = '\0';
    captured.on = true;
}

static const char *captured_text(void)
{
    return captured.buf ? captured.buf : "";
}

/* The last non-empty line of `text` (up to `end`) satisfying `keep`, trimmed, into `out`. */
static bool last_line(const char *text, const char *end, bool (*keep)(const char *line, size_t len), char *out,
                      size_t n)
{
    while (end > text) {
        const char *line_end = end;
        while (line_end > text && (line_end[-1] == '\n' || line_end[-1] == ' ' || line_end[-1] == '\t'))
            line_end--;
        const char *line = line_end;
        while (line > text && line[-1] != '\n')
            line--;
        end = line;
        const char *start = line;
        while (start < line_end && (*start == ' ' || *start == '\t'))
            start++;
        size_t len = (size_t)(line_end - start);
        if (len > 0 && keep(start, len)) {
            snprintf(out, n, "%.*s", (int)len, start);
            return true;
        }
    }
    return false;
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
    size_t p = strlen(prefix);
    return len >= p && memcmp(s, prefix, p) == 0;
}

/* The verifier's complaint is its last line before the closing statistics. */
static bool is_complaint(const char *line, size_t len)
{
    return !starts_with(line, len, "processed ") && !starts_with(line, len, "verification time ") &&
           !starts_with(line, len, "stack depth ");
}

/* libbpf ends every failed load with "failed to load object 'NAME'", which says nothing. */
static bool is_reason(const char *line, size_t len)
{
    return !starts_with(line, len, "libbpf: failed to load object");
}

/* The last libbpf message that gives a reason, without libbpf's "libbpf: " prefix. */
static void last_message(int err, char *out, size_t n)
{
    char line[512];
    const char *text = captured_text();
    if (!last_line(text, text + strlen(text), is_reason, line, sizeof line)) {
        snprintf(out, n, "%s", rt_error_text(err, RT_OP_LOAD).text);
        return;
    }
    const char *msg = strncmp(line, "libbpf: ", 8) == 0 ? line + 8 : line;
    snprintf(out, n, "%s", msg);
}

/* libbpf's messages as the detail below a headline that already quotes the last one: only
 * worth printing when there is more than that line, and only when asked for (KSRT_VERBOSE=1):
 * they run to dozens of lines (a whole BTF dump) where the headline has said what failed. */
static bool verbose_wanted(void)
{
    const char *verbose = getenv("KSRT_VERBOSE");
    return verbose && *verbose && strcmp(verbose, "0") != 0;
}

static const char *more_messages(struct rt_load_failure *f)
{
    const char *text = captured_text();
    const char *newline = strchr(text, '\n');
    if (!newline || !newline[1])
        return "";
    if (verbose_wanted())
        return text;
    f->messages_hidden = true;
    return "";
}

/* Whether the bpf() system call works at all: creates and closes a one-entry array map. */
static int probe_bpf(void)
{
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, 4, 1, NULL);
    if (fd < 0)
        return -fd;
    close(fd);
    return 0;
}

static void describe_map(char *out, size_t n, enum bpf_map_type type, uint32_t key, uint32_t value, uint32_t max,
                         uint32_t flags)
{
    const char *name = libbpf_bpf_map_type_str(type);
    snprintf(out, n, "%s, key %u, value %u, max_entries %u, flags 0x%x", name ? name : "unknown", key, value, max,
             flags);
}

/* What a BPF object fd refers to, from its anonymous inode's name ("anon_inode:bpf-map"): the
 * kernel's info query answers for whatever the fd is, so program info would be read as map info.
 * NULL for a map; otherwise "a program", "a link", ... for messages. */
static const char *not_a_map(int fd)
{
    char link[64], target[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0)
        return NULL; /* no /proc: trust the info query, as libbpf does */
    target[n] = '\0';
    if (strcmp(target, "anon_inode:bpf-map") == 0)
        return NULL;
    if (strcmp(target, "anon_inode:bpf-prog") == 0)
        return "a program";
    if (strcmp(target, "anon_inode:bpf_link") == 0 || strcmp(target, "anon_inode:bpf-link") == 0)
        return "a link";
    return "an object other than a map";
}

/* The path after `needle` up to the closing quote in libbpf's messages, if present. */
static bool quoted_path(const char *needle, const char **path, size_t *len)
{
    const char *hit = strstr(captured_text(), needle);
    if (!hit)
        return false;
    *path = hit + strlen(needle);
    const char *end = strchr(*path, '\'');
    if (!end)
        return false;
    *len = (size_t)(end - *path);
    return true;
}

/* libbpf refused to reuse a pin: "couldn't reuse pinned map at 'PATH': parameter mismatch", or
 * "couldn't retrieve pinned map 'PATH'" when what is there is no BPF object. Says what is there
 * before comparing it with the declaration. */
static bool explain_pin_mismatch(struct bpf_object *obj, struct rt_load_failure *f)
{
    const char *path;
    size_t path_len;
    if (!quoted_path("couldn't reuse pinned map at '", &path, &path_len) &&
        !quoted_path("couldn't retrieve pinned map '", &path, &path_len))
        return false;

    struct bpf_map *map, *found = NULL;
    const char *pin = NULL;
    bpf_object__for_each_map(map, obj) {
        const char *p = bpf_map__pin_path(map);
        if (p && strlen(p) == path_len && strncmp(p, path, path_len) == 0) {
            found = map;
            pin = p;
        }
    }
    if (!found)
        return false;

    int fd = bpf_obj_get(pin);
    int get_errno = errno;
    const char *other = fd >= 0 ? not_a_map(fd) : NULL;
    struct stat st;
    if (fd < 0 && stat(pin, &st) == 0)
        other = S_ISDIR(st.st_mode) ? "a directory" : "a file that is no BPF object";
    if (other) {
        if (fd >= 0)
            close(fd);
        snprintf(f->summary, sizeof f->summary, "cannot reuse the pin of map %s: %s (not a map) is %s %s",
                 bpf_map__name(found), other, fd >= 0 ? "pinned at" : "at", pin);
        snprintf(f->headline, sizeof f->headline, "%s; remove it (rm%s %s) for the map to be pinned there",
                 f->summary, strcmp(other, "a directory") == 0 ? " -r" : "", pin);
        return true;
    }

    char declared[160], pinned[160];
    describe_map(declared, sizeof declared, bpf_map__type(found), bpf_map__key_size(found),
                 bpf_map__value_size(found), bpf_map__max_entries(found), bpf_map__map_flags(found));
    struct bpf_map_info info;
    uint32_t info_len = sizeof info;
    memset(&info, 0, sizeof info);
    if (fd < 0)
        snprintf(pinned, sizeof pinned, "unreadable: %.140s", rt_error_text(get_errno, RT_OP_LOAD).text);
    else if (bpf_map_get_info_by_fd(fd, &info, &info_len) != 0)
        snprintf(pinned, sizeof pinned, "unreadable: %.140s", rt_error_text(errno, RT_OP_LOAD).text);
    else
        describe_map(pinned, sizeof pinned, info.type, info.key_size, info.value_size, info.max_entries,
                     info.map_flags);
    if (fd >= 0)
        close(fd);
    snprintf(f->summary, sizeof f->summary, "pinned map %s at %s does not match the program's declaration",
             bpf_map__name(found), pin);
    snprintf(f->headline, sizeof f->headline, "%s (pinned: %s; declared: %s)", f->summary, pinned, declared);
    return true;
}

/* libbpf stopped at a map the kernel would not create ("map 'NAME': failed to create: ..."):
 * maps are created before any program loads, so it is the map that needs fixing. */
static bool explain_map_failure(int err, struct rt_load_failure *f)
{
    static const char needle[] = "': failed to create";
    const char *text = captured_text();
    const char *hit = strstr(text, needle);
    if (!hit)
        return false;
    const char *line = hit;
    while (line > text && line[-1] != '\n')
        line--;
    const char *name = strstr(line, "map '");
    if (!name || name > hit)
        return false;
    name += 5;
    snprintf(f->summary, sizeof f->summary, "cannot create map %.*s: %s", (int)(hit - name), name,
             rt_error_text(err, RT_OP_MAP_CREATE).text);
    snprintf(f->headline, sizeof f->headline, "%s", f->summary);
    f->detail = more_messages(f);
    return true;
}

/* libbpf names the program it stopped at: "prog 'NAME': failed to load: ...". */
static bool failed_program(char *name, size_t n)
{
    const char *text = captured_text();
    const char *hit = strstr(text, "': failed to load: ");
    if (!hit)
        return false;
    const char *line = hit;
    while (line > text && line[-1] != '\n')
        line--;
    const char *p = strstr(line, "prog '");
    if (!p || p > hit)
        return false;
    p += 6;
    snprintf(name, n, "%.*s", (int)(hit - p), p);
    return true;
}

/* "calling kernel function NAME is not allowed": the program's type may not call that kfunc on
 * this kernel (before 6.2 to 6.12 only some kinds of program may call kfuncs at all; the unit's
 * module registers its kfuncs for every kind that calls them and skips the kinds the kernel
 * refuses). One line with the call's `.ks` line (the unit's table of first calls per program),
 * the program and its kind. */
static bool explain_kfunc_not_allowed(const char *complaint, const char *name, const char *kind,
                                      struct rt_load_failure *f)
{
    static const char head[] = "calling kernel function ", tail[] = " is not allowed";
    size_t n = strlen(complaint), h = sizeof head - 1, t = sizeof tail - 1;
    if (n <= h + t || strncmp(complaint, head, h) != 0 || strcmp(complaint + n - t, tail) != 0)
        return false;
    int kfunc_len = (int)(n - h - t) < 128 ? (int)(n - h - t) : 128;
    const char *kfunc = complaint + h;
    struct utsname u;
    const char *release = uname(&u) == 0 ? u.release : "?";
    snprintf(f->summary, sizeof f->summary, "this kernel (Linux %.64s) does not let %s programs call the kfunc %.*s",
             release, kind, kfunc_len, kfunc);
    const char *where = NULL;
    for (uint32_t i = 0; i < rt.unit->n_kfuncs && !where; i++) {
        const struct ksrt_kfunc *k = &rt.unit->kfuncs[i];
        if (k->prog && strcmp(k->prog, name) == 0 && strlen(k->name) == (size_t)kfunc_len &&
            strncmp(k->name, kfunc, kfunc_len) == 0)
            where = k->where;
    }
    if (where)
        snprintf(f->headline, sizeof f->headline,
                 "%.200s: the %s program %.128s calls the kfunc %.*s, which this kernel (Linux %.64s) does not let %s "
                 "programs call",
                 where, kind, name, kfunc_len, kfunc, release, kind);
    else
        snprintf(f->headline, sizeof f->headline, "cannot load program %.128s: %s", name, f->summary);
    return true;
}

/* Root lacks no privilege: EPERM for a program the kernel runs through a BPF trampoline is the
 * kernel's own refusal (no ftrace support, or lockdown), and "needs root" would mislead. */
#define RT_TRAMPOLINE_REFUSED                                                                              \
    "Operation not permitted (EPERM); running as root, so this kernel itself refuses such programs (built " \
    "without the ftrace support BPF trampolines need, or locked down): load them on a kernel with it"

static bool refused_by_kernel(int err, const char *kind)
{
    static const char *const trampoline_kinds[] = {"fentry", "fexit", "fmod_ret", "lsm", "struct_ops"};
    if ((err != EPERM && err != -EPERM) || geteuid() != 0)
        return false;
    for (size_t i = 0; i < sizeof trampoline_kinds / sizeof *trampoline_kinds; i++)
        if (strcmp(kind, trampoline_kinds[i]) == 0)
            return true;
    return false;
}

static void explain_program_failure(struct bpf_object *obj, const char *name, int err, struct rt_load_failure *f)
{
    char marker[320];
    snprintf(marker, sizeof marker, "prog '%s': -- BEGIN PROG LOAD LOG --\n", name);
    char *log = captured.buf ? strstr(captured.buf, marker) : NULL;
    char complaint[512] = "";
    if (log) {
        log += strlen(marker);
        char *end = strstr(log, "-- END PROG LOAD LOG --");
        if (end)
            *end = '\0';
        if (last_line(log, log + strlen(log), is_complaint, complaint, sizeof complaint))
            f->detail = log;
    }
    if (!complaint[0]) {
        /* No verifier log: libbpf's own reason if it stopped before the bpf() call, else the
         * kernel refused the program before its verifier ran (e.g. EPERM for fentry). */
        char prefix[300];
        snprintf(prefix, sizeof prefix, "prog '%s': ", name);
        const char *text = captured_text();
        const char *why = strstr(text, prefix);
        struct bpf_program *prog = bpf_object__find_program_by_name(obj, name);
        if (!strstr(text, "BPF program load failed") && why) {
            why += strlen(prefix);
            snprintf(complaint, sizeof complaint, "%.*s", (int)strcspn(why, "\n"), why);
        } else {
            const char *kind = prog ? rt_prog_kind(prog) : "";
            snprintf(complaint, sizeof complaint, "the kernel refused the %s program before verification: %s", kind,
                     refused_by_kernel(err, kind) ? RT_TRAMPOLINE_REFUSED : rt_error_text(err, RT_OP_LOAD).text);
        }
        f->detail = more_messages(f);
    }
    /* The verifier's words for an instruction it does not know (ksc's objects are well formed):
     * the object was built for a newer BPF cpu than this kernel implements. */
    if (strstr(complaint, "uses reserved fields") || strstr(complaint, "unknown opcode")) {
        size_t len = strlen(complaint);
        snprintf(complaint + len, sizeof complaint - len, "%s",
                 " (an instruction this kernel does not know: the object was built for a newer BPF cpu; "
                 "--bpf-cpu=v4 needs Linux 6.6, v3 Linux 5.1)");
    }
    struct bpf_program *prog = bpf_object__find_program_by_name(obj, name);
    if (explain_kfunc_not_allowed(complaint, name, prog ? rt_prog_kind(prog) : "these", f)) {
        /* The headline says all the log would; KSRT_VERBOSE=1 still shows the log. */
        if (!verbose_wanted())
            f->detail = "";
        return;
    }
    snprintf(f->summary, sizeof f->summary, "%s", complaint);
    snprintf(f->headline, sizeof f->headline, "cannot load program %s: %s", name, complaint);
}

/* A kfunc the running kernel lacks (libbpf: "extern (func ksym) 'NAME': not found in kernel or
 * module BTFs"): one line with the `.ks` line that declares it, the kfunc and the kernel, e.g. a
 * kfunc added after the kernel's release (docs/language.md §5.4). */
static bool explain_missing_kfunc(struct rt_load_failure *f)
{
    static const char head[] = "extern (func ksym) '";
    const char *hit = strstr(captured_text(), head);
    if (!hit)
        return false;
    const char *name = hit + strlen(head);
    size_t len = strcspn(name, "'");
    if (strncmp(name + len, "': not found in kernel or module BTF", 36) != 0)
        return false;
    const char *where = NULL;
    for (uint32_t i = 0; i < rt.unit->n_kfuncs; i++)
        if (!rt.unit->kfuncs[i].prog && strlen(rt.unit->kfuncs[i].name) == len &&
            strncmp(rt.unit->kfuncs[i].name, name, len) == 0)
            where = rt.unit->kfuncs[i].where;
    struct utsname u;
    const char *release = uname(&u) == 0 ? u.release : "?";
    snprintf(f->summary, sizeof f->summary, "the kfunc %.*s is not in this kernel (Linux %s): neither its BTF nor a loaded module's has it",
             (int)len, name, release);
    if (where)
        snprintf(f->headline, sizeof f->headline, "%s: %s", where, f->summary);
    else
        snprintf(f->headline, sizeof f->headline, "cannot load the BPF object: %s", f->summary);
    return true;
}

static void explain_load_failure(struct bpf_object *obj, int err, struct rt_load_failure *f)
{
    int bpf_errno = probe_bpf();
    if (bpf_errno) {
        snprintf(f->summary, sizeof f->summary, "bpf() unavailable: %s", rt_error_text(bpf_errno, RT_OP_LOAD).text);
        snprintf(f->headline, sizeof f->headline, "cannot load the BPF object: %s", f->summary);
        return;
    }
    if (explain_pin_mismatch(obj, f))
        return;
    if (explain_map_failure(err, f))
        return;
    char name[256];
    if (failed_program(name, sizeof name)) {
        explain_program_failure(obj, name, err, f);
        return;
    }
    if (explain_missing_kfunc(f))
        return;
    last_message(err, f->summary, sizeof f->summary);
    snprintf(f->headline, sizeof f->headline, "cannot load the BPF object: %s", f->summary);
    f->detail = more_messages(f);
}

/* What the current start-up created under /sys/fs/bpf: directories and pins that did not exist
 * before. A start-up that fails removes them again, so that it leaves nothing behind. */
struct path_list {
    char **paths;
    size_t n, cap;
};
static struct path_list made_dirs, new_pins;

static void remember(struct path_list *l, const char *path)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        char **paths = realloc(l->paths, l->cap * sizeof *paths);
        if (!paths) {
            fputs("ksrt: out of memory\n", stderr);
            exit(1);
        }
        l->paths = paths;
    }
    l->paths[l->n] = rt_zalloc(strlen(path) + 1);
    strcpy(l->paths[l->n++], path);
}

static void forget(struct path_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->paths[i]);
    l->n = 0;
}

/* Removes what a failed start-up created, newest first: its pins, then its (now empty)
 * directories. libbpf unpins what it pinned itself when bpf_object__load fails; pins made by a
 * load that succeeded before a later step failed are removed here. */
void rt_undo_startup(void)
{
    for (size_t i = new_pins.n; i-- > 0;)
        unlink(new_pins.paths[i]);
    for (size_t i = made_dirs.n; i-- > 0;)
        rmdir(made_dirs.paths[i]);
    forget(&new_pins);
    forget(&made_dirs);
}

/* mkdir -p of the directory holding `path`, remembering what it made. Other failures surface
 * when libbpf pins there. */
static void make_parent_dirs(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0700) == 0)
            remember(&made_dirs, dir);
        *p = c;
        if (!c)
            break;
    }
}

#define BPF_ROOT "/sys/fs/bpf"

/* Pins need a BPF filesystem at /sys/fs/bpf. When something else is there (a bare sysfs
 * directory: nothing mounted; a tmpfs; …), mount one, as bpftool does; when that fails, say
 * exactly that. 0, or -1 with `f` filled. */
static int ensure_bpffs(struct rt_load_failure *f)
{
    struct statfs st;
    memset(&st, 0, sizeof st);
    int err = statfs(BPF_ROOT, &st) == 0 ? 0 : errno;
    if (!err && st.f_type == BPF_FS_MAGIC)
        return 0;
    char what[128];
    if (err)
        snprintf(what, sizeof what, "cannot be examined (%.80s)", strerror(err));
    else if (st.f_type == SYSFS_MAGIC)
        snprintf(what, sizeof what, "is not a BPF filesystem (nothing is mounted there)");
    else if (st.f_type == TMPFS_MAGIC)
        snprintf(what, sizeof what, "is not a BPF filesystem (a tmpfs is mounted there)");
    else
        snprintf(what, sizeof what, "is not a BPF filesystem (filesystem type 0x%lx)", (unsigned long)st.f_type);
    if (mount("bpf", BPF_ROOT, "bpf", 0, "mode=0700") == 0)
        return 0;
    int mount_errno = errno;
    snprintf(f->summary, sizeof f->summary,
             "cannot pin: " BPF_ROOT " %s and mounting one there failed: %.200s; mount it with `mount -t bpf bpf "
             BPF_ROOT "`",
             what, rt_error_text(mount_errno, RT_OP_MOUNT).text);
    snprintf(f->headline, sizeof f->headline, "%s", f->summary);
    return -1;
}

static bool pin_exists(const char *path)
{
    int fd = bpf_obj_get(path);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static bool is_pinned_map(const char *name)
{
    for (uint32_t i = 0; i < rt.unit->n_pinned_maps; i++)
        if (strcmp(rt.unit->pinned_maps[i], name) == 0)
            return true;
    return false;
}

/* Sets flags and pin paths before the load, making sure a BPF filesystem is there to pin in and
 * remembering which pins are new; sets whether __pinned_globals' pin existed. 0, or -1 with `f`
 * filled. */
static int prepare_maps(struct bpf_object *obj, bool test_mode, bool *globals_pinned, struct rt_load_failure *f)
{
    const char *base = rt.unit->base;
    bool bpffs_checked = false;
    *globals_pinned = false;
    struct bpf_map *map;
    bpf_object__for_each_map(map, obj) {
        const char *name = bpf_map__name(map);
        /* Setting the flag here rather than trusting the object keeps mmap working whatever
         * the object declares; pins are created by this runtime, so reuse stays consistent. */
        if (strcmp(name, PINNED_GLOBALS) == 0)
            bpf_map__set_map_flags(map, bpf_map__map_flags(map) | BPF_F_MMAPABLE);
        if (test_mode) {
            bpf_map__set_pin_path(map, NULL);
            continue;
        }
        char path[PATH_MAX];
        if (strcmp(name, PINNED_GLOBALS) == 0) {
            snprintf(path, sizeof path, "/sys/fs/bpf/%s/globals/pinned_globals", base);
            bpf_map__set_pin_path(map, path);
        } else if (is_pinned_map(name)) {
            snprintf(path, sizeof path, "/sys/fs/bpf/%s/maps/%s", base, name);
            bpf_map__set_pin_path(map, path);
        }
        const char *pin = bpf_map__pin_path(map);
        if (!pin)
            continue;
        if (!bpffs_checked && ensure_bpffs(f))
            return -1;
        bpffs_checked = true;
        bool existed = pin_exists(pin);
        if (strcmp(name, PINNED_GLOBALS) == 0)
            *globals_pinned = existed;
        if (!existed)
            remember(&new_pins, pin);
        make_parent_dirs(pin);
    }
    return 0;
}

/* Writes what the kernel does not know after a successful load. */
static int initialize(bool globals_pin_existed, struct rt_load_failure *f)
{
    const struct ksrt_unit *u = rt.unit;
    if (u->pinned_globals_size && !globals_pin_existed) {
        struct rt_map *m = rt_map(PINNED_GLOBALS);
        if (u->pinned_globals_size > m->value_size)
            rt_internal_error("pinned globals image of %u bytes exceeds %s's value size %u", u->pinned_globals_size,
                              PINNED_GLOBALS, m->value_size);
        memcpy(rt_map_memory(m), u->pinned_globals_init, u->pinned_globals_size);
    }
    for (uint32_t i = 0; i < u->n_prog_slots; i++) {
        const struct ksrt_prog_slot *s = &u->prog_slots[i];
        struct rt_map *m = rt_map(s->map);
        struct bpf_program *prog = bpf_object__find_program_by_name(rt.obj, s->prog);
        if (!prog)
            rt_internal_error("unknown program %s for %s[%u]", s->prog, s->map, s->index);
        int fd = bpf_program__fd(prog);
        int err = bpf_map_update_elem(m->fd, &s->index, &fd, BPF_ANY);
        if (err) {
            snprintf(f->summary, sizeof f->summary, "cannot store program %s in %s[%u]: %s", s->prog, s->map,
                     s->index, rt_error_text(err, RT_OP_LOAD).text);
            snprintf(f->headline, sizeof f->headline, "%s", f->summary);
            return -1;
        }
    }
    const char *map;
    int err = rt_open_perf_buffers(&map);
    if (err) {
        snprintf(f->summary, sizeof f->summary, "cannot open the perf buffer of %s: %s", map,
                 rt_error_text(err, RT_OP_OTHER).text);
        snprintf(f->headline, sizeof f->headline, "%s", f->summary);
        return -1;
    }
    return 0;
}

static int run_modprobe(const char *base, struct rt_load_failure *f)
{
    char *argv[] = {"modprobe", (char *)base, NULL};
    pid_t pid;
    int err = posix_spawnp(&pid, "modprobe", NULL, NULL, argv, environ);
    if (err) {
        snprintf(f->summary, sizeof f->summary, "cannot load kernel module %s.ko: modprobe: %s", base,
                 rt_error_text(err, RT_OP_OTHER).text);
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            snprintf(f->summary, sizeof f->summary, "cannot load kernel module %s.ko: %s", base,
                     rt_error_text(errno, RT_OP_OTHER).text);
            return -1;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    snprintf(f->summary, sizeof f->summary, "cannot load kernel module %s.ko: modprobe %s failed (status %d)", base,
             base, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return -1;
}

/* The module ksc writes for a unit is <base>_kmod: Kbuild itself writes <module>.mod.c, so the
 * module cannot share the name of ksc's <base>.mod.c (README: kernel modules). */
static char module_name[100];
/* The process that loaded the module: the test driver's children inherit its atexit handlers. */
static pid_t module_loader;

/* Unloads module `name` once the programs that used its kfuncs are gone. The kernel frees a
 * closed program, and so drops its reference to the module's BTF, only after an RCU grace
 * period: until then delete_module says EAGAIN (the module is in use), so it is retried for a
 * while (10 s: guest kernels under emulation are slow). */
void rt_unload_module(const char *name)
{
    for (int tries = 0;; tries++) {
        if (syscall(SYS_delete_module, name, O_NONBLOCK) == 0 || errno == ENOENT)
            return;
        if ((errno != EAGAIN && errno != EBUSY) || tries == 1000)
            break;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    rt_report("cannot unload kernel module %s: %s", name, rt_error_text(errno, RT_OP_MODULE).text);
}

/* At exit when this process loaded the module, after the object that used its kfuncs is gone
 * (ksrt_exit destroys the object before exit() runs this). */
static void unload_module(void)
{
    if (getpid() == module_loader)
        rt_unload_module(module_name);
}

/* A process that forked to become a daemon (whose parent left with _exit) takes over the
 * unloading of the module its parent loaded. */
void rt_module_moved(pid_t from)
{
    if (module_loader == from && from != 0)
        module_loader = getpid();
}

const char *rt_loaded_module(void)
{
    return module_loader && module_loader == getpid() ? module_name : NULL;
}

/* Loads <dir of the executable>/<base>_kmod.ko, or `modprobe <base>_kmod` when there is none
 * (§16.2). */
int rt_load_module(struct rt_load_failure *f)
{
    static bool loaded;
    if (loaded)
        return 0;
    snprintf(module_name, sizeof module_name, "%s_kmod", rt.unit->base);
    const char *name = module_name;
    if (access("/proc/modules", F_OK) != 0) {
        snprintf(f->summary, sizeof f->summary,
                 "cannot load kernel module %s.ko: this kernel has no loadable module support (CONFIG_MODULES is off)", name);
        goto failed;
    }
    char exe[PATH_MAX], path[PATH_MAX + 300], sysfs[300];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len < 0)
        len = 0;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    snprintf(path, sizeof path, "%s/%s.ko", slash ? exe : ".", name);
    snprintf(sysfs, sizeof sysfs, "/sys/module/%s", name);
    bool already = access(sysfs, F_OK) == 0;

    int err = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (run_modprobe(name, f))
            goto failed;
    } else if (fd < 0) {
        err = errno;
    } else {
        if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)
            err = errno;
        close(fd);
    }
    if (err) {
        snprintf(f->summary, sizeof f->summary, "cannot load kernel module %s.ko: %s", name,
                 rt_error_text(err, RT_OP_MODULE).text);
        goto failed;
    }
    /* The kernel registers a module's kfuncs from its BTF; a module built against headers
     * without vmlinux has none, and libbpf would only say the kfunc is not found. */
    char btf[300];
    snprintf(btf, sizeof btf, "/sys/kernel/btf/%s", name);
    if (access("/sys/kernel/btf/vmlinux", F_OK) == 0 && access(btf, F_OK) != 0) {
        snprintf(f->summary, sizeof f->summary, "cannot load kernel module %s.ko: " RT_MODULE_NO_BTF, name);
        if (!already && syscall(SYS_delete_module, name, O_NONBLOCK) != 0 && errno != ENOENT)
            rt_report("cannot unload kernel module %s: %s", name, rt_error_text(errno, RT_OP_MODULE).text);
        goto failed;
    }
    loaded = true;
    if (!already) {
        module_loader = getpid();
        atexit(unload_module);
    }
    return 0;
failed:
    snprintf(f->headline, sizeof f->headline, "%s", f->summary);
    return -1;
}

int rt_object_load(bool test_mode, struct rt_load_failure *f)
{
    const struct ksrt_unit *u = rt.unit;
    f->summary[0] = f->headline[0] = '\0';
    f->detail = "";
    f->messages_hidden = false;
    if (u->has_kfuncs && rt_load_module(f))
        return -1;

    /* Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; newer ones ignore it. */
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_MEMLOCK, &unlimited);

    capture_start();
    char pin_root[PATH_MAX];
    snprintf(pin_root, sizeof pin_root, "/sys/fs/bpf/%s/maps", u->base);
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = u->base, .pin_root_path = test_mode ? NULL : pin_root);
    struct bpf_object *obj = bpf_object__open_mem(u->object, (size_t)u->object_size, &opts);
    if (!obj) {
        int err = errno;
        captured.on = false;
        last_message(err, f->summary, sizeof f->summary);
        snprintf(f->headline, sizeof f->headline, "cannot open the BPF object: %s", f->summary);
        f->detail = more_messages(f);
        return -1;
    }
    ksrt_adapt_struct_ops(obj);
    bool globals_pin_existed;
    if (prepare_maps(obj, test_mode, &globals_pin_existed, f)) {
        captured.on = false;
        bpf_object__close(obj);
        rt_undo_startup();
        return -1;
    }
    int err = bpf_object__load(obj);
    captured.on = false;
    if (err) {
        explain_load_failure(obj, -err, f);
        bpf_object__close(obj);
        rt_undo_startup();
        return -1;
    }
    rt.obj = obj;
    if (initialize(globals_pin_existed, f)) {
        rt_object_destroy();
        rt_undo_startup();
        return -1;
    }
    /* Started: what it created stays. */
    forget(&new_pins);
    forget(&made_dirs);
    return 0;
}

void rt_object_destroy(void)
{
    rt_detach_all();
    for (struct ksrt_prog *p = rt.progs, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    for (struct rt_map *m = rt.maps, *next; m; m = next) {
        next = m->next;
        rt_release_map(m);
    }
    for (struct rt_global *g = rt.globals, *next; g; g = next) {
        next = g->next;
        free(g->name);
        free(g);
    }
    rt.progs = NULL;
    rt.maps = NULL;
    rt.globals = NULL;
    bpf_object__close(rt.obj);
    rt.obj = NULL;
}

/* SIGINT/SIGTERM/SIGHUP outside dispatch and daemon: nothing may stay attached (§15.3). Links
 * die with their fds anyway; closing them here and removing tc filters makes that explicit. */
static void on_fatal_signal(int sig)
{
    rt_detach_all_from_signal();
    _exit(128 + sig);
}

void rt_end_if_stopped(void)
{
    /* (A test's stop comes from its runner, which tells a stopped test apart by itself.) */
    if (rt.stopped_by && !rt.in_test)
        ksrt_exit(128 + rt.stopped_by);
}

void rt_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

void ksrt_start(const struct ksrt_unit *unit)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    rt.unit = unit;
    rt_install_signal_handlers();
    if (!unit->object)
        return;
    struct rt_load_failure f;
    if (rt_object_load(false, &f)) {
        rt_report("%s", f.headline);
        size_t len = strlen(f.detail);
        if (len)
            fprintf(stderr, "%s%s", f.detail, f.detail[len - 1] == '\n' ? "" : "\n");
        if (f.messages_hidden)
            rt_report("libbpf's messages are not shown; KSRT_VERBOSE=1 in the environment shows them");
        exit(1);
    }
}

_Noreturn void ksrt_exit(int32_t status)
{
    if (rt.obj)
        rt_object_destroy();
    fflush(stdout);
    exit(status & 0xff);
}
