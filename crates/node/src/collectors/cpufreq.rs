//! `cpufreq`: per-CPU frequencies and the scaling governor from
//! `/sys/devices/system/cpu/cpu*/cpufreq/`. Virtual machines usually have none.

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::paths::Paths;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Cpufreq {
        paths: settings.paths.clone(),
    })
}

struct Cpufreq {
    paths: Paths,
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
        let cpus = read::dir_entries(&self.paths.sys("devices/system/cpu"), |name| {
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })?;
        let families: Vec<FamilyId> = FREQUENCIES
            .iter()
            .map(|(_, name, help)| out.gauge(name, help))
            .collect();
        let governors = out.gauge(
            "node_cpu_scaling_governor",
            "Current enabled CPU frequency governor.",
        );
        for (name, dir) in cpus {
            let dir = dir.join("cpufreq");
            let cpu = &name["cpu".len()..];
            for ((file, _, _), family) in FREQUENCIES.iter().zip(&families) {
                if let Some(khz) = read::attribute_value::<f64>(&dir.join(file)) {
                    out.sample(*family, &[("cpu", cpu)], khz * 1000.0);
                }
            }
            let current = read::attribute(&dir.join("scaling_governor")).unwrap_or_default();
            for governor in read::attribute(&dir.join("scaling_available_governors"))
                .unwrap_or_default()
                .split_ascii_whitespace()
            {
                out.sample(
                    governors,
                    &[("cpu", cpu), ("governor", governor)],
                    if governor == current { 1.0 } else { 0.0 },
                );
            }
        }
        Ok(())
    }
}
