//! The families of a collection cycle, written GPU by GPU into the registry's metric model.
//!
//! Collectors visit one GPU at a time and name families by their static [`Spec`];
//! [`Families`] declares each family in its [`MetricSet`] the first time it is used. The set
//! is kept between cycles, so a steady collection allocates almost nothing.

use kiln_registry::{FamilyId, MetricSet, MetricType};

/// A metric family: name (with `_total` on counters), help and type.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

/// The exposition type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    fn metric_type(self) -> MetricType {
        match self {
            Self::Gauge => MetricType::Gauge,
            Self::Counter => MetricType::Counter,
        }
    }
}

/// Declares a gauge or counter family as a `static`.
#[macro_export]
macro_rules! family {
    ($ident:ident, gauge, $name:literal, $help:literal) => {
        pub(crate) static $ident: $crate::families::Spec = $crate::families::Spec {
            name: $name,
            help: $help,
            kind: $crate::families::Kind::Gauge,
        };
    };
    ($ident:ident, counter, $name:literal, $help:literal) => {
        pub(crate) static $ident: $crate::families::Spec = $crate::families::Spec {
            name: $name,
            help: $help,
            kind: $crate::families::Kind::Counter,
        };
    };
}

/// The `gpu` and `uuid` labels on every per-GPU series.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuLabels {
    gpu: String,
    uuid: String,
}

/// The labels of GPU `index` with `uuid` (empty when it could not be read).
pub fn gpu_labels(index: u32, uuid: &str) -> GpuLabels {
    GpuLabels {
        gpu: index.to_string(),
        uuid: uuid.to_owned(),
    }
}

/// Writes one sample of `spec` into `out`: the GPU's labels (none for `None`) and `extra`.
/// `ids` remembers the family each spec was declared as in `out`.
pub fn write_sample(
    out: &mut MetricSet,
    ids: &mut Vec<(&'static Spec, FamilyId)>,
    spec: &'static Spec,
    labels: Option<&GpuLabels>,
    extra: &[(&str, &str)],
    value: f64,
) {
    let family = match ids.iter().find(|(s, _)| std::ptr::eq(*s, spec)) {
        Some(&(_, family)) => family,
        None => {
            let family = out.family(spec.name, spec.help, spec.kind.metric_type());
            ids.push((spec, family));
            family
        }
    };
    // A GPU's two labels and at most a handful more: on the stack.
    let mut pairs: smallvec::SmallVec<[(&str, &str); 8]> = smallvec::SmallVec::new();
    if let Some(labels) = labels {
        pairs.push(("gpu", labels.gpu.as_str()));
        pairs.push(("uuid", labels.uuid.as_str()));
    }
    pairs.extend_from_slice(extra);
    out.sample(family, &pairs, value);
}

/// One cycle's families: a [`MetricSet`] and which family each [`Spec`] became in it.
#[derive(Debug, Default)]
pub struct Families {
    set: MetricSet,
    ids: Vec<(&'static Spec, FamilyId)>,
}

impl Families {
    /// Empties the set, keeping its buffers.
    pub fn clear(&mut self) {
        self.set.clear();
        self.ids.clear();
    }

    /// Appends one sample of `spec` for the GPU of `labels`, with `extra` label pairs.
    pub fn sample(
        &mut self,
        spec: &'static Spec,
        labels: &GpuLabels,
        extra: &[(&str, &str)],
        value: f64,
    ) {
        write_sample(
            &mut self.set,
            &mut self.ids,
            spec,
            Some(labels),
            extra,
            value,
        );
    }

    /// Where the cycle is now, to go back to with [`Families::rollback`].
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            set: self.set.checkpoint(),
            ids: self.ids.len(),
        }
    }

    /// Drops everything written since `checkpoint`: the half-read samples of a GPU that
    /// was lost during its cycle.
    pub fn rollback(&mut self, checkpoint: &Checkpoint) {
        self.set.rollback(checkpoint.set);
        self.ids.truncate(checkpoint.ids);
    }

    /// Adds every sample of `other` (sealed), each to the family of its name here, so that
    /// one GPU's families read by its own thread join the others' without a family twice.
    pub fn absorb(&mut self, other: &MetricSet, names: &mut Vec<(String, FamilyId)>) {
        let mut pairs: smallvec::SmallVec<[(&str, &str); 12]> = smallvec::SmallVec::new();
        for family in other.families() {
            let id = match names.iter().find(|(name, _)| name == family.name()) {
                Some(&(_, id)) => id,
                None => {
                    let id = self.set.family(family.name(), family.help(), family.kind());
                    names.push((family.name().to_owned(), id));
                    id
                }
            };
            for sample in family.samples() {
                pairs.clear();
                pairs.extend(sample.labels());
                self.set.sample(id, &pairs, sample.value());
            }
        }
    }

    /// The families written, sealed, to publish.
    pub fn finish(&mut self) -> MetricSet {
        self.set.seal();
        self.set.clone()
    }
}

/// Where a cycle was at one point.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    set: kiln_registry::metrics::Checkpoint,
    ids: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_registry::metrics::{Format, encode};

    family!(A, gauge, "a_ratio", "A \"quoted\" help\\.");
    family!(B, counter, "b_total", "B.");

    fn text(families: &mut Families) -> String {
        let set = families.finish();
        let mut out = String::new();
        encode(&[&set], Format::Text, &mut out);
        out
    }

    #[test]
    fn samples_are_grouped_by_family() {
        let mut families = Families::default();
        for gpu in 0..2 {
            let labels = gpu_labels(gpu, "GPU-x");
            families.sample(&B, &labels, &[("xid", "79")], 1.0);
            families.sample(&A, &labels, &[], 0.5);
        }
        assert_eq!(
            text(&mut families),
            "# HELP a_ratio A \"quoted\" help\\\\.\n# TYPE a_ratio gauge\n\
             a_ratio{gpu=\"0\",uuid=\"GPU-x\"} 0.5\n\
             a_ratio{gpu=\"1\",uuid=\"GPU-x\"} 0.5\n\
             # HELP b_total B.\n# TYPE b_total counter\n\
             b_total{gpu=\"0\",uuid=\"GPU-x\",xid=\"79\"} 1\n\
             b_total{gpu=\"1\",uuid=\"GPU-x\",xid=\"79\"} 1\n"
        );
        families.clear();
        assert_eq!(text(&mut families), "", "cleared families render nothing");
    }

    #[test]
    fn absorbed_sets_join_families_of_the_same_name() {
        let mut gpu0 = Families::default();
        gpu0.sample(&A, &gpu_labels(0, "GPU-a"), &[], 1.0);
        gpu0.sample(&B, &gpu_labels(0, "GPU-a"), &[("xid", "79")], 3.0);
        let mut gpu1 = Families::default();
        gpu1.sample(&A, &gpu_labels(1, "GPU-b"), &[], 2.0);
        let mut all = Families::default();
        let mut names = Vec::new();
        all.absorb(&gpu0.finish(), &mut names);
        all.absorb(&gpu1.finish(), &mut names);
        assert_eq!(
            text(&mut all),
            "# HELP a_ratio A \"quoted\" help\\\\.\n# TYPE a_ratio gauge\n\
             a_ratio{gpu=\"0\",uuid=\"GPU-a\"} 1\n\
             a_ratio{gpu=\"1\",uuid=\"GPU-b\"} 2\n\
             # HELP b_total B.\n# TYPE b_total counter\n\
             b_total{gpu=\"0\",uuid=\"GPU-a\",xid=\"79\"} 3\n"
        );
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn rollback_drops_what_was_written_after_the_checkpoint() {
        let mut families = Families::default();
        families.sample(&A, &gpu_labels(0, ""), &[], 1.0);
        let checkpoint = families.checkpoint();
        families.sample(&A, &gpu_labels(1, ""), &[], 1.0);
        families.sample(&B, &gpu_labels(1, ""), &[], 1.0);
        families.rollback(&checkpoint);
        // A family declared after the checkpoint is declared again when used.
        families.sample(&B, &gpu_labels(2, ""), &[], 2.0);
        assert_eq!(
            text(&mut families),
            "# HELP a_ratio A \"quoted\" help\\\\.\n# TYPE a_ratio gauge\na_ratio{gpu=\"0\",uuid=\"\"} 1\n\
             # HELP b_total B.\n# TYPE b_total counter\nb_total{gpu=\"2\",uuid=\"\"} 2\n"
        );
    }
}
