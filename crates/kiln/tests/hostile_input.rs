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
