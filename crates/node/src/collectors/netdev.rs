//! `netdev`: per-interface traffic counters from `/proc/net/dev`, plus the
//! `rx_nohandler` count from sysfs that `/proc/net/dev` lacks.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::NameFilter;
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
        label_ifalias: options.netdev_label_ifalias,
        detailed: options.netdev_detailed_metrics,
        address_info: options.netdev_address_info,
    })
}

struct Netdev {
    /// `/proc/net/dev`.
    dev: PathBuf,
    /// `/sys/class/net`, for the counter `/proc/net/dev` lacks.
    class: PathBuf,
    devices: NameFilter,
    /// `--collector.netdev.label-ifalias`: every series also carries the device's
    /// `ifalias` (empty when it has none).
    label_ifalias: bool,
    /// `--collector.netdev.enable-detailed-metrics`: the kernel's link statistics one by
    /// one ([`DETAILED`]) instead of `/proc/net/dev`'s columns, where several are summed.
    detailed: bool,
    /// `--collector.netdev.address-info`: node_network_address_info per address.
    address_info: bool,
}

/// The scope label of an address, as node_exporter derives it with Go's `net.IP`
/// methods: `link-local` (also for loopback and link-local multicast),
/// `interface-local`, `global` (any other unicast address, private ones included), or
/// empty.
fn scope(address: std::net::IpAddr) -> &'static str {
    use std::net::IpAddr;
    let (loopback, link_local, link_local_multicast, interface_local_multicast, global) =
        match address {
            IpAddr::V4(v4) => (
                v4.is_loopback(),
                v4.is_link_local(),
                v4.octets()[..3] == [224, 0, 0],
                false,
                !(v4.is_unspecified()
                    || v4.is_loopback()
                    || v4.is_multicast()
                    || v4.is_link_local()
                    || v4.is_broadcast()),
            ),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                let link_local = o[0] == 0xfe && o[1] & 0xc0 == 0x80;
                (
                    v6.is_loopback(),
                    link_local,
                    o[0] == 0xff && o[1] & 0x0f == 0x02,
                    o[0] == 0xff && o[1] & 0x0f == 0x01,
                    !(v6.is_unspecified() || v6.is_loopback() || o[0] == 0xff || link_local),
                )
            }
        };
    if loopback || link_local || link_local_multicast {
        "link-local"
    } else if interface_local_multicast {
        "interface-local"
    } else if global {
        "global"
    } else {
        ""
    }
}

/// With `--collector.netdev.enable-detailed-metrics`: `(metric, file in
/// /sys/class/net/<device>/statistics/)`. These are the fields of the kernel's
/// `rtnl_link_stats64`, which node_exporter reads over netlink, under its names.
const DETAILED: [(&str, &str); 24] = [
    ("receive_packets", "rx_packets"),
    ("transmit_packets", "tx_packets"),
    ("receive_bytes", "rx_bytes"),
    ("transmit_bytes", "tx_bytes"),
    ("receive_errors", "rx_errors"),
    ("transmit_errors", "tx_errors"),
    ("receive_dropped", "rx_dropped"),
    ("transmit_dropped", "tx_dropped"),
    ("multicast", "multicast"),
    ("collisions", "collisions"),
    ("receive_length_errors", "rx_length_errors"),
    ("receive_over_errors", "rx_over_errors"),
    ("receive_crc_errors", "rx_crc_errors"),
    ("receive_frame_errors", "rx_frame_errors"),
    ("receive_fifo_errors", "rx_fifo_errors"),
    ("receive_missed_errors", "rx_missed_errors"),
    ("transmit_aborted_errors", "tx_aborted_errors"),
    ("transmit_carrier_errors", "tx_carrier_errors"),
    ("transmit_fifo_errors", "tx_fifo_errors"),
    ("transmit_heartbeat_errors", "tx_heartbeat_errors"),
    ("transmit_window_errors", "tx_window_errors"),
    ("receive_compressed", "rx_compressed"),
    ("transmit_compressed", "tx_compressed"),
    ("receive_nohandler", "rx_nohandler"),
];

/// The sixteen columns of `/proc/net/dev`, in order.
const COLUMNS: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

/// `(device, columns)` per interface line. A line whose counters are not all unsigned
/// numbers is skipped, and a device named twice keeps its first line: junk or a repeated
/// name would otherwise reach counters as negative values or become duplicate series, which
/// make Prometheus refuse the whole scrape.
fn parse(text: &str) -> impl Iterator<Item = (&str, [f64; COLUMNS.len()])> {
    let mut seen: Vec<&str> = Vec::new();
    text.lines().skip(2).filter_map(move |line| {
        let (device, columns) = line.split_once(':')?;
        let device = device.trim();
        let mut values = [0.0; COLUMNS.len()];
        let mut count = 0;
        for column in columns.split_ascii_whitespace() {
            let value: u64 = column.parse().ok()?;
            // Columns a later kernel may add are read past, not reported.
            if let Some(slot) = values.get_mut(count) {
                *slot = value as f64;
            }
            count += 1;
        }
        if device.is_empty() || count < COLUMNS.len() || seen.contains(&device) {
            return None;
        }
        seen.push(device);
        Some((device, values))
    })
}

impl Collector for Netdev {
    fn name(&self) -> &str {
        "netdev"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.dev)?;
        let mut family = |column: &str| {
            out.family_fmt(
                format_args!("node_network_{column}_total"),
                format_args!("Network device statistic {column}."),
                MetricType::Counter,
            )
        };
        let (families, detailed) = if self.detailed {
            (None, Some(DETAILED.map(|(metric, _)| family(metric))))
        } else {
            (Some(COLUMNS.map(&mut family)), None)
        };
        // Detailed statistics include it.
        let nohandler = (!self.detailed).then(|| family("receive_nohandler"));
        // Opened once; each device's counter is read relative to it.
        let class = read::AttributeDir::open(&self.class);
        for (device, columns) in parse(&text) {
            if !self.devices.accepts(device) {
                continue;
            }
            let ifalias = if self.label_ifalias {
                class
                    .as_ref()
                    .and_then(|dir| dir.attribute_at(&[device, "ifalias"]))
            } else {
                None
            };
            let with_alias;
            let labels: &[(&str, &str)] = if self.label_ifalias {
                with_alias = [
                    ("device", device),
                    ("ifalias", ifalias.as_deref().unwrap_or_default()),
                ];
                &with_alias
            } else {
                &[("device", device)]
            };
            if let Some(detailed) = &detailed {
                // Each statistic read alone; one a driver does not keep is left out.
                for ((_, file), family) in DETAILED.iter().zip(detailed) {
                    if let Some(value) = class.as_ref().and_then(|dir| {
                        dir.attribute_value_at::<f64>(&[device, "statistics", *file])
                    }) {
                        out.sample(*family, labels, value);
                    }
                }
                continue;
            }
            for (family, value) in families.iter().flatten().zip(columns) {
                out.sample(*family, labels, value);
            }
            // A device removed since /proc/net/dev was read simply has no value here.
            if let Some(nohandler) = nohandler
                && let Some(value) = class.as_ref().and_then(|dir| {
                    dir.attribute_value_at::<f64>(&[device, "statistics/rx_nohandler"])
                })
            {
                out.sample(nohandler, labels, value);
            }
        }
        if self.address_info {
            let addresses = crate::sys::interface_addresses()
                .map_err(|e| CollectError::failed("listing interface addresses", e))?;
            let family = out.gauge(
                "node_network_address_info",
                "node network address by device",
            );
            for entry in addresses
                .iter()
                .filter(|entry| self.devices.accepts(&entry.device))
            {
                let address = entry.address.to_string();
                let prefix = entry.prefix.to_string();
                out.sample(
                    family,
                    &[
                        ("device", &entry.device),
                        ("address", &address),
                        ("netmask", &prefix),
                        ("scope", scope(entry.address)),
                    ],
                    1.0,
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn interface_lines() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 2776770   11307    0    0    0     0          0         0  2776770   11307    0    0    0     0       0          0\n  eth0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let devices: Vec<(&str, Vec<f64>)> = super::parse(text)
            .map(|(device, columns)| (device, columns.to_vec()))
            .collect();
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].0, "lo");
        assert_eq!(devices[0].1[0], 2776770.0);
        assert_eq!(devices[1].0, "eth0");
        assert_eq!(devices[1].1[15], 16.0);
    }

    #[test]
    fn junk_negative_short_and_repeated_lines_are_skipped() {
        let text = "header\nheader\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth0: 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9\n  eth1: -1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth2: 1 2 3\n  eth3: a b c d e f g h i j k l m n o p\nno colon here\n  : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth4: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let devices: Vec<(&str, f64)> = super::parse(text)
            .map(|(device, columns)| (device, columns[0]))
            .collect();
        assert_eq!(devices, [("eth0", 1.0), ("eth4", 1.0)]);
    }

    #[test]
    fn label_ifalias_adds_each_devices_alias() {
        use kiln_registry::{Collector, MetricSet, ScrapeContext};

        let root = tempfile::tempdir().unwrap();
        let dev = root.path().join("dev");
        std::fs::write(
            &dev,
            "Inter-| Receive | Transmit\n face |bytes packets|bytes packets\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth1: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
        )
        .unwrap();
        let class = root.path().join("class");
        std::fs::create_dir_all(class.join("eth0")).unwrap();
        std::fs::create_dir_all(class.join("eth1")).unwrap();
        std::fs::write(class.join("eth0/ifalias"), "uplink to spine 1\n").unwrap();
        let collector = super::Netdev {
            dev,
            class,
            devices: crate::filter::NameFilter::All,
            label_ifalias: true,
            detailed: false,
            address_info: false,
        };
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::new(std::time::Instant::now() + std::time::Duration::from_secs(5));
        collector.collect(&ctx, &mut out).unwrap();
        out.seal();
        let mut text = String::new();
        kiln_registry::metrics::encode(&[&out], kiln_registry::metrics::Format::Text, &mut text);
        assert!(
            text.contains(
                r#"node_network_receive_bytes_total{device="eth0",ifalias="uplink to spine 1"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"node_network_receive_bytes_total{device="eth1",ifalias=""} 1"#),
            "{text}"
        );
    }

    #[test]
    fn detailed_metrics_read_each_statistic_from_sysfs() {
        use kiln_registry::{Collector, MetricSet, ScrapeContext};

        let root = tempfile::tempdir().unwrap();
        let dev = root.path().join("dev");
        std::fs::write(
            &dev,
            "Inter-| Receive | Transmit\n face |bytes packets|bytes packets\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
        )
        .unwrap();
        let statistics = root.path().join("class/eth0/statistics");
        std::fs::create_dir_all(&statistics).unwrap();
        for (index, (_, file)) in super::DETAILED.iter().enumerate() {
            std::fs::write(statistics.join(file), format!("{}\n", 100 + index)).unwrap();
        }
        let collector = super::Netdev {
            dev,
            class: root.path().join("class"),
            devices: crate::filter::NameFilter::All,
            label_ifalias: false,
            detailed: true,
            address_info: false,
        };
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::new(std::time::Instant::now() + std::time::Duration::from_secs(5));
        collector.collect(&ctx, &mut out).unwrap();
        out.seal();
        let mut text = String::new();
        kiln_registry::metrics::encode(&[&out], kiln_registry::metrics::Format::Text, &mut text);
        for line in [
            r#"node_network_receive_packets_total{device="eth0"} 100"#,
            r#"node_network_receive_crc_errors_total{device="eth0"} 112"#,
            r#"node_network_transmit_window_errors_total{device="eth0"} 120"#,
            r#"node_network_receive_nohandler_total{device="eth0"} 123"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        // Not /proc/net/dev's summed columns.
        assert!(!text.contains("receive_errs"), "{text}");
        assert_eq!(text.matches("# TYPE ").count(), 24, "{text}");
    }

    #[test]
    fn address_scopes_as_go_names_them() {
        for (address, expected) in [
            ("127.0.0.1", "link-local"),
            ("::1", "link-local"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("224.0.0.251", "link-local"),
            ("ff02::1", "link-local"),
            ("ff01::1", "interface-local"),
            ("10.0.0.5", "global"),
            ("2001:db8::1", "global"),
            ("0.0.0.0", ""),
            ("239.1.1.1", ""),
        ] {
            assert_eq!(
                super::scope(address.parse().unwrap()),
                expected,
                "{address}"
            );
        }
    }

    #[test]
    fn address_info_lists_loopbacks_address() {
        use kiln_registry::{Collector, MetricSet, ScrapeContext};

        let root = tempfile::tempdir().unwrap();
        let dev = root.path().join("dev");
        std::fs::write(&dev, "Inter-|\n face |\n").unwrap();
        let collector = super::Netdev {
            dev,
            class: root.path().join("class"),
            devices: crate::filter::NameFilter::All,
            label_ifalias: false,
            detailed: false,
            address_info: true,
        };
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::new(std::time::Instant::now() + std::time::Duration::from_secs(5));
        collector.collect(&ctx, &mut out).unwrap();
        out.seal();
        let mut text = String::new();
        kiln_registry::metrics::encode(&[&out], kiln_registry::metrics::Format::Text, &mut text);
        let line = r#"node_network_address_info{address="127.0.0.1",device="lo",netmask="8",scope="link-local"} 1"#;
        assert!(text.contains(line), "{text}");
    }
}
