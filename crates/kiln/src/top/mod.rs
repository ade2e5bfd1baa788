//! `kiln top`: a live terminal view of many hosts' exporters.
//!
//! The poller scrapes every target on its own task and sends what it read; the fleet keeps
//! the last answer of each target and works out rates; the app holds what the user chose
//! to see; the renderer draws both. Only [`terminal`] touches the real terminal.

pub mod app;
pub mod fleet;
pub mod poller;
pub mod reading;
pub mod render;
pub mod targets;
pub mod terminal;
pub mod units;

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
    /// How long one scrape may take; at most the refresh interval.
    #[arg(long, default_value = "2s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Scrape twice, a refresh apart, print the screen as text and exit; for scripts and
    /// terminals without a TTY.
    #[arg(long)]
    pub once: bool,
    /// The width of `--once` output.
    #[arg(long, default_value_t = 120, value_name = "COLUMNS")]
    pub width: u16,
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
