//! `arp`: ARP (neighbour) table entries per device, from `/proc/net/arp`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::NameFilter;
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let options = &settings.options;
    boxed(Arp {
        path: settings.paths.proc("net/arp"),
        devices: NameFilter::new(
            options.arp_include.as_deref(),
            options.arp_exclude.as_deref(),
            (
                "collector.arp.device-include",
                "collector.arp.device-exclude",
            ),
        )?,
    })
}

struct Arp {
    path: PathBuf,
    devices: NameFilter,
}

/// Entries per device; the device is the last column.
fn count(text: &str) -> BTreeMap<&str, u64> {
    let mut entries = BTreeMap::new();
    for line in text.lines().skip(1) {
        if let Some(device) = line.split_ascii_whitespace().nth(5) {
            *entries.entry(device).or_default() += 1;
        }
    }
    entries
}

impl Collector for Arp {
    fn name(&self) -> &str {
        "arp"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let family = out.gauge("node_arp_entries", "ARP entries by device");
        for (device, entries) in count(&text) {
            if self.devices.accepts(device) {
                out.sample(family, &[("device", device)], entries as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_per_device() {
        let text = "IP address       HW type     Flags       HW address            Mask     Device\n192.168.1.1      0x1         0x2         cc:aa:dd:ee:aa:bb     *        eth0\n192.168.1.2      0x1         0x2         bb:cc:dd:ee:ff:aa     *        eth0\n10.0.0.1         0x1         0x2         aa:bb:cc:dd:ee:ff     *        eth1\n";
        let counts = super::count(text);
        assert_eq!(counts.get("eth0"), Some(&2));
        assert_eq!(counts.get("eth1"), Some(&1));
    }
}
