//! The yarn collector on a cgroup v2 fixture tree (`tests/fixtures/yarn-v2`): the binary
//! reading it through `--path.sysfs`, the container limit, a damaged file, and flags.

#![allow(clippy::unwrap_used)]

mod support;

use kiln_node::{Cli, CollectorSet};
use kiln_registry::{MetricSet, ScrapeContext};
use support::{Running, fixture};

const AM: &str = "container_1700000000000_0001_01_000001";
const EXECUTOR: &str = "container_e17_1700000000000_0001_01_000002";
const OTHER_APP: &str = "container_1700000000000_0002_01_000001";

fn sysfs_flag() -> String {
    format!("--path.sysfs={}", fixture("yarn-v2/sys").display())
}

/// The value of `family`'s sample for `container`.
fn value(parsed: &kiln_scraper::Exposition<'_>, family: &str, container: &str) -> Option<f64> {
    let family = parsed.family(family)?;
    let sample = family
        .samples
        .iter()
        .find(|s| s.label("yarn_container") == Some(container))?;
    Some(sample.value)
}

/// The value of a family without labels.
fn single(parsed: &kiln_scraper::Exposition<'_>, family: &str) -> f64 {
    parsed.family(family).unwrap().samples[0].value
}

#[test]
fn cgroup_v2_containers_are_read_through_path_sysfs() {
    let exporter = Running::kiln(&[
        sysfs_flag(),
        "--collector.disable-defaults".into(),
        "--collector.yarn".into(),
    ]);
    let body = exporter.scrape();
    let parsed = kiln_scraper::parse(&body).unwrap();
    let get = |family: &str, container: &str| value(&parsed, family, container);

    assert_eq!(get("node_yarn_container_cpu_seconds_total", AM), Some(12.5));
    assert_eq!(
        get("node_yarn_container_cpu_seconds_total", EXECUTOR),
        Some(3600.25)
    );
    assert_eq!(
        get("node_yarn_container_cpu_seconds_total", OTHER_APP),
        Some(0.09)
    );
    assert_eq!(
        get("node_yarn_container_memory_bytes", EXECUTOR),
        Some(4_294_967_296.0)
    );
    assert_eq!(
        get("node_yarn_container_memory_peak_bytes", EXECUTOR),
        Some(6_442_450_944.0)
    );
    assert_eq!(
        get("node_yarn_container_memory_bytes", OTHER_APP),
        Some(20_971_520.0)
    );
    // An older kernel has no memory.peak: no series rather than a made-up one.
    assert_eq!(
        get("node_yarn_container_memory_peak_bytes", OTHER_APP),
        None
    );
    // Summed over the two devices.
    assert_eq!(
        get("node_yarn_container_io_read_bytes_total", AM),
        Some(1_052_672.0)
    );
    assert_eq!(
        get("node_yarn_container_io_write_bytes_total", AM),
        Some(2_105_344.0)
    );
    // A damaged io.stat is skipped (and counted), the container's other figures stay.
    assert_eq!(
        get("node_yarn_container_io_read_bytes_total", OTHER_APP),
        None
    );
    assert_eq!(
        get("node_yarn_container_io_write_bytes_total", OTHER_APP),
        None
    );
    assert!(single(&parsed, "node_yarn_container_malformed_files_total") >= 1.0);

    // Labels as the GPU exporter spells them, the epoch form included.
    let cpu = parsed
        .family("node_yarn_container_cpu_seconds_total")
        .unwrap();
    let labels: Vec<(&str, &str)> = cpu
        .samples
        .iter()
        .map(|s| {
            (
                s.label("yarn_container").unwrap(),
                s.label("yarn_application").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            (AM, "application_1700000000000_0001"),
            (OTHER_APP, "application_1700000000000_0002"),
            (EXECUTOR, "application_1700000000000_0001"),
        ]
    );
    assert_eq!(single(&parsed, "node_yarn_containers"), 3.0);
    assert_eq!(single(&parsed, "node_yarn_containers_dropped_total"), 0.0);
    assert!(body.contains("node_scrape_collector_success{collector=\"yarn\"} 1\n"));
}

/// One collection of the yarn collector built from `args`, in this process.
fn collect_once(args: &[&str]) -> MetricSet {
    let mut argv = vec!["kiln-node-exporter", "--collector.disable-defaults"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let set = CollectorSet::from_cli(&cli).unwrap();
    let collector = set.collectors().next().unwrap();
    assert_eq!(collector.name(), "yarn");
    let mut out = MetricSet::default();
    let ctx = ScrapeContext::with_budget(std::time::Duration::from_secs(10));
    collector.collect(&ctx, &mut out).unwrap();
    out.seal();
    out
}

/// The samples of `family` in `set`: label values of `yarn_container` (or "") and values.
fn samples(set: &MetricSet, family: &str) -> Vec<(String, f64)> {
    set.families()
        .filter(|f| f.name() == family)
        .flat_map(|f| f.samples())
        .map(|s| {
            (
                s.label("yarn_container").unwrap_or_default().to_owned(),
                s.value(),
            )
        })
        .collect()
}

#[test]
fn containers_past_the_limit_are_counted_not_reported() {
    let sysfs = sysfs_flag();
    let set = collect_once(&[
        &sysfs,
        "--collector.yarn",
        "--collector.yarn.max-containers=2",
    ]);
    // The first two in name order.
    let reported: Vec<String> = samples(&set, "node_yarn_container_cpu_seconds_total")
        .into_iter()
        .map(|(container, _)| container)
        .collect();
    assert_eq!(reported, [AM, OTHER_APP]);
    assert_eq!(
        samples(&set, "node_yarn_container_memory_bytes").len(),
        2,
        "every family stops at the limit"
    );
    assert_eq!(
        samples(&set, "node_yarn_containers"),
        [(String::new(), 3.0)]
    );
    assert_eq!(
        samples(&set, "node_yarn_containers_dropped_total"),
        [(String::new(), 1.0)]
    );
}

#[test]
fn a_damaged_file_is_counted_once_a_scrape_and_never_doubles_a_series() {
    let sysfs = sysfs_flag();
    let argv = [
        "kiln-node-exporter",
        "--collector.disable-defaults",
        sysfs.as_str(),
        "--collector.yarn",
    ];
    let cli = Cli::try_parse_from(argv).unwrap();
    let set = CollectorSet::from_cli(&cli).unwrap();
    let collector = set.collectors().next().unwrap();
    for scrape in 1..=3 {
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::with_budget(std::time::Duration::from_secs(10));
        collector.collect(&ctx, &mut out).unwrap();
        out.seal();
        assert_eq!(
            samples(&out, "node_yarn_container_malformed_files_total"),
            [(String::new(), f64::from(scrape))]
        );
        for family in [
            "node_yarn_container_cpu_seconds_total",
            "node_yarn_container_memory_bytes",
            "node_yarn_container_memory_peak_bytes",
            "node_yarn_container_io_read_bytes_total",
            "node_yarn_container_io_write_bytes_total",
        ] {
            let mut containers: Vec<String> =
                samples(&out, family).into_iter().map(|(c, _)| c).collect();
            let all = containers.len();
            containers.dedup();
            assert_eq!(containers.len(), all, "{family} has a duplicate series");
        }
    }
}

#[test]
fn a_missing_hierarchy_reports_no_containers() {
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(empty.path().join("fs/cgroup/memory")).unwrap();
    let sysfs = format!("--path.sysfs={}", empty.path().display());
    let set = collect_once(&[&sysfs, "--collector.yarn"]);
    assert_eq!(
        samples(&set, "node_yarn_containers"),
        [(String::new(), 0.0)]
    );
    assert!(samples(&set, "node_yarn_container_cpu_seconds_total").is_empty());
}

#[test]
fn another_hierarchy_name_is_followed() {
    let root = tempfile::tempdir().unwrap();
    let container = root
        .path()
        .join("fs/cgroup/yarn/container_1700000000000_0003_01_000001");
    std::fs::create_dir_all(&container).unwrap();
    std::fs::write(
        root.path().join("fs/cgroup/cgroup.controllers"),
        "cpu io memory\n",
    )
    .unwrap();
    std::fs::write(container.join("cpu.stat"), "usage_usec 1500000\n").unwrap();
    let sysfs = format!("--path.sysfs={}", root.path().display());
    let set = collect_once(&[
        &sysfs,
        "--collector.yarn",
        "--collector.yarn.cgroup-hierarchy=/yarn",
    ]);
    assert_eq!(
        samples(&set, "node_yarn_container_cpu_seconds_total"),
        [("container_1700000000000_0003_01_000001".to_owned(), 1.5)]
    );
}

#[test]
fn a_hierarchy_that_climbs_out_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln-node-exporter"))
        .args([
            "--collector.yarn",
            "--collector.yarn.cgroup-hierarchy=../etc",
            "--web.listen-address=127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("collector.yarn.cgroup-hierarchy"),
        "{stderr}"
    );
}

#[test]
fn v1_reads_the_joint_cpu_cpuacct_mount_and_containers_of_any_controller() {
    let root = tempfile::tempdir().unwrap();
    let cgroup = root.path().join("fs/cgroup");
    let both = "container_1700000000000_0004_01_000001";
    let memory_only = "container_1700000000000_0004_01_000002";
    let cpu = cgroup.join("cpu,cpuacct/hadoop-yarn").join(both);
    std::fs::create_dir_all(&cpu).unwrap();
    std::fs::write(cpu.join("cpuacct.usage"), "2250000000\n").unwrap();
    for container in [both, memory_only] {
        let memory = cgroup.join("memory/hadoop-yarn").join(container);
        std::fs::create_dir_all(&memory).unwrap();
        std::fs::write(memory.join("memory.usage_in_bytes"), "1048576\n").unwrap();
        std::fs::write(memory.join("memory.max_usage_in_bytes"), "2097152\n").unwrap();
    }
    let sysfs = format!("--path.sysfs={}", root.path().display());
    let set = collect_once(&[&sysfs, "--collector.yarn"]);
    assert_eq!(
        samples(&set, "node_yarn_container_cpu_seconds_total"),
        [(both.to_owned(), 2.25)]
    );
    assert_eq!(
        samples(&set, "node_yarn_container_memory_peak_bytes"),
        [
            (both.to_owned(), 2_097_152.0),
            (memory_only.to_owned(), 2_097_152.0)
        ]
    );
    assert_eq!(
        samples(&set, "node_yarn_containers"),
        [(String::new(), 2.0)]
    );
    // No blkio hierarchy: no I/O series, and nothing counted as damaged.
    assert!(samples(&set, "node_yarn_container_io_read_bytes_total").is_empty());
    assert_eq!(
        samples(&set, "node_yarn_container_malformed_files_total"),
        [(String::new(), 0.0)]
    );
}

/// Copies the directory tree `from` into `to`.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn kept_files_follow_containers_from_scrape_to_scrape() {
    let root = tempfile::tempdir().unwrap();
    copy_tree(&fixture("yarn-v2/sys"), root.path());
    let containers = root.path().join("fs/cgroup/hadoop-yarn");
    let sysfs = format!("--path.sysfs={}", root.path().display());
    let cli = Cli::try_parse_from([
        "kiln-node-exporter",
        "--collector.disable-defaults",
        &sysfs,
        "--collector.yarn",
    ])
    .unwrap();
    let set = CollectorSet::from_cli(&cli).unwrap();
    let collector = set.collectors().next().unwrap();
    let scrape = || {
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::with_budget(std::time::Duration::from_secs(10));
        collector.collect(&ctx, &mut out).unwrap();
        out.seal();
        out
    };
    let first = scrape();
    assert_eq!(
        samples(&first, "node_yarn_container_memory_bytes").len(),
        3,
        "{:?}",
        samples(&first, "node_yarn_container_memory_bytes")
    );

    // The executor's memory changes in place, the first container exits, a new one starts.
    std::fs::write(containers.join(EXECUTOR).join("memory.current"), "4096\n").unwrap();
    std::fs::remove_dir_all(containers.join(AM)).unwrap();
    let started = "container_1700000000000_0003_01_000001";
    copy_tree(&containers.join(OTHER_APP), &containers.join(started));
    std::fs::write(containers.join(started).join("memory.current"), "8192\n").unwrap();

    let second = scrape();
    let memory = samples(&second, "node_yarn_container_memory_bytes");
    assert_eq!(
        memory,
        [
            (
                OTHER_APP.to_owned(),
                samples(&first, "node_yarn_container_memory_bytes")[1].1
            ),
            (started.to_owned(), 8192.0),
            (EXECUTOR.to_owned(), 4096.0),
        ]
    );
    // The second application's containers have no `memory.peak` (a kernel before 5.19): not
    // a damaged file, however many scrapes look.
    assert_eq!(
        samples(&second, "node_yarn_container_memory_peak_bytes")
            .into_iter()
            .map(|(container, _)| container)
            .collect::<Vec<_>>(),
        [EXECUTOR]
    );
    assert_eq!(
        samples(&second, "node_yarn_containers"),
        [(String::new(), 3.0)]
    );
}
