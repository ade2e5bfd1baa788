//! `thermal_zone`: thermal zone temperatures and cooling device states from
//! `/sys/class/thermal/`.

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::paths::Paths;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(ThermalZone {
        paths: settings.paths.clone(),
    })
}

struct ThermalZone {
    paths: Paths,
}

impl Collector for ThermalZone {
    fn name(&self) -> &str {
        "thermal_zone"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let entries = read::dir_entries(&self.paths.sys("class/thermal"), |_| true)?;
        let temp = out.gauge("node_thermal_zone_temp", "Zone temperature in Celsius");
        let cur = out.gauge(
            "node_cooling_device_cur_state",
            "Current throttle state of the cooling device",
        );
        let max = out.gauge(
            "node_cooling_device_max_state",
            "Maximum throttle state of the cooling device",
        );
        for (name, dir) in entries {
            // A sensor behind a slow bus must not eat the whole scrape.
            if ctx.expired() {
                break;
            }
            let kind = read::attribute(&dir.join("type")).unwrap_or_default();
            if let Some(zone) = name.strip_prefix("thermal_zone") {
                // Reading a zone whose sensor is off answers an error: skip it.
                if let Some(millidegrees) = read::attribute_value::<f64>(&dir.join("temp")) {
                    out.sample(
                        temp,
                        &[("zone", zone), ("type", &kind)],
                        millidegrees / 1000.0,
                    );
                }
            } else if let Some(device) = name.strip_prefix("cooling_device") {
                let labels = [("name", device), ("type", kind.as_str())];
                if let Some(state) = read::attribute_value::<f64>(&dir.join("cur_state")) {
                    out.sample(cur, &labels, state);
                }
                if let Some(state) = read::attribute_value::<f64>(&dir.join("max_state")) {
                    out.sample(max, &labels, state);
                }
            }
        }
        Ok(())
    }
}
