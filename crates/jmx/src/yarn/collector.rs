//! The `yarn` collector: at each scrape, one read of the ResourceManager (its running
//! applications and cluster totals, the two requests side by side) within the configured
//! timeout and the scrape's own deadline.
//!
//! A ResourceManager that is down, slow, or answers something unusable never fails or
//! holds up the scrape: the collector answers in time with `yarn_resourcemanager_up 0`,
//! counts the failure by reason, logs it (at most once a minute), and serves the last good
//! read while it is younger than `keep_last`, so a dashboard does not flicker through one
//! lost read. Past that it serves nothing of the cluster rather than stale figures.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use kiln_registry::{CollectError, Collector, LogLimiter, MetricSet, ScrapeContext};
use kiln_scraper::{Fetch, ScrapeClient, ScrapeError};
use tokio::runtime::Handle;

use super::config::YarnSettings;
use super::rest::{self, Applications, ClusterMetrics, ParseError};

/// Time kept back from the scrape's deadline for writing the answer.
const MARGIN: Duration = Duration::from_millis(100);

/// One good read of the ResourceManager.
#[derive(Debug, Clone)]
struct Snapshot {
    applications: Applications,
    cluster: ClusterMetrics,
    read_at: Instant,
    read_at_wall: SystemTime,
}

/// Why a read failed, as counted in `yarn_resourcemanager_failures_total{reason}`.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("{0}")]
    Http(#[from] ScrapeError),
    #[error("{path}: {error}")]
    Parse {
        path: &'static str,
        error: ParseError,
    },
    #[error("no answer within {0:?}")]
    Deadline(Duration),
}

impl ReadError {
    fn reason(&self) -> &'static str {
        match self {
            ReadError::Http(ScrapeError::Timeout(_)) | ReadError::Deadline(_) => "timeout",
            ReadError::Http(ScrapeError::Status { .. }) => "http_status",
            ReadError::Http(ScrapeError::TooLarge(_)) => "too_large",
            ReadError::Http(ScrapeError::Tls(_)) => "tls",
            ReadError::Http(ScrapeError::Body(_)) | ReadError::Parse { .. } => "invalid_answer",
            ReadError::Http(_) => "connect",
        }
    }
}

/// Every failure reason, written from the first scrape so a rate over them always exists.
const REASONS: [&str; 6] = [
    "connect",
    "http_status",
    "invalid_answer",
    "timeout",
    "tls",
    "too_large",
];

#[derive(Debug, Default)]
struct State {
    last: Option<Snapshot>,
    failures: BTreeMap<&'static str, u64>,
}

/// Reads the ResourceManager at scrape time.
#[derive(Debug)]
pub struct YarnCollector {
    settings: YarnSettings,
    client: ScrapeClient,
    runtime: Handle,
    state: Mutex<State>,
    log: LogLimiter,
}

impl YarnCollector {
    /// A collector for `settings`, running its requests on `runtime`.
    pub fn new(settings: YarnSettings, runtime: Handle) -> Result<Self, ScrapeError> {
        let client = ScrapeClient::new()?
            .timeout(settings.timeout)
            .max_body_bytes(settings.max_response_bytes);
        Ok(Self {
            settings,
            client,
            runtime,
            state: Mutex::new(State::default()),
            log: LogLimiter::new(Duration::from_secs(60)),
        })
    }

    /// Reads both answers on the runtime; the calling (blocking) thread waits at most
    /// `wait`. A read still running then finishes or times out on its own, its result
    /// dropped.
    fn read(&self, wait: Duration) -> Result<Snapshot, ReadError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        let client = self.client.clone();
        let apps_url = self.settings.applications_url();
        let metrics_url = self.settings.metrics_url();
        let limit = self.settings.max_applications;
        let timeout = self.settings.timeout.min(wait);
        self.runtime.spawn(async move {
            let (apps, metrics) = tokio::join!(
                client.fetch(Fetch::get(&apps_url, "application/json").timeout(timeout)),
                client.fetch(Fetch::get(&metrics_url, "application/json").timeout(timeout)),
            );
            let _ = sender.send(snapshot(apps, metrics, limit));
        });
        receiver
            .recv_timeout(wait)
            .unwrap_or(Err(ReadError::Deadline(wait)))
    }
}

/// Parses the two answers into a snapshot taken now.
fn snapshot(
    apps: Result<kiln_scraper::Scrape, ScrapeError>,
    metrics: Result<kiln_scraper::Scrape, ScrapeError>,
    limit: usize,
) -> Result<Snapshot, ReadError> {
    let applications =
        rest::parse_applications(&apps?.body, limit).map_err(|error| ReadError::Parse {
            path: "/ws/v1/cluster/apps",
            error,
        })?;
    let cluster =
        rest::parse_cluster_metrics(&metrics?.body).map_err(|error| ReadError::Parse {
            path: "/ws/v1/cluster/metrics",
            error,
        })?;
    Ok(Snapshot {
        applications,
        cluster,
        read_at: Instant::now(),
        read_at_wall: SystemTime::now(),
    })
}

impl Collector for YarnCollector {
    fn name(&self) -> &str {
        "yarn"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let wait = ctx
            .remaining()
            .saturating_sub(MARGIN)
            .min(self.settings.timeout)
            .max(Duration::from_millis(1));
        let result = self.read(wait);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let up = match result {
            Ok(snapshot) => {
                state.last = Some(snapshot);
                true
            }
            Err(error) => {
                *state.failures.entry(error.reason()).or_default() += 1;
                if let Some(held_back) = self.log.check() {
                    tracing::warn!(
                        url = %self.settings.base_url,
                        reason = error.reason(),
                        err = %error,
                        held_back,
                        "Cannot read the ResourceManager; serving its last good read while it is recent."
                    );
                }
                if state
                    .last
                    .as_ref()
                    .is_some_and(|s| s.read_at.elapsed() > self.settings.keep_last)
                {
                    state.last = None;
                }
                false
            }
        };
        out.gauge_value(
            "yarn_resourcemanager_up",
            "1 when this scrape read the ResourceManager's REST API, else 0.",
            if up { 1.0 } else { 0.0 },
        );
        let failures = out.counter(
            "yarn_resourcemanager_failures_total",
            "Reads of the ResourceManager that failed, by reason.",
        );
        for reason in REASONS {
            let count = state.failures.get(reason).copied().unwrap_or(0);
            out.sample(failures, &[("reason", reason)], count as f64);
        }
        if let Some(snapshot) = &state.last {
            write_snapshot(out, snapshot);
        }
        Ok(())
    }
}

/// A family's values by `state` label.
type ByState<'a> = &'a [(&'static str, f64)];

fn write_snapshot(out: &mut MetricSet, snapshot: &Snapshot) {
    let read_at = snapshot
        .read_at_wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    out.gauge_value(
        "yarn_resourcemanager_last_success_timestamp_seconds",
        "When the figures served were read from the ResourceManager, in seconds since the epoch.",
        read_at,
    );
    let apps = &snapshot.applications;
    out.gauge_value(
        "yarn_applications_left_out",
        "Running applications the ResourceManager listed beyond max_applications, not served per application.",
        apps.left_out as f64,
    );
    let info = out.gauge(
        "yarn_application_info",
        "A running YARN application: its name, user, queue and type (value 1). Join on yarn_application.",
    );
    for app in &apps.kept {
        out.sample(
            info,
            &[
                ("yarn_application", &app.id),
                ("name", &app.name),
                ("user", &app.user),
                ("queue", &app.queue),
                ("application_type", &app.application_type),
            ],
            1.0,
        );
    }
    type Field = fn(&rest::Application) -> Option<f64>;
    let per_application: [(&str, &str, Field); 5] = [
        (
            "yarn_application_allocated_vcores",
            "Virtual cores YARN allocated to the application's running containers.",
            |a| Some(a.allocated_vcores),
        ),
        (
            "yarn_application_allocated_memory_bytes",
            "Memory YARN allocated to the application's running containers.",
            |a| Some(a.allocated_memory_bytes),
        ),
        (
            "yarn_application_allocated_gpus",
            "GPUs (resource yarn.io/gpu) YARN allocated to the application's running containers; only where the cluster schedules GPUs.",
            |a| a.allocated_gpus,
        ),
        (
            "yarn_application_running_containers",
            "Containers the application runs now.",
            |a| Some(a.running_containers),
        ),
        (
            "yarn_application_start_time_seconds",
            "When the application started, in seconds since the epoch.",
            |a| a.started_seconds,
        ),
    ];
    for (name, help, field) in per_application {
        if !apps.kept.iter().any(|a| field(a).is_some()) {
            continue;
        }
        let family = out.gauge(name, help);
        for app in &apps.kept {
            if let Some(value) = field(app) {
                out.sample(family, &[("yarn_application", &app.id)], value);
            }
        }
    }
    let cluster = &snapshot.cluster;
    let by_state: [(&str, &str, ByState<'_>); 6] = [
        (
            "yarn_cluster_applications",
            "Applications by state, as the ResourceManager counts them (submitted, completed, failed and killed since it started).",
            &cluster.applications,
        ),
        (
            "yarn_cluster_vcores",
            "Virtual cores of the cluster by state (total, allocated, available, reserved). Do not sum over state.",
            &cluster.vcores,
        ),
        (
            "yarn_cluster_memory_bytes",
            "Memory of the cluster by state (total, allocated, available, reserved). Do not sum over state.",
            &cluster.memory_bytes,
        ),
        (
            "yarn_cluster_gpus",
            "GPUs (resource yarn.io/gpu) of the cluster by state (total, allocated, available, reserved); only where the cluster schedules GPUs. Do not sum over state.",
            &cluster.gpus,
        ),
        (
            "yarn_cluster_containers",
            "Containers by state (allocated, reserved, pending).",
            &cluster.containers,
        ),
        (
            "yarn_cluster_nodes",
            "NodeManagers by state (active, lost, unhealthy, decommissioning, decommissioned, rebooted, shutdown).",
            &cluster.nodes,
        ),
    ];
    for (name, help, values) in by_state {
        if values.is_empty() {
            continue;
        }
        let family = out.gauge(name, help);
        for (state, value) in values {
            out.sample(family, &[("state", state)], *value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_listed_reason() {
        let errors = [
            ReadError::Http(ScrapeError::Timeout(Duration::from_secs(1))),
            ReadError::Http(ScrapeError::Status {
                status: 500,
                body: String::new(),
            }),
            ReadError::Http(ScrapeError::TooLarge(1)),
            ReadError::Http(ScrapeError::Tls(String::new())),
            ReadError::Http(ScrapeError::Request(String::new())),
            ReadError::Http(ScrapeError::Body(String::new())),
            ReadError::Deadline(Duration::from_secs(1)),
            ReadError::Parse {
                path: "/",
                error: ParseError::Missing("x"),
            },
        ];
        for error in errors {
            assert!(REASONS.contains(&error.reason()), "{error}");
        }
    }
}
