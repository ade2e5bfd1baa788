//! `--web.systemd-socket`: the exporter serves the socket it was handed as systemd hands
//! it (descriptor 3, `LISTEN_FDS=1`, `LISTEN_PID` its own pid) instead of binding
//! `--web.listen-address`; without such a socket it refuses to start.

// Handing a descriptor to a child needs `dup2` between fork and exec.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn serves_the_socket_systemd_passes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();
    // A shell sets LISTEN_PID to its own pid and execs the exporter, which keeps the pid;
    // the listen address is one nothing may bind, so serving proves the socket was used.
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(r#"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_kiln-node-exporter"))
        .args([
            "--web.systemd-socket",
            "--web.listen-address=192.0.2.1:1",
            "--collector.disable-defaults",
            "--collector.loadavg",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only `dup2` and `fcntl`, which are async-signal-safe, run between fork and
    // exec; they put the listener on descriptor 3 without close-on-exec.
    unsafe {
        command.pre_exec(move || {
            // `dup2(3, 3)` would keep close-on-exec set: clear it explicitly.
            if libc::dup2(fd, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    drop(listener);

    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    let read = stream.read_to_string(&mut response);

    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    read.unwrap_or_else(|e| panic!("reading the response: {e}\n{log}"));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}\n{log}");
    assert!(
        response.contains("node_scrape_collector_success{collector=\"loadavg\"} 1"),
        "{response}\n{log}"
    );
}

#[test]
fn without_a_passed_socket_it_refuses_to_start() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln-node-exporter"));
    command
        .args(["--web.systemd-socket", "--web.listen-address=127.0.0.1:0"])
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS");
    let (code, log) = kiln_test_support::run_to_exit(command);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("--web.systemd-socket: LISTEN_PID is not set"),
        "{log}"
    );
}
