//! kiln-ping-exporter: ICMP latency and loss to many targets.

use std::process::ExitCode;

use kiln_ping::Cli;
use kiln_registry::{bootstrap, build_info};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let info = build_info!("kiln-ping-exporter");
    bootstrap::main(info, &cli.web, || kiln_ping::build(&cli, info))
}
