//! Command-line flags: graphite_exporter's, with the same names and defaults, plus Kiln's
//! limits (series, connections, line length, UDP buffer) that upstream lacks.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use kiln_registry::WebFlags;
use kiln_registry::duration::parse_go_duration;

use crate::cache::CacheType;

/// Accepts Graphite plaintext metrics over TCP and UDP and serves them to Prometheus,
/// renamed and labelled by a graphite_exporter mapping file.
#[derive(Debug, Clone, Parser)]
#[command(name = "kiln-graphite-exporter", about, long_about = None)]
pub struct Cli {
    /// TCP and UDP address on which to accept samples.
    #[arg(
        long = "graphite.listen-address",
        default_value = ":9109",
        value_name = "ADDRESS"
    )]
    pub listen_address: String,

    /// Metric mapping configuration file name (graphite_exporter / statsd_exporter format).
    #[arg(long = "graphite.mapping-config", value_name = "FILE")]
    pub mapping_config: Option<PathBuf>,

    /// How long a sample is valid for, counted from its Graphite timestamp.
    #[arg(
        long = "graphite.sample-expiry",
        default_value = "5m",
        value_parser = parse_go_duration,
        value_name = "DURATION"
    )]
    pub sample_expiry: Duration,

    /// Only store metrics that match the mapping configuration.
    #[arg(
        long = "graphite.mapping-strict-match",
        action = ArgAction::Set,
        num_args = 0..=1,
        default_value_t = false,
        default_missing_value = "true",
        value_name = "BOOL",
        overrides_with = "no_strict_match"
    )]
    pub strict_match: bool,

    #[arg(
        long = "no-graphite.mapping-strict-match",
        hide = true,
        overrides_with = "strict_match"
    )]
    no_strict_match: bool,

    /// Maximum size of the metric mapping cache (0 disables it).
    #[arg(long = "graphite.cache-size", default_value_t = 1000, value_name = "N")]
    pub cache_size: usize,

    /// Metric mapping cache type.
    #[arg(
        long = "graphite.cache-type",
        value_enum,
        default_value_t = CacheType::Lru,
        value_name = "TYPE"
    )]
    pub cache_type: CacheType,

    /// Write the glob matcher's state machine as a Graphviz dot file, then exit.
    #[arg(long = "debug.dump-fsm", value_name = "FILE")]
    pub dump_fsm: Option<PathBuf>,

    /// Most series stored at once (0: no limit); samples of new series beyond it are
    /// refused and counted, so memory stays bounded.
    #[arg(
        long = "graphite.series-limit",
        default_value_t = 1_000_000,
        value_name = "N"
    )]
    pub series_limit: usize,

    /// Most bytes the stored series may take: their names, families and labels, plus 56
    /// bytes each (0: no limit). Samples of new series beyond it are refused and counted,
    /// so a few series with very long names cannot take the memory of millions.
    #[arg(
        long = "graphite.series-bytes-limit",
        default_value_t = 256 << 20,
        value_name = "BYTES"
    )]
    pub series_bytes_limit: usize,

    /// Most TCP connections open at once; a new one beyond takes the place of the one that
    /// has gone longest without a line.
    #[arg(
        long = "graphite.tcp-max-connections",
        default_value_t = 1024,
        value_name = "N"
    )]
    pub tcp_max_connections: usize,

    /// Close a TCP connection that delivers no complete line for this long (0: never).
    #[arg(
        long = "graphite.tcp-idle-timeout",
        default_value = "5m",
        value_parser = parse_go_duration,
        value_name = "DURATION"
    )]
    pub tcp_idle_timeout: Duration,

    /// Longest line accepted, in bytes; a longer one is dropped and counted, and the rest
    /// of its connection is still read.
    #[arg(
        long = "graphite.max-line-length",
        default_value_t = 65_535,
        value_name = "BYTES"
    )]
    pub max_line_length: usize,

    /// Receive buffer to ask for on the UDP socket, in bytes (beyond net.core.rmem_max
    /// when the process has CAP_NET_ADMIN).
    #[arg(
        long = "graphite.udp-receive-buffer",
        default_value_t = 16 << 20,
        value_name = "BYTES"
    )]
    pub udp_receive_buffer: usize,

    /// Threads reading the UDP socket.
    #[arg(long = "graphite.udp-readers", default_value_t = 1, value_name = "N")]
    pub udp_readers: usize,

    #[command(flatten)]
    pub web: WebFlags,
}

impl Cli {
    /// Parses the process arguments, exiting with usage on error.
    pub fn parse_args() -> Self {
        let mut cli = Self::parse();
        cli.normalize();
        cli
    }

    /// Parses `args` (the first is the program name).
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut cli = Self::try_parse_from(args)?;
        cli.normalize();
        Ok(cli)
    }

    fn normalize(&mut self) {
        if self.no_strict_match {
            self.strict_match = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_args(std::iter::once("kiln-graphite-exporter").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn defaults_match_upstream() {
        let cli = parse(&[]);
        assert_eq!(cli.listen_address, ":9109");
        assert_eq!(cli.sample_expiry, Duration::from_secs(300));
        assert!(!cli.strict_match);
        assert_eq!(cli.cache_size, 1000);
        assert_eq!(cli.cache_type, CacheType::Lru);
    }

    #[test]
    fn upstream_spellings_parse() {
        let cli = parse(&[
            "--graphite.mapping-strict-match",
            "--graphite.sample-expiry=1h30m",
            "--graphite.cache-type",
            "random",
            "--graphite.mapping-config=/etc/m.yml",
        ]);
        assert!(cli.strict_match);
        assert_eq!(cli.sample_expiry, Duration::from_secs(5400));
        assert_eq!(cli.cache_type, CacheType::Random);
        let cli = parse(&[
            "--graphite.mapping-strict-match",
            "--no-graphite.mapping-strict-match",
        ]);
        assert!(!cli.strict_match);
        assert!(parse(&["--graphite.mapping-strict-match=true"]).strict_match);
    }
}
