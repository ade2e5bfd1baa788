//! `watchdog`: the state of each watchdog device in `/sys/class/watchdog/`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::go_text::int_any_base;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Watchdog {
        root: settings.paths.sys("class/watchdog"),
    })
}

struct Watchdog {
    /// `/sys/class/watchdog`.
    root: PathBuf,
}

/// The numeric attributes: file, family name and the file named in the help text.
const NUMBERS: [(&str, &str); 7] = [
    ("bootstatus", "node_watchdog_bootstatus"),
    ("fw_version", "node_watchdog_fw_version"),
    ("nowayout", "node_watchdog_nowayout"),
    ("timeleft", "node_watchdog_timeleft_seconds"),
    ("timeout", "node_watchdog_timeout_seconds"),
    ("pretimeout", "node_watchdog_pretimeout_seconds"),
    ("access_cs0", "node_watchdog_access_cs0"),
];

/// The text attributes, each a label of `node_watchdog_info` named as the file.
const TEXTS: [&str; 5] = [
    "options",
    "identity",
    "state",
    "status",
    "pretimeout_governor",
];

impl Collector for Watchdog {
    fn name(&self) -> &str {
        "watchdog"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let entries = read::Entries::list(&self.root, |_| true)?;
        let numbers = NUMBERS.map(|(file, family)| {
            let help = format!("Value of /sys/class/watchdog/<watchdog>/{file}");
            (file, out.gauge(family, &help))
        });
        let info = out.gauge(
            "node_watchdog_info",
            "Info of /sys/class/watchdog/<watchdog>",
        );
        for name in entries.names() {
            let Some(dir) = entries.dir().open_at(&[name]) else {
                continue;
            };
            for (file, family) in &numbers {
                // A missing attribute is a feature the driver lacks; one that does not
                // read as a number is left out rather than reported as 0.
                if let Some(value) = dir.attribute(file).and_then(|t| int_any_base(&t)) {
                    out.sample(*family, &[("name", name)], value as f64);
                }
            }
            let texts = TEXTS.map(|file| dir.attribute(file));
            let mut labels = vec![("name", name)];
            for (file, text) in TEXTS.iter().zip(&texts) {
                labels.push((file, text.as_deref().map_or("", str::trim)));
            }
            out.sample(info, &labels, 1.0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::collectors::testing::series;

    #[test]
    fn devices_with_and_without_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("watchdog0");
        std::fs::create_dir_all(&full).unwrap();
        std::fs::create_dir_all(dir.path().join("watchdog1")).unwrap();
        for (file, text) in [
            ("bootstatus", "1\n"),
            ("options", "0x8380\n"),
            ("identity", "Software Watchdog\n"),
            ("state", "active\n"),
            ("timeout", "60\n"),
            ("timeleft", "not a number\n"),
        ] {
            std::fs::write(full.join(file), text).unwrap();
        }
        let collector = Watchdog {
            root: dir.path().to_path_buf(),
        };
        let mut out = MetricSet::default();
        let ctx = ScrapeContext::with_budget(Duration::from_secs(5));
        collector.collect(&ctx, &mut out).unwrap();
        assert_eq!(
            series(&mut out),
            [
                "node_watchdog_bootstatus{name=watchdog0} 1",
                "node_watchdog_timeout_seconds{name=watchdog0} 60",
                "node_watchdog_info{identity=Software Watchdog,name=watchdog0,options=0x8380,pretimeout_governor=,state=active,status=} 1",
                "node_watchdog_info{identity=,name=watchdog1,options=,pretimeout_governor=,state=,status=} 1",
            ]
        );
    }
}
