//! What the `kiln` command's tests share: free ports (on other loopback addresses too) and
//! the fake NVML library.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;

pub use kiln_test_support::fake_nvml_library as fake_library;

/// A port nothing listens on at the moment, on `address`.
pub fn free_port_on(address: &str) -> u16 {
    TcpListener::bind((address, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
