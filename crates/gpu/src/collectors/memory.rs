//! Frame-buffer and BAR1 memory.

use super::Context;
use crate::calls::{Abort, Call};
use crate::families::Families;
use crate::{family, sys};

family!(
    TOTAL,
    gauge,
    "nvidia_gpu_memory_total_bytes",
    "Total frame-buffer memory."
);
family!(
    USED,
    gauge,
    "nvidia_gpu_memory_used_bytes",
    "Frame-buffer memory allocated by processes, as nvidia-smi counts it (reserved memory excluded)."
);
family!(
    FREE,
    gauge,
    "nvidia_gpu_memory_free_bytes",
    "Frame-buffer memory not allocated."
);
family!(
    RESERVED,
    gauge,
    "nvidia_gpu_memory_reserved_bytes",
    "Frame-buffer memory reserved by the driver and firmware."
);
family!(
    BAR1_TOTAL,
    gauge,
    "nvidia_gpu_bar1_memory_total_bytes",
    "Total BAR1 memory (the window through which the CPU and peers map device memory)."
);
family!(
    BAR1_USED,
    gauge,
    "nvidia_gpu_bar1_memory_used_bytes",
    "BAR1 memory in use."
);

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    let device = cx.device;
    if let Some(memory) = cx
        .reader
        .call(Call::MemoryInfoV2, || device.memory_info())?
    {
        out.sample(&TOTAL, cx.labels, &[], memory.total as f64);
        out.sample(&USED, cx.labels, &[], memory.used as f64);
        out.sample(&FREE, cx.labels, &[], memory.free as f64);
        out.sample(&RESERVED, cx.labels, &[], memory.reserved as f64);
    } else if cx.reader.support.lacks(Call::MemoryInfoV2) {
        // Drivers before 510: version 1 of the call, where "used" includes reserved memory.
        if let Some(memory) = cx
            .reader
            .call(Call::MemoryInfo, || sys::memory_info_v1(device))?
        {
            out.sample(&TOTAL, cx.labels, &[], memory.total as f64);
            out.sample(&USED, cx.labels, &[], memory.used as f64);
            out.sample(&FREE, cx.labels, &[], memory.free as f64);
        }
    }
    if let Some(bar1) = cx
        .reader
        .call(Call::Bar1MemoryInfo, || device.bar1_memory_info())?
    {
        out.sample(&BAR1_TOTAL, cx.labels, &[], bar1.total as f64);
        out.sample(&BAR1_USED, cx.labels, &[], bar1.used as f64);
    }
    Ok(())
}
