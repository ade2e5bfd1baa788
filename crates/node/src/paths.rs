//! The roots every collector reads under, so tests and containers can point them elsewhere
//! (`--path.procfs`, `--path.sysfs`, `--path.rootfs`, `--path.udev.data`).

use std::path::{Path, PathBuf};

/// Where `/proc`, `/sys`, `/` and the udev database are.
#[derive(Debug, Clone)]
pub struct Paths {
    procfs: PathBuf,
    sysfs: PathBuf,
    rootfs: PathBuf,
    udev_data: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Self::new("/proc", "/sys", "/", "/run/udev/data")
    }
}

impl Paths {
    /// Roots as given on the command line.
    pub fn new(
        procfs: impl Into<PathBuf>,
        sysfs: impl Into<PathBuf>,
        rootfs: impl Into<PathBuf>,
        udev_data: impl Into<PathBuf>,
    ) -> Self {
        Self {
            procfs: procfs.into(),
            sysfs: sysfs.into(),
            rootfs: rootfs.into(),
            udev_data: udev_data.into(),
        }
    }

    /// `relative` under the procfs root, e.g. `proc("net/dev")`.
    pub fn proc(&self, relative: &str) -> PathBuf {
        self.procfs.join(relative)
    }

    /// `relative` under the sysfs root, e.g. `sys("class/net")`.
    pub fn sys(&self, relative: &str) -> PathBuf {
        self.sysfs.join(relative)
    }

    /// `relative` (absolute or not) under the root filesystem, e.g. `root("/etc/os-release")`.
    pub fn root(&self, relative: &str) -> PathBuf {
        self.rootfs.join(relative.trim_start_matches('/'))
    }

    /// The root filesystem prefix.
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// The udev database directory.
    pub fn udev_data(&self) -> &Path {
        &self.udev_data
    }

    /// A mount point as the host sees it: with `--path.rootfs=/host` the mount
    /// `/host/mnt` is reported as `/mnt`; others are left as they are.
    pub fn strip_rootfs<'a>(&self, mount_point: &'a str) -> &'a str {
        let root = self.rootfs.to_str().unwrap_or("/").trim_end_matches('/');
        if root.is_empty() {
            return mount_point;
        }
        match mount_point.strip_prefix(root) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => mount_point,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_lose_the_rootfs_prefix() {
        let paths = Paths::new("/proc", "/sys", "/host", "/run/udev/data");
        assert_eq!(paths.strip_rootfs("/host"), "/");
        assert_eq!(paths.strip_rootfs("/host/mnt1"), "/mnt1");
        assert_eq!(paths.strip_rootfs("/hostile"), "/hostile");
        let plain = Paths::default();
        assert_eq!(plain.strip_rootfs("/mnt"), "/mnt");
        assert_eq!(plain.root("/etc/os-release"), Path::new("/etc/os-release"));
    }
}
