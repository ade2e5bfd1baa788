//! What a parsed exposition holds. Names and most values borrow from the scraped text.

use std::borrow::Cow;

/// Which exposition format the text is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    #[default]
    Text,
    /// OpenMetrics text 1.0 (`application/openmetrics-text`).
    OpenMetrics,
}

impl Format {
    /// Picks the format from a `Content-Type` header; anything unknown is the text format.
    pub fn from_content_type(content_type: &str) -> Self {
        if content_type
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/openmetrics-text")
        {
            Self::OpenMetrics
        } else {
            Self::Text
        }
    }
}

/// The `# TYPE` of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Monotonic counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Histogram with `_bucket`, `_sum`, `_count`.
    Histogram,
    /// Summary with quantiles, `_sum`, `_count`.
    Summary,
    /// `untyped` (text format) or `unknown` (OpenMetrics), or no TYPE line at all.
    Untyped,
    /// OpenMetrics `info`.
    Info,
    /// OpenMetrics `stateset`.
    StateSet,
    /// OpenMetrics `gaugehistogram`.
    GaugeHistogram,
}

impl MetricType {
    pub(crate) fn parse(word: &str, format: Format) -> Option<Self> {
        Some(match (word, format) {
            ("counter", _) => Self::Counter,
            ("gauge", _) => Self::Gauge,
            ("histogram", _) => Self::Histogram,
            ("summary", _) => Self::Summary,
            ("untyped", Format::Text) | ("unknown", Format::OpenMetrics) => Self::Untyped,
            ("info", Format::OpenMetrics) => Self::Info,
            ("stateset", Format::OpenMetrics) => Self::StateSet,
            ("gaugehistogram", Format::OpenMetrics) => Self::GaugeHistogram,
            _ => return None,
        })
    }

    /// The word used in a `# TYPE` line of the text format.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Untyped => "untyped",
            Self::Info => "info",
            Self::StateSet => "stateset",
            Self::GaugeHistogram => "gaugehistogram",
        }
    }
}

/// One label pair of a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label<'a> {
    /// Label name.
    pub name: &'a str,
    /// Unescaped value; borrowed unless it contained escapes.
    pub value: Cow<'a, str>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// Full sample name, suffix included (`http_seconds_bucket`).
    pub name: &'a str,
    /// Labels in the order written.
    pub labels: Vec<Label<'a>>,
    /// The value.
    pub value: f64,
    /// Timestamp in milliseconds, when given.
    pub timestamp_ms: Option<i64>,
    /// 1-based line number.
    pub line: usize,
}

impl Sample<'_> {
    /// The value of a label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_ref())
    }

    /// True when the sample carries every given label pair (and maybe others).
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(n, v)| self.label(n) == Some(v))
    }
}

/// A metric family: its metadata and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family<'a> {
    /// Family name (without `_bucket` etc.).
    pub name: &'a str,
    /// HELP text, unescaped.
    pub help: Option<Cow<'a, str>>,
    /// TYPE; `Untyped` when none was given.
    pub kind: MetricType,
    /// OpenMetrics UNIT.
    pub unit: Option<&'a str>,
    /// Samples in order.
    pub samples: Vec<Sample<'a>>,
    /// Line where the family started.
    pub line: usize,
    pub(crate) has_type: bool,
}

/// A whole parsed scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition<'a> {
    /// Families in the order they appeared.
    pub families: Vec<Family<'a>>,
}

impl<'a> Exposition<'a> {
    /// The family with this name.
    pub fn family(&self, name: &str) -> Option<&Family<'a>> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Every sample of every family.
    pub fn samples(&self) -> impl Iterator<Item = &Sample<'a>> {
        self.families.iter().flat_map(|f| f.samples.iter())
    }

    /// The value of the first sample named `name` that carries all `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples()
            .find(|s| s.name == name && s.has_labels(labels))
            .map(|s| s.value)
    }
}
