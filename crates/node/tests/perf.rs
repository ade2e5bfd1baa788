//! The perf collector on this machine's kernel: real `perf_event_open(2)` counters read by
//! the exporter binary. Software counters exist on every Linux kernel; hardware and cache
//! counters often do not in a virtual machine, and must then be left out without failing.
//! Opening counters of all processes needs root or `kernel.perf_event_paranoid` <= 0, as
//! the test suite runs.

#![allow(clippy::unwrap_used)]

mod support;

use kiln_test_support::value;
use support::Running;

fn perf(extra: &[&str]) -> Running {
    let mut args: Vec<String> = vec![
        "--collector.disable-defaults".into(),
        "--collector.perf".into(),
        "--collector.perf.cpus=0".into(),
        "--log.level=debug".into(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    Running::kiln(&args)
}

fn success(body: &str) -> Option<f64> {
    value(body, r#"node_scrape_collector_success{collector="perf"}"#)
}

#[test]
fn software_counters_count_and_missing_hardware_is_left_out() {
    let exporter = perf(&[]);
    let first = exporter.scrape();
    assert_eq!(success(&first), Some(1.0), "{first}");
    for (family, help) in [
        (
            "node_perf_context_switches_total",
            "Number of context switches",
        ),
        ("node_perf_page_faults_total", "Number of page faults"),
        (
            "node_perf_minor_faults_total",
            "Number of minor page faults",
        ),
        (
            "node_perf_major_faults_total",
            "Number of major page faults",
        ),
        (
            "node_perf_cpu_migrations_total",
            "Number of CPU process migrations",
        ),
    ] {
        assert!(
            first.contains(&format!(
                "# HELP {family} {help}\n# TYPE {family} counter\n"
            )),
            "{family}: {first}"
        );
        assert!(value(&first, &format!(r#"{family}{{cpu="0"}}"#)).is_some());
        // Only the CPU asked for.
        assert!(value(&first, &format!(r#"{family}{{cpu="1"}}"#)).is_none());
    }
    // Make CPU 0 switch tasks: short-lived sleepers pinned to it.
    for _ in 0..5 {
        let status = std::process::Command::new("taskset")
            .args(["-c", "0", "sleep", "0.01"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let second = exporter.scrape();
    let switches =
        |body: &str| value(body, r#"node_perf_context_switches_total{cpu="0"}"#).unwrap();
    assert!(switches(&second) > switches(&first), "{first}\n{second}");

    // Hardware counters are either reported or, where the kernel has none (a VM), left
    // out with a debug line naming the counter.
    let cycles = value(&second, r#"node_perf_cpucycles_total{cpu="0"}"#);
    let log = exporter.process.log_text();
    if cycles.is_none() {
        assert!(
            log.contains("cannot open the perf counter") && log.contains("CpuCycles"),
            "{log}"
        );
        assert!(!second.contains("node_perf_cpucycles_total"));
    }
}

#[test]
fn disabled_classes_and_chosen_profilers_limit_what_is_opened() {
    let exporter = perf(&[
        "--collector.perf.disable-hardware-profilers",
        "--collector.perf.disable-cache-profilers",
        "--collector.perf.software-profilers=ContextSwitch",
        "--collector.perf.software-profilers=NoSuchProfiler",
    ]);
    let body = exporter.scrape();
    assert_eq!(success(&body), Some(1.0));
    let families: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("node_perf_"))
        .collect();
    assert_eq!(families.len(), 1, "{body}");
    assert!(families[0].starts_with(r#"node_perf_context_switches_total{cpu="0"} "#));
    let log = exporter.process.log_text();
    assert!(log.contains("Unknown software profiler"), "{log}");
}

#[test]
fn a_tracepoint_is_counted_per_cpu_when_tracefs_has_it() {
    let id = std::path::Path::new("/sys/kernel/tracing/events/sched/sched_switch/id");
    if !id.exists() {
        // No tracefs here: the flag must then stop the exporter with a clear message.
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln-node-exporter"))
            .args([
                "--collector.perf",
                "--collector.perf.tracepoint=sched:sched_switch",
                "--web.listen-address=127.0.0.1:1",
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64));
        return;
    }
    let exporter = perf(&[
        "--collector.perf.disable-hardware-profilers",
        "--collector.perf.disable-cache-profilers",
        "--collector.perf.disable-software-profilers",
        "--collector.perf.tracepoint=sched:sched_switch",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let body = exporter.scrape();
    assert!(
        body.contains(
            "# HELP node_perf_sched_sched_switch Perf tracepoint sched:sched_switch\n\
             # TYPE node_perf_sched_sched_switch counter\n"
        ),
        "{body}"
    );
    assert!(value(&body, r#"node_perf_sched_sched_switch{cpu="0"}"#).unwrap() > 0.0);
}

#[test]
fn bad_cpu_lists_and_tracepoints_are_refused_at_start() {
    for (flag, named) in [
        ("--collector.perf.cpus=0-3:0", "collector.perf.cpus"),
        ("--collector.perf.cpus=zero", "collector.perf.cpus"),
        (
            "--collector.perf.tracepoint=sched",
            "collector.perf.tracepoint",
        ),
        (
            "--collector.perf.tracepoint=nosuchsubsystem:nosuchevent",
            "collector.perf.tracepoint",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln-node-exporter"))
            .args(["--collector.perf", flag, "--web.listen-address=127.0.0.1:1"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{flag}: {stderr}");
    }
}
