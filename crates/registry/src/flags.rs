//! The flags every exporter shares, named and defaulted as in the Prometheus exporter toolkit.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Standard web and logging flags. Exporters `#[command(flatten)]` this into their own
/// clap struct and set the default listen address with [`WebFlags::listen_or`].
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Web and logging")]
pub struct WebFlags {
    /// Address on which to expose metrics and web interface. Repeatable to listen on
    /// several addresses. [default: the exporter's port on all interfaces]
    #[arg(long = "web.listen-address", value_name = "ADDRESS")]
    pub listen_addresses: Vec<String>,

    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        default_value = "/metrics",
        value_name = "PATH"
    )]
    pub telemetry_path: String,

    /// Path to a configuration file that can enable TLS or authentication (exporter-toolkit
    /// format). Re-read when it changes and on SIGHUP.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Maximum number of parallel scrape requests. Use 0 to disable.
    #[arg(long = "web.max-requests", default_value_t = 40, value_name = "N")]
    pub max_requests: usize,

    /// Exclude metrics about the exporter itself (process_*, promhttp_*, kiln_build_info).
    #[arg(long = "web.disable-exporter-metrics")]
    pub disable_exporter_metrics: bool,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info, value_name = "LEVEL")]
    pub log_level: LogLevel,

    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt, value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// Enable `/-/reload` (POST or PUT), which re-reads the configuration files.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// Check the configuration files (and the web config file) and exit: 0 when valid, 64
    /// with the file, line and key of the first problem otherwise.
    #[arg(long = "check-config")]
    pub check_config: bool,

    /// Print version information and exit.
    #[arg(long = "version")]
    pub version: bool,
}

impl WebFlags {
    /// Parses just these flags, e.g. `["--web.listen-address=127.0.0.1:0"]`; for tests and
    /// for programs that embed an exporter (`kiln up`).
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            web: WebFlags,
        }
        let argv = std::iter::once(std::ffi::OsString::from("exporter"))
            .chain(args.into_iter().map(Into::into));
        <Only as clap::Parser>::try_parse_from(argv).map(|only| only.web)
    }

    /// The listen addresses, or `default` when none was given. A bare `:port` means every
    /// interface, IPv4 and IPv6, as in Go.
    pub fn listen_or(&self, default: &str) -> Vec<String> {
        if self.listen_addresses.is_empty() {
            vec![default.to_owned()]
        } else {
            self.listen_addresses.clone()
        }
    }
}

/// Log severity threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything, including per-request detail.
    Debug,
    /// Start, stop, reloads and recovered problems.
    Info,
    /// Recovered problems only.
    Warn,
    /// Problems that need an operator.
    Error,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time=... level=info msg="..." key=value`
    Logfmt,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        web: WebFlags,
    }

    #[test]
    fn upstream_spellings_parse() {
        let cli = Cli::try_parse_from([
            "x",
            "--web.listen-address=:9100",
            "--web.listen-address",
            "127.0.0.1:9200",
            "--web.telemetry-path=/m",
            "--web.config.file=web.yml",
            "--web.max-requests=0",
            "--web.disable-exporter-metrics",
            "--log.level=debug",
            "--log.format=json",
        ])
        .unwrap();
        assert_eq!(cli.web.listen_addresses, [":9100", "127.0.0.1:9200"]);
        assert_eq!(cli.web.telemetry_path, "/m");
        assert_eq!(cli.web.max_requests, 0);
        assert!(cli.web.disable_exporter_metrics);
        assert_eq!(cli.web.log_level, LogLevel::Debug);
        assert_eq!(cli.web.log_format, LogFormat::Json);
    }

    #[test]
    fn defaults_match_the_toolkit() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.web.listen_or(":9100"), [":9100"]);
        assert_eq!(cli.web.telemetry_path, "/metrics");
        assert_eq!(cli.web.max_requests, 40);
        assert_eq!(cli.web.log_level, LogLevel::Info);
    }
}
