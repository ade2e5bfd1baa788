//! Shared by the integration tests: starting `kiln-graphite-exporter` on free loopback
//! ports, sending it Graphite lines over real TCP and UDP sockets, and scraping it.

#![allow(clippy::unwrap_used)]
#![allow(dead_code, unreachable_pub)]

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use kiln_test_support::{Process, free_port};

use kiln_scraper::parse;

/// A running exporter, killed (by its PID) when dropped.
#[derive(Debug)]
pub struct Exporter {
    pub process: Process,
    pub web_port: u16,
    pub graphite_port: u16,
    _dir: tempfile::TempDir,
}

impl Exporter {
    /// Starts the exporter with `args` and waits until it answers.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// [`Exporter::start`] with more environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let web_port = free_port();
        let graphite_port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_kiln-graphite-exporter"));
        command
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .arg(format!(
                "--graphite.listen-address=127.0.0.1:{graphite_port}"
            ))
            .args(args)
            .envs(env.iter().copied());
        let process = Process::start(command, || {
            kiln_test_support::get(web_port, "/-/ready").is_some_and(|(status, _)| status == 200)
        });
        Self {
            process,
            web_port,
            graphite_port,
            _dir: dir,
        }
    }

    /// What the exporter logged so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// Sends `text` over one TCP connection and closes it.
    pub fn send_tcp(&self, text: &[u8]) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.graphite_port)).unwrap();
        stream.write_all(text).unwrap();
    }

    /// Sends one UDP datagram.
    pub fn send_udp(&self, datagram: &[u8]) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .send_to(datagram, ("127.0.0.1", self.graphite_port))
            .unwrap();
    }

    /// `method path`, returning status and body.
    pub fn request(&self, method: &str, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.web_port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
        )
        .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let (head, body) = answer.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_owned()))
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        self.request("GET", path)
    }

    /// A successful scrape's text.
    pub fn scrape(&self) -> String {
        let (status, body) = self.get("/metrics").expect("scrape");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The value of the one series `name{labels}` (labels as written, sorted), if served.
    pub fn value(&self, series: &str) -> Option<f64> {
        value_in(&self.scrape(), series)
    }

    /// Waits until `series` is served with a value, and returns it.
    pub fn wait_for(&self, series: &str) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(value) = self.value(series) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{series} never appeared:\n{}",
                self.scrape()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `series` has exactly `want`.
    pub fn wait_for_value(&self, series: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.value(series);
            if got == Some(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{series} is {got:?}, not {want}:\n{}",
                self.scrape()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The value of `series` in exposition `text`, checking the text parses strictly.
pub fn value_in(text: &str, series: &str) -> Option<f64> {
    let scrape = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    scrape.families.iter().find_map(|family| {
        family.samples.iter().find_map(|sample| {
            let mut key = sample.name.to_owned();
            if !sample.labels.is_empty() {
                let labels: Vec<String> = sample
                    .labels
                    .iter()
                    .map(|l| format!("{}=\"{}\"", l.name, l.value))
                    .collect();
                key = format!("{key}{{{}}}", labels.join(","));
            }
            (key == series).then_some(sample.value)
        })
    })
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A mapping file in a temporary directory.
pub fn mapping_file(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("mapping.yml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}
