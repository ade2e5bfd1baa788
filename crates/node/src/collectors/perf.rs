//! `perf` (off by default): the kernel's perf event counters, one of each kind per CPU,
//! counting every process on that CPU: hardware counters (cycles, instructions, branches),
//! software ones (page faults, context switches, migrations), hardware cache events and
//! any tracepoints asked for with `--collector.perf.tracepoint`.
//!
//! Counters are opened once, when the exporter starts, and read at every scrape. What a
//! host cannot count is left out: a virtual machine often has no hardware or cache
//! counters, and a CPU that is offline has none at all; each such counter is skipped with
//! a debug log line, as node_exporter skips a profiler it cannot open. Opening counters of
//! all processes needs `CAP_PERFMON` (or root) or `kernel.perf_event_paranoid` ≤ 0.

use std::fs::File;
use std::io::Read;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::flag_error;
use crate::read;
use crate::sys::{self, PerfEventAttr};

/// The perf collector's options.
#[derive(Debug, Clone, clap::Args)]
// Every collector's options struct is named `Options`; clap's group ids must differ.
#[group(id = "perf_options")]
pub struct Options {
    /// CPUs to count on: numbers and ranges such as `0-3`, `8-15:2` (every second CPU),
    /// separated by commas. Empty means the CPUs this process may run on.
    #[arg(long = "collector.perf.cpus", value_name = "LIST", default_value = "")]
    pub perf_cpus: String,
    /// A tracepoint to count, as `subsystem:event` (e.g. `sched:sched_switch`);
    /// repeat the flag for more.
    #[arg(long = "collector.perf.tracepoint", value_name = "TRACEPOINT")]
    pub perf_tracepoint: Vec<String>,
    /// Open no hardware counters.
    #[arg(long = "collector.perf.disable-hardware-profilers")]
    pub perf_disable_hardware_profilers: bool,
    /// A hardware counter to open (CpuCycles, CpuInstr, CacheRef, CacheMisses,
    /// BranchInstr, BranchMisses, StalledCyclesBackend, StalledCyclesFrontend,
    /// RefCpuCycles); repeat for more. Without it, all of them.
    #[arg(long = "collector.perf.hardware-profilers", value_name = "NAME")]
    pub perf_hardware_profilers: Vec<String>,
    /// Open no software counters.
    #[arg(long = "collector.perf.disable-software-profilers")]
    pub perf_disable_software_profilers: bool,
    /// A software counter to open (PageFault, ContextSwitch, CpuMigration, MinorFault,
    /// MajorFault); repeat for more. Without it, all of them.
    #[arg(long = "collector.perf.software-profilers", value_name = "NAME")]
    pub perf_software_profilers: Vec<String>,
    /// Open no cache counters.
    #[arg(long = "collector.perf.disable-cache-profilers")]
    pub perf_disable_cache_profilers: bool,
    /// A cache counter to open (L1DataReadHit, L1DataReadMiss, L1DataWriteHit,
    /// L1InstrReadMiss, LLReadHit, LLReadMiss, LLWriteHit, LLWriteMiss, InstrTLBReadHit,
    /// InstrTLBReadMiss, BPUReadHit, BPUReadMiss, DataTLBReadHit, DataTLBReadMiss,
    /// DataTLBWriteHit, DataTLBWriteMiss); repeat for more. Without it, all of them.
    #[arg(long = "collector.perf.cache-profilers", value_name = "NAME")]
    pub perf_cache_profilers: Vec<String>,
}

// perf_event_attr's `type` values (linux/perf_event.h).
const PERF_TYPE_HARDWARE: u32 = 0;
const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_TYPE_HW_CACHE: u32 = 3;
/// `read_format`: the value is followed by the times the counter was enabled and running.
const READ_FORMAT: u64 = 1 | 2;
/// The `exclude_hv` bit: not counting in the hypervisor, as node_exporter's counters.
const EXCLUDE_HV: u64 = 1 << 6;
/// What a read returns with [`READ_FORMAT`]: value, time enabled, time running.
const READ_BYTES: usize = 24;
/// The highest CPU number accepted in `--collector.perf.cpus` (Linux's NR_CPUS is at most
/// 8192): a typo such as `0-4000000` then fails at start-up instead of opening millions of
/// counters.
const MAX_CPU: usize = 8191;

/// A counter node_exporter knows: its flag name, perf type and config, metric and help.
struct Kind {
    flag: &'static str,
    perf_type: u32,
    config: u64,
    metric: &'static str,
    help: &'static str,
}

const fn hardware(
    flag: &'static str,
    config: u64,
    metric: &'static str,
    help: &'static str,
) -> Kind {
    Kind {
        flag,
        perf_type: PERF_TYPE_HARDWARE,
        config,
        metric,
        help,
    }
}

const fn software(
    flag: &'static str,
    config: u64,
    metric: &'static str,
    help: &'static str,
) -> Kind {
    Kind {
        flag,
        perf_type: PERF_TYPE_SOFTWARE,
        config,
        metric,
        help,
    }
}

// Hardware cache events are `cache | operation << 8 | result << 16`.
const L1D: u64 = 0;
const L1I: u64 = 1;
const LL: u64 = 2;
const DTLB: u64 = 3;
const ITLB: u64 = 4;
const BPU: u64 = 5;
const READ: u64 = 0;
const WRITE: u64 = 1;
/// A "hit" is counted as an access, as node_exporter's profilers do.
const ACCESS: u64 = 0;
const MISS: u64 = 1;

const fn cache(
    flag: &'static str,
    (cache, operation, result): (u64, u64, u64),
    metric: &'static str,
    help: &'static str,
) -> Kind {
    Kind {
        flag,
        perf_type: PERF_TYPE_HW_CACHE,
        config: cache | operation << 8 | result << 16,
        metric,
        help,
    }
}

/// The hardware counters node_exporter reports (it opens bus cycles too but never reports
/// them; they are left out here).
const HARDWARE: &[Kind] = &[
    hardware(
        "CpuCycles",
        0,
        "node_perf_cpucycles_total",
        "Number of CPU cycles (frequency scaled)",
    ),
    hardware(
        "CpuInstr",
        1,
        "node_perf_instructions_total",
        "Number of CPU instructions",
    ),
    hardware(
        "CacheRef",
        2,
        "node_perf_cache_refs_total",
        "Number of cache references (non frequency scaled)",
    ),
    hardware(
        "CacheMisses",
        3,
        "node_perf_cache_misses_total",
        "Number of cache misses",
    ),
    hardware(
        "BranchInstr",
        4,
        "node_perf_branch_instructions_total",
        "Number of CPU branch instructions",
    ),
    hardware(
        "BranchMisses",
        5,
        "node_perf_branch_misses_total",
        "Number of CPU branch misses",
    ),
    hardware(
        "StalledCyclesFrontend",
        7,
        "node_perf_stalled_cycles_frontend_total",
        "Number of stalled frontend CPU cycles",
    ),
    hardware(
        "StalledCyclesBackend",
        8,
        "node_perf_stalled_cycles_backend_total",
        "Number of stalled backend CPU cycles",
    ),
    hardware(
        "RefCpuCycles",
        9,
        "node_perf_ref_cpucycles_total",
        "Number of CPU cycles",
    ),
];

/// The software counters node_exporter reports (not the CPU and task clocks).
const SOFTWARE: &[Kind] = &[
    software(
        "PageFault",
        2,
        "node_perf_page_faults_total",
        "Number of page faults",
    ),
    software(
        "ContextSwitch",
        3,
        "node_perf_context_switches_total",
        "Number of context switches",
    ),
    software(
        "CpuMigration",
        4,
        "node_perf_cpu_migrations_total",
        "Number of CPU process migrations",
    ),
    software(
        "MinorFault",
        5,
        "node_perf_minor_faults_total",
        "Number of minor page faults",
    ),
    software(
        "MajorFault",
        6,
        "node_perf_major_faults_total",
        "Number of major page faults",
    ),
];

const CACHE: &[Kind] = &[
    cache(
        "L1DataReadHit",
        (L1D, READ, ACCESS),
        "node_perf_cache_l1d_read_hits_total",
        "Number L1 data cache read hits",
    ),
    cache(
        "L1DataReadMiss",
        (L1D, READ, MISS),
        "node_perf_cache_l1d_read_misses_total",
        "Number L1 data cache read misses",
    ),
    cache(
        "L1DataWriteHit",
        (L1D, WRITE, ACCESS),
        "node_perf_cache_l1d_write_hits_total",
        "Number L1 data cache write hits",
    ),
    cache(
        "L1InstrReadMiss",
        (L1I, READ, MISS),
        "node_perf_cache_l1_instr_read_misses_total",
        "Number instruction L1 instruction read misses",
    ),
    cache(
        "InstrTLBReadHit",
        (ITLB, READ, ACCESS),
        "node_perf_cache_tlb_instr_read_hits_total",
        "Number instruction TLB read hits",
    ),
    cache(
        "InstrTLBReadMiss",
        (ITLB, READ, MISS),
        "node_perf_cache_tlb_instr_read_misses_total",
        "Number instruction TLB read misses",
    ),
    cache(
        "DataTLBReadHit",
        (DTLB, READ, ACCESS),
        "node_perf_cache_tlb_data_read_hits_total",
        "Number of data TLB read hits",
    ),
    cache(
        "DataTLBReadMiss",
        (DTLB, READ, MISS),
        "node_perf_cache_tlb_data_read_misses_total",
        "Number of data TLB read misses",
    ),
    cache(
        "DataTLBWriteHit",
        (DTLB, WRITE, ACCESS),
        "node_perf_cache_tlb_data_write_hits_total",
        "Number of data TLB write hits",
    ),
    cache(
        "DataTLBWriteMiss",
        (DTLB, WRITE, MISS),
        "node_perf_cache_tlb_data_write_misses_total",
        "Number of data TLB write misses",
    ),
    cache(
        "LLReadHit",
        (LL, READ, ACCESS),
        "node_perf_cache_ll_read_hits_total",
        "Number last level read hits",
    ),
    cache(
        "LLReadMiss",
        (LL, READ, MISS),
        "node_perf_cache_ll_read_misses_total",
        "Number last level read misses",
    ),
    cache(
        "LLWriteHit",
        (LL, WRITE, ACCESS),
        "node_perf_cache_ll_write_hits_total",
        "Number last level write hits",
    ),
    cache(
        "LLWriteMiss",
        (LL, WRITE, MISS),
        "node_perf_cache_ll_write_misses_total",
        "Number last level write misses",
    ),
    cache(
        "BPUReadHit",
        (BPU, READ, ACCESS),
        "node_perf_cache_bpu_read_hits_total",
        "Number BPU read hits",
    ),
    cache(
        "BPUReadMiss",
        (BPU, READ, MISS),
        "node_perf_cache_bpu_read_misses_total",
        "Number BPU read misses",
    ),
];

/// Parses `--collector.perf.cpus`: `2`, `0-3`, `0-10:5` (0, 5, 10), comma separated.
/// Repeated CPUs are counted once.
fn parse_cpus(text: &str) -> Result<Vec<usize>, String> {
    let number = |part: &str| -> Result<usize, String> {
        let cpu: usize = part
            .parse()
            .map_err(|_| format!("{part:?} is not a CPU number"))?;
        if cpu > MAX_CPU {
            return Err(format!(
                "CPU {cpu} is above the highest possible, {MAX_CPU}"
            ));
        }
        Ok(cpu)
    };
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let (range, stride) = match part.split_once(':') {
            Some((range, stride)) => (
                range,
                stride
                    .parse::<usize>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{part:?}: the stride must be a number above 0"))?,
            ),
            None => (part, 1),
        };
        match range.split_once('-') {
            None if !part.contains(':') => cpus.push(number(range)?),
            None => return Err(format!("{part:?}: a stride needs a range such as 0-7:2")),
            Some((start, end)) => {
                let (start, end) = (number(start)?, number(end)?);
                cpus.extend((start..=end).step_by(stride));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    cpus.retain(|cpu| seen.insert(*cpu));
    Ok(cpus)
}

/// The kinds of `table` named in `names` (all of them when `names` is empty); an unknown
/// name is logged and ignored, as node_exporter does.
fn chosen<'a>(table: &'a [Kind], names: &[String], what: &str) -> Vec<&'a Kind> {
    if names.is_empty() {
        return table.iter().collect();
    }
    let mut kinds: Vec<&Kind> = Vec::new();
    for name in names {
        match table.iter().find(|kind| kind.flag == name) {
            Some(kind) if !kinds.iter().any(|k| k.flag == kind.flag) => kinds.push(kind),
            Some(_) => {}
            None => {
                tracing::error!(collector = "perf", profiler = %name, "Unknown {what} profiler")
            }
        }
    }
    kinds
}

/// A tracepoint from `--collector.perf.tracepoint`.
#[derive(Debug, PartialEq)]
struct Tracepoint {
    subsystem: String,
    event: String,
}

impl Tracepoint {
    fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(subsystem), Some(event), None) => Ok(Self {
                subsystem: subsystem.to_owned(),
                event: event.to_owned(),
            }),
            _ => Err(format!(
                "invalid tracepoint {text:?}: expected subsystem:event"
            )),
        }
    }
}

/// The first mount point of a tracefs in a `/proc/mounts` text.
fn tracefs_mount(mounts: &str) -> Option<&str> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, mount_point, fs_type) = (fields.next()?, fields.next()?, fields.next()?);
        (fs_type == "tracefs").then_some(mount_point)
    })
}

/// One family and the counters behind its samples, one per CPU that could open it.
#[derive(Debug)]
struct Counted {
    metric: String,
    help: String,
    counters: Vec<(String, File)>,
}

/// Opens `attr`'s counter on every CPU, skipping those where the kernel refuses.
fn open_on_cpus(perf_type: u32, config: u64, cpus: &[usize], what: &str) -> Vec<(String, File)> {
    let mut counters = Vec::new();
    for &cpu in cpus {
        let attr = PerfEventAttr {
            kind: perf_type,
            config,
            read_format: READ_FORMAT,
            flags: EXCLUDE_HV,
            ..PerfEventAttr::default()
        };
        // `cpu` is at most MAX_CPU.
        match sys::perf_event_open(attr, cpu as i32) {
            Ok(fd) => counters.push((cpu.to_string(), File::from(fd))),
            Err(error) => tracing::debug!(
                collector = "perf",
                counter = what,
                cpu,
                %error,
                "cannot open the perf counter; skipped"
            ),
        }
    }
    counters
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let o = &settings.options.perf;
    let cpus = if o.perf_cpus.is_empty() {
        let count = sys::affinity_cpu_count()
            .ok()
            .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
            .unwrap_or(1);
        (0..count.min(MAX_CPU + 1)).collect()
    } else {
        parse_cpus(&o.perf_cpus).map_err(|e| flag_error("collector.perf.cpus", e))?
    };

    let mut families = Vec::new();
    let mut tracepoints = Vec::new();
    for text in &o.perf_tracepoint {
        let tracepoint =
            Tracepoint::parse(text).map_err(|e| flag_error("collector.perf.tracepoint", e))?;
        if !tracepoints.contains(&tracepoint) {
            tracepoints.push(tracepoint);
        }
    }
    if !tracepoints.is_empty() {
        let flag = "collector.perf.tracepoint";
        let mounts = read::read_text(&settings.paths.proc("mounts"))
            .map_err(|e| flag_error(flag, format!("reading the mount table: {e}")))?;
        let root = tracefs_mount(&mounts)
            .ok_or_else(|| flag_error(flag, "no tracefs is mounted"))?
            .to_owned();
        for tracepoint in &tracepoints {
            let name = format!("{}:{}", tracepoint.subsystem, tracepoint.event);
            let id_file = std::path::Path::new(&root)
                .join("events")
                .join(&tracepoint.subsystem)
                .join(&tracepoint.event)
                .join("id");
            let id: u64 = read::attribute_value(&id_file).ok_or_else(|| {
                flag_error(
                    flag,
                    format!("unknown tracepoint {name} (no {})", id_file.display()),
                )
            })?;
            let counters = open_on_cpus(PERF_TYPE_TRACEPOINT, id, &cpus, &name);
            if counters.is_empty() {
                return Err(flag_error(
                    flag,
                    format!("cannot open tracepoint {name} on any CPU"),
                ));
            }
            families.push(Counted {
                metric: format!("node_perf_{}_{}", tracepoint.subsystem, tracepoint.event),
                help: format!("Perf tracepoint {name}"),
                counters,
            });
        }
    }

    let classes = [
        (
            o.perf_disable_hardware_profilers,
            HARDWARE,
            &o.perf_hardware_profilers,
            "hardware",
        ),
        (
            o.perf_disable_software_profilers,
            SOFTWARE,
            &o.perf_software_profilers,
            "software",
        ),
        (
            o.perf_disable_cache_profilers,
            CACHE,
            &o.perf_cache_profilers,
            "cache",
        ),
    ];
    for (disabled, table, names, what) in classes {
        if disabled {
            continue;
        }
        let mut opened = 0;
        for kind in chosen(table, names, what) {
            let counters = open_on_cpus(kind.perf_type, kind.config, &cpus, kind.flag);
            opened += counters.len();
            if !counters.is_empty() {
                families.push(Counted {
                    metric: kind.metric.to_owned(),
                    help: kind.help.to_owned(),
                    counters,
                });
            }
        }
        if opened == 0 {
            tracing::info!(
                collector = "perf",
                "no {what} perf counter could be opened on this host; none reported \
                 (--collector.perf.disable-{what}-profilers silences this)"
            );
        }
    }
    boxed(Perf { families })
}

#[derive(Debug)]
struct Perf {
    families: Vec<Counted>,
}

/// The count of a perf counter: the first of the three numbers a read returns.
fn read_count(mut counter: &File) -> std::io::Result<u64> {
    let mut buffer = [0u8; READ_BYTES];
    counter.read_exact(&mut buffer)?;
    let mut value = [0u8; 8];
    value.copy_from_slice(&buffer[..8]);
    Ok(u64::from_ne_bytes(value))
}

impl Collector for Perf {
    fn name(&self) -> &str {
        "perf"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        if self.families.is_empty() {
            return Err(CollectError::failed(
                "perf counters",
                "none could be opened (needs CAP_PERFMON or kernel.perf_event_paranoid <= 0)",
            ));
        }
        for counted in &self.families {
            let family = out.counter(&counted.metric, &counted.help);
            for (cpu, counter) in &counted.counters {
                let value = read_count(counter).map_err(|e| {
                    CollectError::failed(format!("reading {} of CPU {cpu}", counted.metric), e)
                })?;
                out.sample(family, &[("cpu", cpu.as_str())], value as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_read_as_node_exporter_reads_them() {
        assert_eq!(parse_cpus("3").unwrap(), [3]);
        assert_eq!(parse_cpus("0-3").unwrap(), [0, 1, 2, 3]);
        assert_eq!(parse_cpus("1-10:5").unwrap(), [1, 6]);
        assert_eq!(parse_cpus("0-10:5,2").unwrap(), [0, 5, 10, 2]);
        assert_eq!(parse_cpus("1,1,0-1").unwrap(), [1, 0]);
        for bad in ["", "a", "1-", "0-3:0", "0-3:x", "2:2", "0-99999", "-1"] {
            assert!(parse_cpus(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tracepoints_need_subsystem_and_event() {
        assert_eq!(
            Tracepoint::parse("sched:sched_switch").unwrap(),
            Tracepoint {
                subsystem: "sched".into(),
                event: "sched_switch".into()
            }
        );
        assert!(Tracepoint::parse("sched").is_err());
        assert!(Tracepoint::parse("a:b:c").is_err());
    }

    #[test]
    fn tracefs_is_found_in_the_mount_table() {
        let mounts = "proc /proc proc rw 0 0\nnone /sys/kernel/tracing tracefs rw,relatime 0 0\n";
        assert_eq!(tracefs_mount(mounts), Some("/sys/kernel/tracing"));
        assert_eq!(tracefs_mount("proc /proc proc rw 0 0\n"), None);
    }

    #[test]
    fn profiler_names_choose_counters_and_unknown_ones_are_ignored() {
        let all = chosen(SOFTWARE, &[], "software");
        assert_eq!(all.len(), 5);
        let some = chosen(
            SOFTWARE,
            &[
                "ContextSwitch".into(),
                "Nonsense".into(),
                "ContextSwitch".into(),
            ],
            "software",
        );
        assert_eq!(some.len(), 1);
        assert_eq!(some[0].metric, "node_perf_context_switches_total");
        assert_eq!(chosen(CACHE, &[], "cache").len(), 16);
        assert_eq!(chosen(HARDWARE, &[], "hardware").len(), 9);
    }

    #[test]
    fn cache_events_are_encoded_as_the_kernel_expects() {
        let ll_write_miss = CACHE.iter().find(|k| k.flag == "LLWriteMiss").unwrap();
        assert_eq!(ll_write_miss.config, 2 | 1 << 8 | 1 << 16);
        let dtlb_read_hit = CACHE.iter().find(|k| k.flag == "DataTLBReadHit").unwrap();
        assert_eq!(dtlb_read_hit.config, 3);
    }
}
