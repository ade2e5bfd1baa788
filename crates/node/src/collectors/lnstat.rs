//! `lnstat`: the per-CPU network cache statistics of `/proc/net/stat/*` (`arp_cache`,
//! `ndisc_cache`, `nf_conntrack`, …), what `lnstat` shows: one family per column.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Lnstat {
        dir: settings.paths.proc("net/stat"),
    })
}

struct Lnstat {
    /// `/proc/net/stat`.
    dir: PathBuf,
}

/// One file's table: the header's column names, and per CPU (one line each, in order)
/// the hexadecimal values.
#[derive(Debug, Default, PartialEq)]
struct Table<'a> {
    columns: Vec<&'a str>,
    cpus: Vec<Vec<u64>>,
    /// Lines that were not all hexadecimal numbers, or had more values than columns.
    skipped: usize,
}

/// Whether a column name can be part of a metric name as it is.
fn is_metric_word(column: &str) -> bool {
    !column.is_empty()
        && column
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn parse(text: &str) -> Table<'_> {
    let mut lines = text.lines();
    let mut table = Table {
        columns: lines
            .next()
            .unwrap_or_default()
            .split_ascii_whitespace()
            .collect(),
        ..Table::default()
    };
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let values: Option<Vec<u64>> = line
            .split_ascii_whitespace()
            .map(|field| u64::from_str_radix(field, 16).ok())
            .collect();
        match values {
            Some(values) if values.len() <= table.columns.len() => table.cpus.push(values),
            _ => table.skipped += 1,
        }
    }
    table
}

impl Collector for Lnstat {
    fn name(&self) -> &str {
        "lnstat"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let entries = match read::Entries::list(&self.dir, |_| true) {
            Ok(entries) => entries,
            // No tables is nothing to report, and no failure (as node_exporter sees it).
            Err(CollectError::NoData) => return Ok(()),
            Err(error) => return Err(error),
        };
        let mut texts = Vec::with_capacity(entries.len());
        for name in entries.names() {
            let path = self.dir.join(name);
            texts.push((name, read::file(&path)?));
        }
        // Column name -> (file, cpu, value): files share column names (`entries`), and
        // each name is one family.
        let mut families: BTreeMap<&str, Vec<(&str, usize, u64)>> = BTreeMap::new();
        for (file, text) in &texts {
            let table = parse(text);
            if table.skipped > 0 {
                tracing::debug!(collector = "lnstat", file = %self.dir.join(file).display(), skipped = table.skipped, "malformed lines skipped");
            }
            for (index, column) in table.columns.iter().enumerate() {
                // A name repeated in one header would give its series twice.
                if !is_metric_word(column) || table.columns[..index].contains(column) {
                    continue;
                }
                let series = families.entry(column).or_default();
                for (cpu, values) in table.cpus.iter().enumerate() {
                    if let Some(&value) = values.get(index) {
                        series.push((file, cpu, value));
                    }
                }
            }
        }
        let mut cpu_text = itoa::Buffer::new();
        for (column, series) in &families {
            let family = out.family_fmt(
                format_args!("node_lnstat_{column}_total"),
                format_args!("linux network cache stats"),
                MetricType::Counter,
            );
            for &(file, cpu, value) in series {
                out.sample(
                    family,
                    &[("subsystem", file), ("cpu", cpu_text.format(cpu))],
                    value as f64,
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_per_file_one_line_per_cpu() {
        let text = "entries  allocs destroys\n00000014  00000001 00000002\n00000014  0000000d 0000000e\n\nzz 1 2\n1 2 3 4\n";
        let table = parse(text);
        assert_eq!(table.columns, ["entries", "allocs", "destroys"]);
        assert_eq!(table.cpus, [vec![20, 1, 2], vec![20, 13, 14]]);
        assert_eq!(table.skipped, 2);
    }

    #[test]
    fn column_names_fit_for_metric_names() {
        assert!(is_metric_word("hash_grows"));
        assert!(!is_metric_word("a-b"));
        assert!(!is_metric_word(""));
    }
}
