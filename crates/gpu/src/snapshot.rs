//! What one collection cycle found, shared with the scrapes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kiln_registry::{MetricSet, SharedSet};

use crate::families::GpuLabels;

/// The result of the latest cycle. Scrapes read it whole; the collector replaces it whole.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the cycle ended.
    pub taken: SystemTime,
    /// How long the cycle took.
    pub duration: Duration,
    /// Cycles completed since start.
    pub cycles: u64,
    /// Whether the NVML library is open and answering.
    pub nvml_up: bool,
    /// Each GPU index NVML reported.
    pub gpus: Vec<GpuState>,
    /// Every per-GPU family, encoded once for all the scrapes of this cycle.
    pub readings: Arc<SharedSet>,
    /// `nvidia_gpu_collect_errors_total`.
    pub errors: Arc<SharedSet>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            taken: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            cycles: 0,
            nvml_up: false,
            gpus: Vec::new(),
            readings: Arc::new(SharedSet::new(MetricSet::default())),
            errors: Arc::new(SharedSet::new(MetricSet::default())),
        }
    }
}

/// How one GPU fared in a cycle.
#[derive(Debug, Clone)]
pub struct GpuState {
    /// Its `gpu`/`uuid` labels (as last read, when it is stalled).
    pub labels: GpuLabels,
    /// Whether it answered this cycle.
    pub up: bool,
    /// Whether its thread was still inside an NVML call when the cycle ended.
    pub stalled: bool,
}
