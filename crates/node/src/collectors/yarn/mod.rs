//! `yarn` (off by default, kiln addition): CPU, memory and I/O of each YARN container, read
//! from the cgroups YARN's LinuxContainerExecutor makes for them, labelled with
//! `yarn_container` and `yarn_application` exactly as the GPU exporter labels a container's
//! GPU processes, so the two join.
//!
//! cgroup v1: `<sysfs>/fs/cgroup/{cpuacct,memory,blkio}/<hierarchy>/<container>/`.
//! cgroup v2 (a unified mount, recognised by its `cgroup.controllers`):
//! `<sysfs>/fs/cgroup/<hierarchy>/<container>/`.
//!
//! A host runs at most a few hundred containers, but nothing stops a bad job from starting
//! more: past `--collector.yarn.max-containers` (in name order) containers are counted, not
//! reported, so a scrape's size stays bounded.

mod stats;

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kiln_registry::config::ConfigError;
use kiln_registry::yarn::{self as names, ContainerId};
use kiln_registry::{CollectError, Collector, FamilyId, LogLimiter, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::flag_error;
use crate::read::{self, AttributeDir};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options;
    boxed(Yarn {
        cgroup_root: settings.paths.sys("fs/cgroup"),
        hierarchy: hierarchy(&options.yarn_cgroup_hierarchy)?,
        max_containers: options.yarn_max_containers,
        dropped: AtomicU64::new(0),
        malformed: AtomicU64::new(0),
        warnings: LogLimiter::new(Duration::from_secs(60)),
    })
}

/// The hierarchy as a relative path: YARN's setting is written `/hadoop-yarn`, and a path
/// that climbs out (`..`) or is empty is a mistake to refuse at start.
fn hierarchy(flag: &str) -> Result<PathBuf, ConfigError> {
    let path = Path::new(flag.trim_start_matches('/'));
    let plain = path
        .components()
        .all(|component| matches!(component, Component::Normal(_)));
    if !plain || path.as_os_str().is_empty() {
        return Err(flag_error(
            "collector.yarn.cgroup-hierarchy",
            format!("{flag:?} is not a cgroup path such as hadoop-yarn"),
        ));
    }
    Ok(path.to_path_buf())
}

struct Yarn {
    /// `<sysfs>/fs/cgroup`.
    cgroup_root: PathBuf,
    /// `hadoop-yarn`.
    hierarchy: PathBuf,
    max_containers: usize,
    /// Containers left out over all scrapes so far.
    dropped: AtomicU64,
    /// Files skipped because a read failed (other than for a container that is gone) or
    /// their text was not the kernel's shape, over all scrapes so far.
    malformed: AtomicU64,
    warnings: LogLimiter,
}

/// Where the containers' files are, as this host mounts cgroups.
enum Layout {
    /// One directory per controller, each with the YARN hierarchy under it.
    V1 {
        cpuacct: Option<Hierarchy>,
        memory: Option<Hierarchy>,
        blkio: Option<Hierarchy>,
    },
    /// One directory holding every controller's files.
    V2(Option<Hierarchy>),
}

impl Layout {
    /// The hierarchies that exist: none before YARN has made its own.
    fn hierarchies(&self) -> impl Iterator<Item = &Hierarchy> {
        let all = match self {
            Layout::V1 {
                cpuacct,
                memory,
                blkio,
            } => [cpuacct.as_ref(), memory.as_ref(), blkio.as_ref()],
            Layout::V2(unified) => [unified.as_ref(), None, None],
        };
        all.into_iter().flatten()
    }
}

/// The YARN hierarchy under one controller, opened once a scrape: each container's files
/// are then opened relative to it.
struct Hierarchy {
    dir: AttributeDir,
    /// For the log.
    path: PathBuf,
}

impl Hierarchy {
    fn open(path: PathBuf) -> Option<Self> {
        Some(Self {
            dir: AttributeDir::open(&path)?,
            path,
        })
    }
}

/// The figures of one container; `None` where a file is missing or malformed.
#[derive(Default)]
struct Usage {
    cpu_seconds: Option<f64>,
    memory_bytes: Option<u64>,
    memory_peak_bytes: Option<u64>,
    io_bytes: Option<(u64, u64)>,
}

/// The families every scrape writes.
struct Families {
    cpu: FamilyId,
    memory: FamilyId,
    peak: FamilyId,
    read: FamilyId,
    write: FamilyId,
}

impl Families {
    fn declare(out: &mut MetricSet) -> Self {
        Self {
            cpu: out.counter(
                "node_yarn_container_cpu_seconds_total",
                "CPU time (user and system) used by the processes of a YARN container, in seconds.",
            ),
            memory: out.gauge(
                "node_yarn_container_memory_bytes",
                "Memory a YARN container's cgroup is charged for now, page cache included, in bytes.",
            ),
            peak: out.gauge(
                "node_yarn_container_memory_peak_bytes",
                "Most memory a YARN container's cgroup has been charged for since it started, in bytes.",
            ),
            read: out.counter(
                "node_yarn_container_io_read_bytes_total",
                "Bytes a YARN container read from block devices, summed over devices.",
            ),
            write: out.counter(
                "node_yarn_container_io_write_bytes_total",
                "Bytes a YARN container wrote to block devices, summed over devices.",
            ),
        }
    }
}

impl Yarn {
    /// Whether cgroups are mounted as one v2 hierarchy.
    fn unified(&self) -> bool {
        self.cgroup_root.join("cgroup.controllers").is_file()
    }

    fn layout(&self) -> Layout {
        let open = |controller: &str| {
            Hierarchy::open(self.cgroup_root.join(controller).join(&self.hierarchy))
        };
        if self.unified() {
            return Layout::V2(Hierarchy::open(self.cgroup_root.join(&self.hierarchy)));
        }
        Layout::V1 {
            // systemd links `cpuacct` to the joint `cpu,cpuacct` mount; without the link the
            // joint name is all there is.
            cpuacct: open("cpuacct").or_else(|| open("cpu,cpuacct")),
            memory: open("memory"),
            blkio: open("blkio"),
        }
    }

    /// The containers under every controller's copy of the hierarchy, in name order, once each.
    fn containers(&self, layout: &Layout) -> Result<Vec<ContainerId>, CollectError> {
        let mut names = Vec::new();
        for hierarchy in layout.hierarchies() {
            match read::dir_entries(&hierarchy.path, |name| names::parse(name).is_some()) {
                Ok(entries) => names.extend(entries.into_iter().map(|(name, _)| name)),
                // Removed since it was opened: the NodeManager cleaning up.
                Err(CollectError::NoData) => {}
                Err(error) => return Err(error),
            }
        }
        names.sort_by(|a, b| read::natural_cmp(a, b));
        names.dedup();
        Ok(names.iter().filter_map(|name| names::parse(name)).collect())
    }

    /// Reads `file` of `container` under `hierarchy`, parsed by `parse`. A file that is missing
    /// (a controller YARN does not manage, a kernel without `memory.peak`) or that vanished
    /// with its container is `None`; one that cannot be read otherwise, or whose text does
    /// not parse, is `None`, counted and logged (once a minute at most).
    fn read<T>(
        &self,
        hierarchy: Option<&Hierarchy>,
        container: &str,
        file: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let hierarchy = hierarchy?;
        let text = match hierarchy.dir.read_whole(&[container, file]) {
            Ok(text) => text,
            Err(error) if gone(&error) => return None,
            Err(error) => {
                self.skip(
                    &hierarchy.path.join(container).join(file),
                    &error.to_string(),
                );
                return None;
            }
        };
        let value = parse(&text);
        if value.is_none() {
            self.skip(
                &hierarchy.path.join(container).join(file),
                "not the kernel's format",
            );
        }
        value
    }

    fn skip(&self, path: &Path, why: &str) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        if let Some(held_back) = self.warnings.check() {
            tracing::warn!(
                collector = "yarn",
                file = %path.display(),
                held_back,
                "Skipped a YARN container's cgroup file: {why}"
            );
        }
    }

    fn usage(&self, layout: &Layout, container: &str) -> Usage {
        match layout {
            Layout::V1 {
                cpuacct,
                memory,
                blkio,
            } => Usage {
                cpu_seconds: self
                    .read(cpuacct.as_ref(), container, "cpuacct.usage", stats::number)
                    .map(|nanoseconds| nanoseconds as f64 / 1e9),
                memory_bytes: self.read(
                    memory.as_ref(),
                    container,
                    "memory.usage_in_bytes",
                    stats::number,
                ),
                memory_peak_bytes: self.read(
                    memory.as_ref(),
                    container,
                    "memory.max_usage_in_bytes",
                    stats::number,
                ),
                io_bytes: self.read(
                    blkio.as_ref(),
                    container,
                    "blkio.throttle.io_service_bytes",
                    stats::blkio_service_bytes,
                ),
            },
            Layout::V2(dir) => Usage {
                cpu_seconds: self
                    .read(dir.as_ref(), container, "cpu.stat", stats::cpu_usage_usec)
                    .map(|microseconds| microseconds as f64 / 1e6),
                memory_bytes: self.read(dir.as_ref(), container, "memory.current", stats::number),
                memory_peak_bytes: self.read(dir.as_ref(), container, "memory.peak", stats::number),
                io_bytes: self.read(dir.as_ref(), container, "io.stat", stats::io_stat_bytes),
            },
        }
    }
}

/// Errors that mean "not there", not "broken": the container exited between listing and
/// reading, or the controller does not offer the file.
fn gone(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOENT | libc::ENODEV | libc::ENOTDIR | libc::ESRCH)
    )
}

impl Collector for Yarn {
    fn name(&self) -> &str {
        "yarn"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let layout = self.layout();
        let containers = self.containers(&layout)?;
        let families = Families::declare(out);
        let reported = containers.len().min(self.max_containers);
        for id in &containers[..reported] {
            if ctx.expired() {
                tracing::warn!(
                    collector = "yarn",
                    "Time budget spent; the remaining containers are skipped this scrape."
                );
                break;
            }
            let usage = self.usage(&layout, &id.container);
            let labels = [
                ("yarn_container", id.container.as_str()),
                ("yarn_application", id.application.as_str()),
            ];
            if let Some(seconds) = usage.cpu_seconds {
                out.sample(families.cpu, &labels, seconds);
            }
            if let Some(bytes) = usage.memory_bytes {
                out.sample(families.memory, &labels, bytes as f64);
            }
            if let Some(bytes) = usage.memory_peak_bytes {
                out.sample(families.peak, &labels, bytes as f64);
            }
            if let Some((read, written)) = usage.io_bytes {
                out.sample(families.read, &labels, read as f64);
                out.sample(families.write, &labels, written as f64);
            }
        }
        let dropped = (containers.len() - reported) as u64;
        let dropped = self.dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
        out.gauge_value(
            "node_yarn_containers",
            "YARN container cgroups found on this host, reported or not.",
            containers.len() as f64,
        );
        out.counter_value(
            "node_yarn_containers_dropped_total",
            "YARN containers left out of scrapes because of --collector.yarn.max-containers, added up over scrapes.",
            dropped as f64,
        );
        out.counter_value(
            "node_yarn_container_malformed_files_total",
            "YARN container cgroup files skipped because they could not be read or understood.",
            self.malformed.load(Ordering::Relaxed) as f64,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::hierarchy;

    #[test]
    fn the_hierarchy_is_a_plain_relative_path() {
        assert_eq!(
            hierarchy("/hadoop-yarn").unwrap(),
            std::path::Path::new("hadoop-yarn")
        );
        assert_eq!(
            hierarchy("yarn/containers").unwrap(),
            std::path::Path::new("yarn/containers")
        );
        for bad in ["", "/", "../etc", "hadoop-yarn/../.."] {
            assert!(hierarchy(bad).is_err(), "{bad}");
        }
    }
}
