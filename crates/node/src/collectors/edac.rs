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

/// The channel number of a csrow's `ch<n>_ce_count` file.
fn channel_of(file: &str) -> Option<&str> {
    let channel = file.strip_prefix("ch")?.strip_suffix("_ce_count")?;
    (!channel.is_empty() && channel.bytes().all(|b| b.is_ascii_digit())).then_some(channel)
}

/// A DIMM's label as node_exporter spells it: `mc#0csrow#1channel#0` becomes
/// `mc0_csrow1_channel0`.
fn dimm_label(text: &str) -> String {
    text.trim()
        .replace('#', "")
        .replace("csrow", "_csrow")
        .replace("channel", "_channel")
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
        let channel_ce = out.counter(
            "node_edac_channel_correctable_errors_total",
            "Total correctable memory errors for this channel.",
        );
        let channel_ue = out.counter(
            "node_edac_channel_uncorrectable_errors_total",
            "Total uncorrectable memory errors for this channel.",
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
                let files = read::dir_entries(&row, |n| channel_of(n).is_some());
                for (file, path) in files.unwrap_or_default() {
                    let Some(channel) = channel_of(&file) else {
                        continue;
                    };
                    let Some(count) = read::attribute_value::<f64>(&path) else {
                        continue;
                    };
                    let label = read::attribute(&row.join(format!("ch{channel}_dimm_label")));
                    let label = label
                        .as_deref()
                        .map_or_else(|| "unknown".into(), dimm_label);
                    let labels = [
                        ("controller", controller),
                        ("csrow", csrow),
                        ("channel", channel),
                        ("dimm_label", label.as_str()),
                    ];
                    out.sample(channel_ce, &labels, count);
                    let ue = row.join(format!("ch{channel}_ue_count"));
                    if let Some(count) = read::attribute_value::<f64>(&ue) {
                        out.sample(channel_ue, &labels, count);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn channel_files() {
        assert_eq!(super::channel_of("ch0_ce_count"), Some("0"));
        assert_eq!(super::channel_of("ch12_ce_count"), Some("12"));
        assert_eq!(super::channel_of("ch0_ue_count"), None);
        assert_eq!(super::channel_of("ch_ce_count"), None);
        assert_eq!(super::channel_of("chx_ce_count"), None);
    }

    #[test]
    fn dimm_labels() {
        // As in node_exporter's vendored sysfs fixture.
        assert_eq!(
            super::dimm_label("mc0csrow0channel1\n"),
            "mc0_csrow0_channel1"
        );
        assert_eq!(
            super::dimm_label("mc#0csrow#1channel#0"),
            "mc0_csrow1_channel0"
        );
    }
}
