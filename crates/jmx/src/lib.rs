//! kiln-jmx-exporter: a JMX proxy for Hadoop, YARN, HBase, Spark and Kafka JVMs, with no
//! agent to install and no RMI.
//!
//! It reads MBeans over HTTP from the `/jmx` servlet every Hadoop daemon already serves
//! ([`bridge::hadoop`]) or from Jolokia agents ([`bridge::jolokia`]), runs them through
//! jmx_exporter's rule files unchanged ([`rules`]), and serves each JVM on
//! `/probe?target=HOST:PORT&module=NAME`, so one process covers every daemon of a cluster.
//!
//! The path of a probe: [`probe`] checks the request against the [`config`], [`bridge`]
//! fetches and finds the beans in the [`json`], [`walk`] turns their attributes into rule
//! inputs, [`rules`] names them (remembering results per attribute in [`rules::cache`],
//! split into [`shards`] walked in parallel), [`samples`] keeps the samples compact, and [`families`] writes the text.

pub mod bridge;
pub mod budget;
pub mod cli;
pub mod config;
pub mod families;
pub mod json;
pub mod jvm;
pub mod object_name;
pub mod probe;
pub mod rules;
pub mod samples;
pub mod self_metrics;
pub mod shards;
pub mod single_file;
pub mod state;
pub mod target;
pub mod walk;
pub mod yarn;

use std::sync::Arc;
use std::time::Duration;

use kiln_registry::bootstrap::BuildError;
use kiln_registry::{BuildInfo, Exporter};

pub use cli::Cli;

/// How often the configuration files are checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// Loads and compiles the configuration and returns the HTTP side, ready to bind.
pub fn build(cli: &Cli, info: BuildInfo) -> Result<Exporter, BuildError> {
    let jmx = Arc::new(state::Jmx::load(
        cli.modules_file.as_deref(),
        &cli.single_file,
    )?);
    let yarn = yarn::config::load_for(cli)?;
    let exporter = Exporter::new(info, "jmx", cli.web.clone())
        .description("JMX metrics from Hadoop's /jmx servlet and Jolokia agents")
        .default_listen_address(":9404");
    if cli.web.check_config {
        return Ok(exporter);
    }
    announce(&jmx);
    if cli.modules_file.is_some() {
        let watched = Arc::clone(&jmx);
        std::thread::Builder::new()
            .name("jmx-config-watch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(RELOAD_CHECK);
                    watched.reload_if_changed();
                }
            })
            .map_err(|e| {
                BuildError::Start(format!("cannot start the configuration watcher: {e}"))
            })?;
    }
    let mut exporter = exporter;
    if let Some(settings) = yarn {
        tracing::info!(url = %settings.base_url, "Reading YARN's ResourceManager.");
        let collector = yarn::YarnCollector::new(settings, tokio::runtime::Handle::current())
            .map_err(|e| {
                BuildError::Start(format!("cannot build the ResourceManager client: {e}"))
            })?;
        exporter = exporter.collector(collector);
    }
    let reloading = Arc::clone(&jmx);
    Ok(exporter
        .collector(self_metrics::SelfMetrics(Arc::clone(&jmx)))
        .route(
            "/probe",
            "Probe a JVM: /probe?target=HOST:PORT&module=NAME",
            probe::handler(jmx, cli.probe_memory_mib << 20),
        )
        .always_enable_reload()
        .on_reload(Arc::new(move || reloading.reload())))
}

/// Says which modules are ready and whether `/probe` is open to any target.
fn announce(jmx: &state::Jmx) {
    let modules = jmx.modules.load();
    for (name, module) in &modules.by_name {
        tracing::info!(
            module = %name,
            bridge = ?module.settings.bridge,
            path = %module.settings.path,
            rules = module.settings.rules.rules.len(),
            "Module ready."
        );
    }
    if modules.allowed.is_none() {
        tracing::info!(
            "/probe accepts any host:port; set allowed_targets in the configuration file to limit it."
        );
    }
}
