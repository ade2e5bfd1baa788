//! `netclass`: properties of each network interface from `/sys/class/net/<iface>/`.
//!
//! Interfaces come and go (containers, VPNs): one that disappears while it is being read
//! loses only the values not yet read, never the scrape.

use kiln_registry::config::ConfigError;
use std::path::PathBuf;

use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};
use regex::Regex;

use super::{Settings, boxed};
use crate::{filter, read};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options;
    boxed(Netclass {
        root: settings.paths.sys("class/net"),
        ignored: filter::regex(
            "collector.netclass.ignored-devices",
            &options.netclass_ignored,
        )?,
        ignore_invalid_speed: options.netclass_ignore_invalid_speed,
    })
}

struct Netclass {
    /// `/sys/class/net`: an entry per interface.
    root: PathBuf,
    ignored: Regex,
    ignore_invalid_speed: bool,
}

/// A numeric sysfs attribute exported as `node_network_<metric>`.
struct Property {
    file: &'static str,
    metric: &'static str,
    counter: bool,
}

const fn property(file: &'static str, metric: &'static str, counter: bool) -> Property {
    Property {
        file,
        metric,
        counter,
    }
}

/// In node_exporter's output order (alphabetical by metric).
const PROPERTIES: [Property; 15] = [
    property("addr_assign_type", "address_assign_type", false),
    property("carrier", "carrier", false),
    property("carrier_changes", "carrier_changes_total", true),
    property("carrier_down_count", "carrier_down_changes_total", true),
    property("carrier_up_count", "carrier_up_changes_total", true),
    property("dev_id", "device_id", false),
    property("dormant", "dormant", false),
    property("flags", "flags", false),
    property("ifindex", "iface_id", false),
    property("iflink", "iface_link", false),
    property("link_mode", "iface_link_mode", false),
    property("mtu", "mtu_bytes", false),
    property("name_assign_type", "name_assign_type", false),
    property("netdev_group", "net_dev_group", false),
    property("type", "protocol_type", false),
];

/// `IFF_UP`, the administrative state bit of `flags`.
const IFF_UP: i64 = 0x1;

/// sysfs numbers are decimal, except `dev_id` and `flags` which are `0x…`.
fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok().map(|v| v as f64),
        None => text.parse().ok(),
    }
}

impl Collector for Netclass {
    fn name(&self) -> &str {
        "netclass"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let devices = read::Entries::list(&self.root, |name| !self.ignored.is_match(name))?;
        let properties = PROPERTIES.each_ref().map(|p| {
            out.family_fmt(
                format_args!("node_network_{}", p.metric),
                format_args!("Network device property: {}", p.metric),
                if p.counter {
                    MetricType::Counter
                } else {
                    MetricType::Gauge
                },
            )
        });
        let info = out.gauge(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
        );
        let up = out.gauge(
            "node_network_up",
            "Value is 1 if operstate is 'up', 0 otherwise.",
        );
        let speed = out.gauge(
            "node_network_speed_bytes",
            "Network device property: speed_bytes",
        );
        let queue = out.gauge(
            "node_network_transmit_queue_length",
            "Network device property: transmit_queue_length",
        );
        for device in devices.names() {
            // Hundreds of veth devices on a busy node can be slow to read: stop at the
            // deadline with what we have rather than lose the whole collector.
            if ctx.expired() {
                break;
            }
            // `bonding_masters` and other plain files live beside the interfaces.
            let Some(dir) = devices.dir().open_at(&[device]) else {
                continue;
            };
            let attribute = |file: &str| dir.attribute(file);
            let Some(operstate) = attribute("operstate") else {
                continue;
            };
            let labels = [("device", device)];
            let mut flags = 0;
            for (property, family) in PROPERTIES.iter().zip(&properties) {
                if let Some(value) = attribute(property.file).as_deref().and_then(number) {
                    if property.file == "flags" {
                        flags = value as i64;
                    }
                    out.sample(*family, &labels, value);
                }
            }
            if let Some(mbits) = attribute("speed").as_deref().and_then(number)
                && (mbits >= 0.0 || !self.ignore_invalid_speed)
            {
                out.sample(speed, &labels, mbits * 125_000.0);
            }
            if let Some(length) = attribute("tx_queue_len").as_deref().and_then(number) {
                out.sample(queue, &labels, length);
            }
            let adminstate = if flags & IFF_UP != 0 { "up" } else { "down" };
            let text = |file: &str| attribute(file).unwrap_or_default();
            out.sample(
                info,
                &[
                    ("device", device),
                    ("address", &text("address")),
                    ("broadcast", &text("broadcast")),
                    ("duplex", &text("duplex")),
                    ("operstate", &*operstate),
                    ("adminstate", adminstate),
                    ("ifalias", &text("ifalias")),
                ],
                1.0,
            );
            out.sample(up, &labels, if operstate == "up" { 1.0 } else { 0.0 });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_and_hex_attributes() {
        assert_eq!(super::number("1500\n"), Some(1500.0));
        assert_eq!(super::number("0x1003"), Some(4099.0));
        assert_eq!(super::number("-1"), Some(-1.0));
        assert_eq!(super::number(""), None);
    }
}
