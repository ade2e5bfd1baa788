//! GPM profiling metrics (Hopper and newer): SM activity and occupancy, pipe activity,
//! graphics-engine activity, DRAM bandwidth, PCIe and NVLink throughput, for the GPU and
//! for each MIG GPU instance.
//!
//! The driver computes each metric from two samples. Each cycle takes one and keeps it, so
//! the values are averages over the interval since the previous cycle (the first cycle of
//! a GPU has none). A GPU without GPM reports `nvidia_gpu_prof_supported 0`, found once.

#![allow(unsafe_code)]

use std::sync::Arc;

use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::gpm::{GpmSample, gpm_metrics_get};
use nvml_wrapper::struct_wrappers::gpm::GpmMetricResult;
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::nvmlGpmSample_t;

use super::Context;
use crate::calls::{Abort, Call};
use crate::families::{Families, Spec};
use crate::family;

family!(
    SUPPORTED,
    gauge,
    "nvidia_gpu_prof_supported",
    "1 if the GPU offers GPM profiling metrics (Hopper and newer), else 0."
);
family!(
    GRAPHICS,
    gauge,
    "nvidia_gpu_prof_graphics_engine_active_ratio",
    "Fraction of the collection interval in which a graphics or compute context was active (GPM, 0-1)."
);
family!(
    SM_ACTIVE,
    gauge,
    "nvidia_gpu_prof_sm_active_ratio",
    "Fraction of the interval the SMs had at least one warp assigned, averaged over all SMs (GPM, 0-1)."
);
family!(
    SM_OCCUPANCY,
    gauge,
    "nvidia_gpu_prof_sm_occupancy_ratio",
    "Warps resident on the SMs relative to the theoretical maximum, averaged over the interval and all SMs (GPM, 0-1)."
);
family!(
    PIPE,
    gauge,
    "nvidia_gpu_prof_pipe_active_ratio",
    "Fraction of the interval the SMs spent in a pipe: tensor (any tensor op), tensor_dfma, tensor_hmma, tensor_imma, and non-tensor fp64, fp32, fp16, integer (GPM, 0-1)."
);
family!(
    DRAM,
    gauge,
    "nvidia_gpu_prof_dram_active_ratio",
    "Device memory bandwidth used, relative to the peak (GPM, 0-1)."
);
family!(
    PCIE,
    gauge,
    "nvidia_gpu_prof_pcie_bytes_per_second",
    "PCIe traffic over the interval by direction (tx: from the GPU, rx: to it), headers included (GPM)."
);
family!(
    NVLINK,
    gauge,
    "nvidia_gpu_prof_nvlink_bytes_per_second",
    "NVLink traffic over the interval, all links, by direction (tx, rx) (GPM)."
);

/// How the driver states a metric.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// 0 to 100.
    Percent,
    /// MiB per second.
    MebibytesPerSecond,
}

/// A metric, the family it goes to, the label that tells it from its siblings there, and
/// its unit.
type Metric = (
    GpmMetricId,
    &'static Spec,
    Option<(&'static str, &'static str)>,
    Unit,
);

static METRICS: [Metric; 16] = [
    (GpmMetricId::GraphicsUtil, &GRAPHICS, None, Unit::Percent),
    (GpmMetricId::SmUtil, &SM_ACTIVE, None, Unit::Percent),
    (GpmMetricId::SmOccupancy, &SM_OCCUPANCY, None, Unit::Percent),
    (
        GpmMetricId::AnyTensorUtil,
        &PIPE,
        Some(("pipe", "tensor")),
        Unit::Percent,
    ),
    (
        GpmMetricId::DfmaTensorUtil,
        &PIPE,
        Some(("pipe", "tensor_dfma")),
        Unit::Percent,
    ),
    (
        GpmMetricId::HmmaTensorUtil,
        &PIPE,
        Some(("pipe", "tensor_hmma")),
        Unit::Percent,
    ),
    (
        GpmMetricId::ImmaTensorUtil,
        &PIPE,
        Some(("pipe", "tensor_imma")),
        Unit::Percent,
    ),
    (
        GpmMetricId::Fp64Util,
        &PIPE,
        Some(("pipe", "fp64")),
        Unit::Percent,
    ),
    (
        GpmMetricId::Fp32Util,
        &PIPE,
        Some(("pipe", "fp32")),
        Unit::Percent,
    ),
    (
        GpmMetricId::Fp16Util,
        &PIPE,
        Some(("pipe", "fp16")),
        Unit::Percent,
    ),
    (
        GpmMetricId::IntegerUtil,
        &PIPE,
        Some(("pipe", "integer")),
        Unit::Percent,
    ),
    (GpmMetricId::DramBwUtil, &DRAM, None, Unit::Percent),
    (
        GpmMetricId::PcieTxPerSec,
        &PCIE,
        Some(("direction", "tx")),
        Unit::MebibytesPerSecond,
    ),
    (
        GpmMetricId::PcieRxPerSec,
        &PCIE,
        Some(("direction", "rx")),
        Unit::MebibytesPerSecond,
    ),
    (
        GpmMetricId::NvlinkTotalTxPerSec,
        &NVLINK,
        Some(("direction", "tx")),
        Unit::MebibytesPerSecond,
    ),
    (
        GpmMetricId::NvlinkTotalRxPerSec,
        &NVLINK,
        Some(("direction", "rx")),
        Unit::MebibytesPerSecond,
    ),
];

/// A GPU's GPM state between cycles: whether it has GPM, and the latest sample of the GPU
/// and of each MIG GPU instance, freed (through the library that made them) when the GPU
/// is learnt afresh.
#[derive(Default)]
pub struct Samples {
    supported: Option<bool>,
    owner: Option<Arc<Nvml>>,
    gpu: Option<nvmlGpmSample_t>,
    instances: Vec<(u32, nvmlGpmSample_t)>,
}

impl std::fmt::Debug for Samples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Samples")
            .field("supported", &self.supported)
            .field("gpu", &self.gpu.is_some())
            .field("instances", &self.instances.len())
            .finish()
    }
}

impl Samples {
    /// Frees every sample kept.
    fn release(&mut self) {
        let handles = self.gpu.take().into_iter();
        let handles = handles.chain(self.instances.drain(..).map(|(_, h)| h));
        match &self.owner {
            // SAFETY: each handle came from `owner`'s nvmlGpmSampleAlloc and is freed once.
            Some(owner) => handles.for_each(|h| drop(unsafe { GpmSample::from_handle(owner, h) })),
            None => handles.for_each(drop),
        }
    }
}

impl Drop for Samples {
    fn drop(&mut self) {
        self.release();
    }
}

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    if !cx.options.gpm {
        return Ok(());
    }
    let device = cx.device;
    let supported = match cx.learnt.gpm.supported {
        Some(known) => known,
        None => {
            let Some(known) = ask_support(cx)? else {
                return Ok(());
            };
            cx.learnt.gpm.supported = Some(known);
            known
        }
    };
    out.sample(
        &SUPPORTED,
        cx.labels,
        &[],
        if supported { 1.0 } else { 0.0 },
    );
    if !supported {
        return Ok(());
    }
    let state = &mut cx.learnt.gpm;
    if !state
        .owner
        .as_ref()
        .is_some_and(|owner| std::ptr::eq(owner.as_ref(), device.nvml()))
    {
        state.release();
        state.owner = Some(Arc::clone(cx.nvml));
    }
    // The whole GPU.
    if let Some(now) = cx.reader.call(Call::GpmSampleGet, || device.gpm_sample())? {
        let previous = cx.learnt.gpm.gpu.replace(now.into_handle());
        let latest = cx.learnt.gpm.gpu;
        if let (Some(previous), Some(latest)) = (previous, latest) {
            let results = compare(cx, device, previous, latest)?;
            write(cx, out, &results, None);
        }
    }
    // Each MIG GPU instance, as the MIG collector found them this cycle.
    let instances = cx.learnt.mig_instances.clone();
    cx.learnt
        .gpm
        .instances
        .retain(|(id, handle)| instances.contains(id) || free_one(cx.nvml, *handle));
    for id in instances {
        let Some(now) = cx
            .reader
            .call_each(Call::GpmMigSampleGet, || device.gpm_mig_sample(id))?
        else {
            continue;
        };
        let now = now.into_handle();
        let kept = &mut cx.learnt.gpm.instances;
        let previous = match kept.iter_mut().find(|(kept_id, _)| *kept_id == id) {
            Some((_, handle)) => Some(std::mem::replace(handle, now)),
            None => {
                kept.push((id, now));
                None
            }
        };
        if let Some(previous) = previous {
            let results = compare(cx, device, previous, now)?;
            let id = id.to_string();
            write(cx, out, &results, Some(&id));
        }
    }
    Ok(())
}

/// Asks once whether the GPU has GPM. `None`: no answer this time, ask again next cycle.
fn ask_support(cx: &mut Context<'_, '_>) -> Result<Option<bool>, Abort> {
    let device = cx.device;
    let answer = cx
        .reader
        .call(Call::GpmQueryDeviceSupport, || device.gpm_support())?;
    let known = match answer {
        Some(known) => known,
        // NOT_SUPPORTED, or a driver without GPM: the same as a "no".
        None if cx.reader.support.lacks(Call::GpmQueryDeviceSupport) => false,
        None => return Ok(None),
    };
    if !known {
        tracing::info!(
            gpu = cx.reader.gpu,
            "This GPU has no GPM (Hopper and newer do): no profiling metrics, nvidia_gpu_prof_supported 0."
        );
    }
    Ok(Some(known))
}

/// Frees one sample of `nvml`; false, for `retain`.
fn free_one(nvml: &Nvml, handle: nvmlGpmSample_t) -> bool {
    // SAFETY: the handle came from this library's nvmlGpmSampleAlloc and is dropped from
    // the kept list by the caller.
    drop(unsafe { GpmSample::from_handle(nvml, handle) });
    false
}

/// The metrics between `previous` (freed here) and `latest` (kept).
fn compare(
    cx: &mut Context<'_, '_>,
    device: &Device<'_>,
    previous: nvmlGpmSample_t,
    latest: nvmlGpmSample_t,
) -> Result<Vec<Result<GpmMetricResult, nvml_wrapper::error::NvmlError>>, Abort> {
    let nvml = device.nvml();
    // SAFETY: both handles came from this library (the samples are released whenever the
    // library changes); `previous` is owned here and freed on drop, `latest` stays owned by
    // the kept state and is only borrowed through a wrapper that is never dropped.
    let previous = unsafe { GpmSample::from_handle(nvml, previous) };
    let latest = std::mem::ManuallyDrop::new(unsafe { GpmSample::from_handle(nvml, latest) });
    let ids: Vec<GpmMetricId> = METRICS.iter().map(|m| m.0).collect();
    let results = cx.reader.call_each(Call::GpmMetricsGet, || {
        gpm_metrics_get(nvml, &previous, &latest, &ids)
    })?;
    Ok(results.unwrap_or_default())
}

fn write(
    cx: &Context<'_, '_>,
    out: &mut Families,
    results: &[Result<GpmMetricResult, nvml_wrapper::error::NvmlError>],
    instance: Option<&str>,
) {
    for ((_, spec, label, unit), result) in METRICS.iter().zip(results) {
        // A metric this GPU does not compute is simply absent.
        let Ok(result) = result else { continue };
        let value = match unit {
            Unit::Percent => result.value / 100.0,
            Unit::MebibytesPerSecond => result.value * 1_048_576.0,
        };
        let mut extra: smallvec::SmallVec<[(&str, &str); 2]> = smallvec::SmallVec::new();
        extra.extend(label.iter().copied());
        if let Some(id) = instance {
            extra.push(("gpu_instance_id", id));
        }
        out.sample(spec, cx.labels, &extra, value);
    }
}
