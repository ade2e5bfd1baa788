//! A small builder over the `prometheus` crate's metric model, so collectors build fresh
//! families on every scrape in a line or two each.

pub use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType, Untyped,
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

/// Encodes families in the text format 0.0.4, skipping (and returning the names of) any
/// family the encoder refuses, so one bad family never blanks a whole scrape.
pub fn encode_text(families: &[MetricFamily], out: &mut String) -> Vec<String> {
    let encoder = prometheus::TextEncoder;
    let mut refused = Vec::default();
    for family in families {
        if family.get_metric().is_empty() {
            continue;
        }
        if encoder
            .encode_utf8(std::slice::from_ref(family), out)
            .is_err()
        {
            refused.push(family.name().to_owned());
        }
    }
    refused
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
}
