//! `kiln top`: a live terminal view of many hosts' exporters.
//!
//! The poller scrapes every target on its own task and sends what it read; the fleet keeps
//! the last answer of each target and works out rates; the app holds what the user chose
//! to see; the renderer draws both. Only [`terminal`] touches the real terminal.

pub mod app;
pub mod fleet;
pub mod poller;
pub mod prometheus;
pub mod reading;
pub mod render;
pub mod targets;
pub mod terminal;
pub mod units;
pub mod vector;

use std::path::PathBuf;
use std::time::Duration;

use kiln_registry::duration::parse_go_duration;

/// `kiln top`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct TopFlags {
    /// Hosts or exporters: `host` (its node, GPU and ping exporters on the standard
    /// ports), `host:port`, or a URL. Without any, this host.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// More targets: a Prometheus file_sd file (.json, .yml, .yaml) or a list with one
    /// target per line.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// How often each target is scraped.
    #[arg(long, default_value = "2s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub refresh: Duration,
    /// How long one scrape may take; at most the refresh interval. With --prometheus, how
    /// long each query may take, whatever the refresh.
    #[arg(long, default_value = "2s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Scrape twice, a refresh apart, print the screen as text and exit; for scripts and
    /// terminals without a TTY.
    #[arg(long)]
    pub once: bool,
    /// The width of `--once` output.
    #[arg(long, default_value_t = 120, value_name = "COLUMNS")]
    pub width: u16,
    #[command(flatten)]
    pub prometheus: PrometheusFlags,
}

/// Reading the fleet from a Prometheus server instead of from each exporter.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PrometheusFlags {
    /// Read the fleet from this Prometheus server's query API (`http://prometheus:9090`)
    /// instead of polling every exporter: hosts are the `instance`s of its node, gpu and
    /// ping jobs.
    #[arg(long, value_name = "URL", conflicts_with_all = ["targets", "file"])]
    pub prometheus: Option<String>,
    /// CA bundle that signed the server's certificate; the system's roots when absent.
    #[arg(
        long = "prometheus.ca-file",
        value_name = "FILE",
        requires = "prometheus"
    )]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(
        long = "prometheus.cert-file",
        value_name = "FILE",
        requires = "key_file"
    )]
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(
        long = "prometheus.key-file",
        value_name = "FILE",
        requires = "cert_file"
    )]
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate. For labs only.
    #[arg(long = "prometheus.insecure-skip-verify", requires = "prometheus")]
    pub insecure_skip_verify: bool,
    /// User name for basic auth; the password comes from --prometheus.password-file.
    #[arg(
        long = "prometheus.username",
        value_name = "NAME",
        requires = "password_file"
    )]
    pub username: Option<String>,
    /// File holding the basic-auth password (a file, so it stays out of `ps`).
    #[arg(
        long = "prometheus.password-file",
        value_name = "FILE",
        requires = "username"
    )]
    pub password_file: Option<PathBuf>,
    /// File holding a bearer token sent as `Authorization: Bearer`.
    #[arg(
        long = "prometheus.bearer-token-file",
        value_name = "FILE",
        requires = "prometheus",
        conflicts_with = "username"
    )]
    pub bearer_token_file: Option<PathBuf>,
}

impl PrometheusFlags {
    /// The query API these flags point at, or `None` without `--prometheus`.
    pub fn source(
        &self,
        timeout: Duration,
    ) -> anyhow::Result<Option<prometheus::PrometheusSource>> {
        use anyhow::Context as _;
        let Some(url) = &self.prometheus else {
            return Ok(None);
        };
        let tls = kiln_scraper::ClientTls {
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
        };
        let mut client = kiln_scraper::ScrapeClient::with_tls(&tls)
            .context("cannot set up the HTTP client for --prometheus")?
            .timeout(timeout);
        let secret = |file: &PathBuf, what: &str| {
            kiln_scraper::targets::read_capped(file)
                .with_context(|| format!("cannot read the {what} in {}", file.display()))
                .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
        };
        if let (Some(username), Some(file)) = (&self.username, &self.password_file) {
            client = client.auth(kiln_scraper::Auth::Basic {
                username: username.clone(),
                password: secret(file, "password")?,
            });
        }
        if let Some(file) = &self.bearer_token_file {
            client = client.auth(kiln_scraper::Auth::Bearer(secret(file, "bearer token")?));
        }
        let source = prometheus::PrometheusSource::new(url, client)
            .with_context(|| format!("--prometheus {url}"))?;
        Ok(Some(source))
    }
}

/// How the view scrapes.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub refresh: Duration,
    pub timeout: Duration,
}

impl Settings {
    pub fn new(refresh: Duration, timeout: Duration) -> Self {
        let refresh = refresh.max(Duration::from_millis(100));
        Self {
            refresh,
            timeout: timeout.min(refresh),
        }
    }
}
