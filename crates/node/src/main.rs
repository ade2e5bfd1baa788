//! kiln-node-exporter: hardware and OS metrics of a Linux host, for Prometheus.

use std::process::ExitCode;

use kiln_node::{Cli, CollectorSet};
use kiln_registry::bootstrap::{self, BuildError};
use kiln_registry::build_info;

fn main() -> ExitCode {
    let cli = Cli::parse_from(std::env::args_os());
    bootstrap::main(build_info!("kiln-node-exporter"), &cli.web, || {
        let set = CollectorSet::from_cli(&cli)?;
        tracing::info!(collectors = %cli.enabled.join(","), "Enabled collectors.");
        let mut exporter = set.into_exporter(cli.web.clone());
        // The sockets are taken only to serve, so that --check-config works anywhere.
        if cli.systemd_socket && !cli.web.check_config {
            let listeners = kiln_node::activated_listeners()
                .map_err(|e| BuildError::Start(format!("--web.systemd-socket: {e}")))?;
            exporter = exporter.inherited_listeners(listeners);
        }
        Ok(exporter)
    })
}
