//! kiln-node-exporter: hardware and OS metrics of a Linux host, for Prometheus.

use std::process::ExitCode;

use kiln_node::{Cli, CollectorSet};
use kiln_registry::{bootstrap, build_info};

fn main() -> ExitCode {
    let cli = Cli::parse_from(std::env::args_os());
    bootstrap::main(build_info!("kiln-node-exporter"), &cli.web, || {
        if cli.systemd_socket {
            tracing::error!(
                listen = %cli.web.listen_or(":9100").join(","),
                "--web.systemd-socket: systemd socket activation (LISTEN_FDS) is not supported; \
                 listening on --web.listen-address instead."
            );
        }
        let set = CollectorSet::from_cli(&cli)?;
        tracing::info!(collectors = %cli.enabled.join(","), "Enabled collectors.");
        Ok(set.into_exporter(cli.web.clone()))
    })
}
