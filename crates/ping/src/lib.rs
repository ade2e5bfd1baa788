//! kiln-ping-exporter: ICMP round-trip time and loss to many targets, for Prometheus.
//!
//! A drop-in for czerwonk/ping_exporter: the same flags, configuration file and `ping_*`
//! window gauges, so its dashboards and alerts keep working. Beyond it: monotonic counters
//! (requests, responses, timeouts, late and duplicate replies, send errors) and an RTT
//! histogram (under smokeping_prober's name with `--metrics.smokeping`); one socket per
//! address family shared by every target, unprivileged where the system allows; kernel
//! receive timestamps; names re-resolved without ever being fatal; and a blackbox-style
//! `/probe` endpoint.
//!
//! [`engine`] sends and receives, [`targets`] keeps its probes in line with the
//! configuration ([`config`]) and DNS ([`dns`]), [`exposition`] writes the scrape and
//! [`probe`] answers `/probe`.

pub mod cli;
pub mod config;
pub mod dns;
pub mod engine;
pub mod exposition;
pub mod icmp;
pub mod probe;
pub mod stats;
mod sys;
pub mod targets;

use std::sync::Arc;

use kiln_registry::bootstrap::BuildError;
use kiln_registry::config::ConfigError;
use kiln_registry::{BuildInfo, Exporter};

pub use cli::Cli;
pub use config::Settings;

use crate::dns::Resolver;
use crate::engine::{Engine, EngineSettings};
use crate::icmp::{Family, SocketOptions};
use crate::targets::TargetManager;

/// Reads the configuration, opens the ICMP sockets, starts probing and returns the HTTP
/// side, ready to bind. With `--check-config`, only the configuration is checked.
pub fn build(cli: &Cli, info: BuildInfo) -> Result<Exporter, BuildError> {
    let settings = Settings::load(cli)?;
    let resolver = Resolver::new(&settings.dns)
        .map_err(|message| ConfigError::file(std::path::Path::new("--dns.nameserver"), message))?;
    if settings.targets.is_empty() {
        let source = cli
            .config_path
            .as_deref()
            .unwrap_or(std::path::Path::new("command line"));
        return Err(ConfigError::file(source, "no targets specified").into());
    }
    let exporter = Exporter::new(info, "ping", cli.web.clone())
        .description("ICMP round-trip time and loss")
        .default_listen_address(":9427");
    if cli.web.check_config {
        return Ok(exporter);
    }

    let engine = Arc::new(
        Engine::start(EngineSettings {
            buckets: settings.buckets.clone(),
            history: settings.history,
            socket: SocketOptions {
                preference: cli.socket,
                mark: settings.mark,
                identifier: std::process::id() as u16,
            },
            families: settings.families,
        })
        .map_err(|error| BuildError::Start(error.to_string()))?,
    );
    announce(&engine, &settings);
    let default_size = cli.size;
    let targets = TargetManager::start(cli.clone(), settings, resolver, Arc::clone(&engine))
        .map_err(|error| BuildError::Start(format!("cannot start the target manager: {error}")))?;
    let resolver = targets.resolver();
    let reloading = targets.clone();
    let metrics = exposition::PingMetrics::new(
        Arc::clone(&engine),
        targets.clone(),
        exposition::Options::from_cli(cli),
        info.version,
    );
    Ok(exporter
        .collector(metrics)
        .route(
            "/probe",
            "Probe a target: /probe?target=HOST[&count=N]",
            probe::handler(engine, targets, resolver, default_size),
        )
        .always_enable_reload()
        .on_reload(Arc::new(move || reloading.reload())))
}

/// Says which sockets were opened: the answer to "why are there no packets?".
fn announce(engine: &Engine, settings: &Settings) {
    for family in [Family::V4, Family::V6] {
        match engine.sockets()[family.index()] {
            Some(info) => tracing::info!(
                family = family.name(),
                socket = info.kind.label(),
                kernel_timestamps = info.kernel_timestamps,
                "ICMP socket open."
            ),
            None if settings.families[family.index()] => {
                tracing::warn!(
                    family = family.name(),
                    "No ICMP socket; these targets are not pinged."
                );
            }
            None => tracing::info!(family = family.name(), "Disabled by configuration."),
        }
    }
    if settings.allowed.is_none() {
        tracing::info!(
            "/probe accepts any target; set probe.allowed_targets in the configuration file to limit it."
        );
    }
}
