//! `interrupts` (off by default): `/proc/interrupts` per interrupt and CPU. On hosts with
//! many CPUs this is tens of thousands of series; `--collector.cpu.aggregate` sums CPUs.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Interrupts {
        path: settings.paths.proc("interrupts"),
        aggregate: settings.options.cpu_aggregate,
    })
}

struct Interrupts {
    path: PathBuf,
    aggregate: bool,
}

/// One interrupt line.
#[derive(Debug, PartialEq)]
struct Interrupt<'a> {
    kind: &'a str,
    info: String,
    devices: String,
    counts: Vec<f64>,
}

/// Splits lines as node_exporter does: after the per-CPU counts, the last word is the
/// device list and the words before it the info (so `NMI: 0 0 Non-maskable interrupts`
/// has info `Non-maskable`, devices `interrupts`).
fn parse(text: &str) -> Vec<Interrupt<'_>> {
    let mut lines = text.lines();
    let cpus = lines
        .next()
        .map(|header| header.split_ascii_whitespace().count())
        .unwrap_or(0);
    lines
        .filter_map(|line| {
            let parts: Vec<&str> = line.split_ascii_whitespace().collect();
            let kind = parts.first()?.strip_suffix(':')?;
            let (info, devices, counts) = if parts.len() == cpus + 2 {
                (
                    parts[parts.len() - 1].to_owned(),
                    String::new(),
                    &parts[1..=cpus],
                )
            } else if parts.len() > cpus + 2 {
                (
                    parts[cpus + 1..parts.len() - 1].join(" "),
                    parts[parts.len() - 1].to_owned(),
                    &parts[1..=cpus],
                )
            } else {
                (String::new(), String::new(), &parts[1..])
            };
            let counts = counts.iter().map(|c| c.parse().unwrap_or(0.0)).collect();
            Some(Interrupt {
                kind,
                info,
                devices,
                counts,
            })
        })
        .collect()
}

impl Collector for Interrupts {
    fn name(&self) -> &str {
        "interrupts"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let family = out.counter("node_interrupts_total", "Interrupt details.");
        for interrupt in parse(&text) {
            let labels = |cpu: &str| {
                [
                    ("cpu", cpu.to_owned()),
                    ("type", interrupt.kind.to_owned()),
                    ("info", interrupt.info.clone()),
                    ("devices", interrupt.devices.clone()),
                ]
            };
            if self.aggregate {
                let l = labels("all");
                let pairs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
                out.sample(family, &pairs, interrupt.counts.iter().sum());
                continue;
            }
            for (cpu, count) in interrupt.counts.iter().enumerate() {
                let l = labels(&cpu.to_string());
                let pairs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
                out.sample(family, &pairs, *count);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_like_upstream() {
        let text = "           CPU0       CPU1\n  0:         33          0   IO-APIC   2-edge      timer\nNMI:          0          0   Non-maskable interrupts\nERR:          0\n";
        let parsed = super::parse(text);
        assert_eq!(parsed[0].kind, "0");
        assert_eq!(parsed[0].info, "IO-APIC 2-edge");
        assert_eq!(parsed[0].devices, "timer");
        assert_eq!(parsed[0].counts, [33.0, 0.0]);
        assert_eq!(
            (parsed[1].info.as_str(), parsed[1].devices.as_str()),
            ("Non-maskable", "interrupts")
        );
        assert_eq!(parsed[2].counts, [0.0]);
    }
}
