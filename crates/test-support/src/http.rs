//! Plain HTTP/1.0 over loopback, without a client library between the test and the socket:
//! requests to an exporter, and a stand-in for a Prometheus query API.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("bind an ephemeral loopback port")
}

/// `GET path` from `127.0.0.1:port`: the status and the body, or `None` when nothing
/// answers (yet). Waits at most 30 s for the answer.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// A server on 127.0.0.1 that answers each query API request with what `answer` gives for
/// its (still URL-encoded) query, a connection a thread; its address. Answers over 10 KB
/// stall for 300 ms before their last byte, so a reader holds several in flight at once.
pub fn serve_queries(answer: impl Fn(&str) -> String + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = listener
        .local_addr()
        .expect("the listener's address")
        .to_string();
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || answer_query(stream, &*answer));
        }
    });
    address
}

fn answer_query(mut stream: TcpStream, answer: &dyn Fn(&str) -> String) {
    use std::io::BufRead as _;
    let Ok(reading) = stream.try_clone() else {
        return;
    };
    let mut reader = std::io::BufReader::new(reading);
    let mut request_line = String::new();
    let _ = reader.read_line(&mut request_line);
    // The rest of the head, up to the empty line.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let query = request_line
        .split_whitespace()
        .nth(1)
        .and_then(|target| target.split_once("query="))
        .map(|(_, query)| query.to_owned())
        .unwrap_or_default();
    let body = answer(&query);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let (most, last) = body.split_at(body.len() - 1);
    let _ = stream.write_all(most.as_bytes());
    if body.len() > 10_000 {
        let _ = stream.flush();
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = stream.write_all(last.as_bytes());
}
