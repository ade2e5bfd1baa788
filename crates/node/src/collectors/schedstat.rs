//! `schedstat`: per-CPU scheduler run and wait time from `/proc/schedstat` (kernels with
//! `CONFIG_SCHEDSTATS`).

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Schedstat {
        path: settings.paths.proc("schedstat"),
        aggregate: settings.options.cpu_aggregate,
    })
}

struct Schedstat {
    path: PathBuf,
    aggregate: bool,
}

/// `(cpu, running ns, waiting ns, timeslices)` per `cpuN` line.
fn parse(text: &str) -> Vec<(&str, f64, f64, f64)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let cpu = fields.next()?.strip_prefix("cpu")?;
            let numbers: Vec<f64> = fields.map(|f| f.parse().unwrap_or(0.0)).collect();
            (numbers.len() >= 9).then(|| (cpu, numbers[6], numbers[7], numbers[8]))
        })
        .collect()
}

impl Collector for Schedstat {
    fn name(&self) -> &str {
        "schedstat"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file_or_no_data(&self.path)?;
        let mut cpus = parse(&text);
        if self.aggregate {
            let total = cpus
                .iter()
                .fold((0.0, 0.0, 0.0), |t, c| (t.0 + c.1, t.1 + c.2, t.2 + c.3));
            cpus = vec![("all", total.0, total.1, total.2)];
        }
        let running = out.counter(
            "node_schedstat_running_seconds_total",
            "Number of seconds CPU spent running a process.",
        );
        let waiting = out.counter(
            "node_schedstat_waiting_seconds_total",
            "Number of seconds spent by processing waiting for this CPU.",
        );
        let slices = out.counter(
            "node_schedstat_timeslices_total",
            "Number of timeslices executed by CPU.",
        );
        for (cpu, run_ns, wait_ns, timeslices) in cpus {
            out.sample(running, &[("cpu", cpu)], run_ns / 1e9);
            out.sample(waiting, &[("cpu", cpu)], wait_ns / 1e9);
            out.sample(slices, &[("cpu", cpu)], timeslices);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lines() {
        let text = "version 15\ntimestamp 4297299139\ncpu0 0 0 0 0 0 0 2045936778163039 343796328169361 4767485306\ndomain0 00000000,00000003 212499247 210112015 1861015 1860405436 536440 369895 32599 210079416 25368550 24241256 384652 927363878 807233 6366 1647 0 0 1\n";
        assert_eq!(
            super::parse(text),
            [("0", 2045936778163039.0, 343796328169361.0, 4767485306.0)]
        );
    }
}
