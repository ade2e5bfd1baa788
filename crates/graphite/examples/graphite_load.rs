//! Load generator for `scripts/bench/graphite.sh`: Spark-shaped Graphite lines at a running
//! exporter, over TCP or UDP, as fast as they go; then it waits until the exporter has
//! counted every line (read from its own metrics) and reports the rate and any loss.
//!
//! ```text
//! graphite_load tcp  HOST:PORT METRICS_URL SERIES LINES CONNECTIONS
//! graphite_load udp  HOST:PORT METRICS_URL SERIES DATAGRAMS SENDERS [RATE]
//! graphite_load fill HOST:PORT METRICS_URL SERIES
//! ```
//!
//! Names are `<application id>.<executor>.<metric>` with the metrics of a real Spark 4.3
//! driver (tests/fixtures), so mapping rules see what they see in production.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "../benches/support/spark_names.rs"]
mod spark_names;
use spark_names::spark_names;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One buffer of `lines` lines cycling over `names`.
fn payload(names: &[String], lines: usize, offset: usize) -> Vec<u8> {
    let ts = now();
    let mut out = Vec::with_capacity(lines * 80);
    for i in 0..lines {
        let name = &names[(offset + i) % names.len()];
        writeln!(out, "{name} {}.25 {ts}", i % 1000).unwrap();
    }
    out
}

/// A counter of the exporter's own metrics.
fn counter(url: &str, name: &str) -> f64 {
    let (host, path) = url.trim_start_matches("http://").split_once('/').unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

fn stored(url: &str) -> f64 {
    // Only the exporter's own metrics: a poll must not render every stored sample.
    counter(
        &format!("{url}?collect[]=graphite"),
        "graphite_samples_stored_total",
    )
}

/// Waits until the stored counter reaches `target` or stops moving; returns when it last moved.
fn wait_stored(url: &str, target: f64) -> (f64, Instant) {
    let mut last = stored(url);
    let mut moved = Instant::now();
    loop {
        if last >= target {
            return (last, moved);
        }
        std::thread::sleep(Duration::from_millis(5));
        let now = stored(url);
        if now != last {
            last = now;
            moved = Instant::now();
        } else if moved.elapsed() > Duration::from_secs(2) {
            return (last, moved);
        }
    }
}

/// Sends `count` datagrams of one line each, at `rate` a second (0: unpaced).
fn send_udp(target: &str, names: &[String], offset: usize, count: usize, rate: f64) {
    use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, sendmmsg};
    use std::io::IoSlice;
    const BATCH: usize = 64;
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(target).unwrap();
    let ts = now();
    // Formatted before the clock starts: the exporter is measured, not the generator.
    let lines: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            format!(
                "{} {}.25 {ts}\n",
                names[(offset + i) % names.len()],
                i % 1000
            )
            .into_bytes()
        })
        .collect();
    let start = Instant::now();
    let mut sent = 0;
    while sent < count {
        let batch = BATCH.min(count - sent);
        let slices: Vec<[IoSlice<'_>; 1]> = lines[sent..sent + batch]
            .iter()
            .map(|l| [IoSlice::new(l)])
            .collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
            (0..batch).map(|_| SendAncillaryBuffer::default()).collect();
        let mut messages: Vec<MMsgHdr<'_>> = slices
            .iter()
            .zip(controls.iter_mut())
            .map(|(iov, control)| MMsgHdr::new(iov, control))
            .collect();
        let mut done = 0;
        while done < batch {
            // A full socket buffer on the sender is not loss; retry.
            if let Ok(n) = sendmmsg(&socket, &mut messages[done..], SendFlags::empty()) {
                done += n;
            }
        }
        sent += batch;
        if rate > 0.0 {
            let due = Duration::from_secs_f64(sent as f64 / rate);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: graphite_load tcp|udp|fill HOST:PORT METRICS_URL SERIES [COUNT WORKERS]";
    let mode = args.get(1).expect(usage).as_str();
    let target = args.get(2).expect(usage).clone();
    let url = args.get(3).expect(usage).clone();
    let series: usize = args.get(4).expect(usage).parse().unwrap();
    let count: usize = args.get(5).map_or(series, |c| c.parse().unwrap());
    let workers: usize = args.get(6).map_or(1, |c| c.parse().unwrap());
    let names = spark_names(series);
    let before = stored(&url);

    match mode {
        "fill" | "tcp" => {
            let per_worker = count / workers;
            let buffers: Vec<Vec<u8>> = (0..workers)
                .map(|w| payload(&names, per_worker, w * per_worker))
                .collect();
            let sent = (per_worker * workers) as f64;
            let start = Instant::now();
            std::thread::scope(|scope| {
                for buffer in &buffers {
                    let target = &target;
                    scope.spawn(move || {
                        let mut stream = TcpStream::connect(target).unwrap();
                        stream.write_all(buffer).unwrap();
                    });
                }
            });
            let (after, done) = wait_stored(&url, before + sent);
            let seconds = done.duration_since(start).as_secs_f64();
            let processed = after - before;
            println!(
                "tcp lines={sent} processed={processed} lost={} seconds={seconds:.3} lines_per_second={:.0}",
                sent - processed,
                processed / seconds
            );
        }
        "udp" => {
            // Paced to RATE datagrams a second in all (0: as fast as possible), sent in
            // batches of 64 with sendmmsg so the sender leaves the CPU to the exporter.
            let rate: f64 = args.get(7).map_or(0.0, |r| r.parse().unwrap());
            let per_worker = count / workers;
            let start = Instant::now();
            std::thread::scope(|scope| {
                for w in 0..workers {
                    let names = &names;
                    let target = &target;
                    scope.spawn(move || {
                        send_udp(
                            target,
                            names,
                            w * per_worker,
                            per_worker,
                            rate / workers as f64,
                        )
                    });
                }
            });
            let sent = (per_worker * workers) as f64;
            let send_seconds = start.elapsed().as_secs_f64();
            let (after, done) = wait_stored(&url, before + sent);
            let seconds = done.duration_since(start).as_secs_f64();
            let processed = after - before;
            println!(
                "udp datagrams={sent} processed={processed} lost={} send_seconds={send_seconds:.3} seconds={seconds:.3} datagrams_per_second={:.0}",
                sent - processed,
                processed / seconds
            );
        }
        _ => panic!("{usage}"),
    }
}
