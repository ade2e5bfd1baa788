//! `stat`: boot time, context switches, forks, interrupts and process counts from
//! `/proc/stat`, and with `--collector.stat.softirq` the softirqs per vector.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Stat {
        path: settings.paths.proc("stat"),
        softirq: settings.options.stat_softirq,
    })
}

struct Stat {
    path: PathBuf,
    softirq: bool,
}

/// Softirq vectors in the order of the `softirq` line.
const SOFTIRQ_VECTORS: [&str; 10] = [
    "hi",
    "timer",
    "net_tx",
    "net_rx",
    "block",
    "block_iopoll",
    "tasklet",
    "sched",
    "hrtimer",
    "rcu",
];

/// The system-wide numbers of `/proc/stat`.
#[derive(Debug, Default, PartialEq)]
struct SystemStat {
    boot_time: f64,
    context_switches: f64,
    forks: f64,
    interrupts: f64,
    procs_running: f64,
    procs_blocked: f64,
    softirqs: Vec<f64>,
}

fn parse(text: &str) -> SystemStat {
    let mut stat = SystemStat::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let key = fields.next().unwrap_or_default();
        let first = || {
            line.split_ascii_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        match key {
            "btime" => stat.boot_time = first(),
            "ctxt" => stat.context_switches = first(),
            "processes" => stat.forks = first(),
            "intr" => stat.interrupts = first(),
            "procs_running" => stat.procs_running = first(),
            "procs_blocked" => stat.procs_blocked = first(),
            "softirq" => stat.softirqs = fields.skip(1).filter_map(|v| v.parse().ok()).collect(),
            _ => {}
        }
    }
    stat
}

impl Collector for Stat {
    fn name(&self) -> &str {
        "stat"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let stat = parse(&read::file(&self.path)?);
        out.counter_value(
            "node_intr_total",
            "Total number of interrupts serviced.",
            stat.interrupts,
        );
        out.counter_value(
            "node_context_switches_total",
            "Total number of context switches.",
            stat.context_switches,
        );
        out.counter_value("node_forks_total", "Total number of forks.", stat.forks);
        out.gauge_value(
            "node_boot_time_seconds",
            "Node boot time, in unixtime.",
            stat.boot_time,
        );
        out.gauge_value(
            "node_procs_running",
            "Number of processes in runnable state.",
            stat.procs_running,
        );
        out.gauge_value(
            "node_procs_blocked",
            "Number of processes blocked waiting for I/O to complete.",
            stat.procs_blocked,
        );
        if self.softirq {
            let family = out.counter("node_softirqs_total", "Number of softirq calls.");
            for (vector, value) in SOFTIRQ_VECTORS.iter().zip(&stat.softirqs) {
                out.sample(family, &[("vector", vector)], *value);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_system_wide_lines() {
        let text = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 8885917 17 0 0\nctxt 38014093\nbtime 1418183276\nprocesses 26442\nprocs_running 2\nprocs_blocked 1\nsoftirq 5057579 250191 1481983 1647 211099 186066 0 1783454 622196 12499 508444\n";
        let stat = parse(text);
        assert_eq!(stat.boot_time, 1418183276.0);
        assert_eq!(stat.context_switches, 38014093.0);
        assert_eq!(stat.forks, 26442.0);
        assert_eq!(stat.interrupts, 8885917.0);
        assert_eq!((stat.procs_running, stat.procs_blocked), (2.0, 1.0));
        assert_eq!(stat.softirqs.len(), 10);
        assert_eq!(stat.softirqs[0], 250191.0);
    }
}
