//! Busy ratios of the GPU's engines over the driver's last sample period.

use super::Context;
use crate::calls::{Abort, Call};
use crate::families::Families;
use crate::family;

family!(
    GPU,
    gauge,
    "nvidia_gpu_utilization_ratio",
    "Fraction of the last sample period in which one or more kernels ran on the GPU (0-1)."
);
family!(
    MEMORY_COPY,
    gauge,
    "nvidia_gpu_memory_copy_utilization_ratio",
    "Fraction of the last sample period in which device memory was read or written (0-1)."
);
family!(
    ENCODER,
    gauge,
    "nvidia_gpu_encoder_utilization_ratio",
    "Video encoder utilisation (0-1)."
);
family!(
    DECODER,
    gauge,
    "nvidia_gpu_decoder_utilization_ratio",
    "Video decoder utilisation (0-1)."
);

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    let device = cx.device;
    if let Some(rates) = cx
        .reader
        .call(Call::UtilizationRates, || device.utilization_rates())?
    {
        out.sample(&GPU, cx.labels, &[], f64::from(rates.gpu) / 100.0);
        out.sample(
            &MEMORY_COPY,
            cx.labels,
            &[],
            f64::from(rates.memory) / 100.0,
        );
    }
    if let Some(encoder) = cx
        .reader
        .call(Call::EncoderUtilization, || device.encoder_utilization())?
    {
        out.sample(
            &ENCODER,
            cx.labels,
            &[],
            f64::from(encoder.utilization) / 100.0,
        );
    }
    if let Some(decoder) = cx
        .reader
        .call(Call::DecoderUtilization, || device.decoder_utilization())?
    {
        out.sample(
            &DECODER,
            cx.labels,
            &[],
            f64::from(decoder.utilization) / 100.0,
        );
    }
    Ok(())
}
