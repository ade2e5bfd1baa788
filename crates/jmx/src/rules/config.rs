//! jmx_exporter's YAML configuration, read as jmx_exporter 1.x reads it: keys it does not know
//! (or that mean nothing to a proxy, such as `httpServer`) are accepted and ignored, and
//! booleans may be written YAML 1.1 style (`yes`, `off`), as SnakeYAML allows.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// The whole file (or the inline `rules:` mapping of a module).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawConfig {
    pub start_delay_seconds: Option<serde_yaml_ng::Value>,
    pub host_port: Option<String>,
    pub jmx_url: Option<String>,
    pub username: Option<Scalar>,
    pub password: Option<Scalar>,
    pub lowercase_output_name: Option<Bool11>,
    pub lowercase_output_label_names: Option<Bool11>,
    pub infer_counter_type_from_name: Option<Bool11>,
    pub include_object_names: Option<Vec<String>>,
    pub exclude_object_names: Option<Vec<String>>,
    pub whitelist_object_names: Option<Vec<String>>,
    pub blacklist_object_names: Option<Vec<String>>,
    pub exclude_jvm_metrics: Option<Bool11>,
    pub include_object_name_attributes: Option<BTreeMap<String, Vec<String>>>,
    pub exclude_object_name_attributes: Option<BTreeMap<String, Vec<String>>>,
    pub auto_exclude_object_name_attributes: Option<Bool11>,
    pub metric_customizers: Option<Vec<RawCustomizer>>,
    /// Absent: one default rule. `rules: []`: nothing is exported.
    pub rules: Option<Vec<RawRule>>,
}

/// One entry of `rules:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawRule {
    pub pattern: Option<Scalar>,
    pub name: Option<Scalar>,
    pub value: Option<Scalar>,
    pub value_factor: Option<Scalar>,
    pub labels: Option<BTreeMap<String, Scalar>>,
    pub help: Option<Scalar>,
    #[serde(rename = "type")]
    pub kind: Option<Scalar>,
    pub attr_name_snake_case: Option<Bool11>,
    pub cache: Option<Bool11>,
}

/// One entry of `metricCustomizers:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawCustomizer {
    pub mbean_filter: Option<RawMbeanFilter>,
    pub attributes_as_labels: Option<Vec<String>>,
    pub extra_metrics: Option<Vec<RawExtraMetric>>,
}

/// `mbeanFilter:` of a customizer.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawMbeanFilter {
    pub domain: Option<String>,
    pub properties: Option<BTreeMap<String, Scalar>>,
}

/// An `extraMetrics:` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawExtraMetric {
    pub name: Option<String>,
    pub value: Option<Scalar>,
    pub description: Option<String>,
}

/// A boolean as SnakeYAML (YAML 1.1) reads one: also `yes`/`no`, `on`/`off`, `y`/`n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bool11(pub bool);

impl<'de> Deserialize<'de> for Bool11 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_yaml_ng::Value::deserialize(deserializer)? {
            serde_yaml_ng::Value::Bool(b) => Ok(Self(b)),
            serde_yaml_ng::Value::Null => Ok(Self(false)),
            serde_yaml_ng::Value::String(text) => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" => Ok(Self(true)),
                "false" | "no" | "n" | "off" => Ok(Self(false)),
                _ => Err(serde::de::Error::custom(format!(
                    "expected a boolean, found {text:?}"
                ))),
            },
            other => Err(serde::de::Error::custom(format!(
                "expected a boolean, found {other:?}"
            ))),
        }
    }
}

/// Any YAML scalar, as the text Java's `String.valueOf` would give it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_yaml_ng::Value::deserialize(deserializer)? {
            serde_yaml_ng::Value::String(text) => Ok(Self(text)),
            serde_yaml_ng::Value::Bool(b) => Ok(Self(b.to_string())),
            serde_yaml_ng::Value::Number(n) => Ok(Self(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string or number, found {other:?}"
            ))),
        }
    }
}
