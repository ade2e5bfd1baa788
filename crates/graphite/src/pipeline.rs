//! From a line to a stored sample: the steps graphite_exporter takes, in its order, run
//! by every connection and UDP reader in parallel.
//!
//! Order per line, as upstream: split into three fields; parse tags (failures counted);
//! map; drop (by rule, or unmatched under strict matching) before the value is even read;
//! read value and timestamp; store. A name already stored skips straight to reading the
//! value, with the same counts.
//!
//! Each [`Worker`] counts locally and adds its counts to the shared [`Stats`] once per
//! batch, so parallel readers do not contend on counters line by line.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use kiln_registry::config::ConfigError;

use crate::cache::{CacheType, Lookup, MapCache};
use crate::line::{Invalid, parse_number, split_fields, split_tags};
use crate::mapping::{Action, Mapper};
use crate::series::{self, Series};
use crate::store::{Insert, NO_RULE, NewSample, Store, Update};

/// What the pipeline is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--graphite.mapping-config`.
    pub mapping_file: Option<PathBuf>,
    /// `--graphite.mapping-strict-match`.
    pub strict_match: bool,
    /// `--graphite.sample-expiry`.
    pub sample_expiry: Duration,
    /// `--graphite.cache-size`.
    pub cache_size: usize,
    /// `--graphite.cache-type`.
    pub cache_type: CacheType,
    /// `--graphite.series-limit` (0: none).
    pub series_limit: usize,
    /// `--graphite.series-bytes-limit` (0: none).
    pub series_bytes_limit: usize,
}

/// One loaded mapping file with its cache.
#[derive(Debug)]
pub struct Mapping {
    /// The rules.
    pub mapper: Mapper,
    /// The cache, unless `--graphite.cache-size=0`.
    pub cache: Option<MapCache>,
    /// Bumped on every reload, so stored names are mapped again.
    pub generation: u32,
}

impl Mapping {
    fn lookup(&self, path: &str) -> Lookup {
        match &self.cache {
            Some(cache) => cache.get_or_insert(path, || self.mapper.map(path).map(Arc::new)),
            None => self.mapper.map(path).map(Arc::new),
        }
    }

    fn scale(&self, rule: u32) -> f64 {
        self.mapper
            .rules()
            .get(rule as usize)
            .and_then(|r| r.scale)
            .unwrap_or(1.0)
    }
}

/// Counters shared by all workers.
#[derive(Debug)]
pub struct Stats {
    /// Lines stored.
    pub stored: AtomicU64,
    /// Lines refused, by [`Invalid::index`].
    pub invalid: [AtomicU64; Invalid::ALL.len()],
    /// `graphite_dropped_samples_total`.
    pub dropped: AtomicU64,
    /// `graphite_tag_parse_failures`.
    pub tag_failures: AtomicU64,
    /// Lines refused because the store was full.
    pub rejected: AtomicU64,
    /// Lines no rule matched.
    pub unmatched: AtomicU64,
    /// `graphite_last_processed_timestamp_seconds`, as f64 bits.
    pub last_processed: AtomicU64,
    /// Lines matched per rule, for the mapping generation in the first field.
    pub rule_matches: Mutex<(u32, Vec<u64>)>,
}

/// The shared half of ingestion.
#[derive(Debug)]
pub struct Pipeline {
    settings: Settings,
    store: Store,
    mapping: ArcSwap<Mapping>,
    generation: AtomicU32,
    stats: Stats,
    reload_ok: AtomicU64,
    reload_time: AtomicU64,
    /// Held while a reload re-maps the store (which costs a core for a second with a
    /// million series): a second reload asked for meanwhile is refused, not queued.
    reloading: Mutex<()>,
}

impl Pipeline {
    /// Loads the mapping file (if any) and creates an empty store.
    pub fn new(settings: Settings) -> Result<Self, ConfigError> {
        let mapper = match &settings.mapping_file {
            Some(file) => Mapper::load(file)?,
            None => Mapper::empty(),
        };
        let rules = mapper.rules().len();
        let mapping = Mapping {
            mapper,
            cache: MapCache::new(settings.cache_size, settings.cache_type),
            generation: 0,
        };
        Ok(Self {
            store: Store::new(settings.series_limit, settings.series_bytes_limit),
            settings,
            mapping: ArcSwap::from_pointee(mapping),
            generation: AtomicU32::new(0),
            stats: Stats {
                stored: AtomicU64::new(0),
                invalid: Default::default(),
                dropped: AtomicU64::new(0),
                tag_failures: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                unmatched: AtomicU64::new(0),
                last_processed: AtomicU64::new(0),
                rule_matches: Mutex::new((0, vec![0; rules])),
            },
            reload_ok: AtomicU64::new(1),
            reload_time: AtomicU64::new(now_seconds().to_bits()),
            reloading: Mutex::new(()),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The mapping in force.
    pub fn mapping(&self) -> Arc<Mapping> {
        self.mapping.load_full()
    }

    /// Whether the last reload succeeded, and when the mapping was last loaded.
    pub fn reload_status(&self) -> (bool, f64) {
        (
            self.reload_ok.load(Ordering::Relaxed) == 1,
            f64::from_bits(self.reload_time.load(Ordering::Relaxed)),
        )
    }

    /// A worker for one connection or UDP reader.
    pub fn worker(self: &Arc<Self>) -> Worker {
        Worker {
            mapping: self.mapping(),
            pipeline: Arc::clone(self),
            local: Local::default(),
        }
    }

    /// Re-reads the mapping file and re-maps every stored name with it. Stored samples
    /// are kept; names the new mapping drops are forgotten. On error the old mapping stays.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let Some(file) = &self.settings.mapping_file else {
            return Ok(());
        };
        let Ok(_reloading) = self.reloading.try_lock() else {
            return Err(ConfigError::file(
                file,
                "a reload is already in progress; this one was not started",
            ));
        };
        let mapper = match Mapper::load(file) {
            Ok(mapper) => mapper,
            Err(error) => {
                self.reload_ok.store(0, Ordering::Relaxed);
                return Err(error);
            }
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let rules = mapper.rules().len();
        let mapping = Arc::new(Mapping {
            mapper,
            cache: MapCache::new(self.settings.cache_size, self.settings.cache_type),
            generation,
        });
        self.mapping.store(Arc::clone(&mapping));
        *lock(&self.stats.rule_matches) = (generation, vec![0; rules]);
        let strict = self.settings.strict_match;
        let forgotten = self.store.remap(generation, |name| {
            let tagged = split_tags(name);
            let mapped = mapping.mapper.map(tagged.path);
            let rule = mapped.as_ref().map(|m| &mapping.mapper.rules()[m.rule]);
            match rule {
                Some(rule) if rule.action == Action::Drop => return None,
                None if strict => return None,
                _ => {}
            }
            let series = series::build(&tagged, mapped.as_ref().zip(rule)).ok()?;
            let rule = mapped.map_or(NO_RULE, |m| m.rule as u32);
            Some((
                series,
                rule,
                tagged.failures.min(u32::from(u16::MAX)) as u16,
            ))
        });
        self.reload_ok.store(1, Ordering::Relaxed);
        self.reload_time
            .store(now_seconds().to_bits(), Ordering::Relaxed);
        tracing::info!(
            file = %file.display(),
            rules,
            series = self.store.len(),
            forgotten,
            "Mapping reloaded."
        );
        Ok(())
    }

    /// Forgets samples older than the expiry; run every minute.
    pub fn expire(&self) -> usize {
        self.store
            .expire(now_seconds() - self.settings.sample_expiry.as_secs_f64())
    }
}

/// Counts of one worker between two flushes.
#[derive(Debug, Default)]
struct Local {
    lines: u64,
    stored: u64,
    invalid: [u64; Invalid::ALL.len()],
    dropped: u64,
    tag_failures: u64,
    rejected: u64,
    unmatched: u64,
    rule_matches: Vec<u64>,
}

impl Local {
    fn rule_matched(&mut self, rule: u32) {
        let rule = rule as usize;
        if self.rule_matches.len() <= rule {
            self.rule_matches.resize(rule + 1, 0);
        }
        self.rule_matches[rule] += 1;
    }
}

/// The per-reader half of ingestion: feed it lines, flush it after each batch.
#[derive(Debug)]
pub struct Worker {
    pipeline: Arc<Pipeline>,
    mapping: Arc<Mapping>,
    local: Local,
}

impl Worker {
    /// Processes one line (without its newline).
    pub fn line(&mut self, line: &[u8]) {
        self.local.lines += 1;
        if let Err(reason) = self.process(line) {
            self.local.invalid[reason.index()] += 1;
            log_invalid(reason, line);
        }
    }

    /// Counts a line that was too long to be read.
    pub fn too_long(&mut self, start: &[u8]) {
        self.local.lines += 1;
        self.local.invalid[Invalid::TooLong.index()] += 1;
        log_invalid(Invalid::TooLong, start);
    }

    fn process(&mut self, line: &[u8]) -> Result<(), Invalid> {
        let fields = split_fields(line)?;
        let Self {
            pipeline,
            mapping,
            local,
        } = self;
        let store = &pipeline.store;
        let hash = store.hash(fields.name);
        let update = store.update(hash, fields.name, mapping.generation, |known| {
            local.tag_failures += u64::from(known.tag_failures);
            if known.rule == NO_RULE {
                local.unmatched += 1;
            } else {
                local.rule_matched(known.rule);
            }
            let value = parse_number(fields.value).ok_or(Invalid::Value)?;
            let timestamp = parse_timestamp(fields.timestamp)?;
            Ok((value * mapping.scale(known.rule), timestamp))
        })?;
        if let Update::Stored(_) = update {
            local.stored += 1;
            return Ok(());
        }

        let name = std::str::from_utf8(fields.name).map_err(|_| Invalid::Utf8)?;
        let tagged = split_tags(name);
        local.tag_failures += u64::from(tagged.failures);
        let mapped = mapping.lookup(tagged.path);
        let rule = mapped
            .as_deref()
            .map(|m| (m, &mapping.mapper.rules()[m.rule]));
        match rule {
            Some((m, rule)) => {
                local.rule_matched(m.rule as u32);
                if rule.action == Action::Drop {
                    local.dropped += 1;
                    return Ok(());
                }
            }
            None => {
                local.unmatched += 1;
                if pipeline.settings.strict_match {
                    local.dropped += 1;
                    return Ok(());
                }
            }
        }
        let value = parse_number(fields.value).ok_or(Invalid::Value)?;
        let timestamp = parse_timestamp(fields.timestamp)?;
        let series: Series = series::build(&tagged, rule)?;
        let rule_index = mapped.as_ref().map_or(NO_RULE, |m| m.rule as u32);
        let sample = NewSample {
            name,
            series: &series,
            value: value * mapping.scale(rule_index),
            timestamp,
            rule: rule_index,
            generation: mapping.generation,
            tag_failures: tagged.failures.min(u32::from(u16::MAX)) as u16,
        };
        match store.insert(hash, &sample) {
            Insert::Stored => local.stored += 1,
            Insert::Full => {
                local.rejected += 1;
                log_full(name, store.len());
            }
        }
        Ok(())
    }

    /// Adds this worker's counts to the shared ones and picks up a reloaded mapping.
    pub fn flush(&mut self) {
        let local = std::mem::take(&mut self.local);
        let stats = &self.pipeline.stats;
        let add = |counter: &AtomicU64, n: u64| {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&stats.stored, local.stored);
        for (counter, n) in stats.invalid.iter().zip(local.invalid) {
            add(counter, n);
        }
        add(&stats.dropped, local.dropped);
        add(&stats.tag_failures, local.tag_failures);
        add(&stats.rejected, local.rejected);
        add(&stats.unmatched, local.unmatched);
        if !local.rule_matches.is_empty() {
            let mut matches = lock(&stats.rule_matches);
            if matches.0 == self.mapping.generation {
                for (total, n) in matches.1.iter_mut().zip(&local.rule_matches) {
                    *total += n;
                }
            }
        }
        if local.lines > 0 {
            stats
                .last_processed
                .store(now_seconds().to_bits(), Ordering::Relaxed);
        }
        self.mapping = self.pipeline.mapping();
    }
}

/// A timestamp must be a finite number of seconds (upstream turns NaN and infinities into
/// dates that are never served; refusing them says so).
fn parse_timestamp(field: &[u8]) -> Result<f64, Invalid> {
    parse_number(field)
        .filter(|t| t.is_finite())
        .ok_or(Invalid::Timestamp)
}

static INVALID_LOG: kiln_registry::LogLimiter =
    kiln_registry::LogLimiter::new(Duration::from_secs(60));
static FULL_LOG: kiln_registry::LogLimiter =
    kiln_registry::LogLimiter::new(Duration::from_secs(60));

fn log_invalid(reason: Invalid, line: &[u8]) {
    if let Some(suppressed) = INVALID_LOG.check() {
        let shown = &line[..line.len().min(200)];
        tracing::warn!(
            reason = reason.label(),
            line = %String::from_utf8_lossy(shown),
            suppressed,
            "Invalid line dropped (counted in graphite_invalid_lines_total)."
        );
    }
}

fn log_full(name: &str, series: usize) {
    if let Some(suppressed) = FULL_LOG.check() {
        // The first 200 bytes say which sender it is; a name can be 64 KiB long.
        let cut = (0..=name.len().min(200))
            .rev()
            .find(|&i| name.is_char_boundary(i))
            .unwrap_or(0);
        let name = &name[..cut];
        tracing::warn!(
            name,
            series,
            suppressed,
            "Series limit reached; new series are refused (see --graphite.series-limit and --graphite.series-bytes-limit)."
        );
    }
}

/// Wall-clock time in seconds.
pub fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_asked_for_while_one_runs_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.yml");
        std::fs::write(&file, "mappings:\n- match: a.*\n  name: a\n").unwrap();
        let pipeline = Pipeline::new(Settings {
            mapping_file: Some(file),
            strict_match: false,
            sample_expiry: Duration::from_secs(300),
            cache_size: 1000,
            cache_type: CacheType::Lru,
            series_limit: 0,
            series_bytes_limit: 0,
        })
        .unwrap();
        let running = pipeline.reloading.lock().unwrap();
        let error = pipeline.reload().unwrap_err();
        assert!(
            error.message.contains("a reload is already in progress"),
            "{error}"
        );
        drop(running);
        assert!(pipeline.reload().is_ok());
    }
}
