//! Builds exposition text family by family while the collectors walk GPU by GPU.
//!
//! Collectors visit one GPU at a time, but the text format wants every sample of a family
//! together; each family therefore gets its own body buffer, and [`Families::render`]
//! joins them with their HELP and TYPE lines. The buffers are kept between cycles, so a
//! steady collection allocates almost nothing.

use kiln_registry::metrics::{write_float, write_help, write_label_value};

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
    fn as_str(self) -> &'static str {
        match self {
            Self::Gauge => "gauge",
            Self::Counter => "counter",
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

/// Per-family sample buffers, in the order the families were first written.
#[derive(Debug, Default)]
pub struct Families {
    bodies: Vec<(&'static Spec, String)>,
}

impl Families {
    /// Empties every body, keeping the buffers.
    pub fn clear(&mut self) {
        for (_, body) in &mut self.bodies {
            body.clear();
        }
    }

    fn body(&mut self, spec: &'static Spec) -> &mut String {
        let position = match self.bodies.iter().position(|(s, _)| std::ptr::eq(*s, spec)) {
            Some(position) => position,
            None => {
                self.bodies.push((spec, String::new()));
                self.bodies.len() - 1
            }
        };
        &mut self.bodies[position].1
    }

    /// Appends one sample: `labels` is pre-rendered text (`gpu="0",uuid="…"`), `extra`
    /// further pairs whose values are escaped here.
    pub fn sample(
        &mut self,
        spec: &'static Spec,
        labels: &str,
        extra: &[(&str, &str)],
        value: f64,
    ) {
        let body = self.body(spec);
        body.push_str(spec.name);
        if !labels.is_empty() || !extra.is_empty() {
            body.push('{');
            body.push_str(labels);
            for (k, (name, value)) in extra.iter().enumerate() {
                if k > 0 || !labels.is_empty() {
                    body.push(',');
                }
                body.push_str(name);
                body.push_str("=\"");
                write_label_value(body, value);
                body.push('"');
            }
            body.push('}');
        }
        body.push(' ');
        write_float(body, value);
        body.push('\n');
    }

    /// Where every body ends now, to go back to with [`Families::rollback`].
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.bodies.iter().map(|(_, body)| body.len()).collect())
    }

    /// Drops everything written since `checkpoint`: the half-read samples of a GPU that
    /// was lost during its cycle.
    pub fn rollback(&mut self, checkpoint: &Checkpoint) {
        for (k, (_, body)) in self.bodies.iter_mut().enumerate() {
            body.truncate(checkpoint.0.get(k).copied().unwrap_or(0));
        }
    }

    /// Writes every family that has samples, with its HELP and TYPE lines.
    pub fn render(&self, out: &mut String) {
        for (spec, body) in &self.bodies {
            if body.is_empty() {
                continue;
            }
            write_header(out, spec);
            out.push_str(body);
        }
    }
}

/// The body lengths at one point of a cycle.
#[derive(Debug)]
pub struct Checkpoint(Vec<usize>);

/// The `# HELP` and `# TYPE` lines of `spec`.
pub fn write_header(out: &mut String, spec: &Spec) {
    out.push_str("# HELP ");
    out.push_str(spec.name);
    out.push(' ');
    write_help(out, spec.help);
    out.push_str("\n# TYPE ");
    out.push_str(spec.name);
    out.push(' ');
    out.push_str(spec.kind.as_str());
    out.push('\n');
}

/// Renders `gpu="<index>",uuid="<uuid>"`, the labels on every per-GPU series.
pub fn gpu_labels(index: u32, uuid: &str) -> String {
    let mut labels = String::with_capacity(uuid.len() + 24);
    labels.push_str("gpu=\"");
    labels.push_str(&index.to_string());
    labels.push_str("\",uuid=\"");
    write_label_value(&mut labels, uuid);
    labels.push('"');
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    family!(A, gauge, "a_ratio", "A \"quoted\" help\\.");
    family!(B, counter, "b_total", "B.");

    #[test]
    fn samples_are_grouped_by_family_in_first_use_order() {
        let mut families = Families::default();
        for gpu in 0..2 {
            let labels = gpu_labels(gpu, "GPU-x");
            families.sample(&B, &labels, &[("xid", "79")], 1.0);
            families.sample(&A, &labels, &[], 0.5);
        }
        let mut out = String::new();
        families.render(&mut out);
        assert_eq!(
            out,
            "# HELP b_total B.\n# TYPE b_total counter\n\
             b_total{gpu=\"0\",uuid=\"GPU-x\",xid=\"79\"} 1\n\
             b_total{gpu=\"1\",uuid=\"GPU-x\",xid=\"79\"} 1\n\
             # HELP a_ratio A \"quoted\" help\\\\.\n# TYPE a_ratio gauge\n\
             a_ratio{gpu=\"0\",uuid=\"GPU-x\"} 0.5\n\
             a_ratio{gpu=\"1\",uuid=\"GPU-x\"} 0.5\n"
        );
        families.clear();
        out.clear();
        families.render(&mut out);
        assert_eq!(out, "", "cleared families render nothing");
    }

    #[test]
    fn rollback_drops_what_was_written_after_the_checkpoint() {
        let mut families = Families::default();
        families.sample(&A, "gpu=\"0\"", &[], 1.0);
        let checkpoint = families.checkpoint();
        families.sample(&A, "gpu=\"1\"", &[], 1.0);
        families.sample(&B, "gpu=\"1\"", &[], 1.0);
        families.rollback(&checkpoint);
        let mut out = String::new();
        families.render(&mut out);
        assert_eq!(
            out,
            "# HELP a_ratio A \"quoted\" help\\\\.\n# TYPE a_ratio gauge\na_ratio{gpu=\"0\"} 1\n"
        );
    }

    #[test]
    fn extra_labels_are_escaped_and_bare_samples_have_no_braces() {
        let mut families = Families::default();
        families.sample(&A, "", &[("name", "a\"b")], 1.0);
        families.sample(&A, "", &[], 2.0);
        let mut out = String::new();
        families.render(&mut out);
        assert!(out.contains("a_ratio{name=\"a\\\"b\"} 1\n"), "{out}");
        assert!(out.contains("a_ratio 2\n"), "{out}");
    }
}
