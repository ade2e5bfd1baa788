//! `vmstat`: the fields of `/proc/vmstat` that match `--collector.vmstat.fields`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyBuilder, MetricFamily, ScrapeContext};
use regex::Regex;

use super::{Settings, boxed};
use crate::{filter, read};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Vmstat {
        path: settings.paths.proc("vmstat"),
        fields: filter::regex("collector.vmstat.fields", &settings.options.vmstat_fields)?,
    })
}

struct Vmstat {
    path: PathBuf,
    fields: Regex,
}

impl Collector for Vmstat {
    fn name(&self) -> &str {
        "vmstat"
    }

    fn collect(&self, _: &ScrapeContext) -> Result<Vec<MetricFamily>, CollectError> {
        let text = read::file(&self.path)?;
        Ok(text
            .lines()
            .filter_map(|line| {
                let (key, value) = line.split_once(' ')?;
                if !self.fields.is_match(key) {
                    return None;
                }
                let value: f64 = value.trim().parse().ok()?;
                Some(
                    FamilyBuilder::untyped(
                        format!("node_vmstat_{key}"),
                        format!("/proc/vmstat information field {key}."),
                    )
                    .sample(&[], value)
                    .build(),
                )
            })
            .collect())
    }
}
