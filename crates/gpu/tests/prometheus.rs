//! The dcgm-compat recording rules: `promtool test rules` on their unit tests, and a real
//! Prometheus scraping kiln-gpu-exporter (on the fake driver) and evaluating them, so the
//! queries of dcgm-exporter's dashboard 12239 answer from our metrics.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kiln_test_support::Prometheus;
use support::{Exporter, fleet};

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus/rules")
}

#[test]
fn the_rules_pass_their_promtool_unit_tests() {
    let output = Command::new("promtool")
        .arg("test")
        .arg("rules")
        .arg(rules_dir().join("tests/dcgm-compat.test.yml"))
        .arg(rules_dir().join("tests/dcgm-compat-gpm.test.yml"))
        .output()
        .expect("promtool runs (scripts/test installs Debian's prometheus)");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn dashboard_12239_queries_answer_from_a_real_prometheus() {
    let exporter = Exporter::start(&fleet(), &[]);
    let rules = rules_dir().join("dcgm-compat.yml");
    let prometheus =
        Prometheus::scraping("gpu", &[format!("127.0.0.1:{}", exporter.port)], &[&rules]);
    // The panels' queries, with the dashboard's variables set to one host and GPU 0.
    let instance = format!("127.0.0.1:{}", exporter.port);
    let panels = [
        ("DCGM_FI_DEV_GPU_TEMP", 61.0),
        ("DCGM_FI_DEV_POWER_USAGE", 512.345),
        ("DCGM_FI_DEV_SM_CLOCK * 1000000", 1.98e9),
        ("DCGM_FI_DEV_GPU_UTIL", 87.0),
        ("DCGM_FI_DEV_FB_USED", 62_277_025_792.0 / 1_048_576.0),
    ];
    for (query, expected) in panels {
        let (metric, scale) = query.split_once(" * ").unwrap_or((query, ""));
        let expr = format!(
            "{metric}{{instance=~\"{instance}\",gpu=~\"0\"}}{}",
            if scale.is_empty() {
                String::new()
            } else {
                format!(" * {scale}")
            }
        );
        let result = prometheus.query_result(&expr);
        assert_eq!(result.as_array().unwrap().len(), 1, "{expr}: {result}");
        assert_eq!(result[0]["metric"]["gpu"], "0");
        let got: f64 = result[0]["value"][1].as_str().unwrap().parse().unwrap();
        assert!(
            (got - expected).abs() < 1e-6 * expected.abs().max(1.0),
            "{expr}: {got} != {expected}"
        );
    }
}

#[test]
fn gpm_and_xid_rules_answer_from_a_real_prometheus() {
    let exporter = Exporter::start(&fleet(), &[]);
    let rules = rules_dir().join("dcgm-compat.yml");
    let prometheus =
        Prometheus::scraping("gpu", &[format!("127.0.0.1:{}", exporter.port)], &[&rules]);
    let instance = format!("127.0.0.1:{}", exporter.port);
    // Dashboard 12239's Tensor Core panel, and the other profiling names, for the H100.
    let expected = [
        ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", 0.935),
        ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 0.985),
        ("DCGM_FI_PROF_SM_ACTIVE", 0.965),
        ("DCGM_FI_PROF_DRAM_ACTIVE", 0.16),
        ("DCGM_FI_PROF_PCIE_TX_BYTES", 1144.5 * 1_048_576.0),
        ("DCGM_FI_PROF_PCIE_RX_BYTES", 3242.5 * 1_048_576.0),
        (
            "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
            (20480.0 + 19456.0) * 1_048_576.0 / 1e6,
        ),
        ("DCGM_FI_DEV_XID_ERRORS", 0.0),
    ];
    for (metric, want) in expected {
        let expr = format!("{metric}{{instance=\"{instance}\",gpu=\"0\"}}");
        let result = prometheus.query_result(&expr);
        assert_eq!(result.as_array().unwrap().len(), 1, "{expr}: {result}");
        let got: f64 = result[0]["value"][1].as_str().unwrap().parse().unwrap();
        assert!(
            (got - want).abs() < 1e-9 * want.abs().max(1.0),
            "{expr}: {got} != {want}"
        );
    }
}

#[test]
fn the_scrape_passes_promtool_lint() {
    use std::io::Write as _;
    let exporter = Exporter::start(
        &fleet(),
        &["--collect.processes", "--collect.pcie-throughput"],
    );
    let text = exporter.metrics();
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{complaints}");
    assert!(complaints.trim().is_empty(), "{complaints}");
}
