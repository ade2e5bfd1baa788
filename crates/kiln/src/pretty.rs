//! Prints an exposition for people, or as prom2json's JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kiln_scraper::{Exposition, Family, MetricType, Sample};
use serde_json::{Map, Value, json};

use crate::safe_text::for_terminal;

/// One family per block: name, type and help, then one line per sample with its labels.
pub fn human(exposition: &Exposition<'_>) -> String {
    let mut out = String::new();
    for family in &exposition.families {
        let _ = write!(
            out,
            "{} ({})",
            for_terminal(family.name),
            family.kind.as_str()
        );
        if let Some(help) = &family.help {
            let _ = write!(out, "  {}", for_terminal(help));
        }
        out.push('\n');
        for sample in &family.samples {
            out.push_str("  ");
            if sample.name != family.name {
                out.push_str(&for_terminal(&sample.name[family.name.len()..]));
                out.push(' ');
            }
            let labels: Vec<String> = sample
                .labels
                .iter()
                .map(|l| format!("{}={:?}", for_terminal(l.name), l.value))
                .collect();
            if !labels.is_empty() {
                let _ = write!(out, "{{{}}} ", labels.join(", "));
            }
            out.push_str(&number(sample.value));
            out.push('\n');
        }
    }
    out
}

/// prom2json's JSON: an array of families, each with its metrics; values are strings,
/// histograms carry `buckets`, summaries `quantiles`, both with `count` and `sum`.
pub fn json(exposition: &Exposition<'_>) -> Value {
    Value::Array(exposition.families.iter().map(family_json).collect())
}

fn family_json(family: &Family<'_>) -> Value {
    let kind = match family.kind {
        MetricType::Counter => "COUNTER",
        MetricType::Gauge => "GAUGE",
        MetricType::Histogram | MetricType::GaugeHistogram => "HISTOGRAM",
        MetricType::Summary => "SUMMARY",
        _ => "UNTYPED",
    };
    let metrics = match family.kind {
        MetricType::Histogram | MetricType::GaugeHistogram => grouped(family, "le", "buckets"),
        MetricType::Summary => grouped(family, "quantile", "quantiles"),
        _ => family
            .samples
            .iter()
            .map(|sample| {
                let mut metric = Map::new();
                if !sample.labels.is_empty() {
                    metric.insert("labels".into(), labels(sample, None));
                }
                metric.insert("value".into(), number(sample.value).into());
                Value::Object(metric)
            })
            .collect(),
    };
    json!({
        "name": family.name,
        "help": family.help.as_deref().unwrap_or(""),
        "type": kind,
        "metrics": metrics,
    })
}

/// Histogram or summary samples grouped by their labels (without `le` or `quantile`).
fn grouped(family: &Family<'_>, key: &str, field: &str) -> Vec<Value> {
    let mut groups: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut order = Vec::new();
    for sample in &family.samples {
        let labels = labels(sample, Some(key));
        let id = labels.to_string();
        let metric = groups.entry(id.clone()).or_insert_with(|| {
            order.push(id.clone());
            let mut metric = Map::new();
            if labels.as_object().is_some_and(|l| !l.is_empty()) {
                metric.insert("labels".into(), labels);
            }
            metric.insert(field.into(), Value::Object(Map::new()));
            metric
        });
        let suffix = &sample.name[family.name.len()..];
        match suffix {
            "_count" => {
                metric.insert("count".into(), number(sample.value).into());
            }
            "_sum" => {
                metric.insert("sum".into(), number(sample.value).into());
            }
            _ => {
                if let (Some(bound), Some(Value::Object(points))) =
                    (sample.label(key), metric.get_mut(field))
                {
                    points.insert(bound.into(), number(sample.value).into());
                }
            }
        }
    }
    order
        .into_iter()
        .filter_map(|id| groups.remove(&id))
        .map(Value::Object)
        .collect()
}

fn labels(sample: &Sample<'_>, except: Option<&str>) -> Value {
    Value::Object(
        sample
            .labels
            .iter()
            .filter(|l| Some(l.name) != except)
            .map(|l| (l.name.to_owned(), Value::String(l.value.to_string())))
            .collect(),
    )
}

/// A value as Prometheus writes it (Go's shortest `g` format: `1.027e+06`, `0.75`, `+Inf`).
fn number(value: f64) -> String {
    let mut text = String::new();
    kiln_registry::metrics::write_float(&mut text, value);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} 1027\n\
# HELP rpc_seconds RPC latency.\n# TYPE rpc_seconds histogram\nrpc_seconds_bucket{le=\"0.1\"} 3\nrpc_seconds_bucket{le=\"+Inf\"} 5\nrpc_seconds_sum 0.75\nrpc_seconds_count 5\n\
# TYPE up gauge\nup 1\n";

    #[test]
    fn json_is_shaped_as_prom2json_writes_it() {
        let exposition = kiln_scraper::parse(TEXT).unwrap();
        let value = json(&exposition);
        assert_eq!(
            value,
            json!([
                {"name": "http_requests_total", "help": "Requests.", "type": "COUNTER",
                 "metrics": [{"labels": {"code": "200"}, "value": "1027"}]},
                {"name": "rpc_seconds", "help": "RPC latency.", "type": "HISTOGRAM",
                 "metrics": [{"buckets": {"0.1": "3", "+Inf": "5"}, "sum": "0.75", "count": "5"}]},
                {"name": "up", "help": "", "type": "GAUGE", "metrics": [{"value": "1"}]}
            ])
        );
    }

    #[test]
    fn human_output_shows_type_help_suffixes_and_labels() {
        let exposition = kiln_scraper::parse(TEXT).unwrap();
        let text = human(&exposition);
        assert!(
            text.starts_with("http_requests_total (counter)  Requests.\n  {code=\"200\"} 1027\n"),
            "{text}"
        );
        assert!(text.contains("  _bucket {le=\"+Inf\"} 5\n"), "{text}");
        assert!(text.ends_with("up (gauge)\n  1\n"), "{text}");
    }
}
