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
use kiln_registry::{CollectError, Collector, LogLimiter, MetricSet, MetricType, ScrapeContext};
use kiln_scraper::{Family, MetricType as ParsedType};

use super::{Settings, boxed};

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

/// A family gathered from one or more files, kept until every file is read: a later file
/// may add series to it or supply its HELP.
struct Gathered {
    kind: MetricType,
    help: String,
    files: Vec<PathBuf>,
    has_help: bool,
    /// The identities of the series below, to refuse a series read twice.
    keys: HashSet<String>,
    series: Vec<Series>,
}

/// One series of a file: its labels, and its value or, for a histogram or summary, its
/// sum, count and buckets or quantiles.
struct Series {
    labels: Vec<(String, String)>,
    value: f64,
    count: u64,
    points: Vec<(f64, f64)>,
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

/// The type and series of one parsed family. Histogram and summary samples are grouped
/// into one series per label set.
fn convert(family: &Family<'_>) -> (MetricType, Vec<Series>) {
    match family.kind {
        ParsedType::Histogram => (MetricType::Histogram, convert_grouped(family, "le")),
        ParsedType::Summary => (MetricType::Summary, convert_grouped(family, "quantile")),
        kind => {
            let kind = match kind {
                ParsedType::Counter => MetricType::Counter,
                ParsedType::Gauge => MetricType::Gauge,
                _ => MetricType::Untyped,
            };
            let series = family
                .samples
                .iter()
                .map(|sample| Series {
                    labels: sample
                        .labels
                        .iter()
                        .map(|l| (l.name.to_owned(), l.value.to_string()))
                        .collect(),
                    value: sample.value,
                    count: 0,
                    points: Vec::new(),
                })
                .collect();
            (kind, series)
        }
    }
}

fn convert_grouped(family: &Family<'_>, special: &str) -> Vec<Series> {
    let histogram = special == "le";
    let mut groups: BTreeMap<Vec<(String, String)>, Series> = BTreeMap::new();
    for sample in &family.samples {
        let labels: Vec<(String, String)> = sample
            .labels
            .iter()
            .filter(|l| l.name != special)
            .map(|l| (l.name.to_owned(), l.value.to_string()))
            .collect();
        let group = groups.entry(labels).or_insert_with(|| Series {
            labels: Vec::new(),
            value: 0.0,
            count: 0,
            points: Vec::new(),
        });
        let suffix = sample.name.strip_prefix(family.name).unwrap_or_default();
        match suffix {
            "_sum" => group.value = sample.value,
            "_count" => group.count = sample.value as u64,
            _ => {
                let bound = sample.label(special).and_then(parse_bound);
                if let Some(bound) = bound.filter(|b| !(histogram && b.is_infinite())) {
                    group.points.push((bound, sample.value));
                }
            }
        }
    }
    groups
        .into_iter()
        .map(|(labels, mut series)| {
            series.labels = labels;
            series
        })
        .collect()
}

fn parse_bound(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// The identity of a series within its family: its labels, sorted.
fn series_key(labels: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = labels.iter().collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}\u{0}{v}\u{0}"))
        .collect()
}

/// Writes a gathered family, giving every series the same label names (missing ones as
/// "", as node_exporter does).
fn write(name: &str, gathered: &Gathered, out: &mut MetricSet) {
    let names: BTreeSet<&str> = gathered
        .series
        .iter()
        .flat_map(|s| s.labels.iter().map(|(n, _)| n.as_str()))
        .collect();
    let family = out.family(name, &gathered.help, gathered.kind);
    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(names.len());
    for series in &gathered.series {
        labels.clear();
        labels.extend(series.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        for name in &names {
            if !series.labels.iter().any(|(n, _)| n == name) {
                labels.push((name, ""));
            }
        }
        match gathered.kind {
            MetricType::Histogram => {
                let buckets: Vec<(f64, u64)> =
                    series.points.iter().map(|&(b, c)| (b, c as u64)).collect();
                out.histogram(family, &labels, &buckets, series.value, series.count);
            }
            MetricType::Summary => {
                out.summary(family, &labels, &series.points, series.value, series.count);
            }
            _ => out.sample(family, &labels, series.value),
        }
    }
}

impl Collector for Textfile {
    fn name(&self) -> &str {
        "textfile"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut error = false;
        let mut gathered: BTreeMap<String, Gathered> = BTreeMap::new();
        let mtimes = out.gauge(
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
                    Ok(mtime) => {
                        out.sample(mtimes, &[("file", &file.display().to_string())], mtime)
                    }
                    Err(problem) => {
                        self.warn(&file, &problem);
                        error = true;
                    }
                }
            }
        }
        for (name, mut g) in gathered {
            if !g.has_help {
                let files: Vec<String> = g.files.iter().map(|f| f.display().to_string()).collect();
                g.help = format!("Metric read from {}", files.join(", "));
            }
            write(&name, &g, out);
        }
        out.gauge_value(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
            if error { 1.0 } else { 0.0 },
        );
        Ok(())
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
            let (kind, series) = convert(parsed);
            let has_help = parsed.help.is_some();
            let help = parsed.help.as_deref().unwrap_or_default();
            let Some(existing) = gathered.get_mut(parsed.name) else {
                gathered.insert(
                    parsed.name.to_owned(),
                    Gathered {
                        kind,
                        help: help.to_owned(),
                        files: vec![file.to_owned()],
                        has_help,
                        keys: series.iter().map(|s| series_key(&s.labels)).collect(),
                        series,
                    },
                );
                continue;
            };
            if existing.kind != kind {
                conflicts.push(format!(
                    "{} has another type in an earlier file; dropped",
                    parsed.name
                ));
                continue;
            }
            if has_help && existing.has_help && existing.help != help {
                conflicts.push(format!(
                    "{} has other HELP text in an earlier file; dropped",
                    parsed.name
                ));
                continue;
            }
            if has_help && !existing.has_help {
                existing.help = help.to_owned();
                existing.has_help = true;
            }
            existing.files.push(file.to_owned());
            for one in series {
                if existing.keys.insert(series_key(&one.labels)) {
                    existing.series.push(one);
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
