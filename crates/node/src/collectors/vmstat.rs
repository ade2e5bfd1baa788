//! `vmstat`: the fields of `/proc/vmstat` that match `--collector.vmstat.fields`.

use std::path::PathBuf;
use std::sync::Mutex;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};
use regex::Regex;

use super::{Settings, boxed};
use crate::{filter, read};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Vmstat {
        path: settings.paths.proc("vmstat"),
        fields: filter::regex("collector.vmstat.fields", &settings.options.vmstat_fields)?,
        remembered: Mutex::default(),
    })
}

struct Vmstat {
    path: PathBuf,
    fields: Regex,
    /// What `fields` said of each line's name last time.
    remembered: Mutex<filter::Remembered>,
}

impl Collector for Vmstat {
    fn name(&self) -> &str {
        "vmstat"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let mut remembered = self
            .remembered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        remembered.restart();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            if !remembered.is_match(key, &self.fields) {
                continue;
            }
            let family = out.family_fmt(
                format_args!("node_vmstat_{key}"),
                format_args!("/proc/vmstat information field {key}."),
                MetricType::Untyped,
            );
            out.sample(family, &[], value);
        }
        Ok(())
    }
}
