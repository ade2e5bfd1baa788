//! Multi-Instance GPU: whether MIG is on, and each MIG device's identity and memory.

use nvml_wrapper::error::NvmlError;

use super::Context;
use crate::calls::{Abort, Call};
use crate::families::Families;
use crate::{family, sys};

family!(
    ENABLED,
    gauge,
    "nvidia_gpu_mig_enabled",
    "1 if MIG mode is on, else 0."
);
family!(
    INFO,
    gauge,
    "nvidia_gpu_mig_info",
    "One MIG device: its UUID, GPU and compute instance ids and profile. Always 1."
);
family!(
    TOTAL,
    gauge,
    "nvidia_gpu_mig_memory_total_bytes",
    "Memory of a MIG device."
);
family!(
    USED,
    gauge,
    "nvidia_gpu_mig_memory_used_bytes",
    "Memory allocated on a MIG device."
);
family!(
    FREE,
    gauge,
    "nvidia_gpu_mig_memory_free_bytes",
    "Memory free on a MIG device."
);

/// NVML_DEVICE_MIG_ENABLE.
const MIG_ENABLED: u32 = 1;

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    let device = cx.device;
    let Some(mode) = cx.reader.call(Call::MigMode, || device.mig_mode())? else {
        return Ok(());
    };
    let enabled = mode.current == MIG_ENABLED;
    cx.learnt.mig_instances.clear();
    out.sample(&ENABLED, cx.labels, &[], if enabled { 1.0 } else { 0.0 });
    if !enabled {
        return Ok(());
    }
    let slots = cx
        .reader
        .call(Call::MaxMigDeviceCount, || device.mig_device_count())?
        .unwrap_or(0);
    // Calls on MIG devices go through `call_each`, so that one MIG device's refusal is
    // not remembered against the parent GPU.
    for slot in 0..slots {
        let mig = match device.mig_device_by_index(slot) {
            Ok(mig) => mig,
            // An empty slot on a partly partitioned GPU.
            Err(NvmlError::NotFound | NvmlError::InvalidArg) => continue,
            Err(error) => {
                cx.reader.failed(Call::MigDeviceHandle, &error)?;
                break;
            }
        };
        let Some(uuid) = cx.reader.call_each(Call::Uuid, || mig.uuid())? else {
            continue;
        };
        let name = cx
            .reader
            .call_each(Call::Name, || mig.name())?
            .unwrap_or_default();
        let gi = cx
            .reader
            .call(Call::GpuInstanceId, || sys::gpu_instance_id(&mig))?;
        let ci = cx
            .reader
            .call(Call::ComputeInstanceId, || sys::compute_instance_id(&mig))?;
        if let Some(gi) = gi.filter(|gi| !cx.learnt.mig_instances.contains(gi)) {
            cx.learnt.mig_instances.push(gi);
        }
        let (gi, ci) = (
            gi.map(|v| v.to_string()).unwrap_or_default(),
            ci.map(|v| v.to_string()).unwrap_or_default(),
        );
        let ids = [
            ("mig_uuid", uuid.as_str()),
            ("gpu_instance_id", gi.as_str()),
            ("compute_instance_id", ci.as_str()),
        ];
        let mut info = ids.to_vec();
        info.push(("profile", profile(&name)));
        out.sample(&INFO, cx.labels, &info, 1.0);
        if let Some(memory) = cx
            .reader
            .call_each(Call::MemoryInfoV2, || mig.memory_info())?
        {
            out.sample(&TOTAL, cx.labels, &ids, memory.total as f64);
            out.sample(&USED, cx.labels, &ids, memory.used as f64);
            out.sample(&FREE, cx.labels, &ids, memory.free as f64);
        }
    }
    Ok(())
}

/// The MIG profile from a MIG device's name: `NVIDIA A100-SXM4-40GB MIG 1g.5gb` →
/// `1g.5gb`, as nvidia-smi shows it.
pub fn profile(name: &str) -> &str {
    name.rsplit_once(" MIG ")
        .map_or(name, |(_, profile)| profile.trim())
}

#[cfg(test)]
mod tests {
    #[test]
    fn profiles_come_from_mig_device_names() {
        assert_eq!(super::profile("NVIDIA A100-SXM4-40GB MIG 1g.5gb"), "1g.5gb");
        assert_eq!(
            super::profile("NVIDIA H100 80GB HBM3 MIG 3g.40gb"),
            "3g.40gb"
        );
        assert_eq!(super::profile("odd"), "odd");
    }
}
