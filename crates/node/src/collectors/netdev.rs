//! `netdev`: per-interface traffic counters from `/proc/net/dev`, plus the
//! `rx_nohandler` count from sysfs that `/proc/net/dev` lacks.

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::NameFilter;
use crate::paths::Paths;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options;
    if options.netdev_address_info {
        tracing::warn!(
            "--collector.netdev.address-info is not supported yet; node_network_address_info is not exported."
        );
    }
    boxed(Netdev {
        paths: settings.paths.clone(),
        devices: NameFilter::new(
            options.netdev_include.as_deref(),
            options.netdev_exclude.as_deref(),
            (
                "collector.netdev.device-include",
                "collector.netdev.device-exclude",
            ),
        )?,
    })
}

struct Netdev {
    paths: Paths,
    devices: NameFilter,
}

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

/// `(device, columns)` per interface line.
fn parse(text: &str) -> Vec<(&str, Vec<f64>)> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (device, columns) = line.split_once(':')?;
            Some((
                device.trim(),
                columns
                    .split_ascii_whitespace()
                    .map(|c| c.parse().unwrap_or(0.0))
                    .collect(),
            ))
        })
        .collect()
}

impl Collector for Netdev {
    fn name(&self) -> &str {
        "netdev"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.paths.proc("net/dev"))?;
        let devices: Vec<(&str, Vec<f64>)> = parse(&text)
            .into_iter()
            .filter(|(d, _)| self.devices.accepts(d))
            .collect();
        let mut family = |column: &str| {
            out.family_fmt(
                format_args!("node_network_{column}_total"),
                format_args!("Network device statistic {column}."),
                MetricType::Counter,
            )
        };
        let families: Vec<FamilyId> = COLUMNS.iter().map(|c| family(c)).collect();
        let nohandler = family("receive_nohandler");
        for (device, columns) in &devices {
            let labels = [("device", *device)];
            for (family, value) in families.iter().zip(columns) {
                out.sample(*family, &labels, *value);
            }
            // A device removed since /proc/net/dev was read simply has no value here.
            let path = self
                .paths
                .sys(&format!("class/net/{device}/statistics/rx_nohandler"));
            if let Some(value) = read::attribute_value::<f64>(&path) {
                out.sample(nohandler, &labels, value);
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
        let devices = super::parse(text);
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].0, "lo");
        assert_eq!(devices[0].1[0], 2776770.0);
        assert_eq!(devices[1].0, "eth0");
        assert_eq!(devices[1].1[15], 16.0);
    }
}
