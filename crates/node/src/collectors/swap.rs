//! `swap` (off by default): size, use and priority of each swap device or file in
//! `/proc/swaps`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Swap {
        path: settings.paths.proc("swaps"),
        warned: AtomicBool::new(false),
    })
}

struct Swap {
    path: PathBuf,
    /// Whether a malformed line was logged: once per process is enough to notice.
    warned: AtomicBool,
}

/// One line of `/proc/swaps`; sizes in KiB, as the kernel writes them.
#[derive(Debug, PartialEq)]
struct Entry<'a> {
    device: &'a str,
    kind: &'a str,
    size_kib: i64,
    used_kib: i64,
    priority: i64,
}

/// The entries of `/proc/swaps` after its header, and the lines that are not
/// `filename type size used priority`.
fn parse(text: &str) -> (Vec<Entry<'_>>, Vec<&str>) {
    let mut entries = Vec::new();
    let mut malformed = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
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
            Some(entry) => entries.push(entry),
            None => malformed.push(line),
        }
    }
    (entries, malformed)
}

impl Collector for Swap {
    fn name(&self) -> &str {
        "swap"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let (entries, malformed) = parse(&text);
        if let Some(line) = malformed.first()
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                path = %self.path.display(),
                line,
                skipped = malformed.len(),
                "Skipping malformed lines of /proc/swaps; logged once."
            );
        }
        let size = out.gauge("node_swap_size_bytes", "Swap device size in bytes.");
        let used = out.gauge("node_swap_used_bytes", "Swap device used in bytes.");
        let priority = out.gauge("node_swap_priority", "Swap device priority.");
        for entry in &entries {
            let labels = [("device", entry.device), ("swap_type", entry.kind)];
            // The kernel reports KiB.
            out.sample(size, &labels, (entry.size_kib * 1024) as f64);
            out.sample(used, &labels, (entry.used_kib * 1024) as f64);
            out.sample(priority, &labels, entry.priority as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_node_exporters_fixture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/node_exporter/fixtures/proc/swaps"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let (entries, malformed) = parse(&text);
        assert!(malformed.is_empty());
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
    fn skips_malformed_lines_and_keeps_the_rest() {
        let text = "Filename Type Size Used Priority\n/swapfile file 1024 0 -2\n/bad file x 0 -2\nshort line\n";
        let (entries, malformed) = parse(text);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].priority, -2);
        assert_eq!(malformed, ["/bad file x 0 -2", "short line"]);
    }
}
