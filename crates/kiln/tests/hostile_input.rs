//! `kiln scrape` and `kiln top` against input that never ends or tries to take over the
//! operator's terminal.

#![allow(clippy::unwrap_used)]

use std::process::Command;

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

#[test]
fn input_files_that_never_end_are_refused_at_the_cap() {
    let output = Command::new("sh")
        .arg("-c")
        // A 512 MiB address space: reading /dev/zero unbounded fails long before.
        .arg("ulimit -v 524288; exec \"$0\" \"$@\"")
        .arg(KILN)
        .args(["scrape", "/dev/zero"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read /dev/zero: the file is larger than the limit of 64 MiB"),
        "{stderr}"
    );

    let output = Command::new(KILN)
        .args(["top", "--once", "--file", "/dev/zero"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the file is larger than the limit of 16 MiB"),
        "{stderr}"
    );
}

/// A target whose HELP text and label values carry terminal escape sequences: set the
/// title, clear the screen, write the clipboard (OSC 52), and the same as C1 controls.
const HOSTILE: &str = "# HELP evil_total Requests.\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}\u{9b}2J\u{202e}\n\
# TYPE evil_total counter\n\
evil_total{path=\"/\u{1b}[31mred\"} 1\n";

/// Serves `body` once per connection on loopback, `count` times; the URL.
fn serve(body: &'static str, count: usize) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let mut stream = stream.unwrap();
            let mut head = [0; 4096];
            let _ = stream.read(&mut head);
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    url
}

fn has_terminal_controls(text: &str) -> bool {
    text.chars()
        .any(|c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
}

#[test]
fn scraped_text_cannot_send_escape_sequences_to_the_terminal() {
    let url = serve(HOSTILE, 3);
    for args in [&["scrape"][..], &["scrape", "--json"], &["check"]] {
        let output = Command::new(KILN).args(args).arg(&url).output().unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            !has_terminal_controls(&stdout),
            "{args:?} printed {stdout:?}"
        );
        assert!(
            !has_terminal_controls(&stderr),
            "{args:?} printed {stderr:?}"
        );
        if args == ["scrape"] {
            assert!(
                stdout.contains(
                    "Requests.\\x1b]0;pwned\\x07\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07\\x9b2J\\u{202e}"
                ),
                "{stdout}"
            );
        }
        if args == ["scrape", "--json"] {
            let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(
                value[0]["help"],
                "Requests.\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}\u{9b}2J\u{202e}",
                "the JSON value is unchanged"
            );
        }
    }
}
