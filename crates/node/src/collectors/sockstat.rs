//! `sockstat`: socket counts and memory per protocol from `/proc/net/sockstat{,6}`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Sockstat {
        sockstat: settings.paths.proc("net/sockstat"),
        sockstat6: settings.paths.proc("net/sockstat6"),
        page_size: rustix::param::page_size() as f64,
    })
}

struct Sockstat {
    /// `/proc/net/sockstat`.
    sockstat: PathBuf,
    /// `/proc/net/sockstat6`, missing when IPv6 is off.
    sockstat6: PathBuf,
    page_size: f64,
}

/// `(protocol, field, value)` for every pair on every line, e.g. `("TCP", "inuse", 4)`.
fn parse(text: &str) -> impl Iterator<Item = (&str, &str, f64)> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .flat_map(|(protocol, rest)| {
            let mut words = rest.split_ascii_whitespace();
            // `name value` pairs; an odd word at the end is left out.
            std::iter::from_fn(move || Some((words.next()?, words.next()?)))
                .filter_map(move |(field, value)| Some((protocol, field, value.parse().ok()?)))
        })
}

impl Sockstat {
    fn write(&self, text: &str, out: &mut MetricSet) {
        for (protocol, field, value) in parse(text) {
            if protocol == "sockets" {
                out.gauge_value(
                    "node_sockstat_sockets_used",
                    "Number of IPv4 sockets in use.",
                    value,
                );
                continue;
            }
            let mut push = |field: &str, value: f64| {
                let family = out.family_fmt(
                    format_args!("node_sockstat_{protocol}_{field}"),
                    format_args!("Number of {protocol} sockets in state {field}."),
                    MetricType::Gauge,
                );
                out.sample(family, &[], value);
            };
            push(field, value);
            // `mem` is in pages; node_exporter adds the same in bytes.
            if field == "mem" {
                push("mem_bytes", value * self.page_size);
            }
        }
    }
}

impl Collector for Sockstat {
    fn name(&self) -> &str {
        "sockstat"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        self.write(&read::file(&self.sockstat)?, out);
        // Absent when IPv6 is disabled.
        if let Some(text) = read::optional_trimmed(&self.sockstat6) {
            self.write(&text, out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pairs_per_protocol() {
        let parsed = super::parse(
            "sockets: used 19\nTCP: inuse 4 orphan 0 tw 3 alloc 4 mem 373\nFRAG: inuse 0 memory 0\n",
        )
        .collect::<Vec<_>>();
        assert_eq!(parsed[0], ("sockets", "used", 19.0));
        assert!(parsed.contains(&("TCP", "mem", 373.0)));
        assert!(parsed.contains(&("FRAG", "memory", 0.0)));
        assert_eq!(parsed.len(), 8);
    }
}
