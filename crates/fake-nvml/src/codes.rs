//! NVML return codes, under short names.

use nvml_wrapper_sys::bindings::*;

pub(crate) const SUCCESS: u32 = nvmlReturn_enum_NVML_SUCCESS;
pub(crate) const UNINITIALIZED: u32 = nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
pub(crate) const INVALID_ARGUMENT: u32 = nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
pub(crate) const NOT_SUPPORTED: u32 = nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
pub(crate) const NOT_FOUND: u32 = nvmlReturn_enum_NVML_ERROR_NOT_FOUND;
pub(crate) const INSUFFICIENT_SIZE: u32 = nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE;
pub(crate) const TIMEOUT: u32 = nvmlReturn_enum_NVML_ERROR_TIMEOUT;
pub(crate) const GPU_IS_LOST: u32 = nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST;
pub(crate) const ARGUMENT_VERSION_MISMATCH: u32 =
    nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
pub(crate) const MEMORY: u32 = nvmlReturn_enum_NVML_ERROR_MEMORY;
pub(crate) const UNKNOWN: u32 = nvmlReturn_enum_NVML_ERROR_UNKNOWN;
