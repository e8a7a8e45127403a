/* maps.c — userspace map operations (docs/language.md §11.2, §11.4, §11.8; ABI.md §4).
 *
 * Maps are resolved by name once per object. Per-CPU maps hold one 8-byte-aligned slot per
 * possible CPU in every syscall: reads sum the slots (integer members found through the value's
 * BTF, wrapping) and writes store the value into every slot, so userspace sees one value. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Map kinds whose values have one slot per CPU. */
static bool is_percpu(enum bpf_map_type type)
{
    return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
           type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static int32_t (*default_handler(const char *map))(void *record)
{
    for (uint32_t i = 0; i < rt.unit->n_rb_defaults; i++)
        if (strcmp(rt.unit->rb_defaults[i].map, map) == 0)
            return rt.unit->rb_defaults[i].handler;
    return NULL;
}

struct rt_map *rt_map(const char *name)
{
    if (!rt.obj)
        rt_internal_error("map %s used without a BPF object", name);
    for (struct rt_map *m = rt.maps; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    struct bpf_map *map = bpf_object__find_map_by_name(rt.obj, name);
    if (!map)
        rt_internal_error("unknown map %s", name);
    struct rt_map *m = rt_zalloc(sizeof *m);
    m->name = strdup(name);
    if (!m->name)
        rt_internal_error("out of memory");
    m->map = map;
    m->fd = bpf_map__fd(map);
    m->type = bpf_map__type(map);
    m->key_size = bpf_map__key_size(map);
    m->value_size = bpf_map__value_size(map);
    m->max_entries = bpf_map__max_entries(map);
    m->percpu = is_percpu(m->type);
    m->n_slots = 1;
    m->slot_size = m->value_size;
    if (m->percpu) {
        int cpus = libbpf_num_possible_cpus();
        if (cpus <= 0)
            rt_internal_error("cannot count the possible CPUs: %s", rt_error_text(cpus, RT_OP_OTHER).text);
        m->n_slots = (size_t)cpus;
        m->slot_size = ((size_t)m->value_size + 7) & ~(size_t)7;
    }
    m->scratch = rt_zalloc(m->n_slots * m->slot_size);
    if (m->type == BPF_MAP_TYPE_RINGBUF || m->type == BPF_MAP_TYPE_PERF_EVENT_ARRAY)
        m->handler = default_handler(name);
    m->next = rt.maps;
    rt.maps = m;
    return m;
}

void rt_release_map(struct rt_map *m)
{
    rt_release_buffers(m);
    if (m->mem)
        munmap(m->mem, m->mem_size);
    free(m->scratch);
    free(m->name);
    free(m);
}

/* dst += src over n little-endian bytes, wrapping; src is zero beyond src_n bytes. */
static void add_le(uint8_t *dst, size_t n, const uint8_t *src, size_t src_n)
{
    unsigned carry = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned sum = dst[i] + (i < src_n ? src[i] : 0) + carry;
        dst[i] = (uint8_t)sum;
        carry = sum >> 8;
    }
}

/* Adds one CPU's value `src` of BTF type `type_id` into `dst`: integers and enums are summed,
 * bools or-ed, structs and arrays member by member; anything else keeps CPU 0's bytes. */
static void add_typed(const struct btf *btf, uint32_t type_id, uint8_t *dst, const uint8_t *src)
{
    int id = btf__resolve_type(btf, type_id);
    const struct btf_type *t = id > 0 ? btf__type_by_id(btf, (uint32_t)id) : NULL;
    if (!t)
        return;
    if (btf_is_int(t)) {
        if (btf_int_offset(t) != 0 || btf_int_bits(t) != 8 * t->size)
            return;
        if (btf_int_encoding(t) & BTF_INT_BOOL) {
            for (uint32_t i = 0; i < t->size; i++)
                dst[i] |= src[i];
            return;
        }
        add_le(dst, t->size, src, t->size);
    } else if (btf_is_enum(t) || btf_is_enum64(t)) {
        add_le(dst, t->size, src, t->size);
    } else if (btf_is_struct(t)) {
        const struct btf_member *member = btf_members(t);
        for (uint16_t i = 0; i < btf_vlen(t); i++, member++) {
            uint32_t bit_offset = btf_member_bit_offset(t, i);
            if (btf_member_bitfield_size(t, i) != 0 || bit_offset % 8 != 0)
                continue;
            add_typed(btf, member->type, dst + bit_offset / 8, src + bit_offset / 8);
        }
    } else if (btf_is_array(t)) {
        const struct btf_array *array = btf_array(t);
        int64_t elem_size = btf__resolve_size(btf, array->type);
        if (elem_size <= 0)
            return;
        for (uint32_t i = 0; i < array->nelems; i++)
            add_typed(btf, array->type, dst + i * (size_t)elem_size, src + i * (size_t)elem_size);
    }
}

/* value = the sum of the per-CPU slots in m->scratch. */
static void sum_slots(struct rt_map *m, void *value)
{
    const struct btf *btf = bpf_object__btf(rt.obj);
    uint32_t type_id = bpf_map__btf_value_type_id(m->map);
    const uint8_t *slots = m->scratch;
    memcpy(value, slots, m->value_size);
    for (size_t cpu = 1; cpu < m->n_slots; cpu++) {
        const uint8_t *slot = slots + cpu * m->slot_size;
        if (btf && type_id)
            add_typed(btf, type_id, value, slot);
        else if (m->value_size <= 8) /* no BTF: an integer value */
            add_le(value, m->value_size, slot, m->value_size);
    }
}

/* m->scratch = `value` in every per-CPU slot (zero padding between them). */
static void spread_slots(struct rt_map *m, const void *value)
{
    memset(m->scratch, 0, m->n_slots * m->slot_size);
    for (size_t cpu = 0; cpu < m->n_slots; cpu++)
        memcpy((uint8_t *)m->scratch + cpu * m->slot_size, value, m->value_size);
}

bool ksrt_map_lookup(const char *map, const void *key, void *value)
{
    struct rt_map *m = rt_map(map);
    if (!m->percpu)
        return bpf_map_lookup_elem(m->fd, key, value) == 0;
    if (bpf_map_lookup_elem(m->fd, key, m->scratch) != 0)
        return false;
    sum_slots(m, value);
    return true;
}

int64_t ksrt_map_update(const char *map, const void *key, const void *value, uint64_t flags)
{
    struct rt_map *m = rt_map(map);
    if (!m->percpu)
        return bpf_map_update_elem(m->fd, key, value, flags);
    spread_slots(m, value);
    return bpf_map_update_elem(m->fd, key, m->scratch, flags);
}

int64_t ksrt_map_delete(const char *map, const void *key)
{
    struct rt_map *m = rt_map(map);
    int err = bpf_map_delete_elem(m->fd, key);
    return err == -ENOENT ? 0 : err;
}

int64_t ksrt_map_add(const char *map, const void *key, uint64_t delta)
{
    struct rt_map *m = rt_map(map);
    uint8_t delta_bytes[8];
    memcpy(delta_bytes, &delta, sizeof delta);
    size_t size = m->n_slots * m->slot_size;
    /* Retried while the entry appears or vanishes between our two syscalls (the kernel side may
     * insert and delete concurrently); bounded so that a map that keeps flipping cannot hang us. */
    int err = 0;
    for (int attempt = 0; attempt < 16; attempt++) {
        if (bpf_map_lookup_elem(m->fd, key, m->scratch) == 0) {
            add_le(m->scratch, m->value_size, delta_bytes, sizeof delta_bytes); /* CPU 0's slot */
            err = bpf_map_update_elem(m->fd, key, m->scratch, BPF_EXIST);
            if (err != -ENOENT)
                return err;
        } else {
            memset(m->scratch, 0, size);
            add_le(m->scratch, m->value_size, delta_bytes, sizeof delta_bytes);
            err = bpf_map_update_elem(m->fd, key, m->scratch, BPF_NOEXIST);
            if (err != -EEXIST)
                return err;
        }
    }
    return err;
}

void ksrt_map_write_check(int64_t status, const char *map, const char *file, uint32_t line, uint32_t col)
{
    if (status >= 0 || status == -ENOENT)
        return;
    char message[512];
    snprintf(message, sizeof message, "cannot write map %s: %s", map,
             rt_error_text((int)status, RT_OP_MAP_WRITE).text);
    ksrt_runtime_error(file, line, col, message);
}

bool ksrt_map_next_key(const char *map, const void *key, void *next_key)
{
    struct rt_map *m = rt_map(map);
    return bpf_map_get_next_key(m->fd, key, next_key) == 0;
}

int32_t ksrt_map_push(const char *map, const void *value)
{
    struct rt_map *m = rt_map(map);
    return bpf_map_update_elem(m->fd, NULL, value, BPF_ANY);
}

bool ksrt_map_pop(const char *map, void *value, bool peek)
{
    struct rt_map *m = rt_map(map);
    int err = peek ? bpf_map_lookup_elem(m->fd, NULL, value) : bpf_map_lookup_and_delete_elem(m->fd, NULL, value);
    if (err) {
        memset(value, 0, m->value_size);
        return false;
    }
    return true;
}

bool ksrt_map_contains(const char *map, const void *value)
{
    struct rt_map *m = rt_map(map);
    /* The kernel only reads a bloom filter lookup's value; the copy keeps `value` const. */
    memcpy(m->scratch, value, m->value_size);
    return bpf_map_lookup_elem(m->fd, NULL, m->scratch) == 0;
}
