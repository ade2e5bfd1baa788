//! A module's match cache split by bean name, so one answer is walked by several threads.
//!
//! A big answer (a Kafka broker with thousands of partitions: 50 000 attributes) costs
//! hundreds of milliseconds on its first scrape and tens on every later one, all of it
//! independent per bean. Each bean belongs to one shard, chosen by a hash of its name, so it
//! meets its remembered results scrape after scrape; a thread per shard walks the answer,
//! taking only its own beans. The samples are then put back in answer order, so what is
//! written does not depend on how the work was split.
//!
//! Shards also let probes of one module's targets overlap: each holds one shard's lock at a
//! time, not the whole cache for the whole walk.

use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::rules::RuleSet;
use crate::rules::cache::MatchCache;
use crate::walk::{Bean, Sample, WalkStats, Walker};

/// Most shards a cache is split into.
const MAX_SHARDS: usize = 8;
/// Answers with fewer beans are walked on the calling thread alone: starting a thread costs
/// more than it saves.
const PARALLEL_FROM_BEANS: usize = 512;

/// Rule results for every target of a module, in shards.
#[derive(Debug)]
pub struct ShardedCache {
    shards: Box<[Shard]>,
    hasher: foldhash::fast::FixedState,
}

/// One shard, on cache lines of its own: the walking state it updates on every attribute
/// must not share a line with another thread's.
#[derive(Debug)]
#[repr(align(128))]
struct Shard(Mutex<MatchCache>);

/// What one shard's walk produced.
struct Part {
    samples: std::vec::IntoIter<Sample>,
    /// For each bean that gave samples: its place in the answer and how many it gave.
    counts: Vec<(u32, u32)>,
    stats: WalkStats,
}

impl ShardedCache {
    /// An empty cache with one shard per CPU the process may use (at most eight).
    pub fn for_this_host(rules: &RuleSet) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(rules, cpus.min(MAX_SHARDS))
    }

    /// An empty cache with `shards` shards (at least one).
    pub fn new(rules: &RuleSet, shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| Shard(Mutex::new(MatchCache::new(rules))))
                .collect(),
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Number of remembered attributes.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Walks `beans` through `rules`: the samples in answer order, and what was counted.
    pub fn walk(&self, rules: &RuleSet, beans: &[Bean<'_>]) -> (Vec<Sample>, WalkStats) {
        if self.shards.len() == 1 {
            let mut cache = lock(&self.shards[0]);
            cache.reserve(beans.len());
            let mut walker = Walker::new(rules, &mut cache);
            for bean in beans {
                walker.bean(*bean);
            }
            return (walker.samples, walker.stats);
        }
        let owners: Vec<u8> = beans
            .iter()
            .map(|bean| (self.hasher.hash_one(bean.name) % self.shards.len() as u64) as u8)
            .collect();
        let walk_shard = |shard: usize| self.walk_shard(rules, beans, &owners, shard);
        // Threads pay off when most beans are new and every attribute runs the rules
        // (microseconds each). When results are reused (a fraction of a microsecond each),
        // a second thread costs about what it saves.
        let known: usize = self.shards.iter().map(|s| lock(s).beans()).sum();
        let parts: Vec<Part> = if beans.len() < PARALLEL_FROM_BEANS || known * 2 > beans.len() {
            (0..self.shards.len()).map(walk_shard).collect()
        } else {
            std::thread::scope(|scope| {
                let helpers: Vec<_> = (1..self.shards.len())
                    .map(|shard| {
                        std::thread::Builder::new()
                            .name("jmx-walk".into())
                            .spawn_scoped(scope, move || walk_shard(shard))
                            .map_err(|_| shard)
                    })
                    .collect();
                let mut parts = vec![walk_shard(0)];
                for helper in helpers {
                    parts.push(match helper {
                        Ok(thread) => thread
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                        // No thread to be had: this one does the shard's share too.
                        Err(shard) => walk_shard(shard),
                    });
                }
                parts
            })
        };
        merge(parts, owners.len())
    }

    fn walk_shard(&self, rules: &RuleSet, beans: &[Bean<'_>], owners: &[u8], shard: usize) -> Part {
        let mut cache = lock(&self.shards[shard]);
        cache.reserve(owners.iter().filter(|&&o| usize::from(o) == shard).count());
        let mut walker = Walker::new(rules, &mut cache);
        let mut counts = Vec::new();
        for (place, (bean, &owner)) in beans.iter().zip(owners).enumerate() {
            if usize::from(owner) != shard {
                continue;
            }
            let before = walker.samples.len();
            walker.bean(*bean);
            let gave = walker.samples.len() - before;
            if gave > 0 {
                counts.push((place as u32, gave as u32));
            }
        }
        Part {
            samples: walker.samples.into_iter(),
            counts,
            stats: walker.stats,
        }
    }
}

/// The shards' samples in the order of the beans they came from, and their summed counts.
fn merge(mut parts: Vec<Part>, beans: usize) -> (Vec<Sample>, WalkStats) {
    // Which shard gave samples for each bean: beans are few enough that a table beats a
    // k-way merge.
    let mut giver: Vec<Option<(u8, u32)>> = vec![None; beans];
    let mut total = 0;
    let mut stats = WalkStats::default();
    for (shard, part) in parts.iter().enumerate() {
        for &(place, count) in &part.counts {
            giver[place as usize] = Some((shard as u8, count));
            total += count as usize;
        }
        stats += part.stats;
    }
    let mut samples = Vec::with_capacity(total);
    for (shard, count) in giver.into_iter().flatten() {
        samples.extend(
            parts[usize::from(shard)]
                .samples
                .by_ref()
                .take(count as usize),
        );
    }
    (samples, stats)
}

fn lock(shard: &Shard) -> MutexGuard<'_, MatchCache> {
    // A walk that panicked leaves the cache usable: entries are whole when inserted, and at
    // worst the bean it was in forgets its remembered attributes.
    shard.0.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::fmt::Write as _;

    use super::*;
    use crate::json::{self, Value};

    /// A Hadoop-style answer with `beans` beans, some giving no samples (strings only), some
    /// several, some sharing label sets so that the order of samples decides what is kept.
    fn answer(beans: usize, tick: u32) -> String {
        let mut out = String::from(r#"{"beans":["#);
        for i in 0..beans {
            let comma = if i > 0 { "," } else { "" };
            let _ = write!(
                out,
                r#"{comma}{{"name":"app:type=Pool{},name=p{i}","Size":{},"Used":{},"State":"up","#,
                i % 7,
                i as u32 * 3 + tick,
                i % 11
            );
            let _ = write!(out, r#""Usage":{{"max":{i},"used":{tick}}}}}"#);
        }
        out.push_str("]}");
        out
    }

    fn beans<'a>(document: &'a Value<'a>) -> Vec<Bean<'a>> {
        let mut beans = Vec::new();
        crate::bridge::hadoop::beans(document, &mut beans).unwrap();
        beans
    }

    fn lines(samples: &[Sample]) -> Vec<String> {
        samples
            .iter()
            .map(|s| format!("{} {:?} {}", s.prepared.name, s.prepared.labels, s.value))
            .collect()
    }

    #[test]
    fn shards_give_the_samples_of_one_walk_in_answer_order() {
        let rules = RuleSet::default_rules();
        let one = ShardedCache::new(&rules, 1);
        let three = ShardedCache::new(&rules, 3);
        // Below and above the size from which helper threads walk.
        for size in [40, PARALLEL_FROM_BEANS * 3] {
            for tick in 0..3 {
                let text = answer(size, tick);
                let document = json::parse(&text).unwrap();
                let beans = beans(&document);
                let (expected, expected_stats) = one.walk(&rules, &beans);
                let (samples, stats) = three.walk(&rules, &beans);
                assert_eq!(
                    lines(&samples),
                    lines(&expected),
                    "{size} beans, tick {tick}"
                );
                assert_eq!(stats, expected_stats);
                assert_eq!(samples.len(), size * 4);
            }
        }
        assert_eq!(three.len(), one.len());
        assert!(three.shards.iter().all(|shard| !lock(shard).is_empty()));
    }
}
