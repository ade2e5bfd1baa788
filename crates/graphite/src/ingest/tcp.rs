//! TCP: one thread per connection, bounded in number, closed after an idle timeout.
//!
//! Spark's GraphiteSink opens a connection per report and closes it; carbon relays keep
//! one open. Both are served; a client that connects and never sends is closed after
//! `idle_timeout` rather than holding a thread and a file descriptor forever.

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use kiln_registry::LogLimiter;

use super::lines::LineBuffer;
use crate::pipeline::Pipeline;

/// Connection limits.
#[derive(Debug, Clone)]
pub struct TcpLimits {
    /// Most connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
}

/// TCP counters, shared with the self metrics.
#[derive(Debug, Default)]
pub struct TcpStats {
    /// Connections open now.
    pub open: AtomicUsize,
    /// Connections accepted so far.
    pub accepted: AtomicU64,
    /// Connections closed at once because of the limit.
    pub refused: AtomicU64,
    /// Connections closed for being idle.
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

fn accept_loop(
    listener: &TcpListener,
    pipeline: &Arc<Pipeline>,
    limits: &TcpLimits,
    max_line: usize,
) {
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
        if TCP_STATS.open.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            TCP_STATS.open.fetch_sub(1, Ordering::AcqRel);
            TCP_STATS.refused.fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = REFUSED_LOG.check() {
                tracing::warn!(
                    limit = limits.max_connections,
                    peer = ?stream.peer_addr().ok(),
                    suppressed,
                    "Too many Graphite connections; closing a new one (see --graphite.tcp-max-connections)."
                );
            }
            continue;
        }
        let pipeline = Arc::clone(pipeline);
        let idle = limits.idle_timeout;
        let spawned = std::thread::Builder::new()
            .name("graphite-tcp".into())
            .stack_size(STACK_SIZE)
            .spawn(move || {
                serve(stream, &pipeline, idle, max_line);
                TCP_STATS.open.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(error) = spawned {
            TCP_STATS.open.fetch_sub(1, Ordering::AcqRel);
            tracing::error!(err = %error, "Cannot start a thread for a Graphite connection.");
        }
    }
}

fn serve(mut stream: TcpStream, pipeline: &Arc<Pipeline>, idle: Duration, max_line: usize) {
    let peer = stream.peer_addr().ok();
    if !idle.is_zero() {
        let _ = stream.set_read_timeout(Some(idle));
    }
    let mut worker = pipeline.worker();
    let mut buffer = LineBuffer::new(max_line);
    loop {
        match stream.read(buffer.spare()) {
            Ok(0) => break,
            Ok(read) => {
                buffer.consume(read, &mut worker);
                worker.flush();
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                TCP_STATS.idle_closed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = ?peer, "Closing an idle Graphite connection.");
                break;
            }
            Err(error) => {
                tracing::debug!(peer = ?peer, err = %error, "Graphite connection failed.");
                break;
            }
        }
    }
    buffer.finish(&mut worker);
    worker.flush();
}
