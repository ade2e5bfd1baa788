//! Shared by the integration tests: a real JVM serving Jolokia and Hadoop's `/jmx`
//! (tests/java/KilnTestJvm.java), `kiln-jmx-exporter` on a free loopback port, and small
//! HTTP servers for recorded answers and for targets that never answer.

#![allow(clippy::unwrap_used)]
#![allow(dead_code, unreachable_pub)]

pub mod render;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use kiln_test_support::{Process, free_port, get};

pub const EXPORTER: &str = env!("CARGO_BIN_EXE_kiln-jmx-exporter");

/// The Java source of the test JVM.
fn java_source() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/java/KilnTestJvm.java")
}

/// The jars the test JVM needs: Debian's Jolokia core and json-simple, and PySpark's Hadoop
/// client (which carries `JMXJsonServlet` and metrics2).
pub fn classpath() -> String {
    let output = Command::new("python3")
        .args([
            "-c",
            "import os, pyspark; print(os.path.dirname(pyspark.__file__))",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "PySpark is not installed (scripts/test installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pyspark = String::from_utf8(output.stdout).unwrap();
    let jars = Path::new(pyspark.trim()).join("jars");
    for jar in [
        "/usr/share/java/jolokia-core.jar",
        "/usr/share/java/json-simple.jar",
    ] {
        assert!(
            Path::new(jar).exists(),
            "{jar} is missing: apt-get install libjolokia-core-java libjson-simple-java"
        );
    }
    format!(
        "/usr/share/java/jolokia-core.jar:/usr/share/java/json-simple.jar:{}/*",
        jars.display()
    )
}

/// Compiles the test JVM once per source version into the target directory; concurrent
/// test processes each compile into their own directory and the first rename wins.
fn compiled(classpath: &str) -> PathBuf {
    let source = std::fs::read(java_source()).unwrap();
    let stamp = source.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let classes = root.join(format!("kiln-test-jvm-{stamp:016x}"));
    if classes.join("KilnTestJvm.class").exists() {
        return classes;
    }
    let scratch = tempfile::tempdir_in(&root).unwrap();
    let status = Command::new("javac")
        .arg("-nowarn")
        .arg("-d")
        .arg(scratch.path())
        .arg("-cp")
        .arg(classpath)
        .arg(java_source())
        .status()
        .expect("javac runs (a JDK is needed; scripts/test installs one)");
    assert!(status.success(), "javac failed");
    let _ = std::fs::rename(scratch.keep(), &classes);
    assert!(classes.join("KilnTestJvm.class").exists());
    classes
}

/// A running test JVM. It exits when its standard input closes (on drop, or if the test
/// process dies); drop also kills it by PID.
#[derive(Debug)]
pub struct TestJvm {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
}

impl TestJvm {
    pub fn start() -> Self {
        let classpath = classpath();
        let classes = compiled(&classpath);
        let mut child = Command::new("java")
            .arg("-Xmx256m")
            .arg("-XX:+UseSerialGC")
            .arg("-cp")
            .arg(format!("{classpath}:{}", classes.display()))
            .arg("KilnTestJvm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("java runs");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("the test JVM exited before listening")
                .unwrap();
            if let Some(port) = line.strip_prefix("listening ") {
                break port.trim().parse().unwrap();
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            _stdin: stdin,
            port,
        }
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A GET straight to the JVM.
    pub fn get(&self, path: &str) -> String {
        http(self.port, "GET", path, &[]).unwrap().1
    }
}

impl Drop for TestJvm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running exporter, killed (by its PID) when dropped.
#[derive(Debug)]
pub struct Exporter {
    pub process: Process,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Exporter {
    /// Writes `config` to `jmx.yml` (and `files` beside it) and starts the exporter on it.
    pub fn start(config: &str, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jmx.yml"), config).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let args = [format!(
            "--config.file={}",
            dir.path().join("jmx.yml").display()
        )];
        Self::start_with(dir, &args)
    }

    /// Starts the exporter with `args` (no configuration file unless given).
    pub fn start_with(dir: tempfile::TempDir, args: &[String]) -> Self {
        Self::start_with_env(dir, args, &[])
    }

    /// [`Exporter::start_with`] with more environment variables.
    pub fn start_with_env(dir: tempfile::TempDir, args: &[String], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = Command::new(EXPORTER);
        command
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args)
            .envs(env.iter().copied());
        let process = Process::start(command, || {
            get(port, "/-/ready").is_some_and(|(status, _)| status == 200)
        });
        Self { process, port, dir }
    }

    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    pub fn request(&self, method: &str, path: &str) -> Option<(u16, String)> {
        http(self.port, method, path, &[])
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        self.request("GET", path)
    }

    /// `/probe?target=…&module=…`: status and body, whatever they are.
    pub fn probe_answer(&self, target: &str, module: &str) -> (u16, String) {
        self.get(&format!("/probe?target={target}&module={module}"))
            .expect("probe answered")
    }

    /// `/probe?target=…&module=…`, expecting 200 and strictly valid text.
    pub fn probe(&self, target: &str, module: &str) -> String {
        let (status, body) = self
            .get(&format!("/probe?target={target}&module={module}"))
            .expect("probe answered");
        assert_eq!(status, 200, "{body}");
        if let Err(error) = kiln_scraper::parse(&body) {
            panic!("invalid exposition: {error}\n{body}");
        }
        body
    }

    pub fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics").unwrap();
        assert_eq!(status, 200);
        body
    }
}

/// `kiln-jmx-exporter --config.file=<config> --check-config`: exit code and stderr.
pub fn check_config(config: &Path) -> (Option<i32>, String) {
    let output = Command::new(EXPORTER)
        .arg(format!("--config.file={}", config.display()))
        .arg("--check-config")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// One HTTP/1.0 request; status and body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// The value of the sample written exactly as `series` (`name{a="b",c="d"}`) in `text`.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            if key != series {
                return None;
            }
            match value {
                "NaN" => Some(f64::NAN),
                "+Inf" => Some(f64::INFINITY),
                "-Inf" => Some(f64::NEG_INFINITY),
                _ => value.parse().ok(),
            }
        })
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A file of the repository's `deploy/` folder.
pub fn deploy_file(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A loopback HTTP server that answers every request with one recorded body (or, with
/// `body: None`, accepts connections and never answers: a hung JVM).
#[derive(Debug)]
pub struct StaticServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl StaticServer {
    /// Serves the recorded answer `tests/fixtures/<name>`.
    pub fn recorded(name: &str) -> Self {
        Self::start(Some(std::fs::read_to_string(fixture(name)).unwrap()))
    }

    pub fn start(body: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let Some(body) = &body else {
                            held.push(stream);
                            continue;
                        };
                        stream.set_nonblocking(false).unwrap();
                        let mut request = [0u8; 4096];
                        let _ = stream.read(&mut request);
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { port, stop }
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
