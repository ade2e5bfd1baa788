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

/// One line of `/proc/meminfo`: `Active(anon):  123 kB` is the field `Active(anon)`, in
/// bytes, with the value 125952.
#[derive(Debug, PartialEq)]
struct Field<'a> {
    key: &'a str,
    bytes: bool,
    value: f64,
}

/// The fields of `/proc/meminfo`, borrowed from its text; lines of another shape are skipped.
fn parse(text: &str) -> impl Iterator<Item = Field<'_>> {
    text.lines().filter_map(|line| {
        let (key, rest) = line.split_once(':')?;
        let mut fields = rest.split_ascii_whitespace();
        let value: f64 = fields.next()?.parse().ok()?;
        let bytes = fields.next() == Some("kB");
        Some(Field {
            key,
            bytes,
            value: if bytes { value * 1024.0 } else { value },
        })
    })
}

/// A field's metric suffix, written without building a string: `Active(anon)` in bytes is
/// `Active_anon_bytes`, as node_exporter names it.
struct Suffix<'a>(&'a Field<'a>);

impl std::fmt::Display for Suffix<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for part in self.0.key.split_inclusive(['(', ')']) {
            match part.as_bytes().last() {
                Some(b'(') => {
                    f.write_str(&part[..part.len() - 1])?;
                    f.write_str("_")?;
                }
                Some(b')') => f.write_str(&part[..part.len() - 1])?,
                _ => f.write_str(part)?,
            }
        }
        if self.0.bytes {
            f.write_str("_bytes")?;
        }
        Ok(())
    }
}

impl Collector for Meminfo {
    fn name(&self) -> &str {
        "meminfo"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let text = read::file(&self.path)?;
        let mut any = false;
        for field in parse(&text) {
            let name = Suffix(&field);
            let family = out.family_fmt(
                format_args!("node_memory_{name}"),
                format_args!("Memory information field {name}."),
                MetricType::Gauge,
            );
            out.sample(family, &[], field.value);
            any = true;
        }
        if !any {
            return Err(read::malformed(&self.path, "no fields"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_node_exporter() {
        let text = "MemTotal:       24575612 kB\nActive(anon):      1024 kB\nHugePages_Total:       0\nbroken line\n";
        let fields: Vec<(String, f64)> = parse(text)
            .map(|field| (Suffix(&field).to_string(), field.value))
            .collect();
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
