//! `buddyinfo`: free memory blocks per zone and block size, from `/proc/buddyinfo`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Buddyinfo {
        path: settings.paths.proc("buddyinfo"),
    })
}

struct Buddyinfo {
    path: PathBuf,
}

/// `(node, zone, free blocks per order)` for each line,
/// `Node 0, zone   Normal   4381   1093 …`. Lines of another shape are skipped, as is a
/// zone named twice (it would be a duplicate series).
fn parse(text: &str) -> Vec<(&str, &str, Vec<f64>)> {
    let mut zones: Vec<(&str, &str, Vec<f64>)> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 4 {
            continue;
        }
        let node = fields[1].trim_end_matches(',');
        let zone = fields[3].trim_end_matches(',');
        let Ok(sizes) = fields[4..]
            .iter()
            .map(|f| f.parse::<f64>())
            .collect::<Result<Vec<f64>, _>>()
        else {
            continue;
        };
        if zones.iter().any(|(n, z, _)| *n == node && *z == zone) {
            continue;
        }
        zones.push((node, zone, sizes));
    }
    zones
}

impl Collector for Buddyinfo {
    fn name(&self) -> &str {
        "buddyinfo"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let family = out.gauge(
            "node_buddyinfo_blocks",
            "Count of free blocks according to size.",
        );
        for (node, zone, sizes) in parse(&text) {
            for (order, count) in sizes.iter().enumerate() {
                let order = order.to_string();
                let labels = [("node", node), ("zone", zone), ("size", order.as_str())];
                out.sample(family, &labels, *count);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zones_and_orders() {
        let text = "Node 0, zone      DMA      1      0      1 \n\
                    Node 0, zone   Normal   4381   1093    185\n\
                    garbage\n\
                    Node 0, zone   Normal   1 2 3\n\
                    Node 1, zone   Normal   1 x 3\n";
        assert_eq!(
            super::parse(text),
            [
                ("0", "DMA", vec![1.0, 0.0, 1.0]),
                ("0", "Normal", vec![4381.0, 1093.0, 185.0]),
            ]
        );
    }
}
