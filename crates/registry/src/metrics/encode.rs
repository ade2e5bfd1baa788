//! Writes sealed [`MetricSet`]s as the text format 0.0.4 or OpenMetrics 1.0.

use std::collections::HashSet;
use std::ops::{Bound, Range, RangeBounds};

use super::number::{escape_into, write_float, write_openmetrics_float};
use super::{FamilyView, MetricSet, MetricType, SampleView};

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The Prometheus text format 0.0.4, byte for byte as the Go client writes it.
    #[default]
    Text,
    /// OpenMetrics 1.0, as the Go client writes it when asked.
    OpenMetrics,
}

impl Format {
    /// Picks the format an `Accept` header asks for, as the Go client's
    /// `NegotiateIncludingOpenMetrics` does: the acceptable media ranges in order of quality,
    /// the first that names a format served here wins, and text when none does.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Self::Text;
        };
        let mut ranges: Vec<(f32, Option<Self>)> = accept
            .split(',')
            .filter_map(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next()?.to_ascii_lowercase();
                let mut quality = 1.0f32;
                let mut version = None;
                for parameter in parts {
                    let (key, value) = parameter.split_once('=')?;
                    match key.trim() {
                        "q" => quality = value.trim().parse().unwrap_or(0.0),
                        "version" => version = Some(value.trim()),
                        _ => {}
                    }
                }
                let format = match (media.as_str(), version) {
                    ("application/openmetrics-text", None | Some("1.0.0" | "0.0.1")) => {
                        Some(Self::OpenMetrics)
                    }
                    ("text/plain", None | Some("0.0.4")) => Some(Self::Text),
                    _ => None,
                };
                (quality > 0.0).then_some((quality, format))
            })
            .collect();
        // Stable: ranges of equal quality keep the client's order.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranges
            .into_iter()
            .find_map(|(_, format)| format)
            .unwrap_or(Self::Text)
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A family [`encode`] left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The family's name.
    pub family: String,
    /// Why it was left out.
    pub reason: &'static str,
}

/// Writes the families of `sets` (each sealed), merged by name and sorted, as `format`
/// wants. Families of the same name from several sets are written once, their samples in
/// the order of `sets`. A family whose name is not a valid metric name, or whose type
/// differs from an earlier family of the same name, is left out and reported, so one bad
/// family never blanks a scrape. OpenMetrics output is ended by [`finish`], once whatever
/// else the response carries has been written.
pub fn encode(sets: &[&MetricSet], format: Format, out: &mut String) -> Vec<LeftOut> {
    let mut left_out = Vec::new();
    encode_part(sets, format, None, Bound::Unbounded, out, &mut left_out);
    left_out
}

/// The family an encoded part ended with: its name and type.
pub(crate) type LastFamily = Option<(String, MetricType)>;

/// [`encode`] for one part of an exposition written in several (see
/// [`crate::Exposition`]): the families whose names come after `after` and up to `upto`.
/// A family named as `after` continues it: its samples follow without a second header.
/// Returns the family written last.
pub(crate) fn encode_part(
    sets: &[&MetricSet],
    format: Format,
    after: Option<(&str, MetricType)>,
    upto: Bound<&str>,
    out: &mut String,
    left_out: &mut Vec<LeftOut>,
) -> LastFamily {
    let from = after.map_or(Bound::Unbounded, |(name, _)| Bound::Included(name));
    let mut families: Vec<FamilyView<'_>> = sets
        .iter()
        .flat_map(|set| set.families())
        .filter(|family| {
            !family.is_empty() && RangeBounds::<str>::contains(&(from, upto), family.name())
        })
        .collect();
    // Stable: same-named families stay in the order of the sets.
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut last = None;
    for group in families.chunk_by(|a, b| a.name() == b.name()) {
        let first = group[0];
        if !valid_metric_name(first.name()) {
            left_out.push(LeftOut {
                family: first.name().to_owned(),
                reason: "not a valid metric name",
            });
            continue;
        }
        let kind = match after {
            Some((name, kind)) if name == first.name() => kind,
            _ => {
                match first.encoded_header(format) {
                    Some(header) => out.push_str(header),
                    None => header(format, first, out),
                }
                first.kind()
            }
        };
        last = Some((first.name().to_owned(), kind));
        // A name written by more than one family (a procfs file that repeats a key, or two
        // collectors that both serve it) could repeat a series, which makes Prometheus
        // refuse the whole scrape: the later copy is left out. Only such groups pay for the
        // check.
        // A shared snapshot is built from parts that differ in their labels (one per GPU,
        // say) and is served from its cache; the check is for a collector's own families.
        let own = group.iter().filter(|family| !family.is_shared()).count();
        let mut seen = (own > 1).then(HashSet::<Vec<(&str, &str)>>::new);
        let mut repeated = false;
        for family in group {
            if family.kind() != kind {
                left_out.push(LeftOut {
                    family: family.name().to_owned(),
                    reason: "written twice with different types; the second is left out",
                });
                continue;
            }
            // A shared snapshot's samples were encoded when it was first served; of the
            // same name and type, they read as `first`'s would.
            if let Some(encoded) = family.encoded_samples(format) {
                out.push_str(encoded);
                continue;
            }
            for sample in family.samples() {
                if let Some(seen) = &mut seen
                    && !seen.insert(sample.labels().collect())
                {
                    repeated = true;
                    continue;
                }
                write_sample(format, first, sample, out);
            }
        }
        if repeated {
            left_out.push(LeftOut {
                family: first.name().to_owned(),
                reason: "a series written twice; the later copy is left out",
            });
        }
    }
    last.or_else(|| after.map(|(name, kind)| (name.to_owned(), kind)))
}

/// Every family of a sealed `set` as `format` writes it: one string, and each family's
/// header and samples as ranges in it (for [`super::SharedSet`]).
pub(super) fn encode_families(set: &MetricSet, format: Format) -> (String, Vec<Encoded>) {
    let mut out = String::new();
    let ranges = set
        .own_families()
        .map(|family| {
            let start = out.len();
            header(format, family, &mut out);
            let samples = out.len();
            for sample in family.samples() {
                write_sample(format, family, sample, &mut out);
            }
            Encoded {
                header: start..samples,
                samples: samples..out.len(),
            }
        })
        .collect();
    (out, ranges)
}

/// Where one family's HELP and TYPE lines and its samples are in an encoded set.
#[derive(Debug)]
pub(super) struct Encoded {
    pub(super) header: Range<usize>,
    pub(super) samples: Range<usize>,
}

/// A family's HELP and TYPE lines (and UNIT, for OpenMetrics) as `format` writes them.
fn header(format: Format, family: FamilyView<'_>, out: &mut String) {
    match format {
        Format::Text => text_header(family, out),
        Format::OpenMetrics => openmetrics_header(family, out),
    }
}

/// Ends an exposition: OpenMetrics requires a last line `# EOF`.
pub fn finish(format: Format, out: &mut String) {
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
}

fn valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn text_header(family: FamilyView<'_>, out: &mut String) {
    let name = family.name();
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_into(out, family.help(), false);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push_str(match family.kind() {
        MetricType::Counter => " counter\n",
        MetricType::Gauge | MetricType::Info => " gauge\n",
        MetricType::Untyped => " untyped\n",
        MetricType::Histogram => " histogram\n",
        MetricType::Summary => " summary\n",
    });
}

/// The OpenMetrics family name: a counter's or info's without the suffix its samples carry.
fn openmetrics_family_name(family: FamilyView<'_>) -> &str {
    let name = family.name();
    let suffix = match family.kind() {
        MetricType::Counter => "_total",
        MetricType::Info => "_info",
        _ => return name,
    };
    name.strip_suffix(suffix).unwrap_or(name)
}

/// Base units (Prometheus' naming guide) that a name's last word may be; OpenMetrics
/// writes them as the family's UNIT.
const UNITS: &[&str] = &[
    "seconds", "bytes", "joules", "grams", "meters", "ratio", "volts", "amperes", "celsius",
    "hertz", "watts", "percent",
];

fn openmetrics_header(family: FamilyView<'_>, out: &mut String) {
    let name = openmetrics_family_name(family);
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_into(out, family.help(), true);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push_str(match family.kind() {
        MetricType::Counter => " counter\n",
        MetricType::Gauge => " gauge\n",
        MetricType::Untyped => " unknown\n",
        MetricType::Histogram => " histogram\n",
        MetricType::Summary => " summary\n",
        MetricType::Info => " info\n",
    });
    if let Some(unit) = UNITS.iter().find(|unit| {
        name.strip_suffix(**unit)
            .is_some_and(|rest| rest.ends_with('_'))
    }) {
        out.push_str("# UNIT ");
        out.push_str(name);
        out.push(' ');
        out.push_str(unit);
        out.push('\n');
    }
}

/// Writes one sample's lines: a value, or a histogram's buckets, sum and count, or a
/// summary's quantiles, sum and count. The formats differ only in the names (OpenMetrics
/// names counters and infos by their family plus `_total` / `_info`) and in how numbers are
/// written: the text format writes every number, counts included, as a Go float; OpenMetrics
/// writes floats canonically (`1.0`) and counts as integers, as the Go client does.
fn write_sample(format: Format, family: FamilyView<'_>, sample: SampleView<'_>, out: &mut String) {
    let (name, suffix) = match format {
        Format::Text => (family.name(), ""),
        Format::OpenMetrics => (
            openmetrics_family_name(family),
            match family.kind() {
                MetricType::Counter => "_total",
                MetricType::Info => "_info",
                _ => "",
            },
        ),
    };
    let value = |out: &mut String, value: f64| match format {
        Format::Text => write_float(out, value),
        Format::OpenMetrics => write_openmetrics_float(out, value),
    };
    let count = |out: &mut String, count: u64| match format {
        Format::Text => write_float(out, count as f64),
        Format::OpenMetrics => write_count(out, count),
    };
    match family.kind() {
        MetricType::Counter | MetricType::Gauge | MetricType::Untyped | MetricType::Info => {
            line(out, format, name, suffix, sample, None);
            value(out, sample.value());
        }
        MetricType::Histogram => {
            let mut inf_seen = false;
            for &(bound, cumulative) in sample.points() {
                inf_seen |= bound == f64::INFINITY;
                line(out, format, name, "_bucket", sample, Some(("le", bound)));
                count(out, cumulative as u64);
                out.push('\n');
            }
            if !inf_seen {
                line(
                    out,
                    format,
                    name,
                    "_bucket",
                    sample,
                    Some(("le", f64::INFINITY)),
                );
                count(out, sample.count());
                out.push('\n');
            }
            line(out, format, name, "_sum", sample, None);
            value(out, sample.value());
            out.push('\n');
            line(out, format, name, "_count", sample, None);
            count(out, sample.count());
        }
        MetricType::Summary => {
            for &(quantile, quantile_value) in sample.points() {
                line(out, format, name, "", sample, Some(("quantile", quantile)));
                value(out, quantile_value);
                out.push('\n');
            }
            line(out, format, name, "_sum", sample, None);
            value(out, sample.value());
            out.push('\n');
            line(out, format, name, "_count", sample, None);
            count(out, sample.count());
        }
    }
    out.push('\n');
}

/// Writes a sample's name and labels (plus `extra`, a bucket's `le` or a quantile) and the
/// space before its value.
fn line(
    out: &mut String,
    format: Format,
    name: &str,
    suffix: &str,
    sample: SampleView<'_>,
    extra: Option<(&str, f64)>,
) {
    out.push_str(name);
    out.push_str(suffix);
    let labels = sample.labels();
    if labels.len() > 0 || extra.is_some() {
        out.push('{');
        let mut first = true;
        for (label, value) in labels {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(label);
            out.push_str("=\"");
            escape_into(out, value, true);
            out.push('"');
        }
        if let Some((label, bound)) = extra {
            if !first {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            match format {
                Format::Text => write_float(out, bound),
                Format::OpenMetrics => write_openmetrics_float(out, bound),
            }
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

fn write_count(out: &mut String, count: u64) {
    use std::fmt::Write as _;
    let _ = write!(out, "{count}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(build: impl FnOnce(&mut MetricSet)) -> MetricSet {
        let mut set = MetricSet::default();
        build(&mut set);
        set.seal();
        set
    }

    fn text(sets: &[&MetricSet], format: Format) -> String {
        let mut out = String::new();
        assert_eq!(encode(sets, format, &mut out), []);
        out
    }

    #[test]
    fn text_format_as_the_go_client_writes_it() {
        let set = sealed(|set| {
            let events = set.counter("demo_events_total", "Events seen.");
            set.sample(events, &[("zone", "b"), ("app", "a\"q")], 3.0);
            let h = set.histogram_family("h_seconds", "H.");
            set.histogram(h, &[("a", "x")], &[(0.5, 1), (1.0, 3)], 2.5, 4);
            let s = set.summary_family("s", "Multi\nline \\ help");
            set.summary(s, &[], &[(0.5, 7.0)], 10.0, 2);
            let u = set.untyped("u", "U.");
            set.sample(u, &[], 42.0);
            let i = set.family("demo_info", "Facts.", MetricType::Info);
            set.sample(i, &[("version", "1")], 1.0);
        });
        assert_eq!(
            text(&[&set], Format::Text),
            "# HELP demo_events_total Events seen.\n# TYPE demo_events_total counter\n\
             demo_events_total{app=\"a\\\"q\",zone=\"b\"} 3\n\
             # HELP demo_info Facts.\n# TYPE demo_info gauge\ndemo_info{version=\"1\"} 1\n\
             # HELP h_seconds H.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{a=\"x\",le=\"0.5\"} 1\nh_seconds_bucket{a=\"x\",le=\"1\"} 3\n\
             h_seconds_bucket{a=\"x\",le=\"+Inf\"} 4\nh_seconds_sum{a=\"x\"} 2.5\nh_seconds_count{a=\"x\"} 4\n\
             # HELP s Multi\\nline \\\\ help\n# TYPE s summary\ns{quantile=\"0.5\"} 7\ns_sum 10\ns_count 2\n\
             # HELP u U.\n# TYPE u untyped\nu 42\n"
        );
    }

    #[test]
    fn openmetrics_as_the_go_client_writes_it() {
        let set = sealed(|set| {
            let events = set.counter("demo_events_total", "Events \"seen\".");
            set.sample(events, &[("zone", "b")], 3.0);
            let plain = set.counter("demo_plain", "A counter without the suffix.");
            set.sample(plain, &[], 1.5);
            let h = set.histogram_family("demo_latency_seconds", "H.");
            set.histogram(h, &[], &[(0.5, 1), (1.0, 3)], 2.5, 4);
            let u = set.untyped("u", "U.");
            set.sample(u, &[], 42.0);
            let i = set.family("demo_build_info", "Build.", MetricType::Info);
            set.sample(i, &[("version", "1")], 1.0);
        });
        assert_eq!(
            text(&[&set], Format::OpenMetrics),
            "# HELP demo_build Build.\n# TYPE demo_build info\ndemo_build_info{version=\"1\"} 1.0\n\
             # HELP demo_events Events \\\"seen\\\".\n# TYPE demo_events counter\n\
             demo_events_total{zone=\"b\"} 3.0\n\
             # HELP demo_latency_seconds H.\n# TYPE demo_latency_seconds histogram\n\
             # UNIT demo_latency_seconds seconds\n\
             demo_latency_seconds_bucket{le=\"0.5\"} 1\ndemo_latency_seconds_bucket{le=\"1.0\"} 3\n\
             demo_latency_seconds_bucket{le=\"+Inf\"} 4\ndemo_latency_seconds_sum 2.5\n\
             demo_latency_seconds_count 4\n\
             # HELP demo_plain A counter without the suffix.\n# TYPE demo_plain counter\n\
             demo_plain_total 1.5\n\
             # HELP u U.\n# TYPE u unknown\nu 42.0\n"
        );
    }

    #[test]
    fn counts_are_go_floats_in_text_and_integers_in_openmetrics() {
        let set = sealed(|set| {
            let h = set.histogram_family("big_seconds", "Big.");
            set.histogram(h, &[], &[(1.0, 2_500_000)], 1.0, 2_500_000);
        });
        let text_out = text(&[&set], Format::Text);
        assert!(
            text_out.contains("big_seconds_bucket{le=\"+Inf\"} 2.5e+06\n"),
            "{text_out}"
        );
        assert!(
            text_out.contains("big_seconds_count 2.5e+06\n"),
            "{text_out}"
        );
        let om = text(&[&set], Format::OpenMetrics);
        assert!(
            om.contains("big_seconds_bucket{le=\"1.0\"} 2500000\n"),
            "{om}"
        );
        assert!(om.contains("big_seconds_count 2500000\n"), "{om}");
    }

    #[test]
    fn families_of_several_sets_merge_by_name() {
        let a = sealed(|set| {
            let f = set.gauge("shared", "From a.");
            set.sample(f, &[("from", "a")], 1.0);
            set.gauge_value("only_a", "A.", 1.0);
        });
        let b = sealed(|set| {
            let f = set.gauge("shared", "From b.");
            set.sample(f, &[("from", "b")], 2.0);
            set.counter_value("clash", "Typed differently.", 1.0);
        });
        let c = sealed(|set| set.gauge_value("clash", "Typed differently.", 1.0));
        let mut out = String::new();
        let left_out = encode(&[&a, &b, &c], Format::Text, &mut out);
        assert_eq!(
            out,
            "# HELP clash Typed differently.\n# TYPE clash counter\nclash 1\n\
             # HELP only_a A.\n# TYPE only_a gauge\nonly_a 1\n\
             # HELP shared From a.\n# TYPE shared gauge\nshared{from=\"a\"} 1\nshared{from=\"b\"} 2\n"
        );
        assert_eq!(left_out.len(), 1);
        assert_eq!(left_out[0].family, "clash");
    }

    #[test]
    fn a_series_written_twice_under_one_name_is_served_once() {
        // As a /proc/meminfo with a repeated key gives: one family per line, same name.
        let set = sealed(|set| {
            set.gauge_value("node_memory_Dup_bytes", "First.", 1.5);
            set.gauge_value("node_memory_Dup_bytes", "Second.", 2.5);
            let f = set.gauge("node_memory_Dup_bytes", "Third.");
            set.sample(f, &[("other", "x")], 3.5);
        });
        for format in [Format::Text, Format::OpenMetrics] {
            let mut out = String::new();
            let left_out = encode(&[&set], format, &mut out);
            assert_eq!(
                out.lines()
                    .filter(|l| l.starts_with("node_memory_Dup_bytes"))
                    .collect::<Vec<_>>(),
                [
                    "node_memory_Dup_bytes 1.5",
                    "node_memory_Dup_bytes{other=\"x\"} 3.5"
                ],
                "{out}"
            );
            assert_eq!(left_out.len(), 1);
            assert_eq!(left_out[0].family, "node_memory_Dup_bytes");
        }
    }

    #[test]
    fn invalid_names_and_empty_families_are_left_out() {
        let set = sealed(|set| {
            set.gauge("nothing", "No samples.");
            set.gauge_value("bad-name", "Dash.", 1.0);
        });
        let mut out = String::new();
        let left_out = encode(&[&set], Format::Text, &mut out);
        assert_eq!(out, "");
        assert_eq!(left_out[0].family, "bad-name");
    }

    #[test]
    fn negotiation_follows_quality_then_order() {
        let prometheus = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
                          application/openmetrics-text;version=0.0.1;q=0.4,\
                          text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,\
                          text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        let text_first = "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5";
        assert_eq!(Format::negotiate(Some(text_first)), Format::Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; version=2.0.0")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
    }
}
