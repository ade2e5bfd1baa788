//! `cpu`: seconds each CPU spent in each mode (`/proc/stat`), guest time, thermal
//! throttling counts, and with `--collector.cpu.info` the `/proc/cpuinfo` details.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};
use regex::Regex;

use super::{Settings, boxed};
use crate::paths::Paths;
use crate::{filter, read};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options;
    let optional_regex = |flag: &str, pattern: &Option<String>| {
        pattern
            .as_deref()
            .map(|p| filter::regex(flag, p))
            .transpose()
    };
    boxed(Cpu {
        paths: settings.paths.clone(),
        guest: options.cpu_guest(),
        info: options.cpu_info,
        flags_include: optional_regex(
            "collector.cpu.info.flags-include",
            &options.cpu_flags_include,
        )?,
        bugs_include: optional_regex("collector.cpu.info.bugs-include", &options.cpu_bugs_include)?,
        aggregate: options.cpu_aggregate,
        ticks_per_second: rustix::param::clock_ticks_per_second() as f64,
        last: Mutex::new(HashMap::new()),
    })
}

struct Cpu {
    paths: Paths,
    guest: bool,
    info: bool,
    flags_include: Option<Regex>,
    bugs_include: Option<Regex>,
    aggregate: bool,
    ticks_per_second: f64,
    /// The last values reported per CPU, so counters never go backwards (see `settle`).
    last: Mutex<HashMap<String, Times>>,
}

/// The columns of a `cpuN` line, in `/proc/stat` order.
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// Seconds per mode: the eight of [`MODES`], then guest and guest_nice.
type Times = [f64; 10];

/// An idle counter that drops by this much means a CPU was unplugged and came back.
const JUMP_BACK_SECONDS: f64 = 3.0;

/// `(cpu number, times)` for each `cpuN` line; the `cpu` total line is skipped.
fn parse_stat(text: &str, ticks_per_second: f64) -> Vec<(String, Times)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("cpu")?;
            let (id, columns) = rest.split_once(' ')?;
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let mut times = [0.0; 10];
            for (slot, column) in times.iter_mut().zip(columns.split_ascii_whitespace()) {
                *slot = column.parse::<f64>().unwrap_or(0.0) / ticks_per_second;
            }
            Some((id.to_owned(), times))
        })
        .collect()
}

/// Keeps counters monotonic: the kernel's per-CPU times can step back a little (iowait
/// notably); such a value is replaced by the last one. A large backwards jump of idle
/// time means the CPU went offline and back, and the counters start afresh.
fn settle(last: &mut Times, new: &Times) {
    if last[3] - new[3] >= JUMP_BACK_SECONDS {
        *last = *new;
        return;
    }
    for (old, new) in last.iter_mut().zip(new) {
        if *new >= *old {
            *old = *new;
        }
    }
}

impl Cpu {
    fn times(&self) -> Result<Vec<(String, Times)>, CollectError> {
        let parsed = parse_stat(
            &read::file(&self.paths.proc("stat"))?,
            self.ticks_per_second,
        );
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget CPUs that went away, so a later hotplug starts from zero.
        last.retain(|cpu, _| parsed.iter().any(|(id, _)| id == cpu));
        Ok(parsed
            .into_iter()
            .map(|(cpu, times)| {
                let settled = last.entry(cpu.clone()).or_insert(times);
                settle(settled, &times);
                (cpu, *settled)
            })
            .collect())
    }

    fn time_families(&self, cpus: &[(String, Times)], out: &mut MetricSet) {
        let seconds = out.counter(
            "node_cpu_seconds_total",
            "Seconds the CPUs spent in each mode.",
        );
        let guest = self.guest.then(|| {
            out.counter(
                "node_cpu_guest_seconds_total",
                "Seconds the CPUs spent in guests (VMs) for each mode.",
            )
        });
        let all;
        let rows: &[(String, Times)] = if self.aggregate {
            let mut total = [0.0; 10];
            for (_, times) in cpus {
                total.iter_mut().zip(times).for_each(|(t, v)| *t += v);
            }
            all = [("all".to_owned(), total)];
            &all
        } else {
            cpus
        };
        for (cpu, times) in rows {
            for (mode, value) in MODES.iter().zip(times) {
                out.sample(seconds, &[("cpu", cpu), ("mode", mode)], *value);
            }
            if let Some(guest) = guest {
                out.sample(guest, &[("cpu", cpu), ("mode", "user")], times[8]);
                out.sample(guest, &[("cpu", cpu), ("mode", "nice")], times[9]);
            }
        }
    }

    /// Thermal throttle counters, per core and per package, where the CPU driver has them.
    fn throttles(&self, out: &mut MetricSet) {
        let cpus = read::dir_entries(&self.paths.sys("devices/system/cpu"), |name| {
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .unwrap_or_default();
        let mut cores = BTreeMap::new();
        let mut packages = BTreeMap::new();
        for (_, dir) in cpus {
            let throttle = dir.join("thermal_throttle");
            let Some(package) = read::attribute(&dir.join("topology/physical_package_id")) else {
                continue;
            };
            if let Some(count) =
                read::attribute_value::<f64>(&throttle.join("package_throttle_count"))
            {
                packages.entry(package.clone()).or_insert(count);
            }
            let core = read::attribute(&dir.join("topology/core_id"));
            if let (Some(core), Some(count)) = (
                core,
                read::attribute_value::<f64>(&throttle.join("core_throttle_count")),
            ) {
                cores.entry((package, core)).or_insert(count);
            }
        }
        if !cores.is_empty() {
            let family = out.counter(
                "node_cpu_core_throttles_total",
                "Number of times this CPU core has been throttled.",
            );
            for ((package, core), count) in &cores {
                out.sample(family, &[("package", package), ("core", core)], *count);
            }
        }
        if !packages.is_empty() {
            let family = out.counter(
                "node_cpu_package_throttles_total",
                "Number of times this CPU package has been throttled.",
            );
            for (package, count) in &packages {
                out.sample(family, &[("package", package)], *count);
            }
        }
    }

    fn info(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.paths.proc("cpuinfo"))?;
        let processors = parse_cpuinfo(&text);
        let info = out.gauge("node_cpu_info", "CPU information from /proc/cpuinfo.");
        for p in &processors {
            let get = |key: &str| p.get(key).copied().unwrap_or_default();
            out.sample(
                info,
                &[
                    ("package", get("physical id")),
                    ("core", get("core id")),
                    ("cpu", get("processor")),
                    ("vendor", get("vendor_id")),
                    ("family", get("cpu family")),
                    ("model", get("model")),
                    ("model_name", get("model name")),
                    ("microcode", get("microcode")),
                    ("stepping", get("stepping")),
                    ("cachesize", get("cache size")),
                ],
                1.0,
            );
        }
        let first = processors.first();
        for (key, regex, name, label, help) in [
            (
                "flags",
                &self.flags_include,
                "node_cpu_flag_info",
                "flag",
                "The `flags` field of CPU information from /proc/cpuinfo taken from the first core.",
            ),
            (
                "bugs",
                &self.bugs_include,
                "node_cpu_bug_info",
                "bug",
                "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.",
            ),
        ] {
            let (Some(regex), Some(first)) = (regex, first) else {
                continue;
            };
            let family = out.gauge(name, help);
            let mut values: Vec<&str> = first
                .get(key)
                .copied()
                .unwrap_or_default()
                .split_ascii_whitespace()
                .collect();
            values.sort_unstable();
            values.dedup();
            for value in values.into_iter().filter(|v| regex.is_match(v)) {
                out.sample(family, &[(label, value)], 1.0);
            }
        }
        Ok(())
    }
}

/// One map of `key: value` per processor block of `/proc/cpuinfo`.
fn parse_cpuinfo(text: &str) -> Vec<HashMap<&str, &str>> {
    text.split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(key, value)| (key.trim(), value.trim()))
                .collect::<HashMap<_, _>>()
        })
        .filter(|block| block.contains_key("processor"))
        .collect()
}

impl Collector for Cpu {
    fn name(&self) -> &str {
        "cpu"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let times = self.times()?;
        self.time_families(&times, out);
        self.throttles(out);
        if self.info {
            self.info(out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_lines_in_seconds() {
        let text = "cpu  301854 612 111922 8979004 3552 2 3944 0 44 36\ncpu0 44490 19 21045 1087069 220 1 3410 0 4 6\ncpu1 47869 23 16474 1110787 591 0 46 0 0 0\nintr 1\n";
        let cpus = parse_stat(text, 100.0);
        assert_eq!(cpus.len(), 2);
        assert_eq!(cpus[0].0, "0");
        assert_eq!(cpus[0].1[0], 444.90);
        assert_eq!(cpus[0].1[3], 10870.69);
        assert_eq!(cpus[0].1[8], 0.04);
        assert_eq!(cpus[1].1[9], 0.0);
    }

    #[test]
    fn counters_do_not_step_back() {
        let mut last = [10.0; 10];
        let mut new = [11.0; 10];
        new[4] = 9.5; // iowait dipped
        settle(&mut last, &new);
        assert_eq!(last[0], 11.0);
        assert_eq!(last[4], 10.0);
        // Idle dropped by more than three seconds: a hotplugged CPU starts afresh.
        let reset = [1.0; 10];
        settle(&mut last, &reset);
        assert_eq!(last, reset);
    }

    #[test]
    fn cpuinfo_blocks() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme sse\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\n";
        let blocks = parse_cpuinfo(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0]["flags"], "fpu vme sse");
        assert_eq!(blocks[1]["processor"], "1");
    }
}
