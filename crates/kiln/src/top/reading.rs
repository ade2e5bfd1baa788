//! What `kiln top` keeps of one scrape: the few numbers it shows, read from whichever
//! exporter answered (node, GPU, ping, or several merged behind one address).
//!
//! A scrape is recognised by its metric names, not by its port, so a target file can list
//! any mix of exporters and `kiln up`'s single process shows as one host.

use std::collections::BTreeMap;

use kiln_scraper::{Exposition, Format, Sample, parse_with};

/// The numbers of one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Present when a node exporter answered.
    pub node: Option<NodeReading>,
    /// One per GPU, in the exporter's order.
    pub gpus: Vec<GpuReading>,
    /// One per ping target.
    pub pings: Vec<PingReading>,
    /// The GPUs in brief where `gpus` is empty because their rows were not read:
    /// `kiln top --prometheus` reads the rows of the hosts near the view only, and of the
    /// others what the host list needs (see [`GpuBrief`]).
    pub gpu_brief: Option<GpuBrief>,
}

/// What the title, the sort and the filter need of a host's GPUs: how many, their
/// models, the highest utilisation and temperature.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuBrief {
    pub count: usize,
    pub models: Vec<String>,
    /// 0–1.
    pub max_utilization: Option<f64>,
    pub max_temperature_celsius: Option<f64>,
}

impl Reading {
    /// The host's GPUs, counted from their rows or else from the brief.
    pub fn gpu_count(&self) -> usize {
        match &self.gpu_brief {
            Some(brief) if self.gpus.is_empty() => brief.count,
            _ => self.gpus.len(),
        }
    }

    /// The busiest GPU's utilisation.
    pub fn max_gpu_utilization(&self) -> Option<f64> {
        self.gpu_max(|brief| brief.max_utilization, |gpu| gpu.utilization)
    }

    /// The hottest GPU's temperature.
    pub fn max_gpu_temperature(&self) -> Option<f64> {
        self.gpu_max(
            |brief| brief.max_temperature_celsius,
            |gpu| gpu.temperature_celsius,
        )
    }

    /// The highest of one figure over the GPUs' rows, or else the brief's.
    fn gpu_max(
        &self,
        brief: impl Fn(&GpuBrief) -> Option<f64>,
        row: impl Fn(&GpuReading) -> Option<f64>,
    ) -> Option<f64> {
        match &self.gpu_brief {
            Some(given) if self.gpus.is_empty() => brief(given),
            _ => self.gpus.iter().filter_map(row).reduce(f64::max),
        }
    }

    /// Whether one of the GPUs' models contains `filter` (lower case).
    pub fn has_gpu_model(&self, filter: &str) -> bool {
        let contains = |model: &str| model.to_lowercase().contains(filter);
        match &self.gpu_brief {
            Some(brief) if self.gpus.is_empty() => brief.models.iter().any(|m| contains(m)),
            _ => self.gpus.iter().any(|g| contains(&g.name)),
        }
    }
}

/// A node exporter's counters and gauges. Counters are totals; rates come from the
/// difference between two readings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeReading {
    /// CPU seconds outside idle and iowait, summed over CPUs.
    pub cpu_busy_seconds: f64,
    /// CPU seconds in every mode, summed over CPUs.
    pub cpu_total_seconds: f64,
    pub cpus: usize,
    pub load1: Option<f64>,
    pub load5: Option<f64>,
    pub load15: Option<f64>,
    pub memory_total_bytes: Option<f64>,
    pub memory_available_bytes: Option<f64>,
    /// Bytes read and written, summed over physical disks.
    pub disk_bytes: f64,
    /// Bytes received, summed over interfaces that carry traffic off the host.
    pub network_receive_bytes: f64,
    pub network_transmit_bytes: f64,
    /// The filesystem with the smallest share of space left.
    pub fullest_filesystem: Option<Filesystem>,
}

/// A filesystem's fill level.
#[derive(Debug, Clone, PartialEq)]
pub struct Filesystem {
    pub mountpoint: String,
    /// Used share, 0–1.
    pub used_ratio: f64,
}

/// One GPU.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuReading {
    /// The `gpu` label (the NVML index).
    pub index: String,
    pub uuid: String,
    /// The board, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    pub up: bool,
    /// 0–1.
    pub utilization: Option<f64>,
    pub memory_used_bytes: Option<f64>,
    pub memory_total_bytes: Option<f64>,
    pub temperature_celsius: Option<f64>,
    pub power_watts: Option<f64>,
    pub power_limit_watts: Option<f64>,
    /// Active clock-event (throttle) reasons, in the exporter's order.
    pub throttle_reasons: Vec<String>,
    /// XID errors since the exporter started.
    pub xid_errors: f64,
    /// The XID seen last, when any was.
    pub last_xid: Option<String>,
    /// The process holding the most GPU memory.
    pub top_process: Option<GpuProcess>,
}

/// A process on a GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuProcess {
    pub pid: String,
    pub name: String,
    pub memory_bytes: f64,
    /// The YARN container, Docker container or systemd unit it runs in.
    pub owner: Option<String>,
}

impl GpuProcess {
    /// Its name, or its PID when the exporter could not read the name.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            format!("pid {}", self.pid)
        } else {
            self.name.clone()
        }
    }
}

/// One ping target, as the host's ping exporter sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PingReading {
    pub target: String,
    pub rtt_seconds: Option<f64>,
    /// 0–1.
    pub loss_ratio: Option<f64>,
}

/// Used share of memory: what is not available to new work.
pub fn memory_used(node: &NodeReading) -> Option<f64> {
    let (total, available) = (node.memory_total_bytes?, node.memory_available_bytes?);
    (total > 0.0).then(|| 1.0 - available / total)
}

/// Whether a sample name is one `kiln top` reads.
fn wanted(name: &str) -> bool {
    matches!(
        name,
        "node_cpu_seconds_total"
            | "node_load1"
            | "node_load5"
            | "node_load15"
            | "node_memory_MemTotal_bytes"
            | "node_memory_MemAvailable_bytes"
            | "node_disk_read_bytes_total"
            | "node_disk_written_bytes_total"
            | "node_network_receive_bytes_total"
            | "node_network_transmit_bytes_total"
            | "node_filesystem_size_bytes"
            | "node_filesystem_avail_bytes"
            | "nvidia_gpu_info"
            | "nvidia_gpu_up"
            | "nvidia_gpu_utilization_ratio"
            | "nvidia_gpu_memory_used_bytes"
            | "nvidia_gpu_memory_total_bytes"
            | "nvidia_gpu_temperature_celsius"
            | "nvidia_gpu_power_usage_watts"
            | "nvidia_gpu_power_limit_watts"
            | "nvidia_gpu_clocks_event_reason_active"
            | "nvidia_gpu_xid_errors_total"
            | "nvidia_gpu_xid_last_timestamp_seconds"
            | "nvidia_gpu_process_memory_used_bytes"
            | "ping_rtt_mean_seconds"
            | "ping_loss_ratio"
    )
}

/// Whether a line of exposition text is a sample `kiln top` reads. Comments go: the view
/// needs no types, and samples are told apart by their own names.
fn wanted_line(line: &str) -> bool {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    wanted(&line[..end])
}

impl Reading {
    /// Reads the numbers `kiln top` shows from exposition text. Lines of other families
    /// are dropped before parsing: a node exporter's answer is mostly families the view
    /// does not show, and this is what `kiln top` spends its CPU on.
    pub fn from_text(text: &str, format: Format) -> Self {
        let mut kept = String::with_capacity(text.len() / 4);
        for line in text.lines().filter(|line| wanted_line(line)) {
            kept.push_str(line);
            kept.push('\n');
        }
        Self::from_exposition(&parse_with(&kept, format).exposition)
    }

    /// Reads the numbers `kiln top` shows from a parsed scrape.
    pub fn from_exposition(exposition: &Exposition<'_>) -> Self {
        let mut node = NodeParts::default();
        let mut gpus = GpuParts::default();
        let mut pings: BTreeMap<String, PingReading> = BTreeMap::new();
        for sample in exposition.samples() {
            let name = sample.name;
            if name.starts_with("node_") {
                node.add(sample);
            } else if name.starts_with("nvidia_gpu_") {
                gpus.add(sample);
            } else if name == "ping_rtt_mean_seconds" || name == "ping_loss_ratio" {
                let Some(target) = sample.label("target") else {
                    continue;
                };
                let ping = pings
                    .entry(target.to_owned())
                    .or_insert_with(|| PingReading {
                        target: target.to_owned(),
                        rtt_seconds: None,
                        loss_ratio: None,
                    });
                let value = finite(sample.value);
                if name == "ping_loss_ratio" {
                    ping.loss_ratio = value;
                } else {
                    ping.rtt_seconds = value;
                }
            }
        }
        Self {
            node: node.finish(),
            gpus: gpus.finish(),
            pings: pings.into_values().collect(),
            gpu_brief: None,
        }
    }

    /// Adds what `other` has and this one lacks (a host with several exporters).
    pub fn merge(&mut self, other: Self) {
        if self.node.is_none() {
            self.node = other.node;
        }
        self.gpus.extend(other.gpus);
        self.pings.extend(other.pings);
        if self.gpu_brief.is_none() {
            self.gpu_brief = other.gpu_brief;
        }
    }
}

/// NaN (a ping target with no reply yet) reads as "no value".
fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

#[derive(Default)]
struct NodeParts {
    seen: bool,
    reading: NodeReading,
    cpus: std::collections::BTreeSet<String>,
    filesystems: BTreeMap<(String, String), (Option<f64>, Option<f64>)>,
}

impl NodeParts {
    fn add(&mut self, sample: &Sample<'_>) {
        let r = &mut self.reading;
        let value = sample.value;
        match sample.name {
            "node_cpu_seconds_total" => {
                if let Some(cpu) = sample.label("cpu")
                    && !self.cpus.contains(cpu)
                {
                    self.cpus.insert(cpu.to_owned());
                }
                r.cpu_total_seconds += value;
                if !matches!(sample.label("mode"), Some("idle" | "iowait")) {
                    r.cpu_busy_seconds += value;
                }
            }
            "node_load1" => r.load1 = Some(value),
            "node_load5" => r.load5 = Some(value),
            "node_load15" => r.load15 = Some(value),
            "node_memory_MemTotal_bytes" => r.memory_total_bytes = Some(value),
            "node_memory_MemAvailable_bytes" => r.memory_available_bytes = Some(value),
            "node_disk_read_bytes_total" | "node_disk_written_bytes_total" => {
                if sample.label("device").is_some_and(is_physical_disk) {
                    r.disk_bytes += value;
                }
            }
            "node_network_receive_bytes_total" => {
                if sample.label("device").is_some_and(is_external_interface) {
                    r.network_receive_bytes += value;
                }
            }
            "node_network_transmit_bytes_total" => {
                if sample.label("device").is_some_and(is_external_interface) {
                    r.network_transmit_bytes += value;
                }
            }
            name @ ("node_filesystem_size_bytes" | "node_filesystem_avail_bytes") => {
                let (Some(device), Some(mountpoint)) =
                    (sample.label("device"), sample.label("mountpoint"))
                else {
                    return;
                };
                let entry = self
                    .filesystems
                    .entry((device.to_owned(), mountpoint.to_owned()))
                    .or_default();
                if name == "node_filesystem_size_bytes" {
                    entry.0 = Some(value);
                } else {
                    entry.1 = Some(value);
                }
            }
            _ => return,
        }
        self.seen = true;
    }

    fn finish(mut self) -> Option<NodeReading> {
        if !self.seen {
            return None;
        }
        self.reading.cpus = self.cpus.len();
        self.reading.fullest_filesystem = self
            .filesystems
            .into_iter()
            .filter_map(|((_, mountpoint), (size, avail))| {
                let (size, avail) = (size?, avail?);
                (size > 0.0).then(|| Filesystem {
                    mountpoint,
                    used_ratio: 1.0 - avail / size,
                })
            })
            .max_by(|a, b| a.used_ratio.total_cmp(&b.used_ratio));
        Some(self.reading)
    }
}

/// Device-mapper and md devices sit on top of physical disks; counting them too would
/// count each byte twice.
fn is_physical_disk(device: &str) -> bool {
    !(device.starts_with("dm-") || device.starts_with("md"))
}

/// Loopback, and the virtual interfaces of containers and bridges, would count each
/// byte that leaves the host more than once.
fn is_external_interface(device: &str) -> bool {
    const VIRTUAL: [&str; 8] = [
        "veth", "docker", "br-", "cni", "flannel", "cali", "virbr", "kube-",
    ];
    device != "lo" && !VIRTUAL.iter().any(|prefix| device.starts_with(prefix))
}

#[derive(Default)]
struct GpuParts {
    gpus: BTreeMap<String, GpuReading>,
    /// The latest timestamp per GPU with its XID.
    last_xid_at: BTreeMap<String, f64>,
}

impl GpuParts {
    fn gpu(&mut self, sample: &Sample<'_>) -> Option<&mut GpuReading> {
        let index = sample.label("gpu")?;
        if !self.gpus.contains_key(index) {
            self.gpus.insert(
                index.to_owned(),
                GpuReading {
                    index: index.to_owned(),
                    uuid: sample.label("uuid").unwrap_or_default().to_owned(),
                    ..GpuReading::default()
                },
            );
        }
        self.gpus.get_mut(index)
    }

    fn add(&mut self, sample: &Sample<'_>) {
        let name = sample.name;
        // MIG devices carry their own series; the row shows the whole board.
        if sample.label("gpu_instance_id").is_some()
            && name != "nvidia_gpu_process_memory_used_bytes"
        {
            return;
        }
        let value = sample.value;
        if name == "nvidia_gpu_xid_last_timestamp_seconds" {
            let (Some(index), Some(xid)) = (sample.label("gpu"), sample.label("xid")) else {
                return;
            };
            let latest = self.last_xid_at.entry(index.to_owned()).or_insert(f64::MIN);
            if value > *latest {
                *latest = value;
                let xid = xid.to_owned();
                if let Some(gpu) = self.gpu(sample) {
                    gpu.last_xid = Some(xid);
                }
            }
            return;
        }
        let Some(gpu) = self.gpu(sample) else {
            return;
        };
        match name {
            "nvidia_gpu_info" => gpu.name = sample.label("name").unwrap_or_default().to_owned(),
            "nvidia_gpu_up" => gpu.up = value == 1.0,
            "nvidia_gpu_utilization_ratio" => gpu.utilization = Some(value),
            "nvidia_gpu_memory_used_bytes" => gpu.memory_used_bytes = Some(value),
            "nvidia_gpu_memory_total_bytes" => gpu.memory_total_bytes = Some(value),
            "nvidia_gpu_temperature_celsius" => gpu.temperature_celsius = Some(value),
            "nvidia_gpu_power_usage_watts" => gpu.power_watts = Some(value),
            "nvidia_gpu_power_limit_watts" => gpu.power_limit_watts = Some(value),
            "nvidia_gpu_clocks_event_reason_active" if value == 1.0 => {
                if let Some(reason) = sample.label("reason") {
                    gpu.throttle_reasons.push(reason.to_owned());
                }
            }
            "nvidia_gpu_xid_errors_total" => gpu.xid_errors += value,
            "nvidia_gpu_process_memory_used_bytes"
                if gpu
                    .top_process
                    .as_ref()
                    .is_none_or(|p| value > p.memory_bytes) =>
            {
                gpu.top_process = Some(GpuProcess {
                    pid: sample.label("pid").unwrap_or_default().to_owned(),
                    name: sample.label("process_name").unwrap_or_default().to_owned(),
                    memory_bytes: value,
                    owner: ["yarn_container", "container_id", "systemd_unit"]
                        .iter()
                        .find_map(|l| sample.label(l))
                        .map(str::to_owned),
                });
            }
            _ => {}
        }
    }

    /// The GPUs by index (numerically), whatever order the exporter wrote its series in.
    fn finish(self) -> Vec<GpuReading> {
        let mut gpus: Vec<GpuReading> = self.gpus.into_values().collect();
        gpus.sort_by_key(|gpu| {
            (
                gpu.index.parse::<u32>().unwrap_or(u32::MAX),
                gpu.index.clone(),
            )
        });
        gpus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Reading {
        Reading::from_exposition(&kiln_scraper::parse(text).expect("valid exposition"))
    }

    #[test]
    fn a_node_exporter_capture_gives_every_host_number() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/node_exporter_1.5.0_metrics.txt"
        ))
        .expect("the capture is in the repository");
        let reading = read(&text);
        let node = reading.node.expect("a node exporter");
        assert!(node.cpus >= 1);
        assert!(node.cpu_total_seconds > node.cpu_busy_seconds);
        assert!(node.cpu_busy_seconds > 0.0);
        assert!(node.memory_total_bytes.unwrap() > node.memory_available_bytes.unwrap());
        assert!(node.load1.is_some());
        assert!(node.fullest_filesystem.is_some());
        assert!(reading.gpus.is_empty());
    }

    #[test]
    fn dropping_unread_families_first_changes_nothing() {
        for capture in [
            "testdata/node_exporter_1.5.0_metrics.txt",
            "crates/gpu/tests/fixtures/fleet.metrics",
        ] {
            let text =
                std::fs::read_to_string(format!("{}/../../{capture}", env!("CARGO_MANIFEST_DIR")))
                    .expect("the capture is in the repository");
            assert_eq!(
                Reading::from_text(&text, Format::Text),
                read(&text),
                "{capture}"
            );
        }
        assert!(wanted_line("node_load1 0.5"));
        assert!(!wanted_line("node_load1_extra 0.5"));
        assert!(!wanted_line("# HELP node_load15 15m load average."));
        assert!(wanted_line(
            "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1"
        ));
        assert!(!wanted_line("node_vmstat_pgfault 1"));
    }

    #[test]
    fn busy_cpu_leaves_out_idle_and_iowait() {
        let reading = read(
            "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 70\n\
             node_cpu_seconds_total{cpu=\"0\",mode=\"iowait\"} 5\n\
             node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 20\n\
             node_cpu_seconds_total{cpu=\"1\",mode=\"system\"} 5\n",
        );
        let node = reading.node.unwrap();
        assert_eq!(
            (node.cpu_busy_seconds, node.cpu_total_seconds, node.cpus),
            (25.0, 100.0, 2)
        );
    }

    #[test]
    fn traffic_is_counted_once() {
        let reading = read(
            "node_network_receive_bytes_total{device=\"lo\"} 1000\n\
             node_network_receive_bytes_total{device=\"eth0\"} 10\n\
             node_network_receive_bytes_total{device=\"docker0\"} 7\n\
             node_network_receive_bytes_total{device=\"veth12ab\"} 7\n\
             node_disk_read_bytes_total{device=\"nvme0n1\"} 4\n\
             node_disk_read_bytes_total{device=\"dm-0\"} 4\n\
             node_disk_written_bytes_total{device=\"nvme0n1\"} 2\n",
        );
        let node = reading.node.unwrap();
        assert_eq!((node.network_receive_bytes, node.disk_bytes), (10.0, 6.0));
    }

    #[test]
    fn gpu_rows_take_the_largest_process_and_the_latest_xid() {
        let reading = read(
            "nvidia_gpu_info{gpu=\"0\",uuid=\"GPU-a\",name=\"Tesla T4\"} 1\n\
             nvidia_gpu_up{gpu=\"0\",uuid=\"GPU-a\"} 1\n\
             nvidia_gpu_clocks_event_reason_active{gpu=\"0\",uuid=\"GPU-a\",reason=\"gpu_idle\"} 0\n\
             nvidia_gpu_clocks_event_reason_active{gpu=\"0\",uuid=\"GPU-a\",reason=\"sw_thermal\"} 1\n\
             nvidia_gpu_xid_errors_total{gpu=\"0\",uuid=\"GPU-a\",xid=\"79\"} 2\n\
             nvidia_gpu_xid_errors_total{gpu=\"0\",uuid=\"GPU-a\",xid=\"48\"} 1\n\
             nvidia_gpu_xid_last_timestamp_seconds{gpu=\"0\",uuid=\"GPU-a\",xid=\"79\"} 100\n\
             nvidia_gpu_xid_last_timestamp_seconds{gpu=\"0\",uuid=\"GPU-a\",xid=\"48\"} 200\n\
             nvidia_gpu_process_memory_used_bytes{gpu=\"0\",uuid=\"GPU-a\",pid=\"1\",process_name=\"a\"} 5\n\
             nvidia_gpu_process_memory_used_bytes{gpu=\"0\",uuid=\"GPU-a\",pid=\"2\",process_name=\"b\",systemd_unit=\"x.service\"} 9\n",
        );
        let gpu = &reading.gpus[0];
        assert_eq!(gpu.name, "Tesla T4");
        assert!(gpu.up);
        assert_eq!(gpu.throttle_reasons, ["sw_thermal"]);
        assert_eq!((gpu.xid_errors, gpu.last_xid.as_deref()), (3.0, Some("48")));
        let top = gpu.top_process.as_ref().unwrap();
        assert_eq!(
            (top.pid.as_str(), top.owner.as_deref()),
            ("2", Some("x.service"))
        );
    }

    #[test]
    fn ping_targets_without_replies_have_no_rtt() {
        let reading = read(
            "ping_rtt_mean_seconds{target=\"a\",ip=\"10.0.0.1\",ip_version=\"4\"} NaN\n\
             ping_loss_ratio{target=\"a\",ip=\"10.0.0.1\",ip_version=\"4\"} 1\n",
        );
        assert_eq!(
            reading.pings,
            [PingReading {
                target: "a".into(),
                rtt_seconds: None,
                loss_ratio: Some(1.0),
            }]
        );
    }
}
