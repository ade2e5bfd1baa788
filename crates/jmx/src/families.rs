//! Samples to metric families, grouped as the module's jmx_exporter version groups them.
//!
//! With 1.x naming, samples of one name form a family whose type is their common type
//! (`untyped` if they disagree), counters are written with `_total`, and samples whose
//! labels collide all get an `_objectname` label. Where jmx_exporter 1.x fails the whole
//! scrape (a negative counter, samples still colliding after `_objectname`), only the
//! offending sample is dropped and counted.
//!
//! With 0.x naming, a family takes the type and help of its first sample, names are written
//! as they are, and a repeated series keeps its first sample (Prometheus keeps the first of
//! the repeats 0.x writes); negative counters are written, as 0.x writes them.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::Arc;

use kiln_registry::{Exposition, MetricSet, MetricType};
use smallvec::SmallVec;

use crate::rules::evaluate::Labels;
use crate::rules::{Kind, Naming};
use crate::samples::{Row, Rows, SampleRef, Tables};

/// Labels and `_objectname` of a written sample.
type Identity<'a> = (&'a [(Arc<str>, Arc<str>)], &'a str);

/// What writing dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Counter samples with a negative value.
    pub negative_counters: u64,
    /// Samples whose name and labels repeat another's, even with `_objectname`.
    pub duplicates: u64,
    /// Samples whose name is one the probe itself writes.
    pub reserved_names: u64,
}

/// Names the probe writes itself; a bean family of the same name would collide.
const RESERVED: [&str; 3] = [
    "jmx_scrape_duration_seconds",
    "jmx_scrape_error",
    "jmx_scrape_cached_beans",
];

/// Families are encoded and their samples let go once this many samples are waiting, so
/// only a few families are ever held in the metric model beside the exposition.
const WRITE_EVERY: usize = 4096;

/// The name a family of `name` is written under: 1.x counters end in `_total`.
pub fn written_name(name: &str, kind: Kind, naming: Naming) -> String {
    match (naming, kind) {
        (Naming::V1, Kind::Counter) => format!("{name}_total"),
        _ => name.to_owned(),
    }
}

/// The families of `samples` as they will be written: name, type and place, in name
/// order; families whose name the probe writes itself are left out (and counted).
fn resolve(samples: &Rows, naming: Naming, dropped: &mut Dropped) -> Vec<(String, Kind, u32)> {
    let mut families: Vec<(String, Kind, u32)> = samples
        .families()
        .iter()
        .enumerate()
        .filter_map(|(place, family)| {
            let kind = if naming == Naming::V0 || !family.mixed {
                family.first.kind
            } else {
                Kind::Unknown
            };
            let name = written_name(&family.first.name, kind, naming);
            if RESERVED.contains(&name.as_str()) {
                dropped.reserved_names += family.samples as u64;
                return None;
            }
            Some((name, kind, place as u32))
        })
        .collect();
    families.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.2.cmp(&b.2)));
    families
}

/// The names the families of `samples` are written under.
pub fn written_names(samples: &Rows, naming: Naming) -> impl Iterator<Item = String> {
    resolve(samples, naming, &mut Dropped::default())
        .into_iter()
        .map(|(name, _, _)| name)
}

/// Rows let go at a time while families are written, in bytes: each is a shrink of the
/// rows' buffer, which gives the memory back.
const RELEASE_EVERY: usize = 4 << 20;

/// Writes `samples` into `out` as families grouped and typed as `naming`'s jmx_exporter
/// does, with the families of `others` (sealed) in name order among them.
///
/// Memory: the rows are put in reverse order of writing, so each family written is cut off
/// the end of them and the exposition grows as they shrink.
pub fn write(
    mut samples: Rows,
    naming: Naming,
    others: &MetricSet,
    out: &mut Exposition,
) -> Dropped {
    let mut dropped = Dropped::default();
    let families = resolve(&samples, naming, &mut dropped);
    let mut rank = vec![u32::MAX; samples.families().len()];
    for (place, (_, _, family)) in families.iter().enumerate() {
        rank[*family as usize] = place as u32;
    }
    let (rows, tables) = samples.split();
    // Stable, so each family's rows stay in answer order; families left out come first and
    // are never reached.
    rows.sort_by_key(|row| std::cmp::Reverse(rank[row.family as usize]));

    let mut batches = Batches {
        batch: MetricSet::default(),
        others,
        out,
        family: None,
    };
    let mut released = 0;
    for (name, kind, family) in &families {
        let family = tables.family_at(*family);
        let start = rows.len() - family.samples;
        batches.start(name, &family.first.help(), *kind);
        write_family(
            &mut batches,
            tables,
            *kind,
            naming,
            &mut rows[start..],
            &mut dropped,
        );
        rows.truncate(start);
        released += family.samples * std::mem::size_of::<Row>();
        if released >= RELEASE_EVERY {
            rows.shrink_to_fit();
            released = 0;
        }
    }
    batches.flush(Bound::Unbounded);
    dropped
}

/// Samples on their way into the exposition, encoded every [`WRITE_EVERY`] samples so that
/// the metric model never holds more than that many; a large family is written in several
/// parts, each continuing the one before.
struct Batches<'a> {
    batch: MetricSet,
    /// Families written among these, in name order.
    others: &'a MetricSet,
    out: &'a mut Exposition,
    /// The family being written: its name, help and type, and its place in `batch` once it
    /// has a sample there.
    family: Option<(String, String, Kind, Option<kiln_registry::FamilyId>)>,
}

impl Batches<'_> {
    /// Starts the family `name`.
    fn start(&mut self, name: &str, help: &str, kind: Kind) {
        self.family = Some((name.to_owned(), help.to_owned(), kind, None));
    }

    /// Adds a sample to the family started last.
    fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let Some((name, help, kind, id)) = &mut self.family else {
            return;
        };
        let id = *id.get_or_insert_with(|| self.batch.family(name, help, metric_type(*kind)));
        self.batch.sample(id, labels, value);
        if self.batch.sample_count() >= WRITE_EVERY {
            let name = name.clone();
            self.flush(Bound::Included(&name));
        }
    }

    /// Encodes what is waiting, with the other families up to `upto`.
    fn flush(&mut self, upto: Bound<&str>) {
        self.batch.seal();
        self.out.write(&[&self.batch, self.others], upto);
        self.batch.clear();
        if let Some((_, _, _, id)) = &mut self.family {
            *id = None;
        }
    }
}

/// Writes `rows`, the samples of the family started last in `out` in answer order, of type
/// `kind`.
fn write_family(
    out: &mut Batches<'_>,
    tables: &Tables,
    kind: Kind,
    naming: Naming,
    rows: &mut [Row],
    dropped: &mut Dropped,
) {
    let sample = |row: &Row| SampleRef::new(tables, *row);
    // Stable, so the first of a repeated series stays first.
    rows.sort_by(|a, b| sample(a).labels().cmp(sample(b).labels()));
    let negative = |row: &&Row| naming == Naming::V1 && kind == Kind::Counter && row.value < 0.0;
    dropped.negative_counters += rows.iter().filter(negative).count() as u64;
    let kept = || rows.iter().filter(|row| !negative(row)).map(sample);
    let collide = kept()
        .zip(kept().skip(1))
        .any(|(a, b)| a.labels() == b.labels());
    if collide && naming == Naming::V1 {
        // 1.x tells colliding samples apart by `_objectname`.
        let mut named: Vec<(SampleRef<'_>, String)> = kept()
            .map(|sample| (sample, sample.object_name()))
            .collect();
        named.sort_by(|a, b| a.0.labels().cmp(b.0.labels()).then_with(|| a.1.cmp(&b.1)));
        let mut seen: HashSet<Identity<'_>> = HashSet::new();
        let mut pairs: SmallVec<[(&str, &str); 8]> = SmallVec::new();
        for (sample, object_name) in &named {
            if !seen.insert((sample.labels(), object_name)) {
                dropped.duplicates += 1;
                continue;
            }
            pairs.clear();
            pairs.extend(sample.labels().iter().map(|(n, v)| (&**n, &**v)));
            pairs.push(("_objectname", object_name));
            out.sample(&pairs, sample.value());
        }
        return;
    }
    let mut pairs: SmallVec<[(&str, &str); 8]> = SmallVec::new();
    let mut previous: Option<&Labels> = None;
    for sample in kept() {
        // 0.x repeats the series and Prometheus keeps the first.
        if previous == Some(sample.labels()) {
            dropped.duplicates += 1;
            continue;
        }
        previous = Some(sample.labels());
        pairs.clear();
        pairs.extend(sample.labels().iter().map(|(n, v)| (&**n, &**v)));
        out.sample(&pairs, sample.value());
    }
}

/// The metric model's type for a rule's `type`.
pub(crate) fn metric_type(kind: Kind) -> MetricType {
    match kind {
        Kind::Gauge => MetricType::Gauge,
        Kind::Counter => MetricType::Counter,
        Kind::Unknown => MetricType::Untyped,
    }
}
