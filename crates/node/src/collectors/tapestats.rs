//! `tapestats`: I/O statistics of SCSI tape drives from `/sys/class/scsi_tape/stN/stats/`.
//! Only the `stN` names are read: `nstN` and the `a`/`l`/`m` mode variants are the same
//! drive.

use std::io;
use std::path::{Path, PathBuf};

use regex::Regex;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use super::fibrechannel::parse_c_uint;
use super::{Settings, boxed};
use crate::{filter, read};

/// The tapestats collector's options.
#[derive(Debug, Clone, clap::Args)]
// Every collector's options struct is named `Options`: the group needs a name of its own.
#[group(id = "tapestats_options")]
pub struct Options {
    /// Regexp of tape devices (`st0`, …) not to report.
    #[arg(
        long = "collector.tapestats.ignored-devices",
        value_name = "REGEX",
        default_value = "^$"
    )]
    pub ignored_devices: String,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Tapestats {
        root: settings.paths.sys("class/scsi_tape"),
        ignored: filter::regex(
            "collector.tapestats.ignored-devices",
            &settings.options.tapestats.ignored_devices,
        )?,
    })
}

struct Tapestats {
    /// `/sys/class/scsi_tape`.
    root: PathBuf,
    ignored: Regex,
}

/// `(file in stats/, metric, help, type, factor)`; times are in nanoseconds.
const STATS: [(&str, &str, &str, MetricType, f64); 10] = [
    (
        "in_flight",
        "io_now",
        "The number of I/Os currently outstanding to this device.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "io_ns",
        "io_time_seconds_total",
        "The amount of time spent waiting for all I/O to complete (including read and write). This includes tape movement commands such as seeking between file or set marks and implicit tape movement such as when rewind on close tape devices are used.",
        MetricType::Counter,
        1e-9,
    ),
    (
        "other_cnt",
        "io_others_total",
        "The number of I/Os issued to the tape drive other than read or write commands. The time taken to complete these commands uses the following calculation io_time_seconds_total-read_time_seconds_total-write_time_seconds_total",
        MetricType::Counter,
        1.0,
    ),
    (
        "read_byte_cnt",
        "read_bytes_total",
        "The number of bytes read from the tape drive.",
        MetricType::Counter,
        1.0,
    ),
    (
        "read_cnt",
        "reads_completed_total",
        "The number of read requests issued to the tape drive.",
        MetricType::Counter,
        1.0,
    ),
    (
        "read_ns",
        "read_time_seconds_total",
        "The amount of time spent waiting for read requests to complete.",
        MetricType::Counter,
        1e-9,
    ),
    (
        "resid_cnt",
        "residual_total",
        "The number of times during a read or write we found the residual amount to be non-zero. This should mean that a program is issuing a read larger thean the block size on tape. For write not all data made it to tape.",
        MetricType::Counter,
        1.0,
    ),
    (
        "write_byte_cnt",
        "written_bytes_total",
        "The number of bytes written to the tape drive.",
        MetricType::Counter,
        1.0,
    ),
    (
        "write_cnt",
        "writes_completed_total",
        "The number of write requests issued to the tape drive.",
        MetricType::Counter,
        1.0,
    ),
    (
        "write_ns",
        "write_time_seconds_total",
        "The amount of time spent waiting for write requests to complete.",
        MetricType::Counter,
        1e-9,
    ),
];

/// Whether a name is a tape drive's own (`st` and digits only).
fn is_drive(name: &str) -> bool {
    name.strip_prefix("st")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl Collector for Tapestats {
    fn name(&self) -> &str {
        "tapestats"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let drives = read::dir_entries(&self.root, is_drive)?;
        let families = STATS.map(|(_, metric, help, kind, _)| {
            out.family_fmt(
                format_args!("node_tape_{metric}"),
                format_args!("{help}"),
                kind,
            )
        });
        for (device, dir) in &drives {
            if self.ignored.is_match(device) {
                tracing::debug!(device, "Ignoring tape device");
                continue;
            }
            let stats = dir.join("stats");
            // A drive without statistics (an old kernel) is left out.
            if !stats.is_dir() {
                continue;
            }
            for ((file, _, _, _, factor), family) in STATS.iter().zip(families) {
                let value = counter(&stats.join(file))?;
                out.sample(family, &[("device", device)], value as f64 * factor);
            }
        }
        Ok(())
    }
}

/// A statistics file's number; 0 if the file is missing.
fn counter(path: &Path) -> Result<u64, CollectError> {
    match read::read_attribute(path) {
        Ok(text) => parse_c_uint(text.trim())
            .ok_or_else(|| read::malformed(path, format!("not a number: {:?}", &*text))),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(read::failed(path, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_drives_own_names() {
        assert!(is_drive("st0") && is_drive("st12"));
        assert!(!is_drive("nst0") && !is_drive("st0a") && !is_drive("st"));
    }

    #[test]
    fn counters_of_a_stats_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("io_ns"), "9247011087720\n").unwrap();
        std::fs::write(dir.path().join("bad"), "x\n").unwrap();
        assert_eq!(
            counter(&dir.path().join("io_ns")).unwrap(),
            9_247_011_087_720
        );
        assert_eq!(counter(&dir.path().join("read_ns")).unwrap(), 0);
        assert!(counter(&dir.path().join("bad")).is_err());
        assert_eq!(9_247_011_087_720_f64 * 1e-9, 9247.01108772);
    }
}
