//! `kiln scrape` and `kiln check` against Debian's node_exporter on loopback and against
//! a real capture, with `promtool check metrics` as the reference for the lint.

#![allow(clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

fn capture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/node_exporter_1.5.0_metrics.txt")
}

/// Debian's node_exporter on a free loopback port, killed (by its PID) when dropped.
struct NodeExporter(Child, u16);

impl NodeExporter {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args([
                "--collector.disable-defaults",
                "--collector.meminfo",
                "--collector.netstat",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter runs (scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "node_exporter did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self(child, port)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.1)
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `promtool check metrics` findings as `metric message` lines, sorted.
fn promtool_findings(text: &[u8]) -> Vec<String> {
    use std::io::Write as _;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    promtool.stdin.take().unwrap().write_all(text).unwrap();
    let output = promtool.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines: Vec<String> = all
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// `kiln check` findings in promtool's shape (without origin and line), sorted, and its
/// exit code.
fn kiln_findings(location: &str) -> (Vec<String>, Option<i32>) {
    let output = Command::new(KILN)
        .args(["check", location])
        .output()
        .unwrap();
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            let rest = l.split_once(": line ").unwrap().1;
            let rest = rest.split_once(": ").unwrap().1;
            rest.replacen(": ", " ", 1)
        })
        .collect();
    lines.sort();
    (lines, output.status.code())
}

#[test]
fn check_finds_what_promtool_finds_in_a_real_node_exporter_capture() {
    let path = capture();
    let (ours, code) = kiln_findings(path.to_str().unwrap());
    let theirs = promtool_findings(&std::fs::read(&path).unwrap());
    assert!(!theirs.is_empty());
    assert_eq!(ours, theirs);
    assert_eq!(code, Some(3), "lint problems exit 3, as promtool's do");
}

#[test]
fn check_over_http_names_lines_and_agrees_with_promtool() {
    let exporter = NodeExporter::start();
    let output = Command::new(KILN)
        .args(["check", &exporter.url()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.lines().any(|l| l.contains(": line ")
            && l.contains(
                "node_memory_MemTotal_bytes: metric names should be written in 'snake_case'"
            )),
        "{report}"
    );
    let (ours, _) = kiln_findings(&exporter.url());
    let body = Command::new("curl")
        .args(["-s", &exporter.url()])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(ours, promtool_findings(&body));
}

#[test]
fn scrape_prints_prom2json_json_from_a_live_exporter() {
    let exporter = NodeExporter::start();
    let output = Command::new(KILN)
        .args(["scrape", "--json", &exporter.url()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let families: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let families = families.as_array().unwrap();
    let total = families
        .iter()
        .find(|f| f["name"] == "node_memory_MemTotal_bytes")
        .unwrap();
    assert_eq!(total["type"], "GAUGE");
    let bytes: f64 = total["metrics"][0]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes > 1e8, "{total}");
    let histogram = families
        .iter()
        .find(|f| f["type"] == "SUMMARY" || f["type"] == "HISTOGRAM")
        .unwrap();
    assert!(histogram["metrics"][0]["count"].is_string(), "{histogram}");
}

#[test]
fn scrape_prints_families_readably_and_says_why_it_cannot() {
    let output = Command::new(KILN)
        .args(["scrape", capture().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("node_load1 (gauge)  1m load average.\n  "),
        "{text}"
    );
    let output = Command::new(KILN)
        .args(["scrape", "http://127.0.0.1:1/metrics", "--timeout=2s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("kiln: cannot scrape http://127.0.0.1:1/metrics"),
        "{stderr}"
    );
}
