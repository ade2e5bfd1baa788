//! Metrics about the exporter itself: build info, process metrics and the metric handler's
//! request counters (named as promhttp names them, so existing dashboards keep working).

use prometheus::core::Collector as _;
use prometheus::{IntCounterVec, IntGauge, Opts};

use super::process_metrics::ProcessMetrics;
use crate::metrics::MetricFamily;
use crate::version::BuildInfo;

/// The exporter's own instrumentation, shared by all connections.
#[derive(Debug)]
pub(crate) struct SelfMetrics {
    build_info: MetricFamily,
    requests: IntCounterVec,
    in_flight: IntGauge,
    #[cfg(target_os = "linux")]
    process: ProcessMetrics,
}

impl SelfMetrics {
    pub(crate) fn new(info: &BuildInfo) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "promhttp_metric_handler_requests_total",
                "Total number of scrapes by HTTP status code.",
            ),
            &["code"],
        )
        .unwrap_or_else(|_| unreachable!("the name and label are valid"));
        // Known codes start at zero so rate() works from the first scrape.
        for code in ["200", "500", "503"] {
            requests.with_label_values(&[code]);
        }
        let in_flight = IntGauge::new(
            "promhttp_metric_handler_requests_in_flight",
            "Current number of scrapes being served.",
        )
        .unwrap_or_else(|_| unreachable!("the name is valid"));
        Self {
            build_info: info.metric_family(),
            requests,
            in_flight,
            #[cfg(target_os = "linux")]
            process: ProcessMetrics::new(),
        }
    }

    /// Counts a finished scrape by its status code.
    pub(crate) fn observe(&self, status: u16) {
        self.requests
            .with_label_values(&[status.to_string().as_str()])
            .inc();
    }

    /// Marks a scrape as in progress until the guard is dropped.
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Families to append to a scrape.
    pub(crate) fn gather(&self) -> Vec<MetricFamily> {
        let mut families = vec![self.build_info.clone()];
        families.extend(self.requests.collect());
        families.extend(self.in_flight.collect());
        #[cfg(target_os = "linux")]
        self.process.gather(&mut families);
        families
    }
}

/// Decrements the in-flight gauge when a scrape ends, however it ends.
pub(crate) struct InFlight<'a>(&'a IntGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
