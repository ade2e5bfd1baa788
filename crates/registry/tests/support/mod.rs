//! Shared by the integration tests: starting the example exporter binary, certificates,
//! and small HTTP helpers over real sockets.

#![allow(clippy::unwrap_used)]
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use kiln_test_support::free_port;

/// A running `kiln-example-exporter`, killed (by its PID) when dropped.
#[derive(Debug)]
pub struct ExampleExporter {
    pub child: Child,
    pub port: u16,
}

impl ExampleExporter {
    /// Starts the binary on a free loopback port with `args` and waits until it answers.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_scheme(args, "http")
    }

    pub fn start_with_scheme(args: &[&str], scheme: &str) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_kiln-example-exporter"))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kiln-example-exporter");
        let exporter = Self { child, port };
        exporter.wait_until_listening(scheme);
        exporter
    }

    /// Waits until the exporter answers (over plain HTTP, `/-/healthy`), by which time its
    /// signal handlers are installed too; for HTTPS, until the port accepts.
    fn wait_until_listening(&self, scheme: &str) {
        use std::io::{Read as _, Write as _};
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                if scheme != "http" {
                    return;
                }
                let mut answer = String::new();
                let asked = stream
                    .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                if asked.is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.1 200")
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "kiln-example-exporter did not start listening on {}",
            self.port
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends a signal to the exporter's process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }
}

impl Drop for ExampleExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the example binary to completion and returns (exit code, stdout, stderr).
pub fn run_to_exit(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln-example-exporter"))
        .args(args)
        .output()
        .expect("run kiln-example-exporter");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs curl; returns (HTTP status or 0 when the request failed, body, curl's exit code).
pub fn curl(args: &[&str]) -> (u16, String, i32) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is needed (scripts/test installs it)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        body.to_owned(),
        output.status.code().unwrap_or(-1),
    )
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files.
#[derive(Debug)]
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn generate() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kiln test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let issue = |names: Vec<String>, stem: &str| {
            let key = KeyPair::generate().unwrap();
            let params = CertificateParams::new(names).unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            std::fs::write(dir.path().join(format!("{stem}.crt")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{stem}.key")), key.serialize_pem()).unwrap();
        };
        std::fs::write(dir.path().join("ca.crt"), ca_cert.pem()).unwrap();
        issue(vec!["localhost".into(), "127.0.0.1".into()], "server");
        issue(vec!["scraper.example".into()], "client");
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a web config file next to the certificates and returns its path.
    pub fn web_config(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}
