/* ringbuf.c — consuming RINGBUF and PERF_EVENT_ARRAY maps: on_event, poll, dispatch
 * (docs/language.md §11.5; ABI.md §6).
 *
 * Each buffer map gets its libbpf consumer on first use. Handlers run on the calling thread; a
 * non-zero result stops consumption right after that record, which libbpf supports for ring
 * buffers through a negative callback result and for perf buffers only through the raw event
 * callback (LIBBPF_PERF_EVENT_DONE), hence perf_buffer__new_raw. Every wait consumes first,
 * because a perf event's readiness is reported once per wakeup, not while data remains.
 * Perf buffers are opened right after the load: bpf_perf_event_output drops records while the
 * map holds no perf event for the CPU, whereas a ring buffer keeps them until the first poll. */
#include "internal.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Counts a record and runs its handler; true when the handler asks to stop. */
static bool deliver(struct rt_map *m, void *record)
{
    m->consumed++;
    if (!m->handler)
        return false;
    int32_t result = m->handler(record);
    if (result == 0)
        return false;
    m->stopped = true;
    m->stop_value = result;
    return true;
}

static int ringbuf_record(void *ctx, void *data, size_t size)
{
    (void)size;
    return deliver(ctx, data) ? -1 : 0;
}

/* A PERF_RECORD_SAMPLE with PERF_SAMPLE_RAW. */
struct perf_sample {
    struct perf_event_header header;
    uint32_t size;
    uint8_t data[];
};

static enum bpf_perf_event_ret perf_record(void *ctx, int cpu, struct perf_event_header *event)
{
    (void)cpu;
    struct rt_map *m = ctx;
    if (event->type != PERF_RECORD_SAMPLE) /* PERF_RECORD_LOST: nothing to deliver */
        return LIBBPF_PERF_EVENT_CONT;
    const struct perf_sample *sample = (const void *)event;
    /* The raw data starts 4 bytes past an 8-byte boundary; handlers get an aligned copy. */
    if (sample->size > m->record_copy_size) {
        free(m->record_copy);
        m->record_copy = rt_zalloc(sample->size);
        m->record_copy_size = sample->size;
    }
    memcpy(m->record_copy, sample->data, sample->size);
    return deliver(m, m->record_copy) ? LIBBPF_PERF_EVENT_DONE : LIBBPF_PERF_EVENT_CONT;
}

static int open_buffer(struct rt_map *m)
{
    if (m->ringbuf || m->perfbuf)
        return 0;
    if (m->type == BPF_MAP_TYPE_RINGBUF) {
        m->ringbuf = ring_buffer__new(m->fd, ringbuf_record, m, NULL);
        return m->ringbuf ? 0 : -errno;
    }
    if (m->type == BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
        /* What perf_buffer__new uses: the bpf_perf_event_output software event. */
        struct perf_event_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.size = sizeof attr;
        attr.type = PERF_TYPE_SOFTWARE;
        attr.config = PERF_COUNT_SW_BPF_OUTPUT;
        attr.sample_type = PERF_SAMPLE_RAW;
        attr.sample_period = 1;
        attr.wakeup_events = 1;
        m->perfbuf = perf_buffer__new_raw(m->fd, 8, &attr, perf_record, m, NULL);
        return m->perfbuf ? 0 : -errno;
    }
    return -EINVAL;
}

static int buffer_fd(const struct rt_map *m)
{
    return m->ringbuf ? ring_buffer__epoll_fd(m->ringbuf) : perf_buffer__epoll_fd(m->perfbuf);
}

/* Consumes what is available until a handler stops it; 0 or -errno. */
static int consume(struct rt_map *m)
{
    m->stopped = false;
    if (m->ringbuf) {
        int err = ring_buffer__consume(m->ringbuf);
        return err < 0 && !m->stopped ? err : 0;
    }
    size_t n = perf_buffer__buffer_cnt(m->perfbuf);
    for (size_t i = 0; i < n && !m->stopped; i++) {
        int err = perf_buffer__consume_buffer(m->perfbuf, i);
        if (err == -ENOENT) /* a CPU without a buffer */
            continue;
        if (err < 0) /* LIBBPF_PERF_EVENT_ERROR (-1) means a failed allocation */
            return err == LIBBPF_PERF_EVENT_ERROR ? -ENOMEM : err;
    }
    return 0;
}

int rt_open_perf_buffers(const char **failed)
{
    struct bpf_map *map;
    bpf_object__for_each_map(map, rt.obj) {
        if (bpf_map__type(map) != BPF_MAP_TYPE_PERF_EVENT_ARRAY)
            continue;
        int err = open_buffer(rt_map(bpf_map__name(map)));
        if (err) {
            *failed = bpf_map__name(map);
            return err;
        }
    }
    return 0;
}

void rt_release_buffers(struct rt_map *m)
{
    ring_buffer__free(m->ringbuf);
    perf_buffer__free(m->perfbuf);
    free(m->record_copy);
    m->ringbuf = NULL;
    m->perfbuf = NULL;
    m->record_copy = NULL;
}

int32_t ksrt_rb_on_event(const char *map, int32_t (*handler)(void *record))
{
    struct rt_map *m = rt_map(map);
    if (m->type != BPF_MAP_TYPE_RINGBUF && m->type != BPF_MAP_TYPE_PERF_EVENT_ARRAY)
        return -EINVAL;
    m->handler = handler;
    return 0;
}

int32_t ksrt_rb_poll(const char *map, uint32_t timeout_ms)
{
    struct rt_map *m = rt_map(map);
    int err = open_buffer(m);
    if (err)
        return err;
    m->consumed = 0;
    err = consume(m);
    if (!err && m->consumed == 0 && timeout_ms != 0) {
        struct pollfd p = {.fd = buffer_fd(m), .events = POLLIN};
        int ready = poll(&p, 1, timeout_ms > INT32_MAX ? -1 : (int)timeout_ms);
        if (ready < 0)
            return -errno;
        if (ready > 0)
            err = consume(m);
    }
    if (err)
        return err;
    return m->consumed > INT32_MAX ? INT32_MAX : (int32_t)m->consumed;
}

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

/* Consumes every buffer once: 1 when a handler stopped (its value in *result), -errno on an
 * error (in *result too), else 0. */
static int consume_all(const char *const *maps, uint32_t n, int32_t *result)
{
    for (uint32_t i = 0; i < n; i++) {
        struct rt_map *m = rt_map(maps[i]);
        int err = consume(m);
        if (err) {
            *result = err;
            return 1;
        }
        if (m->stopped) {
            *result = m->stop_value;
            return 1;
        }
    }
    return 0;
}

int32_t ksrt_dispatch(const char *const *maps, uint32_t n)
{
    /* The stop that ended the last dispatch left the program to finish; dispatching again is a
     * loop the user asked to end. */
    rt_end_if_stopped();
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -errno;
    for (uint32_t i = 0; i < n; i++) {
        struct rt_map *m = rt_map(maps[i]);
        int err = open_buffer(m);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        if (!err && epoll_ctl(epfd, EPOLL_CTL_ADD, buffer_fd(m), &ev) != 0 && errno != EEXIST)
            err = -errno;
        if (err) {
            close(epfd);
            return err;
        }
    }
    rt.dispatch_epfd = epfd;

    /* SIGINT/SIGTERM end the dispatch. They stay blocked except inside epoll_pwait, so one that
     * arrives while handlers run is noticed at the next wait instead of being missed. */
    sigset_t stop, old, waiting;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, &old);
    waiting = old;
    sigdelset(&waiting, SIGINT);
    sigdelset(&waiting, SIGTERM);
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    stop_signal = 0;

    int32_t result = 0;
    while (!consume_all(maps, n, &result)) {
        struct epoll_event events[16];
        if (epoll_pwait(epfd, events, 16, -1, &waiting) < 0) {
            if (errno != EINTR) {
                result = -errno;
                break;
            }
            if (stop_signal) {
                rt.stopped_by = stop_signal;
                result = 0;
                break;
            }
        }
    }

    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    rt.dispatch_epfd = -1;
    close(epfd);
    return result;
}
