//! `kiln top --prometheus URL`: the fleet read from a Prometheus server that already
//! scrapes it, instead of from every exporter.
//!
//! Each refresh sends a fixed set of PromQL instant queries, one per quantity the screen
//! shows (a few plain gauges share one), whatever the number of hosts: the server does the
//! per-host work, and `kiln top` only reads vectors already reduced to what it shows
//! (`max by (instance, gpu, uuid)` rather than every label). Hosts are the `instance`
//! label of the `node`, `gpu` and `ping` jobs, which the shipped relabelling sets to the
//! host alone, so a host's exporters share a row as they do when polled directly. Rates
//! are `irate`, the last two samples Prometheus holds, as direct polling uses the last
//! two answers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use kiln_scraper::{Fetch, ScrapeClient, ScrapeError};
use serde::Deserialize;

use super::fleet::{Failure, Host, NodeRates, Status};
use super::reading::{Filesystem, GpuProcess, GpuReading, NodeReading, PingReading, Reading};

/// The jobs whose targets are hosts, as `deploy/prometheus/prometheus.yml` names them.
pub const HOST_JOBS: &str = "node|gpu|ping";

/// How far back `irate` looks for its two samples: four scrapes at the shipped 15 s
/// interval, so one missed scrape does not blank a rate.
const RATE_WINDOW: &str = "1m";

/// Devices and interfaces the direct reading leaves out too (see `reading.rs`): stacked
/// block devices, loopback and the virtual interfaces of containers and bridges.
const DISK: &str = r#"device!~"dm-.*|md.*""#;
const INTERFACE: &str =
    r#"device!~"lo|veth.*|docker.*|br-.*|cni.*|flannel.*|cali.*|virbr.*|kube-.*""#;

/// What one query is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quantity {
    Up,
    CpuBusy,
    Cpus,
    NodeGauges,
    Fullest,
    DiskBytes,
    ReceiveBytes,
    TransmitBytes,
    GpuInfo,
    GpuUp,
    GpuUtilization,
    GpuMemoryUsed,
    GpuMemoryTotal,
    GpuTemperature,
    GpuPower,
    GpuPowerLimit,
    GpuThrottle,
    GpuXidErrors,
    GpuLastXid,
    GpuTopProcess,
    PingRtt,
    PingLoss,
}

/// GPU gauges, read per board: MIG instances carry their own series and the row shows the
/// whole board, as in the direct reading.
fn gpu_gauge(name: &str) -> String {
    format!(r#"max by (instance, gpu, uuid) ({name}{{gpu_instance_id=""}})"#)
}

/// Every query of one refresh.
fn queries() -> Vec<(Quantity, String)> {
    use Quantity as Q;
    let irate = |selector: &str| format!("sum by (instance) (irate({selector}[{RATE_WINDOW}]))");
    vec![
        (Q::Up, format!(r#"up{{job=~"{HOST_JOBS}"}}"#)),
        // Each CPU's counters together advance one second a second, so the busy share is
        // one less the idle share: this reads the idle and iowait series only, a quarter
        // of a host's CPU series, where busy / total would read them all twice.
        (
            Q::CpuBusy,
            format!(
                "1 - {} / {}",
                irate(r#"node_cpu_seconds_total{mode=~"idle|iowait"}"#),
                r#"count by (instance) (node_cpu_seconds_total{mode="idle"})"#
            ),
        ),
        (
            Q::Cpus,
            r#"count by (instance) (node_cpu_seconds_total{mode="idle"})"#.to_owned(),
        ),
        (
            Q::NodeGauges,
            r#"{__name__=~"node_load1|node_load5|node_load15|node_memory_MemTotal_bytes|node_memory_MemAvailable_bytes"}"#
                .to_owned(),
        ),
        (
            Q::Fullest,
            "topk by (instance) (1, 1 - node_filesystem_avail_bytes / (node_filesystem_size_bytes > 0))"
                .to_owned(),
        ),
        (
            Q::DiskBytes,
            format!(
                "{} + {}",
                irate(&format!("node_disk_read_bytes_total{{{DISK}}}")),
                irate(&format!("node_disk_written_bytes_total{{{DISK}}}"))
            ),
        ),
        (
            Q::ReceiveBytes,
            irate(&format!("node_network_receive_bytes_total{{{INTERFACE}}}")),
        ),
        (
            Q::TransmitBytes,
            irate(&format!("node_network_transmit_bytes_total{{{INTERFACE}}}")),
        ),
        (
            Q::GpuInfo,
            r#"max by (instance, gpu, uuid, name) (nvidia_gpu_info{gpu_instance_id=""})"#.to_owned(),
        ),
        (Q::GpuUp, gpu_gauge("nvidia_gpu_up")),
        (Q::GpuUtilization, gpu_gauge("nvidia_gpu_utilization_ratio")),
        (Q::GpuMemoryUsed, gpu_gauge("nvidia_gpu_memory_used_bytes")),
        (Q::GpuMemoryTotal, gpu_gauge("nvidia_gpu_memory_total_bytes")),
        (Q::GpuTemperature, gpu_gauge("nvidia_gpu_temperature_celsius")),
        (Q::GpuPower, gpu_gauge("nvidia_gpu_power_usage_watts")),
        (Q::GpuPowerLimit, gpu_gauge("nvidia_gpu_power_limit_watts")),
        (
            Q::GpuThrottle,
            r#"max by (instance, gpu, uuid, reason) (nvidia_gpu_clocks_event_reason_active{gpu_instance_id=""} == 1)"#
                .to_owned(),
        ),
        (
            Q::GpuXidErrors,
            r#"sum by (instance, gpu, uuid) (nvidia_gpu_xid_errors_total{gpu_instance_id=""})"#.to_owned(),
        ),
        (
            Q::GpuLastXid,
            r#"topk by (instance, gpu) (1, nvidia_gpu_xid_last_timestamp_seconds{gpu_instance_id=""})"#
                .to_owned(),
        ),
        (
            Q::GpuTopProcess,
            "topk by (instance, gpu) (1, nvidia_gpu_process_memory_used_bytes)".to_owned(),
        ),
        (
            Q::PingRtt,
            "max by (instance, target) (ping_rtt_mean_seconds)".to_owned(),
        ),
        (
            Q::PingLoss,
            "max by (instance, target) (ping_loss_ratio)".to_owned(),
        ),
    ]
}

/// How many queries are in flight at once: enough to hide the round trips, few enough
/// that the answers held in memory at one time stay small.
const IN_FLIGHT: usize = 4;

/// A Prometheus server's query API.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    /// The server's root, e.g. `https://prometheus:9090` or one with a path prefix.
    base: String,
    client: ScrapeClient,
}

/// One series of an instant vector.
#[derive(Debug, Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    /// `[time, "value"]`; the value is a string because it may be `NaN` or `+Inf`.
    value: (f64, String),
}

impl Series {
    fn label(&self, name: &str) -> Option<&str> {
        self.metric.get(name).map(String::as_str)
    }

    fn number(&self) -> Option<f64> {
        let value: f64 = self.value.1.parse().ok()?;
        value.is_finite().then_some(value)
    }
}

/// The envelope every answer of the HTTP API comes in.
#[derive(Debug, Deserialize)]
struct ApiAnswer {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Read straight into series, without an intermediate JSON tree: a fleet's answer is tens of
/// thousands of them. Every query here returns a vector.
#[derive(Debug, Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

/// What one refresh read.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub hosts: Vec<Host>,
    /// Queries that failed while others answered: what is missing, and why.
    pub problems: Vec<String>,
    /// How long the refresh took, every query included.
    pub took: Duration,
}

impl PrometheusSource {
    /// `url` is the server's root as a browser would open it (`http://prometheus:9090`).
    pub fn new(url: &str, client: ScrapeClient) -> Result<Self, ScrapeError> {
        let base = url.trim().trim_end_matches('/').to_owned();
        let host = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .unwrap_or_default();
        if host.is_empty() || host.starts_with('/') || host.contains(char::is_whitespace) {
            return Err(ScrapeError::Url {
                url: url.to_owned(),
                reason: "give the Prometheus server's http:// or https:// address".into(),
            });
        }
        Ok(Self { base, client })
    }

    /// The server's address, as shown on screen.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Reads the whole fleet. Fails only when the hosts themselves cannot be read (the
    /// `up` query); any other query that fails leaves its quantity empty and is reported.
    pub async fn read(&self) -> Result<Snapshot, Failure> {
        let started = Instant::now();
        let mut answers: Vec<(Quantity, Result<Vec<Series>, Failure>)> = Vec::new();
        let mut pending = queries().into_iter();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < IN_FLIGHT {
                let Some((quantity, expr)) = pending.next() else {
                    break;
                };
                let source = self.clone();
                running.spawn(async move { (quantity, source.query(&expr).await) });
            }
            match running.join_next().await {
                Some(Ok(answer)) => answers.push(answer),
                Some(Err(error)) => {
                    return Err(Failure {
                        short: "query task failed".into(),
                        full: error.to_string(),
                    });
                }
                None => break,
            }
        }
        let mut build = Builder::default();
        let mut problems = Vec::new();
        // `up` first: it decides which hosts exist.
        answers.sort_by_key(|(quantity, _)| *quantity != Quantity::Up);
        for (quantity, answer) in answers {
            match answer {
                Ok(series) => build.add(quantity, series),
                Err(failure) if quantity == Quantity::Up => return Err(failure),
                Err(failure) => problems.push(failure.full),
            }
        }
        problems.sort();
        problems.dedup();
        Ok(Snapshot {
            hosts: build.finish(&self.base),
            problems,
            took: started.elapsed(),
        })
    }

    /// One instant query; the vector it returns.
    async fn query(&self, expr: &str) -> Result<Vec<Series>, Failure> {
        let url = format!("{}/api/v1/query?query={}", self.base, encode(expr));
        let answer = self
            .client
            .fetch(Fetch::get(&url, "application/json"))
            .await
            .map_err(|error| self.failure(&error, expr))?;
        let parsed: ApiAnswer = serde_json::from_str(&answer.body).map_err(|error| Failure {
            short: "not a Prometheus API answer".into(),
            full: format!(
                "{}: the answer to {expr} is not the query API's JSON: {error}",
                self.base
            ),
        })?;
        let data = match parsed {
            ApiAnswer {
                status,
                data: Some(data),
                ..
            } if status == "success" => data,
            ApiAnswer {
                error_type, error, ..
            } => {
                return Err(query_error(
                    &self.base,
                    expr,
                    error_type.as_deref(),
                    error.as_deref(),
                ));
            }
        };
        if data.result_type != "vector" {
            return Err(Failure {
                short: "unexpected answer".into(),
                full: format!(
                    "{}: {expr} gave a {}, not a vector",
                    self.base, data.result_type
                ),
            });
        }
        Ok(data.result)
    }

    /// A failed request in words; the API's own error when its JSON came back.
    fn failure(&self, error: &ScrapeError, expr: &str) -> Failure {
        if let ScrapeError::Status { body, .. } = error
            && let Ok(answer) = serde_json::from_str::<ApiAnswer>(body)
            && answer.error.is_some()
        {
            return query_error(
                &self.base,
                expr,
                answer.error_type.as_deref(),
                answer.error.as_deref(),
            );
        }
        let short = super::poller::failure(error).short;
        Failure {
            short: format!("Prometheus: {short}"),
            full: format!("{}: {error}", self.base),
        }
    }
}

fn query_error(base: &str, expr: &str, kind: Option<&str>, error: Option<&str>) -> Failure {
    let kind = kind.unwrap_or("error");
    let error = error.unwrap_or("no reason given");
    Failure {
        short: format!("query failed ({kind})"),
        full: format!("{base}: query {expr} failed ({kind}): {error}"),
    }
}

/// Percent-encodes a query for a URL.
fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len() * 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// One host as the answers come in.
#[derive(Debug, Default)]
struct HostParts {
    /// `up` of each of its jobs.
    jobs: BTreeMap<String, bool>,
    node: Option<NodeReading>,
    cpu_busy: Option<f64>,
    disk: Option<f64>,
    receive: Option<f64>,
    transmit: Option<f64>,
    gpus: BTreeMap<String, GpuReading>,
    pings: BTreeMap<String, PingReading>,
}

impl HostParts {
    fn node(&mut self) -> &mut NodeReading {
        self.node.get_or_insert_with(NodeReading::default)
    }

    fn gpu(&mut self, series: &Series) -> Option<&mut GpuReading> {
        let index = series.label("gpu")?;
        Some(
            self.gpus
                .entry(index.to_owned())
                .or_insert_with(|| GpuReading {
                    index: index.to_owned(),
                    uuid: series.label("uuid").unwrap_or_default().to_owned(),
                    ..GpuReading::default()
                }),
        )
    }

    fn ping(&mut self, series: &Series) -> Option<&mut PingReading> {
        let target = series.label("target")?;
        Some(
            self.pings
                .entry(target.to_owned())
                .or_insert_with(|| PingReading {
                    target: target.to_owned(),
                    rtt_seconds: None,
                    loss_ratio: None,
                }),
        )
    }
}

/// Puts the answers together, host by host.
#[derive(Debug, Default)]
struct Builder {
    hosts: BTreeMap<String, HostParts>,
}

impl Builder {
    fn add(&mut self, quantity: Quantity, series: Vec<Series>) {
        for one in series {
            let Some(instance) = one.label("instance") else {
                continue;
            };
            if quantity == Quantity::Up {
                let job = one.label("job").unwrap_or_default().to_owned();
                let up = one.number() == Some(1.0);
                self.hosts
                    .entry(instance.to_owned())
                    .or_default()
                    .jobs
                    .insert(job, up);
                continue;
            }
            // Series of instances no host job scrapes are not rows.
            let Some(host) = self.hosts.get_mut(instance) else {
                continue;
            };
            add(host, quantity, &one);
        }
    }

    fn finish(self, base: &str) -> Vec<Host> {
        self.hosts
            .into_iter()
            .map(|(name, parts)| finish_host(name, parts, base))
            .collect()
    }
}

fn add(host: &mut HostParts, quantity: Quantity, series: &Series) {
    use Quantity as Q;
    let value = series.number();
    match quantity {
        Q::Up => {}
        Q::CpuBusy => host.cpu_busy = value,
        Q::Cpus => host.node().cpus = value.map_or(0, count),
        Q::NodeGauges => {
            let node = host.node();
            match series.label("__name__") {
                Some("node_load1") => node.load1 = value,
                Some("node_load5") => node.load5 = value,
                Some("node_load15") => node.load15 = value,
                Some("node_memory_MemTotal_bytes") => node.memory_total_bytes = value,
                Some("node_memory_MemAvailable_bytes") => node.memory_available_bytes = value,
                _ => {}
            }
        }
        Q::Fullest => {
            if let (Some(used_ratio), Some(mountpoint)) = (value, series.label("mountpoint")) {
                host.node().fullest_filesystem = Some(Filesystem {
                    mountpoint: mountpoint.to_owned(),
                    used_ratio,
                });
            }
        }
        Q::DiskBytes => host.disk = value,
        Q::ReceiveBytes => host.receive = value,
        Q::TransmitBytes => host.transmit = value,
        Q::PingRtt => {
            if let Some(ping) = host.ping(series) {
                ping.rtt_seconds = value;
            }
        }
        Q::PingLoss => {
            if let Some(ping) = host.ping(series) {
                ping.loss_ratio = value;
            }
        }
        _ => {
            if let Some(gpu) = host.gpu(series) {
                add_gpu(gpu, quantity, series, value);
            }
        }
    }
}

fn add_gpu(gpu: &mut GpuReading, quantity: Quantity, series: &Series, value: Option<f64>) {
    use Quantity as Q;
    match quantity {
        Q::GpuInfo => gpu.name = series.label("name").unwrap_or_default().to_owned(),
        Q::GpuUp => gpu.up = value == Some(1.0),
        Q::GpuUtilization => gpu.utilization = value,
        Q::GpuMemoryUsed => gpu.memory_used_bytes = value,
        Q::GpuMemoryTotal => gpu.memory_total_bytes = value,
        Q::GpuTemperature => gpu.temperature_celsius = value,
        Q::GpuPower => gpu.power_watts = value,
        Q::GpuPowerLimit => gpu.power_limit_watts = value,
        Q::GpuThrottle => {
            if let Some(reason) = series.label("reason") {
                gpu.throttle_reasons.push(reason.to_owned());
            }
        }
        Q::GpuXidErrors => gpu.xid_errors = value.unwrap_or(0.0),
        Q::GpuLastXid => gpu.last_xid = series.label("xid").map(str::to_owned),
        Q::GpuTopProcess => {
            gpu.top_process = Some(GpuProcess {
                pid: series.label("pid").unwrap_or_default().to_owned(),
                name: series.label("process_name").unwrap_or_default().to_owned(),
                memory_bytes: value.unwrap_or(0.0),
                owner: ["yarn_container", "container_id", "systemd_unit"]
                    .iter()
                    .find_map(|l| series.label(l))
                    .map(str::to_owned),
            });
        }
        _ => {}
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn count(value: f64) -> usize {
    value.max(0.0) as usize
}

fn finish_host(name: String, parts: HostParts, base: &str) -> Host {
    let HostParts {
        jobs,
        node,
        cpu_busy,
        disk,
        receive,
        transmit,
        gpus,
        pings,
    } = parts;
    // Sums over no series give no series: a host without disks reads 0 B/s, as when
    // polled directly.
    let rates = node.as_ref().and(cpu_busy).map(|cpu_busy| NodeRates {
        cpu_busy: cpu_busy.clamp(0.0, 1.0),
        disk_bytes_per_second: disk.unwrap_or(0.0),
        receive_bytes_per_second: receive.unwrap_or(0.0),
        transmit_bytes_per_second: transmit.unwrap_or(0.0),
    });
    let mut gpus: Vec<GpuReading> = gpus.into_values().collect();
    gpus.sort_by_key(|gpu| {
        (
            gpu.index.parse::<u32>().unwrap_or(u32::MAX),
            gpu.index.clone(),
        )
    });
    for gpu in &mut gpus {
        gpu.throttle_reasons.sort();
    }
    let reading = Reading {
        node,
        gpus,
        pings: pings.into_values().collect(),
    };
    let targets = jobs
        .into_iter()
        .map(|(job, up)| {
            let status = if up {
                Status::Up
            } else {
                Status::Down(Failure {
                    short: format!("up is 0 ({job})"),
                    full: format!("Prometheus reports up 0 for job {job}: its last scrape failed"),
                })
            };
            (format!("{base} job={job} instance={name}"), status)
        })
        .collect();
    Host::reported(name, targets, reading, rates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)], value: &str) -> Series {
        Series {
            metric: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value: (1.0, value.to_owned()),
        }
    }

    #[test]
    fn hosts_come_from_up_and_are_down_when_every_job_is() {
        let mut build = Builder::default();
        build.add(
            Quantity::Up,
            vec![
                series(&[("instance", "a"), ("job", "node")], "1"),
                series(&[("instance", "a"), ("job", "gpu")], "0"),
                series(&[("instance", "b"), ("job", "node")], "0"),
            ],
        );
        build.add(
            Quantity::GpuUtilization,
            vec![
                series(&[("instance", "a"), ("gpu", "1"), ("uuid", "x")], "0.5"),
                series(&[("instance", "z"), ("gpu", "0"), ("uuid", "y")], "0.5"),
            ],
        );
        build.add(
            Quantity::PingRtt,
            vec![series(&[("instance", "a"), ("target", "t")], "NaN")],
        );
        let hosts = build.finish("http://p:9090");
        assert_eq!(hosts.len(), 2, "z has no host job");
        assert_eq!(hosts[0].status(), Status::Up);
        assert_eq!(hosts[0].reading().gpus[0].utilization, Some(0.5));
        assert_eq!(hosts[0].reading().pings[0].rtt_seconds, None);
        let Status::Down(failure) = hosts[1].status() else {
            panic!("b is down");
        };
        assert_eq!(failure.short, "up is 0 (node)");
    }

    #[test]
    fn queries_are_encoded_whole() {
        assert_eq!(encode(r#"up{job="a b"}"#), "up%7Bjob%3D%22a%20b%22%7D");
        assert!(PrometheusSource::new("prometheus:9090", ScrapeClient::new().unwrap()).is_err());
        let source = PrometheusSource::new("http://p:9090/", ScrapeClient::new().unwrap()).unwrap();
        assert_eq!(source.base(), "http://p:9090");
    }
}
