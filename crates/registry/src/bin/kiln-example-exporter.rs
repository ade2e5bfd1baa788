//! The smallest Kiln exporter: shows how an exporter is put together, and gives the tests
//! and benchmarks of kiln-registry a real binary to start.
//!
//! It serves `example_series{series="N"}` gauges (as many as `--example.series`) and an
//! `example_latency_seconds` histogram, and on request a collector that always fails and
//! one that never returns.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kiln_registry::{
    CollectError, Collector, Exporter, MetricSet, ScrapeContext, WebFlags, bootstrap, build_info,
};

/// An example exporter built on kiln-registry.
#[derive(Debug, Parser)]
#[command(name = "kiln-example-exporter", about)]
struct Cli {
    /// Number of series the `series` collector serves.
    #[arg(long = "example.series", default_value_t = 1000)]
    series: usize,

    /// Also register a collector that always fails.
    #[arg(long = "example.failing-collector")]
    failing: bool,

    /// Also register a collector that takes this many seconds (to exercise deadlines).
    #[arg(long = "example.slow-collector-seconds", value_name = "SECONDS")]
    slow: Option<f64>,

    #[command(flatten)]
    web: WebFlags,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    bootstrap::main(build_info!("kiln-example-exporter"), &cli.web, || {
        let mut exporter = Exporter::new(
            build_info!("kiln-example-exporter"),
            "example",
            cli.web.clone(),
        )
        .description("Example exporter")
        .default_listen_address(":9999")
        .collector(kiln_registry_example::Series(cli.series));
        if cli.failing {
            exporter = exporter.collector(kiln_registry_example::Failing);
        }
        if let Some(seconds) = cli.slow {
            exporter = exporter.collector(kiln_registry_example::Slow(Duration::from_secs_f64(
                seconds,
            )));
        }
        Ok(exporter)
    })
}

mod kiln_registry_example {
    use super::*;

    /// Serves `n` gauges.
    pub(crate) struct Series(pub(crate) usize);

    impl Collector for Series {
        fn name(&self) -> &str {
            "series"
        }

        fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
            let series = out.gauge("example_series", "One of many example series.");
            let mut id = String::new();
            for i in 0..self.0 {
                use std::fmt::Write as _;
                id.clear();
                let _ = write!(id, "{i}");
                out.sample(series, &[("series", &id)], i as f64);
            }
            let latency =
                out.histogram_family("example_latency_seconds", "How long example requests took.");
            out.histogram(latency, &[("route", "/")], &[(0.1, 3), (1.0, 5)], 1.75, 6);
            Ok(())
        }
    }

    /// Fails on every scrape.
    pub(crate) struct Failing;

    impl Collector for Failing {
        fn name(&self) -> &str {
            "failing"
        }

        fn collect(&self, _: &ScrapeContext, _: &mut MetricSet) -> Result<(), CollectError> {
            Err(CollectError::failed(
                "reading the example source",
                "it is always broken",
            ))
        }
    }

    /// Sleeps before answering.
    pub(crate) struct Slow(pub(crate) Duration);

    impl Collector for Slow {
        fn name(&self) -> &str {
            "slow"
        }

        fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
            std::thread::sleep(self.0);
            out.gauge_value(
                "example_slow_done",
                "Set when the slow collector finished.",
                1.0,
            );
            Ok(())
        }
    }
}
