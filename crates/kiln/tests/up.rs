//! `kiln up` runs the exporters together, each serving what its own binary serves, skips
//! the ones that cannot run with a reason, and stops cleanly on SIGTERM.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiln_test_support::free_port;
use support::fake_library;

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// The body of `GET path` on a loopback port.
fn get(port: u16, path: &str) -> String {
    kiln_test_support::get(port, path)
        .unwrap_or_else(|| panic!("nothing answers on port {port}"))
        .1
}

#[test]
fn up_serves_every_exporter_it_can_and_stops_on_sigterm() {
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gpu/tests/fixtures/fleet.json");
    let started = Instant::now();
    let mut child = Command::new(KILN)
        .env("FAKE_NVML_FIXTURE", &fixture)
        .args([
            "up",
            &format!("--node.listen-address=127.0.0.1:{}", ports[0]),
            &format!("--gpu.listen-address=127.0.0.1:{}", ports[1]),
            &format!("--nvml.library-path={}", fake_library().display()),
            &format!("--graphite.listen-address=127.0.0.1:{}", ports[2]),
            &format!("--graphite.ingest-address=127.0.0.1:{}", ports[3]),
            &format!("--jmx.listen-address=127.0.0.1:{}", ports[4]),
            &format!("--ping.listen-address=127.0.0.1:{}", ports[5]),
            "--skip=ping",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut status = Vec::new();
    while status.len() < 4 {
        status.push(lines.next().expect("a status line per exporter").unwrap());
    }
    let to_first_line = started.elapsed();
    assert_eq!(
        status[0],
        format!("node      serving http://127.0.0.1:{}/metrics", ports[0])
    );
    assert_eq!(
        status[1],
        format!("gpu       serving http://127.0.0.1:{}/metrics", ports[1])
    );
    assert_eq!(
        status[2],
        format!("graphite  serving http://127.0.0.1:{}/metrics", ports[2])
    );
    assert_eq!(
        status[3],
        "jmx       skipped: no --jmx.config-file names JVMs to read"
    );
    assert!(to_first_line < Duration::from_secs(10), "{to_first_line:?}");

    // Each serves what its own exporter does.
    assert!(get(ports[0], "/metrics").contains("\nnode_load1 "));
    let gpu = get(ports[1], "/metrics");
    assert!(
        gpu.contains("nvidia_gpu_temperature_celsius{gpu=\"0\""),
        "{gpu}"
    );
    assert!(
        gpu.contains("kiln_build_info{exporter=\"kiln-gpu-exporter\""),
        "{gpu}"
    );
    let mut graphite = TcpStream::connect(("127.0.0.1", ports[3])).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    graphite
        .write_all(format!("kiln.up.test 42 {now}\n").as_bytes())
        .unwrap();
    drop(graphite);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !get(ports[2], "/metrics").contains("kiln_up_test 42") {
        assert!(Instant::now() < deadline, "the Graphite line never showed");
        std::thread::sleep(Duration::from_millis(50));
    }

    // SIGTERM, by PID, to the process this test started.
    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "kiln up did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
}

#[test]
fn up_without_anything_to_run_says_so() {
    let output = Command::new(KILN)
        .args(["up", "--only=jmx"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        text,
        "jmx       skipped: no --jmx.config-file names JVMs to read\nnothing to run\n"
    );
}
