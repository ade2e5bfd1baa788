//! `wifi`: wireless interfaces, the BSS each is in and its stations, asked of the kernel
//! over nl80211 (generic netlink), or read from JSON fixtures with
//! `--collector.wifi.fixtures` as node_exporter's end-to-end test does. A kernel without
//! nl80211 (cfg80211 not loaded) has no wireless devices: no data, as node_exporter says.

mod nl80211;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};
use serde_json::Value;

use super::{Settings, boxed};
use crate::{gojson, read};

/// The wifi collector's options.
#[derive(Debug, Clone, clap::Args)]
// Every collector's options struct is named `Options`; clap's group ids must differ.
#[group(id = "wifi_options")]
pub struct Options {
    /// Directory of JSON files to report instead of the kernel's wireless devices (for
    /// end-to-end tests).
    #[arg(
        long = "collector.wifi.fixtures",
        value_name = "DIR",
        default_value = ""
    )]
    pub wifi_fixtures: String,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let fixtures = &settings.options.wifi.wifi_fixtures;
    boxed(Wifi {
        fixtures: (!fixtures.is_empty()).then(|| PathBuf::from(fixtures)),
    })
}

struct Wifi {
    fixtures: Option<PathBuf>,
}

/// A wireless interface.
#[derive(Debug, Default, PartialEq)]
struct Interface {
    /// The kernel's interface index (what nl80211 asks about).
    index: u32,
    name: String,
    /// MHz.
    frequency: i64,
}

/// The BSS an interface is in.
#[derive(Debug, Default, PartialEq)]
struct Bss {
    ssid: String,
    bssid: Vec<u8>,
    /// nl80211's BSS status: 0 authenticated, 1 associated, 2 not associated (node_exporter's
    /// library numbers it so), 3 IBSS joined.
    status: i64,
}

/// One station an interface talks to, with Go's `wifi.StationInfo` figures.
#[derive(Debug, Default, PartialEq)]
struct Station {
    mac: Vec<u8>,
    /// Nanoseconds, as a Go `time.Duration`.
    connected: i64,
    inactive: i64,
    received_bytes: i64,
    transmitted_bytes: i64,
    received_packets: i64,
    transmitted_packets: i64,
    /// Bits per second.
    receive_bitrate: i64,
    transmit_bitrate: i64,
    /// dBm.
    signal: i64,
    transmit_retries: i64,
    transmit_failed: i64,
    beacon_loss: i64,
}

fn parse_interfaces(text: &str) -> Result<Vec<Interface>, String> {
    array(text)?
        .iter()
        .map(|item| {
            Ok(Interface {
                index: gojson::uint(item, "Index", 32)? as u32,
                name: gojson::string(item, "Name")?,
                frequency: gojson::int(item, "Frequency")?,
            })
        })
        .collect()
}

fn parse_bss(text: &str) -> Result<Bss, String> {
    let item: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(Bss {
        ssid: gojson::string(&item, "SSID")?,
        bssid: gojson::bytes(&item, "BSSID")?,
        status: gojson::int(&item, "Status")?,
    })
}

fn parse_stations(text: &str) -> Result<Vec<Station>, String> {
    array(text)?
        .iter()
        .map(|item| {
            let int = |name| gojson::int(item, name);
            Ok(Station {
                mac: gojson::bytes(item, "HardwareAddr")?,
                connected: int("Connected")?,
                inactive: int("Inactive")?,
                received_bytes: int("ReceivedBytes")?,
                transmitted_bytes: int("TransmittedBytes")?,
                received_packets: int("ReceivedPackets")?,
                transmitted_packets: int("TransmittedPackets")?,
                receive_bitrate: int("ReceiveBitrate")?,
                transmit_bitrate: int("TransmitBitrate")?,
                signal: int("Signal")?,
                transmit_retries: int("TransmitRetries")?,
                transmit_failed: int("TransmitFailed")?,
                beacon_loss: int("BeaconLoss")?,
            })
        })
        .collect()
}

fn array(text: &str) -> Result<Vec<Value>, String> {
    match serde_json::from_str(text).map_err(|e| e.to_string())? {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        _ => Err("not a JSON array".into()),
    }
}

/// A hardware address as Go's `net.HardwareAddr` writes it: lower-case hex pairs joined
/// by colons.
fn mac(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 3);
    for (index, byte) in bytes.iter().enumerate() {
        if index > 0 {
            text.push(':');
        }
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// Go's `time.Duration.Seconds`: whole seconds plus the nanoseconds left, so the float is
/// the one node_exporter prints.
fn seconds(nanoseconds: i64) -> f64 {
    let whole = nanoseconds / 1_000_000_000;
    let rest = nanoseconds % 1_000_000_000;
    whole as f64 + rest as f64 / 1e9
}

fn mode(status: i64) -> &'static str {
    match status {
        0 | 1 => "client",
        3 => "ad-hoc",
        _ => "unknown",
    }
}

/// Reads a fixture file; a missing one is `None` (the interface has no such information).
fn fixture<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, CollectError> {
    match read::read_text(path) {
        Ok(text) => parse(&text).map(Some).map_err(|e| read::malformed(path, e)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(read::failed(path, error)),
    }
}

/// Where the collector reads from.
enum Source<'a> {
    Fixtures(&'a Path),
    Kernel(nl80211::Client),
}

impl Source<'_> {
    fn interfaces(&mut self, deadline: Instant) -> Result<Vec<Interface>, CollectError> {
        match self {
            Self::Fixtures(dir) => {
                let path = dir.join("interfaces.json");
                let text = read::file(&path)?;
                parse_interfaces(&text).map_err(|e| read::malformed(&path, e))
            }
            Self::Kernel(client) => client
                .interfaces(deadline)
                .map_err(|e| CollectError::failed("dumping nl80211 interfaces", e)),
        }
    }

    /// The interface's BSS; `None` when it has none.
    fn bss(
        &mut self,
        interface: &Interface,
        deadline: Instant,
    ) -> Result<Option<Bss>, CollectError> {
        match self {
            Self::Fixtures(dir) => fixture(&dir.join(&interface.name).join("bss.json"), parse_bss),
            Self::Kernel(client) => client.bss(interface.index, deadline).map_err(|e| {
                CollectError::failed(format!("reading the BSS of {}", interface.name), e)
            }),
        }
    }

    /// The interface's stations; `None` when it has none to tell.
    fn stations(
        &mut self,
        interface: &Interface,
        deadline: Instant,
    ) -> Result<Option<Vec<Station>>, CollectError> {
        match self {
            Self::Fixtures(dir) => fixture(
                &dir.join(&interface.name).join("stationinfo.json"),
                parse_stations,
            ),
            Self::Kernel(client) => client.stations(interface.index, deadline).map_err(|e| {
                CollectError::failed(format!("reading the stations of {}", interface.name), e)
            }),
        }
    }
}

impl Collector for Wifi {
    fn name(&self) -> &str {
        "wifi"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let deadline = ctx.deadline();
        let mut source = match &self.fixtures {
            Some(dir) => Source::Fixtures(dir),
            None => match nl80211::Client::open(deadline) {
                Ok(Some(client)) => Source::Kernel(client),
                Ok(None) => return Err(CollectError::NoData),
                // Where netlink is closed to the exporter there is nothing to report either.
                Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
                    return Err(CollectError::NoData);
                }
                Err(error) => return Err(CollectError::failed("connecting to nl80211", error)),
            },
        };
        let interfaces = source.interfaces(deadline)?;

        let frequency = out.gauge(
            "node_wifi_interface_frequency_hertz",
            "The current frequency a WiFi interface is operating at, in hertz.",
        );
        let info = out.gauge(
            "node_wifi_station_info",
            "Labeled WiFi interface station information as provided by the operating system.",
        );
        let station_families = STATION_FAMILIES.map(|(name, help, counter, _)| {
            if counter {
                out.counter(name, help)
            } else {
                out.gauge(name, help)
            }
        });
        let mut seen: Vec<&str> = Vec::new();
        for interface in &interfaces {
            // Virtual devices without a name are not reported; a repeated name would be
            // duplicate series.
            let device = interface.name.as_str();
            if device.is_empty() || seen.contains(&device) {
                continue;
            }
            seen.push(device);
            // MHz to Hz as node_exporter multiplies, for the same float.
            let hertz = interface.frequency as f64 * 1000.0 * 1000.0;
            out.sample(frequency, &[("device", device)], hertz);

            if let Some(bss) = source.bss(interface, deadline)? {
                out.sample(
                    info,
                    &[
                        ("device", device),
                        ("bssid", &mac(&bss.bssid)),
                        ("ssid", &bss.ssid),
                        ("mode", mode(bss.status)),
                    ],
                    1.0,
                );
            }
            let stations = source.stations(interface, deadline)?;
            let mut macs: Vec<String> = Vec::new();
            for station in stations.iter().flatten() {
                let address = mac(&station.mac);
                if macs.contains(&address) {
                    continue;
                }
                let labels = [("device", device), ("mac_address", address.as_str())];
                for (family, (.., value)) in station_families.iter().zip(STATION_FAMILIES) {
                    out.sample(*family, &labels, value(station));
                }
                macs.push(address);
            }
        }
        Ok(())
    }
}

/// A station family: name, help, whether a counter, and its value.
type StationFamily = (&'static str, &'static str, bool, fn(&Station) -> f64);

const STATION_FAMILIES: [StationFamily; 12] = [
    (
        "node_wifi_station_connected_seconds_total",
        "The total number of seconds a station has been connected to an access point.",
        true,
        |s| seconds(s.connected),
    ),
    (
        "node_wifi_station_inactive_seconds",
        "The number of seconds since any wireless activity has occurred on a station.",
        false,
        |s| seconds(s.inactive),
    ),
    (
        "node_wifi_station_receive_bits_per_second",
        "The current WiFi receive bitrate of a station, in bits per second.",
        false,
        |s| s.receive_bitrate as f64,
    ),
    (
        "node_wifi_station_transmit_bits_per_second",
        "The current WiFi transmit bitrate of a station, in bits per second.",
        false,
        |s| s.transmit_bitrate as f64,
    ),
    (
        "node_wifi_station_receive_bytes_total",
        "The total number of bytes received by a WiFi station.",
        true,
        |s| s.received_bytes as f64,
    ),
    (
        "node_wifi_station_transmit_bytes_total",
        "The total number of bytes transmitted by a WiFi station.",
        true,
        |s| s.transmitted_bytes as f64,
    ),
    (
        "node_wifi_station_signal_dbm",
        "The current WiFi signal strength, in decibel-milliwatts (dBm).",
        false,
        |s| s.signal as f64,
    ),
    (
        "node_wifi_station_transmit_retries_total",
        "The total number of times a station has had to retry while sending a packet.",
        true,
        |s| s.transmit_retries as f64,
    ),
    (
        "node_wifi_station_transmit_failed_total",
        "The total number of times a station has failed to send a packet.",
        true,
        |s| s.transmit_failed as f64,
    ),
    (
        "node_wifi_station_beacon_loss_total",
        "The total number of times a station has detected a beacon loss.",
        true,
        |s| s.beacon_loss as f64,
    ),
    (
        "node_wifi_station_transmitted_packets_total",
        "The total number of packets transmitted by a station.",
        true,
        |s| s.transmitted_packets as f64,
    ),
    (
        "node_wifi_station_received_packets_total",
        "The total number of packets received by a station.",
        true,
        |s| s.received_packets as f64,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_text(name: &str) -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/node_exporter/fixtures/wifi")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn the_fixtures_of_node_exporters_end_to_end_test() {
        let interfaces = parse_interfaces(&fixture_text("interfaces.json")).unwrap();
        let names: Vec<(&str, i64)> = interfaces
            .iter()
            .map(|i| (i.name.as_str(), i.frequency))
            .collect();
        assert_eq!(names, [("wlan0", 2412), ("wlan1", 2412), ("", 0)]);

        let bss = parse_bss(&fixture_text("wlan0/bss.json")).unwrap();
        assert_eq!(mac(&bss.bssid), "00:11:22:33:44:55");
        assert_eq!((bss.ssid.as_str(), mode(bss.status)), ("Example", "client"));

        let stations = parse_stations(&fixture_text("wlan0/stationinfo.json")).unwrap();
        assert_eq!(stations.len(), 2);
        assert_eq!(mac(&stations[0].mac), "aa:bb:cc:dd:ee:ff");
        assert_eq!(seconds(stations[0].connected), 30.0);
        assert_eq!(seconds(stations[0].inactive), 0.4);
        assert_eq!(stations[1].signal, -26);
        assert_eq!(stations[1].receive_bitrate, 256_000_000);
        assert_eq!(stations[1].received_bytes, 0);
    }

    #[test]
    fn durations_become_seconds_as_go_computes_them() {
        assert_eq!(seconds(1_500_000_000), 1.5);
        assert_eq!(seconds(-2_250_000_000), -2.25);
        assert_eq!(mode(3), "ad-hoc");
        assert_eq!(mode(2), "unknown");
        assert_eq!(mac(&[]), "");
    }

    #[test]
    fn a_missing_file_is_no_information_a_broken_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            fixture(&dir.path().join("bss.json"), parse_bss),
            Ok(None)
        ));
        std::fs::write(dir.path().join("bss.json"), "{").unwrap();
        assert!(fixture(&dir.path().join("bss.json"), parse_bss).is_err());
    }
}
