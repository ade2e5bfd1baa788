//! The server against misbehaving clients and live configuration changes, in process so
//! time limits can be shortened.

#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln_registry::{
    CollectError, Collector, Exporter, MetricSet, RunningExporter, ScrapeContext, Timeouts,
    WebFlags, build_info,
};
use kiln_scraper::ScrapeClient;

struct Sleepy(Duration);

impl Collector for Sleepy {
    fn name(&self) -> &str {
        "sleepy"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        std::thread::sleep(self.0);
        out.gauge_value("t_slept", "Slept.", 1.0);
        Ok(())
    }
}

struct Counting(Arc<AtomicUsize>);

impl Collector for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        out.counter_value("t_scrapes_total", "Scrapes.", n as f64);
        Ok(())
    }
}

async fn start(args: &[&str], exporter: impl FnOnce(Exporter) -> Exporter) -> RunningExporter {
    let mut all = vec!["--web.listen-address=127.0.0.1:0"];
    all.extend_from_slice(args);
    let flags = WebFlags::from_args(all).unwrap();
    exporter(
        Exporter::new(build_info!("server-test"), "t", flags).timeouts(Timeouts {
            header_read: Duration::from_millis(300),
            tls_handshake: Duration::from_millis(300),
            request: Duration::from_secs(30),
            write: Duration::from_millis(300),
            shutdown_grace: Duration::from_secs(5),
        }),
    )
    .bind()
    .await
    .unwrap()
}

fn url(running: &RunningExporter, path: &str) -> String {
    format!("http://{}{path}", running.local_addrs()[0])
}

/// Reads until the server closes the connection; returns what it sent and how long it took.
fn read_until_closed(mut stream: TcpStream) -> (String, Duration) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_and_silent_clients_are_disconnected() {
    let running = start(&[], |e| e).await;
    let addr = running.local_addrs()[0];
    let (partial, silent) = tokio::task::spawn_blocking(move || {
        let mut partial = TcpStream::connect(addr).unwrap();
        partial
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let silent = TcpStream::connect(addr).unwrap();
        (read_until_closed(partial), read_until_closed(silent))
    })
    .await
    .unwrap();
    // Closed by the server (not by the 10 s read timeout above).
    assert!(
        partial.1 < Duration::from_secs(5),
        "partial headers held {:?}",
        partial.1
    );
    assert!(
        silent.1 < Duration::from_secs(5),
        "silent client held {:?}",
        silent.1
    );
    assert!(!partial.0.contains("200 OK"));
    // The server still answers everyone else.
    let scrape = ScrapeClient::new()
        .unwrap()
        .scrape(&url(&running, "/metrics"))
        .await;
    assert!(scrape.is_ok());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_beyond_max_requests_get_503() {
    let running = start(&["--web.max-requests=1"], |e| {
        e.collector(Sleepy(Duration::from_millis(1500)))
    })
    .await;
    let client = ScrapeClient::new()
        .unwrap()
        .timeout(Duration::from_secs(10));
    let first = {
        let (client, url) = (client.clone(), url(&running, "/metrics"));
        tokio::spawn(async move { client.scrape(&url).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = client.scrape(&url(&running, "/metrics")).await;
    match second {
        Err(kiln_scraper::ScrapeError::Status { status, body }) => {
            assert_eq!(status, 503);
            assert!(
                body.contains("Limit of concurrent requests reached (1)"),
                "{body}"
            );
        }
        other => panic!("expected 503, got {other:?}"),
    }
    assert!(first.await.unwrap().is_ok(), "the first scrape completes");
    let exposition_text = client.scrape(&url(&running, "/metrics")).await.unwrap();
    let exposition = exposition_text.parse().unwrap();
    assert_eq!(
        exposition.value("promhttp_metric_handler_requests_total", &[("code", "503")]),
        Some(1.0)
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scrape_collects_afresh_and_gzip_only_when_asked() {
    let count = Arc::new(AtomicUsize::new(0));
    let running = start(&[], |e| e.collector(Counting(Arc::clone(&count)))).await;
    let client = ScrapeClient::new().unwrap();
    for expected in 1..=3 {
        let scrape = client.scrape(&url(&running, "/metrics")).await.unwrap();
        assert_eq!(
            scrape.parse().unwrap().value("t_scrapes_total", &[]),
            Some(expected as f64)
        );
    }
    let addr = running.local_addrs()[0];
    let plain = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        read_until_closed(stream).0
    })
    .await
    .unwrap();
    assert!(plain.starts_with("HTTP/1.1 200 OK"));
    assert!(
        !plain.to_ascii_lowercase().contains("content-encoding"),
        "{plain}"
    );
    assert!(plain.contains("t_scrapes_total 4"));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_error_counters_only_where_asked_for() {
    let client = ScrapeClient::new().unwrap();
    let errors = "promhttp_metric_handler_errors_total";
    let plain = start(&[], |e| e).await;
    let scrape = client.scrape(&url(&plain, "/metrics")).await.unwrap();
    assert!(!scrape.body.contains(errors), "{}", scrape.body);
    plain.shutdown().await;

    let node_like = start(&[], Exporter::handler_error_metrics).await;
    let scrape = client.scrape(&url(&node_like, "/metrics")).await.unwrap();
    let exposition = scrape.parse().unwrap();
    for cause in ["encoding", "gathering"] {
        let value = exposition.value(errors, &[("cause", cause)]);
        assert_eq!(value, Some(0.0), "{}", scrape.body);
    }
    node_like.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_config_changes_apply_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yml");
    std::fs::write(&file, "").unwrap();
    let flag = format!("--web.config.file={}", file.display());
    let running = start(&[&flag, "--web.enable-lifecycle"], |e| e).await;
    let client = ScrapeClient::new().unwrap();
    assert!(client.scrape(&url(&running, "/metrics")).await.is_ok());

    // Through /-/reload: basic auth switches on at once.
    let hash = bcrypt::hash("pw", 4).unwrap();
    std::fs::write(&file, format!("basic_auth_users:\n  u: {hash}\n")).unwrap();
    let reload = |running: &RunningExporter| {
        let url = url(running, "/-/reload");
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-u",
                    "u:pw",
                    "-X",
                    "POST",
                    &url,
                ])
                .output()
                .unwrap()
                .stdout
        })
    };
    assert_eq!(reload(&running).await.unwrap(), b"200");
    match client.scrape(&url(&running, "/metrics")).await {
        Err(kiln_scraper::ScrapeError::Status { status: 401, .. }) => {}
        other => panic!("expected 401 after enabling auth, got {other:?}"),
    }

    // A broken file is refused and the old configuration stays.
    std::fs::write(&file, "basic_auth_users: [oops\n").unwrap();
    assert_eq!(reload(&running).await.unwrap(), b"500");
    assert!(running.web_config().auth.is_some());

    // By watching the file: removing auth takes effect within the poll interval.
    std::fs::write(&file, "# open again\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if client.scrape(&url(&running, "/metrics")).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the changed file was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_scrape_in_progress_finish() {
    let running = start(&[], |e| e.collector(Sleepy(Duration::from_millis(800)))).await;
    let client = ScrapeClient::new()
        .unwrap()
        .timeout(Duration::from_secs(10));
    let scrape = {
        let url = url(&running, "/metrics");
        tokio::spawn(async move { client.scrape(&url).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = running.local_addrs()[0];
    running.shutdown().await;
    let scrape = scrape
        .await
        .unwrap()
        .expect("the in-flight scrape is answered");
    assert_eq!(scrape.parse().unwrap().value("t_slept", &[]), Some(1.0));
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}
