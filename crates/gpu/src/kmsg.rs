//! XIDs from the kernel log, for those that never reach NVML's event queue: XID 79, "GPU
//! has fallen off the bus", is logged by the driver when the GPU can no longer be asked
//! anything, NVML events included.
//!
//! A thread reads `/dev/kmsg` (or the file `--collect.xid-kmsg.path` names) without
//! blocking, a fixed-size buffer at a time, and looks for the driver's lines
//! (`NVRM: Xid (PCI:0000:3b:00): 79, pid=…, GPU has fallen off the bus.`). The PCI address
//! is matched to the GPU that NVML reported there, and the XID counted with the same
//! labels as one from NVML. The whole ring buffer is read at start, so an XID logged
//! before the exporter started still counts.

use std::io::{self, Read as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kiln_registry::MetricSet;

use crate::family;
use crate::worker::Shared;

family!(
    UNMATCHED,
    counter,
    "nvidia_gpu_xid_kmsg_unmatched_total",
    "Kernel-log XID lines that could not be read, or whose PCI address matched no GPU NVML reported."
);

/// XIDs taken from the kernel log: those NVML's event queue never delivers.
pub const KMSG_ONLY: &[u64] = &[79];

/// The longest a line may grow without an end before it is dropped: kernel records are at
/// most about 1 KiB (8 KiB with their dictionary).
const MAX_LINE: usize = 64 << 10;

/// How often the log is read again once everything in it was read.
const POLL: Duration = Duration::from_secs(1);

/// How long after a failure to open the log it is tried again.
const REOPEN: Duration = Duration::from_secs(60);

/// A PCI address without its function: `(domain, bus, device)`.
pub type PciKey = (u32, u8, u8);

/// `00000000:3B:00.0` (NVML) or `0000:3b:00` (the driver's log) as a [`PciKey`].
pub fn pci_key(text: &str) -> Option<PciKey> {
    let text = text.split('.').next()?;
    let mut parts = text.split(':');
    let domain = u32::from_str_radix(parts.next()?, 16).ok()?;
    let bus = u8::from_str_radix(parts.next()?, 16).ok()?;
    let device = u8::from_str_radix(parts.next()?, 16).ok()?;
    parts.next().is_none().then_some((domain, bus, device))
}

/// An XID line of the kernel log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Microseconds since boot.
    pub at_us: u64,
    pub bus: PciKey,
    pub xid: u64,
}

/// What one line of the kernel log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// Not the driver's XID line.
    Other,
    Xid(Record),
    /// The start of an XID line, but not of the driver's shape.
    Malformed,
}

/// Reads one line of `/dev/kmsg` (`priority,sequence,microseconds,flags;message`).
pub fn parse(line: &str) -> Line {
    let Some((header, message)) = line.split_once(';') else {
        return Line::Other;
    };
    let Some(rest) = message.trim_start().strip_prefix("NVRM: Xid (PCI:") else {
        return Line::Other;
    };
    xid_record(header, rest).map_or(Line::Malformed, Line::Xid)
}

fn xid_record(header: &str, rest: &str) -> Option<Record> {
    let at_us = header.split(',').nth(2)?.parse().ok()?;
    let (bus, rest) = rest.split_once("):")?;
    let bus = pci_key(bus)?;
    let code = rest.trim_start();
    let digits = code
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(code.len());
    let xid = code[..digits].parse().ok()?;
    Some(Record { at_us, bus, xid })
}

/// Which GPU is at which PCI address, as NVML reported them; kept by the GPUs' threads.
#[derive(Debug, Default)]
pub struct State {
    buses: Mutex<Vec<(PciKey, u32, String)>>,
    unmatched: AtomicU64,
}

impl State {
    /// Notes that GPU `gpu` with `uuid` is at `bus_id` (as NVML writes it).
    pub fn learn(&self, bus_id: &str, gpu: u32, uuid: &str) {
        let Some(key) = pci_key(bus_id) else { return };
        let mut buses = self.buses.lock().unwrap_or_else(|p| p.into_inner());
        match buses.iter_mut().find(|(k, ..)| *k == key) {
            Some(entry) if entry.1 == gpu && entry.2 == uuid => {}
            Some(entry) => *entry = (key, gpu, uuid.to_owned()),
            None => buses.push((key, gpu, uuid.to_owned())),
        }
    }

    fn find(&self, key: PciKey) -> Option<(u32, String)> {
        let buses = self.buses.lock().unwrap_or_else(|p| p.into_inner());
        buses
            .iter()
            .find(|(k, ..)| *k == key)
            .map(|(_, gpu, uuid)| (*gpu, uuid.clone()))
    }

    /// Writes the unmatched-lines counter, once there is something to count.
    pub fn write(&self, out: &mut MetricSet) {
        let unmatched = self.unmatched.load(Ordering::Relaxed);
        if unmatched > 0 {
            out.counter_value(UNMATCHED.name, UNMATCHED.help, unmatched as f64);
        }
    }
}

/// Starts the thread that reads `path` for XIDs, once the first collection has found the
/// GPUs' addresses.
pub fn watch(path: PathBuf, procfs: PathBuf, shared: Arc<Shared>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("kmsg-xid".into())
        .spawn(move || {
            shared.wait_for_first(Duration::from_secs(60));
            Reader::new(path, &procfs, shared).run();
        })
        .map(drop)
}

struct Reader {
    path: PathBuf,
    shared: Arc<Shared>,
    /// When the machine booted, to date records.
    boot: SystemTime,
    pending: Vec<u8>,
    logged_unmatched: bool,
}

impl Reader {
    fn new(path: PathBuf, procfs: &std::path::Path, shared: Arc<Shared>) -> Self {
        let uptime = std::fs::read_to_string(procfs.join("uptime"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        let boot = SystemTime::now()
            .checked_sub(Duration::from_secs_f64(uptime))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Self {
            path,
            shared,
            boot,
            pending: Vec::new(),
            logged_unmatched: false,
        }
    }

    fn run(mut self) {
        let mut warned = false;
        loop {
            let file = open(&self.path);
            match file {
                Ok(file) => {
                    warned = false;
                    if let Err(error) = self.follow(file) {
                        tracing::warn!(path = %self.path.display(), %error, "Reading the kernel log failed; XID 79 is not counted until it is opened again.");
                    }
                }
                Err(error) if !warned => {
                    warned = true;
                    tracing::warn!(path = %self.path.display(), %error, "Cannot read the kernel log (it needs CAP_SYSLOG where kernel.dmesg_restrict is 1); XID 79 is not counted. Tried again every minute.");
                }
                Err(_) => {}
            }
            std::thread::sleep(REOPEN);
        }
    }

    /// Reads records as they come, for ever; returns on a read error.
    fn follow(&mut self, mut file: std::fs::File) -> io::Result<()> {
        // Larger than any record /dev/kmsg hands over in one read.
        let mut buffer = vec![0u8; 16 << 10];
        loop {
            match file.read(&mut buffer) {
                Ok(0) => std::thread::sleep(POLL),
                Ok(read) => self.take(&buffer[..read]),
                Err(error) => match error.kind() {
                    io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
                    io::ErrorKind::Interrupted => {}
                    // Records were overwritten before we read them; the next read goes on.
                    io::ErrorKind::BrokenPipe => {}
                    _ => return Err(error),
                },
            }
        }
    }

    /// Splits `bytes` into lines (a `/dev/kmsg` read is one record; a file's is any part).
    fn take(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.line(&String::from_utf8_lossy(&line[..end]));
        }
        if self.pending.len() > MAX_LINE {
            self.pending.clear();
            self.unmatched("a line longer than 64 KiB");
        }
    }

    fn line(&mut self, line: &str) {
        match parse(line) {
            Line::Other => {}
            Line::Xid(record) => self.record(record),
            Line::Malformed => self.unmatched(line),
        }
    }

    fn record(&mut self, record: Record) {
        if !KMSG_ONLY.contains(&record.xid) {
            // NVML delivers these; counting them here too would count them twice.
            return;
        }
        let Some((gpu, uuid)) = self.shared.kmsg.find(record.bus) else {
            self.unmatched(&format!("XID {} at PCI {:?}", record.xid, record.bus));
            return;
        };
        // A record cannot be newer than now, whatever the uptime said.
        let at = (self.boot + Duration::from_micros(record.at_us)).min(SystemTime::now());
        tracing::warn!(gpu, uuid, xid = record.xid, "XID error (kernel log).");
        self.shared.xids.record(gpu, &uuid, record.xid, at);
    }

    fn unmatched(&mut self, what: &str) {
        self.shared.kmsg.unmatched.fetch_add(1, Ordering::Relaxed);
        if !std::mem::replace(&mut self.logged_unmatched, true) {
            tracing::warn!(
                line = what,
                "A kernel-log XID line matched no GPU or could not be read; counted in nvidia_gpu_xid_kmsg_unmatched_total, logged once."
            );
        }
    }
}

/// Opens the log without blocking: `/dev/kmsg` then answers "nothing new" instead of
/// waiting for the next record.
fn open(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drivers_xid_lines_are_read_and_others_are_not() {
        let line = "3,1234,5678901234,-;NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.";
        assert_eq!(
            parse(line),
            Line::Xid(Record {
                at_us: 5_678_901_234,
                bus: (0, 0x3b, 0),
                xid: 79
            })
        );
        let with_pid =
            "4,99,10,c;NVRM: Xid (PCI:0001:18:1f): 13, pid=4242, name=python3, Graphics Exception";
        assert!(matches!(
            parse(with_pid),
            Line::Xid(Record {
                bus: (1, 0x18, 0x1f),
                xid: 13,
                ..
            })
        ));
        assert_eq!(parse("6,1,2,-;usb 1-1: new device"), Line::Other);
        assert_eq!(parse(" SUBSYSTEM=pci"), Line::Other);
        assert_eq!(parse("3,1,2,-;NVRM: Xid (PCI:zz): 79, x"), Line::Malformed);
        assert_eq!(
            parse("3,1,2,-;NVRM: Xid (PCI:0000:3b:00): none"),
            Line::Malformed
        );
    }

    #[test]
    fn nvml_and_kernel_pci_addresses_agree() {
        assert_eq!(pci_key("00000000:3B:00.0"), pci_key("0000:3b:00"));
        assert_eq!(pci_key("0000:3b"), None);
    }
}
