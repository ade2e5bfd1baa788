//! `cgroups`: how many cgroups each controller has and whether it is enabled, from
//! `/proc/cgroups`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Cgroups {
        path: settings.paths.proc("cgroups"),
    })
}

struct Cgroups {
    path: PathBuf,
}

/// `(controller, number of cgroups, enabled)` per line,
/// `cpu  3  172  1` (name, hierarchy, cgroups, enabled). The heading (`#…`), lines of
/// another shape and a controller named twice are skipped.
fn parse(text: &str) -> Vec<(&str, i64, i64)> {
    let mut controllers: Vec<(&str, i64, i64)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 4 || fields[1].parse::<i64>().is_err() {
            continue;
        }
        let (Ok(cgroups), Ok(enabled)) = (fields[2].parse(), fields[3].parse()) else {
            continue;
        };
        if !controllers.iter().any(|(name, ..)| *name == fields[0]) {
            controllers.push((fields[0], cgroups, enabled));
        }
    }
    controllers
}

impl Collector for Cgroups {
    fn name(&self) -> &str {
        "cgroups"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let help = "Current cgroup number of the subsystem.";
        let cgroups = out.gauge("node_cgroups_cgroups", help);
        let enabled = out.gauge("node_cgroups_enabled", help);
        for (name, count, on) in parse(&text) {
            out.sample(cgroups, &[("subsys_name", name)], count as f64);
            out.sample(enabled, &[("subsys_name", name)], on as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn controllers() {
        let text = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                    cpuset\t5\t47\t1\n\
                    cpu\t3\t172\t1\n\
                    short\t1\n\
                    bad\tx\t1\t1\n\
                    cpu\t3\t1\t0\n";
        assert_eq!(super::parse(text), [("cpuset", 47, 1), ("cpu", 172, 1)]);
    }
}
