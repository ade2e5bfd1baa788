//! `kiln top --prometheus URL`: the fleet read from a Prometheus server that already
//! scrapes it, instead of from every exporter.
//!
//! Each refresh sends a fixed set of PromQL instant queries, one per quantity the screen
//! shows (a few plain gauges share one), whatever the number of hosts: the server does the
//! per-host work, and `kiln top` only reads vectors already reduced to what it shows
//! (`max by (instance, gpu)` rather than every label), each answer folded into the rows
//! series by series as it is read (`vector.rs`). What Prometheus spends is about
//! proportional to the series a query touches, and then to the bytes of its answer, so
//! the GPU rows are asked only for the hosts near the view ([`Detail`]) and every other
//! host's GPUs come in brief, one series a host (count and models, highest utilisation
//! and temperature: what the title, the filter and the sort need); the busy CPU share
//! comes from the shipped recording rule (`instance:node_cpu_utilisation:rate5m`) while
//! every host has it. The queries that touch the most series are sent first, so that the
//! short ones fill the server's other cores beside them.
//! Hosts are the `instance` label of the `node`, `gpu` and `ping` jobs, which the shipped
//! relabelling sets to the host alone, so a host's exporters share a row as they do when
//! polled directly. Rates are `irate`, the last two samples Prometheus holds, as direct
//! polling uses the last two answers.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln_scraper::{Fetch, ScrapeClient, ScrapeError};

use super::fleet::{Failure, Host, NodeRates, Status};
use super::reading::{
    Filesystem, GpuBrief, GpuProcess, GpuReading, NodeReading, PingReading, Reading,
};
use super::vector::{self, AnswerError, Label, Series};

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
    CpuRecorded,
    CpuIdle,
    CpuIowait,
    Cpus,
    NodeGauges,
    Fullest,
    DiskBytes,
    ReceiveBytes,
    TransmitBytes,
    GpuInfo,
    GpuModels,
    GpuBusiest,
    GpuHottest,
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

/// Which hosts a refresh reads the GPU rows of: each GPU's model, utilisation,
/// temperature, memory, power, throttle reasons, XIDs and process, which only the GPU rows
/// under each host and the detail pane show. The title, the filter (by GPU model) and the
/// sort keys (GPU utilisation and temperature) read every host's GPUs in brief, which every
/// refresh asks for every host (see [`GpuBrief`]).
#[derive(Debug, Clone, Copy)]
pub enum Detail<'a> {
    /// Every host: `--once`, which prints them all.
    All,
    /// The hosts on screen, or near enough to come into view at the next key press.
    Hosts(&'a [String]),
}

impl Detail<'_> {
    /// The extra matcher of the detail queries' selectors (`,instance=~"…"`), or `None`
    /// when no host needs them.
    fn matcher(self) -> Option<String> {
        match self {
            Self::All => Some(String::new()),
            Self::Hosts([]) => None,
            Self::Hosts(hosts) => {
                let mut alternatives = String::new();
                for (n, host) in hosts.iter().enumerate() {
                    if n > 0 {
                        alternatives.push('|');
                    }
                    alternatives.push_str(&regex_literal(host));
                }
                Some(format!(r#",instance=~"{}""#, promql_string(&alternatives)))
            }
        }
    }
}

/// `text` as a regular expression that matches it alone.
fn regex_literal(text: &str) -> String {
    let mut regex = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            regex.push('\\');
        }
        regex.push(c);
    }
    regex
}

/// `text` inside a double-quoted PromQL string.
fn promql_string(text: &str) -> String {
    text.replace('\\', r"\\").replace('"', r#"\""#)
}

/// The busy CPU share a host that `deploy/prometheus/rules/kiln-recording.yml` records: one
/// series a host where the raw busy share reads 32 (16 CPUs' idle and iowait counters).
const CPU_RECORDED: &str = "instance:node_cpu_utilisation:rate5m";

/// Where the busy CPU share comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CpuSource {
    /// The recorded series only: the last read found it for every host with a node job.
    Recorded,
    /// The counters as well, for the hosts the recorded series misses.
    Raw,
}

/// GPU gauges, read per board: MIG instances carry their own series and the row shows the
/// whole board, as in the direct reading. The UUID comes with `nvidia_gpu_info` and the
/// XID series only: left out of the eight gauges, it is a fifth less of their answers'
/// bytes for the server to write and for `kiln top` to read. `scope` narrows the selector.
fn gpu_gauge(name: &str, scope: &str) -> String {
    format!(r#"max by (instance, gpu) ({name}{{gpu_instance_id=""{scope}}})"#)
}

/// Every query of one refresh, the ones that take the server longest first: they run
/// beside the rest rather than after them, which would make the refresh as long as the
/// queue before them plus themselves.
fn queries(detail: Detail<'_>, cpu: CpuSource) -> Vec<(Quantity, String)> {
    use Quantity as Q;
    let irate = |selector: &str| format!("sum by (instance) (irate({selector}[{RATE_WINDOW}]))");
    let mut queries = Vec::new();
    if cpu == CpuSource::Raw {
        // Each CPU's counters together advance one second a second, so the busy share is
        // one less the idle and iowait shares: this reads those two modes only, a quarter
        // of a host's CPU series, where busy / total would read them all twice. Averaged
        // over the CPUs by the server, the shares need no count of the CPUs, which would
        // read every idle series a second time. Two queries, one a mode, run on two of the
        // server's cores at once; they are the longest of a refresh.
        for (quantity, mode) in [(Q::CpuIdle, "idle"), (Q::CpuIowait, "iowait")] {
            queries.push((
                quantity,
                format!(
                    r#"avg by (instance) (irate(node_cpu_seconds_total{{mode="{mode}"}}[{RATE_WINDOW}]))"#
                ),
            ));
        }
    }
    // A GPU row for each GPU of the hosts near the view (and of all with `--once`); of the
    // others, the GPU count, models, highest utilisation and temperature: what the title,
    // the filter and the sort need, in an answer of one series a host instead of one a GPU.
    let gpu_rows = |scope: &str| {
        [
            (
                Q::GpuInfo,
                format!(
                    r#"max by (instance, gpu, uuid, name) (nvidia_gpu_info{{gpu_instance_id=""{scope}}})"#
                ),
            ),
            (
                Q::GpuUtilization,
                gpu_gauge("nvidia_gpu_utilization_ratio", scope),
            ),
            (
                Q::GpuTemperature,
                gpu_gauge("nvidia_gpu_temperature_celsius", scope),
            ),
        ]
    };
    if matches!(detail, Detail::All) {
        queries.extend(gpu_rows(""));
    } else {
        queries.extend([
            (
                Q::GpuModels,
                r#"count by (instance, name) (nvidia_gpu_info{gpu_instance_id=""})"#.to_owned(),
            ),
            (
                Q::GpuBusiest,
                r#"max by (instance) (nvidia_gpu_utilization_ratio{gpu_instance_id=""})"#
                    .to_owned(),
            ),
            (
                Q::GpuHottest,
                r#"max by (instance) (nvidia_gpu_temperature_celsius{gpu_instance_id=""})"#
                    .to_owned(),
            ),
        ]);
    }
    queries.extend([
        (
            Q::Fullest,
            "topk by (instance) (1, 1 - node_filesystem_avail_bytes / (node_filesystem_size_bytes > 0))"
                .to_owned(),
        ),
        (
            Q::NodeGauges,
            r#"{__name__=~"node_load1|node_load5|node_load15|node_memory_MemTotal_bytes|node_memory_MemAvailable_bytes"}"#
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
        (Q::Up, format!(r#"up{{job=~"{HOST_JOBS}"}}"#)),
        (
            Q::ReceiveBytes,
            irate(&format!("node_network_receive_bytes_total{{{INTERFACE}}}")),
        ),
        (
            Q::TransmitBytes,
            irate(&format!("node_network_transmit_bytes_total{{{INTERFACE}}}")),
        ),
        // One series a host where the shipped recording rules run.
        (Q::CpuRecorded, format!("max by (instance) ({CPU_RECORDED})")),
        (
            Q::PingRtt,
            "max by (instance, target) (ping_rtt_mean_seconds)".to_owned(),
        ),
        (
            Q::PingLoss,
            "max by (instance, target) (ping_loss_ratio)".to_owned(),
        ),
    ]);
    let Some(scope) = detail.matcher() else {
        return queries;
    };
    let scope = scope.as_str();
    if !matches!(detail, Detail::All) {
        queries.extend(gpu_rows(scope));
    }
    queries.extend([
        // Nine reasons a GPU, the most series of any query: on screen only.
        (
            Q::GpuThrottle,
            format!(
                r#"max by (instance, gpu, reason) (nvidia_gpu_clocks_event_reason_active{{gpu_instance_id=""{scope}}} == 1)"#
            ),
        ),
        // Only the detail pane shows the count.
        (
            Q::Cpus,
            format!(r#"count by (instance) (node_cpu_seconds_total{{mode="idle"{scope}}})"#),
        ),
        (Q::GpuUp, gpu_gauge("nvidia_gpu_up", scope)),
        (Q::GpuMemoryUsed, gpu_gauge("nvidia_gpu_memory_used_bytes", scope)),
        (Q::GpuMemoryTotal, gpu_gauge("nvidia_gpu_memory_total_bytes", scope)),
        (Q::GpuPower, gpu_gauge("nvidia_gpu_power_usage_watts", scope)),
        (Q::GpuPowerLimit, gpu_gauge("nvidia_gpu_power_limit_watts", scope)),
        (
            Q::GpuTopProcess,
            format!(
                "topk by (instance, gpu) (1, nvidia_gpu_process_memory_used_bytes{{{}}})",
                scope.trim_start_matches(',')
            ),
        ),
        (
            Q::GpuXidErrors,
            format!(
                r#"sum by (instance, gpu, uuid) (nvidia_gpu_xid_errors_total{{gpu_instance_id=""{scope}}})"#
            ),
        ),
        (
            Q::GpuLastXid,
            format!(
                r#"topk by (instance, gpu) (1, nvidia_gpu_xid_last_timestamp_seconds{{gpu_instance_id=""{scope}}})"#
            ),
        ),
    ]);
    queries
}

/// How many queries are in flight at once: enough to hide the round trips and keep the
/// server's cores busy.
const IN_FLIGHT: usize = 4;

/// Bytes of answers held at once, the queries in flight together (compressed and
/// decompressed text both count while an answer is read). A 5,000-host GPU query's answer
/// is a few MB; an answer that does not fit beside the others is asked again alone once
/// they are done, and one that does not fit alone fails as too large.
pub const ANSWER_BUDGET: usize = 48 << 20;

/// A Prometheus server's query API.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    /// The server's root, e.g. `https://prometheus:9090` or one with a path prefix.
    base: String,
    client: ScrapeClient,
    budget: usize,
    /// Whether the last read found the recorded CPU share for every host with a node
    /// job: then the next one reads only it. Shared by clones, as the reads are.
    cpu_recorded: Arc<AtomicBool>,
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

/// The bytes left for answers, shared by the queries of one refresh.
#[derive(Debug)]
struct Budget {
    left: AtomicUsize,
}

impl Budget {
    fn take(&self, bytes: usize) -> bool {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.left.fetch_add(bytes, Ordering::AcqRel);
    }
}

/// An answer's text and the bytes of the budget it holds until dropped.
struct Held {
    text: String,
    bytes: usize,
    budget: Arc<Budget>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// How one query ended.
enum Asked {
    Answered(Held),
    /// The answer did not fit beside the others in flight.
    Refused,
    Failed(Failure),
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
        Ok(Self {
            base,
            client,
            budget: ANSWER_BUDGET,
            cpu_recorded: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Sets the bytes of answers held at once (see [`ANSWER_BUDGET`]).
    pub fn answer_budget(mut self, bytes: usize) -> Self {
        self.budget = bytes;
        self
    }

    /// The server's address, as shown on screen.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Reads the whole fleet, GPU detail included. Fails only when the hosts themselves
    /// cannot be read (the `up` query); any other query that fails leaves its quantity
    /// empty and is reported. Each answer is folded into the rows as it arrives and dropped.
    pub async fn read(&self) -> Result<Snapshot, Failure> {
        self.read_with(Detail::All).await
    }

    /// Reads the whole fleet, the GPU detail only of the hosts `detail` names.
    pub async fn read_with(&self, detail: Detail<'_>) -> Result<Snapshot, Failure> {
        let started = Instant::now();
        let budget = Arc::new(Budget {
            left: AtomicUsize::new(self.budget),
        });
        let cpu = if self.cpu_recorded.load(Ordering::Relaxed) {
            CpuSource::Recorded
        } else {
            CpuSource::Raw
        };
        let mut pending: VecDeque<(Quantity, String)> = queries(detail, cpu).into();
        // Answers that did not fit beside others: asked again one at a time at the end.
        let mut alone = Vec::new();
        let mut build = Builder::default();
        let mut problems = Vec::new();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < IN_FLIGHT {
                let Some((quantity, expr)) = pending.pop_front() else {
                    break;
                };
                let (source, budget) = (self.clone(), budget.clone());
                running.spawn(async move {
                    let asked = source.ask(&expr, &budget).await;
                    (quantity, expr, asked)
                });
            }
            let (quantity, expr, asked) = match running.join_next().await {
                Some(Ok(joined)) => joined,
                Some(Err(error)) => {
                    return Err(Failure {
                        short: "query task failed".into(),
                        full: error.to_string(),
                    });
                }
                None => break,
            };
            let outcome = match asked {
                Asked::Answered(held) => self.fold(&mut build, quantity, &expr, &held),
                Asked::Refused => {
                    alone.push((quantity, expr));
                    continue;
                }
                Asked::Failed(failure) => Err(failure),
            };
            match outcome {
                Ok(()) => {}
                Err(failure) if quantity == Quantity::Up => return Err(failure),
                Err(failure) => problems.push(failure.full),
            }
        }
        for (quantity, expr) in alone {
            let outcome = match self.ask(&expr, &budget).await {
                Asked::Answered(held) => self.fold(&mut build, quantity, &expr, &held),
                Asked::Refused => Err(self.too_large(&expr)),
                Asked::Failed(failure) => Err(failure),
            };
            match outcome {
                Ok(()) => {}
                Err(failure) if quantity == Quantity::Up => return Err(failure),
                Err(failure) => problems.push(failure.full),
            }
        }
        problems.sort();
        problems.dedup();
        self.cpu_recorded
            .store(build.cpu_recorded_everywhere(), Ordering::Relaxed);
        Ok(Snapshot {
            hosts: build.finish(&self.base),
            problems,
            took: started.elapsed(),
        })
    }

    /// One instant query's answer, its bytes taken from `budget` as they arrive.
    async fn ask(&self, expr: &str, budget: &Arc<Budget>) -> Asked {
        let url = format!("{}/api/v1/query?query={}", self.base, encode(expr));
        let taken = AtomicUsize::new(0);
        let admit = |bytes: usize| {
            let fits = budget.take(bytes);
            if fits {
                taken.fetch_add(bytes, Ordering::Relaxed);
            }
            fits
        };
        let answer = self
            .client
            .fetch(Fetch::get(&url, "application/json").admit(&admit))
            .await;
        // Dropped on every path, giving the bytes back.
        let mut held = Held {
            text: String::new(),
            bytes: taken.load(Ordering::Relaxed),
            budget: budget.clone(),
        };
        match answer {
            Ok(answer) => {
                held.text = answer.body;
                Asked::Answered(held)
            }
            Err(ScrapeError::Refused) => Asked::Refused,
            Err(ScrapeError::TooLarge(_)) => Asked::Failed(self.too_large(expr)),
            Err(error) => Asked::Failed(self.failure(&error, expr)),
        }
    }

    /// Folds one answer into the rows. The answer is read through once before: a
    /// malformed one adds nothing rather than part of its series.
    fn fold(
        &self,
        build: &mut Builder,
        quantity: Quantity,
        expr: &str,
        held: &Held,
    ) -> Result<(), Failure> {
        let failure = |error: AnswerError| {
            let short = match error {
                AnswerError::Failed { ref kind, .. } => format!("query failed ({kind})"),
                AnswerError::Json(_) => "not a Prometheus API answer".into(),
                AnswerError::NotVector(_) => "unexpected answer".into(),
            };
            Failure {
                short,
                full: format!("{}: query {expr}: {error}", self.base),
            }
        };
        vector::read_vector(&held.text, |_| {}).map_err(failure)?;
        vector::read_vector(&held.text, |series| build.add(quantity, series)).map_err(failure)?;
        Ok(())
    }

    fn too_large(&self, expr: &str) -> Failure {
        Failure {
            short: "answer too large".into(),
            full: format!(
                "{}: the answer to {expr} is larger than the {} kept for answers",
                self.base,
                if self.budget >= 1 << 20 {
                    format!("{} MiB", self.budget >> 20)
                } else {
                    format!("{} KiB", self.budget >> 10)
                }
            ),
        }
    }

    /// A failed request in words; the API's own error when its JSON came back.
    fn failure(&self, error: &ScrapeError, expr: &str) -> Failure {
        if let ScrapeError::Status { body, .. } = error
            && let Some((kind, reason)) = vector::api_error(body)
        {
            return Failure {
                short: format!("query failed ({kind})"),
                full: format!(
                    "{}: query {expr}: the query failed ({kind}): {reason}",
                    self.base
                ),
            };
        }
        let short = super::poller::failure(error).short;
        Failure {
            short: format!("Prometheus: {short}"),
            full: format!("{}: {error}", self.base),
        }
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
    /// The busy share the recording rule gives.
    cpu_recorded: Option<f64>,
    /// Idle seconds a second of one CPU, the host's CPUs averaged.
    cpu_idle_share: Option<f64>,
    /// The same for iowait.
    cpu_iowait_share: Option<f64>,
    disk: Option<f64>,
    receive: Option<f64>,
    transmit: Option<f64>,
    gpus: BTreeMap<String, GpuReading>,
    /// Of every host; used where `gpus` is empty (not near the view).
    gpu_brief: GpuBrief,
    pings: BTreeMap<String, PingReading>,
}

impl HostParts {
    fn node(&mut self) -> &mut NodeReading {
        self.node.get_or_insert_with(NodeReading::default)
    }

    fn gpu(&mut self, series: &Series<'_>) -> Option<&mut GpuReading> {
        let index = series.label(Label::Gpu)?;
        if !self.gpus.contains_key(index) {
            let gpu = GpuReading {
                index: index.to_owned(),
                ..GpuReading::default()
            };
            self.gpus.insert(index.to_owned(), gpu);
        }
        let gpu = self.gpus.get_mut(index)?;
        // Only some answers carry the UUID (see `gpu_gauge`).
        if gpu.uuid.is_empty()
            && let Some(uuid) = series.label(Label::Uuid)
        {
            uuid.clone_into(&mut gpu.uuid);
        }
        Some(gpu)
    }

    fn ping(&mut self, series: &Series<'_>) -> Option<&mut PingReading> {
        let target = series.label(Label::Target)?;
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
    /// Folds in one series of an answer. Answers come in any order: a series of an
    /// instance not seen yet starts its parts, and instances that no host job's `up`
    /// names are dropped at the end.
    fn add(&mut self, quantity: Quantity, series: &Series<'_>) {
        let Some(instance) = series.label(Label::Instance) else {
            return;
        };
        // One key a host a refresh: later series find it without allocating.
        if !self.hosts.contains_key(instance) {
            self.hosts.insert(instance.to_owned(), HostParts::default());
        }
        let Some(host) = self.hosts.get_mut(instance) else {
            return;
        };
        if quantity == Quantity::Up {
            let job = series.label(Label::Job).unwrap_or_default().to_owned();
            host.jobs.insert(job, series.value == Some(1.0));
            return;
        }
        add(host, quantity, series);
    }

    /// Whether every host with a node job that is up has the recorded CPU share.
    fn cpu_recorded_everywhere(&self) -> bool {
        self.hosts
            .values()
            .filter(|parts| parts.jobs.get("node") == Some(&true))
            .all(|parts| parts.cpu_recorded.is_some())
    }

    fn finish(self, base: &str) -> Vec<Host> {
        self.hosts
            .into_iter()
            // Series of instances no host job scrapes are not rows.
            .filter(|(_, parts)| !parts.jobs.is_empty())
            .map(|(name, parts)| finish_host(name, parts, base))
            .collect()
    }
}

fn add(host: &mut HostParts, quantity: Quantity, series: &Series<'_>) {
    use Quantity as Q;
    let value = series.value;
    match quantity {
        Q::Up => {}
        Q::CpuRecorded => host.cpu_recorded = value,
        Q::CpuIdle => host.cpu_idle_share = value,
        Q::CpuIowait => host.cpu_iowait_share = value,
        Q::Cpus => host.node().cpus = value.map_or(0, count),
        Q::NodeGauges => {
            let node = host.node();
            match series.label(Label::Name) {
                Some("node_load1") => node.load1 = value,
                Some("node_load5") => node.load5 = value,
                Some("node_load15") => node.load15 = value,
                Some("node_memory_MemTotal_bytes") => node.memory_total_bytes = value,
                Some("node_memory_MemAvailable_bytes") => node.memory_available_bytes = value,
                _ => {}
            }
        }
        Q::Fullest => {
            if let (Some(used_ratio), Some(mountpoint)) = (value, series.label(Label::Mountpoint)) {
                host.node().fullest_filesystem = Some(Filesystem {
                    mountpoint: mountpoint.to_owned(),
                    used_ratio,
                });
            }
        }
        Q::DiskBytes => host.disk = value,
        Q::ReceiveBytes => host.receive = value,
        Q::TransmitBytes => host.transmit = value,
        Q::GpuModels => {
            let brief = &mut host.gpu_brief;
            brief.count += value.map_or(0, count);
            if let Some(model) = series.label(Label::Model)
                && !brief.models.iter().any(|m| m == model)
            {
                brief.models.push(model.to_owned());
            }
        }
        Q::GpuBusiest => host.gpu_brief.max_utilization = value,
        Q::GpuHottest => host.gpu_brief.max_temperature_celsius = value,
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

fn add_gpu(gpu: &mut GpuReading, quantity: Quantity, series: &Series<'_>, value: Option<f64>) {
    use Quantity as Q;
    match quantity {
        Q::GpuInfo => gpu.name = series.label(Label::Model).unwrap_or_default().to_owned(),
        Q::GpuUp => gpu.up = value == Some(1.0),
        Q::GpuUtilization => gpu.utilization = value,
        Q::GpuMemoryUsed => gpu.memory_used_bytes = value,
        Q::GpuMemoryTotal => gpu.memory_total_bytes = value,
        Q::GpuTemperature => gpu.temperature_celsius = value,
        Q::GpuPower => gpu.power_watts = value,
        Q::GpuPowerLimit => gpu.power_limit_watts = value,
        Q::GpuThrottle => {
            if let Some(reason) = series.label(Label::Reason) {
                gpu.throttle_reasons.push(reason.to_owned());
            }
        }
        Q::GpuXidErrors => gpu.xid_errors = value.unwrap_or(0.0),
        Q::GpuLastXid => gpu.last_xid = series.label(Label::Xid).map(str::to_owned),
        Q::GpuTopProcess => {
            gpu.top_process = Some(GpuProcess {
                pid: series.label(Label::Pid).unwrap_or_default().to_owned(),
                name: series
                    .label(Label::ProcessName)
                    .unwrap_or_default()
                    .to_owned(),
                memory_bytes: value.unwrap_or(0.0),
                owner: [Label::YarnContainer, Label::ContainerId, Label::SystemdUnit]
                    .iter()
                    .find_map(|l| series.label(*l))
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
        cpu_recorded,
        cpu_idle_share,
        cpu_iowait_share,
        disk,
        receive,
        transmit,
        gpus,
        gpu_brief,
        pings,
    } = parts;
    // Sums over no series give no series: a host without disks reads 0 B/s, as when
    // polled directly.
    // The counters' share when they were read (every host's then, from the last two
    // samples as when polled directly); the recorded one when only it was.
    // A host without iowait series (other kernels than Linux) is busy when not idle.
    let cpu_busy = cpu_idle_share
        .map(|idle| 1.0 - idle - cpu_iowait_share.unwrap_or(0.0))
        .or(cpu_recorded);
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
    // The brief stands in for rows not read; a host without GPUs has none.
    let gpu_brief = (gpus.is_empty() && gpu_brief != GpuBrief::default()).then(|| {
        let mut brief = gpu_brief;
        brief.models.sort();
        brief
    });
    let reading = Reading {
        node,
        gpus,
        pings: pings.into_values().collect(),
        gpu_brief,
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

    /// Folds an answer whose vector holds `series`, given as `(labels JSON, value)`.
    fn add(build: &mut Builder, quantity: Quantity, series: &[(&str, &str)]) {
        let result: Vec<String> = series
            .iter()
            .map(|(labels, value)| format!(r#"{{"metric":{{{labels}}},"value":[1.5,"{value}"]}}"#))
            .collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            result.join(",")
        );
        vector::read_vector(&body, |s| build.add(quantity, s)).unwrap();
    }

    #[test]
    fn hosts_come_from_up_in_any_order_and_are_down_when_every_job_is() {
        let mut build = Builder::default();
        // Before `up`: answers fold in as they arrive.
        add(
            &mut build,
            Quantity::GpuUtilization,
            &[
                (r#""instance":"a","gpu":"1","uuid":"x""#, "0.5"),
                (r#""instance":"z","gpu":"0","uuid":"y""#, "0.5"),
            ],
        );
        add(
            &mut build,
            Quantity::Up,
            &[
                (r#""instance":"a","job":"node""#, "1"),
                (r#""instance":"a","job":"gpu""#, "0"),
                (r#""instance":"b","job":"node""#, "0"),
            ],
        );
        add(
            &mut build,
            Quantity::PingRtt,
            &[(r#""instance":"a","target":"t""#, "NaN")],
        );
        let hosts = build.finish("http://p:9090");
        assert_eq!(hosts.len(), 2, "z has no host job");
        assert_eq!(hosts[0].status(), Status::Up);
        assert_eq!(hosts[0].reading().gpus[0].utilization, Some(0.5));
        assert_eq!(hosts[0].reading().gpus[0].uuid, "x");
        assert_eq!(hosts[0].reading().pings[0].rtt_seconds, None);
        let Status::Down(failure) = hosts[1].status() else {
            panic!("b is down");
        };
        assert_eq!(failure.short, "up is 0 (node)");
    }

    #[test]
    fn the_detail_queries_name_the_hosts_near_the_view_as_literals() {
        let hosts = ["gpu-1.ec2.internal".to_owned(), r#"odd"\(name)"#.to_owned()];
        assert_eq!(
            Detail::Hosts(&hosts).matcher().unwrap(),
            r#",instance=~"gpu-1\\.ec2\\.internal|odd\"\\\\\\(name\\)""#
        );
        let detailed = |detail| {
            queries(detail, CpuSource::Raw)
                .iter()
                .filter(|(quantity, _)| *quantity == Quantity::GpuThrottle)
                .count()
        };
        assert_eq!(detailed(Detail::All), 1);
        assert_eq!(detailed(Detail::Hosts(&hosts)), 1);
        assert_eq!(detailed(Detail::Hosts(&[])), 0, "no host near the view");
        // With the recorded CPU share everywhere, the counters are not read; the CPU count
        // (shown in the detail pane) is read only near the view either way.
        for cpu in [CpuSource::Recorded, CpuSource::Raw] {
            let near = queries(Detail::Hosts(&hosts), cpu);
            assert_eq!(
                near.iter()
                    .any(|(quantity, _)| *quantity == Quantity::CpuIdle),
                cpu == CpuSource::Raw
            );
            assert!(near.iter().any(
                |(quantity, query)| *quantity == Quantity::Cpus && query.contains("instance=~")
            ));
            assert!(
                queries(Detail::Hosts(&[]), cpu)
                    .iter()
                    .all(|(quantity, _)| *quantity != Quantity::Cpus)
            );
        }
        assert!(
            queries(Detail::All, CpuSource::Raw)
                .iter()
                .all(|(_, query)| !query.contains("instance=~"))
        );
        // GPU rows near the view, and every host's GPUs in brief; every GPU row with
        // `--once`, which shows them all.
        let scoped = |detail, wanted| {
            queries(detail, CpuSource::Recorded)
                .into_iter()
                .find(|(quantity, _)| *quantity == wanted)
                .map(|(_, query)| query.contains("instance=~"))
        };
        for brief in [
            Quantity::GpuModels,
            Quantity::GpuBusiest,
            Quantity::GpuHottest,
        ] {
            assert_eq!(scoped(Detail::Hosts(&hosts), brief), Some(false));
            assert_eq!(scoped(Detail::Hosts(&[]), brief), Some(false));
            assert_eq!(scoped(Detail::All, brief), None);
        }
        for row in [
            Quantity::GpuInfo,
            Quantity::GpuUtilization,
            Quantity::GpuTemperature,
        ] {
            assert_eq!(scoped(Detail::Hosts(&hosts), row), Some(true));
            assert_eq!(scoped(Detail::Hosts(&[]), row), None);
            assert_eq!(scoped(Detail::All, row), Some(false));
        }
    }

    #[test]
    fn hosts_away_from_the_view_keep_their_gpus_in_brief() {
        let mut build = Builder::default();
        add(
            &mut build,
            Quantity::Up,
            &[
                (r#""instance":"near","job":"gpu""#, "1"),
                (r#""instance":"far","job":"gpu""#, "1"),
                (r#""instance":"none","job":"node""#, "1"),
            ],
        );
        add(
            &mut build,
            Quantity::GpuModels,
            &[
                (r#""instance":"near","name":"NVIDIA H100""#, "1"),
                (r#""instance":"far","name":"NVIDIA H100""#, "6"),
                (r#""instance":"far","name":"NVIDIA A10G""#, "2"),
            ],
        );
        add(
            &mut build,
            Quantity::GpuBusiest,
            &[
                (r#""instance":"near""#, "0.5"),
                (r#""instance":"far""#, "0.75"),
            ],
        );
        add(
            &mut build,
            Quantity::GpuHottest,
            &[
                (r#""instance":"near""#, "60"),
                (r#""instance":"far""#, "NaN"),
            ],
        );
        add(
            &mut build,
            Quantity::GpuUtilization,
            &[(r#""instance":"near","gpu":"0""#, "0.25")],
        );
        let hosts = build.finish("http://p:9090");
        let reading = |name: &str| {
            hosts
                .iter()
                .find(|host| host.name == name)
                .unwrap()
                .reading()
                .clone()
        };
        let far = reading("far");
        assert!(far.gpus.is_empty());
        assert_eq!(far.gpu_count(), 8);
        assert_eq!(far.max_gpu_utilization(), Some(0.75));
        assert_eq!(far.max_gpu_temperature(), None);
        assert!(far.has_gpu_model("a10g") && far.has_gpu_model("h100"));
        assert_eq!(
            far.gpu_brief.unwrap().models,
            ["NVIDIA A10G", "NVIDIA H100"],
            "in order"
        );
        // Near the view the rows read count, not the brief.
        let near = reading("near");
        assert_eq!(near.gpu_brief, None);
        assert_eq!(
            (near.gpu_count(), near.max_gpu_utilization()),
            (1, Some(0.25))
        );
        assert_eq!(near.max_gpu_temperature(), None);
        assert!(!near.has_gpu_model("h100"), "no model in the rows read");
        let none = reading("none");
        assert_eq!(none.gpu_count(), 0);
        assert_eq!(none.gpu_brief, None);
    }

    #[test]
    fn the_queries_that_touch_the_most_series_go_first() {
        let order = |cpu| -> Vec<Quantity> {
            queries(Detail::All, cpu)
                .into_iter()
                .map(|(quantity, _)| quantity)
                .collect()
        };
        // 16 counters a host for each of the raw CPU shares, then 8 series a host each
        // (GPU info, utilisation, temperature), ahead of the single series a host.
        let raw = order(CpuSource::Raw);
        assert_eq!(
            raw[..5],
            [
                Quantity::CpuIdle,
                Quantity::CpuIowait,
                Quantity::GpuInfo,
                Quantity::GpuUtilization,
                Quantity::GpuTemperature
            ]
        );
        let recorded = order(CpuSource::Recorded);
        assert_eq!(recorded[0], Quantity::GpuInfo);
        let near = ["h".to_owned()];
        let briefly: Vec<Quantity> = queries(Detail::Hosts(&near), CpuSource::Recorded)
            .into_iter()
            .map(|(quantity, _)| quantity)
            .collect();
        assert_eq!(
            briefly[..3],
            [
                Quantity::GpuModels,
                Quantity::GpuBusiest,
                Quantity::GpuHottest
            ]
        );
        let at = |quantity| recorded.iter().position(|q| *q == quantity).unwrap();
        assert!(at(Quantity::Fullest) < at(Quantity::CpuRecorded));
        assert!(at(Quantity::NodeGauges) < at(Quantity::PingRtt));
    }

    #[test]
    fn the_busy_cpu_share_is_one_less_the_idle_share_or_the_recorded_one() {
        let busy = |answers: &[(Quantity, &str)]| {
            let mut build = Builder::default();
            add(
                &mut build,
                Quantity::Up,
                &[(r#""instance":"a","job":"node""#, "1")],
            );
            add(
                &mut build,
                Quantity::NodeGauges,
                &[(r#""__name__":"node_load1","instance":"a""#, "1")],
            );
            for (quantity, value) in answers {
                add(&mut build, *quantity, &[(r#""instance":"a""#, value)]);
            }
            build.finish("http://p:9090")[0]
                .rates()
                .map(|rates| rates.cpu_busy)
        };
        assert_eq!(
            busy(&[(Quantity::CpuIdle, "0.25"), (Quantity::CpuIowait, "0.125")]),
            Some(0.625)
        );
        assert_eq!(
            busy(&[(Quantity::CpuIdle, "0.25")]),
            Some(0.75),
            "no iowait"
        );
        assert_eq!(busy(&[(Quantity::CpuIowait, "0.25")]), None, "no idle");
        assert_eq!(busy(&[(Quantity::CpuRecorded, "0.5")]), Some(0.5));
        // Both read (the refresh that finds the rules' series again): the counters'.
        assert_eq!(
            busy(&[(Quantity::CpuRecorded, "0.5"), (Quantity::CpuIdle, "0.25")]),
            Some(0.75)
        );
        // Counters that advanced more than a second a second, e.g. across a reset.
        assert_eq!(busy(&[(Quantity::CpuIdle, "1.5")]), Some(0.0));
        assert_eq!(busy(&[(Quantity::CpuIdle, "NaN")]), None);
    }

    #[test]
    fn queries_are_encoded_whole() {
        assert_eq!(encode(r#"up{job="a b"}"#), "up%7Bjob%3D%22a%20b%22%7D");
        assert!(PrometheusSource::new("prometheus:9090", ScrapeClient::new().unwrap()).is_err());
        let source = PrometheusSource::new("http://p:9090/", ScrapeClient::new().unwrap()).unwrap();
        assert_eq!(source.base(), "http://p:9090");
    }
}
