//! The exporter's own metrics: graphite_exporter's (same names and HELP text, so existing
//! alerts keep working) and Kiln's additions for what upstream does not count.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kiln_registry::{BuildInfo, CollectError, Collector, MetricSet, ScrapeContext};

use crate::ingest::{TCP_STATS, udp_stats};
use crate::line::Invalid;
use crate::pipeline::Pipeline;

/// Collects the self metrics from the pipeline's counters.
#[derive(Debug)]
pub struct SelfMetrics {
    pipeline: Arc<Pipeline>,
    build: BuildInfo,
}

impl SelfMetrics {
    /// Self metrics of `pipeline`.
    pub fn new(pipeline: Arc<Pipeline>, build: BuildInfo) -> Self {
        Self { pipeline, build }
    }
}

fn load(counter: &std::sync::atomic::AtomicU64) -> f64 {
    counter.load(Ordering::Relaxed) as f64
}

impl Collector for SelfMetrics {
    fn name(&self) -> &str {
        "graphite"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let stats = self.pipeline.stats();
        let settings = self.pipeline.settings();
        {
            out.counter_value(
                "graphite_dropped_samples_total",
                "Total count of samples dropped due to mapping configuration",
                load(&stats.dropped),
            );
            out.counter_value(
                "graphite_tag_parse_failures",
                "Total count of samples with invalid tags",
                load(&stats.tag_failures),
            );
            out.gauge_value(
                "graphite_last_processed_timestamp_seconds",
                "Unix timestamp of the last processed graphite metric.",
                f64::from_bits(stats.last_processed.load(Ordering::Relaxed)),
            );
            out.gauge_value(
                "graphite_sample_expiry_seconds",
                "How long in seconds a metric sample is valid for.",
                settings.sample_expiry.as_secs_f64(),
            );
            let info = out.gauge(
                "graphite_exporter_build_info",
                "A metric with a constant '1' value labeled by version, revision, branch, goversion from which graphite_exporter was built, and the goos and goarch for the build.",
            );
            out.sample(
                info,
                &[
                    ("branch", self.build.branch),
                    ("goarch", std::env::consts::ARCH),
                    ("goos", std::env::consts::OS),
                    ("goversion", self.build.rust_version),
                    ("revision", self.build.revision),
                    ("tags", "kiln"),
                    ("version", self.build.version),
                ],
                1.0,
            );
        }

        let invalid = out.counter(
            "graphite_invalid_lines_total",
            "Lines refused, by reason: part_count, value, timestamp, too_long, invalid_utf8, empty_name, invalid_label_name.",
        );
        for reason in Invalid::ALL {
            out.sample(
                invalid,
                &[("reason", reason.label())],
                load(&stats.invalid[reason.index()]),
            );
        }
        out.counter_value(
            "graphite_samples_stored_total",
            "Samples stored.",
            load(&stats.stored),
        );
        out.counter_value("graphite_unmatched_lines_total", "Lines that no mapping rule matched (stored under their own name unless strict matching drops them).", load(&stats.unmatched));
        out.gauge_value(
            "graphite_series",
            "Series stored (expired ones are removed every minute).",
            self.pipeline.store().len() as f64,
        );
        out.gauge_value(
            "graphite_series_limit",
            "Most series stored at once (--graphite.series-limit; 0: no limit).",
            settings.series_limit as f64,
        );
        out.gauge_value(
            "graphite_series_bytes",
            "Bytes the stored series take: names, families and labels, plus 56 bytes each.",
            self.pipeline.store().bytes() as f64,
        );
        out.gauge_value(
            "graphite_series_bytes_limit",
            "Most bytes the stored series may take (--graphite.series-bytes-limit; 0: no limit).",
            settings.series_bytes_limit as f64,
        );
        out.counter_value("graphite_series_limit_rejected_samples_total", "Samples of new series refused because the store held --graphite.series-limit series or --graphite.series-bytes-limit bytes.", load(&stats.rejected));
        self.rule_families(out);
        self.cache_families(out);
        transport_families(out);
        Ok(())
    }
}

impl SelfMetrics {
    fn rule_families(&self, out: &mut MetricSet) {
        let mapping = self.pipeline.mapping();
        let (generation, counts) = {
            let matches = self
                .pipeline
                .stats()
                .rule_matches
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            (matches.0, matches.1.clone())
        };
        let rules = out.counter(
            "graphite_mapping_rule_matches_total",
            "Lines matched by each mapping rule since the mapping was loaded; a rule that stays at 0 never matches.",
        );
        if generation == mapping.generation {
            for (index, rule) in mapping.mapper.rules().iter().enumerate() {
                let position = index.to_string();
                let action = match rule.action {
                    crate::mapping::Action::Map => "map",
                    crate::mapping::Action::Drop => "drop",
                };
                out.sample(
                    rules,
                    &[
                        ("rule", &position),
                        ("match", &rule.pattern),
                        ("name", &rule.name),
                        ("action", action),
                    ],
                    counts.get(index).copied().unwrap_or_default() as f64,
                );
            }
        }
        let (ok, at) = self.pipeline.reload_status();
        out.gauge_value(
            "graphite_mapping_rules",
            "Rules in the mapping file in force.",
            mapping.mapper.rules().len() as f64,
        );
        out.gauge_value(
            "graphite_config_last_reload_successful",
            "Whether the last mapping reload succeeded.",
            if ok { 1.0 } else { 0.0 },
        );
        out.gauge_value(
            "graphite_config_last_reload_success_timestamp_seconds",
            "When the mapping in force was loaded.",
            at,
        );
    }

    fn cache_families(&self, out: &mut MetricSet) {
        let mapping = self.pipeline.mapping();
        let Some(cache) = &mapping.cache else {
            return;
        };
        out.gauge_value(
            "statsd_metric_mapper_cache_length",
            "The count of unique metrics currently cached.",
            cache.len() as f64,
        );
        out.counter_value(
            "statsd_metric_mapper_cache_gets_total",
            "The count of total metric cache gets.",
            cache.gets() as f64,
        );
        out.counter_value(
            "statsd_metric_mapper_cache_hits_total",
            "The count of total metric cache hits.",
            cache.hits() as f64,
        );
    }
}

fn transport_families(out: &mut MetricSet) {
    let (datagrams, buffer) = udp_stats();
    out.gauge_value(
        "graphite_tcp_connections",
        "TCP connections open now.",
        TCP_STATS.open.load(Ordering::Relaxed) as f64,
    );
    out.counter_value(
        "graphite_tcp_connections_total",
        "TCP connections accepted.",
        load(&TCP_STATS.accepted),
    );
    out.counter_value("graphite_tcp_connections_refused_total", "TCP connections closed on arrival because --graphite.tcp-max-connections were open and none could make room.", load(&TCP_STATS.refused));
    out.counter_value("graphite_tcp_connections_idle_closed_total", "TCP connections closed after --graphite.tcp-idle-timeout without a line, or to make room for a new one.", load(&TCP_STATS.idle_closed));
    out.counter_value(
        "graphite_udp_datagrams_total",
        "UDP datagrams received.",
        datagrams as f64,
    );
    out.gauge_value(
        "graphite_udp_receive_buffer_bytes",
        "Receive buffer the kernel granted the UDP socket.",
        buffer as f64,
    );
}
