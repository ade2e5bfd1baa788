//! `xfs`: per-filesystem XFS statistics from `/sys/fs/xfs/<device>/stats/stats`.

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::paths::Paths;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Xfs {
        paths: settings.paths.clone(),
    })
}

struct Xfs {
    paths: Paths,
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

/// `(tag, numbers)` per line of the stats file.
fn parse(text: &str) -> Vec<(&str, Vec<f64>)> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_ascii_whitespace();
            let tag = words.next()?;
            Some((tag, words.map(|w| w.parse().unwrap_or(0.0)).collect()))
        })
        .collect()
}

impl Collector for Xfs {
    fn name(&self) -> &str {
        "xfs"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // Only mounted XFS filesystems have a directory here; `stats` itself is global.
        // Without the xfs module loaded there is nothing to report, which is not an error.
        let devices = read::dir_entries(&self.paths.sys("fs/xfs"), |name| name != "stats")
            .unwrap_or_default();
        let mut families: Vec<FamilyId> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for (tag, metrics) in LINES {
            for metric in *metrics {
                names.push(metric);
                families.push(out.counter(
                    &format!("node_xfs_{metric}"),
                    &format!(
                        "XFS statistic {tag}: {}.",
                        metric.trim_end_matches("_total").replace('_', " ")
                    ),
                ));
            }
        }
        for (device, dir) in devices {
            let Some(text) = read::optional_trimmed(&dir.join("stats/stats")) else {
                continue;
            };
            let stats = parse(&text);
            let mut index = 0;
            for (tag, metrics) in LINES {
                let values = stats
                    .iter()
                    .find(|(t, _)| t == tag)
                    .map(|(_, v)| v.as_slice())
                    .unwrap_or_default();
                for (column, _) in metrics.iter().enumerate() {
                    if let Some(value) = values.get(column) {
                        out.sample(families[index], &[("device", &device)], *value);
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
        let parsed = super::parse("extent_alloc 92447 97589 92448 93751\nrw 28 29\n");
        assert_eq!(
            parsed[0],
            ("extent_alloc", vec![92447.0, 97589.0, 92448.0, 93751.0])
        );
        assert_eq!(parsed[1].1, [28.0, 29.0]);
    }
}
