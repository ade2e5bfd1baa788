//! `infiniband`: InfiniBand and RDMA ports from `/sys/class/infiniband/`, as
//! node_exporter reports them: port state and rate, the standard port counters
//! (`counters/`), their 64-bit "legacy" forms (`counters_ext/`), Mellanox's hardware
//! counters (`hw_counters/`), and, a Kiln addition, every driver-specific hardware counter
//! by name (AWS EFA has only those).

use std::path::{Path, PathBuf};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::NameFilter;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let o = &settings.options;
    boxed(Infiniband {
        root: settings.paths.sys("class/infiniband"),
        devices: NameFilter::new(
            o.infiniband_include.as_deref(),
            o.infiniband_exclude.as_deref(),
            (
                "collector.infiniband.device-include",
                "collector.infiniband.device-exclude",
            ),
        )?,
    })
}

struct Infiniband {
    /// `/sys/class/infiniband`.
    root: PathBuf,
    devices: NameFilter,
}

/// A counter file and the metric it becomes.
struct Counter {
    /// The directory under the port (`counters`, `counters_ext`, `hw_counters`).
    dir: &'static str,
    file: &'static str,
    /// The name after `node_infiniband_`.
    metric: &'static str,
    help: &'static str,
    /// The data counters count 4-byte words.
    words: bool,
}

const fn counter(
    dir: &'static str,
    file: &'static str,
    metric: &'static str,
    help: &'static str,
) -> Counter {
    Counter {
        dir,
        file,
        metric,
        help,
        words: false,
    }
}

const fn words(
    dir: &'static str,
    file: &'static str,
    metric: &'static str,
    help: &'static str,
) -> Counter {
    Counter {
        dir,
        file,
        metric,
        help,
        words: true,
    }
}

const EXT: &str = "counters_ext";
const STD: &str = "counters";
const HW: &str = "hw_counters";

/// Every counter node_exporter knows, with its metric name and HELP text.
const COUNTERS: &[Counter] = &[
    counter(
        EXT,
        "port_multicast_rcv_packets",
        "legacy_multicast_packets_received_total",
        "Number of multicast packets received",
    ),
    counter(
        EXT,
        "port_multicast_xmit_packets",
        "legacy_multicast_packets_transmitted_total",
        "Number of multicast packets transmitted",
    ),
    words(
        EXT,
        "port_rcv_data_64",
        "legacy_data_received_bytes_total",
        "Number of data octets received on all links",
    ),
    counter(
        EXT,
        "port_rcv_packets_64",
        "legacy_packets_received_total",
        "Number of data packets received on all links",
    ),
    counter(
        EXT,
        "port_unicast_rcv_packets",
        "legacy_unicast_packets_received_total",
        "Number of unicast packets received",
    ),
    counter(
        EXT,
        "port_unicast_xmit_packets",
        "legacy_unicast_packets_transmitted_total",
        "Number of unicast packets transmitted",
    ),
    words(
        EXT,
        "port_xmit_data_64",
        "legacy_data_transmitted_bytes_total",
        "Number of data octets transmitted on all links",
    ),
    // Upstream's HELP for the transmitted packets repeats the received one's.
    counter(
        EXT,
        "port_xmit_packets_64",
        "legacy_packets_transmitted_total",
        "Number of data packets received on all links",
    ),
    counter(
        STD,
        "excessive_buffer_overrun_errors",
        "excessive_buffer_overrun_errors_total",
        "Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error.",
    ),
    counter(
        STD,
        "link_downed",
        "link_downed_total",
        "Number of times the link failed to recover from an error state and went down",
    ),
    counter(
        STD,
        "link_error_recovery",
        "link_error_recovery_total",
        "Number of times the link successfully recovered from an error state",
    ),
    counter(
        STD,
        "local_link_integrity_errors",
        "local_link_integrity_errors_total",
        "Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.",
    ),
    counter(
        STD,
        "multicast_rcv_packets",
        "multicast_packets_received_total",
        "Number of multicast packets received (including errors)",
    ),
    counter(
        STD,
        "multicast_xmit_packets",
        "multicast_packets_transmitted_total",
        "Number of multicast packets transmitted (including errors)",
    ),
    counter(
        STD,
        "port_rcv_constraint_errors",
        "port_constraint_errors_received_total",
        "Number of packets received on the switch physical port that are discarded",
    ),
    counter(
        STD,
        "port_xmit_constraint_errors",
        "port_constraint_errors_transmitted_total",
        "Number of packets not transmitted from the switch physical port",
    ),
    words(
        STD,
        "port_rcv_data",
        "port_data_received_bytes_total",
        "Number of data octets received on all links",
    ),
    words(
        STD,
        "port_xmit_data",
        "port_data_transmitted_bytes_total",
        "Number of data octets transmitted on all links",
    ),
    counter(
        STD,
        "port_rcv_discards",
        "port_discards_received_total",
        "Number of inbound packets discarded by the port because the port is down or congested",
    ),
    counter(
        STD,
        "port_xmit_discards",
        "port_discards_transmitted_total",
        "Number of outbound packets discarded by the port because the port is down or congested",
    ),
    counter(
        STD,
        "port_rcv_errors",
        "port_errors_received_total",
        "Number of packets containing an error that were received on this port",
    ),
    counter(
        STD,
        "port_rcv_packets",
        "port_packets_received_total",
        "Number of packets received on all VLs by this port (including errors)",
    ),
    counter(
        STD,
        "port_xmit_packets",
        "port_packets_transmitted_total",
        "Number of packets transmitted on all VLs from this port (including errors)",
    ),
    counter(
        STD,
        "port_xmit_wait",
        "port_transmit_wait_total",
        "Number of ticks during which the port had data to transmit but no data was sent during the entire tick",
    ),
    counter(
        STD,
        "unicast_rcv_packets",
        "unicast_packets_received_total",
        "Number of unicast packets received (including errors)",
    ),
    counter(
        STD,
        "unicast_xmit_packets",
        "unicast_packets_transmitted_total",
        "Number of unicast packets transmitted (including errors)",
    ),
    counter(
        STD,
        "port_rcv_remote_physical_errors",
        "port_receive_remote_physical_errors_total",
        "Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.",
    ),
    counter(
        STD,
        "port_rcv_switch_relay_errors",
        "port_receive_switch_relay_errors_total",
        "Number of packets that could not be forwarded by the switch.",
    ),
    counter(
        STD,
        "symbol_error",
        "symbol_error_total",
        "Number of minor link errors detected on one or more physical lanes.",
    ),
    counter(
        STD,
        "VL15_dropped",
        "vl15_dropped_total",
        "Number of incoming VL15 packets dropped due to resource limitations.",
    ),
    counter(
        HW,
        "duplicate_request",
        "duplicate_requests_packets_total",
        "The number of received packets. A duplicate request is a request that had been previously executed.",
    ),
    counter(
        HW,
        "implied_nak_seq_err",
        "implied_nak_seq_errors_total",
        "The number of time the requested decided an ACK. with a PSN larger than the expected PSN for an RDMA read or response.",
    ),
    counter(
        HW,
        "local_ack_timeout_err",
        "local_ack_timeout_errors_total",
        "The number of times QP's ack timer expired for RC, XRC, DCT QPs at the sender side. The QP retry limit was not exceed, therefore it is still recoverable error.",
    ),
    counter(
        HW,
        "np_cnp_sent",
        "np_cnp_packets_sent_total",
        "The number of CNP packets sent by the Notification Point when it noticed congestion experienced in the RoCEv2 IP header (ECN bits). The counters was added in MLNX_OFED 4.1",
    ),
    counter(
        HW,
        "np_ecn_marked_roce_packets",
        "np_ecn_marked_roce_packets_received_total",
        "The number of RoCEv2 packets received by the notification point which were marked for experiencing the congestion (ECN bits where '11' on the ingress RoCE traffic) . The counters was added in MLNX_OFED 4.1",
    ),
    counter(
        HW,
        "out_of_buffer",
        "out_of_buffer_drops_total",
        "The number of drops occurred due to lack of WQE for the associated QPs.",
    ),
    counter(
        HW,
        "out_of_sequence",
        "out_of_sequence_packets_received_total",
        "The number of out of sequence packets received.",
    ),
    counter(
        HW,
        "packet_seq_err",
        "packet_sequence_errors_total",
        "The number of received NAK sequence error packets. The QP retry limit was not exceeded.",
    ),
    counter(
        HW,
        "req_cqe_error",
        "req_cqes_errors_total",
        "The number of times requester detected CQEs completed with errors. The counters was added in MLNX_OFED 4.1",
    ),
    counter(
        HW,
        "req_cqe_flush_error",
        "req_cqes_flush_errors_total",
        "The number of times requester detected CQEs completed with flushed errors. The counters was added in MLNX_OFED 4.1",
    ),
    counter(
        HW,
        "req_remote_access_errors",
        "req_remote_access_errors_total",
        "The number of times requester detected remote access errors. The counters was added in MLNX_OFED 4.1",
    ),
    counter(
        HW,
        "req_remote_invalid_request",
        "req_remote_invalid_request_errors_total",
        "The number of times requester detected remote invalid request errors. The counters was added in MLNX_OFED 4.1",
    ),
    counter(
        HW,
        "resp_cqe_error",
        "resp_cqes_errors_total",
        "The number of times responder detected CQEs completed with errors. The counters was added in MLNX_OFED 4.1",
    ),
    counter(
        HW,
        "resp_cqe_flush_error",
        "resp_cqes_flush_errors_total",
        "The number of times responder detected CQEs completed with flushed errors. The counters was added in MLNX_OFED 4.1",
    ),
    counter(
        HW,
        "resp_local_length_error",
        "resp_local_length_errors_total",
        "The number of times responder detected local length errors. The counters was added in MLNX_OFED 4.1",
    ),
    counter(
        HW,
        "resp_remote_access_errors",
        "resp_remote_access_errors_total",
        "The number of times responder detected remote access errors. The counters was added in MLNX_OFED 4.1",
    ),
    counter(
        HW,
        "rnr_nak_retry_err",
        "rnr_nak_retry_packets_received_total",
        "The number of received RNR NAK packets. The QP retry limit was not exceeded.",
    ),
    counter(
        HW,
        "roce_adp_retrans",
        "roce_adp_retransmits_total",
        "The number of adaptive retransmissions for RoCE traffic. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0",
    ),
    counter(
        HW,
        "roce_adp_retrans_to",
        "roce_adp_retransmits_timeout_total",
        "The number of times RoCE traffic reached timeout due to adaptive retransmission. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0",
    ),
    counter(
        HW,
        "roce_slow_restart",
        "roce_slow_restart_used_total",
        "The number of times RoCE slow restart was used. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0",
    ),
    counter(
        HW,
        "roce_slow_restart_cnps",
        "roce_slow_restart_cnps_total",
        "The number of times RoCE slow restart generated CNP packets. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0",
    ),
    counter(
        HW,
        "roce_slow_restart_trans",
        "roce_slow_restart_total",
        "The number of times RoCE slow restart changed state to slow restart. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0",
    ),
    counter(
        HW,
        "rp_cnp_handled",
        "rp_cnp_packets_handled_total",
        "The number of CNP packets handled by the Reaction Point HCA to throttle the transmission rate. The counters was added in MLNX_OFED 4.1",
    ),
    counter(
        HW,
        "rp_cnp_ignored",
        "rp_cnp_ignored_packets_received_total",
        "The number of CNP packets received and ignored by the Reaction Point HCA. This counter should not raise if RoCE Congestion Control was enabled in the network. If this counter raise, verify that ECN was enabled on the adapter.",
    ),
    counter(
        HW,
        "rx_atomic_requests",
        "rx_atomic_requests_total",
        "The number of received ATOMIC request for the associated QPs.",
    ),
    counter(
        HW,
        "rx_dct_connect",
        "rx_dct_connect_requests_total",
        "The number of received connection requests for the associated DCTs.",
    ),
    counter(
        HW,
        "rx_read_requests",
        "rx_read_requests_total",
        "The number of received READ requests for the associated QPs.",
    ),
    counter(
        HW,
        "rx_write_requests",
        "rx_write_requests_total",
        "The number of received WRITE requests for the associated QPs.",
    ),
    counter(
        HW,
        "rx_icrc_encapsulated",
        "rx_icrc_encapsulated_errors_total",
        "The number of RoCE packets with ICRC errors. This counter was added in MLNX_OFED 4.4 and kernel 4.19",
    ),
];

/// A counter's value as upstream reads it: trimmed, an unsigned integer with Go's base
/// prefixes (`0x`, `0o`, `0b`, a leading `0` for octal). `N/A (no PMA)` and other text
/// is no value.
fn parse_counter(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, radix) =
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (hex, 16)
        } else if let Some(oct) = text.strip_prefix("0o").or_else(|| text.strip_prefix("0O")) {
            (oct, 8)
        } else if let Some(bin) = text.strip_prefix("0b").or_else(|| text.strip_prefix("0B")) {
            (bin, 2)
        } else if text.len() > 1 && text.starts_with('0') {
            (&text[1..], 8)
        } else {
            (text, 10)
        };
    if digits.starts_with('+') || digits.starts_with('-') {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// `4: ACTIVE` → 4, as upstream: exactly one colon, the number before it.
fn state_id(text: &str) -> Option<u64> {
    let (id, _) = text.split_once(':')?;
    if text.matches(':').count() != 1 {
        return None;
    }
    id.trim().parse().ok()
}

/// `100 Gb/sec (4X EDR)` in bytes per second, as upstream computes it: the first word read
/// as a 32-bit float, times 125 000 000, truncated to an integer.
fn rate_bytes(text: &str) -> Option<u64> {
    let (value, _) = text.split_once(' ')?;
    let value: f32 = value.trim().parse().ok()?;
    Some((f64::from(value) * 125_000_000.0) as u64)
}

/// A port's state, physical state and rate; a port missing any of them is not reported.
fn port_status(dir: &Path) -> Option<(u64, u64, u64)> {
    let state = state_id(&read::attribute(&dir.join("state"))?)?;
    let physical = state_id(&read::attribute(&dir.join("phys_state"))?)?;
    let rate = rate_bytes(&read::attribute(&dir.join("rate"))?)?;
    Some((state, physical, rate))
}

impl Collector for Infiniband {
    fn name(&self) -> &str {
        "infiniband"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let devices = read::dir_entries(&self.root, |name| self.devices.accepts(name))?;
        let info = out.gauge(
            "node_infiniband_info",
            "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
        );
        let state = out.gauge(
            "node_infiniband_state_id",
            "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)",
        );
        let physical = out.gauge(
            "node_infiniband_physical_state_id",
            "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)",
        );
        let rate = out.gauge(
            "node_infiniband_rate_bytes_per_second",
            "Maximum signal transfer rate",
        );
        let lifespan = out.gauge(
            "node_infiniband_lifespan_seconds",
            "The maximum period in ms which defines the aging of the counter reads. Two consecutive reads within this period might return the same values.",
        );
        let counters: Vec<FamilyId> = COUNTERS
            .iter()
            .map(|c| {
                out.family_fmt(
                    format_args!("node_infiniband_{}", c.metric),
                    format_args!("{}", c.help),
                    MetricType::Counter,
                )
            })
            .collect();
        let hw = out.gauge(
            "node_infiniband_hw_counter",
            "Driver-specific counter from ports/<port>/hw_counters, by counter name.",
        );
        for (device, dir) in devices {
            let Some(firmware) = read::attribute(&dir.join("fw_ver")) else {
                tracing::debug!(collector = "infiniband", device, "no fw_ver; skipped");
                continue;
            };
            let text = |file: &str| read::attribute(&dir.join(file)).unwrap_or_default();
            out.sample(
                info,
                &[
                    ("device", &device),
                    ("board_id", &text("board_id")),
                    ("firmware_version", &firmware),
                    ("hca_type", &text("hca_type")),
                ],
                1.0,
            );
            // Port directories are numbers; anything else is not a port.
            let ports = read::dir_entries(&dir.join("ports"), |name| name.parse::<u32>().is_ok())
                .unwrap_or_default();
            let mut seen = std::collections::BTreeSet::new();
            for (port, port_dir) in ports {
                let Ok(number) = port.parse::<u32>() else {
                    continue;
                };
                // `01` and `1` would be the same port label.
                if !seen.insert(number) {
                    continue;
                }
                let Some((state_value, physical_value, rate_value)) = port_status(&port_dir) else {
                    tracing::debug!(
                        collector = "infiniband",
                        port = %port_dir.display(),
                        "port state or rate unreadable; skipped"
                    );
                    continue;
                };
                let number = number.to_string();
                let labels = [("device", device.as_str()), ("port", number.as_str())];
                out.sample(state, &labels, state_value as f64);
                out.sample(physical, &labels, physical_value as f64);
                out.sample(rate, &labels, rate_value as f64);
                for (c, family) in COUNTERS.iter().zip(&counters) {
                    let Some(count) = read::attribute(&port_dir.join(c.dir).join(c.file))
                        .as_deref()
                        .and_then(parse_counter)
                    else {
                        continue;
                    };
                    let count = if c.words {
                        count.wrapping_mul(4)
                    } else {
                        count
                    };
                    out.sample(*family, &labels, count as f64);
                }
                if let Some(ms) = read::attribute(&port_dir.join("hw_counters/lifespan"))
                    .as_deref()
                    .and_then(parse_counter)
                {
                    // Whole seconds, as upstream divides.
                    out.sample(lifespan, &labels, (ms / 1000) as f64);
                }
                // Driver-specific counters (EFA's rdma_read_bytes, rx_drops, …), by name.
                for (counter, path) in
                    read::dir_entries(&port_dir.join("hw_counters"), |_| true).unwrap_or_default()
                {
                    let Some(count) = read::attribute_value::<f64>(&path) else {
                        continue;
                    };
                    out.sample(
                        hw,
                        &[
                            ("device", device.as_str()),
                            ("port", number.as_str()),
                            ("counter", &counter),
                        ],
                        count,
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_attributes() {
        assert_eq!(state_id("4: ACTIVE"), Some(4));
        assert_eq!(state_id("5: LinkUp"), Some(5));
        assert_eq!(state_id("5"), None);
        assert_eq!(state_id("5: a: b"), None);
        assert_eq!(rate_bytes("100 Gb/sec (4X EDR)"), Some(12_500_000_000));
        assert_eq!(rate_bytes("10 Gb/sec (4X)"), Some(1_250_000_000));
        assert_eq!(rate_bytes("40 Gb/sec (4X QDR)"), Some(5_000_000_000));
        assert_eq!(rate_bytes("garbage"), None);
    }

    #[test]
    fn counter_values() {
        assert_eq!(parse_counter("4631917\n"), Some(4631917));
        assert_eq!(parse_counter("0"), Some(0));
        assert_eq!(parse_counter("0x10"), Some(16));
        assert_eq!(parse_counter("010"), Some(8));
        assert_eq!(parse_counter("N/A (no PMA)"), None);
        assert_eq!(parse_counter("-1"), None);
        assert_eq!(parse_counter("+1"), None);
    }

    #[test]
    fn metric_names_are_unique() {
        let mut names: Vec<&str> = COUNTERS.iter().map(|c| c.metric).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
    }
}
