//! `filefd`: allocated and maximum file handles from `/proc/sys/fs/file-nr`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Filefd {
        path: settings.paths.proc("sys/fs/file-nr"),
    })
}

struct Filefd {
    path: PathBuf,
}

/// `allocated  unused  maximum`.
fn parse(text: &str) -> Option<(f64, f64)> {
    let fields: Vec<f64> = text
        .split_ascii_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    match fields[..] {
        [allocated, _, maximum] => Some((allocated, maximum)),
        _ => None,
    }
}

impl Collector for Filefd {
    fn name(&self) -> &str {
        "filefd"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let (allocated, maximum) =
            parse(&text).ok_or_else(|| read::malformed(&self.path, "expected three numbers"))?;
        out.gauge_value(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
            allocated,
        );
        out.gauge_value(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
            maximum,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn three_numbers() {
        assert_eq!(
            super::parse("1024\t0\t1631329\n"),
            Some((1024.0, 1631329.0))
        );
        assert_eq!(super::parse("1024 0"), None);
    }
}
