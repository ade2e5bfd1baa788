//! Every collector, one per file, and the table that says which are on by default.
//!
//! Each module has a `build` function that turns the settings into a boxed
//! [`Collector`]; a bad option (an invalid regular expression, say) is a
//! [`ConfigError`] that stops the exporter before it listens.

use kiln_registry::Collector;
use kiln_registry::config::ConfigError;

use crate::flags::CollectorOptions;
use crate::paths::Paths;

mod arp;
mod conntrack;
mod cpu;
mod cpufreq;
pub(crate) mod deprecated;
mod diskstats;
mod drm;
mod edac;
mod entropy;
pub(crate) mod ethtool;
mod filefd;
mod filesystem;
mod hwmon;
pub(crate) mod infiniband;
pub(crate) mod interrupts;
mod loadavg;
mod logind;
mod mdadm;
mod meminfo;
mod netclass;
mod netdev;
mod netstat;
mod network_route;
mod nvme;
mod nvmesubsystem;
mod os;
mod powersupplyclass;
mod pressure;
mod processes;
mod schedstat;
mod selinux;
mod sockstat;
mod softnet;
mod stat;
mod swap;
mod systemd;
mod tcpstat;
mod textfile;
mod thermal_zone;
mod time;
mod timex;
mod udp_queues;
mod uname;
mod vmstat;
mod xfs;
mod yarn;
mod zfs;

/// What every collector is built from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The roots to read under.
    pub paths: Paths,
    /// The per-collector options.
    pub options: CollectorOptions,
}

/// Builds one collector from the settings.
type Build = fn(&Settings) -> Result<Box<dyn Collector>, ConfigError>;

/// A collector the exporter knows: its name, whether it runs without being asked for,
/// and how to build it.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The name in `--collector.<name>` and in the `collector` label.
    pub name: &'static str,
    /// On unless `--no-collector.<name>` or `--collector.disable-defaults`.
    pub enabled_by_default: bool,
    build: Build,
}

impl Spec {
    /// Builds the collector.
    pub fn build(&self, settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
        (self.build)(settings)
    }
}

const fn on(name: &'static str, build: Build) -> Spec {
    Spec {
        name,
        enabled_by_default: true,
        build,
    }
}

const fn off(name: &'static str, build: Build) -> Spec {
    Spec {
        name,
        enabled_by_default: false,
        build,
    }
}

/// Every collector, in name order. Defaults follow upstream node_exporter on Linux.
pub const ALL: &[Spec] = &[
    on("arp", arp::build),
    on("conntrack", conntrack::build),
    on("cpu", cpu::build),
    on("cpufreq", cpufreq::build),
    on("diskstats", diskstats::build),
    off("drm", drm::build),
    on("edac", edac::build),
    on("entropy", entropy::build),
    off("ethtool", ethtool::build),
    on("filefd", filefd::build),
    on("filesystem", filesystem::build),
    on("hwmon", hwmon::build),
    on("infiniband", infiniband::build),
    off("interrupts", interrupts::build),
    on("loadavg", loadavg::build),
    off("logind", logind::build),
    on("mdadm", mdadm::build),
    on("meminfo", meminfo::build),
    on("netclass", netclass::build),
    on("netdev", netdev::build),
    on("netstat", netstat::build),
    off("network_route", network_route::build),
    off("ntp", deprecated::build_ntp),
    on("nvme", nvme::build),
    off("nvmesubsystem", nvmesubsystem::build),
    on("os", os::build),
    on("powersupplyclass", powersupplyclass::build),
    on("pressure", pressure::build),
    off("processes", processes::build),
    off("runit", deprecated::build_runit),
    on("schedstat", schedstat::build),
    on("selinux", selinux::build),
    on("sockstat", sockstat::build),
    on("softnet", softnet::build),
    on("stat", stat::build),
    off("supervisord", deprecated::build_supervisord),
    off("swap", swap::build),
    off("systemd", systemd::build),
    off("tcpstat", tcpstat::build),
    on("textfile", textfile::build),
    on("thermal_zone", thermal_zone::build),
    on("time", time::build),
    on("timex", timex::build),
    on("udp_queues", udp_queues::build),
    on("uname", uname::build),
    on("vmstat", vmstat::build),
    on("xfs", xfs::build),
    off("yarn", yarn::build),
    on("zfs", zfs::build),
];

/// The spec of a collector by name.
pub fn spec(name: &str) -> Option<&'static Spec> {
    ALL.iter().find(|spec| spec.name == name)
}

/// Boxes a collector for the table.
pub(crate) fn boxed(collector: impl Collector) -> Result<Box<dyn Collector>, ConfigError> {
    Ok(Box::new(collector))
}
