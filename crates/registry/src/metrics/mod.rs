//! The metric model: what collectors write, and how a scrape is encoded.
//!
//! A collector writes its families into a [`MetricSet`]: flat buffers (one text arena, one
//! table each of families, samples, labels and bucket points) that the runner keeps from
//! scrape to scrape. Once they have grown to a scrape's size, a scrape allocates nothing per
//! family, sample or label; the `prometheus` crate's object model, which this replaces,
//! allocated a boxed value and two strings per label of every sample (about 1,800 allocations
//! for one node scrape).
//!
//! ```
//! use kiln_registry::metrics::MetricSet;
//!
//! let mut out = MetricSet::default();
//! let seconds = out.counter("demo_cpu_seconds_total", "Seconds spent in each mode.");
//! out.sample(seconds, &[("cpu", "0"), ("mode", "idle")], 1234.5);
//! out.gauge_value("demo_load1", "1m load average.", 0.25);
//! assert_eq!(out.sample_count(), 2);
//! ```
//!
//! [`encode`] writes one or more sets, merged by family name, in the text format 0.0.4 or
//! OpenMetrics 1.0 ([`Format::negotiate`] picks one from the scraper's `Accept` header).

mod encode;
mod number;

use std::ops::Range;
use std::sync::{Arc, OnceLock};

pub use encode::{Format, LeftOut, encode, finish};
pub(crate) use encode::{LastFamily, encode_part};
pub use number::{write_float, write_help, write_label_value};

/// What a family's samples mean, as the exposition formats name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A value that only goes up (resets to zero on restart). Names end in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A value whose kind the source does not say (Graphite, JMX, netstat).
    Untyped,
    /// Cumulative buckets, a sum and a count.
    Histogram,
    /// Quantiles, a sum and a count.
    Summary,
    /// Facts about the target as labels on a sample of value 1. Names end in `_info`. The
    /// text format has no such type and calls it a gauge.
    Info,
}

/// A family written into a [`MetricSet`]; samples are added to it by this handle.
///
/// Valid only for the set that made it, until that set is cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyId(u32);

/// A point of a set to go back to: see [`MetricSet::checkpoint`].
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    text: usize,
    families: usize,
    samples: usize,
    labels: usize,
    points: usize,
    shared: usize,
}

/// The families one collector wrote in one scrape, in flat buffers reused from scrape to
/// scrape.
///
/// Families may be declared up front and filled in any order: samples carry their family,
/// and [`MetricSet::seal`] groups them (keeping each family's samples in the order they were
/// written). A family that gets no sample is left out of the exposition.
#[derive(Debug, Default, Clone)]
pub struct MetricSet {
    /// Names, help texts, label names and values, end to end.
    text: String,
    families: Vec<Family>,
    samples: Vec<Sample>,
    labels: Vec<Label>,
    /// Histogram buckets `(upper bound, cumulative count)` and summary quantiles
    /// `(quantile, value)`.
    points: Vec<(f64, f64)>,
    /// True when the samples are grouped by family and each family's range is set.
    sealed: bool,
    /// Snapshots served as they are, after this set's own families: see [`SharedSet`].
    shared: Vec<Arc<SharedSet>>,
}

/// A sealed set that many scrapes serve unchanged until its source is read again (the
/// snapshot a background loop writes once a cycle). The first scrape that asks for a format
/// encodes its families (headers and samples) once; later scrapes copy those bytes, so
/// serving a snapshot costs about a memory copy however many series it holds.
#[derive(Debug)]
pub struct SharedSet {
    set: MetricSet,
    /// Per [`Format`], the encoded families: one string, and each family's header and
    /// samples in it.
    encoded: [OnceLock<(String, Vec<encode::Encoded>)>; 2],
}

impl SharedSet {
    /// Seals `set` and keeps it for sharing. Sets `set` shares are copied into it, so a
    /// shared set is always flat.
    pub fn new(mut set: MetricSet) -> Self {
        for nested in std::mem::take(&mut set.shared) {
            set.append(&nested.set);
        }
        // In name order, as the encoder wants them: every scrape that serves the set then
        // finds its families already sorted instead of sorting them again.
        set.sort_families_by_name();
        set.seal();
        Self {
            set,
            encoded: Default::default(),
        }
    }

    /// The set itself.
    pub fn set(&self) -> &MetricSet {
        &self.set
    }

    /// The family at `index` as `format` writes it, encoded now if this is the first ask.
    fn encoded(&self, index: usize, format: Format) -> (&str, &encode::Encoded) {
        let (text, families) = self.encoded[format as usize]
            .get_or_init(|| encode::encode_families(&self.set, format));
        (text, &families[index])
    }
}

#[derive(Debug, Clone)]
struct Family {
    name: Range<usize>,
    help: Range<usize>,
    kind: MetricType,
    /// Where this family's samples are once the set is sealed.
    samples: Range<usize>,
}

#[derive(Debug, Clone)]
struct Sample {
    family: u32,
    labels: Range<usize>,
    /// The value; a histogram's or summary's sum.
    value: f64,
    /// A histogram's or summary's observation count.
    count: u64,
    /// A histogram's buckets or a summary's quantiles.
    points: Range<usize>,
}

#[derive(Debug, Clone)]
struct Label {
    name: Range<usize>,
    value: Range<usize>,
}

impl MetricSet {
    /// Empties the set, keeping its buffers for the next scrape.
    pub fn clear(&mut self) {
        self.text.clear();
        self.families.clear();
        self.samples.clear();
        self.labels.clear();
        self.points.clear();
        self.shared.clear();
        self.sealed = false;
    }

    /// Serves `shared` with this set, without copying it: its families are merged into the
    /// scrape like this set's own, and its samples' encoding is reused from scrape to scrape.
    pub fn share(&mut self, shared: &Arc<SharedSet>) {
        self.shared.push(Arc::clone(shared));
    }

    /// Bytes the buffers hold on to, for a pool to decide whether a set is worth keeping.
    pub fn capacity_bytes(&self) -> usize {
        use std::mem::size_of;
        self.text.capacity()
            + self.families.capacity() * size_of::<Family>()
            + self.samples.capacity() * size_of::<Sample>()
            + self.labels.capacity() * size_of::<Label>()
            + self.points.capacity() * size_of::<(f64, f64)>()
    }

    /// Declares a family. Samples are added with [`MetricSet::sample`] (or
    /// [`MetricSet::histogram`], [`MetricSet::summary`]).
    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) -> FamilyId {
        let name = self.store(name);
        let help = self.store(help);
        self.push_family(name, help, kind)
    }

    /// Declares a family whose name and help are formatted straight into the set, for names
    /// built from what was read (`node_memory_{field}`) without a `String` each:
    /// `out.family_fmt(format_args!("node_memory_{field}"), format_args!("…"), MetricType::Gauge)`.
    pub fn family_fmt(
        &mut self,
        name: std::fmt::Arguments<'_>,
        help: std::fmt::Arguments<'_>,
        kind: MetricType,
    ) -> FamilyId {
        use std::fmt::Write as _;
        let start = self.text.len();
        let _ = self.text.write_fmt(name);
        let name = start..self.text.len();
        let _ = self.text.write_fmt(help);
        let help = name.end..self.text.len();
        self.push_family(name, help, kind)
    }

    fn push_family(
        &mut self,
        name: Range<usize>,
        help: Range<usize>,
        kind: MetricType,
    ) -> FamilyId {
        self.sealed = false;
        let id = FamilyId(u32::try_from(self.families.len()).unwrap_or(u32::MAX));
        self.families.push(Family {
            name,
            help,
            kind,
            samples: 0..0,
        });
        id
    }

    /// Declares a gauge family.
    pub fn gauge(&mut self, name: &str, help: &str) -> FamilyId {
        self.family(name, help, MetricType::Gauge)
    }

    /// Declares a counter family. The name should end in `_total`.
    pub fn counter(&mut self, name: &str, help: &str) -> FamilyId {
        self.family(name, help, MetricType::Counter)
    }

    /// Declares an untyped family, for values whose kind the source does not say.
    pub fn untyped(&mut self, name: &str, help: &str) -> FamilyId {
        self.family(name, help, MetricType::Untyped)
    }

    /// Declares a histogram family; add samples with [`MetricSet::histogram`].
    pub fn histogram_family(&mut self, name: &str, help: &str) -> FamilyId {
        self.family(name, help, MetricType::Histogram)
    }

    /// Declares a summary family; add samples with [`MetricSet::summary`].
    pub fn summary_family(&mut self, name: &str, help: &str) -> FamilyId {
        self.family(name, help, MetricType::Summary)
    }

    /// A gauge family of one sample without labels.
    pub fn gauge_value(&mut self, name: &str, help: &str, value: f64) {
        let family = self.gauge(name, help);
        self.sample(family, &[], value);
    }

    /// A counter family of one sample without labels.
    pub fn counter_value(&mut self, name: &str, help: &str, value: f64) {
        let family = self.counter(name, help);
        self.sample(family, &[], value);
    }

    /// Adds a counter, gauge, untyped or info sample. Labels may come in any order; they are
    /// written sorted by name, as the Go client writes them.
    pub fn sample(&mut self, family: FamilyId, labels: &[(&str, &str)], value: f64) {
        self.push(family, labels, value, 0, &[]);
    }

    /// Adds a histogram sample: cumulative `(upper bound, count)` buckets, with or without
    /// `+Inf` (the encoder adds it from `count`), the sum and the count of observations.
    pub fn histogram(
        &mut self,
        family: FamilyId,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) {
        let start = self.points.len();
        self.points
            .extend(buckets.iter().map(|&(bound, n)| (bound, n as f64)));
        self.push_with_points(family, labels, sum, count, start);
    }

    /// Adds a summary sample: `(quantile, value)` pairs, the sum and the count.
    pub fn summary(
        &mut self,
        family: FamilyId,
        labels: &[(&str, &str)],
        quantiles: &[(f64, f64)],
        sum: f64,
        count: u64,
    ) {
        self.push(family, labels, sum, count, quantiles);
    }

    /// Adds every family of `other` with its samples, as if written here: for a collector
    /// that serves what a background loop wrote earlier (a snapshot) next to its own.
    pub fn append(&mut self, other: &MetricSet) {
        self.sealed = false;
        let text = self.text.len();
        let family = self.families.len();
        let labels = self.labels.len();
        let points = self.points.len();
        let shift = |range: &Range<usize>, by: usize| range.start + by..range.end + by;
        self.text.push_str(&other.text);
        self.families.extend(other.families.iter().map(|f| Family {
            name: shift(&f.name, text),
            help: shift(&f.help, text),
            kind: f.kind,
            samples: 0..0,
        }));
        self.labels.extend(other.labels.iter().map(|l| Label {
            name: shift(&l.name, text),
            value: shift(&l.value, text),
        }));
        self.points.extend_from_slice(&other.points);
        self.samples.extend(other.samples.iter().map(|s| Sample {
            family: s.family + family as u32,
            labels: shift(&s.labels, labels),
            value: s.value,
            count: s.count,
            points: shift(&s.points, points),
        }));
        self.shared.extend(other.shared.iter().cloned());
    }

    /// Number of samples written (a histogram or summary counts once).
    pub fn sample_count(&self) -> usize {
        self.samples.len()
            + self
                .shared
                .iter()
                .map(|s| s.set.samples.len())
                .sum::<usize>()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.shared.iter().all(|s| s.set.is_empty())
    }

    /// Where the set is now; [`MetricSet::rollback`] returns to it.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            text: self.text.len(),
            families: self.families.len(),
            samples: self.samples.len(),
            labels: self.labels.len(),
            points: self.points.len(),
            shared: self.shared.len(),
        }
    }

    /// Forgets everything written since `checkpoint`: the families declared and every sample
    /// added, also to families declared before it. The runner rolls a collector back this way
    /// when it fails halfway, so a scrape never serves half of a collector's families.
    pub fn rollback(&mut self, checkpoint: Checkpoint) {
        if checkpoint.samples > self.samples.len() || checkpoint.families > self.families.len() {
            return;
        }
        self.text.truncate(checkpoint.text);
        self.families.truncate(checkpoint.families);
        self.samples.truncate(checkpoint.samples);
        self.labels.truncate(checkpoint.labels);
        self.points.truncate(checkpoint.points);
        self.shared.truncate(checkpoint.shared);
        self.sealed = false;
    }

    /// Puts the families in name order (same names keep their order), their samples with
    /// them.
    fn sort_families_by_name(&mut self) {
        let text = &self.text;
        let mut order: Vec<usize> = (0..self.families.len()).collect();
        order.sort_by(|&a, &b| {
            text[self.families[a].name.clone()].cmp(&text[self.families[b].name.clone()])
        });
        if order.iter().enumerate().all(|(new, &old)| new == old) {
            return;
        }
        let mut moved_to = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            moved_to[old] = new as u32;
        }
        self.families = order
            .iter()
            .map(|&old| self.families[old].clone())
            .collect();
        for sample in &mut self.samples {
            sample.family = moved_to[sample.family as usize];
        }
        self.sealed = false;
    }

    /// Groups the samples by family, each family's in the order they were written. The
    /// encoder seals a set before reading it; sealing a sealed set costs nothing.
    pub fn seal(&mut self) {
        if self.sealed {
            return;
        }
        let in_order = self
            .samples
            .windows(2)
            .all(|pair| pair[0].family <= pair[1].family);
        if !in_order {
            // Stable, so each family keeps its samples' order.
            self.samples.sort_by_key(|sample| sample.family);
        }
        let mut start = 0;
        for (index, family) in self.families.iter_mut().enumerate() {
            let index = index as u32;
            let end = start
                + self.samples[start..]
                    .iter()
                    .take_while(|sample| sample.family == index)
                    .count();
            family.samples = start..end;
            start = end;
        }
        self.sealed = true;
    }

    /// The families, with their samples (the shared sets' after this set's own); the set
    /// must be sealed.
    pub fn families(&self) -> impl Iterator<Item = FamilyView<'_>> {
        debug_assert!(self.sealed || self.samples.is_empty());
        let own = self.own_families();
        let shared = self.shared.iter().flat_map(|shared| {
            let shared: &SharedSet = shared;
            shared
                .set
                .families
                .iter()
                .enumerate()
                .map(move |(index, family)| FamilyView {
                    set: &shared.set,
                    family,
                    shared: Some((shared, index)),
                })
        });
        own.chain(shared)
    }

    /// The families written into this set itself, without those it shares.
    fn own_families(&self) -> impl Iterator<Item = FamilyView<'_>> {
        self.families.iter().map(move |family| FamilyView {
            set: self,
            family,
            shared: None,
        })
    }

    fn store(&mut self, text: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(text);
        start..self.text.len()
    }

    fn push(
        &mut self,
        family: FamilyId,
        labels: &[(&str, &str)],
        value: f64,
        count: u64,
        points: &[(f64, f64)],
    ) {
        let start = self.points.len();
        self.points.extend_from_slice(points);
        self.push_with_points(family, labels, value, count, start);
    }

    fn push_with_points(
        &mut self,
        family: FamilyId,
        labels: &[(&str, &str)],
        value: f64,
        count: u64,
        points_start: usize,
    ) {
        debug_assert!(
            (family.0 as usize) < self.families.len(),
            "a family of another set"
        );
        self.sealed = false;
        let first = self.labels.len();
        for &(name, value) in labels {
            let name = self.store(name);
            let value = self.store(value);
            self.labels.push(Label { name, value });
        }
        let text = &self.text;
        self.labels[first..].sort_by(|a, b| text[a.name.clone()].cmp(&text[b.name.clone()]));
        self.samples.push(Sample {
            family: family.0,
            labels: first..self.labels.len(),
            value,
            count,
            points: points_start..self.points.len(),
        });
    }
}

/// A family of a sealed [`MetricSet`], read by the encoder and by tests.
#[derive(Debug, Clone, Copy)]
pub struct FamilyView<'a> {
    set: &'a MetricSet,
    family: &'a Family,
    /// The shared set the family belongs to, and its index there.
    shared: Option<(&'a SharedSet, usize)>,
}

impl<'a> FamilyView<'a> {
    /// The metric name.
    pub fn name(&self) -> &'a str {
        &self.set.text[self.family.name.clone()]
    }

    /// The HELP text, unescaped.
    pub fn help(&self) -> &'a str {
        &self.set.text[self.family.help.clone()]
    }

    /// The type.
    pub fn kind(&self) -> MetricType {
        self.family.kind
    }

    /// The family's samples as `format` writes them, when they come from a [`SharedSet`].
    fn encoded_samples(&self, format: Format) -> Option<&'a str> {
        let (shared, index) = self.shared?;
        let (text, family) = shared.encoded(index, format);
        Some(&text[family.samples.clone()])
    }

    /// The family's HELP and TYPE lines as `format` writes them, when it comes from a
    /// [`SharedSet`].
    fn encoded_header(&self, format: Format) -> Option<&'a str> {
        let (shared, index) = self.shared?;
        let (text, family) = shared.encoded(index, format);
        Some(&text[family.header.clone()])
    }

    /// True when the family comes from a [`SharedSet`].
    fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// True when the family has no sample (it is not written).
    pub fn is_empty(&self) -> bool {
        self.family.samples.is_empty()
    }

    /// The samples, in the order they were written.
    pub fn samples(self) -> impl ExactSizeIterator<Item = SampleView<'a>> + 'a {
        let set = self.set;
        set.samples[self.family.samples.clone()]
            .iter()
            .map(move |sample| SampleView { set, sample })
    }
}

/// A sample of a [`FamilyView`].
#[derive(Debug, Clone, Copy)]
pub struct SampleView<'a> {
    set: &'a MetricSet,
    sample: &'a Sample,
}

impl<'a> SampleView<'a> {
    /// The label pairs, sorted by name.
    pub fn labels(self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        let set = self.set;
        set.labels[self.sample.labels.clone()]
            .iter()
            .map(move |label| {
                (
                    &set.text[label.name.clone()],
                    &set.text[label.value.clone()],
                )
            })
    }

    /// The value of the label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&'a str> {
        self.labels().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The value; for a histogram or summary, the sum.
    pub fn value(&self) -> f64 {
        self.sample.value
    }

    /// A histogram's or summary's count of observations (0 for other types).
    pub fn count(&self) -> u64 {
        self.sample.count
    }

    /// A histogram's `(upper bound, cumulative count)` buckets or a summary's
    /// `(quantile, value)` pairs, as written.
    pub fn points(&self) -> &'a [(f64, f64)] {
        &self.set.points[self.sample.points.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot with a counter, a gauge and a histogram, as a background loop writes it.
    fn snapshot(gpu: &str, up: f64) -> MetricSet {
        let mut set = MetricSet::default();
        let errors = set.counter("demo_errors_total", "Errors.");
        set.sample(errors, &[("gpu", gpu), ("kind", "a")], 3.0);
        set.sample(errors, &[("gpu", gpu), ("kind", "b")], 4.0);
        let state = set.gauge("demo_up", "Up.");
        set.sample(state, &[("gpu", gpu)], up);
        let latency = set.histogram_family("demo_seconds", "Latency.");
        set.histogram(
            latency,
            &[("gpu", gpu)],
            &[(0.1, 1), (f64::INFINITY, 2)],
            0.5,
            2,
        );
        set
    }

    fn encoded(sets: &[&MetricSet], format: Format) -> String {
        let mut out = String::new();
        assert!(encode(sets, format, &mut out).is_empty());
        out
    }

    #[test]
    fn a_shared_set_encodes_as_its_copy_would_and_again_from_its_cache() {
        // Built from two parts, as from per-GPU sets: each name appears twice in it.
        let mut parts = snapshot("0", 1.0);
        parts.append(&snapshot("1", 0.0));
        let shared = Arc::new(SharedSet::new(parts));
        // Kept in name order, so a scrape need not sort them; the samples moved with them.
        let names: Vec<&str> = shared.set().families().map(|f| f.name()).collect();
        assert!(names.is_sorted(), "{names:?}");
        assert_eq!(names.first(), Some(&"demo_errors_total"));
        for format in [Format::Text, Format::OpenMetrics] {
            // Its own families next to a collector's, and one name written by both (merged).
            let mut own = MetricSet::default();
            own.gauge_value("demo_a", "First.", 7.0);
            let errors = own.counter("demo_errors_total", "Errors.");
            own.sample(errors, &[("gpu", "9")], 1.0);
            let mut copied = own.clone();
            copied.append(shared.set());
            copied.seal();
            let mut sharing = own;
            sharing.share(&shared);
            sharing.seal();
            let expected = encoded(&[&copied], format);
            assert_eq!(encoded(&[&sharing], format), expected);
            assert_eq!(encoded(&[&sharing], format), expected, "from the cache");
            assert!(expected.contains("demo_seconds_bucket"));
            assert_eq!(sharing.sample_count(), copied.sample_count());
        }
    }

    #[test]
    fn a_rollback_or_clear_drops_what_was_shared() {
        let shared = Arc::new(SharedSet::new(snapshot("0", 1.0)));
        let mut set = MetricSet::default();
        set.gauge_value("demo_a", "First.", 7.0);
        let before = set.checkpoint();
        set.share(&shared);
        set.seal();
        assert!(set.families().any(|f| f.name() == "demo_up"));
        set.rollback(before);
        set.seal();
        assert!(!set.families().any(|f| f.name() == "demo_up"));
        set.share(&shared);
        set.clear();
        assert!(set.is_empty() && set.families().next().is_none());
        assert_eq!(Arc::strong_count(&shared), 1, "no reference kept");
    }

    fn values(set: &MetricSet, name: &str) -> Vec<(Vec<(String, String)>, f64)> {
        set.families()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.samples())
            .map(|s| {
                (
                    s.labels()
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                        .collect(),
                    s.value(),
                )
            })
            .collect()
    }

    #[test]
    fn interleaved_families_are_grouped_in_written_order() {
        let mut set = MetricSet::default();
        let a = set.counter("a_total", "A.");
        let b = set.gauge("b", "B.");
        set.sample(a, &[("n", "1")], 1.0);
        set.sample(b, &[], 9.0);
        set.sample(a, &[("n", "2")], 2.0);
        set.seal();
        let ns: Vec<f64> = values(&set, "a_total").iter().map(|(_, v)| *v).collect();
        assert_eq!(ns, [1.0, 2.0]);
        assert_eq!(values(&set, "b"), [(vec![], 9.0)]);
    }

    #[test]
    fn labels_are_sorted_by_name() {
        let mut set = MetricSet::default();
        let f = set.gauge("g", "G.");
        set.sample(f, &[("zone", "b"), ("app", "a")], 1.0);
        set.seal();
        assert_eq!(
            values(&set, "g")[0].0,
            [("app".into(), "a".into()), ("zone".into(), "b".into())]
        );
    }

    #[test]
    fn rollback_forgets_families_and_samples_written_since() {
        let mut set = MetricSet::default();
        let kept = set.gauge("kept", "K.");
        set.sample(kept, &[], 1.0);
        let checkpoint = set.checkpoint();
        set.sample(kept, &[("late", "yes")], 2.0);
        let gone = set.gauge("gone", "G.");
        set.sample(gone, &[], 3.0);
        set.rollback(checkpoint);
        set.seal();
        assert_eq!(values(&set, "kept"), [(vec![], 1.0)]);
        assert_eq!(set.families().count(), 1);
        assert_eq!(set.text, "keptK.");
    }

    #[test]
    fn an_appended_set_reads_as_if_written_here() {
        let mut snapshot = MetricSet::default();
        let h = snapshot.histogram_family("h_seconds", "H.");
        snapshot.histogram(h, &[("gpu", "0")], &[(0.5, 1)], 0.25, 1);
        snapshot.gauge_value("g", "G.", 3.0);
        snapshot.seal();
        let mut set = MetricSet::default();
        set.gauge_value("own", "Own.", 1.0);
        set.append(&snapshot);
        set.append(&snapshot);
        set.seal();
        assert_eq!(values(&set, "own"), [(vec![], 1.0)]);
        assert_eq!(values(&set, "g"), [(vec![], 3.0), (vec![], 3.0)]);
        let histograms: Vec<_> = set
            .families()
            .filter(|f| f.name() == "h_seconds")
            .flat_map(|f| f.samples())
            .collect();
        assert_eq!(histograms.len(), 2);
        assert_eq!(histograms[1].points(), [(0.5, 1.0)]);
        assert_eq!(histograms[1].label("gpu"), Some("0"));
    }

    #[test]
    fn a_cleared_set_keeps_its_buffers() {
        let mut set = MetricSet::default();
        for round in 0..3 {
            set.clear();
            let f = set.counter("c_total", "C.");
            for i in 0..100 {
                set.sample(f, &[("i", &i.to_string())], f64::from(round));
            }
            set.seal();
        }
        let capacity = set.capacity_bytes();
        set.clear();
        assert_eq!(set.capacity_bytes(), capacity);
    }
}
