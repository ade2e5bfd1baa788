//! Rule evaluation and probe rendering, measured.
//!
//! - `evaluate`: 50 000 Kafka attributes through 50 Kafka-style rules, cold (empty match
//!   cache), warm (cache filled by the previous scrape, new values), each with the cache in
//!   one shard per CPU as the exporter runs it and in one shard (one thread); and
//!   jmx_exporter's own algorithm (every rule's regex in turn, no cache) for comparison.
//! - `namenode`: a 2 MB NameNode `/jmx` answer, parsed, walked and written (all of a probe
//!   but the HTTP), with default rules and with the shipped NameNode rules.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use kiln_jmx::config::load_rules_file;
use kiln_jmx::json::{self, Value};
use kiln_jmx::rules::RuleSet;
use kiln_jmx::rules::cache::{MatchCache, evaluate_uncached};
use kiln_jmx::rules::evaluate::Outcome;
use kiln_jmx::shards::ShardedCache;
use kiln_jmx::walk::{Bean, Walker};

mod support;

fn jolokia_beans<'a>(document: &'a Value<'a>) -> Vec<Bean<'a>> {
    let mut beans = Vec::new();
    kiln_jmx::bridge::jolokia::beans(document, &["*:*"], &mut beans).unwrap_or_default();
    beans
}

fn evaluate(c: &mut Criterion) {
    let rules =
        load_rules_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/kafka-50-rules.yml"))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rules.rules.len(), 50);
    // 234 topics × 24 partitions: 49 982 attributes.
    let (first, attributes) = support::kafka_broker(234, 24, 1);
    let (second, _) = support::kafka_broker(234, 24, 2);
    assert!((49_000..52_000).contains(&attributes), "{attributes}");
    let first = json::parse(&first).unwrap_or(Value::Null);
    let second = json::parse(&second).unwrap_or(Value::Null);
    let scrapes = [jolokia_beans(&first), jolokia_beans(&second)];

    let mut group = c.benchmark_group("evaluate_50k_attributes_50_rules");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let cpus = ShardedCache::for_this_host(&rules).shards();
    for (label, shards) in [("", cpus), ("_one_thread", 1)] {
        group.bench_function(format!("cold{label}"), |b| {
            // The cache is dropped outside the timing: freeing 50 000 entries is not evaluation.
            b.iter_batched(
                || ShardedCache::new(&rules, shards),
                |cache| {
                    black_box(cache.walk(&rules, &scrapes[0]).0.len());
                    cache
                },
                BatchSize::PerIteration,
            );
        });
        // The second pass over names seen once: where their results are remembered.
        group.bench_function(format!("second{label}"), |b| {
            b.iter_batched(
                || {
                    let cache = ShardedCache::new(&rules, shards);
                    cache.walk(&rules, &scrapes[0]);
                    cache
                },
                |cache| {
                    black_box(cache.walk(&rules, &scrapes[1]).0.len());
                    cache
                },
                BatchSize::PerIteration,
            );
        });
        let cache = ShardedCache::new(&rules, shards);
        // Results are remembered from a bean's second answer on.
        cache.walk(&rules, &scrapes[0]);
        cache.walk(&rules, &scrapes[1]);
        let mut tick = 0;
        group.bench_function(format!("warm{label}"), |b| {
            b.iter(|| {
                tick += 1;
                black_box(cache.walk(&rules, &scrapes[tick % 2]).0.len())
            });
        });
    }
    group.bench_function("jmx_exporter_algorithm", |b| {
        b.iter(|| {
            // Every rule's regex in turn for every attribute, as jmx_exporter's loop does.
            let mut matched = 0;
            let mut walker_cache = MatchCache::new(&rules);
            let mut walker = Walker::new(&rules, &mut walker_cache);
            walker.for_each_attribute(&scrapes[0], |attribute| {
                if matches!(evaluate_uncached(&rules, attribute), Outcome::Matched(_)) {
                    matched += 1;
                }
            });
            black_box(matched)
        });
    });
    group.finish();
}

fn namenode(c: &mut Criterion) {
    let text = support::namenode(1);
    assert!(
        (1_800_000..2_600_000).contains(&text.len()),
        "{} bytes",
        text.len()
    );
    let default_rules = RuleSet::default_rules();
    let shipped = load_rules_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/emr/jmx/hadoop-namenode.yml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let shipped_0x = load_rules_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/emr/jmx/hadoop-namenode.yml"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .with_naming(kiln_jmx::rules::Naming::V0);
    let mut group = c.benchmark_group("namenode_2mb_probe");
    group.sample_size(20);
    for (name, rules) in [
        ("default_rules", &default_rules),
        ("namenode_rules", &shipped),
        ("namenode_rules_0x", &shipped_0x),
    ] {
        let cache = ShardedCache::for_this_host(rules);
        group.bench_function(name, |b| {
            b.iter(|| {
                let document = json::parse(&text).unwrap_or(Value::Null);
                let mut beans = Vec::new();
                kiln_jmx::bridge::hadoop::beans(&document, &mut beans).unwrap_or_default();
                let (samples, _) = cache.walk(rules, &beans);
                // What a probe does after the walk: the families, encoded as text.
                let mut exposition =
                    kiln_registry::Exposition::new(kiln_registry::metrics::Format::Text);
                let none = kiln_registry::MetricSet::default();
                kiln_jmx::families::write(
                    samples.into_rows(),
                    rules.naming,
                    &none,
                    &mut exposition,
                );
                black_box(exposition.finish().len())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, evaluate, namenode);
criterion_main!(benches);
