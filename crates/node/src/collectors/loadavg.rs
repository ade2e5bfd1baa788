//! `loadavg`: the 1, 5 and 15 minute load averages from `/proc/loadavg`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Loadavg {
        path: settings.paths.proc("loadavg"),
    })
}

struct Loadavg {
    path: PathBuf,
}

impl Collector for Loadavg {
    fn name(&self) -> &str {
        "loadavg"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let [one, five, fifteen] = parse(&text)
            .ok_or_else(|| read::malformed(&self.path, "expected three load averages"))?;
        out.gauge_value("node_load1", "1m load average.", one);
        out.gauge_value("node_load5", "5m load average.", five);
        out.gauge_value("node_load15", "15m load average.", fifteen);
        Ok(())
    }
}

/// The three averages at the start of `/proc/loadavg`.
fn parse(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_ascii_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_averages() {
        assert_eq!(
            parse("0.21 0.37 0.39 1/719 19737\n"),
            Some([0.21, 0.37, 0.39])
        );
        assert_eq!(parse("0.21 x 0.39"), None);
        assert_eq!(parse(""), None);
    }
}
