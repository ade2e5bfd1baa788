//! `drbd`: replication state and traffic of each DRBD device from `/proc/drbd` (DRBD 8's
//! format: `N: cs:… ro:…/… ds:…/… ns:… nr:…` words after a device number).

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Drbd {
        path: settings.paths.proc("drbd"),
    })
}

struct Drbd {
    /// `/proc/drbd`.
    path: PathBuf,
}

/// `(key, metric, help, type, factor)` of the numeric fields; sizes are in KiB.
const NUMBERS: [(&str, &str, &str, MetricType, f64); 12] = [
    (
        "ns",
        "network_sent_bytes_total",
        "Total number of bytes sent via the network.",
        MetricType::Counter,
        1024.0,
    ),
    // node_exporter takes `nr` as bytes though DRBD counts it in KiB like `ns`; kept as is
    // so the series stay comparable with it.
    (
        "nr",
        "network_received_bytes_total",
        "Total number of bytes received via the network.",
        MetricType::Counter,
        1.0,
    ),
    (
        "dw",
        "disk_written_bytes_total",
        "Net data written on local hard disk; in bytes.",
        MetricType::Counter,
        1024.0,
    ),
    (
        "dr",
        "disk_read_bytes_total",
        "Net data read from local hard disk; in bytes.",
        MetricType::Counter,
        1024.0,
    ),
    (
        "al",
        "activitylog_writes_total",
        "Number of updates of the activity log area of the meta data.",
        MetricType::Counter,
        1.0,
    ),
    (
        "bm",
        "bitmap_writes_total",
        "Number of updates of the bitmap area of the meta data.",
        MetricType::Counter,
        1.0,
    ),
    (
        "lo",
        "local_pending",
        "Number of open requests to the local I/O sub-system.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "pe",
        "remote_pending",
        "Number of requests sent to the peer, but that have not yet been answered by the latter.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "ua",
        "remote_unacknowledged",
        "Number of requests received by the peer via the network connection, but that have not yet been answered.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "ap",
        "application_pending",
        "Number of block I/O requests forwarded to DRBD, but not yet answered by DRBD.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "ep",
        "epochs",
        "Number of Epochs currently on the fly.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "oos",
        "out_of_sync_bytes",
        "Amount of data known to be out of sync; in bytes.",
        MetricType::Gauge,
        1024.0,
    ),
];

/// `(key, metric, help, the value that counts as good)` of the `local/remote` pairs.
const PAIRS: [(&str, &str, &str, &str); 2] = [
    (
        "ro",
        "node_role_is_primary",
        "Whether the role of the node is in the primary state.",
        "Primary",
    ),
    (
        "ds",
        "disk_state_is_up_to_date",
        "Whether the disk of the node is up to date.",
        "UpToDate",
    ),
];

/// One value read from the file.
#[derive(Debug, PartialEq)]
enum Field<'a> {
    /// Index into [`NUMBERS`], and the value as written.
    Number(usize, f64),
    /// Index into [`PAIRS`], and the local and remote values.
    Pair(usize, &'a str, &'a str),
    /// The connection state (`cs:`).
    Connection(&'a str),
}

impl Field<'_> {
    /// Which series this field gives for its device: one per number, pair or state.
    fn slot(&self) -> (u8, usize) {
        match self {
            Field::Number(index, _) => (0, *index),
            Field::Pair(index, _, _) => (1, *index),
            Field::Connection(_) => (2, 0),
        }
    }
}

/// Every known field of the file, with its device (`drbdN`); a field before the first
/// device number belongs to `unknown`, as upstream has it. Words that are no `key:value`
/// or have a value of the wrong shape are skipped; a field seen twice for a device keeps
/// its first value.
fn parse(text: &str) -> (Vec<(String, Field<'_>)>, usize) {
    let mut fields: Vec<(String, Field<'_>)> = Vec::new();
    let mut skipped = 0;
    let mut device = String::from("unknown");
    for word in text.split_ascii_whitespace() {
        let mut parts = word.split(':');
        let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if value.is_empty()
            && let Ok(id) = key.parse::<u64>()
        {
            device = format!("drbd{id}");
            continue;
        }
        let field = if let Some(index) = NUMBERS.iter().position(|n| n.0 == key) {
            match value.parse::<f64>() {
                Ok(number) => Field::Number(index, number),
                Err(_) => {
                    skipped += 1;
                    continue;
                }
            }
        } else if let Some(index) = PAIRS.iter().position(|p| p.0 == key) {
            let Some((local, remote)) = value.split_once('/') else {
                skipped += 1;
                continue;
            };
            let remote = remote.split('/').next().unwrap_or_default();
            Field::Pair(index, local, remote)
        } else if key == "cs" {
            Field::Connection(value)
        } else {
            continue;
        };
        if fields
            .iter()
            .any(|(d, f)| *d == device && f.slot() == field.slot())
        {
            skipped += 1;
            continue;
        }
        fields.push((device.clone(), field));
    }
    (fields, skipped)
}

impl Collector for Drbd {
    fn name(&self) -> &str {
        "drbd"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // Without the drbd module there is no file: no data, as upstream reports it.
        let text = read::file_or_no_data(&self.path)?;
        let (fields, skipped) = parse(&text);
        if skipped > 0 {
            tracing::debug!(
                path = %self.path.display(),
                skipped,
                "Skipped malformed or repeated fields"
            );
        }
        let numbers: Vec<FamilyId> = NUMBERS
            .iter()
            .map(|(_, metric, help, kind, _)| {
                out.family_fmt(
                    format_args!("node_drbd_{metric}"),
                    format_args!("{help}"),
                    *kind,
                )
            })
            .collect();
        let pairs: Vec<FamilyId> = PAIRS
            .iter()
            .map(|(_, metric, help, _)| {
                out.family_fmt(
                    format_args!("node_drbd_{metric}"),
                    format_args!("{help}"),
                    MetricType::Gauge,
                )
            })
            .collect();
        let connected = out.gauge(
            "node_drbd_connected",
            "Whether DRBD is connected to the peer.",
        );
        for (device, field) in &fields {
            match *field {
                Field::Number(index, value) => out.sample(
                    numbers[index],
                    &[("device", device)],
                    value * NUMBERS[index].4,
                ),
                Field::Pair(index, local, remote) => {
                    let good = |v: &str| if v == PAIRS[index].3 { 1.0 } else { 0.0 };
                    out.sample(
                        pairs[index],
                        &[("device", device), ("node", "local")],
                        good(local),
                    );
                    out.sample(
                        pairs[index],
                        &[("device", device), ("node", "remote")],
                        good(remote),
                    );
                }
                Field::Connection(state) => out.sample(
                    connected,
                    &[("device", device)],
                    if state == "Connected" { 1.0 } else { 0.0 },
                ),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "version: 8.4.3 (api:1/proto:86-101)\nsrcversion: 1A9F77B1CA5FF92235C2213 \n\n \
        1: cs:Connected ro:Primary/Primary ds:UpToDate/UpToDate C r-----\n    \
        ns:17324442 nr:10961011 dw:28263521 dr:118696670 al:1100 bm:221 lo:12345 pe:12346 ua:12347 ap:12348 ep:1 wo:d oos:12349\n";

    #[test]
    fn fields_of_the_fixture() {
        let (fields, skipped) = parse(FIXTURE);
        assert_eq!(skipped, 0);
        assert_eq!(fields.len(), 15);
        assert!(fields.iter().all(|(device, _)| device == "drbd1"));
        assert_eq!(fields[0].1, Field::Connection("Connected"));
        assert_eq!(fields[1].1, Field::Pair(0, "Primary", "Primary"));
        assert_eq!(fields[3].1, Field::Number(0, 17_324_442.0));
    }

    #[test]
    fn junk_and_repeats_are_skipped() {
        let (fields, skipped) = parse("0: ns:x ns:1 ns:2 ro:Primary cs:WFConnection\n");
        assert_eq!(skipped, 3);
        assert_eq!(
            fields,
            [
                ("drbd0".to_string(), Field::Number(0, 1.0)),
                ("drbd0".to_string(), Field::Connection("WFConnection")),
            ]
        );
    }
}
