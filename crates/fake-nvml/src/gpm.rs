//! GPM (GPU Performance Monitoring, Hopper and newer): samples and the metrics computed
//! between two of them. A sample records which device (or MIG GPU instance) it was taken
//! on and when; `nvmlGpmMetricsGet` checks the two samples belong together, as NVML does,
//! and answers each metric from the fixture's `gpm` values.

use std::os::raw::c_uint;
use std::time::Instant;

use nvml_wrapper_sys::bindings::*;

use crate::codes::*;
use crate::fixture::Gpm;
use crate::state::{self, Device, Target};

/// How many samples may be allocated at once.
const MAX_SAMPLES: usize = 256;

/// What one `nvmlGpmSample_t` points at.
#[derive(Debug)]
struct Sample {
    /// `(GPU index, MIG GPU instance id)` once filled.
    taken_on: Option<(usize, Option<u32>)>,
    at: Instant,
}

/// The fixture's name of each metric the exporter may ask for.
fn metric_name(id: c_uint) -> Option<&'static str> {
    Some(match id {
        nvmlGpmMetricId_t_NVML_GPM_METRIC_GRAPHICS_UTIL => "graphics_util",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_SM_UTIL => "sm_util",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_SM_OCCUPANCY => "sm_occupancy",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_INTEGER_UTIL => "integer_util",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_ANY_TENSOR_UTIL => "any_tensor_util",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_DFMA_TENSOR_UTIL => "dfma_tensor_util",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_HMMA_TENSOR_UTIL => "hmma_tensor_util",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_IMMA_TENSOR_UTIL => "imma_tensor_util",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_DRAM_BW_UTIL => "dram_bw_util",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_FP64_UTIL => "fp64_util",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_FP32_UTIL => "fp32_util",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_FP16_UTIL => "fp16_util",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_PCIE_TX_PER_SEC => "pcie_tx_per_sec",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_PCIE_RX_PER_SEC => "pcie_rx_per_sec",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC => "nvlink_total_rx_per_sec",
        nvmlGpmMetricId_t_NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC => "nvlink_total_tx_per_sec",
        _ => return None,
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmQueryDeviceSupport(
    device: nvmlDevice_t,
    support: *mut nvmlGpmSupport_t,
) -> nvmlReturn_t {
    if support.is_null() {
        return INVALID_ARGUMENT;
    }
    if unsafe { (*support).version } != NVML_GPM_SUPPORT_VERSION {
        return ARGUMENT_VERSION_MISMATCH;
    }
    state::maybe_hang("nvmlGpmQueryDeviceSupport", Some(device));
    match state::with(|state| {
        Ok(state
            .device(device)?
            .1
            .gpu()
            .is_some_and(|g| g.gpm.is_some()))
    }) {
        Ok(supported) => {
            unsafe { (*support).isSupportedDevice = c_uint::from(supported) };
            SUCCESS
        }
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmSampleAlloc(sample: *mut nvmlGpmSample_t) -> nvmlReturn_t {
    if sample.is_null() {
        return INVALID_ARGUMENT;
    }
    // A caller that forgot to free its samples runs out, as it would on a real driver.
    if let Err(code) = state::with(|state| {
        if state.gpm_samples >= MAX_SAMPLES {
            return Err(MEMORY);
        }
        state.gpm_samples += 1;
        Ok(())
    }) {
        return code;
    }
    let fresh = Box::new(Sample {
        taken_on: None,
        at: Instant::now(),
    });
    unsafe { sample.write(Box::into_raw(fresh).cast()) };
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmSampleFree(sample: nvmlGpmSample_t) -> nvmlReturn_t {
    if sample.is_null() {
        return INVALID_ARGUMENT;
    }
    // SAFETY: every sample handed out is a boxed `Sample`, freed once by its owner.
    drop(unsafe { Box::from_raw(sample.cast::<Sample>()) });
    let _ = state::with(|state| {
        state.gpm_samples = state.gpm_samples.saturating_sub(1);
        Ok(())
    });
    SUCCESS
}

/// Fills `sample` for the GPU of `device`, or its GPU instance `instance`.
unsafe fn fill(
    function: &str,
    device: nvmlDevice_t,
    instance: Option<u32>,
    sample: nvmlGpmSample_t,
) -> nvmlReturn_t {
    if sample.is_null() {
        return INVALID_ARGUMENT;
    }
    state::maybe_hang(function, Some(device));
    let found = state::with(|state| {
        let (target, found) = state.device(device)?;
        let (Target::Gpu(index), Device::Gpu(gpu)) = (target, found) else {
            return Err(INVALID_ARGUMENT);
        };
        gpu.gpm.as_ref().ok_or(NOT_SUPPORTED)?;
        if let Some(instance) = instance {
            let mig = gpu
                .mig
                .as_ref()
                .filter(|m| m.current)
                .ok_or(NOT_SUPPORTED)?;
            if !mig.devices.iter().any(|d| d.gpu_instance_id == instance) {
                return Err(INVALID_ARGUMENT);
            }
        }
        Ok(index)
    });
    match found {
        Ok(index) => {
            // SAFETY: as in `nvmlGpmSampleFree`.
            let sample = unsafe { &mut *sample.cast::<Sample>() };
            sample.taken_on = Some((index, instance));
            sample.at = Instant::now();
            SUCCESS
        }
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmSampleGet(
    device: nvmlDevice_t,
    sample: nvmlGpmSample_t,
) -> nvmlReturn_t {
    unsafe { fill("nvmlGpmSampleGet", device, None, sample) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmMigSampleGet(
    device: nvmlDevice_t,
    gpu_instance_id: c_uint,
    sample: nvmlGpmSample_t,
) -> nvmlReturn_t {
    unsafe { fill("nvmlGpmMigSampleGet", device, Some(gpu_instance_id), sample) }
}

/// The values of the device (or GPU instance) both samples were taken on.
fn values(state: &state::State, (gpu, instance): (usize, Option<u32>)) -> Option<Gpm> {
    let gpu = state.fixture.devices.get(gpu)?;
    match instance {
        None => gpu.gpm.clone(),
        Some(id) => gpu
            .mig
            .as_ref()?
            .devices
            .iter()
            .find(|d| d.gpu_instance_id == id)?
            .gpm
            .clone(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmMetricsGet(request: *mut nvmlGpmMetricsGet_t) -> nvmlReturn_t {
    if request.is_null() {
        return INVALID_ARGUMENT;
    }
    // SAFETY: the caller's request, valid for the call.
    let request = unsafe { &mut *request };
    if request.version != NVML_GPM_METRICS_GET_VERSION {
        return ARGUMENT_VERSION_MISMATCH;
    }
    if request.sample1.is_null()
        || request.sample2.is_null()
        || request.sample1 == request.sample2
        || request.numMetrics as usize > request.metrics.len()
    {
        return INVALID_ARGUMENT;
    }
    // SAFETY: as in `nvmlGpmSampleFree`.
    let (first, second) = unsafe {
        (
            &*request.sample1.cast::<Sample>(),
            &*request.sample2.cast::<Sample>(),
        )
    };
    // Two samples of the same device, the second taken after the first.
    let (Some(on), Some(other)) = (first.taken_on, second.taken_on) else {
        return INVALID_ARGUMENT;
    };
    if on != other || second.at <= first.at {
        return INVALID_ARGUMENT;
    }
    state::maybe_hang("nvmlGpmMetricsGet", None);
    let found = state::with(|state| values(state, on).ok_or(NOT_SUPPORTED));
    let values = match found {
        Ok(values) => values,
        Err(code) => return code,
    };
    for metric in &mut request.metrics[..request.numMetrics as usize] {
        let value = metric_name(metric.metricId).and_then(|name| values.get(name));
        metric.metricInfo = nvmlGpmMetric_t__bindgen_ty_1 {
            shortName: std::ptr::null_mut(),
            longName: std::ptr::null_mut(),
            unit: std::ptr::null_mut(),
        };
        match value {
            Some(&value) => {
                metric.value = value;
                metric.nvmlReturn = SUCCESS;
            }
            None => metric.nvmlReturn = NOT_SUPPORTED,
        }
    }
    SUCCESS
}
