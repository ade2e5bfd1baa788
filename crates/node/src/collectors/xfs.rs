//! `xfs`: per-filesystem XFS statistics from `/sys/fs/xfs/<device>/stats/stats`.

use kiln_registry::config::ConfigError;
use std::path::PathBuf;

use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Xfs {
        root: settings.paths.sys("fs/xfs"),
    })
}

struct Xfs {
    /// `/sys/fs/xfs`: a directory per mounted XFS filesystem.
    root: PathBuf,
}

/// `(line tag, metric per column)`: which column of which line becomes which counter.
const LINES: &[(&str, &[&str])] = &[
    (
        "extent_alloc",
        &[
            "extent_allocation_extents_allocated_total",
            "extent_allocation_blocks_allocated_total",
            "extent_allocation_extents_freed_total",
            "extent_allocation_blocks_freed_total",
        ],
    ),
    (
        "abt",
        &[
            "allocation_btree_lookups_total",
            "allocation_btree_compares_total",
            "allocation_btree_records_inserted_total",
            "allocation_btree_records_deleted_total",
        ],
    ),
    (
        "blk_map",
        &[
            "block_mapping_reads_total",
            "block_mapping_writes_total",
            "block_mapping_unmaps_total",
            "block_mapping_extent_list_insertions_total",
            "block_mapping_extent_list_deletions_total",
            "block_mapping_extent_list_lookups_total",
            "block_mapping_extent_list_compares_total",
        ],
    ),
    (
        "bmbt",
        &[
            "block_map_btree_lookups_total",
            "block_map_btree_compares_total",
            "block_map_btree_records_inserted_total",
            "block_map_btree_records_deleted_total",
        ],
    ),
    (
        "dir",
        &[
            "directory_operation_lookup_total",
            "directory_operation_create_total",
            "directory_operation_remove_total",
            "directory_operation_getdents_total",
        ],
    ),
    (
        "ig",
        &[
            "inode_operation_attempts_total",
            "inode_operation_found_total",
            "inode_operation_recycled_total",
            "inode_operation_missed_total",
            "inode_operation_duplicates_total",
            "inode_operation_reclaims_total",
            "inode_operation_attribute_changes_total",
        ],
    ),
    ("rw", &["read_calls_total", "write_calls_total"]),
    (
        "attr",
        &[
            "vnode_active_total",
            "vnode_allocate_total",
            "vnode_get_total",
            "vnode_hold_total",
            "vnode_release_total",
            "vnode_reclaim_total",
            "vnode_remove_total",
        ],
    ),
];

/// How many statistics [`LINES`] names.
const STATISTICS: usize = {
    let mut count = 0;
    let mut line = 0;
    while line < LINES.len() {
        count += LINES[line].1.len();
        line += 1;
    }
    count
};

/// The numbers of the line tagged `tag` in the stats file, in column order.
fn line<'a>(text: &'a str, tag: &str) -> impl Iterator<Item = f64> + 'a {
    text.lines()
        .find_map(|line| {
            let mut words = line.split_ascii_whitespace();
            (words.next()? == tag).then_some(words)
        })
        .into_iter()
        .flatten()
        .map(|word| word.parse().unwrap_or(0.0))
}

/// The HELP of a statistic: `XFS statistic rw: read calls.` for `read_calls_total`.
struct Help<'a> {
    tag: &'a str,
    metric: &'a str,
}

impl std::fmt::Display for Help<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "XFS statistic {}: ", self.tag)?;
        let words = self.metric.trim_end_matches("_total");
        for (index, word) in words.split('_').enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            f.write_str(word)?;
        }
        f.write_str(".")
    }
}

impl Collector for Xfs {
    fn name(&self) -> &str {
        "xfs"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // Only mounted XFS filesystems have a directory here; `stats` itself is global.
        // Without the xfs module loaded there is nothing to report, which is not an error.
        let Ok(devices) = read::Entries::list(&self.root, |name| name != "stats") else {
            return Ok(());
        };
        if devices.len() == 0 {
            // Families without samples are left out of the output: declare none.
            return Ok(());
        }
        let mut families = [None; STATISTICS];
        let mut index = 0;
        for (tag, metrics) in LINES {
            for metric in *metrics {
                families[index] = Some(out.family_fmt(
                    format_args!("node_xfs_{metric}"),
                    format_args!("{}", Help { tag, metric }),
                    MetricType::Counter,
                ));
                index += 1;
            }
        }
        for device in devices.names() {
            let Some(text) = devices.dir().optional_trimmed_at(&[device, "stats/stats"]) else {
                continue;
            };
            let mut index = 0;
            for (tag, metrics) in LINES {
                let mut values = line(&text, tag);
                for _ in *metrics {
                    if let (Some(value), Some(family)) = (values.next(), families[index]) {
                        out.sample(family, &[("device", device)], value);
                    }
                    index += 1;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tagged_lines() {
        let text = "extent_alloc 92447 97589 92448 93751\nrw 28 29\n";
        let values = |tag| super::line(text, tag).collect::<Vec<f64>>();
        assert_eq!(values("extent_alloc"), [92447.0, 97589.0, 92448.0, 93751.0]);
        assert_eq!(values("rw"), [28.0, 29.0]);
        assert!(values("abt").is_empty());
    }

    #[test]
    fn help_spells_out_the_metric() {
        let help = super::Help {
            tag: "rw",
            metric: "read_calls_total",
        };
        assert_eq!(help.to_string(), "XFS statistic rw: read calls.");
    }
}
