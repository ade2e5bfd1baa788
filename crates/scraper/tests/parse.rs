//! The parser against real captures and a corpus of broken inputs, plus property tests.

#![allow(clippy::unwrap_used)]

use kiln_scraper::{Format, MetricType, parse, parse_with};
use proptest::prelude::*;

fn testdata(name: &str) -> String {
    let path = format!("{}/../../testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn accepts_a_real_node_exporter_scrape() {
    let text = testdata("node_exporter_1.5.0_metrics.txt");
    let exposition = parse(&text).unwrap();
    assert_eq!(exposition.families.len(), 285);
    assert_eq!(exposition.samples().count(), 509);
    let load = exposition.family("node_load1").unwrap();
    assert_eq!(load.kind, MetricType::Gauge);
    assert_eq!(load.help.as_deref(), Some("1m load average."));
    let gc = exposition.family("go_gc_duration_seconds").unwrap();
    assert_eq!(gc.kind, MetricType::Summary);
    assert!(
        gc.samples
            .iter()
            .any(|s| s.label("quantile") == Some("0.5"))
    );
    assert!(
        exposition
            .value("node_scrape_collector_success", &[("collector", "cpu")])
            .is_some()
    );
}

#[test]
fn accepts_a_real_smokeping_prober_scrape_with_histograms() {
    let text = testdata("smokeping_prober_metrics.txt");
    let exposition = parse(&text).unwrap();
    let histogram = exposition
        .families
        .iter()
        .find(|f| f.kind == MetricType::Histogram)
        .expect("smokeping_prober serves histograms");
    assert!(
        histogram
            .samples
            .iter()
            .any(|s| s.label("le") == Some("+Inf"))
    );
}

#[test]
fn values_escapes_and_timestamps() {
    let text = "# HELP m A \\\\ help\\nline.\n# TYPE m gauge\n\
                m{a=\"q\\\"x\\\\y\\nz\",b=\"\"} -1.5e3 1700000000000\n\
                m{a=\"2\"} NaN\nm{a=\"3\"} +Inf\nm{a=\"4\"} -Inf\n";
    let exposition = parse(text).unwrap();
    let family = &exposition.families[0];
    assert_eq!(family.help.as_deref(), Some("A \\ help\nline."));
    let first = &family.samples[0];
    assert_eq!(first.label("a"), Some("q\"x\\y\nz"));
    assert_eq!(first.label("b"), Some(""));
    assert_eq!(first.value, -1500.0);
    assert_eq!(first.timestamp_ms, Some(1_700_000_000_000));
    assert!(family.samples[1].value.is_nan());
    assert_eq!(family.samples[2].value, f64::INFINITY);
    assert_eq!(family.samples[3].value, f64::NEG_INFINITY);
}

/// Each broken input with the exact (line, message) the parser must report.
const BROKEN: &[(&str, &str, usize, &str)] = &[
    (
        "duplicate series",
        "a 1\na 2\n",
        2,
        "duplicate series a, first seen at line 1",
    ),
    (
        "duplicate series with labels in another order",
        "# TYPE a gauge\na{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n",
        3,
        "duplicate series a{y=\"2\",x=\"1\"}, first seen at line 2",
    ),
    (
        "bad escape in label",
        "a{x=\"\\t\"} 1\n",
        1,
        "in label \"x\": invalid escape sequence '\\t'",
    ),
    (
        "bad escape in help",
        "# HELP a x\\y\n",
        1,
        "in HELP of \"a\": invalid escape sequence '\\y'",
    ),
    (
        "unterminated label value",
        "a{x=\"1} 1\n",
        1,
        "unterminated value of label \"x\"",
    ),
    (
        "unterminated label set",
        "a{x=\"1\" 1\n",
        1,
        "expected ',' or '}' after the value of label \"x\"",
    ),
    (
        "missing value",
        "a{x=\"1\"}\n",
        1,
        "sample \"a\" has no value",
    ),
    ("bad value", "a 1,5\n", 1, "invalid value \"1,5\" for \"a\""),
    (
        "bad timestamp",
        "a 1 12.5\n",
        1,
        "invalid timestamp \"12.5\" for \"a\"",
    ),
    (
        "trailing text",
        "a 1 2 3\n",
        1,
        "unexpected text \"3\" after the sample",
    ),
    (
        "invalid metric name",
        "1a 1\n",
        1,
        "invalid metric name \"1a\"",
    ),
    (
        "invalid character in name",
        "a-b 1\n",
        1,
        "invalid character '-' in metric name",
    ),
    (
        "invalid label name",
        "a{1x=\"1\"} 1\n",
        1,
        "expected a label name at column 3, found '1'",
    ),
    (
        "duplicate label",
        "a{x=\"1\",x=\"2\"} 1\n",
        1,
        "duplicate label name \"x\"",
    ),
    (
        "reserved label",
        "a{__name__=\"b\"} 1\n",
        1,
        "label name \"__name__\" is reserved (starts with __)",
    ),
    (
        "unknown type",
        "# TYPE a countr\n",
        1,
        "unknown metric type \"countr\" for \"a\"",
    ),
    (
        "second TYPE",
        "# TYPE a gauge\n# TYPE a gauge\n",
        2,
        "second TYPE line for metric name \"a\"",
    ),
    (
        "second HELP",
        "# HELP a x\n# HELP a y\n",
        2,
        "second HELP line for metric name \"a\"",
    ),
    (
        "TYPE after samples",
        "a 1\n# TYPE a gauge\n",
        2,
        "TYPE line for \"a\" after its samples",
    ),
    (
        "family split in two",
        "a 1\nb 1\na{x=\"1\"} 2\n",
        3,
        "sample \"a\" is separated from the rest of family \"a\", which started at line 1",
    ),
    (
        "HELP for an earlier family",
        "a 1\nb 1\n# HELP a late\n",
        3,
        "HELP line for \"a\", whose family already appeared at line 1",
    ),
    (
        "HELP without name",
        "# HELP\n",
        1,
        "HELP line without a metric name",
    ),
    (
        "invalid name in TYPE",
        "# TYPE a.b gauge\n",
        1,
        "invalid metric name \"a.b\" in TYPE line",
    ),
    (
        "histogram bucket without le",
        "# TYPE h histogram\nh_bucket 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        2,
        "histogram bucket \"h_bucket\" has no \"le\" label",
    ),
    (
        "histogram without +Inf",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        2,
        "histogram \"h\" has a series without an le=\"+Inf\" bucket",
    ),
    (
        "histogram buckets decrease",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 3\nh_bucket{le=\"+Inf\"} 5\nh_sum 1\nh_count 5\n",
        3,
        "histogram \"h\" bucket counts decrease from le=1 to le=2",
    ),
    (
        "bare histogram sample",
        "# TYPE h histogram\nh 1\n",
        2,
        "histogram \"h\" sample needs a _bucket, _sum or _count suffix",
    ),
    (
        "summary without quantile",
        "# TYPE s summary\ns 1\n",
        2,
        "summary \"s\" sample has no \"quantile\" label",
    ),
    (
        "expected name",
        "{x=\"1\"} 1\n",
        1,
        "expected a metric name, found '{'",
    ),
];

#[test]
fn rejects_broken_inputs_with_precise_messages() {
    for (what, text, line, message) in BROKEN {
        let error = parse(text).expect_err(what);
        let found: Vec<_> = error
            .violations
            .iter()
            .map(|v| (v.line, v.message.as_str()))
            .collect();
        assert!(
            found.contains(&(*line, *message)),
            "{what}: expected line {line}: {message}\n   got {found:?}"
        );
    }
}

#[test]
fn reports_every_violation_not_only_the_first() {
    let error = parse("a 1\nb x\nc{ 1\nd 1\nd 1\n").unwrap_err();
    let lines: Vec<_> = error.violations.iter().map(|v| v.line).collect();
    assert_eq!(lines, [2, 3, 5]);
    assert_eq!(
        error.to_string().lines().next(),
        Some("line 2: invalid value \"x\" for \"b\"")
    );
}

#[test]
fn lenient_parse_keeps_the_good_lines() {
    let parsed = parse_with("a 1\nbroken{\nb 2\n", Format::Text);
    assert_eq!(parsed.violations.len(), 1);
    assert_eq!(parsed.exposition.samples().count(), 2);
}

#[test]
fn openmetrics_counters_units_exemplars_and_eof() {
    let text = "# TYPE req_seconds counter\n# UNIT req_seconds seconds\n\
                # HELP req_seconds Time \\\"served\\\".\n\
                req_seconds_total{code=\"200\"} 10 # {trace_id=\"abc\"} 1.0 1700000000.5\n\
                req_seconds_created{code=\"200\"} 1700000000\n\
                # TYPE build info\nbuild_info{version=\"1\"} 1\n# EOF\n";
    let parsed = parse_with(text, Format::OpenMetrics);
    let found: Vec<_> = parsed.violations.iter().map(|v| v.to_string()).collect();
    assert_eq!(found, Vec::<String>::new());
    let req = parsed.exposition.family("req_seconds").unwrap();
    assert_eq!(req.kind, MetricType::Counter);
    assert_eq!(req.unit, Some("seconds"));
    assert_eq!(req.help.as_deref(), Some("Time \"served\"."));
    assert_eq!(req.samples.len(), 2);
    let bad_unit = parse_with(
        "# TYPE a_bytes gauge\n# UNIT a_bytes seconds\n# EOF\n",
        Format::OpenMetrics,
    );
    assert_eq!(
        bad_unit.violations[0].message,
        "unit \"seconds\" is not a suffix of the metric name \"a_bytes\""
    );
    assert_eq!(
        parsed.exposition.family("build").unwrap().kind,
        MetricType::Info
    );
}

#[test]
fn openmetrics_requires_eof_and_nothing_after_it() {
    let missing = parse_with("a 1\n", Format::OpenMetrics);
    assert_eq!(missing.violations[0].message, "missing # EOF at the end");
    let after = parse_with("a 1\n# EOF\nb 2\n", Format::OpenMetrics);
    assert_eq!(after.violations[0].line, 3);
    assert_eq!(after.violations[0].message, "content after # EOF");
    let blank = parse_with("a 1\n\n# EOF\n", Format::OpenMetrics);
    assert_eq!(blank.violations[0].line, 2);
}

#[test]
fn format_follows_the_content_type() {
    assert_eq!(
        Format::from_content_type("application/openmetrics-text; version=1.0.0"),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::from_content_type("text/plain; version=0.0.4"),
        Format::Text
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary text never panics the parser, in either format.
    #[test]
    fn never_panics_on_arbitrary_text(text in "\\PC*") {
        let _ = parse_with(&text, Format::Text);
        let _ = parse_with(&text, Format::OpenMetrics);
    }

    /// Text made of the format's own tokens never panics it either (reaches deeper states).
    #[test]
    fn never_panics_on_token_soup(parts in prop::collection::vec(
        prop::sample::select(vec![
            "# HELP ", "# TYPE ", "# UNIT ", "# EOF", "\n", " ", "{", "}", "=", "\"", "\\", ",",
            "a", "a_bucket", "a_sum", "a_total", "le", "quantile", "1", "+Inf", "NaN", "-",
            "histogram", "summary", "counter", "é", "\t", "\r", "#",
        ]), 0..60)) {
        let text: String = parts.concat();
        let _ = parse_with(&text, Format::Text);
        let _ = parse_with(&text, Format::OpenMetrics);
    }

    /// What the `prometheus` crate's encoder writes, we read back exactly.
    #[test]
    fn reads_back_what_the_prometheus_encoder_writes(
        series in prop::collection::btree_map("[a-z]{1,8}", (-1e12f64..1e12, "\\PC{0,12}"), 1..20)
    ) {
        let registry = prometheus::Registry::new();
        let gauges = prometheus::GaugeVec::new(
            prometheus::Opts::new("prop_value", "Generated \\ values\nover lines."),
            &["id", "text"],
        ).unwrap();
        registry.register(Box::new(gauges.clone())).unwrap();
        for (id, (value, label)) in &series {
            gauges.with_label_values(&[id.as_str(), label.as_str()]).set(*value);
        }
        let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
        let exposition = parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let family = exposition.family("prop_value").unwrap();
        prop_assert_eq!(family.help.as_deref(), Some("Generated \\ values\nover lines."));
        prop_assert_eq!(family.samples.len(), series.len());
        for (id, (value, label)) in &series {
            prop_assert_eq!(exposition.value("prop_value", &[("id", id), ("text", label)]), Some(*value));
        }
    }
}
