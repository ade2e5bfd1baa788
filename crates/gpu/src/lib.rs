//! kiln-gpu-exporter: NVIDIA GPU metrics through NVML, for Prometheus.
//!
//! Collection threads ([`worker`], one for the system and one per GPU) read every GPU on an
//! interval through nvml-wrapper, one collector per concern ([`collectors`]), and publish a
//! [`snapshot`]; scrapes serve it ([`exposition`]) and never wait for the driver, and a call
//! wedged on one GPU leaves the others' readings fresh. XID errors arrive on a second thread
//! ([`xid`]). Every NVML call goes through [`calls::Reader`], which remembers what a GPU
//! cannot answer, marks a GPU that fell off the bus as down while the others keep
//! reporting, and reopens the library when the driver goes away.
//!
//! Metric names follow the `nvidia_gpu_` scheme in `docs/gpu-exporter.md`;
//! `deploy/prometheus/rules/dcgm-compat.yml` maps them to dcgm-exporter's names.

pub mod calls;
pub mod cgroup;
pub mod cli;
pub mod collectors;
pub mod exposition;
pub mod families;
pub mod kmsg;
pub mod snapshot;
mod sys;
pub mod worker;
pub mod xid;

use std::path::Path;
use std::sync::Arc;

use kiln_registry::bootstrap::BuildError;
use kiln_registry::config::ConfigError;
use kiln_registry::{BuildInfo, Exporter};

pub use cli::Cli;

/// How long start-up waits for the first readings before serving anyway.
const FIRST_COLLECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks the flags, starts collecting and returns the HTTP side, ready to bind.
pub fn build(cli: &Cli, info: BuildInfo) -> Result<Exporter, BuildError> {
    if cli.interval.is_zero() {
        return Err(
            ConfigError::file(Path::new("--collect.interval"), "must be greater than 0").into(),
        );
    }
    if cli.timeout.is_zero() {
        return Err(
            ConfigError::file(Path::new("--collect.timeout"), "must be greater than 0").into(),
        );
    }
    let exporter = Exporter::new(info, "gpu", cli.web.clone())
        .description("NVIDIA GPU metrics through NVML")
        .default_listen_address(":9445");
    if cli.web.check_config {
        return Ok(exporter);
    }
    let settings = worker::Settings {
        library: Some(cli.library_path.clone()),
        interval: cli.interval,
        timeout: cli.timeout,
        xid_events: !cli.no_xid_events,
        kmsg: (!cli.no_xid_kmsg).then(|| cli.kmsg_path.clone()),
        options: collectors::Options {
            processes: cli.processes,
            pcie_throughput: cli.pcie_throughput,
            procfs: cli.procfs.clone(),
            gpm: !cli.no_gpm,
        },
    };
    let shared = worker::start(settings).map_err(|error| {
        BuildError::Start(format!("cannot start the collection thread: {error}"))
    })?;
    shared.wait_for_first(FIRST_COLLECTION_WAIT);
    let nvml = Arc::clone(&shared);
    Ok(exporter
        .ready_when(Arc::new(move || nvml.snapshot.load().nvml_up))
        .collector(exposition::GpuMetrics::new(shared, cli.timeout)))
}
