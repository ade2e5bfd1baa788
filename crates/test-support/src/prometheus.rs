//! A real Prometheus server for a test: started on a free port with the test's configuration
//! and its own data directory, queried over its HTTP API, killed (by its PID) when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::{free_port, get};

/// How long a query waits for its series to appear (a few scrape intervals).
const QUERY_WAIT: Duration = Duration::from_secs(60);

/// A running Prometheus.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with the configuration `config` (YAML). Rule files and other paths
    /// in it are used as they are.
    pub fn start(config: &str) -> Self {
        Self::start_with_flags(config, &[])
    }

    /// As [`Prometheus::start`], with further command-line flags
    /// (`--query.max-samples=1`, `--web.config.file=…`).
    pub fn start_with_flags(config: &str, flags: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).expect("write prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("a log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus runs (scripts/test installs Debian's prometheus)");
        Self { child, port, dir }
    }

    /// Starts Prometheus scraping `targets` (`host:port`) as job `job` every second, with
    /// its default scrape protocols (OpenMetrics first), evaluating `rule_files`.
    pub fn scraping(job: &str, targets: &[String], rule_files: &[&Path]) -> Self {
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let rules: String = rule_files
            .iter()
            .map(|file| format!("  - {}\n", file.display()))
            .collect();
        Self::start(&format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{rules}\
             scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ))
    }

    /// The port its HTTP API listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What it has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The `data.result` of an instant query once it is not empty, waiting up to a minute.
    pub fn query_result(&self, expr: &str) -> serde_json::Value {
        let path = format!("/api/v1/query?query={}", encode(expr));
        let deadline = Instant::now() + QUERY_WAIT;
        loop {
            let body = get(self.port, &path)
                .map(|(_, body)| body)
                .unwrap_or_default();
            let answer: serde_json::Value =
                serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
            let result = &answer["data"]["result"];
            if result.as_array().is_some_and(|r| !r.is_empty()) {
                return result.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no answer to {expr}: {body}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The value of an instant query that selects one series, waiting up to a minute.
    pub fn query(&self, expr: &str) -> Option<f64> {
        let result = self.query_result(expr);
        result[0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query for a URL.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
