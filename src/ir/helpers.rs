//! What the `bpf` dialect knows about the memory BPF helpers touch through their arguments.

/// The pointer arguments (by position) of helper `id` that the kernel only reads and never
/// keeps: map keys and values, records to output. A slot passed there holds the same bytes
/// after the call, and the call does not make it escape.
pub fn read_only_arguments(id: i128) -> &'static [usize] {
    match id {
        1 | 3 => &[1],    // map_lookup_elem, map_delete_elem (map, key)
        2 => &[1, 2],     // map_update_elem (map, key, value, flags)
        25 => &[3],       // perf_event_output (ctx, map, flags, data, size)
        87 | 130 => &[1], // map_push_elem (map, value, flags), ringbuf_output (rb, data, size, flags)
        _ => &[],
    }
}

/// True for the helpers that write no memory the program can see (LRU bookkeeping aside):
/// a packet or stack load after one of their calls reads what it read before.
pub fn writes_no_memory(id: i128) -> bool {
    id == 1 // map_lookup_elem
}
