//! `hwmon`: hardware sensors (temperatures, fans, voltages, power) from
//! `/sys/class/hwmon/hwmon*/`, named as node_exporter names them:
//! `node_hwmon_<type>[_<element>]_<unit>{chip, sensor}`.
//!
//! Some sensors are slow to read (1-wire buses, NVMe drives on some clouds): chips and
//! sensors can be filtered, and reading stops at the collector's time budget.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::NameFilter;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let o = &settings.options;
    boxed(Hwmon {
        root: settings.paths.sys("class/hwmon"),
        chips: NameFilter::new(
            o.hwmon_chip_include.as_deref(),
            o.hwmon_chip_exclude.as_deref(),
            (
                "collector.hwmon.chip-include",
                "collector.hwmon.chip-exclude",
            ),
        )?,
        sensors: NameFilter::new(
            o.hwmon_sensor_include.as_deref(),
            o.hwmon_sensor_exclude.as_deref(),
            (
                "collector.hwmon.sensor-include",
                "collector.hwmon.sensor-exclude",
            ),
        )?,
    })
}

struct Hwmon {
    /// `/sys/class/hwmon`.
    root: PathBuf,
    chips: NameFilter,
    sensors: NameFilter,
}

/// Sensor types node_exporter knows; other files in the directory are ignored.
const SENSOR_TYPES: [&str; 14] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
    "freq",
];

/// Lower case, characters outside `[a-z0-9:_]` replaced by `_`, trimmed of `_`.
fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    cleaned.trim_matches('_').to_owned()
}

/// Splits `temp1_crit_alarm` into `("temp", "1", "crit_alarm")`, `pwm2` into
/// `("pwm", "2", "")` and `update_interval` into `("update_interval", "", "")`.
fn split_sensor_file(file: &str) -> Option<(&str, &str, &str)> {
    // As upstream's `^([^0-9]+)([0-9]*)(_(.+))?$`: the type runs to the first digit.
    let type_end = file
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(file.len());
    let (kind, rest) = file.split_at(type_end);
    let id_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (id, rest) = rest.split_at(id_end);
    let element = match rest.strip_prefix('_') {
        Some(element) => element,
        None if rest.is_empty() => "",
        None => return None,
    };
    if kind.is_empty() {
        return None;
    }
    Some((kind, id, element))
}

/// The metric a sensor element becomes: name, HELP, type and the factor to base units.
fn describe(kind: &str, element: &str, has_bare: bool) -> (String, String, MetricType, f64) {
    let mut name = format!("node_hwmon_{kind}");
    if element == "input" {
        // `temp1_input` is the value itself, unless a bare `temp1` exists too.
        if has_bare {
            name.push_str("_input");
        }
    } else if !element.is_empty() {
        name.push('_');
        name.push_str(&clean_name(element));
    }
    let gauge = MetricType::Gauge;
    let unit =
        |suffix: &str, help: String, scale: f64| (format!("{name}{suffix}"), help, gauge, scale);
    match (kind, element) {
        (_, "fault" | "alarm") => unit(
            "",
            format!("Hardware sensor {element} status ({kind})"),
            1.0,
        ),
        (_, "beep") => unit(
            "_enabled",
            "Hardware monitor sensor has beeping enabled".into(),
            1.0,
        ),
        ("in" | "cpu", _) => unit(
            "_volts",
            format!("Hardware monitor for voltage ({element})"),
            0.001,
        ),
        ("temp", e) if e != "type" => unit(
            "_celsius",
            format!("Hardware monitor for temperature ({element})"),
            0.001,
        ),
        ("curr", _) => unit(
            "_amps",
            format!("Hardware monitor for current ({element})"),
            0.001,
        ),
        ("energy", _) => (
            format!("{name}_joule_total"),
            format!("Hardware monitor for joules used so far ({element})"),
            MetricType::Counter,
            1e-6,
        ),
        ("power", "accuracy") => unit(
            "",
            "Hardware monitor power meter accuracy, as a ratio".into(),
            1e-6,
        ),
        ("power", "average_interval" | "average_interval_min" | "average_interval_max") => unit(
            "_seconds",
            format!("Hardware monitor power usage update interval ({element})"),
            0.001,
        ),
        ("power", _) => unit(
            "_watt",
            format!("Hardware monitor for power usage in watts ({element})"),
            1e-6,
        ),
        ("humidity", _) => unit(
            "",
            format!(
                "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) ({element})"
            ),
            1e-6,
        ),
        ("fan", "input" | "min" | "max" | "target") => unit(
            "_rpm",
            format!("Hardware monitor for fan revolutions per minute ({element})"),
            1.0,
        ),
        ("freq", "input") => unit(
            "_freq_mhz",
            "Hardware monitor for GPU frequency in MHz".into(),
            1e-6,
        ),
        _ => unit(
            "",
            format!("Hardware monitor {kind} element {element}"),
            1.0,
        ),
    }
}

impl Hwmon {
    /// A stable name for a chip: from its device's bus path (`platform_coretemp_0`),
    /// else its `name` file, else the `hwmonN` directory.
    fn chip_name(&self, dir: &Path) -> Option<String> {
        if let Ok(device) = std::fs::canonicalize(dir.join("device")) {
            let name = device
                .file_name()
                .and_then(|n| n.to_str())
                .map(clean_name)
                .unwrap_or_default();
            let parent = device
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .map(clean_name)
                .unwrap_or_default();
            match (parent.is_empty(), name.is_empty()) {
                (false, false) => return Some(format!("{parent}_{name}")),
                (true, false) => return Some(name),
                _ => {}
            }
        }
        if let Some(name) = read::attribute(&dir.join("name"))
            .map(|n| clean_name(&n))
            .filter(|n| !n.is_empty())
        {
            return Some(name);
        }
        let real = std::fs::canonicalize(dir).ok()?;
        Some(clean_name(real.file_name()?.to_str()?)).filter(|n| !n.is_empty())
    }
}

/// sensor (`temp1`) → element (`crit`) → raw text.
type SensorData = BTreeMap<String, BTreeMap<String, String>>;

fn read_sensors(dir: &Path, data: &mut SensorData) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some((kind, id, element)) = split_sensor_file(&file) else {
            continue;
        };
        if !SENSOR_TYPES.contains(&kind) {
            continue;
        }
        // Write-only or broken attributes fail to read; they are not sensors.
        let Some(value) = read::attribute(&entry.path()) else {
            continue;
        };
        data.entry(format!("{kind}{id}"))
            .or_default()
            .insert(element.to_owned(), value.to_string());
    }
}

impl Collector for Hwmon {
    fn name(&self) -> &str {
        "hwmon"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let chips = read::dir_entries(&self.root, |_| true)?;
        let mut families: BTreeMap<String, FamilyId> = BTreeMap::new();
        let chip_names = out.gauge(
            "node_hwmon_chip_names",
            "Annotation metric for human-readable chip names",
        );
        let sensor_labels = out.gauge("node_hwmon_sensor_label", "Label for given chip and sensor");
        for (_, dir) in chips {
            if ctx.expired() {
                tracing::warn!(
                    collector = "hwmon",
                    "Time budget spent; the remaining chips are skipped this scrape."
                );
                break;
            }
            if !dir.is_dir() {
                continue;
            }
            let Some(chip) = self.chip_name(&dir) else {
                continue;
            };
            if !self.chips.accepts(&chip) {
                continue;
            }
            let mut data = SensorData::new();
            read_sensors(&dir, &mut data);
            // Older drivers keep their sensors under device/.
            read_sensors(&dir.join("device"), &mut data);
            if let Some(name) = read::attribute(&dir.join("name")).map(|n| clean_name(&n)) {
                out.sample(chip_names, &[("chip", &chip), ("chip_name", &name)], 1.0);
            }
            for (sensor, elements) in &data {
                if !self.sensors.accepts(&format!("{chip};{sensor}")) {
                    continue;
                }
                let labels = [("chip", chip.as_str()), ("sensor", sensor.as_str())];
                if let Some(label) = elements.get("label") {
                    out.sample(
                        sensor_labels,
                        &[
                            ("chip", &chip),
                            ("sensor", sensor),
                            ("label", &clean_name(label)),
                        ],
                        1.0,
                    );
                }
                let kind = sensor.trim_end_matches(|c: char| c.is_ascii_digit());
                if kind == "beep_enable" || kind == "update_interval" {
                    let Some(value) = elements.get("").and_then(|v| v.parse::<f64>().ok()) else {
                        continue;
                    };
                    let (name, help, scale) = if kind == "beep_enable" {
                        ("node_hwmon_beep_enabled", "Hardware beep enabled", 1.0)
                    } else {
                        (
                            "node_hwmon_update_interval_seconds",
                            "Hardware monitor update interval",
                            0.001,
                        )
                    };
                    let family = *families
                        .entry(name.to_owned())
                        .or_insert_with(|| out.gauge(name, help));
                    out.sample(family, &labels, value * scale);
                    continue;
                }
                let has_bare = elements.contains_key("");
                for (element, value) in elements {
                    if element == "label" {
                        continue;
                    }
                    let Ok(value) = value.parse::<f64>() else {
                        continue;
                    };
                    let (name, help, kind, scale) = describe(kind, element, has_bare);
                    let family = *families
                        .entry(name.clone())
                        .or_insert_with(|| out.family(&name, &help, kind));
                    out.sample(family, &labels, value * scale);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_file_names() {
        assert_eq!(
            split_sensor_file("temp1_crit_alarm"),
            Some(("temp", "1", "crit_alarm"))
        );
        assert_eq!(split_sensor_file("pwm2"), Some(("pwm", "2", "")));
        assert_eq!(split_sensor_file("fan1_input"), Some(("fan", "1", "input")));
        assert_eq!(
            split_sensor_file("update_interval"),
            Some(("update_interval", "", ""))
        );
        assert_eq!(split_sensor_file("name"), Some(("name", "", "")));
    }

    #[test]
    fn metric_names_follow_upstream() {
        assert_eq!(
            describe("temp", "input", false).0,
            "node_hwmon_temp_celsius"
        );
        assert_eq!(
            describe("temp", "crit_alarm", false).0,
            "node_hwmon_temp_crit_alarm_celsius"
        );
        assert_eq!(describe("fan", "min", false).0, "node_hwmon_fan_min_rpm");
        assert_eq!(describe("in", "input", false).3, 0.001);
        assert_eq!(
            describe("power", "average", false).0,
            "node_hwmon_power_average_watt"
        );
        assert_eq!(describe("pwm", "", true).0, "node_hwmon_pwm");
        assert_eq!(describe("fan", "alarm", false).0, "node_hwmon_fan_alarm");
        assert_eq!(
            describe("freq", "input", false).0,
            "node_hwmon_freq_freq_mhz"
        );
        assert_eq!(clean_name("Package id 0\n"), "package_id_0");
    }
}
