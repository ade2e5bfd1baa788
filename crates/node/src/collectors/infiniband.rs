//! `infiniband`: InfiniBand and RDMA ports from `/sys/class/infiniband/`, including AWS
//! EFA devices, whose statistics live in `hw_counters` rather than `counters`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::NameFilter;
use crate::read;

/// The infiniband collector's options.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "infiniband_options")]
pub struct Options {
    /// Regexp of infiniband devices to include (mutually exclusive to device-exclude).
    #[arg(long = "collector.infiniband.device-include", value_name = "REGEX")]
    pub infiniband_device_include: Option<String>,
    /// Regexp of infiniband devices to exclude (mutually exclusive to device-include).
    #[arg(long = "collector.infiniband.device-exclude", value_name = "REGEX")]
    pub infiniband_device_exclude: Option<String>,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options.infiniband;
    boxed(Infiniband {
        root: settings.paths.sys("class/infiniband"),
        devices: NameFilter::new(
            options.infiniband_device_include.as_deref(),
            options.infiniband_device_exclude.as_deref(),
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

/// `(file in ports/N/counters, metric, factor)`. The data counters count 32-bit words.
const COUNTERS: &[(&str, &str, f64)] = &[
    (
        "excessive_buffer_overrun_errors",
        "node_infiniband_excessive_buffer_overrun_errors_total",
        1.0,
    ),
    ("link_downed", "node_infiniband_link_downed_total", 1.0),
    (
        "link_error_recovery",
        "node_infiniband_link_error_recovery_total",
        1.0,
    ),
    (
        "local_link_integrity_errors",
        "node_infiniband_local_link_integrity_errors_total",
        1.0,
    ),
    (
        "multicast_rcv_packets",
        "node_infiniband_multicast_packets_received_total",
        1.0,
    ),
    (
        "multicast_xmit_packets",
        "node_infiniband_multicast_packets_transmitted_total",
        1.0,
    ),
    (
        "port_rcv_constraint_errors",
        "node_infiniband_port_receive_constraint_errors_total",
        1.0,
    ),
    (
        "port_rcv_data",
        "node_infiniband_port_data_received_bytes_total",
        4.0,
    ),
    (
        "port_rcv_discards",
        "node_infiniband_port_discards_received_total",
        1.0,
    ),
    (
        "port_rcv_errors",
        "node_infiniband_port_errors_received_total",
        1.0,
    ),
    (
        "port_rcv_packets",
        "node_infiniband_port_packets_received_total",
        1.0,
    ),
    (
        "port_rcv_remote_physical_errors",
        "node_infiniband_port_receive_remote_physical_errors_total",
        1.0,
    ),
    (
        "port_rcv_switch_relay_errors",
        "node_infiniband_port_receive_switch_relay_errors_total",
        1.0,
    ),
    (
        "port_xmit_constraint_errors",
        "node_infiniband_port_transmit_constraint_errors_total",
        1.0,
    ),
    (
        "port_xmit_data",
        "node_infiniband_port_data_transmitted_bytes_total",
        4.0,
    ),
    (
        "port_xmit_discards",
        "node_infiniband_port_discards_transmitted_total",
        1.0,
    ),
    (
        "port_xmit_packets",
        "node_infiniband_port_packets_transmitted_total",
        1.0,
    ),
    (
        "port_xmit_wait",
        "node_infiniband_port_transmit_wait_total",
        1.0,
    ),
    ("symbol_error", "node_infiniband_symbol_error_total", 1.0),
    (
        "unicast_rcv_packets",
        "node_infiniband_unicast_packets_received_total",
        1.0,
    ),
    (
        "unicast_xmit_packets",
        "node_infiniband_unicast_packets_transmitted_total",
        1.0,
    ),
    ("VL15_dropped", "node_infiniband_vl15_dropped_total", 1.0),
];

/// The number before the colon of `4: ACTIVE`.
fn state_id(text: &str) -> Option<f64> {
    text.split(':').next()?.trim().parse().ok()
}

/// `100 Gb/sec (4X EDR)` in bytes per second.
fn rate_bytes(text: &str) -> Option<f64> {
    let mut words = text.split_ascii_whitespace();
    let value: f64 = words.next()?.parse().ok()?;
    match words.next()? {
        "Gb/sec" => Some(value * 125_000_000.0),
        "Mb/sec" => Some(value * 125_000.0),
        _ => None,
    }
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
        let counters: Vec<FamilyId> = COUNTERS
            .iter()
            .map(|(file, name, _)| {
                out.family_fmt(
                    format_args!("{name}"),
                    format_args!("Infiniband port counter {file}"),
                    MetricType::Counter,
                )
            })
            .collect();
        let hw = out.gauge(
            "node_infiniband_hw_counter",
            "Driver-specific counter from ports/<port>/hw_counters, by counter name.",
        );
        for (device, dir) in devices {
            let text = |file: &str| read::attribute(&dir.join(file)).unwrap_or_default();
            out.sample(
                info,
                &[
                    ("device", &device),
                    ("board_id", &text("board_id")),
                    ("firmware_version", &text("fw_ver")),
                    ("hca_type", &text("hca_type")),
                ],
                1.0,
            );
            for (port, port_dir) in
                read::dir_entries(&dir.join("ports"), |_| true).unwrap_or_default()
            {
                let labels = [("device", device.as_str()), ("port", port.as_str())];
                let value = |file: &str| read::attribute(&port_dir.join(file));
                if let Some(id) = value("state").as_deref().and_then(state_id) {
                    out.sample(state, &labels, id);
                }
                if let Some(id) = value("phys_state").as_deref().and_then(state_id) {
                    out.sample(physical, &labels, id);
                }
                if let Some(bytes) = value("rate").as_deref().and_then(rate_bytes) {
                    out.sample(rate, &labels, bytes);
                }
                for ((file, _, factor), family) in COUNTERS.iter().zip(&counters) {
                    if let Some(count) =
                        read::attribute_value::<f64>(&port_dir.join("counters").join(file))
                    {
                        out.sample(*family, &labels, count * factor);
                    }
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
                        &[("device", &device), ("port", &port), ("counter", &counter)],
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
    #[test]
    fn port_attributes() {
        assert_eq!(super::state_id("4: ACTIVE"), Some(4.0));
        assert_eq!(super::state_id("5: LinkUp"), Some(5.0));
        assert_eq!(
            super::rate_bytes("100 Gb/sec (4X EDR)"),
            Some(12_500_000_000.0)
        );
        assert_eq!(super::rate_bytes("garbage"), None);
    }
}
