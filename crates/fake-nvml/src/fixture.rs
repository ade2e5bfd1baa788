//! The fixture: what the fake driver reports, read from the JSON file named by
//! `FAKE_NVML_FIXTURE`. A field that is absent means "not supported on this device", so a
//! fixture for a passively cooled board simply has no `fans`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole fake system.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Fixture {
    pub(crate) driver_version: String,
    pub(crate) cuda_version: i32,
    /// `nvmlInit_v2` fails with this NVML return code (9 = driver not loaded).
    pub(crate) init_error: Option<u32>,
    /// One NVML function that hangs, as in a wedged driver, until the fixture no longer
    /// names it or `seconds` have passed; on every GPU, or on the one `gpu` names.
    pub(crate) slow: Option<Slow>,
    /// XID events, delivered in order by `nvmlEventSetWait_v2`. Appending to the list
    /// (rewriting the file) delivers the new ones.
    pub(crate) xid_events: Vec<XidEvent>,
    pub(crate) devices: Vec<Gpu>,
}

impl Default for Fixture {
    fn default() -> Self {
        Self {
            driver_version: "550.54.15".into(),
            cuda_version: 12040,
            init_error: None,
            slow: None,
            xid_events: Vec::new(),
            devices: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Slow {
    pub(crate) function: String,
    pub(crate) seconds: f64,
    #[serde(default)]
    pub(crate) gpu: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XidEvent {
    pub(crate) gpu: usize,
    pub(crate) xid: u64,
}

/// A counter: a fixed number, or one that advances with time since the fixture was first
/// read (`{"start": 1000, "per_second": 250}`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub(crate) enum Counter {
    Fixed(u64),
    Advancing { start: u64, per_second: f64 },
}

impl Counter {
    pub(crate) fn at(self, elapsed_seconds: f64) -> u64 {
        match self {
            Self::Fixed(value) => value,
            Self::Advancing { start, per_second } => {
                start.saturating_add((per_second * elapsed_seconds) as u64)
            }
        }
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::Fixed(0)
    }
}

/// One physical GPU.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Gpu {
    pub(crate) name: String,
    pub(crate) uuid: String,
    pub(crate) pci_bus_id: String,
    pub(crate) serial: Option<String>,
    pub(crate) minor_number: Option<u32>,
    pub(crate) vbios_version: Option<String>,
    pub(crate) brand: Option<u32>,
    pub(crate) architecture: Option<u32>,
    pub(crate) compute_capability: Option<[i32; 2]>,
    /// Fallen off the bus: every call about it returns GPU_IS_LOST.
    pub(crate) lost: bool,
    pub(crate) utilization: Option<Utilization>,
    pub(crate) encoder_utilization: Option<u32>,
    pub(crate) decoder_utilization: Option<u32>,
    pub(crate) memory: Option<Memory>,
    pub(crate) bar1: Option<Bar1>,
    pub(crate) temperature: Option<u32>,
    pub(crate) memory_temperature: Option<u32>,
    pub(crate) temperature_thresholds: Option<Thresholds>,
    pub(crate) power_usage_mw: Option<u32>,
    pub(crate) enforced_power_limit_mw: Option<u32>,
    pub(crate) power_management_limit_mw: Option<u32>,
    pub(crate) power_management_default_limit_mw: Option<u32>,
    pub(crate) energy_mj: Option<Counter>,
    pub(crate) fans: Option<Vec<u32>>,
    pub(crate) clocks: Option<Clocks>,
    pub(crate) max_clocks: Option<Clocks>,
    pub(crate) performance_state: Option<u32>,
    pub(crate) throttle_reasons: Option<u64>,
    pub(crate) supported_throttle_reasons: Option<u64>,
    pub(crate) violation_ns: Option<Violations>,
    pub(crate) ecc: Option<Ecc>,
    pub(crate) retired_pages: Option<RetiredPages>,
    pub(crate) remapped_rows: Option<RemappedRows>,
    pub(crate) pcie: Option<Pcie>,
    pub(crate) nvlinks: Option<Vec<NvLink>>,
    pub(crate) mig: Option<Mig>,
    pub(crate) processes: Option<Vec<Process>>,
    /// GPM (Hopper and newer): each metric's value between two samples, by the name of
    /// its `NVML_GPM_METRIC_` constant in lower case (`sm_util`, `pcie_tx_per_sec`, …).
    /// Absent: the GPU does not support GPM. A metric left out answers NOT_SUPPORTED.
    pub(crate) gpm: Option<Gpm>,
    /// NVML's compute mode (0 default, 2 prohibited, 3 exclusive process).
    pub(crate) compute_mode: Option<u32>,
    /// The field `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION` (0 none … 4 drain and reset).
    pub(crate) recovery_action: Option<u32>,
    /// NVSwitch fabric registration (`nvmlDeviceGetGpuFabricInfo`).
    pub(crate) fabric: Option<Fabric>,
    /// vGPU software licences, as a VM with a vGPU sees them
    /// (`nvmlDeviceGetGridLicensableFeatures_v4`); absent on bare metal.
    pub(crate) vgpu_licences: Option<Vec<VgpuLicence>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VgpuLicence {
    /// 1 vGPU, 2 NVIDIA RTX, 3 gaming, 4 compute.
    pub(crate) feature: u32,
    pub(crate) licensed: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Fabric {
    /// 1 not started, 2 in progress, 3 completed.
    pub(crate) state: u8,
    /// An NVML return code: 0 when registration succeeded.
    #[serde(default)]
    pub(crate) status: u32,
    #[serde(default)]
    pub(crate) clique_id: u32,
}

/// GPM metric values by name.
pub(crate) type Gpm = BTreeMap<String, f64>;

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Utilization {
    pub(crate) gpu: u32,
    pub(crate) memory: u32,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Memory {
    pub(crate) total: u64,
    #[serde(default)]
    pub(crate) reserved: u64,
    pub(crate) used: u64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Bar1 {
    pub(crate) total: u64,
    pub(crate) used: u64,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Thresholds {
    pub(crate) shutdown: Option<u32>,
    pub(crate) slowdown: Option<u32>,
    pub(crate) gpu_max: Option<u32>,
    pub(crate) memory_max: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Clocks {
    pub(crate) graphics: Option<u32>,
    pub(crate) sm: Option<u32>,
    pub(crate) memory: Option<u32>,
    pub(crate) video: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Violations {
    pub(crate) power: Option<Counter>,
    pub(crate) thermal: Option<Counter>,
    pub(crate) sync_boost: Option<Counter>,
    pub(crate) board_limit: Option<Counter>,
    pub(crate) low_utilization: Option<Counter>,
    pub(crate) reliability: Option<Counter>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Ecc {
    pub(crate) enabled: bool,
    pub(crate) corrected_volatile: Counter,
    pub(crate) corrected_aggregate: Counter,
    pub(crate) uncorrected_volatile: Counter,
    pub(crate) uncorrected_aggregate: Counter,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RetiredPages {
    pub(crate) single_bit: u32,
    pub(crate) double_bit: u32,
    pub(crate) pending: bool,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RemappedRows {
    pub(crate) correctable: u32,
    pub(crate) uncorrectable: u32,
    pub(crate) pending: bool,
    pub(crate) failure: bool,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Pcie {
    pub(crate) generation: u32,
    pub(crate) width: u32,
    pub(crate) max_generation: u32,
    pub(crate) max_width: u32,
    pub(crate) replays: Counter,
    pub(crate) tx_kbps: Option<u32>,
    pub(crate) rx_kbps: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct NvLink {
    pub(crate) active: bool,
    pub(crate) replay: Counter,
    pub(crate) recovery: Counter,
    pub(crate) crc_flit: Counter,
    pub(crate) crc_data: Counter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Mig {
    pub(crate) current: bool,
    pub(crate) pending: bool,
    pub(crate) max_devices: u32,
    pub(crate) devices: Vec<MigDevice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MigDevice {
    pub(crate) uuid: String,
    pub(crate) name: String,
    pub(crate) gpu_instance_id: u32,
    pub(crate) compute_instance_id: u32,
    pub(crate) memory: Memory,
    /// GPM values of this MIG device's GPU instance (`nvmlGpmMigSampleGet`).
    #[serde(default)]
    pub(crate) gpm: Option<Gpm>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Process {
    pub(crate) pid: u32,
    pub(crate) used_memory: Option<u64>,
    #[serde(default)]
    pub(crate) gpu_instance_id: Option<u32>,
    #[serde(default)]
    pub(crate) compute_instance_id: Option<u32>,
    #[serde(default)]
    pub(crate) sm_util: Option<u32>,
    #[serde(default)]
    pub(crate) mem_util: Option<u32>,
    #[serde(default)]
    pub(crate) enc_util: Option<u32>,
    #[serde(default)]
    pub(crate) dec_util: Option<u32>,
}
