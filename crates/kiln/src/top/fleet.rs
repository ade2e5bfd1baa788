//! The hosts `kiln top` watches, the last answer of each of their exporters, and the rates
//! worked out from the counters of two successive answers.

use std::time::{Duration, Instant};

use super::prometheus::Snapshot;
use super::reading::{NodeReading, Reading};
use super::targets::HostSpec;

/// Where one answer belongs: a host, and one of its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetId {
    pub host: usize,
    pub target: usize,
}

/// One scrape's result, as the poller delivers it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub id: TargetId,
    pub outcome: Result<Reading, Failure>,
    /// When the answer was complete.
    pub at: Instant,
    pub took: Duration,
}

/// Why a target gave nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A few words for the host row: "connection refused", "timed out after 2s".
    pub short: String,
    /// The whole error, for the detail pane.
    pub full: String,
}

/// One exporter of a host.
#[derive(Debug, Clone)]
pub struct TargetState {
    pub url: String,
    pub status: Status,
    /// The last good reading; cleared when the target fails, so nothing stale is shown.
    pub reading: Reading,
    pub took: Option<Duration>,
    /// The previous node counters, for rates.
    previous: Option<(Instant, NodeReading)>,
    pub rates: Option<NodeRates>,
}

/// Whether a target (or a host) answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not asked yet, or no answer yet.
    Waiting,
    Up,
    Down(Failure),
}

/// Per-second rates from two node readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeRates {
    /// Busy share of all CPUs, 0–1.
    pub cpu_busy: f64,
    pub disk_bytes_per_second: f64,
    pub receive_bytes_per_second: f64,
    pub transmit_bytes_per_second: f64,
}

impl NodeRates {
    /// `None` when the counters went back (a reboot or exporter restart) or no time passed.
    fn between(earlier: &(Instant, NodeReading), later: &(Instant, NodeReading)) -> Option<Self> {
        let seconds = later.0.checked_duration_since(earlier.0)?.as_secs_f64();
        let (a, b) = (&earlier.1, &later.1);
        let per_second = |before: f64, after: f64| {
            let delta = after - before;
            (delta >= 0.0 && seconds > 0.0).then(|| delta / seconds)
        };
        let cpu_total = b.cpu_total_seconds - a.cpu_total_seconds;
        let cpu_busy = b.cpu_busy_seconds - a.cpu_busy_seconds;
        if cpu_total <= 0.0 || cpu_busy < 0.0 {
            return None;
        }
        Some(Self {
            cpu_busy: (cpu_busy / cpu_total).clamp(0.0, 1.0),
            disk_bytes_per_second: per_second(a.disk_bytes, b.disk_bytes)?,
            receive_bytes_per_second: per_second(a.network_receive_bytes, b.network_receive_bytes)?,
            transmit_bytes_per_second: per_second(
                a.network_transmit_bytes,
                b.network_transmit_bytes,
            )?,
        })
    }
}

/// A host and its exporters.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub targets: Vec<TargetState>,
    /// Every exporter's reading, merged when an answer comes rather than on each frame.
    merged: Reading,
}

impl Host {
    /// Up when any exporter answered; down, with the first reason, when all failed.
    pub fn status(&self) -> Status {
        if self.targets.iter().any(|t| t.status == Status::Up) {
            return Status::Up;
        }
        self.targets
            .iter()
            .find_map(|t| match &t.status {
                Status::Down(failure) => Some(Status::Down(failure.clone())),
                _ => None,
            })
            .unwrap_or(Status::Waiting)
    }

    /// Every exporter's reading, merged.
    pub fn reading(&self) -> &Reading {
        &self.merged
    }

    fn merge_readings(&mut self) {
        let mut merged = Reading::default();
        for target in &self.targets {
            merged.merge(target.reading.clone());
        }
        self.merged = merged;
    }

    /// The node exporter's rates, once two answers came.
    pub fn rates(&self) -> Option<NodeRates> {
        self.targets.iter().find_map(|t| t.rates)
    }

    /// A host as another scraper reports it (`kiln top --prometheus`): the status of each
    /// of its targets, what was read, and rates already worked out.
    pub fn reported(
        name: String,
        targets: Vec<(String, Status)>,
        reading: Reading,
        rates: Option<NodeRates>,
    ) -> Self {
        let targets = targets
            .into_iter()
            .enumerate()
            .map(|(n, (url, status))| TargetState {
                url,
                status,
                // The reading is kept once, merged; the rates sit on the first target.
                reading: Reading::default(),
                took: None,
                previous: None,
                rates: if n == 0 { rates } else { None },
            })
            .collect();
        Self {
            name,
            targets,
            merged: reading,
        }
    }

    /// Forgets what was read, with the reason: nothing stale stays on screen.
    fn fail(&mut self, failure: &Failure) {
        for target in &mut self.targets {
            target.status = Status::Down(failure.clone());
            target.reading = Reading::default();
            target.previous = None;
            target.rates = None;
        }
        self.merged = Reading::default();
    }
}

/// Every host, in the order they were given.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub hosts: Vec<Host>,
    /// What went wrong reading the whole fleet at once (`--prometheus`), for the title.
    pub problem: Option<String>,
    /// How long the last whole-fleet read took (`--prometheus`).
    pub took: Option<Duration>,
}

#[cfg(test)]
impl Fleet {
    /// Hosts with these names, each with a node exporter's URL.
    pub(crate) fn named(names: &[&str]) -> Self {
        let specs: Vec<HostSpec> = names
            .iter()
            .map(|name| HostSpec {
                name: (*name).to_owned(),
                urls: vec![format!("http://{name}:9100/metrics")],
            })
            .collect();
        Self::new(&specs)
    }
}

impl Fleet {
    pub fn new(specs: &[HostSpec]) -> Self {
        let hosts = specs
            .iter()
            .map(|spec| Host {
                name: spec.name.clone(),
                targets: spec
                    .urls
                    .iter()
                    .map(|url| TargetState {
                        url: url.clone(),
                        status: Status::Waiting,
                        reading: Reading::default(),
                        took: None,
                        previous: None,
                        rates: None,
                    })
                    .collect(),
                merged: Reading::default(),
            })
            .collect();
        Self {
            hosts,
            problem: None,
            took: None,
        }
    }

    /// Takes in one whole-fleet read: its hosts replace the last ones. When it failed, the
    /// hosts already shown stay as rows, each down with the reason, so the screen lives on.
    pub fn replace(&mut self, read: Result<Snapshot, Failure>) {
        match read {
            Ok(snapshot) => {
                self.hosts = snapshot.hosts;
                self.problem =
                    (!snapshot.problems.is_empty()).then(|| snapshot.problems.join("; "));
                self.took = Some(snapshot.took);
            }
            Err(failure) => {
                for host in &mut self.hosts {
                    host.fail(&failure);
                }
                self.problem = Some(failure.full);
                self.took = None;
            }
        }
    }

    /// Every target with its id, for the poller.
    pub fn urls(&self) -> Vec<(TargetId, String)> {
        self.hosts
            .iter()
            .enumerate()
            .flat_map(|(host, h)| {
                h.targets
                    .iter()
                    .enumerate()
                    .map(move |(target, t)| (TargetId { host, target }, t.url.clone()))
            })
            .collect()
    }

    /// Takes in one answer.
    pub fn record(&mut self, answer: Answer) {
        let Some(host) = self.hosts.get_mut(answer.id.host) else {
            return;
        };
        let Some(target) = host.targets.get_mut(answer.id.target) else {
            return;
        };
        target.took = Some(answer.took);
        match answer.outcome {
            Ok(reading) => {
                if let Some(node) = &reading.node {
                    let now = (answer.at, node.clone());
                    if let Some(previous) = &target.previous {
                        // Keep the last rate through an answer too close to the previous
                        // one to tell anything.
                        if let Some(rates) = NodeRates::between(previous, &now) {
                            target.rates = Some(rates);
                        }
                    }
                    target.previous = Some(now);
                }
                target.reading = reading;
                target.status = Status::Up;
            }
            Err(failure) => {
                target.reading = Reading::default();
                target.previous = None;
                target.rates = None;
                target.status = Status::Down(failure);
            }
        }
        host.merge_readings();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(busy: f64, total: f64, bytes: f64) -> Reading {
        Reading {
            node: Some(NodeReading {
                cpu_busy_seconds: busy,
                cpu_total_seconds: total,
                disk_bytes: bytes,
                network_receive_bytes: bytes,
                network_transmit_bytes: bytes * 2.0,
                ..NodeReading::default()
            }),
            ..Reading::default()
        }
    }

    fn fleet() -> Fleet {
        Fleet::new(&[HostSpec {
            name: "a".into(),
            urls: vec![
                "http://a:9100/metrics".into(),
                "http://a:9445/metrics".into(),
            ],
        }])
    }

    const NODE: TargetId = TargetId { host: 0, target: 0 };
    const GPU: TargetId = TargetId { host: 0, target: 1 };

    #[test]
    fn rates_come_from_two_answers_and_reset_with_the_counters() {
        let mut fleet = fleet();
        let start = Instant::now();
        let answer = |outcome, at| Answer {
            id: NODE,
            outcome,
            at,
            took: Duration::from_millis(3),
        };
        fleet.record(answer(Ok(node(10.0, 40.0, 1000.0)), start));
        assert_eq!(fleet.hosts[0].rates(), None);
        fleet.record(answer(
            Ok(node(13.0, 44.0, 3000.0)),
            start + Duration::from_secs(2),
        ));
        assert_eq!(
            fleet.hosts[0].rates(),
            Some(NodeRates {
                cpu_busy: 0.75,
                disk_bytes_per_second: 1000.0,
                receive_bytes_per_second: 1000.0,
                transmit_bytes_per_second: 2000.0,
            })
        );
        // An exporter restart: counters start again, the old rate stays until the next.
        fleet.record(answer(
            Ok(node(1.0, 4.0, 0.0)),
            start + Duration::from_secs(4),
        ));
        assert_eq!(fleet.hosts[0].rates().map(|r| r.cpu_busy), Some(0.75));
        fleet.record(answer(
            Ok(node(2.0, 8.0, 10.0)),
            start + Duration::from_secs(5),
        ));
        assert_eq!(fleet.hosts[0].rates().map(|r| r.cpu_busy), Some(0.25));
    }

    #[test]
    fn a_host_is_up_while_any_exporter_answers() {
        let mut fleet = fleet();
        assert_eq!(fleet.hosts[0].status(), Status::Waiting);
        let refused = Failure {
            short: "connection refused".into(),
            full: "request failed: connection refused".into(),
        };
        let at = Instant::now();
        let took = Duration::ZERO;
        fleet.record(Answer {
            id: GPU,
            outcome: Err(refused.clone()),
            at,
            took,
        });
        assert_eq!(fleet.hosts[0].status(), Status::Down(refused.clone()));
        fleet.record(Answer {
            id: NODE,
            outcome: Ok(node(1.0, 2.0, 0.0)),
            at,
            took,
        });
        assert_eq!(fleet.hosts[0].status(), Status::Up);
        fleet.record(Answer {
            id: NODE,
            outcome: Err(refused.clone()),
            at,
            took,
        });
        assert_eq!(fleet.hosts[0].status(), Status::Down(refused));
        assert_eq!(fleet.hosts[0].reading(), &Reading::default());
    }
}
