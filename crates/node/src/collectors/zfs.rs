//! `zfs`: ZFS on Linux kstats from `/proc/spl/kstat/zfs/` (ARC, ZIL, prefetch, …) and
//! the state of each pool.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Zfs {
        root: settings.paths.proc("spl/kstat/zfs"),
    })
}

struct Zfs {
    /// `/proc/spl/kstat/zfs`.
    root: PathBuf,
}

/// `(kstat file, metric prefix)`.
const KSTATS: [(&str, &str); 11] = [
    ("abdstats", "abdstats"),
    ("arcstats", "arc"),
    ("dbufstats", "dbufstats"),
    ("dmu_tx", "dmu_tx"),
    ("dnodestats", "dnodestats"),
    ("fm", "fm"),
    ("vdev_cache_stats", "vdev_cache"),
    ("vdev_mirror_stats", "vdev_mirror"),
    ("xuio_stats", "xuio"),
    ("zfetchstats", "zfetch"),
    ("zil", "zil"),
];

/// Pool states, as `node_zfs_zpool_state{state}` enumerates them.
const POOL_STATES: [&str; 7] = [
    "degraded",
    "faulted",
    "offline",
    "online",
    "removed",
    "unavail",
    "suspended",
];

/// `(name, value)` of a kstat file: two header lines, then `name type data`.
fn parse_kstat(text: &str) -> Vec<(&str, f64)> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let mut words = line.split_ascii_whitespace();
            let name = words.next()?;
            let value = words.nth(1)?.parse().ok()?;
            Some((name, value))
        })
        .collect()
}

impl Collector for Zfs {
    fn name(&self) -> &str {
        "zfs"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let root = &self.root;
        let entries = read::dir_entries(root, |_| true)?;
        for (file, prefix) in KSTATS {
            let Some(text) = read::optional_trimmed(&root.join(file)) else {
                continue;
            };
            for (name, value) in parse_kstat(&text) {
                {
                    let family = out.family_fmt(
                        format_args!("node_zfs_{prefix}_{name}"),
                        format_args!("kstat.zfs.misc.{file}.{name}"),
                        MetricType::Untyped,
                    );
                    out.sample(family, &[], value);
                }
            }
        }
        let state = out.gauge("node_zfs_zpool_state", "kstat.zfs.misc.state");
        for (pool, dir) in entries.iter().filter(|(_, dir)| dir.is_dir()) {
            let Some(current) = read::optional_trimmed(&dir.join("state")) else {
                continue;
            };
            let current = current.to_lowercase();
            for name in POOL_STATES {
                out.sample(
                    state,
                    &[("zpool", pool), ("state", name)],
                    if current == name { 1.0 } else { 0.0 },
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kstat_rows() {
        let text = "6 1 0x01 91 4368 5266997922 97951858082072\nname                            type data\nhits                            4    8772612\nmisses                          4    604635\n";
        assert_eq!(
            super::parse_kstat(text),
            [("hits", 8772612.0), ("misses", 604635.0)]
        );
    }
}
