//! `nvidia_gpu_info`: what the GPU is, read once per device and repeated every cycle.

use nvml_wrapper::Device;

use super::Context;
use crate::calls::{Abort, Call, Reader};
use crate::families::Families;
use crate::family;

family!(
    INFO,
    gauge,
    "nvidia_gpu_info",
    "Identity of the GPU: model name, PCI bus id, device node, board serial, VBIOS, brand, architecture, CUDA compute capability, driver and CUDA versions. Always 1."
);

/// The label pairs of `nvidia_gpu_info`, besides `gpu` and `uuid`.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub pairs: Vec<(&'static str, String)>,
}

/// Driver-wide identity, read once when the library is opened.
#[derive(Debug, Clone, Default)]
pub struct System {
    pub driver_version: String,
    pub cuda_version: String,
}

impl Identity {
    /// Reads the identity of `device`; a value the board lacks is an empty label.
    pub fn read(
        device: &Device<'_>,
        reader: &mut Reader<'_>,
        system: &System,
    ) -> Result<Self, Abort> {
        let name = reader.call(Call::Name, || device.name())?;
        let pci = reader.call(Call::PciInfo, || device.pci_info())?;
        let minor = reader.call(Call::MinorNumber, || device.minor_number())?;
        let serial = reader.call(Call::Serial, || device.serial())?;
        let vbios = reader.call(Call::VbiosVersion, || device.vbios_version())?;
        let brand = reader.call(Call::Brand, || device.brand())?;
        let architecture = reader.call(Call::Architecture, || device.architecture())?;
        let capability =
            reader.call(Call::ComputeCapability, || device.cuda_compute_capability())?;
        let pairs = vec![
            ("name", name.unwrap_or_default()),
            ("pci_bus_id", pci.map(|p| p.bus_id).unwrap_or_default()),
            (
                "minor_number",
                minor.map(|m| m.to_string()).unwrap_or_default(),
            ),
            (
                "device",
                minor.map(|m| format!("nvidia{m}")).unwrap_or_default(),
            ),
            ("serial", serial.unwrap_or_default()),
            ("vbios_version", vbios.unwrap_or_default()),
            ("brand", brand.map(|b| format!("{b:?}")).unwrap_or_default()),
            (
                "architecture",
                architecture.map(|a| a.to_string()).unwrap_or_default(),
            ),
            (
                "compute_capability",
                capability
                    .map(|c| format!("{}.{}", c.major, c.minor))
                    .unwrap_or_default(),
            ),
            ("driver_version", system.driver_version.clone()),
            ("cuda_version", system.cuda_version.clone()),
        ];
        Ok(Self { pairs })
    }
}

/// Writes `nvidia_gpu_info` from what was learnt when the device was found.
pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    if let Some(identity) = &cx.learnt.identity {
        let pairs: Vec<(&str, &str)> = identity
            .pairs
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        out.sample(&INFO, cx.labels, &pairs, 1.0);
    }
    Ok(())
}

/// `12040` → `12.4`, as nvidia-smi prints the CUDA version.
pub fn cuda_version(encoded: i32) -> String {
    format!("{}.{}", encoded / 1000, (encoded % 1000) / 10)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cuda_versions_read_as_nvidia_smi_prints_them() {
        assert_eq!(super::cuda_version(12040), "12.4");
        assert_eq!(super::cuda_version(11080), "11.8");
        assert_eq!(super::cuda_version(13000), "13.0");
    }
}
