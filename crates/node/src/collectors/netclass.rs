//! `netclass`: properties of each network interface from `/sys/class/net/<iface>/`.
//!
//! Interfaces come and go (containers, VPNs): one that disappears while it is being read
//! loses only the values not yet read, never the scrape.
//!
//! When `/sys` is this process's own live sysfs, most attributes come instead from one
//! rtnetlink link dump per scrape, which carries them for every interface: a file opened
//! and read per attribute and interface made this collector more than half of the
//! exporter's file opens per scrape. The kernel fills both from the same fields of the device, and they are
//! formatted here as sysfs prints them, so the output is the same. What the dump lacks, or
//! gives differently (`flags` there has runtime bits sysfs's lacks), is still read from
//! sysfs. Any other `--path.sysfs` (a fixture tree, a container's view of the host) is read
//! from files alone: the dump would describe this process's network namespace, not theirs.
//! For the same reason a scrape whose dump does not list the interfaces sysfs lists (a
//! host's `/sys` bind-mounted into a container with a namespace of its own) reads sysfs.

use kiln_registry::config::ConfigError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_registry::{CollectError, Collector, LogLimiter, MetricSet, MetricType, ScrapeContext};
use regex::Regex;

use super::{Settings, boxed};
use crate::netlink::route::{self, Link};
use crate::read::Text;
use crate::{filter, read};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options;
    let root = settings.paths.sys("class/net");
    boxed(Netclass {
        netlink: is_live_sysfs(&root),
        root,
        ignored: filter::regex(
            "collector.netclass.ignored-devices",
            &options.netclass_ignored,
        )?,
        ignore_invalid_speed: options.netclass_ignore_invalid_speed,
        netlink_failures: LogLimiter::new(Duration::from_secs(60)),
    })
}

/// `SYSFS_MAGIC`, sysfs's `f_type`.
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// Whether `root` is `/sys/class/net` of a sysfs mounted at `/sys`, the one whose
/// interfaces a link dump of this process lists.
fn is_live_sysfs(root: &Path) -> bool {
    // `f_type` is as wide as a C long, which differs between targets.
    #[allow(clippy::unnecessary_cast)]
    let is_sysfs = |fs: rustix::fs::StatFs| fs.f_type as i64 == SYSFS_MAGIC;
    root == Path::new("/sys/class/net") && rustix::fs::statfs("/sys").is_ok_and(is_sysfs)
}

struct Netclass {
    /// `/sys/class/net`: an entry per interface.
    root: PathBuf,
    ignored: Regex,
    ignore_invalid_speed: bool,
    /// Take what the link dump carries from it rather than from sysfs.
    netlink: bool,
    /// A failed dump falls back to sysfs for the scrape; this keeps that from flooding the log.
    netlink_failures: LogLimiter,
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
/// `IFF_DORMANT`, a runtime bit of the link dump's flags (set only while the device is up).
const IFF_DORMANT: u32 = 0x2_0000;

/// sysfs `operstate`'s words, by `IF_OPER_*` value.
const OPERSTATES: [&str; 7] = [
    "unknown",
    "notpresent",
    "down",
    "lowerlayerdown",
    "testing",
    "dormant",
    "up",
];

/// An attribute's text, read from sysfs or formatted from the link dump.
enum Value {
    Read(Text),
    Given(String),
}

impl std::ops::Deref for Value {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Value::Read(text) => text,
            Value::Given(text) => text,
        }
    }
}

/// A hardware address as sysfs prints it (`%*phC`): lower-case hex bytes joined by `:`.
fn hardware_address(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 3);
    for (index, byte) in bytes.iter().enumerate() {
        if index > 0 {
            text.push(':');
        }
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    text
}

/// The sysfs attribute `file` of `link` as sysfs would print it, from the link dump:
/// `None` when the dump does not carry it (read the file), `Some(None)` when sysfs would
/// refuse to read it (`carrier`, `dormant`, `speed` and `duplex` of a device that is down).
fn from_dump(link: &Link, file: &str) -> Option<Option<String>> {
    let p = &link.properties;
    let up = p.flags & IFF_UP as u32 != 0;
    // sysfs prints these unsigned fields with `%d`.
    let decimal = |value: Option<u32>| value.map(|v| Some((v as i32).to_string()));
    match file {
        // Neither is sent for a device without an address; sysfs's files are empty then.
        "address" => Some(Some(hardware_address(
            p.address.as_deref().unwrap_or_default(),
        ))),
        "broadcast" => Some(Some(hardware_address(
            p.broadcast.as_deref().unwrap_or_default(),
        ))),
        "mtu" => decimal(p.mtu),
        "operstate" => {
            let state = usize::from(p.operstate?);
            Some(OPERSTATES.get(state).map(|word| (*word).to_owned()))
        }
        "carrier" if !up => Some(None),
        "carrier" => p.carrier.map(|c| Some(u8::from(c != 0).to_string())),
        "carrier_changes" => decimal(p.carrier_changes),
        "carrier_up_count" => decimal(p.carrier_up_count),
        "carrier_down_count" => decimal(p.carrier_down_count),
        "ifindex" => Some(Some(link.index.to_string())),
        // Sent only when it differs from the index.
        "iflink" => Some(Some(p.link.map_or(link.index, |l| l as i32).to_string())),
        "link_mode" => p.link_mode.map(|mode| Some(mode.to_string())),
        "dormant" if !up => Some(None),
        "dormant" => Some(Some(u8::from(p.flags & IFF_DORMANT != 0).to_string())),
        "tx_queue_len" => decimal(p.tx_queue_len),
        "netdev_group" => decimal(p.group),
        "type" => Some(Some(p.kind.to_string())),
        // Sent only when the device has one; sysfs's file is empty otherwise.
        "ifalias" => Some(Some(
            p.alias.as_deref().unwrap_or_default().trim_end().to_owned(),
        )),
        // Not in the dump, but sysfs answers them only for a device that is up (the
        // kernel asks the driver then), so a down device's need not be tried.
        "speed" | "duplex" if !up => Some(None),
        _ => None,
    }
}

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
        let mut links = if self.netlink {
            self.dump()
        } else {
            HashMap::new()
        };
        if !same_interfaces(&devices, &links, &self.ignored) {
            links.clear();
        }
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
            let link = links.get(device);
            let attribute = |file: &str| match link.and_then(|link| from_dump(link, file)) {
                Some(given) => given.map(Value::Given),
                None => dir.attribute(file).map(Value::Read),
            };
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
            let text = |file: &str| attribute(file).unwrap_or(Value::Given(String::new()));
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
            out.sample(up, &labels, if &*operstate == "up" { 1.0 } else { 0.0 });
        }
        Ok(())
    }
}

/// Whether the dump lists exactly the interfaces of the sysfs listing (an empty dump
/// matches nothing). They differ when `/sys` belongs to another network namespace than
/// this process (a host's sysfs bind-mounted into a container), whose interfaces the
/// dump does not describe, or when an interface came or went between the two: sysfs is
/// read for that scrape then.
fn same_interfaces(
    devices: &read::Entries,
    links: &HashMap<String, Link>,
    ignored: &Regex,
) -> bool {
    let mut listed = 0;
    // A plain file beside the interfaces, there while the bonding driver is loaded.
    for name in devices.names().filter(|name| *name != "bonding_masters") {
        if !links.contains_key(name) {
            return false;
        }
        listed += 1;
    }
    listed > 0 && listed == links.keys().filter(|name| !ignored.is_match(name)).count()
}

impl Netclass {
    /// Every link of the dump by name; none when the dump fails, so that the scrape reads
    /// sysfs instead.
    fn dump(&self) -> HashMap<String, Link> {
        match route::links() {
            Ok(links) => links
                .into_iter()
                .map(|link| (link.name.clone(), link))
                .collect(),
            Err(error) => {
                if let Some(held_back) = self.netlink_failures.check() {
                    tracing::warn!(
                        collector = "netclass",
                        %error,
                        held_back,
                        "netlink link dump failed; reading interfaces from sysfs"
                    );
                }
                HashMap::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kiln_registry::{Collector, LogLimiter, MetricSet, ScrapeContext};
    use regex::Regex;

    use super::{Netclass, is_live_sysfs};
    use crate::collectors::testing::series;

    fn collect(netlink: bool) -> Vec<String> {
        let collector = Netclass {
            root: "/sys/class/net".into(),
            ignored: Regex::new("^$").unwrap(),
            ignore_invalid_speed: false,
            netlink,
            netlink_failures: LogLimiter::new(Duration::from_secs(60)),
        };
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::with_budget(Duration::from_secs(5));
        collector.collect(&ctx, &mut out).unwrap();
        series(&mut out)
    }

    /// Counters that may move between two reads of a live host.
    fn moving(series: &str) -> bool {
        [
            "carrier_changes",
            "carrier_up_changes",
            "carrier_down_changes",
        ]
        .iter()
        .any(|name| series.starts_with(&format!("node_network_{name}_total{{")))
    }

    #[test]
    fn the_link_dump_gives_what_sysfs_gives() {
        assert!(is_live_sysfs("/sys/class/net".as_ref()));
        assert!(!is_live_sysfs("/host/sys/class/net".as_ref()));
        // The dump works here and lists sysfs's interfaces, so the collector below takes
        // from it rather than falling back to sysfs.
        let devices = crate::read::Entries::list("/sys/class/net".as_ref(), |_| true).unwrap();
        let links = crate::netlink::route::links().unwrap();
        let links = links.into_iter().map(|l| (l.name.clone(), l)).collect();
        assert!(super::same_interfaces(
            &devices,
            &links,
            &Regex::new("^$").unwrap()
        ));
        let from_files = collect(false);
        let from_dump = collect(true);
        assert!(
            from_files.iter().any(|s| s.contains("device=lo")),
            "{from_files:?}"
        );
        let steady = |all: &[String]| -> Vec<String> {
            all.iter().filter(|s| !moving(s)).cloned().collect()
        };
        assert_eq!(steady(&from_dump), steady(&from_files));
        // The moving counters: the same series, values within a few changes.
        let counters = |all: &[String]| -> Vec<(String, f64)> {
            all.iter()
                .filter(|s| moving(s))
                .map(|s| {
                    let (series, value) = s.rsplit_once(' ').unwrap();
                    (series.to_owned(), value.parse().unwrap())
                })
                .collect()
        };
        let (files, dump) = (counters(&from_files), counters(&from_dump));
        assert_eq!(files.len(), dump.len(), "{files:?} {dump:?}");
        assert!(!files.is_empty());
        for ((a, x), (b, y)) in files.iter().zip(&dump) {
            assert_eq!(a, b);
            assert!(
                (x - y).abs() <= 2.0,
                "{a}: {x} from sysfs, {y} from the dump"
            );
        }
    }

    #[test]
    fn the_dump_is_used_only_when_it_lists_the_same_interfaces() {
        use super::{HashMap, Link, same_interfaces};
        use crate::netlink::route::LinkProperties;
        use crate::read::Entries;

        let root = tempfile::tempdir().unwrap();
        for name in ["eth0", "lo", "veth1"] {
            std::fs::create_dir(root.path().join(name)).unwrap();
        }
        std::fs::write(root.path().join("bonding_masters"), "\n").unwrap();
        let ignored = Regex::new("^veth").unwrap();
        let devices = Entries::list(root.path(), |name| !ignored.is_match(name)).unwrap();
        let dump = |names: &[&str]| -> HashMap<String, Link> {
            let link = |(index, name): (usize, &&str)| Link {
                index: index as i32 + 1,
                name: (*name).to_owned(),
                stats: None,
                properties: LinkProperties::default(),
            };
            let links = names.iter().enumerate().map(link);
            links.map(|l| (l.name.clone(), l)).collect()
        };
        assert!(same_interfaces(
            &devices,
            &dump(&["lo", "eth0", "veth1"]),
            &ignored
        ));
        assert!(same_interfaces(&devices, &dump(&["lo", "eth0"]), &ignored));
        // Another namespace's interfaces, or one that came or went in between.
        assert!(!same_interfaces(&devices, &dump(&["lo", "eth1"]), &ignored));
        assert!(!same_interfaces(&devices, &dump(&["lo"]), &ignored));
        assert!(!same_interfaces(
            &devices,
            &dump(&["lo", "eth0", "wg0"]),
            &ignored
        ));
        assert!(!same_interfaces(&devices, &HashMap::new(), &ignored));
    }

    #[test]
    fn decimal_and_hex_attributes() {
        assert_eq!(super::number("1500\n"), Some(1500.0));
        assert_eq!(super::number("0x1003"), Some(4099.0));
        assert_eq!(super::number("-1"), Some(-1.0));
        assert_eq!(super::number(""), None);
    }
}
