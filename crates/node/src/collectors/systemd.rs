//! `systemd` (off by default): unit states, socket and timer statistics and the
//! manager's state, asked of systemd over the system D-Bus.
//!
//! Without a system bus (containers, hosts without systemd) the collector fails with a
//! message that says so, logged once a minute, while every other collector serves on.

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};
use regex::Regex;
use zbus::blocking::Connection;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue};

use super::system_bus::SystemBus;
use super::{Settings, boxed};
use crate::filter;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let o = &settings.options;
    if o.systemd_private {
        tracing::warn!(
            "--collector.systemd.private is not supported; the systemd collector asks systemd over the system bus."
        );
    }
    // Upstream anchors both expressions.
    let anchored = |flag: &str, pattern: &str| filter::regex(flag, &format!("^(?:{pattern})$"));
    boxed(Systemd {
        include: anchored("collector.systemd.unit-include", &o.systemd_unit_include)?,
        exclude: anchored("collector.systemd.unit-exclude", &o.systemd_unit_exclude)?,
        start_time: o.systemd_start_time,
        tasks: o.systemd_tasks,
        restarts: o.systemd_restarts,
        bus: SystemBus::default(),
    })
}

struct Systemd {
    include: Regex,
    exclude: Regex,
    start_time: bool,
    tasks: bool,
    restarts: bool,
    bus: SystemBus,
}

const DESTINATION: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT_STATES: [&str; 5] = ["activating", "active", "deactivating", "failed", "inactive"];

/// A row of `ListUnits`: name, description, load state, active state, sub state,
/// followed unit, object path, job id, job type, job path.
type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// One unit we report.
struct Unit {
    name: String,
    active_state: String,
    path: OwnedObjectPath,
}

fn property(
    connection: &Connection,
    path: &ObjectPath<'_>,
    interface: &str,
    name: &str,
) -> zbus::Result<OwnedValue> {
    let reply = connection.call_method(
        Some(DESTINATION),
        path,
        Some("org.freedesktop.DBus.Properties"),
        "Get",
        &(interface, name),
    )?;
    reply.body().deserialize::<OwnedValue>()
}

fn number(value: zbus::Result<OwnedValue>) -> Option<f64> {
    let value = value.ok()?;
    u64::try_from(&value)
        .map(|v| v as f64)
        .or_else(|_| u32::try_from(&value).map(f64::from))
        .or_else(|_| i64::try_from(&value).map(|v| v as f64))
        .ok()
}

fn text(value: zbus::Result<OwnedValue>) -> Option<String> {
    String::try_from(value.ok()?).ok()
}

/// `252 (252.30-1~deb12u2)` → 252.
fn major_version(version: &str) -> f64 {
    let digits: String = version
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.trim_end_matches('.').parse().unwrap_or(0.0)
}

impl Systemd {
    fn gather(
        &self,
        connection: &Connection,
        ctx: &ScrapeContext,
        out: &mut MetricSet,
    ) -> Result<(), CollectError> {
        let failed = |what: &'static str| move |e: zbus::Error| CollectError::failed(what, e);
        let manager = ObjectPath::try_from(MANAGER_PATH)
            .map_err(|e| CollectError::failed("manager path", e))?;
        let rows: Vec<UnitRow> = connection
            .call_method(
                Some(DESTINATION),
                MANAGER_PATH,
                Some(MANAGER),
                "ListUnits",
                &(),
            )
            .map_err(failed("listing systemd units"))?
            .body()
            .deserialize()
            .map_err(failed("reading the systemd unit list"))?;
        let units: Vec<Unit> = rows
            .into_iter()
            .filter(|row| self.include.is_match(&row.0) && !self.exclude.is_match(&row.0))
            .map(|row| Unit {
                name: row.0,
                active_state: row.3,
                path: row.6,
            })
            .collect();

        let state = out.gauge("node_systemd_unit_state", "Systemd unit");
        let mut totals = [0u64; 5];
        let accepted = out.counter(
            "node_systemd_socket_accepted_connections_total",
            "Total number of accepted socket connections",
        );
        let current = out.gauge(
            "node_systemd_socket_current_connections",
            "Current number of socket connections",
        );
        let refused = out.counter(
            "node_systemd_socket_refused_connections_total",
            "Total number of refused socket connections",
        );
        let timers = out.gauge(
            "node_systemd_timer_last_trigger_seconds",
            "Seconds since epoch of last trigger.",
        );
        let start_times = out.gauge(
            "node_systemd_unit_start_time_seconds",
            "Start time of the unit since unix epoch in seconds.",
        );
        let tasks_current = out.gauge(
            "node_systemd_unit_tasks_current",
            "Current number of tasks per Systemd unit",
        );
        let tasks_max = out.gauge(
            "node_systemd_unit_tasks_max",
            "Maximum number of tasks per Systemd unit",
        );
        let restarts = out.counter(
            "node_systemd_service_restart_total",
            "Service unit count of Restart triggers",
        );
        for unit in &units {
            if ctx.expired() {
                break;
            }
            let path = unit.path.as_ref();
            let is_service = unit.name.ends_with(".service");
            let kind = if is_service {
                text(property(
                    connection,
                    &path,
                    "org.freedesktop.systemd1.Service",
                    "Type",
                ))
                .unwrap_or_default()
            } else {
                String::new()
            };
            for (index, name) in UNIT_STATES.iter().enumerate() {
                let on = unit.active_state == *name;
                totals[index] += u64::from(on);
                out.sample(
                    state,
                    &[("name", &unit.name), ("state", name), ("type", &kind)],
                    if on { 1.0 } else { 0.0 },
                );
            }
            let labels = [("name", unit.name.as_str())];
            if unit.name.ends_with(".socket") {
                let socket = "org.freedesktop.systemd1.Socket";
                if let Some(v) = number(property(connection, &path, socket, "NAccepted")) {
                    out.sample(accepted, &labels, v);
                }
                if let Some(v) = number(property(connection, &path, socket, "NConnections")) {
                    out.sample(current, &labels, v);
                }
                if let Some(v) = number(property(connection, &path, socket, "NRefused")) {
                    out.sample(refused, &labels, v);
                }
            }
            if unit.name.ends_with(".timer")
                && let Some(v) = number(property(
                    connection,
                    &path,
                    "org.freedesktop.systemd1.Timer",
                    "LastTriggerUSec",
                ))
            {
                out.sample(timers, &labels, v / 1e6);
            }
            if self.start_time
                && let Some(v) = number(property(
                    connection,
                    &path,
                    "org.freedesktop.systemd1.Unit",
                    "ActiveEnterTimestamp",
                ))
            {
                out.sample(start_times, &labels, v / 1e6);
            }
            if is_service && self.tasks {
                let service = "org.freedesktop.systemd1.Service";
                // u64::MAX means "no limit"/"not tracked".
                if let Some(v) = number(property(connection, &path, service, "TasksCurrent"))
                    .filter(|v| *v < u64::MAX as f64)
                {
                    out.sample(tasks_current, &labels, v);
                }
                if let Some(v) = number(property(connection, &path, service, "TasksMax"))
                    .filter(|v| *v < u64::MAX as f64)
                {
                    out.sample(tasks_max, &labels, v);
                }
            }
            if is_service
                && self.restarts
                && let Some(v) = number(property(
                    connection,
                    &path,
                    "org.freedesktop.systemd1.Service",
                    "NRestarts",
                ))
            {
                out.sample(restarts, &labels, v);
            }
        }
        let summary = out.gauge("node_systemd_units", "Summary of systemd unit states");
        for (name, total) in UNIT_STATES.iter().zip(totals) {
            out.sample(summary, &[("state", name)], total as f64);
        }

        let system_state =
            text(property(connection, &manager, MANAGER, "SystemState")).unwrap_or_default();
        out.gauge_value(
            "node_systemd_system_running",
            "Whether the system is operational (see 'systemctl is-system-running')",
            if system_state == "running" { 1.0 } else { 0.0 },
        );
        if let Some(version) = text(property(connection, &manager, MANAGER, "Version")) {
            {
                let family = out.gauge("node_systemd_version", "Detected systemd version");
                out.sample(
                    family,
                    &[("version", version.trim())],
                    major_version(&version),
                );
            }
        }
        if let Some(virtualization) =
            text(property(connection, &manager, MANAGER, "Virtualization"))
        {
            let kind = if virtualization.is_empty() {
                "none"
            } else {
                virtualization.as_str()
            };
            {
                let family = out.gauge(
                    "node_systemd_virtualization_info",
                    "Detected virtualization technology",
                );
                out.sample(family, &[("virtualization_type", kind)], 1.0);
            }
        }
        Ok(())
    }
}

impl Collector for Systemd {
    fn name(&self) -> &str {
        "systemd"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        self.bus
            .with("systemd", |connection| self.gather(connection, ctx, out))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions() {
        assert_eq!(super::major_version("252 (252.30-1~deb12u2)"), 252.0);
        assert_eq!(super::major_version("255.4-1ubuntu8"), 255.4);
        assert_eq!(super::major_version("unknown"), 0.0);
    }
}
