//! `bcache`: block cache statistics from `/sys/fs/bcache/<set uuid>/`, with the backing
//! (`bdevN`) and cache (`cacheN`) devices of each cache set.
//!
//! The kernel prints most sizes with `bch_hprint`: `20.4G`, `1.1M`, `427.5k`. The digit
//! after the point is not a decimal fraction but tenths of 1024 scaled to 0..=10 (so
//! `.10` is more than `.9`); node_exporter reads it back as `int + frac / 10.24` and this
//! does the same, so the values match to the byte.

use std::io;
use std::path::{Path, PathBuf};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

/// The bcache collector's options.
#[derive(Debug, Clone, clap::Args)]
// Every collector's options struct is named `Options`: the group needs a name of its own.
#[group(id = "bcache_options")]
pub struct Options {
    /// Also report each cache device's priority_stats (unused and metadata share); reading
    /// that file makes the kernel walk every bucket of the cache, which is slow on big ones.
    #[arg(long = "collector.bcache.priorityStats")]
    pub priority_stats: bool,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Bcache {
        root: settings.paths.sys("fs/bcache"),
        priority_stats: settings.options.bcache.priority_stats,
    })
}

struct Bcache {
    /// `/sys/fs/bcache`: a directory per cache set, named by its UUID.
    root: PathBuf,
    priority_stats: bool,
}

/// A value read from a file and reported as one metric: `(file, metric, help, type,
/// factor)`.
type Stat = (&'static str, &'static str, &'static str, MetricType, f64);

use MetricType::{Counter, Gauge};

/// Files of the cache set's directory (`internal/` ones included), labelled by `uuid`.
const SET: &[Stat] = &[
    (
        "average_key_size",
        "average_key_size_sectors",
        "Average data per key in the btree (sectors).",
        Gauge,
        1.0,
    ),
    (
        "btree_cache_size",
        "btree_cache_size_bytes",
        "Amount of memory currently used by the btree cache.",
        Gauge,
        1.0,
    ),
    (
        "cache_available_percent",
        "cache_available_percent",
        "Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).",
        Gauge,
        1.0,
    ),
    ("congested", "congested", "Congestion.", Gauge, 1.0),
    (
        "root_usage_percent",
        "root_usage_percent",
        "Percentage of the root btree node in use (tree depth increases if too high).",
        Gauge,
        1.0,
    ),
    (
        "tree_depth",
        "tree_depth",
        "Depth of the btree.",
        Gauge,
        1.0,
    ),
    (
        "internal/active_journal_entries",
        "active_journal_entries",
        "Number of journal entries that are newer than the index.",
        Gauge,
        1.0,
    ),
    (
        "internal/btree_nodes",
        "btree_nodes",
        "Total nodes in the btree.",
        Gauge,
        1.0,
    ),
    // The file is in microseconds; node_exporter scales it by 1e-9 all the same, and its
    // values are what dashboards were built on.
    (
        "internal/btree_read_average_duration_us",
        "btree_read_average_duration_seconds",
        "Average btree read duration.",
        Gauge,
        1e-9,
    ),
    (
        "internal/cache_read_races",
        "cache_read_races_total",
        "Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. where the pointer was stale after the read completed.",
        Counter,
        1.0,
    ),
];

/// Files of a backing device's `stats_total/`, labelled by `uuid` and `backing_device`.
/// `cache_readaheads` is reported only when it is not zero, as upstream does.
const BDEV_TOTALS: &[Stat] = &[
    (
        "bypassed",
        "bypassed_bytes_total",
        "Amount of IO (both reads and writes) that has bypassed the cache.",
        Counter,
        1.0,
    ),
    (
        "cache_hits",
        "cache_hits_total",
        "Hits counted per individual IO as bcache sees them.",
        Counter,
        1.0,
    ),
    (
        "cache_misses",
        "cache_misses_total",
        "Misses counted per individual IO as bcache sees them.",
        Counter,
        1.0,
    ),
    (
        "cache_bypass_hits",
        "cache_bypass_hits_total",
        "Hits for IO intended to skip the cache.",
        Counter,
        1.0,
    ),
    (
        "cache_bypass_misses",
        "cache_bypass_misses_total",
        "Misses for IO intended to skip the cache.",
        Counter,
        1.0,
    ),
    (
        "cache_miss_collisions",
        "cache_miss_collisions_total",
        "Instances where data insertion from cache miss raced with write (data already present).",
        Counter,
        1.0,
    ),
    (
        "cache_readaheads",
        "cache_readaheads_total",
        "Count of times readahead occurred.",
        Counter,
        1.0,
    ),
];

/// Files of a cache device's directory, labelled by `uuid` and `cache_device`.
const CACHE: &[Stat] = &[
    (
        "io_errors",
        "io_errors",
        "Number of errors that have occurred, decayed by io_error_halflife.",
        Gauge,
        1.0,
    ),
    (
        "metadata_written",
        "metadata_written_bytes_total",
        "Sum of all non data writes (btree writes and all other metadata).",
        Counter,
        1.0,
    ),
    (
        "written",
        "written_bytes_total",
        "Sum of all data that has been written to the cache.",
        Counter,
        1.0,
    ),
];

/// The writeback controller's state from a backing device's `writeback_rate_debug`, as
/// `(metric, help)` in the order of [`WritebackDebug::values`].
const WRITEBACK: [(&str, &str); 6] = [
    (
        "dirty_data_bytes",
        "Amount of dirty data for this backing device in the cache.",
    ),
    (
        "dirty_target_bytes",
        "Current dirty data target threshold for this backing device in bytes.",
    ),
    (
        "writeback_rate",
        "Current writeback rate for this backing device in bytes.",
    ),
    (
        "writeback_rate_proportional_term",
        "Current result of proportional controller, part of writeback rate",
    ),
    (
        "writeback_rate_integral_term",
        "Current result of integral controller, part of writeback rate",
    ),
    (
        "writeback_change",
        "Last writeback rate change step for this backing device.",
    ),
];

/// `(metric, help)` of the two shares read from `priority_stats`.
const PRIORITY: [(&str, &str); 2] = [
    (
        "priority_stats_unused_percent",
        "The percentage of the cache that doesn't contain any data.",
    ),
    (
        "priority_stats_metadata_percent",
        "Bcache's metadata overhead.",
    ),
];

/// The families of one scrape, declared once whatever the number of cache sets.
struct Families {
    set: Vec<FamilyId>,
    bdev_totals: Vec<FamilyId>,
    cache: Vec<FamilyId>,
    writeback: Vec<FamilyId>,
    priority: Vec<FamilyId>,
}

impl Families {
    fn declare(out: &mut MetricSet) -> Self {
        let mut stats = |stats: &[Stat]| -> Vec<FamilyId> {
            stats
                .iter()
                .map(|(_, metric, help, kind, _)| {
                    out.family_fmt(
                        format_args!("node_bcache_{metric}"),
                        format_args!("{help}"),
                        *kind,
                    )
                })
                .collect()
        };
        let set = stats(SET);
        let bdev_totals = stats(BDEV_TOTALS);
        let cache = stats(CACHE);
        let mut gauges = |list: &[(&str, &str)]| -> Vec<FamilyId> {
            list.iter()
                .map(|(metric, help)| {
                    out.family_fmt(
                        format_args!("node_bcache_{metric}"),
                        format_args!("{help}"),
                        Gauge,
                    )
                })
                .collect()
        };
        Self {
            set,
            bdev_totals,
            cache,
            writeback: gauges(&WRITEBACK),
            priority: gauges(&PRIORITY),
        }
    }
}

impl Collector for Bcache {
    fn name(&self) -> &str {
        "bcache"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // No bcache module loaded: nothing to report, which is not an error.
        let Ok(sets) = read::dir_entries(&self.root, |name| name.contains('-')) else {
            return Ok(());
        };
        if sets.is_empty() {
            return Ok(());
        }
        let families = Families::declare(out);
        for (uuid, dir) in &sets {
            self.collect_set(uuid, dir, &families, out)?;
        }
        Ok(())
    }
}

impl Bcache {
    fn collect_set(
        &self,
        uuid: &str,
        dir: &Path,
        families: &Families,
        out: &mut MetricSet,
    ) -> Result<(), CollectError> {
        let labels = [("uuid", uuid)];
        for (stat, family) in SET.iter().zip(&families.set) {
            let value = value_or_zero(&dir.join(stat.0))?;
            out.sample(*family, &labels, value as f64 * stat.4);
        }

        let is_device = |prefix: &'static str| {
            move |name: &str| {
                name.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            }
        };
        for (bdev, bdev_dir) in read::dir_entries(dir, is_device("bdev")).unwrap_or_default() {
            let labels = [("uuid", uuid), ("backing_device", bdev.as_str())];
            let dirty = value_or_zero(&bdev_dir.join("dirty_data"))?;
            let debug_path = bdev_dir.join("writeback_rate_debug");
            let debug =
                read::read_attribute(&debug_path).map_err(|e| read::failed(&debug_path, e))?;
            let debug =
                WritebackDebug::parse(&debug).map_err(|e| read::malformed(&debug_path, e))?;
            for (value, family) in [dirty as f64]
                .into_iter()
                .chain(debug.values())
                .zip(&families.writeback)
            {
                out.sample(*family, &labels, value);
            }
            let totals = bdev_dir.join("stats_total");
            for (stat, family) in BDEV_TOTALS.iter().zip(&families.bdev_totals) {
                let value = value_or_zero(&totals.join(stat.0))?;
                if stat.0 == "cache_readaheads" && value == 0 {
                    continue;
                }
                out.sample(*family, &labels, value as f64);
            }
        }

        for (cache, cache_dir) in read::dir_entries(dir, is_device("cache")).unwrap_or_default() {
            let labels = [("uuid", uuid), ("cache_device", cache.as_str())];
            for (stat, family) in CACHE.iter().zip(&families.cache) {
                let value = value_or_zero(&cache_dir.join(stat.0))?;
                out.sample(*family, &labels, value as f64);
            }
            if self.priority_stats {
                let path = cache_dir.join("priority_stats");
                let text = read::read_attribute(&path).map_err(|e| read::failed(&path, e))?;
                let (unused, metadata) =
                    priority_stats(&text).map_err(|e| read::malformed(&path, e))?;
                out.sample(families.priority[0], &labels, unused as f64);
                out.sample(families.priority[1], &labels, metadata as f64);
            }
        }
        Ok(())
    }
}

/// A value file: a missing file reads as 0 (older kernels lack some), as upstream has it;
/// a file that cannot be read or understood fails the scrape of this collector.
fn value_or_zero(path: &Path) -> Result<u64, CollectError> {
    match read::read_attribute(path) {
        Ok(text) => {
            let text = text.trim_end();
            dehumanize(text).ok_or_else(|| read::malformed(path, format!("not a size: {text:?}")))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(read::failed(path, error)),
    }
}

/// Reads a number as `bch_hprint` writes it: plain digits, or a pseudo-decimal with a
/// power-of-1024 suffix (`k`, `M`, `G`, … `Y`).
pub(super) fn dehumanize(text: &str) -> Option<u64> {
    let (&last, rest) = text.as_bytes().split_last()?;
    let value = if last > b'9' {
        // An unknown suffix counts as a factor of 0, as upstream's table lookup gives.
        let power = b"kMGTPEZY".iter().position(|&c| c == last);
        let multiplier = power.map_or(0.0, |p| 1024f64.powi(p as i32 + 1));
        pseudo_float(std::str::from_utf8(rest).ok()?)? * multiplier
    } else {
        text.parse::<f64>().ok()?
    };
    // `as` saturates (and turns NaN into 0) where Go's conversion is undefined.
    Some(value as u64)
}

/// [`dehumanize`] for values that may be negative (the controller's terms).
fn dehumanize_signed(text: &str) -> Option<i64> {
    match text.strip_prefix('-') {
        Some(magnitude) => Some((dehumanize(magnitude)? as i64).wrapping_neg()),
        None => Some(dehumanize(text)? as i64),
    }
}

/// `int.frac` where `frac` is in units of 1/10.24 (see the module comment).
fn pseudo_float(text: &str) -> Option<f64> {
    let mut parts = text.split('.');
    let whole: f64 = parts.next()?.parse().ok()?;
    match parts.next() {
        None => Some(whole),
        Some(fraction) => Some(whole + fraction.parse::<f64>().ok()? / 10.24),
    }
}

/// What `writeback_rate_debug` says of the writeback controller.
#[derive(Debug, Default, PartialEq)]
struct WritebackDebug {
    target: u64,
    rate: u64,
    proportional: i64,
    integral: i64,
    change: i64,
}

impl WritebackDebug {
    /// Reads the `name: value` lines; the value is the last word of its line.
    fn parse(text: &str) -> Result<Self, String> {
        let mut debug = Self::default();
        for line in text.lines() {
            let Some((name, _)) = line.split_once(':') else {
                continue;
            };
            let last = line.split_ascii_whitespace().last().unwrap_or_default();
            let bad = || format!("bad value in line {line:?}");
            match name {
                "rate" => debug.rate = dehumanize(last.trim_end_matches("/sec")).ok_or_else(bad)?,
                "target" => debug.target = dehumanize(last).ok_or_else(bad)?,
                "proportional" => debug.proportional = dehumanize_signed(last).ok_or_else(bad)?,
                "integral" => debug.integral = dehumanize_signed(last).ok_or_else(bad)?,
                "change" => {
                    debug.change =
                        dehumanize_signed(last.trim_end_matches("/sec")).ok_or_else(bad)?
                }
                _ => {}
            }
        }
        Ok(debug)
    }

    /// The values after `dirty_data`, in [`WRITEBACK`]'s order.
    fn values(&self) -> [f64; 5] {
        [
            self.target as f64,
            self.rate as f64,
            self.proportional as f64,
            self.integral as f64,
            self.change as f64,
        ]
    }
}

/// `(unused, metadata)` percentages from `priority_stats` (`Unused:  99%`).
fn priority_stats(text: &str) -> Result<(u64, u64), String> {
    let (mut unused, mut metadata) = (0, 0);
    for line in text.lines() {
        let slot = if line.starts_with("Unused:") {
            &mut unused
        } else if line.starts_with("Metadata:") {
            &mut metadata
        } else {
            continue;
        };
        let last = line.split_ascii_whitespace().last().unwrap_or_default();
        *slot = last
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("bad percentage in line {line:?}"))?;
    }
    Ok((unused, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_back_as_bch_hprint_meant_them() {
        assert_eq!(dehumanize("546"), Some(546));
        assert_eq!(dehumanize("1.1M"), Some(1_150_976));
        assert_eq!(dehumanize("20.4G"), Some(21_894_266_880));
        assert_eq!(dehumanize("427.5k"), Some(437_748));
        assert_eq!(dehumanize("512"), Some(512));
        assert_eq!(dehumanize(""), None);
        assert_eq!(dehumanize("x.yk"), None);
        assert_eq!(dehumanize_signed("-1.0k"), Some(-1024));
    }

    #[test]
    fn writeback_debug_of_the_fixture() {
        let text = "rate:           1.1M/sec\ndirty:          20.4G\ntarget:         20.4G\n\
                    proportional:   427.5k\nintegral:       790.0k\nchange:         321.5k/sec\n\
                    next io:        17ms\n";
        let debug = WritebackDebug::parse(text).unwrap();
        assert_eq!(
            debug,
            WritebackDebug {
                target: 21_894_266_880,
                rate: 1_150_976,
                proportional: 437_748,
                integral: 808_960,
                change: 329_204,
            }
        );
        assert!(WritebackDebug::parse("rate: lots\n").is_err());
    }

    #[test]
    fn priority_stats_of_the_fixture() {
        let text = "Unused:\t\t99%\nMetadata:\t0%\nAverage:\t10473\nSectors per Q:\t64\n";
        assert_eq!(priority_stats(text), Ok((99, 0)));
        assert!(priority_stats("Unused: many\n").is_err());
    }
}
