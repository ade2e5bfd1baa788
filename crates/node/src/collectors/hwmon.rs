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

/// Splits `temp1_crit_alarm` into `("temp", Some(1), "crit_alarm")`, `pwm2` into
/// `("pwm", Some(2), "")` and `update_interval` into `("update_interval", None, "")`.
fn split_sensor_file(file: &str) -> Option<(&str, Option<u32>, &str)> {
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
        Some(element) if !element.is_empty() => element,
        None if rest.is_empty() => "",
        _ => return None,
    };
    if kind.is_empty() {
        return None;
    }
    let id = match id {
        "" => None,
        digits => Some(digits.parse().ok()?),
    };
    Some((kind, id, element))
}

/// The sensor a file belongs to, as upstream names it: the type and the number, `0` when
/// the file has none (`update_interval` is sensor `update_interval0`).
fn sensor_key(kind: &str, id: Option<u32>) -> String {
    format!("{kind}{}", id.unwrap_or(0))
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
            format!(
                "Hardware monitor for temperature ({})",
                if e.is_empty() { "input" } else { e }
            ),
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

/// Scales a raw value as upstream does: a factor below one is a division by its inverse
/// (`/ 1e6`, `* 0.001` as written upstream), so the floats come out bit for bit the same.
fn scaled(value: f64, scale: f64) -> f64 {
    if scale == 1e-6 {
        value / 1_000_000.0
    } else {
        value * scale
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

/// One `hwmonN` directory and the names it may be reported under.
struct ChipDir {
    dir: PathBuf,
    /// The name from the device path (or `name` file, or directory).
    base: String,
    /// The `name` file's content, trimmed; empty when there is none.
    name_file: String,
}

/// The `chip` label of every directory. Several hwmon directories can hang off one device
/// (a Wi-Fi card has one per radio, asus-nb-wmi one for fans and one for its WMI
/// sensors); where their base names collide each gets the `name` file's content as a
/// suffix, or the directory's own name where that does not tell them apart either.
fn unique_chip_names(dirs: &[ChipDir]) -> Vec<String> {
    let mut bases: BTreeMap<&str, usize> = BTreeMap::new();
    let mut named: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for d in dirs {
        *bases.entry(&d.base).or_default() += 1;
        *named.entry((&d.base, &d.name_file)).or_default() += 1;
    }
    dirs.iter()
        .map(|d| {
            if bases[d.base.as_str()] < 2 {
                return d.base.clone();
            }
            let mut suffix = clean_name(&d.name_file);
            if suffix.is_empty() || named[&(d.base.as_str(), d.name_file.as_str())] > 1 {
                suffix = d
                    .dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(clean_name)
                    .unwrap_or_default();
            }
            format!("{}_{suffix}", d.base)
        })
        .collect()
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
        data.entry(sensor_key(kind, id))
            .or_default()
            .insert(element.to_owned(), value.trim_matches('\n').to_owned());
    }
}

impl Collector for Hwmon {
    fn name(&self) -> &str {
        "hwmon"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut dirs = Vec::new();
        for (_, dir) in read::dir_entries(&self.root, |_| true)? {
            if !dir.is_dir() {
                continue;
            }
            let Some(base) = self.chip_name(&dir) else {
                continue;
            };
            let name_file = read::attribute(&dir.join("name"))
                .map(|n| n.trim().to_owned())
                .unwrap_or_default();
            dirs.push(ChipDir {
                dir,
                base,
                name_file,
            });
        }
        let chip_labels = unique_chip_names(&dirs);

        let mut families: BTreeMap<String, FamilyId> = BTreeMap::new();
        let chip_names = out.gauge(
            "node_hwmon_chip_names",
            "Annotation metric for human-readable chip names",
        );
        let sensor_labels = out.gauge("node_hwmon_sensor_label", "Label for given chip and sensor");
        for (entry, chip) in dirs.iter().zip(&chip_labels) {
            if ctx.expired() {
                tracing::warn!(
                    collector = "hwmon",
                    "Time budget spent; the remaining chips are skipped this scrape."
                );
                break;
            }
            if !self.chips.accepts(chip) {
                continue;
            }
            let dir = &entry.dir;
            let mut data = SensorData::new();
            read_sensors(dir, &mut data);
            // Older drivers keep their sensors under device/.
            read_sensors(&dir.join("device"), &mut data);
            let human = clean_name(&entry.name_file);
            if !human.is_empty() {
                out.sample(chip_names, &[("chip", chip), ("chip_name", &human)], 1.0);
            }
            for (sensor, elements) in &data {
                if !self.sensors.accepts(&format!("{chip};{sensor}")) {
                    continue;
                }
                let labels = [("chip", chip.as_str()), ("sensor", sensor.as_str())];
                if let Some(label) = elements.get("label") {
                    out.sample(
                        sensor_labels,
                        &[("chip", chip), ("sensor", sensor), ("label", label)],
                        1.0,
                    );
                }
                let kind = sensor.trim_end_matches(|c: char| c.is_ascii_digit());
                if let Some((name, help, value)) = single_value(kind, elements) {
                    let family = *families
                        .entry(name.to_owned())
                        .or_insert_with(|| out.gauge(name, help));
                    out.sample(family, &labels, value);
                    continue;
                }
                if matches!(kind, "beep_enable" | "vrm" | "update_interval") {
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
                    let (name, help, metric_type, scale) = describe(kind, element, has_bare);
                    // A frequency is reported under its label (`mclk`), and only with one.
                    let freq_label;
                    let sensor_label = if kind == "freq" && element == "input" {
                        let Some(label) = elements.get("label") else {
                            continue;
                        };
                        freq_label = clean_name(label);
                        freq_label.as_str()
                    } else {
                        sensor.as_str()
                    };
                    let family = *families
                        .entry(name.clone())
                        .or_insert_with(|| out.family(&name, &help, metric_type));
                    out.sample(
                        family,
                        &[("chip", chip.as_str()), ("sensor", sensor_label)],
                        scaled(value, scale),
                    );
                }
            }
        }
        Ok(())
    }
}

/// The sensors that are one value rather than a set of elements: whether the chip beeps,
/// the voltage regulator's version and the update interval.
fn single_value(
    kind: &str,
    elements: &BTreeMap<String, String>,
) -> Option<(&'static str, &'static str, f64)> {
    let raw = elements.get("");
    match kind {
        "beep_enable" => Some((
            "node_hwmon_beep_enabled",
            "Hardware beep enabled",
            if raw.map(String::as_str) == Some("1") {
                1.0
            } else {
                0.0
            },
        )),
        "vrm" => Some((
            "node_hwmon_voltage_regulator_version",
            "Hardware voltage regulator",
            raw?.parse().ok()?,
        )),
        "update_interval" => Some((
            "node_hwmon_update_interval_seconds",
            "Hardware monitor update interval",
            raw?.parse::<f64>().ok()? * 0.001,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_file_names() {
        assert_eq!(
            split_sensor_file("temp1_crit_alarm"),
            Some(("temp", Some(1), "crit_alarm"))
        );
        assert_eq!(split_sensor_file("pwm2"), Some(("pwm", Some(2), "")));
        assert_eq!(
            split_sensor_file("fan1_input"),
            Some(("fan", Some(1), "input"))
        );
        assert_eq!(
            split_sensor_file("update_interval"),
            Some(("update_interval", None, ""))
        );
        assert_eq!(split_sensor_file("name"), Some(("name", None, "")));
        assert_eq!(split_sensor_file("temp1_"), None);
        assert_eq!(sensor_key("update_interval", None), "update_interval0");
        assert_eq!(sensor_key("temp", Some(1)), "temp1");
    }

    #[test]
    fn colliding_chips_take_their_name_file_or_directory() {
        let chip = |dir: &str, base: &str, name_file: &str| ChipDir {
            dir: PathBuf::from(dir),
            base: base.into(),
            name_file: name_file.into(),
        };
        let dirs = [
            chip("/sys/class/hwmon/hwmon0", "platform_coretemp_0", "coretemp"),
            chip("/sys/class/hwmon/hwmon1", "platform_asus_nb_wmi", "asus"),
            chip(
                "/sys/class/hwmon/hwmon2",
                "platform_asus_nb_wmi",
                "asus_wmi_sensors",
            ),
            chip("/sys/class/hwmon/hwmon3", "pci_0000_01", "same"),
            chip("/sys/class/hwmon/hwmon4", "pci_0000_01", "same"),
        ];
        assert_eq!(
            unique_chip_names(&dirs),
            [
                "platform_coretemp_0",
                "platform_asus_nb_wmi_asus",
                "platform_asus_nb_wmi_asus_wmi_sensors",
                "pci_0000_01_hwmon3",
                "pci_0000_01_hwmon4",
            ]
        );
    }

    #[test]
    fn single_value_sensors() {
        let one = |raw: &str| BTreeMap::from([(String::new(), raw.to_owned())]);
        assert_eq!(
            single_value("beep_enable", &one("1")),
            Some(("node_hwmon_beep_enabled", "Hardware beep enabled", 1.0))
        );
        assert_eq!(single_value("beep_enable", &one("yes")).unwrap().2, 0.0);
        assert_eq!(
            single_value("update_interval", &one("1000")).unwrap().2,
            1.0
        );
        assert_eq!(single_value("vrm", &one("x")), None);
        assert_eq!(single_value("temp", &one("1")), None);
        assert_eq!(scaled(1_500_000.0, 1e-6), 1.5);
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
