//! Side by side with Debian's `prometheus-node-exporter` on this host: every family both
//! serve has the same type and at least upstream's label names, and values that do not
//! move between two scrapes (memory total, boot time, filesystem sizes, …) agree.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use support::Running;

const DEBIAN_NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// Upstream's default mount point exclusion (Debian's also hides /mnt and /media).
const MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// Label sets per family: name → (type, label-name sets).
fn shapes(text: &str) -> BTreeMap<String, (String, BTreeSet<Vec<String>>)> {
    let parsed = kiln_scraper::parse(text).unwrap();
    parsed
        .families
        .iter()
        .filter(|f| f.name.starts_with("node_") && f.name != "node_exporter_build_info")
        .map(|f| {
            let labels = f
                .samples
                .iter()
                .map(|s| {
                    let mut names: Vec<String> =
                        s.labels.iter().map(|l| l.name.to_owned()).collect();
                    names.sort();
                    names
                })
                .collect();
            (f.name.to_owned(), (f.kind.as_str().to_owned(), labels))
        })
        .collect()
}

#[test]
fn families_labels_and_stable_values_match_debian_node_exporter() {
    assert!(
        std::path::Path::new(DEBIAN_NODE_EXPORTER).exists(),
        "{DEBIAN_NODE_EXPORTER} is missing: scripts/test installs the prometheus-node-exporter package"
    );
    let textfiles = tempfile::tempdir().unwrap();
    std::fs::write(
        textfiles.path().join("role.prom"),
        "example_role{role=\"gpu_worker\"} 1\n",
    )
    .unwrap();
    let common = vec![
        format!(
            "--collector.textfile.directory={}",
            textfiles.path().display()
        ),
        format!("--collector.filesystem.mount-points-exclude={MOUNT_POINTS_EXCLUDE}"),
        "--collector.netdev.device-exclude=^$".to_owned(),
        // Debian enables systemd; this host has no system D-Bus.
        "--no-collector.systemd".to_owned(),
        "--collector.processes".to_owned(),
        "--collector.tcpstat".to_owned(),
        "--collector.interrupts".to_owned(),
    ];
    let upstream = Running::start(DEBIAN_NODE_EXPORTER, &common);
    let ours = Running::kiln(&common);
    let (theirs_text, ours_text) = (upstream.scrape(), ours.scrape());
    let (theirs, mine) = (shapes(&theirs_text), shapes(&ours_text));

    let mut problems = Vec::new();
    for (name, (kind, label_sets)) in &theirs {
        let Some((our_kind, our_sets)) = mine.get(name) else {
            problems.push(format!("missing family {name}"));
            continue;
        };
        if kind != our_kind {
            problems.push(format!("{name}: type {our_kind}, upstream {kind}"));
        }
        for labels in label_sets {
            let covered = our_sets
                .iter()
                .any(|ours| labels.iter().all(|l| ours.contains(l)));
            if !covered {
                problems.push(format!(
                    "{name}: no series with upstream's labels {labels:?}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "differences from node_exporter:\n{}",
        problems.join("\n")
    );

    // Values that are the same in two scrapes a moment apart.
    let (theirs, mine) = (
        kiln_scraper::parse(&theirs_text).unwrap(),
        kiln_scraper::parse(&ours_text).unwrap(),
    );
    for (name, labels) in [
        ("node_memory_MemTotal_bytes", vec![]),
        ("node_memory_SwapTotal_bytes", vec![]),
        ("node_boot_time_seconds", vec![]),
        ("node_filefd_maximum", vec![]),
        ("node_entropy_pool_size_bits", vec![]),
        ("node_timex_tick_seconds", vec![]),
        ("node_nf_conntrack_entries_limit", vec![]),
        ("node_processes_max_processes", vec![]),
        ("node_filesystem_size_bytes", vec![("mountpoint", "/")]),
        ("node_filesystem_files", vec![("mountpoint", "/")]),
        ("node_network_mtu_bytes", vec![("device", "lo")]),
        ("node_udp_queues", vec![("ip", "v4"), ("queue", "tx")]),
        ("example_role", vec![("role", "gpu_worker")]),
    ] {
        let find = |e: &kiln_scraper::Exposition<'_>| {
            e.samples()
                .find(|s| s.name == name && s.has_labels(&labels))
                .map(|s| s.value)
        };
        assert_eq!(find(&mine), find(&theirs), "{name}{labels:?}");
        assert!(find(&mine).is_some(), "{name} missing on this host");
    }
    for family in [
        "node_uname_info",
        "node_os_info",
        "node_time_zone_offset_seconds",
    ] {
        let samples = |e: &kiln_scraper::Exposition<'_>| {
            let mut lines: Vec<String> = e
                .family(family)
                .unwrap()
                .samples
                .iter()
                .map(|s| {
                    let mut labels: Vec<String> = s
                        .labels
                        .iter()
                        .map(|l| format!("{}={}", l.name, l.value))
                        .collect();
                    labels.sort();
                    format!("{labels:?} {}", s.value)
                })
                .collect();
            lines.sort();
            lines
        };
        assert_eq!(samples(&mine), samples(&theirs), "{family}");
    }
}
