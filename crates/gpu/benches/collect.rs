//! One collection cycle of eight GPUs on the fake driver, and serving a scrape from its
//! snapshot. The cycle's time includes the fake library's own (small) time, so it bounds
//! the exporter's overhead from above.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kiln_gpu::collectors::Options;
use kiln_gpu::exposition::GpuMetrics;
use kiln_gpu::worker::{Settings, Shared, Worker};
use kiln_registry::metrics::{Format, encode};
use kiln_registry::{Collector, MetricSet, ScrapeContext};

/// The fleet fixture's H100 eight times, with its processes and NVLinks.
fn eight_gpus(dir: &Path) -> PathBuf {
    let fleet = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fleet.json");
    let mut fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fleet).unwrap()).unwrap();
    let h100 = fixture["devices"][0].clone();
    let devices: Vec<_> = (0..8)
        .map(|k| {
            let mut gpu = h100.clone();
            gpu["uuid"] = format!("GPU-5d3b1a52-6c2e-4f11-9a0e-0a1b2c3d4e5{k}").into();
            gpu["minor_number"] = k.into();
            gpu
        })
        .collect();
    fixture["devices"] = devices.into();
    let path = dir.join("eight.json");
    std::fs::write(&path, serde_json::to_vec(&fixture).unwrap()).unwrap();
    path
}

/// User and system CPU time of this process, all threads, from `/proc/self/stat`.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // USER_HZ, 100 on every Linux this runs on.
    ticks / 100.0
}

/// The fake driver reads its fixture's path from the environment, which a running program
/// cannot safely change; the benchmark therefore runs itself again with it set.
fn ensure_fixture_in_environment() {
    if std::env::var_os("FAKE_NVML_FIXTURE").is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(std::env::args_os().skip(1))
        .env("FAKE_NVML_FIXTURE", eight_gpus(dir.path()))
        .status()
        .unwrap();
    std::process::exit(status.code().unwrap_or(1));
}

fn benches(c: &mut Criterion) {
    ensure_fixture_in_environment();
    let shared = Arc::new(Shared::default());
    let settings = Settings {
        library: Some(kiln_test_support::fake_nvml_library()),
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
        xid_events: false,
        kmsg: None,
        options: Options {
            processes: true,
            pcie_throughput: false,
            procfs: "/proc".into(),
            gpm: true,
        },
    };
    let mut worker = Worker::new(settings.clone(), Arc::clone(&shared));
    worker.cycle();
    assert_eq!(
        shared.snapshot.load().gpus.len(),
        8,
        "the fake driver did not answer"
    );

    c.bench_function("gpu/collect_cycle_8_gpus", |b| b.iter(|| worker.cycle()));

    // The GPUs are read by threads of their own, in parallel, so a cycle's wall time hides
    // part of its cost; the process's CPU time over many cycles shows all of it.
    let cycles = 2000;
    let before = process_cpu_seconds();
    for _ in 0..cycles {
        worker.cycle();
    }
    let spent = process_cpu_seconds() - before;
    println!(
        "gpu/collect_cycle_8_gpus: CPU {:.1} µs per GPU per cycle ({cycles} cycles)",
        spent * 1e6 / f64::from(cycles * 8)
    );

    // The same without GPM: its share of the cycle.
    let mut plain = Worker::new(
        Settings {
            options: Options {
                gpm: false,
                ..settings.options.clone()
            },
            ..settings.clone()
        },
        Arc::new(Shared::default()),
    );
    plain.cycle();
    c.bench_function("gpu/collect_cycle_8_gpus_without_gpm", |b| {
        b.iter(|| plain.cycle())
    });
    drop(plain);

    let metrics = GpuMetrics::new(Arc::clone(&shared), Duration::from_secs(10));
    let ctx = ScrapeContext::with_budget(Duration::from_secs(3600));
    let mut set = MetricSet::default();
    let mut out = String::new();
    // What a scrape does with the collector: fill a reused set, seal it, encode it.
    let serve = |set: &mut MetricSet, out: &mut String| {
        set.clear();
        out.clear();
        metrics.collect(&ctx, set).unwrap();
        set.seal();
        encode(&[set], Format::Text, out);
    };
    serve(&mut set, &mut out);
    println!(
        "scrape body: {} bytes, {} lines",
        out.len(),
        out.lines().count()
    );
    c.bench_function("gpu/serve_scrape_8_gpus", |b| {
        b.iter(|| serve(&mut set, &mut out))
    });
    // The collector's part alone: the snapshot shared into the scrape's set.
    c.bench_function("gpu/snapshot_into_set_8_gpus", |b| {
        b.iter(|| {
            set.clear();
            metrics.collect(&ctx, &mut set).unwrap();
        })
    });
}

criterion_group!(name = group; config = Criterion::default().measurement_time(Duration::from_secs(5)); targets = benches);
criterion_main!(group);
