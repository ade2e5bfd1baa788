//! Command-line flags: czerwonk/ping_exporter's, spelled and defaulted as there, plus the
//! standard web flags and a few of our own.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use kiln_registry::WebFlags;
use kiln_registry::duration::parse_go_duration;

use crate::icmp::SocketPreference;

/// Measures ICMP round-trip time and loss to many targets and serves them to Prometheus,
/// with czerwonk/ping_exporter's flags, configuration file and metric names.
#[derive(Debug, Clone, Parser)]
#[command(name = "kiln-ping-exporter", version, disable_version_flag = true)]
#[command(
    after_help = "Targets come from the positional arguments or from --config.path; \
    changes to the file's targets apply without a restart."
)]
pub struct Cli {
    /// Hosts to ping (names or addresses), when no configuration file names them.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Path to the YAML configuration file (czerwonk/ping_exporter's format).
    #[arg(long = "config.path", value_name = "FILE")]
    pub config_path: Option<PathBuf>,

    /// Interval between ICMP echo requests to each target.
    #[arg(long = "ping.interval", default_value = "5s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub interval: Duration,

    /// How long a reply may take before the request counts as lost.
    #[arg(long = "ping.timeout", default_value = "4s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Payload bytes of each echo request (after the 8-byte ICMP header).
    #[arg(long = "ping.size", default_value_t = 56, value_name = "BYTES")]
    pub size: usize,

    /// Results per target that the window gauges (ping_rtt_*_seconds, ping_loss_ratio)
    /// summarise.
    #[arg(long = "ping.history-size", default_value_t = 10, value_name = "N")]
    pub history_size: usize,

    /// SO_MARK of the ICMP sockets, for policy routing (needs CAP_NET_ADMIN); 0 for none.
    #[arg(long = "ping.fw-mark", default_value_t = 0, value_name = "MARK")]
    pub fw_mark: u32,

    /// Which ICMP sockets to use: unprivileged datagram sockets where
    /// net.ipv4.ping_group_range allows them, raw sockets (CAP_NET_RAW) otherwise.
    #[arg(long = "ping.socket", value_enum, default_value_t = SocketPreference::Auto, value_name = "KIND")]
    pub socket: SocketPreference,

    /// How often host names are resolved again (0 resolves them once).
    #[arg(long = "dns.refresh", default_value = "1m", value_parser = parse_go_duration, value_name = "DURATION")]
    pub dns_refresh: Duration,

    /// DNS server to resolve host names with (address, optionally :port), instead of the
    /// system's resolver.
    #[arg(long = "dns.nameserver", value_name = "ADDRESS")]
    pub dns_nameserver: Option<String>,

    /// Time limit of one resolution (0: 10 seconds).
    #[arg(long = "dns.timeout", default_value = "0s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub dns_timeout: Duration,

    /// Do not ping IPv4 addresses.
    #[arg(long = "options.disable-ipv4")]
    pub disable_ipv4: bool,

    /// Do not ping IPv6 addresses.
    #[arg(long = "options.disable-ipv6")]
    pub disable_ipv6: bool,

    /// Unit of the window gauges: seconds (ping_rtt_*_seconds), milliseconds
    /// (ping_rtt_*_ms, as before ping_exporter 1.0) or both, for migrations.
    #[arg(long = "metrics.rttunit", value_enum, default_value_t = RttUnit::S, value_name = "UNIT")]
    pub rtt_unit: RttUnit,

    /// Also serve the old ping_rtt_ms{type="best|worst|mean|std_dev"}.
    #[arg(long = "metrics.deprecated", value_enum, default_value_t = Toggle::Disable, value_name = "CHOICE")]
    pub deprecated: Toggle,

    /// Serve the RTT histogram and counters under smokeping_prober's names and labels
    /// (smokeping_response_duration_seconds{host,ip}, ...) so its dashboards and rules work.
    /// The histogram is then served only under that name.
    #[arg(long = "metrics.smokeping")]
    pub smokeping: bool,

    #[command(flatten)]
    pub web: WebFlags,
}

/// `--metrics.rttunit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RttUnit {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Both.
    Both,
}

impl RttUnit {
    /// Whether the `_seconds` gauges are served.
    pub fn seconds(self) -> bool {
        matches!(self, Self::S | Self::Both)
    }

    /// Whether the `_ms` gauges are served.
    pub fn millis(self) -> bool {
        matches!(self, Self::Ms | Self::Both)
    }
}

/// An upstream enable/disable choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    /// On.
    Enable,
    /// Off.
    Disable,
}

impl Cli {
    /// Parses the process arguments; exits with usage on error.
    pub fn parse_args() -> Self {
        Self::parse()
    }

    /// Parses `args` (the first is the program name).
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_parse_from(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_args(std::iter::once("kiln-ping-exporter").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn defaults_match_upstream() {
        let cli = parse(&["8.8.8.8"]);
        assert_eq!(cli.targets, ["8.8.8.8"]);
        assert_eq!(cli.interval, Duration::from_secs(5));
        assert_eq!(cli.timeout, Duration::from_secs(4));
        assert_eq!((cli.size, cli.history_size), (56, 10));
        assert_eq!(cli.dns_refresh, Duration::from_secs(60));
        assert_eq!(cli.rtt_unit, RttUnit::S);
        assert_eq!(cli.deprecated, Toggle::Disable);
    }

    #[test]
    fn upstream_spellings_parse() {
        let cli = parse(&[
            "--ping.interval=2s",
            "--ping.timeout",
            "1500ms",
            "--ping.size=120",
            "--ping.history-size=42",
            "--dns.refresh=2m15s",
            "--dns.nameserver=1.1.1.1",
            "--options.disable-ipv6",
            "--metrics.rttunit=both",
            "--metrics.deprecated=enable",
            "--web.listen-address=:9427",
            "a",
            "b",
        ]);
        assert_eq!(cli.interval, Duration::from_secs(2));
        assert_eq!(cli.timeout, Duration::from_millis(1500));
        assert_eq!(cli.dns_refresh, Duration::from_secs(135));
        assert!(cli.disable_ipv6 && !cli.disable_ipv4);
        assert!(cli.rtt_unit.seconds() && cli.rtt_unit.millis());
        assert_eq!(cli.targets, ["a", "b"]);
    }
}
