//! The Graphite listeners: plaintext protocol over TCP and UDP on one address, as
//! graphite_exporter's `--graphite.listen-address`.
//!
//! Readers are plain threads doing blocking reads: each connection or UDP reader parses,
//! maps and stores its own lines, so ingestion scales with cores instead of funnelling
//! through one goroutine as upstream does.

mod lines;
mod tcp;
mod udp;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;

pub use tcp::{TCP_STATS, TcpLimits, TcpStats};

/// UDP datagrams received and the receive buffer granted, in bytes.
pub fn udp_stats() -> (u64, u64) {
    use std::sync::atomic::Ordering;
    (
        udp::DATAGRAMS.load(Ordering::Relaxed),
        udp::RECEIVE_BUFFER.load(Ordering::Relaxed),
    )
}

use crate::pipeline::Pipeline;

/// How the listeners are set up.
#[derive(Debug, Clone)]
pub struct ListenSettings {
    /// `--graphite.listen-address`, e.g. `:9109`.
    pub address: String,
    /// TCP connection limits.
    pub tcp: TcpLimits,
    /// Receive buffer asked for the UDP socket, in bytes.
    pub udp_receive_buffer: usize,
    /// Threads reading the UDP socket.
    pub udp_readers: usize,
    /// Longest line accepted, in bytes (without the newline).
    pub max_line_length: usize,
}

/// The bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// The TCP address bound.
    pub tcp: SocketAddr,
    /// The UDP address bound.
    pub udp: SocketAddr,
}

/// Why the listeners could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The address does not parse or resolve.
    #[error("invalid --graphite.listen-address {address:?}: {reason}")]
    Address {
        /// As given.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// Binding failed.
    #[error("cannot listen for Graphite on {address} ({protocol}): {source}")]
    Bind {
        /// The address tried.
        address: String,
        /// `tcp` or `udp`.
        protocol: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Binds TCP and UDP on the address and starts their reader threads.
pub fn start(
    pipeline: &Arc<Pipeline>,
    settings: &ListenSettings,
) -> Result<Listeners, ListenError> {
    let candidates = candidates(&settings.address)?;
    let bind_error = |protocol, source| ListenError::Bind {
        address: settings.address.clone(),
        protocol,
        source,
    };
    let (tcp, tcp_addr) = bind_first(&candidates, |a| {
        TcpListener::bind(a).and_then(|l| l.local_addr().map(|local| (l, local)))
    })
    .map_err(|e| bind_error("tcp", e))?;
    // UDP on the port TCP got (which matters when the port is 0).
    let udp_candidates: Vec<SocketAddr> = candidates
        .iter()
        .filter(|a| a.is_ipv4() == tcp_addr.is_ipv4())
        .map(|a| SocketAddr::new(a.ip(), tcp_addr.port()))
        .collect();
    let (udp, udp_addr) = bind_first(&udp_candidates, |a| {
        UdpSocket::bind(a).and_then(|s| s.local_addr().map(|local| (s, local)))
    })
    .map_err(|e| bind_error("udp", e))?;
    tracing::info!(tcp = %tcp_addr, udp = %udp_addr, "Accepting Graphite plaintext lines.");
    tcp::start(
        tcp,
        Arc::clone(pipeline),
        settings.tcp.clone(),
        settings.max_line_length,
    );
    udp::start(
        udp,
        Arc::clone(pipeline),
        settings.udp_receive_buffer,
        settings.udp_readers.max(1),
        settings.max_line_length,
    );
    Ok(Listeners {
        tcp: tcp_addr,
        udp: udp_addr,
    })
}

/// Addresses to try for one listen address: `:port` means every interface, IPv6 (which
/// takes IPv4 too on Linux) first.
fn candidates(address: &str) -> Result<Vec<SocketAddr>, ListenError> {
    kiln_registry::listen_candidates(address).map_err(|error| ListenError::Address {
        address: address.to_owned(),
        reason: match error {
            kiln_registry::ServeError::Address { reason, .. } => reason,
            other => other.to_string(),
        },
    })
}

/// The first candidate that binds, with the address it got.
fn bind_first<T>(
    candidates: &[SocketAddr],
    bind: impl Fn(SocketAddr) -> std::io::Result<(T, SocketAddr)>,
) -> std::io::Result<(T, SocketAddr)> {
    let mut last = std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address to bind");
    for &candidate in candidates {
        match bind(candidate) {
            Ok(bound) => return Ok(bound),
            Err(error) => last = error,
        }
    }
    Err(last)
}
