//! kiln-gpu-exporter against the fake NVML library: the real binary, nvml-wrapper and
//! collectors, with only `libnvidia-ml.so.1` replaced. Tests change the fake driver's
//! state while the exporter runs by rewriting its fixture.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{A100, Exporter, H100, T4, fleet, get, has, value};

const SETTLE: Duration = Duration::from_secs(10);

/// A /proc with the fixture's GPU processes: a Spark executor in a YARN container, a
/// Docker container and a systemd service.
fn procfs(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("proc");
    let processes = [
        (
            "4242",
            "python3",
            "0::/hadoop-yarn/container_e17_1700000000000_0042_01_000003\n",
        ),
        (
            "4343",
            "java",
            "0::/system.slice/docker-3f4e1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f.scope\n",
        ),
        (
            "4444",
            "jupyter-kernel",
            "0::/system.slice/jupyterhub.service\n",
        ),
    ];
    for (pid, comm, cgroup) in processes {
        std::fs::create_dir_all(root.join(pid)).unwrap();
        std::fs::write(root.join(pid).join("comm"), format!("{comm}\n")).unwrap();
        std::fs::write(root.join(pid).join("cgroup"), cgroup).unwrap();
    }
    root
}

/// Self metrics whose values change from scrape to scrape.
const VOLATILE: [&str; 3] = [
    "nvidia_gpu_collect_duration_seconds",
    "nvidia_gpu_last_collect_timestamp_seconds",
    "nvidia_gpu_snapshot_age_seconds",
];

#[test]
fn every_family_matches_the_golden_file() {
    let scratch = tempfile::tempdir().unwrap();
    let proc_root = procfs(scratch.path());
    let procfs_flag = format!("--path.procfs={}", proc_root.display());
    let exporter = Exporter::start(
        &fleet(),
        &[
            "--collect.processes",
            "--collect.pcie-throughput",
            &procfs_flag,
        ],
    );
    // Two cycles, so that process utilisation has been sampled once before.
    std::thread::sleep(Duration::from_millis(300));
    let text = exporter.metrics();
    let ours: String = text
        .lines()
        .filter(|l| l.contains("nvidia_gpu_") && !VOLATILE.iter().any(|v| l.contains(v)))
        .map(|l| format!("{l}\n"))
        .collect();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fleet.metrics");
    kiln_test_support::assert_golden(&golden, &ours);
}

#[test]
fn processes_are_named_by_their_yarn_container_container_or_unit() {
    let scratch = tempfile::tempdir().unwrap();
    let proc_root = procfs(scratch.path());
    let procfs_flag = format!("--path.procfs={}", proc_root.display());
    let exporter = Exporter::start(&fleet(), &["--collect.processes", &procfs_flag]);
    let text = exporter.metrics();
    let executor = format!(
        "nvidia_gpu_process_memory_used_bytes{{{H100},pid=\"4242\",process_name=\"python3\",yarn_container=\"container_e17_1700000000000_0042_01_000003\",yarn_application=\"application_1700000000000_0042\"}}"
    );
    assert_eq!(value(&text, &executor), Some(52_613_349_376.0), "{text}");
    assert!(
        has(
            &text,
            "nvidia_gpu_process_memory_used_bytes",
            "container_id=\"3f4e1c2b"
        ),
        "{text}"
    );
    let service = format!(
        "nvidia_gpu_process_memory_used_bytes{{{A100},pid=\"4444\",process_name=\"jupyter-kernel\",systemd_unit=\"jupyterhub.service\",gpu_instance_id=\"1\",compute_instance_id=\"0\"}}"
    );
    assert_eq!(value(&text, &service), Some(8_589_934_592.0), "{text}");
    // Without the flag, only the count.
    let plain = Exporter::start(&fleet(), &[]);
    let text = plain.metrics();
    assert_eq!(
        value(&text, &format!("nvidia_gpu_processes{{{H100}}}")),
        Some(2.0)
    );
    assert!(
        !text.contains("nvidia_gpu_process_memory_used_bytes{"),
        "{text}"
    );
}

#[test]
fn counters_advance_between_collections() {
    let mut fixture = fleet();
    fixture["devices"][0]["energy_mj"] = json!({"start": 1_000_000, "per_second": 700_000});
    fixture["devices"][0]["ecc"]["corrected_volatile"] = json!({"start": 0, "per_second": 50});
    let exporter = Exporter::start(&fixture, &[]);
    let energy = format!("nvidia_gpu_energy_consumption_joules_total{{{H100}}}");
    let first = value(&exporter.metrics(), &energy).unwrap();
    let text = exporter.wait_for(SETTLE, "the energy counter to grow", |t| {
        value(t, &energy).is_some_and(|v| v > first + 100.0)
    });
    let ecc =
        format!("nvidia_gpu_ecc_errors_total{{{H100},error=\"corrected\",counter=\"volatile\"}}");
    assert!(value(&text, &ecc).unwrap() > 0.0, "{text}");
    assert!(text.contains("# TYPE nvidia_gpu_energy_consumption_joules_total counter\n"));
}

#[test]
fn a_lost_gpu_goes_down_while_the_others_keep_reporting() {
    let mut fixture = fleet();
    let exporter = Exporter::start(&fixture, &[]);
    fixture["devices"][1]["lost"] = json!(true);
    exporter.rewrite(&fixture);
    let text = exporter.wait_for(SETTLE, "GPU 1 to go down", |t| {
        value(t, &format!("nvidia_gpu_up{{{A100}}}")) == Some(0.0)
    });
    assert_eq!(value(&text, &format!("nvidia_gpu_up{{{H100}}}")), Some(1.0));
    assert_eq!(value(&text, &format!("nvidia_gpu_up{{{T4}}}")), Some(1.0));
    assert_eq!(value(&text, "nvidia_gpu_nvml_up"), Some(1.0));
    assert_eq!(value(&text, "nvidia_gpu_devices"), Some(3.0));
    assert_eq!(
        value(&text, &format!("nvidia_gpu_temperature_celsius{{{H100}}}")),
        Some(61.0)
    );
    assert!(
        !text.contains(&format!("nvidia_gpu_temperature_celsius{{{A100}}}")),
        "{text}"
    );
    assert!(
        value(&text, "nvidia_gpu_collect_errors_total{call=\"nvmlDeviceGetHandleByIndex_v2\",error=\"gpu_lost\"}")
            .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    // Back on the bus (after a reset): reported again.
    fixture["devices"][1]["lost"] = json!(false);
    exporter.rewrite(&fixture);
    exporter.wait_for(SETTLE, "GPU 1 to come back", |t| {
        value(t, &format!("nvidia_gpu_temperature_celsius{{{A100}}}")) == Some(44.0)
    });
}

#[test]
fn xid_errors_are_counted_per_code_with_their_last_time() {
    let mut fixture = fleet();
    let exporter = Exporter::start(&fixture, &[]);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    fixture["xid_events"] =
        json!([{"gpu": 0, "xid": 79}, {"gpu": 0, "xid": 79}, {"gpu": 2, "xid": 48}]);
    exporter.rewrite(&fixture);
    let h100_79 = format!("nvidia_gpu_xid_errors_total{{{H100},xid=\"79\"}}");
    let text = exporter.wait_for(SETTLE, "three XIDs", |t| {
        value(t, &h100_79) == Some(2.0)
            && value(
                t,
                &format!("nvidia_gpu_xid_errors_total{{{T4},xid=\"48\"}}"),
            ) == Some(1.0)
    });
    let last = value(
        &text,
        &format!("nvidia_gpu_xid_last_timestamp_seconds{{{H100},xid=\"79\"}}"),
    )
    .unwrap();
    assert!(
        last >= before.floor() && last < before + 60.0,
        "{last} vs {before}"
    );
    assert!(text.contains("# TYPE nvidia_gpu_xid_errors_total counter\n"));
    // The same XID again is one more, not a gauge that stays put.
    fixture["xid_events"] = json!([{"gpu": 0, "xid": 79}, {"gpu": 0, "xid": 79}, {"gpu": 2, "xid": 48}, {"gpu": 0, "xid": 79}]);
    exporter.rewrite(&fixture);
    exporter.wait_for(SETTLE, "the fourth XID", |t| {
        value(t, &h100_79) == Some(3.0)
    });
}

#[test]
fn xid_79_is_read_from_the_kernel_log_with_the_same_labels() {
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("kmsg");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kmsg.txt");
    std::fs::copy(&fixture, &log).unwrap();
    let flag = format!("--collect.xid-kmsg.path={}", log.display());
    let exporter = Exporter::start(&fleet(), &[&flag]);
    let a100_79 = format!("nvidia_gpu_xid_errors_total{{{A100},xid=\"79\"}}");
    let text = exporter.wait_for(SETTLE, "XID 79 from the kernel log", |t| {
        value(t, &a100_79) == Some(1.0)
    });
    assert_eq!(
        value(&text, &format!("nvidia_gpu_xid_last_code{{{A100}}}")),
        Some(79.0)
    );
    let last = value(
        &text,
        &format!("nvidia_gpu_xid_last_timestamp_seconds{{{A100},xid=\"79\"}}"),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(last > 0.0 && last <= now, "{last}");
    // XID 13 reaches NVML's events, so the log's copy is not counted a second time.
    assert!(!text.contains("xid=\"13\""), "{text}");
    // An address no GPU has is counted, not dropped silently.
    assert_eq!(
        value(&text, "nvidia_gpu_xid_kmsg_unmatched_total"),
        Some(1.0),
        "{text}"
    );
    // A line logged while the exporter runs is read too.
    let mut appended = std::fs::read_to_string(&log).unwrap();
    appended.push_str("3,2601,91000000,-;NVRM: Xid (PCI:0000:00:1e): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n");
    std::fs::write(&log, appended).unwrap();
    exporter.wait_for(SETTLE, "the T4's XID 79", |t| {
        value(
            t,
            &format!("nvidia_gpu_xid_errors_total{{{T4},xid=\"79\"}}"),
        ) == Some(1.0)
            && value(t, &a100_79) == Some(1.0)
    });
}

#[test]
fn compute_mode_recovery_action_and_fabric_state_follow_the_driver() {
    let mut fixture = fleet();
    let exporter = Exporter::start(&fixture, &[]);
    let text = exporter.metrics();
    assert_eq!(
        value(&text, &format!("nvidia_gpu_compute_mode{{{A100}}}")),
        Some(3.0)
    );
    assert_eq!(
        value(&text, &format!("nvidia_gpu_compute_mode{{{T4}}}")),
        Some(0.0)
    );
    assert_eq!(
        value(&text, &format!("nvidia_gpu_recovery_action{{{H100}}}")),
        Some(0.0)
    );
    // The T4's driver answers no recovery action: absent, not 0.
    assert!(
        !text.contains(&format!("nvidia_gpu_recovery_action{{{T4}}}")),
        "{text}"
    );
    assert_eq!(
        value(&text, &format!("nvidia_gpu_fabric_state{{{H100}}}")),
        Some(3.0)
    );
    // Only the NVSwitch system's GPU has a fabric state.
    assert!(
        !text.contains(&format!("nvidia_gpu_fabric_state{{{A100}}}")),
        "{text}"
    );
    // Bare metal: no licences.
    assert!(!text.contains("nvidia_gpu_vgpu_licensed{"), "{text}");
    fixture["devices"][2]["vgpu_licences"] = json!([{"feature": 4, "licensed": true}]);
    fixture["devices"][0]["recovery_action"] = json!(2);
    fixture["devices"][0]["fabric"] = json!({"state": 3, "status": 999});
    exporter.rewrite(&fixture);
    exporter.wait_for(SETTLE, "a node reboot asked for", |t| {
        value(t, &format!("nvidia_gpu_recovery_action{{{H100}}}")) == Some(2.0)
            && value(
                t,
                &format!("nvidia_gpu_fabric_registration_failed{{{H100}}}"),
            ) == Some(1.0)
    });
    // The T4 in a virtual machine, its vCompute licence held. (The bare-metal answer was
    // remembered for the GPU as it was, so another exporter starts on the new fixture.)
    let vm = Exporter::start(&fixture, &[]);
    let text = vm.metrics();
    assert_eq!(
        value(
            &text,
            &format!("nvidia_gpu_vgpu_licensed{{{T4},feature=\"compute\"}}")
        ),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn a_wedged_driver_call_never_hangs_a_scrape() {
    let mut fixture = fleet();
    let exporter = Exporter::start(&fixture, &["--collect.timeout=500ms"]);
    fixture["slow"] = json!({"function": "nvmlDeviceGetPowerUsage", "seconds": 120});
    exporter.rewrite(&fixture);
    let text = exporter.wait_for(SETTLE, "the stall to be reported", |t| {
        value(t, "nvidia_gpu_collect_stalled") == Some(1.0)
    });
    // The call wedges on every GPU: readings are withheld rather than served stale, and
    // every GPU reads as down and stalled.
    assert!(!text.contains("nvidia_gpu_temperature_celsius{"), "{text}");
    for gpu in [H100, A100, T4] {
        assert_eq!(value(&text, &format!("nvidia_gpu_up{{{gpu}}}")), Some(0.0));
        assert_eq!(
            value(&text, &format!("nvidia_gpu_stalled{{{gpu}}}")),
            Some(1.0)
        );
    }
    let started = Instant::now();
    for _ in 0..5 {
        exporter.metrics();
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "scrapes waited for the driver"
    );
    assert!(
        exporter.log_text().contains("nvmlDeviceGetPowerUsage"),
        "{}",
        exporter.log_text()
    );
    // The call returns: readings come back.
    fixture.as_object_mut().unwrap().remove("slow");
    exporter.rewrite(&fixture);
    exporter.wait_for(SETTLE, "recovery", |t| {
        value(t, "nvidia_gpu_collect_stalled") == Some(0.0)
            && value(t, &format!("nvidia_gpu_power_usage_watts{{{H100}}}")) == Some(512.345)
    });
}

#[test]
fn a_call_wedged_on_one_gpu_leaves_the_others_fresh() {
    let mut fixture = fleet();
    fixture["devices"][2]["energy_mj"] = json!({"start": 1_000_000, "per_second": 700_000});
    let exporter = Exporter::start(&fixture, &["--collect.timeout=500ms"]);
    fixture["slow"] = json!({"function": "nvmlDeviceGetPowerUsage", "seconds": 120, "gpu": 0});
    exporter.rewrite(&fixture);
    let text = exporter.wait_for(SETTLE, "GPU 0 to be reported stalled", |t| {
        value(t, &format!("nvidia_gpu_stalled{{{H100}}}")) == Some(1.0)
    });
    // Exactly GPU 0 is stale: down, stalled, without readings.
    assert_eq!(value(&text, &format!("nvidia_gpu_up{{{H100}}}")), Some(0.0));
    assert!(
        !text.contains(&format!("nvidia_gpu_temperature_celsius{{{H100}}}")),
        "{text}"
    );
    assert_eq!(value(&text, "nvidia_gpu_collect_stalled"), Some(1.0));
    for gpu in [A100, T4] {
        assert_eq!(value(&text, &format!("nvidia_gpu_up{{{gpu}}}")), Some(1.0));
        assert_eq!(
            value(&text, &format!("nvidia_gpu_stalled{{{gpu}}}")),
            Some(0.0)
        );
    }
    // The others keep being read: the T4's energy counter goes on advancing, cycle by cycle.
    let energy = format!("nvidia_gpu_energy_consumption_joules_total{{{T4}}}");
    let first = value(&text, &energy).unwrap();
    let later = exporter.wait_for(SETTLE, "the T4's energy to advance", |t| {
        value(t, &energy).is_some_and(|v| v > first + 100.0)
    });
    assert_eq!(
        value(&later, &format!("nvidia_gpu_up{{{H100}}}")),
        Some(0.0)
    );
    assert_eq!(
        value(&later, &format!("nvidia_gpu_temperature_celsius{{{A100}}}")),
        Some(44.0)
    );
    let log = exporter.log_text();
    assert!(
        log.contains("level=error") && log.contains("nvmlDeviceGetPowerUsage"),
        "{log}"
    );
    // The call returns: GPU 0 is read again.
    fixture.as_object_mut().unwrap().remove("slow");
    exporter.rewrite(&fixture);
    exporter.wait_for(SETTLE, "GPU 0 to recover", |t| {
        value(t, &format!("nvidia_gpu_stalled{{{H100}}}")) == Some(0.0)
            && value(t, &format!("nvidia_gpu_up{{{H100}}}")) == Some(1.0)
            && value(t, &format!("nvidia_gpu_power_usage_watts{{{H100}}}")) == Some(512.345)
            && value(t, "nvidia_gpu_collect_stalled") == Some(0.0)
    });
}

#[test]
fn a_file_that_is_not_nvml_is_refused_like_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("libnvidia-ml.so.1");
    std::fs::write(&library, b"not a shared object\n").unwrap();
    let exporter = Exporter::start_in(dir, &fleet(), &library, &[]);
    let text = exporter.metrics();
    assert_eq!(value(&text, "nvidia_gpu_nvml_up"), Some(0.0), "{text}");
    let status = get(exporter.port, "/-/ready").map(|(status, _)| status);
    assert_eq!(status, Some(503));
    let log = exporter.log_text();
    assert!(
        log.contains("level=error") && log.contains(&library.display().to_string()),
        "the error names the library tried: {log}"
    );
}

#[test]
fn without_a_driver_nvml_is_down_and_is_opened_again_when_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("libnvidia-ml.so.1");
    let exporter = Exporter::start_in(dir, &fleet(), &library, &[]);
    let text = exporter.metrics();
    assert_eq!(value(&text, "nvidia_gpu_nvml_up"), Some(0.0), "{text}");
    assert_eq!(value(&text, "nvidia_gpu_devices"), Some(0.0));
    let ready = || get(exporter.port, "/-/ready").map(|(status, _)| status);
    assert_eq!(ready(), Some(503), "not ready without NVML");
    let log = exporter.log_text();
    assert!(
        log.contains("level=error") && log.contains(&library.display().to_string()),
        "the error names the library tried: {log}"
    );
    assert!(
        has(
            &text,
            "nvidia_gpu_collect_errors_total",
            "call=\"nvmlInit_v2\",error=\"library_load_failed\""
        ),
        "{text}"
    );
    std::fs::copy(support::fake_library(), &library).unwrap();
    exporter.wait_for(SETTLE, "NVML to be opened", |t| {
        value(t, "nvidia_gpu_nvml_up") == Some(1.0)
            && value(t, &format!("nvidia_gpu_up{{{T4}}}")) == Some(1.0)
    });
    assert_eq!(ready(), Some(200), "ready once NVML answers");
}

#[test]
fn the_library_is_found_on_the_loaders_search_path_by_default() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        support::fake_library(),
        dir.path().join("libnvidia-ml.so.1"),
    )
    .unwrap();
    // The default --nvml.library-path is the bare name libnvidia-ml.so.1.
    let exporter = Exporter::start_in(dir, &fleet(), Path::new("libnvidia-ml.so.1"), &[]);
    let text = exporter.metrics();
    assert_eq!(value(&text, "nvidia_gpu_nvml_up"), Some(1.0), "{text}");
    assert_eq!(value(&text, "nvidia_gpu_devices"), Some(3.0));
    // The GPU families come from a collector the registry runs, timed and checked.
    assert_eq!(
        value(&text, "gpu_scrape_collector_success{collector=\"gpu\"}"),
        Some(1.0)
    );
    assert!(has(
        &text,
        "gpu_scrape_collector_duration_seconds",
        "collector=\"gpu\""
    ));
}

#[test]
fn a_driver_that_is_not_loaded_is_retried_with_backoff() {
    let mut fixture = fleet();
    fixture["init_error"] = json!(9);
    let exporter = Exporter::start(&fixture, &[]);
    let text = exporter.metrics();
    assert_eq!(value(&text, "nvidia_gpu_nvml_up"), Some(0.0), "{text}");
    assert!(
        has(
            &text,
            "nvidia_gpu_collect_errors_total",
            "error=\"driver_not_loaded\""
        ),
        "{text}"
    );
    fixture.as_object_mut().unwrap().remove("init_error");
    exporter.rewrite(&fixture);
    exporter.wait_for(SETTLE, "NVML to be opened", |t| {
        value(t, "nvidia_gpu_nvml_up") == Some(1.0)
    });
}

#[test]
fn functions_an_old_driver_lacks_are_skipped_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let library = support::library_without(
        dir.path(),
        &[
            "nvmlDeviceGetMemoryInfo_v2",
            "nvmlDeviceGetTotalEnergyConsumption",
        ],
    );
    let exporter = Exporter::start_in(dir, &fleet(), &library, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let text = exporter.metrics();
    // Memory from version 1 of the call, where reserved memory counts as used.
    assert_eq!(
        value(&text, &format!("nvidia_gpu_memory_used_bytes{{{H100}}}")),
        Some(62_277_025_792.0 + 560_988_160.0),
        "{text}"
    );
    assert!(
        !text.contains("nvidia_gpu_memory_reserved_bytes{"),
        "{text}"
    );
    assert!(
        !text.contains("nvidia_gpu_energy_consumption_joules_total{"),
        "{text}"
    );
    assert_eq!(
        value(&text, &format!("nvidia_gpu_temperature_celsius{{{T4}}}")),
        Some(31.0)
    );
    // One failure per GPU, however many cycles ran.
    let missing = "nvidia_gpu_collect_errors_total{call=\"nvmlDeviceGetTotalEnergyConsumption\",error=\"missing_symbol\"}";
    assert_eq!(value(&text, missing), Some(3.0), "{text}");
}

#[test]
fn a_gpu_added_or_removed_is_noticed() {
    let mut fixture = fleet();
    let exporter = Exporter::start(&fixture, &[]);
    fixture["devices"].as_array_mut().unwrap().truncate(2);
    exporter.rewrite(&fixture);
    let text = exporter.wait_for(SETTLE, "two GPUs", |t| {
        value(t, "nvidia_gpu_devices") == Some(2.0)
    });
    assert!(!text.contains(T4), "{text}");
}

#[test]
fn bad_flags_are_refused_before_starting() {
    let output = std::process::Command::new(support::EXPORTER)
        .arg("--collect.interval=0s")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--collect.interval"), "{stderr}");
}
