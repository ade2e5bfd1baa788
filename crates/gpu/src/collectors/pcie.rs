//! The PCIe link: generation and width now and at most, replays, and (opt-in) throughput.

use nvml_wrapper::enum_wrappers::device::PcieUtilCounter;

use super::Context;
use crate::calls::{Abort, Call};
use crate::families::Families;
use crate::family;

family!(
    GENERATION,
    gauge,
    "nvidia_gpu_pcie_link_generation",
    "Current PCIe link generation (drops when idle to save power)."
);
family!(
    WIDTH,
    gauge,
    "nvidia_gpu_pcie_link_width",
    "Current PCIe link width in lanes."
);
family!(
    MAX_GENERATION,
    gauge,
    "nvidia_gpu_pcie_link_max_generation",
    "Highest PCIe link generation the GPU and system allow."
);
family!(
    MAX_WIDTH,
    gauge,
    "nvidia_gpu_pcie_link_max_width",
    "Widest PCIe link the GPU and system allow, in lanes."
);
family!(
    REPLAYS,
    counter,
    "nvidia_gpu_pcie_replays_total",
    "PCIe packets sent again after a transmission error."
);
family!(
    THROUGHPUT,
    gauge,
    "nvidia_gpu_pcie_throughput_bytes_per_second",
    "PCIe throughput by direction (tx: from the GPU, rx: to it), sampled by the driver over 20 ms."
);

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    let device = cx.device;
    let links = [
        (Call::PcieLinkGeneration, &GENERATION),
        (Call::PcieLinkWidth, &WIDTH),
        (Call::PcieMaxLinkGeneration, &MAX_GENERATION),
        (Call::PcieMaxLinkWidth, &MAX_WIDTH),
    ];
    for (call, family) in links {
        let value = cx.reader.call(call, || match call {
            Call::PcieLinkGeneration => device.current_pcie_link_gen(),
            Call::PcieLinkWidth => device.current_pcie_link_width(),
            Call::PcieMaxLinkGeneration => device.max_pcie_link_gen(),
            _ => device.max_pcie_link_width(),
        })?;
        if let Some(value) = value {
            out.sample(family, cx.labels, &[], f64::from(value));
        }
    }
    if let Some(replays) = cx
        .reader
        .call(Call::PcieReplayCounter, || device.pcie_replay_counter())?
    {
        out.sample(&REPLAYS, cx.labels, &[], f64::from(replays));
    }
    if cx.options.pcie_throughput {
        for (counter, direction) in [
            (PcieUtilCounter::Send, "tx"),
            (PcieUtilCounter::Receive, "rx"),
        ] {
            if let Some(kb) = cx
                .reader
                .call(Call::PcieThroughput, || device.pcie_throughput(counter))?
            {
                out.sample(
                    &THROUGHPUT,
                    cx.labels,
                    &[("direction", direction)],
                    f64::from(kb) * 1000.0,
                );
            }
        }
    }
    Ok(())
}
