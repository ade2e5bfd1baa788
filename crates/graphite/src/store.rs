//! The sample store: the latest value of every series, keyed by the name exactly as sent
//! (path and tags), as graphite_exporter keys it — so "last processed wins" per name.
//!
//! Built for many writers and a large number of series:
//! - Sharded by the name's hash, one short lock per line; a known name is updated in place
//!   without mapping it again (the common case: the same names every report).
//! - One allocation per series holding the name, the family and the rendered labels, so a
//!   series costs about its text plus 56 bytes. Both the number of series and these bytes
//!   are bounded: a few series with very long names cost as much as many short ones.
//! - A scrape copies each shard's live samples out under its lock, then sorts and writes
//!   them without holding any lock.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use hashbrown::HashTable;
use kiln_registry::metrics::write_float;

use crate::series::Series;

const SHARDS: usize = 64;
/// No rule: the line's own path named it.
pub const NO_RULE: u32 = u32::MAX;

/// One stored series.
#[derive(Debug)]
struct Entry {
    /// The name as sent, then the family, then the rendered labels.
    text: Box<str>,
    name_len: u32,
    family_len: u32,
    value: f64,
    timestamp: f64,
    /// The rule that mapped it, or [`NO_RULE`].
    rule: u32,
    /// The mapping generation it was mapped with.
    generation: u32,
    /// Tag pieces without `=`, counted again with every sample.
    tag_failures: u16,
    help_digit: u8,
}

impl Entry {
    fn name(&self) -> &str {
        &self.text[..self.name_len as usize]
    }

    /// Family and labels together.
    fn series(&self) -> &str {
        &self.text[self.name_len as usize..]
    }
}

/// What a stored series says about its line, for the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// The rule that mapped it, or [`NO_RULE`].
    pub rule: u32,
    /// Tag parse failures in its name.
    pub tag_failures: u16,
}

/// Outcome of [`Store::update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// The name is stored (mapped with the current generation) and now holds the sample.
    Stored(Known),
    /// The name is unknown, or was mapped by an older mapping: map it and [`Store::insert`].
    Unknown,
}

/// Outcome of [`Store::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// Stored.
    Stored,
    /// The store holds as many series, or as many bytes of them, as allowed; the sample
    /// was refused.
    Full,
}

/// A sample for [`Store::insert`].
#[derive(Debug)]
pub struct NewSample<'a> {
    /// The name as sent.
    pub name: &'a str,
    /// Its series.
    pub series: &'a Series,
    /// The value, already scaled.
    pub value: f64,
    /// The Graphite timestamp in seconds.
    pub timestamp: f64,
    /// The rule that mapped it, or [`NO_RULE`].
    pub rule: u32,
    /// The mapping generation used.
    pub generation: u32,
    /// Tag parse failures in the name.
    pub tag_failures: u16,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    shards: Box<[Mutex<HashTable<Entry>>]>,
    hasher: foldhash::fast::FixedState,
    len: AtomicUsize,
    limit: usize,
    /// What the stored series cost, as [`cost`] counts it.
    bytes: AtomicUsize,
    bytes_limit: usize,
    /// A scrape's working memory, kept between scrapes so each does not grow it anew.
    scratch: Mutex<Scratch>,
}

#[derive(Debug, Default)]
struct Scratch {
    /// The live samples' family and labels, copied out of the shards.
    arena: String,
    rows: Vec<Row>,
}

/// What a scrape found besides the samples it wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Series written.
    pub series: usize,
    /// Samples left out: all but the newest of those that map to the same series, and those
    /// in a family of the exporter's own. Counted as they are skipped, so it is exact even
    /// when a mapping reload changes the store before [`Rendered::conflicts`] is named.
    pub left_out: usize,
    /// Series left out because another name produced the same family and labels (the
    /// newest sample is served), or the family belongs to the exporter's own metrics.
    pub conflicts: Vec<Conflict>,
}

/// A series that more than one input name maps to, or that has the name of one of the
/// exporter's own metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Family and labels as written.
    pub series: String,
    /// The names as sent that map to it (for a clash with the exporter's own metrics, the
    /// one name).
    pub names: Vec<String>,
    /// Whether the family is one of the exporter's own (then nothing of it is served).
    pub reserved: bool,
}

/// A live sample copied out for a scrape; text ranges point into the scrape's arena.
#[derive(Debug)]
struct Row {
    /// Family and labels, contiguous: the start of the sample's line. Offsets are `usize`:
    /// a scrape's copy may pass 4 GiB when the byte limit allows it.
    series: (usize, usize),
    family_len: u32,
    value: f64,
    timestamp: f64,
    help_digit: u8,
    /// Position of the family in name order, then the hash of family and labels.
    rank: u32,
    hash: u64,
}

impl Store {
    /// An empty store that holds at most `limit` series and `bytes_limit` bytes of them
    /// (0: no limit).
    pub fn new(limit: usize, bytes_limit: usize) -> Self {
        let unlimited_if_zero = |n| if n == 0 { usize::MAX } else { n };
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashTable::new())).collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x6b69_6c6e),
            len: AtomicUsize::new(0),
            limit: unlimited_if_zero(limit),
            bytes: AtomicUsize::new(0),
            bytes_limit: unlimited_if_zero(bytes_limit),
            scratch: Mutex::new(Scratch::default()),
        }
    }

    /// What the stored series cost in bytes: their text plus the fixed part of each.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Records a change in stored bytes that needs no room (a replaced or removed entry).
    fn adjust_bytes(&self, before: usize, after: usize) {
        if after >= before {
            self.bytes.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.bytes.fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// Hash of a name, to be passed back to [`Store::update`] and [`Store::insert`].
    pub fn hash(&self, name: &[u8]) -> u64 {
        self.hasher.hash_one(name)
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, HashTable<Entry>> {
        let index = (hash >> 58) as usize % SHARDS;
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Number of series stored.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fast path: stores a sample for a known name. `sample` is asked for the value and
    /// timestamp (already scaled) only when the name is known, with what the store knows of
    /// it; an error from it leaves the stored sample as it was and is returned.
    pub fn update<E>(
        &self,
        hash: u64,
        name: &[u8],
        generation: u32,
        sample: impl FnOnce(Known) -> Result<(f64, f64), E>,
    ) -> Result<Update, E> {
        let mut shard = self.shard(hash);
        let Some(entry) = shard.find_mut(hash, |e| e.name().as_bytes() == name) else {
            return Ok(Update::Unknown);
        };
        if entry.generation != generation {
            return Ok(Update::Unknown);
        }
        let known = Known {
            rule: entry.rule,
            tag_failures: entry.tag_failures,
        };
        let (value, timestamp) = sample(known)?;
        entry.value = value;
        entry.timestamp = timestamp;
        Ok(Update::Stored(known))
    }

    /// Stores a sample for a name just mapped (replacing any entry of an older mapping).
    pub fn insert(&self, hash: u64, sample: &NewSample<'_>) -> Insert {
        let entry = new_entry(sample);
        let mut shard = self.shard(hash);
        if let Some(existing) = shard.find_mut(hash, |e| e.name() == sample.name) {
            self.adjust_bytes(cost(existing), cost(&entry));
            *existing = entry;
            return Insert::Stored;
        }
        // Reserve a place and its bytes under the limits; both are shared by all shards.
        let reserved = self
            .len
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .is_ok();
        if !reserved {
            return Insert::Full;
        }
        let bytes = cost(&entry);
        let room = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                n.checked_add(bytes)
                    .filter(|&total| total <= self.bytes_limit)
            })
            .is_ok();
        if !room {
            self.len.fetch_sub(1, Ordering::Relaxed);
            return Insert::Full;
        }
        shard.insert_unique(hash, entry, |e| self.hasher.hash_one(e.name().as_bytes()));
        Insert::Stored
    }

    /// Removes samples whose Graphite timestamp is before `oldest`; returns how many.
    pub fn expire(&self, oldest: f64) -> usize {
        let mut removed = 0;
        let mut freed = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let before = shard.len();
            shard.retain(|e| {
                let keep = e.timestamp >= oldest;
                if !keep {
                    freed += cost(e);
                }
                keep
            });
            removed += before - shard.len();
            // A table emptied by expiry gives its slots back instead of keeping the size
            // of its busiest moment.
            if shard.capacity() > 4 * shard.len() + 64 {
                let len = shard.len();
                shard.shrink_to(len, |e| self.hasher.hash_one(e.name().as_bytes()));
            }
        }
        self.len.fetch_sub(removed, Ordering::Relaxed);
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
        if removed > 0 {
            self.shrink_scratch();
        }
        removed
    }

    /// Drops the scrape buffers when they are far larger than the store now needs (after
    /// expiry, say): they are kept between scrapes only to avoid growing them every time.
    fn shrink_scratch(&self) {
        let needed = self.bytes();
        let mut scratch = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        if scratch.arena.capacity() > 2 * needed + (1 << 20) {
            scratch.arena = String::new();
        }
        let rows = self.len();
        if scratch.rows.capacity() > 2 * rows + 1024 {
            scratch.rows = Vec::new();
        }
    }

    /// Re-maps every stored name after a mapping reload: `remap` gives the new series,
    /// rule and tag failures of a name, or `None` to forget it (now dropped or invalid).
    pub fn remap(
        &self,
        generation: u32,
        remap: impl Fn(&str) -> Option<(Series, u32, u16)>,
    ) -> usize {
        let mut removed = 0;
        let (mut freed, mut added) = (0, 0);
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let before = shard.len();
            shard.retain(|entry| {
                let name = entry.name().to_owned();
                freed += cost(entry);
                let Some((series, rule, tag_failures)) = remap(&name) else {
                    return false;
                };
                *entry = new_entry(&NewSample {
                    name: &name,
                    series: &series,
                    value: entry.value,
                    timestamp: entry.timestamp,
                    rule,
                    generation,
                    tag_failures,
                });
                added += cost(entry);
                true
            });
            removed += before - shard.len();
        }
        self.len.fetch_sub(removed, Ordering::Relaxed);
        // A new mapping may make series longer: they are kept even past the byte limit
        // (forgetting stored samples on reload would be worse); new series wait for room.
        self.adjust_bytes(freed, added);
        removed
    }

    /// Writes every sample whose timestamp is at or after `oldest` as exposition text,
    /// families sorted by name. Families named in `taken` (sorted) are left out, and so are
    /// all but the newest of samples that map to the same series.
    pub fn render(&self, oldest: f64, taken: &[&str], out: &mut String) -> Rendered {
        let mut scratch = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let Scratch { arena, rows } = &mut *scratch;
        arena.clear();
        rows.clear();
        let push = |arena: &mut String, text: &str| {
            let start = arena.len();
            arena.push_str(text);
            (start, text.len())
        };
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for entry in shard.iter().filter(|e| e.timestamp >= oldest) {
                rows.push(Row {
                    series: push(arena, entry.series()),
                    family_len: entry.family_len,
                    value: entry.value,
                    timestamp: entry.timestamp,
                    help_digit: entry.help_digit,
                    rank: 0,
                    hash: 0,
                });
            }
        }
        let text = |range: (usize, usize)| &arena[range.0..range.0 + range.1];
        let family = |row: &Row| &text(row.series)[..row.family_len as usize];

        // Order: families by name (as the format needs each written once, and as upstream
        // sorts them), samples within a family by the hash of their series — cheap to sort
        // and the same from scrape to scrape; Prometheus needs no order there. Equal series
        // (collisions) end up next to each other, the newest first.
        let mut families: HashMap<&str, u32, foldhash::fast::FixedState> =
            HashMap::with_hasher(self.hasher.clone());
        for row in rows.iter() {
            let next = families.len() as u32;
            families.entry(family(row)).or_insert(next);
        }
        let mut by_name: Vec<(&str, u32)> = families.iter().map(|(f, id)| (*f, *id)).collect();
        by_name.sort_unstable();
        let mut rank = vec![0u32; by_name.len()];
        for (position, (_, id)) in by_name.iter().enumerate() {
            rank[*id as usize] = position as u32;
        }
        for row in rows.iter_mut() {
            row.rank = rank[families[&text(row.series)[..row.family_len as usize]] as usize];
            row.hash = self.hasher.hash_one(text(row.series).as_bytes());
        }
        rows.sort_unstable_by(|a, b| {
            (a.rank, a.hash)
                .cmp(&(b.rank, b.hash))
                .then_with(|| b.timestamp.total_cmp(&a.timestamp))
        });

        let mut rendered = Rendered::default();
        out.reserve(rows.len() * 64);
        let mut current_family: Option<&str> = None;
        let mut previous: Option<&Row> = None;
        for row in rows.iter() {
            let family = family(row);
            if taken.binary_search(&family).is_ok() {
                rendered.left_out += 1;
                rendered.conflicts.push(Conflict {
                    series: text(row.series).to_owned(),
                    names: Vec::new(),
                    reserved: true,
                });
                continue;
            }
            if let Some(prev) = previous
                && prev.hash == row.hash
                && text(prev.series) == text(row.series)
            {
                rendered.left_out += 1;
                if rendered
                    .conflicts
                    .last()
                    .is_none_or(|c| c.series != text(row.series))
                {
                    rendered.conflicts.push(Conflict {
                        series: text(row.series).to_owned(),
                        names: Vec::new(),
                        reserved: false,
                    });
                }
                continue;
            }
            previous = Some(row);
            if current_family != Some(family) {
                current_family = Some(family);
                out.push_str("# HELP ");
                out.push_str(family);
                out.push_str(" Graphite metric ");
                match row.help_digit {
                    0 => out.push_str(family),
                    digit => {
                        out.push(char::from(digit));
                        out.push_str(&family[1..]);
                    }
                }
                out.push_str("\n# TYPE ");
                out.push_str(family);
                out.push_str(" gauge\n");
            }
            out.push_str(text(row.series));
            out.push(' ');
            write_float(out, row.value);
            out.push('\n');
            rendered.series += 1;
        }
        drop(scratch);
        if !rendered.conflicts.is_empty() {
            self.name_conflicts(&mut rendered.conflicts);
        }
        rendered
    }

    /// Finds the input names behind each conflict (a second pass, only when there are
    /// conflicts, so a scrape never copies every name).
    fn name_conflicts(&self, conflicts: &mut [Conflict]) {
        let index: HashMap<&str, usize> = conflicts
            .iter()
            .enumerate()
            .map(|(i, c)| (c.series.as_str(), i))
            .collect();
        let mut names: Vec<Vec<String>> = vec![Vec::new(); conflicts.len()];
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for entry in shard.iter() {
                if let Some(&i) = index.get(entry.series()) {
                    names[i].push(entry.name().to_owned());
                }
            }
        }
        for (conflict, mut found) in conflicts.iter_mut().zip(names) {
            found.sort();
            conflict.names = found;
        }
    }
}

/// What one stored series counts against the byte limit: its text and the entry itself.
fn cost(entry: &Entry) -> usize {
    entry.text.len() + std::mem::size_of::<Entry>()
}

fn new_entry(sample: &NewSample<'_>) -> Entry {
    let series = sample.series;
    let mut text =
        String::with_capacity(sample.name.len() + series.family.len() + series.labels.len());
    text.push_str(sample.name);
    let name_len = text.len() as u32;
    text.push_str(&series.family);
    text.push_str(&series.labels);
    Entry {
        text: text.into_boxed_str(),
        name_len,
        family_len: series.family.len() as u32,
        value: sample.value,
        timestamp: sample.timestamp,
        rule: sample.rule,
        generation: sample.generation,
        tag_failures: sample.tag_failures,
        help_digit: series.help_digit.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(family: &str, labels: &str) -> Series {
        Series {
            family: family.to_owned(),
            help_digit: None,
            labels: labels.to_owned(),
        }
    }

    fn put(store: &Store, name: &str, s: &Series, value: f64, timestamp: f64) -> Insert {
        let hash = store.hash(name.as_bytes());
        store.insert(
            hash,
            &NewSample {
                name,
                series: s,
                value,
                timestamp,
                rule: NO_RULE,
                generation: 0,
                tag_failures: 0,
            },
        )
    }

    fn render(store: &Store, oldest: f64, taken: &[&str]) -> (String, Rendered) {
        let mut out = String::new();
        let rendered = store.render(oldest, taken, &mut out);
        (out, rendered)
    }

    #[test]
    fn known_names_update_in_place() {
        let store = Store::new(0, 0);
        put(&store, "a.b", &series("a_b", ""), 1.0, 100.0);
        let hash = store.hash(b"a.b");
        let update = store.update::<()>(hash, b"a.b", 0, |_| Ok((2.0, 50.0)));
        assert!(matches!(update, Ok(Update::Stored(_))));
        assert_eq!(
            store.update::<()>(hash, b"a.b", 1, |_| Ok((3.0, 1.0))),
            Ok(Update::Unknown),
            "a newer mapping generation re-maps the name"
        );
        let (text, _) = render(&store, 0.0, &[]);
        assert_eq!(
            text,
            "# HELP a_b Graphite metric a_b\n# TYPE a_b gauge\na_b 2\n"
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn sorted_output_expiry_and_collisions() {
        let store = Store::new(0, 0);
        put(&store, "b", &series("b", ""), 1.0, 100.0);
        put(&store, "a;x=2", &series("a", r#"{x="2"}"#), 2.0, 100.0);
        put(&store, "a;x=1", &series("a", r#"{x="1"}"#), 3.0, 100.0);
        put(&store, "a.old", &series("a_old", ""), 4.0, 10.0);
        put(&store, "a_x;x=1", &series("a", r#"{x="1"}"#), 5.0, 101.0);
        put(
            &store,
            "graphite_sample_expiry_seconds",
            &series("graphite_sample_expiry_seconds", ""),
            1.0,
            100.0,
        );
        let (text, rendered) = render(&store, 50.0, &["graphite_sample_expiry_seconds"]);
        assert_eq!(
            text,
            "# HELP a Graphite metric a\n# TYPE a gauge\na{x=\"1\"} 5\na{x=\"2\"} 2\n\
             # HELP b Graphite metric b\n# TYPE b gauge\nb 1\n"
        );
        assert_eq!(rendered.series, 3);
        assert_eq!(rendered.left_out, 2);
        assert_eq!(rendered.conflicts.len(), 2);
        assert!(rendered.conflicts.contains(&Conflict {
            series: "a{x=\"1\"}".into(),
            names: vec!["a;x=1".into(), "a_x;x=1".into()],
            reserved: false,
        }));
        assert_eq!(store.expire(50.0), 1);
        assert_eq!(store.len(), 5);
    }

    /// A mapping reload re-maps every name while scrapes run: what a scrape reports as left
    /// out can never exceed what it saw, however the two interleave.
    #[test]
    fn left_out_stays_exact_while_a_reload_remaps() {
        const NAMES: usize = 4000;
        let store = std::sync::Arc::new(Store::new(0, 0));
        // Names 2k and 2k+1 map to one series: NAMES / 2 are left out of each scrape.
        let pair = |name: &str, prefix: &str| {
            let n: usize = name[1..].parse().unwrap();
            series(&format!("{prefix}{}", n / 2), "")
        };
        for n in 0..NAMES {
            let name = format!("n{n}");
            put(&store, &name, &pair(&name, "a"), 1.0, n as f64);
        }
        let remapping = {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                for generation in 1..=60u32 {
                    let prefix = if generation % 2 == 0 { "a" } else { "b" };
                    store.remap(generation, |name| Some((pair(name, prefix), NO_RULE, 0)));
                }
            })
        };
        let mut scrapes = 0;
        while !remapping.is_finished() || scrapes == 0 {
            let (_, rendered) = render(&store, 0.0, &[]);
            assert!(rendered.left_out <= NAMES / 2, "{}", rendered.left_out);
            assert_eq!(rendered.series + rendered.left_out, NAMES);
            scrapes += 1;
        }
        remapping.join().unwrap();
        let (_, rendered) = render(&store, 0.0, &[]);
        assert_eq!(rendered.left_out, NAMES / 2);
    }

    #[test]
    fn the_byte_limit_refuses_new_series_and_expiry_gives_the_bytes_back() {
        // As the docs say: a series costs its text plus 56 bytes.
        assert_eq!(std::mem::size_of::<Entry>(), 56);
        const LIMIT: usize = 100_000;
        let store = Store::new(0, LIMIT);
        // Names of 10 000 bytes; each series holds the name and a family of the same size.
        let long = |n: usize| format!("{n:0>10000}");
        let mut stored = 0;
        for n in 0..50 {
            let name = long(n);
            if put(&store, &name, &series(&name, ""), 1.0, 100.0) == Insert::Stored {
                stored += 1;
            }
        }
        assert_eq!(stored, LIMIT / (20_000 + 56));
        assert!(store.bytes() <= LIMIT, "{}", store.bytes());
        assert_eq!(store.bytes(), stored * (20_000 + 56));
        // Known series keep being updated; short new ones still fit where long ones do not.
        assert_eq!(
            put(&store, &long(0), &series(&long(0), ""), 2.0, 100.0),
            Insert::Stored
        );
        assert_eq!(
            put(&store, "a", &series("a", ""), 1.0, 100.0),
            Insert::Stored
        );
        assert_eq!(store.expire(200.0), stored + 1);
        assert_eq!((store.len(), store.bytes()), (0, 0));
        assert_eq!(
            put(&store, &long(99), &series(&long(99), ""), 1.0, 300.0),
            Insert::Stored
        );
    }

    #[test]
    fn limit_refuses_new_series_only() {
        let store = Store::new(1, 0);
        assert_eq!(put(&store, "a", &series("a", ""), 1.0, 1.0), Insert::Stored);
        assert_eq!(put(&store, "b", &series("b", ""), 1.0, 1.0), Insert::Full);
        assert_eq!(put(&store, "a", &series("a", ""), 2.0, 1.0), Insert::Stored);
    }

    #[test]
    fn help_keeps_a_leading_digit() {
        let store = Store::new(0, 0);
        let mut s = series("_lives", "");
        s.help_digit = Some(b'9');
        put(&store, "9lives", &s, 1.0, 1.0);
        let (text, _) = render(&store, 0.0, &[]);
        assert!(
            text.starts_with("# HELP _lives Graphite metric 9lives\n"),
            "{text}"
        );
    }
}
