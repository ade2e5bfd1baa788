//! Checks exposition text the way `promtool check metrics` does (client_golang's promlint):
//! names in snake case, base units, `_total` on counters and only on counters, HELP on
//! every family — and, first, that the text parses at all. Every problem has a line.

use kiln_scraper::{Exposition, Format, MetricType, Violation};

/// One problem: where, which metric, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub metric: String,
    pub text: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.metric.is_empty() {
            write!(f, "line {}: {}", self.line, self.text)
        } else {
            write!(f, "line {}: {}: {}", self.line, self.metric, self.text)
        }
    }
}

/// Units that have a base unit Prometheus prefers, and that base unit.
const NON_BASE_UNITS: &[(&str, &str)] = &[
    ("milliseconds", "seconds"),
    ("microseconds", "seconds"),
    ("nanoseconds", "seconds"),
    ("minutes", "seconds"),
    ("hours", "seconds"),
    ("days", "seconds"),
    ("weeks", "seconds"),
    ("bits", "bytes"),
    ("kilobytes", "bytes"),
    ("megabytes", "bytes"),
    ("gigabytes", "bytes"),
    ("terabytes", "bytes"),
    ("kibibytes", "bytes"),
    ("mebibytes", "bytes"),
    ("gibibytes", "bytes"),
    ("fahrenheit", "celsius"),
    ("centimeters", "meters"),
    ("millimeters", "meters"),
    ("kilometers", "meters"),
    ("milliwatts", "watts"),
    ("kilowatts", "watts"),
    ("millijoules", "joules"),
    ("kilojoules", "joules"),
    ("percent", "ratio"),
];

/// Abbreviations that should be spelt out.
const ABBREVIATIONS: &[&str] = &[
    "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d",
];

/// Turns parse violations into problems.
pub fn from_violations(violations: &[Violation]) -> Vec<Problem> {
    violations
        .iter()
        .map(|v| Problem {
            line: v.line,
            metric: String::new(),
            text: v.message.clone(),
        })
        .collect()
}

/// Every naming and metadata problem of `exposition`, read in `format`, in line order.
pub fn lint(exposition: &Exposition<'_>, format: Format) -> Vec<Problem> {
    let mut problems = Vec::new();
    for family in &exposition.families {
        let name = family.name;
        let mut report = |text: String| {
            problems.push(Problem {
                line: family.line,
                metric: name.to_owned(),
                text,
            })
        };
        if family.help.as_deref().is_none_or(str::is_empty) {
            report("no help text".into());
        }
        if camel_case(name) {
            report("metric names should be written in 'snake_case' not 'camelCase'".into());
        }
        let counter = family.kind == MetricType::Counter;
        // OpenMetrics names a counter's family without `_total` and puts the suffix on its
        // samples, so there the samples are what must carry it.
        let counted = match format {
            Format::Text => name.ends_with("_total"),
            Format::OpenMetrics => family
                .samples
                .iter()
                .filter(|s| !s.name.ends_with("_created"))
                .all(|s| s.name.ends_with("_total")),
        };
        if counter && !counted {
            report("counter metrics should have \"_total\" suffix".into());
        }
        if !counter && name.ends_with("_total") {
            report("non-counter metrics should not have \"_total\" suffix".into());
        }
        if !matches!(
            family.kind,
            MetricType::Histogram | MetricType::Summary | MetricType::GaugeHistogram
        ) {
            // An OpenMetrics counter's samples, not its family, carry the name as the text
            // format writes it (`…_count_total` does not end in `_count`).
            let written = match (format, counter) {
                (Format::OpenMetrics, true) => format!("{name}_total"),
                _ => name.to_owned(),
            };
            for suffix in ["_count", "_sum", "_bucket"] {
                if written.ends_with(suffix) {
                    report(format!(
                        "non-histogram and non-summary metrics should not have \"{suffix}\" suffix"
                    ));
                }
            }
        }
        let words: Vec<&str> = name.split('_').collect();
        for (unit, base) in NON_BASE_UNITS {
            if words.iter().any(|w| w.eq_ignore_ascii_case(unit)) {
                report(format!("use base unit \"{base}\" instead of \"{unit}\""));
            }
        }
        if words.iter().skip(1).any(|w| ABBREVIATIONS.contains(w)) {
            report("metric names should not contain abbreviated units".into());
        }
        for kind in ["counter", "gauge", "histogram", "summary", "untyped"] {
            if words.iter().skip(1).any(|w| *w == kind) {
                report(format!("metric name should not include type '{kind}'"));
            }
        }
        let mut camel_labels: Vec<&str> = family
            .samples
            .iter()
            .flat_map(|s| s.labels.iter().map(|l| l.name))
            .filter(|n| camel_case(n))
            .collect();
        camel_labels.sort_unstable();
        camel_labels.dedup();
        if !camel_labels.is_empty() {
            report("label names should be written in 'snake_case' not 'camelCase'".into());
        }
    }
    problems.sort_by_key(|p| p.line);
    problems
}

/// A lower-case letter followed by an upper-case one, as promlint defines camel case:
/// `heapUsed` is, `node_memory_Active_bytes` is not.
fn camel_case(name: &str) -> bool {
    name.as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        lint(&kiln_scraper::parse(text).unwrap(), Format::Text)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn openmetrics_counters_carry_total_on_their_samples() {
        let om = |text: &str| {
            let parsed = kiln_scraper::parse_with(text, Format::OpenMetrics);
            assert!(parsed.violations.is_empty(), "{:?}", parsed.violations);
            lint(&parsed.exposition, Format::OpenMetrics)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        let clean = "# HELP requests Requests.\n# TYPE requests counter\nrequests_total 1\nrequests_created 1.7e9\n\
                     # HELP flow_limit_count Flows.\n# TYPE flow_limit_count counter\nflow_limit_count_total 1\n# EOF\n";
        assert_eq!(om(clean), Vec::<String>::new());
    }

    #[test]
    fn capitals_after_an_underscore_are_not_camel_case() {
        assert!(!camel_case("node_memory_Active_bytes"));
        assert!(camel_case("node_memory_MemTotal_bytes"));
    }

    #[test]
    fn clean_text_has_no_problems() {
        let text = "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\nhttp_requests_total 1\n\
                    # HELP rpc_seconds Latency.\n# TYPE rpc_seconds histogram\nrpc_seconds_bucket{le=\"+Inf\"} 1\nrpc_seconds_sum 1\nrpc_seconds_count 1\n";
        assert_eq!(problems(text), Vec::<String>::new());
    }

    #[test]
    fn each_rule_names_the_line_and_metric() {
        let text = "# TYPE requests counter\nrequests 1\n\
                    # HELP latency_milliseconds L.\n# TYPE latency_milliseconds gauge\nlatency_milliseconds 1\n\
                    # HELP open_total O.\n# TYPE open_total gauge\nopen_total 1\n\
                    # HELP heapUsed H.\n# TYPE heapUsed gauge\nheapUsed{memPool=\"eden\"} 1\n\
                    # HELP size_kb S.\n# TYPE size_kb gauge\nsize_kb 1\n\
                    # HELP queue_gauge Q.\n# TYPE queue_gauge gauge\nqueue_gauge 1\n\
                    # HELP jobs_count J.\n# TYPE jobs_count gauge\njobs_count 1\n";
        assert_eq!(
            problems(text),
            [
                "line 1: requests: no help text",
                "line 1: requests: counter metrics should have \"_total\" suffix",
                "line 3: latency_milliseconds: use base unit \"seconds\" instead of \"milliseconds\"",
                "line 6: open_total: non-counter metrics should not have \"_total\" suffix",
                "line 9: heapUsed: metric names should be written in 'snake_case' not 'camelCase'",
                "line 9: heapUsed: label names should be written in 'snake_case' not 'camelCase'",
                "line 12: size_kb: metric names should not contain abbreviated units",
                "line 15: queue_gauge: metric name should not include type 'gauge'",
                "line 18: jobs_count: non-histogram and non-summary metrics should not have \"_count\" suffix",
            ]
        );
    }
}
