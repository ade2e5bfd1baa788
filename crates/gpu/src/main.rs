//! kiln-gpu-exporter: NVIDIA GPU metrics through NVML.

use std::process::ExitCode;

use kiln_gpu::Cli;
use kiln_registry::{bootstrap, build_info};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let info = build_info!("kiln-gpu-exporter");
    bootstrap::main(info, &cli.web, || kiln_gpu::build(&cli, info))
}
