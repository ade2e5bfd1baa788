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

use crate::rules::{Kind, Naming};
use crate::samples::{SampleRef, Samples};

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
fn resolve(samples: &Samples, naming: Naming, dropped: &mut Dropped) -> Vec<(String, Kind, usize)> {
    let mut families: Vec<(String, Kind, usize)> = samples
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
            Some((name, kind, place))
        })
        .collect();
    families.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.2.cmp(&b.2)));
    families
}

/// The names the families of `samples` are written under.
pub fn written_names(samples: &Samples, naming: Naming) -> impl Iterator<Item = String> {
    resolve(samples, naming, &mut Dropped::default())
        .into_iter()
        .map(|(name, _, _)| name)
}

/// Writes `samples` into `out` as families grouped and typed as `naming`'s jmx_exporter
/// does, with the families of `others` (sealed) in name order among them.
pub fn write(
    samples: &Samples,
    naming: Naming,
    others: &MetricSet,
    out: &mut Exposition,
) -> Dropped {
    let mut dropped = Dropped::default();
    let families = resolve(samples, naming, &mut dropped);
    let (order, ranges) = samples.by_family();

    let mut batch = MetricSet::default();
    // The last name written, so the next write takes the names after it.
    let mut written: Option<&str> = None;
    let mut flush = |batch: &mut MetricSet, upto: Bound<&str>, after: Option<&str>| {
        batch.seal();
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        out.write(&[&*batch, others], (from, upto));
        batch.clear();
    };
    for (place, (name, kind, family)) in families.iter().enumerate() {
        let rows: Vec<SampleRef<'_>> = order[ranges[*family].clone()]
            .iter()
            .map(|&index| samples.get(index))
            .collect();
        let help = samples.families()[*family].first.help();
        write_family(&mut batch, name, &help, *kind, naming, rows, &mut dropped);
        // Families of one name are written by one call, which merges them.
        let last_of_name = families.get(place + 1).is_none_or(|next| next.0 != *name);
        if batch.sample_count() >= WRITE_EVERY && last_of_name {
            flush(&mut batch, Bound::Included(name), written);
            written = Some(name);
        }
    }
    flush(&mut batch, Bound::Unbounded, written);
    dropped
}

/// Writes one family's samples into `out`.
fn write_family(
    out: &mut MetricSet,
    name: &str,
    help: &str,
    kind: Kind,
    naming: Naming,
    mut rows: Vec<SampleRef<'_>>,
    dropped: &mut Dropped,
) {
    if naming == Naming::V1 && kind == Kind::Counter {
        let before = rows.len();
        rows.retain(|row| row.value() >= 0.0);
        dropped.negative_counters += (before - rows.len()) as u64;
    }
    if rows.is_empty() {
        return;
    }
    // Stable, so the first of a repeated series stays first.
    rows.sort_by(|a, b| a.labels().cmp(b.labels()));
    let collide = rows.windows(2).any(|w| w[0].labels() == w[1].labels());
    // 1.x tells colliding samples apart by `_objectname`; 0.x repeats the series and
    // Prometheus keeps the first.
    let collide = match naming {
        Naming::V1 => collide,
        Naming::V0 => {
            if collide {
                let before = rows.len();
                rows.dedup_by(|later, earlier| later.labels() == earlier.labels());
                dropped.duplicates += (before - rows.len()) as u64;
            }
            false
        }
    };
    // Only the rows of a family that collides need their object names written out.
    let mut rows: Vec<(SampleRef<'_>, String)> = rows
        .into_iter()
        .map(|row| {
            let object_name = if collide {
                row.object_name()
            } else {
                String::new()
            };
            (row, object_name)
        })
        .collect();
    if collide {
        rows.sort_by(|a, b| a.0.labels().cmp(b.0.labels()).then_with(|| a.1.cmp(&b.1)));
    }

    let family = out.family(name, help, metric_type(kind));
    let mut seen: HashSet<Identity<'_>> = HashSet::new();
    let mut pairs: SmallVec<[(&str, &str); 8]> = SmallVec::new();
    for (row, object_name) in &rows {
        if collide && !seen.insert((row.labels(), object_name)) {
            dropped.duplicates += 1;
            continue;
        }
        pairs.clear();
        pairs.extend(row.labels().iter().map(|(n, v)| (&**n, &**v)));
        if collide {
            pairs.push(("_objectname", object_name));
        }
        out.sample(family, &pairs, row.value());
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
