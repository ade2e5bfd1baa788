//! Writes each scrape: per-target counters and the RTT histogram, czerwonk's window gauges,
//! optionally smokeping_prober's families, and the health of DNS and the sockets.
//!
//! Text is written straight from a snapshot of the engine's table, taken under its lock in
//! one copy, so a scrape never holds up sending or receiving.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use kiln_registry::TextSource;
use kiln_registry::metrics::{write_float, write_label_value};

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

/// The text source "ping".
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

impl TextSource for PingMetrics {
    fn name(&self) -> &str {
        "ping"
    }

    fn write_text(&self, _taken: &[&str], out: &mut String) {
        let mut snapshot = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let families = self.engine.snapshot(&mut snapshot);
        snapshot.sort_by(|a, b| {
            (a.target.name.as_str(), a.target.family)
                .cmp(&(b.target.name.as_str(), b.target.family))
        });
        let rows: Vec<Row<'_>> = snapshot.iter().map(Row::new).collect();

        header(out, "ping_up", "ping_exporter version", "gauge");
        sample(out, "ping_up", &label("version", self.version), 1.0);

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
    }
}

/// One target's snapshot with its label sets rendered.
struct Row<'a> {
    snapshot: &'a TargetSnapshot,
    /// `target`, `ip_version`, custom labels: stays when the address changes.
    native: String,
    /// `target`, `ip`, `ip_version`, custom labels: czerwonk's gauges.
    with_ip: String,
    /// `host`, `ip`, custom labels: smokeping_prober's.
    smokeping: String,
}

impl<'a> Row<'a> {
    fn new(snapshot: &'a TargetSnapshot) -> Self {
        let target = &snapshot.target;
        let mut name = String::new();
        write_label_value(&mut name, &target.name);
        let ip = snapshot.ip;
        let version = target.family.version();
        let mut custom = String::new();
        for (name, value) in &target.labels {
            custom.push(',');
            custom.push_str(&label(name, value));
        }
        Self {
            snapshot,
            native: format!("target=\"{name}\",ip_version=\"{version}\"{custom}"),
            with_ip: format!("target=\"{name}\",ip=\"{ip}\",ip_version=\"{version}\"{custom}"),
            smokeping: format!("host=\"{name}\",ip=\"{ip}\"{custom}"),
        }
    }
}

/// `# HELP` and `# TYPE` lines.
pub(crate) fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample; `labels` is the rendered label list, maybe empty.
pub(crate) fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        out.push_str(labels);
        out.push('}');
    }
    out.push(' ');
    write_float(out, value);
    out.push('\n');
}

fn counter_sample(out: &mut String, name: &str, labels: &str, value: u64) {
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}

fn write_window(out: &mut String, rows: &[Row<'_>], options: Options) {
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
            let name = format!("ping_rtt_{stat}_{unit}");
            header(out, &name, &format!("{help} in {unit_words}"), "gauge");
            for (row, window) in rows.iter().zip(&windows).filter(|(_, w)| answered(w)) {
                sample(out, &name, &row.with_ip, pick(window) * scale);
            }
        }
    }
    if options.deprecated {
        header(
            out,
            "ping_rtt_ms",
            "Round trip time in millis (deprecated)",
            "gauge",
        );
        let types = [("best", 0), ("worst", 1), ("mean", 2), ("std_dev", 3)];
        for (row, window) in rows.iter().zip(&windows).filter(|(_, w)| answered(w)) {
            for (kind, index) in types {
                let labels = format!("{},type=\"{kind}\"", row.with_ip);
                sample(
                    out,
                    "ping_rtt_ms",
                    &labels,
                    gauges[index].2(window) * 1000.0,
                );
            }
        }
    }
    header(
        out,
        "ping_loss_ratio",
        "Packet loss from 0.0 to 1.0",
        "gauge",
    );
    for (row, window) in rows.iter().zip(&windows).filter(|(_, w)| w.total > 0) {
        sample(
            out,
            "ping_loss_ratio",
            &row.with_ip,
            window.lost as f64 / window.total as f64,
        );
    }
}

/// Which label set of a row a family uses.
type Labels = for<'r> fn(&'r Row<'_>) -> &'r String;
/// A counter's value in a snapshot.
type Count = fn(&Stats) -> u64;

fn native<'r>(row: &'r Row<'_>) -> &'r String {
    &row.native
}

fn smokeping<'r>(row: &'r Row<'_>) -> &'r String {
    &row.smokeping
}

/// One counter family, a sample per row.
fn counter_family(
    out: &mut String,
    name: &str,
    help: &str,
    rows: &[Row<'_>],
    labels: Labels,
    count: Count,
) {
    header(out, name, help, "counter");
    for row in rows {
        counter_sample(out, name, labels(row), count(&row.snapshot.stats));
    }
}

/// The latest reply's TTL, for rows that have had a reply.
fn hop_limit_family(out: &mut String, name: &str, help: &str, rows: &[Row<'_>], labels: Labels) {
    header(out, name, help, "gauge");
    for row in rows {
        if let Some(hop_limit) = row.snapshot.stats.last_hop_limit {
            sample(out, name, labels(row), f64::from(hop_limit));
        }
    }
}

fn write_counters(out: &mut String, rows: &[Row<'_>]) {
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
fn write_smokeping(out: &mut String, rows: &[Row<'_>], bounds: &[f64]) {
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
    out: &mut String,
    name: &str,
    help: &str,
    rows: &[Row<'_>],
    labels: Labels,
    bounds: &[f64],
) {
    header(out, name, help, "histogram");
    let mut le = String::new();
    for row in rows {
        let labels = labels(row);
        let stats = &row.snapshot.stats;
        let mut cumulative = 0;
        for (bound, count) in bounds.iter().zip(&stats.buckets) {
            cumulative += count;
            le.clear();
            write_float(&mut le, *bound);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
            stats.responses
        );
        let _ = write!(out, "{name}_sum{{{labels}}} ");
        write_float(out, stats.rtt_sum);
        let _ = writeln!(out, "\n{name}_count{{{labels}}} {}", stats.responses);
    }
}

fn write_health(
    out: &mut String,
    engine: &Engine,
    targets: &TargetManager,
    families: [FamilyCounters; 2],
) {
    header(
        out,
        "ping_socket_up",
        "Whether the ICMP socket of the family is open, and of which type (dgram: unprivileged; raw: CAP_NET_RAW).",
        "gauge",
    );
    let sockets = engine.sockets();
    for family in [Family::V4, Family::V6] {
        let (kind, up) = match sockets[family.index()] {
            Some(info) => (info.kind.label(), 1.0),
            None => ("none", 0.0),
        };
        let labels = format!("ip_version=\"{}\",type=\"{kind}\"", family.version());
        sample(out, "ping_socket_up", &labels, up);
    }
    header(
        out,
        "ping_socket_kernel_timestamps",
        "Whether RTTs use kernel receive timestamps (1) or user-space clock reads (0).",
        "gauge",
    );
    for family in [Family::V4, Family::V6] {
        if let Some(info) = sockets[family.index()] {
            let labels = format!("ip_version=\"{}\"", family.version());
            sample(
                out,
                "ping_socket_kernel_timestamps",
                &labels,
                f64::from(u8::from(info.kernel_timestamps)),
            );
        }
    }
    header(
        out,
        "ping_foreign_packets_total",
        "Echo replies that matched no request of ours (or came after it was forgotten).",
        "counter",
    );
    for family in [Family::V4, Family::V6] {
        let labels = format!("ip_version=\"{}\"", family.version());
        counter_sample(
            out,
            "ping_foreign_packets_total",
            &labels,
            families[family.index()].foreign,
        );
    }
    header(
        out,
        "ping_receive_errors_total",
        "Failed reads of the ICMP sockets.",
        "counter",
    );
    for family in [Family::V4, Family::V6] {
        let labels = format!("ip_version=\"{}\"", family.version());
        counter_sample(
            out,
            "ping_receive_errors_total",
            &labels,
            families[family.index()].receive_errors,
        );
    }

    let dns = targets
        .dns()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut names: Vec<_> = dns.iter().collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    header(
        out,
        "ping_dns_resolved",
        "Whether the latest lookup of the target's name succeeded (the last good address stays in use when not).",
        "gauge",
    );
    for (name, status) in &names {
        let labels = label("target", name);
        sample(
            out,
            "ping_dns_resolved",
            &labels,
            f64::from(u8::from(status.resolved)),
        );
    }
    header(
        out,
        "ping_dns_failures_total",
        "Failed lookups of the target's name.",
        "counter",
    );
    for (name, status) in &names {
        let labels = label("target", name);
        counter_sample(out, "ping_dns_failures_total", &labels, status.failures);
    }
}

/// `name="value"`, the value escaped.
fn label(name: &str, value: &str) -> String {
    let mut out = format!("{name}=\"");
    write_label_value(&mut out, value);
    out.push('"');
    out
}
