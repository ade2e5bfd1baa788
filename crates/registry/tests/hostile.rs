//! The server against hostile clients, each attack repeated at a small size on loopback:
//! clients that never read, connection floods, password guessing, request bursts. Each
//! test asserts the bound that keeps legitimate scrapes working.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kiln_registry::{Exporter, RunningExporter, Timeouts, WebFlags, build_info};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

async fn start(args: &[&str], exporter: impl FnOnce(Exporter) -> Exporter) -> RunningExporter {
    let mut all = vec!["--web.listen-address=127.0.0.1:0"];
    all.extend_from_slice(args);
    let flags = WebFlags::from_args(all).unwrap();
    exporter(
        Exporter::new(build_info!("hostile-test"), "t", flags).timeouts(Timeouts {
            header_read: Duration::from_millis(500),
            tls_handshake: Duration::from_millis(500),
            request: Duration::from_secs(30),
            write: Duration::from_millis(300),
            shutdown_grace: Duration::from_secs(2),
        }),
    )
    .bind()
    .await
    .unwrap()
}

/// One `GET` on a new connection from `source` (an address on loopback); the status code
/// and body, or why there is none, within `limit`.
async fn get_from(
    source: &str,
    addr: SocketAddr,
    path: &str,
    headers: &str,
    limit: Duration,
) -> Result<(u16, String), String> {
    let exchange = async {
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket
            .bind(format!("{source}:0").parse().unwrap())
            .map_err(|e| e.to_string())?;
        let mut stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("no status line in {answer:?}"))?;
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(limit, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {limit:?}")))
}

async fn get(addr: SocketAddr, path: &str, headers: &str) -> Result<(u16, String), String> {
    get_from("127.0.0.1", addr, path, headers, Duration::from_secs(2)).await
}

fn big_route(body: Bytes) -> kiln_registry::RouteHandler {
    Arc::new(move |_, _| {
        let body = body.clone();
        Box::pin(async move { kiln_registry::Response::new(kiln_registry::Body::new(body)) })
    })
}

/// A client pipelines requests for a 1 MiB answer and never reads: the server must give up
/// on it once its writes stop making progress, not hold the connection for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_disconnected() {
    const ANSWER: usize = 1 << 20;
    const REQUESTS: usize = 64;
    let running = start(&[], |e| {
        e.route("/big", "Big", big_route(Bytes::from(vec![b'x'; ANSWER])))
    })
    .await;
    let addr = running.local_addrs()[0];
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let pipeline = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n".repeat(REQUESTS);
    stream.write_all(pipeline.as_bytes()).await.unwrap();
    // Far longer than the 300 ms write limit: the server's writes have long been stuck.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let started = Instant::now();
    let mut received = 0usize;
    let mut chunk = vec![0; 64 * 1024];
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server kept the connection open");
    assert!(
        received < REQUESTS * ANSWER,
        "all {received} bytes were delivered: the server waited for the reader"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    running.shutdown().await;
}

/// More half-sent and silent connections than the server holds, re-opened as soon as they
/// are closed: scrapes on new connections must still be answered within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_does_not_lock_out_scrapes() {
    const HELD: usize = 32;
    const ATTACKERS: usize = 64;
    let running = start(&[], |e| e.max_connections(HELD)).await;
    let addr = running.local_addrs()[0];
    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();
    for i in 0..ATTACKERS {
        let stop = Arc::clone(&stop);
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut stream) = TcpStream::connect(addr).await else {
                    continue;
                };
                // Half the attackers send part of a head, half send nothing at all.
                if i % 2 == 0 {
                    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost").await;
                }
                let mut sink = [0; 256];
                while let Ok(n) = stream.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The goal: at least 99 % of legitimate scrapes answered within 2 s.
    const SCRAPES: usize = 100;
    let mut failures = Vec::new();
    for _ in 0..SCRAPES {
        match get(addr, "/metrics", "").await {
            Ok((200, _)) => {}
            other => failures.push(other),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.abort();
    }
    assert!(
        failures.len() * 100 <= SCRAPES,
        "{} of {SCRAPES} scrapes failed: {failures:?}",
        failures.len()
    );
    running.shutdown().await;
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {encoded}\r\n")
}

/// Password guessing on many connections, for a real and an unknown user: a scraper whose
/// credentials were verified before keeps being answered within 2 s, and guesses are
/// answered (401, or 503 when too many wait for bcrypt) rather than left to pile up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_does_not_slow_down_a_known_scraper() {
    const GUESSERS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yml");
    let hash = bcrypt::hash("good", 8).unwrap();
    std::fs::write(&file, format!("basic_auth_users:\n  alice: {hash}\n")).unwrap();
    let flag = format!("--web.config.file={}", file.display());
    let running = start(&[&flag], |e| e).await;
    let addr = running.local_addrs()[0];
    let scraper = basic("alice", "good");
    assert_eq!(get(addr, "/metrics", &scraper).await.unwrap().0, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let mut guessers = Vec::new();
    for g in 0..GUESSERS {
        let stop = Arc::clone(&stop);
        guessers.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let user = if g % 2 == 0 { "alice" } else { "mallory" };
                let guess = basic(user, &format!("guess-{g}-{n}"));
                n += 1;
                let limit = Duration::from_secs(10);
                if let Ok((status, _)) =
                    get_from("127.0.0.1", addr, "/metrics", &guess, limit).await
                {
                    answered.push(status);
                }
            }
            answered
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut failures = Vec::new();
    for _ in 0..30 {
        match get(addr, "/metrics", &scraper).await {
            Ok((200, _)) => {}
            other => failures.push(other),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut statuses = Vec::new();
    for guesser in guessers {
        statuses.extend(guesser.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} of 30 scrapes failed: {failures:?}",
        failures.len()
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.len() > GUESSERS, "guesses were left waiting");
    running.shutdown().await;
}

/// One client bursts past `rate_limit`: it gets 429, while another client and every
/// health and readiness probe are still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_clients_burst_limits_only_that_client_and_never_the_probes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yml");
    std::fs::write(&file, "rate_limit:\n  interval: 1m\n  burst: 3\n").unwrap();
    let flag = format!("--web.config.file={}", file.display());
    let running = start(&[&flag], |e| e).await;
    let addr = running.local_addrs()[0];
    let limit = Duration::from_secs(2);

    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(get(addr, "/metrics", "").await.unwrap().0);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
    for _ in 0..10 {
        assert_eq!(get(addr, "/-/healthy", "").await.unwrap().0, 200);
        assert_eq!(get(addr, "/-/ready", "").await.unwrap().0, 200);
    }
    // Another address on loopback is another client, with its own bucket.
    let other = get_from("127.0.0.2", addr, "/metrics", "", limit)
        .await
        .unwrap();
    assert_eq!(other.0, 200);
    assert_eq!(get(addr, "/metrics", "").await.unwrap().0, 429);
    running.shutdown().await;
}
