//! Shared by the integration tests: starting `kiln-node-exporter` (and Debian's
//! node_exporter) on free loopback ports, and scraping them over real sockets.

#![allow(clippy::unwrap_used)]
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use kiln_test_support::free_port;

/// A running exporter process, killed (by its PID) when dropped.
#[derive(Debug)]
pub struct Running {
    pub child: Child,
    pub port: u16,
}

impl Running {
    /// Starts `program` with `args` plus `--web.listen-address` on a free port and waits
    /// until it answers.
    pub fn start(program: &str, args: &[String]) -> Self {
        let port = free_port();
        let child = Command::new(program)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let running = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if running
                .try_get("/metrics")
                .is_some_and(|(status, _)| status == 200)
            {
                return running;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{program} did not answer on port {port}");
    }

    /// Starts our binary.
    pub fn kiln(args: &[String]) -> Self {
        Self::start(env!("CARGO_BIN_EXE_kiln-node-exporter"), args)
    }

    /// `GET path`, returning the status and body.
    pub fn try_get(&self, path: &str) -> Option<(u16, String)> {
        kiln_test_support::get(self.port, path)
    }

    /// The body of a successful scrape.
    pub fn scrape(&self) -> String {
        let (status, body) = self.try_get("/metrics").expect("scrape");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Number of threads of the process.
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .unwrap()
            .count()
    }

    /// Number of open file descriptors of the process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        // A thread blocked in the kernel (a statfs on a hung mount) keeps the process from
        // being reaped until that call returns: do not wait for it for ever.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A fixture tree under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `--path.*` flags pointing at a fixture tree.
pub fn fixture_paths(name: &str) -> Vec<String> {
    let root = fixture(name);
    vec![
        format!("--path.procfs={}", root.join("proc").display()),
        format!("--path.sysfs={}", root.join("sys").display()),
        format!("--path.rootfs={}", root.join("root").display()),
        format!("--path.udev.data={}", root.join("udev").display()),
    ]
}
