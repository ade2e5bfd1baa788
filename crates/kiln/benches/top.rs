//! `kiln top`'s per-scrape and per-frame costs: reading a node exporter's and a GPU
//! exporter's answer, and drawing a fleet of 160 hosts (40 with eight GPUs each, 200
//! targets) into a 200×60 terminal.
//!
//! `scripts/bench/kiln-top.sh` measures the whole process against 200 live targets.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kiln::top::app::App;
use kiln::top::fleet::{Answer, Fleet, TargetId};
use kiln::top::reading::Reading;
use kiln::top::render::Screen;
use kiln::top::targets::HostSpec;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn capture(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn read(text: &str) -> Reading {
    Reading::from_text(text, kiln_scraper::Format::Text)
}

/// 160 hosts: every one with a node exporter, every fourth with a GPU exporter too.
fn fleet(node: &Reading, gpu: &Reading) -> Fleet {
    let specs: Vec<HostSpec> = (0..160)
        .map(|n| HostSpec {
            name: format!("ip-10-203-{}-{}.ec2.internal", n / 250, n % 250),
            urls: if n % 4 == 0 {
                vec![
                    format!("http://h{n}:9100/metrics"),
                    format!("http://h{n}:9445/metrics"),
                ]
            } else {
                vec![format!("http://h{n}:9100/metrics")]
            },
        })
        .collect();
    let mut fleet = Fleet::new(&specs);
    let start = Instant::now();
    for round in 0u32..2 {
        for (id, url) in fleet.urls() {
            let mut reading = if url.ends_with(":9445/metrics") {
                gpu.clone()
            } else {
                node.clone()
            };
            if let Some(node) = &mut reading.node {
                node.cpu_busy_seconds += f64::from(round) * 1.5;
                node.cpu_total_seconds += f64::from(round) * 4.0;
            }
            fleet.record(Answer {
                id,
                outcome: Ok(reading),
                at: start + Duration::from_secs(2 * u64::from(round)),
                took: Duration::from_millis(3),
            });
        }
    }
    fleet
}

fn top(c: &mut Criterion) {
    let node_text = capture("testdata/node_exporter_1.5.0_metrics.txt");
    let gpu_text = capture("crates/gpu/tests/fixtures/fleet.metrics");
    c.bench_function("top/read node exporter answer", |b| {
        b.iter(|| read(black_box(&node_text)));
    });
    c.bench_function("top/read GPU exporter answer", |b| {
        b.iter(|| read(black_box(&gpu_text)));
    });

    let node = read(&node_text);
    let mut gpu = read(&gpu_text);
    // Eight GPUs, as on a p4d or p5 instance.
    let board = gpu.gpus[0].clone();
    gpu.gpus = (0..8)
        .map(|i| {
            let mut g = board.clone();
            g.index = i.to_string();
            g
        })
        .collect();
    let mut fleet = fleet(&node, &gpu);
    let app = App::default();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    c.bench_function("top/draw 160 hosts, 320 GPUs", |b| {
        b.iter(|| {
            terminal
                .draw(|frame| {
                    let screen = Screen {
                        fleet: &fleet,
                        app: &app,
                        refresh: Duration::from_secs(2),
                        interactive: true,
                    };
                    frame.render_widget(screen, frame.area());
                })
                .unwrap();
        });
    });
    let answer = Answer {
        id: TargetId { host: 1, target: 0 },
        outcome: Ok(node.clone()),
        at: Instant::now(),
        took: Duration::from_millis(3),
    };
    c.bench_function("top/record one answer", |b| {
        b.iter(|| fleet.record(black_box(answer.clone())));
    });
}

criterion_group!(benches, top);
criterion_main!(benches);
