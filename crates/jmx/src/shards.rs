//! A module's match cache split in shards, so a big answer is walked by several threads.
//!
//! A big answer (a Kafka broker with thousands of partitions: 50 000 attributes) costs
//! hundreds of milliseconds on its first scrape, all of it independent per bean. The answer
//! is cut into as many consecutive pieces as there are shards, and a thread walks each piece
//! against its own shard; the pieces' samples, put one after another, are in answer order.
//!
//! Bridges send beans in the same order scrape after scrape, so a bean meets its remembered
//! results in the same shard each time, and each thread reads its shard front to back, as
//! the results were made. A bean that moves to another piece (beans added or removed before
//! it) is worked out again there, once; the copy left behind ages out with the idle sweep.
//! Cutting by position rather than by a hash of the name is what keeps a shard's beans
//! together in memory: the hash spread them over all shards and a later scrape paid for it
//! in cache misses.
//!
//! Shards also let probes of one module's targets overlap: each holds one shard's lock at a
//! time, not the whole cache for the whole walk.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::rules::RuleSet;
use crate::rules::cache::{Limits, MatchCache};
use crate::samples::Samples;
use crate::walk::{BeanSource, WalkStats, Walker};

/// Most shards a cache is split into.
const MAX_SHARDS: usize = 8;
/// Answers with fewer beans are walked on the calling thread alone: starting a thread costs
/// more than it saves.
const PARALLEL_FROM_BEANS: usize = 512;

/// Rule results for every target of a module, in shards.
#[derive(Debug)]
pub struct ShardedCache {
    shards: Box<[Shard]>,
}

/// One shard, on cache lines of its own: the walking state it updates on every attribute
/// must not share a line with another thread's.
#[derive(Debug)]
#[repr(align(128))]
struct Shard(Mutex<MatchCache>);

impl ShardedCache {
    /// An empty cache with one shard per CPU the process may use (at most eight).
    pub fn for_this_host(rules: &RuleSet) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(rules, cpus.min(MAX_SHARDS))
    }

    /// An empty cache with `shards` shards (at least one).
    pub fn new(rules: &RuleSet, shards: usize) -> Self {
        let limits = Limits::default().per_shard(shards.max(1));
        Self {
            shards: (0..shards.max(1))
                .map(|_| {
                    let mut cache = MatchCache::new(rules);
                    cache.set_limits(limits);
                    Shard(Mutex::new(cache))
                })
                .collect(),
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

    /// Times a shard forgot everything for going past its limits.
    pub fn resets(&self) -> u64 {
        self.shards.iter().map(|s| lock(s).resets()).sum()
    }

    /// Drops the shared strings of a large answer that only its samples held, once they
    /// are written (see [`MatchCache::sweep_strings_if_grown`]).
    pub fn sweep_strings(&self) {
        for shard in &self.shards {
            lock(shard).sweep_strings_if_grown();
        }
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Walks `beans` through `rules`: the samples in answer order, and what was counted.
    /// Beans still in text are parsed one at a time as they are walked.
    pub fn walk<B: BeanSource>(&self, rules: &RuleSet, beans: &[B]) -> (Samples, WalkStats) {
        let per_shard = beans.len().div_ceil(self.shards.len()).max(1);
        let walk_shard = |(shard, beans): (usize, &[B])| {
            let mut cache = lock(&self.shards[shard]);
            cache.reserve(beans.len());
            let mut walker = Walker::new(rules, &mut cache);
            for bean in beans {
                bean.with_bean(|bean| walker.bean(bean));
            }
            let walked = (walker.samples, walker.stats);
            cache.finish_pass();
            walked
        };
        let pieces = beans.chunks(per_shard).enumerate();
        let parts: Vec<(Samples, WalkStats)> = if beans.len() < PARALLEL_FROM_BEANS {
            pieces.map(walk_shard).collect()
        } else {
            std::thread::scope(|scope| {
                let mut pieces = pieces;
                let first = pieces.next();
                let helpers: Vec<_> = pieces
                    .map(|piece| {
                        std::thread::Builder::new()
                            .name("jmx-walk".into())
                            .spawn_scoped(scope, move || walk_shard(piece))
                            .map_err(|_| piece)
                    })
                    .collect();
                let mut parts: Vec<_> = first.map(walk_shard).into_iter().collect();
                for helper in helpers {
                    parts.push(match helper {
                        Ok(thread) => thread
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                        // No thread to be had: this one does the piece too.
                        Err(piece) => walk_shard(piece),
                    });
                }
                parts
            })
        };
        let mut stats = WalkStats::default();
        let mut samples = Samples::default();
        for (part, part_stats) in parts {
            samples.append(part);
            stats += part_stats;
        }
        (samples, stats)
    }
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
    use crate::walk::Bean;

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

    fn lines(samples: &Samples) -> Vec<String> {
        samples
            .iter()
            .map(|s| format!("{} {:?} {}", s.name(), s.labels(), s.value()))
            .collect()
    }

    #[test]
    fn shards_give_the_samples_of_one_walk_in_answer_order() {
        let rules = RuleSet::default_rules();
        // Below and above the size from which helper threads walk.
        for size in [40, PARALLEL_FROM_BEANS * 3] {
            let one = ShardedCache::new(&rules, 1);
            let three = ShardedCache::new(&rules, 3);
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
            assert!(three.shards.iter().all(|shard| !lock(shard).is_empty()));
        }
    }

    #[test]
    fn samples_of_one_bean_share_their_labels_and_give_their_object_names_in_full() {
        let rules = RuleSet::default_rules();
        let cache = ShardedCache::new(&rules, 1);
        let text = answer(3, 0);
        let document = json::parse(&text).unwrap();
        let (samples, _) = cache.walk(&rules, &beans(&document));
        let of_bean: Vec<_> = samples
            .iter()
            .filter(|s| s.labels().iter().any(|(_, v)| &**v == "p1"))
            .collect();
        // Size, Used, Usage.max, Usage.used: one label set between them.
        assert_eq!(of_bean.len(), 4);
        assert!(
            of_bean
                .windows(2)
                .all(|w| std::sync::Arc::ptr_eq(w[0].labels(), w[1].labels()))
        );
        let max = of_bean
            .iter()
            .find(|s| s.name() == "app_Pool1_Usage_max")
            .unwrap();
        assert_eq!(max.object_name(), "app<type=Pool1, name=p1><Usage>max");
        let rows = samples.into_rows();
        let family = rows
            .families()
            .iter()
            .find(|f| &*f.first.name == "app_Pool1_Usage_max")
            .unwrap();
        assert_eq!(family.first.help(), "app:name=p1,type=Pool1,attribute=max");
    }

    #[test]
    fn beans_that_change_places_are_worked_out_again_where_they_land() {
        let rules = RuleSet::default_rules();
        let one = ShardedCache::new(&rules, 1);
        let three = ShardedCache::new(&rules, 3);
        let text = answer(PARALLEL_FROM_BEANS * 3, 0);
        let document = json::parse(&text).unwrap();
        let mut beans = beans(&document);
        // Results are remembered from a bean's second answer on: two rounds in the first
        // order, then the beans reversed.
        for round in 0..5 {
            let (expected, _) = one.walk(&rules, &beans);
            let (samples, stats) = three.walk(&rules, &beans);
            assert_eq!(lines(&samples), lines(&expected), "round {round}");
            if round == 2 {
                // Every bean but the middle third changed shards: all of those are new there.
                assert!(stats.cache_hits < stats.attributes / 2, "{stats:?}");
            }
            if round == 4 {
                assert_eq!(stats.cache_hits, stats.attributes, "{stats:?}");
            }
            if round == 1 {
                beans.reverse();
            }
        }
        // The results left behind stay until the idle sweep.
        assert!(three.len() > one.len());
    }
}
