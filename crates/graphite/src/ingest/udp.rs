//! UDP: a few threads reading one socket whose receive buffer is raised, so bursts (every
//! executor reporting at once, one datagram per line) wait in the kernel instead of being
//! dropped.

use std::io::ErrorKind;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::lines::datagram;
use crate::pipeline::Pipeline;

/// Datagrams received so far.
pub(super) static DATAGRAMS: AtomicU64 = AtomicU64::new(0);
/// The receive buffer the kernel granted, in bytes.
pub(super) static RECEIVE_BUFFER: AtomicU64 = AtomicU64::new(0);

/// Counts are flushed after this many datagrams, when the oldest unflushed one is
/// `FLUSH_AGE` old, or after `QUIET_WAIT` without datagrams: never per datagram, which
/// would double the cost of each.
const FLUSH_EVERY: u32 = 512;
const FLUSH_AGE: Duration = Duration::from_millis(100);
const QUIET_WAIT: Duration = Duration::from_millis(200);
const MAX_DATAGRAM: usize = 64 * 1024;

pub(super) fn start(
    socket: UdpSocket,
    pipeline: Arc<Pipeline>,
    receive_buffer: usize,
    readers: usize,
    max_line: usize,
) {
    raise_receive_buffer(&socket, receive_buffer);
    let _ = socket.set_read_timeout(Some(QUIET_WAIT));
    let socket = Arc::new(socket);
    for _ in 0..readers {
        let socket = Arc::clone(&socket);
        let pipeline = Arc::clone(&pipeline);
        let spawned = std::thread::Builder::new()
            .name("graphite-udp".into())
            .stack_size(256 * 1024)
            .spawn(move || read_loop(&socket, &pipeline, max_line));
        if let Err(error) = spawned {
            tracing::error!(err = %error, "Cannot start a Graphite UDP reader thread.");
        }
    }
}

fn read_loop(socket: &UdpSocket, pipeline: &Arc<Pipeline>, max_line: usize) {
    let mut worker = pipeline.worker();
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    let mut unflushed = 0u32;
    let mut last_flush = Instant::now();
    let flush = |worker: &mut crate::pipeline::Worker, unflushed: &mut u32, last: &mut Instant| {
        DATAGRAMS.fetch_add(u64::from(*unflushed), Ordering::Relaxed);
        worker.flush();
        *unflushed = 0;
        *last = Instant::now();
    };
    loop {
        match socket.recv(&mut buffer) {
            Ok(size) => {
                datagram(&buffer[..size], max_line, &mut worker);
                unflushed += 1;
                if unflushed >= FLUSH_EVERY || last_flush.elapsed() >= FLUSH_AGE {
                    flush(&mut worker, &mut unflushed, &mut last_flush);
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                flush(&mut worker, &mut unflushed, &mut last_flush);
            }
            Err(error) => {
                tracing::error!(err = %error, "Reading the Graphite UDP socket failed.");
                std::thread::sleep(QUIET_WAIT);
            }
        }
    }
}

/// Asks for `bytes` of receive buffer: beyond `net.core.rmem_max` when the process may
/// (CAP_NET_ADMIN), otherwise as much as that limit allows. Says what it got.
fn raise_receive_buffer(socket: &UdpSocket, bytes: usize) {
    use rustix::net::sockopt;
    if bytes == 0 {
        return;
    }
    if sockopt::set_socket_recv_buffer_size_force(socket, bytes).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(socket, bytes);
    }
    // Linux reports twice the size asked for (it counts its bookkeeping).
    let granted = sockopt::socket_recv_buffer_size(socket).unwrap_or_default() / 2;
    RECEIVE_BUFFER.store(granted as u64, Ordering::Relaxed);
    if granted < bytes {
        tracing::warn!(
            wanted = bytes,
            granted,
            "The UDP receive buffer is smaller than asked; bursts may be lost. Raise net.core.rmem_max or grant CAP_NET_ADMIN."
        );
    } else {
        tracing::info!(bytes = granted, "UDP receive buffer set.");
    }
}
