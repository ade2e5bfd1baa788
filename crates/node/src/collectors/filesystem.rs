//! `filesystem`: size, free space and inodes of every mounted filesystem, from
//! `/proc/1/mountinfo` and `statvfs(2)`.
//!
//! The calls run in [`StatfsPool`], never on the scrape's thread: a mount that does not
//! answer within `--collector.filesystem.mount-timeout` (or before the scrape's deadline)
//! is reported with `node_filesystem_device_error 1` and `device_error="mountpoint
//! timeout"`, and is not asked again until its earlier call returns.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::filter::NameFilter;
use crate::flags::{FILESYSTEM_FS_TYPES_EXCLUDE, FILESYSTEM_MOUNT_POINTS_EXCLUDE};
use crate::paths::Paths;
use crate::read;
use crate::statfs_pool::{Outcome, StatfsPool};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let o = &settings.options;
    boxed(Filesystem {
        mountinfo: settings.paths.proc("1/mountinfo"),
        own_mountinfo: settings.paths.proc("self/mountinfo"),
        paths: settings.paths.clone(),
        mount_points: NameFilter::with_default_exclude(
            o.mount_points_include.as_deref(),
            o.mount_points_exclude.as_deref(),
            FILESYSTEM_MOUNT_POINTS_EXCLUDE,
            (
                "collector.filesystem.mount-points-include",
                "collector.filesystem.mount-points-exclude",
            ),
        )?,
        fs_types: NameFilter::with_default_exclude(
            o.fs_types_include.as_deref(),
            o.fs_types_exclude.as_deref(),
            FILESYSTEM_FS_TYPES_EXCLUDE,
            (
                "collector.filesystem.fs-types-include",
                "collector.filesystem.fs-types-exclude",
            ),
        )?,
        mount_timeout: o.mount_timeout,
        pool: StatfsPool::new(o.stat_workers),
    })
}

struct Filesystem {
    /// `/proc/1/mountinfo`: the mounts as the host's init sees them.
    mountinfo: PathBuf,
    /// `/proc/self/mountinfo`, where the former cannot be read.
    own_mountinfo: PathBuf,
    paths: Paths,
    mount_points: NameFilter,
    fs_types: NameFilter,
    mount_timeout: Duration,
    pool: StatfsPool,
}

/// One line of mountinfo (proc(5)), borrowed from its text.
#[derive(Debug, PartialEq)]
pub(super) struct Mount<'a> {
    major_minor: &'a str,
    pub(super) mount_point: Cow<'a, str>,
    options: &'a str,
    pub(super) fs_type: &'a str,
    pub(super) device: Cow<'a, str>,
}

/// Parses mountinfo: `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`.
pub(super) fn parse_mountinfo(text: &str) -> impl Iterator<Item = Mount<'_>> {
    text.lines().filter_map(|line| {
        // Six fixed fields, optional ones, then ` - ` and the rest.
        let mut fields = line.split(' ');
        let mut head = [""; 6];
        for slot in &mut head {
            *slot = fields.next()?;
        }
        if head.contains(&"-") || !fields.any(|field| field == "-") {
            return None;
        }
        let [_, _, major_minor, _, mount_point, options] = head;
        let fs_type = fields.next()?;
        let device = fields.next()?;
        Some(Mount {
            major_minor,
            mount_point: unescape(mount_point),
            options,
            fs_type,
            device: unescape(device),
        })
    })
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal escapes.
fn unescape(field: &str) -> Cow<'_, str> {
    if !field.contains('\\') {
        return Cow::Borrowed(field);
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..=i + 3]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The families of one scrape, filled mount by mount.
struct Families {
    size: FamilyId,
    free: FamilyId,
    avail: FamilyId,
    files: FamilyId,
    files_free: FamilyId,
    readonly: FamilyId,
    device_error: FamilyId,
    mount_info: FamilyId,
}

impl Families {
    fn declare(out: &mut MetricSet) -> Self {
        Self {
            size: out.gauge("node_filesystem_size_bytes", "Filesystem size in bytes."),
            free: out.gauge(
                "node_filesystem_free_bytes",
                "Filesystem free space in bytes.",
            ),
            avail: out.gauge(
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
            ),
            files: out.gauge("node_filesystem_files", "Filesystem total file nodes."),
            files_free: out.gauge(
                "node_filesystem_files_free",
                "Filesystem total free file nodes.",
            ),
            readonly: out.gauge("node_filesystem_readonly", "Filesystem read-only status."),
            device_error: out.gauge(
                "node_filesystem_device_error",
                "Whether an error occurred while getting statistics for the given device.",
            ),
            mount_info: out.gauge(
                "node_filesystem_mount_info",
                "Filesystem mount information.",
            ),
        }
    }
}

impl Collector for Filesystem {
    fn name(&self) -> &str {
        "filesystem"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = match read::optional_trimmed(&self.mountinfo) {
            Some(text) => text,
            None => read::file(&self.own_mountinfo)?,
        };
        let mounts: Vec<Mount<'_>> = parse_mountinfo(&text)
            .filter(|mount| {
                self.fs_types.accepts(mount.fs_type)
                    && (self.mount_points).accepts(self.paths.strip_rootfs(&mount.mount_point))
            })
            .collect();
        // The same filesystem mounted twice at one place is reported once.
        let mut seen = HashSet::with_capacity(mounts.len());
        let kept: Vec<(&Mount<'_>, &str)> = mounts
            .iter()
            .filter_map(|mount| {
                let shown = self.paths.strip_rootfs(&mount.mount_point);
                seen.insert((&*mount.device, shown, mount.fs_type))
                    .then_some((mount, shown))
            })
            .collect();
        let stat_paths: Vec<PathBuf> = kept
            .iter()
            .map(|(_, shown)| self.paths.root(shown))
            .collect();
        let until = (Instant::now() + self.mount_timeout).min(ctx.deadline());
        let outcomes = self.pool.stat_all(&stat_paths, until);

        let families = Families::declare(out);
        for ((mount, shown), outcome) in kept.iter().zip(outcomes) {
            let readonly = if mount.options.split(',').any(|o| o == "ro") {
                1.0
            } else {
                0.0
            };
            let error = match &outcome {
                Outcome::Done(Ok(_)) => "",
                Outcome::Done(Err(error)) => error.as_str(),
                Outcome::Stuck => "mountpoint timeout",
            };
            let labels = [
                ("device", &*mount.device),
                ("mountpoint", shown),
                ("fstype", mount.fs_type),
                ("device_error", error),
            ];
            out.sample(families.readonly, &labels, readonly);
            let (major, minor) = mount.major_minor.split_once(':').unwrap_or_default();
            out.sample(
                families.mount_info,
                &[
                    ("device", &mount.device),
                    ("major", major),
                    ("minor", minor),
                    ("mountpoint", shown),
                ],
                1.0,
            );
            let Outcome::Done(Ok(stat)) = &outcome else {
                out.sample(families.device_error, &labels, 1.0);
                continue;
            };
            out.sample(families.device_error, &labels, 0.0);
            let block = stat.block_size as f64;
            out.sample(families.size, &labels, stat.blocks as f64 * block);
            out.sample(families.free, &labels, stat.blocks_free as f64 * block);
            out.sample(
                families.avail,
                &labels,
                stat.blocks_available as f64 * block,
            );
            out.sample(families.files, &labels, stat.files as f64);
            out.sample(families.files_free, &labels, stat.files_free as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let text = "24 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    36 24 259:1 / /mnt/with\\040space ro,noatime shared:2 master:1 - xfs /dev/nvme1n1 rw,attr2\n\
                    garbage\n";
        let mounts: Vec<Mount<'_>> = parse_mountinfo(text).collect();
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].mount_point, "/");
        assert_eq!(mounts[0].fs_type, "ext4");
        assert_eq!(mounts[1].mount_point, "/mnt/with space");
        assert_eq!(
            (&*mounts[1].device, mounts[1].major_minor),
            ("/dev/nvme1n1", "259:1")
        );
        assert_eq!(mounts[1].options, "ro,noatime");
    }

    #[test]
    fn default_excludes_keep_data_disks() {
        let filter = NameFilter::new(None, Some(FILESYSTEM_MOUNT_POINTS_EXCLUDE), ("i", "e"))
            .unwrap_or_default();
        for kept in [
            "/",
            "/mnt",
            "/mnt1",
            "/mnt/yarn",
            "/media/usb",
            "/run",
            "/var/lib/docker",
        ] {
            assert!(filter.accepts(kept), "{kept}");
        }
        for dropped in [
            "/proc",
            "/sys/fs/cgroup",
            "/dev/shm",
            "/run/credentials/x.service",
            "/var/lib/docker/overlay2",
        ] {
            assert!(!filter.accepts(dropped), "{dropped}");
        }
    }
}
