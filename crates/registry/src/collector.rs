//! The `Collector` trait every exporter implements, and what a collection is told.

use std::time::{Duration, Instant};

use crate::metrics::MetricSet;

/// A source of metric families, asked afresh on every scrape.
///
/// `collect` writes into a [`MetricSet`] that the runner reuses from scrape to scrape. It
/// runs on a blocking thread, so it may read files or call C libraries directly.
/// It should watch [`ScrapeContext::remaining`] when it does slow work: once the deadline has
/// passed the runner reports the collector as failed and stops waiting for it.
pub trait Collector: Send + Sync + 'static {
    /// Short name used in the `collector` label and in `collect[]` / `exclude[]` filters.
    fn name(&self) -> &str;

    /// Writes this scrape's families into `out`. Returning an error (or panicking) marks the
    /// collector as failed for this scrape (`<ns>_scrape_collector_success 0`) and leaves out
    /// what it wrote; the other collectors still report.
    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError>;
}

/// Facts about the scrape in progress.
#[derive(Debug, Clone, Copy)]
pub struct ScrapeContext {
    deadline: Instant,
}

impl ScrapeContext {
    /// A scrape that must be answered by `deadline`.
    pub fn new(deadline: Instant) -> Self {
        Self { deadline }
    }

    /// A scrape that must be answered within `budget` from now.
    pub fn with_budget(budget: Duration) -> Self {
        Self::new(Instant::now() + budget)
    }

    /// When Prometheus gives up on this scrape (less a safety margin).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time left before the deadline; zero once it has passed.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// True once the deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// Why a collector produced nothing usable this scrape.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The source has nothing to report on this host (e.g. no such hardware). Logged at
    /// debug level only, as node_exporter does for `ErrNoData`.
    #[error("collector returned no data")]
    NoData,
    /// The collection failed; `context` says what was being done.
    #[error("{context}: {source}")]
    Failed {
        /// What the collector was doing, e.g. `reading /proc/loadavg`.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl CollectError {
    /// Wraps an error with what was being done when it happened.
    pub fn failed(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Failed {
            context: context.into(),
            source: source.into(),
        }
    }
}
