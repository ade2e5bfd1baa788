//! `ethtool` (off by default): what network drivers report through the `SIOCETHTOOL`
//! ioctl, as `ethtool -i`, `ethtool` and `ethtool -S` show it. The NIC statistics carry
//! what `/proc/net/dev` lacks: per-queue counters, and on EC2 the ENA driver's
//! `bw_in_allowance_exceeded`, `pps_allowance_exceeded` and friends, which count packets
//! the instance's network allowances dropped or queued.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use regex::Regex;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::{self, NameFilter};
use crate::read;
use crate::sys::{EthtoolSocket, LinkSettings};

/// The ethtool collector's options.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "ethtool_options")]
pub struct Options {
    /// Regexp of ethtool devices to include (mutually exclusive to device-exclude).
    #[arg(long = "collector.ethtool.device-include", value_name = "REGEX")]
    pub ethtool_device_include: Option<String>,
    /// Regexp of ethtool devices to exclude (mutually exclusive to device-include).
    #[arg(long = "collector.ethtool.device-exclude", value_name = "REGEX")]
    pub ethtool_device_exclude: Option<String>,
    /// Regexp of ethtool statistics (names after sanitising, before renaming) to report;
    /// it matches anywhere in the name unless anchored.
    #[arg(
        long = "collector.ethtool.metrics-include",
        value_name = "REGEX",
        default_value = ".*"
    )]
    pub ethtool_metrics_include: String,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options.ethtool;
    boxed(Ethtool {
        class: settings.paths.sys("class/net"),
        devices: NameFilter::new(
            options.ethtool_device_include.as_deref(),
            options.ethtool_device_exclude.as_deref(),
            (
                "collector.ethtool.device-include",
                "collector.ethtool.device-exclude",
            ),
        )?,
        metrics: filter::regex(
            "collector.ethtool.metrics-include",
            &options.ethtool_metrics_include,
        )?,
        logged: Mutex::new(BTreeSet::new()),
    })
}

struct Ethtool {
    /// `/sys/class/net`: the devices to ask.
    class: PathBuf,
    devices: NameFilter,
    metrics: Regex,
    /// `(device, what)` pairs whose error was logged, so a device without a driver that
    /// answers is named once, not every scrape. Emptied when it reaches [`MAX_LOGGED`],
    /// so containers' interfaces coming and going do not grow it for ever.
    logged: Mutex<BTreeSet<(String, &'static str)>>,
}

/// Most remembered `(device, what)` pairs of logged errors.
const MAX_LOGGED: usize = 1024;

/// One ethtool statistic as a series: the family name, its help, the value.
#[derive(Debug, Clone, PartialEq)]
struct Stat {
    name: String,
    help: String,
    value: f64,
}

/// Statistics whose families have their own names and help (the rest are
/// `node_ethtool_<renamed statistic>` with help `Network interface <statistic>`).
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "rx_bytes",
        "node_ethtool_received_bytes_total",
        "Network interface bytes received",
    ),
    (
        "rx_dropped",
        "node_ethtool_received_dropped_total",
        "Number of received frames dropped",
    ),
    (
        "rx_errors",
        "node_ethtool_received_errors_total",
        "Number of received frames with errors",
    ),
    (
        "rx_packets",
        "node_ethtool_received_packets_total",
        "Network interface packets received",
    ),
    (
        "tx_bytes",
        "node_ethtool_transmitted_bytes_total",
        "Network interface bytes sent",
    ),
    (
        "tx_errors",
        "node_ethtool_transmitted_errors_total",
        "Number of sent frames with errors",
    ),
    (
        "tx_packets",
        "node_ethtool_transmitted_packets_total",
        "Network interface packets sent",
    ),
];

/// node_exporter's metric name sanitising: every run of characters outside
/// `[0-9A-Za-z_]`, with the underscores around it, becomes one `_`.
fn sanitize(name: &str) -> String {
    static INVALID: LazyLock<Regex> =
        LazyLock::new(|| Regex::new("_*[^0-9A-Za-z_]+_*").unwrap_or_else(|e| unreachable!("{e}")));
    INVALID.replace_all(name, "_").into_owned()
}

/// node_exporter's family name for a (sanitised) statistic: lower case, leading
/// underscores dropped, the words `rx` → `received` and `tx` → `transmitted` (matches
/// do not overlap, so in `rx_rx` only the first is a word).
fn family_name(sanitized: &str) -> String {
    static RX: LazyLock<Regex> =
        LazyLock::new(|| Regex::new("(^|_)rx(_|$)").unwrap_or_else(|e| unreachable!("{e}")));
    static TX: LazyLock<Regex> =
        LazyLock::new(|| Regex::new("(^|_)tx(_|$)").unwrap_or_else(|e| unreachable!("{e}")));
    let lower = sanitized.to_lowercase();
    let trimmed = lower.trim_start_matches('_');
    let renamed = RX.replace_all(trimmed, "${1}received${2}");
    let renamed = TX.replace_all(&renamed, "${1}transmitted${2}");
    format!("node_ethtool_{renamed}")
}

/// The series of one device's statistics, sorted by family name: those `metrics`
/// matches, the known ones under their own names, and none of the statistics whose
/// names collide after renaming (which of them would be meant is unknowable).
fn stats_series(stats: &[(String, u64)], metrics: &Regex) -> Vec<Stat> {
    // Family name → (sanitised statistic, value), or None once it collided.
    let mut by_family: BTreeMap<String, Option<(String, u64)>> = BTreeMap::new();
    for (raw, value) in stats {
        let sanitized = sanitize(raw);
        if !metrics.is_match(&sanitized) {
            continue;
        }
        let family = family_name(&sanitized);
        by_family
            .entry(family)
            .and_modify(|slot| *slot = None)
            .or_insert(Some((sanitized, *value)));
    }
    let mut series: Vec<Stat> = by_family
        .into_iter()
        .filter_map(|(family, slot)| {
            let (sanitized, value) = slot?;
            let (name, help) = match KNOWN.iter().find(|(key, ..)| *key == sanitized) {
                Some((_, name, help)) => ((*name).to_owned(), (*help).to_owned()),
                None => (family, format!("Network interface {sanitized}")),
            };
            Some(Stat {
                name,
                help,
                value: value as f64,
            })
        })
        .collect();
    series.sort_by(|a, b| a.name.cmp(&b.name));
    series
}

/// Bits of `ETHTOOL_LINK_MODE_*` (below 32, all the legacy settings hold) that are a
/// speed: `(bit, megabits per second, duplex, medium)`.
const SPEEDS: &[(u32, u32, &str, &str)] = &[
    (0, 10, "half", "T"),
    (1, 10, "full", "T"),
    (2, 100, "half", "T"),
    (3, 100, "full", "T"),
    (4, 1000, "half", "T"),
    (5, 1000, "full", "T"),
    (12, 10000, "full", "T"),
    (17, 1000, "full", "KX"),
    (18, 10000, "full", "KX4"),
    (19, 10000, "full", "KR"),
    (20, 10000, "full", "R_FEC"),
    (21, 20000, "full", "MLD2"),
    (22, 20000, "full", "KR2"),
    (23, 40000, "full", "KR4"),
    (24, 40000, "full", "CR4"),
    (25, 40000, "full", "SR4"),
    (26, 40000, "full", "LR4"),
    (27, 56000, "full", "KR4"),
    (28, 56000, "full", "CR4"),
    (29, 56000, "full", "SR4"),
    (30, 56000, "full", "LR4"),
    (31, 25000, "full", "CR"),
];

/// Port types: `(bit, type label)`.
const PORTS: &[(u32, &str)] = &[
    (7, "TP"),
    (8, "AUI"),
    (9, "MII"),
    (10, "FIBRE"),
    (11, "BNC"),
    (16, "Backplane"),
];
const AUTONEG_BIT: u32 = 6;
const PAUSE_BIT: u32 = 13;
const ASYM_PAUSE_BIT: u32 = 14;

fn has(modes: u32, bit: u32) -> bool {
    modes & (1 << bit) != 0
}

/// The speeds in `modes`: `(duplex, mode, bytes per second)`, e.g. `("full", "1000baseT",
/// 1.25e8)`.
fn speeds(modes: u32) -> Vec<(&'static str, String, f64)> {
    SPEEDS
        .iter()
        .filter(|(bit, ..)| has(modes, *bit))
        .map(|(_, mbits, duplex, medium)| {
            (
                *duplex,
                format!("{mbits}base{medium}"),
                f64::from(*mbits) * (1_000_000.0 / 8.0),
            )
        })
        .collect()
}

/// The families of the link settings, declared once per scrape.
struct LinkFamilies {
    supported_speed: kiln_registry::FamilyId,
    advertised_speed: kiln_registry::FamilyId,
    supported_port: kiln_registry::FamilyId,
    /// autonegotiate, pause, asymmetric pause: supported, then advertised.
    supported: [kiln_registry::FamilyId; 3],
    advertised: [kiln_registry::FamilyId; 3],
    autonegotiate: kiln_registry::FamilyId,
}

impl LinkFamilies {
    fn declare(out: &mut MetricSet) -> Self {
        Self {
            supported_speed: out.gauge(
                "node_network_supported_speed_bytes",
                "Combination of speeds and features supported by network device",
            ),
            advertised_speed: out.gauge(
                "node_network_advertised_speed_bytes",
                "Combination of speeds and features offered by network device",
            ),
            supported_port: out.gauge(
                "node_network_supported_port_info",
                "Type of ports or PHYs supported by network device",
            ),
            supported: [
                out.gauge(
                    "node_network_autonegotiate_supported",
                    "If this port device supports autonegotiate",
                ),
                out.gauge(
                    "node_network_pause_supported",
                    "If this port device supports pause frames",
                ),
                out.gauge(
                    "node_network_asymmetricpause_supported",
                    "If this port device supports asymmetric pause frames",
                ),
            ],
            advertised: [
                out.gauge(
                    "node_network_autonegotiate_advertised",
                    "If this port device offers autonegotiate",
                ),
                out.gauge(
                    "node_network_pause_advertised",
                    "If this port device offers pause capability",
                ),
                out.gauge(
                    "node_network_asymmetricpause_advertised",
                    "If this port device offers asymmetric pause capability",
                ),
            ],
            autonegotiate: out.gauge(
                "node_network_autonegotiate",
                "If this port is using autonegotiate",
            ),
        }
    }

    fn write(&self, out: &mut MetricSet, device: &str, link: &LinkSettings) {
        for (modes, family) in [
            (link.supported, self.supported_speed),
            (link.advertising, self.advertised_speed),
        ] {
            for (duplex, mode, bytes) in speeds(modes) {
                out.sample(
                    family,
                    &[("device", device), ("duplex", duplex), ("mode", &mode)],
                    bytes,
                );
            }
        }
        for (bit, kind) in PORTS {
            if has(link.supported, *bit) {
                out.sample(
                    self.supported_port,
                    &[("device", device), ("type", kind)],
                    1.0,
                );
            }
        }
        for (modes, families) in [
            (link.supported, &self.supported),
            (link.advertising, &self.advertised),
        ] {
            for (bit, family) in [AUTONEG_BIT, PAUSE_BIT, ASYM_PAUSE_BIT]
                .iter()
                .zip(families)
            {
                let on = if has(modes, *bit) { 1.0 } else { 0.0 };
                out.sample(*family, &[("device", device)], on);
            }
        }
        out.sample(
            self.autonegotiate,
            &[("device", device)],
            f64::from(link.autoneg),
        );
    }
}

impl Ethtool {
    /// Logs a failed ethtool call once per device and kind. Drivers without ethtool
    /// support (`EOPNOTSUPP`: loopback, bridges, veth for some calls) are normal and
    /// logged at debug level.
    fn failed(&self, device: &str, what: &'static str, error: &io::Error) {
        let unsupported = error.raw_os_error() == Some(libc::EOPNOTSUPP);
        let first = self
            .logged
            .lock()
            .map(|mut logged| {
                if logged.len() >= MAX_LOGGED {
                    logged.clear();
                }
                logged.insert((device.to_owned(), what))
            })
            .unwrap_or(false);
        if unsupported {
            tracing::debug!(device, err = %error, "ethtool {what}: not supported by the driver.");
        } else if first {
            tracing::warn!(device, err = %error, "ethtool {what} failed; logged once per device.");
        }
    }
}

impl Collector for Ethtool {
    fn name(&self) -> &str {
        "ethtool"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut devices = read::dir_entries(&self.class, |name| self.devices.accepts(name))?;
        // Interfaces are links to directories; `bonding_masters` and such are files.
        devices.retain(|(_, path)| path.is_dir());
        if devices.is_empty() {
            return Err(CollectError::NoData);
        }
        let socket = EthtoolSocket::open()
            .map_err(|e| CollectError::failed("opening a socket for SIOCETHTOOL", e))?;
        let link = LinkFamilies::declare(out);
        let info = out.gauge(
            "node_ethtool_info",
            "A metric with a constant '1' value labeled by bus_info, device, driver, expansion_rom_version, firmware_version, version.",
        );
        // Families of statistics are shared by devices: family name → (help, samples).
        let mut stats: BTreeMap<String, (String, Vec<(String, f64)>)> = BTreeMap::new();
        for (device, _) in &devices {
            if ctx.expired() {
                break;
            }
            match socket.link_settings(device) {
                Ok(settings) => link.write(out, device, &settings),
                Err(error) => self.failed(device, "link settings", &error),
            }
            let driver = match socket.driver_info(device) {
                Ok(driver) => driver,
                Err(error) => {
                    // Without the driver information there is no statistics count either.
                    self.failed(device, "driver info", &error);
                    continue;
                }
            };
            out.sample(
                info,
                &[
                    ("bus_info", &driver.bus_info),
                    ("device", device),
                    ("driver", &driver.driver),
                    ("expansion_rom_version", &driver.expansion_rom_version),
                    ("firmware_version", &driver.firmware_version),
                    ("version", &driver.version),
                ],
                1.0,
            );
            match socket.stats(device, driver.n_stats) {
                Ok(values) => {
                    for stat in stats_series(&values, &self.metrics) {
                        stats
                            .entry(stat.name)
                            .or_insert_with(|| (stat.help, Vec::new()))
                            .1
                            .push((device.clone(), stat.value));
                    }
                }
                Err(error) => self.failed(device, "statistics", &error),
            }
        }
        for (name, (help, samples)) in &stats {
            let family = out.family(name, help, MetricType::Untyped);
            for (device, value) in samples {
                out.sample(family, &[("device", device)], *value);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statistics of an `ethtool -S` dump (node_exporter's fixtures): `name: value`
    /// lines, the name being everything before the last `: `.
    fn dump(text: &str) -> Vec<(String, u64)> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (name, value) = line.rsplit_once(": ")?;
                Some((name.trim().to_owned(), value.trim().parse().ok()?))
            })
            .collect()
    }

    fn fixture(path: &str) -> String {
        let root = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/node_exporter/fixtures/ethtool/"
        );
        std::fs::read_to_string(format!("{root}{path}")).unwrap()
    }

    #[test]
    fn names_as_node_exporter_builds_them() {
        // node_exporter's own cases for its name building.
        for (stat, expected) in [
            ("port.rx_errors", "node_ethtool_port_received_errors"),
            ("rx_errors", "node_ethtool_received_errors"),
            ("Queue[0] AllocFails", "node_ethtool_queue_0_allocfails"),
            (
                "Tx LPI entry count",
                "node_ethtool_transmitted_lpi_entry_count",
            ),
            (
                "port.VF_admin_queue_requests",
                "node_ethtool_port_vf_admin_queue_requests",
            ),
            ("[3]: tx_bytes", "node_ethtool_3_transmitted_bytes"),
            ("     err", "node_ethtool_err"),
        ] {
            assert_eq!(family_name(&sanitize(stat)), expected, "{stat:?}");
        }
        // ENA's allowance counters keep their names.
        assert_eq!(
            family_name(&sanitize("pps_allowance_exceeded")),
            "node_ethtool_pps_allowance_exceeded"
        );
        assert_eq!(
            family_name(&sanitize("queue_0_tx_cnt")),
            "node_ethtool_queue_0_transmitted_cnt"
        );
        // Matches do not overlap, as in Go's regexp.
        assert_eq!(family_name("rx_rx"), "node_ethtool_received_rx");
        assert_eq!(family_name("xrx_y"), "node_ethtool_xrx_y");
        assert_eq!(sanitize("a_ _ _b"), "a__b");
    }

    #[test]
    fn statistics_of_the_fixture_as_node_exporter_reports_them() {
        let stats = dump(&fixture("eth0/statistics"));
        let all = Regex::new(".*").unwrap();
        let series = stats_series(&stats, &all);
        let got: Vec<(&str, &str, f64)> = series
            .iter()
            .map(|s| (s.name.as_str(), s.help.as_str(), s.value))
            .collect();
        // node_exporter's expected output for this fixture; `duplicate metric` and
        // `duplicate_metric` collide and are both dropped.
        assert_eq!(
            got,
            [
                (
                    "node_ethtool_align_errors",
                    "Network interface align_errors",
                    0.0
                ),
                (
                    "node_ethtool_port_received_dropped",
                    "Network interface port_rx_dropped",
                    12028.0
                ),
                (
                    "node_ethtool_received_broadcast",
                    "Network interface rx_broadcast",
                    5792.0
                ),
                (
                    "node_ethtool_received_errors_total",
                    "Number of received frames with errors",
                    0.0
                ),
                (
                    "node_ethtool_received_missed",
                    "Network interface rx_missed",
                    401.0
                ),
                (
                    "node_ethtool_received_multicast",
                    "Network interface rx_multicast",
                    23973.0
                ),
                (
                    "node_ethtool_received_packets_total",
                    "Network interface packets received",
                    1260062.0
                ),
                (
                    "node_ethtool_received_unicast",
                    "Network interface rx_unicast",
                    1230297.0
                ),
                (
                    "node_ethtool_transmitted_aborted",
                    "Network interface tx_aborted",
                    0.0
                ),
                (
                    "node_ethtool_transmitted_errors_total",
                    "Number of sent frames with errors",
                    0.0
                ),
                (
                    "node_ethtool_transmitted_multi_collisions",
                    "Network interface tx_multi_collisions",
                    0.0
                ),
                (
                    "node_ethtool_transmitted_packets_total",
                    "Network interface packets sent",
                    961500.0
                ),
                (
                    "node_ethtool_transmitted_single_collisions",
                    "Network interface tx_single_collisions",
                    0.0
                ),
                (
                    "node_ethtool_transmitted_underrun",
                    "Network interface tx_underrun",
                    0.0
                ),
            ]
        );
    }

    #[test]
    fn metrics_include_filters_sanitised_names() {
        let stats = dump(&fixture("eth0/statistics"));
        let only = Regex::new("^port_").unwrap();
        let series = stats_series(&stats, &only);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].name, "node_ethtool_port_received_dropped");
        // The bond0 fixture has one line, `ERROR: 1`.
        let bond = stats_series(
            &dump(&fixture("bond0/statistics")),
            &Regex::new(".*").unwrap(),
        );
        assert_eq!(bond[0].name, "node_ethtool_error");
    }

    /// The link modes of the eth0 fixture's `ethtool eth0` dump as bits.
    fn eth0_link() -> LinkSettings {
        let bits = |list: &[u32]| list.iter().fold(0u32, |m, b| m | 1 << b);
        let text = fixture("eth0/settings");
        assert!(text.contains("Supported ports: [ TP\t MII ]"));
        LinkSettings {
            // 10/100 half and full, 1000 full, 10000baseT full, autoneg, TP, MII, pause.
            supported: bits(&[0, 1, 2, 3, 5, 12, 6, 7, 9, 13]),
            advertising: bits(&[0, 1, 2, 3, 5, 6, 13]),
            autoneg: 1,
        }
    }

    #[test]
    fn link_settings_of_the_fixture_as_node_exporter_reports_them() {
        let mut out = MetricSet::default();
        let families = LinkFamilies::declare(&mut out);
        families.write(&mut out, "eth0", &eth0_link());
        out.seal();
        let mut text = String::new();
        kiln_registry::metrics::encode(&[&out], kiln_registry::metrics::Format::Text, &mut text);
        for line in [
            r#"node_network_advertised_speed_bytes{device="eth0",duplex="full",mode="1000baseT"} 1.25e+08"#,
            r#"node_network_advertised_speed_bytes{device="eth0",duplex="half",mode="10baseT"} 1.25e+06"#,
            r#"node_network_asymmetricpause_advertised{device="eth0"} 0"#,
            r#"node_network_autonegotiate{device="eth0"} 1"#,
            r#"node_network_autonegotiate_supported{device="eth0"} 1"#,
            r#"node_network_pause_supported{device="eth0"} 1"#,
            r#"node_network_supported_port_info{device="eth0",type="MII"} 1"#,
            r#"node_network_supported_port_info{device="eth0",type="TP"} 1"#,
            r#"node_network_supported_speed_bytes{device="eth0",duplex="full",mode="10000baseT"} 1.25e+09"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert_eq!(
            text.matches("node_network_supported_speed_bytes{").count(),
            6
        );
        assert_eq!(
            text.matches("node_network_advertised_speed_bytes{").count(),
            5
        );
    }

    #[test]
    fn collects_this_hosts_interfaces() {
        let collector = Ethtool {
            class: PathBuf::from("/sys/class/net"),
            devices: NameFilter::All,
            metrics: Regex::new(".*").unwrap(),
            logged: Mutex::new(BTreeSet::new()),
        };
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::new(std::time::Instant::now() + std::time::Duration::from_secs(5));
        collector.collect(&ctx, &mut out).unwrap();
        out.seal();
        let mut text = String::new();
        kiln_registry::metrics::encode(&[&out], kiln_registry::metrics::Format::Text, &mut text);
        // Exactly the devices whose driver answers have their info series.
        let socket = EthtoolSocket::open().unwrap();
        for entry in std::fs::read_dir("/sys/class/net").unwrap() {
            let device = entry.unwrap().file_name().into_string().unwrap();
            let series = format!("device=\"{device}\",driver=");
            assert_eq!(
                text.contains(&series),
                socket.driver_info(&device).is_ok(),
                "{device}:\n{text}"
            );
        }
    }
}
