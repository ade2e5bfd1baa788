//! Shared by the integration tests: starting `kiln-node-exporter` (and Debian's
//! node_exporter) on free loopback ports, and scraping them over real sockets.

#![allow(clippy::unwrap_used)]
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::Command;

pub use kiln_test_support::{Process, free_port};

/// A running exporter process, killed (by its PID) when dropped.
#[derive(Debug)]
pub struct Running {
    pub process: Process,
    pub port: u16,
}

impl Running {
    /// Starts `program` with `args` plus `--web.listen-address` on a free port and waits
    /// until it answers.
    pub fn start(program: &str, args: &[String]) -> Self {
        Self::start_with_env(program, args, &[])
    }

    /// [`Running::start`] with more environment variables.
    pub fn start_with_env(program: &str, args: &[String], env: &[(&str, &str)]) -> Self {
        Self::start_command(Command::new(program), args, env, "/metrics")
    }

    /// [`Running::start`] in working directory `dir`, for relative paths in `args`; ready
    /// when the landing page answers, so the first scrape is the test's own.
    pub fn start_in(program: &str, args: &[String], dir: &std::path::Path) -> Self {
        let mut command = Command::new(program);
        command.current_dir(dir);
        Self::start_command(command, args, &[], "/")
    }

    fn start_command(
        mut command: Command,
        args: &[String],
        env: &[(&str, &str)],
        ready_path: &str,
    ) -> Self {
        let port = free_port();
        command
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args)
            .envs(env.iter().copied());
        let process = Process::start(command, || {
            kiln_test_support::get(port, ready_path).is_some_and(|(status, _)| status == 200)
        });
        Self { process, port }
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
        std::fs::read_dir(format!("/proc/{}/task", self.process.pid()))
            .unwrap()
            .count()
    }

    /// Number of open file descriptors of the process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.process.pid()))
            .unwrap()
            .count()
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
