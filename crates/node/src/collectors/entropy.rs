//! `entropy`: the kernel's available entropy and pool size.

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricFamily, ScrapeContext};

use super::{Settings, boxed, gauge};
use crate::paths::Paths;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Entropy {
        paths: settings.paths.clone(),
    })
}

struct Entropy {
    paths: Paths,
}

impl Collector for Entropy {
    fn name(&self) -> &str {
        "entropy"
    }

    fn collect(&self, _: &ScrapeContext) -> Result<Vec<MetricFamily>, CollectError> {
        let number = |name: &str| -> Result<f64, CollectError> {
            let path = self.paths.proc(&format!("sys/kernel/random/{name}"));
            let text = read::file(&path)?;
            text.trim().parse().map_err(|e| read::malformed(&path, e))
        };
        Ok(vec![
            gauge(
                "node_entropy_available_bits",
                "Bits of available entropy.",
                number("entropy_avail")?,
            ),
            gauge(
                "node_entropy_pool_size_bits",
                "Bits of entropy pool.",
                number("poolsize")?,
            ),
        ])
    }
}
