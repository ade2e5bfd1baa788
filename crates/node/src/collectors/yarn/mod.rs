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

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kiln_registry::config::ConfigError;
use kiln_registry::yarn::{self as names, ContainerId};
use kiln_registry::{CollectError, Collector, FamilyId, LogLimiter, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::flag_error;
use crate::read::{self, Entries, KeptFile};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options;
    boxed(Yarn {
        cgroup_root: settings.paths.sys("fs/cgroup"),
        hierarchy: hierarchy(&options.yarn_cgroup_hierarchy)?,
        max_containers: options.yarn_max_containers,
        kept: Mutex::new(Kept::default()),
        file_budget: file_budget(kiln_registry::process_policy::open_files_limit()),
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

/// How many container files may stay open between scrapes: a quarter of the descriptors
/// the process may hold, the rest left to connections and other collectors. Past it, a
/// container's files are opened and closed each scrape, as they were before.
fn file_budget(open_files_limit: Option<u64>) -> usize {
    open_files_limit.map_or(usize::MAX, |limit| {
        usize::try_from(limit / 4).unwrap_or(usize::MAX)
    })
}

struct Yarn {
    /// `<sysfs>/fs/cgroup`.
    cgroup_root: PathBuf,
    /// `hadoop-yarn`.
    hierarchy: PathBuf,
    max_containers: usize,
    /// Each reported container's files, open between scrapes. Opening a cgroup file costs
    /// several times reading it again, and 200 containers have 800 of them.
    kept: Mutex<Kept>,
    /// Most files kept open at once.
    file_budget: usize,
    /// Containers left out over all scrapes so far.
    dropped: AtomicU64,
    /// Files skipped because a read failed (other than for a container that is gone) or
    /// their text was not the kernel's shape, over all scrapes so far.
    malformed: AtomicU64,
    warnings: LogLimiter,
}

/// The YARN hierarchy under each controller, listed once a scrape.
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

    /// Where `file` of every container is, and its name there.
    fn locate(&self, file: File) -> (Option<&Hierarchy>, &'static str) {
        match self {
            Layout::V1 {
                cpuacct,
                memory,
                blkio,
            } => match file {
                File::Cpu => (cpuacct.as_ref(), "cpuacct.usage"),
                File::Memory => (memory.as_ref(), "memory.usage_in_bytes"),
                File::Peak => (memory.as_ref(), "memory.max_usage_in_bytes"),
                File::Io => (blkio.as_ref(), "blkio.throttle.io_service_bytes"),
            },
            Layout::V2(unified) => (
                unified.as_ref(),
                match file {
                    File::Cpu => "cpu.stat",
                    File::Memory => "memory.current",
                    File::Peak => "memory.peak",
                    File::Io => "io.stat",
                },
            ),
        }
    }
}

/// The YARN hierarchy under one controller: its containers, and the directory to open
/// their files in.
struct Hierarchy {
    containers: Entries,
    /// For the log.
    path: PathBuf,
}

/// The files read of each container.
#[derive(Clone, Copy)]
enum File {
    Cpu,
    Memory,
    Peak,
    Io,
}

/// The reported containers, their order and their files, kept from one scrape to the next.
#[derive(Default)]
struct Kept {
    /// By container name.
    containers: HashMap<Box<str>, Container>,
    /// Their names in name order, sorted again only when a container comes or goes.
    order: Vec<Box<str>>,
    /// Whether the files were opened in a unified (v2) layout; a remount closes them all.
    unified: bool,
    /// Files open now, over all containers.
    open: usize,
    /// Scrapes so far, to find the containers the latest one did not list.
    scrape: u64,
}

impl Kept {
    /// Brings the reported containers up to date with `names` (every hierarchy's listing,
    /// a container once per controller) and returns how many containers there are. The
    /// first `max` in name order are reported; the usual scrape finds the same containers
    /// as the last and costs a lookup per name.
    fn update<'a>(&mut self, names: impl Iterator<Item = &'a str>, max: usize) -> usize {
        self.scrape += 1;
        let scrape = self.scrape;
        let (mut listed, mut new) = (0, Vec::new());
        for name in names {
            match self.containers.get_mut(name) {
                Some(container) if container.listed != scrape => {
                    container.listed = scrape;
                    listed += 1;
                }
                Some(_) => {}
                None => new.push(name),
            }
        }
        new.sort_unstable();
        new.dedup();
        let found = listed + new.len();
        if new.is_empty() && listed == self.containers.len() {
            return found;
        }
        self.forget(|container| container.listed != scrape);
        let mut order: Vec<Box<str>> = self
            .containers
            .keys()
            .cloned()
            .chain(new.into_iter().map(Box::from))
            .collect();
        order.sort_by(|a, b| read::natural_cmp(a, b).then_with(|| a.cmp(b)));
        order.truncate(max);
        for name in &order {
            if !self.containers.contains_key(name)
                && let Some(id) = names::parse(name)
            {
                self.containers
                    .insert(name.clone(), Container::new(id, scrape));
            }
        }
        self.order = order;
        // Past the limit: the containers that fell out of the first `max` give their
        // files back.
        if self.containers.len() > self.order.len() {
            let order = std::mem::take(&mut self.order);
            let reported: std::collections::HashSet<&str> =
                order.iter().map(AsRef::as_ref).collect();
            self.forget(|container| !reported.contains(container.id.container.as_str()));
            self.order = order;
        }
        found
    }

    /// Drops the containers `gone` picks, closing their files.
    fn forget(&mut self, gone: impl Fn(&Container) -> bool) {
        let open = &mut self.open;
        self.containers.retain(|_, container| {
            let keep = !gone(container);
            if !keep {
                *open -= container.open_files();
            }
            keep
        });
        let containers = &self.containers;
        self.order.retain(|name| containers.contains_key(name));
    }
}

/// A container seen by an earlier scrape.
struct Container {
    id: ContainerId,
    /// Indexed by [`File`].
    files: [Slot; 4],
    /// The scrape that last listed it.
    listed: u64,
    /// Its cgroup was removed (`ENODEV` from a kept file).
    gone: bool,
}

impl Container {
    fn new(id: ContainerId, scrape: u64) -> Self {
        Self {
            id,
            files: [const { Slot::Closed }; 4],
            listed: scrape,
            gone: false,
        }
    }

    fn open_files(&self) -> usize {
        self.files
            .iter()
            .filter(|slot| matches!(slot, Slot::Open(_)))
            .count()
    }
}

/// One file of a container.
enum Slot {
    /// Not opened yet, or read and closed for want of descriptors.
    Closed,
    /// The controller does not have it (a kernel without `memory.peak`). A cgroup's files are
    /// there from its creation, so it is not looked for again.
    Missing,
    Open(KeptFile),
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

    fn layout(&self) -> Result<Layout, CollectError> {
        let list = |path: PathBuf| match Entries::list_unordered(&path, names::is_container) {
            Ok(containers) => Ok(Some(Hierarchy { containers, path })),
            // Not made yet, or removed since: the NodeManager starting or cleaning up.
            Err(CollectError::NoData) => Ok(None),
            Err(error) => Err(error),
        };
        let v1 = |controller: &str| list(self.cgroup_root.join(controller).join(&self.hierarchy));
        if self.unified() {
            return Ok(Layout::V2(list(self.cgroup_root.join(&self.hierarchy))?));
        }
        Ok(Layout::V1 {
            // systemd links `cpuacct` to the joint `cpu,cpuacct` mount; without the link the
            // joint name is all there is.
            cpuacct: match v1("cpuacct")? {
                Some(found) => Some(found),
                None => v1("cpu,cpuacct")?,
            },
            memory: v1("memory")?,
            blkio: v1("blkio")?,
        })
    }

    /// The current text of `file` of `container`, or `None` (counted and logged unless the
    /// file is missing or the container gone). The file is kept open for the next scrape
    /// while `open` is within the budget.
    fn text(
        &self,
        layout: &Layout,
        container: &mut Container,
        file: File,
        open: &mut usize,
    ) -> Option<read::Text> {
        let (hierarchy, name) = layout.locate(file);
        let hierarchy = hierarchy?;
        let slot = &mut container.files[file as usize];
        let read = match slot {
            Slot::Missing => return None,
            Slot::Open(kept) => kept.read_whole(),
            Slot::Closed => match hierarchy
                .containers
                .dir()
                .keep_open(&[&container.id.container, name])
            {
                Ok(kept) => {
                    let read = kept.read_whole();
                    if *open < self.file_budget {
                        *slot = Slot::Open(kept);
                        *open += 1;
                    }
                    read
                }
                Err(error) if missing(&error) => {
                    // Absent from a cgroup that is there: the controller lacks the file. A
                    // container not (yet) under this controller is looked for again.
                    if hierarchy.containers.contains(&container.id.container) {
                        *slot = Slot::Missing;
                    }
                    return None;
                }
                Err(error) => Err(error),
            },
        };
        match read {
            Ok(text) => Some(text),
            // Removed since it was listed: YARN cleaning up after the container exited.
            Err(error) if missing(&error) => {
                container.gone = true;
                None
            }
            Err(error) => {
                self.skip(hierarchy, &container.id.container, name, &error.to_string());
                None
            }
        }
    }

    /// `file` of `container` parsed by `parse`; text that does not parse is counted and
    /// logged.
    fn read<T>(
        &self,
        layout: &Layout,
        container: &mut Container,
        file: File,
        open: &mut usize,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let text = self.text(layout, container, file, open)?;
        let value = parse(&text);
        if value.is_none()
            && let (Some(hierarchy), name) = layout.locate(file)
        {
            self.skip(
                hierarchy,
                &container.id.container,
                name,
                "not the kernel's format",
            );
        }
        value
    }

    fn skip(&self, hierarchy: &Hierarchy, container: &str, file: &str, why: &str) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        if let Some(held_back) = self.warnings.check() {
            tracing::warn!(
                collector = "yarn",
                file = %hierarchy.path.join(container).join(file).display(),
                held_back,
                "Skipped a YARN container's cgroup file: {why}"
            );
        }
    }

    fn usage(&self, layout: &Layout, container: &mut Container, open: &mut usize) -> Usage {
        let unified = matches!(layout, Layout::V2(_));
        let cpu_seconds = if unified {
            self.read(layout, container, File::Cpu, open, stats::cpu_usage_usec)
                .map(|microseconds| microseconds as f64 / 1e6)
        } else {
            self.read(layout, container, File::Cpu, open, stats::number)
                .map(|nanoseconds| nanoseconds as f64 / 1e9)
        };
        let io = if unified {
            stats::io_stat_bytes
        } else {
            stats::blkio_service_bytes
        };
        Usage {
            cpu_seconds,
            memory_bytes: self.read(layout, container, File::Memory, open, stats::number),
            memory_peak_bytes: self.read(layout, container, File::Peak, open, stats::number),
            io_bytes: self.read(layout, container, File::Io, open, io),
        }
    }
}

/// Errors that mean "not there", not "broken": the container exited between listing and
/// reading (its kept files then fail with `ENODEV`), or the controller does not offer the
/// file.
fn missing(error: &io::Error) -> bool {
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
        let layout = self.layout()?;
        let families = Families::declare(out);

        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let unified = matches!(layout, Layout::V2(_));
        if kept.unified != unified {
            *kept = Kept {
                unified,
                ..Kept::default()
            };
        }
        let names = layout
            .hierarchies()
            .flat_map(|hierarchy| hierarchy.containers.names());
        let found = kept.update(names, self.max_containers);
        let reported = kept.order.len();
        let Kept {
            containers,
            order,
            open,
            ..
        } = &mut *kept;
        let mut gone = false;
        for name in order.iter() {
            if ctx.expired() {
                tracing::warn!(
                    collector = "yarn",
                    "Time budget spent; the remaining containers are skipped this scrape."
                );
                break;
            }
            let Some(container) = containers.get_mut(name) else {
                continue;
            };
            let usage = self.usage(&layout, container, open);
            gone |= container.gone;
            let labels = [
                ("yarn_container", container.id.container.as_str()),
                ("yarn_application", container.id.application.as_str()),
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
        // Containers removed while this scrape read them give their files back now.
        if gone {
            kept.forget(|container| container.gone);
        }
        drop(kept);

        let dropped = (found - reported) as u64;
        let dropped = self.dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
        out.gauge_value(
            "node_yarn_containers",
            "YARN container cgroups found on this host, reported or not.",
            found as f64,
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
    use super::{Kept, file_budget, hierarchy};

    fn order(kept: &Kept) -> Vec<&str> {
        kept.order.iter().map(AsRef::as_ref).collect()
    }

    #[test]
    fn the_first_containers_in_name_order_are_reported_as_they_come_and_go() {
        let nine = "container_1700000000000_1_01_9";
        let ten = "container_1700000000000_1_01_10";
        let other = "container_1700000000000_2_01_1";
        let mut kept = Kept::default();
        // Each controller lists every container.
        assert_eq!(kept.update([ten, nine, ten, nine].into_iter(), 10), 2);
        assert_eq!(order(&kept), [nine, ten]);
        assert_eq!(kept.update([ten, nine].into_iter(), 10), 2);
        assert_eq!(order(&kept), [nine, ten]);
        // Past the limit, the last in name order is found but not kept.
        assert_eq!(kept.update([other, ten, nine].into_iter(), 2), 3);
        assert_eq!(order(&kept), [nine, ten]);
        assert_eq!(kept.containers.len(), 2);
        // One exits: the next in line is reported.
        assert_eq!(kept.update([other, ten].into_iter(), 2), 2);
        assert_eq!(order(&kept), [ten, other]);
        assert_eq!(kept.containers.len(), 2);
    }

    #[test]
    fn a_quarter_of_the_descriptors_may_stay_open() {
        assert_eq!(file_budget(Some(1024)), 256);
        assert_eq!(file_budget(Some(524_288)), 131_072);
        assert_eq!(file_budget(None), usize::MAX);
    }

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
