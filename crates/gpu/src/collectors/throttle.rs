//! Why clocks are held down: the clock-event (throttle) reasons now, as 0/1 series, and
//! the time spent held down per policy since the driver loaded.

use nvml_wrapper::enum_wrappers::device::PerformancePolicy;

use super::Context;
use crate::calls::{Abort, Call};
use crate::families::Families;
use crate::family;

family!(
    ACTIVE,
    gauge,
    "nvidia_gpu_clocks_event_reason_active",
    "1 while this reason holds clocks down (or, for gpu_idle, lets them rest), else 0. Reasons are named as in dcgm-exporter's clock_event label."
);
family!(
    SECONDS,
    counter,
    "nvidia_gpu_throttle_seconds_total",
    "Time clocks were held below their target by this policy since the driver loaded."
);

/// NVML's reason bits and dcgm-exporter's names for them.
pub const REASONS: [(u64, &str); 9] = [
    (0x001, "gpu_idle"),
    (0x002, "clocks_setting"),
    (0x004, "power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal"),
    (0x040, "hw_thermal"),
    (0x080, "hw_power_brake"),
    (0x100, "display_clocks"),
];

const POLICIES: [(PerformancePolicy, &str); 6] = [
    (PerformancePolicy::Power, "power"),
    (PerformancePolicy::Thermal, "thermal"),
    (PerformancePolicy::SyncBoost, "sync_boost"),
    (PerformancePolicy::BoardLimit, "board_limit"),
    (PerformancePolicy::LowUtilization, "low_utilization"),
    (PerformancePolicy::Reliability, "reliability"),
];

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    let device = cx.device;
    if cx.learnt.supported_reasons.is_none() {
        let supported = cx.reader.call(Call::SupportedThrottleReasons, || {
            device.supported_throttle_reasons()
        })?;
        // Without the answer, every reason NVML knows is written.
        cx.learnt.supported_reasons = Some(supported.map_or(u64::MAX, |s| s.bits()));
    }
    let supported = cx.learnt.supported_reasons.unwrap_or(u64::MAX);
    if let Some(now) = cx
        .reader
        .call(Call::ThrottleReasons, || device.current_throttle_reasons())?
    {
        let bits = now.bits();
        for (bit, reason) in REASONS.iter().filter(|(bit, _)| supported & bit != 0) {
            let active = if bits & bit != 0 { 1.0 } else { 0.0 };
            out.sample(&ACTIVE, cx.labels, &[("reason", reason)], active);
        }
    }
    for (policy, reason) in POLICIES {
        if let Some(time) = cx
            .reader
            .call(Call::ViolationStatus, || device.violation_status(policy))?
        {
            out.sample(
                &SECONDS,
                cx.labels,
                &[("reason", reason)],
                time.violation_time as f64 / 1e9,
            );
        }
    }
    Ok(())
}
