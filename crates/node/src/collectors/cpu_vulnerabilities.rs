//! `cpu_vulnerabilities`: the kernel's verdict on each known CPU vulnerability, from
//! `/sys/devices/system/cpu/vulnerabilities/`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(CpuVulnerabilities {
        root: settings.paths.sys("devices/system/cpu/vulnerabilities"),
    })
}

struct CpuVulnerabilities {
    /// `/sys/devices/system/cpu/vulnerabilities`.
    root: PathBuf,
}

/// `(state, mitigation)` from a file's text: `Not affected`, `Vulnerable`,
/// `Mitigation: <how>`, `Unknown: <why>`; other text is state `unknown` with the text as
/// the mitigation.
fn verdict(text: &str) -> (&'static str, String) {
    let text = text.trim();
    let lower = text.to_lowercase();
    let rest = || {
        text.split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    if lower.starts_with("not affected") {
        ("not affected", String::new())
    } else if lower.starts_with("vulnerable") {
        ("vulnerable", rest())
    } else if lower.starts_with("mitigation") {
        ("mitigation", rest())
    } else if lower.starts_with("unknown") {
        ("unknown", rest())
    } else {
        ("unknown", text.to_string())
    }
}

impl Collector for CpuVulnerabilities {
    fn name(&self) -> &str {
        "cpu_vulnerabilities"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // Kernels before 4.15 have no such directory: nothing to report, not a failure.
        let entries = match read::Entries::list(&self.root, |_| true) {
            Ok(entries) => entries,
            Err(CollectError::NoData) => return Ok(()),
            Err(error) => return Err(error),
        };
        let family = out.gauge(
            "node_cpu_vulnerabilities_info",
            "Details of each CPU vulnerability reported by sysfs. The value of the series is an int encoded state of the vulnerability. The same state is stored as a string in the label",
        );
        for name in entries.names() {
            let Some(text) = entries.dir().optional_trimmed_at(&[name]) else {
                continue;
            };
            let (state, mitigation) = verdict(&text);
            let labels = [
                ("codename", name),
                ("state", state),
                ("mitigation", mitigation.as_str()),
            ];
            out.sample(family, &labels, 1.0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::verdict;

    #[test]
    fn verdicts() {
        assert_eq!(verdict("Not affected\n"), ("not affected", String::new()));
        assert_eq!(
            verdict("Vulnerable: Clear CPU buffers attempted, no microcode; SMT vulnerable\n"),
            (
                "vulnerable",
                "Clear CPU buffers attempted, no microcode; SMT vulnerable".to_string()
            )
        );
        assert_eq!(verdict("Vulnerable\n"), ("vulnerable", String::new()));
        assert_eq!(
            verdict("Mitigation: usercopy/swapgs barriers and __user pointer sanitization"),
            (
                "mitigation",
                "usercopy/swapgs barriers and __user pointer sanitization".to_string()
            )
        );
        assert_eq!(
            verdict("Processor vulnerable"),
            ("unknown", "Processor vulnerable".to_string())
        );
    }
}
