//! Shared by the integration tests: the fake NVML library (crates/fake-nvml), a fixture
//! file the tests rewrite while the exporter runs, and `kiln-gpu-exporter` itself on a
//! free loopback port.

#![allow(clippy::unwrap_used)]
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use kiln_test_support::{Process, fake_nvml_library as fake_library, free_port, get};
use serde_json::Value;

pub const EXPORTER: &str = env!("CARGO_BIN_EXE_kiln-gpu-exporter");

/// A copy of the fake library in which `symbols` cannot be found, as in a driver too old
/// to have them. The names are blanked in the dynamic string table (first letter `n` →
/// `x`), so the dynamic linker's lookup misses them.
pub fn library_without(dir: &Path, symbols: &[&str]) -> PathBuf {
    let mut bytes = std::fs::read(fake_library()).unwrap();
    for symbol in symbols {
        let needle: Vec<u8> = [&[0u8][..], symbol.as_bytes(), &[0u8]].concat();
        let mut found = 0;
        let mut at = 0;
        while let Some(offset) = bytes[at..]
            .windows(needle.len())
            .position(|w| w == needle.as_slice())
        {
            let start = at + offset + 1;
            bytes[start] = b'x';
            found += 1;
            at = start;
        }
        assert!(found > 0, "{symbol} is not in the fake library");
    }
    let path = dir.join("libnvidia-ml-old.so.1");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The fleet fixture (an H100, an A100 in MIG mode, a T4), as JSON to adjust.
pub fn fleet() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fleet.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A running exporter on the fake driver, killed (by its PID) when dropped.
#[derive(Debug)]
pub struct Exporter {
    pub process: Process,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Exporter {
    /// Starts the exporter on `fixture` with the fake library and `args`.
    pub fn start(fixture: &Value, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let library = fake_library();
        Self::start_in(dir, fixture, &library, args)
    }

    /// Starts the exporter in `dir` with the library at `library`. A bare file name is
    /// looked up by the dynamic loader, with `dir` on `LD_LIBRARY_PATH`.
    pub fn start_in(
        dir: tempfile::TempDir,
        fixture: &Value,
        library: &Path,
        args: &[&str],
    ) -> Self {
        write_fixture(&dir.path().join("fixture.json"), fixture);
        let port = free_port();
        let mut command = Command::new(EXPORTER);
        if library.parent().is_none_or(|p| p.as_os_str().is_empty()) {
            command.env("LD_LIBRARY_PATH", dir.path());
        }
        command
            .env("FAKE_NVML_FIXTURE", dir.path().join("fixture.json"))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--nvml.library-path={}", library.display()))
            .args(
                (!args.iter().any(|a| a.starts_with("--collect.interval")))
                    .then_some("--collect.interval=100ms"),
            )
            // The host's own kernel log is no business of these tests.
            .args(
                (!args.iter().any(|a| a.starts_with("--collect.xid-kmsg")))
                    .then_some("--no-collect.xid-kmsg"),
            )
            .args(args);
        // Listening is enough: without a driver the exporter serves but is not ready.
        let process = Process::serving(command, port);
        Self { process, port, dir }
    }

    /// Replaces the fixture the running exporter's driver reads.
    pub fn rewrite(&self, fixture: &Value) {
        write_fixture(&self.dir.path().join("fixture.json"), fixture);
    }

    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// One scrape of `/metrics`, checked to be valid exposition text.
    pub fn metrics(&self) -> String {
        let (status, body) = get(self.port, "/metrics").expect("the exporter answers");
        assert_eq!(status, 200, "{body}");
        if let Err(error) = kiln_scraper::parse(&body) {
            panic!("invalid exposition: {error}\n{body}");
        }
        body
    }

    /// Scrapes until `done` holds for the text, or panics after `limit` with the last one.
    pub fn wait_for(&self, limit: Duration, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.metrics();
            if done(&text) {
                return text;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}:\n{text}\nlog:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Writes `fixture` to `path` by rename, so the fake never reads half a file.
pub fn write_fixture(path: &Path, fixture: &Value) {
    let scratch = path.with_extension("tmp");
    std::fs::write(&scratch, serde_json::to_vec_pretty(fixture).unwrap()).unwrap();
    std::fs::rename(&scratch, path).unwrap();
}

/// The value of the sample `series` (`name{a="b",c="d"}`, labels in any order) in `text`.
pub fn value(text: &str, series: &str) -> Option<f64> {
    let wanted = series_key(series);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (series_key(key) == wanted)
                .then(|| value.parse().ok())
                .flatten()
        })
}

/// A series' name and its label pairs, sorted, so that label order does not matter.
fn series_key(series: &str) -> (String, Vec<String>) {
    let (name, labels) = series.split_once('{').unwrap_or((series, ""));
    let labels = labels.strip_suffix('}').unwrap_or(labels);
    let mut pairs = Vec::new();
    let mut rest = labels;
    // Pairs end at a `",` outside an escape; values here never hold one.
    while !rest.is_empty() {
        let end = rest.find("\",").map_or(rest.len(), |at| at + 1);
        pairs.push(rest[..end].to_owned());
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    pairs.sort();
    (name.to_owned(), pairs)
}

/// Whether any sample of `family` mentions `needle` in its labels.
pub fn has(text: &str, family: &str, needle: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with(&format!("{family}{{")) && l.contains(needle))
}

/// The GPU labels of the fleet fixture's GPUs.
pub const H100: &str = r#"gpu="0",uuid="GPU-5d3b1a52-6c2e-4f11-9a0e-0a1b2c3d4e5f""#;
pub const A100: &str = r#"gpu="1",uuid="GPU-0b7e9f0c-3a94-4c6a-8c2f-112233445566""#;
pub const T4: &str = r#"gpu="2",uuid="GPU-77f1c2d3-e4a5-4b6c-9d7e-8f9a0b1c2d3e""#;
