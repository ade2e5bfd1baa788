//! `conntrack`: the netfilter connection tracking table's size and limit, and its
//! per-CPU statistics summed over CPUs.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let paths = &settings.paths;
    boxed(Conntrack {
        count: paths.proc("sys/net/netfilter/nf_conntrack_count"),
        max: paths.proc("sys/net/netfilter/nf_conntrack_max"),
        stat: paths.proc("net/stat/nf_conntrack"),
    })
}

struct Conntrack {
    count: PathBuf,
    max: PathBuf,
    /// Per-CPU statistics, in hexadecimal under a header line.
    stat: PathBuf,
}

/// Columns of `/proc/net/stat/nf_conntrack` we export, with their HELP.
const STATS: [(&str, &str); 8] = [
    ("found", "Number of searched entries which were successful."),
    (
        "invalid",
        "Number of packets seen which can not be tracked.",
    ),
    (
        "ignore",
        "Number of packets seen which are already connected to a conntrack entry.",
    ),
    ("insert", "Number of entries inserted into the list."),
    (
        "insert_failed",
        "Number of entries for which list insertion was attempted but failed.",
    ),
    (
        "drop",
        "Number of packets dropped due to conntrack failure.",
    ),
    (
        "early_drop",
        "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
    ),
    (
        "search_restart",
        "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
    ),
];

/// Sums each named column of the per-CPU hexadecimal table.
/// For each of [`STATS`], the sum over the per-CPU rows of its column, or `None` if the
/// header has no such column.
fn stat_sums(text: &str) -> [Option<f64>; STATS.len()] {
    let mut sums = [None; STATS.len()];
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return sums;
    };
    let mut columns = [None; STATS.len()];
    for (column, name) in header.split_ascii_whitespace().enumerate() {
        for (slot, (stat, _)) in columns.iter_mut().zip(STATS) {
            if slot.is_none() && name == stat {
                *slot = Some(column);
            }
        }
    }
    for (sum, column) in sums.iter_mut().zip(columns) {
        *sum = column.map(|_| 0.0);
    }
    for line in lines {
        for (column, field) in line.split_ascii_whitespace().enumerate() {
            for (sum, wanted) in sums.iter_mut().zip(columns) {
                if let (Some(sum), Some(wanted)) = (sum, wanted)
                    && wanted == column
                {
                    *sum += u64::from_str_radix(field, 16).unwrap_or(0) as f64;
                }
            }
        }
    }
    sums
}

impl Collector for Conntrack {
    fn name(&self) -> &str {
        "conntrack"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let count_path = &self.count;
        let count = read::file_or_no_data(count_path)?;
        let count: f64 = count
            .trim()
            .parse()
            .map_err(|e| read::malformed(count_path, e))?;
        let max_path = &self.max;
        let max: f64 = read::file(max_path)?
            .trim()
            .parse()
            .map_err(|e| read::malformed(max_path, e))?;
        out.gauge_value(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            count,
        );
        out.gauge_value(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
            max,
        );
        if let Some(text) = read::optional_trimmed(&self.stat) {
            for ((name, help), sum) in STATS.iter().zip(stat_sums(&text)) {
                if let Some(value) = sum {
                    let family = out.family_fmt(
                        format_args!("node_nf_conntrack_stat_{name}"),
                        format_args!("{help}"),
                        MetricType::Gauge,
                    );
                    out.sample(family, &[], value);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_the_per_cpu_rows() {
        let text = "entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n00000021  00000000 00000001 00000000 00000002 00000010 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000003\n00000021  00000000 00000001 00000000 00000000 0000000a 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000\n";
        let sums = super::stat_sums(text);
        let get = |name: &str| {
            let index = super::STATS.iter().position(|(n, _)| *n == name)?;
            sums[index]
        };
        assert_eq!(get("found"), Some(2.0));
        assert_eq!(get("ignore"), Some(26.0));
        assert_eq!(get("search_restart"), Some(3.0));
    }
}
