//! The probing engine: one sender thread that sends every echo request on schedule and
//! expires the unanswered, one receiver thread that reads every reply with its kernel
//! timestamp, and the table they share (`table.rs`).
//!
//! Two threads whatever the number of targets: sending is a non-blocking `sendto` per
//! request and receiving drains each socket in batches, so CPU grows linearly with the
//! packet rate, not with the square of the target count as with one socket per target.

mod table;

use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

pub use table::{DesiredProbe, FamilyCounters, TargetSnapshot};
use table::{Reply, Table};

use crate::icmp::packet;
use crate::icmp::{Family, IcmpSocket, OpenError, SocketKind, SocketOptions};

/// A configured host in one address family: what the series of a target are named by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as configured (a name or an address).
    pub name: String,
    /// Which family this target pings.
    pub family: Family,
    /// Extra labels from the configuration, sorted by name.
    pub labels: Vec<(String, String)>,
}

/// How one target is pinged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSettings {
    /// Time between requests.
    pub interval: Duration,
    /// How long a reply may take before the request counts as lost.
    pub timeout: Duration,
    /// Payload bytes after the 8-byte ICMP header.
    pub size: usize,
}

/// The result of one request of a one-time probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Answered after `rtt` seconds.
    Reply {
        /// Round-trip time in seconds.
        rtt: f64,
        /// TTL or hop limit of the reply, when known.
        hop_limit: Option<u8>,
    },
    /// No reply in time.
    Timeout,
    /// The kernel refused to send.
    SendError(String),
}

/// What the engine is started with.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Histogram bucket bounds in seconds, ascending.
    pub buckets: Vec<f64>,
    /// Results kept for the window gauges.
    pub history: usize,
    /// Socket kind, mark.
    pub socket: SocketOptions,
    /// Which families to open, by [`Family::index`].
    pub families: [bool; 2],
}

/// A family's socket, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketInfo {
    /// How it was opened.
    pub kind: SocketKind,
    /// Whether replies carry kernel timestamps.
    pub kernel_timestamps: bool,
}

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No socket could be opened for a family.
    #[error(transparent)]
    Socket(OpenError),
    /// A thread could not be started.
    #[error("cannot start the probing threads: {0}")]
    Thread(io::Error),
}

struct Shared {
    table: Mutex<Table>,
    sockets: [Option<IcmpSocket>; 2],
    stop: AtomicBool,
}

/// The running engine. Dropping it stops both threads.
pub struct Engine {
    shared: Arc<Shared>,
    wake: mpsc::Sender<()>,
    threads: Vec<JoinHandle<()>>,
    bounds: Arc<[f64]>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("sockets", &self.sockets())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the sockets and starts the threads. A family the kernel lacks is skipped with a
    /// warning; one that is not permitted is an error, since nothing could be measured.
    pub fn start(settings: EngineSettings) -> Result<Self, StartError> {
        let mut sockets = [None, None];
        for family in [Family::V4, Family::V6] {
            if !settings.families[family.index()] {
                continue;
            }
            match IcmpSocket::open(family, settings.socket) {
                Ok(socket) => sockets[family.index()] = Some(socket),
                Err(error @ OpenError::Unsupported { .. }) => {
                    tracing::warn!(err = %error, "{} targets will not be pinged.", family.name());
                }
                Err(error) => return Err(StartError::Socket(error)),
            }
        }
        let bounds: Arc<[f64]> = settings.buckets.into();
        let token = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let table = Table::new(
            Arc::clone(&bounds),
            settings.history,
            token,
            settings.socket.identifier,
        );
        let shared = Arc::new(Shared {
            table: Mutex::new(table),
            sockets,
            stop: AtomicBool::new(false),
        });
        let (wake, woken) = mpsc::channel();
        let sender = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("ping-send".into())
                .spawn(move || send_loop(&shared, &woken))
        };
        let receiver = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("ping-receive".into())
                .spawn(move || receive_loop(&shared))
        };
        let threads = [sender, receiver]
            .into_iter()
            .collect::<io::Result<Vec<_>>>()
            .map_err(StartError::Thread)?;
        Ok(Self {
            shared,
            wake,
            threads,
            bounds,
        })
    }

    /// The socket of each family, by [`Family::index`]; `None` where there is none.
    pub fn sockets(&self) -> [Option<SocketInfo>; 2] {
        self.shared.sockets.each_ref().map(|socket| {
            socket.as_ref().map(|s| SocketInfo {
                kind: s.kind(),
                kernel_timestamps: s.kernel_timestamps(),
            })
        })
    }

    /// Whether targets of `family` can be pinged.
    pub fn supports(&self, family: Family) -> bool {
        self.shared.sockets[family.index()].is_some()
    }

    /// Pings exactly these probes from now on: new targets start spread over their
    /// interval, changed ones keep their statistics, removed ones stop.
    pub fn apply(&self, desired: Vec<DesiredProbe>) {
        let desired = desired
            .into_iter()
            .filter(|probe| self.supports(Family::of(probe.ip)))
            .collect();
        self.lock().apply(desired, Instant::now());
        let _ = self.wake.send(());
    }

    /// Changes the window size (`history-size`) of every target.
    pub fn set_history(&self, history: usize) {
        self.lock().set_history(history);
    }

    /// Sends `count` requests to `ip` now, `settings.interval` apart, and waits until each
    /// is answered or timed out, or `deadline` passes (then the outcomes so far are lost
    /// and `None` is returned).
    pub fn probe_once(
        &self,
        target: Arc<Target>,
        ip: IpAddr,
        settings: ProbeSettings,
        count: u32,
        deadline: Instant,
    ) -> Option<Vec<Outcome>> {
        if !self.supports(Family::of(ip)) {
            return Some(vec![Outcome::SendError(format!(
                "no {} socket",
                Family::of(ip).name()
            ))]);
        }
        let (done, outcome) = mpsc::channel();
        let desired = DesiredProbe {
            target,
            ip,
            settings,
        };
        self.lock()
            .start_one_shot(desired, count.max(1), done, Instant::now());
        let _ = self.wake.send(());
        outcome
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    }

    /// Copies every target's numbers into `out`, and returns the per-family socket counters.
    pub fn snapshot(&self, out: &mut Vec<TargetSnapshot>) -> [FamilyCounters; 2] {
        let table = self.lock();
        table.snapshot(out);
        table.families
    }

    /// The histogram's bucket bounds.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        lock(&self.shared)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = self.wake.send(());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Table> {
    // A panic while holding the lock leaves numbers, not broken invariants: go on.
    shared
        .table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Longest sleep of the sender with nothing scheduled.
const IDLE: Duration = Duration::from_secs(1);

fn send_loop(shared: &Shared, woken: &mpsc::Receiver<()>) {
    while !shared.stop.load(Ordering::Acquire) {
        let next = lock(shared).tick(&shared.sockets, Instant::now());
        let wait = next.map_or(IDLE, |next| next.saturating_duration_since(Instant::now()));
        if let Err(mpsc::RecvTimeoutError::Disconnected) = woken.recv_timeout(wait.min(IDLE)) {
            return;
        }
    }
}

/// Replies read before the table is locked to match them.
const RECEIVE_BATCH: usize = 256;
/// How often the receiver looks at the stop flag when no packet comes.
const RECEIVE_POLL: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 200_000_000,
};

fn receive_loop(shared: &Shared) {
    let mut buffer = vec![0u8; 65_536 + 64];
    let mut batch: Vec<(Family, Reply)> = Vec::with_capacity(RECEIVE_BATCH);
    let sockets: Vec<&IcmpSocket> = shared.sockets.iter().flatten().collect();
    let mut receive_errors = [0u64; 2];
    while !shared.stop.load(Ordering::Acquire) {
        let mut fds: Vec<PollFd<'_>> = sockets
            .iter()
            .map(|socket| PollFd::from_borrowed_fd(socket.as_fd(), PollFlags::IN))
            .collect();
        if let Err(error) = rustix::event::poll(&mut fds, Some(&RECEIVE_POLL)) {
            if error != rustix::io::Errno::INTR {
                tracing::error!(err = %error, "poll on the ICMP sockets failed.");
                std::thread::sleep(Duration::from_millis(100));
            }
            continue;
        }
        let ready: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
        drop(fds);
        for (socket, _) in sockets.iter().zip(ready).filter(|(_, ready)| *ready) {
            loop {
                let drained = drain(socket, &mut buffer, &mut batch, &mut receive_errors);
                if !batch.is_empty() {
                    let mut table = lock(shared);
                    for (family, reply) in batch.drain(..) {
                        table.receive(family, &reply);
                    }
                }
                if drained {
                    break;
                }
            }
        }
        if receive_errors != [0, 0] {
            let mut table = lock(shared);
            for (counters, errors) in table.families.iter_mut().zip(&mut receive_errors) {
                counters.receive_errors += std::mem::take(errors);
            }
        }
    }
}

/// Reads from `socket` until it is empty (returns true) or the batch is full.
fn drain(
    socket: &IcmpSocket,
    buffer: &mut [u8],
    batch: &mut Vec<(Family, Reply)>,
    receive_errors: &mut [u64; 2],
) -> bool {
    let family = socket.family();
    while batch.len() < RECEIVE_BATCH {
        let received = match socket.recv(buffer) {
            Ok(received) => received,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return true,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                receive_errors[family.index()] += 1;
                tracing::debug!(err = %error, family = family.name(), "Receive failed.");
                return true;
            }
        };
        let received_at = Instant::now();
        let data = &buffer[..received.len.min(buffer.len())];
        let Some(reply) = packet::parse_reply(family, socket.includes_ip_header(), data)
            .filter(|reply| socket.is_ours(reply.identifier))
        else {
            continue;
        };
        let Some(from) = received.from.map(canonical) else {
            continue;
        };
        batch.push((
            family,
            Reply {
                from,
                sequence: reply.sequence,
                token: reply.token(),
                kernel_time_ns: received.kernel_time_ns,
                received_at,
                hop_limit: received.hop_limit.or(reply.ttl),
            },
        ));
    }
    false
}

/// IPv4-mapped IPv6 addresses are their IPv4 selves.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}
