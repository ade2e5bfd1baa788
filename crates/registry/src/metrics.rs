//! A small builder over the `prometheus` crate's metric model, so collectors build fresh
//! families on every scrape in a line or two each.

pub use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType, Quantile,
    Summary, Untyped,
};

/// Builds one [`MetricFamily`]: a name, HELP text, type and its samples.
///
/// Label pairs are sorted by name, as the Go client does, so output lines match the
/// upstream exporters byte for byte and golden files stay stable.
#[derive(Debug)]
pub struct FamilyBuilder {
    family: MetricFamily,
}

impl FamilyBuilder {
    /// A family of the given type.
    pub fn new(name: impl Into<String>, help: impl Into<String>, kind: MetricType) -> Self {
        let mut family = MetricFamily::default();
        family.set_name(name.into());
        family.set_help(help.into());
        family.set_field_type(kind);
        Self { family }
    }

    /// A gauge family.
    pub fn gauge(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(name, help, MetricType::GAUGE)
    }

    /// A counter family. The name should end in `_total`.
    pub fn counter(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(name, help, MetricType::COUNTER)
    }

    /// An untyped family, for values whose kind the source does not say.
    pub fn untyped(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(name, help, MetricType::UNTYPED)
    }

    /// A histogram family; add samples with [`FamilyBuilder::push_histogram`].
    pub fn histogram(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(name, help, MetricType::HISTOGRAM)
    }

    /// A summary family; add samples with [`FamilyBuilder::push_summary`].
    pub fn summary(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(name, help, MetricType::SUMMARY)
    }

    /// Adds a sample and returns the builder, for chains.
    pub fn sample(mut self, labels: &[(&str, &str)], value: f64) -> Self {
        self.push(labels, value);
        self
    }

    /// Adds a gauge, counter or untyped sample.
    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        let mut metric = Metric::from_label(label_pairs(labels));
        match self.family.get_field_type() {
            MetricType::COUNTER => {
                let mut counter = Counter::default();
                counter.set_value(value);
                metric.set_counter(counter);
            }
            MetricType::GAUGE => {
                let mut gauge = Gauge::default();
                gauge.set_value(value);
                metric.set_gauge(gauge);
            }
            _ => {
                // The plain model marks untyped as protobuf-only, but its text encoder
                // still writes it; Graphite and JMX values have no better type.
                #[allow(deprecated)]
                let untyped = {
                    let mut untyped = Untyped::default();
                    untyped.set_value(value);
                    untyped
                };
                #[allow(deprecated)]
                metric.set_untyped(untyped);
            }
        }
        self.family.mut_metric().push(metric);
    }

    /// Adds a histogram sample: cumulative `(upper bound, count)` buckets without `+Inf`
    /// (the encoder adds it from `count`), the sum and the count of observations.
    pub fn push_histogram(
        &mut self,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) {
        let mut histogram = Histogram::default();
        histogram.set_sample_sum(sum);
        histogram.set_sample_count(count);
        histogram.set_bucket(
            buckets
                .iter()
                .map(|&(upper_bound, cumulative)| {
                    let mut bucket = Bucket::default();
                    bucket.set_upper_bound(upper_bound);
                    bucket.set_cumulative_count(cumulative);
                    bucket
                })
                .collect(),
        );
        let mut metric = Metric::from_label(label_pairs(labels));
        metric.set_histogram(histogram);
        self.family.mut_metric().push(metric);
    }

    /// Adds a summary sample: `(quantile, value)` pairs, the sum and the count.
    pub fn push_summary(
        &mut self,
        labels: &[(&str, &str)],
        quantiles: &[(f64, f64)],
        sum: f64,
        count: u64,
    ) {
        let mut summary = Summary::default();
        summary.set_sample_sum(sum);
        summary.set_sample_count(count);
        summary.set_quantile(
            quantiles
                .iter()
                .map(|&(q, value)| {
                    let mut quantile = Quantile::default();
                    quantile.set_quantile(q);
                    quantile.set_value(value);
                    quantile
                })
                .collect(),
        );
        let mut metric = Metric::from_label(label_pairs(labels));
        metric.set_summary(summary);
        self.family.mut_metric().push(metric);
    }

    /// True when no sample was added; such a family is left out of the exposition.
    pub fn is_empty(&self) -> bool {
        self.family.get_metric().is_empty()
    }

    /// The finished family.
    pub fn build(self) -> MetricFamily {
        self.family
    }
}

fn label_pairs(labels: &[(&str, &str)]) -> Vec<LabelPair> {
    let mut pairs: Vec<LabelPair> = labels
        .iter()
        .map(|&(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_owned());
            pair.set_value(value.to_owned());
            pair
        })
        .collect();
    pairs.sort_by(|a, b| a.name().cmp(b.name()));
    pairs
}

/// Encodes families in the text format 0.0.4, byte for byte as the Go client writes it.
/// A family whose name is not a valid metric name is skipped (and its name returned), so
/// one bad family never blanks a whole scrape.
///
/// Written here rather than with the `prometheus` crate's encoder: that one panics on
/// untyped families (node_exporter's netstat and vmstat are untyped) and formats numbers
/// differently from Go, which would break byte-for-byte golden comparisons.
pub fn encode_text(families: &[MetricFamily], out: &mut String) -> Vec<String> {
    let mut refused = Vec::new();
    for family in families {
        if family.get_metric().is_empty() {
            continue;
        }
        if !valid_metric_name(family.name()) {
            refused.push(family.name().to_owned());
            continue;
        }
        encode_family(family, out);
    }
    refused
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn encode_family(family: &MetricFamily, out: &mut String) {
    let name = family.name();
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_into(out, family.help(), false);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push_str(match family.get_field_type() {
        MetricType::COUNTER => " counter\n",
        MetricType::GAUGE => " gauge\n",
        MetricType::HISTOGRAM => " histogram\n",
        MetricType::SUMMARY => " summary\n",
        MetricType::UNTYPED => " untyped\n",
    });
    for metric in family.get_metric() {
        match family.get_field_type() {
            MetricType::COUNTER => sample(
                out,
                name,
                "",
                metric,
                None,
                metric.get_counter().get_value(),
            ),
            MetricType::GAUGE => {
                sample(out, name, "", metric, None, metric.get_gauge().get_value())
            }
            #[allow(deprecated)]
            MetricType::UNTYPED => sample(
                out,
                name,
                "",
                metric,
                None,
                metric.get_untyped().get_value(),
            ),
            MetricType::HISTOGRAM => {
                let histogram = metric.get_histogram();
                let mut inf_seen = false;
                for bucket in histogram.get_bucket() {
                    let bound = bucket.upper_bound();
                    inf_seen |= bound == f64::INFINITY;
                    let count = bucket.cumulative_count() as f64;
                    sample(out, name, "_bucket", metric, Some(("le", bound)), count);
                }
                let count = histogram.get_sample_count() as f64;
                if !inf_seen {
                    sample(
                        out,
                        name,
                        "_bucket",
                        metric,
                        Some(("le", f64::INFINITY)),
                        count,
                    );
                }
                sample(out, name, "_sum", metric, None, histogram.get_sample_sum());
                sample(out, name, "_count", metric, None, count);
            }
            MetricType::SUMMARY => {
                let summary = metric.get_summary();
                for quantile in summary.get_quantile() {
                    let q = quantile.quantile();
                    sample(
                        out,
                        name,
                        "",
                        metric,
                        Some(("quantile", q)),
                        quantile.value(),
                    );
                }
                sample(out, name, "_sum", metric, None, summary.sample_sum());
                sample(
                    out,
                    name,
                    "_count",
                    metric,
                    None,
                    summary.sample_count() as f64,
                );
            }
        }
    }
}

fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    metric: &Metric,
    extra: Option<(&str, f64)>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    let labels = metric.get_label();
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        for (i, label) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label.name());
            out.push_str("=\"");
            escape_into(out, label.value(), true);
            out.push('"');
        }
        if let Some((label, bound)) = extra {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            write_float(out, bound);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    write_float(out, value);
    if metric.timestamp_ms() != 0 {
        out.push(' ');
        out.push_str(&metric.timestamp_ms().to_string());
    }
    out.push('\n');
}

/// Appends a label value escaped for the text format (`\`, `"` and newlines), without the
/// quotes; for exporters that write exposition text themselves.
pub fn write_label_value(out: &mut String, value: &str) {
    escape_into(out, value, true);
}

/// Appends HELP text escaped for the text format (`\` and newlines).
pub fn write_help(out: &mut String, help: &str) {
    escape_into(out, help, false);
}

/// Escapes `\` and newlines, and in label values also `"`.
fn escape_into(out: &mut String, text: &str, quote: bool) {
    if !text.contains(['\\', '\n', '"']) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Writes a number as Go's `strconv.FormatFloat(v, 'g', -1, 64)` does: the shortest
/// digits that round-trip, in exponent form when the exponent is below -4 or at least 6
/// (`1.527808e+06`, `0.28`, `2405`).
pub fn write_float(out: &mut String, value: f64) {
    use std::fmt::Write as _;
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value == 0.0 {
        out.push_str(if value.is_sign_negative() { "-0" } else { "0" });
    } else if value.fract() == 0.0 && value.abs() < 1e6 {
        // Small integers, the most common value, without the float machinery.
        let _ = write!(out, "{}", value as i64);
    } else {
        // Rust's `{:e}` gives the shortest digits that round-trip, as Go's 'g' does; only
        // where the point goes differs. Formatted on the stack: this runs per sample.
        let mut scientific = StackText::default();
        let _ = write!(scientific, "{value:e}");
        let text = scientific.as_str();
        let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        if !(-4..6).contains(&exp) {
            out.push_str(mantissa);
            let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
            return;
        }
        let (sign, mantissa) = match mantissa.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", mantissa),
        };
        out.push_str(sign);
        let digits = mantissa.bytes().filter(u8::is_ascii_digit);
        let count = mantissa.bytes().filter(u8::is_ascii_digit).count() as i32;
        if exp < 0 {
            out.push_str("0.");
            (1..-exp).for_each(|_| out.push('0'));
            digits.for_each(|d| out.push(char::from(d)));
        } else {
            for (i, d) in digits.enumerate() {
                if i as i32 == exp + 1 {
                    out.push('.');
                }
                out.push(char::from(d));
            }
            (count..=exp).for_each(|_| out.push('0'));
        }
    }
}

/// A small formatting buffer on the stack (a float in `{:e}` form needs at most 24 bytes).
#[derive(Default)]
struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let target = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        target.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_by_name_and_values_encoded() {
        let family = FamilyBuilder::counter("demo_events_total", "Events seen.")
            .sample(&[("zone", "b"), ("app", "a\"q")], 3.0)
            .build();
        let mut text = String::default();
        assert!(encode_text(&[family], &mut text).is_empty());
        assert_eq!(
            text,
            "# HELP demo_events_total Events seen.\n# TYPE demo_events_total counter\n\
             demo_events_total{app=\"a\\\"q\",zone=\"b\"} 3\n"
        );
    }

    #[test]
    fn empty_families_are_left_out() {
        let mut text = String::default();
        encode_text(
            &[FamilyBuilder::gauge("nothing", "No samples.").build()],
            &mut text,
        );
        assert_eq!(text, "");
    }

    #[test]
    fn histogram_gets_an_inf_bucket() {
        let mut builder = FamilyBuilder::histogram("demo_seconds", "Durations.");
        builder.push_histogram(&[], &[(0.1, 1), (1.0, 3)], 1.5, 4);
        let mut text = String::default();
        encode_text(&[builder.build()], &mut text);
        assert!(
            text.contains("demo_seconds_bucket{le=\"+Inf\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("demo_seconds_sum 1.5\n"));
        assert!(text.contains("demo_seconds_count 4\n"));
    }

    #[test]
    fn numbers_are_written_as_go_writes_them() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (2405.0, "2405"),
            (0.28, "0.28"),
            (123456.0, "123456"),
            (1527808.0, "1.527808e+06"),
            (2.70553174016e11, "2.70553174016e+11"),
            (1795252817.710389, "1.795252817710389e+09"),
            (9.223372036854776e18, "9.223372036854776e+18"),
            (0.0001, "0.0001"),
            (0.000013, "1.3e-05"),
            (-1.5, "-1.5"),
            (1e100, "1e+100"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (123456.5, "123456.5"),
            (100000.5, "100000.5"),
            (0.00123, "0.00123"),
            (-0.05, "-0.05"),
            (12.25, "12.25"),
            (1500.0, "1500"),
            (1e6, "1e+06"),
            (999999.0, "999999"),
        ];
        for (value, expected) in cases {
            let mut out = String::new();
            write_float(&mut out, value);
            assert_eq!(out, expected, "{value}");
        }
    }

    #[test]
    fn floats_read_back_exactly() {
        let mut value = 1.234_567_890_123e-7;
        while value < 1e12 {
            for v in [value, -value, value * 3.7, 1.0 / value] {
                let mut out = String::new();
                write_float(&mut out, v);
                assert_eq!(out.parse::<f64>().ok(), Some(v), "{v} written as {out}");
            }
            value *= 1.618;
        }
    }

    #[test]
    fn untyped_histogram_and_summary_families() {
        let mut histogram = FamilyBuilder::histogram("h_seconds", "H.");
        histogram.push_histogram(&[("a", "x")], &[(0.5, 1), (1.0, 3)], 2.5, 4);
        let mut summary = FamilyBuilder::summary("s", "Multi\nline \\ help");
        summary.push_summary(&[], &[(0.5, 7.0)], 10.0, 2);
        let untyped = FamilyBuilder::untyped("u", "U.").sample(&[], 42.0);
        let mut text = String::new();
        encode_text(
            &[histogram.build(), summary.build(), untyped.build()],
            &mut text,
        );
        assert_eq!(
            text,
            "# HELP h_seconds H.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{a=\"x\",le=\"0.5\"} 1\nh_seconds_bucket{a=\"x\",le=\"1\"} 3\n\
             h_seconds_bucket{a=\"x\",le=\"+Inf\"} 4\nh_seconds_sum{a=\"x\"} 2.5\nh_seconds_count{a=\"x\"} 4\n\
             # HELP s Multi\\nline \\\\ help\n# TYPE s summary\ns{quantile=\"0.5\"} 7\ns_sum 10\ns_count 2\n\
             # HELP u U.\n# TYPE u untyped\nu 42\n"
        );
    }
}
