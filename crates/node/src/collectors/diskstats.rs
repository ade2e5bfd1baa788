//! `diskstats`: block device I/O counters from `/proc/diskstats`, and `node_disk_info`
//! with the model, serial and path udev recorded for each device.

use std::collections::HashMap;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::NameFilter;
use crate::flags::DISKSTATS_DEVICE_EXCLUDE;
use crate::paths::Paths;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options;
    boxed(Diskstats {
        paths: settings.paths.clone(),
        devices: NameFilter::with_default_exclude(
            options.diskstats_include.as_deref(),
            options.diskstats_exclude.as_deref(),
            DISKSTATS_DEVICE_EXCLUDE,
            (
                "collector.diskstats.device-include",
                "collector.diskstats.device-exclude",
            ),
        )?,
    })
}

struct Diskstats {
    paths: Paths,
    devices: NameFilter,
}

/// Bytes per sector in `/proc/diskstats`, whatever the device's real sector size.
const SECTOR_BYTES: f64 = 512.0;

/// How a `/proc/diskstats` column becomes a metric: its index among the statistics
/// (after major, minor and name), the name, HELP, and the factor to base units.
struct Column {
    index: usize,
    name: &'static str,
    help: &'static str,
    scale: f64,
    counter: bool,
}

const fn column(
    index: usize,
    name: &'static str,
    help: &'static str,
    scale: f64,
    counter: bool,
) -> Column {
    Column {
        index,
        name,
        help,
        scale,
        counter,
    }
}

const COLUMNS: [Column; 17] = [
    column(
        0,
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        1.0,
        true,
    ),
    column(
        1,
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        1.0,
        true,
    ),
    column(
        2,
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        SECTOR_BYTES,
        true,
    ),
    column(
        3,
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        0.001,
        true,
    ),
    column(
        4,
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        1.0,
        true,
    ),
    column(
        5,
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        1.0,
        true,
    ),
    column(
        6,
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        SECTOR_BYTES,
        true,
    ),
    column(
        7,
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        0.001,
        true,
    ),
    column(
        8,
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        1.0,
        false,
    ),
    column(
        9,
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        0.001,
        true,
    ),
    column(
        10,
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        0.001,
        true,
    ),
    column(
        11,
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        1.0,
        true,
    ),
    column(
        12,
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        1.0,
        true,
    ),
    column(
        13,
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        1.0,
        true,
    ),
    column(
        14,
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        0.001,
        true,
    ),
    column(
        15,
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        1.0,
        true,
    ),
    column(
        16,
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        0.001,
        true,
    ),
];

/// One line of `/proc/diskstats`.
#[derive(Debug, PartialEq)]
struct Device<'a> {
    major: &'a str,
    minor: &'a str,
    name: &'a str,
    /// 11 columns before Linux 4.18, 15 until 5.5, 17 since.
    stats: Vec<f64>,
}

/// The devices of `/proc/diskstats`. A line that is not the kernel's shape (numeric major
/// and minor, at least 11 unsigned counters) is skipped, and a device named twice keeps its
/// first line: junk or a repeated name would otherwise become series of their own, or
/// duplicate series, which make Prometheus refuse the whole scrape.
fn parse(text: &str) -> Vec<Device<'_>> {
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let (major, minor, name) = (fields.next()?, fields.next()?, fields.next()?);
            major.parse::<u32>().ok()?;
            minor.parse::<u32>().ok()?;
            let stats: Vec<f64> = fields
                .map(|f| f.parse::<u64>().ok().map(|v| v as f64))
                .collect::<Option<_>>()?;
            (stats.len() >= 11 && seen.insert(name)).then_some(Device {
                major,
                minor,
                name,
                stats,
            })
        })
        .collect()
}

/// The `E:KEY=value` properties of a udev database entry.
fn parse_udev(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .filter_map(|line| line.strip_prefix("E:")?.split_once('='))
        .collect()
}

impl Collector for Diskstats {
    fn name(&self) -> &str {
        "diskstats"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.paths.proc("diskstats"))?;
        let devices: Vec<Device<'_>> = parse(&text)
            .into_iter()
            .filter(|d| self.devices.accepts(d.name))
            .collect();
        let families: Vec<FamilyId> = COLUMNS
            .iter()
            .map(|c| {
                if c.counter {
                    out.counter(c.name, c.help)
                } else {
                    out.gauge(c.name, c.help)
                }
            })
            .collect();
        let info = out.gauge("node_disk_info", "Info of /sys/block/<block_device>.");
        for device in &devices {
            let labels = [("device", device.name)];
            for (column, family) in COLUMNS.iter().zip(&families) {
                if let Some(value) = device.stats.get(column.index) {
                    out.sample(*family, &labels, value * column.scale);
                }
            }
            let udev_path = self
                .paths
                .udev_data()
                .join(format!("b{}:{}", device.major, device.minor));
            let udev_text = read::optional_trimmed(&udev_path).unwrap_or_default();
            let udev = parse_udev(&udev_text);
            let get = |key: &str| udev.get(key).copied().unwrap_or_default();
            let rotational = read::attribute(
                &self
                    .paths
                    .sys(&format!("block/{}/queue/rotational", device.name)),
            )
            .unwrap_or_default();
            out.sample(
                info,
                &[
                    ("device", device.name),
                    ("major", device.major),
                    ("minor", device.minor),
                    ("path", get("ID_PATH")),
                    ("wwn", get("ID_WWN")),
                    ("model", get("ID_MODEL")),
                    ("serial", get("ID_SERIAL_SHORT")),
                    ("revision", get("ID_REVISION")),
                    ("rotational", &rotational),
                ],
                1.0,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_of_each_kernel_generation() {
        let text = "   8       0 sda 25354637 34367663 1003346126 18492372 28444756 11134226 505697032 63877960 0 9653880 82621804\n 254       0 vda 2 0 16 0 0 0 0 0 0 4 0 3 0 24 1 5 6\n";
        let devices = parse(text);
        assert_eq!(devices.len(), 2);
        assert_eq!(
            (devices[0].major, devices[0].minor, devices[0].name),
            ("8", "0", "sda")
        );
        assert_eq!(devices[0].stats.len(), 11);
        assert_eq!(devices[1].stats.len(), 17);
        assert_eq!(devices[1].stats[16], 6.0);
    }

    #[test]
    fn junk_repeated_names_and_negative_counters_are_skipped() {
        let good = " 254 0 vda 2 0 16 0 0 0 0 0 0 4 0\n";
        let text = format!(
            "{good}junk line here\n 254 0 vda 9 9 9 9 9 9 9 9 9 9 9\n 8 0 sdb -1 0 0 0 0 0 0 0 0 0 0\n x y sdc 1 1 1 1 1 1 1 1 1 1 1\n 8 16 sdd 1 2\n"
        );
        let devices = parse(&text);
        assert_eq!(devices.len(), 1, "only the first vda");
        assert_eq!(devices[0].stats[0], 2.0);
    }

    #[test]
    fn default_exclude_keeps_whole_disks() {
        let filter =
            NameFilter::new(None, Some(DISKSTATS_DEVICE_EXCLUDE), ("i", "e")).unwrap_or_default();
        for kept in ["sda", "vda", "nvme0n1", "dm-0", "md0", "xvdf"] {
            assert!(filter.accepts(kept), "{kept}");
        }
        for dropped in ["sda1", "nvme0n1p2", "loop0", "ram0", "zram0", "xvda1"] {
            assert!(!filter.accepts(dropped), "{dropped}");
        }
    }

    #[test]
    fn udev_properties() {
        let udev =
            parse_udev("S:disk/by-id/x\nE:ID_MODEL=Amazon_EC2_NVMe\nE:ID_SERIAL_SHORT=vol0123\n");
        assert_eq!(udev["ID_MODEL"], "Amazon_EC2_NVMe");
        assert_eq!(udev["ID_SERIAL_SHORT"], "vol0123");
    }
}
