//! Memory of `/probe` for large answers: reading an answer, and one whose every value is a
//! sample, peak within twice its size and 32 MiB, the memory is given back afterwards, and
//! probes past the memory budget are answered 503 at once and counted while `/metrics` keeps
//! answering.
//!
//! Peaks are read from the exporter's `VmHWM` (reset before each phase through
//! `/proc/PID/clear_refs`), so these tests run on Linux only.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln_test_support::value;
use support::Exporter;

const MIB: usize = 1 << 20;

/// A Hadoop `/jmx` answer of at least `bytes`: NameNode-like beans, each under a name of
/// its own, with numbers, strings, a boolean and a composite.
fn big_answer(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 4096);
    out.push_str("{\n  \"beans\" : [ ");
    let mut i = 0u64;
    while out.len() < bytes {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!(
            "{{\n    \"name\" : \"Hadoop:service=NameNode,name=Volume{i}\",\n    \"modelerType\" : \"FSVolume{i}\",\n    \"tag.Context\" : \"dfs\",\n    \"tag.Hostname\" : \"dn{}.example.org\",\n    \"BlocksTotal\" : {},\n    \"CapacityUsed\" : {},\n    \"PercentUsed\" : {}.25,\n    \"Healthy\" : true,\n    \"Usage\" : {{ \"committed\" : {}, \"init\" : 0, \"max\" : {}, \"used\" : {} }}\n  }}",
            i % 500,
            i * 7,
            i * 4096,
            i % 100,
            i * 11,
            i * 13,
            i * 17
        ));
        i += 1;
    }
    out.push_str(" ]\n}\n");
    out
}

/// A loopback JVM stand-in that answers every request with `body`, one connection per
/// thread, in pieces of `piece` bytes `pause` apart; `sent` counts body bytes written.
struct SlowServer {
    port: u16,
    sent: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl SlowServer {
    fn start(body: String, piece: usize, pause: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let body = Arc::new(body);
        let sent = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopping) = (Arc::clone(&sent), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (body, counter) = (Arc::clone(&body), Arc::clone(&counter));
                std::thread::spawn(move || {
                    stream.set_nonblocking(false).unwrap();
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    if stream.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    for chunk in body.as_bytes().chunks(piece) {
                        if stream.write_all(chunk).is_err() {
                            return;
                        }
                        counter.fetch_add(chunk.len(), Ordering::Relaxed);
                        std::thread::sleep(pause);
                    }
                });
            }
        });
        Self { port, sent, stop }
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for SlowServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A line of `/proc/PID/status`, in bytes.
fn status_bytes(pid: u32, key: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Resets the peak (`VmHWM`) to the resident size now.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

/// A module that reads one bean of the big answer: what is measured is reading the answer,
/// not the samples of its other beans.
const ONE_BEAN: &str =
    "modules:\n  hadoop:\n    bridge: hadoop\n    timeout: 300s\n    rules_file: rules.yml\n";
const ONE_BEAN_RULES: &str =
    "includeObjectNames: [\"Hadoop:service=NameNode,name=Volume7\"]\nrules:\n  - pattern: \".*\"\n";

/// The exporter's resident bytes at rest, its peak while probing `server` (module
/// `hadoop`), and the probe's answer. One small probe comes first, so what the first probe
/// sets up for good is in the figure at rest.
fn peak_of_probe(exporter: &Exporter, server: &SlowServer) -> (usize, usize, String) {
    let pid = exporter.process.pid();
    let small = support::StaticServer::start(Some(big_answer(64 << 10)));
    exporter.probe(&small.target(), "hadoop");
    let idle = status_bytes(pid, "VmRSS:");
    reset_peak(pid);
    let text = exporter.probe(&server.target(), "hadoop");
    (idle, status_bytes(pid, "VmHWM:"), text)
}

#[test]
fn a_large_answer_peaks_within_twice_its_size_and_is_given_back() {
    let size = 32 * MIB;
    let server = SlowServer::start(big_answer(size), MIB, Duration::ZERO);
    let exporter = Exporter::start(ONE_BEAN, &[("rules.yml", ONE_BEAN_RULES)]);
    let pid = exporter.process.pid();
    let (idle, peak, text) = peak_of_probe(&exporter, &server);
    eprintln!(
        "idle {} MiB, peak {} MiB for a {} MiB answer",
        idle / MIB,
        peak / MIB,
        size / MIB
    );
    assert_eq!(
        value(&text, r#"Hadoop_NameNode_BlocksTotal{name="Volume7"}"#),
        Some(49.0),
        "{text}"
    );
    assert!(
        peak <= 2 * size + 32 * MIB,
        "peak RSS {} MiB for a {} MiB answer (idle {} MiB)",
        peak / MIB,
        size / MIB,
        idle / MIB
    );

    // Given back: resident memory returns near idle.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = status_bytes(pid, "VmRSS:");
        if now <= idle + 32 * MIB {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RSS {} MiB a minute after the probe, idle {} MiB",
            now / MIB,
            idle / MIB
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An answer whose every value is a sample (its exposition is larger than the answer) also
/// peaks within twice its size and 32 MiB: the samples are kept compact while the answer is
/// held, and the families are written a few thousand samples at a time as the samples are
/// let go. The first probe of a target remembers no rule results, so the cache adds nothing.
#[test]
fn an_answer_whose_every_value_is_a_sample_peaks_within_twice_its_size() {
    let size = 16 * MIB;
    let server = SlowServer::start(big_answer(size), MIB, Duration::ZERO);
    // The default rules: every number and boolean of every bean is a sample.
    let exporter = Exporter::start(
        "modules:\n  hadoop:\n    bridge: hadoop\n    timeout: 300s\n",
        &[],
    );
    let (idle, peak, text) = peak_of_probe(&exporter, &server);
    let samples = text.lines().filter(|l| !l.starts_with('#')).count();
    eprintln!(
        "idle {} MiB, peak {} MiB for a {} MiB answer, {samples} samples",
        idle / MIB,
        peak / MIB,
        size / MIB
    );
    assert_eq!(
        value(&text, r#"Hadoop_NameNode_Usage_used{name="Volume7"}"#),
        Some(119.0),
        "{text}"
    );
    // Eight samples per bean of about 400 bytes.
    assert!(samples > size / 60, "{samples} samples");
    assert!(
        peak <= 2 * size + 32 * MIB,
        "peak RSS {} MiB for a {} MiB answer of {samples} samples (idle {} MiB)",
        peak / MIB,
        size / MIB,
        idle / MIB
    );
}

#[test]
fn probes_past_the_memory_budget_are_refused_at_once_and_counted() {
    // 24 MiB arriving over about three seconds: each probe reserves twice that as it comes,
    // so a second one does not fit in 64 MiB beside the first.
    let size = 24 * MIB;
    let slow = SlowServer::start(big_answer(size), MIB / 4, Duration::from_millis(30));
    let fast = SlowServer::start(big_answer(size), MIB, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jmx.yml"), ONE_BEAN).unwrap();
    std::fs::write(dir.path().join("rules.yml"), ONE_BEAN_RULES).unwrap();
    let args = [
        format!("--config.file={}", dir.path().join("jmx.yml").display()),
        "--probe.memory-limit-mib=64".to_owned(),
    ];
    let exporter = Arc::new(Exporter::start_with(dir, &args));

    let first = {
        let (exporter, target) = (Arc::clone(&exporter), slow.target());
        std::thread::spawn(move || exporter.probe_answer(&target, "hadoop"))
    };
    while slow.sent.load(Ordering::Relaxed) < size / 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Half of the first answer is reserved (twice 12 MiB): the second probe's body, sent at
    // once, goes past 64 MiB part way and is refused then, long before the first finishes.
    let (status, body) = exporter.probe_answer(&fast.target(), "hadoop");
    assert_eq!(status, 503, "{body}");
    assert!(
        !first.is_finished(),
        "the refusal waited for the first probe"
    );
    let metrics = exporter.metrics();
    assert_eq!(
        value(
            &metrics,
            r#"jmx_probe_errors_total{module="hadoop",reason="over_budget"}"#
        ),
        Some(1.0),
        "{metrics}"
    );

    let (status, body) = first.join().unwrap();
    assert_eq!(status, 200, "{body}");
    // With the first done, the budget is whole again.
    let text = exporter.probe(&fast.target(), "hadoop");
    assert_eq!(value(&text, "jmx_scrape_error"), Some(0.0), "{text}");
}
