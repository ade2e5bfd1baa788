//! Metrics about the exporter itself: build info, process metrics and the metric handler's
//! request counters (named as promhttp names them, so existing dashboards keep working).

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[cfg(target_os = "linux")]
use super::process_metrics::ProcessMetrics;
use crate::metrics::MetricSet;
use crate::version::BuildInfo;

/// Status codes counted from the start, so `rate()` works from the first scrape.
const KNOWN_CODES: [u16; 3] = [200, 500, 503];

/// The exporter's own instrumentation, shared by all connections.
#[derive(Debug)]
pub(crate) struct SelfMetrics {
    info: BuildInfo,
    /// Scrapes answered, by status code, in code order.
    requests: Mutex<Vec<(u16, u64)>>,
    in_flight: AtomicI64,
    /// promhttp_metric_handler_errors_total by cause, for exporters whose upstream reports
    /// it (see [`crate::Exporter::handler_error_metrics`]).
    errors: Option<HandlerErrors>,
    #[cfg(target_os = "linux")]
    process: ProcessMetrics,
}

/// Why a scrape's answer lacked something, as promhttp names the causes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HandlerError {
    /// A family could not be written and was left out.
    Encoding,
    /// The samples could not be gathered (the scrape answered 500).
    Gathering,
}

#[derive(Debug, Default)]
struct HandlerErrors {
    encoding: AtomicU64,
    gathering: AtomicU64,
}

impl SelfMetrics {
    pub(crate) fn new(info: &BuildInfo, handler_errors: bool) -> Self {
        Self {
            info: *info,
            requests: Mutex::new(KNOWN_CODES.iter().map(|&code| (code, 0)).collect()),
            in_flight: AtomicI64::new(0),
            errors: handler_errors.then(HandlerErrors::default),
            #[cfg(target_os = "linux")]
            process: ProcessMetrics::new(),
        }
    }

    /// Counts a finished scrape by its status code.
    pub(crate) fn observe(&self, status: u16) {
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match requests.binary_search_by_key(&status, |&(code, _)| code) {
            Ok(at) => requests[at].1 += 1,
            Err(at) => requests.insert(at, (status, 1)),
        }
    }

    /// Counts an error of the metric handler, where this exporter reports them.
    pub(crate) fn handler_error(&self, cause: HandlerError) {
        if let Some(errors) = &self.errors {
            let counter = match cause {
                HandlerError::Encoding => &errors.encoding,
                HandlerError::Gathering => &errors.gathering,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Marks a scrape as in progress until the guard is dropped.
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Writes the families appended to every scrape.
    pub(crate) fn write(&self, out: &mut MetricSet) {
        self.info.write_metric(out);
        if let Some(errors) = &self.errors {
            let family = out.counter(
                "promhttp_metric_handler_errors_total",
                "Total number of internal errors encountered by the promhttp metric handler.",
            );
            for (cause, count) in [
                ("encoding", &errors.encoding),
                ("gathering", &errors.gathering),
            ] {
                out.sample(
                    family,
                    &[("cause", cause)],
                    count.load(Ordering::Relaxed) as f64,
                );
            }
        }
        let requests = out.counter(
            "promhttp_metric_handler_requests_total",
            "Total number of scrapes by HTTP status code.",
        );
        let counts = self
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let mut code = String::new();
        for (status, count) in counts {
            use std::fmt::Write as _;
            code.clear();
            let _ = write!(code, "{status}");
            out.sample(requests, &[("code", &code)], count as f64);
        }
        out.gauge_value(
            "promhttp_metric_handler_requests_in_flight",
            "Current number of scrapes being served.",
            self.in_flight.load(Ordering::Relaxed) as f64,
        );
        #[cfg(target_os = "linux")]
        self.process.write(out);
    }
}

/// Decrements the in-flight gauge when a scrape ends, however it ends.
pub(crate) struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
