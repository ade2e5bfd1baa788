//! The exporter's own metrics on `/metrics`: probes and their failures per module, samples
//! dropped where jmx_exporter would have failed the scrape, the match caches, and reloads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use crate::families::Dropped;
use crate::state::Jmx;
use crate::walk::WalkStats;

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Counters {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (module, outcome) → probes.
    probes: BTreeMap<(String, &'static str), u64>,
    /// (module, reason) → failed probes.
    errors: BTreeMap<(String, &'static str), u64>,
    /// (module, reason) → samples or labels dropped.
    dropped: BTreeMap<(String, &'static str), u64>,
    /// module → attributes offered to the rules, and of those answered from the cache.
    attributes: BTreeMap<String, (u64, u64)>,
    reload_success: u64,
    reload_failure: u64,
}

impl Counters {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// Counts a successful probe.
    pub fn probe_succeeded(&self, module: &str, stats: &WalkStats, dropped: &Dropped) {
        self.with(|inner| {
            *inner
                .probes
                .entry((module.to_owned(), "success"))
                .or_default() += 1;
            let attributes = inner.attributes.entry(module.to_owned()).or_default();
            attributes.0 += stats.attributes;
            attributes.1 += stats.cache_hits;
            for (reason, count) in [
                ("negative_counter", dropped.negative_counters),
                ("duplicate_sample", dropped.duplicates),
                ("reserved_name", dropped.reserved_names),
                ("duplicate_label", stats.duplicate_labels),
                ("invalid_bean_name", stats.bad_names),
            ] {
                if count > 0 {
                    *inner
                        .dropped
                        .entry((module.to_owned(), reason))
                        .or_default() += count;
                }
            }
        });
    }

    /// Counts a failed probe.
    pub fn probe_failed(&self, module: &str, reason: &'static str) {
        self.with(|inner| {
            *inner
                .probes
                .entry((module.to_owned(), "error"))
                .or_default() += 1;
            *inner.errors.entry((module.to_owned(), reason)).or_default() += 1;
        });
    }

    /// Counts bridge reads that failed inside an otherwise good answer.
    pub fn read_errors(&self, module: &str, count: u64) {
        if count > 0 {
            self.with(|inner| {
                *inner
                    .errors
                    .entry((module.to_owned(), "read_failed"))
                    .or_default() += count;
            });
        }
    }

    /// Counts a configuration reload.
    pub fn reloaded(&self, success: bool) {
        self.with(|inner| {
            if success {
                inner.reload_success += 1;
            } else {
                inner.reload_failure += 1;
            }
        });
    }
}

/// Serves [`Counters`] and the cache sizes.
#[derive(Debug)]
pub struct SelfMetrics(pub Arc<Jmx>);

impl Collector for SelfMetrics {
    fn name(&self) -> &str {
        "jmx"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let jmx = &self.0;
        jmx.counters.with(|inner| {
            family(out, "jmx_probes_total", "Probes by module and outcome.", MetricType::Counter, inner.probes.iter().map(|((m, o), v)| (m.as_str(), Some(("outcome", *o)), *v as f64)));
            family(out, "jmx_probe_errors_total", "Failed probes and failed bean reads, by module and reason.", MetricType::Counter, inner.errors.iter().map(|((m, r), v)| (m.as_str(), Some(("reason", *r)), *v as f64)));
            family(out, "jmx_probe_dropped_total", "Samples or labels left out where jmx_exporter would fail the whole scrape, by module and reason.", MetricType::Counter, inner.dropped.iter().map(|((m, r), v)| (m.as_str(), Some(("reason", *r)), *v as f64)));
            family(out, "jmx_rule_attributes_total", "Attribute values run through the rules.", MetricType::Counter, inner.attributes.iter().map(|(m, v)| (m.as_str(), None, v.0 as f64)));
            family(out, "jmx_rule_cache_hits_total", "Attribute values whose rule result was reused from the match cache.", MetricType::Counter, inner.attributes.iter().map(|(m, v)| (m.as_str(), None, v.1 as f64)));
            out.counter_value("jmx_config_reload_success_total", "Number of times configuration have successfully been reloaded.", inner.reload_success as f64);
            out.counter_value("jmx_config_reload_failure_total", "Number of times configuration have failed to be reloaded.", inner.reload_failure as f64);
        });
        let modules = jmx.modules.load();
        let sizes: Vec<Row<'_>> = modules
            .by_name
            .iter()
            .map(|(name, module)| (name.as_str(), None, module.cache.len() as f64))
            .collect();
        family(
            out,
            "jmx_rule_cache_entries",
            "Attributes whose rule result is remembered, per module.",
            MetricType::Gauge,
            sizes.into_iter(),
        );
        let resets: Vec<Row<'_>> = modules
            .by_name
            .iter()
            .map(|(name, module)| (name.as_str(), None, module.cache.resets() as f64))
            .collect();
        family(
            out,
            "jmx_rule_cache_resets_total",
            "Times the match cache forgot everything for going past its entry or byte limit, per module.",
            MetricType::Counter,
            resets.into_iter(),
        );
        Ok(())
    }
}

/// One sample: module, an optional second label, value.
type Row<'a> = (&'a str, Option<(&'a str, &'a str)>, f64);

fn family<'a>(
    out: &mut MetricSet,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl Iterator<Item = Row<'a>>,
) {
    let family = out.family(name, help, kind);
    for (module, extra, value) in samples {
        match extra {
            Some(extra) => out.sample(family, &[("module", module), extra], value),
            None => out.sample(family, &[("module", module)], value),
        }
    }
}
