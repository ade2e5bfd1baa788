//! node_exporter's own end-to-end test, run against kiln-node-exporter.
//!
//! Upstream's `end-to-end-test.sh` (vendored in `testdata/node_exporter/`, with the
//! fixtures it reads) starts node_exporter on its fixture trees with a fixed list of
//! collectors and options, scrapes it once and diffs the answer against a golden file.
//! This test does the same with the same flags and the same fixtures, and compares family
//! by family: HELP, TYPE, and every series' labels and value. x86_64 runs upstream's x86_64
//! flags against `e2e-output.txt`; the 64k-page golden file is what the same fixtures give
//! with `--no-collector.cpu.info` (upstream's flags on aarch64), and is checked that way.
//!
//! Where Kiln deliberately differs, the family is in `upstream_e2e/differences.txt` with
//! the reason; the test fails when a listed family has come to match, so the list only
//! shrinks. docs/node-exporter.md carries the same list.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_scraper::MetricType;
use support::Running;

/// The collectors upstream's script enables (those built on Linux).
const ENABLED: &[&str] = &[
    "arp",
    "bcache",
    "bcachefs",
    "bonding",
    "btrfs",
    "buddyinfo",
    "cgroups",
    "conntrack",
    "cpu",
    "cpufreq",
    "cpu_vulnerabilities",
    "diskstats",
    "dmi",
    "drbd",
    "edac",
    "entropy",
    "fibrechannel",
    "filefd",
    "hwmon",
    "infiniband",
    "interrupts",
    "ipvs",
    "kernel_hung",
    "ksmd",
    "lnstat",
    "loadavg",
    "mdadm",
    "meminfo",
    "meminfo_numa",
    "mountstats",
    "netdev",
    "netstat",
    "nfs",
    "nfsd",
    "pcidevice",
    "pressure",
    "processes",
    "qdisc",
    "rapl",
    "schedstat",
    "slabinfo",
    "sockstat",
    "softirqs",
    "stat",
    "sysctl",
    "textfile",
    "thermal_zone",
    "udp_queues",
    "vmstat",
    "watchdog",
    "wifi",
    "xfrm",
    "xfs",
    "zfs",
    "zoneinfo",
];

/// The collectors upstream's script turns off.
const DISABLED: &[&str] = &["selinux", "filesystem", "timex", "uname"];

/// Upstream's per-collector options, as its script passes them (x86_64).
const OPTIONS: &[&str] = &[
    "--collector.arp.device-exclude=nope",
    "--collector.bcache.priorityStats",
    "--collector.cpu.info.bugs-include=^(cpu_meltdown|spectre_.*|mds)$",
    "--collector.cpu.info.flags-include=^(aes|avx.?|constant_tsc)$",
    "--collector.hwmon.chip-include=(applesmc|asus_nb_wmi|coretemp|hwmon4|ieee80211|nct6779)",
    "--collector.netclass.ignore-invalid-speed",
    "--collector.netclass.ignored-devices=(dmz|int)",
    "--collector.netdev.device-include=lo",
    "--collector.qdisc.device-include=(wlan0|eth0)",
    "--collector.qdisc.fixtures=collector/fixtures/qdisc/",
    "--collector.stat.softirq",
    "--collector.sysctl.include-info=kernel.seccomp.actions_avail",
    "--collector.sysctl.include=fs.file-nr",
    "--collector.sysctl.include=fs.file-nr:total,current,max",
    "--collector.sysctl.include=kernel.threads-max",
    "--collector.textfile.directory=collector/fixtures/textfile/two_metric_files/",
    "--collector.wifi.fixtures=collector/fixtures/wifi",
    "--no-collector.arp.netlink",
];

/// Upstream's `skip_re`: lines its script drops from the scrape before the diff (the Go
/// runtime, the process, timings and what varies with the host).
fn skipped(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "go_",
        "node_exporter_build_info",
        "node_scrape_collector_duration_seconds",
        "process_",
        "node_textfile_mtime_seconds",
        "node_time_zone",
        "node_time_seconds",
        "node_network_receive_bytes_total",
        "node_network_receive_packets_total",
        "node_network_transmit_bytes_total",
        "node_network_transmit_packets_total",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Families Kiln serves that node_exporter does not: its own (`kiln_*`).
fn kiln_own(name: &str) -> bool {
    name.starts_with("kiln_")
}

#[test]
fn x86_64_golden_file() {
    check("e2e-output.txt", &["--collector.cpu.info"]);
}

#[test]
fn page_64k_golden_file() {
    // Upstream runs this one on aarch64 and ppc64le, where it turns CPU info off.
    check("e2e-64k-page-output.txt", &["--no-collector.cpu.info"]);
}

fn check(golden: &str, cpu_info: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let fixtures = unpack_fixtures(work.path());
    let mut args: Vec<String> = vec![
        "--path.rootfs=collector/fixtures".into(),
        "--path.procfs=collector/fixtures/proc".into(),
        "--path.sysfs=collector/fixtures/sys".into(),
        "--path.udev.data=collector/fixtures/udev/data".into(),
        "--log.level=debug".into(),
    ];
    args.extend(ENABLED.iter().map(|c| format!("--collector.{c}")));
    args.extend(DISABLED.iter().map(|c| format!("--no-collector.{c}")));
    args.extend(cpu_info.iter().map(|f| f.to_string()));
    args.extend(OPTIONS.iter().map(|f| f.to_string()));

    let exporter = Running::start_in(env!("CARGO_BIN_EXE_kiln-node-exporter"), &args, work.path());
    let body = exporter.scrape();
    checkmetrics(&body);
    let expected_text = std::fs::read_to_string(fixtures.join(golden)).unwrap();
    let (expected, invalid) = families(&expected_text);
    assert!(invalid.is_empty(), "{golden}: {invalid:?}");
    let (actual, invalid) = families(&body);

    let allowed = differences();
    let mut unexpected: Vec<String> = invalid
        .into_iter()
        .map(|v| format!("invalid exposition, {v}"))
        .collect();
    let mut now_matching = Vec::new();
    for (name, want) in &expected {
        if skipped(name) {
            continue;
        }
        let problem = match actual.get(name) {
            None => Some("missing".to_string()),
            Some(got) => compare(want, got),
        };
        match (problem, allowed.get(name.as_str())) {
            (None, Some(_)) => now_matching.push(name.clone()),
            (None, None) | (Some(_), Some(_)) => {}
            (Some(problem), None) => unexpected.push(format!("{name}: {problem}")),
        }
    }
    for name in actual.keys() {
        if !expected.contains_key(name)
            && !skipped(name)
            && !kiln_own(name)
            && !allowed.contains_key(name.as_str())
        {
            unexpected.push(format!("{name}: served, not in {golden}"));
        }
    }
    let compared = expected.keys().filter(|n| !skipped(n)).count();
    eprintln!(
        "{golden}: {compared} families compared, {} differ unexpectedly, {} allowed differences",
        unexpected.len(),
        allowed.len()
    );
    assert!(
        now_matching.is_empty(),
        "these families match {golden} now; take them out of differences.txt: {now_matching:#?}"
    );
    assert!(
        unexpected.is_empty(),
        "{} families differ from {golden}:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

/// One family as compared: HELP, TYPE and each series (labels sorted) with its value.
#[derive(Debug, PartialEq)]
struct Family {
    help: String,
    kind: MetricType,
    series: BTreeMap<String, f64>,
}

/// The families of an exposition, and what makes it invalid (a duplicate series, say).
fn families(text: &str) -> (BTreeMap<String, Family>, Vec<String>) {
    let parsed = kiln_scraper::parse_with(text, kiln_scraper::Format::Text);
    let violations = parsed
        .violations
        .iter()
        .map(|v| format!("line {}: {}", v.line, v.message))
        .collect();
    let families = parsed
        .exposition
        .families
        .iter()
        .map(|family| {
            let series = family
                .samples
                .iter()
                .map(|sample| {
                    let labels: BTreeSet<String> = sample
                        .labels
                        .iter()
                        .map(|l| format!("{}={:?}", l.name, l.value))
                        .collect();
                    let key = format!(
                        "{}{{{}}}",
                        sample.name,
                        labels.into_iter().collect::<Vec<_>>().join(",")
                    );
                    (key, sample.value)
                })
                .collect();
            let family_data = Family {
                help: family.help.as_deref().unwrap_or_default().to_string(),
                kind: family.kind,
                series,
            };
            (family.name.to_string(), family_data)
        })
        .collect();
    (families, violations)
}

/// What differs between the golden family and ours, if anything.
fn compare(want: &Family, got: &Family) -> Option<String> {
    let mut problems = Vec::new();
    if want.help != got.help {
        problems.push(format!("HELP {:?}, ours {:?}", want.help, got.help));
    }
    if want.kind != got.kind {
        problems.push(format!("TYPE {:?}, ours {:?}", want.kind, got.kind));
    }
    for (series, value) in &want.series {
        match got.series.get(series) {
            None => problems.push(format!("missing {series}")),
            Some(ours) if !same(*value, *ours) => {
                problems.push(format!("{series} is {value}, ours {ours}"));
            }
            Some(_) => {}
        }
    }
    for series in got.series.keys() {
        if !want.series.contains_key(series) {
            problems.push(format!("extra {series}"));
        }
    }
    if problems.is_empty() {
        return None;
    }
    const SHOWN: usize = 4;
    let more = problems.len().saturating_sub(SHOWN);
    problems.truncate(SHOWN);
    if more > 0 {
        problems.push(format!("and {more} more"));
    }
    Some(problems.join("; "))
}

/// Values equal as node_exporter prints them: Go's shortest float formatting round-trips,
/// so equal floats are equal text; NaN equals NaN.
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// The allow-list: family name, then the reason, one per line; `#` starts a comment.
fn differences() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstream_e2e/differences.txt");
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            assert!(
                !reason.trim().is_empty(),
                "{}: {name} has no reason",
                path.display()
            );
            (name.to_string(), reason.trim().to_string())
        })
        .collect()
}

/// Upstream's fixture tree as its script sees it: `collector/fixtures` under `work`, with
/// `sys.ttar` and `udev.ttar` unpacked in place. Returns the fixtures directory.
fn unpack_fixtures(work: &Path) -> PathBuf {
    let vendored =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/node_exporter/fixtures");
    let fixtures = work.join("collector/fixtures");
    std::fs::create_dir_all(work.join("collector")).unwrap();
    let copy = Command::new("cp")
        .arg("-a")
        .arg(&vendored)
        .arg(&fixtures)
        .status()
        .unwrap();
    assert!(copy.success());
    for archive in ["sys.ttar", "udev.ttar"] {
        kiln_test_support::ttar::extract(&fixtures.join(archive), &fixtures).unwrap();
    }
    fixtures
}

/// Upstream's `checkmetrics.sh`: `promtool check metrics` finds nothing to say about the
/// answer, apart from the families upstream's script also lets through (entropy, memory,
/// netstat and wifi station names, which follow the kernel's).
fn checkmetrics(body: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/test installs Debian's prometheus)");
    let mut stdin = promtool.stdin.take().unwrap();
    let text = body.to_string();
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        stdin.write_all(text.as_bytes()).unwrap();
    });
    let output = promtool.wait_with_output().unwrap();
    writer.join().unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let lint: Vec<&str> = said
        .lines()
        .filter(|line| {
            !["entropy", "memory", "netstat", "wifi_station"]
                .iter()
                .any(|family| line.starts_with(&format!("node_{family}_")))
        })
        .collect();
    assert!(
        lint.is_empty(),
        "promtool check metrics:\n{}",
        lint.join("\n")
    );
}
