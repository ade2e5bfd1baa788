//! `entropy`: the kernel's available entropy and pool size.

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
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

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let number = |name: &str| -> Result<f64, CollectError> {
            let path = self.paths.proc(&format!("sys/kernel/random/{name}"));
            let text = read::file(&path)?;
            text.trim().parse().map_err(|e| read::malformed(&path, e))
        };
        let (available, pool) = (number("entropy_avail")?, number("poolsize")?);
        out.gauge_value(
            "node_entropy_available_bits",
            "Bits of available entropy.",
            available,
        );
        out.gauge_value("node_entropy_pool_size_bits", "Bits of entropy pool.", pool);
        Ok(())
    }
}
