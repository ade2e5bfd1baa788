//! `logind` (off by default): login sessions as systemd-logind counts them, asked over
//! the system D-Bus (`org.freedesktop.login1`) each scrape, by seat, remoteness, type and
//! class.

use std::collections::BTreeMap;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};
use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use super::{Settings, boxed};

pub(super) fn build(_: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Logind)
}

struct Logind;

const DESTINATION: &str = "org.freedesktop.login1";
const MANAGER_PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
const SESSION: &str = "org.freedesktop.login1.Session";

/// The label values every seat gets a series for; a session of another type or class
/// counts as `other`.
const REMOTE: [&str; 2] = ["true", "false"];
const TYPES: [&str; 7] = [
    "other",
    "unspecified",
    "tty",
    "x11",
    "wayland",
    "mir",
    "web",
];
const CLASSES: [&str; 5] = ["other", "user", "greeter", "lock-screen", "background"];

/// What a session is counted by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Session {
    seat: String,
    remote: bool,
    kind: &'static str,
    class: &'static str,
}

fn known_or_other(value: &str, known: &[&'static str]) -> &'static str {
    known
        .iter()
        .find(|k| **k == value)
        .copied()
        .unwrap_or("other")
}

/// Sessions per `(seat, remote, type, class)`, for every combination of the seats
/// (and the empty seat of sessions without one) with the known values: a missing
/// combination is 0, so a series does not vanish when its last session ends.
fn series<'a>(seats: &'a [String], sessions: &[Session]) -> Vec<([&'a str; 4], f64)> {
    let mut counts: BTreeMap<&Session, f64> = BTreeMap::new();
    for session in sessions {
        *counts.entry(session).or_default() += 1.0;
    }
    let mut out = Vec::new();
    for remote in REMOTE {
        for kind in TYPES {
            for class in CLASSES {
                for seat in seats {
                    let key = Session {
                        seat: seat.clone(),
                        remote: remote == "true",
                        kind,
                        class,
                    };
                    let count = counts.get(&key).copied().unwrap_or(0.0);
                    out.push(([seat.as_str(), remote, kind, class], count));
                }
            }
        }
    }
    out
}

fn property(
    connection: &Connection,
    path: &OwnedObjectPath,
    name: &str,
) -> zbus::Result<OwnedValue> {
    let reply = connection.call_method(
        Some(DESTINATION),
        path.as_ref(),
        Some("org.freedesktop.DBus.Properties"),
        "Get",
        &(SESSION, name),
    )?;
    reply.body().deserialize::<OwnedValue>()
}

/// A session's remoteness, type and class; None when logind does not answer for it (it
/// ended in between, say), as node_exporter leaves such sessions out.
fn session(connection: &Connection, seat: String, path: &OwnedObjectPath) -> Option<Session> {
    let remote = bool::try_from(property(connection, path, "Remote").ok()?).ok()?;
    let kind = String::try_from(property(connection, path, "Type").ok()?).ok()?;
    let class = String::try_from(property(connection, path, "Class").ok()?).ok()?;
    Some(Session {
        seat,
        remote,
        kind: known_or_other(&kind, &TYPES),
        class: known_or_other(&class, &CLASSES),
    })
}

impl Collector for Logind {
    fn name(&self) -> &str {
        "logind"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let connection = Connection::system().map_err(|e| {
            CollectError::failed("connecting to the system D-Bus to ask systemd-logind", e)
        })?;
        let call = |method: &str| {
            connection
                .call_method(Some(DESTINATION), MANAGER_PATH, Some(MANAGER), method, &())
                .map_err(|e| CollectError::failed(format!("calling logind's {method}"), e))
        };
        let seats: Vec<(String, OwnedObjectPath)> = call("ListSeats")?
            .body()
            .deserialize()
            .map_err(|e| CollectError::failed("reading logind's seats", e))?;
        let listed: Vec<(String, u32, String, String, OwnedObjectPath)> = call("ListSessions")?
            .body()
            .deserialize()
            .map_err(|e| CollectError::failed("reading logind's sessions", e))?;
        let mut seat_names: Vec<String> = seats.into_iter().map(|(id, _)| id).collect();
        // Sessions without a seat (SSH logins) count under the empty seat.
        seat_names.push(String::new());
        let sessions: Vec<Session> = listed
            .into_iter()
            .filter_map(|(_, _, _, seat, path)| session(&connection, seat, &path))
            .collect();
        let family = out.gauge(
            "node_logind_sessions",
            "Number of sessions registered in logind.",
        );
        for ([seat, remote, kind, class], count) in series(&seat_names, &sessions) {
            out.sample(
                family,
                &[
                    ("seat", seat),
                    ("remote", remote),
                    ("type", kind),
                    ("class", class),
                ],
                count,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_with_counts() {
        let seats = vec!["seat0".to_owned(), String::new()];
        let sessions = [
            Session {
                seat: "seat0".to_owned(),
                remote: false,
                kind: "x11",
                class: "user",
            },
            Session {
                seat: String::new(),
                remote: true,
                kind: "tty",
                class: "user",
            },
            Session {
                seat: String::new(),
                remote: true,
                kind: "tty",
                class: "user",
            },
        ];
        let series = series(&seats, &sessions);
        assert_eq!(series.len(), 2 * 7 * 5 * 2);
        let count = |labels: [&str; 4]| {
            series
                .iter()
                .find(|(l, _)| *l == labels)
                .map(|(_, count)| *count)
        };
        assert_eq!(count(["seat0", "false", "x11", "user"]), Some(1.0));
        assert_eq!(count(["", "true", "tty", "user"]), Some(2.0));
        assert_eq!(count(["seat0", "true", "tty", "user"]), Some(0.0));
    }

    #[test]
    fn unknown_types_and_classes_are_other() {
        assert_eq!(known_or_other("wayland", &TYPES), "wayland");
        assert_eq!(known_or_other("vnc", &TYPES), "other");
        assert_eq!(known_or_other("manager", &CLASSES), "other");
    }
}
