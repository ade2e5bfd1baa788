//! Processes on the GPU: their count always; with `--collect.processes`, each one's
//! memory and utilisation, named by PID, command and owner (YARN container, container,
//! systemd unit) from `/proc`.

use std::collections::HashMap;

use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;

use super::Context;
use crate::calls::{Abort, Call};
use crate::cgroup;
use crate::families::Families;
use crate::family;

family!(
    COUNT,
    gauge,
    "nvidia_gpu_processes",
    "Processes with a compute context on the GPU."
);
family!(
    MEMORY,
    gauge,
    "nvidia_gpu_process_memory_used_bytes",
    "GPU memory used by one process."
);
family!(
    SM,
    gauge,
    "nvidia_gpu_process_sm_utilization_ratio",
    "Fraction of time one process had a kernel on the GPU's SMs since the previous collection (0-1)."
);
family!(
    MEMORY_UTIL,
    gauge,
    "nvidia_gpu_process_memory_utilization_ratio",
    "Fraction of time one process read or wrote device memory since the previous collection (0-1)."
);

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    let device = cx.device;
    let Some(processes) = cx.reader.call(Call::ComputeProcesses, || {
        device.running_compute_processes()
    })?
    else {
        return Ok(());
    };
    out.sample(&COUNT, cx.labels, &[], processes.len() as f64);
    if !cx.options.processes || processes.is_empty() {
        return Ok(());
    }
    let utilization = sampled_utilization(cx)?;
    for process in &processes {
        let pid = process.pid.to_string();
        let dir = cx.procfs().join(&pid);
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let owner = cgroup::parse(&std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default());
        let (gi, ci) = (
            process.gpu_instance_id.map(|v| v.to_string()),
            process.compute_instance_id.map(|v| v.to_string()),
        );
        let mut labels = vec![("pid", pid.as_str()), ("process_name", name.trim_end())];
        labels.extend(owner.labels());
        if let (Some(gi), Some(ci)) = (&gi, &ci) {
            labels.push(("gpu_instance_id", gi));
            labels.push(("compute_instance_id", ci));
        }
        if let UsedGpuMemory::Used(bytes) = process.used_gpu_memory {
            out.sample(&MEMORY, cx.labels, &labels, bytes as f64);
        }
        if let Some(by_pid) = &utilization {
            // No sample since the last collection: the process did no measured work.
            let (sm, memory) = by_pid.get(&process.pid).copied().unwrap_or((0.0, 0.0));
            out.sample(&SM, cx.labels, &labels, sm);
            out.sample(&MEMORY_UTIL, cx.labels, &labels, memory);
        }
    }
    Ok(())
}

/// SM and memory utilisation (0-1) by PID.
type UtilizationByPid = HashMap<u32, (f64, f64)>;

/// Mean SM and memory utilisation per PID over the samples NVML took since the last
/// collection; `None` where the GPU cannot sample per process.
fn sampled_utilization(cx: &mut Context<'_, '_>) -> Result<Option<UtilizationByPid>, Abort> {
    if cx.reader.support.lacks(Call::ProcessUtilization) {
        return Ok(None);
    }
    let device = cx.device;
    let since = cx.learnt.last_process_sample;
    let answer = cx
        .reader
        .progress
        .around(Some(cx.reader.gpu), Call::ProcessUtilization, || {
            device.process_utilization_stats(since)
        });
    let samples = match answer {
        Ok(samples) => samples,
        // NVML's answer when nothing was sampled, the usual case on an idle GPU.
        Err(NvmlError::NotFound) => Vec::new(),
        Err(error) => {
            cx.reader.failed(Call::ProcessUtilization, &error)?;
            return Ok(None);
        }
    };
    let mut sums: HashMap<u32, (f64, f64, u32)> = HashMap::new();
    for sample in &samples {
        cx.learnt.last_process_sample = cx.learnt.last_process_sample.max(sample.timestamp);
        let entry = sums.entry(sample.pid).or_default();
        entry.0 += f64::from(sample.sm_util);
        entry.1 += f64::from(sample.mem_util);
        entry.2 += 1;
    }
    Ok(Some(
        sums.into_iter()
            .map(|(pid, (sm, memory, n))| {
                (
                    pid,
                    (sm / f64::from(n) / 100.0, memory / f64::from(n) / 100.0),
                )
            })
            .collect(),
    ))
}
