//! A panicking collector is isolated in the real binary: it is reported as failed, timed,
//! and the exporter's other families are still served.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use kiln_test_support::{Process, free_port, get, value};
use support::{EXPORTER, fake_library, fleet, write_fixture};

#[test]
fn a_panicking_collector_is_reported_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("fixture.json");
    write_fixture(&fixture, &fleet());
    let port = free_port();
    let mut command = Command::new(EXPORTER);
    command
        .env("FAKE_NVML_FIXTURE", &fixture)
        .env(kiln_registry::PANIC_COLLECTORS_ENV, "gpu")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--nvml.library-path={}", fake_library().display()))
        .arg("--collect.interval=100ms");
    let exporter = Process::serving(command, port);
    let (status, text) = get(port, "/metrics").unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        value(&text, "gpu_scrape_collector_success{collector=\"gpu\"}"),
        Some(0.0),
        "{text}"
    );
    assert!(
        value(
            &text,
            "gpu_scrape_collector_duration_seconds{collector=\"gpu\"}"
        )
        .is_some()
    );
    assert!(!text.contains("nvidia_gpu_"), "{text}");
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    assert!(exporter.log_text().contains("made to panic"));
}
