//! The whole binary against fixture trees of `/proc` and `/sys`: a golden comparison of
//! everything the file-based collectors serve for a GPU training host, and the mounts an
//! EMR core node reports.

#![allow(clippy::unwrap_used)]

mod support;

use support::{Running, fixture, fixture_paths};

/// Collectors whose output depends only on the fixture files.
const FILE_COLLECTORS: &[&str] = &[
    "arp",
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "edac",
    "entropy",
    "filefd",
    "hwmon",
    "infiniband",
    "interrupts",
    "loadavg",
    "mdadm",
    "meminfo",
    "netclass",
    "netdev",
    "netstat",
    "nvme",
    "os",
    "powersupplyclass",
    "pressure",
    "schedstat",
    "selinux",
    "sockstat",
    "softnet",
    "stat",
    "tcpstat",
    "textfile",
    "thermal_zone",
    "udp_queues",
    "vmstat",
    "xfs",
    "zfs",
];

/// Lines that change from run to run or machine to machine.
fn stable(line: &str) -> bool {
    !(line.starts_with("node_scrape_collector_duration_seconds")
        || line.starts_with("node_textfile_mtime_seconds")
        || line.starts_with("process_")
        || line.starts_with("kiln_")
        || line.starts_with("# HELP process_")
        || line.starts_with("# TYPE process_")
        || line.starts_with("# HELP kiln_")
        || line.starts_with("# TYPE kiln_"))
}

#[test]
fn gpu_host_fixture_matches_the_golden_output() {
    let mut args = fixture_paths("gpu-host");
    args.push("--collector.disable-defaults".into());
    args.extend(FILE_COLLECTORS.iter().map(|c| format!("--collector.{c}")));
    args.push(format!(
        "--collector.textfile.directory={}",
        fixture("gpu-host/textfile").display()
    ));
    args.push("--collector.cpu.info.flags-include=^$".into());
    // netdev reads the host's own links over netlink by default; the fixture's
    // /proc/net/dev is what this test compares.
    args.push("--no-collector.netdev.netlink".into());
    let exporter = Running::kiln(&args);
    let body = exporter.scrape();
    let actual: String = body
        .lines()
        .filter(|l| stable(l))
        .map(|l| format!("{l}\n"))
        .collect();

    kiln_test_support::assert_golden(&fixture("gpu-host.golden.txt"), &actual);
    // Every collector ran and succeeded on the fixture.
    let parsed = kiln_scraper::parse(&body).unwrap();
    for collector in FILE_COLLECTORS {
        assert_eq!(
            parsed.value("node_scrape_collector_success", &[("collector", collector)]),
            Some(1.0),
            "{collector}"
        );
    }
}

#[test]
fn emr_data_disks_under_mnt_are_reported() {
    let mut args = fixture_paths("emr-core");
    args.extend([
        "--collector.disable-defaults".into(),
        "--collector.filesystem".into(),
    ]);
    let exporter = Running::kiln(&args);
    let body = exporter.scrape();
    let parsed = kiln_scraper::parse(&body).unwrap();
    let family = parsed.family("node_filesystem_size_bytes").unwrap();
    let mut mounts: Vec<&str> = family
        .samples
        .iter()
        .filter_map(|s| s.label("mountpoint"))
        .collect();
    mounts.sort_unstable();
    // Upstream's default excludes keep /mnt* (Debian's hide them) and drop /proc, /sys, /dev.
    assert_eq!(
        mounts,
        [
            "/",
            "/emr/instance-controller/lib/ro",
            "/mnt",
            "/mnt1",
            "/mnt2",
            "/var/lib/docker"
        ]
    );
    let readonly = |mount: &str| {
        parsed
            .family("node_filesystem_readonly")
            .unwrap()
            .samples
            .iter()
            .find(|s| s.label("mountpoint") == Some(mount))
            .unwrap()
            .value
    };
    assert_eq!(readonly("/emr/instance-controller/lib/ro"), 1.0);
    assert_eq!(readonly("/mnt1"), 0.0);
    let mnt1 = family
        .samples
        .iter()
        .find(|s| s.label("mountpoint") == Some("/mnt1"))
        .unwrap();
    assert_eq!(
        (
            mnt1.label("device"),
            mnt1.label("fstype"),
            mnt1.label("device_error")
        ),
        (Some("/dev/nvme2n1"), Some("xfs"), Some(""))
    );
    assert!(mnt1.value > 0.0);
}

#[test]
fn bad_flags_are_refused_before_listening() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln-node-exporter"))
        .args([
            "--collector.netstat.fields=(",
            "--web.listen-address=127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--collector.netstat.fields")
            && stderr.contains("invalid regular expression"),
        "{stderr}"
    );
}

#[test]
fn collector_switches_follow_upstream() {
    let cli =
        kiln_node::Cli::try_parse_from(["x", "--collector.disable-defaults", "--collector.cpu"])
            .unwrap();
    assert_eq!(cli.enabled, ["cpu"]);
    let cli = kiln_node::Cli::try_parse_from(["x", "--no-collector.cpu", "--collector.processes"])
        .unwrap();
    assert!(
        !cli.enabled.contains(&"cpu")
            && cli.enabled.contains(&"processes")
            && cli.enabled.contains(&"meminfo")
    );
    // The later of two contradicting switches wins.
    let cli =
        kiln_node::Cli::try_parse_from(["x", "--no-collector.cpu", "--collector.cpu"]).unwrap();
    assert!(cli.enabled.contains(&"cpu"));
    assert!(kiln_node::Cli::try_parse_from(["x", "--collector.nonexistent"]).is_err());
}

#[test]
fn a_panicking_collector_is_reported_and_the_rest_served() {
    let mut args = fixture_paths("gpu-host");
    args.extend([
        "--collector.disable-defaults".into(),
        "--collector.loadavg".into(),
        "--collector.meminfo".into(),
    ]);
    let exporter = Running::start_with_env(
        env!("CARGO_BIN_EXE_kiln-node-exporter"),
        &args,
        &[(kiln_registry::PANIC_COLLECTORS_ENV, "meminfo")],
    );
    let body = exporter.scrape();
    let parsed = kiln_scraper::parse(&body).unwrap();
    let success = |c| parsed.value("node_scrape_collector_success", &[("collector", c)]);
    assert_eq!(success("meminfo"), Some(0.0), "{body}");
    assert_eq!(success("loadavg"), Some(1.0), "{body}");
    for collector in ["meminfo", "loadavg"] {
        assert!(
            parsed
                .value(
                    "node_scrape_collector_duration_seconds",
                    &[("collector", collector)]
                )
                .is_some(),
            "{collector}"
        );
    }
    assert!(parsed.value("node_load1", &[]).is_some(), "{body}");
    assert!(!body.contains("node_memory_"), "{body}");
    assert!(exporter.process.log_text().contains("made to panic"));
}

#[test]
fn a_key_repeated_in_procfs_is_served_once() {
    // A kernel (or a hostile bind mount) that lists a key twice must not make the answer
    // hold a series twice, which Prometheus refuses as a whole.
    let root = tempfile::tempdir().unwrap();
    let proc = root.path().join("proc");
    std::fs::create_dir_all(proc.join("net")).unwrap();
    std::fs::write(
        proc.join("meminfo"),
        "MemTotal: 100 kB\nMemFree: 10 kB\nMemTotal: 999 kB\n",
    )
    .unwrap();
    std::fs::write(proc.join("vmstat"), "pgfault 5\npgfault 6\noom_kill 1\n").unwrap();
    std::fs::write(
        proc.join("net/netstat"),
        "TcpExt: ListenDrops ListenDrops\nTcpExt: 3 4\n",
    )
    .unwrap();
    std::fs::write(
        proc.join("net/snmp"),
        "Tcp: CurrEstab\nTcp: 7\nTcp: CurrEstab\nTcp: 8\n",
    )
    .unwrap();
    let args = vec![
        format!("--path.procfs={}", proc.display()),
        "--collector.disable-defaults".into(),
        "--collector.meminfo".into(),
        "--collector.vmstat".into(),
        "--collector.netstat".into(),
    ];
    let exporter = Running::kiln(&args);
    let body = exporter.scrape();
    let parsed = kiln_scraper::parse(&body).unwrap_or_else(|e| panic!("{e:?}\n{body}"));
    assert_eq!(
        parsed.value("node_memory_MemTotal_bytes", &[]),
        Some(102400.0)
    );
    assert_eq!(parsed.value("node_vmstat_pgfault", &[]), Some(5.0));
    assert_eq!(
        parsed.value("node_netstat_TcpExt_ListenDrops", &[]),
        Some(3.0)
    );
    assert_eq!(parsed.value("node_netstat_Tcp_CurrEstab", &[]), Some(7.0));
    let success = |c| parsed.value("node_scrape_collector_success", &[("collector", c)]);
    for collector in ["meminfo", "vmstat", "netstat"] {
        assert_eq!(success(collector), Some(1.0), "{collector}: {body}");
    }
}

#[test]
fn netdev_reads_the_hosts_links_over_netlink() {
    // The host's own loopback link, which every network namespace has, with 127.0.0.1/8.
    let args: Vec<String> = [
        "--collector.disable-defaults",
        "--collector.netdev",
        "--collector.netdev.device-include=^lo$",
        "--collector.netdev.enable-detailed-metrics",
        "--collector.netdev.label-ifalias",
        "--collector.netdev.address-info",
    ]
    .map(String::from)
    .to_vec();
    let exporter = Running::kiln(&args);
    let body = exporter.scrape();
    let parsed = kiln_scraper::parse(&body).unwrap();
    let lo = [("device", "lo"), ("ifalias", "")];
    // Detailed names: the kernel's counters, unfolded.
    for family in [
        "node_network_receive_missed_errors_total",
        "node_network_receive_errors_total",
        "node_network_receive_nohandler_total",
        "node_network_collisions_total",
    ] {
        assert!(parsed.value(family, &lo).is_some(), "{family}\n{body}");
    }
    assert!(!body.contains("node_network_receive_errs_total"), "{body}");
    assert!(
        parsed
            .value("node_network_receive_bytes_total", &lo)
            .is_some()
    );
    assert_eq!(
        parsed.value(
            "node_network_address_info",
            &[
                ("device", "lo"),
                ("address", "127.0.0.1"),
                ("netmask", "8"),
                ("scope", "link-local"),
            ]
        ),
        Some(1.0),
        "{body}"
    );
    // The filter holds for addresses too.
    assert!(
        body.lines()
            .filter(|l| l.starts_with("node_network_address_info{"))
            .all(|l| l.contains("device=\"lo\"")),
        "{body}"
    );
}

#[test]
fn interrupts_are_filtered_by_name_and_zero_counts() {
    let mut args = fixture_paths("gpu-host");
    args.extend([
        "--collector.disable-defaults".into(),
        "--collector.interrupts".into(),
        // Matched against `name;info;devices`.
        "--collector.interrupts.name-exclude=^NMI;".into(),
        "--no-collector.interrupts.include-zeros".into(),
    ]);
    let exporter = Running::kiln(&args);
    let body = exporter.scrape();
    let parsed = kiln_scraper::parse(&body).unwrap();
    let mut series: Vec<(&str, &str)> = parsed
        .family("node_interrupts_total")
        .unwrap()
        .samples
        .iter()
        .map(|s| (s.label("type").unwrap(), s.label("cpu").unwrap()))
        .collect();
    series.sort_unstable();
    // Timer and nvme interrupts count on CPU 0 only; the fixture's other CPUs have zeros.
    assert_eq!(
        series,
        [
            ("0", "0"),
            ("24", "0"),
            ("LOC", "0"),
            ("LOC", "1"),
            ("LOC", "2"),
            ("LOC", "3")
        ]
    );
}
