//! `netdev`: per-interface traffic counters. By default from the kernel's link dump over
//! netlink (as node_exporter), which has every counter; with
//! `--no-collector.netdev.netlink` from `/proc/net/dev`. Counters are folded into
//! `/proc/net/dev`'s columns unless `--collector.netdev.enable-detailed-metrics` asks for
//! each under the kernel's own name.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::NameFilter;
use crate::netlink::route::{self, LinkStats};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options;
    boxed(Netdev {
        dev: settings.paths.proc("net/dev"),
        class: settings.paths.sys("class/net"),
        devices: NameFilter::new(
            options.netdev_include.as_deref(),
            options.netdev_exclude.as_deref(),
            (
                "collector.netdev.device-include",
                "collector.netdev.device-exclude",
            ),
        )?,
        netlink: !options.no_netdev_netlink,
        detailed: options.netdev_detailed_metrics,
        ifalias: options.netdev_label_ifalias,
        address_info: options.netdev_address_info,
    })
}

struct Netdev {
    /// `/proc/net/dev`.
    dev: PathBuf,
    /// `/sys/class/net`, for interface aliases.
    class: PathBuf,
    devices: NameFilter,
    /// Statistics from netlink rather than `/proc/net/dev`.
    netlink: bool,
    /// Every counter under the kernel's name, not folded into `/proc/net/dev`'s columns.
    detailed: bool,
    /// An `ifalias` label from sysfs.
    ifalias: bool,
    /// `node_network_address_info`.
    address_info: bool,
}

/// One interface's counters, by upstream's key (the metric is `node_network_<key>_total`).
type Counters = BTreeMap<&'static str, u64>;

/// A netlink link's counters under the kernel's names.
fn netlink_counters(s: &LinkStats) -> Counters {
    Counters::from([
        ("receive_packets", s.rx_packets),
        ("transmit_packets", s.tx_packets),
        ("receive_bytes", s.rx_bytes),
        ("transmit_bytes", s.tx_bytes),
        ("receive_errors", s.rx_errors),
        ("transmit_errors", s.tx_errors),
        ("receive_dropped", s.rx_dropped),
        ("transmit_dropped", s.tx_dropped),
        ("multicast", s.multicast),
        ("collisions", s.collisions),
        ("receive_length_errors", s.rx_length_errors),
        ("receive_over_errors", s.rx_over_errors),
        ("receive_crc_errors", s.rx_crc_errors),
        ("receive_frame_errors", s.rx_frame_errors),
        ("receive_fifo_errors", s.rx_fifo_errors),
        ("receive_missed_errors", s.rx_missed_errors),
        ("transmit_aborted_errors", s.tx_aborted_errors),
        ("transmit_carrier_errors", s.tx_carrier_errors),
        ("transmit_fifo_errors", s.tx_fifo_errors),
        ("transmit_heartbeat_errors", s.tx_heartbeat_errors),
        ("transmit_window_errors", s.tx_window_errors),
        ("receive_compressed", s.rx_compressed),
        ("transmit_compressed", s.tx_compressed),
        ("receive_nohandler", s.rx_nohandler),
    ])
}

/// `/proc/net/dev`'s columns under upstream's keys, in the file's order.
const PROC_KEYS: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errors",
    "receive_dropped",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errors",
    "transmit_dropped",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

/// Folds the kernel's counters into `/proc/net/dev`'s columns, as the kernel itself does
/// when it writes that file (net/core/net-procfs.c): missed packets count as drops,
/// length, overrun and CRC errors as frame errors, and aborted, heartbeat and window
/// errors as carrier errors. Keys already in that shape are left alone.
fn legacy(counters: &mut Counters) {
    let mut fold = |from: &str, to: &'static str, also: &[&'static str]| {
        if let Some(value) = counters.remove(from) {
            let extra = also
                .iter()
                .filter_map(|k| counters.remove(k))
                .fold(value, u64::wrapping_add);
            counters.insert(to, extra);
        }
    };
    fold("receive_errors", "receive_errs", &[]);
    fold(
        "receive_dropped",
        "receive_drop",
        &["receive_missed_errors"],
    );
    fold("receive_fifo_errors", "receive_fifo", &[]);
    fold(
        "receive_frame_errors",
        "receive_frame",
        &[
            "receive_length_errors",
            "receive_over_errors",
            "receive_crc_errors",
        ],
    );
    fold("multicast", "receive_multicast", &[]);
    fold("transmit_errors", "transmit_errs", &[]);
    fold("transmit_dropped", "transmit_drop", &[]);
    fold("transmit_fifo_errors", "transmit_fifo", &[]);
    fold("collisions", "transmit_colls", &[]);
    fold(
        "transmit_carrier_errors",
        "transmit_carrier",
        &[
            "transmit_aborted_errors",
            "transmit_heartbeat_errors",
            "transmit_window_errors",
        ],
    );
}

/// `(device, columns)` per interface line. A line whose counters are not all unsigned
/// numbers is skipped, and a device named twice keeps its first line: junk or a repeated
/// name would otherwise reach counters as negative values or become duplicate series, which
/// make Prometheus refuse the whole scrape.
fn parse(text: &str) -> impl Iterator<Item = (&str, [u64; PROC_KEYS.len()])> {
    let mut seen: Vec<&str> = Vec::new();
    text.lines().skip(2).filter_map(move |line| {
        let (device, columns) = line.split_once(':')?;
        let device = device.trim();
        let mut values = [0; PROC_KEYS.len()];
        let mut count = 0;
        for column in columns.split_ascii_whitespace() {
            let value: u64 = column.parse().ok()?;
            // Columns a later kernel may add are read past, not reported.
            if let Some(slot) = values.get_mut(count) {
                *slot = value;
            }
            count += 1;
        }
        if device.is_empty() || count < PROC_KEYS.len() || seen.contains(&device) {
            return None;
        }
        seen.push(device);
        Some((device, values))
    })
}

/// An address's scope as node_exporter names it (Go's `net.IP` classification).
fn scope(ip: IpAddr) -> &'static str {
    let link_local = match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_link_local()
                || (v4.octets()[0] == 224 && v4.octets()[1] == 0 && v4.octets()[2] == 0)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback() || (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xff0f) == 0xff02
        }
    };
    if link_local {
        return "link-local";
    }
    if let IpAddr::V6(v6) = ip
        && (v6.segments()[0] & 0xff0f) == 0xff01
    {
        return "interface-local";
    }
    let global = match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast() || v4.is_loopback())
        }
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    };
    if global { "global" } else { "" }
}

impl Netdev {
    /// Each accepted interface's counters, as upstream keys them before folding.
    fn counters(&self) -> Result<Vec<(String, Counters)>, CollectError> {
        if self.netlink {
            let links = route::links().map_err(|e| read::failed(&self.dev, e))?;
            return Ok(links
                .into_iter()
                .filter(|link| self.devices.accepts(&link.name))
                .filter_map(|link| Some((link.name, netlink_counters(&link.stats?))))
                .collect());
        }
        let text = read::file(&self.dev)?;
        Ok(parse(&text)
            .filter(|(device, _)| self.devices.accepts(device))
            .map(|(device, values)| {
                (
                    device.to_owned(),
                    PROC_KEYS.iter().copied().zip(values).collect(),
                )
            })
            .collect())
    }

    fn address_info(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let failed = |e| CollectError::failed("netlink address dump", e);
        let names: BTreeMap<i32, String> = route::links()
            .map_err(failed)?
            .into_iter()
            .map(|link| (link.index, link.name))
            .collect();
        let family = out.gauge(
            "node_network_address_info",
            "node network address by device",
        );
        let mut seen = std::collections::BTreeSet::new();
        for address in route::addresses().map_err(failed)? {
            let Some(device) = names.get(&address.index) else {
                continue;
            };
            if !self.devices.accepts(device) {
                continue;
            }
            let ip = address.address.to_string();
            let netmask = address.prefix_len.to_string();
            if !seen.insert((device.clone(), ip.clone(), netmask.clone())) {
                continue;
            }
            out.sample(
                family,
                &[
                    ("device", device),
                    ("address", &ip),
                    ("netmask", &netmask),
                    ("scope", scope(address.address)),
                ],
                1.0,
            );
        }
        Ok(())
    }
}

impl Collector for Netdev {
    fn name(&self) -> &str {
        "netdev"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut families: BTreeMap<&'static str, FamilyId> = BTreeMap::new();
        // Opened once; each device's alias is read relative to it.
        let class = self
            .ifalias
            .then(|| read::AttributeDir::open(&self.class))
            .flatten();
        for (device, mut counters) in self.counters()? {
            if !self.detailed {
                legacy(&mut counters);
            }
            // Interfaces sysfs knows get the label, empty when they have no alias.
            let alias = class.as_ref().and_then(|dir| {
                dir.open_at(&[device.as_str()])?;
                Some(
                    dir.attribute_at(&[device.as_str(), "ifalias"])
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                )
            });
            let mut labels = vec![("device", device.as_str())];
            if let Some(alias) = &alias {
                labels.push(("ifalias", alias.as_str()));
            }
            for (key, value) in counters {
                let family = *families.entry(key).or_insert_with(|| {
                    out.family_fmt(
                        format_args!("node_network_{key}_total"),
                        format_args!("Network device statistic {key}."),
                        MetricType::Counter,
                    )
                });
                out.sample(family, &labels, value as f64);
            }
        }
        if self.address_info {
            self.address_info(out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_lines() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 2776770   11307    0    0    0     0          0         0  2776770   11307    0    0    0     0       0          0\n  eth0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let devices: Vec<(&str, Vec<u64>)> = super::parse(text)
            .map(|(device, columns)| (device, columns.to_vec()))
            .collect();
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].0, "lo");
        assert_eq!(devices[0].1[0], 2776770);
        assert_eq!(devices[1].0, "eth0");
        assert_eq!(devices[1].1[15], 16);
    }

    #[test]
    fn junk_negative_short_and_repeated_lines_are_skipped() {
        let text = "header\nheader\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth0: 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9\n  eth1: -1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth2: 1 2 3\n  eth3: a b c d e f g h i j k l m n o p\nno colon here\n  : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth4: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let devices: Vec<(&str, u64)> = super::parse(text)
            .map(|(device, columns)| (device, columns[0]))
            .collect();
        assert_eq!(devices, [("eth0", 1), ("eth4", 1)]);
    }

    #[test]
    fn netlink_counters_fold_into_proc_columns() {
        let stats = LinkStats {
            rx_errors: 1,
            rx_dropped: 2,
            rx_missed_errors: 3,
            rx_frame_errors: 4,
            rx_length_errors: 5,
            rx_over_errors: 6,
            rx_crc_errors: 7,
            tx_carrier_errors: 8,
            tx_aborted_errors: 9,
            tx_heartbeat_errors: 10,
            tx_window_errors: 11,
            multicast: 12,
            collisions: 13,
            rx_nohandler: 14,
            ..LinkStats::default()
        };
        let mut counters = netlink_counters(&stats);
        assert_eq!(counters.len(), 24);
        legacy(&mut counters);
        let keys: Vec<&str> = counters.keys().copied().collect();
        assert_eq!(
            keys,
            [
                "receive_bytes",
                "receive_compressed",
                "receive_drop",
                "receive_errs",
                "receive_fifo",
                "receive_frame",
                "receive_multicast",
                "receive_nohandler",
                "receive_packets",
                "transmit_bytes",
                "transmit_carrier",
                "transmit_colls",
                "transmit_compressed",
                "transmit_drop",
                "transmit_errs",
                "transmit_fifo",
                "transmit_packets",
            ]
        );
        assert_eq!(counters["receive_drop"], 5);
        assert_eq!(counters["receive_frame"], 22);
        assert_eq!(counters["transmit_carrier"], 38);
        assert_eq!(counters["receive_multicast"], 12);
        assert_eq!(counters["transmit_colls"], 13);
    }

    #[test]
    fn proc_columns_keep_their_names_when_folded() {
        let text = "h\nh\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let (_, values) = parse(text).next().unwrap();
        let mut counters: Counters = PROC_KEYS.iter().copied().zip(values).collect();
        legacy(&mut counters);
        assert_eq!(counters.len(), 16);
        assert_eq!(counters["receive_errs"], 3);
        assert_eq!(counters["receive_drop"], 4);
        assert_eq!(counters["receive_fifo"], 5);
        assert_eq!(counters["transmit_carrier"], 15);
    }

    #[test]
    fn address_scopes_as_go_names_them() {
        let scope = |s: &str| scope(s.parse().unwrap());
        assert_eq!(scope("127.0.0.1"), "link-local");
        assert_eq!(scope("169.254.1.1"), "link-local");
        assert_eq!(scope("224.0.0.251"), "link-local");
        assert_eq!(scope("10.1.2.3"), "global");
        assert_eq!(scope("::1"), "link-local");
        assert_eq!(scope("fe80::1"), "link-local");
        assert_eq!(scope("ff02::1"), "link-local");
        assert_eq!(scope("ff01::1"), "interface-local");
        assert_eq!(scope("2001:db8::1"), "global");
        assert_eq!(scope("0.0.0.0"), "");
        assert_eq!(scope("239.1.1.1"), "");
    }
}
