/* exec.c — exec("script.py"): the process becomes `python3 SCRIPT ARGS…` with the BPF object's
 * descriptors still open (docs/language.md §15.7; ABI.md §7).
 *
 * What stays open across the exec, and only that (everything else keeps O_CLOEXEC): every map of
 * the object, every loaded program and every attachment the runtime owns as a descriptor (XDP,
 * TCX, tracing, cgroup, perf and struct_ops links, perf events). KSC_FDS tells the Python side
 * which descriptor is which; the module ksc generates beside the executable (<base>.py) reads it.
 *
 * After the exec none of the runtime's exit or signal cleanup runs. Link attachments need none:
 * they belong to their descriptors and go away when the Python process exits. What a descriptor
 * does not own — a clsact filter (the tc fallback when the kernel refuses TCX), a struct_ops
 * registration without link (kernels before 6.4) and the unit's kernel module — is removed by a
 * small reaper process forked before the exec, which waits for the Python process to end. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The command line, for the script's sys.argv: glibc passes it to ELF constructors. */
static int saved_argc;
static char **saved_argv;

__attribute__((constructor)) static void save_command_line(int argc, char **argv)
{
    saved_argc = argc;
    saved_argv = argv;
}

/* A growing "KEY=VALUE;…" list. */
struct fd_list {
    char *text;
    size_t len, cap;
};

static void add_entry(struct fd_list *l, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void add_entry(struct fd_list *l, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    char entry[600];
    int n = vsnprintf(entry, sizeof entry, format, args);
    va_end(args);
    if (n < 0 || (size_t)n >= sizeof entry)
        rt_internal_error("exec: an entry of KSC_FDS is too long");
    if (l->len + (size_t)n + 2 > l->cap) {
        size_t cap = 2 * (l->len + (size_t)n + 2);
        char *text = realloc(l->text, cap);
        if (!text)
            rt_internal_error("out of memory");
        l->text = text;
        l->cap = cap;
    }
    if (l->len)
        l->text[l->len++] = ';';
    memcpy(l->text + l->len, entry, (size_t)n + 1);
    l->len += (size_t)n;
}

/* Keeps `fd` open across the exec. */
static void inherit(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) != 0)
        rt_internal_error("exec: cannot keep descriptor %d open: %s", fd, rt_error_text(errno, RT_OP_OTHER).text);
}

/* The descriptor that owns an attachment, or -1. */
static int attachment_fd(const struct rt_attachment *a)
{
    if (a->link)
        return bpf_link__fd(a->link);
    return a->link_fd;
}

/* Globals: every variable of a .data/.bss section, as its section map's descriptor and offset,
 * and the members of the pinned globals' map value. */
static void export_globals(struct fd_list *l)
{
    const struct btf *btf = bpf_object__btf(rt.obj);
    if (!btf)
        return;
    uint32_t count = btf__type_cnt(btf);
    for (uint32_t id = 1; id < count; id++) {
        const struct btf_type *sec = btf__type_by_id(btf, id);
        if (!btf_is_datasec(sec))
            continue;
        const char *sec_name = btf__name_by_offset(btf, sec->name_off);
        if (strncmp(sec_name, ".data", 5) != 0 && strncmp(sec_name, ".bss", 4) != 0)
            continue;
        struct bpf_map *map = bpf_object__find_map_by_name(rt.obj, sec_name);
        if (!map || bpf_map__fd(map) < 0)
            continue;
        const struct btf_var_secinfo *v = btf_var_secinfos(sec);
        for (uint16_t i = 0; i < btf_vlen(sec); i++, v++) {
            const struct btf_type *var = btf__type_by_id(btf, v->type);
            if (var && btf_is_var(var))
                add_entry(l, "global:%s=%d:%u", btf__name_by_offset(btf, var->name_off), bpf_map__fd(map),
                          v->offset);
        }
    }
    struct bpf_map *pinned = bpf_object__find_map_by_name(rt.obj, "__pinned_globals");
    if (!pinned || bpf_map__fd(pinned) < 0)
        return;
    int tid = btf__resolve_type(btf, bpf_map__btf_value_type_id(pinned));
    const struct btf_type *t = tid > 0 ? btf__type_by_id(btf, (uint32_t)tid) : NULL;
    if (!t || !btf_is_struct(t))
        return;
    const struct btf_member *m = btf_members(t);
    for (uint16_t i = 0; i < btf_vlen(t); i++, m++)
        add_entry(l, "global:%s=%d:%u", btf__name_by_offset(btf, m->name_off), bpf_map__fd(pinned),
                  btf_member_bit_offset(t, i) / 8);
}

/* What the reaper must undo once the Python process is gone: the unit's kernel module. The
 * attachments no descriptor owns (clsact filters, struct_ops registered without a link) are the
 * guard's, which Python inherits (guard.c). */
static bool needs_reaper(void)
{
    return rt_loaded_module() != NULL;
}

static int compare_ints(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* Closes every descriptor from 3 up except `keep` (sorted in place). */
static void close_all_but(int *keep, size_t n)
{
    qsort(keep, n, sizeof *keep, compare_ints);
    unsigned int from = 3;
    for (size_t i = 0; i < n; i++) {
        if (keep[i] < (int)from)
            continue;
        if ((unsigned int)keep[i] > from)
            syscall(SYS_close_range, from, (unsigned int)keep[i] - 1, 0);
        from = (unsigned int)keep[i] + 1;
    }
    syscall(SYS_close_range, from, ~0U, 0);
}

/* The reaper: a child that holds nothing but a pidfd of the process about to become Python, and
 * unloads the unit's kernel module once Python has ended. */
static void start_reaper(void)
{
    /* Asked here: in the child, rt_loaded_module() is NULL (the module is the loader process's). */
    const char *module = rt_loaded_module();
    int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (pidfd < 0)
        rt_internal_error("exec: cannot watch this process (pidfd_open): %s", rt_error_text(errno, RT_OP_OTHER).text);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        rt_internal_error("exec: cannot start the process that cleans up after Python: %s",
                          rt_error_text(errno, RT_OP_OTHER).text);
    if (pid > 0) {
        close(pidfd);
        return;
    }
    /* The terminal's signals are for Python; the reaper ends when Python has. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    int keep[] = {pidfd};
    close_all_but(keep, 1);
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
    if (module)
        rt_unload_module(module);
    _exit(0);
}

/* The script as given when it exists there (relative to the working directory), else beside the
 * executable. */
static const char *locate(const char *script, char *buf, size_t n)
{
    if (access(script, F_OK) == 0 || script[0] == '/')
        return script;
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return script;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return script;
    *slash = '\0';
    snprintf(buf, n, "%s/%s", exe, script);
    return access(buf, F_OK) == 0 ? buf : script;
}

/* The executable's directory, where <base>.py is, first on PYTHONPATH (for modules the script
 * imports from there; the unit's own module comes from KSC_MODULE_FD), and KSC_MODULE_PATH. */
static void set_python_path(void)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0';
    if (rt.unit) {
        char module_path[PATH_MAX + 300];
        snprintf(module_path, sizeof module_path, "%s/%s.py", exe, rt.unit->base);
        setenv("KSC_MODULE_PATH", module_path, 1);
    }
    const char *old = getenv("PYTHONPATH");
    char *value;
    if (old && *old) {
        value = malloc(strlen(exe) + strlen(old) + 2);
        if (!value)
            rt_internal_error("out of memory");
        sprintf(value, "%s:%s", exe, old);
    } else {
        value = strdup(exe);
        if (!value)
            rt_internal_error("out of memory");
    }
    setenv("PYTHONPATH", value, 1);
    free(value);
}

/* What python3 runs: the unit's module from the descriptor KSC_MODULE_FD (the source the
 * executable embeds, so it always matches the object), registered under the unit's name, then
 * the script as __main__ with the script's directory first on sys.path, as `python3 SCRIPT`. */
static const char BOOTSTRAP[] =
    "import os, sys, types, runpy\n"
    "fd = int(os.environ.pop('KSC_MODULE_FD'))\n"
    "with os.fdopen(fd, 'r', encoding='utf-8') as f:\n"
    "    source = f.read()\n"
    "name = os.environ['KSC_UNIT']\n"
    "module = types.ModuleType(name)\n"
    "module.__file__ = os.environ.get('KSC_MODULE_PATH', name + '.py')\n"
    "sys.modules[name] = module\n"
    "exec(compile(source, module.__file__, 'exec'), module.__dict__)\n"
    "del fd, f, source, name, module\n"
    "sys.argv = sys.argv[1:]\n"
    "sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n";

/* The module source in a memory file the script inherits. */
static int module_fd(const char *source)
{
    int fd = memfd_create("ksc-python-module", 0);
    if (fd < 0)
        rt_internal_error("exec: cannot create the Python module's memory file: %s",
                          rt_error_text(errno, RT_OP_OTHER).text);
    size_t len = strlen(source);
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, source + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rt_internal_error("exec: cannot write the Python module: %s", rt_error_text(errno, RT_OP_OTHER).text);
        done += (size_t)n;
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

_Noreturn void ksrt_exec(const char *script, const char *module)
{
    char found[PATH_MAX + 256];
    const char *path = locate(script, found, sizeof found);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        rt_report("exec(\"%s\"): %s", script,
                  stat(path, &st) != 0 ? "no such script (relative paths are looked up in the working directory, "
                                         "then beside the executable)"
                                       : "not a regular file");
        ksrt_exit(1);
    }
    struct fd_list fds = {0};
    if (rt.obj) {
        struct bpf_map *map;
        bpf_object__for_each_map(map, rt.obj)
        {
            int fd = bpf_map__fd(map);
            if (fd < 0)
                continue;
            inherit(fd);
            add_entry(&fds, "map:%s=%d", bpf_map__name(map), fd);
        }
        export_globals(&fds);
        struct bpf_program *prog;
        bpf_object__for_each_program(prog, rt.obj)
        {
            int fd = bpf_program__fd(prog);
            if (fd < 0)
                continue;
            inherit(fd);
            add_entry(&fds, "prog:%s=%d", bpf_program__name(prog), fd);
        }
        for (struct ksrt_prog *p = rt.progs; p; p = p->next) {
            int fd = p->att && p->att->live ? attachment_fd(p->att) : -1;
            if (fd >= 0) {
                inherit(fd);
                add_entry(&fds, "link:%s=%d", bpf_program__name(p->prog), fd);
            }
        }
        for (struct rt_attachment *a = rt.attachments; a; a = a->next) {
            if (!a->live)
                continue;
            int fd = attachment_fd(a);
            if (fd >= 0)
                inherit(fd);
            if (a->perf_fd >= 0)
                inherit(a->perf_fd);
            if (a->impl && fd >= 0)
                add_entry(&fds, "link:%s=%d", a->impl, fd);
        }
        rt_guard_across_exec();
        if (needs_reaper())
            start_reaper();
    }
    char number[32];
    snprintf(number, sizeof number, "%d", module_fd(module));
    setenv("KSC_MODULE_FD", number, 1);
    setenv("KSC_FDS", fds.text ? fds.text : "", 1);
    setenv("KSC_UNIT", rt.unit ? rt.unit->base : "", 1);
    set_python_path();
    size_t n = saved_argc > 1 ? (size_t)saved_argc - 1 : 0;
    char **argv = calloc(n + 5, sizeof *argv);
    if (!argv)
        rt_internal_error("out of memory");
    argv[0] = "python3";
    argv[1] = "-c";
    argv[2] = (char *)BOOTSTRAP;
    argv[3] = (char *)path;
    for (size_t i = 0; i < n; i++)
        argv[4 + i] = saved_argv[1 + i];
    fflush(stdout);
    fflush(stderr);
    execvp("python3", argv);
    int err = errno;
    rt_report("exec(\"%s\"): cannot run python3: %s", script, rt_error_text(err, RT_OP_OTHER).text);
    ksrt_exit(1);
}
