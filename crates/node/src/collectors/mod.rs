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
pub(crate) mod bcache;
mod bcachefs;
mod bonding;
mod btrfs;
mod buddyinfo;
mod cgroups;
mod conntrack;
mod cpu;
mod cpu_vulnerabilities;
mod cpufreq;
pub(crate) mod deprecated;
mod diskstats;
mod dmi;
mod dmmultipath;
mod drbd;
mod drm;
mod edac;
mod entropy;
pub(crate) mod ethtool;
mod fibrechannel;
mod filefd;
mod filesystem;
mod hwmon;
mod infiniband;
pub mod interrupts;
pub mod ipvs;
mod kernel_hung;
mod ksmd;
mod lnstat;
mod loadavg;
mod logind;
mod mdadm;
mod meminfo;
mod meminfo_numa;
mod mountstats;
mod netclass;
mod netdev;
mod netstat;
mod network_route;
mod nfs;
mod nfsd;
mod nvme;
mod nvmesubsystem;
mod os;
pub mod pcidevice;
pub mod perf;
mod powersupplyclass;
mod pressure;
mod processes;
pub mod qdisc;
pub mod rapl;
mod schedstat;
mod selinux;
pub mod slabinfo;
mod sockstat;
mod softirqs;
mod softnet;
mod stat;
mod swap;
pub mod sysctl;
mod system_bus;
mod systemd;
pub(crate) mod tapestats;
mod tcpstat;
mod textfile;
mod thermal_zone;
mod time;
mod timex;
mod udp_queues;
mod uname;
mod vmstat;
mod watchdog;
pub mod wifi;
mod xfrm;
mod xfs;
mod yarn;
mod zfs;
mod zoneinfo;

/// What every collector is built from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The roots to read under.
    pub paths: Paths,
    /// The per-collector options.
    pub options: CollectorOptions,
    /// The names of the enabled collectors: node_exporter's cpu collector, for one, reports
    /// `/proc/cpuinfo`'s frequencies only while cpufreq runs too.
    pub enabled: Vec<&'static str>,
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
    on("bcache", bcache::build),
    on("bcachefs", bcachefs::build),
    on("bonding", bonding::build),
    on("btrfs", btrfs::build),
    off("buddyinfo", buddyinfo::build),
    off("cgroups", cgroups::build),
    on("conntrack", conntrack::build),
    on("cpu", cpu::build),
    off("cpu_vulnerabilities", cpu_vulnerabilities::build),
    on("cpufreq", cpufreq::build),
    on("diskstats", diskstats::build),
    on("dmi", dmi::build),
    on("dmmultipath", dmmultipath::build),
    off("drbd", drbd::build),
    off("drm", drm::build),
    on("edac", edac::build),
    on("entropy", entropy::build),
    off("ethtool", ethtool::build),
    on("fibrechannel", fibrechannel::build),
    on("filefd", filefd::build),
    on("filesystem", filesystem::build),
    on("hwmon", hwmon::build),
    on("infiniband", infiniband::build),
    off("interrupts", interrupts::build),
    on("ipvs", ipvs::build),
    on("kernel_hung", kernel_hung::build),
    off("ksmd", ksmd::build),
    off("lnstat", lnstat::build),
    on("loadavg", loadavg::build),
    off("logind", logind::build),
    on("mdadm", mdadm::build),
    on("meminfo", meminfo::build),
    off("meminfo_numa", meminfo_numa::build),
    off("mountstats", mountstats::build),
    on("netclass", netclass::build),
    on("netdev", netdev::build),
    on("netstat", netstat::build),
    off("network_route", network_route::build),
    on("nfs", nfs::build),
    on("nfsd", nfsd::build),
    off("ntp", deprecated::build_ntp),
    on("nvme", nvme::build),
    off("nvmesubsystem", nvmesubsystem::build),
    on("os", os::build),
    off("pcidevice", pcidevice::build),
    off("perf", perf::build),
    on("powersupplyclass", powersupplyclass::build),
    on("pressure", pressure::build),
    off("processes", processes::build),
    off("qdisc", qdisc::build),
    on("rapl", rapl::build),
    off("runit", deprecated::build_runit),
    on("schedstat", schedstat::build),
    on("selinux", selinux::build),
    off("slabinfo", slabinfo::build),
    on("sockstat", sockstat::build),
    off("softirqs", softirqs::build),
    on("softnet", softnet::build),
    on("stat", stat::build),
    off("supervisord", deprecated::build_supervisord),
    off("swap", swap::build),
    off("sysctl", sysctl::build),
    off("systemd", systemd::build),
    on("tapestats", tapestats::build),
    off("tcpstat", tcpstat::build),
    on("textfile", textfile::build),
    on("thermal_zone", thermal_zone::build),
    on("time", time::build),
    on("timex", timex::build),
    on("udp_queues", udp_queues::build),
    on("uname", uname::build),
    on("vmstat", vmstat::build),
    on("watchdog", watchdog::build),
    off("wifi", wifi::build),
    off("xfrm", xfrm::build),
    on("xfs", xfs::build),
    off("yarn", yarn::build),
    on("zfs", zfs::build),
    off("zoneinfo", zoneinfo::build),
];

/// The spec of a collector by name.
pub fn spec(name: &str) -> Option<&'static Spec> {
    ALL.iter().find(|spec| spec.name == name)
}

/// Boxes a collector for the table.
pub(crate) fn boxed(collector: impl Collector) -> Result<Box<dyn Collector>, ConfigError> {
    Ok(Box::new(collector))
}

/// Helpers for the collectors' own tests.
#[cfg(test)]
pub(crate) mod testing {
    use kiln_registry::MetricSet;

    /// Every series of `out` as `name{label=value,…} value`, labels sorted by name.
    pub(crate) fn series(out: &mut MetricSet) -> Vec<String> {
        out.seal();
        out.families()
            .flat_map(|family| {
                let name = family.name();
                family.samples().map(move |sample| {
                    let labels: Vec<String> =
                        sample.labels().map(|(n, v)| format!("{n}={v}")).collect();
                    format!("{name}{{{}}} {}", labels.join(","), sample.value())
                })
            })
            .collect()
    }
}
