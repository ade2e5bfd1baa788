//! Command-line flags: the standard web flags and the collector's own.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use kiln_registry::WebFlags;
use kiln_registry::duration::parse_go_duration;

/// Serves NVIDIA GPU metrics read through NVML: utilisation, memory, temperatures, power
/// and energy, clocks and throttling, ECC and XID errors, PCIe and NVLink, MIG devices and
/// (optionally) per-process memory with its YARN container or systemd unit.
#[derive(Debug, Clone, Parser)]
#[command(name = "kiln-gpu-exporter", version, disable_version_flag = true)]
#[command(
    after_help = "Each GPU is read on a thread of its own every --collect.interval; a scrape \
    serves the latest readings and never waits for the driver."
)]
pub struct Cli {
    /// The NVML library to load, as a path or a file name for the loader's search path.
    #[arg(
        long = "nvml.library-path",
        value_name = "PATH",
        default_value = "libnvidia-ml.so.1"
    )]
    pub library_path: PathBuf,

    /// How often the GPUs are read.
    #[arg(long = "collect.interval", default_value = "15s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub interval: Duration,

    /// How long one NVML call may run before it counts as wedged: a GPU whose call runs
    /// longer is reported as nvidia_gpu_stalled 1 without readings while the others go on;
    /// a system-wide call that runs longer withholds every GPU's readings.
    #[arg(long = "collect.timeout", default_value = "10s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Per-process GPU memory and utilisation, labelled with PID, command, and the YARN
    /// container, container id or systemd unit from `/proc/<pid>/cgroup`.
    #[arg(long = "collect.processes", alias = "collect.compute-apps")]
    pub processes: bool,

    /// PCIe throughput per direction. The driver samples each for 20 ms, so a cycle takes
    /// about 40 ms longer per GPU.
    #[arg(long = "collect.pcie-throughput")]
    pub pcie_throughput: bool,

    /// Do not read GPM profiling metrics (SM, tensor and DRAM activity, PCIe and NVLink
    /// throughput) on GPUs that offer them (Hopper and newer).
    #[arg(long = "no-collect.gpm")]
    pub no_gpm: bool,

    /// Do not watch for XID errors (nvidia_gpu_xid_errors_total).
    #[arg(long = "no-collect.xid-events")]
    pub no_xid_events: bool,

    /// Do not read the kernel log for XIDs that NVML never reports (XID 79, fallen off the
    /// bus).
    #[arg(long = "no-collect.xid-kmsg")]
    pub no_xid_kmsg: bool,

    /// The kernel log to read XID 79 from.
    #[arg(
        long = "collect.xid-kmsg.path",
        default_value = "/dev/kmsg",
        value_name = "PATH"
    )]
    pub kmsg_path: PathBuf,

    /// procfs mount point, for process names and cgroups.
    #[arg(long = "path.procfs", default_value = "/proc", value_name = "PATH")]
    pub procfs: PathBuf,

    #[command(flatten)]
    pub web: WebFlags,
}

impl Cli {
    /// Parses the process's arguments, exiting with usage on error.
    pub fn parse_args() -> Self {
        Self::parse()
    }
}
