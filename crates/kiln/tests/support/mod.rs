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

/// A node exporter reading the procfs a test writes at `procfs` (interface counters from
/// its `/proc/net/dev`, not the host's links) and an empty sysfs, listening on a free port
/// of `address`: the exporter and its address.
pub fn node_exporter(
    runtime: &tokio::runtime::Runtime,
    address: &str,
    procfs: &std::path::Path,
    sysfs: &std::path::Path,
) -> (kiln_registry::RunningExporter, String) {
    let cli = kiln_node::Cli::try_parse_from([
        "kiln-node-exporter".to_owned(),
        format!("--web.listen-address={address}:0"),
        format!("--path.procfs={}", procfs.display()),
        format!("--path.sysfs={}", sysfs.display()),
        "--collector.disable-defaults".to_owned(),
        "--collector.cpu".to_owned(),
        "--collector.meminfo".to_owned(),
        "--collector.loadavg".to_owned(),
        "--collector.diskstats".to_owned(),
        "--collector.netdev".to_owned(),
        "--no-collector.netdev.netlink".to_owned(),
    ])
    .unwrap();
    let set = kiln_node::CollectorSet::from_cli(&cli).unwrap();
    let node = runtime
        .block_on(set.into_exporter(cli.web.clone()).bind())
        .unwrap();
    let node_address = node.local_addrs()[0].to_string();
    (node, node_address)
}

/// The GPU exporter in `kiln up` (`kiln`, the binary under test) on the fake driver with
/// the fleet fixture, written into `dir`, listening on a free port of `address`: the
/// process and its address. PIDs near the kernel's limit belong to no process here, so
/// each shows as `pid N`; GPU 0 has had an XID 79.
pub fn gpu_exporter(
    kiln: &str,
    address: &str,
    dir: &std::path::Path,
) -> (std::process::Child, String) {
    let fleet_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../gpu/tests/fixtures/fleet.json");
    let mut fleet: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fleet_path).unwrap()).unwrap();
    for device in fleet["devices"].as_array_mut().unwrap() {
        for process in device["processes"].as_array_mut().unwrap() {
            let pid = process["pid"].as_u64().unwrap();
            process["pid"] = (4_190_000 + pid).into();
        }
    }
    fleet["xid_events"] = serde_json::json!([{"gpu": 0, "xid": 79}]);
    let fixture = dir.join("fleet.json");
    std::fs::write(&fixture, fleet.to_string()).unwrap();
    let port = free_port_on(address);
    let gpu = std::process::Command::new(kiln)
        .env("FAKE_NVML_FIXTURE", &fixture)
        .args([
            "up",
            "--only=gpu",
            &format!("--gpu.listen-address={address}:{port}"),
            &format!("--nvml.library-path={}", fake_library().display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (gpu, format!("{address}:{port}"))
}
