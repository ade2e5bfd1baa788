//! The mapping cache (`--graphite.cache-size`, `--graphite.cache-type`): remembers what a
//! path mapped to, hits and misses alike, as upstream's mapper cache does.
//!
//! The store already skips mapping for every name it holds, so the cache matters for the
//! lines the store never keeps (dropped by a rule or by strict matching) and for one path
//! sent with many different tags. Paths longer than [`MAX_CACHED_PATH`] are mapped without
//! the cache, so its memory is bounded by bytes as well as entries.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::mapping::Mapped;

/// `--graphite.cache-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CacheType {
    /// Least recently used entries are evicted first.
    Lru,
    /// An arbitrary entry is evicted (upstream's "random" cache; it keeps no hit counts).
    Random,
}

/// Longest path kept in the cache. Real paths are tens of bytes; without this bound a cache
/// of 1 000 entries could hold 64 MiB of 64 KiB names.
pub const MAX_CACHED_PATH: usize = 1024;

/// A cached lookup: the mapping, or `None` for "no rule matches".
pub type Lookup = Option<Arc<Mapped>>;

enum Entries {
    Lru(lru::LruCache<Box<str>, Lookup>),
    Random(HashMap<Box<str>, Lookup>, usize),
}

/// A bounded cache of mapping results.
pub struct MapCache {
    entries: Mutex<Entries>,
    kind: CacheType,
    gets: AtomicU64,
    hits: AtomicU64,
}

impl std::fmt::Debug for MapCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapCache")
            .field("kind", &self.kind)
            .field("length", &self.len())
            .finish_non_exhaustive()
    }
}

impl MapCache {
    /// A cache of `size` entries; `None` when `size` is 0 (no cache, as upstream).
    pub fn new(size: usize, kind: CacheType) -> Option<Self> {
        let capacity = NonZeroUsize::new(size)?;
        let entries = match kind {
            CacheType::Lru => Entries::Lru(lru::LruCache::new(capacity)),
            CacheType::Random => Entries::Random(HashMap::new(), size),
        };
        Some(Self {
            entries: Mutex::new(entries),
            kind,
            gets: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        })
    }

    /// The cached result for `path`, or `compute`'s (then remembered).
    pub fn get_or_insert(&self, path: &str, compute: impl FnOnce() -> Lookup) -> Lookup {
        if path.len() > MAX_CACHED_PATH {
            return compute();
        }
        if let Some(found) = self.get(path) {
            return found;
        }
        let computed = compute();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *entries {
            Entries::Lru(cache) => {
                cache.put(path.into(), computed.clone());
            }
            Entries::Random(map, capacity) => {
                if map.len() >= *capacity
                    && let Some(victim) = map.keys().next().cloned()
                {
                    map.remove(&victim);
                }
                map.insert(path.into(), computed.clone());
            }
        }
        computed
    }

    fn get(&self, path: &str) -> Option<Lookup> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *entries {
            Entries::Lru(cache) => {
                self.gets.fetch_add(1, Ordering::Relaxed);
                let found = cache.get(path).cloned();
                if found.is_some() {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                }
                found
            }
            Entries::Random(map, _) => map.get(path).cloned(),
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        match &*self.entries.lock().unwrap_or_else(|p| p.into_inner()) {
            Entries::Lru(cache) => cache.len(),
            Entries::Random(map, _) => map.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lookups so far (the random cache counts none, as upstream's).
    pub fn gets(&self) -> u64 {
        self.gets.load(Ordering::Relaxed)
    }

    /// Lookups answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_counts_and_evicts() {
        let cache = MapCache::new(2, CacheType::Lru).unwrap();
        let mut computed = 0;
        for path in ["a", "a", "b", "c", "a"] {
            cache.get_or_insert(path, || {
                computed += 1;
                None
            });
        }
        assert_eq!(computed, 4, "a, b, c, then a again after its eviction");
        assert_eq!((cache.gets(), cache.hits(), cache.len()), (5, 1, 2));
        assert!(MapCache::new(0, CacheType::Lru).is_none());
    }

    #[test]
    fn long_paths_are_mapped_without_the_cache() {
        let cache = MapCache::new(1000, CacheType::Lru).unwrap();
        let mut computed = 0;
        for n in 0..100 {
            let path = format!("{n:0>60000}");
            cache.get_or_insert(&path, || {
                computed += 1;
                None
            });
        }
        assert_eq!((computed, cache.len()), (100, 0));
        let limit = "x".repeat(MAX_CACHED_PATH);
        cache.get_or_insert(&limit, || None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn random_is_bounded_and_uncounted() {
        let cache = MapCache::new(2, CacheType::Random).unwrap();
        for path in ["a", "b", "c", "d"] {
            cache.get_or_insert(path, || None);
        }
        assert_eq!((cache.gets(), cache.hits(), cache.len()), (0, 0, 2));
    }
}
