//! Per-line cost of the pipeline and the cost of a scrape of 100 000 series, with ten
//! mapping rules and Spark-shaped names. The end-to-end rates over real sockets, side by
//! side with upstream's published figure, come from `scripts/bench/graphite.sh`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kiln_graphite::cache::CacheType;
use kiln_graphite::mapping::Mapper;
use kiln_graphite::{Pipeline, Settings};
use kiln_registry::MetricSet;

#[path = "support/spark_names.rs"]
mod spark_names;
use spark_names::spark_names;

const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/ten-rules.yml");
const SERIES: usize = 100_000;

/// Name, labels and value of one rendered sample.
type Sample = (String, Vec<(String, String)>, f64);

fn pipeline() -> Arc<Pipeline> {
    Arc::new(
        Pipeline::new(Settings {
            mapping_file: Some(RULES.into()),
            strict_match: false,
            sample_expiry: std::time::Duration::from_secs(3600),
            cache_size: 1000,
            cache_type: CacheType::Lru,
            series_limit: 0,
            series_bytes_limit: 0,
        })
        .unwrap(),
    )
}

fn lines(names: &[String]) -> Vec<Vec<u8>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{n} {}.25 {now}", i % 977).into_bytes())
        .collect()
}

fn ingest(c: &mut Criterion) {
    let names = spark_names(SERIES);
    let lines = lines(&names);
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.sample_size(10);

    let known = pipeline();
    let mut worker = known.worker();
    lines.iter().for_each(|l| worker.line(l));
    worker.flush();
    group.bench_function("known_names_100k_lines", |b| {
        b.iter(|| {
            for line in &lines {
                worker.line(line);
            }
            worker.flush();
        });
    });
    group.bench_function("new_names_100k_lines", |b| {
        b.iter_batched(
            pipeline,
            |fresh| {
                let mut worker = fresh.worker();
                for line in &lines {
                    worker.line(line);
                }
                worker.flush();
                fresh
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();

    let mapper = Mapper::load(Path::new(RULES)).unwrap();
    let mut group = c.benchmark_group("mapping");
    group.throughput(Throughput::Elements(1));
    group.bench_function("glob_lookup", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % names.len();
            mapper.map(&names[i])
        });
    });
    group.bench_function("regex_fallback_lookup", |b| {
        b.iter(|| mapper.map("application_1.driver.LiveListenerBus.queue.appStatus.size"));
    });
    group.finish();

    let mut group = c.benchmark_group("scrape");
    group.sample_size(10);
    group.bench_function("store_render_100k_series", |b| {
        let mut out = String::new();
        b.iter(|| {
            out.clear();
            known.store().render(0.0, &[], &mut out)
        });
    });
    // The same series through the metric model and its encoder, for comparison.
    let mut rendered = String::new();
    known.store().render(0.0, &[], &mut rendered);
    let samples: Vec<Sample> = rendered
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let labels = labels
                .trim_end_matches('}')
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once("=\"").unwrap();
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels, value.parse().unwrap())
        })
        .collect();
    group.bench_function("metric_model_100k_series", |b| {
        b.iter(|| {
            let mut set = MetricSet::default();
            let mut current = String::new();
            let mut family = None;
            let mut pairs: Vec<(&str, &str)> = Vec::new();
            for (name, labels, value) in &samples {
                if *name != current || family.is_none() {
                    family = Some(set.gauge(name, &format!("Graphite metric {name}")));
                    current.clone_from(name);
                }
                pairs.clear();
                pairs.extend(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                set.sample(family.unwrap(), &pairs, *value);
            }
            set.seal();
            let mut out = String::new();
            kiln_registry::metrics::encode(&[&set], kiln_registry::metrics::Format::Text, &mut out);
            out
        });
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
