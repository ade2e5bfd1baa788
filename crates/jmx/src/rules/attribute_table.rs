//! The remembered attributes of one bean, in the order the bridge sent them.
//!
//! A bridge sends a bean's attributes in the same order scrape after scrape, so the
//! attribute asked for is nearly always the one after the last one found: that lookup is
//! one comparison. Otherwise a small table is scanned and a large one hashed. Compared with
//! a hash map per bean, a steady scrape touches one cache line per attribute instead of
//! three or four (control bytes, bucket, key), and a one-attribute bean costs one small
//! allocation (the key's).

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use smallvec::SmallVec;

/// Tables this long or shorter are scanned; longer ones get a hash index.
const SCAN_LIMIT: usize = 8;

/// Attribute path → `V`, kept in insertion order.
#[derive(Debug)]
pub struct AttributeTable<V> {
    /// Inline for the first attribute: most beans of a big broker (one per partition and
    /// metric) have just one.
    /// Keys are shared: beans of one kind have the same attribute paths, and a copy of the
    /// path per bean would cost about as much as the remembered result.
    entries: SmallVec<[(Arc<str>, V); 1]>,
    /// Positions in `entries`, hashed by key; only beyond [`SCAN_LIMIT`] entries.
    index: Option<HashTable<usize>>,
    hasher: foldhash::fast::FixedState,
    /// Where the next lookup is expected.
    cursor: usize,
}

impl<V> Default for AttributeTable<V> {
    fn default() -> Self {
        Self {
            entries: SmallVec::new(),
            index: None,
            hasher: foldhash::fast::FixedState::default(),
            cursor: 0,
        }
    }
}

impl<V> AttributeTable<V> {
    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Gives back room the table grew into and no longer needs: a bean's table is filled
    /// once and then read scrape after scrape, and growth leaves up to half of it unused.
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
    }

    /// The value for `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let place = self.position(key)?;
        self.cursor = place + 1;
        Some(&mut self.entries[place].1)
    }

    /// Sets the value for `key`, replacing one already there.
    pub fn insert(&mut self, key: &str, value: V) {
        self.insert_shared(key.into(), value);
    }

    /// [`AttributeTable::insert`] with a shared copy of the key.
    pub fn insert_shared(&mut self, key: Arc<str>, value: V) {
        if let Some(place) = self.position(&key) {
            self.entries[place].1 = value;
            self.cursor = place + 1;
            return;
        }
        let hash = self.hasher.hash_one(&*key);
        self.entries.push((key, value));
        self.cursor = self.entries.len();
        let place = self.entries.len() - 1;
        match &mut self.index {
            Some(index) => {
                let (entries, hasher) = (&self.entries, &self.hasher);
                index.insert_unique(hash, place, |&i| hasher.hash_one(&*entries[i].0));
            }
            None if self.entries.len() > SCAN_LIMIT => self.rebuild_index(),
            None => {}
        }
    }

    /// Keeps only the attributes for which `keep` says yes.
    pub fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|(_, value)| keep(value));
        if self.entries.len() != before {
            self.cursor = 0;
            self.index = None;
            if self.entries.len() > SCAN_LIMIT {
                self.rebuild_index();
            }
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        if let Some((expected, _)) = self.entries.get(self.cursor)
            && **expected == *key
        {
            return Some(self.cursor);
        }
        match &self.index {
            Some(index) => index
                .find(self.hasher.hash_one(key), |&i| *self.entries[i].0 == *key)
                .copied(),
            None => self.entries.iter().position(|(k, _)| **k == *key),
        }
    }

    fn rebuild_index(&mut self) {
        let mut index = HashTable::with_capacity(self.entries.len());
        for (place, (key, _)) in self.entries.iter().enumerate() {
            let entries = &self.entries;
            index.insert_unique(self.hasher.hash_one(&**key), place, |&i| {
                self.hasher.hash_one(&*entries[i].0)
            });
        }
        self.index = Some(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_replaces_and_forgets_in_any_order_and_size() {
        for size in [1, SCAN_LIMIT, SCAN_LIMIT + 1, 100] {
            let mut table = AttributeTable::default();
            for i in 0..size {
                table.insert(&format!("a{i}"), i);
            }
            assert_eq!(table.len(), size);
            table.shrink_to_fit();
            // In order, in reverse, and a miss.
            for i in (0..size).chain((0..size).rev()) {
                assert_eq!(table.get_mut(&format!("a{i}")).copied(), Some(i));
            }
            assert_eq!(table.get_mut("missing"), None);
            table.insert("a0", 1000);
            assert_eq!(table.get_mut("a0").copied(), Some(1000));
            assert_eq!(table.len(), size);
            table.retain(|v| v % 2 == 1);
            assert_eq!(table.get_mut("a1").copied(), (size > 1).then_some(1));
            assert_eq!(table.get_mut("a2"), None);
            assert_eq!(table.get_mut("a0"), None);
        }
    }
}
