//! `nvme`: identity and state of each NVMe controller from `/sys/class/nvme/`, and the
//! size and use of each of its namespaces (`/sys/class/nvme/nvme0/nvme0n1/`).

use std::path::{Path, PathBuf};

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

/// The namespace ID in a controller's subdirectory name, as upstream finds it: the
/// digits after the first `nvme<digits>n` in the name (`nvme0n1` is namespace `1`).
/// Other subdirectories (`power`, `hwmon1`, the multipath `nvme0c0n1`) are not namespaces.
fn namespace_id(name: &str) -> Option<&str> {
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let mut rest = name;
    while let Some(at) = rest.find("nvme") {
        let after = &rest[at + 4..];
        let controller = digits(after);
        if controller > 0
            && let Some(ns) = after[controller..].strip_prefix('n')
        {
            let len = digits(ns);
            if len > 0 {
                return Some(&ns[..len]);
            }
        }
        rest = &rest[at + 1..];
    }
    None
}

/// One namespace's numbers, as upstream computes them: block counts times the logical
/// block size (wrapping as Go's unsigned arithmetic does).
#[derive(Debug, PartialEq)]
struct Namespace {
    id: String,
    ana_state: String,
    used_bytes: u64,
    size_bytes: u64,
    block_size: u64,
}

/// Reads a namespace directory; `None` when its size files cannot be read at all.
/// A value that is not a number counts as 0, as upstream.
fn read_namespace(dir: &Path, id: &str) -> Option<Namespace> {
    let number = |file: &str| -> Option<u64> {
        let text = read::attribute(&dir.join(file))?;
        Some(text.trim().parse().unwrap_or(0))
    };
    let used = number("nuse")?;
    let size = number("size")?;
    let block_size = number("queue/logical_block_size")?;
    let ana_state = read::attribute(&dir.join("ana_state"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    Some(Namespace {
        id: id.to_owned(),
        ana_state,
        used_bytes: used.wrapping_mul(block_size),
        size_bytes: size.wrapping_mul(block_size),
        block_size,
    })
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
        let ns_info = out.gauge(
            "node_nvme_namespace_info",
            "Information about NVMe namespaces. Value is always 1",
        );
        let capacity = out.gauge(
            "node_nvme_namespace_capacity_bytes",
            "Capacity of the NVMe namespace in bytes. Computed as namespace_size * namespace_logical_block_size",
        );
        let size = out.gauge(
            "node_nvme_namespace_size_bytes",
            "Size of the NVMe namespace in bytes. Available in /sys/class/nvme/<device>/<namespace>/size",
        );
        let used = out.gauge(
            "node_nvme_namespace_used_bytes",
            "Used space of the NVMe namespace in bytes. Available in /sys/class/nvme/<device>/<namespace>/nuse",
        );
        let block_size = out.gauge(
            "node_nvme_namespace_logical_block_size_bytes",
            "Logical block size of the NVMe namespace in bytes. Usually 4Kb. Available in /sys/class/nvme/<device>/<namespace>/queue/logical_block_size",
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
            let Ok(children) = read::dir_entries(&dir, |name| namespace_id(name).is_some()) else {
                continue;
            };
            // Two directories naming the same namespace (`nvme0n1`, `nvme1n1` of a shared
            // namespace) would be duplicate series: the first is kept.
            let mut seen = std::collections::BTreeSet::new();
            for (name, path) in children {
                let Some(id) = namespace_id(&name) else {
                    continue;
                };
                if !seen.insert(id.to_owned()) {
                    continue;
                }
                let Some(ns) = read_namespace(&path, id) else {
                    tracing::debug!(
                        collector = "nvme",
                        namespace = %path.display(),
                        "namespace size files unreadable; skipped"
                    );
                    continue;
                };
                let labels = [("device", device.as_str()), ("nsid", ns.id.as_str())];
                out.sample(
                    ns_info,
                    &[
                        ("device", &device),
                        ("nsid", &ns.id),
                        ("ana_state", &ns.ana_state),
                    ],
                    1.0,
                );
                out.sample(capacity, &labels, ns.size_bytes as f64);
                out.sample(size, &labels, ns.size_bytes as f64);
                out.sample(used, &labels, ns.used_bytes as f64);
                out.sample(block_size, &labels, ns.block_size as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_directories() {
        assert_eq!(namespace_id("nvme0n1"), Some("1"));
        assert_eq!(namespace_id("nvme12n34"), Some("34"));
        assert_eq!(namespace_id("xnvme0n2p1"), Some("2"));
        assert_eq!(namespace_id("nvme0c0n1"), None);
        assert_eq!(namespace_id("nvmen1"), None);
        assert_eq!(namespace_id("power"), None);
        assert_eq!(namespace_id("nvme0n"), None);
    }

    #[test]
    fn namespace_sizes_are_blocks_times_block_size() {
        let dir = tempfile::tempdir().unwrap();
        let ns = dir.path().join("nvme0n1");
        std::fs::create_dir_all(ns.join("queue")).unwrap();
        std::fs::write(ns.join("nuse"), "10\n").unwrap();
        std::fs::write(ns.join("size"), "20\n").unwrap();
        std::fs::write(ns.join("queue/logical_block_size"), "4096\n").unwrap();
        assert_eq!(
            read_namespace(&ns, "1"),
            Some(Namespace {
                id: "1".into(),
                ana_state: "unknown".into(),
                used_bytes: 40960,
                size_bytes: 81920,
                block_size: 4096,
            })
        );
        std::fs::write(ns.join("ana_state"), "optimized\n").unwrap();
        std::fs::write(ns.join("nuse"), "junk\n").unwrap();
        let read = read_namespace(&ns, "1").unwrap();
        assert_eq!((read.ana_state.as_str(), read.used_bytes), ("optimized", 0));
        std::fs::remove_file(ns.join("size")).unwrap();
        assert_eq!(read_namespace(&ns, "1"), None);
    }
}
