//! `meminfo`: every line of `/proc/meminfo` as `node_memory_<Field>_bytes` (or without the
//! suffix for counts such as `HugePages_Total`). The set follows whatever the kernel has.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Meminfo {
        path: settings.paths.proc("meminfo"),
    })
}

struct Meminfo {
    path: PathBuf,
}

/// `(metric suffix, value)` pairs: `Active(anon):  123 kB` becomes `("Active_anon_bytes", 125952)`.
fn parse(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let mut fields = rest.split_ascii_whitespace();
            let mut value: f64 = fields.next()?.parse().ok()?;
            let key = key.replace('(', "_").replace(')', "");
            let name = match fields.next() {
                Some("kB") => {
                    value *= 1024.0;
                    format!("{key}_bytes")
                }
                _ => key,
            };
            Some((name, value))
        })
        .collect()
}

impl Collector for Meminfo {
    fn name(&self) -> &str {
        "meminfo"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let fields = parse(&read::file(&self.path)?);
        if fields.is_empty() {
            return Err(read::malformed(&self.path, "no fields"));
        }
        for (name, value) in &fields {
            let family = out.family_fmt(
                format_args!("node_memory_{name}"),
                format_args!("Memory information field {name}."),
                MetricType::Gauge,
            );
            out.sample(family, &[], *value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_node_exporter() {
        let fields = parse(
            "MemTotal:       24575612 kB\nActive(anon):      1024 kB\nHugePages_Total:       0\nbroken line\n",
        );
        assert_eq!(
            fields,
            [
                ("MemTotal_bytes".to_owned(), 24575612.0 * 1024.0),
                ("Active_anon_bytes".to_owned(), 1024.0 * 1024.0),
                ("HugePages_Total".to_owned(), 0.0),
            ]
        );
    }
}
