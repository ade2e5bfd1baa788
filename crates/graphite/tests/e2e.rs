//! The real binary on loopback: Graphite lines in over TCP and UDP, a scrape out, each
//! case checked against what graphite_exporter does (or, where it fails, what it should).

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write as _;
use std::net::TcpStream;
use std::time::Duration;

use support::{Exporter, fixture, mapping_file, now, value_in};

/// The Spark capture with its timestamps moved to now (the capture is older than the
/// sample expiry), and the mapping a real team runs.
fn spark_lines() -> String {
    let text = std::fs::read_to_string(fixture("spark-4.3-graphitesink-local.txt")).unwrap();
    let now = now();
    text.lines()
        .map(|line| {
            let (rest, _) = line.rsplit_once(' ').unwrap();
            format!("{rest} {now}\n")
        })
        .collect()
}

#[test]
fn spark_capture_over_tcp_maps_like_upstream() {
    let mapping = fixture("spark-team.yml").display().to_string();
    let exporter = Exporter::start(&[&format!("--graphite.mapping-config={mapping}")]);
    let lines = spark_lines();
    exporter.send_tcp(lines.as_bytes());
    exporter.wait_for_value("graphite_samples_stored_total", 3738.0);
    let text = exporter.scrape();
    // The exporter's own families come from a collector the registry runs.
    assert_eq!(
        value_in(
            &text,
            "graphite_scrape_collector_success{collector=\"graphite\"}"
        ),
        Some(1.0)
    );

    // The last value sent for each name wins (the capture holds 12 reports).
    let last_value = |name: &str| -> f64 {
        lines
            .lines()
            .rfind(|l| l.split(' ').next() == Some(name))
            .and_then(|l| l.split(' ').nth(1))
            .unwrap()
            .parse()
            .unwrap()
    };
    let app = "local-1795252902794";
    let checks = [
        (
            format!(
                "jvm_memory_usage{{application=\"{app}\",executor_id=\"driver\",mem_type=\"heap\",qty=\"used\"}}"
            ),
            format!("{app}.driver.jvm.heap.used"),
        ),
        (
            format!(
                "jvm_memory_pools{{application=\"{app}\",executor_id=\"driver\",mem_type=\"G1-Eden-Space\",qty=\"used\"}}"
            ),
            format!("{app}.driver.jvm.pools.G1-Eden-Space.used"),
        ),
        (
            format!(
                "block_manager{{application=\"{app}\",executor_id=\"driver\",qty=\"maxMem_MB\",type=\"memory\"}}"
            ),
            format!("{app}.driver.BlockManager.memory.maxMem_MB"),
        ),
        (
            format!(
                "executor_tasks{{application=\"{app}\",executor_id=\"driver\",qty=\"activeTasks\"}}"
            ),
            format!("{app}.driver.executor.threadpool.activeTasks"),
        ),
        (
            format!(
                "filesystem_usage{{application=\"{app}\",executor_id=\"driver\",fs_type=\"file\",qty=\"read_bytes\"}}"
            ),
            format!("{app}.driver.executor.filesystem.file.read_bytes"),
        ),
        // Unmatched names keep their path, sanitised.
        (
            "local_1795252902794_driver_DAGScheduler_stage_failedStages".to_owned(),
            format!("{app}.driver.DAGScheduler.stage.failedStages"),
        ),
    ];
    for (series, name) in checks {
        assert_eq!(
            value_in(&text, &series),
            Some(last_value(&name)),
            "{series}"
        );
    }
    // Spark prefixes DAGScheduler with the app and executor: the last rule never matches,
    // and that is visible.
    assert_eq!(
        value_in(
            &text,
            "graphite_mapping_rule_matches_total{action=\"map\",match=\"DAGScheduler.*.*\",name=\"DAG_scheduler\",rule=\"6\"}"
        ),
        Some(0.0)
    );
    assert!(
        value_in(&text, "graphite_mapping_rule_matches_total{action=\"map\",match=\"*.*.jvm.*.*\",name=\"jvm_memory_usage\",rule=\"1\"}")
            .unwrap()
            > 0.0
    );
    assert_eq!(value_in(&text, "graphite_series"), Some(314.0));
    assert!(text.contains(
        "# HELP jvm_memory_usage Graphite metric jvm_memory_usage\n# TYPE jvm_memory_usage gauge\n"
    ));
}

#[test]
fn udp_datagrams_with_several_lines() {
    let exporter = Exporter::start(&[]);
    let now = now();
    exporter.send_udp(format!("a.one 1 {now}\na.two 2.5 {now}\n").as_bytes());
    exporter.send_udp(format!("a.three 3 {now}").as_bytes());
    exporter.wait_for_value("a_three", 3.0);
    assert_eq!(exporter.value("a_one"), Some(1.0));
    assert_eq!(exporter.value("a_two"), Some(2.5));
    // Readers add their counts every 100 ms at most.
    exporter.wait_for_value("graphite_udp_datagrams_total", 2.0);
}

#[test]
fn invalid_lines_are_counted_by_reason_and_the_rest_kept() {
    let exporter = Exporter::start(&[]);
    let now = now();
    let mut text = String::new();
    text.push_str(&format!("good.one 1 {now}\n"));
    text.push_str("two.fields 1\n");
    text.push_str(&format!("double  space 1 {now}\n"));
    text.push_str(&format!("tab\t1\t{now}\n"));
    text.push_str(&format!("bad.value abc {now}\n"));
    text.push_str("bad.timestamp 1 soon\n");
    text.push_str("nan.timestamp 1 NaN\n");
    text.push_str(&format!("big.value 1e400 {now}\n"));
    text.push_str(&format!("{} 1 {now}\n", "x".repeat(70_000)));
    text.push_str(&format!(";k=v 1 {now}\n"));
    text.push_str(&format!("m;=v 1 {now}\n"));
    text.push_str(&format!("m;__name__=v 1 {now}\n"));
    text.push_str(&format!("go.syntax 1_000 {now}\n"));
    text.push_str(&format!("hex.float 0x1p-2 {now}\n"));
    text.push_str(&format!("tagged;bad;k=v 7 {now}\n"));
    text.push_str(&format!("crlf.line 4 {now}\r\n"));
    text.push_str(&format!("after.all 9 {now}"));
    exporter.send_tcp(text.as_bytes());
    exporter.wait_for_value("after_all", 9.0);
    let scrape = exporter.scrape();
    let invalid = |reason: &str| {
        value_in(
            &scrape,
            &format!("graphite_invalid_lines_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(invalid("part_count"), Some(3.0));
    assert_eq!(invalid("value"), Some(2.0));
    assert_eq!(invalid("timestamp"), Some(2.0));
    assert_eq!(invalid("too_long"), Some(1.0));
    assert_eq!(invalid("empty_name"), Some(1.0));
    assert_eq!(invalid("invalid_label_name"), Some(2.0));
    assert_eq!(value_in(&scrape, "good_one"), Some(1.0));
    assert_eq!(value_in(&scrape, "go_syntax"), Some(1000.0));
    assert_eq!(value_in(&scrape, "hex_float"), Some(0.25));
    assert_eq!(value_in(&scrape, "crlf_line"), Some(4.0));
    assert_eq!(value_in(&scrape, "tagged{k=\"v\"}"), Some(7.0));
    assert_eq!(value_in(&scrape, "graphite_tag_parse_failures"), Some(1.0));
    // The exporter is still serving after inputs that crash graphite_exporter.
    assert_eq!(
        value_in(&scrape, "graphite_samples_stored_total"),
        Some(6.0)
    );
}

#[test]
fn colliding_series_do_not_fail_the_scrape() {
    let exporter = Exporter::start(&[]);
    let now = now();
    exporter.send_tcp(
        format!(
            "a.b 1 {}\na_b 2 {now}\nm;x=1;y=2 3 {now}\nm;y=2;x=1 4 {}\ngraphite.sample_expiry_seconds 5 {now}\n",
            now - 10,
            now - 10
        )
        .as_bytes(),
    );
    exporter.wait_for_value("graphite_samples_stored_total", 5.0);
    let (status, text) = exporter.get("/metrics").unwrap();
    assert_eq!(status, 200, "upstream answers 500 here");
    assert_eq!(
        value_in(&text, "a_b"),
        Some(2.0),
        "the newest sample is served"
    );
    assert_eq!(value_in(&text, "m{x=\"1\",y=\"2\"}"), Some(3.0));
    assert_eq!(
        value_in(&text, "graphite_sample_expiry_seconds"),
        Some(300.0)
    );
    assert_eq!(
        value_in(&text, "graphite_scrape_conflicting_series"),
        Some(3.0)
    );
}

#[test]
fn honor_labels_lets_tags_win() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = mapping_file(
        &dir,
        "mappings:\n- match: job.*\n  name: by_rule\n  labels: {job: $1}\n- match: honor.*\n  name: honoured\n  honor_labels: true\n  labels: {job: $1}\n",
    );
    let exporter = Exporter::start(&[&format!("--graphite.mapping-config={mapping}")]);
    let now = now();
    exporter.send_tcp(format!("job.x;job=tag 1 {now}\nhonor.x;job=tag 2 {now}\n").as_bytes());
    exporter.wait_for_value("honoured{job=\"tag\"}", 2.0);
    assert_eq!(exporter.value("by_rule{job=\"x\"}"), Some(1.0));
}

#[test]
fn strict_match_drop_rules_and_scale() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = mapping_file(
        &dir,
        "mappings:\n- match: keep.*\n  name: kept\n  scale: 0.001\n  labels: {what: $1}\n- match: noisy.*\n  name: x\n  action: drop\n",
    );
    let exporter = Exporter::start(&[
        &format!("--graphite.mapping-config={mapping}"),
        "--graphite.mapping-strict-match",
    ]);
    let now = now();
    exporter.send_tcp(
        format!("keep.ms 1500 {now}\nnoisy.a garbage {now}\nunmatched.b 1 {now}\n").as_bytes(),
    );
    exporter.wait_for_value("graphite_dropped_samples_total", 2.0);
    let text = exporter.scrape();
    assert_eq!(value_in(&text, "kept{what=\"ms\"}"), Some(1.5));
    assert_eq!(value_in(&text, "unmatched_b"), None);
    assert_eq!(
        value_in(&text, "graphite_invalid_lines_total{reason=\"value\"}"),
        Some(0.0)
    );
}

#[test]
fn samples_older_than_the_expiry_are_not_served() {
    let exporter = Exporter::start(&["--graphite.sample-expiry=1m"]);
    let now = now();
    exporter.send_tcp(format!("old.one 1 {}\nnew.one 2 {now}\n", now - 120).as_bytes());
    exporter.wait_for("new_one");
    assert_eq!(exporter.value("old_one"), None);
    assert_eq!(exporter.value("graphite_sample_expiry_seconds"), Some(60.0));
}

/// Reloading re-maps every stored series, a second or so of a core with a million of them:
/// over HTTP it is served only with `--web.enable-lifecycle`, as other exporters do.
#[test]
fn reload_over_http_needs_web_enable_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = mapping_file(&dir, "mappings:\n- match: app.*\n  name: first\n");
    let exporter = Exporter::start(&[&format!("--graphite.mapping-config={mapping}")]);
    let now = now();
    exporter.send_tcp(format!("app.a 1 {now}\n").as_bytes());
    exporter.wait_for_value("first", 1.0);
    std::fs::write(&mapping, "mappings:\n- match: app.*\n  name: second\n").unwrap();
    let (status, _) = exporter.request("POST", "/-/reload").unwrap();
    assert_eq!(status, 404);
    assert_eq!(
        exporter.value("first"),
        Some(1.0),
        "the mapping in force stays"
    );
}

#[test]
fn reload_keeps_samples_and_applies_the_new_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = mapping_file(
        &dir,
        "mappings:\n- match: app.*\n  name: first\n  labels: {xx: $1}\n",
    );
    let exporter = Exporter::start(&[
        &format!("--graphite.mapping-config={mapping}"),
        "--web.enable-lifecycle",
    ]);
    let now = now();
    exporter.send_tcp(format!("app.a 1 {now}\n").as_bytes());
    exporter.wait_for_value("first{xx=\"a\"}", 1.0);

    std::fs::write(
        &mapping,
        "mappings:\n- match: app.*\n  name: second\n  labels: {yy: $1}\n",
    )
    .unwrap();
    let (status, body) = exporter.request("POST", "/-/reload").unwrap();
    assert_eq!(status, 200, "{body}");
    let text = exporter.scrape();
    assert_eq!(
        value_in(&text, "second{yy=\"a\"}"),
        Some(1.0),
        "the stored sample is re-mapped"
    );
    assert_eq!(value_in(&text, "first{xx=\"a\"}"), None);

    // A broken file is refused and the mapping in force stays.
    std::fs::write(&mapping, "mappings:\n- match: app.*\n  labels: {yy: $1}\n").unwrap();
    let (status, body) = exporter.request("POST", "/-/reload").unwrap();
    assert_eq!(status, 500);
    assert!(
        body.contains("metric mapping didn't set a metric name"),
        "{body}"
    );
    exporter.send_tcp(format!("app.b 2 {now}\n").as_bytes());
    exporter.wait_for_value("second{yy=\"b\"}", 2.0);
    assert_eq!(
        exporter.value("graphite_config_last_reload_successful"),
        Some(0.0)
    );

    // SIGHUP works too.
    std::fs::write(
        &mapping,
        "mappings:\n- match: app.*\n  name: third\n  labels: {zz: $1}\n",
    )
    .unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &exporter.process.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    exporter.wait_for_value("third{zz=\"b\"}", 2.0);
    assert_eq!(
        exporter.value("graphite_config_last_reload_successful"),
        Some(1.0)
    );
}

#[test]
fn series_limit_refuses_new_series_only() {
    let exporter = Exporter::start(&["--graphite.series-limit=2"]);
    let now = now();
    exporter.send_tcp(format!("s.a 1 {now}\ns.b 2 {now}\ns.c 3 {now}\ns.a 4 {now}\n").as_bytes());
    exporter.wait_for_value("s_a", 4.0);
    let text = exporter.scrape();
    assert_eq!(value_in(&text, "s_c"), None);
    assert_eq!(
        value_in(&text, "graphite_series_limit_rejected_samples_total"),
        Some(1.0)
    );
    assert_eq!(value_in(&text, "graphite_series"), Some(2.0));
}

#[test]
fn connection_limit_and_idle_timeout() {
    let exporter = Exporter::start(&[
        "--graphite.tcp-max-connections=1",
        "--graphite.tcp-idle-timeout=300ms",
    ]);
    let held = TcpStream::connect(("127.0.0.1", exporter.graphite_port)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    // At the limit, a newcomer takes the place of the connection idle longest.
    let mut newcomer = TcpStream::connect(("127.0.0.1", exporter.graphite_port)).unwrap();
    newcomer
        .write_all(format!("newcomer.line 1 {}\n", now()).as_bytes())
        .unwrap();
    exporter.wait_for_value("newcomer_line", 1.0);
    exporter.wait_for_value("graphite_tcp_connections_idle_closed_total", 1.0);
    // Then, silent after its line, it is closed after the idle timeout.
    exporter.wait_for_value("graphite_tcp_connections_idle_closed_total", 2.0);
    assert_eq!(
        exporter.value("graphite_tcp_connections_refused_total"),
        Some(0.0)
    );
    drop((held, newcomer));
    exporter.send_tcp(format!("later.one 1 {}\n", now()).as_bytes());
    exporter.wait_for_value("later_one", 1.0);
}

#[test]
fn the_scrape_passes_promtool() {
    let exporter = Exporter::start(&[&format!(
        "--graphite.mapping-config={}",
        fixture("spark-team.yml").display()
    )]);
    exporter.send_tcp(spark_lines().as_bytes());
    exporter.wait_for_value("graphite_samples_stored_total", 3738.0);
    let text = exporter.scrape();
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/test installs Debian's prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    // promtool lints names (Graphite's camelCase paths, counters without `_total` such as
    // upstream's graphite_tag_parse_failures) but must find no format error.
    assert!(!report.contains("error while linting"), "{report}");
    assert!(
        report
            .contains("graphite_tag_parse_failures counter metrics should have \"_total\" suffix"),
        "{report}"
    );
}

#[test]
fn check_config_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = mapping_file(
        &dir,
        "mappings:\n- match: a.b\n  name: ok\n- match: a.*\n  name: x\n  labels: {a: $1}\n",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln-graphite-exporter"))
        .args([
            &format!("--graphite.mapping-config={mapping}"),
            "--check-config",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{mapping}:6: mappings[1].labels: invalid label key: a"
        )),
        "{stderr}"
    );

    // A misspelt `mappings:` is refused too, not served as an empty mapping.
    let typo = mapping_file(&dir, "mapings:\n- match: a.b\n  name: ok\n");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln-graphite-exporter"))
        .args([
            &format!("--graphite.mapping-config={typo}"),
            "--check-config",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains(&format!("{typo}:1: mapings: unknown key")),
        "{stderr}"
    );

    let good = fixture("spark-team.yml").display().to_string();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln-graphite-exporter"))
        .args([
            &format!("--graphite.mapping-config={good}"),
            "--check-config",
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_busy_ingest_port_exits_1_and_a_malformed_address_64() {
    // Held for the whole test, so the exporter finds the port taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = format!("127.0.0.1:{}", taken.local_addr().unwrap().port());
    let run = |address: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kiln-graphite-exporter"))
            .args([
                &format!("--graphite.listen-address={address}"),
                "--web.listen-address=127.0.0.1:0",
            ])
            .output()
            .unwrap()
    };
    let output = run(&busy);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot listen for Graphite"), "{stderr}");
    let output = run("127.0.0.1:notaport");
    assert_eq!(
        output.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    drop(taken);
}

/// A connection that sends a byte now and then but never a whole line is closed when the
/// idle timeout has passed since its last line, however many bytes it trickles.
#[test]
fn a_trickle_without_lines_does_not_reset_the_idle_timeout() {
    let exporter = Exporter::start(&["--graphite.tcp-idle-timeout=1s"]);
    let mut stream = TcpStream::connect(("127.0.0.1", exporter.graphite_port)).unwrap();
    stream
        .write_all(format!("whole.line 1 {}\n", now()).as_bytes())
        .unwrap();
    let started = std::time::Instant::now();
    let mut closed = None;
    while started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
        // After the server closes, a write fails (the first one may still succeed).
        if stream.write_all(b"x").is_err() {
            closed = Some(started.elapsed());
            break;
        }
    }
    let closed = closed.expect("the trickling connection was never closed");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    assert_eq!(exporter.value("whole_line"), Some(1.0));
    assert!(
        exporter
            .value("graphite_tcp_connections_idle_closed_total")
            .is_some_and(|n| n >= 1.0)
    );
}

/// Every ingest slot held by a silent connection: a sender's line still gets in, because
/// the connection that has gone longest without a line makes room for it.
#[test]
fn idle_connections_cannot_lock_senders_out() {
    const SLOTS: usize = 8;
    let exporter = Exporter::start(&[&format!("--graphite.tcp-max-connections={SLOTS}")]);
    let now = now();
    // The first holder sends half a line: when it is closed to make room, that is dropped,
    // not stored as if its sender had finished it.
    let mut partial = TcpStream::connect(("127.0.0.1", exporter.graphite_port)).unwrap();
    partial
        .write_all(format!("held.partial 7 {now}").as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let holders: Vec<TcpStream> = (0..3 * SLOTS)
        .map(|_| TcpStream::connect(("127.0.0.1", exporter.graphite_port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for n in 0..5 {
        exporter.send_tcp(format!("sender.line{n} {n} {now}\n").as_bytes());
    }
    for n in 0..5 {
        exporter.wait_for_value(&format!("sender_line{n}"), f64::from(n));
    }
    assert_eq!(
        exporter.value("graphite_tcp_connections_refused_total"),
        Some(0.0)
    );
    assert_eq!(exporter.value("held_partial"), None);
    drop((partial, holders));
}

/// Few series with very long names: stored text is bounded by --graphite.series-bytes-limit,
/// not only by the number of series.
#[test]
fn long_names_are_bounded_by_the_series_bytes_limit() {
    const LIMIT: usize = 1 << 20;
    let exporter = Exporter::start(&[&format!("--graphite.series-bytes-limit={LIMIT}")]);
    let now = now();
    // 100 series of 60 000-byte names: 6 MB of names, 12 MB with their families.
    let mut lines = String::new();
    for n in 0..100 {
        lines.push_str(&format!("{n:0>60000} 1 {now}\n"));
    }
    exporter.send_tcp(lines.as_bytes());
    exporter.wait_for_value("graphite_samples_stored_total", 8.0);
    exporter.wait_for("graphite_series_limit_rejected_samples_total");
    let stored = exporter.value("graphite_series_bytes").unwrap();
    assert!(stored <= LIMIT as f64, "{stored}");
    assert_eq!(exporter.value("graphite_series"), Some(8.0));
    assert_eq!(
        exporter.value("graphite_series_limit_rejected_samples_total"),
        Some(92.0)
    );
}

#[test]
fn a_panicking_collector_is_reported_and_the_store_still_served() {
    let exporter =
        Exporter::start_with_env(&[], &[(kiln_registry::PANIC_COLLECTORS_ENV, "graphite")]);
    exporter.send_tcp(format!("spark.app.driver.jvm.heap.used 42 {}\n", now()).as_bytes());
    let series = "spark_app_driver_jvm_heap_used";
    let started = std::time::Instant::now();
    let text = loop {
        let text = exporter.scrape();
        if value_in(&text, series).is_some() || started.elapsed().as_secs() > 10 {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(value_in(&text, series), Some(42.0), "{text}");
    assert_eq!(
        value_in(
            &text,
            "graphite_scrape_collector_success{collector=\"graphite\"}"
        ),
        Some(0.0),
        "{text}"
    );
    assert!(
        value_in(
            &text,
            "graphite_scrape_collector_duration_seconds{collector=\"graphite\"}"
        )
        .is_some()
    );
    assert!(!text.contains("graphite_samples_stored_total"), "{text}");
    assert!(exporter.log_text().contains("made to panic"));
}
