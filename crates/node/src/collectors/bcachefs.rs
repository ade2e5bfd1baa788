//! `bcachefs`: statistics of mounted bcachefs filesystems from
//! `/sys/fs/bcachefs/<uuid>/`: btree cache and write statistics, compression, error and
//! event counters, and per member device (`dev-N/`) geometry, IO and IO errors.
//!
//! Every file under `counters/` becomes its own counter family
//! (`node_bcachefs_<name>_total`), as node_exporter names them.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Bcachefs {
        root: settings.paths.sys("fs/bcachefs"),
    })
}

struct Bcachefs {
    /// `/sys/fs/bcachefs`: a directory per mounted filesystem, named by its UUID.
    root: PathBuf,
}

/// The families every filesystem has; the `counters/` ones are declared as they are met.
struct Families {
    info: FamilyId,
    btree_cache_size: FamilyId,
    compressed: FamilyId,
    uncompressed: FamilyId,
    errors: FamilyId,
    btree_writes: FamilyId,
    btree_write_size: FamilyId,
    device_info: FamilyId,
    bucket_size: FamilyId,
    buckets: FamilyId,
    durability: FamilyId,
    io_done: FamilyId,
    io_errors: FamilyId,
    /// `counters/` families by metric name, so two filesystems share one family.
    counters: HashMap<String, FamilyId>,
    /// The metric names of `counters/` reported for the filesystem at hand: two files whose
    /// names sanitize alike would repeat a series, and the second is left out.
    counters_reported: Vec<String>,
}

impl Families {
    fn declare(out: &mut MetricSet) -> Self {
        Self {
            info: out.gauge("node_bcachefs_info", "Filesystem information."),
            btree_cache_size: out.gauge(
                "node_bcachefs_btree_cache_size_bytes",
                "Btree cache memory usage in bytes.",
            ),
            compressed: out.gauge(
                "node_bcachefs_compression_compressed_bytes",
                "Compressed size by algorithm.",
            ),
            uncompressed: out.gauge(
                "node_bcachefs_compression_uncompressed_bytes",
                "Uncompressed size by algorithm.",
            ),
            errors: out.counter("node_bcachefs_errors_total", "Error count by error type."),
            btree_writes: out.counter(
                "node_bcachefs_btree_writes_total",
                "Number of btree writes by type.",
            ),
            btree_write_size: out.gauge(
                "node_bcachefs_btree_write_average_size_bytes",
                "Average btree write size by type.",
            ),
            device_info: out.gauge("node_bcachefs_device_info", "Device information."),
            bucket_size: out.gauge(
                "node_bcachefs_device_bucket_size_bytes",
                "Bucket size in bytes.",
            ),
            buckets: out.gauge("node_bcachefs_device_buckets", "Total number of buckets."),
            durability: out.gauge(
                "node_bcachefs_device_durability",
                "Device durability setting.",
            ),
            io_done: out.counter(
                "node_bcachefs_device_io_done_bytes_total",
                "IO bytes by operation type and data type.",
            ),
            io_errors: out.counter(
                "node_bcachefs_device_io_errors_total",
                "IO errors by error type.",
            ),
            counters: HashMap::new(),
            counters_reported: Vec::new(),
        }
    }

    /// The family of the `counters/` file `name`, or `None` if the filesystem at hand has
    /// reported one of that metric name already.
    fn counter(&mut self, out: &mut MetricSet, name: &str) -> Option<FamilyId> {
        let metric = MetricName(name).to_string();
        if self.counters_reported.contains(&metric) {
            return None;
        }
        self.counters_reported.push(metric.clone());
        if let Some(family) = self.counters.get(&metric) {
            return Some(*family);
        }
        let family = out.family_fmt(
            format_args!("node_bcachefs_{metric}_total"),
            format_args!("Bcachefs counter {name} since filesystem creation."),
            MetricType::Counter,
        );
        self.counters.insert(metric, family);
        Some(family)
    }
}

/// A name made fit for a metric name as node_exporter's `SanitizeMetricName` does: each
/// run of other characters than `[0-9A-Za-z_]`, with the underscores around it, becomes
/// one `_`.
struct MetricName<'a>(&'a str);

impl std::fmt::Display for MetricName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut rest = self.0;
        while !rest.is_empty() {
            let Some(bad) = rest.find(|c: char| !valid(c)) else {
                return f.write_str(rest);
            };
            // Underscores just before the run belong to it.
            let kept = rest[..bad].trim_end_matches('_');
            f.write_str(kept)?;
            f.write_str("_")?;
            let after = rest[bad..].trim_start_matches(|c: char| !valid(c));
            rest = after.trim_start_matches('_');
        }
        Ok(())
    }
}

impl Collector for Bcachefs {
    fn name(&self) -> &str {
        "bcachefs"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let filesystems = read::dir_entries(&self.root, |_| true)?;
        let filesystems: Vec<_> = filesystems
            .into_iter()
            .filter(|(_, path)| path.is_dir())
            .collect();
        if filesystems.is_empty() {
            return Err(CollectError::NoData);
        }
        let mut families = Families::declare(out);
        for (uuid, dir) in &filesystems {
            collect_filesystem(uuid, dir, &mut families, out)?;
        }
        Ok(())
    }
}

fn collect_filesystem(
    uuid: &str,
    dir: &Path,
    families: &mut Families,
    out: &mut MetricSet,
) -> Result<(), CollectError> {
    let labels = [("uuid", uuid)];
    families.counters_reported.clear();
    out.sample(families.info, &labels, 1.0);

    let cache_size = match optional_file(&dir.join("btree_cache_size"))? {
        Some(text) if !text.trim().is_empty() => human_bytes(&text)
            .ok_or_else(|| read::malformed(&dir.join("btree_cache_size"), "not a size"))?,
        _ => 0,
    };
    out.sample(families.btree_cache_size, &labels, cache_size as f64);

    let path = dir.join("compression_stats");
    if let Some(text) = optional_file(&path)? {
        for (algorithm, compressed, uncompressed) in
            compression_stats(&text).map_err(|e| read::malformed(&path, e))?
        {
            let labels = [("uuid", uuid), ("algorithm", algorithm)];
            out.sample(families.compressed, &labels, compressed as f64);
            out.sample(families.uncompressed, &labels, uncompressed as f64);
        }
    }

    let path = dir.join("errors");
    if let Some(text) = optional_file(&path)? {
        for (error_type, count) in errors(&text).map_err(|e| read::malformed(&path, e))? {
            out.sample(
                families.errors,
                &[("uuid", uuid), ("error_type", error_type)],
                count as f64,
            );
        }
    }

    let counters = dir.join("counters");
    if let Ok(entries) = read::dir_entries(&counters, |_| true) {
        for (name, path) in entries {
            if path.is_dir() {
                continue;
            }
            let text = read::file(&path)?;
            let value = since_creation(&text).ok_or_else(|| {
                read::malformed(
                    &path,
                    "no \"since filesystem creation\" or \"since mount\" line",
                )
            })?;
            match families.counter(out, &name) {
                Some(family) => out.sample(family, &labels, value as f64),
                None => {
                    tracing::debug!(path = %path.display(), "Skipping a counter whose metric name is taken")
                }
            }
        }
    }

    let path = dir.join("btree_write_stats");
    if let Some(text) = optional_file(&path)? {
        for (kind, count, size) in
            btree_write_stats(&text).map_err(|e| read::malformed(&path, e))?
        {
            let labels = [("uuid", uuid), ("type", kind)];
            out.sample(families.btree_writes, &labels, count as f64);
            out.sample(families.btree_write_size, &labels, size as f64);
        }
    }

    for (name, dev_dir) in read::dir_entries(dir, |name| name.starts_with("dev-"))? {
        if !dev_dir.is_dir() {
            continue;
        }
        collect_device(uuid, &name["dev-".len()..], &dev_dir, families, out)?;
    }
    Ok(())
}

fn collect_device(
    uuid: &str,
    device: &str,
    dir: &Path,
    families: &Families,
    out: &mut MetricSet,
) -> Result<(), CollectError> {
    let text = |file: &str| read::optional_trimmed(&dir.join(file)).unwrap_or_default();
    let (label, state) = (text("label"), text("state"));
    let state = state.trim();
    out.sample(
        families.device_info,
        &[
            ("uuid", uuid),
            ("device", device),
            ("label", label.trim()),
            ("state", state),
        ],
        1.0,
    );
    let labels = [("uuid", uuid), ("device", device)];
    let bucket_size = text("bucket_size");
    let bucket_size = match bucket_size.trim() {
        "" => 0,
        size => human_bytes(size)
            .ok_or_else(|| read::malformed(&dir.join("bucket_size"), "not a size"))?,
    };
    out.sample(families.bucket_size, &labels, bucket_size as f64);
    for (file, family) in [
        ("nbuckets", families.buckets),
        ("durability", families.durability),
    ] {
        let path = dir.join(file);
        let value = match optional_file(&path)? {
            Some(text) => text
                .trim()
                .parse::<u64>()
                .map_err(|e| read::malformed(&path, e))?,
            None => 0,
        };
        out.sample(family, &labels, value as f64);
    }

    let path = dir.join("io_done");
    if let Some(text) = optional_file(&path)? {
        for (operation, data_type, bytes) in
            io_done(&text).map_err(|e| read::malformed(&path, e))?
        {
            out.sample(
                families.io_done,
                &[
                    ("uuid", uuid),
                    ("device", device),
                    ("operation", operation),
                    ("data_type", data_type),
                ],
                bytes as f64,
            );
        }
    }

    let path = dir.join("io_errors");
    if let Some(text) = optional_file(&path)? {
        for (kind, count) in io_errors(&text).map_err(|e| read::malformed(&path, e))? {
            out.sample(
                families.io_errors,
                &[("uuid", uuid), ("device", device), ("type", kind)],
                count as f64,
            );
        }
    }
    Ok(())
}

/// A file's text, `None` if it does not exist (older kernels lack some); other failures
/// fail the scrape of this collector.
fn optional_file(path: &Path) -> Result<Option<read::Text>, CollectError> {
    match read::read_text(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(read::failed(path, error)),
    }
}

/// A size as bcachefs prints it: a decimal number with an optional power-of-1024 suffix
/// (`2.05G`, `512k`, `720`).
fn human_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (&last, rest) = text.as_bytes().split_last()?;
    let power = match last.to_ascii_lowercase() {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        b'e' => 6,
        _ => 0,
    };
    let number = if power == 0 {
        text
    } else {
        std::str::from_utf8(rest).ok()?
    };
    let value: f64 = number.trim().parse().ok()?;
    Some((value * 1024f64.powi(power)) as u64)
}

/// `(algorithm, compressed, uncompressed)` of each line of `compression_stats` after the
/// heading.
fn compression_stats(text: &str) -> Result<Vec<(&str, u64, u64)>, String> {
    let mut stats = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 3 {
            continue;
        }
        let size = |field: &str| human_bytes(field).ok_or_else(|| format!("bad size {field:?}"));
        // The average extent size is checked though not reported, as upstream does.
        if let Some(average) = fields.get(3) {
            size(average)?;
        }
        let algorithm = fields[0].trim_end_matches(':');
        upsert(&mut stats, algorithm, (size(fields[1])?, size(fields[2])?));
    }
    Ok(stats.into_iter().map(|(a, (c, u))| (a, c, u)).collect())
}

/// `(error type, count)` of each line of `errors` (`name count [time]`).
fn errors(text: &str) -> Result<Vec<(&str, u64)>, String> {
    let mut stats = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(name), Some(count)) = (fields.next(), fields.next()) else {
            continue;
        };
        let number = |field: &str| {
            field
                .parse::<u64>()
                .map_err(|_| format!("bad number in line {line:?}"))
        };
        let count = number(count)?;
        if let Some(time) = fields.next() {
            number(time)?;
        }
        upsert(&mut stats, name, count);
    }
    Ok(stats)
}

/// The `since filesystem creation:` value of a `counters/` file; 0 when the file has only
/// `since mount:`, `None` when it has neither (or a value is not a number).
fn since_creation(text: &str) -> Option<u64> {
    let mut creation = None;
    let mut mount = None;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("since mount:") {
            mount = Some(human_bytes(value)?);
        } else if let Some(value) = line.strip_prefix("since filesystem creation:") {
            creation = Some(human_bytes(value)?);
        }
    }
    match (creation, mount) {
        (Some(value), _) => Some(value),
        (None, Some(_)) => Some(0),
        (None, None) => None,
    }
}

/// `(type, writes, average size)` of each line of `btree_write_stats` after the heading.
fn btree_write_stats(text: &str) -> Result<Vec<(&str, u64, u64)>, String> {
    let mut stats = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 3 {
            continue;
        }
        let count = fields[1]
            .parse::<u64>()
            .map_err(|_| format!("bad count in line {line:?}"))?;
        let size = human_bytes(fields[2]).ok_or_else(|| format!("bad size in line {line:?}"))?;
        upsert(&mut stats, fields[0].trim_end_matches(':'), (count, size));
    }
    Ok(stats.into_iter().map(|(t, (c, s))| (t, c, s)).collect())
}

/// `(operation, data type, bytes)` from `io_done`: a `read:` and a `write:` section of
/// `type : bytes` lines.
fn io_done(text: &str) -> Result<Vec<(&str, &str, u64)>, String> {
    let mut stats: Vec<((&str, &str), u64)> = Vec::new();
    let mut operation = None;
    for line in text.lines() {
        let line = line.trim();
        match line {
            "" => continue,
            "read:" | "write:" => {
                operation = Some(line.trim_end_matches(':'));
                continue;
            }
            _ => {}
        }
        let Some(operation) = operation else {
            continue;
        };
        let Some((data_type, value)) = line.split_once(':') else {
            continue;
        };
        let value = value
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("bad number in line {line:?}"))?;
        upsert(&mut stats, (operation, data_type.trim()), value);
    }
    Ok(stats.into_iter().map(|((o, d), v)| (o, d, v)).collect())
}

/// `(error type, count)` of the "since filesystem creation" section of `io_errors`.
fn io_errors(text: &str) -> Result<Vec<(&str, u64)>, String> {
    let mut stats = Vec::new();
    let mut in_section = false;
    for line in text.lines() {
        if line.starts_with("IO errors since filesystem creation") {
            in_section = true;
            continue;
        }
        if line.starts_with("IO errors since ") {
            break;
        }
        if !in_section {
            continue;
        }
        let Some((kind, value)) = line.trim().split_once(':') else {
            continue;
        };
        let value = value
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("bad number in line {line:?}"))?;
        upsert(&mut stats, kind.trim(), value);
    }
    Ok(stats)
}

/// Sets `key`'s value, replacing an earlier one: a name listed twice is reported once,
/// with its last value, as a map keyed by name gives.
fn upsert<K: PartialEq, V>(list: &mut Vec<(K, V)>, key: K, value: V) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => list.push((key, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(human_bytes("2.05G"), Some(2_201_170_739));
        assert_eq!(human_bytes("512k"), Some(524_288));
        assert_eq!(human_bytes("720"), Some(720));
        assert_eq!(human_bytes(" 475G"), Some(510_027_366_400));
        assert_eq!(human_bytes("lots"), None);
        assert_eq!(human_bytes(""), None);
    }

    #[test]
    fn names_are_sanitized_as_upstream_does() {
        let name = |n| MetricName(n).to_string();
        assert_eq!(name("copygc_wait_obsolete"), "copygc_wait_obsolete");
        assert_eq!(name("a-b"), "a_b");
        assert_eq!(name("a_-_b"), "a_b");
        assert_eq!(name("a.."), "a_");
        assert_eq!(name("-a"), "_a");
    }

    #[test]
    fn compression_and_btree_writes_of_the_fixture() {
        let text = "typetype          compressed    uncompressed     average extent size\n\
                    lz4                    48.9G           71.2G                   62.5k\n\
                    gzip                       0               0                       0\n";
        assert_eq!(
            compression_stats(text).unwrap(),
            [("lz4", 52_505_975_193, 76_450_417_868), ("gzip", 0, 0)]
        );
        let text = "                   nr        size\ninitial:           3298401   100k\n";
        assert_eq!(
            btree_write_stats(text).unwrap(),
            [("initial", 3_298_401, 102_400)]
        );
        assert!(btree_write_stats("h\nx: many 1k\n").is_err());
    }

    #[test]
    fn errors_with_and_without_a_time() {
        let text = "bset_bad_csum   2   1767112063\nextent_io_opts_not_set  11299659571772285102\n";
        assert_eq!(
            errors(text).unwrap(),
            [
                ("bset_bad_csum", 2),
                ("extent_io_opts_not_set", 11_299_659_571_772_285_102)
            ]
        );
        assert!(errors("x y\n").is_err());
    }

    #[test]
    fn counters_count_since_creation() {
        assert_eq!(
            since_creation("since mount:  7\nsince filesystem creation:     424790\n"),
            Some(424_790)
        );
        assert_eq!(since_creation("since mount: 7\n"), Some(0));
        assert_eq!(since_creation("other\n"), None);
    }

    #[test]
    fn device_io_of_the_fixture() {
        let text =
            "read:\nsb          :       86016\nuser        :102313054208\nwrite:\nsb : 645120\n";
        assert_eq!(
            io_done(text).unwrap(),
            [
                ("read", "sb", 86016),
                ("read", "user", 102_313_054_208),
                ("write", "sb", 645_120)
            ]
        );
        let text = "IO errors since filesystem creation\n  read:    197416\n  checksum:0\n\
                    IO errors since 8 y ago\n  read:    1\n";
        assert_eq!(
            io_errors(text).unwrap(),
            [("read", 197_416), ("checksum", 0)]
        );
    }
}
