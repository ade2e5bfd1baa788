//! `powersupplyclass`: batteries, mains adapters and UPS-backed supplies from
//! `/sys/class/power_supply/`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, MetricType, ScrapeContext};
use regex::Regex;

use super::{Settings, boxed};
use crate::{filter, read};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(PowerSupplyClass {
        root: settings.paths.sys("class/power_supply"),
        ignored: filter::regex(
            "collector.powersupply.ignored-supplies",
            &settings.options.powersupply_ignored,
        )?,
    })
}

struct PowerSupplyClass {
    /// `/sys/class/power_supply`.
    root: PathBuf,
    ignored: Regex,
}

/// `(sysfs attribute, metric suffix, divisor)`: sysfs gives micro-units (µA, µV, µWh,
/// µW) and tenths of a degree.
const NUMBERS: &[(&str, &str, f64)] = &[
    ("authentic", "authentic", 1.0),
    ("calibrate", "calibrate", 1.0),
    ("capacity", "capacity", 1.0),
    ("capacity_alert_max", "capacity_alert_max", 1.0),
    ("capacity_alert_min", "capacity_alert_min", 1.0),
    ("cycle_count", "cyclecount", 1.0),
    ("online", "online", 1.0),
    ("present", "present", 1.0),
    ("time_to_empty_now", "time_to_empty_seconds", 1.0),
    ("time_to_full_now", "time_to_full_seconds", 1.0),
    ("current_boot", "current_boot", 1e6),
    ("current_max", "current_max", 1e6),
    ("current_now", "current_ampere", 1e6),
    ("energy_empty", "energy_empty", 1e6),
    ("energy_empty_design", "energy_empty_design", 1e6),
    ("energy_full", "energy_full", 1e6),
    ("energy_full_design", "energy_full_design", 1e6),
    ("energy_now", "energy_watthour", 1e6),
    ("voltage_boot", "voltage_boot", 1e6),
    ("voltage_max", "voltage_max", 1e6),
    ("voltage_max_design", "voltage_max_design", 1e6),
    ("voltage_min", "voltage_min", 1e6),
    ("voltage_min_design", "voltage_min_design", 1e6),
    ("voltage_now", "voltage_volt", 1e6),
    ("voltage_ocv", "voltage_ocv", 1e6),
    ("charge_control_limit", "charge_control_limit", 1e6),
    ("charge_control_limit_max", "charge_control_limit_max", 1e6),
    ("charge_counter", "charge_counter", 1e6),
    ("charge_empty", "charge_empty", 1e6),
    ("charge_empty_design", "charge_empty_design", 1e6),
    ("charge_full", "charge_full", 1e6),
    ("charge_full_design", "charge_full_design", 1e6),
    ("charge_now", "charge_ampere", 1e6),
    ("charge_term_current", "charge_term_current", 1e6),
    ("constant_charge_current", "constant_charge_current", 1e6),
    (
        "constant_charge_current_max",
        "constant_charge_current_max",
        1e6,
    ),
    ("constant_charge_voltage", "constant_charge_voltage", 1e6),
    (
        "constant_charge_voltage_max",
        "constant_charge_voltage_max",
        1e6,
    ),
    ("precharge_current", "precharge_current", 1e6),
    ("input_current_limit", "input_current_limit", 1e6),
    ("power_now", "power_watt", 1e6),
    ("temp", "temp_celsius", 10.0),
    ("temp_alert_max", "temp_alert_max_celsius", 10.0),
    ("temp_alert_min", "temp_alert_min_celsius", 10.0),
    ("temp_ambient", "temp_ambient_celsius", 10.0),
    ("temp_ambient_max", "temp_ambient_max_celsius", 10.0),
    ("temp_ambient_min", "temp_ambient_min_celsius", 10.0),
    ("temp_max", "temp_max_celsius", 10.0),
    ("temp_min", "temp_min_celsius", 10.0),
];

/// Text attributes that become labels of `node_power_supply_info`.
const TEXTS: [&str; 11] = [
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
    "scope",
];

impl Collector for PowerSupplyClass {
    fn name(&self) -> &str {
        "powersupplyclass"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let supplies = read::Entries::list(&self.root, |name| !self.ignored.is_match(name))?;
        let families: Vec<FamilyId> = NUMBERS
            .iter()
            .map(|(_, suffix, _)| {
                out.family_fmt(
                    format_args!("node_power_supply_{suffix}"),
                    format_args!("{suffix} value of /sys/class/power_supply/<power_supply>."),
                    MetricType::Gauge,
                )
            })
            .collect();
        let mut infos = Vec::new();
        for name in supplies.names() {
            let dir = supplies.dir().open_at(&[name]);
            for ((file, _, divisor), family) in NUMBERS.iter().zip(&families) {
                if let Some(value) = dir.as_ref().and_then(|d| d.attribute_value::<f64>(file)) {
                    out.sample(*family, &[("power_supply", name)], value / divisor);
                }
            }
            // Each supply has its own label set (only the attributes it has), as upstream.
            let mut labels = vec![("power_supply".to_owned(), name.to_owned())];
            for text in TEXTS {
                if let Some(value) = dir
                    .as_ref()
                    .and_then(|d| d.attribute(text))
                    .filter(|v| !v.is_empty())
                {
                    labels.push((text.to_owned(), value.to_string()));
                }
            }
            infos.push(labels);
        }
        let info = out.gauge(
            "node_power_supply_info",
            "info of /sys/class/power_supply/<power_supply>.",
        );
        for labels in &infos {
            let labels: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            out.sample(info, &labels, 1.0);
        }
        Ok(())
    }
}
