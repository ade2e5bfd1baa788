//! Power draw, power limits and the energy counter.

use super::Context;
use crate::calls::{Abort, Call};
use crate::families::Families;
use crate::family;

family!(
    USAGE,
    gauge,
    "nvidia_gpu_power_usage_watts",
    "Power drawn by the board, averaged by the driver over about a second."
);
family!(
    LIMIT,
    gauge,
    "nvidia_gpu_power_limit_watts",
    "Power limit in force (the lowest of all limits that apply)."
);
family!(
    MANAGEMENT_LIMIT,
    gauge,
    "nvidia_gpu_power_management_limit_watts",
    "Power limit set through power management."
);
family!(
    DEFAULT_LIMIT,
    gauge,
    "nvidia_gpu_power_management_default_limit_watts",
    "Power-management limit the board ships with."
);
family!(
    ENERGY,
    counter,
    "nvidia_gpu_energy_consumption_joules_total",
    "Energy consumed by the board since the driver was last loaded (Volta and later)."
);

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    let device = cx.device;
    let milliwatts = [
        (Call::PowerUsage, &USAGE),
        (Call::EnforcedPowerLimit, &LIMIT),
        (Call::PowerManagementLimit, &MANAGEMENT_LIMIT),
        (Call::PowerManagementDefaultLimit, &DEFAULT_LIMIT),
    ];
    for (call, family) in milliwatts {
        let value = cx.reader.call(call, || match call {
            Call::PowerUsage => device.power_usage(),
            Call::EnforcedPowerLimit => device.enforced_power_limit(),
            Call::PowerManagementLimit => device.power_management_limit(),
            _ => device.power_management_limit_default(),
        })?;
        if let Some(mw) = value {
            out.sample(family, cx.labels, &[], f64::from(mw) / 1000.0);
        }
    }
    if let Some(mj) = cx.reader.call(Call::TotalEnergyConsumption, || {
        device.total_energy_consumption()
    })? {
        out.sample(&ENERGY, cx.labels, &[], mj as f64 / 1000.0);
    }
    Ok(())
}
