//! `btrfs`: space allocation, commit statistics and member devices of each mounted Btrfs
//! filesystem, from `/sys/fs/btrfs/<uuid>/`.
//!
//! node_exporter also asks each mounted filesystem for its devices' used bytes and error
//! counters with Btrfs ioctls and, where that works, labels devices with their Btrfs UUID.
//! This reads sysfs only: `node_btrfs_device_size_bytes` carries the `device` label alone,
//! as upstream reports it when the ioctls are not available.

use std::io;
use std::path::Path;
use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Btrfs {
        root: settings.paths.sys("fs/btrfs"),
    })
}

struct Btrfs {
    /// `/sys/fs/btrfs`: a directory per filesystem, named by its UUID.
    root: PathBuf,
}

/// The sysfs sector size that device sizes are counted in.
const SECTOR_BYTES: u64 = 512;

/// The block group types under `allocation/`.
const BLOCK_GROUP_TYPES: [&str; 3] = ["data", "metadata", "system"];

struct Families {
    info: FamilyId,
    global_rsv_size: FamilyId,
    commits: FamilyId,
    last_commit: FamilyId,
    max_commit: FamilyId,
    commit_seconds: FamilyId,
    reserved: FamilyId,
    used: FamilyId,
    size: FamilyId,
    ratio: FamilyId,
    device_size: FamilyId,
}

impl Families {
    fn declare(out: &mut MetricSet) -> Self {
        Self {
            info: out.gauge("node_btrfs_info", "Filesystem information"),
            global_rsv_size: out.gauge(
                "node_btrfs_global_rsv_size_bytes",
                "Size of global reserve.",
            ),
            commits: out.counter(
                "node_btrfs_commits_total",
                "The total number of commits that have occurred.",
            ),
            last_commit: out.gauge(
                "node_btrfs_last_commit_seconds",
                "Duration of the most recent commit, in seconds.",
            ),
            max_commit: out.gauge(
                "node_btrfs_max_commit_seconds",
                "Duration of the slowest commit, in seconds.",
            ),
            commit_seconds: out.counter(
                "node_btrfs_commit_seconds_total",
                "Sum of the duration of all commits, in seconds.",
            ),
            reserved: out.gauge(
                "node_btrfs_reserved_bytes",
                "Amount of space reserved for a data type",
            ),
            used: out.gauge(
                "node_btrfs_used_bytes",
                "Amount of used space by a layout/data type",
            ),
            size: out.gauge(
                "node_btrfs_size_bytes",
                "Amount of space allocated for a layout/data type",
            ),
            ratio: out.gauge(
                "node_btrfs_allocation_ratio",
                "Data allocation ratio for a layout/data type",
            ),
            device_size: out.gauge(
                "node_btrfs_device_size_bytes",
                "Size of a device that is part of the filesystem.",
            ),
        }
    }
}

impl Collector for Btrfs {
    fn name(&self) -> &str {
        "btrfs"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // Without the btrfs module loaded there is nothing to report, which is not an error.
        let Ok(filesystems) = read::dir_entries(&self.root, |name| name.contains('-')) else {
            return Ok(());
        };
        if filesystems.is_empty() {
            return Ok(());
        }
        let families = Families::declare(out);
        let mut reported = Vec::new();
        for (name, dir) in &filesystems {
            collect_filesystem(name, dir, &families, &mut reported, out)?;
        }
        Ok(())
    }
}

fn collect_filesystem(
    name: &str,
    dir: &Path,
    families: &Families,
    reported: &mut Vec<String>,
    out: &mut MetricSet,
) -> Result<(), CollectError> {
    let devices = read::dir_entries(&dir.join("devices"), |_| true)?;
    let uuid = text(&dir.join("metadata_uuid"))?;
    let uuid = if uuid.is_empty() { name } else { &uuid };
    // Filesystems made from one another (`btrfstune -m`) may share a metadata UUID: the
    // first one found is reported, the others would repeat its series.
    if reported.iter().any(|r| r == uuid) {
        tracing::debug!(
            uuid,
            "Skipping a second btrfs filesystem with the same UUID"
        );
        return Ok(());
    }
    reported.push(uuid.to_owned());
    let label = text(&dir.join("label"))?;
    let labels = [("uuid", uuid)];

    out.sample(families.info, &[("uuid", uuid), ("label", &label)], 1.0);
    let allocation = dir.join("allocation");
    out.sample(
        families.global_rsv_size,
        &labels,
        number(&allocation.join("global_rsv_size"))? as f64,
    );

    let path = dir.join("commit_stats");
    let commits = match optional(&path)? {
        Some(text) => commit_stats(&text).map_err(|e| read::malformed(&path, e))?,
        // Kernels before 6.0 have no commit statistics.
        None => CommitStats::default(),
    };
    out.sample(families.commits, &labels, commits.commits as f64);
    out.sample(
        families.last_commit,
        &labels,
        commits.last_commit_ms as f64 / 1000.0,
    );
    out.sample(
        families.max_commit,
        &labels,
        commits.max_commit_ms as f64 / 1000.0,
    );
    out.sample(
        families.commit_seconds,
        &labels,
        commits.total_commit_ms as f64 / 1000.0,
    );

    for block_group_type in BLOCK_GROUP_TYPES {
        let group = allocation.join(block_group_type);
        out.sample(
            families.reserved,
            &[("uuid", uuid), ("block_group_type", block_group_type)],
            number(&group.join("bytes_reserved"))? as f64,
        );
        // Each directory below the group is a layout (`single`, `raid1`, …).
        for (mode, layout) in read::dir_entries(&group, |_| true)? {
            if !layout.is_dir() {
                continue;
            }
            let labels = [
                ("uuid", uuid),
                ("block_group_type", block_group_type),
                ("mode", mode.as_str()),
            ];
            out.sample(
                families.used,
                &labels,
                number(&layout.join("used_bytes"))? as f64,
            );
            out.sample(
                families.size,
                &labels,
                number(&layout.join("total_bytes"))? as f64,
            );
            out.sample(
                families.ratio,
                &labels,
                allocation_ratio(&mode, devices.len()),
            );
        }
    }

    for (device, path) in &devices {
        let sectors = number(&path.join("size"))?;
        out.sample(
            families.device_size,
            &[("uuid", uuid), ("device", device)],
            sectors.wrapping_mul(SECTOR_BYTES) as f64,
        );
    }
    Ok(())
}

/// How many bytes of disk a byte of data takes in a layout, given the filesystem's number
/// of devices (RAID5 and RAID6 spread one and two parity stripes over all of them).
fn allocation_ratio(mode: &str, devices: usize) -> f64 {
    let devices = devices as f64;
    match mode {
        "single" | "raid0" => 1.0,
        "dup" | "raid1" | "raid10" => 2.0,
        "raid1c3" => 3.0,
        "raid1c4" => 4.0,
        "raid5" => devices / (devices - 1.0),
        "raid6" => devices / (devices - 2.0),
        _ => 0.0,
    }
}

/// A file's text, `None` if it does not exist; other failures fail the scrape.
fn optional(path: &Path) -> Result<Option<read::Text>, CollectError> {
    match read::read_attribute(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(read::failed(path, error)),
    }
}

/// A file's text without surrounding white space; empty if the file does not exist.
fn text(path: &Path) -> Result<String, CollectError> {
    Ok(optional(path)?
        .map(|text| text.trim().to_owned())
        .unwrap_or_default())
}

/// A file's number; 0 if the file is missing or holds no number, as upstream has it
/// (older kernels lack some of these files).
fn number(path: &Path) -> Result<u64, CollectError> {
    Ok(optional(path)?
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0))
}

/// The four values of `commit_stats`.
#[derive(Debug, Default, PartialEq)]
struct CommitStats {
    commits: u64,
    last_commit_ms: u64,
    max_commit_ms: u64,
    total_commit_ms: u64,
}

/// Reads `commit_stats`: `name value` lines, each of exactly two words.
fn commit_stats(text: &str) -> Result<CommitStats, String> {
    let mut stats = CommitStats::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let [name, value] = words[..] else {
            return Err(format!("expected a name and a value in line {line:?}"));
        };
        let value: u64 = value
            .parse()
            .map_err(|_| format!("bad number in line {line:?}"))?;
        match name {
            "commits" => stats.commits = value,
            "last_commit_ms" => stats.last_commit_ms = value,
            "max_commit_ms" => stats.max_commit_ms = value,
            "total_commit_ms" => stats.total_commit_ms = value,
            _ => {}
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_stats_of_the_fixture() {
        let text =
            "commits 258051\nlast_commit_ms 1000\nmax_commit_ms 51462\ntotal_commit_ms 47836090";
        assert_eq!(
            commit_stats(text),
            Ok(CommitStats {
                commits: 258_051,
                last_commit_ms: 1000,
                max_commit_ms: 51462,
                total_commit_ms: 47_836_090,
            })
        );
        assert!(commit_stats("commits\n").is_err());
        assert!(commit_stats("commits many\n").is_err());
        assert_eq!(47_836_090_f64 / 1000.0, 47836.09);
    }

    #[test]
    fn ratios_follow_the_layout() {
        assert_eq!(allocation_ratio("raid1", 2), 2.0);
        assert_eq!(allocation_ratio("raid5", 4), 4.0 / 3.0);
        assert_eq!(allocation_ratio("raid6", 4), 2.0);
        assert_eq!(allocation_ratio("weird", 4), 0.0);
    }
}
