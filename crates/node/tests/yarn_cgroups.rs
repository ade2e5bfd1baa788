//! The yarn collector on real cgroup v1 hierarchies: the test makes
//! `{cpuacct,memory,blkio}/hadoop-yarn/container_…` as YARN's LinuxContainerExecutor does,
//! moves processes into them that burn CPU, allocate memory and do direct I/O, and checks
//! the collector's figures against the kernel's own files and against what the processes
//! did. Needs root and the v1 controllers mounted under /sys/fs/cgroup.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_node::{Cli, CollectorSet};
use kiln_registry::{MetricSet, ScrapeContext};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CONTROLLERS: [&str; 3] = ["cpuacct", "memory", "blkio"];
const HIERARCHY: &str = "hadoop-yarn";

/// Waits for "go" (sent once it is in its cgroups), then allocates and touches `mib` MiB,
/// frees it and keeps half as much (so the cgroup's peak is above its usage), burns
/// `seconds` of CPU, reads `file` with O_DIRECT and writes as much back with
/// O_DIRECT; prints the CPU seconds it used since "go", the bytes read and written; then
/// holds its memory until stdin closes.
const WORKER: &str = r#"
import mmap, os, sys, time
mib, seconds, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
sys.stdin.readline()
start = time.process_time()
data = b"x" * (mib << 20)
del data
data = b"y" * (mib << 19)
while time.process_time() - start < seconds:
    pass
buf = mmap.mmap(-1, 1 << 20)
fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
read = 0
while True:
    n = os.readv(fd, [buf])
    if n <= 0:
        break
    read += n
os.close(fd)
copy = "%s.%d" % (path, os.getpid())
fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
written = 0
for _ in range(read >> 20):
    written += os.write(fd, buf)
os.close(fd)
os.unlink(copy)
print(time.process_time() - start, read, written, flush=True)
sys.stdin.readline()
"#;

/// What a worker reported.
#[derive(Debug, Clone, Copy, Default)]
struct Work {
    cpu_seconds: f64,
    read: u64,
    written: u64,
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    mib: u64,
}

/// The test's containers and their workers. Dropped (also when the test fails) it stops the
/// workers it started, by PID, then removes the cgroups it made.
#[derive(Default)]
struct Containers {
    workers: Vec<Worker>,
    /// Cgroup directories made by the test, parents first.
    made: Vec<PathBuf>,
}

impl Containers {
    /// Makes `container` under every controller; a generous blkio limit on `device` makes
    /// the kernel keep the v1 throttle statistics (recent kernels start blk-throttle on a
    /// disk only once some group has a limit on it).
    fn make(&mut self, container: &str, device: &str) {
        for controller in CONTROLLERS {
            let hierarchy = Path::new(CGROUP_ROOT).join(controller).join(HIERARCHY);
            if !hierarchy.exists() {
                std::fs::create_dir(&hierarchy)
                    .unwrap_or_else(|e| panic!("mkdir {} (needs root): {e}", hierarchy.display()));
                self.made.push(hierarchy.clone());
            }
            let dir = hierarchy.join(container);
            std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            self.made.push(dir.clone());
            if controller == "blkio" {
                for file in [
                    "blkio.throttle.read_bps_device",
                    "blkio.throttle.write_bps_device",
                ] {
                    std::fs::write(dir.join(file), format!("{device} 107374182400\n"))
                        .unwrap_or_else(|e| panic!("{file}: {e}"));
                }
            }
        }
    }

    /// Starts a worker, moves it into `container`'s cgroups, then lets it work.
    fn start(&mut self, container: &str, mib: u64, seconds: f64, file: &Path) {
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", WORKER, &mib.to_string(), &seconds.to_string()])
            .arg(file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let pid = child.id();
        self.workers.push(Worker {
            child,
            stdin,
            stdout,
            mib,
        });
        for controller in CONTROLLERS {
            let procs = Path::new(CGROUP_ROOT)
                .join(controller)
                .join(HIERARCHY)
                .join(container)
                .join("cgroup.procs");
            std::fs::write(&procs, pid.to_string())
                .unwrap_or_else(|e| panic!("moving {pid} into {}: {e}", procs.display()));
        }
        let worker = self.workers.last_mut().unwrap();
        writeln!(worker.stdin.as_mut().unwrap(), "go").unwrap();
    }

    /// Stops the last worker started, which must be `container`'s only one, and removes the
    /// container's cgroups, as YARN does when a container exits.
    fn remove_last(&mut self, container: &str) {
        let mut worker = self.workers.pop().unwrap();
        drop(worker.stdin.take());
        worker.child.kill().unwrap();
        worker.child.wait().unwrap();
        let dirs: Vec<PathBuf> = CONTROLLERS
            .iter()
            .map(|controller| {
                Path::new(CGROUP_ROOT)
                    .join(controller)
                    .join(HIERARCHY)
                    .join(container)
            })
            .collect();
        for dir in &dirs {
            remove_cgroup(dir);
        }
        self.made.retain(|dir| !dirs.contains(dir));
    }

    /// Waits for every worker to finish its work (it then idles, holding its memory).
    fn wait_for_work(&mut self) -> Vec<Work> {
        self.workers
            .iter_mut()
            .map(|worker| {
                let mut line = String::new();
                worker.stdout.read_line(&mut line).unwrap();
                let fields: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(fields.len(), 3, "worker said {line:?}");
                Work {
                    cpu_seconds: fields[0].parse().unwrap(),
                    read: fields[1].parse().unwrap(),
                    written: fields[2].parse().unwrap(),
                }
            })
            .collect()
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            drop(worker.stdin.take());
            let _ = worker.child.kill();
            let _ = worker.child.wait();
        }
        for dir in self.made.iter().rev() {
            remove_cgroup(dir);
        }
    }
}

/// Removes a cgroup directory, which can stay busy for a moment after its last process is
/// reaped.
fn remove_cgroup(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `major:minor` of the whole disk holding `path` (blk-throttle takes disks, not partitions).
fn disk_of(path: &Path) -> String {
    let dev = std::fs::metadata(path).unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    assert_ne!(
        major,
        0,
        "{} is not on a block device: direct I/O would not be counted",
        path.display()
    );
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if sys.join("partition").exists() {
        let parent = std::fs::read_to_string(sys.join("../dev")).unwrap();
        return parent.trim().to_owned();
    }
    format!("{major}:{minor}")
}

fn kernel_number(controller: &str, container: &str, file: &str) -> f64 {
    let path = Path::new(CGROUP_ROOT)
        .join(controller)
        .join(HIERARCHY)
        .join(container)
        .join(file);
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `(read, written)` summed over devices from the kernel's blkio file.
fn kernel_io(container: &str) -> (f64, f64) {
    let path = Path::new(CGROUP_ROOT)
        .join("blkio")
        .join(HIERARCHY)
        .join(container)
        .join("blkio.throttle.io_service_bytes");
    let mut sums = (0.0, 0.0);
    for line in std::fs::read_to_string(path).unwrap().lines() {
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            [_, "Read", n] => sums.0 += n.parse::<f64>().unwrap(),
            [_, "Write", n] => sums.1 += n.parse::<f64>().unwrap(),
            _ => {}
        }
    }
    sums
}

fn yarn_collector() -> CollectorSet {
    let cli = Cli::try_parse_from([
        "kiln-node-exporter",
        "--collector.disable-defaults",
        "--collector.yarn",
    ])
    .unwrap();
    CollectorSet::from_cli(&cli).unwrap()
}

fn collect(set: &CollectorSet) -> MetricSet {
    let collector = set.collectors().next().unwrap();
    let mut out = MetricSet::default();
    collector
        .collect(
            &ScrapeContext::with_budget(Duration::from_secs(10)),
            &mut out,
        )
        .unwrap();
    out.seal();
    out
}

/// The value of `family`, which has one series without labels.
fn unlabelled(set: &MetricSet, family: &str) -> f64 {
    set.families()
        .find(|f| f.name() == family)
        .and_then(|f| f.samples().next())
        .unwrap_or_else(|| panic!("no {family}"))
        .value()
}

/// `family`'s value for `container`, with the application label it carries.
fn reported(set: &MetricSet, family: &str, container: &str) -> (f64, String) {
    set.families()
        .filter(|f| f.name() == family)
        .flat_map(|f| f.samples())
        .find(|s| s.label("yarn_container") == Some(container))
        .map(|s| (s.value(), s.label("yarn_application").unwrap().to_owned()))
        .unwrap_or_else(|| panic!("no {family} for {container}"))
}

/// A container of the test, its application, and the `(MiB, CPU seconds)` of each of its
/// processes.
type Planned<'a> = (&'a str, &'a str, &'a [(u64, f64)]);

#[test]
fn real_containers_report_what_their_processes_did() {
    assert!(
        Path::new(CGROUP_ROOT).join("cpuacct/cgroup.procs").exists(),
        "this test needs the cgroup v1 controllers mounted under {CGROUP_ROOT}"
    );
    // A cluster timestamp of this run's own, so leftovers of another run cannot be mistaken
    // for ours.
    let cluster = format!("17{:011}", std::process::id());
    let first = format!("container_{cluster}_0001_01_000001");
    let executor = format!("container_e9_{cluster}_0001_01_000002");
    let other_app = format!("container_{cluster}_0002_01_000001");
    let app1 = format!("application_{cluster}_0001");
    let app2 = format!("application_{cluster}_0002");
    let plan: [Planned<'_>; 3] = [
        (&first, &app1, &[(32, 0.3)]),
        (&executor, &app1, &[(64, 0.4), (48, 0.2)]),
        (&other_app, &app2, &[(16, 0.1)]),
    ];

    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let input = scratch.path().join("input");
    std::fs::write(&input, vec![7u8; 4 << 20]).unwrap();
    std::fs::File::open(&input).unwrap().sync_all().unwrap();
    let device = disk_of(&input);

    let mut containers = Containers::default();
    for (container, _, _) in plan {
        containers.make(container, &device);
    }
    // The collector keeps each container's files open from one scrape to the next: this
    // scrape opens them while the containers are idle, and the one after the work must
    // read the kernel's new figures through them.
    let yarn = yarn_collector();
    let before = collect(&yarn);
    for (container, _, _) in plan {
        let (cpu, _) = reported(&before, "node_yarn_container_cpu_seconds_total", container);
        assert_eq!(cpu, 0.0, "{container} has done nothing yet");
    }
    for (container, _, processes) in plan {
        for &(mib, seconds) in processes {
            containers.start(container, mib, seconds, &input);
        }
    }
    let work = containers.wait_for_work();
    let set = collect(&yarn);

    let mut worker = 0;
    for (container, application, processes) in plan {
        let mut did = Work::default();
        let (mut held, mut largest) = (0, 0);
        for _ in processes.iter() {
            did.cpu_seconds += work[worker].cpu_seconds;
            did.read += work[worker].read;
            did.written += work[worker].written;
            let mib = containers.workers[worker].mib;
            held += mib << 19;
            largest = largest.max(mib << 20);
            worker += 1;
        }
        let (cpu, app) = reported(&set, "node_yarn_container_cpu_seconds_total", container);
        assert_eq!(app, application);
        let kernel_cpu = kernel_number("cpuacct", container, "cpuacct.usage") / 1e9;
        // The workers sit blocked on stdin now; only a stray wake-up could add to the file.
        assert!(
            (kernel_cpu - cpu).abs() < 0.005,
            "{container}: {cpu} s against cpuacct.usage {kernel_cpu} s"
        );
        assert!(
            cpu >= did.cpu_seconds,
            "{container}: {cpu} s reported, the processes used {} s",
            did.cpu_seconds
        );

        let (memory, _) = reported(&set, "node_yarn_container_memory_bytes", container);
        let kernel_memory = kernel_number("memory", container, "memory.usage_in_bytes");
        assert!(
            (kernel_memory - memory).abs() <= f64::from(1 << 20),
            "{container}: {memory} B against memory.usage_in_bytes {kernel_memory} B"
        );
        assert!(
            memory >= held as f64,
            "{container}: {memory} B reported, {held} B held"
        );
        let (peak, _) = reported(&set, "node_yarn_container_memory_peak_bytes", container);
        let kernel_peak = kernel_number("memory", container, "memory.max_usage_in_bytes");
        assert!(
            (kernel_peak - peak).abs() <= f64::from(1 << 20),
            "{container}: peak {peak} B against memory.max_usage_in_bytes {kernel_peak} B"
        );
        assert!(
            peak >= largest.max(held) as f64 && peak > memory,
            "{container}: peak {peak} B, now {memory} B; the processes held {held} B, one \
             {largest} B at most"
        );

        let (read, _) = reported(&set, "node_yarn_container_io_read_bytes_total", container);
        let (written, _) = reported(&set, "node_yarn_container_io_write_bytes_total", container);
        assert_eq!((read, written), kernel_io(container), "{container}");
        assert!(
            read >= did.read as f64 && written >= did.written as f64,
            "{container}: read {read} B, wrote {written} B; the processes read {} B, wrote {} B",
            did.read,
            did.written
        );
        assert!(did.read >= 4 << 20 && did.written >= 4 << 20);
    }
    let found = unlabelled(&set, "node_yarn_containers");
    assert!(found >= 3.0, "{found}");

    // A container that exits is no longer reported, and the others still are, read through
    // the files kept open.
    containers.remove_last(&other_app);
    let after = collect(&yarn);
    let cpu = |set: &MetricSet| -> Vec<String> {
        set.families()
            .filter(|f| f.name() == "node_yarn_container_cpu_seconds_total")
            .flat_map(|f| f.samples())
            .filter_map(|s| s.label("yarn_container").map(str::to_owned))
            .filter(|container| container.contains(&cluster))
            .collect()
    };
    assert_eq!(cpu(&after), [first.clone(), executor.clone()]);
    let (executor_cpu, _) = reported(&after, "node_yarn_container_cpu_seconds_total", &executor);
    let kernel_cpu = kernel_number("cpuacct", &executor, "cpuacct.usage") / 1e9;
    assert!((kernel_cpu - executor_cpu).abs() < 0.005);
    assert_eq!(
        unlabelled(&after, "node_yarn_container_malformed_files_total"),
        0.0,
        "a removed container is not a damaged file"
    );
}
