//! `mountstats`: per-mount NFS client statistics from `/proc/self/mountstats` (off by
//! default). On EMR and other AWS hosts this is where EFS shows up: EFS is mounted as
//! `nfs4`, so its latency per operation, bytes and retransmissions are here.
//!
//! The file has a block per mount: a `device X mounted on Y with fstype T [statvers=V]`
//! line, then, for NFS mounts, indented lines (`age:`, `bytes:`, `events:`, `xprt:`, …),
//! `per-op statistics` and one line per RPC operation, and a blank line. The server's
//! address (`mountaddr`) is not in it: as node_exporter does, it is taken from the `addr=`
//! superblock option of the same mount in `/proc/self/mountinfo`, which lists the mounts
//! in the same order.
//!
//! Series are per export, protocol and server address: a second mount of the same export
//! over the same protocol (the same export mounted twice) only adds its
//! `node_mountstats_nfs_mountpoint_info`, so the counters are not reported twice.
//!
//! Unlike node_exporter, which fails the whole scrape on any line it does not expect, a
//! malformed line is skipped (its series are left out, logged once) and the other mounts
//! still report; lines and operations of unknown names are skipped.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, FamilyId, MetricSet, ScrapeContext};

use super::nfs::{Line, exactly, log_malformed};
use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Mountstats {
        mountstats: settings.paths.proc("self/mountstats"),
        mountinfo: settings.paths.proc("self/mountinfo"),
        warned: AtomicBool::new(false),
    })
}

struct Mountstats {
    /// `/proc/self/mountstats`.
    mountstats: PathBuf,
    /// `/proc/self/mountinfo`, for each mount's server address.
    mountinfo: PathBuf,
    /// Whether a malformed line has been logged at warning level already.
    warned: AtomicBool,
}

/// node_exporter reports the time counters modulo 2^53, the integers a float64 holds
/// exactly, so that a counter the kernel let wrap below zero (a huge `u64`) still reads as
/// a float without loss; the same arithmetic gives the same values.
const FLOAT64_MANTISSA: u64 = 1 << 53;

/// One mount of the file.
#[derive(Debug, Default)]
struct Mount<'a> {
    /// What was mounted: for NFS, `server:/export`.
    device: &'a str,
    mount_point: &'a str,
    /// The statistics of an NFS mount (`nfs` or `nfs4` with a `statvers=`).
    nfs: Option<NfsStats<'a>>,
}

/// The statistics of one NFS mount.
#[derive(Debug, Default)]
struct NfsStats<'a> {
    /// `statvers=`: `1.0` or `1.1`, which decides the shape of `xprt:` lines.
    version: &'a str,
    /// `age:`: seconds since the mount was made.
    age: Line<1>,
    /// `bytes:`: the eight byte and page counters.
    bytes: Line<8>,
    /// `events:`: the 27 event counters.
    events: Line<27>,
    /// `xprt:`: one per transport (several with `nconnect`).
    transports: Vec<Transport<'a>>,
    /// The `per-op statistics` lines, each operation once.
    operations: Vec<Operation<'a>>,
}

/// One `xprt:` line, with the columns node_exporter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Transport<'a> {
    protocol: &'a str,
    bind: u64,
    connect: u64,
    idle_seconds: u64,
    sends: u64,
    receives: u64,
    bad_transaction_ids: u64,
    backlog: u64,
    max_slots: u64,
    sending_queue: u64,
    pending_queue: u64,
}

/// One line of `per-op statistics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operation<'a> {
    name: &'a str,
    requests: u64,
    transmissions: u64,
    major_timeouts: u64,
    bytes_sent: u64,
    bytes_received: u64,
    queue_ms: u64,
    response_ms: u64,
    request_ms: u64,
}

/// Where the parser is within a mount's block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Outside any NFS mount's statistics: only `device` lines matter.
    Outside,
    /// The lines of an NFS mount before `per-op statistics`.
    Nfs,
    /// The per-operation lines.
    Operations,
}

/// The mounts of a mountstats file, and the malformed lines met (by what they were).
fn parse(text: &str) -> (Vec<Mount<'_>>, Vec<&'static str>) {
    let mut mounts: Vec<Mount<'_>> = Vec::new();
    let mut malformed = Vec::new();
    let mut section = Section::Outside;
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some(first) = words.next() else {
            // A blank line ends a mount's block.
            section = Section::Outside;
            continue;
        };
        if first == "device" {
            section = Section::Outside;
            let Some(mount) = parse_device(line) else {
                malformed.push("device");
                // A placeholder keeps the mounts' positions those of mountinfo's lines.
                mounts.push(Mount::default());
                continue;
            };
            if mount.nfs.is_some() {
                section = Section::Nfs;
            }
            mounts.push(mount);
            continue;
        }
        let Some(stats) = mounts.last_mut().and_then(|m| m.nfs.as_mut()) else {
            continue;
        };
        let rest = line
            .trim_ascii_start()
            .strip_prefix(first)
            .unwrap_or_default()
            .trim_ascii_start();
        match section {
            Section::Outside => {}
            Section::Nfs => match first {
                "age:" => stats.age.set(exactly(rest), "age", &mut malformed),
                "bytes:" => stats.bytes.set(exactly(rest), "bytes", &mut malformed),
                "events:" => stats.events.set(exactly(rest), "events", &mut malformed),
                "xprt:" => match parse_transport(rest, stats.version) {
                    Some(transport) => stats.transports.push(transport),
                    None => malformed.push("xprt"),
                },
                "per-op" => section = Section::Operations,
                _ => {}
            },
            Section::Operations => match parse_operation(first, rest) {
                // Each operation once: a repeated name would be a duplicate series.
                Some(operation) => {
                    if !stats.operations.iter().any(|o| o.name == operation.name) {
                        stats.operations.push(operation);
                    }
                }
                None => malformed.push("per-op statistics"),
            },
        }
    }
    (mounts, malformed)
}

/// `device X mounted on Y with fstype T [statvers=V]`.
fn parse_device(line: &str) -> Option<Mount<'_>> {
    // The nine words that matter, without allocating.
    let mut words = [""; 9];
    let mut count = 0;
    for (slot, word) in words.iter_mut().zip(line.split_ascii_whitespace()) {
        *slot = word;
        count += 1;
    }
    let [
        "device",
        device,
        "mounted",
        "on",
        mount_point,
        "with",
        "fstype",
        fs_type,
        rest @ ..,
    ] = &words[..count]
    else {
        return None;
    };
    // Only NFS mounts have statistics node_exporter reads.
    let nfs = match rest.first() {
        Some(version) if matches!(*fs_type, "nfs" | "nfs4") => Some(NfsStats {
            version: version.strip_prefix("statvers=").unwrap_or(version),
            ..NfsStats::default()
        }),
        _ => None,
    };
    Some(Mount {
        device,
        mount_point,
        nfs,
    })
}

/// An `xprt:` line after the keyword: the protocol, then counters whose number and meaning
/// depend on the protocol and the statistics version (udp lacks the connection columns;
/// version 1.0 lacks the last three).
fn parse_transport<'a>(rest: &'a str, version: &str) -> Option<Transport<'a>> {
    let (protocol, rest) = rest.split_once(|c: char| c.is_ascii_whitespace())?;
    let expected = match (version, protocol) {
        ("1.0", "tcp") => 10..=10,
        ("1.0", "udp") => 7..=7,
        ("1.1", "tcp") => 13..=13,
        ("1.1", "udp") => 10..=10,
        // RDMA adds its own counters after the first ten.
        ("1.1", "rdma") => 20..=usize::MAX,
        _ => return None,
    };
    let mut values = [0u64; 13];
    let mut count = 0;
    for word in rest.split_ascii_whitespace() {
        let value = word.parse::<u64>().ok()?;
        if let Some(slot) = values.get_mut(count) {
            *slot = value;
        }
        count += 1;
    }
    if !expected.contains(&count) {
        return None;
    }
    // Columns: port, bind, connect, connect idle time, idle time, sends, receives, bad
    // xids, active requests, backlog, max slots, sending queue, pending queue. udp has no
    // connect, connect idle time or idle time; rdma's columns after the backlog are its own.
    let v = match protocol {
        "udp" => {
            let mut v = [0; 13];
            v[..2].copy_from_slice(&values[..2]);
            v[5..].copy_from_slice(&values[2..10]);
            v
        }
        "rdma" => {
            let mut v = [0; 13];
            v[..10].copy_from_slice(&values[..10]);
            v
        }
        _ => values,
    };
    Some(Transport {
        protocol,
        bind: v[1],
        connect: v[2],
        idle_seconds: v[4],
        sends: v[5],
        receives: v[6],
        bad_transaction_ids: v[7],
        backlog: v[9],
        max_slots: v[10],
        sending_queue: v[11],
        pending_queue: v[12],
    })
}

/// `NAME: requests transmissions major-timeouts bytes-sent bytes-received queue-ms
/// response-ms request-ms [errors]`.
fn parse_operation<'a>(first: &'a str, rest: &str) -> Option<Operation<'a>> {
    let name = first.strip_suffix(':').unwrap_or(first);
    let mut v = [0u64; 8];
    let mut count = 0;
    for word in rest.split_ascii_whitespace() {
        let value = word.parse::<u64>().ok()?;
        if let Some(slot) = v.get_mut(count) {
            *slot = value;
        }
        count += 1;
    }
    (count >= 8).then_some(Operation {
        name,
        requests: v[0],
        transmissions: v[1],
        major_timeouts: v[2],
        bytes_sent: v[3],
        bytes_received: v[4],
        queue_ms: v[5],
        response_ms: v[6],
        request_ms: v[7],
    })
}

/// One line of mountinfo, with what this collector needs.
#[derive(Debug, PartialEq, Eq)]
struct MountInfo<'a> {
    mount_point: &'a str,
    source: &'a str,
    /// The value of the last `addr=` superblock option, `""` without one.
    addr: &'a str,
}

/// A mountinfo line: `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - nfs4 srv:/x rw,addr=…`.
/// The `-` separator is the fourth field from the end; `None` for any other shape.
fn parse_mountinfo_line(line: &str) -> Option<MountInfo<'_>> {
    // From the end: super options, source, type, the separator; the six fixed fields
    // and any optional ones before it.
    let mut tail = line.rsplitn(5, ' ');
    let super_options = tail.next()?;
    let source = tail.next()?;
    let _fs_type = tail.next()?;
    if tail.next()? != "-" {
        return None;
    }
    let mut head = tail.next()?.split(' ');
    head.next()?.parse::<i64>().ok()?;
    head.next()?.parse::<i64>().ok()?;
    let _major_minor = head.next()?;
    let _root = head.next()?;
    let mount_point = head.next()?;
    let _options = head.next()?;
    let mut addr = "";
    for option in super_options.split(',') {
        let mut parts = option.split('=');
        if parts.next() == Some("addr") {
            addr = parts.next().unwrap_or("");
        }
    }
    Some(MountInfo {
        mount_point,
        source,
        addr,
    })
}

/// The server address of the `index`th mount of mountstats. mountinfo lists the same
/// mounts in the same order, so the line at the same index is the one; should the mounts
/// have changed between the two reads (its mount point differs), the mount of the same
/// point and device is looked for instead.
fn mount_address<'a>(
    mountinfo: &[Option<MountInfo<'a>>],
    index: usize,
    mount: &Mount<'_>,
) -> &'a str {
    match mountinfo.get(index) {
        Some(Some(info)) if info.mount_point == mount.mount_point => info.addr,
        _ => mountinfo
            .iter()
            .flatten()
            .find(|info| info.mount_point == mount.mount_point && info.source == mount.device)
            .map_or("", |info| info.addr),
    }
}

/// Help texts and names of the families, in the order node_exporter writes them.
struct Families {
    age: FamilyId,
    mountpoint_info: FamilyId,
    bytes: [FamilyId; 8],
    transport: [FamilyId; 10],
    operations: [FamilyId; 8],
    events: [FamilyId; 26],
}

/// The `bytes:` columns, in order.
const BYTES: [(&str, &str); 8] = [
    (
        "node_mountstats_nfs_read_bytes_total",
        "Number of bytes read using the read() syscall.",
    ),
    (
        "node_mountstats_nfs_write_bytes_total",
        "Number of bytes written using the write() syscall.",
    ),
    (
        "node_mountstats_nfs_direct_read_bytes_total",
        "Number of bytes read using the read() syscall in O_DIRECT mode.",
    ),
    (
        "node_mountstats_nfs_direct_write_bytes_total",
        "Number of bytes written using the write() syscall in O_DIRECT mode.",
    ),
    (
        "node_mountstats_nfs_total_read_bytes_total",
        "Number of bytes read from the NFS server, in total.",
    ),
    (
        "node_mountstats_nfs_total_write_bytes_total",
        "Number of bytes written to the NFS server, in total.",
    ),
    (
        "node_mountstats_nfs_read_pages_total",
        "Number of pages read directly via mmap()'d files.",
    ),
    (
        "node_mountstats_nfs_write_pages_total",
        "Number of pages written directly via mmap()'d files.",
    ),
];

/// The transport families: name, help, and whether a gauge.
const TRANSPORT: [(&str, &str, bool); 10] = [
    (
        "node_mountstats_nfs_transport_bind_total",
        "Number of times the client has had to establish a connection from scratch to the NFS server.",
        false,
    ),
    (
        "node_mountstats_nfs_transport_connect_total",
        "Number of times the client has made a TCP connection to the NFS server.",
        false,
    ),
    (
        "node_mountstats_nfs_transport_idle_time_seconds",
        "Duration since the NFS mount last saw any RPC traffic, in seconds.",
        true,
    ),
    (
        "node_mountstats_nfs_transport_sends_total",
        "Number of RPC requests for this mount sent to the NFS server.",
        false,
    ),
    (
        "node_mountstats_nfs_transport_receives_total",
        "Number of RPC responses for this mount received from the NFS server.",
        false,
    ),
    (
        "node_mountstats_nfs_transport_bad_transaction_ids_total",
        "Number of times the NFS server sent a response with a transaction ID unknown to this client.",
        false,
    ),
    (
        "node_mountstats_nfs_transport_backlog_queue_total",
        "Total number of items added to the RPC backlog queue.",
        false,
    ),
    (
        "node_mountstats_nfs_transport_maximum_rpc_slots",
        "Maximum number of simultaneously active RPC requests ever used.",
        true,
    ),
    (
        "node_mountstats_nfs_transport_sending_queue_total",
        "Total number of items added to the RPC transmission sending queue.",
        false,
    ),
    (
        "node_mountstats_nfs_transport_pending_queue_total",
        "Total number of items added to the RPC transmission pending queue.",
        false,
    ),
];

/// The per-operation families.
const OPERATIONS: [(&str, &str); 8] = [
    (
        "node_mountstats_nfs_operations_requests_total",
        "Number of requests performed for a given operation.",
    ),
    (
        "node_mountstats_nfs_operations_transmissions_total",
        "Number of times an actual RPC request has been transmitted for a given operation.",
    ),
    (
        "node_mountstats_nfs_operations_major_timeouts_total",
        "Number of times a request has had a major timeout for a given operation.",
    ),
    (
        "node_mountstats_nfs_operations_sent_bytes_total",
        "Number of bytes sent for a given operation, including RPC headers and payload.",
    ),
    (
        "node_mountstats_nfs_operations_received_bytes_total",
        "Number of bytes received for a given operation, including RPC headers and payload.",
    ),
    (
        "node_mountstats_nfs_operations_queue_time_seconds_total",
        "Duration all requests spent queued for transmission for a given operation before they were sent, in seconds.",
    ),
    (
        "node_mountstats_nfs_operations_response_time_seconds_total",
        "Duration all requests took to get a reply back after a request for a given operation was transmitted, in seconds.",
    ),
    (
        "node_mountstats_nfs_operations_request_time_seconds_total",
        "Duration all requests took from when a request was enqueued to when it was completely handled for a given operation, in seconds.",
    ),
];

/// The `events:` columns node_exporter reports, each with its column. Column 18 (a
/// congestion wait count the kernel no longer updates) is not reported. The help texts of
/// `vfs_open` and `vfs_setattr` repeat other families' texts, as node_exporter's do.
const EVENTS: [(usize, &str, &str); 26] = [
    (
        0,
        "node_mountstats_nfs_event_inode_revalidate_total",
        "Number of times cached inode attributes are re-validated from the server.",
    ),
    (
        1,
        "node_mountstats_nfs_event_dnode_revalidate_total",
        "Number of times cached dentry nodes are re-validated from the server.",
    ),
    (
        2,
        "node_mountstats_nfs_event_data_invalidate_total",
        "Number of times an inode cache is cleared.",
    ),
    (
        3,
        "node_mountstats_nfs_event_attribute_invalidate_total",
        "Number of times cached inode attributes are invalidated.",
    ),
    (
        4,
        "node_mountstats_nfs_event_vfs_open_total",
        "Number of times cached inode attributes are invalidated.",
    ),
    (
        5,
        "node_mountstats_nfs_event_vfs_lookup_total",
        "Number of times a directory lookup has occurred.",
    ),
    (
        6,
        "node_mountstats_nfs_event_vfs_access_total",
        "Number of times permissions have been checked.",
    ),
    (
        7,
        "node_mountstats_nfs_event_vfs_update_page_total",
        "Number of updates (and potential writes) to pages.",
    ),
    (
        8,
        "node_mountstats_nfs_event_vfs_read_page_total",
        "Number of pages read directly via mmap()'d files.",
    ),
    (
        9,
        "node_mountstats_nfs_event_vfs_read_pages_total",
        "Number of times a group of pages have been read.",
    ),
    (
        10,
        "node_mountstats_nfs_event_vfs_write_page_total",
        "Number of pages written directly via mmap()'d files.",
    ),
    (
        11,
        "node_mountstats_nfs_event_vfs_write_pages_total",
        "Number of times a group of pages have been written.",
    ),
    (
        12,
        "node_mountstats_nfs_event_vfs_getdents_total",
        "Number of times directory entries have been read with getdents().",
    ),
    (
        13,
        "node_mountstats_nfs_event_vfs_setattr_total",
        "Number of times directory entries have been read with getdents().",
    ),
    (
        14,
        "node_mountstats_nfs_event_vfs_flush_total",
        "Number of pending writes that have been forcefully flushed to the server.",
    ),
    (
        15,
        "node_mountstats_nfs_event_vfs_fsync_total",
        "Number of times fsync() has been called on directories and files.",
    ),
    (
        16,
        "node_mountstats_nfs_event_vfs_lock_total",
        "Number of times locking has been attempted on a file.",
    ),
    (
        17,
        "node_mountstats_nfs_event_vfs_file_release_total",
        "Number of times files have been closed and released.",
    ),
    (
        19,
        "node_mountstats_nfs_event_truncation_total",
        "Number of times files have been truncated.",
    ),
    (
        20,
        "node_mountstats_nfs_event_write_extension_total",
        "Number of times a file has been grown due to writes beyond its existing end.",
    ),
    (
        21,
        "node_mountstats_nfs_event_silly_rename_total",
        "Number of times a file was removed while still open by another process.",
    ),
    (
        22,
        "node_mountstats_nfs_event_short_read_total",
        "Number of times the NFS server gave less data than expected while reading.",
    ),
    (
        23,
        "node_mountstats_nfs_event_short_write_total",
        "Number of times the NFS server wrote less data than expected while writing.",
    ),
    (
        24,
        "node_mountstats_nfs_event_jukebox_delay_total",
        "Number of times the NFS server indicated EJUKEBOX; retrieving data from offline storage.",
    ),
    (
        25,
        "node_mountstats_nfs_event_pnfs_read_total",
        "Number of NFS v4.1+ pNFS reads.",
    ),
    (
        26,
        "node_mountstats_nfs_event_pnfs_write_total",
        "Number of NFS v4.1+ pNFS writes.",
    ),
];

impl Families {
    fn declare(out: &mut MetricSet) -> Self {
        Self {
            age: out.counter(
                "node_mountstats_nfs_age_seconds_total",
                "The age of the NFS mount in seconds.",
            ),
            mountpoint_info: out.gauge(
                "node_mountstats_nfs_mountpoint_info",
                "Info metric for an NFS mountpoint.",
            ),
            bytes: BYTES.map(|(name, help)| out.counter(name, help)),
            transport: TRANSPORT.map(|(name, help, gauge)| {
                if gauge {
                    out.gauge(name, help)
                } else {
                    out.counter(name, help)
                }
            }),
            operations: OPERATIONS.map(|(name, help)| out.counter(name, help)),
            events: EVENTS.map(|(_, name, help)| out.counter(name, help)),
        }
    }
}

/// A time counter in milliseconds as node_exporter reports it: modulo 2^53, in seconds.
fn milliseconds_to_seconds(ms: u64) -> f64 {
    (ms % FLOAT64_MANTISSA) as f64 / 1000.0
}

/// Writes the series of the parsed mounts; `addresses[i]` is the server address of
/// `mounts[i]`.
fn write(mounts: &[Mount<'_>], addresses: &[&str], out: &mut MetricSet) {
    let families = Families::declare(out);
    // node_exporter's two sets: mount points already given an info series, and
    // (export, protocol, address) already reported.
    let mut mount_points: HashSet<(&str, &str, &str, &str)> = HashSet::new();
    let mut reported: HashSet<(&str, &str, &str)> = HashSet::new();
    for (mount, addr) in mounts.iter().zip(addresses) {
        let Some(stats) = &mount.nfs else { continue };
        for transport in &stats.transports {
            let protocol = transport.protocol;
            if mount_points.insert((mount.device, protocol, addr, mount.mount_point)) {
                out.sample(
                    families.mountpoint_info,
                    &[
                        ("export", mount.device),
                        ("protocol", protocol),
                        ("mountaddr", addr),
                        ("mountpoint", mount.mount_point),
                    ],
                    1.0,
                );
            }
            if !reported.insert((mount.device, protocol, addr)) {
                break;
            }
            write_mount(stats, &families, [mount.device, protocol, addr], out);
        }
    }
}

/// The series of one NFS mount, labelled with `[export, protocol, mountaddr]`.
fn write_mount(stats: &NfsStats<'_>, families: &Families, labels: [&str; 3], out: &mut MetricSet) {
    let [export, protocol, mountaddr] = labels;
    let labels = [
        ("export", export),
        ("protocol", protocol),
        ("mountaddr", mountaddr),
    ];
    if let Some([age]) = stats.age.values() {
        out.sample(families.age, &labels, age as f64);
    }
    if let Some(bytes) = stats.bytes.values() {
        for (family, value) in families.bytes.iter().zip(bytes) {
            out.sample(*family, &labels, value as f64);
        }
    }
    for (index, transport) in stats.transports.iter().enumerate() {
        let index = index.to_string();
        let labels = [
            ("export", export),
            ("protocol", protocol),
            ("mountaddr", mountaddr),
            ("transport", index.as_str()),
        ];
        let values = [
            transport.bind as f64,
            transport.connect as f64,
            (transport.idle_seconds % FLOAT64_MANTISSA) as f64,
            transport.sends as f64,
            transport.receives as f64,
            transport.bad_transaction_ids as f64,
            transport.backlog as f64,
            transport.max_slots as f64,
            transport.sending_queue as f64,
            transport.pending_queue as f64,
        ];
        for (family, value) in families.transport.iter().zip(values) {
            out.sample(*family, &labels, value);
        }
    }
    for operation in &stats.operations {
        let labels = [
            ("export", export),
            ("protocol", protocol),
            ("mountaddr", mountaddr),
            ("operation", operation.name),
        ];
        let values = [
            operation.requests as f64,
            operation.transmissions as f64,
            operation.major_timeouts as f64,
            operation.bytes_sent as f64,
            operation.bytes_received as f64,
            milliseconds_to_seconds(operation.queue_ms),
            milliseconds_to_seconds(operation.response_ms),
            milliseconds_to_seconds(operation.request_ms),
        ];
        for (family, value) in families.operations.iter().zip(values) {
            out.sample(*family, &labels, value);
        }
    }
    if let Some(events) = stats.events.values() {
        for (family, (column, ..)) in families.events.iter().zip(EVENTS) {
            out.sample(*family, &labels, events[column] as f64);
        }
    }
}

impl Collector for Mountstats {
    fn name(&self) -> &str {
        "mountstats"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let stats_text = read::file(&self.mountstats)?;
        let (mounts, malformed) = parse(&stats_text);
        log_malformed(&self.warned, &self.mountstats, &malformed);
        // Most hosts have no NFS mount: nothing to report, and mountinfo need not be read.
        if mounts.iter().all(|mount| mount.nfs.is_none()) {
            return Ok(());
        }
        let info_text = read::file(&self.mountinfo)?;
        let mountinfo: Vec<Option<MountInfo<'_>>> =
            info_text.lines().map(parse_mountinfo_line).collect();
        if mountinfo.iter().any(Option::is_none) {
            log_malformed(&self.warned, &self.mountinfo, &["mount"]);
        }
        let addresses: Vec<&str> = mounts
            .iter()
            .enumerate()
            .map(|(index, mount)| {
                if mount.nfs.is_some() {
                    mount_address(&mountinfo, index, mount)
                } else {
                    ""
                }
            })
            .collect();
        write(&mounts, &addresses, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// node_exporter's fixtures.
    const MOUNTSTATS: &str =
        include_str!("../../../../testdata/node_exporter/fixtures/proc/self/mountstats");
    const MOUNTINFO: &str =
        include_str!("../../../../testdata/node_exporter/fixtures/proc/self/mountinfo");

    /// Every series written for `mountstats` and `mountinfo`, as `name{labels} value`
    /// lines with labels sorted, sorted.
    fn series(mountstats: &str, mountinfo: &str) -> Vec<String> {
        let (mounts, _) = parse(mountstats);
        let info: Vec<_> = mountinfo.lines().map(parse_mountinfo_line).collect();
        let addresses: Vec<&str> = mounts
            .iter()
            .enumerate()
            .map(|(index, mount)| mount_address(&info, index, mount))
            .collect();
        let mut out = MetricSet::default();
        write(&mounts, &addresses, &mut out);
        out.seal();
        let mut lines: Vec<String> = out
            .families()
            .flat_map(|family| {
                let name = family.name().to_string();
                family.samples().map(move |sample| {
                    let mut labels: Vec<String> =
                        sample.labels().map(|(k, v)| format!("{k}={v}")).collect();
                    labels.sort();
                    format!("{name}{{{}}} {}", labels.join(","), sample.value())
                })
            })
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn fixture_mounts_and_their_statistics() {
        let (mounts, malformed) = parse(MOUNTSTATS);
        assert!(malformed.is_empty(), "{malformed:?}");
        assert_eq!(mounts.len(), 7);
        assert!(mounts[..4].iter().all(|m| m.nfs.is_none()));
        let tcp = mounts[4].nfs.as_ref().unwrap();
        assert_eq!(mounts[4].device, "192.168.1.1:/srv/test");
        assert_eq!(mounts[4].mount_point, "/mnt/nfs/test");
        assert_eq!(tcp.version, "1.1");
        assert_eq!(tcp.age, Line::Read([13968]));
        assert_eq!(tcp.operations.len(), 3);
        assert_eq!(
            tcp.transports,
            [Transport {
                protocol: "tcp",
                bind: 0,
                connect: 1,
                idle_seconds: 11,
                sends: 6428,
                receives: 6428,
                bad_transaction_ids: 0,
                backlog: 0,
                max_slots: 24,
                sending_queue: 26,
                pending_queue: 5726,
            }]
        );
        // udp has no connect, connect idle or idle columns.
        let udp = mounts[6].nfs.as_ref().unwrap();
        assert_eq!(udp.transports[0].protocol, "udp");
        assert_eq!(udp.transports[0].connect, 0);
        assert_eq!(udp.transports[0].idle_seconds, 0);
        assert_eq!(udp.transports[0].sends, 6428);
        assert_eq!(udp.transports[0].pending_queue, 5726);
        assert_eq!(udp.operations[3].name, "ACCESS");
        assert_eq!(udp.operations[3].queue_ms, 18_446_743_919_241_604_546);
    }

    #[test]
    fn the_same_export_twice_reports_its_counters_once() {
        let lines = series(MOUNTSTATS, MOUNTINFO);
        let labels = "export=192.168.1.1:/srv/test,mountaddr=192.168.1.1";
        // Three mount points, but two (export, protocol, address): tcp twice, udp once.
        let info: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("node_mountstats_nfs_mountpoint_info"))
            .collect();
        assert_eq!(info.len(), 3);
        let ages: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("node_mountstats_nfs_age_seconds_total"))
            .collect();
        assert_eq!(
            ages,
            [
                &format!("node_mountstats_nfs_age_seconds_total{{{labels},protocol=tcp}} 13968"),
                &format!("node_mountstats_nfs_age_seconds_total{{{labels},protocol=udp}} 13968"),
            ]
        );
        // The first tcp mount has no ACCESS line, so ACCESS is reported for udp only.
        let access: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("operation=ACCESS"))
            .collect();
        assert_eq!(access.len(), 8);
        assert!(access.iter().all(|l| l.contains("protocol=udp")));
        // 54 families: everything written has a distinct name and labels.
        let mut unique = lines.clone();
        unique.dedup_by(|a, b| a.rsplit_once(' ').unwrap().0 == b.rsplit_once(' ').unwrap().0);
        assert_eq!(unique.len(), lines.len());
    }

    #[test]
    fn times_are_taken_modulo_2_53_as_node_exporter_does() {
        // The ACCESS queue time of the fixture is a u64 close to 2^64.
        let seconds = milliseconds_to_seconds(18_446_743_919_241_604_546);
        assert_eq!(seconds, 9.007044786793922e12);
        assert_eq!(milliseconds_to_seconds(6), 0.006);
    }

    #[test]
    fn the_address_comes_from_mountinfo_at_the_same_position() {
        let lines = series(MOUNTSTATS, MOUNTINFO);
        assert!(
            lines
                .iter()
                .filter(|l| l.starts_with("node_mountstats_nfs_"))
                .all(|l| l.contains("mountaddr=192.168.1.1"))
        );
        // Had a mount come and gone between the two reads, positions no longer agree:
        // the mount of the same point and device is used.
        let shifted: String = MOUNTINFO
            .lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(series(MOUNTSTATS, &shifted), lines);
        // With no mountinfo line for the mount, the address is empty.
        let lines = series(MOUNTSTATS, "");
        assert!(lines.iter().all(|l| l.contains("mountaddr=,")));
    }

    #[test]
    fn an_efs_mount_is_an_nfs4_mount() {
        // What an EFS mount (NFSv4.1, nconnect=2) looks like.
        let mountstats = "\
device fs-0123.efs.us-east-1.amazonaws.com:/ mounted on /mnt/efs with fstype nfs4 statvers=1.1
\topts:\trw,vers=4.1,rsize=1048576,wsize=1048576,hard,proto=tcp,nconnect=2,timeo=600,retrans=2
\tage:\t120
\tbytes:\t100 200 0 0 100 200 0 0
\tevents:\t0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)
\txprt:\ttcp 700 1 1 0 3 50 50 0 60 0 4 5 6
\txprt:\ttcp 701 1 1 0 4 30 30 0 40 0 2 3 4
\tper-op statistics
\t        NULL: 0 0 0 0 0 0 0 0 0
\t        READ: 10 10 0 1600 1048576 3 40 45 0
\t       WRITE: 5 5 0 1048576 800 1 30 32 0

";
        let mountinfo = "1 0 0:5 / /mnt/efs rw - nfs4 fs-0123.efs.us-east-1.amazonaws.com:/ rw,vers=4.1,addr=10.0.1.20\n";
        let lines = series(mountstats, mountinfo);
        let labels = "export=fs-0123.efs.us-east-1.amazonaws.com:/,mountaddr=10.0.1.20";
        for line in [
            format!("node_mountstats_nfs_age_seconds_total{{{labels},protocol=tcp}} 120"),
            format!("node_mountstats_nfs_write_bytes_total{{{labels},protocol=tcp}} 200"),
            format!(
                "node_mountstats_nfs_operations_request_time_seconds_total{{{labels},operation=READ,protocol=tcp}} 0.045"
            ),
            format!(
                "node_mountstats_nfs_transport_sends_total{{{labels},protocol=tcp,transport=0}} 50"
            ),
            format!(
                "node_mountstats_nfs_transport_sends_total{{{labels},protocol=tcp,transport=1}} 30"
            ),
            format!(
                "node_mountstats_nfs_mountpoint_info{{{labels},mountpoint=/mnt/efs,protocol=tcp}} 1"
            ),
        ] {
            assert!(lines.contains(&line), "{line} not in {lines:#?}");
        }
        // One mount: 1 age + 1 info + 8 bytes + 2×10 transport + 3×8 operations + 26 events.
        assert_eq!(lines.len(), 1 + 1 + 8 + 20 + 24 + 26);
    }

    #[test]
    fn mountinfo_lines() {
        let line = "194 21 0:42 / /mnt/efs rw shared:144 - nfs4 fs-1.efs.aws:/ rw,vers=4.1,addr=10.0.0.5,local_lock=none";
        assert_eq!(
            parse_mountinfo_line(line),
            Some(MountInfo {
                mount_point: "/mnt/efs",
                source: "fs-1.efs.aws:/",
                addr: "10.0.0.5",
            })
        );
        assert_eq!(
            parse_mountinfo_line("21 0 8:1 / / rw - ext4 /dev/sda1 rw")
                .unwrap()
                .addr,
            ""
        );
        assert_eq!(
            parse_mountinfo_line("21 0 8:1 / / rw ext4 /dev/sda1 rw x"),
            None
        );
        assert_eq!(
            parse_mountinfo_line("x 0 8:1 / / rw - ext4 /dev/sda1 rw"),
            None
        );
        assert_eq!(parse_mountinfo_line("short - a b c"), None);
    }

    #[test]
    fn malformed_lines_are_skipped_and_the_rest_still_reports() {
        let text = "\
device srv:/a mounted on /a with fstype nfs4 statvers=1.1
\tage:\tnot-a-number
\tbytes:\t1 2 3
\tevents:\t1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27
\txprt:\ttcp 1 2 3
\txprt:\ttcp 832 0 1 0 11 6428 6428 0 12154 0 24 26 5726
\txprt:\tsctp 832 0 1 0 11 6428 6428 0 12154 0 24 26 5726
\tunknown:\t1 2 3
\tper-op statistics
\t        NULL: 0 0 0 0 0 0 0 0
\t        READ: 1 2
\t        READ: 5 5 0 10 20 30 40 50 0
\t        READ: 9 9 9 9 9 9 9 9 9
\t       WRITE: 1 1 1 1 1 1 1 x

garbage line
device broken line
device srv:/b mounted on /b with fstype nfs4 statvers=1.1
\txprt:\trdma 0 0 1 0 11 6428 6428 0 12154 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18
device tmpfs mounted on /tmp with fstype tmpfs
device srv:/c mounted on /c with fstype nfs
";
        let (mounts, malformed) = parse(text);
        assert_eq!(
            malformed,
            [
                "age",
                "bytes",
                "xprt",
                "xprt",
                "per-op statistics",
                "per-op statistics",
                "device"
            ]
        );
        assert_eq!(mounts.len(), 5);
        let a = mounts[0].nfs.as_ref().unwrap();
        assert_eq!(a.age, Line::Malformed);
        assert_eq!(a.bytes, Line::Malformed);
        assert_eq!(a.events.values().unwrap()[26], 27);
        assert_eq!(a.transports.len(), 1);
        // The first READ line that parses is kept; a repeated operation is not a second
        // series.
        let names: Vec<&str> = a.operations.iter().map(|o| o.name).collect();
        assert_eq!(names, ["NULL", "READ"]);
        assert_eq!(a.operations[1].request_ms, 50);
        // The broken device line keeps its place, for the mountinfo positions.
        assert!(mounts[1].nfs.is_none() && mounts[1].device.is_empty());
        let b = mounts[2].nfs.as_ref().unwrap();
        assert_eq!(b.transports[0].protocol, "rdma");
        assert_eq!(b.transports[0].backlog, 0);
        assert_eq!(b.transports[0].max_slots, 0);
        assert_eq!(b.transports[0].sends, 6428);
        // A mount without statvers has no statistics.
        assert!(mounts[4].nfs.is_none());

        let lines = series(text, "");
        // No age or byte series of srv:/a, whose lines were malformed; srv:/b has no such
        // lines and reads 0, as with node_exporter. Events and the rest are there.
        let has = |prefix: &str, suffix: &str| {
            lines
                .iter()
                .any(|l| l.starts_with(prefix) && l.ends_with(suffix))
        };
        assert!(!has(
            "node_mountstats_nfs_age_seconds_total{export=srv:/a,",
            ""
        ));
        assert!(!has(
            "node_mountstats_nfs_read_bytes_total{export=srv:/a,",
            ""
        ));
        assert!(has(
            "node_mountstats_nfs_age_seconds_total{export=srv:/b,",
            " 0"
        ));
        assert!(has(
            "node_mountstats_nfs_event_pnfs_write_total{export=srv:/a,",
            " 27"
        ));
        assert!(has(
            "node_mountstats_nfs_transport_sends_total{export=srv:/b,",
            " 6428"
        ));
    }
}
