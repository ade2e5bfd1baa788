//! `rapl`: energy counters of Intel's Running Average Power Limit zones, from
//! `/sys/class/powercap/`.

use std::io;
use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::go_text::sanitize_metric_name;
use crate::read;

/// The rapl collector's options.
#[derive(Debug, Clone, clap::Args)]
// Without a group of its own: every collector's options struct is called `Options`.
#[group(skip)]
pub struct Options {
    /// Report every zone in node_rapl_joules_total with its name in a `rapl_zone` label,
    /// instead of one family per zone name.
    #[arg(long = "collector.rapl.enable-zone-label")]
    pub rapl_zone_label: bool,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Rapl {
        root: settings.paths.sys("class/powercap"),
        zone_label: settings.options.rapl.rapl_zone_label,
    })
}

struct Rapl {
    /// `/sys/class/powercap`.
    root: PathBuf,
    zone_label: bool,
}

/// A zone: its name without an index, the index, and its directory's name.
#[derive(Debug, PartialEq)]
struct Zone {
    name: String,
    index: usize,
    dir: String,
}

/// Names the zones of `dirs` (directory name and the text of its `name` file, in
/// directory-name order). A name such as `package-1` carries its index; a name without
/// one (`dram`, `core`) is indexed by how often it came before.
fn zones(dirs: Vec<(String, String)>) -> Vec<Zone> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut zones = Vec::new();
    for (dir, text) in dirs {
        let text = text.trim();
        let mut parts = text.split('-');
        let (name, index) = match (parts.next(), parts.next(), parts.next()) {
            (Some(name), Some(index), None) => match go_atoi(index) {
                Some(index) => (name, Some(index)),
                None => (text, None),
            },
            _ => (text, None),
        };
        let index = index.unwrap_or_else(|| {
            seen.iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, count)| *count)
        });
        match seen.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = index + 1,
            None => seen.push((name.to_string(), index + 1)),
        }
        zones.push(Zone {
            name: name.to_string(),
            index,
            dir,
        });
    }
    zones
}

/// A zone index as the kernel writes it after the dash: a decimal number.
fn go_atoi(text: &str) -> Option<usize> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Collector for Rapl {
    fn name(&self) -> &str {
        "rapl"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let entries = read::Entries::list(&self.root, |_| true)?;
        let mut dirs: Vec<(String, String)> = entries
            .names()
            .filter_map(|dir| {
                let name = entries.dir().optional_trimmed_at(&[dir, "name"])?;
                Some((dir.to_string(), name.to_string()))
            })
            .collect();
        // Indexes of unnumbered names count in byte order of the directories.
        dirs.sort();
        let mut readings = Vec::new();
        for zone in zones(dirs) {
            let path = self.root.join(&zone.dir).join("energy_uj");
            let text = match read::read_text(&path) {
                Ok(text) => text,
                // Recent kernels let only root read the counters (a side channel).
                Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
                    tracing::debug!(path = %path.display(), "energy counter not readable");
                    return Err(CollectError::NoData);
                }
                Err(error) => return Err(read::failed(&path, error)),
            };
            let micro: u64 = text.trim().parse().map_err(|e| read::malformed(&path, e))?;
            readings.push((zone, micro as f64 / 1_000_000.0));
        }
        if self.zone_label {
            let family = out.counter("node_rapl_joules_total", "Current RAPL value in joules");
            for (zone, joules) in &readings {
                let path = self.root.join(&zone.dir);
                let index = zone.index.to_string();
                let labels = [
                    ("index", index.as_str()),
                    ("path", &*path.to_string_lossy()),
                    ("rapl_zone", zone.name.as_str()),
                ];
                out.sample(family, &labels, *joules);
            }
            return Ok(());
        }
        // One family per zone name, declared where that name first comes.
        let mut families: Vec<(String, kiln_registry::FamilyId)> = Vec::new();
        for (zone, joules) in &readings {
            let name = format!(
                "node_rapl_{}_joules_total",
                sanitize_metric_name(&zone.name)
            );
            let family = match families.iter().find(|(n, _)| *n == name) {
                Some((_, family)) => *family,
                None => {
                    let help = format!("Current RAPL {} value in joules", zone.name);
                    let family = out.counter(&name, &help);
                    families.push((name, family));
                    family
                }
            };
            let path = self.root.join(&zone.dir);
            let index = zone.index.to_string();
            let labels = [
                ("index", index.as_str()),
                ("path", &*path.to_string_lossy()),
            ];
            out.sample(family, &labels, *joules);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str, index: usize, dir: &str) -> Zone {
        Zone {
            name: name.into(),
            index,
            dir: dir.into(),
        }
    }

    #[test]
    fn names_carry_or_are_given_an_index() {
        let dirs = [
            ("intel-rapl:0", "package-0\n"),
            ("intel-rapl:0:0", "core\n"),
            ("intel-rapl:0:1", "dram\n"),
            ("intel-rapl:1", "package-1\n"),
            ("intel-rapl:1:0", "core\n"),
            ("intel-rapl:1:1", "dram\n"),
        ];
        let dirs = dirs
            .iter()
            .map(|(d, n)| (d.to_string(), n.to_string()))
            .collect();
        assert_eq!(
            zones(dirs),
            [
                zone("package", 0, "intel-rapl:0"),
                zone("core", 0, "intel-rapl:0:0"),
                zone("dram", 0, "intel-rapl:0:1"),
                zone("package", 1, "intel-rapl:1"),
                zone("core", 1, "intel-rapl:1:0"),
                zone("dram", 1, "intel-rapl:1:1"),
            ]
        );
    }

    #[test]
    fn a_name_with_two_dashes_is_kept_whole() {
        let dirs = vec![("a".to_string(), "psys-x-1".to_string())];
        assert_eq!(zones(dirs), [zone("psys-x-1", 0, "a")]);
    }

    #[test]
    fn one_family_per_zone_name_or_one_with_a_zone_label() {
        use std::time::Duration;

        use crate::collectors::testing::series;

        let dir = tempfile::tempdir().unwrap();
        for (zone, name, energy) in [
            ("intel-rapl:0", "package-0", "240422366267"),
            ("intel-rapl:0:0", "core", "118821284256"),
            ("intel-rapl:1", "package-1", "1000000"),
        ] {
            let zone = dir.path().join(zone);
            std::fs::create_dir_all(&zone).unwrap();
            std::fs::write(zone.join("name"), format!("{name}\n")).unwrap();
            std::fs::write(zone.join("energy_uj"), format!("{energy}\n")).unwrap();
        }
        // A directory without a name is not a zone.
        std::fs::create_dir_all(dir.path().join("intel-rapl")).unwrap();
        let root = dir.path().to_path_buf();
        let path = |zone: &str| root.join(zone).display().to_string();
        let ctx = ScrapeContext::with_budget(Duration::from_secs(5));
        let mut out = MetricSet::default();
        let by_name = Rapl {
            root: root.clone(),
            zone_label: false,
        };
        by_name.collect(&ctx, &mut out).unwrap();
        assert_eq!(
            series(&mut out),
            [
                format!(
                    "node_rapl_package_joules_total{{index=0,path={}}} 240422.366267",
                    path("intel-rapl:0")
                ),
                format!(
                    "node_rapl_package_joules_total{{index=1,path={}}} 1",
                    path("intel-rapl:1")
                ),
                format!(
                    "node_rapl_core_joules_total{{index=0,path={}}} 118821.284256",
                    path("intel-rapl:0:0")
                ),
            ]
        );
        let mut out = MetricSet::default();
        let labelled = Rapl {
            root: root.clone(),
            zone_label: true,
        };
        labelled.collect(&ctx, &mut out).unwrap();
        assert_eq!(
            series(&mut out)[1],
            format!(
                "node_rapl_joules_total{{index=0,path={},rapl_zone=core}} 118821.284256",
                path("intel-rapl:0:0")
            )
        );
    }
}
