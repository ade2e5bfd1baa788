//! `edac`: memory controller error counts (ECC) from `/sys/devices/system/edac/mc/`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Edac {
        root: settings.paths.sys("devices/system/edac/mc"),
    })
}

struct Edac {
    /// `/sys/devices/system/edac/mc`: a directory per memory controller.
    root: PathBuf,
}

impl Collector for Edac {
    fn name(&self) -> &str {
        "edac"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // No EDAC driver (most VMs): nothing to report, which is not an error.
        let controllers =
            read::dir_entries(&self.root, |n| n.starts_with("mc")).unwrap_or_default();
        let ce = out.counter(
            "node_edac_correctable_errors_total",
            "Total correctable memory errors.",
        );
        let ue = out.counter(
            "node_edac_uncorrectable_errors_total",
            "Total uncorrectable memory errors.",
        );
        let row_ce = out.counter(
            "node_edac_csrow_correctable_errors_total",
            "Total correctable memory errors for this csrow.",
        );
        let row_ue = out.counter(
            "node_edac_csrow_uncorrectable_errors_total",
            "Total uncorrectable memory errors for this csrow.",
        );
        for (name, dir) in controllers {
            let controller = &name["mc".len()..];
            let value = |file: &str| read::attribute_value::<f64>(&dir.join(file));
            if let Some(count) = value("ce_count") {
                out.sample(ce, &[("controller", controller)], count);
            }
            if let Some(count) = value("ue_count") {
                out.sample(ue, &[("controller", controller)], count);
            }
            // Errors the driver could not attribute to a row.
            if let Some(count) = value("ce_noinfo_count") {
                out.sample(
                    row_ce,
                    &[("controller", controller), ("csrow", "unknown")],
                    count,
                );
            }
            if let Some(count) = value("ue_noinfo_count") {
                out.sample(
                    row_ue,
                    &[("controller", controller), ("csrow", "unknown")],
                    count,
                );
            }
            for (row_name, row) in
                read::dir_entries(&dir, |n| n.starts_with("csrow")).unwrap_or_default()
            {
                let csrow = &row_name["csrow".len()..];
                let labels = [("controller", controller), ("csrow", csrow)];
                if let Some(count) = read::attribute_value::<f64>(&row.join("ce_count")) {
                    out.sample(row_ce, &labels, count);
                }
                if let Some(count) = read::attribute_value::<f64>(&row.join("ue_count")) {
                    out.sample(row_ue, &labels, count);
                }
            }
        }
        Ok(())
    }
}
