//! `selinux`: whether SELinux is enabled and, if so, its configured and current modes.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Selinux {
        enforce: settings.paths.sys("fs/selinux/enforce"),
        config: settings.paths.root("/etc/selinux/config"),
    })
}

struct Selinux {
    /// `/sys/fs/selinux/enforce`.
    enforce: PathBuf,
    /// `/etc/selinux/config`.
    config: PathBuf,
}

/// `SELINUX=` of `/etc/selinux/config` as the mode number: 1 enforcing, 0 permissive,
/// -1 disabled.
fn config_mode(text: &str) -> Option<f64> {
    let value = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("SELINUX="))?;
    match value.trim().trim_matches('"') {
        "enforcing" => Some(1.0),
        "permissive" => Some(0.0),
        "disabled" => Some(-1.0),
        _ => None,
    }
}

impl Collector for Selinux {
    fn name(&self) -> &str {
        "selinux"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // SELinux is on when its filesystem is mounted and answers.
        let Some(current) = read::attribute_value::<f64>(&self.enforce) else {
            out.gauge_value(
                "node_selinux_enabled",
                "SELinux is enabled, 1 is true, 0 is false",
                0.0,
            );
            return Ok(());
        };
        out.gauge_value(
            "node_selinux_enabled",
            "SELinux is enabled, 1 is true, 0 is false",
            1.0,
        );
        out.gauge_value(
            "node_selinux_current_mode",
            "Current SELinux enforcement mode",
            current,
        );
        let config = read::optional_trimmed(&self.config).unwrap_or_default();
        if let Some(mode) = config_mode(&config) {
            out.gauge_value(
                "node_selinux_config_mode",
                "Configured SELinux enforcement mode",
                mode,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_modes() {
        assert_eq!(
            super::config_mode("# c\nSELINUX=enforcing\nSELINUXTYPE=targeted\n"),
            Some(1.0)
        );
        assert_eq!(super::config_mode("SELINUX=disabled"), Some(-1.0));
        assert_eq!(super::config_mode(""), None);
    }
}
