//! The logind collector against a logind stand-in: a private `dbus-daemon` whose address
//! the exporter gets as its system bus (`DBUS_SYSTEM_BUS_ADDRESS`), and on it a service
//! that owns `org.freedesktop.login1` and answers as systemd-logind does (`ListSeats`,
//! `ListSessions`, each session's `Remote`, `Type` and `Class`).

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use support::Running;
use zbus::zvariant::OwnedObjectPath;

const DBUS_DAEMON: &str = "/usr/bin/dbus-daemon";

/// A `dbus-daemon` of its own, stopped when dropped.
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Self {
        assert!(
            std::path::Path::new(DBUS_DAEMON).exists(),
            "{DBUS_DAEMON} is missing: install the dbus-daemon package"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().display()
            ),
        )
        .unwrap();
        let mut child = Command::new(DBUS_DAEMON)
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        Self {
            child,
            address: address.trim().to_owned(),
            _dir: dir,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Manager;

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    fn list_seats(&self) -> Vec<(String, OwnedObjectPath)> {
        vec![(
            "seat0".to_owned(),
            OwnedObjectPath::try_from("/org/freedesktop/login1/seat/seat0").unwrap(),
        )]
    }

    fn list_sessions(&self) -> Vec<(String, u32, String, String, OwnedObjectPath)> {
        ["1", "2", "3", "4"]
            .iter()
            .map(|id| {
                let seat = if *id == "1" { "seat0" } else { "" };
                (
                    (*id).to_owned(),
                    1000,
                    "user".to_owned(),
                    seat.to_owned(),
                    OwnedObjectPath::try_from(format!("/org/freedesktop/login1/session/_3{id}"))
                        .unwrap(),
                )
            })
            .collect()
    }
}

struct Session {
    remote: bool,
    kind: &'static str,
    class: &'static str,
}

#[zbus::interface(name = "org.freedesktop.login1.Session")]
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

#[test]
fn counts_logind_sessions_by_seat_remote_type_and_class() {
    let bus = Bus::start();
    let sessions = [
        // A desktop session on seat0, two SSH logins, one of a type logind added later.
        ("1", false, "wayland", "user"),
        ("2", true, "tty", "user"),
        ("3", true, "tty", "user"),
        ("4", true, "vnc", "background"),
    ];
    let mut builder = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.login1")
        .unwrap()
        .serve_at("/org/freedesktop/login1", Manager)
        .unwrap();
    for (id, remote, kind, class) in sessions {
        builder = builder
            .serve_at(
                format!("/org/freedesktop/login1/session/_3{id}"),
                Session {
                    remote,
                    kind,
                    class,
                },
            )
            .unwrap();
    }
    let _logind = builder.build().unwrap();

    let exporter = Running::start_with_env(
        env!("CARGO_BIN_EXE_kiln-node-exporter"),
        &[
            "--collector.disable-defaults".to_owned(),
            "--collector.logind".to_owned(),
        ],
        &[("DBUS_SYSTEM_BUS_ADDRESS", bus.address.as_str())],
    );
    let body = exporter.scrape();
    let value = |series: &str| kiln_test_support::value(&body, series);
    assert_eq!(
        value(r#"node_scrape_collector_success{collector="logind"}"#),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        value(r#"node_logind_sessions{seat="seat0",remote="false",type="wayland",class="user"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"node_logind_sessions{seat="",remote="true",type="tty",class="user"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(r#"node_logind_sessions{seat="",remote="true",type="other",class="background"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"node_logind_sessions{seat="seat0",remote="true",type="tty",class="user"}"#),
        Some(0.0)
    );
    // Every seat (and the empty one) times every known remote, type and class.
    assert_eq!(body.matches("node_logind_sessions{").count(), 2 * 2 * 7 * 5);
}
