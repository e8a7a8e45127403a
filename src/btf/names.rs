//! Finding kernel types and enumerators by name.
//!
//! A unit asks for a handful of kernel names, so a lookup first scans: it finds the name in the
//! string section (SIMD substring search), then every type that carries that string offset (a
//! compare over a dense array of name offsets), ~0.3 ms on kernel BTF. A unit that asks for many names gets an index instead, built once
//! (~2.5 ms for the type kinds, ~6.5 ms for kernel functions). Answers are memoized either way.
//!
//! The index is an open-addressing table of entry numbers keyed by a hash of the entry's name;
//! the names stay in the BTF string section, so building one allocates a table and nothing per
//! name. Entries with the same name come out of a lookup in the order they were inserted (linear
//! probing without deletion keeps that order), which is how "first type with this name" keeps
//! libbpf's choice among duplicates — the same answer a scan in id order gives.

use super::memo::Memo;
use super::raw::{
    RawBtf, KIND_ENUM, KIND_ENUM64, KIND_FUNC, KIND_STRUCT, KIND_TYPEDEF, KIND_UNION,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Scans of one kind of name before the next lookup builds that kind's index instead.
const SCANS_BEFORE_INDEX: u32 = 8;

/// Which index would answer a lookup.
#[derive(Clone, Copy)]
enum Group {
    /// Structs, unions, enums and typedefs.
    Types = 0,
    /// Kernel functions (FUNC): ~60% of kernel BTF.
    Funcs = 1,
    Enumerators = 2,
}

/// The name lookups of one BTF file.
#[derive(Default)]
pub(crate) struct Names {
    /// (kind, or 0 for an enumerator; name) → (type id, enumerator value).
    memo: Memo<(u32, String), Option<(u32, i64)>>,
    /// Names found by a scan, with every kind that carries them: `struct_by_name` tries
    /// struct, union and typedef in turn, and each try would otherwise scan again.
    scanned: Memo<String, FirstOfKind>,
    scans: [AtomicU32; 3],
    types: OnceLock<NameIndex>,
    funcs: OnceLock<NameIndex>,
    /// Every named enumerator in id order, and the index of their names into that list.
    enumerators: OnceLock<(Vec<Enumerator>, NameIndex)>,
}

struct Enumerator {
    name_off: u32,
    enum_id: u32,
    value: i64,
}

impl Names {
    /// First type id with this name and kind (libbpf's choice among duplicates).
    pub(crate) fn type_id(&self, raw: &RawBtf, name: &str, kind: u32) -> Option<u32> {
        let group = if kind == KIND_FUNC {
            Group::Funcs
        } else {
            Group::Types
        };
        let found = self.memoized(kind, name, || {
            let first_of_kind = |firsts: &FirstOfKind| {
                let id = *firsts.get(kind as usize)?;
                (id != 0).then_some((id, 0))
            };
            if let Some(firsts) = self.scanned.get(name) {
                return first_of_kind(&firsts);
            }
            if self.scan_next(group) {
                let firsts = scan_types(raw, name);
                let found = first_of_kind(&firsts);
                self.scanned.insert(name.to_string(), firsts);
                return found;
            }
            let index = match group {
                Group::Funcs => self
                    .funcs
                    .get_or_init(|| index_types(raw, |k| k == KIND_FUNC)),
                _ => self.types.get_or_init(|| {
                    index_types(raw, |k| {
                        matches!(
                            k,
                            KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_TYPEDEF
                        )
                    })
                }),
            };
            let name_of = |id: u32| {
                raw.get(id)
                    .map_or(&[][..], |t| raw.name_bytes(t.name_off()))
            };
            index
                .lookup(name.as_bytes(), name_of)
                .find(|&id| raw.get(id).is_some_and(|t| t.kind() == kind))
                .map(|id| (id, 0))
        });
        found.map(|(id, _)| id)
    }

    /// The first enumerator of this name in id order: (id of its enum, value).
    pub(crate) fn enumerator(&self, raw: &RawBtf, name: &str) -> Option<(u32, i64)> {
        self.memoized(0, name, || {
            if self.scan_next(Group::Enumerators) {
                let offsets = raw.string_offsets(name.as_bytes());
                if offsets.is_empty() {
                    return None;
                }
                return (1..raw.type_cnt())
                    .filter_map(|id| raw.get(id))
                    .find_map(|t| {
                        t.enum_values()
                            .find(|(off, _)| offsets.contains(off))
                            .map(|(_, v)| (t.id, v))
                    });
            }
            let (list, index) = self.enumerators.get_or_init(|| {
                let mut list = Vec::new();
                for t in (1..raw.type_cnt()).filter_map(|id| raw.get(id)) {
                    list.extend(t.enum_values().filter(|&(off, _)| off != 0).map(
                        |(name_off, value)| Enumerator {
                            name_off,
                            enum_id: t.id,
                            value,
                        },
                    ));
                }
                let mut index = NameIndex::with_capacity(list.len());
                for (i, e) in list.iter().enumerate() {
                    index.insert(raw.name_bytes(e.name_off), i as u32);
                }
                (list, index)
            });
            let e = &list[index
                .lookup(name.as_bytes(), |i| {
                    raw.name_bytes(list[i as usize].name_off)
                })
                .next()? as usize];
            Some((e.enum_id, e.value))
        })
    }

    fn memoized(
        &self,
        kind: u32,
        name: &str,
        find: impl FnOnce() -> Option<(u32, i64)>,
    ) -> Option<(u32, i64)> {
        self.memo.get_or_compute((kind, name.to_string()), find)
    }

    /// Whether this lookup should scan (counting it), rather than use the group's index.
    fn scan_next(&self, group: Group) -> bool {
        self.scans[group as usize].fetch_add(1, Ordering::Relaxed) < SCANS_BEFORE_INDEX
    }
}

/// The first type id of each kind (indexed by kind; 0 for none) that has one name.
type FirstOfKind = [u32; 32];

/// Every kind of type named `name` at once: the name's string offsets (SIMD substring search;
/// one offset in deduplicated BTF), then the types whose name offset is one of them.
fn scan_types(raw: &RawBtf, name: &str) -> FirstOfKind {
    let mut firsts = [0; 32];
    for offset in raw.string_offsets(name.as_bytes()) {
        for id in raw.ids_named(offset) {
            if let Some(t) = raw.get(id) {
                let first = &mut firsts[t.kind() as usize & 31];
                if *first == 0 || id < *first {
                    *first = id;
                }
            }
        }
    }
    firsts
}

/// An index of the named types whose kind `wanted` accepts, by type id.
fn index_types(raw: &RawBtf, wanted: impl Fn(u32) -> bool) -> NameIndex {
    let named = |id: u32| {
        raw.get(id)
            .filter(|t| wanted(t.kind()) && t.name_off() != 0)
    };
    let count = (1..raw.type_cnt())
        .filter(|&id| named(id).is_some())
        .count();
    let mut index = NameIndex::with_capacity(count);
    for id in 1..raw.type_cnt() {
        if let Some(t) = named(id) {
            index.insert(raw.name_bytes(t.name_off()), id);
        }
    }
    index
}

/// One slot: the high half of the name's hash (to skip most string compares) and entry + 1
/// (0 marks an empty slot).
#[derive(Clone, Copy, Default)]
struct Slot {
    hash: u32,
    entry: u32,
}

struct NameIndex {
    slots: Vec<Slot>,
    mask: usize,
}

impl NameIndex {
    /// An index for up to `entries` entries, at most half full.
    fn with_capacity(entries: usize) -> Self {
        let len = (entries.max(8) * 2).next_power_of_two();
        NameIndex {
            slots: vec![Slot::default(); len],
            mask: len - 1,
        }
    }

    fn insert(&mut self, name: &[u8], entry: u32) {
        let h = hash(name);
        let mut i = h as usize & self.mask;
        while self.slots[i].entry != 0 {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = Slot {
            hash: (h >> 32) as u32,
            entry: entry + 1,
        };
    }

    /// Entries whose name may be `name`, in insertion order; `name_of` confirms each.
    fn lookup<'a>(
        &'a self,
        name: &'a [u8],
        name_of: impl Fn(u32) -> &'a [u8] + 'a,
    ) -> impl Iterator<Item = u32> + 'a {
        let h = hash(name);
        let tag = (h >> 32) as u32;
        let start = h as usize & self.mask;
        (0..self.slots.len())
            .map(move |k| self.slots[(start + k) & self.mask])
            .take_while(|s| s.entry != 0)
            .filter(move |s| s.hash == tag)
            .map(|s| s.entry - 1)
            .filter(move |&e| name_of(e) == name)
    }
}

/// The Fx hash (rustc's), a word at a time: names are short and not chosen by an adversary who
/// gains anything from collisions.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0;
    let mut add = |w: u64| h = (h.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    add(u64::from_le_bytes(tail) ^ bytes.len() as u64);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_come_back_in_insertion_order() {
        let names: [&[u8]; 5] = [b"a", b"task_struct", b"a", b"b", b"a"];
        let mut ix = NameIndex::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            ix.insert(n, i as u32);
        }
        let of = |e: u32| names[e as usize];
        assert_eq!(ix.lookup(b"a", of).collect::<Vec<_>>(), [0, 2, 4]);
        assert_eq!(ix.lookup(b"task_struct", of).collect::<Vec<_>>(), [1]);
        assert_eq!(ix.lookup(b"c", of).count(), 0);
    }

    #[test]
    fn full_probe_chains_terminate() {
        // Many entries hashing anywhere: a lookup of a missing name stops at the first gap.
        let names: Vec<Vec<u8>> = (0..1000).map(|i| format!("n{i}").into_bytes()).collect();
        let mut ix = NameIndex::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            ix.insert(n, i as u32);
        }
        let of = |e: u32| names[e as usize].as_slice();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(ix.lookup(n, of).collect::<Vec<_>>(), [i as u32]);
        }
        assert_eq!(ix.lookup(b"missing", of).count(), 0);
    }
}
