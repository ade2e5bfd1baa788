//! `textfile`: metrics that scripts and cron jobs write as `*.prom` files into the
//! `--collector.textfile.directory` directories (globs allowed).
//!
//! Upstream's rules hold: a file that does not parse, or carries client-side timestamps,
//! is skipped whole and sets `node_textfile_scrape_error 1`; the other files still count.
//! A family without HELP gets `Metric read from <files>`; series that lack a label get it
//! as "". Where node_exporter fails the whole scrape, on the same series in two files
//! (issue #2317) or a family with different types in two files, the later one is dropped
//! and reported through `node_textfile_scrape_error` and the log instead.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use kiln_registry::config::ConfigError;
use kiln_registry::metrics::LabelPair;
use kiln_registry::{
    CollectError, Collector, FamilyBuilder, LogLimiter, MetricFamily, ScrapeContext,
};
use kiln_scraper::{Family, MetricType as ParsedType};

use super::{Settings, boxed, gauge};

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    let directories = &settings.options.textfile_directories;
    for pattern in directories {
        glob::Pattern::new(pattern).map_err(|e| {
            crate::filter::flag_error(
                "collector.textfile.directory",
                format!("invalid glob {pattern:?}: {e}"),
            )
        })?;
    }
    boxed(Textfile {
        directories: directories.clone(),
        warnings: LogLimiter::new(std::time::Duration::from_secs(300)),
    })
}

struct Textfile {
    directories: Vec<String>,
    warnings: LogLimiter,
}

/// A family gathered from one or more files.
struct Gathered {
    family: MetricFamily,
    files: Vec<PathBuf>,
    has_help: bool,
    series: HashSet<String>,
}

impl Textfile {
    /// The directories the flags name today; globs are expanded on every scrape, so a
    /// directory created later is picked up without a restart.
    fn directories(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for pattern in &self.directories {
            if !pattern.contains(['*', '?', '[']) {
                out.push(PathBuf::from(pattern));
                continue;
            }
            if let Ok(paths) = glob::glob(pattern) {
                out.extend(paths.filter_map(Result::ok).filter(|p| p.is_dir()));
            }
        }
        out
    }

    fn warn(&self, file: &Path, problem: &str) {
        if let Some(suppressed) = self.warnings.check() {
            tracing::error!(collector = "textfile", file = %file.display(), suppressed, "{problem}");
        }
    }
}

/// The `.prom` files of a directory, sorted.
fn prom_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(".prom"))
        })
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Converts one parsed family into the metric model. Histogram and summary samples are
/// grouped into one metric per label set.
fn convert(family: &Family<'_>) -> MetricFamily {
    let help = family.help.as_deref().unwrap_or_default();
    match family.kind {
        ParsedType::Histogram | ParsedType::Summary => convert_grouped(family, help),
        kind => {
            let mut builder = match kind {
                ParsedType::Counter => FamilyBuilder::counter(family.name, help),
                ParsedType::Gauge => FamilyBuilder::gauge(family.name, help),
                _ => FamilyBuilder::untyped(family.name, help),
            };
            for sample in &family.samples {
                let labels: Vec<(&str, &str)> = sample
                    .labels
                    .iter()
                    .map(|l| (l.name, l.value.as_ref()))
                    .collect();
                builder.push(&labels, sample.value);
            }
            builder.build()
        }
    }
}

#[derive(Default)]
struct Group {
    points: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

fn convert_grouped(family: &Family<'_>, help: &str) -> MetricFamily {
    let histogram = family.kind == ParsedType::Histogram;
    let special = if histogram { "le" } else { "quantile" };
    let mut groups: BTreeMap<Vec<(String, String)>, Group> = BTreeMap::new();
    for sample in &family.samples {
        let labels: Vec<(String, String)> = sample
            .labels
            .iter()
            .filter(|l| l.name != special)
            .map(|l| (l.name.to_owned(), l.value.to_string()))
            .collect();
        let group = groups.entry(labels).or_default();
        let suffix = sample.name.strip_prefix(family.name).unwrap_or_default();
        match suffix {
            "_sum" => group.sum = sample.value,
            "_count" => group.count = sample.value,
            _ => {
                let bound = sample.label(special).and_then(parse_bound);
                if let Some(bound) = bound.filter(|b| !(histogram && b.is_infinite())) {
                    group.points.push((bound, sample.value));
                }
            }
        }
    }
    let mut builder = if histogram {
        FamilyBuilder::histogram(family.name, help)
    } else {
        FamilyBuilder::summary(family.name, help)
    };
    for (labels, group) in groups {
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if histogram {
            let buckets: Vec<(f64, u64)> =
                group.points.iter().map(|&(b, c)| (b, c as u64)).collect();
            builder.push_histogram(&labels, &buckets, group.sum, group.count as u64);
        } else {
            builder.push_summary(&labels, &group.points, group.sum, group.count as u64);
        }
    }
    builder.build()
}

fn parse_bound(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// The identity of a series within its family: its labels, sorted.
fn series_key(labels: &[LabelPair]) -> String {
    let mut pairs: Vec<(&str, &str)> = labels.iter().map(|l| (l.name(), l.value())).collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}\u{0}{v}\u{0}"))
        .collect()
}

/// Gives every series of the family the same label names, missing ones as "".
fn fill_missing_labels(family: &mut MetricFamily) {
    let names: BTreeSet<String> = family
        .get_metric()
        .iter()
        .flat_map(|m| m.get_label().iter().map(|l| l.name().to_owned()))
        .collect();
    for metric in family.mut_metric() {
        if metric.get_label().len() == names.len() {
            continue;
        }
        let mut labels = metric.take_label();
        for name in &names {
            if !labels.iter().any(|l| l.name() == name) {
                let mut pair = LabelPair::default();
                pair.set_name(name.clone());
                pair.set_value(String::new());
                labels.push(pair);
            }
        }
        labels.sort_by(|a, b| a.name().cmp(b.name()));
        metric.set_label(labels);
    }
}

impl Collector for Textfile {
    fn name(&self) -> &str {
        "textfile"
    }

    fn collect(&self, _: &ScrapeContext) -> Result<Vec<MetricFamily>, CollectError> {
        let mut error = false;
        let mut gathered: BTreeMap<String, Gathered> = BTreeMap::new();
        let mut mtimes = FamilyBuilder::gauge(
            "node_textfile_mtime_seconds",
            "Unixtime mtime of textfiles successfully read.",
        );
        for dir in self.directories() {
            let files = match prom_files(&dir) {
                Ok(files) => files,
                Err(e) => {
                    self.warn(&dir, &format!("Cannot read the textfile directory: {e}"));
                    error = true;
                    continue;
                }
            };
            for file in files {
                match self.read_file(&file, &mut gathered) {
                    Ok(mtime) => mtimes.push(&[("file", &file.display().to_string())], mtime),
                    Err(problem) => {
                        self.warn(&file, &problem);
                        error = true;
                    }
                }
            }
        }
        let mut families = Vec::with_capacity(gathered.len() + 2);
        for (_, mut g) in gathered {
            if !g.has_help {
                let files: Vec<String> = g.files.iter().map(|f| f.display().to_string()).collect();
                g.family
                    .set_help(format!("Metric read from {}", files.join(", ")));
            }
            fill_missing_labels(&mut g.family);
            families.push(g.family);
        }
        families.push(mtimes.build());
        families.push(gauge(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
            if error { 1.0 } else { 0.0 },
        ));
        Ok(families)
    }
}

impl Textfile {
    /// Reads one file into `gathered`; returns its mtime, or why it was skipped. A
    /// conflict with an earlier file drops only the conflicting family or series.
    fn read_file(
        &self,
        file: &Path,
        gathered: &mut BTreeMap<String, Gathered>,
    ) -> Result<f64, String> {
        let text =
            crate::read::read_text(file).map_err(|e| format!("Cannot read the file: {e}"))?;
        let mtime = std::fs::metadata(file)
            .and_then(|m| m.modified())
            .map_err(|e| format!("Cannot stat the file: {e}"))?
            .duration_since(UNIX_EPOCH)
            // Whole seconds, as node_exporter reports them.
            .map(|d| d.as_secs() as f64)
            .unwrap_or(0.0);
        let exposition = kiln_scraper::parse(&text)
            .map_err(|e| format!("Skipping the file, it does not parse: {e}"))?;
        if let Some(sample) = exposition.samples().find(|s| s.timestamp_ms.is_some()) {
            return Err(format!(
                "Skipping the file: textfile metrics must not carry timestamps (line {}, {})",
                sample.line, sample.name
            ));
        }
        let mut conflicts = Vec::new();
        for parsed in &exposition.families {
            if parsed.samples.is_empty() {
                continue;
            }
            let family = convert(parsed);
            let has_help = parsed.help.is_some();
            let Some(existing) = gathered.get_mut(parsed.name) else {
                let series = family
                    .get_metric()
                    .iter()
                    .map(|m| series_key(m.get_label()))
                    .collect();
                gathered.insert(
                    parsed.name.to_owned(),
                    Gathered {
                        family,
                        files: vec![file.to_owned()],
                        has_help,
                        series,
                    },
                );
                continue;
            };
            if existing.family.get_field_type() != family.get_field_type() {
                conflicts.push(format!(
                    "{} has another type in an earlier file; dropped",
                    parsed.name
                ));
                continue;
            }
            if has_help && existing.has_help && existing.family.help() != family.help() {
                conflicts.push(format!(
                    "{} has other HELP text in an earlier file; dropped",
                    parsed.name
                ));
                continue;
            }
            if has_help && !existing.has_help {
                existing.family.set_help(family.help().to_owned());
                existing.has_help = true;
            }
            existing.files.push(file.to_owned());
            for metric in family.get_metric() {
                if existing.series.insert(series_key(metric.get_label())) {
                    existing.family.mut_metric().push(metric.clone());
                } else {
                    conflicts.push(format!(
                        "{} has a series already read from an earlier file; dropped",
                        parsed.name
                    ));
                }
            }
        }
        if !conflicts.is_empty() {
            return Err(conflicts.join("; "));
        }
        Ok(mtime)
    }
}
