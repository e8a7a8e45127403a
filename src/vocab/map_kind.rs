//! What each map kind means: to the language (how it is declared and used) and to the kernel.

use super::MapKind;

impl MapKind {
    /// The kind a declaration `NAME<...>` names; `prog_array` is the compiler's own.
    pub fn declared(name: &str) -> Option<MapKind> {
        MapKind::from_name(name).filter(|&k| k != MapKind::ProgArray)
    }

    /// `enum bpf_map_type` (uapi/linux/bpf.h).
    pub fn bpf_map_type(self) -> u32 {
        match self {
            MapKind::Hash => 1,
            MapKind::Array => 2,
            MapKind::ProgArray => 3,
            MapKind::PerfEventArray => 4,
            MapKind::PercpuHash => 5,
            MapKind::PercpuArray => 6,
            MapKind::LruHash => 9,
            MapKind::LpmTrie => 11,
            MapKind::Devmap => 14,
            MapKind::Cpumap => 16,
            MapKind::Xskmap => 17,
            MapKind::Queue => 22,
            MapKind::Stack => 23,
            MapKind::Ringbuf => 27,
            MapKind::BloomFilter => 30,
        }
    }

    /// Kinds declared with a key and a value (`KIND<K, V>`).
    pub fn has_key(self) -> bool {
        match self {
            MapKind::Ringbuf
            | MapKind::Queue
            | MapKind::Stack
            | MapKind::BloomFilter
            | MapKind::PerfEventArray => false,
            MapKind::Hash
            | MapKind::Array
            | MapKind::PercpuHash
            | MapKind::PercpuArray
            | MapKind::LruHash
            | MapKind::LpmTrie
            | MapKind::Devmap
            | MapKind::Cpumap
            | MapKind::Xskmap
            | MapKind::ProgArray => true,
        }
    }

    /// Kinds beyond the reference implementation's (`--compat` rejects them).
    pub fn is_extension(self) -> bool {
        !matches!(
            self,
            MapKind::Hash
                | MapKind::Array
                | MapKind::PercpuHash
                | MapKind::PercpuArray
                | MapKind::LruHash
                | MapKind::Ringbuf
        )
    }

    /// Kinds whose `m[k]` access means lookup/update.
    pub fn indexable(self) -> bool {
        matches!(
            self,
            MapKind::Hash
                | MapKind::Array
                | MapKind::PercpuHash
                | MapKind::PercpuArray
                | MapKind::LruHash
                | MapKind::LpmTrie
                | MapKind::Devmap
                | MapKind::Cpumap
                | MapKind::Xskmap
        )
    }

    /// One value per CPU behind each key.
    pub fn is_percpu(self) -> bool {
        matches!(self, MapKind::PercpuHash | MapKind::PercpuArray)
    }

    /// The alignment of the value a lookup returns, where the kernel sets one: arrays round each
    /// value up to 8 bytes, hashes place it 8-aligned after the key, per-CPU copies are 8-aligned
    /// allocations. An LPM trie's value follows the key's bytes unaligned.
    pub fn value_align(self) -> Option<u32> {
        match self {
            MapKind::Hash
            | MapKind::Array
            | MapKind::PercpuHash
            | MapKind::PercpuArray
            | MapKind::LruHash => Some(8),
            MapKind::LpmTrie
            | MapKind::Devmap
            | MapKind::Cpumap
            | MapKind::Xskmap
            | MapKind::Ringbuf
            | MapKind::Queue
            | MapKind::Stack
            | MapKind::BloomFilter
            | MapKind::PerfEventArray
            | MapKind::ProgArray => None,
        }
    }

    /// Every key in range has a value (a lookup never misses).
    pub fn always_present(self) -> bool {
        matches!(self, MapKind::Array | MapKind::PercpuArray)
    }

    /// Every slot below `max_entries` exists (arrays of values, devices, CPUs, sockets,
    /// programs): userspace iterates them by index, not by key.
    pub fn is_array_like(self) -> bool {
        matches!(
            self,
            MapKind::Array
                | MapKind::PercpuArray
                | MapKind::Devmap
                | MapKind::Cpumap
                | MapKind::Xskmap
                | MapKind::ProgArray
        )
    }

    /// Kinds that stream records to userspace instead of holding keyed values.
    pub fn is_event_stream(self) -> bool {
        matches!(self, MapKind::Ringbuf | MapKind::PerfEventArray)
    }
}
