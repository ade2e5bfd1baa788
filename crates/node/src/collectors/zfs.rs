//! `zfs`: OpenZFS kstats from `/proc/spl/kstat/zfs/`: the module-wide statistics (ARC,
//! dbuf cache, ZIL, prefetch, …), and per pool its I/O counters, the counters of each of
//! its datasets and its state.
//!
//! Names follow node_exporter: `node_zfs_<subsystem>_<kstat>` with the kstat's name as
//! HELP (`kstat.zfs.misc.arcstats.hits`), every value untyped except the pool state. A
//! `-` in a kstat's name (`fm`'s `erpt-dropped`) becomes `_` in the metric name and stays
//! in the HELP text.
//!
//! On a host without ZFS the directory is missing and a scrape costs one failed `open`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, LogLimiter, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read::Entries;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Zfs {
        root: settings.paths.proc("spl/kstat/zfs"),
        warnings: LogLimiter::new(Duration::from_secs(300)),
    })
}

struct Zfs {
    /// `/proc/spl/kstat/zfs`.
    root: PathBuf,
    /// Malformed kstat files are logged at most this often: a broken file would otherwise
    /// log on every scrape.
    warnings: LogLimiter,
}

/// `(kstat file, subsystem in the metric name)`, as node_exporter names them.
const KSTATS: [(&str, &str); 11] = [
    ("abdstats", "abd"),
    ("arcstats", "arc"),
    ("dbufstats", "dbuf"),
    ("dmu_tx", "dmu_tx"),
    ("dnodestats", "dnode"),
    ("fm", "fm"),
    ("vdev_cache_stats", "vdev_cache"),
    ("vdev_mirror_stats", "vdev_mirror"),
    ("xuio_stats", "xuio"),
    ("zfetchstats", "zfetch"),
    ("zil", "zil"),
];

/// The states `node_zfs_zpool_state{state}` enumerates, sorted as node_exporter's
/// exposition lists them.
const POOL_STATES: [&str; 7] = [
    "degraded",
    "faulted",
    "offline",
    "online",
    "removed",
    "suspended",
    "unavail",
];

/// kstat data types (`KSTAT_DATA_*`) that are exported; the others (strings, the rare
/// 32-bit ones) are left out, as node_exporter does.
const KSTAT_INT64: &str = "3";
const KSTAT_UINT64: &str = "4";

/// One row of a named kstat (`name  type  data`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row<'a> {
    name: &'a str,
    kind: &'a str,
    /// Everything after the type column: one number, or a string that may hold spaces
    /// (a dataset's name).
    data: &'a str,
}

/// The rows of a named kstat: those after its `name type data` header line. `None` when
/// the header is missing (not a named kstat). Lines of fewer than three words are skipped.
fn kstat_rows(text: &str) -> Option<impl Iterator<Item = Row<'_>>> {
    let mut lines = text.lines();
    lines.find(|line| line.split_ascii_whitespace().eq(["name", "type", "data"]))?;
    Some(lines.filter_map(|line| {
        let (name, rest) = next_word(line)?;
        let (kind, rest) = next_word(rest)?;
        let data = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        (!data.is_empty()).then_some(Row { name, kind, data })
    }))
}

/// The first word of `text` and what follows it.
fn next_word(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let end = text
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(text.len());
    (end > 0).then(|| text.split_at(end))
}

/// A row's value if its type is exported: `Ok(None)` for other types, `Err` for a number
/// that does not parse.
fn row_value(row: &Row<'_>) -> Result<Option<f64>, String> {
    let number = row.data.split_ascii_whitespace().next().unwrap_or_default();
    let parsed = match row.kind {
        KSTAT_UINT64 => number.parse::<u64>().map(|n| n as f64).ok(),
        KSTAT_INT64 => number.parse::<i64>().map(|n| n as f64).ok(),
        _ => return Ok(None),
    };
    parsed.map(Some).ok_or_else(|| {
        format!(
            "{}: {number:?} is not a number of type {}",
            row.name, row.kind
        )
    })
}

/// The metric name's last part for a kstat: what follows its last `.`, with `-` as `_`;
/// `None` if it would not make a valid metric name.
fn metric_suffix(kstat: &str) -> Option<Cow<'_, str>> {
    let last = kstat.rsplit('.').next().unwrap_or(kstat);
    let valid = !last.is_empty()
        && last
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b':');
    if !valid {
        return None;
    }
    Some(if last.contains('-') {
        Cow::Owned(last.replace('-', "_"))
    } else {
        Cow::Borrowed(last)
    })
}

/// A value read for a metric: the metric name's last part, the kstat's own name (for the
/// HELP text) and the value.
type Reading<'a> = (Cow<'a, str>, &'a str, f64);

/// Keeps the first reading of each metric name: a kstat named twice, or two names that
/// differ only in `-` and `_`, would otherwise give the same series twice.
fn first_of_each(readings: &mut Vec<Reading<'_>>) {
    // Stable, so of equal names the first read stays first and is the one kept.
    readings.sort_by(|a, b| a.0.cmp(&b.0));
    readings.dedup_by(|later, earlier| later.0 == earlier.0);
}

/// The exported values of a module-wide kstat, with what was wrong with the rows left
/// out; `Err` when nothing in the file could be used.
fn kstat_readings(text: &str) -> Result<(Vec<Reading<'_>>, Option<String>), String> {
    let rows = kstat_rows(text).ok_or("no \"name type data\" header")?;
    let mut readings = Vec::new();
    let mut problem = None;
    for row in rows {
        match row_value(&row) {
            Ok(Some(value)) => match metric_suffix(row.name) {
                Some(suffix) => readings.push((suffix, row.name, value)),
                None => problem = Some(format!("{:?} is not a usable metric name", row.name)),
            },
            Ok(None) => {}
            Err(error) => problem = Some(error),
        }
    }
    first_of_each(&mut readings);
    match problem {
        Some(problem) if readings.is_empty() => Err(problem),
        // What could be read is kept; the problem is still reported.
        problem => Ok((readings, problem)),
    }
}

/// A pool's `io` kstat: a header line of counter names (`nread nwritten reads …`), then
/// one line of their values. Returns the counters, or why the file was not understood.
fn pool_io(text: &str) -> Result<Vec<Reading<'_>>, String> {
    let mut lines = text.lines();
    let header = lines
        .find(|line| {
            let mut words = line.split_ascii_whitespace();
            words.next() == Some("nread") && words.count() >= 11
        })
        .ok_or("no header line of counter names")?;
    let values = lines
        .find(|line| !line.trim().is_empty())
        .ok_or("no line of values")?;
    let mut values = values.split_ascii_whitespace();
    let mut readings = Vec::new();
    for name in header.split_ascii_whitespace() {
        let value = values
            .next()
            .ok_or_else(|| format!("no value for {name}"))?;
        let value: u64 = value
            .parse()
            .map_err(|_| format!("{name}: {value:?} is not a counter"))?;
        let suffix =
            metric_suffix(name).ok_or_else(|| format!("{name:?} is not a usable metric name"))?;
        readings.push((suffix, name, value as f64));
    }
    first_of_each(&mut readings);
    Ok(readings)
}

/// A dataset's `objset-*` kstat: its name and its counters, or why the file was not
/// understood.
fn dataset(text: &str) -> Result<(&str, Vec<Reading<'_>>), String> {
    let rows = kstat_rows(text).ok_or("no \"name type data\" header")?;
    let mut name = None;
    let mut readings = Vec::new();
    for row in rows {
        if row.name == "dataset_name" {
            // The whole rest of the line: a dataset's name may hold spaces.
            name = Some(row.data);
            continue;
        }
        // Only the unsigned counters, as node_exporter exports them.
        if row.kind != KSTAT_UINT64 {
            continue;
        }
        let value = row_value(&row)?.unwrap_or_default();
        let suffix = metric_suffix(row.name)
            .ok_or_else(|| format!("{:?} is not a usable metric name", row.name))?;
        readings.push((suffix, row.name, value));
    }
    let name = name.ok_or("no dataset_name")?;
    first_of_each(&mut readings);
    Ok((name, readings))
}

/// A pool's state from its `state` file (`ONLINE`), in lower case.
fn pool_state(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_lowercase()
}

impl Zfs {
    fn warn(&self, file: &Path, problem: &str) {
        if let Some(suppressed) = self.warnings.check() {
            tracing::warn!(collector = "zfs", file = %file.display(), suppressed, "{problem}; left out");
        }
    }

    fn module_kstats(&self, entries: &Entries, out: &mut MetricSet) {
        for (file, subsystem) in KSTATS {
            // kstats come and go with the module's version: a missing one is no error.
            let Some(text) = entries.dir().optional_trimmed_at(&[file]) else {
                continue;
            };
            let readings = match kstat_readings(&text) {
                Ok((readings, problem)) => {
                    if let Some(problem) = problem {
                        self.warn(&self.root.join(file), &problem);
                    }
                    readings
                }
                Err(problem) => {
                    self.warn(&self.root.join(file), &problem);
                    continue;
                }
            };
            for (suffix, kstat, value) in readings {
                let family = out.family_fmt(
                    format_args!("node_zfs_{subsystem}_{suffix}"),
                    format_args!("kstat.zfs.misc.{file}.{kstat}"),
                    MetricType::Untyped,
                );
                out.sample(family, &[], value);
            }
        }
    }

    fn pool_io(&self, entries: &Entries, pool: &str, out: &mut MetricSet) {
        let Some(text) = entries.dir().optional_trimmed_at(&[pool, "io"]) else {
            return;
        };
        match pool_io(&text) {
            Ok(readings) => {
                for (suffix, counter, value) in readings {
                    let family = out.family_fmt(
                        format_args!("node_zfs_zpool_{suffix}"),
                        format_args!("kstat.zfs.misc.io.{counter}"),
                        MetricType::Untyped,
                    );
                    out.sample(family, &[("zpool", pool)], value);
                }
            }
            Err(problem) => self.warn(&self.root.join(pool).join("io"), &problem),
        }
    }

    fn datasets(
        &self,
        ctx: &ScrapeContext,
        pool: &str,
        out: &mut MetricSet,
    ) -> Result<(), CollectError> {
        let dir = self.root.join(pool);
        let Ok(objsets) = Entries::list(&dir, |name| name.starts_with("objset-")) else {
            return Ok(());
        };
        // A dataset named in two files (renamed while we read) is exported once.
        let mut seen = HashSet::new();
        for objset in objsets.names() {
            // A pool can hold thousands of datasets, a file each.
            if ctx.expired() {
                return Err(CollectError::failed(
                    format!("reading {}", dir.display()),
                    "the scrape's deadline passed",
                ));
            }
            let Some(text) = objsets.dir().optional_trimmed_at(&[objset]) else {
                continue;
            };
            let (dataset, readings) = match dataset(&text) {
                Ok(found) => found,
                Err(problem) => {
                    self.warn(&dir.join(objset), &problem);
                    continue;
                }
            };
            if !seen.insert(dataset.to_owned()) {
                continue;
            }
            for (suffix, counter, value) in readings {
                let family = out.family_fmt(
                    format_args!("node_zfs_zpool_dataset_{suffix}"),
                    format_args!("kstat.zfs.misc.objset.{counter}"),
                    MetricType::Untyped,
                );
                out.sample(family, &[("zpool", pool), ("dataset", dataset)], value);
            }
        }
        Ok(())
    }
}

impl Collector for Zfs {
    fn name(&self) -> &str {
        "zfs"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // Missing without the ZFS module: no data, and nothing else is tried.
        let entries = Entries::list(&self.root, |name| !name.starts_with('.'))?;
        self.module_kstats(&entries, out);
        let state = out.gauge("node_zfs_zpool_state", "kstat.zfs.misc.state");
        for pool in entries.names() {
            // Every pool is a directory with a `state` file; the module-wide kstats are
            // files, for which this open fails at once.
            let Some(text) = entries.dir().optional_trimmed_at(&[pool, "state"]) else {
                continue;
            };
            let current = pool_state(&text);
            for name in POOL_STATES {
                let active = if current == name { 1.0 } else { 0.0 };
                out.sample(state, &[("zpool", pool), ("state", name)], active);
            }
            self.pool_io(&entries, pool, out);
            self.datasets(ctx, pool, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/node_exporter/fixtures/proc/spl/kstat/zfs"
    );

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap()
    }

    fn owned(readings: &[Reading<'_>]) -> Vec<(String, String, f64)> {
        readings
            .iter()
            .map(|(suffix, kstat, value)| (suffix.to_string(), kstat.to_string(), *value))
            .collect()
    }

    #[test]
    fn module_kstat_rows_after_the_header() {
        let text = "6 1 0x01 91 4368 5266997922 97951858082072\n\
                    name                            type data\n\
                    hits                            4    8772612\n\
                    misses                          4    604635\n\
                    delta                           3    -12\n\
                    label                           7    some text\n";
        assert_eq!(
            owned(&kstat_readings(text).unwrap().0),
            [
                ("delta".into(), "delta".into(), -12.0),
                ("hits".into(), "hits".into(), 8772612.0),
                ("misses".into(), "misses".into(), 604635.0),
            ]
        );
    }

    #[test]
    fn dashes_become_underscores_in_the_name_only() {
        let text = fixture("fm");
        let (readings, problem) = kstat_readings(&text).unwrap();
        assert_eq!(problem, None);
        assert_eq!(readings.len(), 4);
        assert_eq!(readings[0].0, "erpt_dropped");
        assert_eq!(readings[0].1, "erpt-dropped");
        assert_eq!(readings[0].2, 18.0);
    }

    #[test]
    fn arcstats_fixture_reads_whole() {
        let text = fixture("arcstats");
        let (readings, _) = kstat_readings(&text).unwrap();
        let hits = readings.iter().find(|r| r.0 == "hits").unwrap();
        assert_eq!(hits.2, 8772612.0);
        assert!(readings.len() > 80);
    }

    #[test]
    fn repeated_and_colliding_names_keep_the_first() {
        let text = "name type data\na-b 4 1\na_b 4 2\nc 4 3\nc 4 4\n";
        assert_eq!(
            owned(&kstat_readings(text).unwrap().0),
            [
                ("a_b".into(), "a-b".into(), 1.0),
                ("c".into(), "c".into(), 3.0)
            ]
        );
    }

    #[test]
    fn junk_is_refused_or_skipped() {
        assert!(kstat_readings("hits 4 1\n").is_err(), "no header");
        assert!(kstat_readings("name type data\nhits 4 x\n").is_err());
        assert!(kstat_readings("name type data\nhits 4 -1\n").is_err());
        assert!(kstat_readings("name type data\nbad{name} 4 1\n").is_err());
        // A bad row next to good ones costs only itself.
        let (readings, problem) =
            kstat_readings("name type data\nhits 4 x\nmisses 4 2\nshort 4\n").unwrap();
        assert_eq!(owned(&readings), [("misses".into(), "misses".into(), 2.0)]);
        assert!(problem.unwrap().starts_with("hits:"), "and is reported");
    }

    #[test]
    fn pool_io_counters() {
        let text = fixture("pool1/io");
        let readings = pool_io(&text).unwrap();
        assert_eq!(readings.len(), 12);
        let nread = readings.iter().find(|r| r.0 == "nread").unwrap();
        assert_eq!(nread.2, 1884160.0);
        let wupdate = readings.iter().find(|r| r.0 == "wupdate").unwrap();
        assert_eq!(wupdate.2, 79210489694949.0);
        assert!(
            pool_io("nread nwritten\n1 2\n").is_err(),
            "too few counters"
        );
        let short = "nread a b c d e f g h i j k\n1 2 3\n";
        assert!(pool_io(short).is_err(), "too few values");
    }

    #[test]
    fn dataset_names_keep_their_spaces() {
        let text = fixture("pool3/objset-2");
        let (name, readings) = dataset(&text).unwrap();
        assert_eq!(name, "pool3/dataset with  space");
        let nwritten = readings.iter().find(|r| r.0 == "nwritten").unwrap();
        assert_eq!(nwritten.2, 12302.0);
        assert_eq!(readings.len(), 6);
        // The name is found by its column, not by searching the line for it.
        let (name, _) = dataset("name type data\ndataset_name 7 data\nwrites 4 1\n").unwrap();
        assert_eq!(name, "data");
        assert!(dataset("name type data\nwrites 4 1\n").is_err());
    }

    #[test]
    fn pool_states_in_lower_case() {
        assert_eq!(pool_state(&fixture("pool2/state")), "suspended");
        assert_eq!(pool_state("ONLINE\n"), "online");
        assert_eq!(pool_state(""), "");
    }

    #[test]
    fn a_host_without_zfs_has_no_data() {
        let zfs = Zfs {
            root: PathBuf::from("/nonexistent/spl/kstat/zfs"),
            warnings: LogLimiter::new(Duration::from_secs(300)),
        };
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::with_budget(Duration::from_secs(5));
        assert!(matches!(
            zfs.collect(&ctx, &mut out),
            Err(CollectError::NoData)
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn fixture_tree_gives_each_series_once() {
        let zfs = Zfs {
            root: PathBuf::from(FIXTURES),
            warnings: LogLimiter::new(Duration::from_secs(300)),
        };
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::with_budget(Duration::from_secs(5));
        zfs.collect(&ctx, &mut out).unwrap();
        out.seal();
        let mut series = HashSet::new();
        let mut states = 0;
        for family in out.families() {
            for sample in family.samples() {
                let labels: Vec<_> = sample.labels().collect();
                assert!(
                    series.insert(format!("{}{labels:?}", family.name())),
                    "{} twice",
                    family.name()
                );
                if family.name() == "node_zfs_zpool_state" && sample.value() == 1.0 {
                    states += 1;
                    if sample.label("zpool") == Some("pool2") {
                        assert_eq!(sample.label("state"), Some("suspended"));
                    }
                }
            }
        }
        assert_eq!(states, 4, "one active state per pool");
        assert!(
            series
                .iter()
                .any(|s| s.starts_with("node_zfs_fm_erpt_dropped"))
        );
        assert!(
            series
                .iter()
                .any(|s| s.starts_with("node_zfs_zpool_dataset_nread")
                    && s.contains("pool3/dataset with  space"))
        );
    }
}
