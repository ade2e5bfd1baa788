//! `conntrack`: the netfilter connection tracking table's size and limit, and its
//! per-CPU statistics summed over CPUs.

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::paths::Paths;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Conntrack {
        paths: settings.paths.clone(),
    })
}

struct Conntrack {
    paths: Paths,
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
fn parse_stats(text: &str) -> Vec<(String, f64)> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let names: Vec<&str> = header.split_ascii_whitespace().collect();
    let mut sums = vec![0.0; names.len()];
    for line in lines {
        for (sum, field) in sums.iter_mut().zip(line.split_ascii_whitespace()) {
            *sum += u64::from_str_radix(field, 16).unwrap_or(0) as f64;
        }
    }
    names.into_iter().map(str::to_owned).zip(sums).collect()
}

impl Collector for Conntrack {
    fn name(&self) -> &str {
        "conntrack"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let count_path = self.paths.proc("sys/net/netfilter/nf_conntrack_count");
        let count = read::file_or_no_data(&count_path)?;
        let count: f64 = count
            .trim()
            .parse()
            .map_err(|e| read::malformed(&count_path, e))?;
        let max_path = self.paths.proc("sys/net/netfilter/nf_conntrack_max");
        let max: f64 = read::file(&max_path)?
            .trim()
            .parse()
            .map_err(|e| read::malformed(&max_path, e))?;
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
        if let Some(text) = read::optional_trimmed(&self.paths.proc("net/stat/nf_conntrack")) {
            let stats = parse_stats(&text);
            for (name, help) in STATS {
                if let Some((_, value)) = stats.iter().find(|(n, _)| n == name) {
                    let family = out.family_fmt(
                        format_args!("node_nf_conntrack_stat_{name}"),
                        format_args!("{help}"),
                        MetricType::Gauge,
                    );
                    out.sample(family, &[], *value);
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
        let stats = super::parse_stats(text);
        let get = |name: &str| stats.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        assert_eq!(get("found"), Some(2.0));
        assert_eq!(get("ignore"), Some(26.0));
        assert_eq!(get("search_restart"), Some(3.0));
    }
}
