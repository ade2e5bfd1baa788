//! XID errors, from NVML's event queue on a thread of their own.
//!
//! Each XID is counted per GPU and code, with the time it was last seen, so the same
//! XID twice is two increments and nothing needs resetting; the latest code per GPU is a
//! gauge too, as dcgm-exporter's `DCGM_FI_DEV_XID_ERRORS` has it. XIDs that never reach
//! NVML's event queue come from the kernel log ([`crate::kmsg`]) into the same counts.
//! The counts live outside the NVML session and survive the library being reopened.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use nvml_wrapper::EventSet;
use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;

use kiln_registry::MetricSet;

use crate::families::{gpu_labels, write_sample};
use crate::family;

family!(
    ERRORS,
    counter,
    "nvidia_gpu_xid_errors_total",
    "XID errors reported by the driver, by XID code."
);
family!(
    LAST,
    gauge,
    "nvidia_gpu_xid_last_timestamp_seconds",
    "When this XID was last reported on this GPU, in seconds since the epoch."
);
family!(
    LAST_CODE,
    gauge,
    "nvidia_gpu_xid_last_code",
    "The XID code most recently reported on this GPU (only GPUs that reported one)."
);

/// How long one wait for events lasts: how soon the thread notices it should stop.
const WAIT: Duration = Duration::from_millis(1000);

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    count: u64,
    last: f64,
}

/// XID counts by (GPU index, UUID, XID).
#[derive(Debug, Default)]
pub struct XidCounts {
    seen: Mutex<BTreeMap<(u32, String, u64), Seen>>,
}

/// Per GPU, the XID seen latest, from the counts.
fn latest(seen: &BTreeMap<(u32, String, u64), Seen>) -> Vec<((u32, &str), u64)> {
    let mut latest: Vec<((u32, &str), u64, f64)> = Vec::new();
    for ((gpu, uuid, xid), s) in seen {
        match latest
            .iter_mut()
            .find(|(key, ..)| *key == (*gpu, uuid.as_str()))
        {
            Some(entry) if s.last >= entry.2 => (entry.1, entry.2) = (*xid, s.last),
            Some(_) => {}
            None => latest.push(((*gpu, uuid.as_str()), *xid, s.last)),
        }
    }
    latest.into_iter().map(|(key, xid, _)| (key, xid)).collect()
}

impl XidCounts {
    /// Counts one XID.
    pub fn record(&self, gpu: u32, uuid: &str, xid: u64, at: SystemTime) {
        let last = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let entry = seen
            .entry((gpu, uuid.to_owned(), xid))
            .or_insert(Seen { count: 0, last });
        entry.count += 1;
        // The kernel log may hand over an older record after a newer one.
        entry.last = entry.last.max(last);
    }

    /// Writes both families.
    pub fn write(&self, out: &mut MetricSet) {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids = Vec::new();
        for ((gpu, uuid, xid), s) in seen.iter() {
            let labels = gpu_labels(*gpu, uuid);
            let xid = xid.to_string();
            let extra = [("xid", xid.as_str())];
            write_sample(
                out,
                &mut ids,
                &ERRORS,
                Some(&labels),
                &extra,
                s.count as f64,
            );
            write_sample(out, &mut ids, &LAST, Some(&labels), &extra, s.last);
        }
        for ((gpu, uuid), xid) in latest(&seen) {
            let labels = gpu_labels(gpu, uuid);
            write_sample(out, &mut ids, &LAST_CODE, Some(&labels), &[], xid as f64);
        }
    }
}

/// Stops its watcher thread when dropped.
#[derive(Debug)]
pub struct Watch {
    stop: Arc<AtomicBool>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts a thread that registers every GPU for XID events and counts what arrives.
pub fn watch(nvml: Arc<Nvml>, counts: Arc<XidCounts>) -> Watch {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let spawned = std::thread::Builder::new()
        .name("nvml-xid".into())
        .spawn(move || run(&nvml, &counts, &stopped));
    if let Err(error) = spawned {
        tracing::warn!(%error, "Cannot start the XID event thread; XID errors are not counted.");
    }
    Watch { stop }
}

fn run(nvml: &Nvml, counts: &XidCounts, stop: &AtomicBool) {
    let set = match register(nvml) {
        Ok(set) => set,
        Err(error) => {
            tracing::warn!(%error, "Cannot watch for XID events; XID errors are not counted.");
            return;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        match set.wait(WAIT.as_millis() as u32) {
            Ok(event) => {
                let xid = match event.event_data {
                    Some(XidError::Value(xid)) => xid,
                    Some(XidError::Unknown) | None => 999,
                };
                let gpu = event.device.index().unwrap_or(u32::MAX);
                let uuid = event.device.uuid().unwrap_or_default();
                tracing::warn!(gpu, uuid, xid, "XID error.");
                counts.record(gpu, &uuid, xid, SystemTime::now());
            }
            Err(NvmlError::Timeout) => {}
            Err(error) => {
                tracing::debug!(%error, "Waiting for NVML events failed.");
                std::thread::sleep(WAIT);
            }
        }
    }
}

/// One event set with every GPU that accepts XID events. A GPU that refuses is left out;
/// since a refused registration frees the set, the set is then rebuilt.
fn register(nvml: &Nvml) -> Result<EventSet<'_>, NvmlError> {
    let count = nvml.device_count()?;
    let mut set = nvml.create_event_set()?;
    let mut registered = Vec::new();
    for index in 0..count {
        let Ok(device) = nvml.device_by_index(index) else {
            continue;
        };
        match device.register_events(EventTypes::CRITICAL_XID_ERROR, set) {
            Ok(kept) => {
                set = kept;
                registered.push(index);
            }
            Err(error) => {
                tracing::info!(gpu = index, error = %error.error, "This GPU does not report XID events.");
                set = nvml.create_event_set()?;
                for &earlier in &registered {
                    let device = nvml.device_by_index(earlier)?;
                    set = device
                        .register_events(EventTypes::CRITICAL_XID_ERROR, set)
                        .map_err(|e| e.error)?;
                }
            }
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `counts` writes, in the text format.
    fn text(counts: &XidCounts) -> String {
        let mut set = MetricSet::default();
        counts.write(&mut set);
        set.seal();
        let mut out = String::new();
        kiln_registry::metrics::encode(&[&set], kiln_registry::metrics::Format::Text, &mut out);
        out
    }

    #[test]
    fn the_same_xid_twice_counts_twice_and_keeps_the_latest_time() {
        let counts = XidCounts::default();
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        counts.record(0, "GPU-a", 79, t(100));
        counts.record(0, "GPU-a", 79, t(200));
        counts.record(1, "GPU-b", 48, t(150));
        let out = text(&counts);
        assert!(
            out.contains("nvidia_gpu_xid_errors_total{gpu=\"0\",uuid=\"GPU-a\",xid=\"79\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "nvidia_gpu_xid_last_timestamp_seconds{gpu=\"0\",uuid=\"GPU-a\",xid=\"79\"} 200\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("nvidia_gpu_xid_errors_total{gpu=\"1\",uuid=\"GPU-b\",xid=\"48\"} 1\n"),
            "{out}"
        );
        counts.record(0, "GPU-a", 13, t(150));
        let out = text(&counts);
        // The latest per GPU, by when it was seen: 79 at 200 beats 13 at 150.
        assert!(
            out.contains("nvidia_gpu_xid_last_code{gpu=\"0\",uuid=\"GPU-a\"} 79\n"),
            "{out}"
        );
        assert!(
            out.contains("nvidia_gpu_xid_last_code{gpu=\"1\",uuid=\"GPU-b\"} 48\n"),
            "{out}"
        );
    }
}
