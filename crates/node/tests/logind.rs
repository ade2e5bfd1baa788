//! The logind collector against a real D-Bus: a private `dbus-daemon` (scripts/test
//! installs the `dbus-daemon` package) on which this test serves `org.freedesktop.login1`
//! with a handful of sessions, and the exporter binary pointed at that bus through
//! `DBUS_SYSTEM_BUS_ADDRESS`, as it would find the system bus.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;

use kiln_test_support::Process;
use kiln_test_support::value;
use support::Running;
use zbus::blocking::connection;
use zbus::interface;
use zbus::zvariant::OwnedObjectPath;

/// logind's manager object: the seats and sessions it lists.
struct Manager {
    seats: Vec<&'static str>,
    /// Session id and seat; the session's object is served at `session/_<id>`.
    sessions: Vec<(&'static str, &'static str)>,
}

#[interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    fn list_seats(&self) -> Vec<(String, OwnedObjectPath)> {
        self.seats
            .iter()
            .map(|seat| {
                let path = format!("/org/freedesktop/login1/seat/{seat}");
                ((*seat).to_owned(), OwnedObjectPath::try_from(path).unwrap())
            })
            .collect()
    }

    fn list_sessions(&self) -> Vec<(String, u32, String, String, OwnedObjectPath)> {
        self.sessions
            .iter()
            .map(|(id, seat)| {
                let path = format!("/org/freedesktop/login1/session/_{id}");
                (
                    (*id).to_owned(),
                    1000,
                    "user".to_owned(),
                    (*seat).to_owned(),
                    OwnedObjectPath::try_from(path).unwrap(),
                )
            })
            .collect()
    }
}

/// A session object with the three properties the collector asks for.
struct Session {
    remote: bool,
    kind: &'static str,
    class: &'static str,
}

#[interface(name = "org.freedesktop.login1.Session")]
impl Session {
    #[zbus(property)]
    fn remote(&self) -> bool {
        self.remote
    }

    #[zbus(property, name = "Type")]
    fn kind(&self) -> String {
        self.kind.to_owned()
    }

    #[zbus(property)]
    fn class(&self) -> String {
        self.class.to_owned()
    }
}

/// A message bus of our own, listening on a socket in `dir`.
fn start_bus(dir: &Path) -> (Process, String) {
    let socket = dir.join("bus");
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .unwrap();
    let mut command = Command::new("dbus-daemon");
    command
        .arg(format!("--config-file={}", config.display()))
        .arg("--nofork");
    if Command::new("dbus-daemon")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("dbus-daemon is missing: scripts/test installs the dbus-daemon package");
    }
    let ready = socket.clone();
    let bus = Process::start(command, move || ready.exists());
    (bus, format!("unix:path={}", socket.display()))
}

/// Serves the fake logind on `address` until the connection is dropped.
fn serve_logind(address: &str) -> zbus::blocking::Connection {
    let manager = Manager {
        seats: vec!["seat0"],
        sessions: vec![
            ("1", "seat0"), // local X11 user session
            ("2", "seat0"), // local Wayland user session
            ("3", "seat0"), // another one
            ("4", ""),      // SSH login
            ("5", ""),      // a session type and class newer than the collector
            ("6", "seat1"), // a seat logind does not list: not reported
            ("gone", ""),   // ended before its properties were asked: skipped
        ],
    };
    let session = |remote, kind, class| Session {
        remote,
        kind,
        class,
    };
    connection::Builder::address(address)
        .unwrap()
        .name("org.freedesktop.login1")
        .unwrap()
        .serve_at("/org/freedesktop/login1", manager)
        .unwrap()
        .serve_at(
            "/org/freedesktop/login1/session/_1",
            session(false, "x11", "user"),
        )
        .unwrap()
        .serve_at(
            "/org/freedesktop/login1/session/_2",
            session(false, "wayland", "user"),
        )
        .unwrap()
        .serve_at(
            "/org/freedesktop/login1/session/_3",
            session(false, "wayland", "user"),
        )
        .unwrap()
        .serve_at(
            "/org/freedesktop/login1/session/_4",
            session(true, "tty", "user"),
        )
        .unwrap()
        .serve_at(
            "/org/freedesktop/login1/session/_5",
            session(true, "hologram", "manager"),
        )
        .unwrap()
        .serve_at(
            "/org/freedesktop/login1/session/_6",
            session(false, "tty", "user"),
        )
        .unwrap()
        .build()
        .unwrap()
}

fn sessions(body: &str, seat: &str, remote: &str, kind: &str, class: &str) -> Option<f64> {
    value(
        body,
        &format!(
            r#"node_logind_sessions{{seat="{seat}",remote="{remote}",type="{kind}",class="{class}"}}"#
        ),
    )
}

#[test]
fn sessions_are_counted_by_seat_remote_type_and_class() {
    let dir = tempfile::tempdir().unwrap();
    let (_bus, address) = start_bus(dir.path());
    let _logind = serve_logind(&address);
    let exporter = Running::start_with_env(
        env!("CARGO_BIN_EXE_kiln-node-exporter"),
        &[
            "--collector.disable-defaults".into(),
            "--collector.logind".into(),
        ],
        &[("DBUS_SYSTEM_BUS_ADDRESS", &address)],
    );
    let body = exporter.scrape();

    assert!(
        body.contains("# HELP node_logind_sessions Number of sessions registered in logind.\n"),
        "{body}"
    );
    assert!(body.contains("# TYPE node_logind_sessions gauge\n"));
    assert_eq!(
        value(
            &body,
            r#"node_scrape_collector_success{collector="logind"}"#
        ),
        Some(1.0)
    );
    assert_eq!(sessions(&body, "seat0", "false", "x11", "user"), Some(1.0));
    assert_eq!(
        sessions(&body, "seat0", "false", "wayland", "user"),
        Some(2.0)
    );
    assert_eq!(sessions(&body, "", "true", "tty", "user"), Some(1.0));
    assert_eq!(sessions(&body, "", "true", "other", "other"), Some(1.0));
    assert_eq!(sessions(&body, "seat0", "true", "tty", "user"), Some(0.0));
    assert_eq!(sessions(&body, "seat1", "false", "tty", "user"), None);
    // Two seats (seat0 and the empty one) × 2 × 7 types × 5 classes, no more.
    let series = body
        .lines()
        .filter(|l| l.starts_with("node_logind_sessions{"))
        .count();
    assert_eq!(series, 140);
    let total: f64 = body
        .lines()
        .filter(|l| l.starts_with("node_logind_sessions{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, 5.0);
}

#[test]
fn without_logind_on_the_bus_only_this_collector_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (_bus, address) = start_bus(dir.path());
    let exporter = Running::start_with_env(
        env!("CARGO_BIN_EXE_kiln-node-exporter"),
        &[
            "--collector.disable-defaults".into(),
            "--collector.logind".into(),
            "--collector.loadavg".into(),
        ],
        &[("DBUS_SYSTEM_BUS_ADDRESS", &address)],
    );
    let body = exporter.scrape();
    assert_eq!(
        value(
            &body,
            r#"node_scrape_collector_success{collector="logind"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &body,
            r#"node_scrape_collector_success{collector="loadavg"}"#
        ),
        Some(1.0)
    );
    assert!(!body.contains("node_logind_sessions{"));

    // logind appearing later is found at the next scrape.
    let _logind = serve_logind(&address);
    let body = exporter.scrape();
    assert_eq!(
        value(
            &body,
            r#"node_scrape_collector_success{collector="logind"}"#
        ),
        Some(1.0)
    );
    assert_eq!(sessions(&body, "", "true", "tty", "user"), Some(1.0));
}
