//! NVML functions nvml-wrapper does not wrap, called through its loaded library.
//!
//! Each goes through the library's *field* for the symbol (a `Result`), never its
//! convenience method, which panics when the symbol is missing; a missing symbol becomes
//! `FailedToLoadSymbol`, exactly as for wrapped calls.

#![allow(unsafe_code)]

use nvml_wrapper::Device;
use nvml_wrapper::error::{NvmlError, nvml_try};

fn missing(error: &libloading::Error) -> NvmlError {
    NvmlError::FailedToLoadSymbol(error.to_string())
}

/// Remapped rows (Ampere and later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RemappedRows {
    pub(crate) correctable: u32,
    pub(crate) uncorrectable: u32,
    pub(crate) pending: bool,
    pub(crate) failure: bool,
}

/// `nvmlDeviceGetRemappedRows`.
pub(crate) fn remapped_rows(device: &Device<'_>) -> Result<RemappedRows, NvmlError> {
    let function = device
        .nvml()
        .lib()
        .nvmlDeviceGetRemappedRows
        .as_ref()
        .map_err(missing)?;
    let (mut correctable, mut uncorrectable, mut pending, mut failure) = (0, 0, 0, 0);
    // SAFETY: the handle comes from this library; the out-pointers are live locals.
    nvml_try(unsafe {
        function(
            device.handle(),
            &mut correctable,
            &mut uncorrectable,
            &mut pending,
            &mut failure,
        )
    })?;
    Ok(RemappedRows {
        correctable,
        uncorrectable,
        pending: pending != 0,
        failure: failure != 0,
    })
}

/// `nvmlDeviceGetGpuInstanceId` of a MIG device.
pub(crate) fn gpu_instance_id(device: &Device<'_>) -> Result<u32, NvmlError> {
    let function = device
        .nvml()
        .lib()
        .nvmlDeviceGetGpuInstanceId
        .as_ref()
        .map_err(missing)?;
    let mut id = 0;
    // SAFETY: as above.
    nvml_try(unsafe { function(device.handle(), &mut id) })?;
    Ok(id)
}

/// `nvmlDeviceGetComputeInstanceId` of a MIG device.
pub(crate) fn compute_instance_id(device: &Device<'_>) -> Result<u32, NvmlError> {
    let function = device
        .nvml()
        .lib()
        .nvmlDeviceGetComputeInstanceId
        .as_ref()
        .map_err(missing)?;
    let mut id = 0;
    // SAFETY: as above.
    nvml_try(unsafe { function(device.handle(), &mut id) })?;
    Ok(id)
}

/// Frame-buffer memory from version 1 of the call, for drivers older than 510 that lack
/// `nvmlDeviceGetMemoryInfo_v2`. Version 1 counts reserved memory as used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemoryV1 {
    pub(crate) total: u64,
    pub(crate) free: u64,
    pub(crate) used: u64,
}

/// `nvmlDeviceGetMemoryInfo`.
pub(crate) fn memory_info_v1(device: &Device<'_>) -> Result<MemoryV1, NvmlError> {
    let function = device
        .nvml()
        .lib()
        .nvmlDeviceGetMemoryInfo
        .as_ref()
        .map_err(missing)?;
    let mut memory = nvml_wrapper_sys::bindings::nvmlMemory_t {
        total: 0,
        free: 0,
        used: 0,
    };
    // SAFETY: as above.
    nvml_try(unsafe { function(device.handle(), &mut memory) })?;
    Ok(MemoryV1 {
        total: memory.total,
        free: memory.free,
        used: memory.used,
    })
}

/// The GPU's registration with the NVSwitch fabric (NVSwitch systems, driver 535 and on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FabricInfo {
    /// `NVML_GPU_FABRIC_STATE_*`: 0 not supported, 1 not started, 2 in progress, 3 completed.
    pub(crate) state: u8,
    /// The registration's outcome, an NVML return code (0: success).
    pub(crate) status: u32,
}

/// `nvmlDeviceGetGpuFabricInfo`.
pub(crate) fn gpu_fabric_info(device: &Device<'_>) -> Result<FabricInfo, NvmlError> {
    let function = device
        .nvml()
        .lib()
        .nvmlDeviceGetGpuFabricInfo
        .as_ref()
        .map_err(missing)?;
    // SAFETY: a plain C struct, all zeroes valid.
    let mut info: nvml_wrapper_sys::bindings::nvmlGpuFabricInfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    nvml_try(unsafe { function(device.handle(), &mut info) })?;
    Ok(FabricInfo {
        state: info.state,
        status: info.status,
    })
}

/// One licensable vGPU software feature (in a virtual machine with a vGPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Licence {
    /// `NVML_GRID_LICENSE_FEATURE_CODE_*`: 1 vGPU, 2 NVIDIA RTX, 3 gaming, 4 compute.
    pub(crate) feature: u32,
    pub(crate) licensed: bool,
}

/// `nvmlDeviceGetGridLicensableFeatures_v4`: `None` where the GPU has no vGPU licensing
/// (bare metal).
pub(crate) fn vgpu_licences(device: &Device<'_>) -> Result<Option<Vec<Licence>>, NvmlError> {
    let function = device
        .nvml()
        .lib()
        .nvmlDeviceGetGridLicensableFeatures_v4
        .as_ref()
        .map_err(missing)?;
    // SAFETY: a plain C struct, all zeroes valid.
    let mut features: nvml_wrapper_sys::bindings::nvmlGridLicensableFeatures_t =
        unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    nvml_try(unsafe { function(device.handle(), &mut features) })?;
    if features.isGridLicenseSupported == 0 {
        return Ok(None);
    }
    let count =
        (features.licensableFeaturesCount as usize).min(features.gridLicensableFeatures.len());
    Ok(Some(
        features.gridLicensableFeatures[..count]
            .iter()
            .map(|f| Licence {
                feature: f.featureCode,
                licensed: f.featureState != 0,
            })
            .collect(),
    ))
}
