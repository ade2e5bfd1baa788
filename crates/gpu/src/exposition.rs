//! The `gpu` collector: serves the latest snapshot, with its age, the live XID counts and
//! the collection's health. A scrape takes no lock that the collection thread holds across
//! NVML calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use crate::families::{Spec, write_sample};
use crate::family;
use crate::worker::Shared;

family!(
    NVML_UP,
    gauge,
    "nvidia_gpu_nvml_up",
    "1 if the NVML library is loaded and answering, else 0 (it is opened again with backoff)."
);
family!(
    DEVICES,
    gauge,
    "nvidia_gpu_devices",
    "GPUs NVML reports, including those that stopped answering."
);
family!(
    UP,
    gauge,
    "nvidia_gpu_up",
    "1 if the GPU answered in the latest collection, 0 if it is lost, needs a reset, or a call on it (or a system-wide call) is stalled."
);
family!(
    GPU_STALLED,
    gauge,
    "nvidia_gpu_stalled",
    "1 while an NVML call on this GPU has run longer than --collect.timeout; its readings are withheld until it returns, the other GPUs' are not."
);
family!(
    STALLED,
    gauge,
    "nvidia_gpu_collect_stalled",
    "1 while any NVML call has run longer than --collect.timeout: on one GPU (see nvidia_gpu_stalled), or system-wide, which withholds every GPU's readings."
);
family!(
    DURATION,
    gauge,
    "nvidia_gpu_collect_duration_seconds",
    "How long the latest collection took."
);
family!(
    LAST,
    gauge,
    "nvidia_gpu_last_collect_timestamp_seconds",
    "When the latest collection ended, in seconds since the epoch."
);
family!(
    AGE,
    gauge,
    "nvidia_gpu_snapshot_age_seconds",
    "Age of the readings served, in seconds."
);

/// The collector "gpu".
#[derive(Debug)]
pub struct GpuMetrics {
    shared: Arc<Shared>,
    timeout: Duration,
    stall_logged: AtomicBool,
}

impl GpuMetrics {
    /// Serves what `shared` holds; a call running longer than `timeout` is a stall.
    pub fn new(shared: Arc<Shared>, timeout: Duration) -> Self {
        Self {
            shared,
            timeout,
            stall_logged: AtomicBool::new(false),
        }
    }

    /// Whether a system-wide NVML call has run past the timeout; logs the first time per
    /// stall. (A GPU's stalled call is found by the collection, which publishes it.)
    fn stalled(&self) -> bool {
        let Some(call) = self.shared.progress.current() else {
            self.stall_logged.store(false, Ordering::Relaxed);
            return false;
        };
        let running = call.since.elapsed();
        if running <= self.timeout {
            return false;
        }
        if !self.stall_logged.swap(true, Ordering::Relaxed) {
            tracing::error!(
                function = call.call.function(),
                gpu = call.gpu.map(|g| g.to_string()).unwrap_or_default(),
                seconds = running.as_secs(),
                "An NVML call has not returned; serving no GPU readings until it does."
            );
        }
        true
    }
}

fn single(out: &mut MetricSet, spec: &Spec, value: f64) {
    out.gauge_value(spec.name, spec.help, value);
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Collector for GpuMetrics {
    fn name(&self) -> &str {
        "gpu"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let snapshot = self.shared.snapshot.load();
        let stalled = self.stalled();
        single(out, &NVML_UP, if snapshot.nvml_up { 1.0 } else { 0.0 });
        single(out, &DEVICES, snapshot.gpus.len() as f64);
        let mut ids = Vec::new();
        for gpu in &snapshot.gpus {
            let up = if gpu.up && !stalled { 1.0 } else { 0.0 };
            write_sample(out, &mut ids, &UP, Some(&gpu.labels), &[], up);
        }
        for gpu in &snapshot.gpus {
            let one = if gpu.stalled { 1.0 } else { 0.0 };
            write_sample(out, &mut ids, &GPU_STALLED, Some(&gpu.labels), &[], one);
        }
        if !stalled {
            out.share(&snapshot.readings);
        }
        self.shared.xids.write(out);
        self.shared.kmsg.write(out);
        out.share(&snapshot.errors);
        let any = stalled || snapshot.gpus.iter().any(|gpu| gpu.stalled);
        single(out, &STALLED, if any { 1.0 } else { 0.0 });
        if snapshot.cycles > 0 {
            single(out, &DURATION, snapshot.duration.as_secs_f64());
            single(out, &LAST, unix_seconds(snapshot.taken));
            let age = SystemTime::now()
                .duration_since(snapshot.taken)
                .unwrap_or_default();
            single(out, &AGE, age.as_secs_f64());
        }
        Ok(())
    }
}
