//! `interrupts` (off by default): `/proc/interrupts` per interrupt and CPU. On hosts with
//! many CPUs this is tens of thousands of series; `--collector.cpu.aggregate` sums CPUs.

use std::collections::HashMap;
use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::NameFilter;
use crate::read;

/// The interrupts collector's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Regexp of interrupts to report, matched against `name;info;devices` (mutually
    /// exclusive to --collector.interrupts.name-exclude).
    #[arg(long = "collector.interrupts.name-include", value_name = "REGEX")]
    pub name_include: Option<String>,
    /// Regexp of interrupts to leave out, matched against `name;info;devices` (mutually
    /// exclusive to --collector.interrupts.name-include).
    #[arg(long = "collector.interrupts.name-exclude", value_name = "REGEX")]
    pub name_exclude: Option<String>,
    /// Report interrupts that have a zero count (default: enabled).
    #[arg(
        long = "collector.interrupts.include-zeros",
        overrides_with = "no_include_zeros"
    )]
    pub include_zeros: bool,
    #[arg(
        long = "no-collector.interrupts.include-zeros",
        hide = true,
        overrides_with = "include_zeros"
    )]
    pub no_include_zeros: bool,
}

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options.interrupts;
    // An empty pattern is no pattern, as node_exporter reads these flags.
    let pattern = |p: &Option<String>| p.clone().filter(|p| !p.is_empty());
    let (include, exclude) = (
        pattern(&options.name_include),
        pattern(&options.name_exclude),
    );
    boxed(Interrupts {
        path: settings.paths.proc("interrupts"),
        aggregate: settings.options.cpu_aggregate,
        names: NameFilter::new(
            include.as_deref(),
            exclude.as_deref(),
            (
                "collector.interrupts.name-include",
                "collector.interrupts.name-exclude",
            ),
        )?,
        include_zeros: options.include_zeros || !options.no_include_zeros,
    })
}

struct Interrupts {
    path: PathBuf,
    aggregate: bool,
    /// Which interrupts to report, by `name;info;devices`.
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

impl Interrupt<'_> {
    /// The labels of this interrupt's count on `cpu`.
    fn labels<'a>(&'a self, cpu: &'a str) -> [(&'static str, &'a str); 4] {
        [
            ("cpu", cpu),
            ("type", self.kind),
            ("info", &self.info),
            ("devices", &self.devices),
        ]
    }
}

/// Splits lines as node_exporter does. The header has a word per CPU; each line is a name,
/// `:`, a count per CPU, then details. A numbered interrupt's first detail word is its
/// `info` (the controller) and the rest its `devices`; a named one (`LOC: ... Local timer
/// interrupts`) has all its details as `info` and no devices. Lines without details
/// (`ERR:` and `MIS:` have one count for the whole machine) or with a count that is not a
/// number are left out; a name that comes twice keeps its last line.
fn parse(text: &str) -> Vec<Interrupt<'_>> {
    let mut lines = text.lines();
    let cpus = lines
        .next()
        .map(|header| header.split_ascii_whitespace().count())
        .unwrap_or(0);
    let mut interrupts: Vec<Interrupt<'_>> = Vec::new();
    let mut by_kind: HashMap<&str, usize> = HashMap::new();
    for line in lines {
        // No space may follow the name (aarch64 writes `IPI0:0 ...`): split at the colon.
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let parts: Vec<&str> = rest.split_ascii_whitespace().collect();
        if parts.len() <= cpus {
            continue;
        }
        let Ok(counts) = parts[..cpus]
            .iter()
            .map(|count| count.parse::<f64>())
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        let kind = name.trim_start();
        let details = &parts[cpus..];
        let (info, devices) = if kind.parse::<i64>().is_ok() {
            (details[0].to_owned(), details[1..].join(" "))
        } else {
            (details.join(" "), String::new())
        };
        let interrupt = Interrupt {
            kind,
            info,
            devices,
            counts,
        };
        match by_kind.get(kind) {
            Some(&index) => interrupts[index] = interrupt,
            None => {
                by_kind.insert(kind, interrupts.len());
                interrupts.push(interrupt);
            }
        }
    }
    interrupts
}

impl Collector for Interrupts {
    fn name(&self) -> &str {
        "interrupts"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let family = out.counter("node_interrupts_total", "Interrupt details.");
        let mut filter_name = String::new();
        for interrupt in parse(&text) {
            filter_name.clear();
            filter_name.push_str(interrupt.kind);
            filter_name.push(';');
            filter_name.push_str(&interrupt.info);
            filter_name.push(';');
            filter_name.push_str(&interrupt.devices);
            if !self.names.accepts(&filter_name) {
                continue;
            }
            if self.aggregate {
                let total = interrupt.counts.iter().sum();
                if self.include_zeros || total != 0.0 {
                    out.sample(family, &interrupt.labels("all"), total);
                }
                continue;
            }
            let mut id = itoa::Buffer::new();
            for (cpu, &count) in interrupt.counts.iter().enumerate() {
                if self.include_zeros || count != 0.0 {
                    out.sample(family, &interrupt.labels(id.format(cpu)), count);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_like_upstream() {
        // Lines of node_exporter's vendored `proc/interrupts` fixture.
        let text = "           CPU0       CPU1\n\
  0:         18          0  IR-IO-APIC-edge      timer\n\
 16:     328511     322879  IR-IO-APIC-fasteoi   ehci_hcd:usb1, mmc0\n\
LOC:  174326351  135776678   Local timer interrupts\n\
ERR:          0\n\
MIS:          0\n";
        let parsed = super::parse(text);
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].kind, "0");
        assert_eq!(parsed[0].info, "IR-IO-APIC-edge");
        assert_eq!(parsed[0].devices, "timer");
        assert_eq!(parsed[0].counts, [18.0, 0.0]);
        assert_eq!(parsed[1].devices, "ehci_hcd:usb1, mmc0");
        assert_eq!(parsed[2].kind, "LOC");
        assert_eq!(
            (parsed[2].info.as_str(), parsed[2].devices.as_str()),
            ("Local timer interrupts", "")
        );
        assert_eq!(parsed[2].counts, [174326351.0, 135776678.0]);
    }

    #[test]
    fn odd_lines() {
        let text = "  CPU0  CPU1\nIPI0:1 2 Rescheduling interrupts\n 3: x 1 GIC dev\n 4: 1 1 GIC a\n 4: 2 2 GIC b\n";
        let parsed = super::parse(text);
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            (parsed[0].kind, parsed[0].counts.as_slice()),
            ("IPI0", &[1.0, 2.0][..])
        );
        assert_eq!((parsed[1].kind, parsed[1].devices.as_str()), ("4", "b"));
    }
}
