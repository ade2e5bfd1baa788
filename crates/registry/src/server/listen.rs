//! Binding listen addresses, accepting connections and serving each with hyper.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::connections::{Connection, Connections};
use super::write_deadline::WriteDeadline;
use super::{ServeError, Shared, routes};
use crate::log_limiter::LogLimiter;

/// Binds one `--web.listen-address`. `:port` (Go's spelling of "every interface") binds the
/// IPv6 wildcard, which also accepts IPv4 on Linux, or the IPv4 wildcard without IPv6.
pub(super) async fn bind(address: &str) -> Result<TcpListener, ServeError> {
    let invalid = |reason: &str| ServeError::Address {
        address: address.to_owned(),
        reason: reason.to_owned(),
    };
    let bind_error = |source| ServeError::Bind {
        address: address.to_owned(),
        source,
    };
    let (host, port) = split_address(address)?;
    if host.is_empty() {
        return match TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
            Ok(listener) => Ok(listener),
            Err(_) => TcpListener::bind(SocketAddr::from(([0u8; 4], port)))
                .await
                .map_err(bind_error),
        };
    }
    let mut resolved = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| invalid(&format!("cannot resolve the host: {e}")))?;
    let addr = resolved
        .next()
        .ok_or_else(|| invalid("the host resolves to no address"))?;
    TcpListener::bind(addr).await.map_err(bind_error)
}

/// Splits a listen address into host (without brackets; empty for every interface) and
/// port, checking its form as Go's `net.SplitHostPort` does, without resolving the host.
pub(super) fn split_address(address: &str) -> Result<(&str, u16), ServeError> {
    let invalid = |reason: &str| ServeError::Address {
        address: address.to_owned(),
        reason: reason.to_owned(),
    };
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected host:port or :port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("the port is not a number from 0 to 65535"))?;
    let host = match host.strip_prefix('[') {
        Some(bracketed) => {
            let inner = bracketed
                .strip_suffix(']')
                .ok_or_else(|| invalid("missing ] after the IPv6 address"))?;
            inner
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| invalid("not an IPv6 address between [ and ]"))?;
            inner
        }
        None if host.contains(':') => {
            return Err(invalid(
                "an IPv6 address must be written in brackets, as [::1]:9100",
            ));
        }
        None if host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) =>
        {
            host
        }
        None => return Err(invalid("the host is not an IP address or a host name")),
    };
    Ok((host, port))
}

/// The socket addresses a Go-style listen address stands for, in the order to try them:
/// for `:port`, the IPv6 wildcard (which also accepts IPv4 on Linux) then the IPv4 one; for
/// `host:port`, what the host resolves to. For listeners other than the web one, such as
/// the Graphite bridge's ingest port, so every port of an exporter reads its address alike.
pub fn listen_candidates(address: &str) -> Result<Vec<SocketAddr>, ServeError> {
    use std::net::ToSocketAddrs as _;
    let (host, port) = split_address(address)?;
    if host.is_empty() {
        return Ok(vec![
            SocketAddr::from(([0u16; 8], port)),
            SocketAddr::from(([0u8; 4], port)),
        ]);
    }
    let resolved: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| ServeError::Address {
            address: address.to_owned(),
            reason: format!("cannot resolve the host: {e}"),
        })?
        .collect();
    if resolved.is_empty() {
        return Err(ServeError::Address {
            address: address.to_owned(),
            reason: "the host resolves to no address".to_owned(),
        });
    }
    Ok(resolved)
}

static TOO_MANY_CONNECTIONS: LogLimiter = LogLimiter::new(std::time::Duration::from_secs(60));
static ACCEPT_ERRORS: LogLimiter = LogLimiter::new(std::time::Duration::from_secs(60));

pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    open: Arc<Connections>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = stopped.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors, most likely: pause instead of spinning.
                if ACCEPT_ERRORS.check().is_some() {
                    tracing::error!(err = %error, "Accepting a connection failed.");
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(admitted) = open.admit() else {
            if let Some(suppressed) = TOO_MANY_CONNECTIONS.check() {
                tracing::warn!(%peer, suppressed, "Too many connections with requests in progress; closing a new one.");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let stopped = stopped.clone();
        connections.spawn(async move {
            tokio::select! {
                () = serve_connection(stream, peer, shared, admitted.connection(), stopped) => {}
                () = admitted.evicted() => {
                    tracing::debug!(%peer, "Connection closed to make room for a new one.");
                }
            }
            drop(admitted);
        });
        // Let the new connection's task read its request before the next one is accepted:
        // in a flood, a connection is only evicted after many newer ones arrived, and this
        // makes sure those did not all arrive before it was looked at once.
        tokio::task::yield_now().await;
    }
    drop(listener);
    let grace = shared.timeouts.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    stopped: watch::Receiver<bool>,
) {
    let timeouts = shared.timeouts;
    // A client that connects and sends nothing is dropped after the header timeout.
    let mut first = [0u8; 1];
    match tokio::time::timeout(timeouts.header_read, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {}
        Ok(_) => return,
        Err(_) => {
            tracing::debug!(%peer, "Connection sent nothing; closed.");
            return;
        }
    }
    let tls = shared.web.current().tls.clone();
    match tls {
        None => serve_io(stream, peer, shared, connection, stopped).await,
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(timeouts.tls_handshake, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => {
                    serve_io(tls_stream, peer, shared, connection, stopped).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, err = %error, "TLS handshake failed."),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
            }
        }
    }
}

async fn serve_io<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    mut stopped: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeouts = shared.timeouts;
    let service = service_fn(move |request| {
        let shared = Arc::clone(&shared);
        let in_progress = connection.begin_request();
        async move {
            let response = routes::handle(&shared, peer.ip(), request).await;
            drop(in_progress);
            response
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let stream = WriteDeadline::new(stream, timeouts.write);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => log_connection_end(result),
        _ = stopped.changed() => {
            connection.as_mut().graceful_shutdown();
            log_connection_end(connection.await);
        }
    }
}

fn log_connection_end(result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(error) = result {
        tracing::debug!(err = %error, "Connection ended with an error.");
    }
}
