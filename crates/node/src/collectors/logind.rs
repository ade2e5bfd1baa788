//! `logind` (off by default): the sessions systemd-logind knows, counted by seat, whether
//! they are remote, their type and their class, asked of `org.freedesktop.login1` over the
//! system D-Bus.
//!
//! Every combination of the known values is reported for every seat (and for the empty
//! seat of remote sessions such as SSH logins), zero where no session has it, so a graph
//! of a combination never has gaps. A type or class logind gains after systemd v229 is
//! counted as `other`. A session whose properties cannot be read (it ended between the
//! listing and the question) is left out; a bus or logind that does not answer fails the
//! scrape of this collector only.

use std::collections::HashMap;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};
use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use super::system_bus::SystemBus;
use super::{Settings, boxed};

pub(super) fn build(_settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Logind {
        bus: SystemBus::default(),
    })
}

const DESTINATION: &str = "org.freedesktop.login1";
const MANAGER_PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
const SESSION: &str = "org.freedesktop.login1.Session";

/// The label values reported, as logind defined them in systemd v229; `other` stands for
/// any value added since.
const REMOTE_VALUES: [&str; 2] = ["true", "false"];
const TYPE_VALUES: [&str; 7] = [
    "other",
    "unspecified",
    "tty",
    "x11",
    "wayland",
    "mir",
    "web",
];
const CLASS_VALUES: [&str; 5] = ["other", "user", "greeter", "lock-screen", "background"];

/// A row of `ListSeats`: seat id, object path.
type SeatRow = (String, OwnedObjectPath);
/// A row of `ListSessions`: session id, user id, user name, seat id, object path.
type SessionRow = (String, u32, String, String, OwnedObjectPath);

/// What a session is counted by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    seat: String,
    remote: &'static str,
    kind: &'static str,
    class: &'static str,
}

/// `value` when it is one of `known`, else `other`.
fn known_or_other(value: &str, known: &[&'static str]) -> &'static str {
    known
        .iter()
        .copied()
        .find(|k| *k == value)
        .unwrap_or("other")
}

impl SessionKey {
    /// The key of a session on `seat` with logind's `Remote`, `Type` and `Class`
    /// properties; `None` when one of them has an unexpected D-Bus type.
    fn new(seat: &str, remote: &OwnedValue, kind: &OwnedValue, class: &OwnedValue) -> Option<Self> {
        let remote = if bool::try_from(remote).ok()? {
            "true"
        } else {
            "false"
        };
        let kind = <&str>::try_from(kind).ok()?;
        let class = <&str>::try_from(class).ok()?;
        Some(Self {
            seat: seat.to_owned(),
            remote,
            kind: known_or_other(kind, &TYPE_VALUES),
            class: known_or_other(class, &CLASS_VALUES),
        })
    }
}

/// The seats to report: those logind lists, once each, and the empty seat of sessions
/// without one.
fn seats_to_report(listed: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seats: Vec<String> = Vec::new();
    for seat in listed.into_iter().chain([String::new()]) {
        if !seats.contains(&seat) {
            seats.push(seat);
        }
    }
    seats
}

/// Writes `node_logind_sessions`: every seat × remote × type × class, counted in `counts`.
fn write_sessions(seats: &[String], counts: &HashMap<SessionKey, u64>, out: &mut MetricSet) {
    let family = out.gauge(
        "node_logind_sessions",
        "Number of sessions registered in logind.",
    );
    for remote in REMOTE_VALUES {
        for kind in TYPE_VALUES {
            for class in CLASS_VALUES {
                for seat in seats {
                    let key = SessionKey {
                        seat: seat.clone(),
                        remote,
                        kind,
                        class,
                    };
                    let count = counts.get(&key).copied().unwrap_or(0);
                    out.sample(
                        family,
                        &[
                            ("seat", seat.as_str()),
                            ("remote", remote),
                            ("type", kind),
                            ("class", class),
                        ],
                        count as f64,
                    );
                }
            }
        }
    }
}

struct Logind {
    bus: SystemBus,
}

impl Logind {
    /// The key of one session, `None` when logind cannot tell us about it any more.
    fn session(connection: &Connection, row: &SessionRow) -> Option<SessionKey> {
        let property = |name: &str| -> Option<OwnedValue> {
            connection
                .call_method(
                    Some(DESTINATION),
                    row.4.as_ref(),
                    Some("org.freedesktop.DBus.Properties"),
                    "Get",
                    &(SESSION, name),
                )
                .ok()?
                .body()
                .deserialize::<OwnedValue>()
                .ok()
        };
        let key = SessionKey::new(
            &row.3,
            &property("Remote")?,
            &property("Type")?,
            &property("Class")?,
        );
        if key.is_none() {
            tracing::debug!(
                collector = "logind",
                session = row.0,
                "session properties of unexpected types; skipped"
            );
        }
        key
    }

    fn gather(
        &self,
        connection: &Connection,
        ctx: &ScrapeContext,
        out: &mut MetricSet,
    ) -> Result<(), CollectError> {
        let list = |method: &'static str| {
            connection
                .call_method(Some(DESTINATION), MANAGER_PATH, Some(MANAGER), method, &())
                .map_err(|e| CollectError::failed(format!("asking logind to {method}"), e))
        };
        let seats: Vec<SeatRow> = list("ListSeats")?
            .body()
            .deserialize()
            .map_err(|e| CollectError::failed("reading logind's seat list", e))?;
        let sessions: Vec<SessionRow> = list("ListSessions")?
            .body()
            .deserialize()
            .map_err(|e| CollectError::failed("reading logind's session list", e))?;

        let mut counts: HashMap<SessionKey, u64> = HashMap::new();
        for row in &sessions {
            if ctx.expired() {
                return Err(CollectError::failed(
                    "asking logind about its sessions",
                    "the collector's time budget ran out",
                ));
            }
            if let Some(key) = Self::session(connection, row) {
                *counts.entry(key).or_default() += 1;
            }
        }
        let seats = seats_to_report(seats.into_iter().map(|(id, _)| id));
        write_sessions(&seats, &counts, out);
        Ok(())
    }
}

impl Collector for Logind {
    fn name(&self) -> &str {
        "logind"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        self.bus.with("systemd-logind", |connection| {
            self.gather(connection, ctx, out)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use kiln_registry::MetricSet;
    use zbus::zvariant::{OwnedValue, Str, Value};

    use super::{SessionKey, known_or_other, seats_to_report, write_sessions};
    use crate::collectors::testing::series;

    fn owned(value: Value<'_>) -> OwnedValue {
        value.try_to_owned().unwrap()
    }

    #[test]
    fn unknown_types_and_classes_count_as_other() {
        assert_eq!(known_or_other("wayland", &super::TYPE_VALUES), "wayland");
        assert_eq!(known_or_other("manager", &super::CLASS_VALUES), "other");
        let key = SessionKey::new(
            "seat0",
            &owned(Value::Bool(true)),
            &owned(Value::Str(Str::from("teletype"))),
            &owned(Value::Str(Str::from("lock-screen"))),
        )
        .unwrap();
        assert_eq!(
            (key.remote, key.kind, key.class),
            ("true", "other", "lock-screen")
        );
    }

    #[test]
    fn properties_of_the_wrong_type_skip_the_session() {
        let text = owned(Value::Str(Str::from("tty")));
        assert!(SessionKey::new("", &text, &text, &text).is_none());
        let flag = owned(Value::Bool(false));
        assert!(SessionKey::new("", &flag, &flag, &text).is_none());
    }

    #[test]
    fn the_empty_seat_is_always_reported_and_seats_only_once() {
        assert_eq!(
            seats_to_report(["seat0".into(), "seat0".into(), "".into()]),
            ["seat0", ""]
        );
        assert_eq!(seats_to_report([]), [""]);
    }

    #[test]
    fn every_combination_is_written_with_zero_for_none() {
        let mut counts = HashMap::new();
        counts.insert(
            SessionKey {
                seat: String::new(),
                remote: "true",
                kind: "tty",
                class: "user",
            },
            2,
        );
        let mut out = MetricSet::default();
        write_sessions(&["seat0".into(), String::new()], &counts, &mut out);
        let lines = series(&mut out);
        assert_eq!(lines.len(), 2 * 7 * 5 * 2);
        assert!(lines.contains(
            &"node_logind_sessions{class=user,remote=true,seat=,type=tty} 2".to_string()
        ));
        assert!(lines.contains(
            &"node_logind_sessions{class=user,remote=true,seat=seat0,type=tty} 0".to_string()
        ));
    }
}
