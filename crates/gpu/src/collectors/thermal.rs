//! Temperatures, their thresholds, and fans.

use nvml_wrapper::enum_wrappers::device::{TemperatureSensor, TemperatureThreshold};
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper_sys::bindings::field_id::NVML_FI_DEV_MEMORY_TEMP;

use super::Context;
use crate::calls::{Abort, Call};
use crate::families::Families;
use crate::family;

family!(
    GPU,
    gauge,
    "nvidia_gpu_temperature_celsius",
    "GPU core temperature."
);
family!(
    MEMORY,
    gauge,
    "nvidia_gpu_memory_temperature_celsius",
    "HBM memory temperature (boards with HBM only)."
);
family!(
    THRESHOLD,
    gauge,
    "nvidia_gpu_temperature_threshold_celsius",
    "Temperature at which the GPU acts: slowdown (clocks reduced), shutdown, gpu_max and memory_max (the most the board allows)."
);
family!(
    FAN,
    gauge,
    "nvidia_gpu_fan_speed_ratio",
    "Intended fan speed as a fraction of its maximum (0-1), per fan."
);

const THRESHOLDS: [(TemperatureThreshold, &str); 4] = [
    (TemperatureThreshold::Slowdown, "slowdown"),
    (TemperatureThreshold::Shutdown, "shutdown"),
    (TemperatureThreshold::GpuMax, "gpu_max"),
    (TemperatureThreshold::MemoryMax, "memory_max"),
];

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    let device = cx.device;
    if let Some(celsius) = cx.reader.call(Call::Temperature, || {
        device.temperature(TemperatureSensor::Gpu)
    })? {
        out.sample(&GPU, cx.labels, &[], f64::from(celsius));
    }
    // HBM temperature exists only as a field value; the call succeeds even where the
    // field does not, so the field's own result decides.
    let fields = cx.reader.call(Call::FieldValues, || {
        device.field_values_for(&[FieldId(NVML_FI_DEV_MEMORY_TEMP)])
    })?;
    if let Some(Ok(sample)) = fields.as_ref().and_then(|f| f.first())
        && let Ok(value) = &sample.value
    {
        let celsius = match *value {
            SampleValue::F64(v) => v,
            SampleValue::U32(v) => f64::from(v),
            SampleValue::U64(v) => v as f64,
            SampleValue::I64(v) => v as f64,
        };
        out.sample(&MEMORY, cx.labels, &[], celsius);
    }
    for (threshold, name) in THRESHOLDS {
        let value = cx.reader.call_each(Call::TemperatureThreshold, || {
            device.temperature_threshold(threshold)
        })?;
        if let Some(celsius) = value {
            out.sample(
                &THRESHOLD,
                cx.labels,
                &[("threshold", name)],
                f64::from(celsius),
            );
        }
    }
    if let Some(fans) = cx.reader.call(Call::NumFans, || device.num_fans())? {
        for fan in 0..fans {
            if let Some(percent) = cx.reader.call(Call::FanSpeed, || device.fan_speed(fan))? {
                out.sample(
                    &FAN,
                    cx.labels,
                    &[("fan", &fan.to_string())],
                    f64::from(percent) / 100.0,
                );
            }
        }
    }
    Ok(())
}
