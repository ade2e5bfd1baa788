//! Writes each scrape: per-target counters and the RTT histogram, czerwonk's window gauges,
//! optionally smokeping_prober's families, and the health of DNS and the sockets.
//!
//! Families are written from a snapshot of the engine's table, taken under its lock in one
//! copy, so a scrape never holds up sending or receiving.

use std::sync::{Arc, Mutex};

use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use crate::cli::{Cli, RttUnit, Toggle};
use crate::engine::{Engine, FamilyCounters, TargetSnapshot};
use crate::icmp::Family;
use crate::stats::{Stats, WindowSummary};
use crate::targets::TargetManager;

/// Which optional families are served.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Unit of the window gauges.
    pub rtt_unit: RttUnit,
    /// `ping_rtt_ms{type}`.
    pub deprecated: bool,
    /// smokeping_prober's names.
    pub smokeping: bool,
}

impl Options {
    /// The options `cli` asks for.
    pub fn from_cli(cli: &Cli) -> Self {
        Self {
            rtt_unit: cli.rtt_unit,
            deprecated: cli.deprecated == Toggle::Enable,
            smokeping: cli.smokeping,
        }
    }
}

/// The collector "ping".
pub struct PingMetrics {
    engine: Arc<Engine>,
    targets: TargetManager,
    options: Options,
    version: &'static str,
    scratch: Mutex<Vec<TargetSnapshot>>,
}

impl std::fmt::Debug for PingMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PingMetrics")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PingMetrics {
    /// Serves `engine`'s numbers and `targets`' DNS state.
    pub fn new(
        engine: Arc<Engine>,
        targets: TargetManager,
        options: Options,
        version: &'static str,
    ) -> Self {
        Self {
            engine,
            targets,
            options,
            version,
            scratch: Mutex::new(Vec::new()),
        }
    }
}

impl Collector for PingMetrics {
    fn name(&self) -> &str {
        "ping"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut snapshot = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let families = self.engine.snapshot(&mut snapshot);
        snapshot.sort_by(|a, b| {
            (a.target.name.as_str(), a.target.family)
                .cmp(&(b.target.name.as_str(), b.target.family))
        });
        let ips: Vec<String> = snapshot.iter().map(|s| s.ip.to_string()).collect();
        let rows: Vec<Row<'_>> = snapshot.iter().zip(&ips).map(Row::new).collect();

        let up = out.gauge("ping_up", "ping_exporter version");
        out.sample(up, &[("version", self.version)], 1.0);

        write_window(out, &rows, self.options);
        write_counters(out, &rows);
        if self.options.smokeping {
            write_smokeping(out, &rows, self.engine.bounds());
        } else {
            write_histogram(
                out,
                "ping_rtt_seconds",
                "Round-trip times of echo replies received in time.",
                &rows,
                native,
                self.engine.bounds(),
            );
        }
        write_health(out, &self.engine, &self.targets, families);
        Ok(())
    }
}

/// Label pairs, borrowed from the snapshot.
type Pairs<'a> = Vec<(&'a str, &'a str)>;

/// One target's snapshot with its label sets.
struct Row<'a> {
    snapshot: &'a TargetSnapshot,
    /// `target`, `ip_version`, custom labels: stays when the address changes.
    native: Pairs<'a>,
    /// `target`, `ip`, `ip_version`, custom labels: czerwonk's gauges.
    with_ip: Pairs<'a>,
    /// `host`, `ip`, custom labels: smokeping_prober's.
    smokeping: Pairs<'a>,
}

impl<'a> Row<'a> {
    fn new((snapshot, ip): (&'a TargetSnapshot, &'a String)) -> Self {
        let target = &snapshot.target;
        let name = target.name.as_str();
        let version = target.family.version();
        let custom = target.labels.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let with = |first: &[(&'a str, &'a str)]| -> Pairs<'a> {
            first.iter().copied().chain(custom.clone()).collect()
        };
        Self {
            snapshot,
            native: with(&[("target", name), ("ip_version", version)]),
            with_ip: with(&[("target", name), ("ip", ip), ("ip_version", version)]),
            smokeping: with(&[("host", name), ("ip", ip)]),
        }
    }
}

fn write_window(out: &mut MetricSet, rows: &[Row<'_>], options: Options) {
    let windows: Vec<WindowSummary> = rows.iter().map(|r| r.snapshot.stats.window()).collect();
    let answered = |w: &WindowSummary| w.total > w.lost;
    type Pick = fn(&WindowSummary) -> f64;
    let gauges: [(&str, &str, Pick); 4] = [
        ("best", "Best round trip time", |w| w.best),
        ("worst", "Worst round trip time", |w| w.worst),
        ("mean", "Mean round trip time", |w| w.mean),
        ("std_deviation", "Standard deviation", |w| w.std_deviation),
    ];
    for (unit, scale, enabled) in [
        ("seconds", 1.0, options.rtt_unit.seconds()),
        ("ms", 1000.0, options.rtt_unit.millis()),
    ] {
        if !enabled {
            continue;
        }
        let unit_words = if unit == "ms" { "millis" } else { "seconds" };
        for (stat, help, pick) in gauges {
            let family = out.gauge(
                &format!("ping_rtt_{stat}_{unit}"),
                &format!("{help} in {unit_words}"),
            );
            for (row, window) in rows.iter().zip(&windows).filter(|(_, w)| answered(w)) {
                out.sample(family, &row.with_ip, pick(window) * scale);
            }
        }
    }
    if options.deprecated {
        let family = out.gauge("ping_rtt_ms", "Round trip time in millis (deprecated)");
        let types = [("best", 0), ("worst", 1), ("mean", 2), ("std_dev", 3)];
        let mut labels = Vec::new();
        for (row, window) in rows.iter().zip(&windows).filter(|(_, w)| answered(w)) {
            for (kind, index) in types {
                labels.clear();
                labels.extend_from_slice(&row.with_ip);
                labels.push(("type", kind));
                out.sample(family, &labels, gauges[index].2(window) * 1000.0);
            }
        }
    }
    let loss = out.gauge("ping_loss_ratio", "Packet loss from 0.0 to 1.0");
    for (row, window) in rows.iter().zip(&windows).filter(|(_, w)| w.total > 0) {
        out.sample(loss, &row.with_ip, window.lost as f64 / window.total as f64);
    }
}

/// Which label set of a row a family uses.
type Labels = for<'r, 'a> fn(&'r Row<'a>) -> &'r Pairs<'a>;
/// A counter's value in a snapshot.
type Count = fn(&Stats) -> u64;

fn native<'r, 'a>(row: &'r Row<'a>) -> &'r Pairs<'a> {
    &row.native
}

fn smokeping<'r, 'a>(row: &'r Row<'a>) -> &'r Pairs<'a> {
    &row.smokeping
}

/// One counter family, a sample per row.
fn counter_family(
    out: &mut MetricSet,
    name: &str,
    help: &str,
    rows: &[Row<'_>],
    labels: Labels,
    count: Count,
) {
    let family = out.counter(name, help);
    for row in rows {
        out.sample(family, labels(row), count(&row.snapshot.stats) as f64);
    }
}

/// The latest reply's TTL, for rows that have had a reply.
fn hop_limit_family(out: &mut MetricSet, name: &str, help: &str, rows: &[Row<'_>], labels: Labels) {
    let family = out.gauge(name, help);
    for row in rows {
        if let Some(hop_limit) = row.snapshot.stats.last_hop_limit {
            out.sample(family, labels(row), f64::from(hop_limit));
        }
    }
}

fn write_counters(out: &mut MetricSet, rows: &[Row<'_>]) {
    let counters: [(&str, &str, Count); 6] = [
        (
            "ping_requests_total",
            "Echo requests sent (including those the kernel refused).",
            |s| s.requests,
        ),
        (
            "ping_responses_total",
            "Echo replies received within the timeout.",
            |s| s.responses,
        ),
        (
            "ping_timeouts_total",
            "Echo requests left unanswered within the timeout.",
            |s| s.timeouts,
        ),
        (
            "ping_late_responses_total",
            "Echo replies that came after their timeout (also counted in ping_timeouts_total).",
            |s| s.late,
        ),
        (
            "ping_duplicate_responses_total",
            "Echo replies after the first to the same request.",
            |s| s.duplicates,
        ),
        (
            "ping_send_errors_total",
            "Echo requests the kernel refused to send (no route, say).",
            |s| s.send_errors,
        ),
    ];
    for (name, help, count) in counters {
        counter_family(out, name, help, rows, native, count);
    }
    hop_limit_family(
        out,
        "ping_reply_hop_limit",
        "TTL (IPv4) or hop limit (IPv6) of the latest echo reply.",
        rows,
        native,
    );
}

/// smokeping_prober's families, names, help and labels as it writes them.
fn write_smokeping(out: &mut MetricSet, rows: &[Row<'_>], bounds: &[f64]) {
    counter_family(
        out,
        "smokeping_requests_total",
        "Number of ping requests sent",
        rows,
        smokeping,
        |s| s.requests,
    );
    write_histogram(
        out,
        "smokeping_response_duration_seconds",
        "A histogram of latencies for ping responses.",
        rows,
        smokeping,
        bounds,
    );
    counter_family(
        out,
        "smokeping_response_duplicates_total",
        "The number of duplicated response packets.",
        rows,
        smokeping,
        |s| s.duplicates,
    );
    counter_family(
        out,
        "smokeping_send_errors_total",
        "The number of errors when sending ping packets.",
        rows,
        smokeping,
        |s| s.send_errors,
    );
    hop_limit_family(
        out,
        "smokeping_response_ttl",
        "The last response Time To Live (TTL).",
        rows,
        smokeping,
    );
}

fn write_histogram(
    out: &mut MetricSet,
    name: &str,
    help: &str,
    rows: &[Row<'_>],
    labels: Labels,
    bounds: &[f64],
) {
    let family = out.histogram_family(name, help);
    let mut buckets = Vec::with_capacity(bounds.len());
    for row in rows {
        let stats = &row.snapshot.stats;
        let mut cumulative = 0;
        buckets.clear();
        for (bound, count) in bounds.iter().zip(&stats.buckets) {
            cumulative += count;
            buckets.push((*bound, cumulative));
        }
        out.histogram(
            family,
            labels(row),
            &buckets,
            stats.rtt_sum,
            stats.responses,
        );
    }
}

fn write_health(
    out: &mut MetricSet,
    engine: &Engine,
    targets: &TargetManager,
    families: [FamilyCounters; 2],
) {
    let socket_up = out.gauge(
        "ping_socket_up",
        "Whether the ICMP socket of the family is open, and of which type (dgram: unprivileged; raw: CAP_NET_RAW).",
    );
    let sockets = engine.sockets();
    for family in [Family::V4, Family::V6] {
        let (kind, up) = match sockets[family.index()] {
            Some(info) => (info.kind.label(), 1.0),
            None => ("none", 0.0),
        };
        out.sample(
            socket_up,
            &[("ip_version", family.version()), ("type", kind)],
            up,
        );
    }
    let timestamps = out.gauge(
        "ping_socket_kernel_timestamps",
        "Whether RTTs use kernel receive timestamps (1) or user-space clock reads (0).",
    );
    for family in [Family::V4, Family::V6] {
        if let Some(info) = sockets[family.index()] {
            out.sample(
                timestamps,
                &[("ip_version", family.version())],
                f64::from(u8::from(info.kernel_timestamps)),
            );
        }
    }
    let foreign = out.counter(
        "ping_foreign_packets_total",
        "Echo replies that matched no request of ours (or came after it was forgotten).",
    );
    for family in [Family::V4, Family::V6] {
        out.sample(
            foreign,
            &[("ip_version", family.version())],
            families[family.index()].foreign as f64,
        );
    }
    let receive_errors = out.counter(
        "ping_receive_errors_total",
        "Failed reads of the ICMP sockets.",
    );
    for family in [Family::V4, Family::V6] {
        out.sample(
            receive_errors,
            &[("ip_version", family.version())],
            families[family.index()].receive_errors as f64,
        );
    }

    let reloads = targets.reload_status();
    out.gauge_value(
        "ping_config_last_reload_successful",
        "Whether the last configuration reload succeeded.",
        f64::from(u8::from(reloads.ok)),
    );
    out.gauge_value(
        "ping_config_last_reload_success_timestamp_seconds",
        "When the configuration in force was loaded, in seconds since the epoch.",
        reloads.loaded_at,
    );
    out.counter_value(
        "ping_config_reload_failures_total",
        "Configuration reloads refused (a broken, empty or unreadable file); the previous configuration stays in force.",
        reloads.failures as f64,
    );

    let dns = targets
        .dns()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut names: Vec<_> = dns.iter().collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    let resolved = out.gauge(
        "ping_dns_resolved",
        "Whether the latest lookup of the target's name succeeded (the last good address stays in use when not).",
    );
    for (name, status) in &names {
        out.sample(
            resolved,
            &[("target", name.as_str())],
            f64::from(u8::from(status.resolved)),
        );
    }
    let failures = out.counter(
        "ping_dns_failures_total",
        "Failed lookups of the target's name.",
    );
    for (name, status) in &names {
        out.sample(
            failures,
            &[("target", name.as_str())],
            status.failures as f64,
        );
    }
}
