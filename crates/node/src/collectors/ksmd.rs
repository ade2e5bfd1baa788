//! `ksmd`: the kernel same-page merging daemon's state, from `/sys/kernel/mm/ksm/`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Ksmd {
        root: settings.paths.sys("kernel/mm/ksm"),
    })
}

struct Ksmd {
    /// `/sys/kernel/mm/ksm`.
    root: PathBuf,
}

/// File, family, help, kind, and the factor that turns the file's unit into the family's.
const FILES: [(&str, &str, &str, MetricType, f64); 10] = [
    (
        "full_scans",
        "node_ksmd_full_scans_total",
        "How many times all mergeable areas have been scanned.",
        MetricType::Counter,
        1.0,
    ),
    (
        "general_profit",
        "node_ksmd_general_profit_bytes",
        "How effective is KSM. ksm_saved_pages * sizeof(page) - (all_rmap_items) * sizeof(rmap_item)",
        MetricType::Gauge,
        1.0,
    ),
    (
        "merge_across_nodes",
        "node_ksmd_merge_across_nodes",
        "Specifies if pages from different NUMA nodes can be merged.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "pages_shared",
        "node_ksmd_pages_shared",
        "How many shared pages are being used.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "pages_sharing",
        "node_ksmd_pages_sharing",
        "How many more sites are sharing them i.e. how much saved.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "pages_to_scan",
        "node_ksmd_pages_to_scan",
        "How many pages to scan before ksmd goes to sleep.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "pages_unshared",
        "node_ksmd_pages_unshared",
        "How many pages unique but repeatedly checked for merging.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "pages_volatile",
        "node_ksmd_pages_volatile",
        "How many pages changing too fast to be placed in a tree.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "run",
        "node_ksmd_run",
        "The status of ksmd. stopped = 0, running = 1",
        MetricType::Gauge,
        1.0,
    ),
    (
        "sleep_millisecs",
        "node_ksmd_sleep_seconds",
        "How many seconds ksmd should sleep before next scan.",
        MetricType::Gauge,
        1000.0,
    ),
];

/// A file's number. `general_profit` goes negative while merging costs more than it
/// saves, so signed numbers are read too.
fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(n) => Some(n as f64),
        Err(_) => text.parse::<i64>().ok().map(|n| n as f64),
    }
}

impl Collector for Ksmd {
    fn name(&self) -> &str {
        "ksmd"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // A kernel without KSM has no such directory: nothing to report, and no failure
        // (as node_exporter, which skips each missing file).
        let Some(dir) = read::AttributeDir::open(&self.root) else {
            return Ok(());
        };
        for (file, name, help, kind, divisor) in FILES {
            // Older kernels lack some files (general_profit came in 6.1).
            let Some(value) = dir.attribute(file).and_then(|t| number(&t)) else {
                continue;
            };
            let family = out.family(name, help, kind);
            out.sample(family, &[], value / divisor);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers() {
        assert_eq!(super::number("323\n"), Some(323.0));
        assert_eq!(super::number("-4096\n"), Some(-4096.0));
        assert_eq!(super::number("x"), None);
    }
}
