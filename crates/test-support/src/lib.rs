//! What the tests of every Kiln crate share, written once: a free loopback port, a plain
//! HTTP GET over a real socket, a started program killed on drop with its log kept, a
//! sample's value in an exposition, golden files with one update switch
//! (`KILN_UPDATE_GOLDEN=1`), and a real Prometheus (Debian's, which `scripts/test` installs) to scrape and query.
//!
//! Only tests and benchmarks depend on it (`[dev-dependencies]`).

#![forbid(unsafe_code)]

mod fake_nvml;
mod golden;
mod http;
mod process;
mod prometheus;
pub mod ttar;

pub use fake_nvml::fake_nvml_library;
pub use golden::assert_golden;
pub use http::{free_port, get, serve_queries};
pub use process::{Process, run_to_exit, value};
pub use prometheus::Prometheus;
