//! The example exporter binary, end to end: flags, exposition validity (kiln-scraper and
//! Debian's promtool), collector failures, deadlines, gzip, filters, signals.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use kiln_scraper::ScrapeClient;
use support::{ExampleExporter, curl, run_to_exit};

fn client() -> ScrapeClient {
    ScrapeClient::new()
        .unwrap()
        .timeout(Duration::from_secs(10))
}

#[tokio::test]
async fn serves_exposition_that_parses_strictly_and_passes_promtool() {
    let exporter = ExampleExporter::start(&["--example.series=1000"]);
    let scrape = client().scrape(&exporter.url("/metrics")).await.unwrap();
    assert!(scrape.gzipped, "the client asks for gzip and gets it");
    assert_eq!(
        scrape.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let exposition = scrape.parse().unwrap();
    assert_eq!(
        exposition.family("example_series").unwrap().samples.len(),
        1000
    );
    assert_eq!(
        exposition.value("example_series", &[("series", "999")]),
        Some(999.0)
    );
    assert_eq!(
        exposition.value(
            "example_scrape_collector_success",
            &[("collector", "series")]
        ),
        Some(1.0)
    );
    let build = exposition.family("kiln_build_info").unwrap();
    assert_eq!(
        build.samples[0].label("exporter"),
        Some("kiln-example-exporter")
    );
    assert!(
        exposition
            .value("process_resident_memory_bytes", &[])
            .unwrap()
            > 0.0
    );
    assert_eq!(
        exposition.value("promhttp_metric_handler_requests_total", &[("code", "200")]),
        Some(0.0)
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed: install Debian's prometheus package (scripts/test does)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.body.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What Debian's Prometheus 2.42 sends: OpenMetrics first.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[tokio::test]
async fn openmetrics_when_asked_parses_strictly_and_ends_with_eof() {
    let exporter = ExampleExporter::start(&["--example.series=10"]);
    let url = exporter.url("/metrics");
    let scrape = client()
        .fetch(kiln_scraper::Fetch::get(&url, PROMETHEUS_ACCEPT))
        .await
        .unwrap();
    assert_eq!(
        scrape.content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(scrape.body.ends_with("# EOF\n"), "{}", scrape.body);
    let exposition = scrape.parse().unwrap();
    assert_eq!(
        exposition.value("example_series", &[("series", "9")]),
        Some(9.0)
    );
    assert_eq!(
        exposition.value("example_latency_seconds_bucket", &[("le", "1.0")]),
        Some(5.0)
    );
    // Counters are named without `_total` and their samples with it, as OpenMetrics has it.
    assert!(
        scrape
            .body
            .contains("# TYPE promhttp_metric_handler_requests counter\n"),
        "{}",
        scrape.body
    );
    assert_eq!(
        exposition.value("promhttp_metric_handler_requests_total", &[("code", "200")]),
        Some(0.0)
    );
    assert!(
        scrape
            .body
            .contains("# UNIT example_latency_seconds seconds\n")
    );
    // The same scrape without OpenMetrics in Accept is the text format.
    let text = client().scrape(&url).await.unwrap();
    assert_eq!(
        text.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(!text.body.contains("# EOF"));
}

#[test]
fn a_real_prometheus_ingests_the_openmetrics_answer() {
    let exporter = ExampleExporter::start(&["--example.series=10"]);
    let prometheus = kiln_test_support::Prometheus::scraping(
        "example",
        &[format!("127.0.0.1:{}", exporter.port)],
        &[],
    );
    // `le="1.0"` is how the OpenMetrics answer spells the bucket (the text format says
    // `le="1"`): data under that label shows Prometheus asked for and read OpenMetrics.
    let bucket = prometheus.query("example_latency_seconds_bucket{le=\"1.0\"}");
    assert_eq!(bucket, Some(5.0));
    assert_eq!(prometheus.query("up"), Some(1.0));
    assert_eq!(prometheus.query("example_series{series=\"9\"}"), Some(9.0));
    assert_eq!(
        prometheus.query("example_scrape_collector_success{collector=\"series\"}"),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_failing_collector_is_reported_and_the_scrape_still_succeeds() {
    let exporter = ExampleExporter::start(&["--example.series=3", "--example.failing-collector"]);
    let scrape = client().scrape(&exporter.url("/metrics")).await.unwrap();
    let exposition = scrape.parse().unwrap();
    let success = |c| exposition.value("example_scrape_collector_success", &[("collector", c)]);
    assert_eq!(success("failing"), Some(0.0));
    assert_eq!(success("series"), Some(1.0));
    assert_eq!(
        exposition.family("example_series").unwrap().samples.len(),
        3
    );
}

#[tokio::test]
async fn a_slow_collector_is_cut_off_at_the_scrape_deadline() {
    let exporter =
        ExampleExporter::start(&["--example.series=1", "--example.slow-collector-seconds=30"]);
    // The client sends X-Prometheus-Scrape-Timeout-Seconds: 2; the exporter answers within it.
    let scrape = ScrapeClient::new()
        .unwrap()
        .timeout(Duration::from_secs(2))
        .scrape(&exporter.url("/metrics"))
        .await
        .expect("the scrape is answered before the client gives up");
    let exposition = scrape.parse().unwrap();
    assert_eq!(
        exposition.value("example_scrape_collector_success", &[("collector", "slow")]),
        Some(0.0)
    );
    assert_eq!(
        exposition.value("example_series", &[("series", "0")]),
        Some(0.0)
    );
    assert!(exposition.family("example_slow_done").is_none());
}

#[test]
fn collect_and_exclude_filters_follow_node_exporter() {
    let exporter = ExampleExporter::start(&["--example.series=2", "--example.failing-collector"]);
    let (status, body, _) = curl(&[&exporter.url("/metrics?collect[]=failing")]);
    assert_eq!(status, 200);
    let exposition = kiln_scraper::parse(&body).unwrap();
    assert!(exposition.family("example_series").is_none());
    assert!(
        exposition
            .value(
                "example_scrape_collector_success",
                &[("collector", "failing")]
            )
            .is_some()
    );
    let (status, body, _) = curl(&[&exporter.url("/metrics?exclude[]=failing")]);
    assert_eq!(status, 200);
    assert!(!body.contains("collector=\"failing\""));
    let (status, body, _) = curl(&[&exporter.url("/metrics?collect[]=nope")]);
    assert_eq!(status, 400);
    assert!(body.contains("unknown collector: nope"), "{body}");
    let (status, _, _) = curl(&[
        "-g",
        &exporter.url("/metrics?collect[]=series&exclude[]=failing"),
    ]);
    assert_eq!(status, 400);
}

#[test]
fn landing_health_readiness_and_unknown_paths() {
    let exporter = ExampleExporter::start(&["--example.series=1"]);
    let (status, body, _) = curl(&[&exporter.url("/")]);
    assert_eq!(status, 200);
    assert!(body.contains("<h1>kiln-example-exporter</h1>"), "{body}");
    assert!(body.contains("<a href=\"metrics\">Metrics</a>"), "{body}");
    assert_eq!(curl(&[&exporter.url("/-/healthy")]).0, 200);
    assert_eq!(curl(&[&exporter.url("/-/ready")]).0, 200);
    assert_eq!(curl(&[&exporter.url("/nope")]).0, 404);
    // /-/reload is off unless --web.enable-lifecycle is given.
    assert_eq!(curl(&["-X", "POST", &exporter.url("/-/reload")]).0, 404);
}

#[test]
fn custom_telemetry_path_and_disabled_exporter_metrics() {
    let exporter = ExampleExporter::start(&[
        "--example.series=1",
        "--web.telemetry-path=/m",
        "--web.disable-exporter-metrics",
    ]);
    let (status, body, _) = curl(&[&exporter.url("/m")]);
    assert_eq!(status, 200);
    assert!(body.contains("example_series{series=\"0\"} 0"));
    assert!(!body.contains("process_"), "exporter metrics are off");
    assert!(!body.contains("kiln_build_info"));
    assert_eq!(curl(&[&exporter.url("/metrics")]).0, 404);
}

#[test]
fn version_prints_prometheus_style_text() {
    let (code, stdout, _) = run_to_exit(&["--version"]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("kiln-example-exporter, version 0.1.0 (branch: "),
        "{stdout}"
    );
    assert!(stdout.contains("rust version:"));
}

#[test]
fn help_lists_the_standard_flags() {
    let (code, stdout, _) = run_to_exit(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--web.listen-address",
        "--web.telemetry-path",
        "--web.config.file",
        "--web.max-requests",
        "--web.disable-exporter-metrics",
        "--log.level",
        "--log.format",
        "--check-config",
        "--version",
    ] {
        assert!(stdout.contains(flag), "--help lacks {flag}:\n{stdout}");
    }
}

#[test]
fn a_bad_web_config_exits_64_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yml");
    std::fs::write(&file, "basic_auth_users:\n  alice: notahash\n").unwrap();
    let flag = format!("--web.config.file={}", file.display());
    let (code, _, stderr) = run_to_exit(&[&flag, "--check-config"]);
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:2: basic_auth_users.alice: invalid bcrypt hash",
            file.display()
        )),
        "{stderr}"
    );

    std::fs::write(
        &file,
        "tls_server_config:\n  cert_file: a.crt\n  keyfile: a.key\n",
    )
    .unwrap();
    let (code, _, stderr) = run_to_exit(&[&flag, "--check-config"]);
    assert_eq!(code, 64);
    assert!(
        stderr.contains(&format!("{}:3:", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field `keyfile`"), "{stderr}");

    // The same file refuses a normal start too, before any port is bound.
    let (code, _, _) = run_to_exit(&[&flag, "--web.listen-address=127.0.0.1:0"]);
    assert_eq!(code, 64);

    std::fs::write(
        &file,
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
    )
    .unwrap();
    let (code, _, stderr) = run_to_exit(&[&flag, "--check-config"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn logs_are_logfmt_or_json() {
    let mut exporter = ExampleExporter::start(&["--example.series=1", "--log.format=json"]);
    exporter.signal("TERM");
    let output = std::mem::replace(&mut exporter.child, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    assert!(output.status.success(), "SIGTERM ends the exporter cleanly");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first: serde_json::Value = serde_json::from_str(stderr.lines().next().unwrap()).unwrap();
    assert_eq!(first["level"], "info");
    assert_eq!(first["msg"], "Starting kiln-example-exporter");
    assert!(stderr.contains("\"msg\":\"Listening on\""), "{stderr}");
    assert!(stderr.contains("Received shutdown signal"), "{stderr}");

    let mut exporter = ExampleExporter::start(&["--example.series=1"]);
    exporter.signal("INT");
    let output = std::mem::replace(&mut exporter.child, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().find(|l| l.contains("Listening on")).unwrap();
    assert!(line.starts_with("time="), "{line}");
    assert!(line.contains(" level=info "), "{line}");
    assert!(
        line.contains(" msg=\"Listening on\" address=127.0.0.1:"),
        "{line}"
    );
}

/// Runs the example exporter with its address space limited to `limit_mib`, killed after
/// 10 s; its exit code and standard error.
fn run_bounded(limit_mib: u64, args: &[&str]) -> (i32, String) {
    let exe = env!("CARGO_BIN_EXE_kiln-example-exporter");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {}; exec \"$0\" \"$@\"",
            limit_mib * 1024
        ))
        .arg(exe)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code().unwrap_or(-1), stderr)
}

/// Config flags pointed at a file that never ends (`/dev/zero`) are refused at the size
/// cap, within a 256 MiB address space, instead of being read until memory runs out.
#[test]
fn config_files_are_read_only_up_to_their_cap() {
    let (code, stderr) = run_bounded(256, &["--web.config.file=/dev/zero", "--check-config"]);
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains("/dev/zero: cannot read: the file is larger than the limit of 16 MiB"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yml");
    std::fs::write(
        &file,
        "tls_server_config:\n  cert_file: /dev/zero\n  key_file: /dev/zero\n",
    )
    .unwrap();
    let flag = format!("--web.config.file={}", file.display());
    let (code, stderr) = run_bounded(256, &[&flag, "--check-config"]);
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains(
            "tls_server_config.cert_file: /dev/zero: the file is larger than the limit of 4 MiB"
        ),
        "{stderr}"
    );
}

#[test]
fn check_config_refuses_malformed_listen_addresses() {
    for (address, reason) in [
        (
            "127.0.0.1:99999",
            "the port is not a number from 0 to 65535",
        ),
        ("localhost", "expected host:port or :port"),
        ("::1:9100", "an IPv6 address must be written in brackets"),
        ("[::1:9100", "missing ] after the IPv6 address"),
        ("[nope]:9100", "not an IPv6 address between [ and ]"),
        (
            "exa mple:9100",
            "the host is not an IP address or a host name",
        ),
    ] {
        let flag = format!("--web.listen-address={address}");
        let (code, _, stderr) =
            run_to_exit(&["--web.listen-address=:9100", &flag, "--check-config"]);
        assert_eq!(code, 64, "{address}: {stderr}");
        // The logfmt value escapes the quotes around the address.
        let quoted = format!("{address:?}").replace('"', "\\\"");
        assert!(
            stderr.contains(&format!("invalid listen address {quoted}: {reason}")),
            "{address}: {stderr}"
        );
    }
    for good in [":9100", "127.0.0.1:0", "[::1]:9100", "localhost:9100"] {
        let flag = format!("--web.listen-address={good}");
        let (code, _, stderr) = run_to_exit(&[&flag, "--check-config"]);
        assert_eq!(code, 0, "{good}: {stderr}");
    }
}
