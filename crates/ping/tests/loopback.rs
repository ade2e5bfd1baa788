//! The exporter on loopback: DNS re-resolution through a name server, live configuration
//! changes, `/probe`, smokeping_prober's names, and start-up errors.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use support::{DnsServer, EXPORTER, Exporter, run_to_exit};

#[test]
fn a_target_whose_address_changes_keeps_its_series() {
    let dns = DnsServer::start(Ipv4Addr::new(127, 0, 0, 2));
    let nameserver = format!("--dns.nameserver=127.0.0.1:{}", dns.port);
    let exporter = Exporter::on_loopback(&[
        "--ping.interval=50ms",
        "--dns.refresh=300ms",
        "--options.disable-ipv6",
        &nameserver,
        "db.kiln.test",
    ]);
    let series = [("target", "db.kiln.test"), ("ip_version", "4")];
    let before = exporter.wait_for(
        "ping_responses_total",
        &series,
        3.0,
        Duration::from_secs(20),
    );
    let with_ip = |ip| [("target", "db.kiln.test"), ("ip", ip), ("ip_version", "4")];
    assert!(
        exporter
            .value("ping_loss_ratio", &with_ip("127.0.0.2"))
            .is_some()
    );

    dns.set(Ipv4Addr::new(127, 0, 0, 3));
    let started = std::time::Instant::now();
    while exporter
        .value("ping_loss_ratio", &with_ip("127.0.0.3"))
        .is_none()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}",
            exporter.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The counters went on from where they were: same series, new address.
    let after = exporter.value("ping_responses_total", &series).unwrap();
    assert!(after > before, "{after} after {before}");
    assert_eq!(
        exporter.value("ping_loss_ratio", &with_ip("127.0.0.2")),
        None
    );
    assert_eq!(
        exporter.value("ping_dns_resolved", &[("target", "db.kiln.test")]),
        Some(1.0)
    );
    assert_eq!(exporter.value("ping_timeouts_total", &series), Some(0.0));
    // The ping families come from a collector the registry runs, timed and checked.
    let collector = [("collector", "ping")];
    assert_eq!(
        exporter.value("ping_scrape_collector_success", &collector),
        Some(1.0)
    );
    assert!(
        exporter
            .value("ping_scrape_collector_duration_seconds", &collector)
            .is_some()
    );
}

#[test]
fn resolution_failures_are_counted_not_fatal() {
    // A name server that never answers: lookups time out, the exporter keeps serving.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let nameserver = format!(
        "--dns.nameserver=127.0.0.1:{}",
        silent.local_addr().unwrap().port()
    );
    let exporter = Exporter::on_loopback(&[
        "--ping.interval=50ms",
        "--dns.refresh=200ms",
        "--dns.timeout=100ms",
        &nameserver,
        "nowhere.kiln.test",
        "127.0.0.1",
    ]);
    exporter.wait_for(
        "ping_dns_failures_total",
        &[("target", "nowhere.kiln.test")],
        2.0,
        Duration::from_secs(20),
    );
    assert_eq!(
        exporter.value("ping_dns_resolved", &[("target", "nowhere.kiln.test")]),
        Some(0.0)
    );
    exporter.wait_for(
        "ping_responses_total",
        &[("target", "127.0.0.1"), ("ip_version", "4")],
        3.0,
        Duration::from_secs(20),
    );
    drop(silent);
}

#[test]
fn target_changes_in_the_file_apply_live() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ping.yml");
    std::fs::write(&path, "targets: [127.0.0.1]\nping: {interval: 50ms}\n").unwrap();
    let exporter = Exporter::on_loopback(&["--config.path", path.to_str().unwrap()]);
    let first = [("target", "127.0.0.1"), ("ip_version", "4")];
    exporter.wait_for("ping_responses_total", &first, 2.0, Duration::from_secs(20));

    // A new target with a label, the old one gone; no reload request: the file is watched.
    std::fs::write(
        &path,
        "targets:\n  - {host: 127.0.0.4, rack: r7}\nping: {interval: 50ms}\n",
    )
    .unwrap();
    let second = [("target", "127.0.0.4"), ("ip_version", "4"), ("rack", "r7")];
    exporter.wait_for(
        "ping_responses_total",
        &second,
        2.0,
        Duration::from_secs(20),
    );
    assert_eq!(exporter.value("ping_responses_total", &first), None);

    // A broken file keeps the targets in force and says where it is wrong.
    std::fs::write(&path, "targets: [127.0.0.4]\nping: {interval: fast}\n").unwrap();
    let (status, body) = exporter.request_post("/-/reload");
    assert_eq!(status, 500);
    assert!(body.contains("ping.yml:2"), "{body}");
    assert!(exporter.value("ping_responses_total", &second).is_some());

    // An empty (or half-written) file is refused the same way, not read as "no targets".
    std::fs::write(&path, "").unwrap();
    let (status, body) = exporter.request_post("/-/reload");
    assert_eq!(status, 500);
    assert!(body.contains("no targets"), "{body}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(exporter.value("ping_responses_total", &second).is_some());
    assert_eq!(
        exporter.value("ping_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert!(
        exporter
            .value("ping_config_reload_failures_total", &[])
            .is_some_and(|n| n >= 2.0)
    );
    std::fs::write(&path, "targets: [127.0.0.4]\nping: {interval: 50ms}\n").unwrap();
    assert_eq!(exporter.request_post("/-/reload").0, 200);
    assert_eq!(
        exporter.value("ping_config_last_reload_successful", &[]),
        Some(1.0)
    );
}

#[test]
fn a_file_of_duplicates_is_read_once_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ping.yml");
    let hosts = vec!["127.0.0.1"; 20_000].join(", ");
    std::fs::write(&path, format!("targets: [{hosts}]\n")).unwrap();
    let exporter = Exporter::on_loopback(&["--config.path", path.to_str().unwrap()]);
    let log = exporter.log_text();
    assert_eq!(
        log.matches("listed more than once").count(),
        1,
        "one warning for all repeats: {log}"
    );
    assert!(log.contains("repeats=19999"), "{log}");
    exporter.wait_for(
        "ping_requests_total",
        &[("target", "127.0.0.1"), ("ip_version", "4")],
        1.0,
        Duration::from_secs(20),
    );
}

#[test]
fn probes_are_bounded_in_bytes_each_and_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ping.yml");
    std::fs::write(
        &path,
        "targets: [127.0.0.1]\nprobe:\n  allowed_targets: [127.0.0.0/8]\n",
    )
    .unwrap();
    let exporter = std::sync::Arc::new(Exporter::on_loopback(&[
        "--config.path",
        path.to_str().unwrap(),
    ]));
    // 6.5 MB from one request: refused outright.
    let (status, body) = exporter
        .request("/probe?target=127.0.0.9&count=100&size=65500")
        .unwrap();
    assert_eq!(status, 400, "{body}");
    let (status, _) = exporter
        .request("/probe?target=127.0.0.9&interval=1ms")
        .unwrap();
    assert_eq!(status, 400, "a 1 ms interval is refused");
    // Six probes of about 1 MB each, a second long, at once: four fit in the 4 MiB budget.
    let probes: Vec<_> = (0..6)
        .map(|_| {
            let exporter = std::sync::Arc::clone(&exporter);
            std::thread::spawn(move || {
                exporter
                    .request("/probe?target=127.0.0.9&count=100&size=10000&interval=10ms")
                    .map(|(status, _)| status)
            })
        })
        .collect();
    let statuses: Vec<_> = probes.into_iter().map(|p| p.join().unwrap()).collect();
    assert!(statuses.contains(&Some(200)), "{statuses:?}");
    assert!(statuses.contains(&Some(503)), "{statuses:?}");
    // Once they are done, a probe is served again.
    let body = exporter.get("/probe?target=127.0.0.9").unwrap();
    assert!(body.contains("probe_success 1"), "{body}");
}

#[test]
fn probe_endpoint_sends_fresh_requests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ping.yml");
    std::fs::write(
        &path,
        "targets: [127.0.0.1]\nprobe:\n  allowed_targets: [127.0.0.0/8, localhost]\n",
    )
    .unwrap();
    let exporter = Exporter::on_loopback(&["--config.path", path.to_str().unwrap()]);

    let body = exporter
        .get("/probe?target=127.0.0.9&count=3&interval=10ms")
        .unwrap();
    let metrics = kiln_scraper::parse(&body).unwrap();
    assert_eq!(metrics.value("probe_success", &[]), Some(1.0));
    assert_eq!(metrics.value("probe_icmp_requests", &[]), Some(3.0));
    assert_eq!(metrics.value("probe_icmp_replies", &[]), Some(3.0));
    assert_eq!(metrics.value("probe_ip_protocol", &[]), Some(4.0));
    assert_eq!(metrics.value("probe_icmp_reply_hop_limit", &[]), Some(64.0));
    let rtt = metrics
        .value("probe_icmp_duration_seconds", &[("phase", "rtt")])
        .unwrap();
    assert!(rtt > 0.0 && rtt < 0.05, "{rtt}");

    let body = exporter.get("/probe?target=localhost").unwrap();
    assert!(body.contains("probe_success 1"), "{body}");

    let (status, body) = exporter.request("/probe?target=10.1.1.1").unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("probe.allowed_targets"));
    // A name that does not resolve is a failed probe, as in blackbox_exporter.
    let body = exporter.get("/probe?target=nothing.invalid").unwrap();
    assert!(body.contains("probe_success 0"), "{body}");
    let (status, body) = exporter.request("/probe?count=2").unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("Target parameter is missing"));
    // One-time probes are not targets of /metrics.
    assert!(!exporter.scrape().contains("127.0.0.9"));
}

#[test]
fn smokeping_names_match_smokeping_prober() {
    let exporter = Exporter::on_loopback(&[
        "--ping.interval=50ms",
        "--metrics.smokeping",
        "127.0.0.1",
        "::1",
    ]);
    exporter.wait_for(
        "smokeping_response_duration_seconds_count",
        &[("host", "::1"), ("ip", "::1")],
        2.0,
        Duration::from_secs(20),
    );
    let ours = exporter.scrape();
    let ours = kiln_scraper::parse(&ours).unwrap();
    let reference = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/smokeping_prober_metrics.txt"
    ))
    .unwrap();
    let reference = kiln_scraper::parse(&reference).unwrap();
    for name in [
        "smokeping_requests_total",
        "smokeping_response_duration_seconds",
        "smokeping_response_duplicates_total",
    ] {
        let (a, b) = (ours.family(name).unwrap(), reference.family(name).unwrap());
        assert_eq!(a.kind, b.kind, "{name}");
        assert_eq!(a.help, b.help, "{name}");
        let label_names = |family: &kiln_scraper::Family<'_>| {
            let mut names: Vec<String> = family.samples[0]
                .labels
                .iter()
                .map(|l| l.name.to_string())
                .collect();
            names.sort();
            names
        };
        assert_eq!(label_names(a), label_names(b), "{name}");
    }
    // The same buckets, bound for bound.
    let bounds = |metrics: &kiln_scraper::Exposition<'_>| {
        metrics
            .family("smokeping_response_duration_seconds")
            .unwrap()
            .samples
            .iter()
            .filter(|s| s.label("ip") == Some("::1"))
            .filter_map(|s| s.label("le").map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert_eq!(bounds(&ours), bounds(&reference));
    // Served under smokeping's name only, not twice.
    assert!(ours.family("ping_rtt_seconds").is_none());
}

#[test]
fn deprecated_and_millisecond_gauges_on_request() {
    let exporter = Exporter::on_loopback(&[
        "--ping.interval=50ms",
        "--metrics.rttunit=both",
        "--metrics.deprecated=enable",
        "127.0.0.1",
    ]);
    let labels = [
        ("target", "127.0.0.1"),
        ("ip", "127.0.0.1"),
        ("ip_version", "4"),
    ];
    exporter.wait_for("ping_loss_ratio", &labels, 0.0, Duration::from_secs(20));
    let text = exporter.scrape();
    let metrics = kiln_scraper::parse(&text).unwrap();
    let seconds = metrics.value("ping_rtt_mean_seconds", &labels).unwrap();
    let millis = metrics.value("ping_rtt_mean_ms", &labels).unwrap();
    assert!((seconds * 1000.0 - millis).abs() < 1e-9);
    let mut typed = labels.to_vec();
    typed.push(("type", "best"));
    assert!(metrics.value("ping_rtt_ms", &typed).is_some());
}

#[test]
fn bad_configuration_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ping.yml");
    std::fs::write(
        &path,
        "targets:\n  - 127.0.0.1\nping:\n  history-size: ten\n",
    )
    .unwrap();
    let mut command = Command::new(EXPORTER);
    command.args(["--config.path", path.to_str().unwrap()]);
    let (code, stderr) = run_to_exit(command);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("ping.yml:4"), "{stderr}");

    let (code, stderr) = run_to_exit(Command::new(EXPORTER));
    assert_eq!(code, Some(64));
    assert!(stderr.contains("no targets specified"), "{stderr}");
}

#[test]
fn a_panicking_collector_is_reported_and_the_rest_served() {
    let exporter = Exporter::on_loopback_with_env(
        &["--ping.interval=50ms", "127.0.0.1"],
        &[(kiln_registry::PANIC_COLLECTORS_ENV, "ping")],
    );
    let collector = [("collector", "ping")];
    let text = exporter.scrape();
    let parsed = kiln_scraper::parse(&text).unwrap();
    assert_eq!(
        parsed.value("ping_scrape_collector_success", &collector),
        Some(0.0),
        "{text}"
    );
    assert!(
        parsed
            .value("ping_scrape_collector_duration_seconds", &collector)
            .is_some()
    );
    // The same exporter without the fault serves the target's series.
    let healthy = Exporter::on_loopback(&["--ping.interval=50ms", "127.0.0.1"]);
    let target = [("target", "127.0.0.1"), ("ip_version", "4")];
    healthy.wait_for(
        "ping_responses_total",
        &target,
        1.0,
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_millis(200));
    let text = exporter.scrape();
    assert!(
        !text.contains("target=\"127.0.0.1\""),
        "a failed collector's families are left out:\n{text}"
    );
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    assert!(
        exporter.log_text().contains("made to panic"),
        "{}",
        exporter.log_text()
    );
}
