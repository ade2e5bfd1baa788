//! `qdisc`: statistics of each interface's root queueing discipline, asked of the kernel
//! over rtnetlink (`RTM_GETQDISC`), or read from a JSON fixture with
//! `--collector.qdisc.fixtures` as node_exporter's end-to-end test does.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};
use serde_json::Value;

use super::{Settings, boxed};
use crate::filter::{NameFilter, flag_error};
use crate::netlink::{self, Protocol};
use crate::{gojson, read};

/// The qdisc collector's options.
#[derive(Debug, Clone, clap::Args)]
// Every collector's options struct is named `Options`; clap's group ids must differ.
#[group(id = "qdisc_options")]
pub struct Options {
    /// Directory holding a results.json to report instead of the kernel's qdiscs (for
    /// end-to-end tests).
    #[arg(
        long = "collector.qdisc.fixtures",
        value_name = "DIR",
        default_value = ""
    )]
    pub qdisc_fixtures: String,
    /// Report only the qdiscs of devices whose name matches this regexp (not together
    /// with device-exclude).
    #[arg(long = "collector.qdisc.device-include", value_name = "REGEX")]
    pub qdisc_device_include: Option<String>,
    /// Leave out the qdiscs of devices whose name matches this regexp (not together with
    /// device-include).
    #[arg(long = "collector.qdisc.device-exclude", value_name = "REGEX")]
    pub qdisc_device_exclude: Option<String>,
    /// The earlier, misspelt name of --collector.qdisc.device-include.
    #[arg(
        long = "collector.qdisk.device-include",
        value_name = "REGEX",
        hide = true
    )]
    pub qdisk_device_include: Option<String>,
    /// The earlier, misspelt name of --collector.qdisc.device-exclude.
    #[arg(
        long = "collector.qdisk.device-exclude",
        value_name = "REGEX",
        hide = true
    )]
    pub qdisk_device_exclude: Option<String>,
}

/// The flag given of a current and a deprecated spelling; both is an error. An empty value
/// counts as not given, as with kingpin's string flags.
fn either<'a>(
    current: Option<&'a str>,
    old: Option<&'a str>,
    names: (&str, &str),
) -> Result<Option<&'a str>, ConfigError> {
    let current = current.filter(|v| !v.is_empty());
    match (current, old.filter(|v| !v.is_empty())) {
        (Some(_), Some(_)) => Err(flag_error(
            names.0,
            format!("cannot be used together with --{}", names.1),
        )),
        (None, Some(old)) => {
            tracing::warn!("--{} is deprecated, use --{}", names.1, names.0);
            Ok(Some(old))
        }
        (current, None) => Ok(current),
    }
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options.qdisc;
    let include = either(
        options.qdisc_device_include.as_deref(),
        options.qdisk_device_include.as_deref(),
        (
            "collector.qdisc.device-include",
            "collector.qdisk.device-include",
        ),
    )?;
    let exclude = either(
        options.qdisc_device_exclude.as_deref(),
        options.qdisk_device_exclude.as_deref(),
        (
            "collector.qdisc.device-exclude",
            "collector.qdisk.device-exclude",
        ),
    )?;
    boxed(Qdisc {
        fixtures: (!options.qdisc_fixtures.is_empty())
            .then(|| Path::new(&options.qdisc_fixtures).join("results.json")),
        devices: NameFilter::new(
            include,
            exclude,
            (
                "collector.qdisc.device-include",
                "collector.qdisc.device-exclude",
            ),
        )?,
    })
}

struct Qdisc {
    /// `<fixtures>/results.json`, when given.
    fixtures: Option<PathBuf>,
    devices: NameFilter,
}

/// One queueing discipline, as node_exporter's qdisc library describes it.
#[derive(Debug, Default, Clone, PartialEq)]
struct QdiscInfo {
    device: String,
    /// 0 for a root qdisc.
    parent: u32,
    kind: String,
    bytes: u64,
    packets: u64,
    drops: u64,
    requeues: u64,
    overlimits: u64,
    qlen: u64,
    backlog: u64,
}

/// The qdiscs of a fixture: a JSON array of objects with Go's field names.
fn parse_fixture(text: &str) -> Result<Vec<QdiscInfo>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Some(items) = value.as_array() else {
        return Err("not a JSON array".into());
    };
    items
        .iter()
        .map(|item| {
            Ok(QdiscInfo {
                device: gojson::string(item, "IfaceName")?,
                parent: gojson::uint(item, "Parent", 32)? as u32,
                kind: gojson::string(item, "Kind")?,
                bytes: gojson::uint(item, "Bytes", 64)?,
                packets: gojson::uint(item, "Packets", 32)?,
                drops: gojson::uint(item, "Drops", 32)?,
                requeues: gojson::uint(item, "Requeues", 32)?,
                overlimits: gojson::uint(item, "Overlimits", 32)?,
                qlen: gojson::uint(item, "Qlen", 32)?,
                backlog: gojson::uint(item, "Backlog", 32)?,
            })
        })
        .collect()
}

/// `RTM_GETQDISC` and `RTM_NEWQDISC`.
const RTM_GETQDISC: u16 = 38;
const RTM_NEWQDISC: u16 = 36;
/// `sizeof(struct tcmsg)`.
const TCMSG: usize = 20;
/// Attributes of a qdisc message: `TCA_KIND`, `TCA_STATS` (the old fixed struct) and
/// `TCA_STATS2` (nested `TCA_STATS_BASIC` and `TCA_STATS_QUEUE`).
const TCA_KIND: u16 = 1;
const TCA_STATS: u16 = 3;
const TCA_STATS2: u16 = 7;
const TCA_STATS_BASIC: u16 = 1;
const TCA_STATS_QUEUE: u16 = 3;

fn u32_at(data: &[u8], at: usize) -> Option<u64> {
    netlink::uint(data.get(at..at + 4)?)
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    netlink::uint(data.get(at..at + 8)?)
}

/// One `RTM_NEWQDISC` message: the interface index and the qdisc. Attributes are applied
/// in the kernel's order (`TCA_STATS2`, then the older `TCA_STATS` with the same figures
/// but no requeues), as node_exporter's library applies them.
fn parse_message(payload: &[u8]) -> Option<(u32, QdiscInfo)> {
    let header = payload.get(..TCMSG)?;
    let index = u32_at(header, 4)? as u32;
    let parent = u32_at(header, 12)? as u32;
    let mut qdisc = QdiscInfo {
        // TC_H_ROOT: the root qdisc.
        parent: if parent == u32::MAX { 0 } else { parent },
        ..QdiscInfo::default()
    };
    for (kind, value) in netlink::attributes(&payload[TCMSG..]) {
        match kind {
            TCA_KIND => qdisc.kind = netlink::string(value),
            TCA_STATS2 => {
                for (kind, value) in netlink::attributes(value) {
                    match kind {
                        TCA_STATS_BASIC => {
                            qdisc.bytes = u64_at(value, 0)?;
                            qdisc.packets = u32_at(value, 8)?;
                        }
                        TCA_STATS_QUEUE => {
                            qdisc.qlen = u32_at(value, 0)?;
                            qdisc.backlog = u32_at(value, 4)?;
                            qdisc.drops = u32_at(value, 8)?;
                            qdisc.requeues = u32_at(value, 12)?;
                            qdisc.overlimits = u32_at(value, 16)?;
                        }
                        _ => {}
                    }
                }
            }
            TCA_STATS => {
                // struct tc_stats: bytes, packets, drops, overlimits, bps, pps, qlen, backlog.
                qdisc.bytes = u64_at(value, 0)?;
                qdisc.packets = u32_at(value, 8)?;
                qdisc.drops = u32_at(value, 12)?;
                qdisc.overlimits = u32_at(value, 16)?;
                qdisc.qlen = u32_at(value, 28)?;
                qdisc.backlog = u32_at(value, 32)?;
            }
            _ => {}
        }
    }
    Some((index, qdisc))
}

/// Every qdisc of the host, from the kernel.
fn from_kernel(deadline: Instant) -> io::Result<Vec<QdiscInfo>> {
    let mut socket = netlink::Socket::open(Protocol::Route)?;
    let mut found = Vec::new();
    let mut malformed = 0;
    socket.dump(RTM_GETQDISC, &[0u8; TCMSG], deadline, |message| {
        if message.kind != RTM_NEWQDISC {
            return Ok(());
        }
        match parse_message(message.payload) {
            Some(qdisc) => found.push(qdisc),
            None => malformed += 1,
        }
        Ok(())
    })?;
    if malformed > 0 {
        tracing::debug!(
            collector = "qdisc",
            malformed,
            "qdisc messages too short; skipped"
        );
    }
    // An interface gone since the dump has no name: node_exporter reports it as "".
    let mut names = Vec::<(u32, String)>::new();
    Ok(found
        .into_iter()
        .map(|(index, mut qdisc)| {
            qdisc.device = match names.iter().find(|(i, _)| *i == index) {
                Some((_, name)) => name.clone(),
                None => {
                    let name = rustix::net::netdevice::index_to_name(socket.fd(), index)
                        .unwrap_or_default();
                    names.push((index, name.clone()));
                    name
                }
            };
            qdisc
        })
        .collect())
}

impl Collector for Qdisc {
    fn name(&self) -> &str {
        "qdisc"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let qdiscs = match &self.fixtures {
            Some(path) => {
                let text = read::file(path)?;
                parse_fixture(&text).map_err(|e| read::malformed(path, e))?
            }
            None => from_kernel(ctx.deadline())
                .map_err(|e| CollectError::failed("dumping qdiscs over rtnetlink", e))?,
        };
        let families = [
            ("node_qdisc_bytes_total", "Number of bytes sent.", true),
            ("node_qdisc_packets_total", "Number of packets sent.", true),
            ("node_qdisc_drops_total", "Number of packets dropped.", true),
            (
                "node_qdisc_requeues_total",
                "Number of packets dequeued, not transmitted, and requeued.",
                true,
            ),
            (
                "node_qdisc_overlimits_total",
                "Number of overlimit packets.",
                true,
            ),
            (
                "node_qdisc_current_queue_length",
                "Number of packets currently in queue to be sent.",
                false,
            ),
            (
                "node_qdisc_backlog",
                "Number of bytes currently in queue to be sent.",
                false,
            ),
        ]
        .map(|(name, help, counter)| {
            if counter {
                out.counter(name, help)
            } else {
                out.gauge(name, help)
            }
        });
        let mut seen = BTreeSet::new();
        for qdisc in &qdiscs {
            // Only root qdiscs, one per device: a repeat would be a duplicate series.
            if qdisc.parent != 0
                || !self.devices.accepts(&qdisc.device)
                || !seen.insert((qdisc.device.as_str(), qdisc.kind.as_str()))
            {
                continue;
            }
            let labels = [
                ("device", qdisc.device.as_str()),
                ("kind", qdisc.kind.as_str()),
            ];
            let values = [
                qdisc.bytes,
                qdisc.packets,
                qdisc.drops,
                qdisc.requeues,
                qdisc.overlimits,
                qdisc.qlen,
                qdisc.backlog,
            ];
            for (family, value) in families.iter().zip(values) {
                out.sample(*family, &labels, value as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_of_node_exporters_end_to_end_test() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/node_exporter/fixtures/qdisc/results.json"
        ))
        .unwrap();
        let qdiscs = parse_fixture(&text).unwrap();
        assert_eq!(qdiscs.len(), 2);
        assert_eq!(
            qdiscs[0],
            QdiscInfo {
                device: "wlan0".into(),
                kind: "fq".into(),
                bytes: 42,
                packets: 42,
                requeues: 1,
                drops: 1,
                ..QdiscInfo::default()
            }
        );
        assert_eq!((qdiscs[1].device.as_str(), qdiscs[1].requeues), ("eth0", 2));
        assert!(parse_fixture("{}").is_err());
        assert!(parse_fixture(r#"[{"Packets": -1}]"#).is_err());
    }

    #[test]
    fn the_misspelt_device_flags_stand_in_for_the_current_ones() {
        let names = (
            "collector.qdisc.device-include",
            "collector.qdisk.device-include",
        );
        assert_eq!(either(Some("eth0"), None, names).unwrap(), Some("eth0"));
        assert_eq!(either(None, Some("wlan0"), names).unwrap(), Some("wlan0"));
        assert_eq!(either(Some(""), Some(""), names).unwrap(), None);
        let error = either(Some("eth0"), Some("wlan0"), names).unwrap_err();
        assert!(
            error.to_string().contains("collector.qdisk.device-include"),
            "{error}"
        );
    }

    fn message(parent: u32, attributes: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut payload = vec![0u8; TCMSG];
        payload[4..8].copy_from_slice(&7u32.to_ne_bytes());
        payload[12..16].copy_from_slice(&parent.to_ne_bytes());
        for (kind, value) in attributes {
            netlink::push_attribute(&mut payload, *kind, value);
        }
        payload
    }

    #[test]
    fn a_root_qdisc_message_with_both_kinds_of_statistics() {
        let mut stats2 = Vec::new();
        let basic: Vec<u8> = [1000u64.to_ne_bytes().as_slice(), &10u32.to_ne_bytes()].concat();
        netlink::push_attribute(&mut stats2, TCA_STATS_BASIC, &basic);
        let queue: Vec<u8> = [1u32, 2, 3, 4, 5]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        netlink::push_attribute(&mut stats2, TCA_STATS_QUEUE, &queue);
        let mut legacy = 1000u64.to_ne_bytes().to_vec();
        for v in [10u32, 3, 5, 0, 0, 1, 2] {
            legacy.extend_from_slice(&v.to_ne_bytes());
        }
        let payload = message(
            u32::MAX,
            &[
                (TCA_KIND, b"fq_codel\0".to_vec()),
                (TCA_STATS2, stats2),
                (TCA_STATS, legacy),
            ],
        );
        let (index, qdisc) = parse_message(&payload).unwrap();
        assert_eq!(index, 7);
        assert_eq!(
            qdisc,
            QdiscInfo {
                device: String::new(),
                parent: 0,
                kind: "fq_codel".into(),
                bytes: 1000,
                packets: 10,
                qlen: 1,
                backlog: 2,
                drops: 3,
                requeues: 4,
                overlimits: 5,
            }
        );
        assert_eq!(
            parse_message(&message(0x10000, &[])).unwrap().1.parent,
            0x10000
        );
        assert_eq!(parse_message(&payload[..12]), None);
        let short_stats = message(u32::MAX, &[(TCA_STATS, vec![0; 12])]);
        assert_eq!(parse_message(&short_stats), None);
    }

    #[test]
    fn the_kernels_qdiscs_have_names_and_kinds() {
        // Every interface that is up has a root qdisc (`noqueue` on loopback).
        let qdiscs = from_kernel(Instant::now() + std::time::Duration::from_secs(5)).unwrap();
        assert!(!qdiscs.is_empty());
        assert!(qdiscs.iter().all(|q| !q.kind.is_empty()), "{qdiscs:?}");
        assert!(qdiscs.iter().any(|q| q.device == "lo"), "{qdiscs:?}");
    }
}
