//! GPM profiling metrics against the fake driver: values between two samples per cycle,
//! per GPU and per MIG GPU instance, and GPUs or drivers without GPM saying so once.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{A100, Exporter, H100, T4, fleet, has, value};

const SETTLE: Duration = Duration::from_secs(10);

#[test]
fn gpm_metrics_are_fractions_and_bytes_per_second_and_follow_the_driver() {
    let mut fixture = fleet();
    let exporter = Exporter::start(&fixture, &[]);
    let sm = format!("nvidia_gpu_prof_sm_active_ratio{{{H100}}}");
    let text = exporter.wait_for(SETTLE, "a second GPM sample", |t| value(t, &sm).is_some());
    let expected = [
        (format!("nvidia_gpu_prof_supported{{{H100}}}"), 1.0),
        (sm.clone(), 0.965),
        (
            format!("nvidia_gpu_prof_sm_occupancy_ratio{{{H100}}}"),
            0.415,
        ),
        (
            format!("nvidia_gpu_prof_graphics_engine_active_ratio{{{H100}}}"),
            0.985,
        ),
        (
            format!("nvidia_gpu_prof_pipe_active_ratio{{{H100},pipe=\"tensor\"}}"),
            0.935,
        ),
        (
            format!("nvidia_gpu_prof_pipe_active_ratio{{{H100},pipe=\"tensor_hmma\"}}"),
            0.935,
        ),
        (
            format!("nvidia_gpu_prof_pipe_active_ratio{{{H100},pipe=\"fp64\"}}"),
            0.0,
        ),
        (
            format!("nvidia_gpu_prof_pipe_active_ratio{{{H100},pipe=\"fp32\"}}"),
            0.045,
        ),
        (
            format!("nvidia_gpu_prof_pipe_active_ratio{{{H100},pipe=\"fp16\"}}"),
            0.005,
        ),
        (format!("nvidia_gpu_prof_dram_active_ratio{{{H100}}}"), 0.16),
        (
            format!("nvidia_gpu_prof_pcie_bytes_per_second{{{H100},direction=\"tx\"}}"),
            1144.5 * 1_048_576.0,
        ),
        (
            format!("nvidia_gpu_prof_pcie_bytes_per_second{{{H100},direction=\"rx\"}}"),
            3242.5 * 1_048_576.0,
        ),
        (
            format!("nvidia_gpu_prof_nvlink_bytes_per_second{{{H100},direction=\"tx\"}}"),
            20480.0 * 1_048_576.0,
        ),
    ];
    for (series, want) in &expected {
        assert_eq!(value(&text, series), Some(*want), "{series}\n{text}");
    }
    // GPUs without GPM (an A100, a T4) say so in one series, not in errors.
    for gpu in [A100, T4] {
        assert_eq!(
            value(&text, &format!("nvidia_gpu_prof_supported{{{gpu}}}")),
            Some(0.0)
        );
        assert!(
            !text.contains(&format!("nvidia_gpu_prof_sm_active_ratio{{{gpu}}}")),
            "{text}"
        );
    }
    assert!(
        !has(&text, "nvidia_gpu_collect_errors_total", "nvmlGpm"),
        "{text}"
    );
    // The driver's answer changes: the next cycles report it.
    fixture["devices"][0]["gpm"]["sm_util"] = json!(12.5);
    exporter.rewrite(&fixture);
    exporter.wait_for(SETTLE, "the new SM activity", |t| {
        value(t, &sm) == Some(0.125)
    });
}

#[test]
fn samples_are_freed_cycle_after_cycle() {
    // The fake driver refuses a 257th live sample; at 10 ms a cycle, a leak of one sample a
    // cycle would run into that within three seconds.
    let mut fixture = fleet();
    fixture["devices"].as_array_mut().unwrap().truncate(1);
    let exporter = Exporter::start(&fixture, &["--collect.interval=10ms"]);
    std::thread::sleep(Duration::from_secs(4));
    let text = exporter.metrics();
    assert!(
        !has(&text, "nvidia_gpu_collect_errors_total", "nvmlGpm"),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("nvidia_gpu_prof_dram_active_ratio{{{H100}}}")
        ),
        Some(0.16),
        "{text}"
    );
}

#[test]
fn each_mig_gpu_instance_has_its_own_gpm_metrics() {
    let mut fixture = fleet();
    fixture["devices"][0]["mig"] = json!({
        "current": true,
        "pending": true,
        "max_devices": 7,
        "devices": [
            {
                "uuid": "MIG-11111111-2222-5333-8444-555555555555",
                "name": "NVIDIA H100 80GB HBM3 MIG 3g.40gb",
                "gpu_instance_id": 2,
                "compute_instance_id": 0,
                "memory": {"total": 42949672960u64, "used": 1073741824},
                "gpm": {"sm_util": 75.0, "any_tensor_util": 50.0, "dram_bw_util": 25.0}
            },
            {
                "uuid": "MIG-66666666-7777-5888-9999-000000000000",
                "name": "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
                "gpu_instance_id": 9,
                "compute_instance_id": 0,
                "memory": {"total": 10737418240u64, "used": 0},
                "gpm": {"sm_util": 0.0}
            }
        ]
    });
    let exporter = Exporter::start(&fixture, &[]);
    let first = format!("nvidia_gpu_prof_sm_active_ratio{{{H100},gpu_instance_id=\"2\"}}");
    let text = exporter.wait_for(SETTLE, "per-instance GPM metrics", |t| {
        value(t, &first).is_some()
    });
    assert_eq!(value(&text, &first), Some(0.75), "{text}");
    assert_eq!(
        value(
            &text,
            &format!(
                "nvidia_gpu_prof_pipe_active_ratio{{{H100},gpu_instance_id=\"2\",pipe=\"tensor\"}}"
            )
        ),
        Some(0.5)
    );
    assert_eq!(
        value(
            &text,
            &format!("nvidia_gpu_prof_dram_active_ratio{{{H100},gpu_instance_id=\"2\"}}")
        ),
        Some(0.25)
    );
    assert_eq!(
        value(
            &text,
            &format!("nvidia_gpu_prof_sm_active_ratio{{{H100},gpu_instance_id=\"9\"}}")
        ),
        Some(0.0)
    );
    // The whole GPU's series carry no instance label.
    assert_eq!(
        value(&text, &format!("nvidia_gpu_prof_sm_active_ratio{{{H100}}}")),
        Some(0.965)
    );
    // An instance that goes away loses its series.
    fixture["devices"][0]["mig"]["devices"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    exporter.rewrite(&fixture);
    let gone = format!("nvidia_gpu_prof_sm_active_ratio{{{H100},gpu_instance_id=\"9\"}}");
    exporter.wait_for(SETTLE, "instance 9 to go", |t| {
        value(t, &gone).is_none() && value(t, &first) == Some(0.75)
    });
}

#[test]
fn a_driver_without_gpm_reports_no_support_once_per_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let library = support::library_without(
        dir.path(),
        &[
            "nvmlGpmQueryDeviceSupport",
            "nvmlGpmSampleGet",
            "nvmlGpmMetricsGet",
        ],
    );
    let exporter = Exporter::start_in(dir, &fleet(), &library, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let text = exporter.metrics();
    assert_eq!(
        value(&text, &format!("nvidia_gpu_prof_supported{{{H100}}}")),
        Some(0.0),
        "{text}"
    );
    assert!(!text.contains("nvidia_gpu_prof_sm_active_ratio{"), "{text}");
    let missing = "nvidia_gpu_collect_errors_total{call=\"nvmlGpmQueryDeviceSupport\",error=\"missing_symbol\"}";
    assert_eq!(value(&text, missing), Some(3.0), "once per GPU: {text}");
    assert_eq!(value(&text, &format!("nvidia_gpu_up{{{H100}}}")), Some(1.0));
}

#[test]
fn gpm_can_be_turned_off() {
    let exporter = Exporter::start(&fleet(), &["--no-collect.gpm"]);
    std::thread::sleep(Duration::from_millis(300));
    let text = exporter.metrics();
    assert!(!text.contains("nvidia_gpu_prof_"), "{text}");
}
