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

/// `(line tag, (metric, HELP) per column)`: which column of which line becomes which counter.
/// Columns past the last one named here (newer kernels add some) are not reported.
const LINES: &[(&str, &[(&str, &str)])] = &[
    (
        "extent_alloc",
        &[
            (
                "extent_allocation_extents_allocated_total",
                "Number of extents allocated for a filesystem.",
            ),
            (
                "extent_allocation_blocks_allocated_total",
                "Number of blocks allocated for a filesystem.",
            ),
            (
                "extent_allocation_extents_freed_total",
                "Number of extents freed for a filesystem.",
            ),
            (
                "extent_allocation_blocks_freed_total",
                "Number of blocks freed for a filesystem.",
            ),
        ],
    ),
    (
        "abt",
        &[
            (
                "allocation_btree_lookups_total",
                "Number of allocation B-tree lookups for a filesystem.",
            ),
            (
                "allocation_btree_compares_total",
                "Number of allocation B-tree compares for a filesystem.",
            ),
            (
                "allocation_btree_records_inserted_total",
                "Number of allocation B-tree records inserted for a filesystem.",
            ),
            (
                "allocation_btree_records_deleted_total",
                "Number of allocation B-tree records deleted for a filesystem.",
            ),
        ],
    ),
    (
        "blk_map",
        &[
            (
                "block_mapping_reads_total",
                "Number of block map for read operations for a filesystem.",
            ),
            (
                "block_mapping_writes_total",
                "Number of block map for write operations for a filesystem.",
            ),
            (
                "block_mapping_unmaps_total",
                "Number of block unmaps (deletes) for a filesystem.",
            ),
            (
                "block_mapping_extent_list_insertions_total",
                "Number of extent list insertions for a filesystem.",
            ),
            (
                "block_mapping_extent_list_deletions_total",
                "Number of extent list deletions for a filesystem.",
            ),
            (
                "block_mapping_extent_list_lookups_total",
                "Number of extent list lookups for a filesystem.",
            ),
            (
                "block_mapping_extent_list_compares_total",
                "Number of extent list compares for a filesystem.",
            ),
        ],
    ),
    (
        "bmbt",
        &[
            (
                "block_map_btree_lookups_total",
                "Number of block map B-tree lookups for a filesystem.",
            ),
            (
                "block_map_btree_compares_total",
                "Number of block map B-tree compares for a filesystem.",
            ),
            (
                "block_map_btree_records_inserted_total",
                "Number of block map B-tree records inserted for a filesystem.",
            ),
            (
                "block_map_btree_records_deleted_total",
                "Number of block map B-tree records deleted for a filesystem.",
            ),
        ],
    ),
    (
        "dir",
        &[
            (
                "directory_operation_lookup_total",
                "Number of file name directory lookups which miss the operating systems directory name lookup cache.",
            ),
            (
                "directory_operation_create_total",
                "Number of times a new directory entry was created for a filesystem.",
            ),
            (
                "directory_operation_remove_total",
                "Number of times an existing directory entry was created for a filesystem.",
            ),
            (
                "directory_operation_getdents_total",
                "Number of times the directory getdents operation was performed for a filesystem.",
            ),
        ],
    ),
    (
        "ig",
        &[
            (
                "inode_operation_attempts_total",
                "Number of times the OS looked for an XFS inode in the inode cache.",
            ),
            (
                "inode_operation_found_total",
                "Number of times the OS looked for and found an XFS inode in the inode cache.",
            ),
            (
                "inode_operation_recycled_total",
                "Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled.",
            ),
            (
                "inode_operation_missed_total",
                "Number of times the OS looked for an XFS inode in the cache, but did not find it.",
            ),
            (
                "inode_operation_duplicates_total",
                "Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added by another process.",
            ),
            (
                "inode_operation_reclaims_total",
                "Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose.",
            ),
            (
                "inode_operation_attribute_changes_total",
                "Number of times the OS explicitly changed the attributes of an XFS inode.",
            ),
        ],
    ),
    (
        "rw",
        // The kernel writes this pair as `rw <writes> <reads>`.
        &[
            (
                "write_calls_total",
                "Number of write(2) system calls made to files in a filesystem.",
            ),
            (
                "read_calls_total",
                "Number of read(2) system calls made to files in a filesystem.",
            ),
        ],
    ),
    (
        "vnodes",
        &[
            (
                "vnode_active_total",
                "Number of vnodes not on free lists for a filesystem.",
            ),
            (
                "vnode_allocate_total",
                "Number of times vn_alloc called for a filesystem.",
            ),
            (
                "vnode_get_total",
                "Number of times vn_get called for a filesystem.",
            ),
            (
                "vnode_hold_total",
                "Number of times vn_hold called for a filesystem.",
            ),
            (
                "vnode_release_total",
                "Number of times vn_rele called for a filesystem.",
            ),
            (
                "vnode_reclaim_total",
                "Number of times vn_reclaim called for a filesystem.",
            ),
            (
                "vnode_remove_total",
                "Number of times vn_remove called for a filesystem.",
            ),
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

/// Every statistic of one stats file, in [`LINES`] order. A line that is missing or short
/// reads as zeros: node_exporter reports every statistic of every filesystem.
fn statistics(text: &str) -> [f64; STATISTICS] {
    let mut values = [0.0; STATISTICS];
    let mut index = 0;
    for (tag, metrics) in LINES {
        let mut columns = line(text, tag);
        for _ in *metrics {
            values[index] = columns.next().unwrap_or(0.0);
            index += 1;
        }
    }
    values
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
        for (_, metrics) in LINES {
            for (metric, help) in *metrics {
                families[index] = Some(out.family_fmt(
                    format_args!("node_xfs_{metric}"),
                    format_args!("{help}"),
                    MetricType::Counter,
                ));
                index += 1;
            }
        }
        for device in devices.names() {
            let Some(text) = devices.dir().optional_trimmed_at(&[device, "stats/stats"]) else {
                continue;
            };
            for (family, value) in families.iter().zip(statistics(&text)) {
                if let Some(family) = *family {
                    out.sample(family, &[("device", device)], value);
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

    /// The value of the statistic reported as `node_xfs_<metric>`.
    fn statistic(text: &str, metric: &str) -> f64 {
        let names = super::LINES.iter().flat_map(|(_, metrics)| metrics.iter());
        let index = names.clone().position(|(name, _)| *name == metric).unwrap();
        super::statistics(text)[index]
    }

    #[test]
    fn columns_of_the_kernels_lines() {
        // Lines of the vendored node_exporter fixture `sys/fs/xfs/sda1/stats/stats`.
        let text = "rw 28 0\nattr 0 0 0 0\nvnodes 4 0 0 0 1 1 1 0\n";
        assert_eq!(statistic(text, "write_calls_total"), 28.0);
        assert_eq!(statistic(text, "read_calls_total"), 0.0);
        assert_eq!(statistic(text, "vnode_active_total"), 4.0);
        assert_eq!(statistic(text, "vnode_release_total"), 1.0);
        assert_eq!(statistic(text, "vnode_reclaim_total"), 1.0);
        assert_eq!(statistic(text, "vnode_remove_total"), 1.0);
        // No `dir` line: its statistics read as zero.
        assert_eq!(statistic(text, "directory_operation_lookup_total"), 0.0);
    }
}
