//! Clock frequencies per domain, their maxima, and the performance state.

use nvml_wrapper::enum_wrappers::device::Clock;

use super::Context;
use crate::calls::{Abort, Call};
use crate::families::Families;
use crate::family;

family!(
    CURRENT,
    gauge,
    "nvidia_gpu_clock_hertz",
    "Current clock frequency per clock domain (graphics, sm, memory, video)."
);
family!(
    MAX,
    gauge,
    "nvidia_gpu_clock_max_hertz",
    "Highest clock frequency the board allows per clock domain."
);
family!(
    PSTATE,
    gauge,
    "nvidia_gpu_performance_state",
    "Performance state, 0 (P0, most performance) to 15 (P15, least)."
);

const DOMAINS: [(Clock, &str); 4] = [
    (Clock::Graphics, "graphics"),
    (Clock::SM, "sm"),
    (Clock::Memory, "memory"),
    (Clock::Video, "video"),
];

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    let device = cx.device;
    for (clock, name) in DOMAINS {
        if let Some(mhz) = cx
            .reader
            .call(Call::ClockInfo, || device.clock_info(clock))?
        {
            out.sample(
                &CURRENT,
                cx.labels,
                &[("clock", name)],
                f64::from(mhz) * 1e6,
            );
        }
    }
    for (clock, name) in DOMAINS {
        if let Some(mhz) = cx
            .reader
            .call(Call::MaxClockInfo, || device.max_clock_info(clock))?
        {
            out.sample(&MAX, cx.labels, &[("clock", name)], f64::from(mhz) * 1e6);
        }
    }
    if let Some(state) = cx
        .reader
        .call(Call::PerformanceState, || device.performance_state())?
    {
        let number = state.as_c();
        // 32 is NVML's "unknown".
        if number <= 15 {
            out.sample(&PSTATE, cx.labels, &[], f64::from(number));
        }
    }
    Ok(())
}
