//! `diskstats`: block device I/O counters from `/proc/diskstats`, and `node_disk_info`
//! with the model, serial and path udev recorded for each device.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::NameFilter;
use crate::flags::DISKSTATS_DEVICE_EXCLUDE;
use crate::paths::Paths;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options;
    boxed(Diskstats {
        diskstats: settings.paths.proc("diskstats"),
        block: settings.paths.sys("block"),
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
    /// `/proc/diskstats`.
    diskstats: PathBuf,
    /// `/sys/block`: a directory per whole disk.
    block: PathBuf,
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

/// The most statistics a line has (Linux 5.5 and later); later columns are ignored.
const MAX_STATS: usize = 17;

/// One line of `/proc/diskstats`.
#[derive(Debug, PartialEq)]
struct Device<'a> {
    major: &'a str,
    minor: &'a str,
    name: &'a str,
    /// 11 columns before Linux 4.18, 15 until 5.5, 17 since; the first `columns` are set.
    stats: [f64; MAX_STATS],
    columns: usize,
}

impl Device<'_> {
    fn stat(&self, index: usize) -> Option<f64> {
        self.stats[..self.columns].get(index).copied()
    }
}

/// The devices of `/proc/diskstats`. A line that is not the kernel's shape (numeric major
/// and minor, at least 11 unsigned counters) is skipped, and a device named twice keeps its
/// first line: junk or a repeated name would otherwise become series of their own, or
/// duplicate series, which make Prometheus refuse the whole scrape.
fn parse(text: &str) -> Vec<Device<'_>> {
    let lines = text.lines().count();
    let mut seen = std::collections::HashSet::with_capacity(lines);
    let mut devices = Vec::with_capacity(lines);
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(major), Some(minor), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if major.parse::<u32>().is_err() || minor.parse::<u32>().is_err() {
            continue;
        }
        let mut stats = [0.0; MAX_STATS];
        let mut columns = 0;
        let mut numeric = true;
        for field in fields {
            let Ok(value) = field.parse::<u64>() else {
                numeric = false;
                break;
            };
            if let Some(slot) = stats.get_mut(columns) {
                *slot = value as f64;
            }
            columns += 1;
        }
        if numeric && columns >= 11 && seen.insert(name) {
            devices.push(Device {
                major,
                minor,
                name,
                stats,
                columns: columns.min(MAX_STATS),
            });
        }
    }
    devices
}

/// The value of the `E:KEY=value` property `key` of a udev database entry (the last, if
/// given twice), or `None` if it has none.
fn udev_property_opt<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|line| line.strip_prefix("E:")?.split_once('='))
        .rfind(|(name, _)| *name == key)
        .map(|(_, value)| value)
}

/// As [`udev_property_opt`], empty when missing.
fn udev_property<'a>(text: &'a str, key: &str) -> &'a str {
    udev_property_opt(text, key).unwrap_or_default()
}

/// The serial printed on the disk's label: SCSI's, else the short ATA/NVMe one, else the
/// long one (virtio disks have only that).
fn serial(udev: &str) -> &str {
    ["SCSI_IDENT_SERIAL", "ID_SERIAL_SHORT", "ID_SERIAL"]
        .into_iter()
        .map(|key| udev_property(udev, key))
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

/// The numeric ATA properties udev records for ATA disks: property, metric, HELP.
const ATA_PROPERTIES: [(&str, &str, &str); 3] = [
    (
        "ID_ATA_WRITE_CACHE",
        "node_disk_ata_write_cache",
        "ATA disk has a write cache.",
    ),
    (
        "ID_ATA_WRITE_CACHE_ENABLED",
        "node_disk_ata_write_cache_enabled",
        "ATA disk has its write cache enabled.",
    ),
    (
        "ID_ATA_ROTATION_RATE_RPM",
        "node_disk_ata_rotation_rate_rpm",
        "ATA disk rotation rate in RPMs (0 for SSDs).",
    ),
];

impl Collector for Diskstats {
    fn name(&self) -> &str {
        "diskstats"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.diskstats)?;
        let devices: Vec<Device<'_>> = parse(&text)
            .into_iter()
            .filter(|d| self.devices.accepts(d.name))
            .collect();
        let families = COLUMNS.each_ref().map(|c| {
            if c.counter {
                out.counter(c.name, c.help)
            } else {
                out.gauge(c.name, c.help)
            }
        });
        let info = out.gauge("node_disk_info", "Info of /sys/block/<block_device>.");
        let filesystem_info = out.gauge("node_disk_filesystem_info", "Info about disk filesystem.");
        let device_mapper_info = out.gauge(
            "node_disk_device_mapper_info",
            "Info about disk device mapper.",
        );
        let ata = ATA_PROPERTIES.map(|(_, name, help)| out.gauge(name, help));
        // Both opened once a scrape, their files read relative to them.
        let udev_data = read::AttributeDir::open(self.paths.udev_data());
        let block = read::AttributeDir::open(&self.block);
        for device in &devices {
            let labels = [("device", device.name)];
            for (column, family) in COLUMNS.iter().zip(&families) {
                if let Some(value) = device.stat(column.index) {
                    out.sample(*family, &labels, value * column.scale);
                }
            }
            let udev_text = udev_data
                .as_ref()
                .zip(read::StackText::format(format_args!(
                    "b{}:{}",
                    device.major, device.minor
                )))
                .and_then(|(dir, name)| dir.optional_trimmed_at(&[name.as_str()]))
                .unwrap_or_default();
            let get = |key: &str| udev_property(&udev_text, key);
            // Unreadable or anything but 1 is "0", as upstream.
            let rotational = block
                .as_ref()
                .and_then(|dir| dir.attribute_at(&[device.name, "queue/rotational"]))
                .is_some_and(|r| r.trim().parse::<u64>() == Ok(1));
            out.sample(
                info,
                &[
                    ("device", device.name),
                    ("major", device.major),
                    ("minor", device.minor),
                    ("path", get("ID_PATH")),
                    ("wwn", get("ID_WWN")),
                    ("model", get("ID_MODEL")),
                    ("serial", serial(&udev_text)),
                    ("revision", get("ID_REVISION")),
                    ("rotational", if rotational { "1" } else { "0" }),
                ],
                1.0,
            );
            let fs_type = get("ID_FS_TYPE");
            if !fs_type.is_empty() {
                out.sample(
                    filesystem_info,
                    &[
                        ("device", device.name),
                        ("type", fs_type),
                        ("usage", get("ID_FS_USAGE")),
                        ("uuid", get("ID_FS_UUID")),
                        ("version", get("ID_FS_VERSION")),
                    ],
                    1.0,
                );
            }
            let dm_name = get("DM_NAME");
            if !dm_name.is_empty() {
                out.sample(
                    device_mapper_info,
                    &[
                        ("device", device.name),
                        ("name", dm_name),
                        ("uuid", get("DM_UUID")),
                        ("vg_name", get("DM_VG_NAME")),
                        ("lv_name", get("DM_LV_NAME")),
                        ("lv_layer", get("DM_LV_LAYER")),
                    ],
                    1.0,
                );
            }
            if !get("ID_ATA").is_empty() {
                for ((key, _, _), family) in ATA_PROPERTIES.iter().zip(&ata) {
                    let Some(raw) = udev_property_opt(&udev_text, key) else {
                        continue;
                    };
                    match raw.parse::<f64>() {
                        Ok(value) => out.sample(*family, &labels, value),
                        Err(_) => tracing::debug!(
                            collector = "diskstats",
                            device = device.name,
                            property = key,
                            value = raw,
                            "udev property is not a number"
                        ),
                    }
                }
            }
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
        assert_eq!(devices[0].columns, 11);
        assert_eq!(devices[1].columns, 17);
        assert_eq!(devices[1].stat(16), Some(6.0));
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
        let udev = "S:disk/by-id/x\nE:ID_MODEL=Amazon_EC2_NVMe\nE:ID_SERIAL_SHORT=vol0123\n";
        assert_eq!(udev_property(udev, "ID_MODEL"), "Amazon_EC2_NVMe");
        assert_eq!(udev_property(udev, "ID_SERIAL_SHORT"), "vol0123");
        assert_eq!(udev_property(udev, "ID_WWN"), "");
        assert_eq!(udev_property_opt(udev, "ID_WWN"), None);
        assert_eq!(serial(udev), "vol0123");
        assert_eq!(
            serial("E:ID_SERIAL=virtio_1\nE:SCSI_IDENT_SERIAL=\n"),
            "virtio_1"
        );
        assert_eq!(
            serial("E:ID_SERIAL=a\nE:ID_SERIAL_SHORT=b\nE:SCSI_IDENT_SERIAL=c\n"),
            "c"
        );
    }
}
