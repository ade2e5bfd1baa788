//! Command-line flags.

use std::path::PathBuf;

use clap::Parser;
use kiln_registry::WebFlags;

use crate::single_file::SingleFileFlags;
use crate::yarn::YarnFlags;

/// Reads MBeans from Hadoop's /jmx servlet and Jolokia agents over HTTP, applies unchanged
/// jmx_exporter rule files, and serves the result per target on /probe.
#[derive(Debug, Clone, Parser)]
#[command(name = "kiln-jmx-exporter", version, disable_version_flag = true)]
#[command(after_help = "Probe a JVM with /probe?target=HOST:PORT&module=NAME. \
    Without --config.file two modules exist: `hadoop` (Hadoop's /jmx, jmx_exporter's default \
    rules) and `jolokia` (a Jolokia agent at /jolokia, default rules); with --jmx.target \
    instead, one module `default` reads that URL with the default rules. \
    A plain jmx_exporter file: --config.file=namenode.yml --jmx.target=http://nn1:9870/jmx, \
    then scrape /probe.")]
pub struct Cli {
    /// A modules file (YAML with `modules:`: bridges, endpoints, credentials and
    /// jmx_exporter rules per module), or a plain jmx_exporter configuration file, which is
    /// then the one module `default`, completed by the --jmx.* flags.
    #[arg(long = "config.file", value_name = "FILE")]
    pub modules_file: Option<PathBuf>,

    /// Settings of a plain jmx_exporter file's module.
    #[command(flatten)]
    pub single_file: SingleFileFlags,

    /// The ResourceManager read by the `yarn` collector, without a modules file.
    #[command(flatten)]
    pub yarn: YarnFlags,

    /// The memory, in MiB, that all `/probe` requests in progress may hold for their
    /// answers: each reserves twice its answer's body as it arrives. A probe that finds it
    /// spent is answered 503 at once and counted in jmx_probe_errors_total{reason="over_budget"}.
    #[arg(long = "probe.memory-limit-mib", value_name = "MIB", default_value_t = crate::budget::DEFAULT_MIB,
          value_parser = clap::value_parser!(usize))]
    pub probe_memory_mib: usize,

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
