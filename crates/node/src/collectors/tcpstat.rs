//! `tcpstat` (off by default): TCP connections per state from `/proc/net/tcp{,6}`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Tcpstat {
        tcp: settings.paths.proc("net/tcp"),
        tcp6: settings.paths.proc("net/tcp6"),
    })
}

struct Tcpstat {
    /// `/proc/net/tcp`.
    tcp: PathBuf,
    /// `/proc/net/tcp6`, missing when IPv6 is off.
    tcp6: PathBuf,
}

/// Kernel TCP states, numbered from 1 as in `include/net/tcp_states.h`.
const STATES: [&str; 11] = [
    "established",
    "syn_sent",
    "syn_recv",
    "fin_wait1",
    "fin_wait2",
    "time_wait",
    "close",
    "close_wait",
    "last_ack",
    "listen",
    "closing",
];

/// Adds the connections of one table to `counts` (indexed by state - 1).
fn count(text: &str, counts: &mut [u64; 11]) {
    for line in text.lines().skip(1) {
        let Some(state) = line.split_ascii_whitespace().nth(3) else {
            continue;
        };
        if let Ok(state) = u8::from_str_radix(state, 16)
            && let Some(slot) = counts.get_mut(usize::from(state).wrapping_sub(1))
        {
            *slot += 1;
        }
    }
}

impl Collector for Tcpstat {
    fn name(&self) -> &str {
        "tcpstat"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut counts = [0u64; 11];
        count(&read::file(&self.tcp)?, &mut counts);
        if let Some(v6) = read::optional_trimmed(&self.tcp6) {
            count(&v6, &mut counts);
        }
        let family = out.gauge("node_tcp_connection_states", "Number of connection states.");
        for (state, count) in STATES.iter().zip(counts) {
            out.sample(family, &[("state", state)], count as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_states() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1\n   1: 0100007F:1F90 0100007F:A0B2 01 00000000:00000000 00:00000000 00000000  1000        0 2\n";
        let mut counts = [0; 11];
        super::count(text, &mut counts);
        assert_eq!(counts[0], 1);
        assert_eq!(counts[9], 1);
    }
}
