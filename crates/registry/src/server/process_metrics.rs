//! The exporter's own `process_*` metrics, with the names, help texts and units of the Go
//! client's process collector, which every upstream exporter serves and dashboards read.
//!
//! Written here rather than taken from the `prometheus` crate: that one counts CPU time in
//! whole seconds (Go writes `0.16`), has no `process_virtual_memory_max_bytes`, adds a
//! `process_threads` Go does not have, and parses each file through a general procfs
//! library, a hundred allocations a scrape for seven numbers.

use crate::metrics::MetricSet;

/// What does not change while the process runs, read once.
#[derive(Debug)]
pub(crate) struct ProcessMetrics {
    ticks_per_second: f64,
    page_size: f64,
    start_time: Option<f64>,
}

/// The fields of `/proc/self/stat` these metrics use.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    /// User plus system time, in clock ticks.
    cpu_ticks: f64,
    /// Since boot, in clock ticks.
    start_ticks: f64,
    virtual_bytes: f64,
    resident_pages: f64,
}

impl ProcessMetrics {
    pub(crate) fn new() -> Self {
        let ticks_per_second = rustix::param::clock_ticks_per_second() as f64;
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| boot_time(&text));
        let start_time = boot_time.zip(read_stat()).map(|(boot, stat)| {
            // Go rounds the start to the clock tick, so the value reads as e.g. 1.79525281596e+09.
            boot + stat.start_ticks / ticks_per_second
        });
        Self {
            ticks_per_second,
            page_size: rustix::param::page_size() as f64,
            start_time,
        }
    }

    /// This scrape's families, in the Go client's order; those whose source cannot be read
    /// are left out, as Go does.
    pub(crate) fn write(&self, out: &mut MetricSet) {
        let stat = read_stat();
        if let Some(stat) = stat {
            out.counter_value(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                stat.cpu_ticks / self.ticks_per_second,
            );
        }
        if let Some(open) = open_fds() {
            out.gauge_value("process_open_fds", "Number of open file descriptors.", open);
        }
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        if let Some(max) = soft_limit(&limits, "Max open files") {
            out.gauge_value(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                max,
            );
        }
        if let Some(stat) = stat {
            out.gauge_value(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stat.virtual_bytes,
            );
            out.gauge_value(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                stat.resident_pages * self.page_size,
            );
        }
        if let Some(start) = self.start_time {
            out.gauge_value(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                start,
            );
        }
        if let Some(max) = soft_limit(&limits, "Max address space") {
            out.gauge_value(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                max,
            );
        }
    }
}

fn read_stat() -> Option<Stat> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Parses `/proc/<pid>/stat`. The command name in parentheses may hold spaces and
/// parentheses itself, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let after_name = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name; proc(5) numbers them from 1.
    let field =
        |n: usize| -> Option<f64> { after_name.split_ascii_whitespace().nth(n - 3)?.parse().ok() };
    Some(Stat {
        cpu_ticks: field(14)? + field(15)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
        resident_pages: field(24)?,
    })
}

/// `btime` of `/proc/stat`: the boot time in seconds since the epoch.
fn boot_time(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

fn open_fds() -> Option<f64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as f64)
}

/// The soft limit of a `/proc/self/limits` row; `unlimited` is the largest 64-bit value,
/// as Go reports it.
fn soft_limit(limits: &str, name: &str) -> Option<f64> {
    let rest = limits.lines().find_map(|line| line.strip_prefix(name))?;
    match rest.split_ascii_whitespace().next()? {
        "unlimited" => Some(u64::MAX as f64),
        value => value.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let text = "4242 (kiln (node) x) S 1 4242 4242 0 -1 4194560 1203 0 0 0 \
                    37 12 0 0 20 0 7 0 9100 1043886080 1730 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                cpu_ticks: 49.0,
                start_ticks: 9100.0,
                virtual_bytes: 1_043_886_080.0,
                resident_pages: 1730.0,
            })
        );
        assert_eq!(parse_stat("4242 (cut"), None);
    }

    #[test]
    fn limits_and_boot_time() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            20000                524288               files     \n\
                      Max address space         unlimited            unlimited            bytes     \n";
        assert_eq!(soft_limit(limits, "Max open files"), Some(20000.0));
        assert_eq!(
            soft_limit(limits, "Max address space"),
            Some(18_446_744_073_709_551_615.0)
        );
        assert_eq!(soft_limit(limits, "Max processes"), None);
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1795250000\n"),
            Some(1_795_250_000.0)
        );
    }

    #[test]
    fn this_process_is_described() {
        let mut set = MetricSet::default();
        ProcessMetrics::new().write(&mut set);
        set.seal();
        let value = |name: &str| {
            set.families()
                .find(|f| f.name() == name)
                .and_then(|f| f.samples().next())
                .map(|s| s.value())
        };
        let names: Vec<&str> = set.families().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "process_cpu_seconds_total",
                "process_open_fds",
                "process_max_fds",
                "process_virtual_memory_bytes",
                "process_resident_memory_bytes",
                "process_start_time_seconds",
                "process_virtual_memory_max_bytes",
            ]
        );
        let resident = value("process_resident_memory_bytes").unwrap_or_default();
        assert!(resident > 1e6, "{resident}");
        assert!(value("process_open_fds").unwrap_or_default() >= 3.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let start = value("process_start_time_seconds").unwrap_or_default();
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
    }
}
