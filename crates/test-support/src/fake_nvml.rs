//! The fake NVML driver (`crates/fake-nvml`) the GPU exporter's tests and benchmarks load in
//! place of `libnvidia-ml.so.1`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// `libfake_nvml.so` of the running test's or benchmark's build profile, built first when it
/// is missing or older than its sources: `cargo test` and `cargo bench` do not build cdylib
/// members, and a stale library would lack entry points the exporter now calls.
pub fn fake_nvml_library() -> PathBuf {
    let profile_dir = std::env::current_exe()
        .expect("the running executable")
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<executable>")
        .to_path_buf();
    let library = profile_dir.join("libfake_nvml.so");
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fake-nvml/src");
    let newest_source = std::fs::read_dir(&sources)
        .expect("crates/fake-nvml/src")
        .filter_map(|entry| entry.ok()?.metadata().ok()?.modified().ok())
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let built = std::fs::metadata(&library).and_then(|m| m.modified()).ok();
    if built.is_none_or(|built| built < newest_source) {
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-p", "fake-nvml"]);
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo");
        assert!(status.success(), "building fake-nvml failed");
    }
    library
}
