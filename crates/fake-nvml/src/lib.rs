//! A stand-in for `libnvidia-ml.so.1`, for testing kiln-gpu-exporter without a GPU.
//!
//! It exports the NVML C functions the exporter calls, with NVML's signatures and struct
//! layouts (taken from `nvml-wrapper-sys`, so they cannot drift), and answers them from a
//! JSON fixture named by `FAKE_NVML_FIXTURE` (see its `fixture` module). Everything above this
//! library — nvml-wrapper, the exporter's collectors, its HTTP side — is the real code.
//!
//! The fixture is read again when the file changes (checked when the device count is read,
//! while waiting for events and while a call hangs), so a test drives a running exporter
//! by rewriting it: a GPU falls off the bus, an XID arrives, a call wedges and recovers.
//! A field missing from a device makes its call return NOT_SUPPORTED; a symbol missing
//! from an old driver is imitated by a copy of this library with the name blanked out.

#![allow(
    unsafe_code,
    non_snake_case,
    non_upper_case_globals,
    clippy::missing_safety_doc
)]

mod codes;
mod fixture;
mod gpm;
mod state;

use std::os::raw::{c_char, c_int, c_uint, c_ulonglong};
use std::time::{Duration, Instant};

use nvml_wrapper_sys::bindings::*;

use crate::codes::*;
use crate::fixture::{Clocks, Counter, Memory};
use crate::state::{Device, Target};

/// Answers a getter: hangs first if the fixture says so, then resolves the handle and
/// writes what `read` finds, or returns NOT_SUPPORTED when it finds nothing.
unsafe fn answer<T>(
    function: &str,
    handle: nvmlDevice_t,
    out: *mut T,
    read: impl FnOnce(Device<'_>, f64) -> Option<T>,
) -> nvmlReturn_t {
    if out.is_null() {
        return INVALID_ARGUMENT;
    }
    state::maybe_hang(function, Some(handle));
    let found = state::with(|state| {
        let elapsed = state.elapsed();
        let (_, device) = state.device(handle)?;
        read(device, elapsed).ok_or(NOT_SUPPORTED)
    });
    match found {
        Ok(value) => {
            unsafe { out.write(value) };
            SUCCESS
        }
        Err(code) => code,
    }
}

/// [`answer`] for a getter with several output parameters of one type: all are written
/// on success, none on failure, as NVML does.
unsafe fn answer_all<T: Copy, const N: usize>(
    function: &str,
    handle: nvmlDevice_t,
    outputs: [*mut T; N],
    read: impl FnOnce(Device<'_>) -> Option<[T; N]>,
) -> nvmlReturn_t {
    if outputs.iter().any(|p| p.is_null()) {
        return INVALID_ARGUMENT;
    }
    let mut values = std::mem::MaybeUninit::<[T; N]>::uninit();
    let code = unsafe { answer(function, handle, values.as_mut_ptr(), |d, _| read(d)) };
    if code == SUCCESS {
        let values = unsafe { values.assume_init() };
        for (to, value) in outputs.into_iter().zip(values) {
            unsafe { to.write(value) };
        }
    }
    code
}

/// Copies `text` into a caller's buffer of `length` bytes, NUL-terminated.
unsafe fn write_text(text: &str, buffer: *mut c_char, length: c_uint) -> nvmlReturn_t {
    if buffer.is_null() {
        return INVALID_ARGUMENT;
    }
    if text.len() + 1 > length as usize {
        return INSUFFICIENT_SIZE;
    }
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), buffer, text.len());
        *buffer.add(text.len()) = 0;
    }
    SUCCESS
}

unsafe fn answer_text(
    function: &str,
    handle: nvmlDevice_t,
    buffer: *mut c_char,
    length: c_uint,
    read: impl FnOnce(Device<'_>) -> Option<String>,
) -> nvmlReturn_t {
    state::maybe_hang(function, Some(handle));
    let found = state::with(|state| read(state.device(handle)?.1).ok_or(NOT_SUPPORTED));
    match found {
        Ok(text) => unsafe { write_text(&text, buffer, length) },
        Err(code) => code,
    }
}

/// A getter with one output parameter.
macro_rules! getter {
    ($name:ident, $ty:ty, |$device:ident, $elapsed:ident| $body:expr) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(device: nvmlDevice_t, out: *mut $ty) -> nvmlReturn_t {
            #[allow(unused_variables)]
            unsafe {
                answer(stringify!($name), device, out, |$device, $elapsed| $body)
            }
        }
    };
}

/// A getter of a string.
macro_rules! text_getter {
    ($name:ident, |$device:ident| $body:expr) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            device: nvmlDevice_t,
            buffer: *mut c_char,
            length: c_uint,
        ) -> nvmlReturn_t {
            unsafe { answer_text(stringify!($name), device, buffer, length, |$device| $body) }
        }
    };
}

// ---- Library and system ----------------------------------------------------------------

#[unsafe(no_mangle)]
pub extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    state::init()
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> nvmlReturn_t {
    state::init()
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    state::shutdown()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(
    buffer: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    match state::with(|state| Ok(state.fixture.driver_version.clone())) {
        Ok(version) => unsafe { write_text(&version, buffer, length) },
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion_v2(version: *mut c_int) -> nvmlReturn_t {
    if version.is_null() {
        return INVALID_ARGUMENT;
    }
    match state::with(|state| Ok(state.fixture.cuda_version)) {
        Ok(value) => {
            unsafe { version.write(value) };
            SUCCESS
        }
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> nvmlReturn_t {
    if count.is_null() {
        return INVALID_ARGUMENT;
    }
    state::maybe_hang("nvmlDeviceGetCount_v2", None);
    match state::with(|state| {
        state.refresh();
        Ok(state.fixture.devices.len() as c_uint)
    }) {
        Ok(value) => {
            unsafe { count.write(value) };
            SUCCESS
        }
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    if device.is_null() {
        return INVALID_ARGUMENT;
    }
    let index = index as usize;
    match state::with(|state| match state.fixture.devices.get(index) {
        None => Err(INVALID_ARGUMENT),
        Some(gpu) if gpu.lost => Err(GPU_IS_LOST),
        Some(_) => Ok(Target::Gpu(index).handle()),
    }) {
        Ok(handle) => {
            unsafe { device.write(handle) };
            SUCCESS
        }
        Err(code) => code,
    }
}

// ---- Identity --------------------------------------------------------------------------

text_getter!(nvmlDeviceGetName, |device| Some(match device {
    Device::Gpu(gpu) => gpu.name.clone(),
    Device::Mig(mig) => mig.name.clone(),
}));
text_getter!(nvmlDeviceGetUUID, |device| Some(match device {
    Device::Gpu(gpu) => gpu.uuid.clone(),
    Device::Mig(mig) => mig.uuid.clone(),
}));
text_getter!(nvmlDeviceGetSerial, |device| device.gpu()?.serial.clone());
text_getter!(nvmlDeviceGetVbiosVersion, |device| device
    .gpu()?
    .vbios_version
    .clone());

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetIndex(
    device: nvmlDevice_t,
    index: *mut c_uint,
) -> nvmlReturn_t {
    if index.is_null() {
        return INVALID_ARGUMENT;
    }
    match state::with(|state| match state.device(device)? {
        (Target::Gpu(i), _) => Ok(i as c_uint),
        (Target::Mig(..), _) => Err(NOT_SUPPORTED),
    }) {
        Ok(value) => {
            unsafe { index.write(value) };
            SUCCESS
        }
        Err(code) => code,
    }
}

getter!(nvmlDeviceGetMinorNumber, c_uint, |device, _t| device
    .gpu()?
    .minor_number);
getter!(nvmlDeviceGetBrand, nvmlBrandType_t, |device, _t| device
    .gpu()?
    .brand);
getter!(
    nvmlDeviceGetArchitecture,
    nvmlDeviceArchitecture_t,
    |device, _t| device.gpu()?.architecture
);

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetPciInfo_v3(
    device: nvmlDevice_t,
    pci: *mut nvmlPciInfo_t,
) -> nvmlReturn_t {
    unsafe {
        answer("nvmlDeviceGetPciInfo_v3", device, pci, |device, _| {
            let gpu = device.gpu()?;
            let mut info: nvmlPciInfo_t = std::mem::zeroed();
            for (to, from) in info.busId.iter_mut().zip(gpu.pci_bus_id.bytes().take(31)) {
                *to = from as c_char;
            }
            for (to, from) in info
                .busIdLegacy
                .iter_mut()
                .zip(gpu.pci_bus_id.bytes().skip(4).take(15))
            {
                *to = from as c_char;
            }
            info.pciDeviceId = 0x2330_10DE;
            Some(info)
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCudaComputeCapability(
    device: nvmlDevice_t,
    major: *mut c_int,
    minor: *mut c_int,
) -> nvmlReturn_t {
    unsafe {
        answer_all(
            "nvmlDeviceGetCudaComputeCapability",
            device,
            [major, minor],
            |d| d.gpu()?.compute_capability,
        )
    }
}

// ---- Utilisation and memory ------------------------------------------------------------

getter!(
    nvmlDeviceGetUtilizationRates,
    nvmlUtilization_t,
    |device, _t| {
        let u = device.gpu()?.utilization?;
        Some(nvmlUtilization_t {
            gpu: u.gpu,
            memory: u.memory,
        })
    }
);

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetEncoderUtilization(
    device: nvmlDevice_t,
    utilization: *mut c_uint,
    period_us: *mut c_uint,
) -> nvmlReturn_t {
    unsafe {
        sampled(
            device,
            utilization,
            period_us,
            "nvmlDeviceGetEncoderUtilization",
            true,
        )
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetDecoderUtilization(
    device: nvmlDevice_t,
    utilization: *mut c_uint,
    period_us: *mut c_uint,
) -> nvmlReturn_t {
    unsafe {
        sampled(
            device,
            utilization,
            period_us,
            "nvmlDeviceGetDecoderUtilization",
            false,
        )
    }
}

unsafe fn sampled(
    device: nvmlDevice_t,
    utilization: *mut c_uint,
    period_us: *mut c_uint,
    function: &str,
    encoder: bool,
) -> nvmlReturn_t {
    if period_us.is_null() {
        return INVALID_ARGUMENT;
    }
    let code = unsafe {
        answer(function, device, utilization, |device, _| {
            let gpu = device.gpu()?;
            if encoder {
                gpu.encoder_utilization
            } else {
                gpu.decoder_utilization
            }
        })
    };
    unsafe { period_us.write(167_000) };
    code
}

fn memory_of(device: Device<'_>) -> Option<Memory> {
    match device {
        Device::Gpu(gpu) => gpu.memory,
        Device::Mig(mig) => Some(mig.memory),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: nvmlDevice_t,
    memory: *mut nvmlMemory_v2_t,
) -> nvmlReturn_t {
    if memory.is_null() {
        return INVALID_ARGUMENT;
    }
    // NVML checks the version word the caller sets; a caller that forgets it gets this.
    let expected = (std::mem::size_of::<nvmlMemory_v2_t>() | (2 << 24)) as c_uint;
    if unsafe { (*memory).version } != expected {
        return ARGUMENT_VERSION_MISMATCH;
    }
    unsafe {
        answer("nvmlDeviceGetMemoryInfo_v2", device, memory, |device, _| {
            let m = memory_of(device)?;
            Some(nvmlMemory_v2_t {
                version: expected,
                total: m.total,
                reserved: m.reserved,
                free: m.total.saturating_sub(m.reserved + m.used),
                used: m.used,
            })
        })
    }
}

getter!(nvmlDeviceGetMemoryInfo, nvmlMemory_t, |device, _t| {
    // Version 1 counts reserved memory as used.
    let m = memory_of(device)?;
    Some(nvmlMemory_t {
        total: m.total,
        free: m.total.saturating_sub(m.reserved + m.used),
        used: m.used + m.reserved,
    })
});

getter!(
    nvmlDeviceGetBAR1MemoryInfo,
    nvmlBAR1Memory_t,
    |device, _t| {
        let b = device.gpu()?.bar1?;
        Some(nvmlBAR1Memory_t {
            bar1Total: b.total,
            bar1Free: b.total.saturating_sub(b.used),
            bar1Used: b.used,
        })
    }
);

// ---- Temperature, power, fans ----------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTemperature(
    device: nvmlDevice_t,
    sensor: nvmlTemperatureSensors_t,
    celsius: *mut c_uint,
) -> nvmlReturn_t {
    if sensor != nvmlTemperatureSensors_enum_NVML_TEMPERATURE_GPU {
        return INVALID_ARGUMENT;
    }
    unsafe {
        answer("nvmlDeviceGetTemperature", device, celsius, |d, _| {
            d.gpu()?.temperature
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTemperatureThreshold(
    device: nvmlDevice_t,
    threshold: nvmlTemperatureThresholds_t,
    celsius: *mut c_uint,
) -> nvmlReturn_t {
    unsafe {
        answer(
            "nvmlDeviceGetTemperatureThreshold",
            device,
            celsius,
            |d, _| {
                let t = d.gpu()?.temperature_thresholds?;
                match threshold {
                    nvmlTemperatureThresholds_enum_NVML_TEMPERATURE_THRESHOLD_SHUTDOWN => {
                        t.shutdown
                    }
                    nvmlTemperatureThresholds_enum_NVML_TEMPERATURE_THRESHOLD_SLOWDOWN => {
                        t.slowdown
                    }
                    nvmlTemperatureThresholds_enum_NVML_TEMPERATURE_THRESHOLD_GPU_MAX => t.gpu_max,
                    nvmlTemperatureThresholds_enum_NVML_TEMPERATURE_THRESHOLD_MEM_MAX => {
                        t.memory_max
                    }
                    _ => None,
                }
            },
        )
    }
}

/// `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION` (drivers from 550 on).
const FIELD_RECOVERY_ACTION: u32 = 230;

/// Field values: only the HBM temperature and the recovery action are known; other
/// fields fail one by one, as on a real board that lacks them, while the call itself
/// succeeds.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetFieldValues(
    device: nvmlDevice_t,
    count: c_int,
    values: *mut nvmlFieldValue_t,
) -> nvmlReturn_t {
    if values.is_null() || count < 0 {
        return INVALID_ARGUMENT;
    }
    state::maybe_hang("nvmlDeviceGetFieldValues", Some(device));
    let known = state::with(|s| {
        let gpu = s.device(device)?.1.gpu();
        Ok((
            gpu.and_then(|g| g.memory_temperature),
            gpu.and_then(|g| g.recovery_action),
        ))
    });
    let (memory_temperature, recovery_action) = match known {
        Ok(known) => known,
        Err(code) => return code,
    };
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    for k in 0..count as usize {
        let value = unsafe { &mut *values.add(k) };
        value.timestamp = now_us;
        let answer = match value.fieldId {
            field_id::NVML_FI_DEV_MEMORY_TEMP => memory_temperature,
            FIELD_RECOVERY_ACTION => recovery_action,
            _ => None,
        };
        match answer {
            Some(number) => {
                value.valueType = nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_INT;
                value.value.uiVal = number;
                value.nvmlReturn = SUCCESS;
            }
            None => value.nvmlReturn = NOT_SUPPORTED,
        }
    }
    SUCCESS
}

getter!(nvmlDeviceGetPowerUsage, c_uint, |device, _t| device
    .gpu()?
    .power_usage_mw);
getter!(nvmlDeviceGetEnforcedPowerLimit, c_uint, |device, _t| device
    .gpu()?
    .enforced_power_limit_mw);
getter!(nvmlDeviceGetPowerManagementLimit, c_uint, |device, _t| {
    device.gpu()?.power_management_limit_mw
});
getter!(
    nvmlDeviceGetPowerManagementDefaultLimit,
    c_uint,
    |device, _t| device.gpu()?.power_management_default_limit_mw
);
getter!(
    nvmlDeviceGetTotalEnergyConsumption,
    c_ulonglong,
    |device, elapsed| device.gpu()?.energy_mj.map(|c| c.at(elapsed))
);
getter!(nvmlDeviceGetNumFans, c_uint, |device, _t| device
    .gpu()?
    .fans
    .as_ref()
    .map(|f| f.len() as c_uint));

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetFanSpeed_v2(
    device: nvmlDevice_t,
    fan: c_uint,
    speed: *mut c_uint,
) -> nvmlReturn_t {
    unsafe {
        answer("nvmlDeviceGetFanSpeed_v2", device, speed, |d, _| {
            d.gpu()?.fans.as_ref()?.get(fan as usize).copied()
        })
    }
}

// ---- Clocks and performance ------------------------------------------------------------

fn clock_of(clocks: Option<Clocks>, clock: nvmlClockType_t) -> Option<c_uint> {
    let clocks = clocks?;
    match clock {
        nvmlClockType_enum_NVML_CLOCK_GRAPHICS => clocks.graphics,
        nvmlClockType_enum_NVML_CLOCK_SM => clocks.sm,
        nvmlClockType_enum_NVML_CLOCK_MEM => clocks.memory,
        nvmlClockType_enum_NVML_CLOCK_VIDEO => clocks.video,
        _ => None,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetClockInfo(
    device: nvmlDevice_t,
    clock: nvmlClockType_t,
    mhz: *mut c_uint,
) -> nvmlReturn_t {
    unsafe {
        answer("nvmlDeviceGetClockInfo", device, mhz, |d, _| {
            clock_of(d.gpu()?.clocks, clock)
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMaxClockInfo(
    device: nvmlDevice_t,
    clock: nvmlClockType_t,
    mhz: *mut c_uint,
) -> nvmlReturn_t {
    unsafe {
        answer("nvmlDeviceGetMaxClockInfo", device, mhz, |d, _| {
            clock_of(d.gpu()?.max_clocks, clock)
        })
    }
}

getter!(
    nvmlDeviceGetPerformanceState,
    nvmlPstates_t,
    |device, _t| device.gpu()?.performance_state
);
getter!(
    nvmlDeviceGetCurrentClocksThrottleReasons,
    c_ulonglong,
    |device, _t| device.gpu()?.throttle_reasons
);
getter!(
    nvmlDeviceGetSupportedClocksThrottleReasons,
    c_ulonglong,
    |device, _t| device.gpu()?.supported_throttle_reasons
);

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetViolationStatus(
    device: nvmlDevice_t,
    policy: nvmlPerfPolicyType_t,
    time: *mut nvmlViolationTime_t,
) -> nvmlReturn_t {
    unsafe {
        answer(
            "nvmlDeviceGetViolationStatus",
            device,
            time,
            |d, elapsed| {
                let v = d.gpu()?.violation_ns?;
                let counter = match policy {
                    nvmlPerfPolicyType_enum_NVML_PERF_POLICY_POWER => v.power,
                    nvmlPerfPolicyType_enum_NVML_PERF_POLICY_THERMAL => v.thermal,
                    nvmlPerfPolicyType_enum_NVML_PERF_POLICY_SYNC_BOOST => v.sync_boost,
                    nvmlPerfPolicyType_enum_NVML_PERF_POLICY_BOARD_LIMIT => v.board_limit,
                    nvmlPerfPolicyType_enum_NVML_PERF_POLICY_LOW_UTILIZATION => v.low_utilization,
                    nvmlPerfPolicyType_enum_NVML_PERF_POLICY_RELIABILITY => v.reliability,
                    _ => None,
                }?;
                Some(nvmlViolationTime_t {
                    referenceTime: (elapsed * 1e6) as u64,
                    violationTime: counter.at(elapsed),
                })
            },
        )
    }
}

// ---- Errors and health -----------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetEccMode(
    device: nvmlDevice_t,
    current: *mut nvmlEnableState_t,
    pending: *mut nvmlEnableState_t,
) -> nvmlReturn_t {
    unsafe {
        answer_all("nvmlDeviceGetEccMode", device, [current, pending], |d| {
            let enabled = d.gpu()?.ecc?.enabled as nvmlEnableState_t;
            Some([enabled, enabled])
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTotalEccErrors(
    device: nvmlDevice_t,
    error: nvmlMemoryErrorType_t,
    counter: nvmlEccCounterType_t,
    count: *mut c_ulonglong,
) -> nvmlReturn_t {
    unsafe {
        answer(
            "nvmlDeviceGetTotalEccErrors",
            device,
            count,
            |d, elapsed| {
                let ecc = d.gpu()?.ecc?;
                let corrected = error == nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_CORRECTED;
                let volatile = counter == nvmlEccCounterType_enum_NVML_VOLATILE_ECC;
                let c: Counter = match (corrected, volatile) {
                    (true, true) => ecc.corrected_volatile,
                    (true, false) => ecc.corrected_aggregate,
                    (false, true) => ecc.uncorrected_volatile,
                    (false, false) => ecc.uncorrected_aggregate,
                };
                Some(c.at(elapsed))
            },
        )
    }
}

unsafe fn retired(
    function: &str,
    device: nvmlDevice_t,
    cause: nvmlPageRetirementCause_t,
    count: *mut c_uint,
    addresses: *mut c_ulonglong,
    timestamps: *mut c_ulonglong,
) -> nvmlReturn_t {
    if count.is_null() {
        return INVALID_ARGUMENT;
    }
    let mut pages: c_uint = 0;
    let code = unsafe {
        answer(function, device, &mut pages, |d, _| {
            let r = d.gpu()?.retired_pages?;
            Some(
                if cause
                    == nvmlPageRetirementCause_enum_NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR
                {
                    r.double_bit
                } else {
                    r.single_bit
                },
            )
        })
    };
    if code != SUCCESS {
        return code;
    }
    let room = unsafe { *count };
    unsafe { count.write(pages) };
    if room < pages || addresses.is_null() {
        return if pages == 0 {
            SUCCESS
        } else {
            INSUFFICIENT_SIZE
        };
    }
    for k in 0..pages as usize {
        unsafe {
            addresses.add(k).write(0x1000 * (k as u64 + 1));
            if !timestamps.is_null() {
                timestamps.add(k).write(1_700_000_000 + k as u64);
            }
        }
    }
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetRetiredPages(
    device: nvmlDevice_t,
    cause: nvmlPageRetirementCause_t,
    count: *mut c_uint,
    addresses: *mut c_ulonglong,
) -> nvmlReturn_t {
    unsafe {
        retired(
            "nvmlDeviceGetRetiredPages",
            device,
            cause,
            count,
            addresses,
            std::ptr::null_mut(),
        )
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetRetiredPages_v2(
    device: nvmlDevice_t,
    cause: nvmlPageRetirementCause_t,
    count: *mut c_uint,
    addresses: *mut c_ulonglong,
    timestamps: *mut c_ulonglong,
) -> nvmlReturn_t {
    unsafe {
        retired(
            "nvmlDeviceGetRetiredPages_v2",
            device,
            cause,
            count,
            addresses,
            timestamps,
        )
    }
}

getter!(
    nvmlDeviceGetRetiredPagesPendingStatus,
    nvmlEnableState_t,
    |device, _t| Some(device.gpu()?.retired_pages?.pending as nvmlEnableState_t)
);

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetRemappedRows(
    device: nvmlDevice_t,
    correctable: *mut c_uint,
    uncorrectable: *mut c_uint,
    pending: *mut c_uint,
    failure: *mut c_uint,
) -> nvmlReturn_t {
    let outputs = [correctable, uncorrectable, pending, failure];
    unsafe {
        answer_all("nvmlDeviceGetRemappedRows", device, outputs, |d| {
            let r = d.gpu()?.remapped_rows?;
            Some([
                r.correctable,
                r.uncorrectable,
                r.pending as c_uint,
                r.failure as c_uint,
            ])
        })
    }
}

getter!(nvmlDeviceGetComputeMode, nvmlComputeMode_t, |device, _t| {
    device.gpu()?.compute_mode
});

getter!(
    nvmlDeviceGetGpuFabricInfo,
    nvmlGpuFabricInfo_t,
    |device, _t| {
        let fabric = device.gpu()?.fabric?;
        Some(nvmlGpuFabricInfo_t {
            clusterUuid: [0; 16],
            status: fabric.status,
            cliqueId: fabric.clique_id,
            state: fabric.state,
        })
    }
);

getter!(
    nvmlDeviceGetGridLicensableFeatures_v4,
    nvmlGridLicensableFeatures_t,
    |device, _t| {
        let licences = device.gpu()?.vgpu_licences.as_ref()?;
        // A plain C struct, all zeroes valid (the getter's body runs in an unsafe block).
        let mut features: nvmlGridLicensableFeatures_t = std::mem::zeroed();
        features.isGridLicenseSupported = 1;
        for (to, from) in features.gridLicensableFeatures.iter_mut().zip(licences) {
            to.featureCode = from.feature;
            to.featureState = c_uint::from(from.licensed);
            to.featureEnabled = 1;
            features.licensableFeaturesCount += 1;
        }
        Some(features)
    }
);

// ---- PCIe and NVLink -------------------------------------------------------------------

getter!(nvmlDeviceGetPcieReplayCounter, c_uint, |device, elapsed| {
    device.gpu()?.pcie.map(|p| p.replays.at(elapsed) as c_uint)
});
getter!(nvmlDeviceGetCurrPcieLinkGeneration, c_uint, |device, _t| {
    device.gpu()?.pcie.map(|p| p.generation)
});
getter!(nvmlDeviceGetCurrPcieLinkWidth, c_uint, |device, _t| device
    .gpu()?
    .pcie
    .map(|p| p.width));
getter!(nvmlDeviceGetMaxPcieLinkGeneration, c_uint, |device, _t| {
    device.gpu()?.pcie.map(|p| p.max_generation)
});
getter!(nvmlDeviceGetMaxPcieLinkWidth, c_uint, |device, _t| device
    .gpu()?
    .pcie
    .map(|p| p.max_width));

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetPcieThroughput(
    device: nvmlDevice_t,
    counter: nvmlPcieUtilCounter_t,
    kilobytes_per_second: *mut c_uint,
) -> nvmlReturn_t {
    unsafe {
        answer(
            "nvmlDeviceGetPcieThroughput",
            device,
            kilobytes_per_second,
            |d, _| {
                let pcie = d.gpu()?.pcie?;
                if counter == nvmlPcieUtilCounter_enum_NVML_PCIE_UTIL_TX_BYTES {
                    pcie.tx_kbps
                } else {
                    pcie.rx_kbps
                }
            },
        )
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetNvLinkState(
    device: nvmlDevice_t,
    link: c_uint,
    active: *mut nvmlEnableState_t,
) -> nvmlReturn_t {
    let found = unsafe {
        answer("nvmlDeviceGetNvLinkState", device, active, |d, _| {
            // Past the last link NVML answers INVALID_ARGUMENT; flagged with an impossible
            // state and translated below.
            let links = d.gpu()?.nvlinks.as_ref()?;
            Some(
                links
                    .get(link as usize)
                    .map_or(u32::MAX, |l| l.active as nvmlEnableState_t),
            )
        })
    };
    if found == SUCCESS && unsafe { *active } == u32::MAX {
        return INVALID_ARGUMENT;
    }
    found
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetNvLinkErrorCounter(
    device: nvmlDevice_t,
    link: c_uint,
    counter: nvmlNvLinkErrorCounter_t,
    value: *mut c_ulonglong,
) -> nvmlReturn_t {
    unsafe {
        answer(
            "nvmlDeviceGetNvLinkErrorCounter",
            device,
            value,
            |d, elapsed| {
                let l = d.gpu()?.nvlinks.as_ref()?.get(link as usize)?;
                let c = match counter {
                    nvmlNvLinkErrorCounter_enum_NVML_NVLINK_ERROR_DL_REPLAY => l.replay,
                    nvmlNvLinkErrorCounter_enum_NVML_NVLINK_ERROR_DL_RECOVERY => l.recovery,
                    nvmlNvLinkErrorCounter_enum_NVML_NVLINK_ERROR_DL_CRC_FLIT => l.crc_flit,
                    nvmlNvLinkErrorCounter_enum_NVML_NVLINK_ERROR_DL_CRC_DATA => l.crc_data,
                    _ => return None,
                };
                Some(c.at(elapsed))
            },
        )
    }
}

// ---- MIG -------------------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigMode(
    device: nvmlDevice_t,
    current: *mut c_uint,
    pending: *mut c_uint,
) -> nvmlReturn_t {
    unsafe {
        answer_all("nvmlDeviceGetMigMode", device, [current, pending], |d| {
            let mig = d.gpu()?.mig.as_ref()?;
            Some([mig.current as c_uint, mig.pending as c_uint])
        })
    }
}

getter!(nvmlDeviceGetMaxMigDeviceCount, c_uint, |device, _t| device
    .gpu()?
    .mig
    .as_ref()
    .map(|m| m.max_devices));

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    device: nvmlDevice_t,
    index: c_uint,
    mig_device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    if mig_device.is_null() {
        return INVALID_ARGUMENT;
    }
    match state::with(|state| {
        let (target, d) = state.device(device)?;
        let (Target::Gpu(gpu), Some(mig)) = (target, d.gpu().and_then(|g| g.mig.as_ref())) else {
            return Err(NOT_SUPPORTED);
        };
        if !mig.current {
            return Err(NOT_SUPPORTED);
        }
        // Empty slots (up to the maximum) are NOT_FOUND, as on a partly partitioned GPU.
        match mig.devices.get(index as usize) {
            Some(_) => Ok(Target::Mig(gpu, index as usize).handle()),
            None if index < mig.max_devices => Err(NOT_FOUND),
            None => Err(INVALID_ARGUMENT),
        }
    }) {
        Ok(handle) => {
            unsafe { mig_device.write(handle) };
            SUCCESS
        }
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceId(
    device: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    unsafe {
        answer("nvmlDeviceGetGpuInstanceId", device, id, |d, _| match d {
            Device::Mig(mig) => Some(mig.gpu_instance_id),
            Device::Gpu(_) => None,
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeInstanceId(
    device: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    unsafe {
        answer(
            "nvmlDeviceGetComputeInstanceId",
            device,
            id,
            |d, _| match d {
                Device::Mig(mig) => Some(mig.compute_instance_id),
                Device::Gpu(_) => None,
            },
        )
    }
}

// ---- Processes -------------------------------------------------------------------------

/// The fixture's processes on a physical GPU, after hanging if `function` is the slow one.
fn processes_of(
    device: nvmlDevice_t,
    function: &str,
) -> Result<Vec<fixture::Process>, nvmlReturn_t> {
    state::maybe_hang(function, Some(device));
    state::with(|s| {
        s.device(device)?
            .1
            .gpu()
            .and_then(|g| g.processes.clone())
            .ok_or(NOT_SUPPORTED)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    device: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    if count.is_null() {
        return INVALID_ARGUMENT;
    }
    let processes = match processes_of(device, "nvmlDeviceGetComputeRunningProcesses_v3") {
        Ok(processes) => processes,
        Err(code) => return code,
    };
    let room = unsafe { *count } as usize;
    unsafe { count.write(processes.len() as c_uint) };
    if infos.is_null() || room < processes.len() {
        return if processes.is_empty() {
            SUCCESS
        } else {
            INSUFFICIENT_SIZE
        };
    }
    for (k, p) in processes.iter().enumerate() {
        let info = nvmlProcessInfo_t {
            pid: p.pid,
            // NVML's "not available" (as under some virtualisation) is all ones.
            usedGpuMemory: p.used_memory.unwrap_or(u64::MAX),
            gpuInstanceId: p.gpu_instance_id.unwrap_or(u32::MAX),
            computeInstanceId: p.compute_instance_id.unwrap_or(u32::MAX),
        };
        unsafe { infos.add(k).write(info) };
    }
    SUCCESS
}

/// Per-process utilisation. NVML answers NOT_FOUND when no process was sampled, which
/// is the usual answer on an idle GPU.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetProcessUtilization(
    device: nvmlDevice_t,
    samples: *mut nvmlProcessUtilizationSample_t,
    count: *mut c_uint,
    _last_seen: c_ulonglong,
) -> nvmlReturn_t {
    if count.is_null() {
        return INVALID_ARGUMENT;
    }
    let processes = match processes_of(device, "nvmlDeviceGetProcessUtilization") {
        Ok(processes) => processes,
        Err(code) => return code,
    };
    let sampled: Vec<_> = processes.iter().filter(|p| p.sm_util.is_some()).collect();
    if sampled.is_empty() {
        return NOT_FOUND;
    }
    let room = unsafe { *count } as usize;
    unsafe { count.write(sampled.len() as c_uint) };
    if samples.is_null() || room < sampled.len() {
        return INSUFFICIENT_SIZE;
    }
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    for (k, p) in sampled.iter().enumerate() {
        let sample = nvmlProcessUtilizationSample_t {
            pid: p.pid,
            timeStamp: now_us,
            smUtil: p.sm_util.unwrap_or(0),
            memUtil: p.mem_util.unwrap_or(0),
            encUtil: p.enc_util.unwrap_or(0),
            decUtil: p.dec_util.unwrap_or(0),
        };
        unsafe { samples.add(k).write(sample) };
    }
    SUCCESS
}

// ---- Events ----------------------------------------------------------------------------

static EVENT_SET: u8 = 0;

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetCreate(set: *mut nvmlEventSet_t) -> nvmlReturn_t {
    if set.is_null() {
        return INVALID_ARGUMENT;
    }
    match state::with(|_| Ok(())) {
        Ok(()) => {
            unsafe { set.write(std::ptr::addr_of!(EVENT_SET) as nvmlEventSet_t) };
            SUCCESS
        }
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlDeviceRegisterEvents(
    device: nvmlDevice_t,
    types: c_ulonglong,
    _set: nvmlEventSet_t,
) -> nvmlReturn_t {
    let registered = state::with(|state| {
        let (target, _) = state.device(device)?;
        let Target::Gpu(index) = target else {
            return Err(NOT_SUPPORTED);
        };
        if state.registered.len() <= index {
            state.registered.resize(index + 1, 0);
        }
        state.registered[index] |= types;
        Ok(())
    });
    registered.err().unwrap_or(SUCCESS)
}

/// Delivers the next undelivered XID event from the fixture, waiting up to `timeout_ms`
/// for the fixture to gain one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetWait_v2(
    _set: nvmlEventSet_t,
    data: *mut nvmlEventData_t,
    timeout_ms: c_uint,
) -> nvmlReturn_t {
    if data.is_null() {
        return INVALID_ARGUMENT;
    }
    let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
    loop {
        let next = state::with(|state| {
            state.refresh();
            while let Some(event) = state.fixture.xid_events.get(state.delivered_events) {
                state.delivered_events += 1;
                let wanted = state.registered.get(event.gpu).copied().unwrap_or(0);
                if wanted & u64::from(nvmlEventTypeXidCriticalError) != 0 {
                    return Ok(Some((event.gpu, event.xid)));
                }
            }
            Ok(None)
        });
        match next {
            Ok(Some((gpu, xid))) => {
                let event = nvmlEventData_t {
                    device: Target::Gpu(gpu).handle(),
                    eventType: u64::from(nvmlEventTypeXidCriticalError),
                    eventData: xid,
                    gpuInstanceId: u32::MAX,
                    computeInstanceId: u32::MAX,
                };
                unsafe { data.write(event) };
                return SUCCESS;
            }
            Ok(None) => {}
            Err(code) => return code,
        }
        let now = Instant::now();
        if now >= deadline {
            return TIMEOUT;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlEventSetFree(_set: nvmlEventSet_t) -> nvmlReturn_t {
    SUCCESS
}
