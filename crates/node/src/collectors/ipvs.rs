//! `ipvs`: IP Virtual Server totals from `/proc/net/ip_vs_stats` and per-backend
//! connections and weights from `/proc/net/ip_vs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::flag_error;
use crate::read;

/// Every backend label, in the order the series carry them.
const BACKEND_LABELS: [&str; 6] = [
    "local_address",
    "local_port",
    "remote_address",
    "remote_port",
    "proto",
    "local_mark",
];

/// The ipvs collector's options.
#[derive(Debug, Clone, clap::Args)]
// Every collector's options struct is named `Options`; clap's group ids must differ.
#[group(id = "ipvs_options")]
pub struct Options {
    /// Labels the node_ipvs_backend_* series carry, comma-separated; backends that agree on
    /// all of them are summed into one series.
    #[arg(
        long = "collector.ipvs.backend-labels",
        value_name = "LABELS",
        default_value = "local_address,local_port,remote_address,remote_port,proto,local_mark"
    )]
    pub ipvs_backend_labels: String,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Ipvs {
        stats: settings.paths.proc("net/ip_vs_stats"),
        backends: settings.paths.proc("net/ip_vs"),
        labels: backend_labels(&settings.options.ipvs.ipvs_backend_labels)?,
    })
}

struct Ipvs {
    stats: PathBuf,
    backends: PathBuf,
    /// Indexes into [`BACKEND_LABELS`] of the labels asked for, in that order.
    labels: Vec<usize>,
}

/// The labels named in the flag, in [`BACKEND_LABELS`]' order whatever order they were
/// given in; an unknown one is an error that names it.
fn backend_labels(flag: &str) -> Result<Vec<usize>, ConfigError> {
    let asked: Vec<&str> = flag.split(',').filter(|l| !l.is_empty()).collect();
    let mut unknown: Vec<&str> = asked
        .iter()
        .copied()
        .filter(|label| !BACKEND_LABELS.contains(label))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        unknown.dedup();
        return Err(flag_error(
            "collector.ipvs.backend-labels",
            format!("unknown IPVS backend labels: {:?}", unknown.join(", ")),
        ));
    }
    Ok((0..BACKEND_LABELS.len())
        .filter(|&index| asked.contains(&BACKEND_LABELS[index]))
        .collect())
}

/// The running totals of `ip_vs_stats`.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    connections: u64,
    incoming_packets: u64,
    outgoing_packets: u64,
    incoming_bytes: u64,
    outgoing_bytes: u64,
}

/// The third line of `ip_vs_stats` holds the five totals, in hexadecimal.
fn parse_totals(text: &str) -> Option<Totals> {
    let mut lines = text.splitn(4, '\n');
    let line = lines.nth(2)?;
    // The file goes on past the totals (the rates); fewer lines is a cut-off file.
    lines.next()?;
    let mut values = [0u64; 5];
    let mut count = 0;
    for field in line.split_ascii_whitespace() {
        *values.get_mut(count)? = u64::from_str_radix(field, 16).ok()?;
        count += 1;
    }
    (count == values.len()).then_some(Totals {
        connections: values[0],
        incoming_packets: values[1],
        outgoing_packets: values[2],
        incoming_bytes: values[3],
        outgoing_bytes: values[4],
    })
}

/// One real server of one virtual service.
#[derive(Debug, PartialEq)]
struct Backend {
    /// `[local_address, local_port, remote_address, remote_port, proto, local_mark]`.
    labels: [String; 6],
    active: u64,
    inactive: u64,
    weight: u64,
}

/// A virtual service line: `TCP  C0A80016:0CEA wlc` or `FWM  10001000 wlc`.
struct Service {
    proto: String,
    address: String,
    port: u16,
    mark: String,
}

/// An address and port as the kernel prints them: `C0A80016:0CEA`, or the IPv6 form
/// `[2620:0000:…:0001]:0050`. IPv6 addresses are written as Go's `net.IP` writes them
/// (shortest form, IPv4-mapped ones as dotted quads), the label values node_exporter has.
fn address_port(text: &str) -> Option<(String, u16)> {
    let (address, port) = text.rsplit_once(':')?;
    if port.len() != 4 {
        return None;
    }
    let port = u16::from_str_radix(port, 16).ok()?;
    let address = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(address, 16).ok()?)),
        41 => {
            let inner = address.strip_prefix('[')?.strip_suffix(']')?;
            let v6: Ipv6Addr = inner.parse().ok()?;
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some((address.to_string(), port))
}

/// The backends of `/proc/net/ip_vs`, each with its service's protocol, address and mark,
/// and how many lines were skipped as malformed. The backends of a service line that does
/// not parse are skipped with it, so they are never put under another service.
fn parse_backends(text: &str) -> (Vec<Backend>, usize) {
    let mut backends = Vec::new();
    let mut skipped = 0;
    let mut service: Option<Service> = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        match fields.as_slice() {
            [] | ["IP", ..] | ["Prot", ..] | [_, "RemoteAddress:Port", ..] => {}
            [proto @ ("TCP" | "UDP" | "SCTP"), address, ..] => {
                service = address_port(address).map(|(address, port)| Service {
                    proto: (*proto).to_owned(),
                    address,
                    port,
                    mark: String::new(),
                });
                skipped += usize::from(service.is_none());
            }
            ["FWM", mark, ..] => {
                service = Some(Service {
                    proto: "FWM".to_owned(),
                    address: String::new(),
                    port: 0,
                    mark: (*mark).to_owned(),
                });
            }
            ["->", remote, _forward, weight, active, inactive, ..] => {
                let Some(service) = &service else {
                    skipped += 1;
                    continue;
                };
                let parsed = (|| {
                    let (remote, remote_port) = address_port(remote)?;
                    Some(Backend {
                        labels: [
                            service.address.clone(),
                            service.port.to_string(),
                            remote,
                            remote_port.to_string(),
                            service.proto.clone(),
                            service.mark.clone(),
                        ],
                        weight: weight.parse().ok()?,
                        active: active.parse().ok()?,
                        inactive: inactive.parse().ok()?,
                    })
                })();
                match parsed {
                    Some(backend) => backends.push(backend),
                    None => skipped += 1,
                }
            }
            _ => skipped += 1,
        }
    }
    (backends, skipped)
}

impl Collector for Ipvs {
    fn name(&self) -> &str {
        "ipvs"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // Without the ip_vs module there is no ip_vs_stats: nothing to report.
        let text = read::file_or_no_data(&self.stats)?;
        let totals = parse_totals(&text)
            .ok_or_else(|| read::malformed(&self.stats, "expected five totals on line 3"))?;
        let text = read::file(&self.backends)?;
        let (backends, skipped) = parse_backends(&text);
        if skipped > 0 {
            tracing::debug!(
                collector = "ipvs",
                file = %self.backends.display(),
                skipped,
                "malformed lines skipped"
            );
        }

        for (name, help, value) in [
            (
                "node_ipvs_connections_total",
                "The total number of connections made.",
                totals.connections,
            ),
            (
                "node_ipvs_incoming_packets_total",
                "The total number of incoming packets.",
                totals.incoming_packets,
            ),
            (
                "node_ipvs_outgoing_packets_total",
                "The total number of outgoing packets.",
                totals.outgoing_packets,
            ),
            (
                "node_ipvs_incoming_bytes_total",
                "The total amount of incoming data.",
                totals.incoming_bytes,
            ),
            (
                "node_ipvs_outgoing_bytes_total",
                "The total amount of outgoing data.",
                totals.outgoing_bytes,
            ),
        ] {
            out.counter_value(name, help, value as f64);
        }

        // Backends that agree on every chosen label are one series: their sums.
        let mut sums: BTreeMap<Vec<&str>, (u64, u64, u64)> = BTreeMap::new();
        for backend in &backends {
            let key = self
                .labels
                .iter()
                .map(|&index| backend.labels[index].as_str())
                .collect();
            let sum = sums.entry(key).or_default();
            sum.0 = sum.0.saturating_add(backend.active);
            sum.1 = sum.1.saturating_add(backend.inactive);
            sum.2 = sum.2.saturating_add(backend.weight);
        }
        let active = out.gauge(
            "node_ipvs_backend_connections_active",
            "The current active connections by local and remote address.",
        );
        let inactive = out.gauge(
            "node_ipvs_backend_connections_inactive",
            "The current inactive connections by local and remote address.",
        );
        let weight = out.gauge(
            "node_ipvs_backend_weight",
            "The current backend weight by local and remote address.",
        );
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(self.labels.len());
        for (values, (active_sum, inactive_sum, weight_sum)) in &sums {
            labels.clear();
            labels.extend(
                self.labels
                    .iter()
                    .zip(values)
                    .map(|(&index, value)| (BACKEND_LABELS[index], *value)),
            );
            out.sample(active, &labels, *active_sum as f64);
            out.sample(inactive, &labels, *inactive_sum as f64);
            out.sample(weight, &labels, *weight_sum as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  C0A80016:0CEA wlc
  -> C0A85216:0CEA      Tunnel  100    248        2
  -> C0A85318:0CEA      Tunnel  100    248        2
FWM  10001000 wlc
  -> C0A8321A:0CEA      Tunnel  20     64         1
UDP  [fe80:0000:0000:0000:0000:0000:0000:0001]:0035 rr
  -> [0000:0000:0000:0000:0000:ffff:0a00:0001]:0035      Masq  1    0        3
";

    #[test]
    fn totals_are_the_hexadecimal_third_line() {
        let text = "   Total Incoming Outgoing         Incoming         Outgoing\n   Conns  Packets  Packets            Bytes            Bytes\n 16AA370 E33656E5        0     51D8C8883AB3                0\n\n Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n       4    1FB3C        0          1282A8F                0\n";
        let totals = parse_totals(text).unwrap();
        assert_eq!(totals.connections, 23_765_872);
        assert_eq!(totals.incoming_packets, 3_811_989_221);
        assert_eq!(totals.incoming_bytes, 89_991_519_156_915);
        assert_eq!(totals.outgoing_bytes, 0);
        assert_eq!(parse_totals("a\nb\n1 2 3 4 5"), None, "cut off");
        assert_eq!(parse_totals("a\nb\n1 2 3 4\n"), None, "four columns");
        assert_eq!(parse_totals("a\nb\n1 2 3 4 x\n"), None, "not hexadecimal");
    }

    #[test]
    fn backends_carry_their_service() {
        let (backends, skipped) = parse_backends(FIXTURE);
        assert_eq!(skipped, 0);
        let labels: Vec<[&str; 6]> = backends
            .iter()
            .map(|b| b.labels.each_ref().map(String::as_str))
            .collect();
        assert_eq!(
            labels,
            [
                ["192.168.0.22", "3306", "192.168.82.22", "3306", "TCP", ""],
                ["192.168.0.22", "3306", "192.168.83.24", "3306", "TCP", ""],
                ["", "0", "192.168.50.26", "3306", "FWM", "10001000"],
                ["fe80::1", "53", "10.0.0.1", "53", "UDP", ""],
            ]
        );
        assert_eq!(
            (backends[2].weight, backends[2].active, backends[2].inactive),
            (20, 64, 1)
        );
    }

    #[test]
    fn a_broken_service_line_takes_its_backends_with_it() {
        let text = "TCP  C0A80016:0CEA wlc\n  -> C0A85216:0CEA Tunnel 100 248 2\nTCP  nonsense wlc\n  -> C0A85318:0CEA Tunnel 100 248 2\n  -> C0A85318:0CEA Tunnel x 248 2\n";
        let (backends, skipped) = parse_backends(text);
        assert_eq!(backends.len(), 1);
        assert_eq!(skipped, 3);
    }

    /// The collector over the vendored proc fixture with `labels`, as exposition text.
    fn exposition(labels: &str) -> String {
        let proc = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/node_exporter/fixtures/proc/net");
        let collector = Ipvs {
            stats: proc.join("ip_vs_stats"),
            backends: proc.join("ip_vs"),
            labels: backend_labels(labels).unwrap(),
        };
        let mut set = MetricSet::default();
        let ctx = ScrapeContext::with_budget(std::time::Duration::from_secs(5));
        collector.collect(&ctx, &mut set).unwrap();
        set.seal();
        let mut text = String::new();
        let left_out = kiln_registry::metrics::encode(
            &[&set],
            kiln_registry::metrics::Format::Text,
            &mut text,
        );
        assert!(left_out.is_empty());
        text
    }

    #[test]
    fn backend_label_choices_give_node_exporters_expected_output() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/node_exporter/fixtures");
        for (labels, file) in [
            (
                "local_address,local_port,remote_address,remote_port,proto,local_mark",
                "ip_vs_result.txt",
            ),
            ("local_port", "ip_vs_result_lbs_local_port.txt"),
            (
                "local_port,local_address",
                "ip_vs_result_lbs_local_address_local_port.txt",
            ),
            ("", "ip_vs_result_lbs_none.txt"),
        ] {
            let expected = std::fs::read_to_string(fixtures.join(file)).unwrap();
            assert_eq!(exposition(labels), expected, "{file}");
        }
    }

    #[test]
    fn backend_labels_keep_upstreams_order_and_refuse_unknown_ones() {
        assert_eq!(backend_labels("local_port,local_address").unwrap(), [0, 1]);
        assert_eq!(backend_labels("").unwrap(), Vec::<usize>::new());
        let error = backend_labels("proto,nope,also").unwrap_err().to_string();
        assert!(
            error.contains("unknown IPVS backend labels: \"also, nope\""),
            "{error}"
        );
    }
}
