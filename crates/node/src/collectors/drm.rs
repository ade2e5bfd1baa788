//! `drm`: identity, load and memory of each AMD GPU the `amdgpu` driver runs, from
//! `/sys/class/drm/card<N>/device/`. Cards of other drivers are not reported.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, LogLimiter, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Drm {
        root: settings.paths.sys("class/drm"),
        warnings: LogLimiter::new(Duration::from_secs(300)),
    })
}

struct Drm {
    /// `/sys/class/drm`.
    root: PathBuf,
    /// Holds back repeats of the warning about values that are not numbers.
    warnings: LogLimiter,
}

/// `card` and one digit, as upstream's `card[0-9]` pattern matches: connectors
/// (`card0-DP-1`), render nodes and cards numbered from 10 are not looked at.
fn is_card(name: &str) -> bool {
    name.strip_prefix("card")
        .is_some_and(|n| n.len() == 1 && n.as_bytes()[0].is_ascii_digit())
}

/// An unsigned number as Go's `strconv.ParseUint(s, 0, 64)` reads one: a `0x`, `0o` or
/// `0b` prefix (either case) or a leading `0` picks the base, and single `_`s may stand
/// between digits (or after a prefix).
fn parse_uint(text: &str) -> Option<u64> {
    if text.starts_with('+') || (text.contains('_') && !underscores_ok(text)) {
        return None;
    }
    let plain = text.replace('_', "");
    let bytes = plain.as_bytes();
    let (digits, radix) = match bytes {
        [b'0', prefix, _, ..] if prefix.eq_ignore_ascii_case(&b'x') => (&plain[2..], 16),
        [b'0', prefix, _, ..] if prefix.eq_ignore_ascii_case(&b'o') => (&plain[2..], 8),
        [b'0', prefix, _, ..] if prefix.eq_ignore_ascii_case(&b'b') => (&plain[2..], 2),
        [b'0', _, ..] => (&plain[1..], 8),
        _ => (plain.as_str(), 10),
    };
    if digits.starts_with('+') {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Go's rule for `_` in a number: only between digits, or between a base prefix and a
/// digit; never doubled, never last.
fn underscores_ok(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut rest = bytes;
    let mut hex = false;
    // What came before: `^` the start, `0` a digit (or prefix), `_` an underscore.
    let mut before = b'^';
    if let [b'0', prefix, tail @ ..] = bytes
        && matches!(prefix.to_ascii_lowercase(), b'b' | b'o' | b'x')
    {
        hex = prefix.eq_ignore_ascii_case(&b'x');
        before = b'0';
        rest = tail;
    }
    for &byte in rest {
        if byte.is_ascii_digit() || (hex && byte.is_ascii_hexdigit()) {
            before = b'0';
        } else if byte == b'_' {
            if before != b'0' {
                return false;
            }
            before = b'_';
        } else if before == b'_' {
            return false;
        } else {
            before = b'!';
        }
    }
    before != b'_'
}

/// One amdgpu card's values. A file that is missing leaves its value 0 or empty, as
/// upstream; one that holds no number counts as 0 too, and is reported in `malformed`.
#[derive(Debug, Default, PartialEq)]
struct Card {
    name: String,
    gpu_busy_percent: u64,
    gtt_size: u64,
    gtt_used: u64,
    visible_vram_size: u64,
    visible_vram_used: u64,
    vram_size: u64,
    vram_used: u64,
    vram_vendor: String,
    performance_level: String,
    unique_id: String,
    malformed: Vec<&'static str>,
}

/// Reads `card` (a `card<N>` directory); `None` when its driver is not amdgpu, or its
/// device or `uevent` cannot be read.
fn read_card(card: &Path, name: &str) -> Option<Card> {
    let device = card.join("device");
    let uevent = read::attribute(&device.join("uevent"))?;
    if !uevent.contains("DRIVER=amdgpu") {
        return None;
    }
    let text = |file: &str| read::attribute(&device.join(file)).map(|t| t.trim().to_owned());
    let mut result = Card {
        name: name.to_owned(),
        vram_vendor: text("mem_info_vram_vendor").unwrap_or_default(),
        performance_level: text("power_dpm_force_performance_level").unwrap_or_default(),
        unique_id: text("unique_id").unwrap_or_default(),
        ..Card::default()
    };
    let mut malformed = Vec::new();
    let mut number = |file: &'static str| match text(file) {
        None => 0,
        Some(value) => parse_uint(&value).unwrap_or_else(|| {
            malformed.push(file);
            0
        }),
    };
    result.gpu_busy_percent = number("gpu_busy_percent");
    result.gtt_size = number("mem_info_gtt_total");
    result.gtt_used = number("mem_info_gtt_used");
    result.visible_vram_size = number("mem_info_vis_vram_total");
    result.visible_vram_used = number("mem_info_vis_vram_used");
    result.vram_size = number("mem_info_vram_total");
    result.vram_used = number("mem_info_vram_used");
    result.malformed = malformed;
    Some(result)
}

impl Collector for Drm {
    fn name(&self) -> &str {
        "drm"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // No `/sys/class/drm` is a host without cards: nothing to report, as upstream.
        let cards = match read::dir_entries(&self.root, is_card) {
            Err(CollectError::NoData) => Vec::new(),
            other => other?,
        };
        let cards: Vec<Card> = cards
            .iter()
            .filter_map(|(name, path)| read_card(path, name))
            .collect();
        let info = out.gauge("node_drm_card_info", "Card information");
        let busy = out.gauge(
            "node_drm_gpu_busy_percent",
            "How busy the GPU is as a percentage.",
        );
        let gtt_size = out.gauge(
            "node_drm_memory_gtt_size_bytes",
            "The size of the graphics translation table (GTT) block in bytes.",
        );
        let gtt_used = out.gauge(
            "node_drm_memory_gtt_used_bytes",
            "The used amount of the graphics translation table (GTT) block in bytes.",
        );
        let vram_size = out.gauge(
            "node_drm_memory_vram_size_bytes",
            "The size of VRAM in bytes.",
        );
        let vram_used = out.gauge(
            "node_drm_memory_vram_used_bytes",
            "The used amount of VRAM in bytes.",
        );
        let visible_size = out.gauge(
            "node_drm_memory_vis_vram_size_bytes",
            "The size of visible VRAM in bytes.",
        );
        let visible_used = out.gauge(
            "node_drm_memory_vis_vram_used_bytes",
            "The used amount of visible VRAM in bytes.",
        );
        for card in &cards {
            if !card.malformed.is_empty()
                && let Some(held_back) = self.warnings.check()
            {
                tracing::warn!(
                    collector = "drm",
                    card = %card.name,
                    files = ?card.malformed,
                    held_back,
                    "values that are not numbers reported as 0"
                );
            }
            out.sample(
                info,
                &[
                    ("card", &card.name),
                    ("memory_vendor", &card.vram_vendor),
                    ("power_performance_level", &card.performance_level),
                    ("unique_id", &card.unique_id),
                    ("vendor", "amd"),
                ],
                1.0,
            );
            let labels = [("card", card.name.as_str())];
            for (family, value) in [
                (busy, card.gpu_busy_percent),
                (gtt_size, card.gtt_size),
                (gtt_used, card.gtt_used),
                (vram_size, card.vram_size),
                (vram_used, card.vram_used),
                (visible_size, card.visible_vram_size),
                (visible_used, card.visible_vram_used),
            ] {
                out.sample(family, &labels, value as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/node_exporter/fixtures/drm.ttar");
        kiln_test_support::ttar::extract(&archive, dir.path()).unwrap();
        dir
    }

    /// procfs's `TestClassDRMCardAMDGPUStats`: its fixture's amdgpu card; the i915 card
    /// beside it is not reported.
    #[test]
    fn the_amdgpu_card_of_procfs_fixture() {
        let dir = fixture();
        let root = dir.path().join("sys/class/drm");
        let cards: Vec<Card> = read::dir_entries(&root, is_card)
            .unwrap()
            .iter()
            .filter_map(|(name, path)| read_card(path, name))
            .collect();
        assert_eq!(
            cards,
            [Card {
                name: "card0".into(),
                gpu_busy_percent: 4,
                gtt_size: 8573157376,
                gtt_used: 144560128,
                visible_vram_size: 8573157376,
                visible_vram_used: 1490378752,
                vram_size: 8573157376,
                vram_used: 1490378752,
                vram_vendor: "samsung".into(),
                performance_level: "manual".into(),
                unique_id: "0123456789abcdef".into(),
                malformed: Vec::new(),
            }]
        );
    }

    #[test]
    fn the_collector_over_the_fixture() {
        let dir = fixture();
        let collector = Drm {
            root: dir.path().join("sys/class/drm"),
            warnings: LogLimiter::new(Duration::from_secs(300)),
        };
        let mut set = MetricSet::default();
        let ctx = ScrapeContext::with_budget(Duration::from_secs(5));
        collector.collect(&ctx, &mut set).unwrap();
        let series = crate::collectors::testing::series(&mut set);
        assert_eq!(
            series,
            [
                "node_drm_card_info{card=card0,memory_vendor=samsung,power_performance_level=manual,unique_id=0123456789abcdef,vendor=amd} 1",
                "node_drm_gpu_busy_percent{card=card0} 4",
                "node_drm_memory_gtt_size_bytes{card=card0} 8573157376",
                "node_drm_memory_gtt_used_bytes{card=card0} 144560128",
                "node_drm_memory_vram_size_bytes{card=card0} 8573157376",
                "node_drm_memory_vram_used_bytes{card=card0} 1490378752",
                "node_drm_memory_vis_vram_size_bytes{card=card0} 8573157376",
                "node_drm_memory_vis_vram_used_bytes{card=card0} 1490378752",
            ]
        );

        // No `/sys/class/drm` at all: nothing, and no failure.
        let empty = Drm {
            root: dir.path().join("missing"),
            warnings: LogLimiter::new(Duration::from_secs(300)),
        };
        let mut set = MetricSet::default();
        empty.collect(&ctx, &mut set).unwrap();
        assert!(crate::collectors::testing::series(&mut set).is_empty());
    }

    #[test]
    fn a_value_that_is_not_a_number_counts_as_zero() {
        let dir = fixture();
        let device = dir.path().join("sys/class/drm/card0/device");
        std::fs::write(device.join("gpu_busy_percent"), "busy\n").unwrap();
        std::fs::remove_file(device.join("mem_info_gtt_used")).unwrap();
        let card = read_card(&dir.path().join("sys/class/drm/card0"), "card0").unwrap();
        assert_eq!((card.gpu_busy_percent, card.gtt_used), (0, 0));
        assert_eq!(card.malformed, ["gpu_busy_percent"]);
        assert_eq!(card.gtt_size, 8573157376);
    }

    #[test]
    fn card_names_and_numbers() {
        assert!(is_card("card0") && is_card("card9"));
        assert!(!is_card("card10") && !is_card("card0-DP-1") && !is_card("renderD128"));
        assert_eq!(parse_uint("42"), Some(42));
        assert_eq!(parse_uint("0x1F"), Some(31));
        assert_eq!(parse_uint("0b101"), Some(5));
        assert_eq!(parse_uint("017"), Some(15));
        assert_eq!(parse_uint("0"), Some(0));
        assert_eq!(parse_uint("1_000"), Some(1000));
        assert_eq!(parse_uint("0x_1F"), Some(31));
        assert_eq!(parse_uint("0_17"), Some(15));
        assert_eq!(parse_uint("1__0"), None);
        assert_eq!(parse_uint("10_"), None);
        assert_eq!(parse_uint("_10"), None);
        assert_eq!(parse_uint("-1"), None);
        assert_eq!(parse_uint("+1"), None);
        assert_eq!(parse_uint(""), None);
        assert_eq!(parse_uint("0x"), None);
    }
}
