//! One collector per concern, each reading one GPU through a [`Context`] and writing its
//! families. A collector returns early only when the GPU or the driver is gone; a value
//! the GPU cannot give is simply absent.

pub mod clocks;
pub mod ecc;
pub mod gpm;
pub mod identity;
pub mod memory;
pub mod mig;
pub mod nvlink;
pub mod pcie;
pub mod power;
pub mod processes;
pub mod state;
pub mod thermal;
pub mod throttle;
pub mod utilization;

use std::path::Path;

use nvml_wrapper::Device;

use crate::calls::{Abort, Reader};
use crate::families::Families;

/// What a collector may opt into.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Per-process memory and utilisation (`--collect.processes`).
    pub processes: bool,
    /// PCIe throughput, which costs about 20 ms per GPU and direction
    /// (`--collect.pcie-throughput`).
    pub pcie_throughput: bool,
    /// Where `/proc` is, for process names and cgroups.
    pub procfs: std::path::PathBuf,
    /// GPM profiling metrics on GPUs that have them (on unless `--no-collect.gpm`).
    pub gpm: bool,
}

/// Facts learnt about one device that do not change while it stays the same device.
#[derive(Debug, Default)]
pub struct Learnt {
    pub identity: Option<identity::Identity>,
    /// Bitmask of the clock-event reasons the device reports, once asked.
    pub supported_reasons: Option<u64>,
    /// How many NVLinks the device has, once probed.
    pub nvlinks: Option<u32>,
    /// The newest process-utilisation sample seen, in µs.
    pub last_process_sample: u64,
    /// The MIG GPU instances found this cycle.
    pub mig_instances: Vec<u32>,
    /// GPM support and the samples kept from the previous cycle.
    pub gpm: gpm::Samples,
}

/// One GPU's reading for a cycle.
#[derive(Debug)]
pub struct Context<'a, 'n> {
    pub device: &'a Device<'n>,
    /// The library `device` belongs to.
    pub nvml: &'a std::sync::Arc<nvml_wrapper::Nvml>,
    /// `gpu="…",uuid="…"`.
    pub labels: &'a crate::families::GpuLabels,
    pub reader: Reader<'a>,
    pub learnt: &'a mut Learnt,
    pub options: &'a Options,
}

impl Context<'_, '_> {
    /// Where `/proc` is.
    pub fn procfs(&self) -> &Path {
        &self.options.procfs
    }
}

/// Runs every collector on one GPU.
pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    identity::collect(cx, out)?;
    utilization::collect(cx, out)?;
    memory::collect(cx, out)?;
    thermal::collect(cx, out)?;
    power::collect(cx, out)?;
    clocks::collect(cx, out)?;
    throttle::collect(cx, out)?;
    ecc::collect(cx, out)?;
    pcie::collect(cx, out)?;
    nvlink::collect(cx, out)?;
    mig::collect(cx, out)?;
    gpm::collect(cx, out)?;
    state::collect(cx, out)?;
    processes::collect(cx, out)?;
    Ok(())
}
