/* kernel_compat.c — adapting an opened BPF object to what the running kernel offers, before it is
 * loaded. Compiled into the runtime and, on its own, into ksc, whose `verify` and `test` load
 * objects through the same libbpf: both must make the same choices, or an object ksc verified
 * would fail to start (or the other way round).
 *
 * struct_ops links: ksc emits struct_ops instances in `.struct_ops.link`, which libbpf creates
 * with BPF_F_LINK and registers through a link (Linux 6.4), so that the kernel unregisters them
 * when the process dies, however it dies. Older kernels refuse the flag on struct_ops maps with
 * EINVAL; there the maps are created without it and libbpf registers them by writing the map's
 * single element, which the runtime deletes again on exit (ABI.md §7). */
#include "kernel_compat.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The kernel's name of a struct_ops map's type: libbpf ignores a local `___flavor` suffix. */
static void kernel_type_name(const struct btf *btf, const struct bpf_map *map, char *out, size_t n)
{
    out[0] = '\0';
    const struct btf_type *t = btf ? btf__type_by_id(btf, bpf_map__btf_value_type_id(map)) : NULL;
    if (!t)
        return;
    const char *name = btf__name_by_offset(btf, t->name_off);
    if (!name)
        return;
    const char *flavor = strstr(name, "___");
    snprintf(out, n, "%.*s", (int)(flavor ? (size_t)(flavor - name) : strlen(name)), name);
}

/* Creates (and closes) a struct_ops map of the kernel value type `value_id`; 0 or -errno. The
 * kernel wants the BTF of the program that fills the map (`btf_fd`) even though the value's type
 * is its own. */
static int try_struct_ops_map(int btf_fd, int value_id, uint32_t value_size, uint32_t flags)
{
    LIBBPF_OPTS(bpf_map_create_opts, opts, .btf_fd = (uint32_t)btf_fd,
                .btf_vmlinux_value_type_id = (uint32_t)value_id, .map_flags = flags);
    int fd = bpf_map_create(BPF_MAP_TYPE_STRUCT_OPS, "ksc_probe", sizeof(int), value_size, 1, &opts);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

/* Whether the kernel registers struct_ops maps through links: 1 yes, 0 no, -errno when it cannot
 * tell (no vmlinux BTF, no such kernel type, no permission). The probe asks the question
 * directly: a struct_ops map of the kernel type `type` with BPF_F_LINK, and only when that is
 * EINVAL the same map without the flag. Refusing the flag but not the map is the answer "no";
 * anything else leaves the object alone, so that the load reports the real problem. */
static int struct_ops_links_supported(const struct btf *vmlinux, const char *type)
{
    char name[160];
    snprintf(name, sizeof name, "bpf_struct_ops_%s", type);
    int id = btf__find_by_name_kind(vmlinux, name, BTF_KIND_STRUCT);
    if (id < 0)
        return id;
    int size = (int)btf__resolve_size(vmlinux, (uint32_t)id);
    if (size < 0)
        return size;
    /* The smallest BTF the kernel loads: one int. */
    struct btf *btf = btf__new_empty();
    if (!btf)
        return -errno;
    int err = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
    if (err >= 0)
        err = btf__load_into_kernel(btf);
    if (err >= 0) {
        err = try_struct_ops_map(btf__fd(btf), id, (uint32_t)size, KSRT_BPF_F_LINK);
        if (err == -EINVAL)
            err = try_struct_ops_map(btf__fd(btf), id, (uint32_t)size, 0);
        else if (err == 0)
            err = 1;
    }
    btf__free(btf);
    return err;
}

/* Maps that ask for a link; NULL after the last. */
static struct bpf_map *next_link_map(struct bpf_object *obj, struct bpf_map *map)
{
    while ((map = bpf_object__next_map(obj, map)))
        if (bpf_map__type(map) == BPF_MAP_TYPE_STRUCT_OPS && (bpf_map__map_flags(map) & KSRT_BPF_F_LINK))
            return map;
    return NULL;
}

int ksrt_adapt_struct_ops(struct bpf_object *obj)
{
    if (!next_link_map(obj, NULL))
        return 0;
    struct btf *vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux)
        return 0;
    /* The answer holds for the whole kernel: ask with the first type of the object that vmlinux
     * knows (a module's struct_ops type is not in it), else with tcp_congestion_ops, which every
     * kernel with struct_ops has. */
    const struct btf *btf = bpf_object__btf(obj);
    int supported = -ENOENT;
    for (struct bpf_map *map = next_link_map(obj, NULL); map && supported == -ENOENT; map = next_link_map(obj, map)) {
        char type[128];
        kernel_type_name(btf, map, type, sizeof type);
        if (type[0])
            supported = struct_ops_links_supported(vmlinux, type);
    }
    if (supported == -ENOENT)
        supported = struct_ops_links_supported(vmlinux, "tcp_congestion_ops");
    btf__free(vmlinux);
    if (supported != 0)
        return 0;
    int cleared = 0;
    for (struct bpf_map *map = next_link_map(obj, NULL), *next; map; map = next) {
        next = next_link_map(obj, map);
        if (bpf_map__set_map_flags(map, bpf_map__map_flags(map) & ~KSRT_BPF_F_LINK) == 0)
            cleared++;
    }
    return cleared;
}
