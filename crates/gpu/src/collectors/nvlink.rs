//! NVLink: whether each link is up, and its data-link error counters.

use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;

use super::Context;
use crate::calls::{Abort, Call};
use crate::families::Families;
use crate::family;

family!(
    UP,
    gauge,
    "nvidia_gpu_nvlink_up",
    "1 if the NVLink is active, else 0."
);
family!(
    ERRORS,
    counter,
    "nvidia_gpu_nvlink_errors_total",
    "NVLink data-link errors by type: replay, recovery, crc_flit, crc_data."
);

/// NVML_NVLINK_MAX_LINKS: no GPU has more.
const MAX_LINKS: u32 = 18;

const COUNTERS: [(ErrorCounter, &str); 4] = [
    (ErrorCounter::DlReplay, "replay"),
    (ErrorCounter::DlRecovery, "recovery"),
    (ErrorCounter::DlCrcFlit, "crc_flit"),
    (ErrorCounter::DlCrcData, "crc_data"),
];

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    let device = cx.device;
    let limit = cx.learnt.nvlinks.unwrap_or(MAX_LINKS);
    for link in 0..limit {
        let nvlink = device.link_wrapper_for(link);
        let Some(active) = cx
            .reader
            .call_each(Call::NvLinkState, || nvlink.is_active())?
        else {
            // Past the last link (or none at all): learnt once, not asked again.
            if cx.learnt.nvlinks.is_none() {
                cx.learnt.nvlinks = Some(link);
            }
            break;
        };
        let link_label = link.to_string();
        out.sample(
            &UP,
            cx.labels,
            &[("link", &link_label)],
            if active { 1.0 } else { 0.0 },
        );
        if !active {
            continue;
        }
        for (counter, name) in COUNTERS {
            if let Some(count) = cx
                .reader
                .call_each(Call::NvLinkErrorCounter, || nvlink.error_counter(counter))?
            {
                out.sample(
                    &ERRORS,
                    cx.labels,
                    &[("link", &link_label), ("type", name)],
                    count as f64,
                );
            }
        }
    }
    if cx.learnt.nvlinks.is_none() && !cx.reader.support.lacks(Call::NvLinkState) {
        cx.learnt.nvlinks = Some(limit);
    }
    Ok(())
}
