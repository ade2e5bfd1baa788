//! `cpufreq`: per-CPU frequencies and the scaling governor from
//! `/sys/devices/system/cpu/cpu*/cpufreq/`. Virtual machines usually have none.

use kiln_registry::config::ConfigError;
use std::path::PathBuf;

use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Cpufreq {
        root: settings.paths.sys("devices/system/cpu"),
    })
}

struct Cpufreq {
    /// `/sys/devices/system/cpu`: a `cpuN` directory per CPU.
    root: PathBuf,
}

/// `(file in kHz, metric, HELP)`.
const FREQUENCIES: [(&str, &str, &str); 6] = [
    (
        "cpuinfo_cur_freq",
        "node_cpu_frequency_hertz",
        "Current CPU thread frequency in hertz.",
    ),
    (
        "cpuinfo_max_freq",
        "node_cpu_frequency_max_hertz",
        "Maximum CPU thread frequency in hertz.",
    ),
    (
        "cpuinfo_min_freq",
        "node_cpu_frequency_min_hertz",
        "Minimum CPU thread frequency in hertz.",
    ),
    (
        "scaling_cur_freq",
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_max_freq",
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_min_freq",
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
];

impl Collector for Cpufreq {
    fn name(&self) -> &str {
        "cpufreq"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let cpus = read::Entries::list(&self.root, |name| {
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })?;
        let families = FREQUENCIES.map(|(_, name, help)| out.gauge(name, help));
        let governors = out.gauge(
            "node_cpu_scaling_governor",
            "Current enabled CPU frequency governor.",
        );
        for name in cpus.names() {
            // One lookup of the CPU's `cpufreq` directory, its files read relative to it.
            let Some(dir) = cpus.dir().open_at(&[name, "cpufreq"]) else {
                continue;
            };
            let cpu = &name["cpu".len()..];
            for ((file, _, _), family) in FREQUENCIES.iter().zip(&families) {
                if let Some(khz) = dir.attribute_value::<f64>(file) {
                    out.sample(*family, &[("cpu", cpu)], khz * 1000.0);
                }
            }
            let current = dir.attribute("scaling_governor").unwrap_or_default();
            for governor in dir
                .attribute("scaling_available_governors")
                .unwrap_or_default()
                .split_ascii_whitespace()
            {
                out.sample(
                    governors,
                    &[("cpu", cpu), ("governor", governor)],
                    if governor == &*current { 1.0 } else { 0.0 },
                );
            }
        }
        Ok(())
    }
}
