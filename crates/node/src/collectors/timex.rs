//! `timex`: the kernel's NTP clock discipline state from `adjtimex(2)`.

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::sys;

pub(super) fn build(_: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Timex)
}

struct Timex;

/// `adjtimex` returns this when the clock is not synchronised.
const TIME_ERROR: i32 = 5;
/// Status bit: offsets and jitter are in nanoseconds rather than microseconds.
const STA_NANO: i32 = 0x2000;
/// Frequencies are parts per million with a 16-bit fraction.
const PPM16: f64 = 1_000_000.0 * 65_536.0;
const MICRO: f64 = 1_000_000.0;

impl Collector for Timex {
    fn name(&self) -> &str {
        "timex"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let t = sys::adjtimex().map_err(|e| CollectError::failed("calling adjtimex", e))?;
        let divisor = if t.status & STA_NANO != 0 { 1e9 } else { MICRO };
        out.gauge_value(
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            t.offset as f64 / divisor,
        );
        out.gauge_value(
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            1.0 + t.freq as f64 / PPM16,
        );
        out.gauge_value(
            "node_timex_maxerror_seconds",
            "Maximum error in seconds.",
            t.maxerror as f64 / MICRO,
        );
        out.gauge_value(
            "node_timex_estimated_error_seconds",
            "Estimated error in seconds.",
            t.esterror as f64 / MICRO,
        );
        out.gauge_value(
            "node_timex_status",
            "Value of the status array bits.",
            f64::from(t.status),
        );
        out.gauge_value(
            "node_timex_loop_time_constant",
            "Phase-locked loop time constant.",
            t.constant as f64,
        );
        out.gauge_value(
            "node_timex_tick_seconds",
            "Seconds between clock ticks.",
            t.tick as f64 / MICRO,
        );
        out.gauge_value(
            "node_timex_pps_frequency_hertz",
            "Pulse per second frequency.",
            t.ppsfreq as f64 / PPM16,
        );
        out.gauge_value(
            "node_timex_pps_jitter_seconds",
            "Pulse per second jitter.",
            t.jitter as f64 / divisor,
        );
        out.gauge_value(
            "node_timex_pps_shift_seconds",
            "Pulse per second interval duration.",
            f64::from(t.shift),
        );
        out.gauge_value(
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            t.stabil as f64 / PPM16,
        );
        out.counter_value(
            "node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.",
            t.jitcnt as f64,
        );
        out.counter_value(
            "node_timex_pps_calibration_total",
            "Pulse per second count of calibration intervals.",
            t.calcnt as f64,
        );
        out.counter_value(
            "node_timex_pps_error_total",
            "Pulse per second count of calibration errors.",
            t.errcnt as f64,
        );
        out.counter_value(
            "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            t.stbcnt as f64,
        );
        out.gauge_value(
            "node_timex_tai_offset_seconds",
            "International Atomic Time (TAI) offset.",
            f64::from(t.tai),
        );
        out.gauge_value(
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            if t.state == TIME_ERROR { 0.0 } else { 1.0 },
        );
        Ok(())
    }
}
