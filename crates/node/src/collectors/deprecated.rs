//! `ntp`, `runit` and `supervisord` (off by default): collectors node_exporter has
//! deprecated and will remove. Their switches and options are accepted so that command
//! lines written for node_exporter keep starting, but they collect nothing: each logs a
//! warning when enabled and reports `node_scrape_collector_success 0` every scrape, so
//! an alert on the success metric notices. chrony's or ntpd's own exporters, the
//! `timex` collector (on by default) and the `systemd` collector cover what they did.

use std::time::Duration;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::flags::duration;

/// The options of the three collectors, with node_exporter's names and defaults; they
/// are read by nothing.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "deprecated_options")]
pub struct Options {
    /// NTP server to query (deprecated collector; no effect).
    #[arg(
        long = "collector.ntp.server",
        value_name = "HOST",
        default_value = "127.0.0.1",
        hide = true
    )]
    pub ntp_server: String,
    /// UDP port of the NTP server (deprecated collector; no effect).
    #[arg(
        long = "collector.ntp.server-port",
        value_name = "PORT",
        default_value_t = 123,
        hide = true
    )]
    pub ntp_server_port: i64,
    /// NTP protocol version (deprecated collector; no effect).
    #[arg(
        long = "collector.ntp.protocol-version",
        value_name = "N",
        default_value_t = 4,
        hide = true
    )]
    pub ntp_protocol_version: i64,
    /// The NTP server is this host (deprecated collector; no effect).
    #[arg(long = "collector.ntp.server-is-local", hide = true)]
    pub ntp_server_is_local: bool,
    /// IP TTL of the NTP query (deprecated collector; no effect).
    #[arg(
        long = "collector.ntp.ip-ttl",
        value_name = "N",
        default_value_t = 1,
        hide = true
    )]
    pub ntp_ip_ttl: i64,
    /// Largest accumulated distance to the root (deprecated collector; no effect).
    #[arg(long = "collector.ntp.max-distance", value_name = "DURATION", default_value = "3.46608s", value_parser = duration, hide = true)]
    pub ntp_max_distance: Duration,
    /// Tolerated offset between the local clock and ntpd (deprecated collector; no effect).
    #[arg(long = "collector.ntp.local-offset-tolerance", value_name = "DURATION", default_value = "1ms", value_parser = duration, hide = true)]
    pub ntp_local_offset_tolerance: Duration,
    /// runit's service directory (deprecated collector; no effect).
    #[arg(
        long = "collector.runit.servicedir",
        value_name = "DIR",
        default_value = "/etc/service",
        hide = true
    )]
    pub runit_servicedir: String,
    /// supervisord's XML-RPC endpoint (deprecated collector; no effect).
    #[arg(
        long = "collector.supervisord.url",
        value_name = "URL",
        default_value = "http://localhost:9001/RPC2",
        hide = true
    )]
    pub supervisord_url: String,
}

/// A deprecated collector: warns once when built, reports no data every scrape.
struct Deprecated {
    name: &'static str,
}

fn build(name: &'static str) -> Result<Box<dyn Collector>, ConfigError> {
    tracing::warn!(
        collector = name,
        "This collector is deprecated in node_exporter and is a no-op in kiln-node-exporter: \
         it collects nothing and reports node_scrape_collector_success 0."
    );
    boxed(Deprecated { name })
}

pub(super) fn build_ntp(_: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    build("ntp")
}

pub(super) fn build_runit(_: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    build("runit")
}

pub(super) fn build_supervisord(_: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    build("supervisord")
}

impl Collector for Deprecated {
    fn name(&self) -> &str {
        self.name
    }

    fn collect(&self, _: &ScrapeContext, _: &mut MetricSet) -> Result<(), CollectError> {
        Err(CollectError::NoData)
    }
}

#[cfg(test)]
mod tests {
    use crate::flags::NodeFlags;

    #[test]
    fn options_take_node_exporters_values() {
        let flags = NodeFlags::parse_from([
            "kiln-node-exporter",
            "--collector.ntp.max-distance=2.5s",
            "--collector.ntp.server-port=1123",
            "--collector.runit.servicedir=/run/service",
            "--collector.supervisord.url=http://127.0.0.1:9001/RPC2",
        ]);
        let options = &flags.options.deprecated;
        assert_eq!(
            options.ntp_max_distance,
            std::time::Duration::from_millis(2500)
        );
        assert_eq!(options.ntp_server_port, 1123);
        assert_eq!(options.ntp_server, "127.0.0.1");
        assert_eq!(options.runit_servicedir, "/run/service");
    }

    #[test]
    fn a_deprecated_collector_reports_no_data() {
        let collector = super::build("ntp").unwrap();
        assert_eq!(collector.name(), "ntp");
        let mut out = kiln_registry::MetricSet::default();
        let ctx = kiln_registry::ScrapeContext::new(
            std::time::Instant::now() + std::time::Duration::from_secs(1),
        );
        assert!(matches!(
            collector.collect(&ctx, &mut out),
            Err(kiln_registry::CollectError::NoData)
        ));
    }
}
