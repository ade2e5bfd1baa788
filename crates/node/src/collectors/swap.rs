//! `swap`: size, use and priority of each swap device or file, from `/proc/swaps`.

use std::path::PathBuf;
use std::time::Duration;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, LogLimiter, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Swap {
        path: settings.paths.proc("swaps"),
        warnings: LogLimiter::new(Duration::from_secs(300)),
    })
}

struct Swap {
    /// `/proc/swaps`.
    path: PathBuf,
    /// Holds back repeats of the warning about lines that could not be read.
    warnings: LogLimiter,
}

/// One line of `/proc/swaps`; sizes in KiB as the kernel gives them.
#[derive(Debug, PartialEq)]
struct Entry<'a> {
    device: &'a str,
    kind: &'a str,
    size_kib: i64,
    used_kib: i64,
    priority: i64,
}

/// The entries after the header line, and how many lines were left out: lines with fewer
/// than five fields or a size, use or priority that is not a whole number, and a device
/// named twice (its series would repeat).
fn parse(text: &str) -> (Vec<Entry<'_>>, usize) {
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let mut skipped = 0;
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let entry = match fields[..] {
            [device, kind, size, used, priority, ..] => (|| {
                Some(Entry {
                    device,
                    kind,
                    size_kib: size.parse().ok()?,
                    used_kib: used.parse().ok()?,
                    priority: priority.parse().ok()?,
                })
            })(),
            _ => None,
        };
        match entry {
            Some(entry) if !entries.iter().any(|e| e.device == entry.device) => entries.push(entry),
            _ => skipped += 1,
        }
    }
    (entries, skipped)
}

impl Collector for Swap {
    fn name(&self) -> &str {
        "swap"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let (entries, skipped) = parse(&text);
        if skipped > 0
            && let Some(held_back) = self.warnings.check()
        {
            tracing::warn!(
                collector = "swap",
                path = %self.path.display(),
                skipped,
                held_back,
                "lines that could not be read were left out"
            );
        }
        let size = out.gauge("node_swap_size_bytes", "Swap device size in bytes.");
        let used = out.gauge("node_swap_used_bytes", "Swap device used in bytes.");
        let priority = out.gauge("node_swap_priority", "Swap device priority.");
        for entry in &entries {
            let labels = [("device", entry.device), ("swap_type", entry.kind)];
            // KiB to bytes with Go's 64-bit integer arithmetic, as upstream computes it.
            out.sample(size, &labels, entry.size_kib.wrapping_mul(1024) as f64);
            out.sample(used, &labels, entry.used_kib.wrapping_mul(1024) as f64);
            out.sample(priority, &labels, entry.priority as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::series;

    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/node_exporter/fixtures/proc/swaps")
    }

    /// Upstream's `TestSwap`: the fixture's one device, its type, priority, size and use.
    #[test]
    fn upstreams_fixture() {
        let text = std::fs::read_to_string(fixture()).unwrap();
        let (entries, skipped) = parse(&text);
        assert_eq!(skipped, 0);
        assert_eq!(
            entries,
            [Entry {
                device: "/dev/zram0",
                kind: "partition",
                size_kib: 8388604,
                used_kib: 76,
                priority: 100,
            }]
        );
    }

    #[test]
    fn the_collector_reports_bytes() {
        let collector = Swap {
            path: fixture(),
            warnings: LogLimiter::new(Duration::from_secs(300)),
        };
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::with_budget(Duration::from_secs(5));
        collector.collect(&ctx, &mut out).unwrap();
        assert_eq!(
            series(&mut out),
            [
                "node_swap_size_bytes{device=/dev/zram0,swap_type=partition} 8589930496",
                "node_swap_used_bytes{device=/dev/zram0,swap_type=partition} 77824",
                "node_swap_priority{device=/dev/zram0,swap_type=partition} 100",
            ]
        );
    }

    #[test]
    fn bad_and_repeated_lines_are_left_out() {
        let text = "Filename\tType\tSize\tUsed\tPriority\n\
                    /swapfile file 1024 0 -2\n\
                    /dev/sda2 partition 2048 x 5\n\
                    short line\n\
                    /swapfile file 8 8 8\n\
                    /dev/sdb1 partition 4096 12 -3 extra\n";
        let (entries, skipped) = parse(text);
        assert_eq!(skipped, 3);
        let devices: Vec<(&str, i64)> = entries.iter().map(|e| (e.device, e.priority)).collect();
        assert_eq!(devices, [("/swapfile", -2), ("/dev/sdb1", -3)]);
    }
}
