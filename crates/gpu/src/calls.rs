//! Every NVML call goes through a [`Reader`], which decides what its failure means.
//!
//! - NOT_SUPPORTED, or a function the installed driver lacks: the metric is absent for
//!   that device from now on; the call is not made again until the device is re-found.
//! - GPU lost or reset required: the device is marked down for this cycle; the others go on.
//! - The driver itself gone (uninitialised, not loaded, version mismatch): the cycle stops
//!   and the library is opened again with backoff.
//! - Anything else (a timeout, no permission, an unknown error): that one value is skipped.
//!
//! Every failure is counted by call and error, and logged once with its context.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use nvml_wrapper::error::NvmlError;

macro_rules! calls {
    ($($variant:ident => $function:literal,)*) => {
        /// One NVML function the exporter calls; its C name is the `call` label.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[allow(missing_docs)]
        pub enum Call { $($variant,)* }

        impl Call {
            /// Every call, in declaration order.
            pub const ALL: &'static [Call] = &[$(Call::$variant,)*];

            /// The NVML function's C name.
            pub fn function(self) -> &'static str {
                match self { $(Self::$variant => $function,)* }
            }
        }
    };
}

calls! {
    Init => "nvmlInit_v2",
    DriverVersion => "nvmlSystemGetDriverVersion",
    CudaDriverVersion => "nvmlSystemGetCudaDriverVersion_v2",
    DeviceCount => "nvmlDeviceGetCount_v2",
    HandleByIndex => "nvmlDeviceGetHandleByIndex_v2",
    Uuid => "nvmlDeviceGetUUID",
    Name => "nvmlDeviceGetName",
    PciInfo => "nvmlDeviceGetPciInfo_v3",
    MinorNumber => "nvmlDeviceGetMinorNumber",
    Serial => "nvmlDeviceGetSerial",
    VbiosVersion => "nvmlDeviceGetVbiosVersion",
    Brand => "nvmlDeviceGetBrand",
    Architecture => "nvmlDeviceGetArchitecture",
    ComputeCapability => "nvmlDeviceGetCudaComputeCapability",
    UtilizationRates => "nvmlDeviceGetUtilizationRates",
    EncoderUtilization => "nvmlDeviceGetEncoderUtilization",
    DecoderUtilization => "nvmlDeviceGetDecoderUtilization",
    MemoryInfoV2 => "nvmlDeviceGetMemoryInfo_v2",
    MemoryInfo => "nvmlDeviceGetMemoryInfo",
    Bar1MemoryInfo => "nvmlDeviceGetBAR1MemoryInfo",
    Temperature => "nvmlDeviceGetTemperature",
    TemperatureThreshold => "nvmlDeviceGetTemperatureThreshold",
    FieldValues => "nvmlDeviceGetFieldValues",
    PowerUsage => "nvmlDeviceGetPowerUsage",
    EnforcedPowerLimit => "nvmlDeviceGetEnforcedPowerLimit",
    PowerManagementLimit => "nvmlDeviceGetPowerManagementLimit",
    PowerManagementDefaultLimit => "nvmlDeviceGetPowerManagementDefaultLimit",
    TotalEnergyConsumption => "nvmlDeviceGetTotalEnergyConsumption",
    NumFans => "nvmlDeviceGetNumFans",
    FanSpeed => "nvmlDeviceGetFanSpeed_v2",
    ClockInfo => "nvmlDeviceGetClockInfo",
    MaxClockInfo => "nvmlDeviceGetMaxClockInfo",
    PerformanceState => "nvmlDeviceGetPerformanceState",
    ThrottleReasons => "nvmlDeviceGetCurrentClocksThrottleReasons",
    SupportedThrottleReasons => "nvmlDeviceGetSupportedClocksThrottleReasons",
    ViolationStatus => "nvmlDeviceGetViolationStatus",
    EccMode => "nvmlDeviceGetEccMode",
    TotalEccErrors => "nvmlDeviceGetTotalEccErrors",
    RetiredPages => "nvmlDeviceGetRetiredPages_v2",
    RetiredPagesPending => "nvmlDeviceGetRetiredPagesPendingStatus",
    RemappedRows => "nvmlDeviceGetRemappedRows",
    PcieReplayCounter => "nvmlDeviceGetPcieReplayCounter",
    PcieLinkGeneration => "nvmlDeviceGetCurrPcieLinkGeneration",
    PcieLinkWidth => "nvmlDeviceGetCurrPcieLinkWidth",
    PcieMaxLinkGeneration => "nvmlDeviceGetMaxPcieLinkGeneration",
    PcieMaxLinkWidth => "nvmlDeviceGetMaxPcieLinkWidth",
    PcieThroughput => "nvmlDeviceGetPcieThroughput",
    NvLinkState => "nvmlDeviceGetNvLinkState",
    NvLinkErrorCounter => "nvmlDeviceGetNvLinkErrorCounter",
    MigMode => "nvmlDeviceGetMigMode",
    MaxMigDeviceCount => "nvmlDeviceGetMaxMigDeviceCount",
    MigDeviceHandle => "nvmlDeviceGetMigDeviceHandleByIndex",
    GpuInstanceId => "nvmlDeviceGetGpuInstanceId",
    ComputeInstanceId => "nvmlDeviceGetComputeInstanceId",
    ComputeProcesses => "nvmlDeviceGetComputeRunningProcesses_v3",
    ProcessUtilization => "nvmlDeviceGetProcessUtilization",
    ComputeMode => "nvmlDeviceGetComputeMode",
    FabricInfo => "nvmlDeviceGetGpuFabricInfo",
    GridLicensableFeatures => "nvmlDeviceGetGridLicensableFeatures_v4",
    GpmQueryDeviceSupport => "nvmlGpmQueryDeviceSupport",
    GpmSampleGet => "nvmlGpmSampleGet",
    GpmMigSampleGet => "nvmlGpmMigSampleGet",
    GpmMetricsGet => "nvmlGpmMetricsGet",
    EventSetCreate => "nvmlEventSetCreate",
    RegisterEvents => "nvmlDeviceRegisterEvents",
    EventSetWait => "nvmlEventSetWait_v2",
}

/// What a failed call means for the rest of the cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// The device or driver cannot answer this call: stop asking.
    Unsupported,
    /// The device fell off the bus or needs a reset.
    DeviceGone,
    /// The library or kernel driver is unusable: open it again.
    DriverGone,
    /// This value is unavailable now; try again next cycle.
    Transient,
}

/// What `error` means.
pub fn meaning(error: &NvmlError) -> Meaning {
    match error {
        NvmlError::NotSupported
        | NvmlError::FailedToLoadSymbol(_)
        | NvmlError::FunctionNotFound => Meaning::Unsupported,
        NvmlError::GpuLost | NvmlError::ResetRequired => Meaning::DeviceGone,
        NvmlError::Uninitialized
        | NvmlError::DriverNotLoaded
        | NvmlError::LibRmVersionMismatch
        | NvmlError::LibraryNotFound
        | NvmlError::LibloadingError(_) => Meaning::DriverGone,
        _ => Meaning::Transient,
    }
}

/// The `error` label for `error`: NVML's name for it, in snake case.
pub fn error_label(error: &NvmlError) -> &'static str {
    match error {
        NvmlError::Uninitialized => "uninitialized",
        NvmlError::InvalidArg => "invalid_argument",
        NvmlError::NotSupported => "not_supported",
        NvmlError::NoPermission => "no_permission",
        NvmlError::NotFound => "not_found",
        NvmlError::InsufficientSize(_) => "insufficient_size",
        NvmlError::InsufficientPower => "insufficient_power",
        NvmlError::DriverNotLoaded => "driver_not_loaded",
        NvmlError::Timeout => "timeout",
        NvmlError::IrqIssue => "irq_issue",
        NvmlError::LibraryNotFound => "library_not_found",
        NvmlError::FunctionNotFound => "function_not_found",
        NvmlError::CorruptedInfoROM => "corrupted_inforom",
        NvmlError::GpuLost => "gpu_lost",
        NvmlError::ResetRequired => "reset_required",
        NvmlError::OperatingSystem => "operating_system",
        NvmlError::LibRmVersionMismatch => "lib_rm_version_mismatch",
        NvmlError::InUse => "in_use",
        NvmlError::InsufficientMemory => "insufficient_memory",
        NvmlError::NoData => "no_data",
        NvmlError::FailedToLoadSymbol(_) => "missing_symbol",
        NvmlError::LibloadingError(_) => "library_load_failed",
        NvmlError::Unknown => "unknown",
        _ => "other",
    }
}

/// Why a GPU's cycle stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// This GPU is gone; the others go on.
    DeviceGone,
    /// The driver is gone; the whole cycle stops.
    DriverGone,
}

/// The calls one device cannot answer, learnt as they fail.
#[derive(Debug, Default, Clone)]
pub struct Support {
    unsupported: u128,
}

impl Support {
    fn bit(call: Call) -> u128 {
        1 << (call as u32)
    }

    /// Whether `call` has been found unsupported.
    pub fn lacks(&self, call: Call) -> bool {
        self.unsupported & Self::bit(call) != 0
    }

    fn forget(&mut self, call: Call) {
        self.unsupported |= Self::bit(call);
    }
}

/// Failure counts by call and error, and which failures were already logged. Shared by
/// the GPUs' threads; the lock is held only to count, never across an NVML call.
#[derive(Debug, Default)]
pub struct Errors {
    inner: Mutex<ErrorsInner>,
}

#[derive(Debug, Default)]
struct ErrorsInner {
    counts: BTreeMap<(Call, &'static str), u64>,
    logged: HashSet<(u32, Call, &'static str)>,
}

impl Errors {
    /// Counts a failure of `call` on `gpu` (`None` for system calls), logging it the first
    /// time it is seen.
    pub fn record(&self, gpu: Option<u32>, call: Call, error: &NvmlError) {
        let label = error_label(error);
        let first = {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            *inner.counts.entry((call, label)).or_default() += 1;
            inner.logged.insert((gpu.unwrap_or(u32::MAX), call, label))
        };
        if !first {
            return;
        }
        let function = call.function();
        match (meaning(error), gpu) {
            (Meaning::Unsupported, Some(gpu)) => {
                tracing::info!(gpu, function, %error, "Not available on this GPU; not asked again.")
            }
            (_, Some(gpu)) => tracing::warn!(gpu, function, %error, "NVML call failed."),
            (_, None) => tracing::warn!(function, %error, "NVML call failed."),
        }
    }

    /// The counts, ordered by call and error.
    pub fn counts(&self) -> Vec<(Call, &'static str, u64)> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .counts
            .iter()
            .map(|(&(call, error), &n)| (call, error, n))
            .collect()
    }
}

/// Which call the collection thread is in, and since when: how a scrape tells a wedged
/// driver call from a slow cycle, and names it.
#[derive(Debug)]
pub struct Progress {
    origin: Instant,
    /// Bits 0..8: call + 1 (0 = none); 8..24: GPU + 1; 24..64: milliseconds since `origin`.
    word: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            word: AtomicU64::new(0),
        }
    }
}

/// What [`Progress::current`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InCall {
    pub call: Call,
    pub gpu: Option<u32>,
    pub since: Instant,
}

impl Progress {
    /// Marks `call` on `gpu` as started now.
    pub fn enter(&self, gpu: Option<u32>, call: Call) {
        let millis = self.origin.elapsed().as_millis() as u64;
        let gpu = gpu.map_or(0, |g| u64::from(g.min(0xfffe)) + 1);
        let word = (millis << 24) | (gpu << 8) | (call as u64 + 1);
        self.word.store(word, Ordering::Relaxed);
    }

    /// Runs `f` as `call` on `gpu`.
    pub fn around<T>(&self, gpu: Option<u32>, call: Call, f: impl FnOnce() -> T) -> T {
        self.enter(gpu, call);
        let result = f();
        self.leave();
        result
    }

    /// Marks the call as returned.
    pub fn leave(&self) {
        self.word.store(0, Ordering::Relaxed);
    }

    /// The call in progress, if any.
    pub fn current(&self) -> Option<InCall> {
        let word = self.word.load(Ordering::Relaxed);
        let call = *Call::ALL.get(((word & 0xff) as usize).checked_sub(1)?)?;
        let gpu = ((word >> 8) & 0xffff) as u32;
        Some(InCall {
            call,
            gpu: gpu.checked_sub(1),
            since: self.origin + std::time::Duration::from_millis(word >> 24),
        })
    }
}

/// Makes one device's calls for a cycle.
#[derive(Debug)]
pub struct Reader<'a> {
    pub gpu: u32,
    pub support: &'a mut Support,
    pub errors: &'a Errors,
    pub progress: &'a Progress,
}

impl Reader<'_> {
    /// Makes `call` unless it is known unsupported. `Ok(None)`: no value this time.
    pub fn call<T>(
        &mut self,
        call: Call,
        f: impl FnOnce() -> Result<T, NvmlError>,
    ) -> Result<Option<T>, Abort> {
        if self.support.lacks(call) {
            return Ok(None);
        }
        match self.progress.around(Some(self.gpu), call, f) {
            Ok(value) => Ok(Some(value)),
            Err(error) => self.failed(call, &error).map(|()| None),
        }
    }

    /// Like [`Reader::call`] for a call whose arguments vary (a threshold, a link), where
    /// NOT_SUPPORTED or INVALID_ARGUMENT for one argument says nothing of the others: those
    /// answers are neither counted nor remembered.
    pub fn call_each<T>(
        &mut self,
        call: Call,
        f: impl FnOnce() -> Result<T, NvmlError>,
    ) -> Result<Option<T>, Abort> {
        if self.support.lacks(call) {
            return Ok(None);
        }
        match self.progress.around(Some(self.gpu), call, f) {
            Ok(value) => Ok(Some(value)),
            Err(NvmlError::NotSupported | NvmlError::InvalidArg) => Ok(None),
            Err(error) => self.failed(call, &error).map(|()| None),
        }
    }

    /// Handles a failure of `call` that was made outside [`Reader::call`].
    pub fn failed(&mut self, call: Call, error: &NvmlError) -> Result<(), Abort> {
        self.errors.record(Some(self.gpu), call, error);
        match meaning(error) {
            Meaning::Unsupported => {
                self.support.forget(call);
                Ok(())
            }
            Meaning::DeviceGone => Err(Abort::DeviceGone),
            Meaning::DriverGone => Err(Abort::DriverGone),
            Meaning::Transient => Ok(()),
        }
    }

    /// Marks `call` unsupported without an error (for example a MIG query on a board
    /// without MIG).
    pub fn give_up(&mut self, call: Call) {
        self.support.forget(call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_room_for_every_call_in_the_support_set() {
        assert!(Call::ALL.len() < 128);
        assert!(
            Call::ALL.len() < 255,
            "the progress word keeps the call in 8 bits"
        );
    }

    #[test]
    fn unsupported_calls_are_not_made_again_but_transient_failures_are() {
        let (mut support, errors, progress): (Support, Errors, Progress) = Default::default();
        let mut reader = Reader {
            gpu: 0,
            support: &mut support,
            errors: &errors,
            progress: &progress,
        };
        let mut made = 0;
        for _ in 0..3 {
            let got = reader.call(Call::FanSpeed, || {
                made += 1;
                Err::<u32, _>(NvmlError::NotSupported)
            });
            assert_eq!(got, Ok(None));
        }
        assert_eq!(made, 1);
        for _ in 0..3 {
            let _ = reader.call(Call::PowerUsage, || {
                made += 1;
                Err::<u32, _>(NvmlError::Timeout)
            });
        }
        assert_eq!(made, 4);
        assert_eq!(
            reader.call(Call::Temperature, || Err::<u32, _>(NvmlError::GpuLost)),
            Err(Abort::DeviceGone)
        );
        assert_eq!(
            reader.call(Call::Temperature, || Err::<u32, _>(
                NvmlError::DriverNotLoaded
            )),
            Err(Abort::DriverGone)
        );
        let counts = errors.counts();
        assert_eq!(
            counts,
            [
                (Call::Temperature, "driver_not_loaded", 1),
                (Call::Temperature, "gpu_lost", 1),
                (Call::PowerUsage, "timeout", 3),
                (Call::FanSpeed, "not_supported", 1),
            ]
        );
    }

    #[test]
    fn progress_names_the_call_in_flight() {
        let progress = Progress::default();
        assert_eq!(progress.current(), None);
        progress.enter(Some(3), Call::PowerUsage);
        let now = progress.current().map(|c| (c.call, c.gpu));
        assert_eq!(now, Some((Call::PowerUsage, Some(3))));
        progress.enter(None, Call::DeviceCount);
        assert_eq!(progress.current().map(|c| c.gpu), Some(None));
        progress.leave();
        assert_eq!(progress.current(), None);
    }
}
