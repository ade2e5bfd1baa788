//! `softirqs`: software interrupts per CPU and kind, from `/proc/softirqs`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Softirqs {
        path: settings.paths.proc("softirqs"),
        aggregate: settings.options.cpu_aggregate,
    })
}

struct Softirqs {
    path: PathBuf,
    /// `--collector.cpu.aggregate`: one series per kind, summed over CPUs.
    aggregate: bool,
}

/// The kinds node_exporter reports, as the kernel names them.
const KINDS: [&str; 10] = [
    "HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU",
];

/// `(kind, count per CPU)` for each known kind, in the file's order. The first line (the
/// CPU heading) is skipped, as are kinds not in [`KINDS`], lines whose counts are not
/// all unsigned numbers and a kind named twice.
fn parse(text: &str) -> Vec<(&'static str, Vec<u64>)> {
    let mut kinds: Vec<(&'static str, Vec<u64>)> = Vec::new();
    for line in text.lines().skip(1) {
        let mut fields = line.split_ascii_whitespace();
        let Some(kind) = fields.next().and_then(|f| f.strip_suffix(':')) else {
            continue;
        };
        let Some(kind) = KINDS.iter().find(|k| **k == kind) else {
            continue;
        };
        let Ok(counts) = fields.map(str::parse).collect::<Result<Vec<u64>, _>>() else {
            continue;
        };
        if counts.is_empty() || kinds.iter().any(|(k, _)| k == kind) {
            continue;
        }
        kinds.push((kind, counts));
    }
    kinds
}

impl Collector for Softirqs {
    fn name(&self) -> &str {
        "softirqs"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        if text.is_empty() {
            return Err(read::malformed(&self.path, "empty"));
        }
        let family = out.counter("node_softirqs_functions_total", "Softirq counts per CPU.");
        for (kind, counts) in parse(&text) {
            if self.aggregate {
                let total: f64 = counts.iter().map(|&c| c as f64).sum();
                out.sample(family, &[("cpu", "all"), ("type", kind)], total);
                continue;
            }
            for (cpu, count) in counts.iter().enumerate() {
                let cpu = cpu.to_string();
                out.sample(
                    family,
                    &[("cpu", cpu.as_str()), ("type", kind)],
                    *count as f64,
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kinds_and_cpus() {
        let text = "                    CPU0       CPU1\n\
                    \x20         HI:          7          1\n\
                    \x20      TIMER:     424191     108342\n\
                    \x20     NEW_ONE:     1     2\n\
                    \x20      NET_TX:       x       2430\n\
                    \x20         HI:          9          9\n";
        assert_eq!(
            super::parse(text),
            [("HI", vec![7, 1]), ("TIMER", vec![424191, 108342])]
        );
    }

    #[test]
    fn per_cpu_or_summed() {
        use std::time::Duration;

        use kiln_registry::{Collector, MetricSet, ScrapeContext};

        use crate::collectors::testing::series;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("softirqs");
        std::fs::write(&path, "    CPU0 CPU1\n  HI:  7  1\n  RCU:  5  6\n").unwrap();
        let ctx = ScrapeContext::with_budget(Duration::from_secs(5));
        let mut out = MetricSet::default();
        let per_cpu = super::Softirqs {
            path: path.clone(),
            aggregate: false,
        };
        per_cpu.collect(&ctx, &mut out).unwrap();
        assert_eq!(
            series(&mut out),
            [
                "node_softirqs_functions_total{cpu=0,type=HI} 7",
                "node_softirqs_functions_total{cpu=1,type=HI} 1",
                "node_softirqs_functions_total{cpu=0,type=RCU} 5",
                "node_softirqs_functions_total{cpu=1,type=RCU} 6",
            ]
        );
        let mut out = MetricSet::default();
        let summed = super::Softirqs {
            path,
            aggregate: true,
        };
        summed.collect(&ctx, &mut out).unwrap();
        assert_eq!(
            series(&mut out),
            [
                "node_softirqs_functions_total{cpu=all,type=HI} 8",
                "node_softirqs_functions_total{cpu=all,type=RCU} 11",
            ]
        );
    }
}
