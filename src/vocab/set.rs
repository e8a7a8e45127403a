//! A set of values of one vocabulary, as a bit mask (`--target=bpf,host`).

use super::Vocabulary;
use std::marker::PhantomData;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnumSet<T> {
    bits: u64,
    of: PhantomData<T>,
}

impl<T: Vocabulary> EnumSet<T> {
    pub const EMPTY: EnumSet<T> = EnumSet {
        bits: 0,
        of: PhantomData,
    };

    pub fn all() -> EnumSet<T> {
        T::ALL.iter().copied().collect()
    }

    pub fn contains(self, v: T) -> bool {
        self.bits & (1 << v.index()) != 0
    }

    pub fn insert(&mut self, v: T) {
        self.bits |= 1 << v.index();
    }

    pub fn remove(&mut self, v: T) {
        self.bits &= !(1 << v.index());
    }

    pub fn iter(self) -> impl Iterator<Item = T> {
        T::ALL.iter().copied().filter(move |&v| self.contains(v))
    }
}

impl<T: Vocabulary> FromIterator<T> for EnumSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut set = EnumSet::EMPTY;
        for v in iter {
            set.insert(v);
        }
        set
    }
}

impl<T: Vocabulary> std::fmt::Debug for EnumSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter().map(T::name)).finish()
    }
}
