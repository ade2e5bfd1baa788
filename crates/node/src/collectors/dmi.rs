//! `dmi`: the firmware's description of the machine (vendor, product, BIOS, board,
//! chassis) from `/sys/class/dmi/id/`, as one info series. It cannot change before a
//! reboot, so it is read once, when the exporter starts.

use std::io::Read;
use std::path::Path;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Dmi {
        labels: read_labels(&settings.paths.sys("class/dmi/id")),
    })
}

struct Dmi {
    /// Label name and value, for each attribute the firmware provides.
    labels: Vec<(&'static str, String)>,
}

/// File in `/sys/class/dmi/id/` and the label it becomes.
const ATTRIBUTES: [(&str, &str); 20] = [
    ("bios_date", "bios_date"),
    ("bios_release", "bios_release"),
    ("bios_vendor", "bios_vendor"),
    ("bios_version", "bios_version"),
    ("board_asset_tag", "board_asset_tag"),
    ("board_name", "board_name"),
    ("board_serial", "board_serial"),
    ("board_vendor", "board_vendor"),
    ("board_version", "board_version"),
    ("chassis_asset_tag", "chassis_asset_tag"),
    ("chassis_serial", "chassis_serial"),
    ("chassis_vendor", "chassis_vendor"),
    ("chassis_version", "chassis_version"),
    ("product_family", "product_family"),
    ("product_name", "product_name"),
    ("product_serial", "product_serial"),
    ("product_sku", "product_sku"),
    ("product_uuid", "product_uuid"),
    ("product_version", "product_version"),
    ("sys_vendor", "system_vendor"),
];

/// The most of an attribute read: DMI strings are short.
const MAX_ATTRIBUTE_BYTES: u64 = 4096;

/// The labels of the attributes in `dir` that are regular files and can be read; the
/// serial numbers and the UUID are readable by root only, and are left out for others.
fn read_labels(dir: &Path) -> Vec<(&'static str, String)> {
    let mut labels = Vec::new();
    for (file, label) in ATTRIBUTES {
        let path = dir.join(file);
        let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        if !regular {
            continue;
        }
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_ATTRIBUTE_BYTES).read_to_end(&mut bytes));
        match read {
            Ok(_) => labels.push((label, valid_text(bytes.trim_ascii()))),
            Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {}
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "DMI attribute not readable");
            }
        }
    }
    if labels.is_empty() {
        tracing::debug!(dir = %dir.display(), "no DMI information");
    }
    labels
}

/// `bytes` as text, each run of bytes that are not UTF-8 replaced by one U+FFFD: firmware
/// strings are sometimes garbage, and a label value must be UTF-8.
fn valid_text(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    let mut replaced = false;
    for chunk in bytes.utf8_chunks() {
        if !chunk.valid().is_empty() {
            text.push_str(chunk.valid());
            replaced = false;
        }
        if !chunk.invalid().is_empty() && !replaced {
            text.push('\u{FFFD}');
            replaced = true;
        }
    }
    text
}

impl Collector for Dmi {
    fn name(&self) -> &str {
        "dmi"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        if self.labels.is_empty() {
            return Err(CollectError::NoData);
        }
        let family = out.gauge(
            "node_dmi_info",
            "A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, bios_version, board_asset_tag, board_name, board_serial, board_vendor, board_version, chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, product_family, product_name, product_serial, product_sku, product_uuid, product_version, system_vendor if provided by DMI.",
        );
        let labels: Vec<(&str, &str)> = self
            .labels
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        out.sample(family, &labels, 1.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_invalid_bytes_become_one_replacement() {
        assert_eq!(valid_text(b"Dell Inc."), "Dell Inc.");
        assert_eq!(valid_text(b"\xff\xfe\x1c[\xc3"), "\u{FFFD}\x1c[\u{FFFD}");
        assert_eq!(valid_text(b"a\xe2\x82b"), "a\u{FFFD}b");
    }

    #[test]
    fn reads_regular_files_and_renames_sys_vendor() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sys_vendor"), "  Acme \n").unwrap();
        std::fs::write(dir.path().join("bios_date"), "04/12/2021\n").unwrap();
        std::fs::write(dir.path().join("modalias"), "dmi:x\n").unwrap();
        std::os::unix::fs::symlink("sys_vendor", dir.path().join("board_name")).unwrap();
        assert_eq!(
            read_labels(dir.path()),
            [
                ("bios_date", "04/12/2021".to_string()),
                ("system_vendor", "Acme".to_string())
            ]
        );
        assert!(read_labels(&dir.path().join("missing")).is_empty());
    }
}
