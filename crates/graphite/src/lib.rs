//! kiln-graphite-exporter: a drop-in replacement for Prometheus' graphite_exporter.
//!
//! Accepts the Graphite plaintext protocol over TCP and UDP (what Spark's GraphiteSink,
//! Flink, collectd and carbon relays send), renames and labels each path with an unchanged
//! graphite_exporter mapping file, and serves the latest value of every series as gauges.
//!
//! Where upstream hurts, this does better: lines are parsed and mapped on every reader in
//! parallel; inputs that crash upstream are counted and dropped; two names colliding on one
//! series no longer fail the whole scrape; bad lines are counted by reason; an over-long
//! line costs that line only; the mapping reloads on SIGHUP (or `POST /-/reload` with
//! `--web.enable-lifecycle`) keeping the stored samples; series, connections and idle time
//! are bounded.
//!
//! The path of a line: [`ingest`] reads it, [`pipeline`] splits ([`mod@line`]), maps
//! ([`mapping`], [`cache`]) and stores it ([`store`], as a [`series`]), and
//! [`exposition`] writes the store into each scrape.

#![forbid(unsafe_code)]

pub mod cache;
pub mod cli;
pub mod exposition;
pub mod goparse;
pub mod ingest;
pub mod line;
pub mod mapping;
pub mod names;
pub mod pipeline;
pub mod self_metrics;
pub mod series;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use kiln_registry::bootstrap::BuildError;
use kiln_registry::config::ConfigError;
use kiln_registry::{BuildInfo, Exporter};

pub use cli::Cli;
pub use pipeline::{Pipeline, Settings};

/// How often expired samples are removed from the store (upstream: every minute).
const EXPIRY_SWEEP: Duration = Duration::from_secs(60);

impl Cli {
    /// The pipeline settings these flags ask for.
    pub fn settings(&self) -> Settings {
        Settings {
            mapping_file: self.mapping_config.clone(),
            strict_match: self.strict_match,
            sample_expiry: self.sample_expiry,
            cache_size: self.cache_size,
            cache_type: self.cache_type,
            series_limit: self.series_limit,
            series_bytes_limit: self.series_bytes_limit,
        }
    }

    /// The listener settings these flags ask for.
    pub fn listen_settings(&self) -> ingest::ListenSettings {
        ingest::ListenSettings {
            address: self.listen_address.clone(),
            tcp: ingest::TcpLimits {
                max_connections: self.tcp_max_connections,
                idle_timeout: self.tcp_idle_timeout,
            },
            udp_receive_buffer: self.udp_receive_buffer,
            udp_readers: self.udp_readers,
            max_line_length: self.max_line_length,
        }
    }
}

/// Loads the mapping and, unless only checking the configuration, starts the Graphite
/// listeners and the expiry sweep; returns the HTTP side, ready to bind.
///
/// A malformed `--graphite.listen-address` is a configuration error (exit 64); an address
/// that cannot be bound, such as a port in use, is not (exit 1), as for the web port.
pub fn build(cli: &Cli, info: BuildInfo) -> Result<Exporter, BuildError> {
    let pipeline = Arc::new(Pipeline::new(cli.settings())?);
    if cli.web.check_config {
        return Ok(exporter(cli, info, pipeline));
    }
    let listeners =
        ingest::start(&pipeline, &cli.listen_settings()).map_err(|error| match error {
            ingest::ListenError::Address { .. } => BuildError::Config(ConfigError::file(
                std::path::Path::new(&cli.listen_address),
                error.to_string(),
            )),
            ingest::ListenError::Bind { .. } => BuildError::Start(error.to_string()),
        })?;
    tracing::debug!(?listeners, "Graphite listeners started.");
    let sweeper = Arc::clone(&pipeline);
    let spawned = std::thread::Builder::new()
        .name("graphite-expiry".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EXPIRY_SWEEP);
                let removed = sweeper.expire();
                if removed > 0 {
                    // The removed series were many small allocations: without this most of
                    // their memory would stay resident, held free by the allocator.
                    let trimmed = kiln_registry::heap::release_free_memory();
                    tracing::debug!(removed, trimmed, "Expired samples removed.");
                }
            }
        });
    if let Err(error) = spawned {
        tracing::error!(err = %error, "Cannot start the expiry thread; expired samples stay stored (but are not served).");
    }
    Ok(exporter(cli, info, pipeline))
}

fn exporter(cli: &Cli, info: BuildInfo, pipeline: Arc<Pipeline>) -> Exporter {
    let reloading = Arc::clone(&pipeline);
    Exporter::new(info, "graphite", cli.web.clone())
        .description("Graphite plaintext metrics, mapped for Prometheus")
        .default_listen_address(":9108")
        .collector(self_metrics::SelfMetrics::new(Arc::clone(&pipeline), info))
        .text_source(Arc::new(exposition::Samples(pipeline)))
        .on_reload(Arc::new(move || {
            reloading.reload().map_err(|error| error.to_string())
        }))
}
