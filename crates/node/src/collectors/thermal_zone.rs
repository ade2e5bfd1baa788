//! `thermal_zone`: thermal zone temperatures and cooling device states from
//! `/sys/class/thermal/`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(ThermalZone {
        root: settings.paths.sys("class/thermal"),
    })
}

struct ThermalZone {
    /// `/sys/class/thermal`: zones and cooling devices.
    root: PathBuf,
}

impl Collector for ThermalZone {
    fn name(&self) -> &str {
        "thermal_zone"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let entries = read::Entries::list(&self.root, |_| true)?;
        let temp = out.gauge("node_thermal_zone_temp", "Zone temperature in Celsius");
        let cur = out.gauge(
            "node_cooling_device_cur_state",
            "Current throttle state of the cooling device",
        );
        let max = out.gauge(
            "node_cooling_device_max_state",
            "Maximum throttle state of the cooling device",
        );
        for name in entries.names() {
            // A sensor behind a slow bus must not eat the whole scrape.
            if ctx.expired() {
                break;
            }
            let Some(dir) = entries.dir().open_at(&[name]) else {
                continue;
            };
            let kind = dir.attribute("type").unwrap_or_default();
            if let Some(zone) = name.strip_prefix("thermal_zone") {
                // Reading a zone whose sensor is off answers an error: skip it.
                if let Some(millidegrees) = dir.attribute_value::<f64>("temp") {
                    out.sample(
                        temp,
                        &[("zone", zone), ("type", &*kind)],
                        millidegrees / 1000.0,
                    );
                }
            } else if let Some(device) = name.strip_prefix("cooling_device") {
                let labels = [("name", device), ("type", &*kind)];
                if let Some(state) = dir.attribute_value::<f64>("cur_state") {
                    out.sample(cur, &labels, state);
                }
                if let Some(state) = dir.attribute_value::<f64>("max_state") {
                    out.sample(max, &labels, state);
                }
            }
        }
        Ok(())
    }
}
