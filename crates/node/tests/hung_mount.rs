//! A mount whose `statfs` never returns (a FUSE daemon that stopped answering, as a dead
//! NFS server would) must not hold up scrapes, nor cost a thread or a file descriptor per
//! scrape: it is reported with `device_error` while every other mount is measured.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Running, fixture};

/// The hung FUSE filesystem; unmounted and stopped when dropped.
struct HungMount {
    daemon: Child,
    dir: tempfile::TempDir,
}

impl HungMount {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = Command::new("/usr/bin/python3")
            .arg(fixture("hung_fuse.py"))
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start hung_fuse.py (scripts/test installs python3-fusepy)");
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the FUSE daemon did not start");
        let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            mounted.contains(dir.path().to_str().unwrap()),
            "not mounted (is /dev/fuse usable?)"
        );
        Self { daemon, dir }
    }
}

impl Drop for HungMount {
    fn drop(&mut self) {
        // Killing the daemon aborts the connection, so the pending statfs fails and the
        // exporter's stat thread is released; then the mount point is detached.
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_hung_mount_never_blocks_a_scrape_or_leaks_threads() {
    let mount = HungMount::start();
    let mount_point = mount.dir.path().to_str().unwrap().to_owned();
    let exporter = Running::kiln(&[
        "--collector.disable-defaults".into(),
        "--collector.filesystem".into(),
        format!("--collector.filesystem.mount-points-include=^(/|{mount_point})$"),
        "--collector.filesystem.mount-timeout=1s".into(),
    ]);

    let started = Instant::now();
    let body = exporter.scrape();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "first scrape took {:?}",
        started.elapsed()
    );
    let parsed = kiln_scraper::parse(&body).unwrap();
    let hung = [
        ("mountpoint", mount_point.as_str()),
        ("device_error", "mountpoint timeout"),
    ];
    assert_eq!(
        parsed.value("node_filesystem_device_error", &hung),
        Some(1.0)
    );
    let root = [("mountpoint", "/"), ("device_error", "")];
    assert_eq!(
        parsed.value("node_filesystem_device_error", &root),
        Some(0.0)
    );
    assert!(parsed.value("node_filesystem_size_bytes", &root).unwrap() > 0.0);
    assert_eq!(
        parsed.value(
            "node_scrape_collector_success",
            &[("collector", "filesystem")]
        ),
        Some(1.0)
    );

    // Later scrapes do not ask the hung mount again: they are quick, and the exporter's
    // threads and file descriptors stay as they are.
    let (threads, fds) = (exporter.threads(), exporter.open_fds());
    for _ in 0..10 {
        let started = Instant::now();
        let body = exporter.scrape();
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "scrape took {:?}",
            started.elapsed()
        );
        let parsed = kiln_scraper::parse(&body).unwrap();
        assert_eq!(
            parsed.value("node_filesystem_device_error", &hung),
            Some(1.0)
        );
    }
    assert_eq!(exporter.threads(), threads, "threads grew with scrapes");
    assert!(
        exporter.open_fds() <= fds + 1,
        "file descriptors grew with scrapes"
    );

    // Release the hung call first, so the exporter can then exit.
    drop(mount);
    drop(exporter);
}
