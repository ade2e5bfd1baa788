//! `dmmultipath`: device-mapper multipath maps from `/sys/block/dm-*` (those whose
//! `dm/uuid` starts with `mpath-`): whether each is active, its size, and the state of
//! each of its paths (the `slaves/` block devices).

use std::io;
use std::path::{Path, PathBuf};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(DmMultipath {
        block: settings.paths.sys("block"),
    })
}

struct DmMultipath {
    /// `/sys/block`.
    block: PathBuf,
}

/// One multipath map.
#[derive(Debug, PartialEq)]
struct Map {
    /// The device-mapper name (`dm/name`), e.g. `mpathA`.
    name: String,
    /// The kernel's block device name, e.g. `dm-5`.
    sysfs_name: String,
    uuid: String,
    suspended: bool,
    size_bytes: u64,
    /// `(path device, state)`, e.g. `("sdi", "running")`.
    paths: Vec<(String, String)>,
}

/// Whether a path's device state is a usable one: `running` for SCSI, `live` for NVMe.
fn is_active(state: &str) -> bool {
    matches!(state, "running" | "live")
}

impl Collector for DmMultipath {
    fn name(&self) -> &str {
        "dmmultipath"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let maps = self.maps()?;
        let labels = ["device", "sysfs_name"];
        let info = out.gauge(
            "node_dmmultipath_device_info",
            "Non-numeric information about a DM-multipath device.",
        );
        let active = out.gauge(
            "node_dmmultipath_device_active",
            "Whether the multipath device-mapper device is active (1) or suspended (0).",
        );
        let size = out.gauge(
            "node_dmmultipath_device_size_bytes",
            "Size of the multipath device in bytes, read from /sys/block/<dm>/size.",
        );
        let paths = out.gauge(
            "node_dmmultipath_device_paths",
            "Number of paths for a multipath device.",
        );
        let paths_active = out.gauge(
            "node_dmmultipath_device_paths_active",
            "Number of paths in active state (SCSI running or NVMe live) for a multipath device.",
        );
        let paths_failed = out.gauge(
            "node_dmmultipath_device_paths_failed",
            "Number of paths not in active state for a multipath device.",
        );
        let path_state = out.gauge(
            "node_dmmultipath_path_state",
            "Reports the underlying device state for a multipath path, as read from /sys/block/<dev>/device/state.",
        );
        for map in &maps {
            let device = [
                (labels[0], map.name.as_str()),
                (labels[1], map.sysfs_name.as_str()),
            ];
            out.sample(
                info,
                &[device[0], device[1], ("uuid", map.uuid.as_str())],
                1.0,
            );
            out.sample(active, &device, if map.suspended { 0.0 } else { 1.0 });
            out.sample(size, &device, map.size_bytes as f64);
            let up = map.paths.iter().filter(|(_, s)| is_active(s)).count();
            for (path, state) in &map.paths {
                out.sample(
                    path_state,
                    &[("device", &map.name), ("path", path), ("state", state)],
                    1.0,
                );
            }
            out.sample(paths, &device, map.paths.len() as f64);
            out.sample(paths_active, &device, up as f64);
            out.sample(paths_failed, &device, (map.paths.len() - up) as f64);
        }
        Ok(())
    }
}

impl DmMultipath {
    /// The multipath maps; [`CollectError::NoData`] without `/sys/block`.
    fn maps(&self) -> Result<Vec<Map>, CollectError> {
        let mut maps = Vec::new();
        for (sysfs_name, dir) in read::dir_entries(&self.block, |n| n.starts_with("dm-"))? {
            // A dm device without dm/uuid is not a device-mapper map.
            let Some(uuid) = attribute(&dir.join("dm/uuid"))? else {
                continue;
            };
            if !uuid.starts_with("mpath-") {
                continue;
            }
            let name = required(&dir.join("dm/name"))?;
            let suspended = number(&dir.join("dm/suspended"))?;
            let sectors = number(&dir.join("size"))?;
            let mut paths = Vec::new();
            for (path, _) in
                read::dir_entries(&dir.join("slaves"), |_| true).or_else(|e| match e {
                    CollectError::NoData => Ok(Vec::new()),
                    e => Err(e),
                })?
            {
                let state = required(&self.block.join(&path).join("device/state"))?;
                paths.push((path, state));
            }
            maps.push(Map {
                name,
                sysfs_name,
                uuid,
                suspended: suspended == 1,
                size_bytes: sectors.wrapping_mul(512),
                paths,
            });
        }
        Ok(maps)
    }
}

/// A sysfs attribute without surrounding white space, `None` if it does not exist.
fn attribute(path: &Path) -> Result<Option<String>, CollectError> {
    match read::read_attribute(path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(read::failed(path, error)),
    }
}

/// A sysfs attribute that must exist.
fn required(path: &Path) -> Result<String, CollectError> {
    attribute(path)?.ok_or_else(|| read::failed(path, "missing"))
}

/// A sysfs attribute holding an unsigned number.
fn number(path: &Path) -> Result<u64, CollectError> {
    required(path)?
        .parse()
        .map_err(|e| read::malformed(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_of_a_sysfs_tree() {
        let dir = tempfile::tempdir().unwrap();
        let block = dir.path();
        let write = |path: &str, text: &str| {
            let path = block.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("dm-0/dm/uuid", "LVM-abc\n");
        write("dm-0/dm/name", "vg-root\n");
        write("dm-5/dm/uuid", "mpath-3600\n");
        write("dm-5/dm/name", "mpathA\n");
        write("dm-5/dm/suspended", "0\n");
        write("dm-5/size", "104857600\n");
        std::fs::create_dir_all(block.join("dm-5/slaves/sdi")).unwrap();
        std::fs::create_dir_all(block.join("dm-5/slaves/sdl")).unwrap();
        write("sdi/device/state", "running\n");
        write("sdl/device/state", "offline\n");
        std::fs::create_dir_all(block.join("dm-7")).unwrap();
        let collector = DmMultipath {
            block: block.to_path_buf(),
        };
        assert_eq!(
            collector.maps().unwrap(),
            [Map {
                name: "mpathA".into(),
                sysfs_name: "dm-5".into(),
                uuid: "mpath-3600".into(),
                suspended: false,
                size_bytes: 53_687_091_200,
                paths: vec![
                    ("sdi".into(), "running".into()),
                    ("sdl".into(), "offline".into())
                ],
            }]
        );
        assert!(is_active("live") && !is_active("offline"));
        write("dm-5/size", "big\n");
        assert!(collector.maps().is_err());
    }
}
