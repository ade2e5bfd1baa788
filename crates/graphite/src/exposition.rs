//! The scrape: every live sample written straight from the store (see
//! [`kiln_registry::TextSource`]), plus what the scrape itself found.

use std::sync::Arc;
use std::time::Duration;

use kiln_registry::{LogLimiter, TextSource};

use crate::pipeline::{Pipeline, now_seconds};

/// Family written after the samples: how many were left out of this scrape.
pub const CONFLICTS_FAMILY: &str = "graphite_scrape_conflicting_series";

/// Serves the store's samples.
#[derive(Debug)]
pub struct Samples(pub Arc<Pipeline>);

static CONFLICT_LOG: LogLimiter = LogLimiter::new(Duration::from_secs(60));

impl TextSource for Samples {
    fn name(&self) -> &str {
        "samples"
    }

    fn write_text(&self, taken: &[&str], out: &mut String) {
        let mut taken = taken.to_vec();
        if let Err(at) = taken.binary_search(&CONFLICTS_FAMILY) {
            taken.insert(at, CONFLICTS_FAMILY);
        }
        let oldest = now_seconds() - self.0.settings().sample_expiry.as_secs_f64();
        let rendered = self.0.store().render(oldest, &taken, out);
        if let Some(first) = rendered.conflicts.first()
            && let Some(suppressed) = CONFLICT_LOG.check()
        {
            let names = first.names.join(" ");
            if first.reserved {
                tracing::warn!(
                    series = first.series,
                    names,
                    conflicts = rendered.conflicts.len(),
                    suppressed,
                    "A Graphite series has the name of one of the exporter's own metrics; it is left out of the scrape."
                );
            } else {
                tracing::warn!(
                    series = first.series,
                    names,
                    conflicts = rendered.conflicts.len(),
                    suppressed,
                    "Several Graphite names map to the same series; the newest sample is served."
                );
            }
        }
        out.push_str("# HELP ");
        out.push_str(CONFLICTS_FAMILY);
        out.push_str(
            " Input names left out of this scrape: they map to the same name and labels as another (whose sample is newer), or to one of the exporter's own metric names.\n# TYPE ",
        );
        out.push_str(CONFLICTS_FAMILY);
        out.push_str(" gauge\n");
        out.push_str(CONFLICTS_FAMILY);
        out.push(' ');
        kiln_registry::metrics::write_float(out, rendered.left_out as f64);
        out.push('\n');
    }
}
