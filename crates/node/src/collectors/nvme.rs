//! `nvme`: identity and state of each NVMe controller from `/sys/class/nvme/`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Nvme {
        root: settings.paths.sys("class/nvme"),
    })
}

struct Nvme {
    /// `/sys/class/nvme`.
    root: PathBuf,
}

impl Collector for Nvme {
    fn name(&self) -> &str {
        "nvme"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let controllers = read::dir_entries(&self.root, |_| true)?;
        let info = out.gauge(
            "node_nvme_info",
            "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
        );
        for (device, dir) in controllers {
            let text = |file: &str| read::attribute(&dir.join(file)).unwrap_or_default();
            out.sample(
                info,
                &[
                    ("device", &device),
                    ("firmware_revision", &text("firmware_rev")),
                    ("model", &text("model")),
                    ("serial", &text("serial")),
                    ("state", &text("state")),
                    ("cntlid", &text("cntlid")),
                ],
                1.0,
            );
        }
        Ok(())
    }
}
