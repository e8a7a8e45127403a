//! A table of answers computed once and shared across threads.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

/// Remembered answers by key. The lock is held only to read or record, never while an answer
/// is computed, so a computation may consult the same table (struct alignment recurses).
pub(crate) struct Memo<K, V>(Mutex<HashMap<K, V>>);

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.table().get(key).cloned()
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        self.table().insert(key, value);
    }

    /// The answer for `key`, computing and recording it on first use.
    pub(crate) fn get_or_compute(&self, key: K, compute: impl FnOnce() -> V) -> V {
        if let Some(hit) = self.get(&key) {
            return hit;
        }
        let value = compute();
        self.insert(key, value.clone());
        value
    }

    /// A panic elsewhere while recording leaves the table consistent (each write is one
    /// insert), so a poisoned lock is still usable.
    fn table(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
