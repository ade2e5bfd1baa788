//! `zoneinfo`: per-zone memory statistics from `/proc/zoneinfo`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Zoneinfo {
        path: settings.paths.proc("zoneinfo"),
    })
}

struct Zoneinfo {
    path: PathBuf,
}

/// A field of a zone's block: its key in the file, the family (after `node_zoneinfo_`),
/// its help, and whether it counts since boot.
struct Field {
    key: &'static str,
    family: &'static str,
    help: &'static str,
    counter: bool,
}

const fn gauge(key: &'static str, family: &'static str, help: &'static str) -> Field {
    Field {
        key,
        family,
        help,
        counter: false,
    }
}

const fn counter(key: &'static str, family: &'static str, help: &'static str) -> Field {
    Field {
        key,
        family,
        help,
        counter: true,
    }
}

const FIELDS: [Field; 34] = [
    gauge(
        "nr_free_pages",
        "nr_free_pages",
        "Total number of free pages in the zone",
    ),
    gauge("min", "min_pages", "Zone watermark pages_min"),
    gauge("low", "low_pages", "Zone watermark pages_low"),
    gauge("high", "high_pages", "Zone watermark pages_high"),
    gauge(
        "scanned",
        "scanned_pages",
        "Pages scanned since last reclaim",
    ),
    gauge(
        "spanned",
        "spanned_pages",
        "Total pages spanned by the zone, including holes",
    ),
    gauge(
        "present",
        "present_pages",
        "Physical pages existing within the zone",
    ),
    gauge(
        "managed",
        "managed_pages",
        "Present pages managed by the buddy system",
    ),
    gauge(
        "nr_active_anon",
        "nr_active_anon_pages",
        "Number of anonymous pages recently more used",
    ),
    gauge(
        "nr_inactive_anon",
        "nr_inactive_anon_pages",
        "Number of anonymous pages recently less used",
    ),
    gauge(
        "nr_isolated_anon",
        "nr_isolated_anon_pages",
        "Temporary isolated pages from anon lru",
    ),
    gauge(
        "nr_anon_pages",
        "nr_anon_pages",
        "Number of anonymous pages currently used by the system",
    ),
    gauge(
        "nr_anon_transparent_hugepages",
        "nr_anon_transparent_hugepages",
        "Number of anonymous transparent huge pages currently used by the system",
    ),
    gauge(
        "nr_active_file",
        "nr_active_file_pages",
        "Number of active pages with file-backing",
    ),
    gauge(
        "nr_inactive_file",
        "nr_inactive_file_pages",
        "Number of inactive pages with file-backing",
    ),
    gauge(
        "nr_isolated_file",
        "nr_isolated_file_pages",
        "Temporary isolated pages from file lru",
    ),
    gauge("nr_file_pages", "nr_file_pages", "Number of file pages"),
    gauge(
        "nr_slab_reclaimable",
        "nr_slab_reclaimable_pages",
        "Number of reclaimable slab pages",
    ),
    gauge(
        "nr_slab_unreclaimable",
        "nr_slab_unreclaimable_pages",
        "Number of unreclaimable slab pages",
    ),
    gauge(
        "nr_mlock_stack",
        "nr_mlock_stack_pages",
        "mlock()ed pages found and moved off LRU",
    ),
    gauge(
        "nr_kernel_stack",
        "nr_kernel_stacks",
        "Number of kernel stacks",
    ),
    gauge("nr_mapped", "nr_mapped_pages", "Number of mapped pages"),
    gauge("nr_dirty", "nr_dirty_pages", "Number of dirty pages"),
    gauge(
        "nr_writeback",
        "nr_writeback_pages",
        "Number of writeback pages",
    ),
    gauge(
        "nr_unevictable",
        "nr_unevictable_pages",
        "Number of unevictable pages",
    ),
    gauge(
        "nr_shmem",
        "nr_shmem_pages",
        "Number of shmem pages (included tmpfs/GEM pages)",
    ),
    counter(
        "nr_dirtied",
        "nr_dirtied_total",
        "Page dirtyings since bootup",
    ),
    counter(
        "nr_written",
        "nr_written_total",
        "Page writings since bootup",
    ),
    counter("numa_hit", "numa_hit_total", "Allocated in intended node"),
    counter(
        "numa_miss",
        "numa_miss_total",
        "Allocated in non intended node",
    ),
    counter(
        "numa_foreign",
        "numa_foreign_total",
        "Was intended here, hit elsewhere",
    ),
    counter(
        "numa_interleave",
        "numa_interleave_total",
        "Interleaver preferred this zone",
    ),
    counter(
        "numa_local",
        "numa_local_total",
        "Allocation from local node",
    ),
    counter(
        "numa_other",
        "numa_other_total",
        "Allocation from other node",
    ),
];

/// One zone's block: its node and name, the value of each of [`FIELDS`] it has, and its
/// protection array.
#[derive(Debug, PartialEq)]
struct Zone<'a> {
    node: &'a str,
    zone: &'a str,
    values: [Option<i64>; FIELDS.len()],
    protection: Vec<i64>,
}

impl Zone<'_> {
    fn new() -> Self {
        Self {
            node: "",
            zone: "",
            values: [None; FIELDS.len()],
            protection: Vec::new(),
        }
    }
}

/// `(node, zone)` from a block's heading, `Node 0, zone   Normal`.
fn heading(line: &str) -> Option<(&str, &str)> {
    let (before, after) = line.split_once(", zone")?;
    let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let node = &before[before.len() - digits..];
    let rest = after.trim_start();
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    // The name must follow white space, and both parts must be there.
    if node.is_empty() || name_len == 0 || after.len() == rest.len() {
        return None;
    }
    Some((node, &rest[..name_len]))
}

/// The numbers of `protection: (0, 2039, 2039, 2039, 2039)`; all of them or none.
fn protection(rest: &str) -> Option<Vec<i64>> {
    let inner = rest.trim().trim_start_matches('(').trim_end_matches(')');
    inner.split(", ").map(|n| n.trim().parse().ok()).collect()
}

/// Keeps a finished block if it named its zone, and the zone is new.
fn finish<'a>(zone: Option<Zone<'a>>, zones: &mut Vec<Zone<'a>>) {
    if let Some(zone) = zone
        && !zone.zone.is_empty()
        && !zones
            .iter()
            .any(|z| z.node == zone.node && z.zone == zone.zone)
    {
        zones.push(zone);
    }
}

/// The zones of `/proc/zoneinfo`. Blocks start at lines beginning with `Node`; a zone
/// named twice keeps its first block, and a value that is not a number is left out.
/// The per-node statistics the kernel prints in a node's first zone count for that zone.
fn parse(text: &str) -> Vec<Zone<'_>> {
    let mut zones: Vec<Zone<'_>> = Vec::new();
    let mut current: Option<Zone<'_>> = None;
    for line in text.lines() {
        if line.starts_with("Node") {
            finish(current.take(), &mut zones);
            current = Some(Zone::new());
        }
        let Some(zone) = current.as_mut() else {
            continue;
        };
        if let Some((node, name)) = heading(line) {
            zone.node = node;
            zone.zone = name;
            continue;
        }
        let mut parts = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        if key == "protection:" {
            if let Some(values) = line.split_once(':').and_then(|(_, r)| protection(r)) {
                zone.protection = values;
            }
        } else if let Some(index) = FIELDS.iter().position(|f| f.key == key) {
            zone.values[index] = value.parse().ok();
        }
    }
    finish(current.take(), &mut zones);
    zones
}

impl Collector for Zoneinfo {
    fn name(&self) -> &str {
        "zoneinfo"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let zones = parse(&text);
        let families: Vec<FamilyId> = FIELDS
            .iter()
            .map(|field| {
                let kind = if field.counter {
                    MetricType::Counter
                } else {
                    MetricType::Gauge
                };
                out.family_fmt(
                    format_args!("node_zoneinfo_{}", field.family),
                    format_args!("{}", field.help),
                    kind,
                )
            })
            .collect();
        for zone in &zones {
            let labels = [("node", zone.node), ("zone", zone.zone)];
            for (family, value) in families.iter().zip(&zone.values) {
                if let Some(value) = value {
                    out.sample(*family, &labels, *value as f64);
                }
            }
        }
        let longest = zones.iter().map(|z| z.protection.len()).max().unwrap_or(0);
        for index in 0..longest {
            let family = out.family_fmt(
                format_args!("node_zoneinfo_protection_{index}"),
                format_args!("Protection array {index}. field"),
                MetricType::Gauge,
            );
            for zone in &zones {
                if let Some(value) = zone.protection.get(index) {
                    let labels = [("node", zone.node), ("zone", zone.zone)];
                    out.sample(family, &labels, *value as f64);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Node 0, zone      DMA
  per-node stats
      nr_inactive_anon 230981
      nr_dirtied   1189097
  pages free     2949
        min      8
        high     12
        protection: (0, 2039, 2039, 2039, 2039)
      nr_free_pages 2949
  pagesets
    cpu: 0
              count: 0
              high:  0
Node 0, zone    DMA32
  pages free     528427
        min      1075
        low      junk
        protection: (0, 0, x)
Node 0, zone      DMA
        min      99
";

    #[test]
    fn blocks_fields_and_protection() {
        let zones = parse(SAMPLE);
        assert_eq!(zones.len(), 2, "{zones:?}");
        let dma = &zones[0];
        assert_eq!((dma.node, dma.zone), ("0", "DMA"));
        let value = |zone: &Zone<'_>, key: &str| {
            zone.values[FIELDS.iter().position(|f| f.key == key).unwrap()]
        };
        assert_eq!(value(dma, "nr_inactive_anon"), Some(230981));
        assert_eq!(value(dma, "nr_dirtied"), Some(1189097));
        assert_eq!(value(dma, "nr_free_pages"), Some(2949));
        assert_eq!(value(dma, "min"), Some(8));
        // `high:` of a pageset is not the watermark.
        assert_eq!(value(dma, "high"), Some(12));
        assert_eq!(dma.protection, [0, 2039, 2039, 2039, 2039]);
        let dma32 = &zones[1];
        assert_eq!((dma32.node, dma32.zone), ("0", "DMA32"));
        assert_eq!(value(dma32, "low"), None);
        assert!(dma32.protection.is_empty());
    }

    #[test]
    fn headings() {
        assert_eq!(heading("Node 1, zone   Normal"), Some(("1", "Normal")));
        assert_eq!(heading("Node 1, zone"), None);
        assert_eq!(heading("Node x, zone DMA"), None);
    }

    #[test]
    fn the_fixture_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/node_exporter/fixtures/proc/zoneinfo"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let zones = parse(&text);
        assert!(zones.iter().any(|z| z.zone == "Normal"));
    }
}
