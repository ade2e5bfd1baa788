//! `kiln up`: this host's exporters in one process, on their standard ports.
//!
//! Each exporter is built by its own crate from the flags its own binary would get, so
//! `kiln up` serves exactly what the standalone exporters serve. One that cannot run here
//! (no NVIDIA driver, no ICMP permission, nothing to ping) is skipped with one line saying
//! why; the others run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use kiln_registry::bootstrap::BuildError;
use kiln_registry::{Exporter, build_info};

use crate::top::{self, targets::HostSpec};

/// What `kiln up` runs, and where.
#[derive(Debug, Clone, clap::Args)]
pub struct UpFlags {
    /// Run only these exporters (comma-separated: node, gpu, ping, graphite, jmx).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub only: Vec<String>,
    /// Do not run these exporters.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub skip: Vec<String>,
    #[arg(
        long = "node.listen-address",
        default_value = ":9100",
        value_name = "ADDRESS"
    )]
    pub node_listen: String,
    #[arg(
        long = "gpu.listen-address",
        default_value = ":9445",
        value_name = "ADDRESS"
    )]
    pub gpu_listen: String,
    /// The NVML library; without it the GPU exporter runs only where an NVIDIA driver is
    /// loaded (/proc/driver/nvidia/version exists).
    #[arg(long = "nvml.library-path", value_name = "PATH")]
    pub nvml_library: Option<PathBuf>,
    #[arg(
        long = "ping.listen-address",
        default_value = ":9427",
        value_name = "ADDRESS"
    )]
    pub ping_listen: String,
    /// Hosts to ping, besides the default gateway. Repeatable.
    #[arg(long = "ping.target", value_name = "HOST")]
    pub ping_targets: Vec<String>,
    #[arg(
        long = "graphite.listen-address",
        default_value = ":9108",
        value_name = "ADDRESS"
    )]
    pub graphite_listen: String,
    /// Where Graphite plaintext is received (TCP and UDP).
    #[arg(
        long = "graphite.ingest-address",
        default_value = ":9109",
        value_name = "ADDRESS"
    )]
    pub graphite_ingest: String,
    /// graphite_exporter mapping file, e.g. deploy/emr/spark-graphite-mapping.yml.
    #[arg(long = "graphite.mapping-config", value_name = "FILE")]
    pub graphite_mapping: Option<PathBuf>,
    #[arg(
        long = "jmx.listen-address",
        default_value = ":9404",
        value_name = "ADDRESS"
    )]
    pub jmx_listen: String,
    /// The JMX proxy's modules file; the proxy runs only when one is given.
    #[arg(long = "jmx.config-file", value_name = "FILE")]
    pub jmx_config: Option<PathBuf>,
    /// How often a summary line per exporter is printed when standard output is not a
    /// terminal (on a terminal, the live view of `kiln top` shows this host instead).
    #[arg(long = "summary-interval", default_value = "10s", value_parser = kiln_registry::duration::parse_go_duration, value_name = "DURATION")]
    pub summary_interval: Duration,
}

/// One exporter's fate.
#[derive(Debug)]
pub enum Planned {
    Run {
        name: &'static str,
        exporter: Box<Exporter>,
    },
    Skipped {
        name: &'static str,
        reason: String,
    },
}

impl UpFlags {
    fn wanted(&self, name: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|n| n == name))
            && !self.skip.iter().any(|n| n == name)
    }
}

/// Builds one exporter from `kiln up`'s flags, or says why it cannot run here.
type Builder = fn(&UpFlags) -> Result<Exporter, String>;

/// Builds every wanted exporter; must run inside the runtime that will serve them.
pub fn plan(flags: &UpFlags) -> Vec<Planned> {
    let builders: [(&'static str, Builder); 5] = [
        ("node", node),
        ("gpu", gpu),
        ("ping", ping),
        ("graphite", graphite),
        ("jmx", jmx),
    ];
    builders
        .into_iter()
        .filter(|(name, _)| flags.wanted(name))
        .map(|(name, build)| match build(flags) {
            Ok(exporter) => Planned::Run {
                name,
                exporter: Box::new(exporter),
            },
            Err(reason) => Planned::Skipped { name, reason },
        })
        .collect()
}

fn reason(error: BuildError) -> String {
    error.to_string()
}

fn node(flags: &UpFlags) -> Result<Exporter, String> {
    let cli = kiln_node::Cli::try_parse_from([
        "kiln-node-exporter",
        &format!("--web.listen-address={}", flags.node_listen),
    ])
    .map_err(|e| e.to_string())?;
    let set = kiln_node::CollectorSet::from_cli(&cli).map_err(|e| e.to_string())?;
    Ok(set.into_exporter(cli.web.clone()))
}

fn gpu(flags: &UpFlags) -> Result<Exporter, String> {
    let driver = Path::new("/proc/driver/nvidia/version");
    if flags.nvml_library.is_none() && !driver.exists() {
        return Err(format!(
            "no NVIDIA driver is loaded ({} does not exist)",
            driver.display()
        ));
    }
    // Per-process GPU memory is what the live view's "top process" shows; it is one NVML
    // call per GPU, so `kiln up` turns it on.
    let mut args = vec![
        "kiln-gpu-exporter".to_owned(),
        format!("--web.listen-address={}", flags.gpu_listen),
        "--collect.processes".to_owned(),
    ];
    if let Some(library) = &flags.nvml_library {
        args.push(format!("--nvml.library-path={}", library.display()));
    }
    let cli = kiln_gpu::Cli::try_parse_from(args).map_err(|e| e.to_string())?;
    kiln_gpu::build(&cli, build_info!("kiln-gpu-exporter")).map_err(reason)
}

fn ping(flags: &UpFlags) -> Result<Exporter, String> {
    let mut targets = flags.ping_targets.clone();
    if let Some(gateway) = default_gateway(Path::new("/proc/net/route")) {
        targets.push(gateway);
    }
    if targets.is_empty() {
        return Err("nothing to ping: no --ping.target and no default gateway".into());
    }
    let mut args = vec![
        "kiln-ping-exporter".to_owned(),
        format!("--web.listen-address={}", flags.ping_listen),
    ];
    args.extend(targets);
    let cli = kiln_ping::Cli::try_parse_from(args).map_err(|e| e.to_string())?;
    kiln_ping::build(&cli, build_info!("kiln-ping-exporter")).map_err(reason)
}

fn graphite(flags: &UpFlags) -> Result<Exporter, String> {
    let mut args = vec![
        "kiln-graphite-exporter".to_owned(),
        format!("--web.listen-address={}", flags.graphite_listen),
        format!("--graphite.listen-address={}", flags.graphite_ingest),
    ];
    if let Some(mapping) = &flags.graphite_mapping {
        args.push(format!("--graphite.mapping-config={}", mapping.display()));
    }
    let cli = kiln_graphite::Cli::try_parse_from(args).map_err(|e| e.to_string())?;
    kiln_graphite::build(&cli, build_info!("kiln-graphite-exporter")).map_err(|e| e.to_string())
}

fn jmx(flags: &UpFlags) -> Result<Exporter, String> {
    let Some(config) = &flags.jmx_config else {
        return Err("no --jmx.config-file names JVMs to read".into());
    };
    let args = [
        "kiln-jmx-exporter".to_owned(),
        format!("--web.listen-address={}", flags.jmx_listen),
        format!("--config.file={}", config.display()),
    ];
    let cli = kiln_jmx::Cli::try_parse_from(args).map_err(|e| e.to_string())?;
    kiln_jmx::build(&cli, build_info!("kiln-jmx-exporter")).map_err(reason)
}

/// The default IPv4 gateway from `/proc/net/route` (hex, little-endian), if any.
pub fn default_gateway(route: &Path) -> Option<String> {
    let text = std::fs::read_to_string(route).ok()?;
    parse_default_gateway(&text)
}

/// The gateway of the first default route in the text of `/proc/net/route`.
pub fn parse_default_gateway(text: &str) -> Option<String> {
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (destination, gateway) = (*fields.get(1)?, *fields.get(2)?);
        if destination != "00000000" || gateway == "00000000" {
            return None;
        }
        let raw = u32::from_str_radix(gateway, 16).ok()?;
        Some(std::net::Ipv4Addr::from(raw.to_le_bytes()).to_string())
    })
}

/// How `kiln up` shows what it runs once the exporters serve.
#[derive(Debug, Clone, Copy)]
pub enum Display {
    /// `kiln top` over this host's exporters, until `q`.
    Live,
    /// A summary line per exporter every interval (no terminal).
    Summaries(Duration),
}

/// Serves the planned exporters until SIGINT or SIGTERM (or `q` in the live view),
/// printing one status line per exporter first.
pub async fn run(planned: Vec<Planned>, display: Display) -> bool {
    let mut running = Vec::new();
    for planned in planned {
        match planned {
            Planned::Skipped { name, reason } => println!("{name:<9} skipped: {reason}"),
            Planned::Run { name, exporter } => match exporter.bind().await {
                Ok(server) => {
                    let address = server.local_addrs().first().copied();
                    let url =
                        address.map(|a| format!("http://{}/metrics", loopback_if_unspecified(a)));
                    println!("{name:<9} serving {}", url.as_deref().unwrap_or("?"));
                    running.push((name, url, server));
                }
                Err(error) => println!("{name:<9} skipped: cannot listen: {error}"),
            },
        }
    }
    if running.is_empty() {
        println!("nothing to run");
        return false;
    }
    let targets: Vec<(&'static str, Option<String>)> =
        running.iter().map(|(n, u, _)| (*n, u.clone())).collect();
    match display {
        Display::Live => {
            let host = HostSpec {
                name: this_host_name(),
                urls: targets.iter().filter_map(|(_, url)| url.clone()).collect(),
            };
            let every = Duration::from_secs(2);
            if let Err(error) = top::terminal::run(
                top::terminal::Feed::Exporters(vec![host]),
                top::Settings::new(every, every),
            )
            .await
            {
                eprintln!("kiln: {error:#}");
            }
        }
        Display::Summaries(interval) => print_summaries(&targets, interval).await,
    }
    for (_, _, server) in running {
        server.shutdown().await;
    }
    true
}

/// Prints a summary line per exporter every `interval` until SIGINT or SIGTERM.
async fn print_summaries(targets: &[(&'static str, Option<String>)], interval: Duration) {
    let client = kiln_scraper::ScrapeClient::new()
        .ok()
        .map(|c| c.timeout(Duration::from_secs(5)));
    let summaries = async {
        let mut ticks = tokio::time::interval(interval);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            for (name, url) in targets {
                println!("{}", summary(name, url.as_deref(), client.as_ref()).await);
            }
        }
    };
    tokio::select! {
        () = kiln_registry::signals::shutdown() => {}
        () = summaries => {}
    }
}

/// The kernel's host name, for the live view's row.
fn this_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "this host".to_owned())
}

/// `node      1234 series, 56 KB, scraped in 4.2 ms`.
async fn summary(
    name: &str,
    url: Option<&str>,
    client: Option<&kiln_scraper::ScrapeClient>,
) -> String {
    let (Some(url), Some(client)) = (url, client) else {
        return format!("{name:<9} no address");
    };
    let started = Instant::now();
    match client.scrape(url).await {
        Ok(scrape) => {
            let series = scrape.parse_lenient().exposition.samples().count();
            format!(
                "{name:<9} {series} series, {} KB, scraped in {:.1} ms",
                scrape.body.len() / 1024,
                started.elapsed().as_secs_f64() * 1000.0
            )
        }
        Err(error) => format!("{name:<9} scrape failed: {error}"),
    }
}

fn loopback_if_unspecified(address: std::net::SocketAddr) -> std::net::SocketAddr {
    let mut address = address;
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    address
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_gateway_is_read_from_proc_net_route() {
        let route = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t0000FEA9\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                     eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(parse_default_gateway(route).as_deref(), Some("192.168.1.1"));
        assert_eq!(parse_default_gateway("Iface\tDestination\tGateway\n"), None);
    }
}
