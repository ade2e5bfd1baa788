//! `drm` (off by default): AMD GPUs (the `amdgpu` driver) from
//! `/sys/class/drm/card<N>/device/`: how busy each is and its GTT and VRAM use.

use std::path::{Path, PathBuf};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Drm {
        class: settings.paths.sys("class/drm"),
    })
}

struct Drm {
    /// `/sys/class/drm`.
    class: PathBuf,
}

/// `(file in device/, metric, help)`: the numbers of an amdgpu card.
const GAUGES: [(&str, &str, &str); 7] = [
    (
        "gpu_busy_percent",
        "node_drm_gpu_busy_percent",
        "How busy the GPU is as a percentage.",
    ),
    (
        "mem_info_gtt_total",
        "node_drm_memory_gtt_size_bytes",
        "The size of the graphics translation table (GTT) block in bytes.",
    ),
    (
        "mem_info_gtt_used",
        "node_drm_memory_gtt_used_bytes",
        "The used amount of the graphics translation table (GTT) block in bytes.",
    ),
    (
        "mem_info_vram_total",
        "node_drm_memory_vram_size_bytes",
        "The size of VRAM in bytes.",
    ),
    (
        "mem_info_vram_used",
        "node_drm_memory_vram_used_bytes",
        "The used amount of VRAM in bytes.",
    ),
    (
        "mem_info_vis_vram_total",
        "node_drm_memory_vis_vram_size_bytes",
        "The size of visible VRAM in bytes.",
    ),
    (
        "mem_info_vis_vram_used",
        "node_drm_memory_vis_vram_used_bytes",
        "The used amount of visible VRAM in bytes.",
    ),
];

/// `card0` … `card9`: the cards node_exporter looks at (its pattern is `card[0-9]`, so
/// neither connectors such as `card0-DP-1` nor a tenth card).
fn is_card(name: &str) -> bool {
    name.len() == 5 && name.starts_with("card") && name.as_bytes()[4].is_ascii_digit()
}

/// A text attribute of the card's device, trimmed; empty when absent.
fn text(device: &Path, file: &str) -> String {
    read::attribute(&device.join(file))
        .map(|t| t.trim().to_owned())
        .unwrap_or_default()
}

/// Whether the card's driver is amdgpu, as its `uevent` says.
fn is_amdgpu(device: &Path) -> bool {
    read::attribute(&device.join("uevent"))
        .is_some_and(|uevent| uevent.lines().any(|line| line.trim() == "DRIVER=amdgpu"))
}

impl Collector for Drm {
    fn name(&self) -> &str {
        "drm"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let cards = read::dir_entries(&self.class, is_card)?;
        let info = out.gauge("node_drm_card_info", "Card information");
        let gauges = GAUGES.map(|(_, name, help)| out.gauge(name, help));
        for (card, dir) in cards {
            let device = dir.join("device");
            // A card without a device (gone, or a virtual one) has nothing to report.
            if !device.is_dir() || !is_amdgpu(&device) {
                continue;
            }
            out.sample(
                info,
                &[
                    ("card", &card),
                    ("memory_vendor", &text(&device, "mem_info_vram_vendor")),
                    (
                        "power_performance_level",
                        &text(&device, "power_dpm_force_performance_level"),
                    ),
                    ("unique_id", &text(&device, "unique_id")),
                    ("vendor", "amd"),
                ],
                1.0,
            );
            for ((file, ..), family) in GAUGES.iter().zip(gauges) {
                // Not every card has every file; node_exporter reports 0 for those.
                let value: u64 = text(&device, file).parse().unwrap_or(0);
                out.sample(family, &[("card", &card)], value as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_names() {
        assert!(is_card("card0"));
        assert!(is_card("card9"));
        assert!(!is_card("card10"));
        assert!(!is_card("card0-DP-1"));
        assert!(!is_card("renderD128"));
    }

    #[test]
    fn reads_an_amdgpu_card_and_skips_others() {
        let root = tempfile::tempdir().unwrap();
        let amd = root.path().join("drm/card0/device");
        std::fs::create_dir_all(&amd).unwrap();
        for (file, content) in [
            ("uevent", "DRIVER=amdgpu\nPCI_CLASS=30000\n"),
            ("gpu_busy_percent", "4\n"),
            ("mem_info_gtt_total", "8573157376\n"),
            ("mem_info_gtt_used", "144560128\n"),
            ("mem_info_vis_vram_total", "8573157376\n"),
            ("mem_info_vis_vram_used", "1490378752\n"),
            ("mem_info_vram_total", "8573157376\n"),
            ("mem_info_vram_used", "1490378752\n"),
            ("mem_info_vram_vendor", "samsung\n"),
            ("power_dpm_force_performance_level", "manual\n"),
            ("unique_id", "0123456789abcdef\n"),
        ] {
            std::fs::write(amd.join(file), content).unwrap();
        }
        let other = root.path().join("drm/card1/device");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("uevent"), "DRIVER=i915\n").unwrap();
        std::fs::create_dir_all(root.path().join("drm/card0-DP-1")).unwrap();

        let collector = Drm {
            class: root.path().join("drm"),
        };
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::new(std::time::Instant::now() + std::time::Duration::from_secs(5));
        collector.collect(&ctx, &mut out).unwrap();
        out.seal();
        let mut text = String::new();
        kiln_registry::metrics::encode(&[&out], kiln_registry::metrics::Format::Text, &mut text);
        for line in [
            r#"node_drm_card_info{card="card0",memory_vendor="samsung",power_performance_level="manual",unique_id="0123456789abcdef",vendor="amd"} 1"#,
            r#"node_drm_gpu_busy_percent{card="card0"} 4"#,
            r#"node_drm_memory_gtt_size_bytes{card="card0"} 8.573157376e+09"#,
            r#"node_drm_memory_vram_used_bytes{card="card0"} 1.490378752e+09"#,
            r#"node_drm_memory_vis_vram_size_bytes{card="card0"} 8.573157376e+09"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("card1"), "{text}");
    }
}
