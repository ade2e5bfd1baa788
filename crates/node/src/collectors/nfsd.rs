//! `nfsd`: NFS server statistics from `/proc/net/rpc/nfsd`.
//!
//! Same shape as the client's file (see the `nfs` collector, whose parsing helpers this
//! uses), with more lines: the reply cache (`rc`), stale file handles (`fh`), bytes read
//! and written (`io`), threads (`th`), the read-ahead cache (`ra`, gone from newer
//! kernels), and the NFSv4 operations (`proc4ops`). As there, an absent line reads 0, a
//! malformed one is left out and logged once, and unknown keywords are skipped.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::nfs::{Line, V2_PROCEDURES, V3_PROCEDURES, exactly, log_malformed, procedures};
use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Nfsd {
        path: settings.paths.proc("net/rpc/nfsd"),
        warned: AtomicBool::new(false),
    })
}

struct Nfsd {
    /// `/proc/net/rpc/nfsd`, absent while the `nfsd` module is not loaded.
    path: PathBuf,
    /// Whether a malformed line has been logged at warning level already.
    warned: AtomicBool,
}

/// The NFSv4 operations node_exporter reports, each with its position in a `proc4ops` line
/// (after the count). Positions are operation numbers; 0 to 2 are unused, and a kernel of
/// the 2.5 series stops before `RelLockOwner` (which then reads 0).
const V4_OPERATIONS: [(usize, &str); 35] = [
    (3, "Access"),
    (4, "Close"),
    (5, "Commit"),
    (6, "Create"),
    (7, "DelegPurge"),
    (8, "DelegReturn"),
    (9, "GetAttr"),
    (10, "GetFH"),
    (11, "Link"),
    (12, "Lock"),
    (13, "Lockt"),
    (14, "Locku"),
    (15, "Lookup"),
    (16, "LookupRoot"),
    (17, "Nverify"),
    (18, "Open"),
    (19, "OpenAttr"),
    (20, "OpenConfirm"),
    (21, "OpenDgrd"),
    (22, "PutFH"),
    (25, "Read"),
    (26, "ReadDir"),
    (27, "ReadLink"),
    (28, "Remove"),
    (29, "Rename"),
    (30, "Renew"),
    (31, "RestoreFH"),
    (32, "SaveFH"),
    (33, "SecInfo"),
    (34, "SetAttr"),
    (35, "SetClientID"),
    (36, "SetClientIDConfirm"),
    (37, "Verify"),
    (38, "Write"),
    (39, "RelLockOwner"),
];

/// `/proc/net/rpc/nfsd`, parsed.
#[derive(Debug, Default)]
struct ServerStats {
    /// `rc`: hits, misses, not cached.
    reply_cache: Line<3>,
    /// `fh`: stale, then four counters the kernel no longer updates.
    file_handles: Line<5>,
    /// `io`: bytes read, bytes written.
    io: Line<2>,
    /// `th`: threads and a counter; the rest of the line (a histogram the kernel stopped
    /// updating) is not read.
    threads: Line<2>,
    /// `ra`: cache size, a ten-bucket histogram, not found.
    read_ahead: Line<12>,
    /// `net`: packets, UDP packets, TCP packets, TCP connections.
    network: Line<4>,
    /// `rpc`: calls, bad calls, bad format, bad authentication, bad client.
    rpc: Line<5>,
    v2: Line<18>,
    v3: Line<22>,
    /// `proc4ops`: per-operation counts, at least up to operation 38.
    v4_operations: Line<40>,
    /// `wdeleg_getattr`: GETATTRs that conflicted with a write delegation.
    wdeleg_getattr: Line<1>,
    /// Keywords of the lines that were not the kernel's shape.
    malformed: Vec<&'static str>,
}

/// The first `N` words of `rest` as counters, when there are at least `N` and they are
/// counters; what follows is not looked at.
fn leading<const N: usize>(rest: &str) -> Option<[u64; N]> {
    let mut values = [0; N];
    let mut words = rest.split_ascii_whitespace();
    for slot in &mut values {
        *slot = words.next()?.parse().ok()?;
    }
    Some(values)
}

/// A line of at least one counter, all of them counters: the first.
fn first(rest: &str) -> Option<[u64; 1]> {
    let mut words = rest.split_ascii_whitespace();
    let value = words.next()?.parse().ok()?;
    words
        .all(|word| word.parse::<u64>().is_ok())
        .then_some([value])
}

fn parse(text: &str) -> ServerStats {
    let mut stats = ServerStats::default();
    for line in text.lines() {
        let (keyword, rest) = super::nfs::split_keyword(line);
        let malformed = &mut stats.malformed;
        match keyword {
            "rc" => stats.reply_cache.set(exactly(rest), "rc", malformed),
            "fh" => stats.file_handles.set(exactly(rest), "fh", malformed),
            "io" => stats.io.set(exactly(rest), "io", malformed),
            "th" => stats.threads.set(leading(rest), "th", malformed),
            "ra" => stats.read_ahead.set(exactly(rest), "ra", malformed),
            "net" => stats.network.set(exactly(rest), "net", malformed),
            "rpc" => stats.rpc.set(exactly(rest), "rpc", malformed),
            "proc2" => stats.v2.set(procedures(rest, 18), "proc2", malformed),
            "proc3" => stats.v3.set(procedures(rest, 22), "proc3", malformed),
            "proc4ops" => stats
                .v4_operations
                .set(procedures(rest, 39), "proc4ops", malformed),
            "wdeleg_getattr" => stats
                .wdeleg_getattr
                .set(first(rest), "wdeleg_getattr", malformed),
            // `proc4` (NULL and COMPOUND calls) is not reported.
            _ => {}
        }
    }
    stats
}

impl ServerStats {
    fn write(&self, out: &mut MetricSet) {
        if let Some([hits, misses, nocache]) = self.reply_cache.values() {
            out.counter_value(
                "node_nfsd_reply_cache_hits_total",
                "Total number of NFSd Reply Cache hits (client lost server response).",
                hits as f64,
            );
            out.counter_value(
                "node_nfsd_reply_cache_misses_total",
                "Total number of NFSd Reply Cache an operation that requires caching (idempotent).",
                misses as f64,
            );
            out.counter_value(
                "node_nfsd_reply_cache_nocache_total",
                "Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).",
                nocache as f64,
            );
        }
        if let Some([stale, ..]) = self.file_handles.values() {
            out.counter_value(
                "node_nfsd_file_handles_stale_total",
                "Total number of NFSd stale file handles",
                stale as f64,
            );
        }
        if let Some([read, written]) = self.io.values() {
            out.counter_value(
                "node_nfsd_disk_bytes_read_total",
                "Total NFSd bytes read.",
                read as f64,
            );
            out.counter_value(
                "node_nfsd_disk_bytes_written_total",
                "Total NFSd bytes written.",
                written as f64,
            );
        }
        if let Some([threads, _]) = self.threads.values() {
            out.gauge_value(
                "node_nfsd_server_threads",
                "Total number of NFSd kernel threads that are running.",
                threads as f64,
            );
        }
        if let Some(read_ahead) = self.read_ahead.values() {
            out.gauge_value(
                "node_nfsd_read_ahead_cache_size_blocks",
                "How large the read ahead cache is in blocks.",
                read_ahead[0] as f64,
            );
            out.counter_value(
                "node_nfsd_read_ahead_cache_not_found_total",
                "Total number of NFSd read ahead cache not found.",
                read_ahead[11] as f64,
            );
        }
        if let Some([_, udp, tcp, connections]) = self.network.values() {
            let packets = out.counter(
                "node_nfsd_packets_total",
                "Total NFSd network packets (sent+received) by protocol type.",
            );
            out.sample(packets, &[("proto", "udp")], udp as f64);
            out.sample(packets, &[("proto", "tcp")], tcp as f64);
            out.counter_value(
                "node_nfsd_connections_total",
                "Total number of NFSd TCP connections.",
                connections as f64,
            );
        }
        if let Some([calls, _, bad_format, bad_auth, bad_client]) = self.rpc.values() {
            let errors = out.counter(
                "node_nfsd_rpc_errors_total",
                "Total number of NFSd RPC errors by error type.",
            );
            out.sample(errors, &[("error", "fmt")], bad_format as f64);
            out.sample(errors, &[("error", "auth")], bad_auth as f64);
            out.sample(errors, &[("error", "cInt")], bad_client as f64);
            out.counter_value(
                "node_nfsd_server_rpcs_total",
                "Total number of NFSd RPCs.",
                calls as f64,
            );
        }
        let requests = out.counter(
            "node_nfsd_requests_total",
            "Total number NFSd Requests by method and protocol.",
        );
        let mut request = |proto: &str, method: &str, value: u64| {
            out.sample(
                requests,
                &[("proto", proto), ("method", method)],
                value as f64,
            );
        };
        // The NULL procedure is not reported for the server.
        if let Some(values) = self.v2.values() {
            for (method, value) in V2_PROCEDURES.iter().zip(values).skip(1) {
                request("2", method, value);
            }
        }
        if let Some(values) = self.v3.values() {
            for (method, value) in V3_PROCEDURES.iter().zip(values).skip(1) {
                request("3", method, value);
            }
        }
        if let Some(values) = self.v4_operations.values() {
            for (position, method) in V4_OPERATIONS {
                request("4", method, values[position]);
            }
        }
        if let Some([value]) = self.wdeleg_getattr.values() {
            request("4", "WdelegGetattr", value);
        }
    }
}

impl Collector for Nfsd {
    fn name(&self) -> &str {
        "nfsd"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file_or_no_data(&self.path)?;
        let stats = parse(&text);
        log_malformed(&self.warned, &self.path, &stats.malformed);
        stats.write(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// node_exporter's fixture.
    const FIXTURE: &str =
        include_str!("../../../../testdata/node_exporter/fixtures/proc/net/rpc/nfsd");

    fn value(stats: &ServerStats, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut out = MetricSet::default();
        stats.write(&mut out);
        out.seal();
        out.families()
            .filter(|family| family.name() == name)
            .flat_map(|family| family.samples())
            .find(|sample| {
                sample.labels().len() == labels.len()
                    && labels.iter().all(|(k, v)| sample.label(k) == Some(*v))
            })
            .map(|sample| sample.value())
    }

    fn request_count(stats: &ServerStats) -> usize {
        let mut out = MetricSet::default();
        stats.write(&mut out);
        out.seal();
        out.families()
            .filter(|family| family.name() == "node_nfsd_requests_total")
            .map(|family| family.samples().len())
            .sum()
    }

    #[test]
    fn fixture_lines_map_to_series() {
        let stats = parse(FIXTURE);
        assert!(stats.malformed.is_empty());
        let v = |name, labels: &[(&str, &str)]| value(&stats, name, labels);
        assert_eq!(v("node_nfsd_reply_cache_nocache_total", &[]), Some(18622.0));
        assert_eq!(
            v("node_nfsd_disk_bytes_read_total", &[]),
            Some(157_286_400.0)
        );
        // `th 8 0 0.000 …`: only the first two words are counters.
        assert_eq!(v("node_nfsd_server_threads", &[]), Some(8.0));
        assert_eq!(v("node_nfsd_read_ahead_cache_size_blocks", &[]), Some(32.0));
        assert_eq!(
            v("node_nfsd_packets_total", &[("proto", "tcp")]),
            Some(917.0)
        );
        assert_eq!(
            v("node_nfsd_rpc_errors_total", &[("error", "auth")]),
            Some(2.0)
        );
        assert_eq!(v("node_nfsd_server_rpcs_total", &[]), Some(18628.0));
        let request = |proto, method| {
            value(
                &stats,
                "node_nfsd_requests_total",
                &[("proto", proto), ("method", method)],
            )
        };
        assert_eq!(request("2", "GetAttr"), Some(69.0));
        assert_eq!(request("2", "Null"), None);
        assert_eq!(request("3", "ReadDirPlus"), Some(216.0));
        assert_eq!(request("4", "Access"), Some(1098.0));
        assert_eq!(request("4", "PutFH"), Some(9609.0));
        assert_eq!(request("4", "Renew"), Some(1236.0));
        assert_eq!(request("4", "WdelegGetattr"), Some(15.0));
        assert_eq!(request_count(&stats), 17 + 21 + 35 + 1);
    }

    #[test]
    fn a_kernel_2_5_line_of_39_operations_has_no_rellockowner_count() {
        let ops: Vec<String> = (0..39).map(|n| n.to_string()).collect();
        let stats = parse(&format!("proc4ops 39 {}\n", ops.join(" ")));
        assert_eq!(stats.v4_operations.values().unwrap()[38], 38);
        let request = |method| {
            value(
                &stats,
                "node_nfsd_requests_total",
                &[("proto", "4"), ("method", method)],
            )
        };
        assert_eq!(request("Write"), Some(38.0));
        assert_eq!(request("RelLockOwner"), Some(0.0));
    }

    #[test]
    fn absent_lines_read_zero_and_malformed_ones_are_left_out() {
        let stats = parse("rc 1 2\nth x 0\nio 5 6\nproc4ops 2 1 1\nwhat 1\n");
        assert_eq!(stats.malformed, ["rc", "th", "proc4ops"]);
        assert_eq!(value(&stats, "node_nfsd_reply_cache_hits_total", &[]), None);
        assert_eq!(value(&stats, "node_nfsd_server_threads", &[]), None);
        assert_eq!(
            value(&stats, "node_nfsd_disk_bytes_written_total", &[]),
            Some(6.0)
        );
        assert_eq!(value(&stats, "node_nfsd_server_rpcs_total", &[]), Some(0.0));
        // v2, v3 and wdeleg_getattr absent (zeros); proc4ops malformed (left out).
        assert_eq!(request_count(&stats), 17 + 21 + 1);
    }
}
