//! Draws the fleet: a title, one row per host with one row under it per GPU, an optional
//! detail pane for the selected host, a footer of keys, and the help pane on top.
//!
//! Everything is drawn from [`Fleet`] and [`App`] alone, so the same code paints the
//! terminal, `--once` output, and the test backend.

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use super::app::{App, KEYS};
use super::fleet::{Fleet, Host, NodeRates, Status};
use super::reading::{GpuReading, PingReading, Reading, memory_used};
use super::units::{bar, bytes, duration, fit, millis, percent, rate};

/// The whole screen.
#[derive(Debug)]
pub struct Screen<'a> {
    pub fleet: &'a Fleet,
    pub app: &'a App,
    pub refresh: Duration,
    /// Whether keys work: draws the selection and the footer of keys.
    pub interactive: bool,
}

/// One visible host with what was read from it, worked out once per frame.
struct Shown<'a> {
    host: &'a Host,
    status: Status,
    reading: &'a Reading,
    rates: Option<NodeRates>,
}

impl<'a> Shown<'a> {
    fn new(host: &'a Host) -> Self {
        Self {
            host,
            status: host.status(),
            reading: host.reading(),
            rates: host.rates(),
        }
    }
}

const BAR: usize = 8;
const GPU_NAME: usize = 14;

impl Widget for Screen<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let visible = self.app.visible(self.fleet);
        let shown: Vec<Shown<'_>> = visible
            .iter()
            .map(|&i| Shown::new(&self.fleet.hosts[i]))
            .collect();
        let selected = self.app.selected.min(shown.len().saturating_sub(1));
        let detail = self.app.detail.then(|| shown.get(selected)).flatten();
        let detail_lines = detail.map(detail_lines).unwrap_or_default();
        let detail_height = if detail_lines.is_empty() {
            0
        } else {
            let inner = usize::from(area.width.saturating_sub(2)).max(1);
            let rows: usize = detail_lines
                .iter()
                .map(|line| line.width().div_ceil(inner).max(1))
                .sum();
            let wanted = u16::try_from(rows + 2).unwrap_or(u16::MAX);
            wanted.min(area.height.saturating_mul(11) / 20)
        };
        let [title, header, list, pane, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(detail_height),
            Constraint::Length(1),
        ])
        .areas(area);

        Paragraph::new(self.title(&shown)).render(title, buf);
        let name_width = name_width(&shown);
        Paragraph::new(header_line(name_width))
            .style(Style::new().add_modifier(Modifier::BOLD))
            .render(header, buf);
        render_list(&shown, selected, self.interactive, name_width, list, buf);
        if let Some(host) = detail {
            Paragraph::new(detail_lines)
                .wrap(Wrap { trim: false })
                .block(Block::bordered().title(format!(" {} ", host.host.name)))
                .render(pane, buf);
        }
        if self.interactive {
            Paragraph::new(self.footer()).render(footer, buf);
        }
        if self.app.help {
            render_help(area, buf);
        }
    }
}

impl Screen<'_> {
    fn title(&self, shown: &[Shown<'_>]) -> Line<'static> {
        let total = self.fleet.hosts.len();
        let up = self
            .fleet
            .hosts
            .iter()
            .filter(|h| h.status() == Status::Up)
            .count();
        let down = self
            .fleet
            .hosts
            .iter()
            .filter(|h| matches!(h.status(), Status::Down(_)))
            .count();
        let gpus: usize = shown.iter().map(|s| s.reading.gpu_count()).sum();
        let mut spans = vec![
            Span::styled("kiln top", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!("  {}: {up} up", counted(total, "host"))),
        ];
        if down > 0 {
            spans.push(Span::raw(", "));
            spans.push(Span::styled(
                format!("{down} down"),
                Style::new().fg(Color::Red),
            ));
        }
        if gpus > 0 {
            spans.push(Span::raw(format!("  ·  {}", counted(gpus, "GPU"))));
        }
        spans.push(Span::raw(format!(
            "  ·  every {}  ·  sorted by {}{}",
            duration(self.refresh),
            self.app.sort.label(),
            if self.app.reversed { ", reversed" } else { "" },
        )));
        if shown.len() < total {
            spans.push(Span::raw(format!("  ·  {} shown", shown.len())));
        }
        if let Some(took) = self.fleet.took {
            let took = if took < Duration::from_secs(1) {
                format!("{} ms", took.as_millis())
            } else {
                format!("{:.1} s", took.as_secs_f64())
            };
            spans.push(Span::raw(format!("  ·  read in {took}")));
        }
        if let Some(problem) = &self.fleet.problem {
            spans.push(Span::styled(
                format!("  ·  {problem}"),
                Style::new().fg(Color::Red),
            ));
        }
        Line::from(spans)
    }

    fn footer(&self) -> Line<'static> {
        let dim = Style::new().fg(Color::DarkGray);
        if self.app.editing_filter {
            return Line::from(vec![
                Span::styled("filter: ", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(format!("{}█", self.app.filter)),
                Span::styled("   Enter keeps it, Esc clears it", dim),
            ]);
        }
        let mut spans = Vec::new();
        if !self.app.filter.is_empty() {
            spans.push(Span::styled(
                format!("filter: {}", self.app.filter),
                Style::new().fg(Color::Yellow),
            ));
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(
            "↑↓ select  Enter details  / filter  s sort  r reverse  ? help  q quit",
            dim,
        ));
        Line::from(spans)
    }
}

fn name_width(shown: &[Shown<'_>]) -> usize {
    shown
        .iter()
        .map(|s| s.host.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(8, 24)
}

fn header_line(name_width: usize) -> String {
    format!(
        "{:<name_width$}  {:>4}  {:>4}  {:>5}  {:>10}  {:>10}  {:>10}  {:>14}  GPUS",
        "HOST", "CPU", "MEM", "LOAD", "DISK", "NET IN", "NET OUT", "PING"
    )
}

/// Host rows with their GPU rows, scrolled so the selected host is in view.
fn render_list(
    shown: &[Shown<'_>],
    selected: usize,
    interactive: bool,
    name_width: usize,
    area: Rect,
    buf: &mut Buffer,
) {
    let mut lines = Vec::new();
    let mut selected_span = (0, 0);
    for (index, host) in shown.iter().enumerate() {
        let first = lines.len();
        let mut line = host_line(host, name_width);
        if interactive && index == selected {
            line = line.patch_style(Style::new().add_modifier(Modifier::REVERSED));
        }
        lines.push(line);
        if host.status == Status::Up {
            lines.extend(host.reading.gpus.iter().map(gpu_line));
        }
        if index == selected {
            selected_span = (first, lines.len());
        }
    }
    if shown.is_empty() {
        lines.push(Line::styled(
            "no host matches the filter",
            Style::new().fg(Color::DarkGray),
        ));
    }
    let height = usize::from(area.height);
    let offset = if selected_span.1 > height {
        selected_span.0.min(selected_span.1 - height)
    } else {
        0
    };
    let window: Vec<Line<'_>> = lines.into_iter().skip(offset).take(height).collect();
    Paragraph::new(window).render(area, buf);
}

fn host_line(shown: &Shown<'_>, name_width: usize) -> Line<'static> {
    let name = format!("{:<name_width$}", fit(&shown.host.name, name_width));
    match &shown.status {
        Status::Waiting => Line::from(vec![
            Span::raw(name),
            Span::styled(
                "  waiting for the first answer…",
                Style::new().fg(Color::DarkGray),
            ),
        ]),
        Status::Down(failure) => Line::from(vec![
            Span::styled(name, Style::new().fg(Color::Red)),
            Span::styled(
                format!("  down: {}", failure.short),
                Style::new().fg(Color::Red),
            ),
        ]),
        Status::Up => {
            let node = shown.reading.node.as_ref();
            let rates = shown.rates;
            let memory = node.and_then(memory_used);
            let mut spans = vec![Span::raw(name), Span::raw("  ")];
            spans.push(level(rates.map(|r| r.cpu_busy), 0.75, 0.9, 4, percent));
            spans.push(Span::raw("  "));
            spans.push(level(memory, 0.8, 0.95, 4, percent));
            spans.push(Span::raw(format!(
                "  {:>5}  {:>10}  {:>10}  {:>10}  ",
                or_dash(node.and_then(|n| n.load1).map(|l| format!("{l:.2}"))),
                or_dash(rates.map(|r| rate(r.disk_bytes_per_second))),
                or_dash(rates.map(|r| rate(r.receive_bytes_per_second))),
                or_dash(rates.map(|r| rate(r.transmit_bytes_per_second))),
            )));
            spans.push(ping_summary(&shown.reading.pings));
            spans.push(Span::raw(format!("  {}", gpu_summary(shown.reading))));
            Line::from(spans)
        }
    }
}

/// The average RTT over the host's ping targets and the worst loss among them.
fn ping_summary(pings: &[PingReading]) -> Span<'static> {
    if pings.is_empty() {
        return Span::raw(format!("{:>14}", "-"));
    }
    let rtts: Vec<f64> = pings.iter().filter_map(|p| p.rtt_seconds).collect();
    let rtt = if rtts.is_empty() {
        "-".to_owned()
    } else {
        #[allow(clippy::cast_precision_loss)]
        let mean = rtts.iter().sum::<f64>() / rtts.len() as f64;
        millis(mean)
    };
    let loss = pings
        .iter()
        .filter_map(|p| p.loss_ratio)
        .reduce(f64::max)
        .unwrap_or(0.0);
    Span::styled(
        format!("{:>14}", format!("{rtt} {}", percent(loss))),
        loss_style(loss),
    )
}

fn loss_style(loss: f64) -> Style {
    if loss >= 0.05 {
        Style::new().fg(Color::Red)
    } else if loss > 0.0 {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new()
    }
}

fn gpu_summary(reading: &Reading) -> String {
    let gpus = &reading.gpus;
    if gpus.is_empty() {
        // Rows not read yet (a host just come near the view): how many there are.
        return match reading.gpu_count() {
            0 => "-".to_owned(),
            count => count.to_string(),
        };
    }
    let utilizations: Vec<f64> = gpus.iter().filter_map(|g| g.utilization).collect();
    if utilizations.is_empty() {
        return format!("{}", gpus.len());
    }
    #[allow(clippy::cast_precision_loss)]
    let mean = utilizations.iter().sum::<f64>() / utilizations.len() as f64;
    format!("{} at {} avg", gpus.len(), percent(mean))
}

fn gpu_line(gpu: &GpuReading) -> Line<'static> {
    let model = gpu.name.strip_prefix("NVIDIA ").unwrap_or(&gpu.name);
    let mut spans = vec![Span::raw(format!(
        "  GPU{:<2} {:<GPU_NAME$}  ",
        gpu.index,
        fit(model, GPU_NAME)
    ))];
    if !gpu.up {
        spans.push(Span::styled(
            "lost: the driver no longer answers for this GPU",
            Style::new().fg(Color::Red),
        ));
        return Line::from(spans);
    }
    spans.extend(bar_with_value("util ", gpu.utilization));
    spans.push(Span::raw("  "));
    let memory = gpu
        .memory_used_bytes
        .zip(gpu.memory_total_bytes)
        .and_then(|(used, total)| (total > 0.0).then(|| used / total));
    spans.extend(bar_with_value("mem ", memory));
    spans.push(Span::raw("  "));
    let temperature = gpu.temperature_celsius;
    let temperature_style = match temperature {
        Some(t) if t >= 85.0 => Style::new().fg(Color::Red),
        Some(t) if t >= 75.0 => Style::new().fg(Color::Yellow),
        _ => Style::new(),
    };
    spans.push(Span::styled(
        format!("{:>5}", or_dash(temperature.map(|t| format!("{t:.0}°C")))),
        temperature_style,
    ));
    spans.push(Span::raw("  "));
    let power = match (gpu.power_watts, gpu.power_limit_watts) {
        (Some(watts), Some(limit)) => format!("{watts:.0}/{limit:.0} W"),
        (Some(watts), None) => format!("{watts:.0} W"),
        _ => "-".to_owned(),
    };
    let near_limit = gpu
        .power_watts
        .zip(gpu.power_limit_watts)
        .is_some_and(|(watts, limit)| limit > 0.0 && watts >= 0.95 * limit);
    spans.push(Span::styled(
        format!("{power:>9}"),
        if near_limit {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        },
    ));
    spans.push(Span::raw("  "));
    spans.push(throttle_span(&gpu.throttle_reasons));
    spans.push(Span::raw("  "));
    let xid = match &gpu.last_xid {
        Some(last) => format!("xid {:.0} ({last})", gpu.xid_errors),
        None => format!("xid {:.0}", gpu.xid_errors),
    };
    spans.push(Span::styled(
        format!("{xid:<10}"),
        if gpu.xid_errors > 0.0 {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::DarkGray)
        },
    ));
    if let Some(process) = &gpu.top_process {
        spans.push(Span::raw(format!(
            "  {} {}",
            fit(&process.label(), 12),
            bytes(process.memory_bytes)
        )));
    }
    Line::from(spans)
}

/// Reasons the clocks are held down, worst first in colour: hardware and thermal red,
/// power cap yellow, idle and settings grey.
fn throttle_span(reasons: &[String]) -> Span<'static> {
    let width = 10;
    if reasons.is_empty() {
        return Span::styled(format!("{:<width$}", "-"), Style::new().fg(Color::DarkGray));
    }
    let severe = reasons
        .iter()
        .any(|r| r.starts_with("hw_") || r.ends_with("_thermal"));
    let style = if severe {
        Style::new().fg(Color::Red)
    } else if reasons.iter().any(|r| r == "power_cap") {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    Span::styled(format!("{:<width$}", fit(&reasons.join(","), width)), style)
}

fn bar_with_value(label: &'static str, ratio: Option<f64>) -> [Span<'static>; 3] {
    let style = ratio_style(ratio, 0.75, 0.9);
    [
        Span::raw(label),
        Span::styled(bar(ratio.unwrap_or(0.0), BAR), style),
        Span::styled(format!(" {:>4}", or_dash(ratio.map(percent))), style),
    ]
}

/// Green, yellow from `warn`, red from `critical`.
fn ratio_style(ratio: Option<f64>, warn: f64, critical: f64) -> Style {
    match ratio {
        Some(r) if r >= critical => Style::new().fg(Color::Red),
        Some(r) if r >= warn => Style::new().fg(Color::Yellow),
        Some(_) => Style::new().fg(Color::Green),
        None => Style::new().fg(Color::DarkGray),
    }
}

/// A right-aligned number coloured by its level; `-` when unknown.
fn level(
    value: Option<f64>,
    warn: f64,
    critical: f64,
    width: usize,
    show: fn(f64) -> String,
) -> Span<'static> {
    let style = match value {
        Some(v) if v >= critical => Style::new().fg(Color::Red),
        Some(v) if v >= warn => Style::new().fg(Color::Yellow),
        _ => Style::new(),
    };
    Span::styled(format!("{:>width$}", or_dash(value.map(show))), style)
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_owned())
}

/// The selected host in full: each exporter, the host numbers, each ping target, each GPU.
fn detail_lines(shown: &Shown<'_>) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for target in &shown.host.targets {
        let took = target
            .took
            .map(|t| format!(" in {:.1} ms", t.as_secs_f64() * 1000.0))
            .unwrap_or_default();
        let line = match &target.status {
            Status::Waiting => Line::raw(format!("{}  waiting", target.url)),
            Status::Up => Line::raw(format!("{}  up{took}", target.url)),
            Status::Down(failure) => Line::styled(
                format!("{}  down{took}: {}", target.url, failure.full),
                Style::new().fg(Color::Red),
            ),
        };
        lines.push(line);
    }
    let reading = &shown.reading;
    if let Some(node) = &reading.node {
        let mut parts = Vec::new();
        if let Some(rates) = shown.rates {
            parts.push(format!("CPU {} of {}", percent(rates.cpu_busy), node.cpus));
        }
        if let (Some(l1), Some(l5), Some(l15)) = (node.load1, node.load5, node.load15) {
            parts.push(format!("load {l1:.2} {l5:.2} {l15:.2}"));
        }
        if let (Some(total), Some(available)) =
            (node.memory_total_bytes, node.memory_available_bytes)
        {
            parts.push(format!(
                "memory {} of {} used",
                bytes(total - available),
                bytes(total)
            ));
        }
        if let Some(fs) = &node.fullest_filesystem {
            parts.push(format!(
                "fullest filesystem {} {}",
                fs.mountpoint,
                percent(fs.used_ratio)
            ));
        }
        lines.push(Line::raw(parts.join("  ·  ")));
    }
    for ping in &reading.pings {
        lines.push(Line::styled(
            format!(
                "ping {}  rtt {}  loss {}",
                ping.target,
                or_dash(ping.rtt_seconds.map(millis)),
                or_dash(ping.loss_ratio.map(percent)),
            ),
            loss_style(ping.loss_ratio.unwrap_or(0.0)),
        ));
    }
    for gpu in &reading.gpus {
        let mut text = format!("GPU{} {} {}", gpu.index, gpu.name, gpu.uuid);
        if let Some((used, total)) = gpu.memory_used_bytes.zip(gpu.memory_total_bytes) {
            text.push_str(&format!("  ·  memory {} of {}", bytes(used), bytes(total)));
        }
        if let Some(process) = &gpu.top_process {
            text.push_str("  ·  top process ");
            if !process.name.is_empty() {
                text.push_str(&format!("{} ", process.name));
            }
            text.push_str(&format!("(pid {})", process.pid));
            if let Some(owner) = &process.owner {
                text.push_str(&format!(" in {owner}"));
            }
            text.push_str(&format!(" {}", bytes(process.memory_bytes)));
        }
        if !gpu.throttle_reasons.is_empty() {
            text.push_str(&format!(
                "  ·  clocks held by {}",
                gpu.throttle_reasons.join(", ")
            ));
        }
        if let Some(last) = &gpu.last_xid {
            text.push_str(&format!(
                "  ·  {:.0} XID errors, last {last}",
                gpu.xid_errors
            ));
        }
        lines.push(Line::raw(text));
    }
    lines
}

fn render_help(area: Rect, buf: &mut Buffer) {
    let width = 76.min(area.width);
    let height = u16::try_from(KEYS.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let pane = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line<'_>> = KEYS
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{keys:>10}  "),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    Clear.render(pane, buf);
    Paragraph::new(lines)
        .block(Block::bordered().title(" keys "))
        .render(pane, buf);
}

/// `1 host`, `3 hosts`.
fn counted(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// The text of a drawn buffer, one string per row, without trailing blanks.
pub fn buffer_text(buf: &Buffer) -> Vec<String> {
    let width = usize::from(buf.area.width);
    buf.content
        .chunks(width.max(1))
        .map(|row| {
            let mut line = String::new();
            let mut skip = 0;
            for cell in row {
                // A wide character's second cell is blank in the buffer; skip it.
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let symbol = cell.symbol();
                skip = unicode_width(symbol).saturating_sub(1);
                line.push_str(symbol);
            }
            line.trim_end().to_owned()
        })
        .collect()
}

fn unicode_width(symbol: &str) -> usize {
    ratatui::text::Span::raw(symbol).width()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::reading::GpuBrief;

    #[test]
    fn a_host_row_counts_gpus_known_only_in_brief() {
        let brief = Some(GpuBrief {
            count: 8,
            max_utilization: Some(0.9),
            ..GpuBrief::default()
        });
        let far = Reading {
            gpu_brief: brief.clone(),
            ..Reading::default()
        };
        assert_eq!(
            gpu_summary(&far),
            "8",
            "the count, no average of rows not read"
        );
        assert_eq!(gpu_summary(&Reading::default()), "-");
        // Rows read: they count and average, whatever the brief says.
        let near = Reading {
            gpus: vec![
                GpuReading {
                    utilization: Some(0.5),
                    ..GpuReading::default()
                },
                GpuReading::default(),
            ],
            gpu_brief: brief,
            ..Reading::default()
        };
        assert_eq!(gpu_summary(&near), "2 at 50% avg");
    }
}
