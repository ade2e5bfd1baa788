//! How the GPU is set to run and what it needs: its compute mode, the recovery action the
//! driver asks for, its registration with the NVSwitch fabric, and (in a virtual machine
//! with a vGPU) its software licences.

use nvml_wrapper::enum_wrappers::device::ComputeMode;
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::structs::device::FieldId;

use super::Context;
use crate::calls::{Abort, Call};
use crate::families::Families;
use crate::{family, sys};

family!(
    COMPUTE_MODE,
    gauge,
    "nvidia_gpu_compute_mode",
    "NVML's compute mode: 0 default (shared), 1 exclusive thread (retired), 2 prohibited, 3 exclusive process."
);
family!(
    RECOVERY_ACTION,
    gauge,
    "nvidia_gpu_recovery_action",
    "What the driver says the GPU needs: 0 nothing, 1 a GPU reset, 2 a node reboot, 3 draining peer-to-peer traffic, 4 draining and a reset."
);
family!(
    FABRIC_STATE,
    gauge,
    "nvidia_gpu_fabric_state",
    "Registration with the NVSwitch fabric: 1 not started, 2 in progress, 3 completed (NVSwitch systems only)."
);
family!(
    FABRIC_ERROR,
    gauge,
    "nvidia_gpu_fabric_registration_failed",
    "1 if the fabric manager reported the GPU's registration failed, else 0 (NVSwitch systems only)."
);

family!(
    VGPU_LICENSED,
    gauge,
    "nvidia_gpu_vgpu_licensed",
    "1 if the vGPU software feature is licensed, else 0: vgpu, nvidia_rtx, gaming, compute (virtual machines with a vGPU only)."
);

/// `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION` (drivers from 550 on; not in nvml-wrapper's list).
const FIELD_RECOVERY_ACTION: u32 = 230;

/// `NVML_GPU_FABRIC_STATE_NOT_SUPPORTED`.
const FABRIC_NOT_SUPPORTED: u8 = 0;
/// `NVML_GPU_FABRIC_STATE_COMPLETED`.
const FABRIC_COMPLETED: u8 = 3;

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    let device = cx.device;
    if let Some(mode) = cx
        .reader
        .call(Call::ComputeMode, || device.compute_mode())?
    {
        let value = match mode {
            ComputeMode::Default => 0.0,
            ComputeMode::ExclusiveThread => 1.0,
            ComputeMode::Prohibited => 2.0,
            ComputeMode::ExclusiveProcess => 3.0,
        };
        out.sample(&COMPUTE_MODE, cx.labels, &[], value);
    }
    // A field value: the call succeeds where the field does not, so its own result decides.
    let fields = cx.reader.call(Call::FieldValues, || {
        device.field_values_for(&[FieldId(FIELD_RECOVERY_ACTION)])
    })?;
    if let Some(Ok(sample)) = fields.as_ref().and_then(|f| f.first())
        && let Ok(SampleValue::U32(action)) = &sample.value
    {
        out.sample(&RECOVERY_ACTION, cx.labels, &[], f64::from(*action));
    }
    if let Some(fabric) = cx
        .reader
        .call(Call::FabricInfo, || sys::gpu_fabric_info(device))?
    {
        if fabric.state == FABRIC_NOT_SUPPORTED {
            // Not an NVSwitch system: not asked again.
            cx.reader.give_up(Call::FabricInfo);
        } else {
            out.sample(&FABRIC_STATE, cx.labels, &[], f64::from(fabric.state));
            let failed = fabric.state == FABRIC_COMPLETED && fabric.status != 0;
            out.sample(
                &FABRIC_ERROR,
                cx.labels,
                &[],
                if failed { 1.0 } else { 0.0 },
            );
        }
    }
    if let Some(licences) = cx
        .reader
        .call(Call::GridLicensableFeatures, || sys::vgpu_licences(device))?
    {
        match licences {
            // Bare metal: not asked again.
            None => cx.reader.give_up(Call::GridLicensableFeatures),
            Some(licences) => {
                for licence in licences {
                    let feature = match licence.feature {
                        1 => "vgpu",
                        2 => "nvidia_rtx",
                        3 => "gaming",
                        4 => "compute",
                        _ => continue,
                    };
                    let value = if licence.licensed { 1.0 } else { 0.0 };
                    out.sample(&VGPU_LICENSED, cx.labels, &[("feature", feature)], value);
                }
            }
        }
    }
    Ok(())
}
