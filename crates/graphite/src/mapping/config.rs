//! The mapping file as written: statsd_exporter's YAML format, read leniently as upstream
//! reads it (keys that graphite_exporter ignores are accepted; unknown keys are warned
//! about, with their line, instead of being silently dropped).

use std::collections::BTreeMap;
use std::path::Path;

use kiln_registry::config::{ConfigError, edit_distance, locate_key};
use serde::Deserialize;
use serde_yaml_ng::Value;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MappingFile {
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) defaults: Defaults,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) mappings: Vec<RuleConfig>,
    #[serde(flatten)]
    pub(crate) other: BTreeMap<String, Value>,
}

/// `mappings:` or `defaults:` with nothing after them is YAML null; upstream reads it as
/// empty.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `defaults:`; only the glob settings mean anything to a Graphite bridge.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Defaults {
    #[serde(default)]
    pub(crate) match_type: Option<String>,
    #[serde(default)]
    pub(crate) glob_disable_ordering: bool,
    #[serde(flatten)]
    pub(crate) other: BTreeMap<String, Value>,
}

/// One entry of `mappings:`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RuleConfig {
    #[serde(default, rename = "match")]
    pub(crate) pattern: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, Value>,
    #[serde(default)]
    pub(crate) match_type: Option<String>,
    #[serde(default)]
    pub(crate) action: Option<String>,
    #[serde(default)]
    pub(crate) match_metric_type: Option<String>,
    #[serde(default)]
    pub(crate) scale: Option<f64>,
    /// Upstream documents it but never reads it; Kiln honours it.
    #[serde(default)]
    pub(crate) honor_labels: bool,
    #[serde(flatten)]
    pub(crate) other: BTreeMap<String, Value>,
}

/// Keys statsd_exporter defines that have no meaning for Graphite input; accepted silently.
/// All but the first (`help`) are valid under `defaults:` too.
const IGNORED_RULE_KEYS: &[&str] = &[
    "help",
    "ttl",
    "observer_type",
    "timer_type",
    "buckets",
    "quantiles",
    "summary_options",
    "histogram_options",
];
const IGNORED_DEFAULT_KEYS: &[&str] = IGNORED_RULE_KEYS.split_at(1).1;

impl MappingFile {
    /// Parses `text`, read from `file`; syntax and type errors name the line.
    pub(crate) fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let parsed: Self = kiln_registry::config::parse_yaml(file, text)?;
        parsed.refuse_rules_lost_to_a_typo(file, text)?;
        parsed.warn_unknown_keys(file, text);
        Ok(parsed)
    }

    /// An unknown top-level key in a file without any rule is most likely a misspelt
    /// `mappings:` (or a file of another format): serving would map nothing, so it is an
    /// error rather than a warning. With rules present, unknown keys only warn, as upstream
    /// ignores them.
    fn refuse_rules_lost_to_a_typo(&self, file: &Path, text: &str) -> Result<(), ConfigError> {
        if !self.mappings.is_empty() {
            return Ok(());
        }
        let Some(key) = self.other.keys().next() else {
            return Ok(());
        };
        let hint = if edit_distance(key, "mappings") <= 2 || edit_distance(key, "defaults") <= 2 {
            let near = if edit_distance(key, "mappings") <= edit_distance(key, "defaults") {
                "mappings"
            } else {
                "defaults"
            };
            format!(" (did you mean `{near}`?)")
        } else {
            String::new()
        };
        Err(ConfigError::at_key(
            file,
            text,
            &[key],
            format!(
                "unknown key, and the file has no mapping rules{hint}; the known keys are `mappings` and `defaults`"
            ),
        ))
    }

    fn warn_unknown_keys(&self, file: &Path, text: &str) {
        let warn = |key_path: &[&str], line: Option<usize>| {
            tracing::warn!(
                file = %file.display(),
                line = line.unwrap_or_default(),
                key = key_path.join("."),
                "Unknown key in the mapping file; it is ignored (check its spelling)."
            );
        };
        for key in self.other.keys() {
            warn(&[key], locate_key(text, &[key]));
        }
        for key in self.defaults.other.keys() {
            if !IGNORED_DEFAULT_KEYS.contains(&key.as_str()) {
                warn(&["defaults", key], locate_key(text, &["defaults", key]));
            }
        }
        for (index, rule) in self.mappings.iter().enumerate() {
            for key in rule.other.keys() {
                if !IGNORED_RULE_KEYS.contains(&key.as_str()) {
                    let path = format!("mappings[{index}]");
                    warn(
                        &[&path, key],
                        locate_key(text, &["mappings", &format!("[{index}]"), key]),
                    );
                }
            }
        }
    }
}

/// The text of a label value: YAML scalars as written (`1` is `"1"`), anything else empty.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
mappings:
- match: 'a.*'
  name: first
- match: b.*
  # comment
  name: second
  labels:
    job: x
defaults:
  glob_disable_ordering: true
";

    #[test]
    fn rule_keys_are_located() {
        let rule =
            |index: usize, key: &str| locate_key(TEXT, &["mappings", &format!("[{index}]"), key]);
        assert_eq!(rule(0, "match"), Some(2));
        assert_eq!(rule(0, "name"), Some(3));
        assert_eq!(rule(1, "name"), Some(6));
        assert_eq!(rule(1, "labels"), Some(7));
        // Not written in the entry: the entry's line.
        assert_eq!(rule(1, "help"), Some(4));
        // No such entry: the line of `mappings:`.
        assert_eq!(rule(2, "name"), Some(1));
    }

    #[test]
    fn empty_sections_are_empty() {
        let file = MappingFile::parse(Path::new("m.yml"), "defaults:\nmappings:\n").unwrap();
        assert!(file.mappings.is_empty());
    }

    #[test]
    fn parses_leniently() {
        let file = MappingFile::parse(
            Path::new("m.yml"),
            "mappings:\n- match: a.b\n  name: x\n  help: ignored\n  lables: {a: b}\n  labels: {qty: 1}\n",
        )
        .unwrap();
        assert_eq!(file.mappings.len(), 1);
        assert!(file.mappings[0].other.contains_key("lables"));
        assert_eq!(scalar_text(&file.mappings[0].labels["qty"]).unwrap(), "1");
    }
}
