//! node_exporter's command-line flags: the `--path.*` roots and every per-collector option,
//! with upstream's names and defaults (not Debian's: `/mnt` is not hidden, `lo` is not
//! dropped). The `--collector.<name>` switches are added per collector in [`crate::cli`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Upstream's default for `--collector.diskstats.device-exclude`.
pub const DISKSTATS_DEVICE_EXCLUDE: &str = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
/// Upstream's default for `--collector.filesystem.mount-points-exclude`. Unlike Debian's,
/// it keeps `/mnt` and `/media`, where EMR and many clouds mount their data disks.
pub const FILESYSTEM_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// Upstream's default for `--collector.filesystem.fs-types-exclude`.
pub const FILESYSTEM_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$";
/// Upstream's default for `--collector.netstat.fields`.
pub const NETSTAT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";
/// Upstream's default for `--collector.vmstat.fields`.
pub const VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";
/// Upstream's default for `--collector.systemd.unit-exclude`.
pub const SYSTEMD_UNIT_EXCLUDE: &str = r".+\.(automount|device|mount|scope|slice)";

/// Roots and per-collector options.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Paths")]
pub struct NodeFlags {
    /// procfs mountpoint.
    #[arg(long = "path.procfs", default_value = "/proc", value_name = "DIR")]
    pub procfs: PathBuf,
    /// sysfs mountpoint.
    #[arg(long = "path.sysfs", default_value = "/sys", value_name = "DIR")]
    pub sysfs: PathBuf,
    /// rootfs mountpoint; its prefix is stripped from reported mount points.
    #[arg(long = "path.rootfs", default_value = "/", value_name = "DIR")]
    pub rootfs: PathBuf,
    /// udev data path.
    #[arg(
        long = "path.udev.data",
        default_value = "/run/udev/data",
        value_name = "DIR"
    )]
    pub udev_data: PathBuf,

    #[command(flatten)]
    pub options: CollectorOptions,
}

/// Options of individual collectors.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Collector options")]
pub struct CollectorOptions {
    /// Longest time one collector may take; a collector still running after it is reported
    /// as failed for that scrape and finishes in the background (kiln addition).
    #[arg(long = "collector.time-budget", value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub time_budget: Duration,

    /// How many collectors run at once (kiln addition). A scrape starts on one thread and
    /// spreads to this many only when it is still collecting after 20 ms: each collector
    /// is quick, and parallel reads of procfs and sysfs contend in the kernel.
    #[arg(long = "collector.parallelism", value_name = "N", default_value_t = 2)]
    pub parallelism: usize,

    /// Report cpu, softnet, schedstat and interrupts series summed over all CPUs with
    /// `cpu="all"` instead of one series per CPU, for hosts with hundreds of cores (kiln addition).
    #[arg(long = "collector.cpu.aggregate")]
    pub cpu_aggregate: bool,

    #[command(flatten)]
    pub interrupts: crate::collectors::interrupts::Options,
    #[command(flatten)]
    pub ethtool: crate::collectors::ethtool::Options,
    #[command(flatten)]
    pub deprecated: crate::collectors::deprecated::Options,

    /// Enables metric node_cpu_guest_seconds_total (default: enabled).
    #[arg(long = "collector.cpu.guest", overrides_with = "no_cpu_guest")]
    pub cpu_guest: bool,
    #[arg(long = "no-collector.cpu.guest", hide = true)]
    pub no_cpu_guest: bool,
    /// Enables metric node_cpu_info.
    #[arg(long = "collector.cpu.info", overrides_with = "no_cpu_info")]
    pub cpu_info: bool,
    #[arg(
        long = "no-collector.cpu.info",
        hide = true,
        overrides_with = "cpu_info"
    )]
    pub no_cpu_info: bool,
    /// Regexp of `flags` in /proc/cpuinfo to report as node_cpu_flag_info.
    #[arg(long = "collector.cpu.info.flags-include", value_name = "REGEX")]
    pub cpu_flags_include: Option<String>,
    /// Regexp of `bugs` in /proc/cpuinfo to report as node_cpu_bug_info.
    #[arg(long = "collector.cpu.info.bugs-include", value_name = "REGEX")]
    pub cpu_bugs_include: Option<String>,

    /// Regexp of diskstats devices to include (mutually exclusive to device-exclude).
    #[arg(long = "collector.diskstats.device-include", value_name = "REGEX")]
    pub diskstats_include: Option<String>,
    /// Regexp of diskstats devices to exclude (mutually exclusive to device-include).
    #[arg(
        long = "collector.diskstats.device-exclude",
        value_name = "REGEX",
        alias = "collector.diskstats.ignored-devices"
    )]
    pub diskstats_exclude: Option<String>,

    /// Regexp of mount points to exclude for filesystem collector [default: /dev, /proc,
    /// /run/credentials, /sys and container storage].
    #[arg(
        long = "collector.filesystem.mount-points-exclude",
        value_name = "REGEX",
        alias = "collector.filesystem.ignored-mount-points"
    )]
    pub mount_points_exclude: Option<String>,
    /// Regexp of mount points to include for filesystem collector (mutually exclusive to
    /// mount-points-exclude).
    #[arg(
        long = "collector.filesystem.mount-points-include",
        value_name = "REGEX"
    )]
    pub mount_points_include: Option<String>,
    /// Regexp of filesystem types to exclude for filesystem collector [default: virtual
    /// and read-only image filesystems].
    #[arg(
        long = "collector.filesystem.fs-types-exclude",
        value_name = "REGEX",
        alias = "collector.filesystem.ignored-fs-types"
    )]
    pub fs_types_exclude: Option<String>,
    /// Regexp of filesystem types to include for filesystem collector (mutually exclusive
    /// to fs-types-exclude).
    #[arg(long = "collector.filesystem.fs-types-include", value_name = "REGEX")]
    pub fs_types_include: Option<String>,
    /// How long a statfs call may take before its mount is reported with device_error=1.
    #[arg(long = "collector.filesystem.mount-timeout", value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub mount_timeout: Duration,
    /// Most statfs calls in flight at once (a hung mount holds one until it returns).
    #[arg(
        long = "collector.filesystem.stat-workers",
        value_name = "N",
        default_value_t = 4
    )]
    pub stat_workers: usize,

    /// Regexp of net devices to include (mutually exclusive to device-exclude).
    #[arg(
        long = "collector.netdev.device-include",
        value_name = "REGEX",
        alias = "collector.netdev.device-whitelist"
    )]
    pub netdev_include: Option<String>,
    /// Regexp of net devices to exclude (mutually exclusive to device-include).
    #[arg(
        long = "collector.netdev.device-exclude",
        value_name = "REGEX",
        alias = "collector.netdev.device-blacklist"
    )]
    pub netdev_exclude: Option<String>,
    /// Collect address-info for every device.
    #[arg(long = "collector.netdev.address-info")]
    pub netdev_address_info: bool,
    /// Read interface statistics from the kernel over netlink (the default).
    #[arg(long = "collector.netdev.netlink")]
    pub netdev_netlink: bool,
    /// Read interface statistics from /proc/net/dev instead of netlink.
    #[arg(long = "no-collector.netdev.netlink")]
    pub no_netdev_netlink: bool,
    /// Export every counter the kernel keeps under its own name (`receive_errors`,
    /// `receive_missed_errors`, ...) instead of /proc/net/dev's folded columns.
    #[arg(long = "collector.netdev.enable-detailed-metrics")]
    pub netdev_detailed_metrics: bool,
    /// Add each interface's alias (sysfs `ifalias`) as the `ifalias` label.
    #[arg(long = "collector.netdev.label-ifalias")]
    pub netdev_label_ifalias: bool,

    /// Regexp of net devices to ignore for netclass collector.
    #[arg(
        long = "collector.netclass.ignored-devices",
        value_name = "REGEX",
        default_value = "^$"
    )]
    pub netclass_ignored: String,
    /// Ignore devices where the speed is invalid.
    #[arg(long = "collector.netclass.ignore-invalid-speed")]
    pub netclass_ignore_invalid_speed: bool,
    /// Accepted for compatibility; netclass always reads sysfs.
    #[arg(long = "collector.netclass.netlink", hide = true)]
    pub netclass_netlink: bool,
    /// Accepted for compatibility; it belongs to netclass' netlink mode, which kiln does
    /// not have (netdev reports the statistics).
    #[arg(long = "collector.netclass_rtnl.with-stats", hide = true)]
    pub netclass_rtnl_with_stats: bool,

    /// Regexp of fields to return for netstat collector.
    #[arg(long = "collector.netstat.fields", value_name = "REGEX", default_value = NETSTAT_FIELDS, hide_default_value = true)]
    pub netstat_fields: String,
    /// Regexp of fields to return for vmstat collector.
    #[arg(long = "collector.vmstat.fields", value_name = "REGEX", default_value = VMSTAT_FIELDS)]
    pub vmstat_fields: String,
    /// Export softirq calls per vector.
    #[arg(long = "collector.stat.softirq")]
    pub stat_softirq: bool,

    /// Regexp of arp devices to include (mutually exclusive to device-exclude).
    #[arg(long = "collector.arp.device-include", value_name = "REGEX")]
    pub arp_include: Option<String>,
    /// Regexp of arp devices to exclude (mutually exclusive to device-include).
    #[arg(long = "collector.arp.device-exclude", value_name = "REGEX")]
    pub arp_exclude: Option<String>,
    /// Accepted for compatibility; ARP entries are read from /proc/net/arp.
    #[arg(long = "collector.arp.netlink", hide = true)]
    pub arp_netlink: bool,
    #[arg(long = "no-collector.arp.netlink", hide = true)]
    pub no_arp_netlink: bool,

    /// Regexp of InfiniBand devices to include (mutually exclusive to device-exclude).
    #[arg(long = "collector.infiniband.device-include", value_name = "REGEX")]
    pub infiniband_include: Option<String>,
    /// Regexp of InfiniBand devices to exclude (mutually exclusive to device-include).
    #[arg(long = "collector.infiniband.device-exclude", value_name = "REGEX")]
    pub infiniband_exclude: Option<String>,

    /// Regexp of hwmon chips to include (mutually exclusive to chip-exclude).
    #[arg(long = "collector.hwmon.chip-include", value_name = "REGEX")]
    pub hwmon_chip_include: Option<String>,
    /// Regexp of hwmon chips to exclude (mutually exclusive to chip-include).
    #[arg(long = "collector.hwmon.chip-exclude", value_name = "REGEX")]
    pub hwmon_chip_exclude: Option<String>,
    /// Regexp of hwmon sensors (`chip;sensor`) to include.
    #[arg(long = "collector.hwmon.sensor-include", value_name = "REGEX")]
    pub hwmon_sensor_include: Option<String>,
    /// Regexp of hwmon sensors (`chip;sensor`) to exclude.
    #[arg(long = "collector.hwmon.sensor-exclude", value_name = "REGEX")]
    pub hwmon_sensor_exclude: Option<String>,

    /// Regexp of power supplies to ignore for powersupplyclass collector.
    #[arg(
        long = "collector.powersupply.ignored-supplies",
        value_name = "REGEX",
        default_value = "^$"
    )]
    pub powersupply_ignored: String,

    /// Directories (or globs) to read text files with metrics from; repeatable.
    #[arg(long = "collector.textfile.directory", value_name = "DIR")]
    pub textfile_directories: Vec<String>,

    /// Regexp of systemd units to include.
    #[arg(
        long = "collector.systemd.unit-include",
        value_name = "REGEX",
        default_value = ".+",
        alias = "collector.systemd.unit-whitelist"
    )]
    pub systemd_unit_include: String,
    /// Regexp of systemd units to exclude.
    #[arg(long = "collector.systemd.unit-exclude", value_name = "REGEX", default_value = SYSTEMD_UNIT_EXCLUDE, alias = "collector.systemd.unit-blacklist")]
    pub systemd_unit_exclude: String,
    /// Enables service unit metric node_systemd_unit_start_time_seconds.
    #[arg(long = "collector.systemd.enable-start-time-metrics")]
    pub systemd_start_time: bool,
    /// Enables service unit tasks metrics unit_tasks_current and unit_tasks_max.
    #[arg(long = "collector.systemd.enable-task-metrics")]
    pub systemd_tasks: bool,
    /// Enables service unit metric service_restart_total.
    #[arg(long = "collector.systemd.enable-restarts-metrics")]
    pub systemd_restarts: bool,
    /// Accepted for compatibility (upstream's test-only direct connection to systemd);
    /// the systemd collector always asks the system bus.
    #[arg(long = "collector.systemd.private", hide = true)]
    pub systemd_private: bool,

    /// Most YARN containers the yarn collector reports; those past it (in name order) are
    /// counted in node_yarn_containers_dropped_total (kiln addition).
    #[arg(
        long = "collector.yarn.max-containers",
        value_name = "N",
        default_value_t = 1000
    )]
    pub yarn_max_containers: usize,
    /// The cgroup hierarchy YARN's LinuxContainerExecutor puts containers under
    /// (yarn.nodemanager.linux-container-executor.cgroups.hierarchy), read below
    /// <path.sysfs>/fs/cgroup (kiln addition).
    #[arg(
        long = "collector.yarn.cgroup-hierarchy",
        value_name = "PATH",
        default_value = "hadoop-yarn"
    )]
    pub yarn_cgroup_hierarchy: String,

    #[command(flatten)]
    pub pcidevice: crate::collectors::pcidevice::Options,
    #[command(flatten)]
    pub rapl: crate::collectors::rapl::Options,
    #[command(flatten)]
    pub slabinfo: crate::collectors::slabinfo::Options,
    #[command(flatten)]
    pub sysctl: crate::collectors::sysctl::Options,
    #[command(flatten)]
    pub bcache: crate::collectors::bcache::Options,
    #[command(flatten)]
    pub tapestats: crate::collectors::tapestats::Options,
    #[command(flatten)]
    pub ipvs: crate::collectors::ipvs::Options,
    #[command(flatten)]
    pub qdisc: crate::collectors::qdisc::Options,
    #[command(flatten)]
    pub wifi: crate::collectors::wifi::Options,
    #[command(flatten)]
    pub perf: crate::collectors::perf::Options,

    /// Accepted for compatibility with node_exporter's systemd units; has no effect.
    #[arg(long = "runtime.gomaxprocs", hide = true)]
    pub gomaxprocs: Option<u32>,
}

impl CollectorOptions {
    /// Whether node_cpu_guest_seconds_total is on (upstream's default is yes).
    pub fn cpu_guest(&self) -> bool {
        self.cpu_guest || !self.no_cpu_guest
    }
}

/// node_exporter's duration flags are kingpin durations: Go's `time.ParseDuration`.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    kiln_registry::duration::parse_go_duration(text)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::NodeFlags;

    #[test]
    fn duration_flags_read_go_durations_as_kingpin_does() {
        let flags = NodeFlags::parse_from([
            "kiln-node-exporter",
            "--collector.filesystem.mount-timeout=1.5s",
            "--collector.time-budget=250ms",
        ]);
        assert_eq!(flags.options.mount_timeout, Duration::from_millis(1500));
        assert_eq!(flags.options.time_budget, Duration::from_millis(250));
    }
}
