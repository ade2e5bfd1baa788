//! What the `kiln` command's tests share: free ports (on other loopback addresses too) and
//! the fake NVML library.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// A port nothing listens on at the moment, on `address`.
pub fn free_port_on(address: &str) -> u16 {
    TcpListener::bind((address, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The fake NVML library of this profile, built if missing (scripts/test builds it).
pub fn fake_library() -> PathBuf {
    let profile = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let library = profile.join("libfake_nvml.so");
    if !library.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "fake-nvml"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    library
}
