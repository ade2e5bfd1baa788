//! `cpu`: seconds each CPU spent in each mode (`/proc/stat`), guest time, thermal
//! throttling counts, and with `--collector.cpu.info` the `/proc/cpuinfo` details.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};
use regex::Regex;

use super::{Settings, boxed};
use crate::{filter, read};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options;
    // An empty pattern is no pattern, as node_exporter reads these flags.
    let optional_regex = |flag: &str, pattern: &Option<String>| {
        pattern
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| filter::regex(flag, p))
            .transpose()
    };
    let flags_include = optional_regex(
        "collector.cpu.info.flags-include",
        &options.cpu_flags_include,
    )?;
    let bugs_include =
        optional_regex("collector.cpu.info.bugs-include", &options.cpu_bugs_include)?;
    let info = options.cpu_info;
    boxed(Cpu {
        stat: settings.paths.proc("stat"),
        cpuinfo: settings.paths.proc("cpuinfo"),
        cpus: settings.paths.sys("devices/system/cpu"),
        guest: options.cpu_guest(),
        info,
        frequency: info && settings.enabled.contains(&"cpufreq"),
        flags_include,
        bugs_include,
        aggregate: options.cpu_aggregate,
        ticks_per_second: rustix::param::clock_ticks_per_second() as f64,
        state: Mutex::default(),
    })
}

struct Cpu {
    /// `/proc/stat`.
    stat: PathBuf,
    /// `/proc/cpuinfo`.
    cpuinfo: PathBuf,
    /// `/sys/devices/system/cpu`.
    cpus: PathBuf,
    guest: bool,
    info: bool,
    /// Report `cpu MHz` of `/proc/cpuinfo` as node_cpu_frequency_hertz: with `info` and the
    /// cpufreq collector both on, as node_exporter does.
    frequency: bool,
    flags_include: Option<Regex>,
    bugs_include: Option<Regex>,
    aggregate: bool,
    ticks_per_second: f64,
    /// What one scrape leaves for the next, its buffers reused.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The last values reported per CPU, so counters never go backwards (see `settle`).
    last: Vec<(u32, Times)>,
    /// This scrape's values, which become `last`.
    next: Vec<(u32, Times)>,
    /// Throttle counts as `(package, core, count)`; `core` is `None` for a package's.
    throttles: Vec<(i64, Option<i64>, f64)>,
    topology: Topology,
}

/// Each CPU directory's `(name, physical_package_id, core_id)` as last read. They change
/// only with CPU hotplug, so they are read again only when the CPU directories or the
/// `online` list differ from the scrape that read them, not twice per CPU every scrape.
#[derive(Default)]
struct Topology {
    /// `/sys/devices/system/cpu/online` when they were read (empty without the file).
    online: String,
    cpus: Vec<(String, Option<i64>, Option<i64>)>,
}

impl Topology {
    /// Reads the ids again if the CPU directories or `online` changed since they were
    /// last read.
    fn refresh(&mut self, cpus: &read::Entries, online: &str) {
        if self.online == online && self.cpus.iter().map(|c| c.0.as_str()).eq(cpus.names()) {
            return;
        }
        self.online = online.to_owned();
        self.cpus = cpus
            .names()
            .map(|name| {
                let cpu = cpus.dir().open_at(&[name]);
                let id = |file: &str| cpu.as_ref()?.attribute_value::<i64>(file);
                (
                    name.to_owned(),
                    id("topology/physical_package_id"),
                    id("topology/core_id"),
                )
            })
            .collect();
    }
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
fn parse_stat(text: &str, ticks_per_second: f64) -> impl Iterator<Item = (u32, Times)> + '_ {
    text.lines().filter_map(move |line| {
        let rest = line.strip_prefix("cpu")?;
        let (id, columns) = rest.split_once(' ')?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id = id.parse().ok()?;
        let mut times = [0.0; 10];
        for (slot, column) in times.iter_mut().zip(columns.split_ascii_whitespace()) {
            *slot = column.parse::<f64>().unwrap_or(0.0) / ticks_per_second;
        }
        Some((id, times))
    })
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
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the CPU times into `state.last`, settled against the last scrape's. CPUs that
    /// went away are forgotten, so a later hotplug starts from zero.
    fn times(&self, state: &mut State) -> Result<(), CollectError> {
        let text = read::file(&self.stat)?;
        let State { last, next, .. } = state;
        next.clear();
        for (index, (cpu, times)) in parse_stat(&text, self.ticks_per_second).enumerate() {
            // CPUs come in the same order every time: look where it was first.
            let previous = match last.get(index) {
                Some((id, times)) if *id == cpu => Some(times),
                _ => last
                    .iter()
                    .find(|(id, _)| *id == cpu)
                    .map(|(_, times)| times),
            };
            let mut settled = previous.copied().unwrap_or(times);
            settle(&mut settled, &times);
            next.push((cpu, settled));
        }
        std::mem::swap(last, next);
        Ok(())
    }

    fn time_families(&self, cpus: &[(u32, Times)], out: &mut MetricSet) {
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
        let mut write = |cpu: &str, times: &Times| {
            for (mode, value) in MODES.iter().zip(times) {
                out.sample(seconds, &[("cpu", cpu), ("mode", mode)], *value);
            }
            if let Some(guest) = guest {
                out.sample(guest, &[("cpu", cpu), ("mode", "user")], times[8]);
                out.sample(guest, &[("cpu", cpu), ("mode", "nice")], times[9]);
            }
        };
        if self.aggregate {
            let mut total = [0.0; 10];
            for (_, times) in cpus {
                total.iter_mut().zip(times).for_each(|(t, v)| *t += v);
            }
            write("all", &total);
        } else {
            let mut id = itoa::Buffer::new();
            for (cpu, times) in cpus {
                write(id.format(*cpu), times);
            }
        }
    }

    /// node_cpu_isolated: the CPUs that `isolcpus=` keeps from the scheduler, as the kernel
    /// lists them in `/sys/devices/system/cpu/isolated`. A kernel without the file has none.
    fn isolated(&self, out: &mut MetricSet) {
        let Some(text) = read::attribute(&self.cpus.join("isolated")) else {
            return;
        };
        let cpus = parse_cpu_list(&text);
        if cpus.is_empty() {
            return;
        }
        let family = out.gauge(
            "node_cpu_isolated",
            "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
        );
        let mut id = itoa::Buffer::new();
        for cpu in cpus {
            out.sample(family, &[("cpu", id.format(cpu))], 1.0);
        }
    }

    /// Thermal throttle counters, per core and per package, where the CPU driver has them.
    fn throttles(&self, state: &mut State, out: &mut MetricSet) {
        let Ok(cpus) = read::Entries::list(&self.cpus, |name| {
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        }) else {
            return;
        };
        let online = cpus.dir().attribute("online");
        let State {
            throttles,
            topology,
            ..
        } = state;
        topology.refresh(&cpus, online.as_deref().unwrap_or_default());
        throttles.clear();
        for (name, package, core) in &topology.cpus {
            let Some(package) = *package else {
                continue;
            };
            let Some(dir) = cpus.dir().open_at(&[name]) else {
                continue;
            };
            if let Some(count) =
                dir.attribute_value::<f64>("thermal_throttle/package_throttle_count")
            {
                throttles.push((package, None, count));
            }
            if let (Some(core), Some(count)) = (
                *core,
                dir.attribute_value::<f64>("thermal_throttle/core_throttle_count"),
            ) {
                throttles.push((package, Some(core), count));
            }
        }
        // Ordered by the ids' text, as a map keyed by the text orders them; the first CPU
        // of a core or package gives its count (the stable sort keeps it first).
        let (mut a, mut b) = (itoa::Buffer::new(), itoa::Buffer::new());
        let mut by_text = |x: i64, y: i64| a.format(x).cmp(b.format(y));
        throttles.sort_by(|x, y| {
            (x.1.is_some().cmp(&y.1.is_some()))
                .then_with(|| by_text(x.0, y.0))
                .then_with(|| match (x.1, y.1) {
                    (Some(x), Some(y)) => by_text(x, y),
                    _ => std::cmp::Ordering::Equal,
                })
        });
        throttles.dedup_by(|later, first| later.0 == first.0 && later.1 == first.1);
        let (packages, cores) = throttles.split_at(throttles.partition_point(|t| t.1.is_none()));
        let (mut package_id, mut core_id) = (itoa::Buffer::new(), itoa::Buffer::new());
        if !cores.is_empty() {
            let family = out.counter(
                "node_cpu_core_throttles_total",
                "Number of times this CPU core has been throttled.",
            );
            for &(package, core, count) in cores {
                let core = core_id.format(core.unwrap_or_default());
                out.sample(
                    family,
                    &[("package", package_id.format(package)), ("core", core)],
                    count,
                );
            }
        }
        if !packages.is_empty() {
            let family = out.counter(
                "node_cpu_package_throttles_total",
                "Number of times this CPU package has been throttled.",
            );
            for &(package, _, count) in packages {
                out.sample(family, &[("package", package_id.format(package))], count);
            }
        }
    }

    fn info(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.cpuinfo)?;
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
        if self.frequency {
            let family = out.gauge(
                "node_cpu_frequency_hertz",
                "CPU frequency in hertz from /proc/cpuinfo.",
            );
            for p in &processors {
                let get = |key: &str| p.get(key).copied().unwrap_or_default();
                let mhz = get("cpu MHz").parse::<f64>().unwrap_or(0.0);
                out.sample(
                    family,
                    &[
                        ("package", get("physical id")),
                        ("core", get("core id")),
                        ("cpu", get("processor")),
                    ],
                    mhz * 1e6,
                );
            }
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

/// The CPUs of a kernel CPU list such as `1,3-5,9`, in order and each once. Entries that
/// are not a number or a range of CPU numbers are skipped.
fn parse_cpu_list(text: &str) -> Vec<u16> {
    let mut cpus = Vec::new();
    for entry in text.trim().split(',').filter(|e| !e.is_empty()) {
        let (first, last) = entry.split_once('-').unwrap_or((entry, entry));
        // CPU numbers fit u16 (as in node_exporter), which also bounds a range's length.
        if let (Ok(first), Ok(last)) = (first.parse::<u16>(), last.parse::<u16>()) {
            cpus.extend(first..=last);
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    cpus
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
        let mut state = self.lock();
        self.times(&mut state)?;
        self.time_families(&state.last, out);
        self.isolated(out);
        self.throttles(&mut state, out);
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
        let cpus: Vec<_> = parse_stat(text, 100.0).collect();
        assert_eq!(cpus.len(), 2);
        assert_eq!(cpus[0].0, 0);
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

    #[test]
    fn topology_ids_are_read_again_only_after_hotplug() {
        let root = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        for cpu in ["cpu0", "cpu1"] {
            write(&format!("{cpu}/topology/physical_package_id"), "0\n");
            write(&format!("{cpu}/topology/core_id"), "3\n");
        }
        write("online", "0-1\n");
        let cpus = || {
            let cpus = read::Entries::list(root.path(), |name| name.starts_with("cpu")).unwrap();
            let online = read::attribute(&root.path().join("online")).unwrap();
            (cpus, online)
        };
        let mut topology = Topology::default();
        let (list, online) = cpus();
        topology.refresh(&list, &online);
        let first = vec![
            ("cpu0".to_owned(), Some(0), Some(3)),
            ("cpu1".to_owned(), Some(0), Some(3)),
        ];
        assert_eq!(topology.cpus, first);

        // Without hotplug the files are not read again.
        write("cpu1/topology/core_id", "7\n");
        let (list, online) = cpus();
        topology.refresh(&list, &online);
        assert_eq!(topology.cpus, first);

        // cpu1 went offline and came back: the online list changed in between.
        write("online", "0\n");
        std::fs::remove_dir_all(root.path().join("cpu1/topology")).unwrap();
        let (list, online) = cpus();
        topology.refresh(&list, &online);
        assert_eq!(topology.cpus[1], ("cpu1".to_owned(), None, None));
        write("online", "0-1\n");
        write("cpu1/topology/physical_package_id", "0\n");
        write("cpu1/topology/core_id", "7\n");
        let (list, online) = cpus();
        topology.refresh(&list, &online);
        assert_eq!(topology.cpus[1], ("cpu1".to_owned(), Some(0), Some(7)));

        // A CPU directory that appears is read too.
        write("cpu2/topology/physical_package_id", "1\n");
        write("cpu2/topology/core_id", "0\n");
        let (list, online) = cpus();
        topology.refresh(&list, &online);
        assert_eq!(topology.cpus[2], ("cpu2".to_owned(), Some(1), Some(0)));
    }

    #[test]
    fn isolated_cpu_lists() {
        // node_exporter's vendored sysfs fixture lists `1,3-5,9`.
        assert_eq!(parse_cpu_list("1,3-5,9\n"), [1, 3, 4, 5, 9]);
        assert_eq!(parse_cpu_list("\n"), [] as [u16; 0]);
        assert_eq!(parse_cpu_list("2,x,7-6,0-1,1"), [0, 1, 2]);
    }
}
