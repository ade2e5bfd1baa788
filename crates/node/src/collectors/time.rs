//! `time`: the system clock, the local time zone offset and the kernel's clocksources.

use std::time::{SystemTime, UNIX_EPOCH};

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::{read, sys};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Time {
        clocksources: settings.paths.sys("devices/system/clocksource"),
    })
}

struct Time {
    /// `/sys/devices/system/clocksource`.
    clocksources: PathBuf,
}

impl Collector for Time {
    fn name(&self) -> &str {
        "time"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        out.gauge_value(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            now.as_secs_f64(),
        );
        if let Some((zone, offset)) = sys::local_zone(now.as_secs() as i64) {
            {
                let family = out.gauge(
                    "node_time_zone_offset_seconds",
                    "System time zone offset in seconds.",
                );
                out.sample(family, &[("time_zone", &zone)], offset as f64);
            }
        }
        let available = out.gauge(
            "node_time_clocksource_available_info",
            "Available clocksources read from '/sys/devices/system/clocksource'.",
        );
        let current = out.gauge(
            "node_time_clocksource_current_info",
            "Current clocksource read from '/sys/devices/system/clocksource'.",
        );
        let Ok(sources) = read::Entries::list(&self.clocksources, |n| n.starts_with("clocksource"))
        else {
            return Ok(());
        };
        for name in sources.names() {
            let device = &name["clocksource".len()..];
            let dir = sources.dir();
            for source in dir
                .attribute_at(&[name, "available_clocksource"])
                .unwrap_or_default()
                .split_ascii_whitespace()
            {
                out.sample(
                    available,
                    &[("clocksource", source), ("device", device)],
                    1.0,
                );
            }
            if let Some(source) = dir.attribute_at(&[name, "current_clocksource"]) {
                out.sample(
                    current,
                    &[("clocksource", &*source), ("device", device)],
                    1.0,
                );
            }
        }
        Ok(())
    }
}
