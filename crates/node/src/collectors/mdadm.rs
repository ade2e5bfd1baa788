//! `mdadm`: software RAID arrays from `/proc/mdstat`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Mdadm {
        path: settings.paths.proc("mdstat"),
        block: settings.paths.sys("block"),
    })
}

struct Mdadm {
    path: PathBuf,
    /// `/sys/block`: an array's `md*/md` directory tells its disk count and degraded disks.
    block: PathBuf,
}

/// What an array's sysfs directory (`/sys/block/<md>/md`) says about its disks.
#[derive(Debug, PartialEq)]
struct Members {
    /// `raid_disks`: the disks of the array when whole; `None` for containers (imsm, ddf)
    /// and where the file is empty or unreadable.
    raid_disks: Option<f64>,
    /// `degraded`: the missing disks, kept by the levels with redundancy only (else 0).
    degraded: f64,
}

/// Reads `/sys/block/<md>/md`; `None` without a readable `level`, which every array has.
fn members(dir: &read::AttributeDir) -> Option<Members> {
    let level = dir.attribute("level")?;
    let level = level.trim();
    let raid_disks = match level {
        "" | "container" | "imsm" | "ddf" => None,
        // While an array reshapes the file reads `<new> (<old>)`.
        _ => dir
            .attribute("raid_disks")
            .and_then(|text| text.split_ascii_whitespace().next()?.parse().ok()),
    };
    let degraded = match level {
        "raid1" | "raid4" | "raid5" | "raid6" | "raid10" => {
            dir.attribute_value("degraded").unwrap_or(0.0)
        }
        _ => 0.0,
    };
    Some(Members {
        raid_disks,
        degraded,
    })
}

/// One array.
#[derive(Debug, PartialEq, Default)]
struct Array {
    name: String,
    state: &'static str,
    disks_active: f64,
    disks_failed: f64,
    disks_spare: f64,
    disks_required: f64,
    blocks: f64,
    blocks_synced: f64,
}

/// The numbers in `[total/active]`.
fn disk_counts(line: &str) -> Option<(f64, f64)> {
    let start = line.find('[')?;
    let inner = &line[start + 1..start + line[start..].find(']')?];
    let (total, active) = inner.split_once('/')?;
    Some((total.parse().ok()?, active.parse().ok()?))
}

/// `(synced/total)` of a sync progress line.
fn synced_blocks(line: &str) -> Option<f64> {
    let start = line.find('(')?;
    let inner = &line[start + 1..start + line[start..].find(')')?];
    inner.split_once('/')?.0.parse().ok()
}

fn parse(text: &str) -> Vec<Array> {
    let lines: Vec<&str> = text.lines().collect();
    let mut arrays = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some((name, rest)) = line.split_once(" : ") else {
            continue;
        };
        let name = name.trim();
        if !name.starts_with("md") {
            continue;
        }
        let mut words = rest.split_ascii_whitespace();
        let activity = words.next().unwrap_or_default();
        let members: Vec<&str> = words.filter(|w| w.contains('[')).collect();
        let mut array = Array {
            name: name.to_owned(),
            disks_failed: members.iter().filter(|m| m.ends_with("(F)")).count() as f64,
            disks_spare: members.iter().filter(|m| m.ends_with("(S)")).count() as f64,
            ..Array::default()
        };
        let status = lines.get(index + 1).copied().unwrap_or_default();
        array.blocks = status
            .split_ascii_whitespace()
            .next()
            .and_then(|b| b.parse().ok())
            .unwrap_or(0.0);
        let striped = line.contains("raid0") || line.contains("linear");
        match disk_counts(status) {
            // An inactive array runs no disks, whatever its status line says (node_exporter
            // reports 0 for both).
            _ if activity == "inactive" && !striped => {}
            Some((total, active)) if !striped => {
                array.disks_required = total;
                array.disks_active = active;
            }
            // Arrays without redundancy (raid0, linear) list no [n/m]: node_exporter counts
            // every member, whatever its flags, as active and required.
            _ if striped => {
                array.disks_active = line.matches('[').count() as f64;
                array.disks_required = array.disks_active;
            }
            // A status line without [n/m] on a redundant array: count the working members.
            _ => {
                array.disks_active = members.len() as f64 - array.disks_failed - array.disks_spare;
                array.disks_required = array.disks_active;
            }
        }
        array.blocks_synced = array.blocks;
        array.state = if activity == "inactive" {
            "inactive"
        } else {
            "active"
        };
        for progress in lines
            .iter()
            .skip(index + 2)
            .take(2)
            .take_while(|l| !l.contains(" : "))
        {
            let state = if progress.contains("recovery") {
                "recovering"
            } else if progress.contains("resync") || progress.contains("reshape") {
                "resync"
            } else if progress.contains("check") {
                "check"
            } else {
                continue;
            };
            array.state = state;
            // `resync=DELAYED` and `resync=PENDING` have no progress yet.
            array.blocks_synced = synced_blocks(progress).unwrap_or(0.0);
        }
        arrays.push(array);
    }
    arrays
}

impl Collector for Mdadm {
    fn name(&self) -> &str {
        "mdadm"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file_or_no_data(&self.path)?;
        let state = out.gauge("node_md_state", "Indicates the state of md-device.");
        let disks = out.gauge(
            "node_md_disks",
            "Number of active/failed/spare disks of device.",
        );
        let required = out.gauge("node_md_disks_required", "Total number of disks of device.");
        let blocks = out.gauge("node_md_blocks", "Total number of blocks on device.");
        let synced = out.gauge(
            "node_md_blocks_synced",
            "Number of blocks synced on device.",
        );
        for array in parse(&text) {
            let device = array.name.as_str();
            for name in ["active", "inactive", "recovering", "resync", "check"] {
                out.sample(
                    state,
                    &[("device", device), ("state", name)],
                    if array.state == name { 1.0 } else { 0.0 },
                );
            }
            out.sample(
                disks,
                &[("device", device), ("state", "active")],
                array.disks_active,
            );
            out.sample(
                disks,
                &[("device", device), ("state", "failed")],
                array.disks_failed,
            );
            out.sample(
                disks,
                &[("device", device), ("state", "spare")],
                array.disks_spare,
            );
            out.sample(required, &[("device", device)], array.disks_required);
            out.sample(blocks, &[("device", device)], array.blocks);
            out.sample(synced, &[("device", device)], array.blocks_synced);
        }
        // Arrays in sysfs; /proc/mdstat lists the same ones, with other details.
        let Ok(arrays) = read::Entries::list(&self.block, |name| name.starts_with("md")) else {
            return Ok(());
        };
        let raid_disks = out.gauge("node_md_raid_disks", "Number of raid disks on device.");
        let degraded = out.gauge("node_md_degraded", "Number of degraded disks on device.");
        for device in arrays.names() {
            let Some(members) = arrays
                .dir()
                .open_at(&[device, "md"])
                .as_ref()
                .and_then(members)
            else {
                continue;
            };
            if let Some(count) = members.raid_disks {
                out.sample(raid_disks, &[("device", device)], count);
            }
            out.sample(degraded, &[("device", device)], members.degraded);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_and_progress() {
        let text = "Personalities : [raid1] [raid6]\n\
md127 : active raid1 nvme1n1[0] nvme2n1[1]\n      312319552 blocks [2/2] [UU]\n\n\
md3 : active raid6 sda1[8] sdb1[7](F) sdc1[9](S) sdd1[3]\n      5853468288 blocks super 1.2 level 6, 64k chunk, algorithm 2 [4/3] [UU_U]\n      [=>...................]  recovery =  8.5% (413472/4877056) finish=1.2min speed=60000K/sec\n\n\
md0 : inactive sdh[0](S)\n      2930265560 blocks super external:imsm\n\n\
unused devices: <none>\n";
        let arrays = parse(text);
        assert_eq!(arrays.len(), 3);
        assert_eq!(
            (arrays[0].state, arrays[0].disks_active, arrays[0].blocks),
            ("active", 2.0, 312319552.0)
        );
        assert_eq!(arrays[0].blocks_synced, 312319552.0);
        assert_eq!(
            (
                arrays[1].state,
                arrays[1].disks_failed,
                arrays[1].disks_spare
            ),
            ("recovering", 1.0, 1.0)
        );
        assert_eq!(
            (
                arrays[1].disks_required,
                arrays[1].disks_active,
                arrays[1].blocks_synced
            ),
            (4.0, 3.0, 413472.0)
        );
        assert_eq!(arrays[2].state, "inactive");
    }

    #[test]
    fn inactive_arrays_run_no_disks() {
        // Lines of node_exporter's vendored `proc/mdstat` fixture.
        let text = "Personalities : [raid1] [raid0]\n\
md4 : inactive raid1 sda3[0](F) sdb3[1](S)\n      4883648 blocks [2/2] [UU]\n\n\
md00 : active raid0 xvdb[0]\n      4186624 blocks super 1.2 256k chunks\n\n\
unused devices: <none>\n";
        let arrays = parse(text);
        assert_eq!(
            (
                arrays[0].state,
                arrays[0].disks_active,
                arrays[0].disks_required
            ),
            ("inactive", 0.0, 0.0)
        );
        assert_eq!((arrays[0].disks_failed, arrays[0].disks_spare), (1.0, 1.0));
        assert_eq!(
            (arrays[1].disks_active, arrays[1].disks_required),
            (1.0, 1.0)
        );
    }

    /// Reads the sysfs directory of an array made of `files` (name, content).
    fn members_of(files: &[(&str, &str)]) -> Option<Members> {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        members(&read::AttributeDir::open(dir.path()).unwrap())
    }

    #[test]
    fn disks_and_degraded_from_sysfs() {
        let raid5 = [
            ("level", "raid5\n"),
            ("raid_disks", "3\n"),
            ("degraded", "1\n"),
        ];
        assert_eq!(
            members_of(&raid5),
            Some(Members {
                raid_disks: Some(3.0),
                degraded: 1.0
            })
        );
        // raid0 keeps no `degraded`; a reshape shows the new and the old count.
        let raid0 = [("level", "raid0\n"), ("raid_disks", "11 (10)\n")];
        assert_eq!(
            members_of(&raid0),
            Some(Members {
                raid_disks: Some(11.0),
                degraded: 0.0
            })
        );
        let container = [("level", "container\n"), ("raid_disks", "0\n")];
        assert_eq!(members_of(&container).unwrap().raid_disks, None);
        assert_eq!(members_of(&[("raid_disks", "2\n")]), None);
    }
}
