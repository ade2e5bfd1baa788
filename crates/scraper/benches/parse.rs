//! Parser throughput (goal: ≥ 100 MB/s of exposition text on one core).

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn node_exporter_capture() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/node_exporter_1.5.0_metrics.txt"
    );
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A Graphite-bridge-sized exposition: 20 families of 5 000 labelled series each.
fn synthetic_large() -> String {
    let mut text = String::new();
    for family in 0..20 {
        text.push_str(&format!(
            "# HELP spark_metric_{family} Graphite metric spark.*.executor.metric{family}.\n\
             # TYPE spark_metric_{family} gauge\n"
        ));
        for series in 0..5000 {
            text.push_str(&format!(
                "spark_metric_{family}{{application=\"app-20261121-{series:04}\",executor_id=\"{}\",qty=\"count\"}} {}\n",
                series % 64,
                series as f64 * 1.5
            ));
        }
    }
    text
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, text) in [
        ("node_exporter_1.5.0", node_exporter_capture()),
        ("synthetic_100k_series", synthetic_large()),
    ] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| kiln_scraper::parse(black_box(&text)).map(|e| e.families.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
