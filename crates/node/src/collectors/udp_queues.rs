//! `udp_queues`: memory queued in UDP sockets, summed per direction and IP version, from
//! `/proc/net/udp{,6}`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(UdpQueues {
        udp: settings.paths.proc("net/udp"),
        udp6: settings.paths.proc("net/udp6"),
    })
}

struct UdpQueues {
    /// `/proc/net/udp`.
    udp: PathBuf,
    /// `/proc/net/udp6`, missing when IPv6 is off.
    udp6: PathBuf,
}

/// Sums the hexadecimal `tx_queue:rx_queue` column over all sockets: `(tx, rx)`.
fn parse(text: &str) -> (f64, f64) {
    let (mut tx, mut rx) = (0u64, 0u64);
    for line in text.lines().skip(1) {
        let Some(queues) = line.split_ascii_whitespace().nth(4) else {
            continue;
        };
        let Some((t, r)) = queues.split_once(':') else {
            continue;
        };
        tx += u64::from_str_radix(t, 16).unwrap_or(0);
        rx += u64::from_str_radix(r, 16).unwrap_or(0);
    }
    (tx as f64, rx as f64)
}

impl Collector for UdpQueues {
    fn name(&self) -> &str {
        "udp_queues"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let family = out.gauge(
            "node_udp_queues",
            "Number of allocated memory in the kernel for UDP datagrams in bytes.",
        );
        let v4 = read::file(&self.udp)?;
        let v6 = read::optional_trimmed(&self.udp6);
        for (ip, text) in [("v4", Some(v4)), ("v6", v6)] {
            let Some(text) = text else { continue };
            let (tx, rx) = parse(&text);
            out.sample(family, &[("ip", ip), ("queue", "tx")], tx);
            out.sample(family, &[("ip", ip), ("queue", "rx")], rx);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_queues() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n  1: 00000000:0016 00000000:0000 07 00000010:00000001 00:00000000 00000000     0        0 1 2 0\n  2: 00000000:0017 00000000:0000 07 00000001:00000001 00:00000000 00000000     0        0 1 2 0\n";
        assert_eq!(super::parse(text), (17.0, 2.0));
    }
}
