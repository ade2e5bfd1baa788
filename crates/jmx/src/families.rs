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
use std::sync::Arc;

use hashbrown::HashMap;
use kiln_registry::{MetricSet, MetricType};
use smallvec::SmallVec;

use crate::rules::evaluate::Prepared;
use crate::rules::{Kind, Naming};
use crate::walk::Sample;

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

/// Writes `samples` into `out` as families grouped and typed as `naming`'s jmx_exporter
/// does.
pub fn write(samples: Vec<Sample>, naming: Naming, out: &mut MetricSet) -> Dropped {
    let mut dropped = Dropped::default();
    let mut by_name: HashMap<&str, Vec<usize>, foldhash::fast::RandomState> = HashMap::default();
    for (index, sample) in samples.iter().enumerate() {
        by_name
            .entry(&sample.prepared.name)
            .or_default()
            .push(index);
    }
    let mut names: Vec<&str> = by_name.keys().copied().collect();
    names.sort_unstable();

    for name in names {
        let members = &by_name[name];
        let first = &samples[members[0]].prepared;
        let kind = if naming == Naming::V0
            || members
                .iter()
                .all(|&i| samples[i].prepared.kind == first.kind)
        {
            first.kind
        } else {
            Kind::Unknown
        };
        let written_name = match (naming, kind) {
            (Naming::V1, Kind::Counter) => format!("{name}_total"),
            _ => name.to_owned(),
        };
        if RESERVED.contains(&written_name.as_str()) {
            dropped.reserved_names += members.len() as u64;
            continue;
        }
        let mut rows: Vec<(&Prepared, f64)> = Vec::with_capacity(members.len());
        for &i in members {
            let sample = &samples[i];
            if naming == Naming::V1 && kind == Kind::Counter && sample.value < 0.0 {
                dropped.negative_counters += 1;
                continue;
            }
            rows.push((&sample.prepared, sample.value));
        }
        if rows.is_empty() {
            continue;
        }
        // Stable, so the first of a repeated series stays first.
        rows.sort_by(|a, b| a.0.labels.cmp(&b.0.labels));
        let collide = rows.windows(2).any(|w| w[0].0.labels == w[1].0.labels);
        // 1.x tells colliding samples apart by `_objectname`; 0.x repeats the series and
        // Prometheus keeps the first.
        let collide = match naming {
            Naming::V1 => collide,
            Naming::V0 => {
                if collide {
                    let before = rows.len();
                    rows.dedup_by(|later, earlier| later.0.labels == earlier.0.labels);
                    dropped.duplicates += (before - rows.len()) as u64;
                }
                false
            }
        };
        if collide {
            rows.sort_by(|a, b| {
                a.0.labels
                    .cmp(&b.0.labels)
                    .then_with(|| a.0.origin.bytes().cmp(b.0.origin.bytes()))
            });
        }
        // Only the rows of a family that collides need their object names written out.
        let object_names: Vec<String> = if collide {
            rows.iter().map(|(p, _)| p.object_name()).collect()
        } else {
            Vec::new()
        };

        let family = out.family(&written_name, &first.help(), metric_type(kind));
        let mut seen: HashSet<Identity<'_>> = HashSet::new();
        let mut pairs: SmallVec<[(&str, &str); 8]> = SmallVec::new();
        for (row, (prepared, value)) in rows.into_iter().enumerate() {
            let object_name = object_names.get(row).map_or("", String::as_str);
            if collide && !seen.insert((&*prepared.labels, object_name)) {
                dropped.duplicates += 1;
                continue;
            }
            pairs.clear();
            pairs.extend(prepared.labels.iter().map(|(n, v)| (&**n, &**v)));
            if collide {
                pairs.push(("_objectname", object_name));
            }
            out.sample(family, &pairs, value);
        }
    }
    dropped
}

/// The metric model's type for a rule's `type`.
pub(crate) fn metric_type(kind: Kind) -> MetricType {
    match kind {
        Kind::Gauge => MetricType::Gauge,
        Kind::Counter => MetricType::Counter,
        Kind::Unknown => MetricType::Untyped,
    }
}
