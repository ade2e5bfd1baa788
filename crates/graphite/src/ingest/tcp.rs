//! TCP: one thread per connection, bounded in number, closed when idle.
//!
//! Spark's GraphiteSink opens a connection per report and closes it; carbon relays keep
//! one open. Both are served. A connection is idle when it has not delivered a complete
//! line for `idle_timeout`: bytes without a newline (one a minute, say) do not count, so a
//! trickle cannot hold a thread and a file descriptor for ever. And when every slot is
//! taken, a new connection is not refused: the one that has gone longest without a line is
//! closed to make room, so idle connections cannot lock senders out.

use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_registry::LogLimiter;

use super::lines::LineBuffer;
use crate::pipeline::Pipeline;

/// Connection limits.
#[derive(Debug, Clone)]
pub struct TcpLimits {
    /// Most connections open at once; a new one beyond takes the place of the one that
    /// has gone longest without a line.
    pub max_connections: usize,
    /// A connection that delivers no complete line for this long is closed (zero: never).
    pub idle_timeout: Duration,
}

/// TCP counters, shared with the self metrics.
#[derive(Debug, Default)]
pub struct TcpStats {
    /// Connections open now.
    pub open: AtomicUsize,
    /// Connections accepted so far.
    pub accepted: AtomicU64,
    /// Connections closed at once because of the limit (only when no open connection
    /// could make room).
    pub refused: AtomicU64,
    /// Connections closed for being idle, or for being the idlest when the limit was
    /// reached.
    pub idle_closed: AtomicU64,
}

/// The TCP counters of this process.
pub static TCP_STATS: TcpStats = TcpStats {
    open: AtomicUsize::new(0),
    accepted: AtomicU64::new(0),
    refused: AtomicU64::new(0),
    idle_closed: AtomicU64::new(0),
};

/// Small stacks: a connection thread only reads and parses.
const STACK_SIZE: usize = 256 * 1024;
static REFUSED_LOG: LogLimiter = LogLimiter::new(Duration::from_secs(60));

pub(super) fn start(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    limits: TcpLimits,
    max_line: usize,
) {
    let spawned = std::thread::Builder::new()
        .name("graphite-accept".into())
        .spawn(move || accept_loop(&listener, &pipeline, &limits, max_line));
    if let Err(error) = spawned {
        tracing::error!(err = %error, "Cannot start the Graphite TCP listener thread.");
    }
}

/// The open connections, each with a handle to close it and when it last sent a line.
#[derive(Debug)]
struct Open {
    epoch: Instant,
    table: Mutex<HashMap<u64, Slot>>,
}

#[derive(Debug)]
struct Slot {
    /// Milliseconds after `epoch` of its last complete line (or of its arrival).
    last_line_ms: Arc<AtomicU64>,
    /// Set before the accept thread shuts the socket down to make room.
    evicted: Arc<AtomicBool>,
    /// A second handle on the socket, to shut it down from the accept thread.
    stream: TcpStream,
}

impl Open {
    fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Closes the connection that has gone longest without a line; false when none is
    /// open (the limit is 0) or its socket cannot be shut down.
    fn evict_idlest(&self) -> bool {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let Some(id) = table
            .iter()
            .min_by_key(|(_, slot)| slot.last_line_ms.load(Ordering::Relaxed))
            .map(|(&id, _)| id)
        else {
            return false;
        };
        // Its thread sees end of stream, finishes and gives its place back.
        table.remove(&id).is_some_and(|slot| {
            slot.evicted.store(true, Ordering::Release);
            slot.stream.shutdown(Shutdown::Both).is_ok()
        })
    }
}

fn accept_loop(
    listener: &TcpListener,
    pipeline: &Arc<Pipeline>,
    limits: &TcpLimits,
    max_line: usize,
) {
    let open = Arc::new(Open {
        epoch: Instant::now(),
        table: Mutex::new(HashMap::new()),
    });
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                // Out of file descriptors, most likely: pause rather than spin.
                tracing::warn!(err = %error, "Accepting a Graphite connection failed.");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        TCP_STATS.accepted.fetch_add(1, Ordering::Relaxed);
        if open.len() >= limits.max_connections {
            if open.evict_idlest() {
                TCP_STATS.idle_closed.fetch_add(1, Ordering::Relaxed);
            } else {
                refuse(&stream, limits);
                continue;
            }
        }
        let Ok(handle) = stream.try_clone() else {
            refuse(&stream, limits);
            continue;
        };
        let id = next_id;
        next_id += 1;
        let last_line_ms = Arc::new(AtomicU64::new(open.now_ms()));
        let evicted = Arc::new(AtomicBool::new(false));
        TCP_STATS.open.fetch_add(1, Ordering::AcqRel);
        open.table.lock().unwrap_or_else(|e| e.into_inner()).insert(
            id,
            Slot {
                last_line_ms: Arc::clone(&last_line_ms),
                evicted: Arc::clone(&evicted),
                stream: handle,
            },
        );
        let pipeline = Arc::clone(pipeline);
        let idle = limits.idle_timeout;
        let table = Arc::clone(&open);
        let spawned = std::thread::Builder::new()
            .name("graphite-tcp".into())
            .stack_size(STACK_SIZE)
            .spawn(move || {
                serve(stream, &pipeline, idle, max_line, &evicted, &|| {
                    last_line_ms.store(table.now_ms(), Ordering::Relaxed);
                });
                table
                    .table
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                TCP_STATS.open.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(error) = spawned {
            open.table
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            TCP_STATS.open.fetch_sub(1, Ordering::AcqRel);
            tracing::error!(err = %error, "Cannot start a thread for a Graphite connection.");
        }
    }
}

fn refuse(stream: &TcpStream, limits: &TcpLimits) {
    TCP_STATS.refused.fetch_add(1, Ordering::Relaxed);
    if let Some(suppressed) = REFUSED_LOG.check() {
        tracing::warn!(
            limit = limits.max_connections,
            peer = ?stream.peer_addr().ok(),
            suppressed,
            "Too many Graphite connections; closing a new one (see --graphite.tcp-max-connections)."
        );
    }
}

/// Reads lines until the peer closes, fails, is shut down, or delivers no complete line
/// for `idle`. `on_line` is called after each read that completed a line.
fn serve(
    mut stream: TcpStream,
    pipeline: &Arc<Pipeline>,
    idle: Duration,
    max_line: usize,
    evicted: &AtomicBool,
    on_line: &dyn Fn(),
) {
    let peer = stream.peer_addr().ok();
    let mut worker = pipeline.worker();
    let mut buffer = LineBuffer::new(max_line);
    let mut last_line = Instant::now();
    loop {
        if !idle.is_zero() {
            // The read may wait only for what is left of the idle time since the last
            // line, so bytes that complete no line do not extend it.
            let left = idle.saturating_sub(last_line.elapsed());
            if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
                close_idle(peer);
                break;
            }
        }
        match stream.read(buffer.spare()) {
            Ok(0) => break,
            Ok(read) => {
                if buffer.consume(read, &mut worker) > 0 {
                    last_line = Instant::now();
                    on_line();
                }
                worker.flush();
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                close_idle(peer);
                break;
            }
            Err(error) => {
                tracing::debug!(peer = ?peer, err = %error, "Graphite connection failed.");
                break;
            }
        }
    }
    // The end of the stream ends a last line without a newline, unless the stream was cut
    // here to make room: then the line was not finished by its sender.
    if !evicted.load(Ordering::Acquire) {
        buffer.finish(&mut worker);
    }
    worker.flush();
}

fn close_idle(peer: Option<std::net::SocketAddr>) {
    TCP_STATS.idle_closed.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(peer = ?peer, "Closing an idle Graphite connection.");
}
