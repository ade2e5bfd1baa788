//! `nfs`: NFS client RPC statistics from `/proc/net/rpc/nfs`.
//!
//! The file is a handful of lines, each a keyword and counters: `net` (packets), `rpc`
//! (calls, retransmissions, credential refreshes) and `proc2`/`proc3`/`proc4`, the calls
//! per procedure of each NFS version, led by how many procedures follow. The parsing
//! helpers here are shared with the `nfsd` collector, whose file has the same shape.
//!
//! node_exporter reports every series even when a line is absent (a kernel built without
//! NFSv2 has no `proc2`): they are then 0, as upstream's. A line that is present but not
//! the kernel's shape is left out instead (its series are missing from that scrape, rather
//! than a made-up 0 that would look like a counter reset) and logged once; a line with an
//! unknown keyword is skipped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Nfs {
        path: settings.paths.proc("net/rpc/nfs"),
        warned: AtomicBool::new(false),
    })
}

struct Nfs {
    /// `/proc/net/rpc/nfs`, absent while the `nfs` module is not loaded.
    path: PathBuf,
    /// Whether a malformed line has been logged at warning level already.
    warned: AtomicBool,
}

/// The NFSv2 procedures, in the order of a `proc2` line.
pub(super) const V2_PROCEDURES: [&str; 18] = [
    "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write",
    "Create", "Remove", "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
];

/// The NFSv3 procedures, in the order of a `proc3` line.
pub(super) const V3_PROCEDURES: [&str; 22] = [
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
];

/// The NFSv4 client operations node_exporter names, in the order of a `proc4` line of
/// `/proc/net/rpc/nfs`. Kernels count more (newer NFSv4.2 operations come after these);
/// those are not reported. Older kernels count fewer; the missing ones read 0.
const V4_CLIENT_PROCEDURES: [&str; 59] = [
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "GetDeviceInfo",
    "LayoutGet",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
];

/// What became of one line of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Line<const N: usize> {
    /// Not in the file: reported as zeros, as node_exporter does.
    #[default]
    Absent,
    /// In the file, but not the kernel's shape: not reported.
    Malformed,
    /// Its counters.
    Read([u64; N]),
}

impl<const N: usize> Line<N> {
    /// The counters to report, or `None` for a malformed line.
    pub(super) fn values(&self) -> Option<[u64; N]> {
        match self {
            Self::Absent => Some([0; N]),
            Self::Malformed => None,
            Self::Read(values) => Some(*values),
        }
    }

    /// Records a parse of the line: its counters, or that it was malformed (the keyword is
    /// added to `malformed`). A keyword given twice keeps its last line.
    pub(super) fn set(
        &mut self,
        parsed: Option<[u64; N]>,
        keyword: &'static str,
        malformed: &mut Vec<&'static str>,
    ) {
        *self = match parsed {
            Some(values) => Self::Read(values),
            None => {
                malformed.push(keyword);
                Self::Malformed
            }
        };
    }
}

/// Parses every word of `words` as an unsigned counter and keeps the first `N`. Returns
/// them with how many words there were, or `None` if a word is not a counter.
fn counters<'a, const N: usize>(words: impl Iterator<Item = &'a str>) -> Option<([u64; N], usize)> {
    let mut values = [0; N];
    let mut count = 0;
    for word in words {
        let value = word.parse::<u64>().ok()?;
        if let Some(slot) = values.get_mut(count) {
            *slot = value;
        }
        count += 1;
    }
    Some((values, count))
}

/// A line of exactly `N` counters (`net`, `rpc`, `rc`, …).
pub(super) fn exactly<const N: usize>(rest: &str) -> Option<[u64; N]> {
    let (values, count) = counters::<N>(rest.split_ascii_whitespace())?;
    (count == N).then_some(values)
}

/// A `procN` line: how many counters follow, then the counters. The count must match and
/// be at least `min`; the first `N` counters are kept, zeros standing in for any missing.
pub(super) fn procedures<const N: usize>(rest: &str, min: usize) -> Option<[u64; N]> {
    let mut words = rest.split_ascii_whitespace();
    let declared = words.next()?.parse::<usize>().ok()?;
    let (values, count) = counters::<N>(words)?;
    (count == declared && count >= min).then_some(values)
}

/// A line's first word and the text after it.
pub(super) fn split_keyword(line: &str) -> (&str, &str) {
    let line = line.trim_start();
    line.split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((line, ""))
}

/// Logs the malformed lines of one read: the first time at warning level, later at debug
/// level, so a kernel whose format changed does not fill the log every scrape.
pub(super) fn log_malformed(warned: &AtomicBool, path: &Path, malformed: &[&str]) {
    if malformed.is_empty() {
        return;
    }
    // Each kind once, so a file of garbage makes one short message.
    let mut kinds: Vec<&str> = Vec::new();
    for kind in malformed {
        if !kinds.contains(kind) {
            kinds.push(kind);
        }
    }
    let count = malformed.len();
    if warned.swap(true, Ordering::Relaxed) {
        tracing::debug!(file = %path.display(), count, lines = ?kinds, "malformed lines skipped");
    } else {
        tracing::warn!(
            file = %path.display(),
            count,
            lines = ?kinds,
            "malformed lines skipped; their series are left out (logged once)"
        );
    }
}

/// `/proc/net/rpc/nfs`, parsed.
#[derive(Debug, Default)]
struct ClientStats {
    /// `net`: packets, UDP packets, TCP packets, TCP connections.
    network: Line<4>,
    /// `rpc`: calls, retransmissions, credential refreshes.
    rpc: Line<3>,
    v2: Line<18>,
    v3: Line<22>,
    v4: Line<59>,
    /// Keywords of the lines that were not the kernel's shape.
    malformed: Vec<&'static str>,
}

fn parse(text: &str) -> ClientStats {
    let mut stats = ClientStats::default();
    for line in text.lines() {
        let (keyword, rest) = split_keyword(line);
        let malformed = &mut stats.malformed;
        match keyword {
            "net" => stats.network.set(exactly(rest), "net", malformed),
            "rpc" => stats.rpc.set(exactly(rest), "rpc", malformed),
            "proc2" => stats.v2.set(procedures(rest, 18), "proc2", malformed),
            "proc3" => stats.v3.set(procedures(rest, 22), "proc3", malformed),
            "proc4" => stats.v4.set(procedures(rest, 0), "proc4", malformed),
            _ => {}
        }
    }
    stats
}

impl ClientStats {
    fn write(&self, out: &mut MetricSet) {
        if let Some([_, udp, tcp, connections]) = self.network.values() {
            let packets = out.counter(
                "node_nfs_packets_total",
                "Total NFSd network packets (sent+received) by protocol type.",
            );
            out.sample(packets, &[("protocol", "udp")], udp as f64);
            out.sample(packets, &[("protocol", "tcp")], tcp as f64);
            out.counter_value(
                "node_nfs_connections_total",
                "Total number of NFSd TCP connections.",
                connections as f64,
            );
        }
        if let Some([calls, retransmissions, refreshes]) = self.rpc.values() {
            out.counter_value(
                "node_nfs_rpcs_total",
                "Total number of RPCs performed.",
                calls as f64,
            );
            out.counter_value(
                "node_nfs_rpc_retransmissions_total",
                "Number of RPC transmissions performed.",
                retransmissions as f64,
            );
            out.counter_value(
                "node_nfs_rpc_authentication_refreshes_total",
                "Number of RPC authentication refreshes performed.",
                refreshes as f64,
            );
        }
        let requests = out.counter(
            "node_nfs_requests_total",
            "Number of NFS procedures invoked.",
        );
        let mut write = |proto: &str, names: &[&str], values: &[u64]| {
            for (method, value) in names.iter().zip(values) {
                out.sample(
                    requests,
                    &[("proto", proto), ("method", method)],
                    *value as f64,
                );
            }
        };
        if let Some(values) = self.v2.values() {
            write("2", &V2_PROCEDURES, &values);
        }
        if let Some(values) = self.v3.values() {
            write("3", &V3_PROCEDURES, &values);
        }
        if let Some(values) = self.v4.values() {
            write("4", &V4_CLIENT_PROCEDURES, &values);
        }
    }
}

impl Collector for Nfs {
    fn name(&self) -> &str {
        "nfs"
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
        include_str!("../../../../testdata/node_exporter/fixtures/proc/net/rpc/nfs");

    /// A series: family name, labels, value.
    type Series = (String, Vec<(String, String)>, f64);

    fn samples(stats: &ClientStats) -> Vec<Series> {
        let mut out = MetricSet::default();
        stats.write(&mut out);
        out.seal();
        out.families()
            .flat_map(|family| {
                let name = family.name().to_string();
                family.samples().map(move |sample| {
                    (
                        name.clone(),
                        sample
                            .labels()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        sample.value(),
                    )
                })
            })
            .collect()
    }

    fn value(stats: &ClientStats, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        samples(stats)
            .into_iter()
            .find(|(n, l, _)| {
                n == name
                    && l.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, value)| value)
    }

    #[test]
    fn fixture_lines_map_to_procedures() {
        let stats = parse(FIXTURE);
        assert!(stats.malformed.is_empty());
        assert_eq!(stats.network, Line::Read([70, 70, 69, 45]));
        assert_eq!(
            stats.rpc,
            Line::Read([1_218_785_755, 374_636, 1_218_815_394])
        );
        let requests = "node_nfs_requests_total";
        let v = |proto, method| value(&stats, requests, &[("proto", proto), ("method", method)]);
        assert_eq!(v("2", "Null"), Some(16.0));
        assert_eq!(v("2", "FsStat"), Some(82.0));
        assert_eq!(v("3", "GetAttr"), Some(1_061_909_262.0));
        assert_eq!(v("3", "Commit"), Some(23729.0));
        // The fixture's proc4 line has 48 counters: the rest read 0.
        assert_eq!(v("4", "Null"), Some(98.0));
        assert_eq!(v("4", "ReclaimComplete"), Some(35.0));
        assert_eq!(v("4", "GetDeviceInfo"), Some(1.0));
        assert_eq!(v("4", "LayoutGet"), Some(90.0));
        assert_eq!(v("4", "Clone"), Some(0.0));
        let all = samples(&stats);
        assert_eq!(
            all.iter().filter(|(n, ..)| n == requests).count(),
            18 + 22 + 59
        );
        assert_eq!(
            value(&stats, "node_nfs_packets_total", &[("protocol", "tcp")]),
            Some(69.0)
        );
    }

    #[test]
    fn absent_lines_read_zero_and_malformed_ones_are_left_out() {
        let stats = parse(
            "net 1 2 3\n\
             rpc 10 1 2\n\
             bogus 1 2 3\n\
             proc3 22 0 1 2\n\
             proc4 2 5 x\n\
             \n\
             proc9 1 1\n",
        );
        assert_eq!(stats.malformed, ["net", "proc3", "proc4"]);
        assert_eq!(stats.v2, Line::Absent);
        let all = samples(&stats);
        assert!(all.iter().all(|(n, ..)| n != "node_nfs_packets_total"));
        assert_eq!(value(&stats, "node_nfs_rpcs_total", &[]), Some(10.0));
        let versions: Vec<&str> = all
            .iter()
            .filter(|(n, ..)| n == "node_nfs_requests_total")
            .filter_map(|(_, labels, _)| {
                labels
                    .iter()
                    .find(|(k, _)| k == "proto")
                    .map(|(_, v)| v.as_str())
            })
            .collect();
        assert_eq!(versions.len(), 18);
        assert!(versions.iter().all(|proto| *proto == "2"));
    }

    #[test]
    fn procedure_counts_must_match() {
        assert_eq!(procedures::<2>("2 5 6", 2), Some([5, 6]));
        assert_eq!(procedures::<2>("3 5 6", 2), None);
        assert_eq!(procedures::<2>("1 5", 2), None);
        assert_eq!(procedures::<2>("3 5 6 7", 2), Some([5, 6]));
        assert_eq!(procedures::<3>("1 5", 0), Some([5, 0, 0]));
        assert_eq!(procedures::<1>("", 0), None);
        assert_eq!(exactly::<2>("1 2"), Some([1, 2]));
        assert_eq!(exactly::<2>("1 2 3"), None);
        assert_eq!(exactly::<2>("1 -2"), None);
    }
}
