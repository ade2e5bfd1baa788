//! Time of one collection of each default collector against this host's /proc and /sys,
//! and of a whole scrape through the runner: what a Prometheus scrape costs in CPU. The
//! yarn collector is timed on generated trees of 200 containers (cgroup v2 and v1), on 200
//! real v1 cgroups where the benchmark runs as root, and as part of a whole scrape (on the
//! v2 tree, and on the real cgroups where there are).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kiln_node::{Cli, CollectorSet, NodeFlags};
use kiln_registry::metrics::Format;
use kiln_registry::{MetricSet, ScrapeContext, Selection};

fn default_set() -> CollectorSet {
    let flags = NodeFlags::parse_from(["bench"]);
    CollectorSet::from_flags(&flags).unwrap()
}

fn per_collector(c: &mut Criterion) {
    let set = default_set();
    let mut group = c.benchmark_group("collector");
    let mut out = MetricSet::default();
    for collector in set.collectors() {
        group.bench_function(collector.name(), |b| {
            b.iter(|| {
                out.clear();
                let ctx = ScrapeContext::new(Instant::now() + Duration::from_secs(10));
                collector.collect(&ctx, &mut out)
            })
        });
    }
    group.finish();
}

fn whole_scrape(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runner = default_set().into_runner();
    let mut text = String::new();
    c.bench_function("scrape/default_collectors", |b| {
        b.to_async(&runtime).iter(|| {
            text.clear();
            let runner = &runner;
            async move {
                let ctx = ScrapeContext::new(Instant::now() + Duration::from_secs(10));
                runner.collect(ctx, &Selection::All).await
            }
        })
    });
    let collected = runtime.block_on(runner.collect(
        ScrapeContext::new(Instant::now() + Duration::from_secs(10)),
        &Selection::All,
    ));
    c.bench_function("scrape/encode", |b| {
        b.iter(|| {
            text.clear();
            collected.encode(Format::Text, &mut text)
        })
    });
}

/// Containers in the yarn benchmarks: more than a large host runs at once.
const YARN_CONTAINERS: usize = 200;

fn container_name(index: usize) -> String {
    format!(
        "container_e3_1700000000000_{:04}_01_{:06}",
        index / 20 + 1,
        index % 20 + 1
    )
}

/// A `--path.sysfs` tree with `containers` YARN containers under `hadoop-yarn`, as a cgroup
/// v2 host has them (`v2`) or as cgroup v1 controllers do.
fn yarn_tree(containers: usize, v2: bool) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let cgroup = root.path().join("fs/cgroup");
    std::fs::create_dir_all(&cgroup).unwrap();
    let write = |dir: &std::path::Path, file: &str, text: &str| {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    };
    if v2 {
        std::fs::write(cgroup.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
    }
    for index in 0..containers {
        let name = container_name(index);
        let memory = format!("{}\n", (index as u64 + 1) << 24);
        if v2 {
            let dir = cgroup.join("hadoop-yarn").join(&name);
            write(
                &dir,
                "cpu.stat",
                &format!(
                    "usage_usec {}\nuser_usec 1\nsystem_usec 2\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
                    index * 1_000_003
                ),
            );
            write(&dir, "memory.current", &memory);
            write(&dir, "memory.peak", &memory);
            write(
                &dir,
                "io.stat",
                "259:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n259:1 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
            );
        } else {
            let dir = |controller: &str| cgroup.join(controller).join("hadoop-yarn").join(&name);
            write(
                &dir("cpuacct"),
                "cpuacct.usage",
                &format!("{}\n", index * 1_000_003_000),
            );
            write(&dir("memory"), "memory.usage_in_bytes", &memory);
            write(&dir("memory"), "memory.max_usage_in_bytes", &memory);
            write(
                &dir("blkio"),
                "blkio.throttle.io_service_bytes",
                "259:0 Read 1459200\n259:0 Write 314773504\n259:0 Sync 316232704\n259:0 Async 0\n259:0 Discard 0\n259:0 Total 316232704\nTotal 316232704\n",
            );
        }
    }
    root
}

fn yarn_set(sysfs: &std::path::Path) -> CollectorSet {
    let cli = Cli::try_parse_from([
        "bench".to_owned(),
        "--collector.disable-defaults".to_owned(),
        "--collector.yarn".to_owned(),
        format!("--path.sysfs={}", sysfs.display()),
    ])
    .unwrap();
    CollectorSet::from_cli(&cli).unwrap()
}

fn time_collection(c: &mut Criterion, name: &str, set: &CollectorSet) {
    let collector = set.collectors().next().unwrap();
    let mut out = MetricSet::default();
    c.bench_function(name, |b| {
        b.iter(|| {
            out.clear();
            let ctx = ScrapeContext::new(Instant::now() + Duration::from_secs(10));
            collector.collect(&ctx, &mut out).unwrap();
        })
    });
    out.seal();
    let reported = out
        .families()
        .filter(|f| f.name() == "node_yarn_container_cpu_seconds_total")
        .map(|f| f.samples().len())
        .sum::<usize>();
    assert_eq!(
        reported, YARN_CONTAINERS,
        "{name} did not see every container"
    );
}

/// 200 empty cgroups under each v1 controller's `hadoop-yarn`, removed when dropped.
struct RealCgroups(Vec<std::path::PathBuf>);

impl RealCgroups {
    fn make() -> Option<Self> {
        let root = std::path::Path::new("/sys/fs/cgroup");
        let mut made = RealCgroups(Vec::new());
        for controller in ["cpuacct", "memory", "blkio"] {
            let hierarchy = root.join(controller).join("hadoop-yarn");
            if !hierarchy.exists() {
                std::fs::create_dir(&hierarchy).ok()?;
                made.0.push(hierarchy.clone());
            }
            for index in 0..YARN_CONTAINERS {
                let dir = hierarchy.join(container_name(index));
                std::fs::create_dir(&dir).ok()?;
                made.0.push(dir);
            }
        }
        Some(made)
    }
}

impl Drop for RealCgroups {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn yarn(c: &mut Criterion) {
    // The exporter raises its open files limit at start; the yarn collector's budget of
    // files kept open between scrapes follows from it.
    kiln_registry::process_policy::apply();
    let v2 = yarn_tree(YARN_CONTAINERS, true);
    let v1 = yarn_tree(YARN_CONTAINERS, false);
    time_collection(
        c,
        "collector/yarn_200_containers_v2_tree",
        &yarn_set(v2.path()),
    );
    time_collection(
        c,
        "collector/yarn_200_containers_v1_tree",
        &yarn_set(v1.path()),
    );
    let real = RealCgroups::make();
    match &real {
        Some(_) => {
            time_collection(
                c,
                "collector/yarn_200_real_v1_cgroups",
                &yarn_set(std::path::Path::new("/sys")),
            );
            // What one figure costs the kernel: opening, reading and closing a cgroup file
            // (what the collector does) against reading again a file kept open.
            let file = std::path::Path::new("/sys/fs/cgroup/memory/hadoop-yarn")
                .join(container_name(0))
                .join("memory.usage_in_bytes");
            let mut buffer = [0u8; 4608];
            c.bench_function("cgroup_file/open_read_close", |b| {
                b.iter(|| {
                    use std::io::Read as _;
                    let mut opened = std::fs::File::open(&file).unwrap();
                    opened.read(&mut buffer).unwrap()
                })
            });
            let opened = std::fs::File::open(&file).unwrap();
            c.bench_function("cgroup_file/pread_kept_open", |b| {
                b.iter(|| {
                    use std::os::unix::fs::FileExt as _;
                    opened.read_at(&mut buffer, 0).unwrap()
                })
            });
        }
        None => eprintln!("not root or no cgroup v1 controllers: real cgroups not timed"),
    }

    // A whole scrape of the default collectors, with and without the yarn collector.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sys = std::path::Path::new("/sys");
    let mut scrapes = vec![
        ("scrape/default_collectors_again", None),
        (
            "scrape/default_collectors_plus_yarn_200_v2",
            Some(v2.path()),
        ),
    ];
    if real.is_some() {
        scrapes.push(("scrape/default_collectors_plus_yarn_200_real_v1", Some(sys)));
    }
    for (name, yarn) in scrapes {
        let mut set = default_set();
        if let Some(sysfs) = yarn {
            set.append(yarn_set(sysfs));
        }
        let runner = set.into_runner();
        c.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let runner = &runner;
                async move {
                    let ctx = ScrapeContext::new(Instant::now() + Duration::from_secs(10));
                    runner.collect(ctx, &Selection::All).await
                }
            })
        });
    }
}

criterion_group!(benches, per_collector, whole_scrape, yarn);
criterion_main!(benches);
