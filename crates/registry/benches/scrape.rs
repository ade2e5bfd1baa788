//! What the server adds to a scrape of a 1 000-series collector (goal: < 50 µs).
//!
//! `encode_1000_series` is the encoder alone on a written set (goal: ≤ 100 µs).
//! `collect_and_encode` is the work any exporter must do: run the collector through the
//! runner and encode the text. `http_scrape` is a whole scrape over loopback HTTP/1.1 with
//! keep-alive. The difference is what the server adds. `auth_cached_scrape` adds basic auth
//! with a cached bcrypt result, next to one `bcrypt_verify_cost10` for scale.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kiln_registry::{
    CollectError, Collector, Exporter, MetricSet, Runner, ScrapeContext, Selection, WebFlags,
    build_info,
    metrics::{Format, encode},
};

struct Series(usize);

impl Collector for Series {
    fn name(&self) -> &str {
        "series"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let series = out.gauge("bench_series", "One of many series.");
        let mut id = String::new();
        for i in 0..self.0 {
            use std::fmt::Write as _;
            id.clear();
            let _ = write!(id, "{i}");
            out.sample(series, &[("series", &id), ("zone", "a")], i as f64 * 1.5);
        }
        Ok(())
    }
}

fn scrape(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    let mut set = MetricSet::default();
    Series(1000)
        .collect(
            &ScrapeContext::with_budget(Duration::from_secs(1)),
            &mut set,
        )
        .unwrap();
    set.seal();
    let mut text = String::with_capacity(64 * 1024);
    for (name, format) in [
        ("encode_1000_series", Format::Text),
        ("encode_1000_series_openmetrics", Format::OpenMetrics),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                text.clear();
                encode(&[&set], format, &mut text);
                black_box(text.len())
            })
        });
    }

    let mut runner = Runner::new("bench");
    runner.register(Series(1000));
    c.bench_function("collect_and_encode_1000_series", |b| {
        b.to_async(&runtime).iter(|| async {
            let collected = runner
                .collect(
                    ScrapeContext::with_budget(Duration::from_secs(10)),
                    &Selection::All,
                )
                .await;
            let mut text = String::with_capacity(64 * 1024);
            collected.encode(Format::Text, &mut text);
            black_box(text.len())
        })
    });

    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "basic_auth_users:\n  bench: {}\n",
            bcrypt::hash("pw", 10).unwrap()
        ),
    )
    .unwrap();
    let plain_flags = WebFlags::from_args([
        "--web.listen-address=127.0.0.1:0",
        "--web.disable-exporter-metrics",
    ])
    .unwrap();
    let auth_flags = WebFlags::from_args([
        "--web.listen-address=127.0.0.1:0".to_owned(),
        "--web.disable-exporter-metrics".to_owned(),
        format!("--web.config.file={}", web.display()),
    ])
    .unwrap();
    let (plain, auth) = runtime.block_on(async {
        let start = |flags| {
            Exporter::new(build_info!("bench"), "bench", flags)
                .collector(Series(1000))
                .bind()
        };
        (
            start(plain_flags).await.unwrap(),
            start(auth_flags).await.unwrap(),
        )
    });
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let get = |url: String, authorization: Option<&'static str>| {
        let client = client.clone();
        async move {
            let mut request = http::Request::get(url);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = client
                .request(request.body(Empty::new()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            black_box(
                response
                    .into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes()
                    .len(),
            )
        }
    };
    let plain_url = format!("http://{}/metrics", plain.local_addrs()[0]);
    c.bench_function("http_scrape_1000_series", |b| {
        b.to_async(&runtime).iter(|| get(plain_url.clone(), None))
    });
    let auth_url = format!("http://{}/metrics", auth.local_addrs()[0]);
    // "bench:pw" in base64.
    c.bench_function("auth_cached_scrape_1000_series", |b| {
        b.to_async(&runtime)
            .iter(|| get(auth_url.clone(), Some("Basic YmVuY2g6cHc=")))
    });
    let hash = bcrypt::hash("pw", 10).unwrap();
    c.bench_function("bcrypt_verify_cost10", |b| {
        b.iter(|| bcrypt::verify(black_box("pw"), &hash).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = scrape
}
criterion_main!(benches);
