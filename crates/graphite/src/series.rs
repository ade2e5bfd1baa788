//! The series a line becomes: its family name and rendered labels, computed once when a
//! path is first seen (and again after a mapping reload), then reused for every sample.

use crate::line::{Invalid, Tagged};
use crate::mapping::{Mapped, Rule};
use crate::names::{
    escape_label_name, escape_leading_digit, push_label_value, sanitize_metric_name,
};

/// A series ready to be written: `family` + `labels` + ` value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// The metric name as written in the exposition.
    pub family: String,
    /// The digit a leading `_` replaced in `family` (the HELP text keeps the original).
    pub help_digit: Option<u8>,
    /// `{a="x",b="y"}`, or empty for no labels.
    pub labels: String,
}

/// Builds the series for a line whose path and tags are `tagged` and that `mapped` (by
/// `rule`) or no rule matched.
pub fn build(tagged: &Tagged<'_>, mapped: Option<(&Mapped, &Rule)>) -> Result<Series, Invalid> {
    let name = mapped.map_or(tagged.path, |(m, _)| m.name.as_str());
    if name.is_empty() {
        return Err(Invalid::EmptyName);
    }
    let mut family = String::with_capacity(name.len());
    sanitize_metric_name(name, &mut family);
    let help_digit = escape_leading_digit(&mut family);

    let mut labels: Vec<(String, &str)> = Vec::with_capacity(tagged.tags.len() + 4);
    for &(key, value) in &tagged.tags {
        if key.is_empty() || key.starts_with("__") {
            return Err(Invalid::LabelName);
        }
        let mut escaped = String::with_capacity(key.len());
        escape_label_name(key, &mut escaped);
        labels.push((escaped, value));
    }
    // Later tags win over earlier ones with the same (escaped) key.
    labels.reverse();
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    labels.dedup_by(|later, earlier| later.0 == earlier.0);
    if let Some((mapped, rule)) = mapped {
        for (key, value) in &mapped.labels {
            match labels.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
                Ok(at) if !rule.honor_labels => labels[at].1 = value,
                Ok(_) => {}
                Err(at) => labels.insert(at, (key.clone(), value)),
            }
        }
    }

    let mut rendered = String::new();
    if !labels.is_empty() {
        rendered.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                rendered.push(',');
            }
            rendered.push_str(key);
            rendered.push_str("=\"");
            push_label_value(value, &mut rendered);
            rendered.push('"');
        }
        rendered.push('}');
    }
    Ok(Series {
        family,
        help_digit,
        labels: rendered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::split_tags;
    use crate::mapping::Mapper;
    use std::path::Path;

    fn series(line_name: &str, mapping: &str) -> Result<Series, Invalid> {
        let mapper = Mapper::parse(Path::new("m.yml"), mapping).unwrap();
        let tagged = split_tags(line_name);
        let mapped = mapper.map(tagged.path);
        build(
            &tagged,
            mapped.as_ref().map(|m| (m, &mapper.rules()[m.rule])),
        )
    }

    #[test]
    fn unmapped_names_keep_their_path() {
        let s = series("a.b-c;host-name=x;z=1", "").unwrap();
        assert_eq!(s.family, "a_b_c");
        assert_eq!(s.labels, r#"{host_name="x",z="1"}"#);
        let s = series("9lives.count", "").unwrap();
        assert_eq!(
            (s.family.as_str(), s.help_digit),
            ("_lives_count", Some(b'9'))
        );
    }

    #[test]
    fn mapping_labels_override_tags_unless_honor_labels() {
        let rule = "mappings:\n- match: a.*\n  name: m\n  labels: {job: $1}\n";
        assert_eq!(series("a.x;job=tag", rule).unwrap().labels, r#"{job="x"}"#);
        let honoring = "mappings:\n- match: a.*\n  name: m\n  honor_labels: true\n  labels: {job: $1, other: o}\n";
        assert_eq!(
            series("a.x;job=tag", honoring).unwrap().labels,
            r#"{job="tag",other="o"}"#
        );
    }

    #[test]
    fn inputs_that_crash_upstream_are_refused() {
        assert_eq!(series(";k=v", ""), Err(Invalid::EmptyName));
        assert_eq!(series("m;=v", ""), Err(Invalid::LabelName));
        assert_eq!(series("m;__name__=v", ""), Err(Invalid::LabelName));
        let empty_template = "mappings:\n- match: a.*\n  name: $1_x\n";
        assert_eq!(series("a.b", empty_template), Err(Invalid::EmptyName));
    }

    #[test]
    fn repeated_tags_keep_the_last() {
        assert_eq!(series("m;a=1;a=2", "").unwrap().labels, r#"{a="2"}"#);
    }
}
