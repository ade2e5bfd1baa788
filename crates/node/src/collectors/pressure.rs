//! `pressure`: pressure stall information (PSI) totals from `/proc/pressure/*`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Pressure {
        files: ["cpu", "io", "memory", "irq"].map(|resource| {
            (
                resource,
                settings.paths.proc(&format!("pressure/{resource}")),
            )
        }),
    })
}

struct Pressure {
    /// `(resource, /proc/pressure/<resource>)`, `cpu` first.
    files: [(&'static str, PathBuf); 4],
}

/// `(resource, line, metric, help)`: which total of which file becomes which counter.
const TOTALS: [(&str, &str, &str, &str); 6] = [
    (
        "cpu",
        "some",
        "node_pressure_cpu_waiting_seconds_total",
        "Total time in seconds that processes have waited for CPU time",
    ),
    (
        "io",
        "some",
        "node_pressure_io_waiting_seconds_total",
        "Total time in seconds that processes have waited due to IO congestion",
    ),
    (
        "io",
        "full",
        "node_pressure_io_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IO congestion",
    ),
    (
        "memory",
        "some",
        "node_pressure_memory_waiting_seconds_total",
        "Total time in seconds that processes have waited for memory",
    ),
    (
        "memory",
        "full",
        "node_pressure_memory_stalled_seconds_total",
        "Total time in seconds no process could make progress due to memory congestion",
    ),
    (
        "irq",
        "full",
        "node_pressure_irq_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IRQ congestion",
    ),
];

/// The `total=` microseconds of the `some` or `full` line.
fn total(text: &str, kind: &str) -> Option<f64> {
    let line = text.lines().find(|line| line.starts_with(kind))?;
    let total = line
        .split_ascii_whitespace()
        .find_map(|field| field.strip_prefix("total="))?;
    // Two divisions by 1000, not one by 1e6: node_exporter divides so, and the two give
    // different floats (14036781 µs is 14.036781000000001 s this way).
    Some(total.parse::<u64>().ok()? as f64 / 1000.0 / 1000.0)
}

impl Collector for Pressure {
    fn name(&self) -> &str {
        "pressure"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // A kernel without PSI (or booted with psi=0) has no cpu file: nothing to report.
        let cpu = read::file_or_no_data(&self.files[0].1)?;
        for (resource, path) in &self.files {
            let other;
            let text = if *resource == "cpu" {
                &*cpu
            } else {
                // irq pressure exists only on kernels built with CONFIG_IRQ_TIME_ACCOUNTING.
                other = read::optional_trimmed(path);
                match &other {
                    Some(text) => &**text,
                    None => continue,
                }
            };
            for (_, kind, name, help) in TOTALS.iter().filter(|t| t.0 == *resource) {
                if let Some(seconds) = total(text, kind) {
                    out.counter_value(name, help, seconds);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn totals_are_seconds() {
        let text = "some avg10=0.00 avg60=0.00 avg300=0.00 total=14036781\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=13\n";
        assert_eq!(super::total(text, "some"), Some(14.036781000000001));
        assert_eq!(super::total(text, "full"), Some(13.0 / 1000.0 / 1000.0));
        assert_eq!(super::total("some avg10=1", "some"), None);
    }
}
