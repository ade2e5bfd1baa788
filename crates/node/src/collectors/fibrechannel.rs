//! `fibrechannel`: Fibre Channel host adapters from `/sys/class/fc_host/<host>/`: their
//! identity and link as an info series, and the `statistics/` counters.

use std::io;
use std::path::{Path, PathBuf};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(FibreChannel {
        root: settings.paths.sys("class/fc_host"),
    })
}

struct FibreChannel {
    /// `/sys/class/fc_host`.
    root: PathBuf,
}

/// `(info label, attribute)`; the World Wide Names and the port id lose their `0x`.
const INFO: [(&str, &str); 10] = [
    ("speed", "speed"),
    ("port_state", "port_state"),
    ("port_type", "port_type"),
    ("port_id", "port_id"),
    ("port_name", "port_name"),
    ("fabric_name", "fabric_name"),
    ("symbolic_name", "symbolic_name"),
    ("supported_classes", "supported_classes"),
    ("supported_speeds", "supported_speeds"),
    ("dev_loss_tmo", "dev_loss_tmo"),
];

/// `(file in statistics/, metric, help)`.
const COUNTERS: [(&str, &str, &str); 14] = [
    (
        "dumped_frames",
        "dumped_frames_total",
        "Number of dumped frames",
    ),
    (
        "error_frames",
        "error_frames_total",
        "Number of errors in frames",
    ),
    (
        "invalid_crc_count",
        "invalid_crc_total",
        "Invalid Cyclic Redundancy Check count",
    ),
    ("rx_frames", "rx_frames_total", "Number of frames received"),
    (
        "rx_words",
        "rx_words_total",
        "Number of words received by host port",
    ),
    (
        "tx_frames",
        "tx_frames_total",
        "Number of frames transmitted by host port",
    ),
    (
        "tx_words",
        "tx_words_total",
        "Number of words transmitted by host port",
    ),
    (
        "seconds_since_last_reset",
        "seconds_since_last_reset_total",
        "Number of seconds since last host port reset",
    ),
    (
        "invalid_tx_word_count",
        "invalid_tx_words_total",
        "Number of invalid words transmitted by host port",
    ),
    (
        "link_failure_count",
        "link_failure_total",
        "Number of times the host port link has failed",
    ),
    (
        "loss_of_sync_count",
        "loss_of_sync_total",
        "Number of failures on either bit or transmission word boundaries",
    ),
    (
        "loss_of_signal_count",
        "loss_of_signal_total",
        "Number of times signal has been lost",
    ),
    (
        "nos_count",
        "nos_total",
        "Number Not_Operational Primitive Sequence received by host port",
    ),
    (
        "fcp_packet_aborts",
        "fcp_packet_aborts_total",
        "Number of aborted packets",
    ),
];

/// What an HBA's firmware reports for a counter it does not keep.
const UNIMPLEMENTED: u64 = u64::MAX;

impl Collector for FibreChannel {
    fn name(&self) -> &str {
        "fibrechannel"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let hosts = read::dir_entries(&self.root, |_| true)?;
        let info = out.gauge(
            "node_fibrechannel_info",
            "Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
        );
        let counters = COUNTERS.map(|(_, metric, help)| {
            out.family_fmt(
                format_args!("node_fibrechannel_{metric}"),
                format_args!("{help}"),
                kiln_registry::MetricType::Counter,
            )
        });
        for (host, dir) in &hosts {
            let mut values: [Option<String>; INFO.len()] = Default::default();
            for (value, (_, file)) in values.iter_mut().zip(INFO) {
                *value = attribute(&dir.join(file))?;
            }
            let port_state = values[1].clone();
            let mut labels = vec![("fc_host", host.as_str())];
            for ((label, _), value) in INFO.iter().zip(&values) {
                let value = value.as_deref().unwrap_or_default();
                let value = match *label {
                    "port_id" | "port_name" | "fabric_name" => without_prefix(value),
                    _ => value,
                };
                labels.push((label, value));
            }
            out.sample(info, &labels, 1.0);

            // A disabled port keeps no statistics: its counters are reported as zero.
            let disabled = port_state.is_none_or(|state| state == "Unknown");
            let statistics = if disabled {
                Statistics::default()
            } else {
                Statistics::read(&dir.join("statistics"))?
            };
            for (index, family) in counters.iter().enumerate() {
                let value = if disabled {
                    Some(0)
                } else {
                    statistics.values[index]
                };
                match value {
                    Some(UNIMPLEMENTED) | None => {}
                    Some(value) => out.sample(*family, &[("fc_host", host)], value as f64),
                }
            }
        }
        Ok(())
    }
}

/// Drops the first two characters (the `0x` of a WWN or port id), as upstream does.
fn without_prefix(value: &str) -> &str {
    if value.len() > 2 {
        value.get(2..).unwrap_or(value)
    } else {
        value
    }
}

/// The counters of `statistics/`, by [`COUNTERS`]' order; `None` for a missing file.
#[derive(Debug, Default, PartialEq)]
struct Statistics {
    values: [Option<u64>; COUNTERS.len()],
}

impl Statistics {
    fn read(dir: &Path) -> Result<Self, CollectError> {
        let mut statistics = Self::default();
        for (index, (file, _, _)) in COUNTERS.iter().enumerate() {
            let path = dir.join(file);
            let text = match read::read_attribute(&path) {
                Ok(text) => text,
                // Missing, write-only or not supported by this driver: no value.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::NotFound
                            | io::ErrorKind::InvalidInput
                            | io::ErrorKind::Unsupported
                            | io::ErrorKind::PermissionDenied
                    ) || error.raw_os_error() == Some(libc::EOPNOTSUPP) =>
                {
                    continue;
                }
                Err(error) => return Err(read::failed(&path, error)),
            };
            let value = parse_c_uint(text.trim())
                .ok_or_else(|| read::malformed(&path, format!("not a number: {:?}", &*text)))?;
            statistics.values[index] = Some(value);
        }
        Ok(statistics)
    }
}

/// An unsigned number in C notation, as the kernel prints these counters: `0x` for hex,
/// `0b` binary, `0o` or a leading `0` octal, else decimal.
pub(super) fn parse_c_uint(text: &str) -> Option<u64> {
    let lower = text.get(..2).map(str::to_ascii_lowercase);
    let (digits, radix) = match lower.as_deref() {
        Some("0x") => (&text[2..], 16),
        Some("0b") => (&text[2..], 2),
        Some("0o") => (&text[2..], 8),
        _ if text.len() > 1 && text.starts_with('0') => (&text[1..], 8),
        _ => (text, 10),
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// A sysfs attribute without surrounding white space, `None` if the driver does not
/// expose it.
fn attribute(path: &Path) -> Result<Option<String>, CollectError> {
    match read::read_attribute(path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(read::failed(path, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_in_c_notation() {
        assert_eq!(parse_c_uint("0x13"), Some(19));
        assert_eq!(parse_c_uint("0xffffffffffffffff"), Some(UNIMPLEMENTED));
        assert_eq!(parse_c_uint("0x0"), Some(0));
        assert_eq!(parse_c_uint("42"), Some(42));
        assert_eq!(parse_c_uint("010"), Some(8));
        assert_eq!(parse_c_uint("0"), Some(0));
        assert_eq!(parse_c_uint("0x"), None);
        assert_eq!(parse_c_uint("-1"), None);
        assert_eq!(parse_c_uint("lots"), None);
    }

    #[test]
    fn statistics_of_a_host() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dumped_frames"), "0xffffffffffffffff\n").unwrap();
        std::fs::write(dir.path().join("fcp_packet_aborts"), "0x13\n").unwrap();
        let statistics = Statistics::read(dir.path()).unwrap();
        assert_eq!(statistics.values[0], Some(UNIMPLEMENTED));
        assert_eq!(statistics.values[13], Some(19));
        assert_eq!(statistics.values[1], None);
        std::fs::write(dir.path().join("nos_count"), "many\n").unwrap();
        assert!(Statistics::read(dir.path()).is_err());
    }

    #[test]
    fn prefixes_go() {
        assert_eq!(without_prefix("0x000002"), "000002");
        assert_eq!(without_prefix("0x0"), "0");
        assert_eq!(without_prefix("0x"), "0x");
    }
}
