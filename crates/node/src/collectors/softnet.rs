//! `softnet`: per-CPU packet processing statistics from `/proc/net/softnet_stat`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Softnet {
        path: settings.paths.proc("net/softnet_stat"),
        aggregate: settings.options.cpu_aggregate,
    })
}

struct Softnet {
    path: PathBuf,
    aggregate: bool,
}

/// One line of the table: the CPU and its hexadecimal columns.
#[derive(Debug, PartialEq)]
struct CpuSoftnet {
    cpu: u64,
    processed: u64,
    dropped: u64,
    times_squeezed: u64,
    cpu_collision: u64,
    received_rps: u64,
    flow_limit_count: u64,
    backlog_len: u64,
}

fn parse(text: &str) -> Vec<CpuSoftnet> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            // Thirteen columns since Linux 5.10; later ones are not read.
            let mut values = [0u64; 13];
            let mut count = 0;
            for column in line.split_ascii_whitespace() {
                if let Some(slot) = values.get_mut(count) {
                    *slot = u64::from_str_radix(column, 16).unwrap_or(0);
                }
                count += 1;
            }
            let columns = &values[..count.min(values.len())];
            let at = |i: usize| columns.get(i).copied().unwrap_or(0);
            if count < 3 {
                return None;
            }
            // Since Linux 5.10 the 12th and 13th columns are the backlog length and the CPU
            // number (offline CPUs have no line); before, the line index stands for the CPU
            // and the backlog reads as 0, as node_exporter reports it.
            let newer = count >= 13;
            Some(CpuSoftnet {
                cpu: if newer { at(12) } else { index as u64 },
                processed: at(0),
                dropped: at(1),
                times_squeezed: at(2),
                cpu_collision: at(8),
                received_rps: at(9),
                flow_limit_count: at(10),
                backlog_len: if newer { at(11) } else { 0 },
            })
        })
        .collect()
}

impl Collector for Softnet {
    fn name(&self) -> &str {
        "softnet"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let cpus = parse(&read::file(&self.path)?);
        let mut counter = |name: &str, help: &str, value: fn(&CpuSoftnet) -> u64| {
            let family = out.counter(name, help);
            if self.aggregate {
                out.sample(
                    family,
                    &[("cpu", "all")],
                    cpus.iter().map(value).sum::<u64>() as f64,
                );
            } else {
                let mut id = itoa::Buffer::new();
                for cpu in &cpus {
                    out.sample(family, &[("cpu", id.format(cpu.cpu))], value(cpu) as f64);
                }
            }
        };
        counter(
            "node_softnet_processed_total",
            "Number of processed packets",
            |c| c.processed,
        );
        counter(
            "node_softnet_dropped_total",
            "Number of dropped packets",
            |c| c.dropped,
        );
        counter(
            "node_softnet_times_squeezed_total",
            "Number of times processing packets ran out of quota",
            |c| c.times_squeezed,
        );
        counter(
            "node_softnet_cpu_collision_total",
            "Number of collision occur while obtaining device lock while transmitting",
            |c| c.cpu_collision,
        );
        counter(
            "node_softnet_received_rps_total",
            "Number of times cpu woken up received_rps",
            |c| c.received_rps,
        );
        counter(
            "node_softnet_flow_limit_count_total",
            "Number of times flow limit has been reached",
            |c| c.flow_limit_count,
        );

        let backlog = out.gauge("node_softnet_backlog_len", "Softnet backlog status");
        if self.aggregate {
            let total = cpus.iter().map(|c| c.backlog_len).sum::<u64>();
            out.sample(backlog, &[("cpu", "all")], total as f64);
        } else {
            let mut id = itoa::Buffer::new();
            for cpu in &cpus {
                out.sample(
                    backlog,
                    &[("cpu", id.format(cpu.cpu))],
                    cpu.backlog_len as f64,
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_and_cpu_numbers() {
        let text = "00000031 00000001 00000002 00000000 00000000 00000000 00000000 00000000 00000003 00000004 00000005 00000000 00000000\n00000965 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000002\n";
        let cpus = super::parse(text);
        assert_eq!(cpus.len(), 2);
        assert_eq!(
            (
                cpus[0].cpu,
                cpus[0].processed,
                cpus[0].dropped,
                cpus[0].times_squeezed
            ),
            (0, 49, 1, 2)
        );
        assert_eq!(
            (
                cpus[0].cpu_collision,
                cpus[0].received_rps,
                cpus[0].flow_limit_count
            ),
            (3, 4, 5)
        );
        assert_eq!((cpus[1].cpu, cpus[1].backlog_len), (2, 1));
        let old_kernel = super::parse("00000031 00000001 00000002\n00000001 00000000 00000000\n");
        assert_eq!((old_kernel[1].cpu, old_kernel[1].backlog_len), (1, 0));
        // Eleven columns, as in node_exporter's fixture: no backlog column, CPUs by line.
        let eleven = "00049279 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n\
000dfb82 00000029 0000000a 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n";
        let cpus = super::parse(eleven);
        assert_eq!(
            (cpus[1].cpu, cpus[1].dropped, cpus[1].backlog_len),
            (1, 0x29, 0)
        );
    }
}
