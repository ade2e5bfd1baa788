//! kiln-registry: what every Kiln exporter shares, written once.
//!
//! - [`WebFlags`]: the standard `--web.*` and `--log.*` flags, flattened into each exporter's CLI.
//! - [`webconfig`]: the exporter-toolkit web config file (TLS, basic auth, headers).
//! - [`Exporter`]: the HTTP server with the telemetry path, landing page, health, readiness,
//!   gzip, a scrape concurrency cap, time limits against slow clients, graceful shutdown.
//! - [`Collector`] and [`Runner`]: scrape-time collection with per-collector success and
//!   duration, so one failing collector never fails a scrape.
//! - [`metrics`]: the metric model collectors write into ([`MetricSet`]) and the encoders
//!   for the text format and OpenMetrics.
//! - [`bootstrap::main`]: the whole process life, so `main.rs` stays a few lines.
//!
//! A minimal exporter is `src/bin/kiln-example-exporter.rs`.

pub mod allow_list;
pub mod bootstrap;
mod collector;
pub mod config;
pub mod duration;
mod flags;
pub mod heap;
mod log_limiter;
pub mod logging;
pub mod metrics;
pub mod process_policy;
mod runner;
mod server;
pub mod signals;
#[cfg(target_os = "linux")]
mod startup_pages;
mod version;
pub mod webconfig;
pub mod yarn;

pub use collector::{CollectError, Collector, ScrapeContext};
pub use flags::{LogFormat, LogLevel, WebFlags};
pub use log_limiter::LogLimiter;
pub use metrics::{FamilyId, MetricSet, MetricType, SharedSet};
pub use runner::{Collected, PANIC_COLLECTORS_ENV, Runner, Selection, SelectionError};
pub use server::{
    Body, Exporter, Exposition, Link, ReadyCheck, ReloadHook, Response, RouteFuture, RouteHandler,
    RunningExporter, ServeError, TextSource, Timeouts, exposition_response, listen_candidates,
    query_pairs, text,
};
pub use version::BuildInfo;
