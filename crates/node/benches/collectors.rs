//! Time of one collection of each default collector against this host's /proc and /sys,
//! and of a whole scrape through the runner: what a Prometheus scrape costs in CPU.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kiln_node::{CollectorSet, NodeFlags};
use kiln_registry::metrics::Format;
use kiln_registry::{MetricSet, ScrapeContext, Selection};

fn default_set() -> CollectorSet {
    let flags = NodeFlags::parse_from(["bench"]);
    CollectorSet::from_flags(&flags).unwrap()
}

fn per_collector(c: &mut Criterion) {
    let set = default_set();
    let mut group = c.benchmark_group("collector");
    let mut out = MetricSet::default();
    for collector in set.collectors() {
        group.bench_function(collector.name(), |b| {
            b.iter(|| {
                out.clear();
                let ctx = ScrapeContext::new(Instant::now() + Duration::from_secs(10));
                collector.collect(&ctx, &mut out)
            })
        });
    }
    group.finish();
}

fn whole_scrape(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runner = default_set().into_runner();
    let mut text = String::new();
    c.bench_function("scrape/default_collectors", |b| {
        b.to_async(&runtime).iter(|| {
            text.clear();
            let runner = &runner;
            async move {
                let ctx = ScrapeContext::new(Instant::now() + Duration::from_secs(10));
                runner.collect(ctx, &Selection::All).await
            }
        })
    });
    let collected = runtime.block_on(runner.collect(
        ScrapeContext::new(Instant::now() + Duration::from_secs(10)),
        &Selection::All,
    ));
    c.bench_function("scrape/encode", |b| {
        b.iter(|| {
            text.clear();
            collected.encode(Format::Text, &mut text)
        })
    });
}

criterion_group!(benches, per_collector, whole_scrape);
criterion_main!(benches);
