/* globals.c — addresses of shared globals, pinned globals and configs (docs/language.md §12; ABI.md §5).
 *
 * All of them live in kernel memory that userspace maps: `.data`/`.bss` and each config's
 * `.data.NAME` through libbpf's own mmap of its internal maps, `__pinned_globals` (a one-entry
 * array created BPF_F_MMAPABLE) through our mmap of the map. Compiled code then reads and writes
 * globals with plain loads and stores, exactly as kernel code does. Addresses are found through
 * the object's BTF once and cached until the object is destroyed. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char PINNED_GLOBALS[] = "__pinned_globals";

void *rt_map_memory(struct rt_map *m)
{
    if (m->mem)
        return m->mem;
    if (m->type != BPF_MAP_TYPE_ARRAY)
        rt_internal_error("map %s is not an array and cannot be mapped into memory", m->name);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t elem = ((size_t)m->value_size + 7) & ~(size_t)7;
    size_t size = (elem * m->max_entries + page - 1) / page * page;
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
    if (mem == MAP_FAILED)
        rt_internal_error("cannot map %s into memory: %s", m->name, rt_error_text(errno, RT_OP_OTHER).text);
    m->mem = mem;
    m->mem_size = size;
    return mem;
}

static void *cached(const char *name, bool config)
{
    for (struct rt_global *g = rt.globals; g; g = g->next)
        if (g->config == config && strcmp(g->name, name) == 0)
            return g->addr;
    return NULL;
}

static void *remember(const char *name, bool config, void *addr)
{
    struct rt_global *g = rt_zalloc(sizeof *g);
    g->name = strdup(name);
    if (!g->name)
        rt_internal_error("out of memory");
    g->config = config;
    g->addr = addr;
    g->next = rt.globals;
    rt.globals = g;
    return addr;
}

/* Whether DATASEC `sec_name` holds shared globals (.data, .bss) or config `config`'s struct alone
 * (.data.CONFIG). */
static bool holds(const char *sec_name, const char *config)
{
    if (config)
        return strncmp(sec_name, ".data.", 6) == 0 && strcmp(sec_name + 6, config) == 0;
    return strcmp(sec_name, ".data") == 0 || strcmp(sec_name, ".bss") == 0;
}

/* Variable `name` of a data section that `holds` (config: NULL for a shared global), in the
 * section's internal map. */
static void *section_variable(const struct btf *btf, const char *name, const char *config)
{
    uint32_t count = btf__type_cnt(btf);
    for (uint32_t id = 1; id < count; id++) {
        const struct btf_type *sec = btf__type_by_id(btf, id);
        if (!btf_is_datasec(sec))
            continue;
        const char *sec_name = btf__name_by_offset(btf, sec->name_off);
        if (!holds(sec_name, config))
            continue;
        const struct btf_var_secinfo *v = btf_var_secinfos(sec);
        for (uint16_t i = 0; i < btf_vlen(sec); i++, v++) {
            const struct btf_type *var = btf__type_by_id(btf, v->type);
            if (!var || strcmp(btf__name_by_offset(btf, var->name_off), name) != 0)
                continue;
            struct bpf_map *map = bpf_object__find_map_by_name(rt.obj, sec_name);
            size_t size = 0;
            uint8_t *mem = map ? bpf_map__initial_value(map, &size) : NULL;
            if (!mem || (size_t)v->offset + v->size > size)
                rt_internal_error("%s %s: section %s is not mapped into memory", config ? "config" : "global", name,
                                  sec_name);
            return mem + v->offset;
        }
    }
    return NULL;
}

/* A member of struct __pinned_globals_t, the value of the __pinned_globals map. */
static void *pinned_global(const struct btf *btf, const char *name)
{
    struct bpf_map *map = bpf_object__find_map_by_name(rt.obj, PINNED_GLOBALS);
    if (!map)
        return NULL;
    int id = btf__resolve_type(btf, bpf_map__btf_value_type_id(map));
    const struct btf_type *t = id > 0 ? btf__type_by_id(btf, (uint32_t)id) : NULL;
    if (!t || !btf_is_struct(t))
        return NULL;
    const struct btf_member *member = btf_members(t);
    for (uint16_t i = 0; i < btf_vlen(t); i++, member++) {
        if (strcmp(btf__name_by_offset(btf, member->name_off), name) != 0)
            continue;
        uint8_t *value = rt_map_memory(rt_map(PINNED_GLOBALS));
        return value + btf_member_bit_offset(t, i) / 8;
    }
    return NULL;
}

void *ksrt_global_addr(const char *global)
{
    if (!rt.obj)
        rt_internal_error("global %s used without a BPF object", global);
    void *addr = cached(global, false);
    if (addr)
        return addr;
    const struct btf *btf = bpf_object__btf(rt.obj);
    if (!btf)
        rt_internal_error("global %s: the BPF object has no BTF", global);
    addr = section_variable(btf, global, NULL);
    if (!addr)
        addr = pinned_global(btf, global);
    if (!addr)
        rt_internal_error("unknown global %s", global);
    return remember(global, false, addr);
}

void *ksrt_config_addr(const char *config)
{
    if (!rt.obj)
        rt_internal_error("config %s used without a BPF object", config);
    void *addr = cached(config, true);
    if (addr)
        return addr;
    const struct btf *btf = bpf_object__btf(rt.obj);
    addr = btf ? section_variable(btf, config, config) : NULL;
    if (!addr)
        rt_internal_error("unknown config %s", config);
    return remember(config, true, addr);
}
