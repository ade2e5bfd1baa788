//! `meminfo_numa`: memory statistics per NUMA node, from
//! `/sys/devices/system/node/node<N>/meminfo` and `numastat`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(MeminfoNuma {
        root: settings.paths.sys("devices/system/node"),
    })
}

struct MeminfoNuma {
    /// `/sys/devices/system/node`.
    root: PathBuf,
}

/// One value: the field (the family after `node_memory_numa_`), the node and the value.
#[derive(Debug, PartialEq)]
struct Reading {
    field: String,
    node: String,
    value: f64,
}

/// The lines of a node's `meminfo`, `Node 0 Active(anon):  1175853 kB`: the field is
/// named as node_exporter names it (`Active_anon`), kB become bytes. Lines of another
/// shape are skipped.
fn parse_meminfo(text: &str) -> Vec<Reading> {
    text.lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split_ascii_whitespace().collect();
            let value: f64 = parts.get(3)?.parse().ok()?;
            let value = match parts.len() {
                4 => value,
                5 if parts[4] == "kB" => value * 1024.0,
                _ => return None,
            };
            Some(Reading {
                field: field_name(parts[2].trim_end_matches(':')),
                node: parts[1].to_string(),
                value,
            })
        })
        .collect()
}

/// `Active(anon)` becomes `Active_anon`: the text from the first `(` to the last `)`
/// replaces that span, behind an `_`.
fn field_name(raw: &str) -> String {
    match (raw.find('('), raw.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            format!(
                "{}_{}{}",
                &raw[..open],
                &raw[open + 1..close],
                &raw[close + 1..]
            )
        }
        _ => raw.to_string(),
    }
}

/// The lines of a node's `numastat`, `numa_hit 193460335812`: counters named with
/// `_total`. Lines of another shape are skipped.
fn parse_numastat(text: &str, node: &str) -> Vec<Reading> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_ascii_whitespace();
            let (Some(name), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
                return None;
            };
            Some(Reading {
                field: format!("{name}_total"),
                node: node.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

impl Collector for MeminfoNuma {
    fn name(&self) -> &str {
        "meminfo_numa"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // Without NUMA support there are no nodes: nothing to report, not a failure.
        let listed = read::Entries::list(&self.root, |name| {
            name.strip_prefix("node")
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
        });
        let entries = match listed {
            Ok(entries) => entries,
            Err(CollectError::NoData) => return Ok(()),
            Err(error) => return Err(error),
        };
        let mut gauges = Vec::new();
        let mut counters = Vec::new();
        for dir in entries.names() {
            let number: String = dir["node".len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let meminfo = self.root.join(dir).join("meminfo");
            gauges.extend(parse_meminfo(&read::file(&meminfo)?));
            let numastat = self.root.join(dir).join("numastat");
            counters.extend(parse_numastat(&read::file(&numastat)?, &number));
        }
        // One family per field, with each node's value once.
        let mut families: Vec<(String, FamilyId, Vec<String>)> = Vec::new();
        for (readings, kind) in [(gauges, MetricType::Gauge), (counters, MetricType::Counter)] {
            for reading in readings {
                let index = match families.iter().position(|(f, ..)| *f == reading.field) {
                    Some(index) => index,
                    None => {
                        let family = out.family_fmt(
                            format_args!("node_memory_numa_{}", reading.field),
                            format_args!("Memory information field {}.", reading.field),
                            kind,
                        );
                        families.push((reading.field.clone(), family, Vec::new()));
                        families.len() - 1
                    }
                };
                let (_, family, nodes) = &mut families[index];
                if nodes.contains(&reading.node) {
                    continue;
                }
                out.sample(*family, &[("node", reading.node.as_str())], reading.value);
                nodes.push(reading.node);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_lines() {
        let text = "Node 0 MemTotal:       81410012 kB\n\
                    Node 0 Active(anon):    1 kB\n\
                    Node 0 HugePages_Total:     0\n\
                    Node 0 Broken: x kB\n\
                    Node 0 Odd: 1 MB\n\n";
        let readings = parse_meminfo(text);
        let fields: Vec<(&str, f64)> = readings
            .iter()
            .map(|r| (r.field.as_str(), r.value))
            .collect();
        assert_eq!(
            fields,
            [
                ("MemTotal", 81410012.0 * 1024.0),
                ("Active_anon", 1024.0),
                ("HugePages_Total", 0.0)
            ]
        );
        assert!(readings.iter().all(|r| r.node == "0"));
    }

    #[test]
    fn numastat_lines() {
        let readings = parse_numastat("numa_hit 193460335812\nbad\nother_node 1 2\n", "1");
        assert_eq!(
            readings,
            [Reading {
                field: "numa_hit_total".into(),
                node: "1".into(),
                value: 193460335812.0
            }]
        );
    }
}
