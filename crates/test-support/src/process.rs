//! A program under test, started with its log captured and stopped when the test ends.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a program may take to start serving.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A started program, killed (and reaped) on drop; its standard error goes to a log file
/// the test can read, its standard output is dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Process {
    /// Starts `command` and waits until `ready` says it is serving; fails the test with the
    /// program's log when it exits first or is not ready within 20 s.
    pub fn start(mut command: Command, ready: impl Fn() -> bool) -> Self {
        let log = tempfile::NamedTempFile::new().expect("a log file");
        command
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("the log file"));
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("starting {command:?}: {error}"));
        let mut process = Self { child, log };
        let started = Instant::now();
        while !ready() {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("{command:?} exited ({status}):\n{}", process.log_text());
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "{command:?} did not start:\n{}",
                process.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        process
    }

    /// Starts an exporter given `--web.listen-address=127.0.0.1:port` in `command` and waits
    /// until `/-/healthy` answers there.
    pub fn serving(command: Command, port: u16) -> Self {
        Self::start(command, || crate::get(port, "/-/healthy").is_some())
    }

    /// What the program has written to standard error so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits at most `limit` for the program to exit on its own: its exit code and log.
    pub fn wait_exit(mut self, limit: Duration) -> (Option<i32>, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the program") {
                return (status.code(), self.log_text());
            }
            assert!(
                started.elapsed() < limit,
                "the program did not exit within {limit:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        // A thread blocked in the kernel (a statfs on a hung mount) keeps a killed process
        // from being reaped until that call returns: do not wait for it for ever.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `command` to its exit (for start-up failures): its exit code and standard error.
pub fn run_to_exit(mut command: Command) -> (Option<i32>, String) {
    let output = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|error| panic!("running {command:?}: {error}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The value of the sample `series` (`name{a="b",c="d"}`, labels in any order) in a text
/// exposition, or `None` when it is absent.
pub fn value(text: &str, series: &str) -> Option<f64> {
    let wanted = series_key(series);
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (series_key(key) == wanted).then(|| value.parse().ok())?
        })
}

/// A series' name and its label pairs in sorted order, so that label order does not matter.
fn series_key(series: &str) -> (&str, Vec<&str>) {
    let (name, labels) = series.split_once('{').unwrap_or((series, ""));
    let mut labels = labels.strip_suffix('}').unwrap_or(labels);
    let mut pairs = Vec::new();
    // A pair ends at `",`; the tests' label values hold no such text.
    while !labels.is_empty() {
        let end = labels.find("\",").map_or(labels.len(), |at| at + 1);
        pairs.push(&labels[..end]);
        labels = labels.get(end + 1..).unwrap_or_default();
    }
    pairs.sort_unstable();
    (name, pairs)
}
