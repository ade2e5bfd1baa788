//! The `yarn` collector against a loopback ResourceManager serving recorded REST answers:
//! Hadoop's documented examples, a GPU cluster, and a ResourceManager that is down, hangs,
//! answers malformed JSON or too much. The scrape always answers in time and counts what
//! went wrong.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_test_support::value;
use support::{Exporter, check_config, fixture, free_port, http};

/// What the fake ResourceManager does with a request.
#[derive(Debug, Clone)]
enum Mode {
    /// Answers each REST path with a body.
    Answer(HashMap<&'static str, String>),
    /// Accepts and never answers.
    Hang,
}

/// A loopback ResourceManager web server whose behaviour the test switches.
struct ResourceManager {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl ResourceManager {
    fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(mode));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (serving, seen) = (Arc::clone(&mode), Arc::clone(&requests));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mode = serving.lock().unwrap().clone();
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || answer(stream, &mode, &seen));
            }
        });
        Self {
            port,
            mode,
            requests,
        }
    }

    fn recorded(apps: &str, metrics: &str) -> Self {
        Self::start(recorded(apps, metrics))
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn recorded(apps: &str, metrics: &str) -> Mode {
    let read = |name: &str| std::fs::read_to_string(fixture(&format!("yarn/{name}"))).unwrap();
    Mode::Answer(HashMap::from([
        ("/ws/v1/cluster/apps", read(apps)),
        ("/ws/v1/cluster/metrics", read(metrics)),
    ]))
}

fn answer(mut stream: TcpStream, mode: &Mode, seen: &Mutex<Vec<String>>) {
    let mut request = [0u8; 4096];
    let n = stream.read(&mut request).unwrap_or(0);
    let head = String::from_utf8_lossy(&request[..n]);
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    seen.lock().unwrap().push(target.clone());
    match mode {
        Mode::Hang => std::thread::sleep(Duration::from_secs(30)),
        Mode::Answer(bodies) => {
            let path = target.split('?').next().unwrap_or_default();
            let (status, body) = match bodies.get(path) {
                Some(body) => ("200 OK", body.as_str()),
                None => ("404 Not Found", "{}"),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    }
}

fn start_with_flags(args: &[String]) -> Exporter {
    Exporter::start_with(tempfile::tempdir().unwrap(), args)
}

/// `/metrics`, timed.
fn scrape(exporter: &Exporter) -> (String, Duration) {
    let started = Instant::now();
    let text = exporter.metrics();
    if let Err(error) = kiln_scraper::parse(&text) {
        panic!("invalid exposition: {error}\n{text}");
    }
    (text, started.elapsed())
}

#[test]
fn hadoops_documented_answers() {
    let rm = ResourceManager::recorded(
        "rm-apps-hadoop-docs.json",
        "rm-cluster-metrics-hadoop-docs.json",
    );
    let exporter = start_with_flags(&[format!("--yarn.resourcemanager-url={}", rm.url())]);
    let (text, _) = scrape(&exporter);
    assert_eq!(value(&text, "yarn_resourcemanager_up"), Some(1.0), "{text}");
    assert_eq!(
        value(&text, r#"jmx_scrape_collector_success{collector="yarn"}"#),
        Some(1.0),
        "{text}"
    );
    for (state, vcores, mb) in [
        ("total", 8.0, 17408.0),
        ("allocated", 1.0, 0.0),
        ("available", 7.0, 17408.0),
        ("reserved", 0.0, 0.0),
    ] {
        assert_eq!(
            value(&text, &format!(r#"yarn_cluster_vcores{{state="{state}"}}"#)),
            Some(vcores),
            "{text}"
        );
        assert_eq!(
            value(
                &text,
                &format!(r#"yarn_cluster_memory_bytes{{state="{state}"}}"#)
            ),
            Some(mb * 1_048_576.0),
            "{text}"
        );
    }
    assert_eq!(
        value(&text, r#"yarn_cluster_nodes{state="active"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"yarn_cluster_nodes{state="decommissioning"}"#),
        Some(0.0)
    );
    assert_eq!(
        value(&text, r#"yarn_cluster_applications{state="running"}"#),
        Some(0.0)
    );
    assert!(
        !text.contains("yarn_cluster_gpus"),
        "no GPUs in Hadoop's example: {text}"
    );
    assert_eq!(
        value(
            &text,
            r#"yarn_application_info{application_type="MAPREDUCE",name="word count",queue="default",user="user2",yarn_application="application_1476912658570_0002"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"yarn_application_allocated_vcores{yarn_application="application_1476912658570_0001"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            r#"yarn_application_start_time_seconds{yarn_application="application_1476912658570_0001"}"#
        ),
        Some(1_476_913_464.75)
    );
    assert!(!text.contains("yarn_application_allocated_gpus"), "{text}");
    assert_eq!(value(&text, "yarn_applications_left_out"), Some(0.0));
    // The RM is asked for running applications only, and no more than are kept.
    let requests = rm.requests.lock().unwrap().clone();
    assert!(
        requests.contains(&"/ws/v1/cluster/apps?states=RUNNING&limit=1000".to_owned()),
        "{requests:?}"
    );
    assert!(
        requests.contains(&"/ws/v1/cluster/metrics".to_owned()),
        "{requests:?}"
    );
}

#[test]
fn gpus_per_application_and_cluster_from_a_yarn_section() {
    let rm = ResourceManager::recorded("rm-apps-running-gpu.json", "rm-cluster-metrics-gpu.json");
    let exporter = Exporter::start(
        &format!(
            "yarn:\n  resourcemanager_url: {}\n  timeout: 2s\n",
            rm.url()
        ),
        &[],
    );
    let (text, _) = scrape(&exporter);
    let app = |name: &str, id: &str| value(&text, &format!(r#"{name}{{yarn_application="{id}"}}"#));
    let (spark, mapreduce) = (
        "application_1700000000000_0042",
        "application_1700000000000_0043",
    );
    assert_eq!(
        value(
            &text,
            r#"yarn_application_info{application_type="SPARK",name="nightly-features",queue="default",user="analyst",yarn_application="application_1700000000000_0042"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        app("yarn_application_allocated_gpus", spark),
        Some(1.0),
        "{text}"
    );
    assert_eq!(app("yarn_application_allocated_gpus", mapreduce), Some(0.0));
    assert_eq!(app("yarn_application_allocated_vcores", spark), Some(5.0));
    assert_eq!(
        app("yarn_application_allocated_memory_bytes", spark),
        Some(11264.0 * 1_048_576.0)
    );
    assert_eq!(
        app("yarn_application_running_containers", mapreduce),
        Some(2.0)
    );
    for (state, gpus) in [
        ("total", 4.0),
        ("allocated", 1.0),
        ("available", 3.0),
        ("reserved", 0.0),
    ] {
        assert_eq!(
            value(&text, &format!(r#"yarn_cluster_gpus{{state="{state}"}}"#)),
            Some(gpus),
            "{text}"
        );
    }
    assert_eq!(
        value(&text, r#"yarn_cluster_containers{state="pending"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"yarn_cluster_nodes{state="shutdown"}"#),
        Some(1.0)
    );
    // The /probe side is untouched: a yarn-only file has no modules.
    assert_eq!(exporter.probe_answer("127.0.0.1:1", "hadoop").0, 400);
}

#[test]
fn at_most_max_applications_are_served_and_the_rest_counted() {
    let rm = ResourceManager::recorded("rm-apps-running-gpu.json", "rm-cluster-metrics-gpu.json");
    let exporter = start_with_flags(&[
        format!("--yarn.resourcemanager-url={}", rm.url()),
        "--yarn.max-applications=1".into(),
    ]);
    let (text, _) = scrape(&exporter);
    assert_eq!(text.matches("yarn_application_info{").count(), 1, "{text}");
    assert_eq!(
        value(&text, "yarn_applications_left_out"),
        Some(1.0),
        "{text}"
    );
    assert!(
        rm.requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.ends_with("limit=1"))
    );
}

#[test]
fn a_resourcemanager_that_is_down_is_counted_and_the_scrape_answers() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let exporter = start_with_flags(&[format!("--yarn.resourcemanager-url={closed}")]);
    let (text, took) = scrape(&exporter);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(value(&text, "yarn_resourcemanager_up"), Some(0.0), "{text}");
    assert_eq!(
        value(
            &text,
            r#"yarn_resourcemanager_failures_total{reason="connect"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"yarn_resourcemanager_failures_total{reason="timeout"}"#
        ),
        Some(0.0)
    );
    assert!(!text.contains("yarn_application_info"), "{text}");
    // The collector itself did its job: it reported the ResourceManager down.
    assert_eq!(
        value(&text, r#"jmx_scrape_collector_success{collector="yarn"}"#),
        Some(1.0)
    );
    let (text, _) = scrape(&exporter);
    assert_eq!(
        value(
            &text,
            r#"yarn_resourcemanager_failures_total{reason="connect"}"#
        ),
        Some(2.0),
        "{text}"
    );
}

#[test]
fn a_slow_resourcemanager_costs_the_timeout_and_the_last_read_is_served() {
    let rm = ResourceManager::recorded("rm-apps-running-gpu.json", "rm-cluster-metrics-gpu.json");
    let exporter = start_with_flags(&[
        format!("--yarn.resourcemanager-url={}", rm.url()),
        "--yarn.timeout=1s".into(),
    ]);
    let (text, _) = scrape(&exporter);
    assert_eq!(value(&text, "yarn_resourcemanager_up"), Some(1.0), "{text}");
    let read_at = value(&text, "yarn_resourcemanager_last_success_timestamp_seconds").unwrap();

    rm.set(Mode::Hang);
    let (text, took) = scrape(&exporter);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(value(&text, "yarn_resourcemanager_up"), Some(0.0), "{text}");
    assert_eq!(
        value(
            &text,
            r#"yarn_resourcemanager_failures_total{reason="timeout"}"#
        ),
        Some(1.0),
        "{text}"
    );
    // Within keep_last the last good figures stay, stamped with when they were read.
    assert_eq!(
        value(
            &text,
            r#"yarn_application_allocated_gpus{yarn_application="application_1700000000000_0042"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "yarn_resourcemanager_last_success_timestamp_seconds"),
        Some(read_at)
    );

    // A scrape timeout shorter than the RM timeout wins.
    let started = Instant::now();
    let (status, body) = http(
        exporter.port,
        "GET",
        "/metrics",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "0.5")],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    rm.set(recorded(
        "rm-apps-running-gpu.json",
        "rm-cluster-metrics-gpu.json",
    ));
    let (text, _) = scrape(&exporter);
    assert_eq!(value(&text, "yarn_resourcemanager_up"), Some(1.0), "{text}");
}

#[test]
fn malformed_and_oversized_answers_are_counted() {
    let rm = ResourceManager::start(Mode::Answer(HashMap::from([
        (
            "/ws/v1/cluster/apps",
            r#"{"apps": {"app": [{"id": "application_1_0001", "#.to_owned(),
        ),
        ("/ws/v1/cluster/metrics", "{}".to_owned()),
    ])));
    let exporter = start_with_flags(&[format!("--yarn.resourcemanager-url={}", rm.url())]);
    let (text, _) = scrape(&exporter);
    assert_eq!(value(&text, "yarn_resourcemanager_up"), Some(0.0), "{text}");
    assert_eq!(
        value(
            &text,
            r#"yarn_resourcemanager_failures_total{reason="invalid_answer"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        exporter.log_text().contains("/ws/v1/cluster/apps"),
        "{}",
        exporter.log_text()
    );

    // Valid applications but a metrics answer without clusterMetrics.
    rm.set(Mode::Answer(HashMap::from([
        ("/ws/v1/cluster/apps", r#"{"apps": null}"#.to_owned()),
        (
            "/ws/v1/cluster/metrics",
            r#"{"clusterMetrics": null}"#.to_owned(),
        ),
    ])));
    let (text, _) = scrape(&exporter);
    assert_eq!(
        value(
            &text,
            r#"yarn_resourcemanager_failures_total{reason="invalid_answer"}"#
        ),
        Some(2.0),
        "{text}"
    );

    // An RM with nothing running answers {"apps": null}.
    rm.set(Mode::Answer(HashMap::from([
        ("/ws/v1/cluster/apps", r#"{"apps": null}"#.to_owned()),
        (
            "/ws/v1/cluster/metrics",
            std::fs::read_to_string(fixture("yarn/rm-cluster-metrics-hadoop-docs.json")).unwrap(),
        ),
    ])));
    let (text, _) = scrape(&exporter);
    assert_eq!(value(&text, "yarn_resourcemanager_up"), Some(1.0), "{text}");
    assert!(!text.contains("yarn_application_info{"), "{text}");

    let small = Exporter::start(
        &format!(
            "yarn:\n  resourcemanager_url: {}\n  max_response_bytes: 1024\n",
            rm.url()
        ),
        &[],
    );
    rm.set(recorded(
        "rm-apps-running-gpu.json",
        "rm-cluster-metrics-gpu.json",
    ));
    let (text, _) = scrape(&small);
    assert_eq!(
        value(
            &text,
            r#"yarn_resourcemanager_failures_total{reason="too_large"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn bad_yarn_configuration_is_refused_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jmx.yml");
    std::fs::write(
        &file,
        "modules:\n  hadoop:\n    bridge: hadoop\nyarn:\n  resourcemanager_url: localhost:8088\n",
    )
    .unwrap();
    let (code, stderr) = check_config(&file);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("jmx.yml:5: yarn.resourcemanager_url"),
        "{stderr}"
    );

    std::fs::write(
        &file,
        "yarn:\n  resourcemanager_url: http://localhost:8088\n  max_applications: -1\n",
    )
    .unwrap();
    let (code, stderr) = check_config(&file);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("jmx.yml:3"), "{stderr}");

    let output = std::process::Command::new(support::EXPORTER)
        .args(["--yarn.resourcemanager-url=ftp://rm:8088", "--check-config"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--yarn.resourcemanager-url"), "{stderr}");

    std::fs::write(
        &file,
        "yarn:\n  resourcemanager_url: http://localhost:8088\n",
    )
    .unwrap();
    let (code, stderr) = check_config(&file);
    assert_eq!(code, Some(0), "{stderr}");
}
