//! Build identity: the `--version` text and the `kiln_build_info` metric.

use crate::metrics::MetricSet;

/// Who this binary is and how it was built. Create one with [`build_info!`](crate::build_info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    /// Program name as users type it, e.g. `kiln-node-exporter`.
    pub program: &'static str,
    /// Crate version of the program.
    pub version: &'static str,
    /// Short git revision the workspace was built from, or `unknown`.
    pub revision: &'static str,
    /// Git branch the workspace was built from, or `unknown`.
    pub branch: &'static str,
    /// `rustc` version that compiled it.
    pub rust_version: &'static str,
    /// Target triple.
    pub target: &'static str,
}

/// Builds a [`BuildInfo`] for the calling crate: its package name and version, plus the
/// workspace's git revision and compiler version recorded when kiln-registry was built.
#[macro_export]
macro_rules! build_info {
    ($program:expr) => {
        $crate::BuildInfo::new($program, env!("CARGO_PKG_VERSION"))
    };
}

impl BuildInfo {
    /// Combines a program's name and version with the workspace's build facts.
    pub const fn new(program: &'static str, version: &'static str) -> Self {
        Self {
            program,
            version,
            revision: env!("KILN_GIT_REVISION"),
            branch: env!("KILN_GIT_BRANCH"),
            rust_version: env!("KILN_RUST_VERSION"),
            target: env!("KILN_TARGET"),
        }
    }

    /// The multi-line text `--version` prints, laid out like the Prometheus exporters' own.
    pub fn version_text(&self) -> String {
        format!(
            "{program}, version {version} (branch: {branch}, revision: {revision})\n  \
             rust version:     {rust}\n  platform:         {target}\n",
            program = self.program,
            version = self.version,
            branch = self.branch,
            revision = self.revision,
            rust = self.rust_version,
            target = self.target,
        )
    }

    /// Writes `kiln_build_info{exporter,version,revision,rustversion} 1`.
    pub fn write_metric(&self, out: &mut MetricSet) {
        let family = out.gauge(
            "kiln_build_info",
            "A metric with a constant '1' value labeled by exporter, version, revision and rustversion from which the exporter was built.",
        );
        out.sample(
            family,
            &[
                ("exporter", self.program),
                ("version", self.version),
                ("revision", self.revision),
                ("rustversion", self.rust_version),
            ],
            1.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_text_names_program_and_version_first() {
        let info = BuildInfo::new("kiln-test-exporter", "1.2.3");
        let text = info.version_text();
        assert!(text.starts_with("kiln-test-exporter, version 1.2.3 (branch: "));
        assert!(text.contains("rust version:"));
    }

    #[test]
    fn build_info_metric_has_the_four_labels() {
        let mut set = MetricSet::default();
        BuildInfo::new("x", "0.1.0").write_metric(&mut set);
        set.seal();
        let family = set.families().next().unwrap();
        assert_eq!(family.name(), "kiln_build_info");
        let sample = family.samples().next().unwrap();
        let labels: Vec<_> = sample.labels().map(|(name, _)| name).collect();
        assert_eq!(labels, ["exporter", "revision", "rustversion", "version"]);
    }
}
