//! `bonding`: configured and active slaves of each Linux bonding master, from
//! `/sys/class/net/bonding_masters` and each slave's `bonding_slave/mii_status`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read::{self, AttributeDir};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Bonding {
        class: settings.paths.sys("class/net"),
    })
}

struct Bonding {
    /// `/sys/class/net`.
    class: PathBuf,
}

/// Slaves of one master: how many are configured, how many report their link up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Slaves {
    configured: u32,
    active: u32,
}

/// The link state of one slave. Kernels name a slave's directory below its master
/// `lower_<slave>`; older ones `slave_<slave>`.
fn mii_status(class: &AttributeDir, master: &str, slave: &str) -> Option<read::Text> {
    ["lower_", "slave_"].iter().find_map(|prefix| {
        let dir = read::StackText::format(format_args!("{prefix}{slave}"))?;
        class.attribute_at(&[master, dir.as_str(), "bonding_slave/mii_status"])
    })
}

/// Counts the slaves of every master named in `masters` (the text of `bonding_masters`).
/// A master whose `bonding/slaves` cannot be read (removed since the list was read) is left
/// out, and a slave without a readable state counts as configured but not active.
fn count(class: &AttributeDir, masters: &str) -> BTreeMap<String, Slaves> {
    let mut counts = BTreeMap::new();
    for master in masters.split_ascii_whitespace() {
        let Some(slaves) = class.attribute_at(&[master, "bonding/slaves"]) else {
            tracing::debug!(collector = "bonding", master, "no bonding/slaves; skipped");
            continue;
        };
        let mut found = Slaves::default();
        for slave in slaves.split_ascii_whitespace() {
            found.configured += 1;
            match mii_status(class, master, slave) {
                Some(state) if state.trim() == "up" => found.active += 1,
                Some(_) => {}
                None => tracing::debug!(
                    collector = "bonding",
                    master,
                    slave,
                    "no bonding_slave/mii_status; counted as not active"
                ),
            }
        }
        counts.insert(master.to_owned(), found);
    }
    counts
}

impl Collector for Bonding {
    fn name(&self) -> &str {
        "bonding"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let masters = read::file_or_no_data(&self.class.join("bonding_masters"))?;
        let class = AttributeDir::open(&self.class).ok_or(CollectError::NoData)?;
        let counts = count(&class, &masters);
        let slaves = out.gauge(
            "node_bonding_slaves",
            "Number of configured slaves per bonding interface.",
        );
        let active = out.gauge(
            "node_bonding_active",
            "Number of active slaves per bonding interface.",
        );
        for (master, found) in &counts {
            let labels = [("master", master.as_str())];
            out.sample(slaves, &labels, f64::from(found.configured));
            out.sample(active, &labels, f64::from(found.active));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &std::path::Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn counts_configured_and_up_slaves_under_both_directory_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "bond0/bonding/slaves", "\n");
        write(root, "dmz/bonding/slaves", "eth0 eth4\n");
        write(root, "dmz/slave_eth0/bonding_slave/mii_status", "up\n");
        write(root, "dmz/lower_eth4/bonding_slave/mii_status", "up\n");
        write(root, "int/bonding/slaves", "eth1 eth5 eth9\n");
        write(root, "int/slave_eth1/bonding_slave/mii_status", "down\n");
        write(root, "int/slave_eth5/bonding_slave/mii_status", "up\n");
        let class = AttributeDir::open(root).unwrap();
        let counts = count(&class, "bond0 dmz int gone\n");
        let get = |name: &str| counts.get(name).copied();
        let slaves = |configured, active| Some(Slaves { configured, active });
        assert_eq!(get("bond0"), slaves(0, 0));
        assert_eq!(get("dmz"), slaves(2, 2));
        // eth9 has no state: configured, not active.
        assert_eq!(get("int"), slaves(3, 1));
        assert_eq!(get("gone"), None);
    }
}
