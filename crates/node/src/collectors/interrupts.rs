//! `interrupts` (off by default): `/proc/interrupts` per interrupt and CPU. On hosts with
//! many CPUs this is tens of thousands of series; `--collector.cpu.aggregate` sums CPUs.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::NameFilter;
use crate::read;

/// The interrupts collector's options.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "interrupts_options")]
pub struct Options {
    /// Regexp of interrupts to include, matched against `type;info;devices`
    /// (mutually exclusive to --collector.interrupts.name-exclude).
    #[arg(long = "collector.interrupts.name-include", value_name = "REGEX")]
    pub interrupts_name_include: Option<String>,
    /// Regexp of interrupts to exclude, matched against `type;info;devices`
    /// (mutually exclusive to --collector.interrupts.name-include).
    #[arg(long = "collector.interrupts.name-exclude", value_name = "REGEX")]
    pub interrupts_name_exclude: Option<String>,
    /// Report interrupt counts that are zero (default: enabled; --no-collector.interrupts.include-zeros drops them).
    #[arg(long = "collector.interrupts.include-zeros")]
    pub interrupts_include_zeros: bool,
    #[arg(long = "no-collector.interrupts.include-zeros", hide = true)]
    pub interrupts_no_include_zeros: bool,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options.interrupts;
    boxed(Interrupts {
        path: settings.paths.proc("interrupts"),
        aggregate: settings.options.cpu_aggregate,
        names: NameFilter::new(
            options.interrupts_name_include.as_deref(),
            options.interrupts_name_exclude.as_deref(),
            (
                "collector.interrupts.name-include",
                "collector.interrupts.name-exclude",
            ),
        )?,
        // Only the last of the two flags is left on the command line.
        include_zeros: !options.interrupts_no_include_zeros,
    })
}

struct Interrupts {
    path: PathBuf,
    aggregate: bool,
    /// Matched against `type;info;devices`, as upstream does.
    names: NameFilter,
    include_zeros: bool,
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
            let filter_name = format!(
                "{};{};{}",
                interrupt.kind, interrupt.info, interrupt.devices
            );
            if !self.names.accepts(&filter_name) {
                continue;
            }
            let labels = |cpu: &str| {
                [
                    ("cpu", cpu.to_owned()),
                    ("type", interrupt.kind.to_owned()),
                    ("info", interrupt.info.clone()),
                    ("devices", interrupt.devices.clone()),
                ]
            };
            if self.aggregate {
                let total: f64 = interrupt.counts.iter().sum();
                if total == 0.0 && !self.include_zeros {
                    continue;
                }
                let l = labels("all");
                let pairs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
                out.sample(family, &pairs, total);
                continue;
            }
            for (cpu, count) in interrupt.counts.iter().enumerate() {
                if *count == 0.0 && !self.include_zeros {
                    continue;
                }
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

    #[test]
    fn name_filter_and_zeros_as_upstream() {
        use kiln_registry::{Collector, MetricSet, ScrapeContext};

        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            file.path(),
            "           CPU0       CPU1\n  0:         33          0   IO-APIC   2-edge      timer\n  1:          5          6   IO-APIC   1-edge      i8042\n",
        )
        .unwrap();
        let collect = |names: crate::filter::NameFilter, include_zeros: bool| {
            let collector = super::Interrupts {
                path: file.path().to_owned(),
                aggregate: false,
                names,
                include_zeros,
            };
            let mut out = MetricSet::default();
            let ctx =
                ScrapeContext::new(std::time::Instant::now() + std::time::Duration::from_secs(5));
            collector.collect(&ctx, &mut out).unwrap();
            out.seal();
            let mut text = String::new();
            kiln_registry::metrics::encode(
                &[&out],
                kiln_registry::metrics::Format::Text,
                &mut text,
            );
            text.lines().filter(|l| !l.starts_with('#')).count()
        };
        assert_eq!(collect(crate::filter::NameFilter::All, true), 4);
        // The zero count of interrupt 0 on CPU1 is left out.
        assert_eq!(collect(crate::filter::NameFilter::All, false), 3);
        // Matched against `type;info;devices`.
        let timer = regex::Regex::new("^0;IO-APIC 2-edge;timer$").unwrap();
        assert_eq!(
            collect(crate::filter::NameFilter::Include(timer.clone()), true),
            2
        );
        assert_eq!(collect(crate::filter::NameFilter::Exclude(timer), true), 2);
    }
}
