//! `slabinfo`: the kernel's slab caches from `/proc/slabinfo` (readable by root only).

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};
use regex::Regex;

use super::{Settings, boxed};
use crate::filter::regex;
use crate::read;

/// The slabinfo collector's options.
#[derive(Debug, Clone, clap::Args)]
// Without a group of its own: every collector's options struct is called `Options`.
#[group(skip)]
pub struct Options {
    /// Regexp of slab caches to report.
    #[arg(
        long = "collector.slabinfo.slabs-include",
        value_name = "REGEX",
        default_value = ".*"
    )]
    pub slabs_include: String,
    /// Regexp of slab caches to leave out (applied after the include).
    #[arg(
        long = "collector.slabinfo.slabs-exclude",
        value_name = "REGEX",
        default_value = ""
    )]
    pub slabs_exclude: String,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options.slabinfo;
    // An empty pattern means "no filter", as upstream.
    let compile = |flag: &str, pattern: &str| -> Result<Option<Regex>, ConfigError> {
        if pattern.is_empty() {
            return Ok(None);
        }
        regex(flag, pattern).map(Some)
    };
    boxed(Slabinfo {
        path: settings.paths.proc("slabinfo"),
        include: compile("collector.slabinfo.slabs-include", &options.slabs_include)?,
        exclude: compile("collector.slabinfo.slabs-exclude", &options.slabs_exclude)?,
    })
}

struct Slabinfo {
    path: PathBuf,
    include: Option<Regex>,
    exclude: Option<Regex>,
}

impl Slabinfo {
    fn reports(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|re| re.is_match(name))
            && !self.exclude.as_ref().is_some_and(|re| re.is_match(name))
    }
}

/// The families, from the columns of a cache's line: column, name and help.
const COLUMNS: [(usize, &str, &str); 5] = [
    (
        1,
        "node_slabinfo_active_objects",
        "The number of objects that are currently active (i.e., in use).",
    ),
    (
        2,
        "node_slabinfo_objects",
        "The total number of allocated objects (i.e., objects that are both in use and not in use).",
    ),
    (
        3,
        "node_slabinfo_object_size_bytes",
        "The size of objects in this slab, in bytes.",
    ),
    (
        4,
        "node_slabinfo_objects_per_slab",
        "The number of objects stored in each slab.",
    ),
    (
        5,
        "node_slabinfo_pages_per_slab",
        "The number of pages allocated for each slab.",
    ),
];

/// `(name, the five numbers of` [`COLUMNS`]`)` per cache line of slabinfo 2.1:
/// `name active num size per-slab pages : tunables l b s : slabdata a n s`. The version
/// and heading lines, lines of another shape and a name seen before are skipped.
fn parse(text: &str) -> Vec<(&str, [i64; 5])> {
    let mut slabs: Vec<(&str, [i64; 5])> = Vec::new();
    for line in text.lines() {
        if line.contains("slabinfo -") || line.contains("# name") {
            continue;
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let numbers = [1, 2, 3, 4, 5, 8, 9, 10, 13, 14, 15];
        if fields.len() != 16
            || line.starts_with(char::is_whitespace)
            || numbers.iter().any(|&i| fields[i].parse::<i64>().is_err())
        {
            continue;
        }
        let mut values = [0; 5];
        for (slot, (column, ..)) in values.iter_mut().zip(COLUMNS) {
            *slot = fields[column].parse().unwrap_or_default();
        }
        if !slabs.iter().any(|(name, _)| *name == fields[0]) {
            slabs.push((fields[0], values));
        }
    }
    slabs
}

impl Collector for Slabinfo {
    fn name(&self) -> &str {
        "slabinfo"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let families = COLUMNS.map(|(_, name, help)| out.gauge(name, help));
        for (name, values) in parse(&text) {
            if !self.reports(name) {
                continue;
            }
            for (family, value) in families.iter().zip(values) {
                out.sample(*family, &[("slab", name)], value as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/node_exporter/fixtures/proc/slabinfo"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let slabs = parse(&text);
        assert_eq!(slabs.len(), 4);
        assert_eq!(slabs[0], ("tw_sock_TCP", [704, 864, 256, 32, 2]));
    }

    #[test]
    fn short_junk_and_repeated_lines_are_skipped() {
        let text = "slabinfo - version: 2.1\n\
                    a 1 2 3 4 5 : tunables 0 0 0 : slabdata 1 1 0\n\
                    b 1 2 3 4 : tunables 0 0 0 : slabdata 1 1 0\n\
                    c 1 x 3 4 5 : tunables 0 0 0 : slabdata 1 1 0\n\
                    a 9 9 9 9 9 : tunables 0 0 0 : slabdata 1 1 0\n";
        assert_eq!(parse(text), [("a", [1, 2, 3, 4, 5])]);
    }

    #[test]
    fn include_then_exclude() {
        let slabinfo = Slabinfo {
            path: PathBuf::new(),
            include: Some(Regex::new("^kmalloc").unwrap()),
            exclude: Some(Regex::new("8192").unwrap()),
        };
        assert!(slabinfo.reports("kmalloc-64"));
        assert!(!slabinfo.reports("kmalloc-8192"));
        assert!(!slabinfo.reports("tw_sock_TCP"));
    }
}
