//! kiln-jmx-exporter: JMX metrics from Hadoop's /jmx and Jolokia, with jmx_exporter's rules.

use std::process::ExitCode;

use kiln_jmx::Cli;
use kiln_registry::{bootstrap, build_info};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let info = build_info!("kiln-jmx-exporter");
    bootstrap::main(info, &cli.web, || kiln_jmx::build(&cli, info))
}
