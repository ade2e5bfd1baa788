//! `entropy`: the kernel's available entropy and pool size.

use std::path::{Path, PathBuf};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Entropy {
        available: settings.paths.proc("sys/kernel/random/entropy_avail"),
        pool_size: settings.paths.proc("sys/kernel/random/poolsize"),
    })
}

struct Entropy {
    available: PathBuf,
    pool_size: PathBuf,
}

impl Collector for Entropy {
    fn name(&self) -> &str {
        "entropy"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let number = |path: &Path| -> Result<f64, CollectError> {
            let text = read::file(path)?;
            text.trim().parse().map_err(|e| read::malformed(path, e))
        };
        let (available, pool) = (number(&self.available)?, number(&self.pool_size)?);
        out.gauge_value(
            "node_entropy_available_bits",
            "Bits of available entropy.",
            available,
        );
        out.gauge_value("node_entropy_pool_size_bits", "Bits of entropy pool.", pool);
        Ok(())
    }
}
