//! Command-line flags.

use std::path::PathBuf;

use clap::Parser;
use kiln_registry::WebFlags;

/// Reads MBeans from Hadoop's /jmx servlet and Jolokia agents over HTTP, applies unchanged
/// jmx_exporter rule files, and serves the result per target on /probe.
#[derive(Debug, Clone, Parser)]
#[command(name = "kiln-jmx-exporter", version, disable_version_flag = true)]
#[command(after_help = "Probe a JVM with /probe?target=HOST:PORT&module=NAME. \
    Without --config.file two modules exist: `hadoop` (Hadoop's /jmx, jmx_exporter's default \
    rules) and `jolokia` (a Jolokia agent at /jolokia, default rules).")]
pub struct Cli {
    /// The modules file (YAML): bridges, endpoints, credentials and jmx_exporter rules.
    #[arg(long = "config.file", value_name = "FILE")]
    pub modules_file: Option<PathBuf>,

    /// Standard web and logging flags.
    #[command(flatten)]
    pub web: WebFlags,
}

impl Cli {
    /// Parses the process arguments, exiting with usage on error.
    pub fn parse_args() -> Self {
        Self::parse()
    }
}
