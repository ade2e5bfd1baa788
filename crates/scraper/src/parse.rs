//! A strict, single-pass parser of the Prometheus text format 0.0.4 and OpenMetrics 1.0 text.
//!
//! Every violation is reported with its line and a reason; parsing goes on after one so a
//! single run lists them all. Names, label values without escapes and HELP texts borrow
//! from the input.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::model::{Exposition, Family, Format, Label, MetricType, Sample};

/// Most violations collected before the rest are summarised, so garbage input stays cheap.
const MAX_VIOLATIONS: usize = 1000;

/// One problem in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The input is not valid exposition text; every violation found is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The violations, in line order.
    pub violations: Vec<Violation>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, violation) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{violation}")?;
        }
        Ok(())
    }
}

/// What a lenient parse found: everything that could be read, and what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<'a> {
    /// Families and samples that parsed.
    pub exposition: Exposition<'a>,
    /// Violations, in line order.
    pub violations: Vec<Violation>,
}

impl<'a> Parsed<'a> {
    /// The exposition if there were no violations.
    pub fn into_result(self) -> Result<Exposition<'a>, ParseError> {
        if self.violations.is_empty() {
            Ok(self.exposition)
        } else {
            Err(ParseError {
                violations: self.violations,
            })
        }
    }
}

/// Parses text format 0.0.4 strictly.
pub fn parse(text: &str) -> Result<Exposition<'_>, ParseError> {
    parse_with(text, Format::Text).into_result()
}

/// Parses either format, returning what parsed together with every violation.
pub fn parse_with(text: &str, format: Format) -> Parsed<'_> {
    let mut parser = Parser {
        format,
        families: Vec::new(),
        by_name: HashMap::default(),
        series: HashMap::default(),
        violations: Vec::new(),
        current: None,
        eof_line: None,
    };
    let mut line_no = 0;
    for line in text.split('\n') {
        line_no += 1;
        parser.line(line, line_no);
    }
    // A final newline ends the last line; it does not start an empty one.
    if text.ends_with('\n') {
        line_no -= 1;
    }
    parser.finish(line_no)
}

/// FxHash: a fast non-cryptographic hash, enough for telling series apart.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            self.add(word);
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

struct Parser<'a> {
    format: Format,
    families: Vec<Family<'a>>,
    by_name: FxMap<&'a str, usize>,
    /// Series key hash to (family, sample) index, for duplicate detection.
    series: FxMap<u64, (u32, u32)>,
    violations: Vec<Violation>,
    current: Option<usize>,
    eof_line: Option<usize>,
}

/// Characters allowed in metric names, `[a-zA-Z0-9_:]`.
const fn name_table(colon: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric() || b == b'_' || (colon && b == b':');
        c += 1;
    }
    table
}
static METRIC_CHARS: [bool; 256] = name_table(true);
static LABEL_CHARS: [bool; 256] = name_table(false);

impl<'a> Parser<'a> {
    fn violation(&mut self, line: usize, message: impl Into<String>) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(Violation {
                line,
                message: message.into(),
            });
        }
    }

    fn line(&mut self, raw: &'a str, no: usize) {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(eof) = self.eof_line {
            if !(line.is_empty() && self.format == Format::OpenMetrics) || no != eof + 1 {
                self.violation(no, "content after # EOF");
            }
            return;
        }
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            if self.format == Format::OpenMetrics {
                self.violation(no, "empty lines are not allowed in OpenMetrics");
            }
            return;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            self.comment(comment, no);
        } else if let Err(message) = self.sample(trimmed, no) {
            self.violation(no, message);
        }
    }

    fn comment(&mut self, comment: &'a str, no: usize) {
        if self.format == Format::OpenMetrics && comment == " EOF" {
            self.eof_line = Some(no);
            return;
        }
        let Some(rest) = comment.strip_prefix(' ') else {
            if self.format == Format::OpenMetrics {
                self.violation(no, "comments are not allowed in OpenMetrics");
            }
            return;
        };
        let rest = rest.trim_start_matches([' ', '\t']);
        let (keyword, rest) = split_word(rest);
        match keyword {
            "HELP" | "TYPE" => {}
            "UNIT" if self.format == Format::OpenMetrics => {}
            _ => {
                if self.format == Format::OpenMetrics {
                    self.violation(no, format!("unknown descriptor {keyword:?}"));
                }
                return;
            }
        }
        let (name, rest) = split_word(rest.trim_start_matches([' ', '\t']));
        if name.is_empty() {
            self.violation(no, format!("{keyword} line without a metric name"));
            return;
        }
        if !valid_metric_name(name) {
            self.violation(
                no,
                format!("invalid metric name {name:?} in {keyword} line"),
            );
            return;
        }
        let argument = match self.format {
            // The text format allows any blanks between the name and the docstring.
            Format::Text => rest.trim_start_matches([' ', '\t']),
            Format::OpenMetrics => rest.strip_prefix(' ').unwrap_or(rest),
        };
        let Some(index) = self.metadata_family(name, keyword, no) else {
            return;
        };
        match keyword {
            "HELP" => {
                if self.families[index].help.is_some() {
                    self.violation(no, format!("second HELP line for metric name {name:?}"));
                    return;
                }
                match unescape(argument, self.format == Format::OpenMetrics) {
                    Ok(help) => self.families[index].help = Some(help),
                    Err(message) => self.violation(no, format!("in HELP of {name:?}: {message}")),
                }
            }
            "TYPE" => {
                let word = argument.trim_end_matches([' ', '\t']);
                let family = &self.families[index];
                if family.has_type {
                    self.violation(no, format!("second TYPE line for metric name {name:?}"));
                } else if !family.samples.is_empty() {
                    self.violation(no, format!("TYPE line for {name:?} after its samples"));
                } else if let Some(kind) = MetricType::parse(word, self.format) {
                    if self.format == Format::OpenMetrics
                        && kind == MetricType::Counter
                        && name.ends_with("_total")
                    {
                        self.violation(
                            no,
                            format!("counter family {name:?} must not end in _total"),
                        );
                    }
                    let family = &mut self.families[index];
                    family.kind = kind;
                    family.has_type = true;
                } else {
                    self.violation(no, format!("unknown metric type {word:?} for {name:?}"));
                }
            }
            _ => {
                let unit = argument.trim_end_matches([' ', '\t']);
                if !unit.is_empty() && !name.ends_with(&format!("_{unit}")) {
                    self.violation(
                        no,
                        format!("unit {unit:?} is not a suffix of the metric name {name:?}"),
                    );
                }
                self.families[index].unit = Some(unit);
            }
        }
    }

    /// The family a HELP/TYPE/UNIT line describes: the current one if it has the name,
    /// otherwise a new one. A name already used by an earlier family is a violation.
    fn metadata_family(&mut self, name: &'a str, keyword: &str, no: usize) -> Option<usize> {
        if let Some(&index) = self.by_name.get(name) {
            if Some(index) == self.current {
                return Some(index);
            }
            let first = self.families[index].line;
            self.violation(
                no,
                format!(
                    "{keyword} line for {name:?}, whose family already appeared at line {first}"
                ),
            );
            return None;
        }
        Some(self.new_family(name, no))
    }

    fn new_family(&mut self, name: &'a str, no: usize) -> usize {
        let index = self.families.len();
        self.families.push(Family {
            name,
            help: None,
            kind: MetricType::Untyped,
            unit: None,
            samples: Vec::new(),
            line: no,
            has_type: false,
        });
        self.by_name.insert(name, index);
        self.current = Some(index);
        index
    }

    fn sample(&mut self, line: &'a str, no: usize) -> Result<(), String> {
        let bytes = line.as_bytes();
        let name_end = bytes
            .iter()
            .position(|&b| !METRIC_CHARS[b as usize])
            .unwrap_or(bytes.len());
        let name = &line[..name_end];
        if name.is_empty() {
            return Err(format!(
                "expected a metric name, found {:?}",
                line.chars().next().unwrap_or(' ')
            ));
        }
        if name.as_bytes()[0].is_ascii_digit() {
            return Err(format!("invalid metric name {name:?}"));
        }
        let mut pos = skip_blanks(bytes, name_end);
        let mut labels = Vec::new();
        if bytes.get(pos) == Some(&b'{') {
            pos = parse_labels(line, pos + 1, &mut labels, self.format)?;
            pos = skip_blanks(bytes, pos);
        } else if pos == name_end && pos < bytes.len() {
            return Err(format!(
                "invalid character {:?} in metric name",
                line[pos..].chars().next().unwrap_or(' ')
            ));
        }
        if pos == bytes.len() {
            return Err(format!("sample {name:?} has no value"));
        }
        let (value_text, after_value) = token(line, pos);
        let value = parse_value(value_text, self.format)
            .ok_or_else(|| format!("invalid value {value_text:?} for {name:?}"))?;
        pos = skip_blanks(bytes, after_value);
        let mut timestamp_ms = None;
        if pos < bytes.len() && bytes[pos] != b'#' {
            let (ts_text, after_ts) = token(line, pos);
            timestamp_ms = Some(
                parse_timestamp(ts_text, self.format)
                    .ok_or_else(|| format!("invalid timestamp {ts_text:?} for {name:?}"))?,
            );
            pos = skip_blanks(bytes, after_ts);
        }
        if pos < bytes.len() {
            if self.format == Format::OpenMetrics && bytes[pos] == b'#' {
                parse_exemplar(line, pos + 1)?;
            } else {
                return Err(format!(
                    "unexpected text {:?} after the sample",
                    &line[pos..]
                ));
            }
        }

        let family = self.family_for_sample(name, no)?;
        self.check_sample_shape(family, name, &labels)?;
        let key = series_key(name, &labels);
        let sample_index = self.families[family].samples.len();
        if let Some(&(f, s)) = self.series.get(&key) {
            let earlier = &self.families[f as usize].samples[s as usize];
            if earlier.name == name && same_labels(&earlier.labels, &labels) {
                return Err(format!(
                    "duplicate series {name}{}, first seen at line {}",
                    render_labels(&labels),
                    earlier.line
                ));
            }
        }
        self.series
            .insert(key, (family as u32, sample_index as u32));
        self.families[family].samples.push(Sample {
            name,
            labels,
            value,
            timestamp_ms,
            line: no,
        });
        Ok(())
    }

    /// Finds (or starts) the family a sample belongs to.
    fn family_for_sample(&mut self, name: &'a str, no: usize) -> Result<usize, String> {
        if let Some(current) = self.current
            && belongs_to(&self.families[current], name, self.format)
        {
            return Ok(current);
        }
        let known = self.by_name.get(name).copied().or_else(|| {
            suffix_bases(name).find_map(|base| {
                self.by_name
                    .get(base)
                    .copied()
                    .filter(|&i| belongs_to(&self.families[i], name, self.format))
            })
        });
        match known {
            Some(index) => {
                let family = &self.families[index];
                Err(format!(
                    "sample {name:?} is separated from the rest of family {:?}, which started at line {}",
                    family.name, family.line
                ))
            }
            None => Ok(self.new_family(name, no)),
        }
    }

    fn check_sample_shape(
        &self,
        family: usize,
        name: &str,
        labels: &[Label<'a>],
    ) -> Result<(), String> {
        let family = &self.families[family];
        let suffix = &name[family.name.len()..];
        let label = |wanted: &str| labels.iter().find(|l| l.name == wanted);
        match (family.kind, suffix) {
            (MetricType::Histogram | MetricType::GaugeHistogram, "") => Err(format!(
                "histogram {:?} sample needs a _bucket, _sum or _count suffix",
                family.name
            )),
            (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => match label("le") {
                None => Err(format!("histogram bucket {name:?} has no \"le\" label")),
                Some(l) if parse_value(&l.value, Format::Text).is_none() => {
                    Err(format!("invalid \"le\" value {:?} in {name:?}", l.value))
                }
                Some(_) => Ok(()),
            },
            (MetricType::Summary, "") => match label("quantile") {
                None => Err(format!("summary {name:?} sample has no \"quantile\" label")),
                Some(l) if parse_value(&l.value, Format::Text).is_none() => Err(format!(
                    "invalid \"quantile\" value {:?} in {name:?}",
                    l.value
                )),
                Some(_) => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn finish(mut self, last_line: usize) -> Parsed<'a> {
        if self.format == Format::OpenMetrics && self.eof_line.is_none() {
            self.violation(last_line.max(1), "missing # EOF at the end");
        }
        for index in 0..self.families.len() {
            if matches!(
                self.families[index].kind,
                MetricType::Histogram | MetricType::GaugeHistogram
            ) {
                for (line, message) in check_buckets(&self.families[index]) {
                    self.violation(line, message);
                }
            }
        }
        self.violations.sort_by_key(|v| v.line);
        Parsed {
            exposition: Exposition {
                families: self.families,
            },
            violations: self.violations,
        }
    }
}

/// Sample-name suffixes each family type allows.
fn suffixes(kind: MetricType, format: Format) -> &'static [&'static str] {
    match (kind, format) {
        (MetricType::Histogram, Format::Text) => &["_bucket", "_sum", "_count"],
        (MetricType::Histogram, Format::OpenMetrics) => &["_bucket", "_sum", "_count", "_created"],
        (MetricType::GaugeHistogram, _) => &["_bucket", "_gsum", "_gcount"],
        (MetricType::Summary, Format::Text) => &["", "_sum", "_count"],
        (MetricType::Summary, Format::OpenMetrics) => &["", "_sum", "_count", "_created"],
        (MetricType::Counter, Format::OpenMetrics) => &["_total", "_created"],
        (MetricType::Info, _) => &["_info"],
        _ => &[""],
    }
}

fn belongs_to(family: &Family<'_>, name: &str, format: Format) -> bool {
    let Some(suffix) = name.strip_prefix(family.name) else {
        return false;
    };
    if family.kind == MetricType::Histogram && suffix.is_empty() {
        // Reported by the shape check with a clearer message.
        return true;
    }
    suffixes(family.kind, format).contains(&suffix)
}

/// Names a sample might be a suffixed member of.
fn suffix_bases(name: &str) -> impl Iterator<Item = &str> {
    [
        "_bucket", "_sum", "_count", "_total", "_created", "_gsum", "_gcount", "_info",
    ]
    .into_iter()
    .filter_map(move |suffix| name.strip_suffix(suffix))
}

/// Per histogram series: an `le="+Inf"` bucket, and counts that never decrease with `le`.
fn check_buckets(family: &Family<'_>) -> Vec<(usize, String)> {
    let bucket_name_len = family.name.len() + "_bucket".len();
    let mut groups: FxMap<u64, Vec<(f64, f64, usize)>> = FxMap::default();
    for sample in &family.samples {
        if sample.name.len() != bucket_name_len || !sample.name.ends_with("_bucket") {
            continue;
        }
        let Some(le) = sample
            .label("le")
            .and_then(|le| parse_value(le, Format::Text))
        else {
            continue;
        };
        let mut hasher = Fx::default();
        for label in sample.labels.iter().filter(|l| l.name != "le") {
            label.name.hash(&mut hasher);
            label.value.hash(&mut hasher);
        }
        groups
            .entry(hasher.finish())
            .or_default()
            .push((le, sample.value, sample.line));
    }
    let mut problems = Vec::new();
    for buckets in groups.values_mut() {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let first_line = buckets.iter().map(|b| b.2).min().unwrap_or(family.line);
        if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
            problems.push((
                first_line,
                format!(
                    "histogram {:?} has a series without an le=\"+Inf\" bucket",
                    family.name
                ),
            ));
        }
        for pair in buckets.windows(2) {
            if pair[1].1 < pair[0].1 {
                problems.push((
                    pair[1].2,
                    format!(
                        "histogram {:?} bucket counts decrease from le={} to le={}",
                        family.name, pair[0].0, pair[1].0
                    ),
                ));
            }
        }
    }
    problems
}

fn valid_metric_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && !bytes[0].is_ascii_digit()
        && bytes.iter().all(|&b| METRIC_CHARS[b as usize])
}

#[inline]
fn skip_blanks(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && (bytes[pos] == b' ' || bytes[pos] == b'\t') {
        pos += 1;
    }
    pos
}

/// The run of non-blank characters at `pos`, and where it ends.
#[inline]
fn token(line: &str, pos: usize) -> (&str, usize) {
    let bytes = line.as_bytes();
    let end = bytes[pos..]
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .map_or(bytes.len(), |n| pos + n);
    (&line[pos..end], end)
}

fn split_word(text: &str) -> (&str, &str) {
    let end = text.find([' ', '\t']).unwrap_or(text.len());
    (&text[..end], &text[end..])
}

/// Parses `name="value",...}` starting after `{`; returns the position after `}`.
fn parse_labels<'a>(
    line: &'a str,
    mut pos: usize,
    labels: &mut Vec<Label<'a>>,
    format: Format,
) -> Result<usize, String> {
    let bytes = line.as_bytes();
    loop {
        pos = skip_blanks(bytes, pos);
        match bytes.get(pos) {
            None => return Err("unterminated label set: missing '}'".into()),
            Some(b'}') => return Ok(pos + 1),
            _ => {}
        }
        let start = pos;
        while pos < bytes.len() && LABEL_CHARS[bytes[pos] as usize] {
            pos += 1;
        }
        let name = &line[start..pos];
        if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
            let found = line[start..]
                .chars()
                .next()
                .map_or_else(|| "the end of the line".to_owned(), |c| format!("{c:?}"));
            return Err(format!(
                "expected a label name at column {}, found {found}",
                start + 1
            ));
        }
        pos = skip_blanks(bytes, pos);
        if bytes.get(pos) != Some(&b'=') {
            return Err(format!("expected '=' after label name {name:?}"));
        }
        pos = skip_blanks(bytes, pos + 1);
        if bytes.get(pos) != Some(&b'"') {
            return Err(format!(
                "expected '\"' to start the value of label {name:?}"
            ));
        }
        pos += 1;
        let value_start = pos;
        let mut escaped = false;
        loop {
            match bytes.get(pos) {
                None => return Err(format!("unterminated value of label {name:?}")),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    pos += 2;
                }
                Some(_) => pos += 1,
            }
        }
        let raw = &line[value_start..pos];
        let value = if escaped {
            unescape(raw, true).map_err(|m| format!("in label {name:?}: {m}"))?
        } else {
            Cow::Borrowed(raw)
        };
        pos += 1;
        if labels.iter().any(|l| l.name == name) {
            return Err(format!("duplicate label name {name:?}"));
        }
        if name.starts_with("__") {
            return Err(format!("label name {name:?} is reserved (starts with __)"));
        }
        labels.push(Label { name, value });
        pos = skip_blanks(bytes, pos);
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(b'}') => return Ok(pos + 1),
            _ => {
                return Err(format!(
                    "expected ',' or '}}' after the value of label {name:?}"
                ));
            }
        }
        if format == Format::OpenMetrics && bytes.get(pos) == Some(&b'}') {
            return Err("trailing comma in label set".into());
        }
    }
}

/// Undoes the format's escapes: `\\` and `\n` everywhere, `\"` where `quote` allows it
/// (label values always, HELP only in OpenMetrics).
fn unescape(raw: &str, quote: bool) -> Result<Cow<'_, str>, String> {
    if !raw.contains('\\') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            Some(other) => return Err(format!("invalid escape sequence '\\{other}'")),
            None => return Err("a backslash ends the text".into()),
        }
    }
    Ok(Cow::Owned(out))
}

/// Floats as Go's `strconv.ParseFloat` reads them in the text format (`NaN`, `+Inf`,
/// `-Inf`, exponents), or the exact OpenMetrics spellings.
fn parse_value(text: &str, format: Format) -> Option<f64> {
    match text {
        "NaN" => return Some(f64::NAN),
        "+Inf" | "Inf" => return Some(f64::INFINITY),
        "-Inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let first = *text.as_bytes().first()?;
    // Rust also reads "inf", "infinity" and "nan" in any case; Go accepts those spellings
    // too, OpenMetrics does not.
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return match format {
            Format::Text => text.parse().ok(),
            Format::OpenMetrics => None,
        };
    }
    text.parse().ok()
}

/// Milliseconds (text format) or float seconds (OpenMetrics) to milliseconds.
fn parse_timestamp(text: &str, format: Format) -> Option<i64> {
    match format {
        Format::Text => text.parse().ok(),
        Format::OpenMetrics => {
            let seconds: f64 = text.parse().ok()?;
            seconds
                .is_finite()
                .then(|| (seconds * 1000.0).round() as i64)
        }
    }
}

/// Checks an OpenMetrics exemplar: ` {labels} value [timestamp]`, after the `#`.
fn parse_exemplar(line: &str, pos: usize) -> Result<(), String> {
    let bytes = line.as_bytes();
    let pos = skip_blanks(bytes, pos);
    if bytes.get(pos) != Some(&b'{') {
        return Err("exemplar must start with a label set".into());
    }
    let mut labels = Vec::new();
    let pos = skip_blanks(
        bytes,
        parse_labels(line, pos + 1, &mut labels, Format::OpenMetrics)?,
    );
    if pos >= bytes.len() {
        return Err("exemplar has no value".into());
    }
    let (value, end) = token(line, pos);
    parse_value(value, Format::OpenMetrics)
        .ok_or_else(|| format!("invalid exemplar value {value:?}"))?;
    let pos = skip_blanks(bytes, end);
    if pos < bytes.len() {
        let (ts, end) = token(line, pos);
        parse_timestamp(ts, Format::OpenMetrics)
            .ok_or_else(|| format!("invalid exemplar timestamp {ts:?}"))?;
        if skip_blanks(bytes, end) < bytes.len() {
            return Err("unexpected text after the exemplar".into());
        }
    }
    Ok(())
}

/// A hash of the sample name and its label set, independent of label order.
fn series_key(name: &str, labels: &[Label<'_>]) -> u64 {
    let mut hasher = Fx::default();
    name.hash(&mut hasher);
    let sorted = labels.windows(2).all(|w| w[0].name <= w[1].name);
    if sorted {
        for label in labels {
            label.name.hash(&mut hasher);
            label.value.hash(&mut hasher);
        }
    } else {
        let mut order: Vec<&Label<'_>> = labels.iter().collect();
        order.sort_by(|a, b| a.name.cmp(b.name));
        for label in order {
            label.name.hash(&mut hasher);
            label.value.hash(&mut hasher);
        }
    }
    hasher.finish()
}

fn same_labels(a: &[Label<'_>], b: &[Label<'_>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|l| b.iter().any(|m| m.name == l.name && m.value == l.value))
}

fn render_labels(labels: &[Label<'_>]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", inner.join(","))
}
