//! What one collection cycle found, shared with the scrapes.

use std::time::{Duration, SystemTime};

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
    /// Each GPU index NVML reported: its rendered `gpu`/`uuid` labels and whether it answered.
    pub gpus: Vec<(String, bool)>,
    /// Every per-GPU family, rendered.
    pub readings: String,
    /// `nvidia_gpu_collect_errors_total`, rendered.
    pub errors: String,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            taken: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            cycles: 0,
            nvml_up: false,
            gpus: Vec::new(),
            readings: String::new(),
            errors: String::new(),
        }
    }
}
