//! `btrfs`: space allocation, commit statistics and member devices of each mounted Btrfs
//! filesystem, from `/sys/fs/btrfs/<uuid>/`.
//!
//! Devices come, as with node_exporter, from the Btrfs ioctls where they work: each
//! mounted Btrfs filesystem (from `/proc/1/mountinfo`) is opened at its mount point and
//! asked for its devices' size, use and error counters, and devices are labelled with
//! their Btrfs UUID too. Where that fails (no permission, a mount point that is not a
//! subvolume root, no mount at all) device sizes come from sysfs, labelled by `device`
//! alone.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::path::PathBuf;

use rustix::fs::{Mode, OFlags};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, ScrapeContext};

use super::filesystem::parse_mountinfo;
use super::{Settings, boxed};
use crate::{Paths, read, sys};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Btrfs {
        root: settings.paths.sys("fs/btrfs"),
        paths: settings.paths.clone(),
    })
}

struct Btrfs {
    /// `/sys/fs/btrfs`: a directory per filesystem, named by its UUID.
    root: PathBuf,
    /// Where the mount table and the mount points are.
    paths: Paths,
}

/// The sysfs sector size that device sizes are counted in.
const SECTOR_BYTES: u64 = 512;

/// The block group types under `allocation/`.
const BLOCK_GROUP_TYPES: [&str; 3] = ["data", "metadata", "system"];

struct Families {
    info: FamilyId,
    global_rsv_size: FamilyId,
    commits: FamilyId,
    last_commit: FamilyId,
    max_commit: FamilyId,
    commit_seconds: FamilyId,
    reserved: FamilyId,
    used: FamilyId,
    size: FamilyId,
    ratio: FamilyId,
    device_size: FamilyId,
    device_unused: FamilyId,
    device_errors: FamilyId,
}

impl Families {
    fn declare(out: &mut MetricSet) -> Self {
        Self {
            info: out.gauge("node_btrfs_info", "Filesystem information"),
            global_rsv_size: out.gauge(
                "node_btrfs_global_rsv_size_bytes",
                "Size of global reserve.",
            ),
            commits: out.counter(
                "node_btrfs_commits_total",
                "The total number of commits that have occurred.",
            ),
            last_commit: out.gauge(
                "node_btrfs_last_commit_seconds",
                "Duration of the most recent commit, in seconds.",
            ),
            max_commit: out.gauge(
                "node_btrfs_max_commit_seconds",
                "Duration of the slowest commit, in seconds.",
            ),
            commit_seconds: out.counter(
                "node_btrfs_commit_seconds_total",
                "Sum of the duration of all commits, in seconds.",
            ),
            reserved: out.gauge(
                "node_btrfs_reserved_bytes",
                "Amount of space reserved for a data type",
            ),
            used: out.gauge(
                "node_btrfs_used_bytes",
                "Amount of used space by a layout/data type",
            ),
            size: out.gauge(
                "node_btrfs_size_bytes",
                "Amount of space allocated for a layout/data type",
            ),
            ratio: out.gauge(
                "node_btrfs_allocation_ratio",
                "Data allocation ratio for a layout/data type",
            ),
            device_size: out.gauge(
                "node_btrfs_device_size_bytes",
                "Size of a device that is part of the filesystem.",
            ),
            device_unused: out.gauge(
                "node_btrfs_device_unused_bytes",
                "Unused bytes unused on a device that is part of the filesystem.",
            ),
            device_errors: out.counter(
                "node_btrfs_device_errors_total",
                "Errors reported for the device",
            ),
        }
    }
}

impl Collector for Btrfs {
    fn name(&self) -> &str {
        "btrfs"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // Without the btrfs module loaded there is nothing to report, which is not an error.
        let Ok(filesystems) = read::dir_entries(&self.root, |name| name.contains('-')) else {
            return Ok(());
        };
        if filesystems.is_empty() {
            return Ok(());
        }
        let devices = self.ioctl_devices();
        let families = Families::declare(out);
        let mut reported = Vec::new();
        for (name, dir) in &filesystems {
            collect_filesystem(name, dir, &devices, &families, &mut reported, out)?;
        }
        Ok(())
    }
}

fn collect_filesystem(
    name: &str,
    dir: &Path,
    ioctl_devices: &HashMap<String, Vec<IoctlDevice>>,
    families: &Families,
    reported: &mut Vec<String>,
    out: &mut MetricSet,
) -> Result<(), CollectError> {
    let devices = read::dir_entries(&dir.join("devices"), |_| true)?;
    let uuid = text(&dir.join("metadata_uuid"))?;
    let uuid = if uuid.is_empty() { name } else { &uuid };
    // Filesystems made from one another (`btrfstune -m`) may share a metadata UUID: the
    // first one found is reported, the others would repeat its series.
    if reported.iter().any(|r| r == uuid) {
        tracing::debug!(
            uuid,
            "Skipping a second btrfs filesystem with the same UUID"
        );
        return Ok(());
    }
    reported.push(uuid.to_owned());
    let label = text(&dir.join("label"))?;
    let labels = [("uuid", uuid)];

    out.sample(families.info, &[("uuid", uuid), ("label", &label)], 1.0);
    let allocation = dir.join("allocation");
    out.sample(
        families.global_rsv_size,
        &labels,
        number(&allocation.join("global_rsv_size"))? as f64,
    );

    let path = dir.join("commit_stats");
    let commits = match optional(&path)? {
        Some(text) => commit_stats(&text).map_err(|e| read::malformed(&path, e))?,
        // Kernels before 6.0 have no commit statistics.
        None => CommitStats::default(),
    };
    out.sample(families.commits, &labels, commits.commits as f64);
    out.sample(
        families.last_commit,
        &labels,
        commits.last_commit_ms as f64 / 1000.0,
    );
    out.sample(
        families.max_commit,
        &labels,
        commits.max_commit_ms as f64 / 1000.0,
    );
    out.sample(
        families.commit_seconds,
        &labels,
        commits.total_commit_ms as f64 / 1000.0,
    );

    for block_group_type in BLOCK_GROUP_TYPES {
        let group = allocation.join(block_group_type);
        out.sample(
            families.reserved,
            &[("uuid", uuid), ("block_group_type", block_group_type)],
            number(&group.join("bytes_reserved"))? as f64,
        );
        // Each directory below the group is a layout (`single`, `raid1`, …).
        for (mode, layout) in read::dir_entries(&group, |_| true)? {
            if !layout.is_dir() {
                continue;
            }
            let labels = [
                ("uuid", uuid),
                ("block_group_type", block_group_type),
                ("mode", mode.as_str()),
            ];
            out.sample(
                families.used,
                &labels,
                number(&layout.join("used_bytes"))? as f64,
            );
            out.sample(
                families.size,
                &labels,
                number(&layout.join("total_bytes"))? as f64,
            );
            out.sample(
                families.ratio,
                &labels,
                allocation_ratio(&mode, devices.len()),
            );
        }
    }

    // The ioctls know a filesystem by its fsid, in hex without dashes.
    if let Some(ioctl_devices) = ioctl_devices.get(&uuid.replace('-', "")) {
        for device in ioctl_devices {
            let name = device.path.rsplit('/').next().unwrap_or_default();
            let labels = [
                ("uuid", uuid),
                ("device", name),
                ("btrfs_dev_uuid", device.uuid.as_str()),
            ];
            out.sample(families.device_size, &labels, device.total_bytes as f64);
            out.sample(
                families.device_unused,
                &labels,
                device.total_bytes.wrapping_sub(device.bytes_used) as f64,
            );
            for (kind, count) in ERROR_TYPES.iter().zip(device.errors) {
                out.sample(
                    families.device_errors,
                    &[labels[0], labels[1], labels[2], ("type", kind)],
                    count as f64,
                );
            }
        }
        return Ok(());
    }
    for (device, path) in &devices {
        let sectors = number(&path.join("size"))?;
        out.sample(
            families.device_size,
            &[("uuid", uuid), ("device", device)],
            sectors.wrapping_mul(SECTOR_BYTES) as f64,
        );
    }
    Ok(())
}

/// The kernel's per-device error counters, in the order `BTRFS_IOC_GET_DEV_STATS` gives
/// them.
const ERROR_TYPES: [&str; sys::BTRFS_DEV_STATS] =
    ["write", "read", "flush", "corruption", "generation"];

/// A member device as the Btrfs ioctls report it.
#[derive(Debug, Clone, PartialEq)]
struct IoctlDevice {
    /// The device's path as the kernel knows it (`/dev/sda`).
    path: String,
    /// The device's Btrfs UUID, written `8-4-4-4-12`.
    uuid: String,
    bytes_used: u64,
    total_bytes: u64,
    /// In [`ERROR_TYPES`]' order.
    errors: [u64; sys::BTRFS_DEV_STATS],
}

/// `statfs`'s `f_type` of a Btrfs filesystem (`BTRFS_SUPER_MAGIC`).
const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;

/// The inode number of a subvolume's root directory (`BTRFS_FIRST_FREE_OBJECTID`): the
/// ioctls are asked only there, as upstream does.
const SUBVOLUME_ROOT_INODE: u64 = 256;

/// Device ids tried per filesystem at most: ids are small and dense in practice, and this
/// bounds the work should the kernel report an absurd highest id.
const MAX_DEVICE_IDS: u64 = 4096;

impl Btrfs {
    /// The devices of each mounted Btrfs filesystem, by fsid in hex, as far as the ioctls
    /// answer. A filesystem that cannot be asked (no permission, a bind mount of a
    /// subdirectory) is left out, and its devices come from sysfs.
    fn ioctl_devices(&self) -> HashMap<String, Vec<IoctlDevice>> {
        let mut found = HashMap::new();
        let mountinfo = read::optional_trimmed(&self.paths.proc("1/mountinfo"))
            .or_else(|| read::optional_trimmed(&self.paths.proc("self/mountinfo")));
        let Some(mountinfo) = mountinfo else {
            return found;
        };
        // Filesystems already asked, by the mount's source: one mounted at several places
        // is asked once.
        let mut devices_done: Vec<String> = Vec::new();
        for mount in parse_mountinfo(&mountinfo) {
            if mount.fs_type != "btrfs" || devices_done.iter().any(|d| *d == mount.device) {
                continue;
            }
            let path = self.paths.root(self.paths.strip_rootfs(&mount.mount_point));
            match ask_filesystem(&path) {
                Ok((fsid, devices)) => {
                    devices_done.push(mount.device.into_owned());
                    found.entry(fsid).or_insert(devices);
                }
                Err(error) => tracing::debug!(
                    mount_point = %path.display(),
                    %error,
                    "Error querying btrfs device stats with ioctl"
                ),
            }
        }
        found
    }
}

/// Opens a Btrfs mount point and asks for the fsid and every device.
fn ask_filesystem(path: &Path) -> io::Result<(String, Vec<IoctlDevice>)> {
    let dir = open_directory(path)?;
    let stat = rustix::fs::fstat(&dir)?;
    let statfs = rustix::fs::fstatfs(&dir)?;
    #[allow(clippy::unnecessary_cast)]
    if statfs.f_type as i64 != BTRFS_SUPER_MAGIC || stat.st_ino as u64 != SUBVOLUME_ROOT_INODE {
        return Err(io::Error::other("not the root of a btrfs subvolume"));
    }
    let info = sys::btrfs_fs_info(dir.as_fd())?;
    let fsid: String = info.fsid.iter().map(|b| format!("{b:02x}")).collect();
    let mut devices = Vec::new();
    for id in 0..=info.max_id.min(MAX_DEVICE_IDS) {
        let device = match sys::btrfs_dev_info(dir.as_fd(), id) {
            Ok(device) => device,
            // Ids need not start at 0 nor be contiguous.
            Err(error) if error.raw_os_error() == Some(libc::ENODEV) => continue,
            Err(error) => return Err(error),
        };
        let errors = sys::btrfs_dev_stats(dir.as_fd(), id)?;
        devices.push(IoctlDevice {
            path: device.path,
            uuid: dashed_uuid(&device.uuid),
            bytes_used: device.bytes_used,
            total_bytes: device.total_bytes,
            errors,
        });
        if devices.len() as u64 == info.num_devices {
            break;
        }
    }
    Ok((fsid, devices))
}

/// Opens a directory for the ioctls, without updating its access time where allowed
/// (`O_NOATIME` needs ownership of the directory).
fn open_directory(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    rustix::fs::open(path, flags | OFlags::NOATIME, Mode::empty())
        .or_else(|_| rustix::fs::open(path, flags, Mode::empty()))
        .map_err(io::Error::from)
}

/// A UUID written `8-4-4-4-12` in lower-case hex.
fn dashed_uuid(bytes: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// How many bytes of disk a byte of data takes in a layout, given the filesystem's number
/// of devices (RAID5 and RAID6 spread one and two parity stripes over all of them).
fn allocation_ratio(mode: &str, devices: usize) -> f64 {
    let devices = devices as f64;
    match mode {
        "single" | "raid0" => 1.0,
        "dup" | "raid1" | "raid10" => 2.0,
        "raid1c3" => 3.0,
        "raid1c4" => 4.0,
        "raid5" => devices / (devices - 1.0),
        "raid6" => devices / (devices - 2.0),
        _ => 0.0,
    }
}

/// A file's text, `None` if it does not exist; other failures fail the scrape.
fn optional(path: &Path) -> Result<Option<read::Text>, CollectError> {
    match read::read_attribute(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(read::failed(path, error)),
    }
}

/// A file's text without surrounding white space; empty if the file does not exist.
fn text(path: &Path) -> Result<String, CollectError> {
    Ok(optional(path)?
        .map(|text| text.trim().to_owned())
        .unwrap_or_default())
}

/// A file's number; 0 if the file is missing or holds no number, as upstream has it
/// (older kernels lack some of these files).
fn number(path: &Path) -> Result<u64, CollectError> {
    Ok(optional(path)?
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0))
}

/// The four values of `commit_stats`.
#[derive(Debug, Default, PartialEq)]
struct CommitStats {
    commits: u64,
    last_commit_ms: u64,
    max_commit_ms: u64,
    total_commit_ms: u64,
}

/// Reads `commit_stats`: `name value` lines, each of exactly two words.
fn commit_stats(text: &str) -> Result<CommitStats, String> {
    let mut stats = CommitStats::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let [name, value] = words[..] else {
            return Err(format!("expected a name and a value in line {line:?}"));
        };
        let value: u64 = value
            .parse()
            .map_err(|_| format!("bad number in line {line:?}"))?;
        match name {
            "commits" => stats.commits = value,
            "last_commit_ms" => stats.last_commit_ms = value,
            "max_commit_ms" => stats.max_commit_ms = value,
            "total_commit_ms" => stats.total_commit_ms = value,
            _ => {}
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_stats_of_the_fixture() {
        let text =
            "commits 258051\nlast_commit_ms 1000\nmax_commit_ms 51462\ntotal_commit_ms 47836090";
        assert_eq!(
            commit_stats(text),
            Ok(CommitStats {
                commits: 258_051,
                last_commit_ms: 1000,
                max_commit_ms: 51462,
                total_commit_ms: 47_836_090,
            })
        );
        assert!(commit_stats("commits\n").is_err());
        assert!(commit_stats("commits many\n").is_err());
        assert_eq!(47_836_090_f64 / 1000.0, 47836.09);
    }

    #[test]
    fn uuids_are_written_with_dashes() {
        let bytes = [
            0x0a, 0xbb, 0x23, 0xa9, 0x57, 0x9b, 0x43, 0xe6, 0xad, 0x30, 0x22, 0x7e, 0xf4, 0x7f,
            0xcb, 0x9d,
        ];
        assert_eq!(dashed_uuid(&bytes), "0abb23a9-579b-43e6-ad30-227ef47fcb9d");
    }

    #[test]
    fn a_directory_of_another_filesystem_is_not_asked() {
        let dir = tempfile::tempdir().unwrap();
        let error = ask_filesystem(dir.path()).unwrap_err();
        assert_eq!(error.to_string(), "not the root of a btrfs subvolume");
        assert!(ask_filesystem(&dir.path().join("missing")).is_err());
        // Asked all the same, the kernel refuses a Btrfs ioctl on another filesystem.
        let fd = open_directory(dir.path()).unwrap();
        assert!(sys::btrfs_fs_info(fd.as_fd()).is_err());
    }

    #[test]
    fn ratios_follow_the_layout() {
        assert_eq!(allocation_ratio("raid1", 2), 2.0);
        assert_eq!(allocation_ratio("raid5", 4), 4.0 / 3.0);
        assert_eq!(allocation_ratio("raid6", 4), 2.0);
        assert_eq!(allocation_ratio("weird", 4), 0.0);
    }
}
