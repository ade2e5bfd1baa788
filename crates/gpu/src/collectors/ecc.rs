//! Memory errors: ECC mode and counts, retired pages (up to Volta) and remapped rows
//! (Ampere and later).

use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError, RetirementCause};

use super::Context;
use crate::calls::{Abort, Call};
use crate::families::Families;
use crate::{family, sys};

family!(
    ENABLED,
    gauge,
    "nvidia_gpu_ecc_enabled",
    "1 if ECC is on, 0 if off."
);
family!(
    ERRORS,
    counter,
    "nvidia_gpu_ecc_errors_total",
    "ECC errors by error (corrected = single-bit, uncorrected = double-bit) and counter (volatile: since the driver loaded; aggregate: over the board's life)."
);
family!(
    RETIRED,
    gauge,
    "nvidia_gpu_retired_pages",
    "Frame-buffer pages retired, by cause (single_bit: many single-bit errors, double_bit: one double-bit error)."
);
family!(
    RETIRED_PENDING,
    gauge,
    "nvidia_gpu_retired_pages_pending",
    "1 if pages wait for a reboot to be retired."
);
family!(
    REMAPPED,
    gauge,
    "nvidia_gpu_remapped_rows",
    "Memory rows remapped, by the kind of error that caused it."
);
family!(
    REMAP_PENDING,
    gauge,
    "nvidia_gpu_row_remap_pending",
    "1 if a row remapping waits for a GPU reset."
);
family!(
    REMAP_FAILURE,
    gauge,
    "nvidia_gpu_row_remap_failure",
    "1 if a row could not be remapped (the GPU should be replaced)."
);

const COUNTS: [(MemoryError, &str, EccCounter, &str); 4] = [
    (
        MemoryError::Corrected,
        "corrected",
        EccCounter::Volatile,
        "volatile",
    ),
    (
        MemoryError::Corrected,
        "corrected",
        EccCounter::Aggregate,
        "aggregate",
    ),
    (
        MemoryError::Uncorrected,
        "uncorrected",
        EccCounter::Volatile,
        "volatile",
    ),
    (
        MemoryError::Uncorrected,
        "uncorrected",
        EccCounter::Aggregate,
        "aggregate",
    ),
];

pub fn collect(cx: &mut Context<'_, '_>, out: &mut Families) -> Result<(), Abort> {
    let device = cx.device;
    let mode = cx.reader.call(Call::EccMode, || device.is_ecc_enabled())?;
    if let Some(mode) = &mode {
        out.sample(
            &ENABLED,
            cx.labels,
            &[],
            if mode.currently_enabled { 1.0 } else { 0.0 },
        );
    }
    // Counts mean nothing, and are often refused, while ECC is off.
    if mode.is_some_and(|m| m.currently_enabled) {
        for (error, error_name, counter, counter_name) in COUNTS {
            let count = cx.reader.call(Call::TotalEccErrors, || {
                device.total_ecc_errors(error, counter)
            })?;
            if let Some(count) = count {
                out.sample(
                    &ERRORS,
                    cx.labels,
                    &[("error", error_name), ("counter", counter_name)],
                    count as f64,
                );
            }
        }
    }
    for (cause, name) in [
        (RetirementCause::MultipleSingleBitEccErrors, "single_bit"),
        (RetirementCause::DoubleBitEccError, "double_bit"),
    ] {
        if let Some(pages) = cx
            .reader
            .call(Call::RetiredPages, || device.retired_pages(cause))?
        {
            out.sample(&RETIRED, cx.labels, &[("cause", name)], pages.len() as f64);
        }
    }
    if let Some(pending) = cx.reader.call(Call::RetiredPagesPending, || {
        device.are_pages_pending_retired()
    })? {
        out.sample(
            &RETIRED_PENDING,
            cx.labels,
            &[],
            if pending { 1.0 } else { 0.0 },
        );
    }
    if let Some(rows) = cx
        .reader
        .call(Call::RemappedRows, || sys::remapped_rows(device))?
    {
        out.sample(
            &REMAPPED,
            cx.labels,
            &[("type", "correctable")],
            f64::from(rows.correctable),
        );
        out.sample(
            &REMAPPED,
            cx.labels,
            &[("type", "uncorrectable")],
            f64::from(rows.uncorrectable),
        );
        out.sample(
            &REMAP_PENDING,
            cx.labels,
            &[],
            if rows.pending { 1.0 } else { 0.0 },
        );
        out.sample(
            &REMAP_FAILURE,
            cx.labels,
            &[],
            if rows.failure { 1.0 } else { 0.0 },
        );
    }
    Ok(())
}
